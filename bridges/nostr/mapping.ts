/**
 * RUM payloads (ActivityStreams) ⇄ Nostr events, for NIP-29 groups whose id is the RUM group id:
 * pure functions, no I/O, no keys. SPEC.md beside this file says what maps and what is lost.
 *
 * Outbound, {@link toNostr}: a RUM payload → the kind, content and tags of the event that stands
 * for it (the caller signs: the author's own node, or the relay key with a NIP-48 proxy tag).
 * Every event carries `["h", <group id>]`. References to other trxs (reply targets, liked,
 * reposted and deleted posts) become references to the events that stand for them, which the
 * caller resolves ({@link EventRef}); a reference that does not resolve makes no event.
 *
 * Inbound, {@link fromNostr}: a verified Nostr event of a group → the RUM payload a member posts,
 * carrying the whole signed event in its top-level `nostr` field ({@link NOSTR_FIELD}).
 *
 * {@link carriedEvent} reads that field back, and {@link matchesPayload} tells whether a carried
 * event says what the payload says (same kind of thing, same text, same group).
 */
import { rumPost, rumReplyTarget } from '../rum-content.ts';
import type { NostrEvent } from './types.ts';

/** The top-level field of a RUM payload that carries the signed Nostr event standing for it. */
export const NOSTR_FIELD = 'nostr';

/** Kinds that are posts in a group: NIP-01 notes, NIP-C7 chat, NIP-7D threads, NIP-22 comments. */
export const POST_KINDS: ReadonlySet<number> = new Set([1, 9, 11, 1111]);
/** Every kind a group takes from Nostr clients (posts, reactions, deletions, reposts). */
export const GROUP_CONTENT_KINDS: readonly number[] = [1, 5, 6, 7, 9, 11, 16, 1111];

/** Bounds of what crosses the bridge inbound. */
export const LIMITS = {
  /** Characters of a post's text (a RUM payload is bounded in bytes by the node as well). */
  contentChars: 64_000,
  titleChars: 1_000,
} as const;

type Rec = Record<string, unknown>;

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

/** An event that stands for a trx, as far as a reference to it needs. */
export interface EventRef {
  id: string;
  pubkey: string;
  kind: number;
  /** Its tags (to find the root of a thread it answers). */
  tags: string[][];
}

/** The kind, content and tags of an event; the signer adds pubkey, created_at, id and sig. */
export interface EventBody {
  kind: number;
  content: string;
  tags: string[][];
}

export type ToNostrResult =
  | { ok: true; event: EventBody }
  /** `missing` names a referenced trx with no event (yet): the caller may retry later. */
  | { ok: false; reason: string; missing?: string };

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

/** Plain text of simple HTML: paragraphs and breaks become newlines, tags go, entities decode. */
export function htmlToPlain(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/p>\s*<p[^>]*>/gi, '\n\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const n =
          e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
        return Number.isInteger(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : m;
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    })
    .trim();
}

function isHtml(post: Rec, text: string): boolean {
  const mediaType = typeof post.mediaType === 'string' ? post.mediaType.toLowerCase() : '';
  if (mediaType.startsWith('text/html')) return true;
  if (mediaType.startsWith('text/')) return false;
  return /<(p|br|a|span|div|strong|em|b|i|ul|ol|li|blockquote|code|pre)\b[^>]*>/i.test(text);
}

/** http(s) URLs of a post's media (the Image itself, its `image` and `attachment` entries). */
function mediaOf(post: Rec): { url: string; mediaType: string | null; alt: string | null }[] {
  const entries: Rec[] = [];
  if (post.type === 'Image') entries.push(post);
  for (const key of ['image', 'attachment']) {
    const v = post[key];
    for (const e of Array.isArray(v) ? v : [v]) if (isRec(e)) entries.push(e);
  }
  const out: { url: string; mediaType: string | null; alt: string | null }[] = [];
  for (const e of entries) {
    const candidates = Array.isArray(e.url) ? e.url : [e.url];
    for (const c of candidates) {
      const href = typeof c === 'string' ? c : isRec(c) ? (c.href ?? c.url) : null;
      if (typeof href === 'string' && /^https?:\/\/\S+$/i.test(href) && href.length <= 2048) {
        out.push({
          url: href,
          mediaType: str(e.mediaType),
          alt: e === post ? str(post.summary) : str(e.name),
        });
        break;
      }
    }
    if (out.length >= 16) break;
  }
  return out;
}

/**
 * The Nostr text of a RUM post: its content as plain text (HTML is reduced to text), after its
 * title when a Note has one, followed by the URLs of its media. An Image's `content` is its data,
 * not text.
 */
