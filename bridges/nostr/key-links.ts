/**
 * Nostr ↔ RUM key links: a Nostr key and a RUM key of a group that one person holds, linked by a
 * statement that each key signed, so that the bridge counts their posts as one author's (the
 * groups layer: 39002 members, NIP-05 names, and the owner's allow and deny lists, which judge
 * a linked Nostr key as its RUM key too). Every node checks both signatures itself, from the
 * committed chain: no gateway is trusted.
 *
 * The Nostr key's side is a NIP-39 list of external identities (kind 10011) with the tag
 * `["i", "rum:<hex of the 33-byte RUM key>", "<group id>"]`: the identity, and as its proof the
 * group whose chain holds the RUM key's side. The RUM key's side is either
 *
 * - the trx itself: the RUM key posts, in the group, a POST whose payload is
 *   `{"type":"NostrKeyLink","rumPubkey":<its key>,"nostrPubkey":<hex>,"statement":<the 10011>}`
 *   (the trx's signature is the RUM key's), or
 * - a token in the `i` tag's fourth place, for a link made from the Nostr side (the 10011 sent
 *   to the relay, which posts that payload into the group for the Nostr author): a BIP-340
 *   signature by the RUM key (x-only, as Nostr's) over the SHA-256 of
 *   `rum-nostr-link:<group id>:<hex of the RUM key>:<nostr pubkey>:<created_at of the 10011>`.
 *
 * The group id in both signed statements keeps a link from being replayed into another group.
 * A link is undone by either key: `{"type":"NostrKeyUnlink","rumPubkey":…,"nostrPubkey":…}`
 * posted by the RUM key, a RUM Delete of the linking trx by the RUM key, or a newer 10011 of the
 * Nostr key that no longer names the RUM key for the group (carried in an unlink payload; the
 * relay posts it when such a list reaches it). A statement older than the last revocation from
 * its side does not link again, so an old statement replayed after an unlink does nothing. A
 * key is linked to at most one key of the other network in a group: a new link replaces the old.
 *
 * Read from each served group's committed stream, in chain order (outbound.ts), into the bridge
 * kv under `kl:`. A statement that fails a check is ignored (the caller logs why).
 */
import { createHash } from 'node:crypto';
import { encodePubkey, publicKeyOf } from '../../src/crypto/keys.ts';
import { schnorrSign, schnorrVerify } from '../../src/crypto/schnorr.ts';
import type { BridgeKv, CommittedItem } from '../port.ts';
import { nostrPubkeyOf } from './author.ts';
import { asEvent } from './mapping.ts';
import type { NostrEvent } from './types.ts';

export const LINK_TYPE = 'NostrKeyLink';
export const UNLINK_TYPE = 'NostrKeyUnlink';
/** NIP-39's list of external identities: the Nostr key's side of a link. */
export const IDENTITIES_KIND = 10011;
/** How far (seconds) a statement's created_at may be after the trx that carries it. */
export const MAX_AHEAD_S = 600;
/** Bounds of a statement (a NIP-39 list) and of what one list may ask of the relay. */
export const STATEMENT_LIMITS = {
  tags: 256,
  tagValues: 8,
  tagChars: 1024,
  contentChars: 4096,
  /** `rum:` identities of one list acted on. */
  rumTags: 16,
  /** Groups of one key looked at for revocations. */
  groupsOfKey: 100,
} as const;

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const RUM_IDENTITY = /^rum:(0[23][0-9a-f]{64})$/;

