/**
 * RUM ⇄ ActivityStreams mapping for the ActivityPub bridge: pure functions, no I/O.
 *
 * Outbound (a committed RUM item → what the gateway serves and sends):
 * - A post (`Note`, `Article`, `Image`, also wrapped in `Create`/`Add`) becomes a `Note`, or an
 *   `Article` when it has a title (`name`) and is either a RUM `Article` or longer than
 *   {@link ARTICLE_MIN_CHARS} characters of text. Mastodon shows an Article as its title and a
 *   link only, so a short titled post stays a Note, with its title as a first bold paragraph.
 * - Plain-text RUM content is escaped, blank lines make paragraphs, newlines `<br>`, URLs links;
 *   content that is HTML already (mediaType `text/html`, or holding HTML tags) is sanitized.
 * - Addressing: `to` Public, `cc` the group's followers, the group and every mentioned actor;
 *   `audience` the group (FEP-1b12).
 * - Link back to the chain: the object's `url` is `[<post page>, Link]`, the Link having
 *   `rel: "via"` (RFC 4287: the source of the information), `href`
 *   `rum://<group id>/<trx id>?block=<block height>` and `name`
 *   `rum:trx <group id>/<trx id>@<block height>`. Mastodon takes the first `url` as the status
 *   link and ignores the rest; a reader (or {@link findChainRef}) takes group, trx and height
 *   from it and checks the trx on any node of the group. A `PropertyValue` would compact badly on
 *   a Note, and a visible footer would clutter every timeline.
 *
 * Inbound (a fediverse object → a RUM payload a gateway-held identity posts):
 * - Content is sanitized HTML (./sanitize.ts), bounded by {@link LIMITS}; mentions, hashtags,
 *   links and attachments are kept; the author and the object's id travel in the payload.
 * - RUM ids are trx ids: `inReplyTo` is set only when the reply target resolves to a trx of the
 *   group. Otherwise the payload is returned without it and `origin.inReplyTo` holds the AP id,
 *   so the federation decides whether such a post belongs in the group.
 */
import { isRumPostType, rumPost, rumReplyTarget } from '../rum-content.ts';
import { Temporal } from '@js-temporal/polyfill';
import {
  Announce,
  Article,
  Audio,
  Create,
  Delete,
  Dislike,
  Document,
  Hashtag,
  Image,
  LanguageString,
  Like,
  Link,
  Mention,
  Note,
  type Object as ASObject,
  PUBLIC_COLLECTION,
  Tombstone,
  Update,
  Video,
} from '@fedify/vocab';
import type { CommittedItem } from '../port.ts';
import { type ApUrls, groupIdentifier } from './urls.ts';
import {
  escapeHtml,
  htmlToText,
  looksLikeHtml,
  plainTextToHtml,
  sanitizeContent,
} from './sanitize.ts';

// ---------------------------------------------------------------------------------------------
// Shared

/** Size bounds of what crosses the bridge (inbound payloads, and outbound tags/attachments). */
export const LIMITS = {
  /** Characters of sanitized HTML content. */
  contentChars: 64_000,
  /** Characters of incoming HTML looked at before sanitizing. */
  rawContentChars: 256_000,
  nameChars: 1_000,
  summaryChars: 1_000,
  altChars: 1_500,
  urlChars: 2_048,
  attachments: 16,
  tags: 64,
} as const;

/** A titled RUM Note longer than this (characters of text) goes out as an Article. */
export const ARTICLE_MIN_CHARS = 500;

type Rec = Record<string, unknown>;

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, max = Number.POSITIVE_INFINITY): string | null {
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (s.length === 0) return null;
  return s.length > max ? s.slice(0, max) : s;
}

function list(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** An http(s) URL of at most LIMITS.urlChars, or null. */
function httpUrl(v: unknown): URL | null {
  const s = v instanceof URL ? v.href : str(v);
  if (!s || s.length > LIMITS.urlChars) return null;
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u : null;
  } catch {
    return null;
  }
}

function mediaTypeOf(v: unknown): string | null {
  const s = str(v, 127);
  return s && /^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/.test(s) ? s : null;
}

