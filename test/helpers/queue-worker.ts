/**
 * A process that runs an embedded delivery queue over a database file and delivers every job of
 * kind `http` as a POST to `<receiver>/<destination>` with its idempotency key in `x-delivery-key`.
 * Tests kill it (-9) in the middle and start it again.
 *
 *   node test/helpers/queue-worker.ts <db file> <receiver url> [leaseMs] [pollMs]
 *
 * Prints `ready` once the queue runs; on SIGTERM it closes the queue and exits 0.
 */
import { Agent, request } from 'node:http';
import { EmbeddedQueue } from '../../src/queue/embedded.ts';
import { openDatabase } from '../../src/storage/db.ts';

const [file, receiver, leaseMs = '1000', pollMs = '200'] = process.argv.slice(2);
if (!file || !receiver)
  throw new Error('usage: queue-worker.ts <db file> <receiver url> [leaseMs] [pollMs]');

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export function post(url: string, key: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-delivery-key': key,
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const db = openDatabase(file);
const queue = new EmbeddedQueue(db, {
  concurrency: 64,
  perDestination: 16,
  backoffBaseMs: 50,
  backoffMaxMs: 500,
  leaseMs: Number(leaseMs),
  pollMs: Number(pollMs),
});
queue.handle('http', (job) =>
  post(`${receiver}/${encodeURIComponent(job.destination)}`, job.key, JSON.stringify(job.payload)),
);
await queue.start();
process.stdout.write('ready\n');

process.on('SIGTERM', () => {
  void queue.close().then(() => {
    db.$client.close();
    agent.destroy();
    process.exit(0);
  });
});
