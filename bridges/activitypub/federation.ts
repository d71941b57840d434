/**
 * The Fedify federation of the ActivityPub bridge: who the actors are (each group exposed on
 * ActivityPub a `Group`, each RUM author seen in one a `Person`, the instance actor an
 * `Application`), their keys, WebFinger and NodeInfo, the followers and outbox collections, and
 * every post served at its id. Inbox listeners are in inbound.ts, sending in outbound.ts.
 */
import { ActorInfoCache } from './actor-cache.ts';
import { createHash } from 'node:crypto';
import { createFederation, exportJwk, type Context, type Federation } from '@fedify/fedify';
import {
  Activity,
  Announce,
  Application,
  Create,
  Endpoints,
  Group,
  Image,
  Note,
  type Object as ASObject,
  Person,
  type Recipient,
} from '@fedify/vocab';
import type { AuthorProfile, BridgeKv, BridgePort, CommittedItem, ExposedGroup } from '../port.ts';
import { Blocks } from './blocks.ts';
import { registerInbox } from './inbound.ts';
import { ActorKeys } from './keys.ts';
import { PortKvStore } from './kv.ts';
import {
  type MappingContext,
  toAnnounce,
  toAnnounceOfActivity,
  toApActivity,
  toApObject,
} from './mapping.ts';
import { wrapLoaders } from './loaders.ts';
import { DeliveryMessageQueue } from './mq.ts';
import { avatarUrl, recordGone as recordDeliveryGone } from './pages.ts';
import {
  ACTOR_PATH,
  ANNOUNCE_ACTIVITY_PATH,
  ANNOUNCE_PATH,
  ApUrls,
  authorIdentifier,
  CREATE_PATH,
  FOLLOWERS_PATH,
  groupIdentifier,
  handleOf,
  INBOX_PATH,
  INSTANCE,
  INSTANCE_PATH,
  OUTBOX_PATH,
  POST_PATH,
  pubkeyOf,
  SHARED_INBOX_PATH,
} from './urls.ts';

export const SOFTWARE = { name: 'rum-node', version: '0.1.0' };
/** How long a signed request stays valid (and its signature is remembered against replays). */
export const SIGNATURE_WINDOW_MS = 3600_000;
const PAGE = 20;
const FOLLOWERS_PAGE = 100;

/** One follower of a local actor, as kept in the bridge's kv. */
export interface Follower {
  id: string;
  inbox: string;
  sharedInbox: string | null;
  /** The Follow activity's id. */
  follow: string;
  since: number;
}

/** The followers of the bridge's actors: one kv entry per follower. */
export class Followers {
  private readonly kv: BridgeKv;

  constructor(kv: BridgeKv) {
    this.kv = kv;
  }

  private prefix(identifier: string): string {
    return `followers:${identifier}\n`;
  }

  add(identifier: string, f: Follower): void {
    this.kv.set(this.prefix(identifier) + f.id, f);
  }

  remove(identifier: string, actorId: string): boolean {
    const key = this.prefix(identifier) + actorId;
    if (this.kv.get(key) === undefined) return false;
    this.kv.delete(key);
    return true;
  }

  get(identifier: string, actorId: string): Follower | undefined {
    return this.kv.get<Follower>(this.prefix(identifier) + actorId);
  }

  /** A page of followers after a cursor (a follower id), in id order. */
  page(identifier: string, after: string | null, limit: number) {
    const prefix = this.prefix(identifier);
    const rows = this.kv.list(prefix, { limit, ...(after ? { after: prefix + after } : {}) });
    return rows.map((r) => r.value as Follower);
  }

  all(identifier: string): Follower[] {
    const out: Follower[] = [];
    let after: string | null = null;
    for (;;) {
      const page = this.page(identifier, after, 1000);
      out.push(...page);
      if (page.length < 1000) return out;
      after = page[page.length - 1]!.id;
    }
  }

  count(identifier: string): number {
    return this.all(identifier).length;
  }
}

export function recipientOf(f: Follower): Recipient {
  return {
    id: new URL(f.id),
    inboxId: new URL(f.inbox),
    endpoints: f.sharedInbox ? { sharedInbox: new URL(f.sharedInbox) } : null,
  };
}

