// The BullMQ delivery queue: the shared conformance suite, then what only this backend promises
// (limits and fair turns over several processes, a killed worker's slot and job taken back, an
// enqueue-only queue, priorities rebased). Uses the Redis at REDIS_URL (default 127.0.0.1:6379)
// under a key prefix of its own, removed afterwards; skipped when that Redis is unreachable,
// except under CI=true, where it fails.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import {
  BullQueue,
  type BullQueueTuning,
  destinationHash,
  jobIdOf,
} from '../../src/queue/bullmq.ts';
import type { DeliveryQueue, QueueOptions } from '../../src/queue/types.ts';
import { dropKeys, REDIS_URL, redisUnreachable, runPrefix } from '../helpers/bullmq-redis.ts';
import { startWorkerProcess } from '../helpers/bullmq-worker.ts';
import { queueConformance, sleep, waitFor } from './conformance.ts';

const PREFIX = runPrefix('bullmq');
/** Quick fallbacks for parked jobs, so the tests do not wait on a lost wake-up for long. */
const TEST_TUNING: Partial<BullQueueTuning> = {
  prefix: PREFIX,
  parkBaseMs: 200,
  parkMaxMs: 2_000,
  onError: (e, where) => {
    if (!/Connection is closed/.test(e.message)) process.stderr.write(`${where}: ${e.message}\n`);
  },
};

let queues = 0;
function queueName(): string {
  return `q${++queues}`;
}

/** Queues a test opened, closed (and their keys removed) when it ends. */
function opener() {
  const opened: BullQueue[] = [];
  const names = new Set<string>();
  return {
    open(name: string, options: Partial<QueueOptions> = {}, tuning: Partial<BullQueueTuning> = {}) {
      const q = new BullQueue(REDIS_URL, name, options, { ...TEST_TUNING, ...tuning });
      opened.push(q);
      names.add(name);
      return q;
    },
    async cleanup() {
      for (const q of opened) await q.close();
      for (const n of names) await dropKeys(`${PREFIX}:${n}:*`);
    },
  };
}

const unreachable = await redisUnreachable();

