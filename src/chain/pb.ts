/**
 * quorum's pkg/pb/chain.proto (package quorum.pb) at current main, as descriptors for
 * ./protobuf.ts. Field numbers are quorum's; fields this project adds must take new numbers.
 */
import { decodeMessage, encodeMessage, type MessageDesc } from './protobuf.ts';

export const TrxType = {
  POST: 0,
  ANNOUNCE: 1,
  PRODUCER: 2,
  USER: 3,
  REQ_BLOCK: 4,
  REQ_BLOCK_RESP: 5,
  CHAIN_CONFIG: 6,
  APP_CONFIG: 7,
} as const;
export type TrxType = (typeof TrxType)[keyof typeof TrxType];
export const TRX_TYPE_NAMES = Object.keys(TrxType) as (keyof typeof TrxType)[];
export function trxTypeName(t: number): string {
  return TRX_TYPE_NAMES[t] ?? String(t);
}

/**
 * quorum's PackageType, plus TRX_BUNDLE (3), this node's extension: several trxs in one gossip
 * message (HBTrxBundle, zstd-compressed), so that a member sending many trxs pays the per-message
 * cost of signed gossip once. A single trx still travels as a quorum TRX package.
 * BLOCK_VOTE (4), BLOCK_PROPOSAL (5) and ROUND_CHANGE (6) travel between producers on
 * prod_channel_<group id> (src/chain/poa.ts).
 */
export const PackageType = {
  TRX: 0,
  BLOCK: 1,
  HBB: 2,
  TRX_BUNDLE: 3,
  BLOCK_VOTE: 4,
  BLOCK_PROPOSAL: 5,
  ROUND_CHANGE: 6,
} as const;
export const AnnounceType = { AS_USER: 0, AS_PRODUCER: 1 } as const;
export const ApproveType = { ANNOUNCED: 0, APPROVED: 1, REJECTED: 2 } as const;
export const ActionType = { ADD: 0, REMOVE: 1 } as const;
export const GroupEncryptType = { PUBLIC: 0, PRIVATE: 1 } as const;
export const GroupConsenseType = { POA: 0, POS: 1 } as const;
export const ChainConfigType = { SET_TRX_AUTH_MODE: 0, UPD_DNY_LIST: 1, UPD_ALW_LIST: 2 } as const;
export const TrxAuthMode = { FOLLOW_ALW_LIST: 0, FOLLOW_DNY_LIST: 1 } as const;
export const AppConfigType = { INT: 0, BOOL: 1, STRING: 2 } as const;

export interface Trx {
  TrxId: string;
  Type: number;
  GroupId: string;
  Data: Uint8Array;
  TimeStamp: bigint;
  Version: string;
  Expired: bigint;
  ResendCount: bigint;
  SenderPubkey: string;
  SenderSign: Uint8Array;
  StorageType: number;
}

/** A producer's vote for a block in a round (this node's extension for multi-producer finality). */
export interface Witness {
  Pubkey: string;
  Sign: Uint8Array;
  /** The voting round; 0 (omitted on the wire) signs the block hash itself. */
  Round?: number;
}

export interface Block {
  GroupId: string;
  BlockId: number;
  Epoch: number;
  PrevHash: Uint8Array;
  ProducerPubkey: string;
  Trxs: Trx[];
  Sudo: boolean;
  TimeStamp: bigint;
  BlockHash: Uint8Array;
  ProducerSign: Uint8Array;
  /** Field 11, outside the hashed fields 1..8: the other producers' signatures of BlockHash. */
  Witnesses?: Witness[];
}

export const TrxDesc: MessageDesc = {
  name: 'Trx',
  fields: [
    { no: 1, name: 'TrxId', kind: 'string' },
    { no: 2, name: 'Type', kind: 'enum' },
    { no: 3, name: 'GroupId', kind: 'string' },
    { no: 4, name: 'Data', kind: 'bytes' },
    { no: 5, name: 'TimeStamp', kind: 'int64' },
    { no: 6, name: 'Version', kind: 'string' },
    { no: 7, name: 'Expired', kind: 'int64' },
    { no: 8, name: 'ResendCount', kind: 'int64' },
    { no: 10, name: 'SenderPubkey', kind: 'string' },
    { no: 11, name: 'SenderSign', kind: 'bytes' },
    { no: 12, name: 'StorageType', kind: 'enum' },
  ],
};

