/**
 * RUM groups as NIP-29 groups: the relay policy (RelayPolicy) of the Nostr bridge. A group
 * exposed on Nostr (and not suspended) is the NIP-29 group whose id is the RUM group id:
 *
 * - Its committed content is served by outbound.ts; client events with its `h` tag are posted
 *   into the chain by inbound.ts.
 * - Its metadata, signed by the relay's own key (NIP-11 `self`) with real created_at values:
 *   39000 (name, about, picture from the group's name and app config; `public`/`open` or
 *   `private`/`closed`, `restricted` when the owner allows only listed keys), 39001 (the RUM
 *   owner, role `owner`), 39002 (members: the owner, then the approved users of a private
 *   group, or the Nostr authors who joined or posted in a public one), 39003 (roles).
 * - Join (9021) and leave (9022) requests are answered: anyone may join a public group (as
 *   anyone may post in a RUM public group), `duplicate:` for a member; a private group's
 *   members are the keys its owner approved on chain.
 * - A public group is readable by anyone; a private group only by connections that AUTHed
 *   (NIP-42) with the Nostr form of a key its owner approved.
 * - Kinds 0, 3, 10002, 10009 and 10011 (profiles, contacts, relay lists, group lists, external
 *   identities) are stored by the relay itself; moderation kinds are refused (a RUM group is
 *   moderated on its chain). The relay lists of the keys this node holds are made by
 *   relay-lists.ts.
 * - A Nostr key linked to a RUM key of the group (key-links.ts: statements signed by both, read
 *   from the committed stream) is one author with it: listed once in 39002, judged by the
 *   owner's lists as the RUM key too. A NIP-39 list sent here that links or unlinks a key in a
 *   served group is posted into that group first.
 */
import type { BridgePort, CommittedItem, ExposedGroup } from '../port.ts';
import { nostrPubkeyOf, verifyEvent } from './author.ts';
import { defaultPolicy } from './default-policy.ts';
import { eventId, loadEventCrypto } from './event.ts';
import { Inbound } from './inbound.ts';
import { IDENTITIES_KIND, KeyLinks, listStatements } from './key-links.ts';
import { Links } from './links.ts';
import { GROUP_CONTENT_KINDS, groupOf, POST_KINDS } from './mapping.ts';
import { Outbound } from './outbound.ts';
import { RelayLists } from './relay-lists.ts';
import type {
  EventVerdict,
  NostrEvent,
  NostrFilter,
  RelayConnection,
  RelayHandle,
  RelayPolicy,
} from './types.ts';

/** Kinds the relay stores for anyone, as any relay would. */
export const STORED_KINDS: ReadonlySet<number> = new Set([0, 3, 10002, 10009, IDENTITIES_KIND]);
export const METADATA_KINDS = [39000, 39001, 39002, 39003] as const;
/** Every kind this layer handles (NIP-11 `supported_kinds`). */
export const SUPPORTED_KINDS: readonly number[] = [
  ...STORED_KINDS,
  ...GROUP_CONTENT_KINDS,
  9021,
  9022,
  ...METADATA_KINDS,
].sort((a, b) => a - b);
/** NIPs this layer adds to the relay's (NIP-11 `supported_nips`). */
export const SUPPORTED_NIPS: readonly number[] = [10, 18, 22, 25, 29, 39, 48, 65];

/** At most this many members are listed in a 39002. */
export const MAX_LISTED_MEMBERS = 1000;
const MEMBER_CACHE_MS = 2000;
const MEMBERS_DEBOUNCE_MS = 200;

export interface NostrGroupsOptions {
  /**
   * Whether an event's id and signature are valid (checks carried events); default: the
   * relay's fastest implementation (event.ts), once start() loaded it, noble until then.
   */
  verify?: (e: NostrEvent) => boolean;
  now?: () => number;
}