export function postText(post: Rec): string {
  const raw = post.type === 'Image' ? '' : typeof post.content === 'string' ? post.content : '';
  let text = raw && isHtml(post, raw) ? htmlToPlain(raw) : raw;
  const title = str(post.name);
  if (title && post.type === 'Note') text = text ? `${title}\n\n${text}` : title;
  if (title && post.type === 'Image' && !text) text = title;
  const urls = mediaOf(post).map((m) => m.url);
  if (urls.length > 0) text = text ? `${text}\n\n${urls.join('\n')}` : urls.join('\n');
  return text;
}

function hTag(groupId: string): string[] {
  return ['h', groupId];
}

/** The thread root of a kind-1 event (its NIP-10 `root` e tag), else the event itself. */
function nip10Root(parent: EventRef): { id: string; pubkey: string } {
  for (const t of parent.tags) {
    if (t[0] === 'e' && t[3] === 'root' && /^[0-9a-f]{64}$/.test(t[1] ?? '')) {
      const pk = t[4] && /^[0-9a-f]{64}$/.test(t[4]) ? t[4] : parent.pubkey;
      return { id: t[1]!, pubkey: pk };
    }
  }
  return { id: parent.id, pubkey: parent.pubkey };
}

/** NIP-22 root tags (E/K/P) of a comment on `parent`: the parent's root if it is a comment. */
function nip22RootTags(parent: EventRef): string[][] {
  if (parent.kind === 1111) {
    const roots = parent.tags.filter((t) => t[0] === 'E' || t[0] === 'K' || t[0] === 'P');
    if (roots.some((t) => t[0] === 'E')) return roots.map((t) => [...t]);
  }
  return [
    ['E', parent.id, '', parent.pubkey],
    ['K', String(parent.kind)],
    ['P', parent.pubkey],
  ];
}

/** The tags of a post that answers `parent`, and the kind the answer takes. */
function replyShape(parent: EventRef): { kind: number; tags: string[][] } {
  if (parent.kind === 1) {
    const root = nip10Root(parent);
    const tags: string[][] = [['e', root.id, '', 'root', root.pubkey]];
    if (root.id !== parent.id) tags.push(['e', parent.id, '', 'reply', parent.pubkey]);
    tags.push(['p', parent.pubkey]);
    if (root.pubkey !== parent.pubkey) tags.push(['p', root.pubkey]);
    return { kind: 1, tags };
  }
  if (parent.kind === 9) {
    // NIP-C7: a chat reply quotes the message it answers.
    return { kind: 9, tags: [['q', parent.id, '', parent.pubkey]] };
  }
  return {
    kind: 1111,
    tags: [
      ...nip22RootTags(parent),
      ['e', parent.id, '', parent.pubkey],
      ['k', String(parent.kind)],
      ['p', parent.pubkey],
    ],
  };
}

function imetaTags(post: Rec): string[][] {
  return mediaOf(post).map((m) => {
    const t = ['imeta', `url ${m.url}`];
    if (m.mediaType) t.push(`m ${m.mediaType}`);
    if (m.alt) t.push(`alt ${m.alt.replace(/\s+/g, ' ').slice(0, 1500)}`);
    return t;
  });
}

function targetId(payload: Rec): string | null {
  return isRec(payload.object) ? str(payload.object.id) : null;
}

/**
 * The Nostr event that stands for a RUM payload (without its `nostr` field): a post → kind 1
 * (a top-level Note or Image), 11 (an Article: a thread with a `title`), or the kind its parent's
 * thread takes (1 with NIP-10 tags, 9 with a NIP-C7 `q` tag, 1111 with NIP-22 tags); Like →
 * kind 7 `+`, Dislike → kind 7 `-`; Announce → kind 6 (of a kind 1) or 16 with `k`; Delete and
 * Undo → kind 5 with `e` and `k`. `eventOf` gives the event that stands for a trx of the group.
 */
