/**
 * The delivery queue's contract (src/queue/types.ts) as tests, for every backend: a backend's
 * test file calls `queueConformance('embedded', makeQueue)`. Nothing here knows how a backend
 * stores its jobs; waits are bounded polls, and no test asserts how fast anything is, only what
 * may not happen early (a delay, a backoff, a Retry-After).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type DeliveryHandler,
  type DeliveryJob,
  type DeliveryQueue,
  PermanentDeliveryError,
  type QueueOptions,
  RetryAfterError,
} from '../../src/queue/types.ts';

export interface QueueHarness {
  queue: DeliveryQueue;
  /** Closes nothing; opens the same store again as a new queue (the same jobs). */
  reopen?: () => Promise<DeliveryQueue>;
  /** Closes what the harness opened (queues it made, reopened ones) and removes its store. */
  cleanup: () => Promise<void>;
}

export type MakeQueue = (options: Partial<QueueOptions>) => Promise<QueueHarness>;

/** Options that keep tests short: quick retries, no long waits. */
const QUICK: Partial<QueueOptions> = {
  maxAttempts: 5,
  backoffBaseMs: 20,
  backoffMaxMs: 200,
  concurrency: 16,
  perDestination: 4,
};

/** Clocks of two processes (a Redis server's, a worker's) may disagree by a millisecond or two. */
const CLOCK_SLACK_MS = 5;

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Attempt {
  job: DeliveryJob;
  at: number;
}

/** A handler that records every attempt and does what `behave` says (resolve or throw). */
function recorder(behave: (job: DeliveryJob) => Promise<void> | void = () => {}) {
  const attempts: Attempt[] = [];
  const handler: DeliveryHandler = async (job) => {
    attempts.push({ job, at: Date.now() });
    await behave(job);
  };
  const of = (key: string) => attempts.filter((a) => a.job.key === key);
  return { attempts, handler, of };
}

async function statusOf(queue: DeliveryQueue, id: string) {
  for (const status of ['pending', 'active', 'done', 'failed'] as const) {
    const found = (await queue.list(status, 10_000)).find((j) => j.id === id);
    if (found) return found;
  }
  return undefined;
}

async function waitStatus(queue: DeliveryQueue, id: string, status: string, timeoutMs?: number) {
  await waitFor(
    `job ${id} ${status}`,
    async () => (await statusOf(queue, id))?.status === status,
    timeoutMs,
  );
  return (await statusOf(queue, id))!;
}

