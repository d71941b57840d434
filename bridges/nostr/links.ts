/**
 * What the groups layer remembers, in the bridge's kv (port.kv('nostr')): which event stands for
 * which trx, both ways (a relay's proxy events have ids only this relay knows), the Nostr
 * members of each group (who joined or posted), and, in memory, the ids of each group's recent
 * events for NIP-29 `previous` references.
 */
import type { BridgeKv } from '../port.ts';
import type { EventRef, TrxRef } from './mapping.ts';
import type { NostrEvent } from './types.ts';

/** How many recent event ids of a group `previous` references may name. */
export const RECENT_EVENTS = 500;
/** How many previous references an outbound proxy event carries. */
export const PREVIOUS_REFS = 3;

interface EventLink {
  g: string;
  t: string;
  /** The trx's object type (Note, Like…). */
  y: string | null;
  p: string;
}

export class Links {
  private readonly kv: BridgeKv;
  private readonly recent = new Map<string, string[]>();

  constructor(kv: BridgeKv) {
    this.kv = kv;
  }

  /** Records that `event` stands for a trx of a group. */
  link(groupId: string, trxId: string, type: string | null, event: NostrEvent): void {
    const ref: EventRef = {
      id: event.id,
      pubkey: event.pubkey,
      kind: event.kind,
      tags: event.tags,
    };
    this.kv.set(`tx:${groupId}:${trxId}`, ref);
    const link: EventLink = { g: groupId, t: trxId, y: type, p: event.pubkey };
    this.kv.set(`ev:${event.id}`, link);
    this.seen(groupId, event.id);
  }

  /** The event that stands for a trx of a group, if one was served here. */
  eventOf(groupId: string, trxId: string): EventRef | null {
    return this.kv.get<EventRef>(`tx:${groupId}:${trxId}`) ?? null;
  }

  /** The trx of a group that an event stands for, if it does. */
  trxOf(groupId: string, eventId: string): TrxRef | null {
    const link = this.kv.get<EventLink>(`ev:${eventId}`);
    if (!link || link.g !== groupId) return null;
    return { trxId: link.t, type: link.y, pubkey: link.p };
  }

  /** Notes an event of a group as recent (for `previous`). */
  seen(groupId: string, eventId: string): void {
    let list = this.recent.get(groupId);
    if (!list) {
      list = [];
      this.recent.set(groupId, list);
    }
    list.push(eventId.slice(0, 8));
    if (list.length > RECENT_EVENTS) list.splice(0, list.length - RECENT_EVENTS);
  }

  /** `previous` tags naming a few of the group's recent events. */
  previousTags(groupId: string): string[][] {
    const list = this.recent.get(groupId) ?? [];
    return list.slice(-PREVIOUS_REFS).map((p) => ['previous', p]);
  }

  /** The `previous` references of an event that name no recent event of the group here. */
  unknownPrevious(groupId: string, event: NostrEvent): string[] {
    const refs = event.tags.filter((t) => t[0] === 'previous').map((t) => t[1] ?? '');
    if (refs.length === 0) return [];
    const known = new Set(this.recent.get(groupId) ?? []);
    return refs.filter((r) => !known.has(r));
  }

  isMember(groupId: string, pubkey: string): boolean {
    return this.kv.get(`m:${groupId}:${pubkey}`) !== undefined;
  }

  /** Adds a Nostr member; answers whether it is new. */
  addMember(groupId: string, pubkey: string): boolean {
    return this.kv.cas(`m:${groupId}:${pubkey}`, undefined, 1);
  }

  removeMember(groupId: string, pubkey: string): boolean {
    return this.kv.cas(`m:${groupId}:${pubkey}`, 1, undefined);
  }

  /** The group's Nostr members, at most `limit`. */
  membersOf(groupId: string, limit: number): string[] {
    const prefix = `m:${groupId}:`;
    return this.kv.list(prefix, { limit }).map((e) => e.key.slice(prefix.length));
  }
}
