/**
 * Pages for people: what a browser gets at the group's and the posts' URLs (Mastodon links to
 * them). Plain server-rendered HTML, no scripts (a Content-Security-Policy forbids any), every
 * value escaped and every post's HTML through the bridge's sanitizer.
 *
 * - `GET /@<handle>`: the group (name, description from its app config, `@handle@host`, its
 *   follower count) and its recent posts, newest first, whichever network they came from, paged
 *   with `?before=<block>.<position>`.
 * - `GET /p/<trx id>`: the post, its replies, and where it went: its activities' deliveries
 *   (done, pending, failed) by instance.
 * - `GET /avatars/u_<key>/<trx id>`: the avatar of an author's profile (the `icon` of its Person
 *   actor), as long as that trx carries the profile it has now in a served group.
 * - The ActivityPub ids of groups and posts, opened with `Accept: text/html`, redirect (302) to
 *   these pages ({@link Pages.notAcceptable}, Fedify's `onNotAcceptable`).
 *
 * Only groups served on ActivityPub (exposed there, public, not suspended) have pages: any other
 * handle or trx is a 404, so nothing of a private or suspended group is ever shown.
 *
 * Delivery outcomes are kept per post in the bridge's kv ({@link DeliveryLog}): a delivery is
 * recorded pending when Fedify queues it (mq.ts's `onOutboxQueued`), and done or failed when the
 * delivery queue says so. A 404/410 answer is handled by Fedify itself (the job ends as done);
 * {@link recordGone} records it as failed when the permanent-failure handler calls it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BridgeKv, CommittedItem, DeliveryJob, DeliveryQueue, ExposedGroup } from '../port.ts';
import { type ApState, shortKey } from './federation.ts';
import { rumPost, rumReplyTarget } from '../rum-content.ts';
import { instantOf, rumMedia } from './mapping.ts';
import { JOB_KIND, onOutboxQueued } from './mq.ts';
import { escapeHtml as esc, looksLikeHtml, plainTextToHtml, sanitizeContent } from './sanitize.ts';
import { type ApUrls, authorIdentifier, groupIdentifier, handleOf, pubkeyOf } from './urls.ts';

/** Posts on one page of a group. */
export const PAGE_POSTS = 20;
/** Replies shown under a post. */
export const PAGE_REPLIES = 200;
/** History items looked at for one group page at most (likes, deletes and edits are skipped). */
const SCAN_LIMIT = 1000;