export function queueConformance(name: string, make: MakeQueue): void {
  /** Runs `body` with a fresh queue and always cleans up. */
  async function withQueue(
    options: Partial<QueueOptions>,
    body: (h: QueueHarness) => Promise<void>,
  ): Promise<void> {
    const h = await make({ ...QUICK, ...options });
    try {
      await body(h);
    } finally {
      await h.cleanup();
    }
  }

  describe(`delivery queue conformance: ${name}`, () => {
    it('enqueue is idempotent on the key, before and after the job ran', async () => {
      await withQueue({}, async ({ queue }) => {
        const r = recorder();
        queue.handle('t', r.handler);
        const a = await queue.enqueue({
          key: 'k1',
          kind: 't',
          destination: 'd',
          payload: { n: 1 },
        });
        const b = await queue.enqueue({
          key: 'k1',
          kind: 't',
          destination: 'd',
          payload: { n: 2 },
        });
        assert.equal(a.added, true);
        assert.equal(b.added, false);
        assert.equal(b.id, a.id);
        // Keys added in the same tick, one twice.
        const same = await Promise.all([
          queue.enqueue({ key: 'k2', kind: 't', destination: 'd', payload: 2 }),
          queue.enqueue({ key: 'k2', kind: 't', destination: 'd', payload: 3 }),
        ]);
        assert.deepEqual(
          same.map((x) => x.added),
          [true, false],
        );
        assert.equal(same[0].id, same[1].id);
        assert.equal((await queue.counts()).pending, 2);

        await queue.start();
        await waitStatus(queue, a.id, 'done');
        await waitStatus(queue, same[0].id, 'done');
        const again = await queue.enqueue({ key: 'k1', kind: 't', destination: 'd', payload: 4 });
        assert.deepEqual(again, { id: a.id, added: false });
        await sleep(100);
        assert.equal(r.of('k1').length, 1);
        assert.deepEqual(r.of('k1')[0]!.job.payload, { n: 1 }, 'the first payload is kept');
        assert.equal(r.of('k1')[0]!.job.id, a.id);
        assert.equal(r.of('k1')[0]!.job.attempt, 1);
        assert.equal(r.of('k1')[0]!.job.destination, 'd');
        assert.equal(r.of('k1')[0]!.job.kind, 't');
        assert.equal(r.of('k2').length, 1);
      });
    });

    it('hands the handler the payload as it was enqueued', async () => {
      await withQueue({}, async ({ queue }) => {
        const r = recorder();
        queue.handle('t', r.handler);
        const payloads: unknown[] = [
          {
            type: 'Create',
            to: ['https://a.example/u/1'],
            object: { content: 'héllo ✓ 👋', n: 1.5 },
          },
          ['a', 1, null, true],
          'text',
          null,
        ];
        await Promise.all(
          payloads.map((payload, i) =>
            queue.enqueue({ key: `p${i}`, kind: 't', destination: `d${i}`, payload }),
          ),
        );
        await queue.start();
        await waitFor('all four', () => r.attempts.length === 4);
        for (const [i, payload] of payloads.entries())
          assert.deepEqual(r.of(`p${i}`)[0]!.job.payload, payload);
      });
    });

    it('counts and lists jobs by status', async () => {
      await withQueue({}, async ({ queue }) => {
        queue.handle('t', async () => {});
        const before = Date.now();
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          ids.push(
            (await queue.enqueue({ key: `c${i}`, kind: 't', destination: `d${i}`, payload: i })).id,
          );
        }
        assert.deepEqual(await queue.counts(), { pending: 3, active: 0, done: 0, failed: 0 });
        const pending = await queue.list('pending', 2);
        assert.equal(pending.length, 2);
        for (const j of pending) {
          assert.ok(ids.includes(j.id));
          assert.equal(j.status, 'pending');
          assert.equal(j.kind, 't');
          assert.equal(j.attempts, 0);
          assert.equal(j.lastError, null);
          assert.ok(
            j.createdAt >= before - CLOCK_SLACK_MS && j.createdAt <= Date.now() + CLOCK_SLACK_MS,
          );
        }
        assert.deepEqual(await queue.list('done', 10), []);

        await queue.start();
        await waitFor('three done', async () => (await queue.counts()).done === 3);
        assert.deepEqual(await queue.counts(), { pending: 0, active: 0, done: 3, failed: 0 });
        const done = await queue.list('done', 10);
        assert.deepEqual(done.map((j) => j.id).sort(), [...ids].sort());
        for (const j of done) {
          assert.equal(j.status, 'done');
          assert.equal(j.attempts, 1);
          assert.equal(j.key, `c${ids.indexOf(j.id)}`);
          assert.equal(j.destination, `d${ids.indexOf(j.id)}`);
        }
        assert.equal((await queue.list('done', 1)).length, 1);
      });
    });

    it('emits done for each delivered job', async () => {
      await withQueue({}, async ({ queue }) => {
        const seen: string[] = [];
        queue.on('done', (job) => seen.push(job.key));
        queue.handle('t', async () => {});
        await queue.start();
        for (let i = 0; i < 5; i++)
          await queue.enqueue({ key: `e${i}`, kind: 't', destination: 'd', payload: null });
        await waitFor('five done events', () => seen.length === 5);
        assert.deepEqual([...seen].sort(), ['e0', 'e1', 'e2', 'e3', 'e4']);
      });
    });

    it('does not run a job before its delay', async () => {
      await withQueue({}, async ({ queue }) => {
        const r = recorder();
        queue.handle('t', r.handler);
        await queue.start();
        const t0 = Date.now();
        const late = await queue.enqueue({
          key: 'late',
          kind: 't',
          destination: 'd',
          payload: null,
          delayMs: 600,
        });
        await queue.enqueue({ key: 'now', kind: 't', destination: 'd', payload: null });
        await waitFor('the undelayed job', () => r.of('now').length === 1);
        // Unless this machine stalled past the delay, the delayed job is still waiting.
        const info = await statusOf(queue, late.id);
        if (Date.now() - t0 < 500) assert.equal(info?.status, 'pending');
        await waitStatus(queue, late.id, 'done');
        assert.ok(r.of('late')[0]!.at - t0 >= 600 - CLOCK_SLACK_MS, 'ran before its delay');
        assert.ok(r.of('now')[0]!.at < r.of('late')[0]!.at);
      });
    });

    it('retries a failing job with exponential backoff until it succeeds', async () => {
      const options = { backoffBaseMs: 100, backoffMaxMs: 10_000, maxAttempts: 5 };
      await withQueue(options, async ({ queue }) => {
        const failures: Array<[number, number | null]> = [];
        queue.on('attemptFailed', (job, _err, retryInMs) =>
          failures.push([job.attempt, retryInMs]),
        );
        const r = recorder((job) => {
          if (job.attempt < 3) throw new Error(`try ${job.attempt} failed`);
        });
        queue.handle('t', r.handler);
        await queue.start();
        const { id } = await queue.enqueue({
          key: 'r',
          kind: 't',
          destination: 'd',
          payload: null,
        });
        const info = await waitStatus(queue, id, 'done');
        assert.equal(info.attempts, 3);
        const tries = r.of('r');
        assert.deepEqual(
          tries.map((a) => a.job.attempt),
          [1, 2, 3],
        );
        assert.ok(tries.every((a) => a.job.id === id && a.job.key === 'r'));
        // The n-th retry waits at least half of base * 2^(n-1) (the upper half is the jitter).
        assert.ok(tries[1]!.at - tries[0]!.at >= 50 - CLOCK_SLACK_MS, 'first retry too early');
        assert.ok(tries[2]!.at - tries[1]!.at >= 100 - CLOCK_SLACK_MS, 'second retry too early');
        await waitFor('two attemptFailed events', () => failures.length === 2);
        assert.deepEqual(
          failures.map(([attempt]) => attempt),
          [1, 2],
        );
        for (const [attempt, retryInMs] of failures) {
          const cap = 100 * 2 ** (attempt - 1);
          assert.ok(
            retryInMs !== null && retryInMs >= cap / 2 && retryInMs <= cap,
            `retry in ${retryInMs}`,
          );
        }
      });
    });

    it('honours Retry-After instead of the backoff, capped by backoffMaxMs', async () => {
      await withQueue({ backoffBaseMs: 10, backoffMaxMs: 1_500 }, async ({ queue }) => {
        const r = recorder((job) => {
          if (job.attempt > 1) return;
          // 'short' asks for more than its backoff; 'long' asks for more than the cap.
          if (job.key === 'short') throw new RetryAfterError('503', 500);
          throw new RetryAfterError('429', 3_600_000);
        });
        queue.handle('t', r.handler);
        await queue.start();
        const short = await queue.enqueue({
          key: 'short',
          kind: 't',
          destination: 'a',
          payload: null,
        });
        const long = await queue.enqueue({
          key: 'long',
          kind: 't',
          destination: 'b',
          payload: null,
        });
        await waitStatus(queue, short.id, 'done');
        const tries = r.of('short');
        assert.equal(tries.length, 2);
        assert.ok(tries[1]!.at - tries[0]!.at >= 500 - CLOCK_SLACK_MS, 'Retry-After not honoured');
        // An hour's Retry-After is capped at 1.5 s: the job is done well within the wait's bound.
        await waitStatus(queue, long.id, 'done', 10_000);
        assert.ok(r.of('long')[1]!.at - r.of('long')[0]!.at >= 1_500 - CLOCK_SLACK_MS);
      });
    });

    it('sends a permanent failure to the failed list at once', async () => {
      await withQueue({ maxAttempts: 5 }, async ({ queue }) => {
        const failures: Array<[string, string, number | null]> = [];
        queue.on('attemptFailed', (job, err, retryInMs) =>
          failures.push([job.key, err.message, retryInMs]),
        );
        const r = recorder(() => {
          throw new PermanentDeliveryError('410 gone');
        });
        queue.handle('t', r.handler);
        await queue.start();
        const { id } = await queue.enqueue({
          key: 'p',
          kind: 't',
          destination: 'd',
          payload: null,
        });
        const info = await waitStatus(queue, id, 'failed');
        assert.equal(info.attempts, 1);
        assert.match(info.lastError ?? '', /410 gone/);
        await waitFor('the attemptFailed event', () => failures.length === 1);
        assert.deepEqual(failures, [['p', '410 gone', null]]);
        await sleep(150);
        assert.equal(r.of('p').length, 1, 'a permanent failure was retried');
        assert.equal((await queue.counts()).failed, 1);
      });
    });

    it('moves a job to the dead-letter (failed) list after maxAttempts, with its last error', async () => {
      await withQueue(
        { maxAttempts: 3, backoffBaseMs: 10, backoffMaxMs: 40 },
        async ({ queue }) => {
          const r = recorder((job) => {
            throw new Error(`boom ${job.attempt}`);
          });
          queue.handle('t', r.handler);
          await queue.start();
          const { id } = await queue.enqueue({
            key: 'x',
            kind: 't',
            destination: 'd',
            payload: null,
          });
          const info = await waitStatus(queue, id, 'failed');
          assert.equal(info.attempts, 3);
          assert.match(info.lastError ?? '', /boom 3/);
          assert.equal(info.key, 'x');
          await sleep(150);
          assert.deepEqual(
            r.of('x').map((a) => a.job.attempt),
            [1, 2, 3],
          );
          const failed = await queue.list('failed', 10);
          assert.deepEqual(
            failed.map((j) => j.id),
            [id],
          );
          assert.deepEqual(await queue.counts(), { pending: 0, active: 0, done: 0, failed: 1 });
        },
      );
    });

    it('redelivers failed and done jobs as new attempts from 1, and nothing else', async () => {
      await withQueue(
        { maxAttempts: 2, backoffBaseMs: 10, backoffMaxMs: 20 },
        async ({ queue }) => {
          let healthy = false;
          const r = recorder((job) => {
            if (!healthy && job.key === 'f') throw new Error('down');
          });
          queue.handle('t', r.handler);
          await queue.start();
          const f = await queue.enqueue({ key: 'f', kind: 't', destination: 'd', payload: 'F' });
          const ok = await queue.enqueue({ key: 'ok', kind: 't', destination: 'd', payload: 'OK' });
          const later = await queue.enqueue({
            key: 'later',
            kind: 't',
            destination: 'd',
            payload: null,
            delayMs: 60_000,
          });
          await waitStatus(queue, f.id, 'failed');
          await waitStatus(queue, ok.id, 'done');
          assert.equal(r.of('f').length, 2);

          healthy = true;
          // A pending job and an unknown id are not redelivered.
          assert.equal(await queue.redeliver([later.id, '999999999']), 0);
          assert.equal(await queue.redeliver([f.id, ok.id]), 2);
          await waitFor('both run again', () => r.of('f').length === 3 && r.of('ok').length === 2);
          const fInfo = await waitStatus(queue, f.id, 'done');
          const okInfo = await waitStatus(queue, ok.id, 'done');
          assert.equal(fInfo.attempts, 1);
          assert.equal(okInfo.attempts, 1);
          assert.equal(r.of('f')[2]!.job.attempt, 1);
          assert.equal(r.of('f')[2]!.job.key, 'f');
          assert.equal(r.of('f')[2]!.job.payload, 'F');
          assert.equal(r.of('ok')[1]!.job.attempt, 1);
          assert.equal((await statusOf(queue, later.id))?.status, 'pending');
          assert.equal(r.of('later').length, 0);
        },
      );
    });

    it('never runs more than perDestination jobs of one destination at once', async () => {
      await withQueue({ concurrency: 12, perDestination: 3 }, async ({ queue }) => {
        const now = new Map<string, number>();
        const most = new Map<string, number>();
        let total = 0;
        let mostTotal = 0;
        queue.handle('t', async (job) => {
          const n = (now.get(job.destination) ?? 0) + 1;
          now.set(job.destination, n);
          most.set(job.destination, Math.max(most.get(job.destination) ?? 0, n));
          mostTotal = Math.max(mostTotal, ++total);
          await sleep(5 + Math.random() * 15);
          now.set(job.destination, now.get(job.destination)! - 1);
          total--;
        });
        const jobs = [];
        for (const d of ['a', 'b', 'c', 'd', 'e'])
          for (let i = 0; i < 30; i++)
            jobs.push(queue.enqueue({ key: `${d}${i}`, kind: 't', destination: d, payload: null }));
        await Promise.all(jobs);
        await queue.start();
        await waitFor('150 done', async () => (await queue.counts()).done === 150, 30_000);
        for (const [d, m] of most) assert.ok(m <= 3, `${d} ran ${m} at once`);
        assert.ok(mostTotal <= 12, `${mostTotal} ran at once`);
        assert.equal(most.size, 5);
      });
    });

    it("does not let a slow destination's backlog hold up another destination", async () => {
      // The slow destination alone could fill every slot: only fair turns let the others in.
      await withQueue({ concurrency: 2, perDestination: 2 }, async ({ queue }) => {
        let slowDone = 0;
        let slowDoneWhenFastRan = -1;
        queue.handle('t', async (job) => {
          if (job.destination === 'slow') {
            await sleep(30);
            slowDone++;
          } else slowDoneWhenFastRan = slowDone;
        });
        const slow = [];
        for (let i = 0; i < 300; i++)
          slow.push(queue.enqueue({ key: `s${i}`, kind: 't', destination: 'slow', payload: i }));
        await Promise.all(slow);
        await queue.start();
        await waitFor('the slow destination under way', () => slowDone >= 2);
        await queue.enqueue({ key: 'fast', kind: 't', destination: 'fast', payload: null });
        await waitFor('the other destination', () => slowDoneWhenFastRan >= 0, 30_000);
        assert.ok(
          slowDoneWhenFastRan < 30,
          `the other destination waited for ${slowDoneWhenFastRan} slow jobs`,
        );
      });
    });

    it('runs other destinations next to a backlog of 10,000 jobs of one destination', async () => {
      await withQueue({ concurrency: 4, perDestination: 4 }, async ({ queue }) => {
        let slowDone = 0;
        const slowDoneWhenOthersRan: number[] = [];
        queue.handle('t', async (job) => {
          if (job.destination === 'slow') {
            await sleep(20);
            slowDone++;
          } else slowDoneWhenOthersRan.push(slowDone);
        });
        const adds = [];
        for (let i = 0; i < 10_000; i++)
          adds.push(queue.enqueue({ key: `s${i}`, kind: 't', destination: 'slow', payload: i }));
        await Promise.all(adds);
        await queue.start();
        await waitFor('the backlog under way', () => slowDone >= 4);
        const others = [];
        for (let i = 0; i < 10; i++)
          others.push(queue.enqueue({ key: `o${i}`, kind: 't', destination: `o${i}`, payload: i }));
        await Promise.all(others);
        await waitFor('the other destinations', () => slowDoneWhenOthersRan.length === 10, 30_000);
        assert.ok(
          Math.max(...slowDoneWhenOthersRan) < 40,
          `others waited: ${slowDoneWhenOthersRan}`,
        );
      });
    });

    it('takes no job while paused and resumes', async () => {
      await withQueue({}, async ({ queue }) => {
        const r = recorder();
        queue.handle('t', r.handler);
        await queue.start();
        await queue.enqueue({ key: 'before', kind: 't', destination: 'd', payload: null });
        await waitFor('the first job', () => r.attempts.length === 1);
        await queue.pause();
        for (let i = 0; i < 5; i++)
          await queue.enqueue({ key: `p${i}`, kind: 't', destination: 'd', payload: null });
        await sleep(300);
        assert.equal(r.attempts.length, 1, 'a job ran while paused');
        assert.equal((await queue.counts()).pending, 5);
        await queue.resume();
        await waitFor('all after resume', () => r.attempts.length === 6);
        await waitFor('all done', async () => (await queue.counts()).done === 6);
      });
    });

    it('loses no job under random failures: each key delivered exactly once', async () => {
      const options = { maxAttempts: 1000, backoffBaseMs: 5, backoffMaxMs: 40, concurrency: 32 };
      await withQueue(options, async ({ queue }) => {
        const delivered = new Map<string, number>();
        const keyOfId = new Map<string, string>();
        queue.handle('t', async (job) => {
          if (keyOfId.has(job.id)) assert.equal(keyOfId.get(job.id), job.key);
          keyOfId.set(job.id, job.key);
          const roll = Math.random();
          if (roll < 0.25) throw new Error('flaky');
          if (roll < 0.3) throw new RetryAfterError('busy', 10);
          if (roll < 0.4) await sleep(Math.random() * 10);
          delivered.set(job.key, (delivered.get(job.key) ?? 0) + 1);
        });
        await queue.start();
        const N = 600;
        const adds = [];
        for (let i = 0; i < N; i++) {
          const input = { key: `n${i}`, kind: 't', destination: `h${i % 7}`, payload: { i } };
          adds.push(queue.enqueue(input));
          // Every tenth key is added twice.
          if (i % 10 === 0) adds.push(queue.enqueue(input));
        }
        const results = await Promise.all(adds);
        assert.equal(results.filter((r) => r.added).length, N);
        await waitFor('every job done', async () => (await queue.counts()).done === N, 60_000);
        assert.equal(delivered.size, N);
        for (const [key, n] of delivered) assert.equal(n, 1, `${key} delivered ${n} times`);
        assert.deepEqual(await queue.counts(), { pending: 0, active: 0, done: N, failed: 0 });
      });
    });

    it('keeps jobs across a reopen, and close() waits for running attempts', async (t) => {
      const h = await make({ ...QUICK });
      if (!h.reopen) {
        await h.cleanup();
        t.skip('the backend cannot reopen its store');
        return;
      }
      try {
        const first = h.queue;
        let release!: () => void;
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        let finished = 0;
        first.handle('t', async (job) => {
          if (job.key === 'held') await released;
          finished++;
        });
        const held = await first.enqueue({ key: 'held', kind: 't', destination: 'd', payload: 1 });
        const waiting = await first.enqueue({
          key: 'waiting',
          kind: 't',
          destination: 'd',
          payload: 2,
          delayMs: 400,
        });
        await first.start();
        await waitStatus(first, held.id, 'active');
        let closed = false;
        const closing = first.close().then(() => {
          closed = true;
        });
        await sleep(100);
        assert.equal(closed, false, 'close() returned while an attempt ran');
        release();
        await closing;
        assert.equal(finished, 1);

        const second = await h.reopen();
        const r = recorder();
        second.handle('t', r.handler);
        assert.equal((await statusOf(second, held.id))?.status, 'done');
        assert.equal((await statusOf(second, waiting.id))?.status, 'pending');
        await second.start();
        await waitStatus(second, waiting.id, 'done');
        assert.deepEqual(
          r.attempts.map((a) => a.job.key),
          ['waiting'],
        );
        const dup = await second.enqueue({ key: 'held', kind: 't', destination: 'd', payload: 3 });
        assert.deepEqual(dup, { id: held.id, added: false });
      } finally {
        await h.cleanup();
      }
    });
  });
}
