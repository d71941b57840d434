/**
 * The one interface a bridge uses: the only module under bridges/ that speaks for the node.
 * A bridge never touches the node's tables or libp2p; it reads exposed groups and committed
 * content here, submits what comes from its network here, and sends everything out through the
 * delivery queue it is given here. The node's side is src/gateway/port.ts.
 */
import type { Db } from '../src/storage/db.ts';
import type { DeliveryQueue } from '../src/queue/types.ts';

export type BridgeNetwork = 'activitypub' | 'nostr' | 'bots';

export const BRIDGE_NETWORKS: readonly BridgeNetwork[] = ['activitypub', 'nostr', 'bots'];

/** A group the operator exposes, with what a bridge needs to present it. */
export interface ExposedGroup {
  groupId: string;
  /** `[a-z0-9_]{1,30}`, unique on the node: `@handle@host` on ActivityPub. */
  handle: string;
  activitypub: boolean;
  nostr: boolean;
  bots: boolean;
  /**
   * Why nothing of the group is bridged for now (its owner set app config `bridging` to `off`),
   * or null. A suspended group is served on no network.
   */
  suspended: string | null;
  name: string;
  encryption: 'public' | 'private';
  ownerPubkey: string;
  /** The group's app config (name → value), as its owner set it on chain. */
  appConfig: Record<string, string>;
}

/** Where an item came from, when it entered the chain through a bridge. */
export interface ItemOrigin {
  network: BridgeNetwork;
  externalId: string;
}

/** A committed POST of a group, decrypted when this node may read it. */
export interface CommittedItem {
  groupId: string;
  trxId: string;
  blockId: number;
  /** The trx's place in its block. */
  position: number;
  senderPubkey: string;
  /** The trx's timestamp, nanoseconds since the epoch, as decimal text. */
  timestamp: string;
  /** The ActivityStreams object or activity; null when this node cannot read it. */
  object: Record<string, unknown> | null;
  type: string | null;
  inReplyTo: string | null;
  /** Whether a later Delete removed it (at the time it was read). */
  deleted: boolean;
  origin: ItemOrigin | null;
}

/**
 * The profile an author gives itself in a group: the newest one it posted there, in chain order
 * (a POST `{"type":"Create","object":{"type":"Profile","name":…,"image":…,"describes":…}}`, as
 * rum-app writes it). Its text is the author's own: untrusted, to be shown as plain text.
 */
export interface AuthorProfile {
  /** The name, trimmed (at most 1000 characters), or null when the profile has none. */
  name: string | null;
  /** The avatar (PNG, JPEG, GIF or WebP, its bytes checked against the type), or null. */
  image: { mediaType: string; content: Uint8Array } | null;
  /** The trx that carries the profile, and its timestamp (ns since the epoch, decimal text). */
  trxId: string;
  timestamp: string;
}

export interface StreamOptions {
  /** A stable name of the consumer (`activitypub`, `bot:12`): its cursor is kept under it. */
  consumer: string;
  groupId: string;
  /**
   * The network the consumer sends to: items that came from it are skipped (never sent back).
   * Without one nothing is skipped (a consumer that serves every item, such as a relay's store).
   */
  network?: BridgeNetwork;
  /** Where a consumer with no cursor yet starts: after what is committed now, or at genesis. */
  from: 'head' | 'genesis';
}

/**
 * Committed items of one group for one consumer, in chain order, from a durable cursor. After a
 * restart or kill -9, a new stream with the same consumer resumes right after the last item
 * acknowledged: no gap, and nothing acknowledged comes again.
 */
export interface CommittedStream {
  /**
   * Up to `max` items after the last one returned; waits for the next commit when there is none,
   * and answers [] once the stream is closed.
   */
  next(max?: number): Promise<CommittedItem[]>;
  /** Acknowledges an item and everything before it (durable when this returns). */
  ack(item: Pick<CommittedItem, 'blockId' | 'position'>): void;
  close(): void;
}

