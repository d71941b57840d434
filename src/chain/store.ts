/**
 * The storage the chain needs, declared here so that the chain imports no storage module:
 * src/storage/chain-store.ts implements ChainStorage over SQLite (and checks that its groups
 * table rows are GroupRecords), and the node hands it to each GroupChain.
 */
import type { Effect } from './apply.ts';
import type { Block, Trx } from './pb.ts';
import type { GroupRules } from './rules.ts';

/** A joined group as stored: its keys, its genesis and its head. */
export interface GroupRecord {
  groupId: string;
  groupName: string;
  ownerPubkey: string;
  userPubkey: string;
  userEncryptPubkey: string;
  consensusType: number;
  encryptionType: number;
  /** hex */
  cipherKey: string;
  appKey: string;
  genesis: Buffer;
  topBlockId: number;
  topBlockHash: Buffer;
  currentEpoch: number;
  lastUpdated: string;
  joinedAt: string;
}

/** A trx of a block being committed, with its exact bytes and what applying it changes. */
export interface CommittedTrx {
  trx: Trx;
  raw: Uint8Array;
  effect: Effect;
  /** false when the trx is known not to be in the persistent mempool (no row to delete). */
  pending?: boolean;
}

/** A trx admitted to a group's persistent mempool. */
export interface PendingTrx {
  groupId: string;
  trx: Trx;
  raw: Uint8Array;
}

/** What a GroupChain reads and writes: blocks, rules, producers and the persistent mempool. */
export interface ChainStorage {
  getBlock(groupId: string, blockId: number): Block | undefined;
  loadRules(groupId: string): GroupRules;
  listProducers(groupId: string): readonly { producerPubkey: string }[];
  /** Which of these trx ids are already in the chain. */
  committedTrxIds(groupId: string, trxIds: string[]): Set<string>;
  listPending(groupId: string): Trx[];
  /** Stores admitted trxs in one transaction, with the writes `also` makes in it. */
  addPendingMany(items: PendingTrx[], nowMs: number, also?: readonly (() => void)[]): void;
  removePending(groupId: string, trxIds: string[]): void;
  /**
   * Stores validated consecutive blocks with their trxs, applies their effects and moves the
   * group head, all in one transaction.
   */
  commitBlocks(list: { block: Block; committed: CommittedTrx[] }[], nowNs: bigint): void;
}
