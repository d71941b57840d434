/**
 * Delivery queue throughput: signed HTTP POSTs (X-Rum-Signature, HMAC-SHA256 over the body),
 * acknowledged by 10 loopback receivers (one process of their own, each receiver one
 * destination, checking every signature and counting distinct idempotency keys).
 *
 * - `queue.deliver-bullmq`: BullQueue with 2 worker processes (`rum worker`'s defaults:
 *   concurrency 64, 8 per destination), jobs added beforehand to a paused queue, timed from
 *   resume to the last distinct key received. Target ≥ 5,000/s.
 * - `queue.deliver-embedded`: the EmbeddedQueue of a node, in its own process over its own
 *   SQLite file, timed from start to the last key received. Target ≥ 3,000/s.
 * - Baseline, same run, same Redis: BullMQ's own rate for no-op jobs, 2 worker processes of
 *   concurrency 64 (plain Queue and Worker, no idempotency, fairness, limits or HTTP). The
 *   bullmq line also gives BullQueue's rate for the same jobs with a no-op handler.
 *
 * Redis is a redis-server of the benchmark's own (AOF, fsync every second, as deployed) when
 * /usr/bin/redis-server exists, else REDIS_URL. BENCH_QUEUE_JOBS sets the job count (20,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { BullQueue } from '../src/queue/bullmq.ts';
import { DEFAULT_QUEUE_OPTIONS } from '../src/queue/types.ts';
import { type ReceiverProcess, startReceiverProcess } from '../test/helpers/bullmq-receiver.ts';
import { dropKeys } from '../test/helpers/bullmq-redis.ts';
import { fillJobs, startWorkerProcess, type WorkerProcess } from '../test/helpers/bullmq-worker.ts';
import { benchRedis, report } from './lib.ts';

const N = Number(process.env.BENCH_QUEUE_JOBS ?? 20_000);
const WORKERS = 2;
const RECEIVERS = 10;
const SECRET = 'bench-secret';
const PREFIX = `rumbench-${process.pid}`;
const TIMEOUT_MS = 600_000;

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(what: string, check: () => Promise<boolean>) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

async function stopAll(workers: WorkerProcess[]) {
  await Promise.all(workers.map((w) => w.stop()));
}

/** BullMQ alone: no-op jobs, 2 worker processes. Jobs per second. */
async function bullmqNoop(redisUrl: string): Promise<number> {
  const name = 'noop';
  const queue = new Queue(name, {
    connection: { url: redisUrl, maxRetriesPerRequest: null },
    prefix: PREFIX,
  });
  const workers: WorkerProcess[] = [];
  try {
    await queue.pause();
    const age = Math.ceil(DEFAULT_QUEUE_OPTIONS.doneRetentionMs / 1000);
    for (let i = 0; i < N; i += 1000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({
          name: 'noop',
          data: { n: i + j },
          opts: { jobId: `noop-${i + j}`, removeOnComplete: { age } },
        })),
      );
    }
    for (let i = 0; i < WORKERS; i++) {
      workers.push(
        await startWorkerProcess({
          backend: 'bullmq-raw',
          redisUrl,
          name,
          prefix: PREFIX,
          options: { concurrency: DEFAULT_QUEUE_OPTIONS.concurrency },
        }),
      );
    }
    const t0 = performance.now();
    await queue.resume();
    await until(
      'no-op jobs',
      async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= N,
    );
    return (N * 1000) / (performance.now() - t0);
  } finally {
    await stopAll(workers);
    await queue.close();
  }
}

/**
 * BullQueue, 2 worker processes: http deliveries, or (kind `noop`) the same jobs run by a no-op
 * handler, which shows what the queue itself costs. Jobs per second.
 */
async function bullmqRun(
  redisUrl: string,
  receivers: ReceiverProcess,
  kind: 'http' | 'noop',
): Promise<number> {
  const name = `deliver-${kind}`;
  const producer = new BullQueue(redisUrl, name, {}, { prefix: PREFIX });
  const workers: WorkerProcess[] = [];
  try {
    await producer.pause();
    const fill = { count: N, urls: receivers.urls, secret: SECRET, keyPrefix: `bull-${kind}-` };
    let batch: Promise<unknown>[] = [];
    for (const input of fillJobs(fill)) {
      batch.push(producer.enqueue({ ...input, kind }));
      if (batch.length >= 1000) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    for (let i = 0; i < WORKERS; i++) {
      workers.push(await startWorkerProcess({ redisUrl, name, prefix: PREFIX }));
    }
    const before = (await receivers.stats()).distinct;
    const t0 = performance.now();
    await producer.resume();
    if (kind === 'http') {
      await until('deliveries', async () => (await receivers.stats()).distinct >= before + N);
    } else {
      await until('no-op jobs', async () => (await producer.counts()).done >= N);
    }
    const rate = (N * 1000) / (performance.now() - t0);
    const c = await producer.counts();
    if (c.failed > 0) throw new Error(`${c.failed} jobs failed`);
    return rate;
  } finally {
    await stopAll(workers);
    await producer.close();
  }
}

/** EmbeddedQueue in a process of its own (as in a node), http deliveries. Deliveries per second. */
async function embeddedDeliver(receivers: ReceiverProcess): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'rum-bench-queue-'));
  let worker: WorkerProcess | undefined;
  try {
    worker = await startWorkerProcess(
      {
        backend: 'embedded',
        dbFile: join(dir, 'node.db'),
        fill: { count: N, urls: receivers.urls, secret: SECRET, keyPrefix: 'embedded-' },
        autostart: false,
      },
      TIMEOUT_MS,
    );
    const before = (await receivers.stats()).distinct;
    const t0 = performance.now();
    worker.start();
    await until('deliveries', async () => (await receivers.stats()).distinct >= before + N);
    return (N * 1000) / (performance.now() - t0);
  } finally {
    await worker?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const redis = await benchRedis();
  const redisUrl = redis.url;
  const receivers = await startReceiverProcess({ count: RECEIVERS, secret: SECRET });
  try {
    const baseline = await bullmqNoop(redisUrl);
    const context = {
      jobs: N,
      receivers: RECEIVERS,
      redis: redis.label,
    };
    const queueNoop = await bullmqRun(redisUrl, receivers, 'noop');
    const bull = await bullmqRun(redisUrl, receivers, 'http');
    report({
      name: 'queue.deliver-bullmq',
      value: bull,
      unit: 'deliveries/s',
      baseline,
      target: 5000,
      workers: WORKERS,
      // The same jobs through BullQueue with a no-op handler: the queue's own cost.
      bullqueue_noop_per_s: Math.round(queueNoop),
      ...context,
    });
    const embedded = await embeddedDeliver(receivers);
    report({
      name: 'queue.deliver-embedded',
      value: embedded,
      unit: 'deliveries/s',
      baseline,
      target: 3000,
      workers: 1,
      ...context,
    });
    const s = await receivers.stats();
    if (s.bad > 0) throw new Error(`${s.bad} deliveries without a valid signature`);
  } finally {
    await receivers.stop();
    if (redis.pid === undefined) await dropKeys(`${PREFIX}:*`, redisUrl);
    await redis.stop();
  }
}

await main();
