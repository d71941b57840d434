/**
 * The operator's blocks on ActivityPub: one remote actor (by id) or a whole instance (by host),
 * kept in the bridge's kv. A block stops both directions: the inboxes refuse what a blocked actor
 * or instance sends (403, before Fedify), and nothing but the block's own `Reject`/`Block` is
 * delivered to them.
 *
 * An instance block names a host as URLs spell it (`mastodon.example`, or `127.0.0.1:8080` with a
 * port); a host without a port covers every port of that host and every subdomain of it, as
 * Mastodon's domain blocks do.
 */
import type { BridgeKv } from '../port.ts';

/** What a block sent, so that unblocking can send the matching Undo. */
export interface SentBlock {
  /** Our actor identifier that sent it. */
  by: string;
  /** The remote actor it went to. */
  to: string;
  inbox: string;
  /** The Block activity's id. */
  id: string;
}

export interface BlockRecord {
  kind: 'actor' | 'instance';
  /** The actor id, or the host. */
  target: string;
  since: number;
  /** The blocked actor's personal inbox, when known (deliveries to it are stopped too). */
  inbox?: string | null;
  sent: SentBlock[];
}

const ACTOR = 'block:actor\n';
const INSTANCE = 'block:instance\n';
const INBOX = 'block:inbox\n';

/** The URL's fragment dropped (a keyId `…/users/a#main-key` names the actor `…/users/a`). */
function withoutFragment(url: string): string {
  const i = url.indexOf('#');
  return i < 0 ? url : url.slice(0, i);
}

/** A host as an instance block names it: lowercase, no scheme, no path, no trailing dot. */
export function normalizeHost(input: string): string | null {
  const s = input.trim().toLowerCase();
  if (s === '') return null;
  try {
    const u = new URL(s.includes('://') ? s : `https://${s}`);
    return u.host.replace(/\.$/, '') || null;
  } catch {
    return null;
  }
}

/** The block keys an instance block of this URL could be under (host, hostname, parents). */
function hostCandidates(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  const out = [u.host.toLowerCase()];
  const labels = u.hostname.toLowerCase().replace(/\.$/, '').split('.');
  // An IP address has no parent domains.
  const ip = /^[0-9.]+$/.test(u.hostname) || u.hostname.startsWith('[');
  for (let i = 0; i < (ip ? 1 : labels.length - 1); i++) out.push(labels.slice(i).join('.'));
  return [...new Set(out)];
}

export class Blocks {
  private readonly kv: BridgeKv;
  /**
   * The kv keys of every block, kept in memory: every inbox POST and every delivery asks several
   * times. Blocks change only through this object (one per node; the admin API and CLI go
   * through it), which keeps the set in step with the kv.
   */
  private keys: Set<string> | null = null;

  constructor(kv: BridgeKv) {
    this.kv = kv;
  }

  /** Every kv entry under a prefix, a page at a time. */
  private *rows(prefix: string): Generator<{ key: string; value: unknown }> {
    let after: string | undefined;
    for (;;) {
      const rows = this.kv.list(prefix, { limit: 1000, ...(after ? { after } : {}) });
      yield* rows;
      if (rows.length < 1000) return;
      after = rows[rows.length - 1]!.key;
    }
  }

  private has(key: string): boolean {
    if (!this.keys) {
      const keys = new Set<string>();
      for (const prefix of [ACTOR, INSTANCE, INBOX])
        for (const r of this.rows(prefix)) keys.add(r.key);
      this.keys = keys;
    }
    return this.keys.has(key);
  }

  get(kind: 'actor' | 'instance', target: string): BlockRecord | undefined {
    return this.kv.get<BlockRecord>((kind === 'actor' ? ACTOR : INSTANCE) + target);
  }

  put(record: BlockRecord): void {
    const key = (record.kind === 'actor' ? ACTOR : INSTANCE) + record.target;
    this.kv.set(key, record);
    this.keys?.add(key);
    if (record.kind === 'actor' && record.inbox) {
      this.kv.set(INBOX + record.inbox, record.target);
      this.keys?.add(INBOX + record.inbox);
    }
  }

  remove(kind: 'actor' | 'instance', target: string): BlockRecord | undefined {
    const r = this.get(kind, target);
    if (!r) return undefined;
    const key = (kind === 'actor' ? ACTOR : INSTANCE) + target;
    this.kv.delete(key);
    this.keys?.delete(key);
    if (r.inbox) {
      this.kv.delete(INBOX + r.inbox);
      this.keys?.delete(INBOX + r.inbox);
    }
    return r;
  }

  list(): BlockRecord[] {
    const out: BlockRecord[] = [];
    for (const prefix of [ACTOR, INSTANCE]) {
      for (const r of this.rows(prefix)) out.push(r.value as BlockRecord);
    }
    return out;
  }

  /** The instance block that covers a URL's host, if any. */
  instanceOf(url: string): string | null {
    for (const h of hostCandidates(url)) {
      if (this.has(INSTANCE + h)) return h;
    }
    return null;
  }

  /**
   * Whether a URL is blocked: an actor id (or a key id of it) that is blocked, or any URL on a
   * blocked instance.
   */
  blocks(url: string | URL | null | undefined): boolean {
    if (!url) return false;
    const href = typeof url === 'string' ? url : url.href;
    if (this.has(ACTOR + href) || this.has(ACTOR + withoutFragment(href))) return true;
    return this.instanceOf(href) !== null;
  }

  /** Whether an inbox is the personal inbox of a blocked actor or on a blocked instance. */
  blocksInbox(inbox: string): boolean {
    return this.has(INBOX + inbox) || this.instanceOf(inbox) !== null;
  }
}

/** The key id of a signed request (draft-cavage `Signature` or RFC 9421 `Signature-Input`). */
export function signerKeyIds(headers: Record<string, string | string[] | undefined>): string[] {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v) ?? '';
  const out: string[] = [];
  for (const m of one(headers.signature).matchAll(/keyId\s*=\s*"([^"]*)"/gi)) out.push(m[1]!);
  for (const m of one(headers['signature-input']).matchAll(/;\s*keyid\s*=\s*"([^"]*)"/gi)) {
    out.push(m[1]!);
  }
  return out;
}

/** The actor(s) an activity names (`actor`, as a string, an object or a list). */
export function bodyActors(doc: unknown): string[] {
  if (!doc || typeof doc !== 'object') return [];
  const actor = (doc as { actor?: unknown }).actor;
  const list = Array.isArray(actor) ? actor : [actor];
  const out: string[] = [];
  for (const a of list) {
    if (typeof a === 'string') out.push(a);
    else if (a && typeof a === 'object' && typeof (a as { id?: unknown }).id === 'string') {
      out.push((a as { id: string }).id);
    }
  }
  return out;
}

/**
 * Why an inbox POST is refused before Fedify sees it (a blocked signer key or a blocked `actor`
 * in the body), or null. A `Follow` from a blocked actor goes on: the Follow listener answers it
 * with a signed `Reject`, as Mastodon expects of a blocked follower.
 */
export function inboxRefusal(
  blocks: Blocks,
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
): string | null {
  let doc: unknown = null;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    try {
      doc = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      doc = null;
    }
  }
  const hit = [...signerKeyIds(headers), ...bodyActors(doc)].find((u) => blocks.blocks(u));
  if (!hit) return null;
  if ((doc as { type?: unknown } | null)?.type === 'Follow') return null;
  return `${hit} is blocked here`;
}