function dimension(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 1_000_000 ? v : null;
}

/** The trx timestamp (nanoseconds since the epoch, decimal) as an Instant, or null. */
export function instantOf(timestamp: string): Temporal.Instant | null {
  if (!/^\d{1,30}$/.test(timestamp)) return null;
  try {
    return Temporal.Instant.fromEpochNanoseconds(BigInt(timestamp));
  } catch {
    return null;
  }
}

/**
 * Whether the object is addressed to the public (`to` or `cc`). JSON-LD expands `as:Public` to
 * the full IRI, but a bare `"Public"` (which AS2 also allows) becomes a URL relative to the
 * document; it is recognised here only when resolved against the object's own id. Run
 * {@link normalizePublicAddressing} over the raw JSON before parsing to catch it everywhere.
 */
export function isPublicAddressed(object: { id: URL | null; toIds: URL[]; ccIds: URL[] }): boolean {
  const pub = PUBLIC_COLLECTION.href;
  const bare = object.id ? new URL('Public', object.id).href : null;
  return [...object.toIds, ...object.ccIds].some((u) => u.href === pub || u.href === bare);
}

const ADDRESSING = ['to', 'cc', 'bto', 'bcc', 'audience'];

/**
 * A copy of raw ActivityStreams JSON whose addressing (`to`, `cc`, `bto`, `bcc`, `audience`,
 * also of its embedded `object`s) spells the public collection `Public` or `as:Public` as the full
 * IRI, so that Fedify does not read a bare `"Public"` as a relative URL. Anything else is
 * returned as it is.
 */
export function normalizePublicAddressing(json: unknown, depth = 0): unknown {
  if (!isRec(json) || depth > 4) return json;
  let out: Rec | null = null;
  const fix = (v: unknown) => (v === 'Public' || v === 'as:Public' ? PUBLIC_COLLECTION.href : v);
  for (const key of ADDRESSING) {
    const v = json[key];
    const fixed = Array.isArray(v) ? v.map(fix) : fix(v);
    if (Array.isArray(v) ? v.some((x, i) => x !== (fixed as unknown[])[i]) : fixed !== v) {
      out ??= { ...json };
      out[key] = fixed;
    }
  }
  if (isRec(json.object)) {
    const inner = normalizePublicAddressing(json.object, depth + 1);
    if (inner !== json.object) {
      out ??= { ...json };
      out.object = inner;
    }
  }
  return out ?? json;
}

// ---------------------------------------------------------------------------------------------
// Link back to the chain

/** Where an object sits on its RUM chain. */
export interface ChainRef {
  groupId: string;
  trxId: string;
  /** The block height. */
  blockId: number;
}

/** `rum://<group id>/<trx id>?block=<height>`. */
export function chainRefUrl(ref: ChainRef): URL {
  return new URL(
    `rum://${encodeURIComponent(ref.groupId)}/${encodeURIComponent(ref.trxId)}?block=${ref.blockId}`,
  );
}

/** The ChainRef of a `rum://` URL, or null. */
export function parseChainRef(url: URL | string): ChainRef | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'rum:') return null;
  const m = /^\/([^/]+)$/.exec(u.pathname);
  const block = u.searchParams.get('block');
  if (!u.host || !m || !block || !/^\d{1,15}$/.test(block)) return null;
  return {
    groupId: decodeURIComponent(u.host),
    trxId: decodeURIComponent(m[1]!),
    blockId: Number(block),
  };
}

/** The `rel="via"` Link of an item's origin on the chain. */
export function chainLink(ref: ChainRef): Link {
  return new Link({
    href: chainRefUrl(ref),
    rel: 'via',
    name: `rum:trx ${ref.groupId}/${ref.trxId}@${ref.blockId}`,
  });
}