export interface SubmitInput {
  groupId: string;
  network: BridgeNetwork;
  /** The item's id on its network (an ActivityPub object id, a Nostr event id, a bot message). */
  externalId: string;
  /** The author's id on its network (an actor URI, a Nostr pubkey, a bot id). */
  author: string;
  /** An ActivityStreams object or activity, as a member's post. */
  object: Record<string, unknown>;
  /**
   * How long the trx lives when not the node's `trxTtlMs`: producers refuse it after (its
   * Expired), so a sender told it failed then knows it will never appear.
   */
  ttlMs?: number;
}

export interface SubmitResult {
  trxId: string;
  /** The author's RUM key (held by the gateway), as quorum encodes public keys. */
  pubkey: string;
  /** True when the item had been submitted before: nothing new was posted. */
  duplicate: boolean;
}

/**
 * A bridge's own small persistent state (followers, remembered preferences, caches), kept in the
 * node's database. Keys are strings; values anything JSON can hold, null included.
 */
export interface BridgeKv {
  get<T = unknown>(key: string): T | undefined;
  /**
   * With ttlMs, the entry is gone (get answers undefined) that many ms from now. An entry with a
   * ttl is a cache, a replay window or an idempotence mark: it is written without waiting for
   * an fsync (a power loss may take the last few; a killed process loses none). An entry without
   * one is durable when set returns.
   */
  set(key: string, value: unknown, ttlMs?: number): void;
  delete(key: string): void;
  /** Live entries whose key starts with `prefix`, in key order, after the key `after`. */
  list(
    prefix: string,
    options?: { after?: string; limit?: number },
  ): { key: string; value: unknown }[];
  /**
   * Sets `next` only if the value is (deep-equal to) `expected`, atomically; `expected`
   * undefined means absent, `next` undefined deletes. Answers whether it set. Durable as `set`
   * is: unsynced with a ttl.
   */
  cas(key: string, expected: unknown, next: unknown, ttlMs?: number): boolean;
}

/** Secrets of a bridge (its actors' private keys), kept encrypted in the node's keystore. */
export interface BridgeSecrets {
  get(name: string): Uint8Array | undefined;
  /** The secret, made by `make` (once, even when asked twice at once) if there is none. */
  getOrCreate(name: string, make: () => Promise<Uint8Array>): Promise<Uint8Array>;
}

