/**
 * Who may send which trx type: quorum's chain config (CheckTrxTypeAuth). A sender in the allow
 * list for the type is allowed; else one in the deny list is refused; else the type's mode
 * decides (FOLLOW_DNY_LIST, the default, allows; FOLLOW_ALW_LIST refuses). The group owner is
 * always allowed, and only the owner may send the owner-only types.
 */
import { TrxAuthMode, TrxType } from './pb.ts';

export interface GroupRules {
  modes: Map<number, number>;
  allow: Map<string, Set<number>>;
  deny: Map<string, Set<number>>;
}

export function emptyRules(): GroupRules {
  return { modes: new Map(), allow: new Map(), deny: new Map() };
}

export const OWNER_ONLY_TYPES: ReadonlySet<number> = new Set([
  TrxType.PRODUCER,
  TrxType.USER,
  TrxType.CHAIN_CONFIG,
  TrxType.APP_CONFIG,
]);

export type AuthResult = { ok: true } | { ok: false; reason: string };

export function checkTrxAuth(
  rules: GroupRules,
  owner: string,
  sender: string,
  type: number,
): AuthResult {
  if (sender === owner) return { ok: true };
  if (OWNER_ONLY_TYPES.has(type))
    return { ok: false, reason: 'only the group owner may send this trx type' };
  if (rules.allow.get(sender)?.has(type)) return { ok: true };
  if (rules.deny.get(sender)?.has(type)) return { ok: false, reason: 'sender is in the deny list' };
  if ((rules.modes.get(type) ?? TrxAuthMode.FOLLOW_DNY_LIST) === TrxAuthMode.FOLLOW_ALW_LIST) {
    return { ok: false, reason: 'sender is not in the allow list' };
  }
  return { ok: true };
}
