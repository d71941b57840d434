/**
 * The seams of the Nostr bridge: the relay core (NIP-01 and the NIPs it carries, storage,
 * subscriptions; bridges/nostr/relay.ts, store.ts) knows nothing of RUM; the groups layer
 * (NIP-29 groups on RUM groups, mapping, inbound and outbound; bridges/nostr/groups.ts and
 * friends) plugs into it through RelayPolicy and feeds it through RelayHandle.
 */

/** A Nostr event as NIP-01 defines it (validated: lowercase hex, integer fields). */
export interface NostrEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

/** A NIP-01 filter (validated), with NIP-50 `search`. Tag filters are `#<one letter>`. */
export interface NostrFilter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  search?: string;
  [tag: `#${string}`]: string[] | undefined;
}

/** One client connection, as the policy sees it. */
export interface RelayConnection {
  /** A unique id for logs. */
  readonly id: string;
  /** The client's address (after the gateway's proxy rules). */
  readonly ip: string;
  /** Pubkeys this connection proved with NIP-42 AUTH. */
  readonly authed: ReadonlySet<string>;
}

/** What the policy answers for an EVENT (the relay has checked its form, id and signature). */
export type EventVerdict =
  /** The relay stores it (replaceable rules, NIP-09, NIP-40 apply), broadcasts it, answers OK. */
  | { action: 'store' }
  /**
   * The policy took it (a group post becomes a trx): answer `OK true` with `message` (for
   * example `duplicate: …`). It reaches the store and the subscribers later, through
   * RelayHandle.put, once committed.
   */
  | { action: 'taken'; message?: string }
  /** Refused: `message` starts with a NIP-01 prefix (`blocked:`, `restricted:`, `invalid:`…). */
  | { action: 'refuse'; message: string };

export interface RelayPolicy {
  /** Decides what happens to a verified EVENT. */
  onEvent(event: NostrEvent, conn: RelayConnection): Promise<EventVerdict>;
  /**
   * Whether a stored or live event may go to this connection (a private group's events only
   * to members who AUTHed). Called for every event sent, so it must be cheap.
   */
  canRead(event: NostrEvent, conn: RelayConnection): boolean;
  /**
   * Checked for each filter of a REQ or COUNT before it runs: null, or a CLOSED message with
   * its prefix (`auth-required: …`, `restricted: …`).
   */
  checkFilter?(filter: NostrFilter, conn: RelayConnection): string | null;
  /**
   * True when canRead answers true for every event and connection: COUNT is then answered by
   * the database alone. Otherwise COUNT reads the matching events and asks canRead of each.
   */
  readonly readsAll?: boolean;
  /** NIPs the policy adds to NIP-11's `supported_nips` (29 for groups). */
  readonly nips?: readonly number[];
  /** The kinds the policy takes, for NIP-11's `supported_kinds`. */
  readonly kinds?: readonly number[];
}

/** What the groups layer may do to the relay core. */
export interface RelayHandle {
  /**
   * Stores an event that did not come through a connection (a committed post, group metadata
   * signed by the relay key) under the same rules as a client's, and sends it to the live
   * subscriptions that match. Answers whether it was stored, and why not.
   */
  put(event: NostrEvent): { stored: boolean; reason?: string };
  /** Removes an event by id (a RUM delete), and tells nobody (NIP-01 has no retraction). */
  remove(id: string): boolean;
  /**
   * Stored events that match a filter, newest first, at most its limit (or `limit`): what the
   * store holds, with no policy applied (the groups layer asks it what an author said itself).
   */
  query(filter: NostrFilter, limit: number): NostrEvent[];
  /** The relay's own key (NIP-11 `self`): signs group metadata and proxy events. */
  readonly selfPubkey: string;
  sign(template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>): NostrEvent;
}