if (unreachable && process.env.CI === 'true') {
  it('BullMQ delivery queue', () => {
    assert.fail(`${unreachable} (CI=true: the BullMQ tests must run)`);
  });
} else if (unreachable) {
  it('BullMQ delivery queue', { skip: `${unreachable}; set REDIS_URL or start redis-server` });
} else {
  after(async () => {
    await dropKeys(`${PREFIX}:*`);
  });

  queueConformance('bullmq', async (options) => {
    const o = opener();
    const name = queueName();
    return {
      queue: o.open(name, options),
      reopen: async () => o.open(name, options),
      cleanup: () => o.cleanup(),
    };
  });

  describe('BullMQ delivery queue', () => {
    it('derives job ids BullMQ accepts from any key, and keeps the key', async () => {
      const o = opener();
      try {
        const q = o.open(queueName());
        const keys = ['https://example.org/inbox:activity:1', '12345', 'ключ', ''.padEnd(500, 'x')];
        for (const key of keys) {
          const id = jobIdOf(key);
          assert.ok(!id.includes(':') && !/^\d+$/.test(id), id);
          assert.deepEqual(await q.enqueue({ key, kind: 't', destination: 'd', payload: null }), {
            id,
            added: true,
          });
        }
        const listed = await q.list('pending', 10);
        assert.deepEqual(listed.map((j) => j.key).sort(), [...keys].sort());
      } finally {
        await o.cleanup();
      }
    });

    it('a queue never started only enqueues; another process runs its jobs', async () => {
      const o = opener();
      const name = queueName();
      const worker = await startWorkerProcess({ redisUrl: REDIS_URL, name, prefix: PREFIX });
      try {
        const producer = o.open(name);
        let ranHere = 0;
        producer.handle('noop', async () => {
          ranHere++;
        });
        for (let i = 0; i < 20; i++)
          await producer.enqueue({ key: `k${i}`, kind: 'noop', destination: 'd', payload: i });
        await waitFor('20 done', async () => (await producer.counts()).done === 20);
        assert.equal(ranHere, 0);
      } finally {
        await worker.stop();
        await o.cleanup();
      }
    });

    it('holds the per-destination limit over several processes', async () => {
      const o = opener();
      const name = queueName();
      const options = { concurrency: 8, perDestination: 3 };
      const a = o.open(name, options);
      const b = o.open(name, options);
      try {
        const now = new Map<string, number>();
        const most = new Map<string, number>();
        const byQueue = { a: 0, b: 0 };
        const handler = (which: 'a' | 'b') => async (job: { destination: string }) => {
          byQueue[which]++;
          const n = (now.get(job.destination) ?? 0) + 1;
          now.set(job.destination, n);
          most.set(job.destination, Math.max(most.get(job.destination) ?? 0, n));
          await sleep(10 + Math.random() * 20);
          now.set(job.destination, now.get(job.destination)! - 1);
        };
        a.handle('t', handler('a'));
        b.handle('t', handler('b'));
        const adds = [];
        for (const d of ['x', 'y', 'z'])
          for (let i = 0; i < 40; i++)
            adds.push(a.enqueue({ key: `${d}${i}`, kind: 't', destination: d, payload: null }));
        await Promise.all(adds);
        await Promise.all([a.start(), b.start()]);
        await waitFor('120 done', async () => (await a.counts()).done === 120, 30_000);
        for (const [d, m] of most) assert.ok(m <= 3, `${d} ran ${m} at once over two queues`);
        assert.equal(most.size, 3);
        // Slots passed from job to job inside a process were all given back in the end.
        const redis = new Redis(REDIS_URL);
        try {
          for (const d of ['x', 'y', 'z']) {
            const leases = `${PREFIX}:${name}:dest:${destinationHash(d)}:leases`;
            await waitFor(`no slot of ${d} held`, async () => (await redis.zcard(leases)) === 0);
          }
        } finally {
          redis.disconnect();
        }
        assert.ok(
          byQueue.a > 0 && byQueue.b > 0,
          `one queue ran nothing: ${JSON.stringify(byQueue)}`,
        );
      } finally {
        await o.cleanup();
      }
    });

    it('takes back the slot and the job of a worker killed in the middle of an attempt', async () => {
      const o = opener();
      const name = queueName();
      const lease = { leaseMs: 1_000, lockDurationMs: 1_000, stalledIntervalMs: 500 };
      const worker = await startWorkerProcess({
        redisUrl: REDIS_URL,
        name,
        prefix: PREFIX,
        options: { perDestination: 1 },
        tuning: lease,
      });
      try {
        const q = o.open(name, { perDestination: 1 }, lease);
        const hung = await q.enqueue({ key: 'hung', kind: 'hang', destination: 'd', payload: 1 });
        const redis = new Redis(REDIS_URL);
        const leases = `${PREFIX}:${name}:dest:${destinationHash('d')}:leases`;
        try {
          await waitFor(
            'the hung job holds the slot',
            async () => (await redis.zcard(leases)) === 1,
          );
        } finally {
          redis.disconnect();
        }
        await worker.stop('SIGKILL');
        const seen: string[] = [];
        q.handle('hang', async (job) => {
          seen.push(`${job.key}#${job.attempt}`);
        });
        q.handle('t', async (job) => {
          seen.push(`${job.key}#${job.attempt}`);
        });
        await q.enqueue({ key: 'next', kind: 't', destination: 'd', payload: 2 });
        const t0 = Date.now();
        await q.start();
        await waitFor('both done', async () => (await q.counts()).done === 2, 20_000);
        assert.ok(Date.now() - t0 < 15_000);
        assert.ok(seen.includes('next#1'), seen.join());
        // The killed attempt runs again, with the same key (a stalled job keeps its attempt count).
        assert.ok(
          seen.some((s) => s.startsWith('hung#')),
          seen.join(),
        );
        assert.equal((await q.list('done', 10)).find((j) => j.key === 'hung')?.id, hung.id);
      } finally {
        await worker.stop('SIGKILL');
        await o.cleanup();
      }
    });

    it('moves the priority base up when ranks grow, and keeps the fair order', async () => {
      const o = opener();
      const name = queueName();
      try {
        const q = o.open(name, { concurrency: 2, perDestination: 2 }, { rebaseAt: 20 });
        let slowDone = 0;
        const started: string[] = [];
        q.handle('t', async (job) => {
          started.push(job.key);
          if (job.destination === 'slow') {
            await sleep(10);
            slowDone++;
          }
        });
        for (let i = 0; i < 60; i++)
          await q.enqueue({ key: `s${i}`, kind: 't', destination: 'slow', payload: i });
        await q.start();
        await waitFor('half the backlog', () => slowDone >= 30);
        // Ranks past base + 20: the base moves up to the virtual time.
        for (let i = 60; i < 90; i++)
          await q.enqueue({ key: `s${i}`, kind: 't', destination: 'slow', payload: i });
        const redis = new Redis(REDIS_URL);
        try {
          await waitFor('the base moved', async () => {
            return Number((await redis.hget(`${PREFIX}:${name}:fair`, 'base')) ?? 0) >= 25;
          });
        } finally {
          redis.disconnect();
        }
        await q.enqueue({ key: 'fast', kind: 't', destination: 'fast', payload: null });
        const enqueuedAt = started.length;
        await waitFor('the fast job', () => started.includes('fast'));
        // Only what the workers had fetched already (one per slot) may start before it.
        const before = started.indexOf('fast') - enqueuedAt;
        assert.ok(before <= 2, `${before} slow jobs started first`);
        await waitFor('all done', async () => (await q.counts()).done === 91, 20_000);
      } finally {
        await o.cleanup();
      }
    });

    it('pauses every process sharing the queue', async () => {
      const o = opener();
      const name = queueName();
      try {
        const a = o.open(name);
        const b = o.open(name);
        let runs = 0;
        b.handle('t', async () => {
          runs++;
        });
        await b.start();
        await a.pause();
        await a.enqueue({ key: 'k', kind: 't', destination: 'd', payload: null });
        await sleep(300);
        assert.equal(runs, 0);
        await a.resume();
        await waitFor('the job', () => runs === 1);
      } finally {
        await o.cleanup();
      }
    });

    it('fails a job of a kind nobody handles, after its attempts, saying why', async () => {
      const o = opener();
      try {
        const q = o.open(queueName(), { maxAttempts: 2, backoffBaseMs: 5, backoffMaxMs: 10 });
        await q.start();
        await q.enqueue({ key: 'k', kind: 'nobody', destination: 'd', payload: null });
        await waitFor('failed', async () => (await q.counts()).failed === 1);
        const [job] = await q.list('failed', 1);
        assert.match(job!.lastError ?? '', /no handler for deliveries of kind nobody/);
        assert.equal(job!.attempts, 2);
      } finally {
        await o.cleanup();
      }
    });

    it('close() releases every connection', async () => {
      const o = opener();
      const name = queueName();
      const redis = new Redis(REDIS_URL);
      try {
        const clients = async () =>
          String(await redis.call('CLIENT', 'LIST'))
            .split('\n')
            .filter((l) => l.length > 0).length;
        const before = await clients();
        const q: DeliveryQueue = o.open(name);
        q.handle('t', async () => {});
        await q.start();
        await q.enqueue({ key: 'k', kind: 't', destination: 'd', payload: null });
        await waitFor('done', async () => (await q.counts()).done === 1);
        assert.ok((await clients()) > before);
        await q.close();
        await waitFor('connections closed', async () => (await clients()) <= before, 5_000);
      } finally {
        redis.disconnect();
        await o.cleanup();
      }
    });
  });
}