/** The subset of Trx fields quorum signs (pkg/data/trx.go): no ResendCount, SenderSign, StorageType. */
export const TrxSigningDesc: MessageDesc = {
  name: 'Trx(signing)',
  fields: TrxDesc.fields.filter((f) => [1, 2, 3, 4, 5, 6, 7, 10].includes(f.no)),
};

export const BlockDesc: MessageDesc = {
  name: 'Block',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'BlockId', kind: 'uint53' },
    { no: 3, name: 'Epoch', kind: 'uint53' },
    { no: 4, name: 'PrevHash', kind: 'bytes' },
    { no: 5, name: 'ProducerPubkey', kind: 'string' },
    { no: 6, name: 'Trxs', kind: 'message', repeated: true, message: () => TrxDesc },
    { no: 7, name: 'Sudo', kind: 'bool' },
    { no: 8, name: 'TimeStamp', kind: 'int64' },
    { no: 9, name: 'BlockHash', kind: 'bytes' },
    { no: 10, name: 'ProducerSign', kind: 'bytes' },
    { no: 11, name: 'Witnesses', kind: 'message', repeated: true, message: () => WitnessDesc },
  ],
};

export const WitnessDesc: MessageDesc = {
  name: 'Witness',
  fields: [
    { no: 1, name: 'Pubkey', kind: 'string' },
    { no: 2, name: 'Sign', kind: 'bytes' },
    { no: 3, name: 'Round', kind: 'uint53' },
  ],
};

export const WitnessListDesc: MessageDesc = {
  name: 'WitnessList',
  fields: [
    { no: 1, name: 'Witnesses', kind: 'message', repeated: true, message: () => WitnessDesc },
  ],
};

/** Block fields 1..8: the bytes whose sha256 is BlockHash. */
export const BlockHashingDesc: MessageDesc = {
  name: 'Block(hashing)',
  fields: BlockDesc.fields.filter((f) => f.no <= 8),
};

export const PackageDesc: MessageDesc = {
  name: 'Package',
  fields: [
    { no: 1, name: 'Type', kind: 'enum' },
    { no: 2, name: 'Data', kind: 'bytes' },
  ],
};

export interface ProducerItem {
  GroupId: string;
  ProducerPubkey: string;
  GroupOwnerPubkey: string;
  GroupOwnerSign: string;
  Action: number;
  WithnessBlocks: bigint;
  TimeStamp: bigint;
  Memo: string;
}
export const ProducerItemDesc: MessageDesc = {
  name: 'ProducerItem',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'ProducerPubkey', kind: 'string' },
    { no: 3, name: 'GroupOwnerPubkey', kind: 'string' },
    { no: 4, name: 'GroupOwnerSign', kind: 'string' },
    { no: 5, name: 'Action', kind: 'enum' },
    { no: 6, name: 'WithnessBlocks', kind: 'int64' },
    { no: 7, name: 'TimeStamp', kind: 'int64' },
    { no: 8, name: 'Memo', kind: 'string' },
  ],
};
export const BFTProducerBundleItemDesc: MessageDesc = {
  name: 'BFTProducerBundleItem',
  fields: [
    { no: 1, name: 'Producers', kind: 'message', repeated: true, message: () => ProducerItemDesc },
  ],
};

export interface UserItem {
  GroupId: string;
  UserPubkey: string;
  EncryptPubkey: string;
  GroupOwnerPubkey: string;
  GroupOwnerSign: string;
  TimeStamp: bigint;
  Action: number;
  Memo: string;
}
export const UserItemDesc: MessageDesc = {
  name: 'UserItem',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'UserPubkey', kind: 'string' },
    { no: 3, name: 'EncryptPubkey', kind: 'string' },
    { no: 4, name: 'GroupOwnerPubkey', kind: 'string' },
    { no: 5, name: 'GroupOwnerSign', kind: 'string' },
    { no: 6, name: 'TimeStamp', kind: 'int64' },
    { no: 7, name: 'Action', kind: 'enum' },
    { no: 8, name: 'Memo', kind: 'string' },
  ],
};

