/**
 * quorum's signature scheme: sha256 over the signed bytes, a deterministic (RFC 6979) low-S
 * secp256k1 ECDSA signature laid out as go-ethereum's crypto.Sign: R ‖ S ‖ V, V ∈ {0, 1}.
 *
 * bench/crypto.ts measures the candidates on this machine: libsecp256k1 (the `secp256k1`
 * package's prebuilt N-API addon) signs and verifies about ten times faster than noble (pure JS)
 * and than OpenSSL through node:crypto, so it is used when it loads; noble is the fallback on
 * platforms without a prebuilt addon. Both are deterministic, so signatures are identical.
 */
import { createRequire } from 'node:module';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { createHash } from 'node:crypto';

export const SIGNATURE_BYTES = 65;
const HALF_ORDER = secp256k1.Point.CURVE().n >> 1n;

export interface NativeSecp256k1 {
  ecdsaSign(msg32: Uint8Array, priv: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, pub: Uint8Array): boolean;
  signatureExport(sig: Uint8Array): Uint8Array;
  signatureImport(der: Uint8Array): Uint8Array;
  signatureNormalize(sig: Uint8Array): Uint8Array;
}

function loadNative(): NativeSecp256k1 | null {
  if (process.env.RUM_PURE_JS_CRYPTO === '1') return null;
  try {
    const require = createRequire(import.meta.url);
    // bindings.js throws when no prebuilt or locally built addon exists for this platform.
    return require('secp256k1/bindings.js') as NativeSecp256k1;
  } catch {
    return null;
  }
}

const native = loadNative();

/** The libsecp256k1 binding, or null where it does not load (see src/p2p/fast-secp256k1.ts). */
export const nativeSecp256k1: NativeSecp256k1 | null = native;

/** Which implementation is in use: reported by the benchmark and the node info. */
export const signatureBackend: 'libsecp256k1' | 'noble' = native ? 'libsecp256k1' : 'noble';

export function signDigestNoble(digest: Uint8Array, priv: Uint8Array): Uint8Array {
  const rec = secp256k1.sign(digest, priv, { prehash: false, format: 'recovered', lowS: true });
  const out = new Uint8Array(SIGNATURE_BYTES);
  out.set(rec.subarray(1, 65), 0);
  out[64] = rec[0]!;
  return out;
}

export function signDigest(digest: Uint8Array, priv: Uint8Array): Uint8Array {
  if (digest.length !== 32) throw new TypeError('digest must be 32 bytes');
  if (!native) return signDigestNoble(digest, priv);
  const { signature, recid } = native.ecdsaSign(digest, priv);
  const out = new Uint8Array(SIGNATURE_BYTES);
  out.set(signature, 0);
  out[64] = recid;
  return out;
}

function isLowS(rs: Uint8Array): boolean {
  let s = 0n;
  for (let i = 32; i < 64; i++) s = (s << 8n) | BigInt(rs[i]!);
  return s !== 0n && s <= HALF_ORDER;
}

export function verifyDigestNoble(pub: Uint8Array, digest: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== SIGNATURE_BYTES && sig.length !== 64) return false;
  try {
    return secp256k1.verify(sig.subarray(0, 64), digest, pub, { prehash: false, lowS: true });
  } catch {
    return false;
  }
}

/**
 * Verifies a 65-byte (or 64-byte) signature over a digest by a compressed public key.
 * High-S signatures are rejected, as go-ethereum's VerifySignature does.
 */
export function verifyDigest(pub: Uint8Array, digest: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== SIGNATURE_BYTES && sig.length !== 64) return false;
  if (digest.length !== 32) return false;
  const rs = sig.subarray(0, 64);
  if (!isLowS(rs)) return false;
  if (!native) return verifyDigestNoble(pub, digest, sig);
  try {
    return native.ecdsaVerify(rs, digest, pub);
  } catch {
    return false;
  }
}

/** SHA-256 (quorum's localcrypto.Hash), through OpenSSL. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
