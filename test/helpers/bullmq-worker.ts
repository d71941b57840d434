/**
 * A delivery worker process for tests and benchmarks: a BullQueue (src/queue/bullmq.ts) on the
 * given Redis with the `http` handler, a `noop` handler and a `hang` handler (never returns, for
 * kill tests). Started as `node test/helpers/bullmq-worker.ts '<json WorkerSpec>'`; prints
 * `{"ready":true}` once it takes jobs, `{"done":N}` lines with its done count when asked
 * (`stats` on stdin), and closes the queue on SIGTERM or when stdin ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BullQueue, type BullQueueTuning } from '../../src/queue/bullmq.ts';
import { httpDeliveryHandler } from '../../src/queue/http-delivery.ts';
import type { QueueOptions } from '../../src/queue/types.ts';

export interface WorkerSpec {
  redisUrl: string;
  name: string;
  prefix: string;
  options?: Partial<QueueOptions>;
  tuning?: Partial<Omit<BullQueueTuning, 'onError' | 'prefix'>>;
  /** The http handler's timeout (default 15 s). */
  timeoutMs?: number;
}

export const WORKER_SCRIPT = fileURLToPath(import.meta.url);

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM (or `signal`) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a worker process and waits until it takes jobs (bounded by timeoutMs). */
export async function startWorkerProcess(
  spec: WorkerSpec,
  timeoutMs = 20_000,
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
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

async function main() {
  const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec;
  const queue = new BullQueue(spec.redisUrl, spec.name, spec.options ?? {}, {
    ...spec.tuning,
    prefix: spec.prefix,
    onError: (e, where) => {
      if (!/ECONNREFUSED|ECONNRESET|Connection is closed|EPIPE/.test(e.message)) {
        process.stderr.write(`${where}: ${e.message}\n`);
      }
    },
  });
  queue.handle('http', httpDeliveryHandler({ timeoutMs: spec.timeoutMs ?? 15_000 }));
  queue.handle('noop', async () => {});
  queue.handle('hang', () => new Promise<void>(() => {}));
  let done = 0;
  queue.on('done', () => {
    done++;
  });
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    queue.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      if (line.trim() === 'stats') process.stdout.write(`${JSON.stringify({ done })}\n`);
    })
    .on('close', close);
  await queue.start();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

if (import.meta.main) await main();