/** Everything the bridge's parts share. */
export class ApState {
  readonly port: BridgePort;
  readonly kv: BridgeKv;
  readonly keys: ActorKeys;
  readonly followers: Followers;
  readonly blocks: Blocks;
  /** Remote actors' names and URLs, as the inbox last fetched them. */
  readonly actorInfos = new ActorInfoCache();
  /** The public origin is known once the gateway is bound: read it when first needed. */
  private urlsCache: ApUrls | null = null;
  private fed: Federation<void> | null = null;
  private readonly jwks = new Map<string, Promise<unknown>>();

  constructor(port: BridgePort) {
    this.port = port;
    this.kv = port.kv('activitypub');
    this.keys = new ActorKeys(port.secrets('activitypub'));
    this.followers = new Followers(this.kv);
    this.blocks = new Blocks(this.kv);
  }

  get urls(): ApUrls {
    if (!this.urlsCache || this.urlsCache.origin !== this.port.origin.replace(/\/+$/, '')) {
      this.urlsCache = new ApUrls(this.port.origin);
    }
    return this.urlsCache;
  }

  get federation(): Federation<void> {
    this.fed ??= buildFederation(this);
    return this.fed;
  }

  context(): Context<void> {
    return this.federation.createContext(new URL(this.urls.origin), undefined);
  }

  /** One of our actors as its dispatcher renders it (for an `Update` of it). */
  actor(identifier: string) {
    const ctx = this.federation.createContext(new Request(this.urls.origin), undefined);
    return ctx.getActor(identifier);
  }

  get log() {
    return this.port.log;
  }

  /** A group served on ActivityPub: exposed there, not suspended, public. */
  served(g: ExposedGroup | undefined): ExposedGroup | null {
    if (!g || !g.activitypub || g.suspended !== null || g.encryption !== 'public') return null;
    return g;
  }

  servedGroups(): ExposedGroup[] {
    return this.port.exposures().filter((g) => this.served(g) !== null);
  }

  /** The served group of an actor identifier `g.<handle>`, or null. */
  groupOf(identifier: string): ExposedGroup | null {
    const handle = handleOf(identifier);
    return handle === null ? null : this.served(this.port.exposureByHandle(handle));
  }

  /** A committed item of a served group, by trx id. */
  findItem(trxId: string): { item: CommittedItem; group: ExposedGroup } | null {
    for (const group of this.servedGroups()) {
      const item = this.port.item(group.groupId, trxId);
      if (item) return { item, group };
    }
    return null;
  }

  /** What the mapping needs to render a group's items. */
  mapping(group: ExposedGroup): MappingContext {
    const urls = this.urls;
    return {
      urls,
      handle: group.handle,
      replyTarget: (trxId) => {
        const item = this.port.item(group.groupId, trxId);
        if (!item) return null;
        if (item.origin?.network === 'activitypub') {
          try {
            return new URL(item.origin.externalId);
          } catch {
            return null;
          }
        }
        return urls.post(trxId);
      },
    };
  }

  /** The trx a URL stands for in a group (our post URL, or a bridged ActivityPub id). */
  resolveTrx(group: ExposedGroup, url: URL): string | null {
    const trxId = this.urls.trxOf(url);
    if (trxId) return this.port.item(group.groupId, trxId) ? trxId : null;
    const origin = this.port.trxOfOrigin('activitypub', url.href);
    return origin && origin.groupId === group.groupId ? origin.trxId : null;
  }

  /** The group's announce setting (app config `announce`: `top-level`, the default, or `all`). */
  announceSetting(group: ExposedGroup): 'top-level' | 'all' {
    return group.appConfig.announce === 'all' ? 'all' : 'top-level';
  }

  /**
   * The profile a RUM key gives itself for its Person actor: its newest among the served groups
   * (an actor is one for every group), or undefined when it posted none there.
   */
  authorProfile(pubkey: string): AuthorProfile | undefined {
    let best: AuthorProfile | undefined;
    for (const g of this.servedGroups()) {
      const p = this.port.profile(g.groupId, pubkey);
      if (p && (!best || BigInt(p.timestamp) > BigInt(best.timestamp))) best = p;
    }
    return best;
  }