type Rec = Record<string, unknown>;

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, max = 2000): string | null {
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (s.length === 0) return null;
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function httpUrl(v: unknown): string | null {
  const s = str(v, 4096);
  if (!s) return null;
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * Where an author's avatar is served: under the trx of the profile that carries it, so that a new
 * avatar has a new URL (Mastodon fetches an avatar again only when its URL changes).
 */
export function avatarUrl(urls: ApUrls, pubkey: string, trxId: string): URL {
  const path = `/avatars/${authorIdentifier(pubkey)}/${encodeURIComponent(trxId)}`;
  return new URL(path, `${urls.origin}/`);
}

// ---- delivery outcomes ----

export type DeliveryStatus = 'pending' | 'done' | 'failed';

interface DeliveryRecord {
  s: DeliveryStatus;
  /** Fedify's attempt number (a Retry-After makes a new message with the next one). */
  a: number;
  at: number;
  /** The last error. */
  e?: string;
  /** Recorded by Fedify's permanent-failure handler (a 404/410), not by the queue. */
  gone?: boolean;
}

export interface InstanceDeliveries {
  host: string;
  done: number;
  pending: number;
  failed: number;
  lastError: string | null;
}

export interface DeliverySummary {
  /** One row per receiving instance (inbox host), by host. */
  instances: InstanceDeliveries[];
  /** Instances by their state: every delivery done, some still pending, some failed. */
  delivered: number;
  pending: number;
  failed: number;
}

const DLV = 'dlv:';
/** How long a post's delivery outcomes are kept. */
export const DELIVERY_RECORD_TTL_MS = 30 * 24 * 3600_000;
const MAX_ROWS = 20_000;
/** How often buffered delivery outcomes are committed. */
export const FLUSH_MS = 500;

/**
 * The trx an activity id of this gateway belongs to (a post, its Create, the group's boost, or
 * its FEP-1b12 Announce of the activity).
 */
export function trxOfActivity(urls: ApUrls, activityId: string): string | null {
  let u: URL;
  try {
    u = new URL(activityId);
  } catch {
    return null;
  }
  if (u.origin !== new URL(urls.origin).origin) return null;
  const m =
    /^\/ap\/posts\/([^/]+)(?:\/create)?$/.exec(u.pathname) ??
    /^\/ap\/actors\/[^/]+\/announces\/([^/]+)(?:\/activity)?$/.exec(u.pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return null;
  }
}

/**
 * The outcomes of the deliveries of each post's activities, per inbox, in the bridge's kv.
 * Writes are buffered and committed together every {@link FLUSH_MS} (one transaction, one disk
 * sync: a fan-out to a thousand inboxes must not wait for thousands of syncs); a page reads
 * them after flushing. A crash loses at most the last interval's changes.
 */
export class DeliveryLog {
  private readonly kv: BridgeKv;
  private readonly urls: () => ApUrls;
  private readonly transaction: (fn: () => void) => void;
  private readonly dirty = new Map<string, DeliveryRecord>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    kv: BridgeKv,
    urls: () => ApUrls,
    transaction: (fn: () => void) => void = (fn) => fn(),
  ) {
    this.kv = kv;
    this.urls = urls;
    this.transaction = transaction;
  }

  private key(activityId: string, inbox: string): string | null {
    const trx = trxOfActivity(this.urls(), activityId);
    return trx === null ? null : `${DLV}${trx}\n${activityId}\n${inbox}`;
  }

  private read(key: string): DeliveryRecord | undefined {
    return this.dirty.get(key) ?? this.kv.get<DeliveryRecord>(key);
  }

  private write(key: string, rec: DeliveryRecord): void {
    this.dirty.set(key, rec);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Commits the buffered changes. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.dirty.size === 0) return;
    const entries = [...this.dirty];
    this.dirty.clear();
    this.transaction(() => {
      for (const [key, rec] of entries) this.kv.set(key, rec, DELIVERY_RECORD_TTL_MS);
    });
  }

  /** A delivery was queued (attempt: Fedify's attempt number). */
  queued(activityId: string, inbox: string, attempt: number): void {
    const key = this.key(activityId, inbox);
    if (!key) return;
    const rec = this.read(key);
    if (rec && rec.a > attempt) return;
    if (rec && rec.a === attempt && rec.s !== 'pending') return;
    const next: DeliveryRecord = { s: 'pending', a: attempt, at: Date.now() };
    if (rec?.e) next.e = rec.e;
    this.write(key, next);
  }

  /** What the delivery queue said of one attempt: done, failed for good, or to be retried. */
  outcome(
    activityId: string,
    inbox: string,
    attempt: number,
    status: DeliveryStatus,
    error?: string,
  ): void {
    const key = this.key(activityId, inbox);
    if (!key) return;
    const rec = this.read(key);
    // A newer message of the same delivery (Fedify re-queued it for a Retry-After) decides.
    if (rec && rec.a > attempt) return;
    // Fedify ended this very attempt as gone (404/410); the queue then calls the job done.
    if (rec?.gone && rec.a === attempt && Date.now() - rec.at < 60_000) return;
    const next: DeliveryRecord = { s: status, a: attempt, at: Date.now() };
    const e = error ?? (status === 'done' ? undefined : rec?.e);
    if (e) next.e = e.slice(0, 300);
    this.write(key, next);
  }

  /**
   * Fedify's permanent-failure handler: the inbox answered 404/410 (Fedify does not throw, so
   * the queue ends the job as done). See {@link recordGone}.
   */
  gone(activityId: string, inbox: string, statusCode?: number): void {
    const key = this.key(activityId, inbox);
    if (!key) return;
    this.write(key, {
      s: 'failed',
      a: this.read(key)?.a ?? 0,
      at: Date.now(),
      e: `gone (${statusCode ?? 'permanent failure'})`,
      gone: true,
    });
  }

  /** Where a post's activities went: counts by receiving instance. */
  summary(trxId: string): DeliverySummary {
    this.flush();
    const prefix = `${DLV}${trxId}\n`;
    const by = new Map<string, InstanceDeliveries>();
    for (const { key, value } of this.kv.list(prefix, { limit: MAX_ROWS })) {
      const inbox = key.slice(prefix.length).split('\n')[1] ?? '';
      let host: string;
      try {
        host = new URL(inbox).host;
      } catch {
        continue;
      }
      const rec = value as DeliveryRecord;
      let row = by.get(host);
      if (!row) {
        row = { host, done: 0, pending: 0, failed: 0, lastError: null };
        by.set(host, row);
      }
      if (rec.s === 'done') row.done++;
      else if (rec.s === 'failed') row.failed++;
      else row.pending++;
      if (rec.s !== 'done' && rec.e) row.lastError = rec.e;
    }
    const instances = [...by.values()].sort((a, b) => a.host.localeCompare(b.host));
    const out: DeliverySummary = { instances, delivered: 0, pending: 0, failed: 0 };
    for (const r of instances) {
      if (r.failed > 0) out.failed++;
      else if (r.pending > 0) out.pending++;
      else out.delivered++;
    }
    return out;
  }

  /** Follows the queue: deliveries queued by Fedify, and the outcomes of `fedify` jobs. */
  watch(queue: DeliveryQueue): () => void {
    const outbox = (job: DeliveryJob) => {
      if (job.kind !== JOB_KIND || !isRec(job.payload)) return null;
      const p = job.payload;
      if (p.type !== 'outbox' || typeof p.activityId !== 'string' || typeof p.inbox !== 'string') {
        return null;
      }
      return { activityId: p.activityId, inbox: p.inbox, attempt: Number(p.attempt) || 0 };
    };
    const safely = (f: () => void) => {
      try {
        f();
      } catch {
        // A page's numbers are not worth failing a delivery for.
      }
    };
    const onDone = (job: DeliveryJob) => {
      const m = outbox(job);
      if (m) safely(() => this.outcome(m.activityId, m.inbox, m.attempt, 'done'));
    };
    const onFailed = (job: DeliveryJob, err: Error, retryInMs: number | null) => {
      const m = outbox(job);
      if (!m) return;
      const status = retryInMs === null ? 'failed' : 'pending';
      safely(() => this.outcome(m.activityId, m.inbox, m.attempt, status, err.message));
    };
    queue.on('done', onDone);
    queue.on('attemptFailed', onFailed);
    const unqueued = onOutboxQueued(queue, (activityId, inbox, attempt) =>
      safely(() => this.queued(activityId, inbox, attempt)),
    );
    return () => {
      queue.off('done', onDone);
      queue.off('attemptFailed', onFailed);
      unqueued();
      safely(() => this.flush());
    };
  }
}

