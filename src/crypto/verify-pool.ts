/**
 * ECDSA verification spread over worker threads: a node catching up on a group checks tens of
 * thousands of trx signatures while its main thread decodes, decrypts and commits blocks, so the
 * checks run on the other cores. Each check is a real libsecp256k1 (or noble) verification, the
 * same function the main thread uses (./sign.ts); a worker only answers valid or not.
 *
 * A job is packed into one transferred buffer, 129 bytes a signature: the 33-byte compressed
 * key, the 32-byte digest and the 64-byte R ‖ S (the recovery byte is not needed to verify).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SIGNATURE_BYTES, verifyDigest } from './sign.ts';

export interface VerifyItem {
  pub: Uint8Array;
  digest: Uint8Array;
  sig: Uint8Array;
}

const ITEM = 33 + 32 + 64;
/** Below this many signatures a job is checked on the calling thread: a round trip costs more. */
const MIN_PARALLEL = 64;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
const loaded = import(pathToFileURL(workerData.sign).href);
parentPort.on('message', async ({ id, buf }) => {
  const { verifyDigest } = await loaded;
  const bytes = new Uint8Array(buf);
  const n = bytes.length / ${ITEM};
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * ${ITEM};
    const ok = verifyDigest(
      bytes.subarray(o, o + 33),
      bytes.subarray(o + 33, o + 65),
      bytes.subarray(o + 65, o + ${ITEM}),
    );
    out[i] = ok ? 1 : 0;
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

function pack(items: VerifyItem[]): ArrayBuffer {
  const bytes = new Uint8Array(items.length * ITEM);
  items.forEach((it, i) => {
    const o = i * ITEM;
    bytes.set(it.pub, o);
    bytes.set(it.digest, o + 33);
    bytes.set(it.sig.subarray(0, 64), o + 65);
  });
  return bytes.buffer;
}

/** Whether an item can be packed (a worker checks only well-formed ones). */
function packable(it: VerifyItem): boolean {
  return (
    it.pub.length === 33 &&
    it.digest.length === 32 &&
    (it.sig.length === SIGNATURE_BYTES || it.sig.length === 64)
  );
}

export class VerifyPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, (out: Uint8Array) => void>();
  private nextId = 0;
  private closed = false;

  /** `size` workers (default: one fewer than the cores, at least one). */
  constructor(size = Math.max(1, availableParallelism() - 1)) {
    const sign = new URL('./sign.ts', import.meta.url).pathname;
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sign } });
      w.on('message', (m: { id: number; out: Uint8Array }) => {
        const done = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        // An idle pool does not keep the process alive; a pending job does.
        if (this.waiting.size === 0) for (const x of this.workers) x.unref();
        done?.(m.out);
      });
      w.on('error', (err) => this.fail(err));
      w.unref();
      this.workers.push(w);
    }
  }

  /** For each item, whether its signature verifies. */
  async verify(items: VerifyItem[]): Promise<boolean[]> {
    if (this.closed || items.length < MIN_PARALLEL || !items.every(packable)) {
      return items.map((it) => verifyDigest(it.pub, it.digest, it.sig));
    }
    const per = Math.ceil(items.length / this.workers.length);
    const parts: Promise<Uint8Array>[] = [];
    for (let w = 0; w * per < items.length; w++) {
      const slice = items.slice(w * per, (w + 1) * per);
      parts.push(this.run(this.workers[w]!, slice));
    }
    const outs = await Promise.all(parts);
    const res: boolean[] = [];
    for (const out of outs) for (const v of out) res.push(v === 1);
    // A failed worker answered nothing for its part: check those here.
    if (res.length !== items.length)
      return items.map((it) => verifyDigest(it.pub, it.digest, it.sig));
    return res;
  }

  private run(worker: Worker, items: VerifyItem[]): Promise<Uint8Array> {
    const id = this.nextId++;
    const buf = pack(items);
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      worker.ref();
      worker.postMessage({ id, buf }, [buf]);
    });
  }

  /** A worker died (it should not): its pending jobs answer "not verified", and later jobs run here. */
  private fail(err: Error): void {
    this.onError?.(err);
    this.closed = true;
    for (const done of this.waiting.values()) done(new Uint8Array(0));
    this.waiting.clear();
  }

  /** Told when a worker fails. */
  onError?: (err: Error) => void;

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const done of this.waiting.values()) done(new Uint8Array(0));
    this.waiting.clear();
  }
}
