/**
 * A worker thread of SchnorrPool (schnorr-pool.ts): verifies batches of BIP-340 signatures.
 * A batch is one buffer of 128-byte records (signature 64, message 32, x-only key 32); the
 * answer is one byte per record, 1 when the signature verifies.
 */
import { parentPort } from 'node:worker_threads';
import { schnorrVerify } from './schnorr.ts';

const port = parentPort;
if (!port) throw new Error('schnorr-worker.ts runs as a worker thread');

port.on('message', (m: { id: number; records: Uint8Array }) => {
  const n = Math.floor(m.records.length / 128);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = m.records.subarray(i * 128, i * 128 + 128);
    out[i] = schnorrVerify(r.subarray(0, 64), r.subarray(64, 96), r.subarray(96, 128)) ? 1 : 0;
  }
  port.postMessage({ id: m.id, out }, [out.buffer]);
});