// ---- rendering ----

const CSS = `
body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:0 auto;padding:1rem;color:#1b1b1b;background:#fff}
header.group{border-bottom:2px solid #ddd;margin-bottom:1rem}
h1{margin:.25rem 0;font-size:1.6rem}h2{font-size:1.15rem;margin:.25rem 0}
.handle,.meta,.count{color:#5a5a5a;font-size:.9rem}
article{border-top:1px solid #e3e3e3;padding:.75rem 0}
article.main{border-top:none;font-size:1.05rem}
.content{overflow-wrap:anywhere}
.replies{margin-left:1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eee}
td.n{text-align:right}
a{color:#1a4fa0}
img{max-width:100%;height:auto}
nav{margin:1rem 0}
`.trim();

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function document(title: string, body: string, alternate?: string): string {
  const alt = alternate
    ? `<link rel="alternate" type="application/activity+json" href="${esc(alternate)}">`
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>${alt}
<link rel="icon" href="data:,">
<style>${CSS}</style></head>
<body>${body}</body></html>
`;
}

/** The first app-config value set among names (the same names the Group actor reads). */
function config(g: ExposedGroup, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = g.appConfig[n];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

function groupName(g: ExposedGroup): string {
  return config(g, 'group_name', 'name', 'title') ?? g.name;
}

function groupSummary(g: ExposedGroup): string | undefined {
  return config(g, 'group_desc', 'group_description', 'description', 'desc', 'summary');
}

function when(item: CommittedItem): string {
  const t = instantOf(item.timestamp);
  if (!t) return '';
  const iso = t.toString({ smallestUnit: 'second' });
  return `<time datetime="${esc(iso)}">${esc(iso.replace('T', ' ').replace('Z', ' UTC'))}</time>`;
}

/** The post's HTML content, sanitized (plain text escaped and linked). */
function contentHtml(item: CommittedItem, post: Rec): string {
  if (post.type === 'Image') return '';
  const raw = typeof post.content === 'string' ? post.content : '';
  if (!raw) return '';
  // Content that came from ActivityPub is HTML (sanitized on the way in; sanitized again here).
  if (item.origin?.network === 'activitypub') return sanitizeContent(raw);
  const mediaType = typeof post.mediaType === 'string' ? post.mediaType.toLowerCase() : '';
  if (mediaType.startsWith('text/html') || (!mediaType.startsWith('text/') && looksLikeHtml(raw))) {
    return sanitizeContent(raw);
  }
  return plainTextToHtml(raw);
}

const INLINE_IMAGE = /^image\/(png|jpeg|gif|webp)$/;
/** The largest image (base64 characters) a page shows inline. */
const MAX_INLINE_IMAGE = 2 * 1024 * 1024;

function mediaHtml(post: Rec): string {
  const out: string[] = [];
  for (const m of rumMedia(post)) {
    const alt = m.name ?? '';
    if (m.url) {
      out.push(
        `<li><a href="${esc(m.url)}" rel="nofollow noopener">${esc(alt || `${m.type.toLowerCase()} attachment`)}</a></li>`,
      );
    } else if (m.data && m.mediaType && INLINE_IMAGE.test(m.mediaType)) {
      const data = m.data.replace(/\s+/g, '');
      if (data.length <= MAX_INLINE_IMAGE && /^[A-Za-z0-9+/]+=*$/.test(data)) {
        out.push(`<li><img src="data:${esc(m.mediaType)};base64,${data}" alt="${esc(alt)}"></li>`);
      }
    }
  }
  return out.length > 0 ? `<ul class="media">${out.join('')}</ul>` : '';
}

const logs = new WeakMap<ApState, DeliveryLog>();

/**
 * For Fedify's outbox permanent-failure handler (federation.ts): a 404/410 from an inbox, so the
 * post's page counts that delivery failed rather than done.
 */
export function recordGone(
  state: ApState,
  activityId: string | null | undefined,
  inbox: string,
  statusCode?: number,
): void {
  if (activityId) logs.get(state)?.gone(activityId, inbox, statusCode);
}

export class Pages {
  private readonly state: ApState;
  readonly deliveries: DeliveryLog;

  constructor(state: ApState) {
    this.state = state;
    this.deliveries = new DeliveryLog(
      state.kv,
      () => state.urls,
      (fn) => state.port.transaction(fn),
    );
    logs.set(state, this.deliveries);
  }

  private get urls(): ApUrls {
    return this.state.urls;
  }

  /** Who wrote an item: the remote actor of a bridged post, or the RUM key. */
  private author(item: CommittedItem, post: Rec): string {
    const by = post.attributedTo;
    if (item.origin?.network === 'activitypub' && isRec(by)) {
      const id = httpUrl(by.id);
      const link = httpUrl(by.url) ?? id;
      const name = str(by.name, 200) ?? str(by.preferredUsername, 200) ?? id ?? 'someone';
      let host = '';
      try {
        host = id ? new URL(id).host : '';
      } catch {}
      const label = `${esc(name)}${host ? ` <span class="meta">(${esc(host)})</span>` : ''}`;
      return link
        ? `<a class="author" href="${esc(link)}" rel="nofollow noopener">${label}</a>`
        : `<span class="author">${label}</span>`;
    }
    const outside = this.state.port.authorOf(item.senderPubkey);
    if (outside) {
      const who = outside.author.length > 24 ? shortKey(outside.author) : outside.author;
      return `<span class="author" title="${esc(outside.author)}">${esc(who)} <span class="meta">(${esc(outside.network)})</span></span>`;
    }
    const name = this.state.authorName(item.groupId, item.senderPubkey);
    return `<span class="author" title="RUM key ${esc(item.senderPubkey)}">${esc(name)}</span>`;
  }

  /** Where a reply points: the page of a post of the group, or the remote object. */
  private replyLink(group: ExposedGroup, item: CommittedItem, post: Rec): string {
    const target = rumReplyTarget(post) ?? item.inReplyTo;
    if (target && this.state.port.item(group.groupId, target)) {
      return ` · in reply to <a href="${esc(this.urls.postPage(target).href)}">a post</a>`;
    }
    const origin = isRec(post.origin) ? httpUrl(post.origin.inReplyTo) : null;
    return origin
      ? ` · in reply to <a href="${esc(origin)}" rel="nofollow noopener">a post elsewhere</a>`
      : '';
  }

  private article(group: ExposedGroup, item: CommittedItem, post: Rec, cls = 'post'): string {
    const page = this.urls.postPage(item.trxId).href;
    const network = item.origin ? ` · via ${esc(item.origin.network)}` : '';
    const original =
      item.origin?.network === 'activitypub'
        ? (httpUrl(post.url) ?? httpUrl(item.origin.externalId))
        : null;
    const originalLink = original
      ? ` · <a href="${esc(original)}" rel="nofollow noopener">original</a>`
      : '';
    const title = str(post.name, 500);
    const body = `<div class="content">${contentHtml(item, post)}${mediaHtml(post)}</div>`;
    const warning = str(post.summary, 500);
    const content = warning ? `<details><summary>${esc(warning)}</summary>${body}</details>` : body;
    return `<article class="${cls}" id="p-${esc(item.trxId)}">
<p class="meta">${this.author(item, post)} · <a href="${esc(page)}">${when(item) || 'post'}</a>${network}${originalLink}${this.replyLink(group, item, post)}</p>
${title ? `<h2>${esc(title)}</h2>` : ''}${content}
</article>`;
  }

  private html(reply: FastifyReply, status: number, body: string) {
    return reply
      .code(status)
      .headers({ ...SECURITY_HEADERS, vary: 'Accept' })
      .type('text/html; charset=utf-8')
      .send(body);
  }

  notFoundPage(what: string): string {
    return document('Not found', `<main><h1>Not found</h1><p>${esc(what)}</p></main>`);
  }

  /** The group page, or null when no group is served under the handle. */
  groupPage(handle: string, before: string | undefined): string | null {
    const group = this.state.served(this.state.port.exposureByHandle(handle));
    if (!group) return null;
    const actor = this.urls.group(group.handle).href;
    const host = new URL(this.urls.origin).host;
    const name = groupName(group);
    const summary = groupSummary(group);
    const followers = this.state.followers.count(groupIdentifier(group.handle));
    let place = placeOf(before);
    const posts: string[] = [];
    let scanned = 0;
    let last: { blockId: number; position: number } | undefined;
    let more = false;
    scan: while (scanned < SCAN_LIMIT) {
      const items = this.state.port.history(group.groupId, { before: place, limit: 100 });
      for (const item of items) {
        scanned++;
        last = { blockId: item.blockId, position: item.position };
        const post = item.deleted ? null : rumPost(item.object);
        if (post) posts.push(this.article(group, item, post));
        if (posts.length >= PAGE_POSTS) {
          more = this.state.port.history(group.groupId, { before: last, limit: 1 }).length > 0;
          break scan;
        }
      }
      if (items.length < 100) {
        more = false;
        break;
      }
      place = last;
      more = true;
    }
    const older =
      more && last
        ? `<nav><a rel="next" href="${esc(`${this.urls.groupPage(group.handle).href}?before=${last.blockId}.${last.position}`)}">Older posts</a></nav>`
        : '';
    const body = `<header class="group">
<h1>${esc(name)}</h1>
<p class="handle">@${esc(group.handle)}@${esc(host)}</p>
${summary ? `<p class="summary">${esc(summary)}</p>` : ''}
<p class="count">${followers} ${followers === 1 ? 'follower' : 'followers'} on the fediverse · follow <a href="${esc(actor)}">@${esc(group.handle)}@${esc(host)}</a> from your instance</p>
</header>
<main>
${posts.length > 0 ? posts.join('\n') : '<p>No posts yet.</p>'}
${older}
</main>`;
    return document(`${name} (@${group.handle}@${host})`, body, actor);
  }

  /** A post's page: status and HTML (404 for an unknown trx, 410 for a deleted post). */
  postPage(trxId: string): { status: number; html: string } {
    const found = this.state.findItem(trxId);
    const post = found ? rumPost(found.item.object) : null;
    if (!found || !post) {
      return { status: 404, html: this.notFoundPage('There is no such post here.') };
    }
    const { item, group } = found;
    const name = groupName(group);
    const groupLink = `<p class="meta"><a href="${esc(this.urls.groupPage(group.handle).href)}">${esc(name)}</a></p>`;
    if (item.deleted) {
      return {
        status: 410,
        html: document(
          'Deleted',
          `<main>${groupLink}<h1>Deleted</h1><p>This post was deleted.</p></main>`,
        ),
      };
    }
    const replies: string[] = [];
    for (const r of this.state.port.replies(group.groupId, trxId, PAGE_REPLIES)) {
      const p = r.deleted ? null : rumPost(r.object);
      if (p) replies.push(this.article(group, r, p, 'reply'));
    }
    const title = str(post.name, 200) ?? str(htmlTitle(contentHtml(item, post)), 80) ?? 'Post';
    const alternate = item.origin ? undefined : this.urls.post(trxId).href;
    const body = `${groupLink}
<main>
${this.article(group, item, post, 'main')}
<section class="replies"><h2>Replies (${replies.length})</h2>
${replies.length > 0 ? replies.join('\n') : '<p>No replies yet.</p>'}
</section>
${this.whereItWent(trxId)}
</main>`;
    return { status: 200, html: document(`${title} — ${name}`, body, alternate) };
  }

  private whereItWent(trxId: string): string {
    const s = this.deliveries.summary(trxId);
    if (s.instances.length === 0) {
      return '<section class="deliveries"><h2>Where it went</h2><p>Not sent to any instance (none followed the group when it was posted).</p></section>';
    }
    const rows = s.instances
      .map(
        (r) =>
          `<tr><td>${esc(r.host)}</td><td class="n">${r.done}</td><td class="n">${r.pending}</td><td class="n">${r.failed}</td><td>${esc(r.lastError ?? '')}</td></tr>`,
      )
      .join('\n');
    const n = (k: number) => `${k} ${k === 1 ? 'instance' : 'instances'}`;
    return `<section class="deliveries"><h2>Where it went</h2>
<p class="summary">Delivered to ${n(s.delivered)} · pending at ${n(s.pending)} · failed at ${n(s.failed)}</p>
<table><thead><tr><th>Instance</th><th>Delivered</th><th>Pending</th><th>Failed</th><th>Last error</th></tr></thead>
<tbody>
${rows}
</tbody></table></section>`;
  }

  /**
   * What a browser gets at an ActivityPub URL (Fedify's onNotAcceptable): a redirect to the
   * page of the group or post; null for other URLs (they answer 406).
   */
  notAcceptable(request: Request): Response | null {
    const path = new URL(request.url).pathname;
    let page: string | null = null;
    let m = /^\/ap\/actors\/([^/]+)(?:\/(?:outbox|followers))?$/.exec(path);
    if (m) {
      const handle = handleOf(safeDecode(m[1]!) ?? '');
      if (handle === null) return null;
      if (this.state.served(this.state.port.exposureByHandle(handle))) {
        page = this.urls.groupPage(handle).href;
      }
    } else {
      m =
        /^\/ap\/posts\/([^/]+)(?:\/create)?$/.exec(path) ??
        /^\/ap\/actors\/[^/]+\/announces\/([^/]+)(?:\/activity)?$/.exec(path);
      if (!m) return null;
      const trx = safeDecode(m[1]!);
      const found = trx ? this.state.findItem(trx) : null;
      if (trx && found && rumPost(found.item.object)) page = this.urls.postPage(trx).href;
    }
    if (!page) {
      return new Response(this.notFoundPage('Nothing is here.'), {
        status: 404,
        headers: {
          ...SECURITY_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          vary: 'Accept',
        },
      });
    }
    return new Response(null, { status: 302, headers: { location: page, vary: 'Accept' } });
  }

  /** The routes: `/@<handle>`, `/p/<trx id>` and `/avatars/u_<key>/<trx id>`. */
  mount(app: FastifyInstance): void {
    app.get<{ Params: { author: string; trx: string } }>(
      '/avatars/:author/:trx',
      async (req, reply) => {
        const pubkey = pubkeyOf(req.params.author);
        const profile = pubkey ? this.state.authorProfile(pubkey) : undefined;
        const image = profile?.trxId === req.params.trx ? profile.image : null;
        if (!image) {
          return reply
            .code(404)
            .headers(SECURITY_HEADERS)
            .type('text/plain; charset=utf-8')
            .send('No such avatar.');
        }
        return reply
          .headers({
            ...SECURITY_HEADERS,
            'content-security-policy': "default-src 'none'",
            // The URL names the profile's trx: what it serves never changes.
            'cache-control': 'public, max-age=604800, immutable',
          })
          .type(image.mediaType)
          .send(Buffer.from(image.content));
      },
    );
    app.get<{ Params: { handle: string }; Querystring: { before?: string } }>(
      '/@:handle',
      async (req, reply) => {
        const handle = req.params.handle.toLowerCase();
        if (wantsActivityJson(req.headers.accept)) {
          const g = this.state.served(this.state.port.exposureByHandle(handle));
          if (g) return reply.redirect(this.urls.group(g.handle).href, 302);
        }
        const before = typeof req.query.before === 'string' ? req.query.before : undefined;
        const html = this.groupPage(handle, before);
        if (html === null)
          return this.html(reply, 404, this.notFoundPage('There is no such group here.'));
        return this.html(reply, 200, html);
      },
    );
    app.get<{ Params: { trx: string } }>('/p/:trx', async (req, reply) => {
      const trx = req.params.trx;
      if (wantsActivityJson(req.headers.accept)) {
        const found = this.state.findItem(trx);
        if (found && !found.item.origin) return reply.redirect(this.urls.post(trx).href, 302);
      }
      const { status, html } = this.postPage(trx);
      return this.html(reply, status, html);
    });
  }
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** Whether an Accept header asks for ActivityPub JSON rather than HTML. */
function wantsActivityJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const a = accept.toLowerCase();
  if (a.includes('text/html')) return false;
  return a.includes('application/activity+json') || a.includes('application/ld+json');
}

/** The place (`<block>.<position>`) a `before` cursor names, or undefined for the newest. */
function placeOf(cursor: string | undefined): { blockId: number; position: number } | undefined {
  const m = cursor ? /^(\d{1,15})\.(\d{1,9})$/.exec(cursor) : null;
  return m ? { blockId: Number(m[1]), position: Number(m[2]) } : undefined;
}

/** A short title from a post's HTML (its text, entities kept escaped, then unescaped once). */
function htmlTitle(html: string): string {
  const text = html
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&amp;', '&');
}