/** The chain origin an object links back to (its `url` Link with a `rum:` href), or null. */
export function findChainRef(object: { urls: (URL | Link)[] }): ChainRef | null {
  for (const u of object.urls) {
    if (u instanceof Link && u.href) {
      const ref = parseChainRef(u.href);
      if (ref) return ref;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Outbound: RUM → ActivityPub

export interface OutCtx {
  urls: ApUrls;
  /** The handle of the group the item belongs to. */
  handle: string;
  /**
   * AP id of the object a RUM reply (or like) target stands for: our post URL, or the original
   * AP id when the target came from ActivityPub; null when it is not known.
   */
  replyTarget(trxId: string): URL | null;
  /**
   * Where the gateway serves an image a post holds inline (base64 `content`, as RUM apps post
   * them), by its index in {@link rumMedia}; such images are left out when this is absent or
   * answers null.
   */
  inlineMedia?(trxId: string, index: number): URL | null;
}

/** The same as {@link OutCtx}. */
export type MappingContext = OutCtx;

/** One image (or other medium) of a RUM post. */
export interface RumMedia {
  /** `Image`, `Video`, `Audio` or `Document`. */
  type: string;
  url: string | null;
  mediaType: string | null;
  /** Alt text. */
  name: string | null;
  width: number | null;
  height: number | null;
  /** Inline base64 data, when the post carries the image itself. */
  data: string | null;
}

function mediaUrl(v: unknown): string | null {
  for (const x of list(v)) {
    if (typeof x === 'string') {
      const u = httpUrl(x);
      if (u) return u.href;
    } else if (isRec(x)) {
      const u = httpUrl(x.href ?? x.url);
      if (u) return u.href;
    }
  }
  return null;
}

function mediaKind(type: unknown, mediaType: string | null): string {
  if (mediaType?.startsWith('image/')) return 'Image';
  if (mediaType?.startsWith('video/')) return 'Video';
  if (mediaType?.startsWith('audio/')) return 'Audio';
  return type === 'Image' || type === 'Video' || type === 'Audio' ? type : 'Document';
}

/**
 * The media of a RUM post, in a fixed order (the post itself when it is an Image, then its
 * `image`, then its `attachment` entries), at most LIMITS.attachments.
 */
export function rumMedia(post: Rec): RumMedia[] {
  const entries: Rec[] = [];
  if (post.type === 'Image') entries.push(post);
  for (const v of [...list(post.image), ...list(post.attachment)]) if (isRec(v)) entries.push(v);
  const out: RumMedia[] = [];
  for (const e of entries) {
    if (out.length >= LIMITS.attachments) break;
    const mediaType = mediaTypeOf(e.mediaType);
    const url = mediaUrl(e.url);
    // An Image's `content` is its data (base64) in RUM's payloads.
    const data = !url && typeof e.content === 'string' && e.content.length > 0 ? e.content : null;
    if (!url && !data) continue;
    const alt = e === post ? (str(post.summary, LIMITS.altChars) ?? null) : null;
    out.push({
      type: mediaKind(e.type ?? 'Image', mediaType),
      url,
      mediaType,
      name: str(e.name, LIMITS.altChars) ?? alt,
      width: dimension(e.width),
      height: dimension(e.height),
      data,
    });
  }
  return out;
}

function apMedia(m: RumMedia, url: URL): Document {
  const values = {
    url,
    mediaType: m.mediaType,
    name: m.name,
    width: m.width,
    height: m.height,
  };
  switch (m.type) {
    case 'Image':
      return new Image(values);
    case 'Video':
      return new Video(values);
    case 'Audio':
      return new Audio(values);
    default:
      return new Document(values);
  }
}

const HASHTAG_IN_TEXT = /(?:^|[^\p{L}\p{N}_/&#])#([\p{L}\p{N}_]*\p{L}[\p{L}\p{N}_]*)/gu;

/** Mentions and hashtags of a RUM post: its `tag` entries, and #tags of its plain text. */
function rumTags(post: Rec, plainText: string | null): (Mention | Hashtag)[] {
  const out: (Mention | Hashtag)[] = [];
  const seen = new Set<string>();
  const add = (key: string, tag: Mention | Hashtag) => {
    if (out.length >= LIMITS.tags || seen.has(key)) return;
    seen.add(key);
    out.push(tag);
  };
  for (const t of list(post.tag)) {
    if (!isRec(t)) continue;
    const href = httpUrl(t.href);
    const name = str(t.name, 200);
    if (t.type === 'Mention' && href) {
      add(`m ${href.href}`, new Mention({ href, name }));
    } else if (t.type === 'Hashtag' && name) {
      const tag = name.startsWith('#') ? name : `#${name}`;
      add(`h ${tag.toLowerCase()}`, new Hashtag({ href, name: tag }));
    }
  }
  if (plainText) {
    for (const m of plainText.matchAll(HASHTAG_IN_TEXT)) {
      const tag = `#${m[1]!.slice(0, 100)}`;
      add(`h ${tag.toLowerCase()}`, new Hashtag({ name: tag }));
    }
  }
  return out;
}

/** The HTML of a RUM post's text, and its plain text when it was plain text. */
function rumHtml(post: Rec): { html: string; plain: string | null } {
  // An Image's `content` is its data, not text.
  const raw = post.type === 'Image' ? null : typeof post.content === 'string' ? post.content : null;
  if (!raw) return { html: '', plain: null };
  const mediaType = typeof post.mediaType === 'string' ? post.mediaType.toLowerCase() : '';
  if (mediaType.startsWith('text/html') || (!mediaType.startsWith('text/') && looksLikeHtml(raw))) {
    return { html: sanitizeContent(raw), plain: null };
  }
  return { html: plainTextToHtml(raw), plain: raw };
}

interface BuildOptions {
  /** The trx whose URL is the object's id (the post; for an Update, the post it edits). */
  trxId: string;
  published: Temporal.Instant | null;
  updated: Temporal.Instant | null;
  /** The chain reference of the trx that holds this content. */
  chain: ChainRef;
}

function authorUrl(item: CommittedItem, ctx: OutCtx): URL {
  return ctx.urls.author(item.senderPubkey);
}

function addressing(ctx: OutCtx, extraCc: URL[] = []) {
  const group = ctx.urls.group(ctx.handle);
  const ccs = [ctx.urls.followers(groupIdentifier(ctx.handle)), group];
  for (const u of extraCc) if (!ccs.some((c) => c.href === u.href)) ccs.push(u);
  return { to: PUBLIC_COLLECTION, ccs, audience: group };
}

function buildPost(post: Rec, item: CommittedItem, ctx: OutCtx, o: BuildOptions): Note | Article {
  const name = str(post.name, LIMITS.nameChars);
  const { html, plain } = rumHtml(post);
  const textLength = plain !== null ? plain.length : htmlToText(html).length;
  const article =
    name !== null &&
    post.type !== 'Image' &&
    (post.type === 'Article' || textLength > ARTICLE_MIN_CHARS);
  let content = html;
  if (!article && name !== null && post.type !== 'Image') {
    content = `<p><strong>${escapeHtml(name)}</strong></p>${html}`;
  }

  const attachments: Document[] = [];
  rumMedia(post).forEach((m, i) => {
    const url = m.url ? new URL(m.url) : (ctx.inlineMedia?.(o.trxId, i) ?? null);
    if (url) attachments.push(apMedia(m, url));
  });

  const tags = rumTags(post, plain);
  const mentioned = tags.filter((t) => t instanceof Mention).map((t) => t.href!);
  const replyTrx = rumReplyTarget(post) ?? (o.trxId === item.trxId ? item.inReplyTo : null);
  const replyTarget = replyTrx ? ctx.replyTarget(replyTrx) : null;
  const summary = str(post.summary, LIMITS.summaryChars);

  const values = {
    id: ctx.urls.post(o.trxId),
    attribution: authorUrl(item, ctx),
    contents: [content],
    published: o.published,
    updated: o.updated,
    ...addressing(ctx, mentioned),
    urls: [ctx.urls.postPage(o.trxId), chainLink(o.chain)],
    replyTarget,
    attachments,
    tags,
    summary: summary && post.type !== 'Image' ? escapeHtml(summary) : null,
    sensitive: post.sensitive === true || (summary !== null && post.type !== 'Image'),
  };
  return article ? new Article({ ...values, name }) : new Note(values);
}

function refOf(item: CommittedItem): ChainRef {
  return { groupId: item.groupId, trxId: item.trxId, blockId: item.blockId };
}

/**
 * The Note or Article a RUM post is, served at `urls.post(trxId)`; null when the item has no
 * readable object or is not a post. `deleted` is not looked at: serving a Tombstone for a
 * deleted post is the caller's choice ({@link toTombstone}). With `edit` (a later RUM Update of
 * this post), the content is the edited one, `updated` its time and `published` the original.
 */
export function toApObject(
  item: CommittedItem,
  ctx: OutCtx,
  edit?: CommittedItem | null,
): Note | Article | null {
  const post = rumPost(item.object);
  if (!post) return null;
  const edited = edit ? editedPost(edit) : null;
  return buildPost(edited?.post ?? post, item, ctx, {
    trxId: item.trxId,
    published: instantOf(item.timestamp),
    updated: edited && edit ? instantOf(edit.timestamp) : null,
    chain: refOf(item),
  });
}

/** The post a RUM Update carries and the trx id it edits, or null. */
function editedPost(item: CommittedItem): { post: Rec; target: string } | null {
  const o = item.object;
  if (!o || o.type !== 'Update' || !isRec(o.object)) return null;
  const inner = o.object;
  const target = str(inner.id);
  if (!target || !isRumPostType(inner.type)) return null;
  return { post: inner, target };
}

/** What a deleted post is served as. */
export function toTombstone(trxId: string, ctx: OutCtx, deleted?: string | null): Tombstone {
  return new Tombstone({
    id: ctx.urls.post(trxId),
    deleted: deleted ? instantOf(deleted) : null,
  });
}

/**
 * The activity a committed RUM item is: `Create` of a post (id `urls.create(trx)`), `Like` of a
 * liked post (id `urls.post(trx)`, null when the target is not known), `Delete` with a
 * `Tombstone` of the deleted post (id `urls.post(trx)`), `Update` of an edited post (id
 * `urls.post(trx)`, the Note at the edited post's id with the new content and `updated`);
 * null for anything else.
 */
export function toApActivity(
  item: CommittedItem,
  ctx: OutCtx,
): Create | Like | Delete | Update | null {
  const o = item.object;
  if (!o) return null;
  const actor = authorUrl(item, ctx);
  const when = instantOf(item.timestamp);
  if (rumPost(o)) {
    const object = toApObject(item, ctx)!;
    return new Create({
      id: ctx.urls.create(item.trxId),
      actor,
      object,
      tos: object.toIds,
      ccs: object.ccIds,
      audience: ctx.urls.group(ctx.handle),
      published: when,
    });
  }
  const target = isRec(o.object) ? str(o.object.id) : null;
  switch (o.type) {
    case 'Like': {
      const object = target ? ctx.replyTarget(target) : null;
      if (!object) return null;
      return new Like({
        id: ctx.urls.post(item.trxId),
        actor,
        object,
        ...addressing(ctx),
        published: when,
      });
    }
    case 'Delete': {
      if (!target) return null;
      return new Delete({
        id: ctx.urls.post(item.trxId),
        actor,
        object: new Tombstone({ id: ctx.urls.post(target), deleted: when }),
        ...addressing(ctx),
        published: when,
      });
    }
    case 'Update': {
      const edited = editedPost(item);
      if (!edited) return null;
      const object = buildPost(edited.post, item, ctx, {
        trxId: edited.target,
        published: null,
        updated: when,
        chain: refOf(item),
      });
      return new Update({
        id: ctx.urls.post(item.trxId),
        actor,
        object,
        tos: object.toIds,
        ccs: object.ccIds,
        audience: ctx.urls.group(ctx.handle),
        published: when,
      });
    }
    default:
      return null;
  }
}

/** The author an Announce names: the remote actor of a post that came from ActivityPub. */
function announcedAuthor(item: CommittedItem, post: Rec, ctx: OutCtx): URL {
  if (item.origin?.network === 'activitypub' && isRec(post.attributedTo)) {
    const remote = httpUrl(post.attributedTo.id);
    if (remote) return remote;
  }
  return authorUrl(item, ctx);
}

/**
 * The group boosting a post, as Mastodon shows it: `Announce` of the post by id (our post URL,
 * or the original AP id of a post that came from ActivityPub), id `urls.announce(handle, trx)`,
 * `to` Public, `cc` the group's followers and the author. Null when the item is not a post.
 */
export function toAnnounce(item: CommittedItem, ctx: OutCtx): Announce | null {
  const post = rumPost(item.object);
  if (!post) return null;
  const group = ctx.urls.group(ctx.handle);
  return new Announce({
    id: ctx.urls.announce(ctx.handle, item.trxId),
    actor: group,
    object: ctx.replyTarget(item.trxId) ?? ctx.urls.post(item.trxId),
    to: PUBLIC_COLLECTION,
    ccs: [ctx.urls.followers(groupIdentifier(ctx.handle)), announcedAuthor(item, post, ctx)],
    audience: group,
    published: instantOf(item.timestamp),
  });
}

/**
 * The group relaying one of its members' activities, the FEP-1b12 way (what Lemmy, Mbin, PieFed
 * and NodeBB read from a group they follow): `Announce` of the embedded activity, unchanged, as
 * the author sends it ({@link toApActivity}: Create of a post, Like, Delete, Update), id
 * `urls.announceActivity(handle, trx)` (not the boost's: they are two activities), `to` Public,
 * `cc` the group's followers, `audience` the group. Embedded rather than by id: Mbin takes an
 * Announce of a bare id for a boost, and Lemmy would have to fetch it. Null when the item has
 * no activity, or came from ActivityPub (its activity is not ours to embed).
 */
export function toAnnounceOfActivity(item: CommittedItem, ctx: OutCtx): Announce | null {
  if (item.origin?.network === 'activitypub') return null;
  const activity = toApActivity(item, ctx);
  if (!activity) return null;
  const group = ctx.urls.group(ctx.handle);
  return new Announce({
    id: ctx.urls.announceActivity(ctx.handle, item.trxId),
    actor: group,
    object: activity,
    to: PUBLIC_COLLECTION,
    ccs: [ctx.urls.followers(groupIdentifier(ctx.handle))],
    audience: group,
    published: instantOf(item.timestamp),
  });
}

/** Whether a RUM payload says it is not public: its own addressing, or its AP origin's. */
function markedNotPublic(post: Rec, wrapper: Rec): boolean {
  for (const o of [wrapper, post]) {
    if (isRec(o.origin) && o.origin.public === false) return true;
    const addressed = [...list(o.to), ...list(o.cc)];
    if (addressed.length > 0) {
      const pub = addressed.some(
        (a) =>
          a === PUBLIC_COLLECTION.href ||
          a === 'as:Public' ||
          a === 'Public' ||
          (isRec(a) && a.id === PUBLIC_COLLECTION.href),
      );
      if (!pub) return true;
    }
  }
  return false;
}

/**
 * Whether the group boosts this item: only readable, undeleted, public posts of a public group;
 * with `top-level` (the default) not replies.
 */
export function shouldAnnounce(
  item: CommittedItem,
  setting: 'top-level' | 'all' = 'top-level',
  groupPublic = true,
): boolean {
  if (!groupPublic || item.deleted || !item.object) return false;
  const post = rumPost(item.object);
  if (!post || markedNotPublic(post, item.object)) return false;
  if (setting === 'all') return true;
  const reply =
    rumReplyTarget(post) !== null ||
    item.inReplyTo !== null ||
    (isRec(post.origin) && typeof post.origin.inReplyTo === 'string');
  return !reply;
}

// ---------------------------------------------------------------------------------------------
// Inbound: ActivityPub → RUM

/** The actor an inbound object comes from (what the federation knows of it). */
export interface ApActorInfo {
  id: URL;
  name?: string | null;
  url?: URL | null;
  preferredUsername?: string | null;
}

/** The trx id a URL stands for in the group (our post URL, or a bridged AP id), or null. */
export type ResolveTrx = (url: URL) => string | null;

/** A document loader that fetches nothing: only embedded values are read. */
const noFetch = {
  documentLoader: (url: string): Promise<never> =>
    Promise.reject(new Error(`not fetching ${url} while mapping`)),
  suppressError: true,
} as const;

function person(actor: ApActorInfo): Rec {
  const out: Rec = { type: 'Person', id: actor.id.href };
  const name = str(actor.name, 200) ?? str(actor.preferredUsername, 200);
  if (name) out.name = name;
  const username = str(actor.preferredUsername, 200);
  if (username) out.preferredUsername = username;
  const url = httpUrl(actor.url);
  if (url) out.url = url.href;
  return out;
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof LanguageString) return v.toString();
  return null;
}

/** The content of an object: its plain `content`, else the first `contentMap` entry. */
function contentOf(object: ASObject): string {
  const all = object.contents;
  const plain = all.find((c) => typeof c === 'string');
  return text(plain ?? all[0]) ?? '';
}

function boundedHtml(raw: string): string {
  let html = sanitizeContent(raw.slice(0, LIMITS.rawContentChars));
  for (let i = 0; i < 4 && html.length > LIMITS.contentChars; i++) {
    html = sanitizeContent(html.slice(0, LIMITS.contentChars - 256 * (i + 1)));
  }
  return html.length > LIMITS.contentChars ? '' : html;
}

function linkHref(v: URL | Link | null | undefined): URL | null {
  if (!v) return null;
  return v instanceof URL ? v : (v.href ?? null);
}

async function mediaOf(object: ASObject): Promise<Rec[]> {
  const out: Rec[] = [];
  for await (const a of object.getAttachments(noFetch)) {
    if (out.length >= LIMITS.attachments) break;
    if (!(a instanceof Document)) continue; // Image, Video, Audio, Page are Documents
    let url: URL | null = null;
    let linkType: string | null = null;
    for (const u of a.urls) {
      url = httpUrl(linkHref(u));
      if (url) {
        if (u instanceof Link) linkType = u.mediaType;
        break;
      }
    }
    if (!url) continue;
    const mediaType = mediaTypeOf(a.mediaType ?? linkType);
    const kind = a instanceof Image ? 'Image' : a instanceof Video ? 'Video' : 'Document';
    const m: Rec = {
      type: mediaKind(a instanceof Audio ? 'Audio' : kind, mediaType),
      url: url.href,
    };
    if (mediaType) m.mediaType = mediaType;
    const alt = str(text(a.name), LIMITS.altChars);
    if (alt) m.name = alt;
    const width = dimension(a.width);
    const height = dimension(a.height);
    if (width) m.width = width;
    if (height) m.height = height;
    out.push(m);
  }
  return out;
}

async function tagsOf(object: ASObject): Promise<Rec[]> {
  const out: Rec[] = [];
  for await (const t of object.getTags(noFetch)) {
    if (out.length >= LIMITS.tags) break;
    const name = str(text(t instanceof Link ? t.name : null), 200);
    const href = t instanceof Link ? httpUrl(t.href) : null;
    if (t instanceof Mention && href) {
      out.push(
        name ? { type: 'Mention', href: href.href, name } : { type: 'Mention', href: href.href },
      );
    } else if (t instanceof Hashtag && name) {
      out.push(href ? { type: 'Hashtag', href: href.href, name } : { type: 'Hashtag', name });
    }
  }
  return out;
}

/**
 * A fediverse Note or Article as a RUM post payload: `type`, `content` (sanitized HTML, always a
 * string), `name`, `summary` and `sensitive` (content warning), `inReplyTo` (only when the target
 * resolves to a trx), `attributedTo` (the actor), `url`, `published`, `attachment`, `tag` and
 * `origin` (`network`, the object's `id`, `public`, and `inReplyTo` when the target did not
 * resolve). Every value is JSON and bounded by {@link LIMITS}. Reads only embedded values
 * (nothing is fetched). Throws a TypeError when the object has no id.
 */
export async function fromApNote(
  note: Note | Article,
  actor: ApActorInfo,
  resolveTrx: ResolveTrx,
): Promise<Record<string, unknown>> {
  if (!note.id) throw new TypeError('an object without an id cannot be bridged');
  const out: Rec = {
    type: note instanceof Article ? 'Article' : 'Note',
    content: boundedHtml(contentOf(note)),
  };
  const name = str(text(note.name), LIMITS.nameChars);
  if (name) out.name = name;
  const summary = str(text(note.summary), LIMITS.summaryChars);
  if (summary) out.summary = htmlToText(summary);
  if (note.sensitive === true) out.sensitive = true;

  const origin: Rec = {
    network: 'activitypub',
    id: note.id.href,
    public: isPublicAddressed(note),
  };
  const target = note.replyTargetId;
  if (target) {
    const trx = resolveTrx(target);
    if (trx) out.inReplyTo = { type: 'Note', id: trx };
    else if (target.href.length <= LIMITS.urlChars) origin.inReplyTo = target.href;
  }
  out.attributedTo = person(actor);
  for (const u of note.urls) {
    const url = httpUrl(linkHref(u));
    if (url) {
      out.url = url.href;
      break;
    }
  }
  if (note.published) out.published = note.published.toString();
  if (note.updated) out.updated = note.updated.toString();
  const attachment = await mediaOf(note);
  if (attachment.length > 0) out.attachment = attachment;
  const tag = await tagsOf(note);
  if (tag.length > 0) out.tag = tag;
  out.origin = origin;
  return out;
}

function activityOrigin(activity: { id: URL | null }): Rec {
  const o: Rec = { network: 'activitypub' };
  if (activity.id && activity.id.href.length <= LIMITS.urlChars) o.id = activity.id.href;
  return o;
}

/** A reaction to a group post as a RUM payload of `type` on the trx; null when unknown. */
function reactionOf(
  type: 'Like' | 'Dislike' | 'Announce',
  activity: Like | Dislike | Announce,
  actor: ApActorInfo,
  resolveTrx: ResolveTrx,
): Record<string, unknown> | null {
  const target = activity.objectId;
  const trx = target ? resolveTrx(target) : null;
  if (!trx) return null;
  return {
    type,
    object: { type: 'Note', id: trx },
    actor: person(actor),
    origin: activityOrigin(activity),
  };
}

/**
 * A fediverse `Like` (or `Dislike`) of a group post as a RUM payload
 * `{"type":"Like","object":{"type":"Note","id":<trx>},"actor":…,"origin":…}`; null when the
 * liked object does not resolve to a trx.
 */
export function fromApLike(
  like: Like | Dislike,
  actor: ApActorInfo,
  resolveTrx: ResolveTrx,
): Record<string, unknown> | null {
  return reactionOf(like instanceof Dislike ? 'Dislike' : 'Like', like, actor, resolveTrx);
}

/** A fediverse `Announce` of a group post as a RUM `Announce` of the trx; null when unknown. */
export function fromApAnnounce(
  announce: Announce,
  actor: ApActorInfo,
  resolveTrx: ResolveTrx,
): Record<string, unknown> | null {
  return reactionOf('Announce', announce, actor, resolveTrx);
}

/**
 * `Undo` of an earlier bridged Like/Dislike/Announce, by the trx id that activity became:
 * `{"type":"Undo","object":{"type":<what>,"id":<trx>}}`.
 */
export function fromApUndo(
  undoneTrxId: string,
  undoneType: 'Like' | 'Dislike' | 'Announce',
  undoId?: URL | null,
): Record<string, unknown> {
  const out: Rec = { type: 'Undo', object: { type: undoneType, id: undoneTrxId } };
  if (undoId) out.origin = activityOrigin({ id: undoId });
  return out;
}

/** `Delete` of a bridged post by its trx id: `{"type":"Delete","object":{"type":"Note","id":…}}`. */
export function fromApDelete(objectTrxId: string, deleteId?: URL | null): Record<string, unknown> {
  const out: Rec = { type: 'Delete', object: { type: 'Note', id: objectTrxId } };
  if (deleteId) out.origin = activityOrigin({ id: deleteId });
  return out;
}

/** `Update` of a bridged post: `{"type":"Update","object":{…the Note as fromApNote…,"id":<trx>}}`. */
export async function fromApUpdate(
  note: Note | Article,
  actor: ApActorInfo,
  resolveTrx: ResolveTrx,
  targetTrxId: string,
): Promise<Record<string, unknown>> {
  const object = await fromApNote(note, actor, resolveTrx);
  return { type: 'Update', object: { ...object, id: targetTrxId } };
}
