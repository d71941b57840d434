/**
 * Trx signing and validation, as quorum's pkg/data/trx.go: the signature covers the protobuf of
 * {TrxId, Type, GroupId, Data, TimeStamp, Version, Expired, SenderPubkey} with Data encrypted and
 * uncompressed. These are the only bytes a trx signature is computed over in this project.
 */
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { sha256, signDigest, verifyDigest } from '../crypto/sign.ts';
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

export function signTrx(unsigned: UnsignedTrx, priv: Uint8Array): Trx {
  const trx: Trx = {
    ...unsigned,
    Version: TRX_VERSION,
    ResendCount: 0n,
    SenderSign: new Uint8Array(0),
    StorageType: 0,
  };
  trx.SenderSign = signDigest(trxDigest(trx), priv);
  return trx;
}

/**
 * Signatures already verified in this process, signature → (digest, key): a trx reaches a node
 * several times (gossip, admission, its block), and a repeat costs a hash, not an ECDSA check.
 */
const verified = new Map<string, string>();
const VERIFIED_MAX = 200_000;

export function verifyTrxSignature(trx: Trx): boolean {
  const pub = pubkeyBytesUnchecked(trx.SenderPubkey);
  if (!pub) return false;
  const digest = trxDigest(trx);
  const sigKey = Buffer.from(trx.SenderSign).toString('latin1');
  const what = Buffer.from(digest).toString('latin1') + trx.SenderPubkey;
  if (verified.get(sigKey) === what) return true;
  if (!verifyDigest(pub, digest, trx.SenderSign)) return false;
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  verified.set(sigKey, what);
  return true;
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
  if (!verifyTrxSignature(trx)) return { ok: false, reason: 'trx signature does not verify' };
  return { ok: true };
}
