// A process running the embedded queue is killed -9 in the middle of 10,000 deliveries to a
// loopback receiver and started again: every delivery arrives, and a repeat (an attempt cut off
// by the kill) carries the same idempotency key.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EmbeddedQueue } from '../../src/queue/embedded.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { waitFor } from './conformance.ts';

const WORKER = fileURLToPath(new URL('../helpers/queue-worker.ts', import.meta.url));
const JOBS = 10_000;

function startWorker(file: string, receiver: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WORKER, file, receiver, '1000', '100'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker exited with ${code} before ready`)));
  });
}

it('a killed (-9) embedded queue process loses no delivery of 10,000', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rum-queue-kill-'));
  const file = join(dir, 'node.db');
  const arrivals = new Map<string, number>();
  let posts = 0;
  const receiver = createServer((req, res) => {
    const key = req.headers['x-delivery-key'];
    req.resume();
    req.on('end', () => {
      if (typeof key === 'string') {
        posts++;
        arrivals.set(key, (arrivals.get(key) ?? 0) + 1);
      }
      res.end('ok');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const db = openDatabase(file);
  const producer = new EmbeddedQueue(db);
  let child: ChildProcess | undefined;
  try {
    child = await startWorker(file, url);
    // Added by this process while the worker runs: the worker learns of them by its poll.
    for (let i = 0; i < JOBS; i += 1000) {
      const batch = [];
      for (let j = i; j < i + 1000; j++)
        batch.push(
          producer.enqueue({
            key: `job-${j}`,
            kind: 'http',
            destination: `host${j % 10}`,
            payload: { j },
          }),
        );
      await Promise.all(batch);
    }
    await waitFor('a third delivered', () => arrivals.size >= JOBS / 3, 60_000);
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const atKill = arrivals.size;
    assert.ok(atKill < JOBS, 'everything arrived before the kill: the test proves nothing');

    const restarted = Date.now();
    child = await startWorker(file, url);
    await waitFor('every delivery', () => arrivals.size === JOBS, 120_000);
    const secs = (Date.now() - restarted) / 1000;
    // The attempts cut off by the kill may have arrived already: their jobs stay active under
    // the dead worker's lease until it runs out (1 s), and are then run again (a repeat).
    await waitFor(
      'every job recorded done',
      async () => (await producer.counts()).done === JOBS,
      30_000,
    );
    const exitedNow = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exitedNow;
    child = undefined;
    assert.equal(code, 0);

    for (let j = 0; j < JOBS; j++) assert.ok(arrivals.has(`job-${j}`), `job-${j} never arrived`);
    assert.equal(arrivals.size, JOBS);
    const repeats = posts - JOBS;
    t.diagnostic(
      `${atKill} arrived before the kill; the rest in ${secs.toFixed(2)} s after the restart ` +
        `(lease 1 s, start included); ${repeats} repeated`,
    );
    // Only attempts in flight at the kill can run twice.
    assert.ok(repeats <= 64, `${repeats} repeated deliveries`);
    assert.deepEqual(await producer.counts(), { pending: 0, active: 0, done: JOBS, failed: 0 });
  } finally {
    child?.kill('SIGKILL');
    await producer.close();
    db.$client.close();
    receiver.closeAllConnections();
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