type Rec = Record<string, unknown>;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** The NIP-39 identity of a RUM key (quorum's encoding): `rum:<hex of its 33 bytes>`. */
export function rumIdentity(rumPubkey: string): string | null {
  if (nostrPubkeyOf(rumPubkey) === null) return null;
  return `rum:${Buffer.from(rumPubkey, 'base64url').toString('hex')}`;
}

/** The RUM key (quorum's encoding) of a NIP-39 identity `rum:<hex>`, or null. */
export function rumKeyOfIdentity(identity: string): string | null {
  const m = RUM_IDENTITY.exec(identity);
  return m ? Buffer.from(m[1]!, 'hex').toString('base64url') : null;
}

/** What the RUM key signs to link a Nostr key from the Nostr side (32 bytes). */
export function linkMessage(
  groupId: string,
  rumPubkey: string,
  nostrPubkey: string,
  createdAt: number,
): Uint8Array {
  const rumHex = Buffer.from(rumPubkey, 'base64url').toString('hex');
  const text = `rum-nostr-link:${groupId}:${rumHex}:${nostrPubkey}:${createdAt}`;
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The RUM key's token (hex) for a link made from the Nostr side. */
export function linkToken(
  groupId: string,
  rumPriv: Uint8Array,
  nostrPubkey: string,
  createdAt: number,
): string {
  const rumPubkey = encodePubkey(publicKeyOf(rumPriv));
  return hex(schnorrSign(linkMessage(groupId, rumPubkey, nostrPubkey, createdAt), rumPriv));
}

/** The NIP-39 `i` tag that names a RUM key of a group (with its token, from the Nostr side). */
export function identityTag(groupId: string, rumPubkey: string, token?: string): string[] {
  const identity = rumIdentity(rumPubkey);
  if (!identity) throw new TypeError('not a RUM key');
  return token ? ['i', identity, groupId, token] : ['i', identity, groupId];
}

/** The list's `i` tag naming a RUM key for a group, if it has one. */
function identityTagOf(e: NostrEvent, rumPubkey: string, groupId: string): string[] | undefined {
  const identity = rumIdentity(rumPubkey);
  return e.tags.find((t) => t[0] === 'i' && t[1] === identity && t[2] === groupId);
}

/** Whether a token is the RUM key's signature of a link to the Nostr key in the group. */
function tokenVerifies(token: string | undefined, groupId: string, rum: string, e: NostrEvent) {
  const x = nostrPubkeyOf(rum);
  if (token === undefined || !HEX128.test(token) || !x) return false;
  const msg = linkMessage(groupId, rum, e.pubkey, e.created_at);
  return schnorrVerify(Buffer.from(token, 'hex'), msg, Buffer.from(x, 'hex'));
}

/** Milliseconds since the epoch of a trx timestamp (ns, decimal text), or null. */
function msOf(timestamp: string): number | null {
  if (!/^\d{1,30}$/.test(timestamp)) return null;
  return Number(BigInt(timestamp) / 1_000_000n);
}

export type Statement =
  | {
      action: 'link';
      rum: string;
      nostr: string;
      /** When each key said it (ms): the trx's time for the RUM key's trx, else created_at. */
      rumAt: number;
      nostrAt: number;
      side: 'rum' | 'nostr';
    }
  | { action: 'unlink'; rum: string; nostr: string; at: number; side: 'rum' | 'nostr' };

export type StatementCheck = { ok: true; statement: Statement } | { ok: false; reason: string };

const fail = (reason: string): StatementCheck => ({ ok: false, reason });

/** A statement's NIP-39 list, checked: form, limits, signer, date, signature. */
function checkList(
  v: unknown,
  nostr: string,
  trxMs: number,
  verify: (e: NostrEvent) => boolean,
): { ok: true; event: NostrEvent } | { ok: false; reason: string } {
  const e = asEvent(v);
  if (!e) return { ok: false, reason: 'the statement is not a Nostr event' };
  if (e.kind !== IDENTITIES_KIND) {
    return { ok: false, reason: `the statement is not a kind ${IDENTITIES_KIND} list` };
  }
  if (e.pubkey !== nostr) return { ok: false, reason: 'the statement is not by the Nostr key' };
  const L = STATEMENT_LIMITS;
  if (
    e.tags.length > L.tags ||
    e.content.length > L.contentChars ||
    e.tags.some((t) => t.length > L.tagValues || t.some((s) => s.length > L.tagChars))
  ) {
    return { ok: false, reason: 'the statement is over the limits' };
  }
  if (e.created_at * 1000 > trxMs + MAX_AHEAD_S * 1000) {
    return { ok: false, reason: 'the statement is dated after the trx that carries it' };
  }
  if (!verify(e)) return { ok: false, reason: "the Nostr key's signature does not verify" };
  return { ok: true, event: e };
}

/**
 * What a committed item says of a link, every signature checked; null when it is no statement
 * (a payload of another type). `verify` checks a Nostr event's id and signature.
 */
export function readStatement(
  item: Pick<CommittedItem, 'groupId' | 'senderPubkey' | 'timestamp' | 'object'>,
  verify: (e: NostrEvent) => boolean,
): StatementCheck | null {
  const p = item.object;
  if (!p || (p.type !== LINK_TYPE && p.type !== UNLINK_TYPE)) return null;
  const { rumPubkey: rum, nostrPubkey: nostr } = p as Rec;
  if (typeof rum !== 'string' || nostrPubkeyOf(rum) === null) {
    return fail('rumPubkey is not a RUM key');
  }
  if (typeof nostr !== 'string' || !HEX64.test(nostr)) {
    return fail('nostrPubkey is not a Nostr key');
  }
  const trxMs = msOf(item.timestamp);
  if (trxMs === null) return fail('the trx has no usable time');
  const byRum = item.senderPubkey === rum;
  let list: NostrEvent | null = null;
  if (p.statement !== undefined && !(byRum && p.type === UNLINK_TYPE)) {
    const checked = checkList(p.statement, nostr, trxMs, verify);
    if (!checked.ok) return fail(checked.reason);
    list = checked.event;
  }
  if (p.type === LINK_TYPE) {
    if (!list) return fail("a link carries the Nostr key's statement");
    const tag = identityTagOf(list, rum, item.groupId);
    if (!tag) return fail('the Nostr statement does not name the RUM key for this group');
    const nostrAt = list.created_at * 1000;
    if (byRum) {
      return {
        ok: true,
        statement: { action: 'link', rum, nostr, rumAt: trxMs, nostrAt, side: 'rum' },
      };
    }
    if (!tokenVerifies(tag[3], item.groupId, rum, list)) {
      return fail("the trx is not the RUM key's and the statement has no valid token of it");
    }
    return {
      ok: true,
      statement: { action: 'link', rum, nostr, rumAt: nostrAt, nostrAt, side: 'nostr' },
    };
  }
  if (byRum)
    return { ok: true, statement: { action: 'unlink', rum, nostr, at: trxMs, side: 'rum' } };
  if (!list) return fail("an unlink is the RUM key's, or carries the Nostr key's newer statement");
  if (identityTagOf(list, rum, item.groupId)) {
    return fail('the Nostr statement still names the RUM key for this group');
  }
  return {
    ok: true,
    statement: { action: 'unlink', rum, nostr, at: list.created_at * 1000, side: 'nostr' },
  };
}

/** A payload to post into a group for a NIP-39 list the relay received. */
export interface ListStatement {
  groupId: string;
  payload: Rec;
}

/**
 * What a NIP-39 list sent to the relay (its signature checked) asks of the groups `served`
 * here: a link for each `i` tag naming a RUM key of such a group with a valid token of that
 * key, and an unlink for each such group where its key is linked and the list, newer than the
 * linking one, no longer names the linked RUM key. `refused` names a `rum:` tag whose token
 * does not verify.
 */
export function listStatements(
  e: NostrEvent,
  served: (groupId: string) => boolean,
  links: KeyLinks,
): { statements: ListStatement[]; refused: string | null } {
  const statements: ListStatement[] = [];
  let refused: string | null = null;
  const rumTags = e.tags
    .filter((t) => t[0] === 'i' && RUM_IDENTITY.test(t[1] ?? ''))
    .slice(0, STATEMENT_LIMITS.rumTags);
  const payload = (type: string, groupId: string, rum: string): ListStatement => ({
    groupId,
    payload: { type, rumPubkey: rum, nostrPubkey: e.pubkey, statement: { ...e } },
  });
  for (const t of rumTags) {
    const groupId = t[2];
    const rum = rumKeyOfIdentity(t[1]!);
    if (!rum || !groupId || !served(groupId) || t[3] === undefined) continue;
    if (links.rumOf(groupId, e.pubkey) === rum) continue;
    if (!tokenVerifies(t[3], groupId, rum, e)) {
      refused ??= `the token of ${t[1]} for group ${groupId} does not verify`;
      continue;
    }
    statements.push(payload(LINK_TYPE, groupId, rum));
  }
  for (const { groupId, rum, nostrAt } of links.groupsOfNostr(e.pubkey)) {
    if (!served(groupId) || e.created_at * 1000 <= nostrAt) continue;
    if (identityTagOf(e, rum, groupId)) continue;
    statements.push(payload(UNLINK_TYPE, groupId, rum));
  }
  return { statements, refused };
}

/** A link, as kept: the other key, when each side said it (ms), and the trx that made it. */
interface LinkRec {
  n: string;
  rumAt: number;
  nostrAt: number;
  trx: string;
  /** The trx's sender. */
  by: string;
}

/** The last revocation (ms) of a pair from each side: [RUM key, Nostr key]. */
type Revoked = [number, number];

export interface ApplyResult {
  /** Whether the group's links changed. */
  changed: boolean;
  /** Why a statement was ignored. */
  ignored?: string;
}

/** The links of the groups served here, in the bridge kv, fed in chain order. */
export class KeyLinks {
  private readonly kv: BridgeKv;

  constructor(kv: BridgeKv) {
    this.kv = kv;
  }

  /** The Nostr key linked to a RUM key in a group. */
  nostrOf(groupId: string, rumPubkey: string): string | undefined {
    return this.kv.get<LinkRec>(`kl:r:${groupId}:${rumPubkey}`)?.n;
  }

  /** The RUM key linked to a Nostr key in a group. */
  rumOf(groupId: string, nostrPubkey: string): string | undefined {
    return this.kv.get<string>(`kl:n:${groupId}:${nostrPubkey}`);
  }

  /** The groups where a Nostr key is linked, with its RUM key there (at most 100). */
  groupsOfNostr(nostrPubkey: string): { groupId: string; rum: string; nostrAt: number }[] {
    const prefix = `kl:N:${nostrPubkey}:`;
    return this.kv.list(prefix, { limit: STATEMENT_LIMITS.groupsOfKey }).map((e) => {
      const groupId = e.key.slice(prefix.length);
      const rum = e.value as string;
      return { groupId, rum, nostrAt: this.record(groupId, rum)?.nostrAt ?? 0 };
    });
  }

  /** The groups where a RUM key is linked, with its Nostr key there (at most 100). */
  groupsOfRum(rumPubkey: string): { groupId: string; nostr: string }[] {
    const prefix = `kl:R:${rumPubkey}:`;
    return this.kv
      .list(prefix, { limit: STATEMENT_LIMITS.groupsOfKey })
      .map((e) => ({ groupId: e.key.slice(prefix.length), nostr: e.value as string }));
  }

  /** A group's links, at most `limit`, by RUM key. */
  linksOf(groupId: string, limit: number): { rum: string; nostr: string; trxId: string }[] {
    const prefix = `kl:r:${groupId}:`;
    return this.kv.list(prefix, { limit }).map((e) => {
      const rec = e.value as LinkRec;
      return { rum: e.key.slice(prefix.length), nostr: rec.n, trxId: rec.trx };
    });
  }

  /** Applies a committed item of a group, in chain order. */
  apply(item: CommittedItem, verify: (e: NostrEvent) => boolean): ApplyResult {
    const p = item.object;
    if (!p) return { changed: false };
    if (p.type === 'Delete') return this.applyDelete(item);
    const read = readStatement(item, verify);
    if (!read) return { changed: false };
    if (!read.ok) return { changed: false, ignored: read.reason };
    const s = read.statement;
    const g = item.groupId;
    const revoked = this.revoked(g, s.rum, s.nostr);
    if (s.action === 'unlink') {
      const rec = this.record(g, s.rum);
      const linked = rec?.n === s.nostr ? rec : undefined;
      if (s.side === 'rum') {
        // The RUM key's own trx, later in the chain than the link: it always undoes it.
        revoked[0] = Math.max(revoked[0], s.at, linked?.rumAt ?? 0);
        this.setRevoked(g, s.rum, s.nostr, revoked);
        if (linked) this.remove(g, s.rum, linked);
        return { changed: linked !== undefined };
      }
      revoked[1] = Math.max(revoked[1], s.at);
      this.setRevoked(g, s.rum, s.nostr, revoked);
      if (!linked || s.at <= linked.nostrAt) {
        return { changed: false, ignored: linked ? 'older than the link' : undefined };
      }
      this.remove(g, s.rum, linked);
      return { changed: true };
    }
    if (s.rumAt <= revoked[0] || s.nostrAt <= revoked[1]) {
      return { changed: false, ignored: 'a key revoked the link after this statement' };
    }
    const mine = this.record(g, s.rum);
    if (mine && mine.n !== s.nostr) this.remove(g, s.rum, mine);
    const theirs = this.rumOf(g, s.nostr);
    if (theirs && theirs !== s.rum) {
      const rec = this.record(g, theirs);
      if (rec) this.remove(g, theirs, rec);
    }
    const rec: LinkRec = {
      n: s.nostr,
      rumAt: s.rumAt,
      nostrAt: s.nostrAt,
      trx: item.trxId,
      by: item.senderPubkey,
    };
    const before = this.record(g, s.rum);
    if (before) this.kv.delete(`kl:t:${g}:${before.trx}`);
    this.kv.set(`kl:r:${g}:${s.rum}`, rec);
    this.kv.set(`kl:n:${g}:${s.nostr}`, s.rum);
    this.kv.set(`kl:N:${s.nostr}:${g}`, s.rum);
    this.kv.set(`kl:R:${s.rum}:${g}`, s.nostr);
    this.kv.set(`kl:t:${g}:${item.trxId}`, s.rum);
    return { changed: before?.n !== s.nostr };
  }

  /** A RUM Delete of the trx that made a link, by the RUM key that sent it, undoes the link. */
  private applyDelete(item: CommittedItem): ApplyResult {
    const target = (item.object?.object as Rec | undefined)?.id;
    if (typeof target !== 'string') return { changed: false };
    const rum = this.kv.get<string>(`kl:t:${item.groupId}:${target}`);
    if (!rum) return { changed: false };
    const rec = this.record(item.groupId, rum);
    if (!rec || rec.trx !== target || item.senderPubkey !== rum) return { changed: false };
    const at = msOf(item.timestamp) ?? 0;
    const revoked = this.revoked(item.groupId, rum, rec.n);
    revoked[0] = Math.max(revoked[0], at, rec.rumAt);
    this.setRevoked(item.groupId, rum, rec.n, revoked);
    this.remove(item.groupId, rum, rec);
    return { changed: true };
  }

  private record(groupId: string, rum: string): LinkRec | undefined {
    return this.kv.get<LinkRec>(`kl:r:${groupId}:${rum}`);
  }

  private revoked(groupId: string, rum: string, nostr: string): Revoked {
    return this.kv.get<Revoked>(`kl:x:${groupId}:${rum}:${nostr}`) ?? [0, 0];
  }

  private setRevoked(groupId: string, rum: string, nostr: string, r: Revoked): void {
    this.kv.set(`kl:x:${groupId}:${rum}:${nostr}`, r);
  }

  private remove(groupId: string, rum: string, rec: LinkRec): void {
    this.kv.delete(`kl:r:${groupId}:${rum}`);
    this.kv.delete(`kl:n:${groupId}:${rec.n}`);
    this.kv.delete(`kl:N:${rec.n}:${groupId}`);
    this.kv.delete(`kl:R:${rum}:${groupId}`);
    this.kv.delete(`kl:t:${groupId}:${rec.trx}`);
  }
}
