/**
 * BIP-340 verification off the main thread: worker threads (schnorr-worker.ts) verify the
 * signatures asked for in one turn of the event loop as one batch, so a relay taking events
 * from many sockets spends its main thread on everything else (a verification is about 0.1 ms,
 * the largest single cost of an incoming Nostr event). Verdicts are the same as
 * schnorrVerify's (the workers run it); where a worker cannot start or dies, the batch is
 * verified here instead, so an answer always comes.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { schnorrVerify } from './schnorr.ts';

const RECORD = 128;
/** Records in one message to a worker: bounds the time one batch holds a worker. */
const MAX_BATCH = 256;

interface Waiting {
  records: Uint8Array;
  answers: ((ok: boolean) => void)[];
}

interface PoolWorker {
  worker: Worker;
  /** Records sent and not answered yet. */
  load: number;
  batches: Map<number, Waiting>;
}

export class SchnorrPool {
  private readonly size: number;
  private readonly workers: PoolWorker[] = [];
  private broken = false;
  private queued: { record: Uint8Array; answer: (ok: boolean) => void }[] = [];
  private flushing = false;
  private nextId = 1;
  /** Signatures the workers verified (the rest, if any, were verified on the calling thread). */
  verifiedOffThread = 0;

  /** `size` workers (default: one fewer than the cores, at least 1, at most 4). */
  constructor(size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    this.size = size;
  }

  /** Whether a 64-byte signature of a 32-byte message verifies for a 32-byte x-only key. */
  verify(sig: Uint8Array, msg: Uint8Array, pubkey: Uint8Array): Promise<boolean> {
    if (sig.length !== 64 || msg.length !== 32 || pubkey.length !== 32) {
      return Promise.resolve(false);
    }
    if (this.broken) return Promise.resolve(schnorrVerify(sig, msg, pubkey));
    const record = new Uint8Array(RECORD);
    record.set(sig, 0);
    record.set(msg, 64);
    record.set(pubkey, 96);
    return new Promise((answer) => {
      this.queued.push({ record, answer });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Stops the workers; later verifications run on the calling thread. */
  async close(): Promise<void> {
    this.broken = true;
    const ws = this.workers.splice(0);
    for (const w of ws) this.fail(w);
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }

  private flush(): void {
    this.flushing = false;
    while (this.queued.length > 0) {
      const part = this.queued.splice(0, MAX_BATCH);
      const records = new Uint8Array(part.length * RECORD);
      for (let i = 0; i < part.length; i++) records.set(part[i]!.record, i * RECORD);
      this.send({ records, answers: part.map((q) => q.answer) });
    }
  }

  private send(batch: Waiting): void {
    const w = this.pick();
    if (!w) {
      verifyHere(batch);
      return;
    }
    const id = this.nextId++;
    w.batches.set(id, batch);
    w.load += batch.answers.length;
    if (w.load === batch.answers.length) w.worker.ref();
    // A copy goes to the worker; the records stay here in case it dies with the batch.
    w.worker.postMessage({ id, records: batch.records });
  }

  /** The least loaded worker, starting one while there are fewer than `size`. */
  private pick(): PoolWorker | null {
    if (this.broken) return null;
    let best: PoolWorker | null = null;
    for (const w of this.workers) if (!best || w.load < best.load) best = w;
    if ((best === null || best.load > 0) && this.workers.length < this.size) {
      const started = this.start();
      if (started) return started;
    }
    return best;
  }

  private start(): PoolWorker | null {
    let worker: Worker;
    try {
      worker = new Worker(new URL('./schnorr-worker.ts', import.meta.url));
    } catch {
      this.broken = true;
      return null;
    }
    worker.unref();
    const w: PoolWorker = { worker, load: 0, batches: new Map() };
    worker.on('message', (m: { id: number; out: Uint8Array }) => {
      const batch = w.batches.get(m.id);
      if (!batch) return;
      w.batches.delete(m.id);
      w.load -= batch.answers.length;
      this.verifiedOffThread += batch.answers.length;
      if (w.load === 0) worker.unref();
      for (let i = 0; i < batch.answers.length; i++) batch.answers[i]!(m.out[i] === 1);
    });
    const gone = () => {
      const i = this.workers.indexOf(w);
      if (i >= 0) this.workers.splice(i, 1);
      this.fail(w);
    };
    worker.on('error', () => {
      // A worker that cannot load (no native addon in workers here): verify on this thread.
      this.broken = true;
      gone();
    });
    worker.on('exit', gone);
    this.workers.push(w);
    return w;
  }

  /** Answers a dead worker's batches here. */
  private fail(w: PoolWorker): void {
    for (const batch of w.batches.values()) verifyHere(batch);
    w.batches.clear();
    w.load = 0;
  }
}

function verifyHere(batch: Waiting): void {
  batch.answers.forEach((answer, i) => {
    const r = batch.records.subarray(i * RECORD, (i + 1) * RECORD);
    answer(schnorrVerify(r.subarray(0, 64), r.subarray(64, 96), r.subarray(96, 128)));
  });
}