export function toNostr(
  payload: Rec,
  groupId: string,
  eventOf: (trxId: string) => EventRef | null,
): ToNostrResult {
  const need = (trxId: string): EventRef | { ok: false; reason: string; missing: string } => {
    return eventOf(trxId) ?? { ok: false, reason: `trx ${trxId} has no event`, missing: trxId };
  };
  const post = rumPost(payload);
  if (post) {
    if (payload.type === 'Update' || post.type === 'Profile') {
      return { ok: false, reason: 'not a post' };
    }
    const content = postText(post);
    if (!content) return { ok: false, reason: 'the post has no text or media URL to show' };
    const tags: string[][] = [hTag(groupId)];
    let kind = post.type === 'Article' ? 11 : 1;
    const target = rumReplyTarget(post);
    if (target) {
      const parent = need(target);
      if ('ok' in parent) return parent;
      const shape = replyShape(parent);
      kind = shape.kind;
      tags.push(...shape.tags);
    } else if (kind === 11) {
      const title = str(post.name);
      if (title) tags.push(['title', title.slice(0, LIMITS.titleChars)]);
    }
    tags.push(...imetaTags(post));
    return { ok: true, event: { kind, content, tags } };
  }
  const type = payload.type;
  const target = targetId(payload);
  if (!target) return { ok: false, reason: `a ${String(type)} does not map to Nostr` };
  switch (type) {
    case 'Like':
    case 'Dislike': {
      const e = need(target);
      if ('ok' in e) return e;
      return {
        ok: true,
        event: {
          kind: 7,
          content: type === 'Like' ? '+' : '-',
          tags: [hTag(groupId), ['e', e.id, '', e.pubkey], ['p', e.pubkey], ['k', String(e.kind)]],
        },
      };
    }
    case 'Announce': {
      const e = need(target);
      if ('ok' in e) return e;
      const tags = [hTag(groupId), ['e', e.id, ''], ['p', e.pubkey]];
      if (e.kind === 1) return { ok: true, event: { kind: 6, content: '', tags } };
      return { ok: true, event: { kind: 16, content: '', tags: [...tags, ['k', String(e.kind)]] } };
    }
    case 'Delete':
    case 'Undo': {
      const e = need(target);
      if ('ok' in e) return e;
      return {
        ok: true,
        event: { kind: 5, content: '', tags: [hTag(groupId), ['e', e.id], ['k', String(e.kind)]] },
      };
    }
    default:
      return { ok: false, reason: `a ${String(type)} does not map to Nostr` };
  }
}

// ---------------------------------------------------------------------------------------------
// Inbound

const HEX64 = /^[0-9a-f]{64}$/;

/** The event a post answers: NIP-22 `e`, NIP-10 `reply` then `root` marker, a NIP-C7 `q`, else
 * the last unmarked `e` (the deprecated positional form). */
export function replyTargetEvent(event: NostrEvent): string | null {
  const valid = (t: string[]) => HEX64.test(t[1] ?? '');
  if (event.kind === 1111) return event.tags.find((t) => t[0] === 'e' && valid(t))?.[1] ?? null;
  const es = event.tags.filter((t) => t[0] === 'e' && valid(t));
  const reply = es.find((t) => t[3] === 'reply') ?? es.find((t) => t[3] === 'root');
  if (reply) return reply[1]!;
  const q = event.tags.find((t) => t[0] === 'q' && valid(t));
  if (q) return q[1]!;
  const positional = es.filter((t) => t[3] === undefined || t[3] === '');
  return positional.length > 0 ? positional[positional.length - 1]![1]! : null;
}

/** The event a reaction, repost or deletion is about: its last valid `e` tag (NIP-25, NIP-18). */
function lastE(event: NostrEvent): string | null {
  const es = event.tags.filter((t) => t[0] === 'e' && HEX64.test(t[1] ?? ''));
  return es.length > 0 ? es[es.length - 1]![1]! : null;
}

/** The `h` tag's value (the NIP-29 group id), if the event has exactly one. */
export function groupOf(event: NostrEvent): string | null {
  const hs = event.tags.filter((t) => t[0] === 'h' && typeof t[1] === 'string' && t[1]);
  return hs.length === 1 ? hs[0]![1]! : null;
}

/** What a trx id resolves to: the trx, and its type (`Note`, `Like`…) when known. */
export interface TrxRef {
  trxId: string;
  type: string | null;
  /** The pubkey of the event that stands for it (who may delete it). */
  pubkey: string | null;
}

export type FromNostrResult = { ok: true; payload: Rec } | { ok: false; reason: string };

/**
 * A verified group event as the RUM payload a member posts: kinds 1, 9, 11, 1111 → `Note`
 * (an 11 with a `title` → `Article` with `name`), `inReplyTo` the trx of the event it answers
 * when that is in the group; 7 → `Like` (`-` → `Dislike`); 6/16 → `Announce`; 5 → `Delete` of
 * the author's post, or `Undo` of the author's reaction or repost. Every payload carries
 * `origin: {network: "nostr", id}` and the whole event in `nostr`. `trxOf` resolves an event id
 * to the trx of this group that it stands for.
 */
