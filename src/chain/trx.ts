/**
 * Trx signing and validation, as quorum's pkg/data/trx.go: the signature covers the protobuf of
 * {TrxId, Type, GroupId, Data, TimeStamp, Version, Expired, SenderPubkey} with Data encrypted and
 * uncompressed. These are the only bytes a trx signature is computed over in this project.
 */
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { sha256, signDigest, verifyDigest } from '../crypto/sign.ts';
import type { VerifyItem, SignaturePool } from '../crypto/signature-pool.ts';
import { type Trx, TrxSigningDesc } from './pb.ts';
import { encodeMessage } from './protobuf.ts';

export const TRX_VERSION = '2.0.0';
/** quorum's TRX_DATA_SIZE_LIMIT (pkg/data/util.go): 300 KiB of encrypted payload. */
export const QUORUM_MAX_TRX_DATA_BYTES = 300 * 1024;

export type Check = { ok: true } | { ok: false; reason: string };

export function trxSigningBytes(trx: Trx): Uint8Array {
  return encodeMessage(TrxSigningDesc, trx);
}

export function trxDigest(trx: Trx): Uint8Array {
  return sha256(trxSigningBytes(trx));
}

export interface UnsignedTrx {
  TrxId: string;
  Type: number;
  GroupId: string;
  Data: Uint8Array;
  TimeStamp: bigint;
  Expired: bigint;
  SenderPubkey: string;
}

function unsignedTrx(unsigned: UnsignedTrx): Trx {
  return {
    ...unsigned,
    Version: TRX_VERSION,
    ResendCount: 0n,
    SenderSign: new Uint8Array(0),
    StorageType: 0,
  };
}

/**
 * Signs a trx. With a cache, the signature is remembered as verified: the caller vouches that
 * `priv` is the key of `unsigned.SenderPubkey` (GroupChain checks that once, when it opens).
 */
export function signTrx(unsigned: UnsignedTrx, priv: Uint8Array, cache?: SignatureCache): Trx {
  const trx = unsignedTrx(unsigned);
  const digest = trxDigest(trx);
  trx.SenderSign = signDigest(digest, priv);
  cache?.rememberOwn(trx, digest);
  return trx;
}

/** signTrx with the signing done elsewhere (a worker thread: see crypto/signature-pool.ts). */
export async function signTrxWith(
  unsigned: UnsignedTrx,
  sign: (digest: Uint8Array) => Promise<Uint8Array>,
  cache?: SignatureCache,
): Promise<Trx> {
  const trx = unsignedTrx(unsigned);
  const digest = trxDigest(trx);
  trx.SenderSign = await sign(digest);
  cache?.rememberOwn(trx, digest);
  return trx;
}

/** A cache entry: the signature as key, the digest it signs and the signer's key as value. */
function entryOf(trx: Trx, digest: Uint8Array): [string, string] {
  return [
    Buffer.from(trx.SenderSign).toString('latin1'),
    Buffer.from(digest).toString('latin1') + trx.SenderPubkey,
  ];
}

/**
 * The trx signatures one node has verified, signature → (digest, key): a trx reaches a node
 * several times (gossip, admission, its block), and a repeat costs a hash, not an ECDSA check.
 * Each node owns its cache, so a node believes only signatures it verified itself (or made), and
 * an entry matches only the same signature over the same digest by the same key.
 */
export class SignatureCache {
  private readonly verified = new Map<string, string>();
  /** ECDSA verifications this cache has made (a repeat found in the cache costs none). */
  checks = 0;

  private readonly max: number;

  constructor(max = 200_000) {
    this.max = max;
  }

  get size(): number {
    return this.verified.size;
  }

  /**
   * Digests that preverify computed for trxs just decoded from a peer (a node catching up), used
   * once by the next verify of the same object so that it is not hashed twice. Nothing changes a
   * decoded trx in between: a block is validated as it was received.
   */
  private readonly digests = new WeakMap<Trx, Uint8Array>();