  /** What a RUM key is called in a group: its profile's name there, or a short form of it. */
  authorName(groupId: string, pubkey: string): string {
    return displayName(this.port.profile(groupId, pubkey)?.name) ?? shortKey(pubkey);
  }

  /** Whether a RUM key has posted in a served group (then it is a Person here). */
  isAuthor(pubkey: string): boolean {
    return this.servedGroups().some((g) => this.port.hasAuthor(g.groupId, pubkey));
  }

  /** The private JWK of a key id of one of our actors (for queue messages). */
  privateJwk(keyId: string): Promise<unknown> {
    let p = this.jwks.get(keyId);
    if (!p) {
      p = (async () => {
        const u = new URL(keyId);
        u.hash = '';
        const parsed = this.context().parseUri(u);
        if (parsed?.type !== 'actor') throw new Error(`not a key of ours: ${keyId}`);
        const pairs = await this.context().getActorKeyPairs(parsed.identifier);
        const pair = pairs.find((k) => k.keyId.href === keyId);
        if (!pair) throw new Error(`no such key ${keyId}`);
        return exportJwk(pair.privateKey);
      })();
      this.jwks.set(keyId, p);
      p.catch(() => this.jwks.delete(keyId));
    }
    return p;
  }
}

function httpUrl(v: string | undefined): URL | null {
  if (!v) return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u : null;
  } catch {
    return null;
  }
}

/** The first app-config value set among names (owners name these keys differently). */
function config(g: ExposedGroup, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = g.appConfig[n];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The longest display name shown, in characters (Mastodon allows its own users 30). */
export const MAX_DISPLAY_NAME_CHARS = 64;

/**
 * A name from an author's profile as a display name: plain text on one line, without control
 * or direction-changing characters, at most MAX_DISPLAY_NAME_CHARS; null when nothing is left.
 * Escaping is left to where it is written (Fedify's JSON, the pages' HTML).
 */
export function displayName(raw: string | null | undefined): string | null {
  if (typeof raw !== 'string') return null;
  const text = raw
    .replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ')
    // Marks and overrides of direction, which would turn the text around them, and BOMs.
    .replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (text === '') return null;
  const chars = Array.from(text);
  if (chars.length <= MAX_DISPLAY_NAME_CHARS) return text;
  return `${chars
    .slice(0, MAX_DISPLAY_NAME_CHARS - 1)
    .join('')
    .trimEnd()}…`;
}

/** A short, stable form of a RUM key for a display name. */
export function shortKey(pubkey: string): string {
  return `${pubkey.slice(0, 8)}…${pubkey.slice(-4)}`;
}

/** The place (`<block>.<position>`) a page cursor names, or undefined for the newest. */
function placeOf(cursor: string): { blockId: number; position: number } | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(cursor);
  return m ? { blockId: Number(m[1]), position: Number(m[2]) } : undefined;
}

function isPost(item: CommittedItem): boolean {
  return item.type === 'Note' || item.type === 'Article';
}