export function fromNostr(
  event: NostrEvent,
  trxOf: (eventId: string) => TrxRef | null,
): FromNostrResult {
  const base = { origin: { network: 'nostr', id: event.id }, [NOSTR_FIELD]: { ...event } };
  if (POST_KINDS.has(event.kind)) {
    if (event.content.length === 0) return { ok: false, reason: 'invalid: an empty post' };
    if (event.content.length > LIMITS.contentChars) {
      return { ok: false, reason: `invalid: a post is at most ${LIMITS.contentChars} characters` };
    }
    const title = event.kind === 11 ? event.tags.find((t) => t[0] === 'title')?.[1] : undefined;
    const out: Rec = title
      ? { type: 'Article', name: title.slice(0, LIMITS.titleChars), content: event.content }
      : { type: 'Note', content: event.content };
    // Nostr text is plain text, even when it looks like HTML.
    out.mediaType = 'text/plain';
    const target = replyTargetEvent(event);
    const trx = target ? trxOf(target) : null;
    if (trx) out.inReplyTo = { type: 'Note', id: trx.trxId };
    return { ok: true, payload: { ...out, ...base } };
  }
  const targetEvent = lastE(event);
  if (!targetEvent) return { ok: false, reason: 'invalid: the event names no event (`e` tag)' };
  const trx = trxOf(targetEvent);
  if (!trx) return { ok: false, reason: 'invalid: the event it refers to is not in this group' };
  switch (event.kind) {
    case 7: {
      const type = event.content === '-' ? 'Dislike' : 'Like';
      return { ok: true, payload: { type, object: { type: 'Note', id: trx.trxId }, ...base } };
    }
    case 6:
    case 16:
      return {
        ok: true,
        payload: { type: 'Announce', object: { type: 'Note', id: trx.trxId }, ...base },
      };
    case 5: {
      if (trx.pubkey !== event.pubkey) {
        return { ok: false, reason: 'blocked: only its author may delete an event' };
      }
      const reaction = trx.type === 'Like' || trx.type === 'Dislike' || trx.type === 'Announce';
      return {
        ok: true,
        payload: reaction
          ? { type: 'Undo', object: { type: trx.type, id: trx.trxId }, ...base }
          : { type: 'Delete', object: { type: 'Note', id: trx.trxId }, ...base },
      };
    }
    default:
      return { ok: false, reason: `unsupported: kind ${event.kind} is not group content here` };
  }
}

// ---------------------------------------------------------------------------------------------
// Carried events

/** The event a payload carries in its `nostr` field, if it has the form of one (unverified). */
export function carriedEvent(payload: Rec | null): NostrEvent | null {
  return asEvent(payload?.[NOSTR_FIELD]);
}

/** A JSON value as a Nostr event, if it has the form of one (unverified; extra fields dropped). */
export function asEvent(e: unknown): NostrEvent | null {
  if (!isRec(e)) return null;
  const { id, pubkey, created_at, kind, tags, content, sig } = e;
  if (typeof id !== 'string' || !HEX64.test(id)) return null;
  if (typeof pubkey !== 'string' || !HEX64.test(pubkey)) return null;
  if (typeof sig !== 'string' || !/^[0-9a-f]{128}$/.test(sig)) return null;
  if (!Number.isSafeInteger(created_at) || (created_at as number) < 0) return null;
  if (!Number.isSafeInteger(kind) || (kind as number) < 0 || (kind as number) > 65535) return null;
  if (typeof content !== 'string') return null;
  if (
    !Array.isArray(tags) ||
    !tags.every((t) => Array.isArray(t) && t.every((s) => typeof s === 'string'))
  ) {
    return null;
  }
  return {
    id,
    pubkey,
    created_at: created_at as number,
    kind: kind as number,
    tags: tags as string[][],
    content,
    sig,
  };
}

/** The payload without its `nostr` field (what the event stands for). */
export function withoutEvent(payload: Rec): Rec {
  const { [NOSTR_FIELD]: _, ...rest } = payload;
  return rest;
}

/**
 * Whether a carried event says what its payload says: the same group (`h`), and a post of the
 * same text, a reaction (`-` exactly for a Dislike), a repost, or a deletion. Its other tags are
 * the signer's own (they are not compared: they name events by ids that differ per relay).
 */
export function matchesPayload(event: NostrEvent, payload: Rec, groupId: string): boolean {
  if (groupOf(event) !== groupId) return false;
  const post = rumPost(payload);
  if (post) return POST_KINDS.has(event.kind) && event.content === postText(post);
  switch (payload.type) {
    case 'Like':
      return event.kind === 7 && event.content !== '-';
    case 'Dislike':
      return event.kind === 7 && event.content === '-';
    case 'Announce':
      return event.kind === 6 || event.kind === 16;
    case 'Delete':
    case 'Undo':
      return event.kind === 5;
    default:
      return false;
  }
}
