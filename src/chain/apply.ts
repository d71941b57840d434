/**
 * What a committed trx does to a group's state, as a pure function of its decrypted payload.
 * The store applies the effects in the same SQLite transaction that stores the block.
 */
import { type ContentFacts, contentFacts, isJsonObject, type JsonObject } from './content.ts';
import {
  ActionType,
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