export interface AnnounceItem {
  GroupId: string;
  SignPubkey: string;
  EncryptPubkey: string;
  AnnouncerSignature: string;
  Type: number;
  OwnerPubkey: string;
  OwnerSignature: string;
  Result: number;
  TimeStamp: bigint;
  Action: number;
  Memo: string;
}
export const AnnounceItemDesc: MessageDesc = {
  name: 'AnnounceItem',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'SignPubkey', kind: 'string' },
    { no: 3, name: 'EncryptPubkey', kind: 'string' },
    { no: 4, name: 'AnnouncerSignature', kind: 'string' },
    { no: 5, name: 'Type', kind: 'enum' },
    { no: 6, name: 'OwnerPubkey', kind: 'string' },
    { no: 7, name: 'OwnerSignature', kind: 'string' },
    { no: 8, name: 'Result', kind: 'enum' },
    { no: 9, name: 'TimeStamp', kind: 'int64' },
    { no: 10, name: 'Action', kind: 'enum' },
    { no: 11, name: 'Memo', kind: 'string' },
  ],
};

export interface ChainConfigItem {
  GroupId: string;
  Type: number;
  Data: Uint8Array;
  OwnerPubkey: string;
  OwnerSignature: string;
  TimeStamp: bigint;
  Memo: string;
}
export const ChainConfigItemDesc: MessageDesc = {
  name: 'ChainConfigItem',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'Type', kind: 'enum' },
    { no: 3, name: 'Data', kind: 'bytes' },
    { no: 4, name: 'OwnerPubkey', kind: 'string' },
    { no: 5, name: 'OwnerSignature', kind: 'string' },
    { no: 6, name: 'TimeStamp', kind: 'int64' },
    { no: 7, name: 'Memo', kind: 'string' },
  ],
};

export interface ChainSendTrxRuleListItem {
  Action: number;
  Pubkey: string;
  Type: number[];
}
export const ChainSendTrxRuleListItemDesc: MessageDesc = {
  name: 'ChainSendTrxRuleListItem',
  fields: [
    { no: 1, name: 'Action', kind: 'enum' },
    { no: 3, name: 'Pubkey', kind: 'string' },
    { no: 4, name: 'Type', kind: 'enum', repeated: true },
  ],
};

export interface SetTrxAuthModeItem {
  Type: number;
  Mode: number;
}
export const SetTrxAuthModeItemDesc: MessageDesc = {
  name: 'SetTrxAuthModeItem',
  fields: [
    { no: 1, name: 'Type', kind: 'enum' },
    { no: 2, name: 'Mode', kind: 'enum' },
  ],
};

export interface AppConfigItem {
  GroupId: string;
  Action: number;
  Name: string;
  Type: number;
  Value: string;
  OwnerPubkey: string;
  OwnerSign: string;
  Memo: string;
  TimeStamp: bigint;
}
export const AppConfigItemDesc: MessageDesc = {
  name: 'AppConfigItem',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'Action', kind: 'enum' },
    { no: 3, name: 'Name', kind: 'string' },
    { no: 4, name: 'Type', kind: 'enum' },
    { no: 5, name: 'Value', kind: 'string' },
    { no: 6, name: 'OwnerPubkey', kind: 'string' },
    { no: 7, name: 'OwnerSign', kind: 'string' },
    { no: 8, name: 'Memo', kind: 'string' },
    { no: 9, name: 'TimeStamp', kind: 'int64' },
  ],
};

export const HBTrxBundleDesc: MessageDesc = {
  name: 'HBTrxBundle',
  fields: [{ no: 1, name: 'Trxs', kind: 'message', repeated: true, message: () => TrxDesc }],
};

export const encodeTrx = (t: Trx): Uint8Array => encodeMessage(TrxDesc, t);
export const decodeTrx = (b: Uint8Array): Trx => decodeMessage<Trx>(TrxDesc, b);
export const encodeBlock = (b: Block): Uint8Array => encodeMessage(BlockDesc, b);
export const decodeBlock = (b: Uint8Array): Block => decodeMessage<Block>(BlockDesc, b);
