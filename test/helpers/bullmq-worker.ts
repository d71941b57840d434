/**
 * A delivery worker process for tests and benchmarks. Backends:
 * - `bullmq` (default): a BullQueue (src/queue/bullmq.ts) on the given Redis with the `http`
 *   handler, a `noop` handler and a `hang` handler (never returns, for kill tests);
 * - `bullmq-raw`: BullMQ's own Worker with a no-op processor (a benchmark's baseline);
 * - `embedded`: an EmbeddedQueue over a SQLite file, with the same handlers.
 *
 * Started as `node test/helpers/bullmq-worker.ts '<json WorkerSpec>'`. It may first add `fill`
 * jobs of kind `http` itself; prints `{"ready":true}` once started (or, with autostart false,
 * once it waits for a `start` line on stdin); answers a `stats` line with `{"done":N}`; closes
 * on SIGTERM or when stdin ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BullQueue, type BullQueueTuning } from '../../src/queue/bullmq.ts';
import { httpDeliveryHandler } from '../../src/queue/http-delivery.ts';
import type { DeliveryQueue, QueueOptions } from '../../src/queue/types.ts';

export interface FillSpec {
  /** Jobs to add, of kind `http`, keys `<keyPrefix><n>`, spread over `urls` (one destination each). */
  count: number;
  urls: string[];
  keyPrefix?: string;
  /** Signs every body with this secret. */
  secret?: string;
  /** Size of each body (default 200 bytes). */
  bodyBytes?: number;
}

export interface WorkerSpec {
  backend?: 'bullmq' | 'bullmq-raw' | 'embedded';
  redisUrl?: string;
  name?: string;
  prefix?: string;
  /** SQLite file of the embedded backend. */
  dbFile?: string;
  options?: Partial<QueueOptions>;
  tuning?: Partial<Omit<BullQueueTuning, 'onError' | 'prefix'>>;
  /** The http handler's timeout (default 15 s). */
  timeoutMs?: number;
  /** Add these jobs before reporting ready. */
  fill?: FillSpec;
  /** Start taking jobs at once (default), or on a `start` line. */
  autostart?: boolean;
}

export const WORKER_SCRIPT = fileURLToPath(import.meta.url);

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** Tells a worker started with autostart false to start. */
  start(): void;
  /** SIGTERM (or `signal`) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a worker process and waits until it is ready (bounded by timeoutMs). */
export async function startWorkerProcess(
  spec: WorkerSpec,
  timeoutMs = 60_000,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [WORKER_SCRIPT, JSON.stringify(spec)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker not ready within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.includes('"ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}) before ready: ${err}`));
    });
  });
  return {
    child,
    stderr: () => err,
    start: () => child.stdin!.write('start\n'),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The jobs of a FillSpec, as EnqueueInputs. */
export function* fillJobs(fill: FillSpec) {
  const pad = 'x'.repeat(Math.max(0, (fill.bodyBytes ?? 200) - 40));
  for (let i = 0; i < fill.count; i++) {
    const url = `${fill.urls[i % fill.urls.length]}/inbox`;
    yield {
      key: `${fill.keyPrefix ?? 'job-'}${i}`,
      kind: 'http',
      destination: new URL(url).host,
      payload: {
        url,
        body: JSON.stringify({ n: i, pad }),
        ...(fill.secret !== undefined ? { hmacSecret: fill.secret } : {}),
      },
    };
  }
}

async function fillQueue(queue: DeliveryQueue, fill: FillSpec) {
  let batch: Promise<unknown>[] = [];
  for (const input of fillJobs(fill)) {
    batch.push(queue.enqueue(input));
    if (batch.length >= 1000) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
}

const QUIET = /ECONNREFUSED|ECONNRESET|Connection is closed|EPIPE/;

async function openQueue(spec: WorkerSpec): Promise<{
  start(): Promise<void>;
  close(): Promise<void>;
  done(): number;
}> {
  if (spec.backend === 'bullmq-raw') {
    const { Worker } = await import('bullmq');
    let done = 0;
    let close = async () => {};
    return {
      async start() {
        const worker = new Worker(spec.name!, async () => {}, {
          connection: { url: spec.redisUrl!, maxRetriesPerRequest: null },
          prefix: spec.prefix!,
          concurrency: spec.options?.concurrency ?? 64,
        });
        close = () => worker.close();
        worker.on('completed', () => {
          done++;
        });
        worker.on('error', (e) => {
          if (!QUIET.test(e.message)) process.stderr.write(`worker: ${e.message}\n`);
        });
        await worker.waitUntilReady();
      },
      close: () => close(),
      done: () => done,
    };
  }
  let queue: DeliveryQueue;
  let closeDb = () => {};
  if (spec.backend === 'embedded') {
    const { EmbeddedQueue } = await import('../../src/queue/embedded.ts');
    const { openDatabase } = await import('../../src/storage/db.ts');
    const db = openDatabase(spec.dbFile!);
    queue = new EmbeddedQueue(db, spec.options ?? {});
    closeDb = () => db.$client.close();
  } else {
    queue = new BullQueue(spec.redisUrl!, spec.name!, spec.options ?? {}, {
      ...spec.tuning,
      prefix: spec.prefix!,
      onError: (e, where) => {
        if (!QUIET.test(e.message)) process.stderr.write(`${where}: ${e.message}\n`);
      },
    });
  }
  queue.handle('http', httpDeliveryHandler({ timeoutMs: spec.timeoutMs ?? 15_000 }));
  queue.handle('noop', async () => {});
  queue.handle('hang', () => new Promise<void>(() => {}));
  let done = 0;
  queue.on('done', () => {
    done++;
  });
  if (spec.fill) await fillQueue(queue, spec.fill);
  return {
    start: () => queue.start(),
    async close() {
      await queue.close();
      closeDb();
    },
    done: () => done,
  };
}

async function main() {
  const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec;
  const q = await openQueue(spec);
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    q.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      const cmd = line.trim();
      if (cmd === 'stats') process.stdout.write(`${JSON.stringify({ done: q.done() })}\n`);
      if (cmd === 'start') void q.start();
    })
    .on('close', close);
  if (spec.autostart !== false) await q.start();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

if (import.meta.main) await main();