export function buildFederation(state: ApState): Federation<void> {
  const port = state.port;
  const mq = new DeliveryMessageQueue(port.queue);
  const federation = createFederation<void>({
    kv: new PortKvStore(state.kv),
    queue: { outbox: mq, fanout: mq },
    manuallyStartQueue: true,
    origin: state.urls.origin,
    allowPrivateAddress: port.allowPrivateAddress,
    userAgent: { software: `${SOFTWARE.name}/${SOFTWARE.version}` },
    signatureTimeWindow: { milliseconds: SIGNATURE_WINDOW_MS },
    // The delivery queue limits each destination and backs off; no second breaker on top.
    circuitBreaker: false,
  });
  wrapLoaders(federation);

  federation
    .setActorDispatcher(ACTOR_PATH, async (ctx, identifier) => {
      const keys = await ctx.getActorKeyPairs(identifier);
      const common = {
        id: ctx.getActorUri(identifier),
        inbox: ctx.getInboxUri(identifier),
        outbox: ctx.getOutboxUri(identifier),
        followers: ctx.getFollowersUri(identifier),
        endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
        publicKey: keys[0]?.cryptographicKey ?? null,
        assertionMethods: keys.map((k) => k.multikey),
      };
      if (identifier === INSTANCE) {
        return new Application({
          ...common,
          preferredUsername: new URL(state.urls.origin).hostname,
          name: `${SOFTWARE.name} gateway`,
          manuallyApprovesFollowers: true,
        });
      }
      const group = state.groupOf(identifier);
      if (group) {
        const name = config(group, 'group_name', 'name', 'title') ?? group.name;
        const summary = config(
          group,
          'group_desc',
          'group_description',
          'description',
          'desc',
          'summary',
        );
        const icon = httpUrl(config(group, 'group_icon', 'icon', 'avatar', 'group_avatar'));
        return new Group({
          ...common,
          preferredUsername: group.handle,
          name,
          summary: summary ? `<p>${escapeHtml(summary)}</p>` : null,
          icon: icon ? new Image({ url: icon }) : null,
          url: state.urls.groupPage(group.handle),
          manuallyApprovesFollowers: false,
          discoverable: true,
          indexable: true,
        });
      }
      const pubkey = pubkeyOf(identifier);
      if (pubkey && state.isAuthor(pubkey)) {
        const profile = state.authorProfile(pubkey);
        const image = profile?.image;
        return new Person({
          ...common,
          preferredUsername: identifier,
          name: displayName(profile?.name) ?? shortKey(pubkey),
          icon: image
            ? new Image({
                url: avatarUrl(state.urls, pubkey, profile.trxId),
                mediaType: image.mediaType,
              })
            : null,
          summary: `<p>RUM key ${escapeHtml(pubkey)}</p>`,
          discoverable: true,
          indexable: true,
        });
      }
      return null;
    })
    .setKeyPairsDispatcher(async (_ctx, identifier) => state.keys.pairs(identifier))
    .mapHandle((_ctx, username) => {
      const name = username.toLowerCase();
      if (name.startsWith('u_')) {
        const pubkey = pubkeyOf(name);
        return pubkey && state.isAuthor(pubkey) ? name : null;
      }
      const group = state.served(port.exposureByHandle(name));
      return group ? groupIdentifier(group.handle) : null;
    })
    .mapActorAlias(INSTANCE_PATH, INSTANCE);

  federation.setNodeInfoDispatcher('/nodeinfo/2.1', () => ({
    software: { name: SOFTWARE.name, version: SOFTWARE.version },
    protocols: ['activitypub'],
    openRegistrations: false,
    usage: { users: { total: state.servedGroups().length }, localPosts: 0, localComments: 0 },
  }));

  federation
    .setFollowersDispatcher(FOLLOWERS_PATH, (_ctx, identifier, cursor, filter) => {
      if (cursor == null) {
        // The form sendActivity(…, "followers") reads: all of them at once.
        // Blocked followers are removed when blocked; one left behind still gets nothing.
        let all = state.followers.all(identifier).filter((f) => !state.blocks.blocks(f.id));
        if (filter) all = all.filter((f) => new URL(f.id).origin === filter.origin);
        return { items: all.map(recipientOf) };
      }
      const page = state.followers.page(
        identifier,
        cursor === 'start' ? null : cursor,
        FOLLOWERS_PAGE,
      );
      return {
        items: page.map(recipientOf),
        nextCursor: page.length === FOLLOWERS_PAGE ? page[page.length - 1]!.id : null,
      };
    })
    .setCounter((_ctx, identifier) => state.followers.count(identifier))
    .setFirstCursor(() => 'start');

  federation
    .setOutboxDispatcher(OUTBOX_PATH, (ctx, identifier, cursor) => {
      if (cursor == null) return null;
      const group = state.groupOf(identifier);
      if (!group) return { items: [] };
      const items = port.history(group.groupId, { before: placeOf(cursor), limit: PAGE });
      const activities: Activity[] = [];
      for (const item of items) {
        if (item.deleted || !isPost(item) || item.origin) continue;
        const a = toApActivity(item, state.mapping(group));
        if (a) activities.push(a);
      }
      void ctx;
      const last = items[items.length - 1];
      return {
        items: activities,
        nextCursor: items.length === PAGE && last ? `${last.blockId}.${last.position}` : null,
      };
    })
    .setFirstCursor(() => 'newest');

  // One URL per trx: its Note or Article, or the activity (Like, Delete, Update) it is.
  federation.setObjectDispatcher(Note, POST_PATH, (_ctx, { id }) => {
    const found = state.findItem(id);
    if (!found || found.item.origin) return null;
    const { item, group } = found;
    const m = state.mapping(group);
    const obj: ASObject | null = isPost(item) ? toApObject(item, m) : toApActivity(item, m);
    return obj as Note | null;
  });
  federation.setObjectDispatcher(Create, CREATE_PATH, (_ctx, { id }) => {
    const found = state.findItem(id);
    if (!found || found.item.origin || !isPost(found.item)) return null;
    const a = toApActivity(found.item, state.mapping(found.group));
    return a instanceof Create ? a : null;
  });
  federation.setObjectDispatcher(Announce, ANNOUNCE_PATH, (_ctx, { identifier, id }) => {
    const group = state.groupOf(identifier);
    if (!group) return null;
    const item = port.item(group.groupId, id);
    if (!item || item.origin || !isPost(item)) return null;
    return toAnnounce(item, state.mapping(group));
  });
  // The group's FEP-1b12 Announce of a trx's activity (Fedify takes one dispatcher per class:
  // Announce serves the boosts above, so these are filed under Activity).
  federation.setObjectDispatcher(Activity, ANNOUNCE_ACTIVITY_PATH, (_ctx, { identifier, id }) => {
    const group = state.groupOf(identifier);
    const item = group ? port.item(group.groupId, id) : undefined;
    return group && item ? toAnnounceOfActivity(item, state.mapping(group)) : null;
  });

  // A personal inbox that is gone (404/410) drops that follower; a shared inbox that is gone
  // does not drop the whole instance (its other actors may still be there).
  federation.setOutboxPermanentFailureHandler((_ctx, { inbox, actorIds, statusCode, activity }) => {
    recordGone(state.kv, inbox.href, statusCode);
    // Fedify ends the job without an error on 404/410: the post's page counts it as failed.
    recordDeliveryGone(state, activity.id?.href, inbox.href, statusCode);
    for (const group of state.servedGroups()) {
      const identifier = groupIdentifier(group.handle);
      for (const actor of actorIds) {
        const f = state.followers.get(identifier, actor.href);
        if (f && f.inbox === inbox.href) {
          state.followers.remove(identifier, actor.href);
          state.log.info({ follower: actor.href, group: group.handle }, 'ap: follower gone');
        }
      }
    }
  });

  registerInbox(federation.setInboxListeners(INBOX_PATH, SHARED_INBOX_PATH), state);
  return federation;
}

/** A permanent delivery failure (404/410) per destination host, for the operator's view. */
export interface GoneRecord {
  inbox: string;
  status: number | null;
  at: number;
}

const GONE = 'gone:';
const GONE_TTL_MS = 7 * 24 * 3600_000;

function recordGone(kv: BridgeKv, inbox: string, status: number | undefined): void {
  try {
    const rec: GoneRecord = { inbox, status: status ?? null, at: Date.now() };
    kv.set(GONE + new URL(inbox).host, rec, GONE_TTL_MS);
  } catch {
    // An inbox that is not a URL has no host to file it under.
  }
}

/** The last permanent failure of each destination host (within a week). */
export function goneByHost(kv: BridgeKv): Map<string, GoneRecord> {
  const out = new Map<string, GoneRecord>();
  for (const r of kv.list(GONE, { limit: 10_000 })) {
    out.set(r.key.slice(GONE.length), r.value as GoneRecord);
  }
  return out;
}

/** A deterministic id for an activity of ours derived from another id. */
export function derivedId(base: URL, kind: string, from: string): URL {
  const h = createHash('sha256').update(from).digest('hex').slice(0, 32);
  return new URL(`${base.href}#${kind}-${h}`);
}

export { authorIdentifier };