export class NostrGroups implements RelayPolicy {
  /** Added to the relay's NIP-11 `supported_nips` and `supported_kinds`. */
  readonly nips: readonly number[] = SUPPORTED_NIPS;
  readonly kinds: readonly number[] = SUPPORTED_KINDS;
  readonly links: Links;
  readonly relayLists: RelayLists;
  readonly keyLinks: KeyLinks;
  private readonly fallback = defaultPolicy([...STORED_KINDS]);
  private readonly port: BridgePort;
  private readonly relay: RelayHandle;
  private readonly inbound: Inbound;
  private readonly outbound: Outbound;
  private readonly now: () => number;
  /** The last created_at of each (group, metadata kind): a new one is always later. */
  private readonly lastMeta = new Map<string, number>();
  private readonly memberCache = new Map<string, { at: number; keys: Set<string> }>();
  private readonly pendingMembers = new Map<string, ReturnType<typeof setTimeout>>();
  private unsubscribe: (() => void) | null = null;
  private verify: (e: NostrEvent) => boolean;
  private readonly fixedVerify: boolean;

  constructor(port: BridgePort, relay: RelayHandle, options: NostrGroupsOptions = {}) {
    this.verify = options.verify ?? verifyEvent;
    this.fixedVerify = options.verify !== undefined;
    this.port = port;
    this.relay = relay;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.links = new Links(port.kv('nostr'));
    this.relayLists = new RelayLists({ port, relay, now: this.now });
    this.keyLinks = new KeyLinks(port.kv('nostr'));
    this.inbound = new Inbound({
      port,
      links: this.links,
      now: this.now,
      onTaken: (groupId, pubkey) => this.addMember(groupId, pubkey),
      linkedRum: (groupId, pubkey) => this.keyLinks.rumOf(groupId, pubkey),
    });
    this.outbound = new Outbound({
      port,
      relay,
      links: this.links,
      verify: (e) => this.verify(e),
      served: (g) => this.served(g),
      onServed: (groupId, event) => {
        if (POST_KINDS.has(event.kind) && event.pubkey !== relay.selfPubkey) {
          this.addMember(groupId, event.pubkey);
        }
        this.relayLists.served(groupId, event);
      },
      onItem: (item) => this.applyLinks(item),
    });
  }

  /** The group, when it is served on Nostr now. */
  served(group: ExposedGroup | undefined | null): ExposedGroup | null {
    return group?.nostr && !group.suspended ? group : null;
  }