export interface BridgePort {
  /** The public base URL of the gateway (`--origin`), without a trailing slash. */
  readonly origin: string;
  /** Everything a bridge sends out goes through here. */
  readonly queue: DeliveryQueue;
  exposures(): ExposedGroup[];
  exposure(groupId: string): ExposedGroup | undefined;
  exposureByHandle(handle: string): ExposedGroup | undefined;
  /** Told when a group is exposed, changed, suspended or removed (`null`); returns unsubscribe. */
  onExposureChange(listener: (groupId: string, now: ExposedGroup | null) => void): () => void;
  stream(options: StreamOptions): CommittedStream;
  /** One committed item by trx id, or undefined. */
  item(groupId: string, trxId: string): CommittedItem | undefined;
  /**
   * Where a trx of a group stands on this node: committed, pending (in the mempool, waiting for
   * a block), or unknown (never seen, or dropped: a producer here refused it when the group's
   * rules changed or it expired).
   */
  trxState(groupId: string, trxId: string): 'committed' | 'pending' | 'unknown';
  /**
   * Committed items of a group, newest first, before a place (or from the newest): what a
   * bridge serves as history (an outbox), with the original timestamps.
   */
  history(
    groupId: string,
    options: { before?: Pick<CommittedItem, 'blockId' | 'position'>; limit: number },
  ): CommittedItem[];
  /**
   * Committed items that answer a trx (their `inReplyTo` is it: replies, and likes of it), oldest
   * first, at most `limit` (up to 1000).
   */
  replies(groupId: string, trxId: string, limit: number): CommittedItem[];
  /**
   * Whether a RUM key may post in a group under the owner's chain rules (the allow and deny
   * lists, the POST auth mode), as producers will judge its trx: ok, or the reason it may not.
   */
  mayPost(groupId: string, pubkey: string): { ok: true } | { ok: false; reason: string };
  /**
   * The keys the group's owner made members on chain: the owner, then the approved users (of a
   * private group; a public group has none beyond its owner). Empty for an unknown group.
   */
  members(groupId: string): string[];
  /** Whether a RUM key has posted in a group. */
  hasAuthor(groupId: string, pubkey: string): boolean;
  /**
   * The profile a RUM key gives itself in a group, or undefined when it posted none there (or
   * the node does not have the group). Cheap enough to ask per rendering: kept in memory, and
   * read again only after the author posts in the group.
   */
  profile(groupId: string, pubkey: string): AuthorProfile | undefined;
  /** The trx an outside item became (network, its id there), if it was submitted. */
  trxOfOrigin(
    network: BridgeNetwork,
    externalId: string,
  ): { groupId: string; trxId: string } | undefined;
  /**
   * Posts an item from another network into an exposed group, signed by the author's own key
   * (made on first use and kept in the node's encrypted keystore). Idempotent on
   * (network, externalId). Throws BridgeRefusedError when the group does not take it.
   */
  submit(input: SubmitInput): Promise<SubmitResult>;
  /**
   * This node's own author in a group: the key its API posts with there (quorum's encoding),
   * and a BIP-340 Schnorr signature by that key over a 32-byte message (a RUM key is a
   * secp256k1 key, the Nostr curve). For what only the author's own key may say of it (the
   * Nostr bridge's relay list of the node's own authors). Undefined when the node does not
   * have the group.
   */
  nodeAuthor(
    groupId: string,
  ): { pubkey: string; signSchnorr(message: Uint8Array): Uint8Array } | undefined;
  /** The RUM key that stands for an outside author, if it posted before. */
  authorKey(network: BridgeNetwork, author: string): string | undefined;
  /** The outside author behind a RUM key, when the gateway holds it. */
  authorOf(pubkey: string): { network: BridgeNetwork; author: string } | undefined;
  /** Checks that a URL may be fetched or delivered to (not a private address, unless allowed). */
  checkUrl(url: string | URL): Promise<void>;
  /** Whether bridges may reach loopback and private addresses (`--allowprivateaddress`). */
  readonly allowPrivateAddress: boolean;
  /** The bridge's own persistent key-value state. */
  kv(bridge: BridgeNetwork): BridgeKv;
  /**
   * Runs `fn` in one transaction of the node's database: the kv writes it makes are committed
   * together (one disk sync for many, instead of one each).
   *
   * With `{ sync: false }` the commit does not wait for an fsync: for state the bridge derives
   * from the committed stream and writes before the cursor that passes it (a power loss then
   * loses both, and the items are served again); a killed process loses nothing either way.
   */
  transaction(fn: () => void, options?: { sync?: boolean }): void;
  /**
   * The node's database connection, for the tables a bridge owns (the Nostr relay's events and
   * their indexes, in the node's migrations). Nothing of the node's own is read or written
   * through it: that goes through the methods above. One connection for the node and its
   * bridges: a second one to the same file would wait on the first's write lock from the same
   * thread (a bridge write inside `transaction` above), which never comes free.
   */
  database(): Db;
  secrets(bridge: BridgeNetwork): BridgeSecrets;
  /** The node's logger, for a bridge's own lines. */
  readonly log: import('pino').Logger;
}

/** A submit the group does not take: the reason is for the remote caller. */
export class BridgeRefusedError extends Error {
  override name = 'BridgeRefusedError';
  readonly status: number;
  constructor(message: string, status = 403) {
    super(message);
    this.status = status;
  }
}

export {
  type DeliveryHandler,
  type DeliveryJob,
  type DeliveryQueue,
  type EnqueueInput,
  type JobStatus,
  PermanentDeliveryError,
  RetryAfterError,
} from '../src/queue/types.ts';
