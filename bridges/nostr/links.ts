/**
 * What the groups layer remembers, in the bridge's kv (port.kv('nostr')): which event stands for
 * which trx, both ways (a relay's proxy events have ids only this relay knows), the Nostr
 * members of each group (who joined or posted), how far the relay has served each group's
 * committed stream (`at:<group>`: what the publisher to outside relays waits for), and, in
 * memory, the ids of each group's recent events for NIP-29 `previous` references.
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

/** A place in a group's chain (port.ts CommittedItem's blockId and position). */
export interface ServedPlace {
  blockId: number;
  position: number;
}

/** Members remembered as known (kept in the kv) before the memory is cleared. */
const MAX_KNOWN_MEMBERS = 100_000;

export class Links {
  private readonly kv: BridgeKv;
  /** Member keys (`m:<group>:<pubkey>`) known to be in the kv. */
  private readonly members = new Set<string>();
  private readonly recent = new Map<string, string[]>();
  private readonly passedWaiters = new Map<string, Set<() => void>>();

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

  /**
   * Records that the relay has served a group's committed stream through a place (written in the
   * transaction that serves it, so it is never ahead of what was served), and wakes whoever
   * waits for it.
   */
  passed(groupId: string, place: ServedPlace): void {
    this.kv.set(`at:${groupId}`, [place.blockId, place.position]);
    const waiting = this.passedWaiters.get(groupId);
    if (!waiting) return;
    this.passedWaiters.delete(groupId);
    for (const wake of waiting) wake();
  }

  /** Whether the relay has served (or passed over) the item at a place of a group. */
  hasPassed(groupId: string, place: ServedPlace): boolean {
    const at = this.kv.get<[number, number]>(`at:${groupId}`);
    if (!at) return false;
    return at[0] > place.blockId || (at[0] === place.blockId && at[1] >= place.position);
  }

  /**
   * Resolves at the next `passed` of a group (read `hasPassed` again then: the transaction that
   * called it may have been rolled back), or when `signal` aborts.
   */
  nextPassed(groupId: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let waiting = this.passedWaiters.get(groupId);
      if (!waiting) {
        waiting = new Set();
        this.passedWaiters.set(groupId, waiting);
      }
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.passedWaiters.get(groupId)?.delete(wake);
        resolve();
      };
      waiting.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  isMember(groupId: string, pubkey: string): boolean {
    return this.kv.get(`m:${groupId}:${pubkey}`) !== undefined;
  }

  /** Adds a Nostr member; answers whether it is new. */
  addMember(groupId: string, pubkey: string): boolean {
    const key = `m:${groupId}:${pubkey}`;
    // Every event of a group names its author as a member: most are known already, and
    // asking the kv (a transaction) for each was a twentieth of the relay's ingest.
    if (this.members.has(key)) return false;
    const added = this.kv.cas(key, undefined, 1);
    if (this.members.size >= MAX_KNOWN_MEMBERS) this.members.clear();
    this.members.add(key);
    return added;
  }

  removeMember(groupId: string, pubkey: string): boolean {
    const key = `m:${groupId}:${pubkey}`;
    this.members.delete(key);
    return this.kv.cas(key, 1, undefined);
  }

  /** The group's Nostr members, at most `limit`. */
  membersOf(groupId: string, limit: number): string[] {
    const prefix = `m:${groupId}:`;
    return this.kv.list(prefix, { limit }).map((e) => e.key.slice(prefix.length));
  }
}