  /** Whether a trx's signature verifies: from the cache, or checked (and then remembered). */
  verify(trx: Trx): boolean {
    const pub = pubkeyBytesUnchecked(trx.SenderPubkey);
    if (!pub) return false;
    let digest = this.digests.get(trx);
    if (digest) this.digests.delete(trx);
    else digest = trxDigest(trx);
    const [sigKey, what] = entryOf(trx, digest);
    if (this.verified.get(sigKey) === what) return true;
    this.checks++;
    if (!verifyDigest(pub, digest, trx.SenderSign)) return false;
    this.remember(sigKey, what);
    return true;
  }

  /**
   * Checks many signatures at once on a pool's worker threads and remembers the valid ones, so
   * that validating their blocks afterwards finds them here. Invalid ones are not remembered:
   * validation checks them again and rejects them.
   */
  async preverify(list: Trx[], pool: SignaturePool): Promise<void> {
    const items: VerifyItem[] = [];
    const keys: [string, string][] = [];
    for (const trx of list) {
      const pub = pubkeyBytesUnchecked(trx.SenderPubkey);
      if (!pub) continue;
      const digest = trxDigest(trx);
      this.digests.set(trx, digest);
      const entry = entryOf(trx, digest);
      if (this.verified.get(entry[0]) === entry[1]) continue;
      items.push({ pub, digest, sig: trx.SenderSign });
      keys.push(entry);
    }
    if (items.length === 0) return;
    const ok = await pool.verify(items);
    this.checks += items.length;
    ok.forEach((valid, i) => {
      if (valid) this.remember(...keys[i]!);
    });
  }

  /** A signature this node made itself over a digest, with the key of the trx's sender. */
  rememberOwn(trx: Trx, digest: Uint8Array): void {
    this.remember(...entryOf(trx, digest));
  }

  private remember(sigKey: string, what: string): void {
    if (this.verified.size >= this.max) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(sigKey, what);
  }
}

/** Verifies a trx's signature: through a node's cache when given one, else by ECDSA alone. */
export function verifyTrxSignature(trx: Trx, cache?: SignatureCache): boolean {
  if (cache) return cache.verify(trx);
  const pub = pubkeyBytesUnchecked(trx.SenderPubkey);
  return pub !== null && verifyDigest(pub, trxDigest(trx), trx.SenderSign);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isUuid(text: string): boolean {
  return typeof text === 'string' && UUID_RE.test(text);
}

export interface TrxCheckContext {
  groupId: string;
  maxTrxDataBytes: number;
  /** The time against which Expired is checked (ns); a block checks against its own TimeStamp. */
  nowNs: bigint;
  /** The checking node's verified signatures. */
  signatures?: SignatureCache;
}

/** Stateless checks of a trx: shape, size, version, expiry and signature. */
export function checkTrx(trx: Trx, ctx: TrxCheckContext): Check {
  if (!isUuid(trx.TrxId)) return { ok: false, reason: 'trx id is not a uuid' };
  if (trx.GroupId !== ctx.groupId) return { ok: false, reason: 'trx belongs to another group' };
  if (trx.Version !== TRX_VERSION) {
    return {
      ok: false,
      reason: `trx version ${JSON.stringify(trx.Version)} is not ${TRX_VERSION}`,
    };
  }
  if (trx.Type < 0 || trx.Type > 7 || trx.Type === 4 || trx.Type === 5) {
    return { ok: false, reason: `trx type ${trx.Type} cannot be put in a block` };
  }
  if (trx.Data.length === 0) return { ok: false, reason: 'trx has no data' };
  if (trx.Data.length > ctx.maxTrxDataBytes) {
    return {
      ok: false,
      reason: `trx data is ${trx.Data.length} bytes, limit ${ctx.maxTrxDataBytes}`,
    };
  }
  if (trx.TimeStamp <= 0n) return { ok: false, reason: 'trx has no timestamp' };
  if (trx.Expired !== 0n && trx.Expired < ctx.nowNs) return { ok: false, reason: 'trx expired' };
  if (!verifyTrxSignature(trx, ctx.signatures))
    return { ok: false, reason: 'trx signature does not verify' };
  return { ok: true };
}
