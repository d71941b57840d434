/**
 * Blocks as quorum's pkg/data/block.go: BlockHash = sha256(protobuf of fields 1..8, embedded
 * trxs included with their signatures); ProducerSign = signature of BlockHash.
 */
import { bytesEqual } from '../crypto/encoding.ts';
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { sha256, signDigest, verifyDigest } from '../crypto/sign.ts';
import { type Block, BlockHashingDesc, type Trx } from './pb.ts';
import { encodeMessage } from './protobuf.ts';
import type { Check } from './trx.ts';

export function blockHashingBytes(block: Block): Uint8Array {
  return encodeMessage(BlockHashingDesc, block);
}

export function computeBlockHash(block: Block): Uint8Array {
  return sha256(blockHashingBytes(block));
}

export interface NewBlock {
  GroupId: string;
  BlockId: number;
  Epoch: number;
  PrevHash: Uint8Array;
  ProducerPubkey: string;
  Trxs: Trx[];
  Sudo: boolean;
  TimeStamp: bigint;
}

export function signBlock(fields: NewBlock, priv: Uint8Array): Block {
  const block: Block = { ...fields, BlockHash: new Uint8Array(0), ProducerSign: new Uint8Array(0) };
  block.BlockHash = computeBlockHash(block);
  block.ProducerSign = signDigest(block.BlockHash, priv);
  return block;
}

export function createGenesisBlock(
  groupId: string,
  ownerPubkey: string,
  timestampNs: bigint,
  priv: Uint8Array,
): Block {
  return signBlock(genesisFields(groupId, ownerPubkey, timestampNs), priv);
}

/** The fields of a group's genesis block: everything but its hash and signature. */
export function genesisFields(groupId: string, ownerPubkey: string, timestampNs: bigint): NewBlock {
  return {
    GroupId: groupId,
    BlockId: 0,
    Epoch: 0,
    PrevHash: new Uint8Array(0),
    ProducerPubkey: ownerPubkey,
    Trxs: [],
    Sudo: true,
    TimeStamp: timestampNs,
  };
}

/** Hash and producer signature of a block, with no reference to its parent. */
export function checkBlockSelf(block: Block): Check {
  if (!bytesEqual(computeBlockHash(block), block.BlockHash)) {
    return { ok: false, reason: 'block hash does not match its content' };
  }
  const pub = pubkeyBytesUnchecked(block.ProducerPubkey);
  if (!pub) return { ok: false, reason: 'producer pubkey is not a compressed secp256k1 key' };
  if (!verifyDigest(pub, block.BlockHash, block.ProducerSign)) {
    return { ok: false, reason: 'block producer signature does not verify' };
  }
  return { ok: true };
}

/** quorum's ValidGenesisBlock. */
export function checkGenesisBlock(block: Block): Check {
  if (block.BlockId !== 0 || block.Epoch !== 0)
    return { ok: false, reason: 'genesis must be block 0' };
  if (block.PrevHash.length !== 0) return { ok: false, reason: 'genesis has a previous hash' };
  if (block.Trxs.length !== 0) return { ok: false, reason: 'genesis carries trxs' };
  return checkBlockSelf(block);
}

/** quorum's ValidBlockWithParent: linkage, hash and signature. */
export function checkBlockWithParent(block: Block, parent: Block): Check {
  if (block.GroupId !== parent.GroupId)
    return { ok: false, reason: 'block belongs to another group' };
  if (block.BlockId !== parent.BlockId + 1) {
    return { ok: false, reason: `block ${block.BlockId} does not follow ${parent.BlockId}` };
  }
  if (!bytesEqual(block.PrevHash, parent.BlockHash)) {
    return { ok: false, reason: 'block does not link to its parent hash' };
  }
  if (block.Sudo) return { ok: false, reason: 'only genesis is sudo' };
  return checkBlockSelf(block);
}
