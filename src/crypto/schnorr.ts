/**
 * BIP-340 Schnorr signatures (Nostr's), made and checked with libsecp256k1 where the node has
 * it: the native `secp256k1` addon exposes no Schnorr, but its point operations and scalar
 * arithmetic are all BIP-340 needs (signing: one k·G, a multiply and an add mod n, three tagged
 * hashes; verifying: s·G − e·P). Measured here: signing about 50 times as fast as noble's pure-JS
 * schnorr.sign, verifying several times as fast as libsecp256k1 compiled to WebAssembly
 * (nostr-wasm). Byte for byte noble's signature for the same key, message and auxiliary
 * randomness, and the same verdicts (test/crypto/schnorr.test.ts). noble takes over where the
 * addon does not load, and in the cases of probability 2^-128 the native path does not handle
 * (a hash at or above the group order, a zero scalar, a point at infinity).
 */
import { createHash } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { nativeSecp256k1 } from './sign.ts';
import { randomNonce } from './random.ts';

interface ScalarOps {
  privateKeyVerify(seckey: Uint8Array): boolean;
  publicKeyVerify(pubkey: Uint8Array): boolean;
  publicKeyNegate(pubkey: Uint8Array, compressed?: boolean): Uint8Array;
  publicKeyCombine(pubkeys: Uint8Array[], compressed?: boolean): Uint8Array;
  publicKeyTweakMul(pubkey: Uint8Array, tweak: Uint8Array, compressed?: boolean): Uint8Array;
  privateKeyNegate(seckey: Uint8Array): Uint8Array;
  privateKeyTweakAdd(seckey: Uint8Array, tweak: Uint8Array): Uint8Array;
  privateKeyTweakMul(seckey: Uint8Array, tweak: Uint8Array): Uint8Array;
  publicKeyCreate(seckey: Uint8Array, compressed?: boolean): Uint8Array;
}

const native = nativeSecp256k1 as unknown as ScalarOps | null;

function tagPrefix(tag: string): Buffer {
  const h = createHash('sha256').update(tag).digest();
  return Buffer.concat([h, h]);
}
const AUX = tagPrefix('BIP0340/aux');
const NONCE = tagPrefix('BIP0340/nonce');
const CHALLENGE = tagPrefix('BIP0340/challenge');

function tagged(prefix: Buffer, ...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256').update(prefix);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A key's point: its x coordinate and whether its y is even, by the key's secret. */
const points = new Map<string, { x: Uint8Array; even: boolean }>();
const MAX_POINTS = 10_000;

function pointOf(ops: ScalarOps, priv: Uint8Array): { x: Uint8Array; even: boolean } {
  const key = Buffer.from(priv).toString('hex');
  let p = points.get(key);
  if (!p) {
    const c = ops.publicKeyCreate(priv, true);
    p = { x: c.slice(1), even: c[0] === 2 };
    if (points.size >= MAX_POINTS) points.clear();
    points.set(key, p);
  }
  return p;
}

/** The 32-byte x-only public key of a secret key (BIP-340, Nostr's pubkey). */
export function schnorrPublicKey(priv: Uint8Array): Uint8Array {
  if (!native) return schnorr.getPublicKey(priv);
  return pointOf(native, priv).x;
}

function nativeSign(
  ops: ScalarOps,
  msg: Uint8Array,
  priv: Uint8Array,
  aux: Uint8Array,
): Uint8Array | null {
  if (!ops.privateKeyVerify(priv)) return null;
  const P = pointOf(ops, priv);
  const d = P.even ? Uint8Array.from(priv) : ops.privateKeyNegate(Uint8Array.from(priv));
  const t = tagged(AUX, aux);
  for (let i = 0; i < 32; i++) t[i] = t[i]! ^ d[i]!;
  const k0 = tagged(NONCE, t, P.x, msg);
  if (!ops.privateKeyVerify(k0)) return null; // zero, or not below the order
  const R = ops.publicKeyCreate(k0, true);
  const k = R[0] === 2 ? k0 : ops.privateKeyNegate(k0);
  const rx = R.subarray(1);
  const e = tagged(CHALLENGE, rx, P.x, msg);
  if (!ops.privateKeyVerify(e)) return null;
  // s = k + e·d mod n (the tweaks work in place on copies).
  const ed = ops.privateKeyTweakMul(d, e);
  const s = ops.privateKeyTweakAdd(Uint8Array.from(k), ed);
  const sig = new Uint8Array(64);
  sig.set(rx, 0);
  sig.set(s, 32);
  return sig;
}

/**
 * Signs a 32-byte message (a Nostr event id) with BIP-340. `aux` is the auxiliary randomness
 * BIP-340 mixes into the nonce: fresh random bytes by default, as it recommends.
 */
export function schnorrSign(
  msg: Uint8Array,
  priv: Uint8Array,
  aux: Uint8Array = randomNonce(32),
): Uint8Array {
  if (msg.length !== 32 || priv.length !== 32 || aux.length !== 32) {
    throw new TypeError('a BIP-340 message, key and aux are 32 bytes each');
  }
  if (native) {
    try {
      const sig = nativeSign(native, msg, priv, aux);
      if (sig) return sig;
    } catch {
      // A zero scalar on the way: noble handles (or refuses) it below.
    }
  }
  return schnorr.sign(msg, priv, aux);
}

function nativeVerify(
  ops: ScalarOps,
  sig: Uint8Array,
  msg: Uint8Array,
  px: Uint8Array,
): boolean | null {
  const P = new Uint8Array(33);
  P[0] = 2;
  P.set(px, 1);
  if (!ops.publicKeyVerify(P)) return false; // not an x coordinate on the curve
  const r = sig.subarray(0, 32);
  const sc = sig.subarray(32, 64);
  if (!ops.privateKeyVerify(sc)) return null; // s zero or not below the order: noble decides
  const e = tagged(CHALLENGE, r, px, msg);
  if (!ops.privateKeyVerify(e)) return null;
  // R = s·G − e·P, which must have an even y and the x of the signature.
  const sG = ops.publicKeyCreate(sc, true);
  const eP = ops.publicKeyTweakMul(P, e, true);
  const R = ops.publicKeyCombine([sG, ops.publicKeyNegate(eP, true)], true);
  if (R[0] !== 2) return false;
  for (let i = 0; i < 32; i++) if (R[i + 1] !== r[i]) return false;
  return true;
}

/** Whether a 64-byte BIP-340 signature of a 32-byte message verifies for an x-only key. */
export function schnorrVerify(sig: Uint8Array, msg: Uint8Array, pubkey: Uint8Array): boolean {
  if (sig.length !== 64 || msg.length !== 32 || pubkey.length !== 32) return false;
  if (native) {
    try {
      const v = nativeVerify(native, sig, msg, pubkey);
      if (v !== null) return v;
    } catch {
      // R at infinity, or an edge noble settles below.
    }
  }
  try {
    return schnorr.verify(sig, msg, pubkey);
  } catch {
    return false;
  }
}
