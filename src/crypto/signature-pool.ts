/**
 * secp256k1 work spread over worker threads, so that the node's main thread keeps to what only
 * it can do (decoding, HTTP, SQLite):
 * - verify: a node catching up on a group checks tens of thousands of trx signatures while its
 *   main thread commits the blocks before them;
 * - sign: a node that many clients post to at once signs their trxs in batches off the main
 *   thread (BatchSigner below).
 * Each operation is the very function the main thread would use (./sign.ts: libsecp256k1, or
 * noble where the addon does not load); a worker only does the arithmetic.
 *
 * A job is one transferred buffer of fixed-size items:
 *   verify  129 bytes: 33-byte compressed key ‖ 32-byte digest ‖ 64-byte R ‖ S → 1 byte, 1 = valid
 *   sign     64 bytes: 32-byte digest ‖ 32-byte private key → 65-byte R ‖ S ‖ V
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SIGNATURE_BYTES, signDigest, verifyDigest } from './sign.ts';

export interface VerifyItem {
  pub: Uint8Array;
  digest: Uint8Array;
  sig: Uint8Array;
}

export interface SignItem {
  digest: Uint8Array;
  priv: Uint8Array;
}

const VERIFY_ITEM = 33 + 32 + 64;
const SIGN_ITEM = 32 + 32;
/** Below this many signatures a job is done on the calling thread: a round trip costs more. */
export const MIN_VERIFY = 64;
const MIN_SIGN = 8;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
const loaded = import(pathToFileURL(workerData.sign).href);
parentPort.on('message', async ({ id, op, buf }) => {
  const { verifyDigest, signDigest } = await loaded;
  const bytes = new Uint8Array(buf);
  let out;
  if (op === 'verify') {
    const n = bytes.length / ${VERIFY_ITEM};
    out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * ${VERIFY_ITEM};
      const ok = verifyDigest(
        bytes.subarray(o, o + 33),
        bytes.subarray(o + 33, o + 65),
        bytes.subarray(o + 65, o + ${VERIFY_ITEM}),
      );
      out[i] = ok ? 1 : 0;
    }
  } else {
    const n = bytes.length / ${SIGN_ITEM};
    out = new Uint8Array(n * ${SIGNATURE_BYTES});
    for (let i = 0; i < n; i++) {
      const o = i * ${SIGN_ITEM};
      out.set(signDigest(bytes.subarray(o, o + 32), bytes.subarray(o + 32, o + 64)), i * ${SIGNATURE_BYTES});
    }
    bytes.fill(0);
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

function packVerify(items: VerifyItem[]): ArrayBuffer {
  const bytes = new Uint8Array(items.length * VERIFY_ITEM);
  items.forEach((it, i) => {
    const o = i * VERIFY_ITEM;
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

export class SignaturePool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, (out: Uint8Array | null) => void>();
  private nextId = 0;
  private next = 0;
  private closed = false;
  /** Told when a worker fails. */
  onError?: (err: Error) => void;

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
    const here = () => items.map((it) => verifyDigest(it.pub, it.digest, it.sig));
    if (this.closed || items.length < MIN_VERIFY || !items.every(packable)) return here();
    const per = Math.ceil(items.length / this.workers.length);
    const parts: Promise<Uint8Array | null>[] = [];
    for (let w = 0; w * per < items.length; w++) {
      const slice = items.slice(w * per, (w + 1) * per);
      parts.push(this.run(this.workers[w]!, 'verify', packVerify(slice)));
    }
    const outs = await Promise.all(parts);
    // A failed worker answered nothing for its part: then everything is checked here.
    if (outs.some((o) => o === null)) return here();
    const res: boolean[] = [];
    for (const out of outs) for (const v of out!) res.push(v === 1);
    return res;
  }

  /** Signs each digest with its key: the same deterministic signatures as signDigest. */
  async sign(items: SignItem[]): Promise<Uint8Array[]> {
    const here = () => items.map((it) => signDigest(it.digest, it.priv));
    if (this.closed || items.length < MIN_SIGN) return here();
    const bytes = new Uint8Array(items.length * SIGN_ITEM);
    items.forEach((it, i) => {
      if (it.digest.length !== 32 || it.priv.length !== 32)
        throw new TypeError('digest and key must be 32 bytes');
      bytes.set(it.digest, i * SIGN_ITEM);
      bytes.set(it.priv, i * SIGN_ITEM + 32);
    });
    const worker = this.workers[this.next++ % this.workers.length]!;
    const out = await this.run(worker, 'sign', bytes.buffer);
    if (!out) return here();
    return items.map((_, i) => out.slice(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES));
  }

  private run(worker: Worker, op: 'verify' | 'sign', buf: ArrayBuffer): Promise<Uint8Array | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      worker.ref();
      worker.postMessage({ id, op, buf }, [buf]);
    });
  }

  /** A worker died (it should not): its pending jobs are redone here, and later jobs too. */
  private fail(err: Error): void {
    this.onError?.(err);
    this.closed = true;
    for (const done of this.waiting.values()) done(null);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const done of this.waiting.values()) done(null);
    this.waiting.clear();
  }
}

/**
 * Signs the digests asked for in one turn of the event loop together: a handful on the calling
 * thread, more in one job on the pool's workers (created on first need).
 */
export class BatchSigner {
  private queue: {
    item: SignItem;
    resolve: (sig: Uint8Array) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private readonly pool: () => SignaturePool;

  constructor(pool: () => SignaturePool) {
    this.pool = pool;
  }

  sign(digest: Uint8Array, priv: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (this.queue.push({ item: { digest, priv }, resolve, reject }) === 1) {
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    const items = queue.map((q) => q.item);
    const signed =
      items.length < MIN_SIGN
        ? Promise.resolve(items.map((it) => signDigest(it.digest, it.priv)))
        : this.pool().sign(items);
    signed.then(
      (sigs) => {
        queue.forEach((q, i) => {
          q.resolve(sigs[i]!);
        });
      },
      (err) => {
        for (const q of queue) q.reject(err);
      },
    );
  }
}
