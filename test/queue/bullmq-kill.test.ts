// Redis killed -9 in the middle of 10,000 deliveries: a redis-server of the test's own (AOF,
// fsync on every write) is killed when about a third of the deliveries have arrived and started
// again on the same port with its AOF; two worker processes keep going, and every delivery
// arrives at the loopback receiver. A repeat carries the same idempotency key, and the receiver
// counts each key once. Skipped without /usr/bin/redis-server, except under CI=true.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BullQueue } from '../../src/queue/bullmq.ts';
import {
  type OwnRedis,
  hasRedisServer,
  REDIS_SERVER,
  startOwnRedis,
} from '../helpers/bullmq-redis.ts';
import { startReceivers } from '../helpers/bullmq-receiver.ts';
import { startWorkerProcess, type WorkerProcess } from '../helpers/bullmq-worker.ts';
import { sleep, waitFor } from './conformance.ts';

const N = 10_000;
const PREFIX = 'rumkill';
const NAME = 'deliveries';
/** Quick recovery of the attempts the kill interrupted: locks and leases of a few seconds. */
const TUNING = { lockDurationMs: 4_000, stalledIntervalMs: 2_000, leaseMs: 4_000 };
const OPTIONS = { concurrency: 32, perDestination: 32, backoffBaseMs: 200, backoffMaxMs: 2_000 };

const missing = hasRedisServer() ? null : `${REDIS_SERVER} is not installed`;

it(
  'every delivery arrives when Redis is killed -9 and restarted with its AOF mid-way',
  {
    skip:
      missing && process.env.CI !== 'true' ? `${missing} (apt-get install redis-server)` : false,
    timeout: 240_000,
  },
  async () => {
    assert.equal(missing, null, `${missing} (CI=true: this test must run)`);
    const receiver = await startReceivers({ count: 1, secret: 'kill-test' });
    let redis: OwnRedis | undefined;
    let producer: BullQueue | undefined;
    const workers: WorkerProcess[] = [];
    try {
      redis = await startOwnRedis();
      producer = new BullQueue(redis.url, NAME, OPTIONS, { ...TUNING, prefix: PREFIX });
      const tStart = Date.now();
      const url = `${receiver.urls[0]}/hook`;
      const keys: string[] = [];
      for (let i = 0; i < N; i += 500) {
        const batch = [];
        for (let j = i; j < i + 500; j++) {
          const key = `kill-test:${j}`;
          keys.push(key);
          batch.push(
            producer.enqueue({
              key,
              kind: 'http',
              destination: new URL(url).host,
              payload: { url, body: JSON.stringify({ n: j }), hmacSecret: 'kill-test' },
            }),
          );
        }
        assert.ok((await Promise.all(batch)).every((r) => r.added));
      }
      const t0 = Date.now();
      for (let i = 0; i < 2; i++) {
        workers.push(
          await startWorkerProcess({
            redisUrl: redis.url,
            name: NAME,
            prefix: PREFIX,
            options: OPTIONS,
            tuning: TUNING,
            timeoutMs: 5_000,
          }),
        );
      }
      await waitFor('a third of the deliveries', () => receiver.keys.size >= N / 3, 60_000);
      await redis.kill();
      const atKill = receiver.keys.size;
      assert.ok(atKill < N, 'every delivery arrived before the kill: nothing was tested');
      // Down for longer than a job's lock: the attempts under way when it died are taken back
      // (stalled) and run again, with the same keys.
      await sleep(TUNING.lockDurationMs + 1_000);
      await redis.restart();
      const t1 = Date.now();
      await waitFor(`all ${N} deliveries`, () => receiver.keys.size === N, 180_000);
      const rest = Date.now() - t1;
      const expected = new Set(keys);
      for (const k of receiver.keys) assert.ok(expected.has(k), `unexpected key ${k}`);
      const s = receiver.stats();
      assert.equal(s.bad, 0, 'a delivery without its key or signature');
      assert.ok(s.total >= N);
      await waitFor('the queue settled', async () => (await producer!.counts()).done === N, 30_000);
      const c = await producer.counts();
      assert.deepEqual(c, { pending: 0, active: 0, done: N, failed: 0 });
      process.stderr.write(
        `# enqueued in ${t0 - tStart} ms; killed Redis at ${atKill}/${N} delivered; the rest ` +
          `in ${rest} ms after the restart; ${s.total - N} repeats (same keys)\n`,
      );
    } finally {
      for (const w of workers) await w.stop('SIGKILL');
      await producer?.close();
      await redis?.cleanup();
      await receiver.close();
    }
  },
);
