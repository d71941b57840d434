/**
 * quorum's seed URL (pkg/chainapi/handlers/groupseed.go), version 1:
 *   rum://seed?v=1&e=<enc>&n=<cons>&c=…&g=…&k=…&s=…&t=…&a=<name>&y=<app key>&u=<url>|<url>
 * The seed carries the genesis block's signature; decoding rebuilds and verifies the genesis.
 */
import { fromBase64Url, toBase64Url, toHex } from '../crypto/encoding.ts';
import { checkGenesisBlock, computeBlockHash, genesisFields } from './block.ts';
import type { Block } from './pb.ts';

export interface GroupSeed {
  genesisBlock: Block;
  groupId: string;
  groupName: string;
  ownerPubkey: string;
  consensusType: 'poa' | 'pos';
  encryptionType: 'public' | 'private';
  /** 32-byte AES key. */
  cipherKey: Uint8Array;
  appKey: string;
}

export class SeedError extends Error {
  override name = 'SeedError';
}

export const MAX_SEED_URL_LENGTH = 8192;

/** Go's url.QueryEscape: only A-Z a-z 0-9 - _ . ~ stay; space becomes '+'. */
export function goQueryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** Go's url.QueryUnescape. */
export function goQueryUnescape(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new SeedError('invalid percent-encoding');
  }
}

function uuidToBytes(uuid: string): Uint8Array {
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}

function bytesToUuid(b: Uint8Array): string {
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** big.Int(ts).Bytes(): minimal big-endian bytes (empty for zero). */
function bigIntBytes(v: bigint): Uint8Array {
  if (v < 0n) throw new SeedError('negative timestamp');
  let hex = v.toString(16);
  if (v === 0n) return new Uint8Array(0);
  if (hex.length % 2) hex = `0${hex}`;
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function bytesToBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${toHex(b)}`);
}

export function encodeSeedUrl(seed: GroupSeed, urls: readonly string[] = []): string {
  const c = toBase64Url(seed.cipherKey);
  const g = toBase64Url(uuidToBytes(seed.groupId));
  const k = seed.genesisBlock.ProducerPubkey;
  const s = toBase64Url(seed.genesisBlock.ProducerSign);
  const t = toBase64Url(bigIntBytes(seed.genesisBlock.TimeStamp));
  const e = seed.encryptionType === 'public' ? 0 : 1;
  const n = seed.consensusType === 'pos' ? 1 : 0;
  // url.Values.Encode sorts keys: c, g, k, s, t. The values are base64url, so need no escaping.
  return (
    `rum://seed?v=1&e=${e}&n=${n}&c=${c}&g=${g}&k=${k}&s=${s}&t=${t}` +
    `&a=${goQueryEscape(seed.groupName)}&y=${goQueryEscape(seed.appKey)}` +
    `&u=${urls.map(goQueryEscape).join('|')}`
  );
}

function parseQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = goQueryUnescape(eq < 0 ? part : part.slice(0, eq));
    const value = goQueryUnescape(eq < 0 ? '' : part.slice(eq + 1));
    if (!out.has(key)) out.set(key, value);
  }
  return out;
}

function b64field(q: Map<string, string>, key: string, what: string, length?: number): Uint8Array {
  const text = q.get(key);
  if (text === undefined || text === '') throw new SeedError(`seed has no ${what} (${key}=)`);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(text);
  } catch {
    throw new SeedError(`seed ${what} (${key}=) is not base64url`);
  }
  if (length !== undefined && bytes.length !== length) {
    throw new SeedError(`seed ${what} (${key}=) is ${bytes.length} bytes, expected ${length}`);
  }
  return bytes;
}

export interface DecodedSeed {
  seed: GroupSeed;
  urls: string[];
}

/** Decodes and verifies a seed URL; throws SeedError saying what is wrong. */
export function decodeSeedUrl(url: string): DecodedSeed {
  if (typeof url !== 'string' || !url.startsWith('rum://seed?')) {
    throw new SeedError('seed must start with rum://seed?');
  }
  if (url.length > MAX_SEED_URL_LENGTH) throw new SeedError('seed is too long');
  const q = parseQuery(url.slice('rum://seed?'.length).split('#')[0]!);
  const version = q.get('v');
  if (version !== '1')
    throw new SeedError(`unsupported seed version ${JSON.stringify(version ?? '')}`);

  const groupId = bytesToUuid(b64field(q, 'g', 'group id', 16));
  const cipherKey = b64field(q, 'c', 'cipher key', 32);
  const signature = b64field(q, 's', 'genesis signature', 65);
  const tsBytes = b64field(q, 't', 'timestamp');
  if (tsBytes.length > 8) throw new SeedError('seed timestamp (t=) is longer than 8 bytes');
  const timestamp = bytesToBigInt(tsBytes);
  const ownerPubkey = q.get('k') ?? '';
  if (ownerPubkey === '') throw new SeedError('seed has no owner key (k=)');

  const e = q.get('e') ?? '0';
  if (e !== '0' && e !== '1') throw new SeedError(`unknown encryption type e=${e}`);
  const n = q.get('n') ?? '0';
  if (n !== '0' && n !== '1') throw new SeedError(`unknown consensus type n=${n}`);

  const genesisBlock: Block = {
    ...genesisFields(groupId, ownerPubkey, timestamp),
    BlockHash: new Uint8Array(0),
    ProducerSign: signature,
  };
  genesisBlock.BlockHash = computeBlockHash(genesisBlock);
  const valid = checkGenesisBlock(genesisBlock);
  if (!valid.ok) throw new SeedError(`seed genesis block is invalid: ${valid.reason}`);

  const appKey = goQueryUnescape(q.get('y') ?? '');
  const urls = (q.get('u') ?? '')
    .split('|')
    .filter((u) => u !== '')
    .map((u) => (u.startsWith('http://') || u.startsWith('https://') ? u : `https://${u}`));

  return {
    seed: {
      genesisBlock,
      groupId,
      groupName: q.get('a') ?? '',
      ownerPubkey,
      consensusType: n === '1' ? 'pos' : 'poa',
      encryptionType: e === '1' ? 'private' : 'public',
      cipherKey,
      appKey,
    },
    urls,
  };
}
