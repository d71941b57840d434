/**
 * secp256k1 keys in quorum's encodings: a group key is shown as base64url (no padding) of the
 * 33-byte compressed public key; the node key also in libp2p's "CAISIQ…" form.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { fromBase64Url, toBase64, toBase64Url, toHex } from './encoding.ts';

export const PRIVATE_KEY_BYTES = 32;
export const PUBLIC_KEY_BYTES = 33;

export function generatePrivateKey(): Uint8Array {
  return secp256k1.utils.randomSecretKey();
}

export function isValidPrivateKey(priv: Uint8Array): boolean {
  return priv.length === PRIVATE_KEY_BYTES && secp256k1.utils.isValidSecretKey(priv);
}

/** The 33-byte compressed public key of a private key. */
export function publicKeyOf(priv: Uint8Array): Uint8Array {
  if (!isValidPrivateKey(priv)) throw new TypeError('invalid secp256k1 private key');
  return secp256k1.getPublicKey(priv, true);
}

export function encodePubkey(pub: Uint8Array): string {
  if (pub.length !== PUBLIC_KEY_BYTES) throw new TypeError('public key must be 33 bytes');
  return toBase64Url(pub);
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Decodes a quorum base64url compressed public key and checks that it is on the curve. */
export function decodePubkey(text: string): DecodeResult<Uint8Array> {
  if (typeof text !== 'string' || text.length !== 44) {
    return { ok: false, reason: 'public key must be 44 base64url characters' };
  }
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(text);
  } catch {
    return { ok: false, reason: 'public key is not base64url' };
  }
  if (bytes.length !== PUBLIC_KEY_BYTES || (bytes[0] !== 2 && bytes[0] !== 3)) {
    return { ok: false, reason: 'public key is not a compressed secp256k1 key' };
  }
  try {
    secp256k1.Point.fromBytes(bytes);
  } catch {
    return { ok: false, reason: 'public key is not a point on secp256k1' };
  }
  return { ok: true, value: bytes };
}

const rawCache = new Map<string, Uint8Array>();
const RAW_CACHE_MAX = 10_000;

/**
 * The 33 bytes of a base64url public key, without the (costly) on-curve check: for signature
 * verification, where the verifier itself rejects a key that is not a valid point. Cached,
 * since the same few authors sign most trxs.
 */
export function pubkeyBytesUnchecked(text: string): Uint8Array | null {
  const hit = rawCache.get(text);
  if (hit) return hit;
  if (typeof text !== 'string' || text.length !== 44 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (bytes.length !== PUBLIC_KEY_BYTES || (bytes[0] !== 2 && bytes[0] !== 3)) return null;
  if (rawCache.size >= RAW_CACHE_MAX) rawCache.delete(rawCache.keys().next().value!);
  rawCache.set(text, bytes);
  return bytes;
}

/** libp2p's protobuf PublicKey{Type: Secp256k1, Data} in standard base64 ("CAISIQ…"). */
export function libp2pPubkeyString(pub: Uint8Array): string {
  const header = Uint8Array.of(0x08, 0x02, 0x12, 0x21);
  const out = new Uint8Array(header.length + pub.length);
  out.set(header);
  out.set(pub, header.length);
  return toBase64(out);
}

/** EIP-55 checksummed Ethereum address of a compressed public key. */
export function ethAddress(pub: Uint8Array): string {
  const uncompressed = secp256k1.Point.fromBytes(pub).toBytes(false);
  const addr = toHex(keccak_256(uncompressed.subarray(1)).subarray(12));
  const check = toHex(keccak_256(new TextEncoder().encode(addr)));
  let out = '0x';
  for (let i = 0; i < addr.length; i++) {
    const c = addr[i]!;
    out += Number.parseInt(check[i]!, 16) >= 8 ? c.toUpperCase() : c;
  }
  return out;
}
