/**
 * What a committed trx does to a group's state, as a pure function of its decrypted payload.
 * The store applies the effects in the same SQLite transaction that stores the block.
 */
import { type ContentFacts, contentFacts, isJsonObject, type JsonObject } from './content.ts';
import { fromHex, utf8Bytes } from '../crypto/encoding.ts';
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { sha256, verifyDigest } from '../crypto/sign.ts';
import {
  ActionType,
  type AnnounceItem,
  AnnounceItemDesc,
  BFTProducerBundleItemDesc,
  type ProducerItem,
  type UserItem,
  UserItemDesc,
  type AppConfigItem,
  AppConfigItemDesc,
  type ChainConfigItem,
  ChainConfigItemDesc,
  ChainConfigType,
  type ChainSendTrxRuleListItem,
  ChainSendTrxRuleListItemDesc,
  type SetTrxAuthModeItem,
  SetTrxAuthModeItemDesc,
  type Trx,
  TrxType,
} from './pb.ts';
import { decodeMessage } from './protobuf.ts';

export type Effect =
  | { kind: 'content'; data: Uint8Array | null; facts: ContentFacts }
  | { kind: 'authMode'; trxType: number; mode: number }
  | {
      kind: 'rule';
      list: 0 | 1;
      action: number;
      pubkey: string;
      trxTypes: number[];
      item: ChainConfigItem;
    }
  | { kind: 'appConfig'; action: number; item: AppConfigItem }
  | { kind: 'announce'; item: AnnounceItem }
  | { kind: 'user'; item: UserItem }
  | { kind: 'producers'; items: ProducerItem[] }
  | { kind: 'none'; reason?: string };

const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function parseJsonPayload(data: Uint8Array): JsonObject | null {
  try {
    const v = JSON.parse(textDecoder.decode(data));
    return isJsonObject(v) ? (v as JsonObject) : null;
  } catch {
    return null;
  }
}

/** `plain` is the decrypted Data, or null when this node cannot read it. */
export function effectOf(trx: Trx, plain: Uint8Array | null): Effect {
  try {
    switch (trx.Type) {
      case TrxType.POST: {
        const payload = plain ? parseJsonPayload(plain) : null;
        const facts = payload
          ? contentFacts(payload)
          : { objectType: null, inReplyTo: null, deletes: null };
        return { kind: 'content', data: plain, facts };
      }
      case TrxType.CHAIN_CONFIG: {
        if (!plain) return { kind: 'none', reason: 'unreadable chain config' };
        const item = decodeMessage<ChainConfigItem>(ChainConfigItemDesc, plain);
        if (item.Type === ChainConfigType.SET_TRX_AUTH_MODE) {
          const m = decodeMessage<SetTrxAuthModeItem>(SetTrxAuthModeItemDesc, item.Data);
          return { kind: 'authMode', trxType: m.Type, mode: m.Mode };
        }
        const r = decodeMessage<ChainSendTrxRuleListItem>(ChainSendTrxRuleListItemDesc, item.Data);
        const list = item.Type === ChainConfigType.UPD_ALW_LIST ? 0 : 1;
        return { kind: 'rule', list, action: r.Action, pubkey: r.Pubkey, trxTypes: r.Type, item };
      }
      case TrxType.ANNOUNCE: {
        if (!plain) return { kind: 'none', reason: 'unreadable announce' };
        const item = decodeMessage<AnnounceItem>(AnnounceItemDesc, plain);
        // An announcement speaks for its signer only, and must carry the signer's own signature.
        if (item.SignPubkey !== trx.SenderPubkey || item.GroupId !== trx.GroupId) {
          return { kind: 'none', reason: 'announce for another key or group' };
        }
        if (!verifyInnerSign(item.SignPubkey, announceSignedBytes(item), item.AnnouncerSignature)) {
          return { kind: 'none', reason: 'announce signature does not verify' };
        }
        return { kind: 'announce', item };
      }
      case TrxType.PRODUCER: {
        if (!plain) return { kind: 'none', reason: 'unreadable producer bundle' };
        const bundle = decodeMessage<{ Producers: ProducerItem[] }>(
          BFTProducerBundleItemDesc,
          plain,
        );
        const items = bundle.Producers.filter(
          (p) =>
            p.GroupId === trx.GroupId &&
            p.GroupOwnerPubkey === trx.SenderPubkey &&
            p.ProducerPubkey !== trx.SenderPubkey &&
            verifyInnerSign(p.GroupOwnerPubkey, producerSignedBytes(p), p.GroupOwnerSign),
        );
        return { kind: 'producers', items };
      }
      case TrxType.USER: {
        if (!plain) return { kind: 'none', reason: 'unreadable user item' };
        const item = decodeMessage<UserItem>(UserItemDesc, plain);
        if (item.GroupId !== trx.GroupId || item.GroupOwnerPubkey !== trx.SenderPubkey) {
          return { kind: 'none', reason: 'user item for another group or owner' };
        }
        if (!verifyInnerSign(item.GroupOwnerPubkey, userSignedBytes(item), item.GroupOwnerSign)) {
          return { kind: 'none', reason: 'user item signature does not verify' };
        }
        return { kind: 'user', item };
      }
      case TrxType.APP_CONFIG: {
        if (!plain) return { kind: 'none', reason: 'unreadable app config' };
        const item = decodeMessage<AppConfigItem>(AppConfigItemDesc, plain);
        return { kind: 'appConfig', action: item.Action, item };
      }
      default:
        return { kind: 'none' };
    }
  } catch (err) {
    return { kind: 'none', reason: (err as Error).message };
  }
}

export { ActionType };

const ANNOUNCE_TYPE_NAMES = ['AS_USER', 'AS_PRODUCER'];

/** quorum's announce signature input: GroupId ‖ SignPubkey ‖ EncryptPubkey ‖ Type name. */
export function announceSignedBytes(
  item: Pick<AnnounceItem, 'GroupId' | 'SignPubkey' | 'EncryptPubkey' | 'Type'>,
): Uint8Array {
  return utf8Bytes(
    `${item.GroupId}${item.SignPubkey}${item.EncryptPubkey}${ANNOUNCE_TYPE_NAMES[item.Type] ?? ''}`,
  );
}

/** quorum's user approval signature input: GroupId ‖ UserPubkey ‖ EncryptPubkey ‖ GroupOwnerPubkey. */
export function userSignedBytes(
  item: Pick<UserItem, 'GroupId' | 'UserPubkey' | 'EncryptPubkey' | 'GroupOwnerPubkey'>,
): Uint8Array {
  return utf8Bytes(
    `${item.GroupId}${item.UserPubkey}${item.EncryptPubkey}${item.GroupOwnerPubkey}`,
  );
}

/** quorum's producer approval signature input: GroupId ‖ ProducerPubkey ‖ GroupOwnerPubkey. */
export function producerSignedBytes(
  item: Pick<ProducerItem, 'GroupId' | 'ProducerPubkey' | 'GroupOwnerPubkey'>,
): Uint8Array {
  return utf8Bytes(`${item.GroupId}${item.ProducerPubkey}${item.GroupOwnerPubkey}`);
}

/** The inner item signatures quorum writes (hex of sign(sha256(bytes))); quorum never checks them. */
export function verifyInnerSign(pubkey: string, bytes: Uint8Array, hexSign: string): boolean {
  const pub = pubkeyBytesUnchecked(pubkey);
  if (!pub || !/^[0-9a-f]{130}$/i.test(hexSign)) return false;
  return verifyDigest(pub, sha256(bytes), fromHex(hexSign));
}