  async start(): Promise<void> {
    if (!this.fixedVerify) {
      const crypto = await loadEventCrypto();
      this.verify = (e) => eventId(e) === e.id && crypto.verifySig(e);
    }
    const served = this.port.exposures().filter((g) => this.served(g));
    for (const g of served) this.publishMetadata(g);
    this.relayLists.start(served);
    this.unsubscribe = this.port.onExposureChange((groupId, now) => {
      this.memberCache.delete(groupId);
      const g = this.served(now);
      if (g) this.publishMetadata(g);
    });
    this.outbound.start();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const t of this.pendingMembers.values()) clearTimeout(t);
    this.pendingMembers.clear();
    await this.outbound.stop();
  }

  // ---- RelayPolicy ----

  async onEvent(event: NostrEvent, conn: RelayConnection): Promise<EventVerdict> {
    const hs = event.tags.filter((t) => t[0] === 'h');
    // Not a group's: profiles, follows, relay and group lists, and their deletions, as any relay.
    if (hs.length === 0) {
      this.relayLists.onClientEvent(event);
      if (event.kind === IDENTITIES_KIND) return this.identities(event, conn);
      return this.fallback.onEvent(event, conn);
    }
    const groupId = groupOf(event);
    if (!groupId) return { action: 'refuse', message: 'invalid: an event names one group' };
    const exposed = this.port.exposure(groupId);
    if (exposed?.nostr && exposed.suspended) {
      return { action: 'refuse', message: `blocked: the group is suspended: ${exposed.suspended}` };
    }
    const group = this.served(exposed);
    if (!group)
      return { action: 'refuse', message: `invalid: group ${groupId} is not on this relay` };
    if (event.kind === 9021) return this.join(event, group);
    if (event.kind === 9022) return this.leave(event, group);
    if (event.kind >= 9000 && event.kind <= 9020) {
      return {
        action: 'refuse',
        message: 'restricted: a RUM group is moderated on its chain, by its owner',
      };
    }
    if (group.encryption === 'private' && !this.isMemberConn(group.groupId, conn)) {
      return {
        action: 'refuse',
        message:
          conn.authed.size === 0
            ? 'auth-required: the group is private'
            : 'restricted: the group is private',
      };
    }
    return this.inbound.post(event, group);
  }

  canRead(event: NostrEvent, conn: RelayConnection): boolean {
    const groupId = this.groupOfServed(event);
    if (groupId === null) return true;
    const group = this.served(this.port.exposure(groupId));
    if (!group) return false;
    return group.encryption === 'public' || this.isMemberConn(groupId, conn);
  }

  checkFilter(filter: NostrFilter, conn: RelayConnection): string | null {
    for (const groupId of [...(filter['#h'] ?? []), ...(filter['#d'] ?? [])]) {
      const group = this.served(this.port.exposure(groupId));
      if (!group || group.encryption === 'public' || this.isMemberConn(groupId, conn)) continue;
      return conn.authed.size === 0
        ? `auth-required: group ${groupId} is private: AUTH with a key its owner approved`
        : `restricted: group ${groupId} is private: none of your keys is a member`;
    }
    return null;
  }

  // ---- key links ----

  /** A committed item, in chain order: a key link statement changes the group's links. */
  private applyLinks(item: CommittedItem): void {
    const r = this.keyLinks.apply(item, (e) => this.verify(e));
    if (r.ignored) {
      this.port.log.info(
        { groupId: item.groupId, trx: item.trxId, reason: r.ignored },
        'nostr: key link statement ignored',
      );
    }
    if (r.changed) {
      this.memberCache.delete(item.groupId);
      this.scheduleMembers(item.groupId);
    }
  }

  /**
   * A NIP-39 list: the links and unlinks it states for public groups served here are posted into
   * them (for its Nostr key), then it is stored as any relay stores it.
   */
  private async identities(event: NostrEvent, conn: RelayConnection): Promise<EventVerdict> {
    const { statements, refused } = listStatements(
      event,
      (groupId) => this.served(this.port.exposure(groupId))?.encryption === 'public',
      this.keyLinks,
    );
    if (refused) return { action: 'refuse', message: `invalid: ${refused}` };
    const denied = await this.inbound.postStatements(event, statements);
    if (denied) return { action: 'refuse', message: denied };
    return this.fallback.onEvent(event, conn);
  }

  // ---- membership ----

  /** The group an event belongs to: its h tag, or the d tag of relay-signed metadata. */
  private groupOfServed(event: NostrEvent): string | null {
    if (event.kind >= 39000 && event.kind <= 39003 && event.pubkey === this.relay.selfPubkey) {
      return event.tags.find((t) => t[0] === 'd')?.[1] ?? null;
    }
    return event.tags.find((t) => t[0] === 'h')?.[1] ?? null;
  }

  /** The Nostr keys of the members the owner set on chain (owner, approved users). */
  private chainMembers(groupId: string): Set<string> {
    const hit = this.memberCache.get(groupId);
    const t = Date.now();
    if (hit && t - hit.at < MEMBER_CACHE_MS) return hit.keys;
    const keys = new Set<string>();
    for (const k of this.port.members(groupId)) {
      const x = nostrPubkeyOf(k);
      if (x) keys.add(x);
    }
    this.memberCache.set(groupId, { at: t, keys });
    return keys;
  }

  private isMemberConn(groupId: string, conn: RelayConnection): boolean {
    if (conn.authed.size === 0) return false;
    const members = this.chainMembers(groupId);
    for (const pk of conn.authed) if (members.has(pk)) return true;
    return false;
  }

  private isMember(group: ExposedGroup, pubkey: string): boolean {
    if (this.chainMembers(group.groupId).has(pubkey)) return true;
    return group.encryption === 'public' && this.links.isMember(group.groupId, pubkey);
  }

  private join(event: NostrEvent, group: ExposedGroup): EventVerdict {
    if (this.isMember(group, event.pubkey)) {
      return { action: 'refuse', message: 'duplicate: already a member' };
    }
    if (group.encryption === 'private') {
      return {
        action: 'refuse',
        message:
          "restricted: a private RUM group's members are the keys its owner approves on chain; ask the owner",
      };
    }
    this.addMember(group.groupId, event.pubkey);
    return { action: 'taken' };
  }

  private leave(event: NostrEvent, group: ExposedGroup): EventVerdict {
    if (group.encryption === 'private') {
      return {
        action: 'refuse',
        message: "restricted: a private RUM group's members are set by its owner on chain",
      };
    }
    if (!this.links.removeMember(group.groupId, event.pubkey)) {
      return { action: 'refuse', message: 'invalid: not a member' };
    }
    this.scheduleMembers(group.groupId);
    return { action: 'taken' };
  }

  private addMember(groupId: string, pubkey: string): void {
    if (this.links.addMember(groupId, pubkey)) this.scheduleMembers(groupId);
  }

  /** Publishes the group's 39002 soon (once for many new members). */
  private scheduleMembers(groupId: string): void {
    if (this.pendingMembers.has(groupId)) return;
    const timer = setTimeout(() => {
      this.pendingMembers.delete(groupId);
      const g = this.served(this.port.exposure(groupId));
      if (g) this.put(g.groupId, 39002, 'members of the group', this.memberTags(g));
    }, MEMBERS_DEBOUNCE_MS);
    timer.unref?.();
    this.pendingMembers.set(groupId, timer);
  }

  // ---- metadata ----

  private memberTags(group: ExposedGroup): string[][] {
    const chain = this.chainMembers(group.groupId);
    const keys = new Set(chain);
    if (group.encryption === 'public') {
      for (const pk of this.links.membersOf(group.groupId, MAX_LISTED_MEMBERS)) keys.add(pk);
    }
    // A linked pair is one author, listed once: by its chain member key (the owner, an approved
    // user) when it is one, else by the Nostr key.
    for (const pk of [...keys]) {
      const rum = this.keyLinks.rumOf(group.groupId, pk);
      const x = rum && nostrPubkeyOf(rum);
      if (!x || x === pk || !keys.has(x)) continue;
      keys.delete(chain.has(x) && !chain.has(pk) ? pk : x);
    }
    return [...keys].slice(0, MAX_LISTED_MEMBERS).map((pk) => ['p', pk]);
  }

  /** Signs and stores the group's metadata events (39000–39003). */
  publishMetadata(group: ExposedGroup): void {
    const id = group.groupId;
    const cfg = group.appConfig;
    const meta: string[][] = [['name', cfg.name?.trim() || group.name]];
    const about = cfg.about ?? cfg.description;
    if (about) meta.push(['about', about]);
    const picture = cfg.picture ?? cfg.avatar ?? cfg.icon;
    if (picture && /^https?:\/\/\S+$/i.test(picture)) meta.push(['picture', picture]);
    if (group.encryption === 'public') meta.push(['public'], ['open']);
    else meta.push(['private'], ['closed']);
    // Keys that are in no list may not post: what NIP-29 calls restricted.
    if (!this.port.mayPost(id, '').ok) meta.push(['restricted']);
    meta.push(['supported_kinds', ...GROUP_CONTENT_KINDS.map(String)]);
    this.put(id, 39000, '', meta);
    const owner = nostrPubkeyOf(group.ownerPubkey);
    this.put(id, 39001, 'admins of the group', owner ? [['p', owner, 'owner']] : []);
    this.put(id, 39002, 'members of the group', this.memberTags(group));
    this.put(id, 39003, 'roles of the group', [
      ['role', 'owner', 'the RUM group owner: orders the chain and sets who may post'],
    ]);
  }

  private put(groupId: string, kind: number, content: string, tags: string[][]): void {
    const key = `${groupId}:${kind}`;
    const created = Math.max(this.now(), (this.lastMeta.get(key) ?? 0) + 1);
    this.lastMeta.set(key, created);
    const event = this.relay.sign({
      kind,
      content,
      tags: [['d', groupId], ...tags],
      created_at: created,
    });
    const r = this.relay.put(event);
    if (!r.stored) {
      this.port.log.warn({ groupId, kind, reason: r.reason }, 'nostr: group metadata not stored');
    }
  }
}

/** The groups layer for a relay: nostrBridge's policy factory (started and stopped with it). */
export function groupsPolicy(relay: RelayHandle, port: BridgePort): NostrGroups {
  return new NostrGroups(port, relay);
}
