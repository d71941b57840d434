/**
 * An independent ActivityPub server for tests: a small "Mastodon" on node:http and node:crypto
 * only (it must never import Fedify, so that the bridge's signatures are checked by code that
 * shares nothing with the code that made them).
 *
 * What it does, as Mastodon does:
 * - serves WebFinger (`acct:<username>@127.0.0.1:<port>`), NodeInfo 2.0 (software `mastodon`
 *   unless told otherwise), its `Person` actor with an RSA-2048 `publicKey` (`#main-key`), a
 *   personal inbox, a shared inbox (`/inbox`), followers/following/outbox collections and every
 *   object and activity it created, at its id (a deleted Note answers 410 with its Tombstone);
 * - verifies every inbox POST: draft-cavage HTTP Signatures (`rsa-sha256` or `hs2019`), with
 *   Mastodon's strength rules (Date or (created) signed, Digest signed on POST, (request-target)
 *   or Digest signed, Host signed on GET), `Digest: SHA-256=` checked against the raw body, Date
 *   (or `created`/`expires`) within `maxSkewMs` (1 h), the key fetched from its owner's actor with a
 *   signed GET, and the signer must be the activity's actor. Anything else gets a 401 (413 when too
 *   large, 400 when not JSON) and lands in `refused`, never in `inbox`.
 * - RFC 9421 (`Signature-Input`): by default (`rfc9421: 'refuse'`) a request carrying
 *   `Signature-Input` is answered 401, as a Mastodon older than 4.5 does (it only reads
 *   draft-cavage), so a sender that knocks with RFC 9421 first must fall back to draft-cavage.
 *   With `rfc9421: 'accept'` it verifies RFC 9421 `rsa-v1_5-sha256` signatures instead (as recent
 *   Mastodon does): `@method` and `@target-uri` (or `@path` with `@authority`/`host`) and, on POST,
 *   `content-digest` (checked against the body) must be covered, `created` must be within the
 *   window. Both are settable at any time (`peer.rfc9421 = 'accept'`).
 * - signs every outgoing request with draft-cavage `rsa-sha256` as Mastodon does:
 *   `(request-target) host date digest content-type` on POST, `(request-target) host date accept`
 *   on GET (its fetches of actors and keys are signed: authorized fetch).
 * - a verified `Follow` of its actor is accepted with a signed `Accept` (unless
 *   `autoAcceptFollows` is false, a locked account); `Undo(Follow)` removes the follower.
 * - `authorizedFetch: true`: unsigned or badly signed GETs of objects and collections get 401 and
 *   an unsigned GET of the actor gets only its public parts (Mastodon's secure mode).
 *
 * It only talks to loopback addresses (127.0.0.0/8, ::1, localhost) unless `allowNonLoopback`.
 * Replays are not refused: like Mastodon, it relies on the Date window (a replayed POST inside the
 * window verifies again and is recorded again; tests count entries).
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign as rsaSign,
  verify as rsaVerify,
} from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export const AS_CONTEXT = 'https://www.w3.org/ns/activitystreams';
export const SECURITY_CONTEXT = 'https://w3id.org/security/v1';
export const AS_PUBLIC = 'https://www.w3.org/ns/activitystreams#Public';
/** The three spellings of the public collection that servers send (full URI, compacted, bare). */
export const PUBLIC_FORMS: readonly string[] = [AS_PUBLIC, 'as:Public', 'Public'];
/** Mastodon's Accept header for ActivityPub fetches. */
export const AP_ACCEPT =
  'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams", text/html;q=0.1';
const AP_TYPE = 'application/activity+json';

// biome-ignore lint/suspicious/noExplicitAny: ActivityPub documents are free-form JSON
export type Json = Record<string, any>;

export type SignatureScheme = 'draft-cavage' | 'rfc9421';

/** One verified inbound activity. */
export interface InboxEntry {
  activity: Json;
  verified: true;
  /** The key that signed the POST. */
  keyId: string;
  /** The owner of that key: the activity's actor. */
  signer: string;
  scheme: SignatureScheme;
  /** `/users/<name>/inbox` or `/inbox`. */
  path: string;
  at: number;
}

/** One refused inbound request (inbox POST, or GET under authorized fetch). */
export interface RefusedEntry {
  method: string;
  path: string;
  status: number;
  reason: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * One GET this peer served. `signed` = a Signature header was present; under authorized fetch,
 * `keyId` when it verified, else `refusal` says why.
 */
export interface FetchLogEntry {
  path: string;
  status: number;
  signed: boolean;
  keyId?: string;
  refusal?: string;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Delivery {
  inbox: string;
  status: number;
  body: string;
}

export interface Sent {
  activity: Json;
  deliveries: Delivery[];
}

export interface SentNote extends Sent {
  note: Json;
}

export interface FollowState {
  followId: string;
  follow: Json;
  state: 'pending' | 'accepted' | 'rejected';
}

export interface SignOptions {
  /** Default draft-cavage (as Mastodon signs). */
  scheme?: SignatureScheme;
  /** The Date (and RFC 9421 `created`) to sign; default now. */
  date?: Date;
  /** Default this peer's `#main-key`. */
  keyId?: string;
  /** Sign with another key (PEM or KeyObject) while still naming `keyId`: a forgery. */
  privateKey?: KeyObject | string;
  /** draft-cavage: the header list to sign, overriding Mastodon's. */
  headers?: string[];
  /** The Accept header of a GET (default Mastodon's). */
  accept?: string;
  /** draft-cavage `algorithm` parameter (default `rsa-sha256`; `hs2019` also verifies). */
  algorithm?: string;
}

export interface NoteOptions {
  content: string;
  inReplyTo?: string;
  /** Default `[AS_PUBLIC]`; a string is kept as a string, e.g. `'as:Public'`. */
  to?: string | string[];
  /** Default `[followersUrl]`. */
  cc?: string | string[];
  /**
   * Where to POST the Create. Default: the shared (else personal) inbox of every actor named in
   * `to`/`cc` (fetched, signed) plus those of this peer's followers, as Mastodon delivers.
   */
  inbox?: string | string[];
  tag?: Json[];
  summary?: string;
  /** Extra properties for the Note (e.g. `audience`, `attachment`). */
  extra?: Json;
}

export interface ApPeerOptions {
  /** Default `alice`. */
  username?: string;
  /** Display name; default the username with a capital. */
  name?: string;
  /** What to do with RFC 9421 (`Signature-Input`) requests; default `'refuse'` (401). */
  rfc9421?: 'refuse' | 'accept';
  /** Mastodon's secure mode; default false. */
  authorizedFetch?: boolean;
  /** Accept Follows of this actor with a signed Accept; default true. */
  autoAcceptFollows?: boolean;
  /** Allowed clock skew for Date / created / expires; default 1 h. */
  maxSkewMs?: number;
  /** Bound on each outgoing request and on follow(); default 10 s. */
  timeoutMs?: number;
  /** Largest inbox body; default 1 MiB (→ 413). */
  maxBodyBytes?: number;
  /** NodeInfo software; default `{ name: 'mastodon', version: '4.3.0' }`. */
  software?: { name: string; version: string };
  /** Allow requests to non-loopback hosts; default false. */
  allowNonLoopback?: boolean;
}

export class HttpError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(message: string, status: number, body: string) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** True for any of the three spellings of the public collection. */
export function isPublicAddress(x: unknown): boolean {
  return typeof x === 'string' && PUBLIC_FORMS.includes(x);
}

/** True when an object or activity addresses the public collection in `to` or `cc`. */
export function isPublic(obj: Json | null | undefined): boolean {
  if (!obj) return false;
  return [...asArray(obj.to), ...asArray(obj.cc)].some((x) => isPublicAddress(idOf(x)));
}

/** The id of a reference: the string itself, or the `id` of an embedded object. */
export function idOf(x: unknown): string | undefined {
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && typeof (x as Json).id === 'string') return (x as Json).id;
  return undefined;
}

function asArray<T>(x: T | T[] | undefined | null): T[] {
  if (x === undefined || x === null) return [];
  return Array.isArray(x) ? x : [x];
}

function sha256b64(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('base64');
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** All values of one request header, joined as HTTP does (", "), or undefined. */
function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) values.push(req.rawHeaders[i + 1]!.trim());
  }
  return values.length > 0 ? values.join(', ') : undefined;
}

/** Parses a draft-cavage `Signature` header: `keyId="…",algorithm="…",headers="…",signature="…"`. */
export function parseCavageSignature(header: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(,|$)/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m) return null;
    out[m[1]!] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
    pos = re.lastIndex;
    if (m[4] === '') break;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// RFC 8941 structured fields, just enough for RFC 9421 (Signature-Input, Signature, Content-Digest)

type SfBare = string | number | boolean | Buffer | { token: string };
type SfParams = [string, SfBare][];
export interface SfItem {
  value: SfBare;
  params: SfParams;
}
export interface SfInnerList {
  items: SfItem[];
  params: SfParams;
}

class SfParser {
  private readonly s: string;
  private i = 0;
  constructor(s: string) {
    this.s = s;
  }
  private fail(what: string): never {
    throw new Error(`structured field: ${what} at ${this.i}`);
  }
  private skipSp(): void {
    while (this.s[this.i] === ' ') this.i++;
  }
  private skipOws(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }
  dictionary(): Map<string, SfItem | SfInnerList> {
    const out = new Map<string, SfItem | SfInnerList>();
    this.skipSp();
    while (this.i < this.s.length) {
      const key = this.key();
      if (this.s[this.i] === '=') {
        this.i++;
        out.set(key, this.s[this.i] === '(' ? this.innerList() : this.item());
      } else {
        out.set(key, { value: true, params: this.params() });
      }
      this.skipOws();
      if (this.i >= this.s.length) break;
      if (this.s[this.i] !== ',') this.fail('expected ","');
      this.i++;
      this.skipOws();
      if (this.i >= this.s.length) this.fail('trailing ","');
    }
    return out;
  }
  private key(): string {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(this.s.slice(this.i));
    if (!m) this.fail('bad key');
    this.i += m[0].length;
    return m[0];
  }
  private innerList(): SfInnerList {
    this.i++; // (
    const items: SfItem[] = [];
    for (;;) {
      this.skipSp();
      if (this.s[this.i] === ')') {
        this.i++;
        return { items, params: this.params() };
      }
      items.push(this.item());
      if (this.s[this.i] !== ' ' && this.s[this.i] !== ')') this.fail('bad inner list');
    }
  }
  private item(): SfItem {
    const value = this.bare();
    return { value, params: this.params() };
  }
  private params(): SfParams {
    const out: SfParams = [];
    while (this.s[this.i] === ';') {
      this.i++;
      this.skipSp();
      const key = this.key();
      let value: SfBare = true;
      if (this.s[this.i] === '=') {
        this.i++;
        value = this.bare();
      }
      out.push([key, value]);
    }
    return out;
  }
  private bare(): SfBare {
    const c = this.s[this.i];
    const rest = this.s.slice(this.i);
    if (c === '"') {
      let out = '';
      this.i++;
      for (;;) {
        const ch = this.s[this.i++];
        if (ch === undefined) this.fail('unterminated string');
        if (ch === '"') return out;
        if (ch === '\\') {
          const next = this.s[this.i++];
          if (next !== '"' && next !== '\\') this.fail('bad escape');
          out += next;
        } else out += ch;
      }
    }
    if (c === ':') {
      const end = this.s.indexOf(':', this.i + 1);
      if (end < 0) this.fail('unterminated byte sequence');
      const b64 = this.s.slice(this.i + 1, end);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) this.fail('bad base64');
      this.i = end + 1;
      return Buffer.from(b64, 'base64');
    }
    if (c === '?') {
      const b = this.s[this.i + 1];
      if (b !== '0' && b !== '1') this.fail('bad boolean');
      this.i += 2;
      return b === '1';
    }
    const num = /^-?\d{1,15}(\.\d{1,3})?/.exec(rest);
    if (num) {
      this.i += num[0].length;
      return Number(num[0]);
    }
    const tok = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(rest);
    if (tok) {
      this.i += tok[0].length;
      return { token: tok[0] };
    }
    return this.fail('bad item');
  }
}

export function parseSfDictionary(s: string): Map<string, SfItem | SfInnerList> {
  return new SfParser(s.trim()).dictionary();
}

function serializeBare(v: SfBare): string {
  if (typeof v === 'string') return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? '?1' : '?0';
  if (Buffer.isBuffer(v)) return `:${v.toString('base64')}:`;
  return v.token;
}

function serializeParams(params: SfParams): string {
  return params.map(([k, v]) => (v === true ? `;${k}` : `;${k}=${serializeBare(v)}`)).join('');
}

function serializeItem(item: SfItem): string {
  return serializeBare(item.value) + serializeParams(item.params);
}

function serializeInnerList(list: SfInnerList): string {
  return `(${list.items.map(serializeItem).join(' ')})${serializeParams(list.params)}`;
}

function param(params: SfParams, key: string): SfBare | undefined {
  return params.find(([k]) => k === key)?.[1];
}

// ------------------------------------------------------------------------------------------------

type Verified = { ok: true; keyId: string; signer: string; scheme: SignatureScheme };
type Failed = { ok: false; reason: string };

interface Waiter {
  pred: (e: InboxEntry) => boolean;
  resolve: (e: InboxEntry) => void;
  reject: (err: Error) => void;
}

interface ResolvedKey {
  pem: string;
  owner: string;
}

const CAVAGE_POST_HEADERS = ['(request-target)', 'host', 'date', 'digest', 'content-type'];
const CAVAGE_GET_HEADERS = ['(request-target)', 'host', 'date', 'accept'];
const ACTOR_CONTEXT = [
  AS_CONTEXT,
  SECURITY_CONTEXT,
  {
    manuallyApprovesFollowers: 'as:manuallyApprovesFollowers',
    toot: 'http://joinmastodon.org/ns#',
    discoverable: 'toot:discoverable',
    indexable: 'toot:indexable',
  },
];
const NOTE_CONTEXT = [AS_CONTEXT, { sensitive: 'as:sensitive' }];

export class ApPeer {
  readonly origin: string;
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  readonly username: string;
  readonly name: string;
  /** `<username>@127.0.0.1:<port>`. */
  readonly acct: string;
  readonly actorId: string;
  readonly keyId: string;
  readonly inboxUrl: string;
  readonly sharedInboxUrl: string;
  readonly followersUrl: string;
  readonly followingUrl: string;
  readonly outboxUrl: string;
  readonly profileUrl: string;
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;

  /** Verified inbound activities, in arrival order. */
  readonly inbox: InboxEntry[] = [];
  /** Refused inbound requests. */
  readonly refused: RefusedEntry[] = [];
  /** GETs served (actor, objects, collections, WebFinger). */
  readonly fetches: FetchLogEntry[] = [];
  /** Failures of background work (sending an Accept, …). */
  readonly errors: string[] = [];
  /** Actor ids that follow this peer. */
  readonly followers = new Set<string>();
  /** Follows of a locked account (`autoAcceptFollows: false`), by follower id; never answered. */
  readonly followRequests = new Map<string, Json>();
  /** Follows this peer sent, by the followed actor's id. */
  readonly following = new Map<string, FollowState>();
  /** Everything this peer created (Notes, Tombstones, activities), by id. */
  readonly objects = new Map<string, Json>();

  rfc9421: 'refuse' | 'accept';
  authorizedFetch: boolean;
  autoAcceptFollows: boolean;
  maxSkewMs: number;
  timeoutMs: number;
  maxBodyBytes: number;
  /** When set, every inbox POST is answered with this status unread (recorded in `refused`). */
  failWith: number | null = null;

  private readonly server: http.Server;
  private readonly software: { name: string; version: string };
  private readonly allowNonLoopback: boolean;
  private readonly agent = new http.Agent({ keepAlive: false });
  private readonly httpsAgent = new https.Agent({ keepAlive: false });
  private readonly keyCache = new Map<string, ResolvedKey>();
  private readonly actorCache = new Map<string, Json>();
  private readonly waiters = new Set<Waiter>();
  private readonly outbox: Json[] = [];
  private counter = 0;

  constructor(server: http.Server, port: number, options: ApPeerOptions) {
    this.server = server;
    this.host = `127.0.0.1:${port}`;
    this.origin = `http://${this.host}`;
    this.username = options.username ?? 'alice';
    this.name = options.name ?? this.username[0]!.toUpperCase() + this.username.slice(1);
    this.acct = `${this.username}@${this.host}`;
    this.actorId = `${this.origin}/users/${this.username}`;
    this.keyId = `${this.actorId}#main-key`;
    this.inboxUrl = `${this.actorId}/inbox`;
    this.sharedInboxUrl = `${this.origin}/inbox`;
    this.followersUrl = `${this.actorId}/followers`;
    this.followingUrl = `${this.actorId}/following`;
    this.outboxUrl = `${this.actorId}/outbox`;
    this.profileUrl = `${this.origin}/@${this.username}`;
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.privateKey = privateKey;
    this.rfc9421 = options.rfc9421 ?? 'refuse';
    this.authorizedFetch = options.authorizedFetch ?? false;
    this.autoAcceptFollows = options.autoAcceptFollows ?? true;
    this.maxSkewMs = options.maxSkewMs ?? 3_600_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.software = options.software ?? { name: 'mastodon', version: '4.3.0' };
    this.allowNonLoopback = options.allowNonLoopback ?? false;
    server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.errors.push(`handler: ${String(err)}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  }

  // ----------------------------------------------------------------------------------------------
  // Documents

  actorDocument(full = true): Json {
    const doc: Json = {
      '@context': ACTOR_CONTEXT,
      id: this.actorId,
      type: 'Person',
      preferredUsername: this.username,
      inbox: this.inboxUrl,
      endpoints: { sharedInbox: this.sharedInboxUrl },
      publicKey: { id: this.keyId, owner: this.actorId, publicKeyPem: this.publicKeyPem },
    };
    if (!full) return doc;
    return {
      ...doc,
      following: this.followingUrl,
      followers: this.followersUrl,
      outbox: this.outboxUrl,
      name: this.name,
      summary: '',
      url: this.profileUrl,
      manuallyApprovesFollowers: !this.autoAcceptFollows,
      discoverable: true,
      indexable: true,
      published: '2024-01-01T00:00:00Z',
    };
  }

  private webfinger(): Json {
    return {
      subject: `acct:${this.acct}`,
      aliases: [this.actorId, this.profileUrl],
      links: [
        { rel: 'http://webfinger.net/rel/profile-page', type: 'text/html', href: this.profileUrl },
        { rel: 'self', type: AP_TYPE, href: this.actorId },
      ],
    };
  }

  private collection(id: string, items: unknown[]): Json {
    return {
      '@context': AS_CONTEXT,
      id,
      type: 'OrderedCollection',
      totalItems: items.length,
      orderedItems: items,
    };
  }

  private nextId(kind: string): string {
    this.counter++;
    return kind === 'statuses'
      ? `${this.actorId}/statuses/${Date.now()}${String(this.counter).padStart(4, '0')}`
      : `${this.actorId}/activities/${randomUUID()}`;
  }

  private store(doc: Json): Json {
    this.objects.set(doc.id, doc);
    return doc;
  }

  // ----------------------------------------------------------------------------------------------
  // Server

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const body = await this.readBody(req);
    if (body === null) {
      this.refuse(req, res, url.pathname, 413, 'body too large', '');
      return;
    }
    if (req.method === 'POST') {
      if (url.pathname === this.inboxUrl.slice(this.origin.length) || url.pathname === '/inbox') {
        await this.handleInbox(req, res, url.pathname, body);
        return;
      }
      this.send(res, 404, 'text/plain', 'not found');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.send(res, 405, 'text/plain', 'method not allowed');
      return;
    }
    await this.handleGet(req, res, url);
  }

  private readBody(req: http.IncomingMessage): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.maxBodyBytes) tooLarge = true;
        else chunks.push(c);
      });
      req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private sendJson(res: http.ServerResponse, status: number, doc: unknown, type = AP_TYPE): void {
    this.send(res, status, `${type}; charset=utf-8`, JSON.stringify(doc));
  }

  private refuse(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    status: number,
    reason: string,
    body: string,
  ): void {
    this.refused.push({
      method: req.method ?? '',
      path,
      status,
      reason,
      headers: req.headers,
      body,
      at: Date.now(),
    });
    this.send(res, status, 'text/plain', reason);
  }

  private async handleGet(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<void> {
    const path = url.pathname;
    const signed = headerValue(req, 'signature') !== undefined;
    let refusal: string | undefined;
    const log = (status: number, keyId?: string) =>
      this.fetches.push({
        path: path + url.search,
        status,
        signed,
        ...(keyId ? { keyId } : {}),
        ...(refusal ? { refusal } : {}),
      });

    if (path === '/.well-known/webfinger') {
      const resource = url.searchParams.get('resource') ?? '';
      const ok =
        resource.toLowerCase() === `acct:${this.acct}`.toLowerCase() || resource === this.actorId;
      log(ok ? 200 : 404);
      if (ok) this.sendJson(res, 200, this.webfinger(), 'application/jrd+json');
      else this.send(res, 404, 'text/plain', 'not found');
      return;
    }
    if (path === '/.well-known/nodeinfo') {
      log(200);
      this.sendJson(
        res,
        200,
        {
          links: [
            {
              rel: 'http://nodeinfo.diaspora.software/ns/schema/2.0',
              href: `${this.origin}/nodeinfo/2.0`,
            },
          ],
        },
        'application/json',
      );
      return;
    }
    if (path === '/nodeinfo/2.0') {
      log(200);
      this.sendJson(
        res,
        200,
        {
          version: '2.0',
          software: this.software,
          protocols: ['activitypub'],
          services: { outbound: [], inbound: [] },
          usage: { users: { total: 1 }, localPosts: this.outbox.length },
          openRegistrations: false,
          metadata: {},
        },
        'application/json',
      );
      return;
    }
    if (
      path === this.profileUrl.slice(this.origin.length) ||
      path.startsWith(`/@${this.username}/`)
    ) {
      log(200);
      this.send(res, 200, 'text/html; charset=utf-8', `<!doctype html><title>${this.name}</title>`);
      return;
    }

    const isActor = path === this.actorId.slice(this.origin.length);
    let keyId: string | undefined;
    if (this.authorizedFetch) {
      const v = signed
        ? await this.verify(req, null)
        : ({ ok: false, reason: 'unsigned' } as Failed);
      if (v.ok) keyId = v.keyId;
      else refusal = v.reason;
      if (!v.ok && !isActor) {
        log(401);
        this.refuse(req, res, path, 401, `authorized fetch: ${v.reason}`, '');
        return;
      }
    }
    if (isActor) {
      log(200, keyId);
      this.sendJson(res, 200, this.actorDocument(!this.authorizedFetch || keyId !== undefined));
      return;
    }
    let doc: Json | undefined;
    if (path === this.followersUrl.slice(this.origin.length)) {
      doc = this.collection(this.followersUrl, [...this.followers]);
    } else if (path === this.followingUrl.slice(this.origin.length)) {
      const accepted = [...this.following].filter(([, f]) => f.state === 'accepted');
      doc = this.collection(
        this.followingUrl,
        accepted.map(([id]) => id),
      );
    } else if (path === this.outboxUrl.slice(this.origin.length)) {
      doc = this.collection(this.outboxUrl, [...this.outbox].reverse());
    } else {
      doc = this.objects.get(this.origin + path);
    }
    if (!doc) {
      log(404, keyId);
      this.send(res, 404, 'text/plain', 'not found');
      return;
    }
    const status = doc.type === 'Tombstone' ? 410 : 200;
    log(status, keyId);
    this.sendJson(res, status, doc);
  }

  private async handleInbox(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    body: Buffer,
  ): Promise<void> {
    const text = body.toString('utf8');
    if (this.failWith !== null) {
      this.refuse(req, res, path, this.failWith, 'failWith', text);
      return;
    }
    const v = await this.verify(req, body);
    if (!v.ok) {
      this.refuse(req, res, path, 401, v.reason, text);
      return;
    }
    let activity: Json;
    try {
      activity = JSON.parse(text);
      if (!activity || typeof activity !== 'object' || Array.isArray(activity)) throw new Error();
    } catch {
      this.refuse(req, res, path, 400, 'not a JSON object', text);
      return;
    }
    const actor = idOf(activity.actor);
    if (actor !== v.signer) {
      this.refuse(
        req,
        res,
        path,
        401,
        `signer ${v.signer} is not the actor ${String(actor)}`,
        text,
      );
      return;
    }
    const entry: InboxEntry = {
      activity,
      verified: true,
      keyId: v.keyId,
      signer: v.signer,
      scheme: v.scheme,
      path,
      at: Date.now(),
    };
    this.inbox.push(entry);
    this.send(res, 202, 'text/plain', '');
    this.sideEffects(entry);
    for (const w of [...this.waiters]) {
      if (w.pred(entry)) {
        this.waiters.delete(w);
        w.resolve(entry);
      }
    }
  }

  /** What Mastodon does on its own with a verified activity. */
  private sideEffects(entry: InboxEntry): void {
    const a = entry.activity;
    if (a.type === 'Follow' && idOf(a.object) === this.actorId) {
      if (!this.autoAcceptFollows) this.followRequests.set(entry.signer, a);
      else {
        this.followers.add(entry.signer);
        const accept = this.store({
          '@context': AS_CONTEXT,
          id: this.nextId('activities'),
          type: 'Accept',
          actor: this.actorId,
          object: { id: a.id, type: 'Follow', actor: entry.signer, object: this.actorId },
        });
        this.inboxOf(entry.signer)
          .then((inbox) => this.deliver(inbox, accept))
          .then((d) => {
            if (d.status >= 300) this.errors.push(`Accept to ${d.inbox}: ${d.status} ${d.body}`);
          })
          .catch((err: unknown) => this.errors.push(`Accept to ${entry.signer}: ${String(err)}`));
      }
    } else if (a.type === 'Undo' && typeof a.object === 'object' && a.object?.type === 'Follow') {
      if (idOf(a.object.object) === this.actorId) {
        this.followers.delete(entry.signer);
        this.followRequests.delete(entry.signer);
      }
    } else if (a.type === 'Accept' || a.type === 'Reject') {
      for (const [target, f] of this.following) {
        if (target === entry.signer && refersToFollow(a.object, f.follow)) {
          f.state = a.type === 'Accept' ? 'accepted' : 'rejected';
        }
      }
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Verification

  /** Verifies the HTTP signature of a request (body = raw bytes for POST, null for GET). */
  async verify(req: http.IncomingMessage, body: Buffer | null): Promise<Verified | Failed> {
    try {
      if (headerValue(req, 'signature-input') !== undefined) {
        if (this.rfc9421 === 'refuse') {
          return {
            ok: false,
            reason: 'RFC 9421 signatures are not accepted here (draft-cavage only)',
          };
        }
        return await this.verifyRfc9421(req, body);
      }
      if (headerValue(req, 'signature') === undefined) return { ok: false, reason: 'unsigned' };
      return await this.verifyCavage(req, body);
    } catch (err) {
      return { ok: false, reason: `verification error: ${String(err)}` };
    }
  }

  private checkTime(ms: number, what: string): string | null {
    if (!Number.isFinite(ms)) return `${what} is not a date`;
    if (Math.abs(Date.now() - ms) > this.maxSkewMs) {
      return `${what} ${new Date(ms).toISOString()} is outside the ±${this.maxSkewMs / 1000} s window`;
    }
    return null;
  }

  private checkDigest(req: http.IncomingMessage, body: Buffer): string | null {
    const header = headerValue(req, 'digest');
    if (header === undefined) return 'no Digest header';
    const want = sha256b64(body);
    for (const part of header.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim().toLowerCase() === 'sha-256') {
        return part.slice(eq + 1).trim() === want ? null : 'Digest does not match the body';
      }
    }
    return 'Digest has no SHA-256';
  }

  private async verifyCavage(
    req: http.IncomingMessage,
    body: Buffer | null,
  ): Promise<Verified | Failed> {
    const params = parseCavageSignature(headerValue(req, 'signature')!);
    if (!params) return { ok: false, reason: 'malformed Signature header' };
    const { keyId, signature } = params;
    if (!keyId || !signature) return { ok: false, reason: 'Signature lacks keyId or signature' };
    const algorithm = (params.algorithm ?? 'hs2019').toLowerCase();
    if (algorithm !== 'rsa-sha256' && algorithm !== 'hs2019') {
      return { ok: false, reason: `unsupported algorithm ${algorithm}` };
    }
    const names = (params.headers ?? 'date').toLowerCase().trim().split(/\s+/);
    // Mastodon's signature strength rules (SignatureVerification#verify_signature_strength!)
    if (!names.includes('date') && !names.includes('(created)')) {
      return { ok: false, reason: 'neither Date nor (created) is signed' };
    }
    if (!names.includes('(request-target)') && !names.includes('digest')) {
      return { ok: false, reason: 'neither (request-target) nor Digest is signed' };
    }
    if (body === null && !names.includes('host'))
      return { ok: false, reason: 'Host is not signed' };
    if (body !== null && !names.includes('digest'))
      return { ok: false, reason: 'Digest is not signed' };
    if (names.includes('date')) {
      const bad = this.checkTime(Date.parse(headerValue(req, 'date') ?? ''), 'Date');
      if (bad) return { ok: false, reason: bad };
    }
    if (names.includes('(created)')) {
      const created = Number(params.created) * 1000;
      if (!Number.isFinite(created) || created > Date.now() + this.maxSkewMs) {
        return { ok: false, reason: '(created) is missing or in the future' };
      }
    }
    if (params.expires !== undefined && Number(params.expires) * 1000 < Date.now()) {
      return { ok: false, reason: 'signature expired' };
    }
    if (body !== null) {
      const bad = this.checkDigest(req, body);
      if (bad) return { ok: false, reason: bad };
    }
    const path = new URL(req.url ?? '/', this.origin).pathname;
    const lines: string[] = [];
    for (const name of names) {
      let value: string | undefined;
      if (name === '(request-target)') value = `${(req.method ?? '').toLowerCase()} ${path}`;
      else if (name === '(created)') value = params.created;
      else if (name === '(expires)') value = params.expires;
      else value = headerValue(req, name);
      if (value === undefined) return { ok: false, reason: `signed header ${name} is missing` };
      lines.push(`${name}: ${value}`);
    }
    const ok = await this.checkWithKey(
      keyId,
      Buffer.from(lines.join('\n')),
      Buffer.from(signature, 'base64'),
    );
    return ok.ok ? { ok: true, keyId, signer: ok.owner, scheme: 'draft-cavage' } : ok;
  }

  private async verifyRfc9421(
    req: http.IncomingMessage,
    body: Buffer | null,
  ): Promise<Verified | Failed> {
    const inputs = parseSfDictionary(headerValue(req, 'signature-input')!);
    const sigs = parseSfDictionary(headerValue(req, 'signature') ?? '');
    let lastReason = 'no usable signature in Signature-Input';
    for (const [label, input] of inputs) {
      if (!('items' in input)) continue;
      const sig = sigs.get(label);
      if (!sig || !('value' in sig) || !Buffer.isBuffer(sig.value)) {
        lastReason = `no Signature for label ${label}`;
        continue;
      }
      const keyId = param(input.params, 'keyid');
      const alg = param(input.params, 'alg');
      const created = param(input.params, 'created');
      const expires = param(input.params, 'expires');
      if (typeof keyId !== 'string') {
        lastReason = 'no keyid';
        continue;
      }
      if (alg !== undefined && alg !== 'rsa-v1_5-sha256') {
        lastReason = `unsupported alg ${String(alg)}`;
        continue;
      }
      if (typeof created !== 'number') return { ok: false, reason: 'RFC 9421: no created' };
      const badTime = this.checkTime(created * 1000, 'created');
      if (badTime) return { ok: false, reason: `RFC 9421: ${badTime}` };
      if (typeof expires === 'number' && expires * 1000 < Date.now()) {
        return { ok: false, reason: 'RFC 9421: expired' };
      }
      const comps = input.items.map((it) => it.value);
      if (input.items.some((it) => typeof it.value !== 'string' || it.params.length > 0)) {
        return { ok: false, reason: 'RFC 9421: unsupported component form' };
      }
      const covered = comps as string[];
      if (!covered.includes('@method'))
        return { ok: false, reason: 'RFC 9421: @method not covered' };
      const targetCovered =
        covered.includes('@target-uri') ||
        (covered.includes('@path') && (covered.includes('@authority') || covered.includes('host')));
      if (!targetCovered) return { ok: false, reason: 'RFC 9421: the target is not covered' };
      if (body !== null) {
        if (!covered.includes('content-digest')) {
          return { ok: false, reason: 'RFC 9421: content-digest not covered' };
        }
        const bad = this.checkContentDigest(req, body);
        if (bad) return { ok: false, reason: `RFC 9421: ${bad}` };
      }
      const url = new URL(req.url ?? '/', this.origin);
      const authority = (headerValue(req, 'host') ?? this.host).toLowerCase();
      const lines: string[] = [];
      for (const c of covered) {
        let value: string | undefined;
        switch (c) {
          case '@method':
            value = (req.method ?? '').toUpperCase();
            break;
          case '@target-uri':
            value = `http://${authority}${req.url ?? '/'}`;
            break;
          case '@authority':
            value = authority;
            break;
          case '@scheme':
            value = 'http';
            break;
          case '@request-target':
            value = req.url ?? '/';
            break;
          case '@path':
            value = url.pathname;
            break;
          case '@query':
            value = url.search === '' ? '?' : url.search;
            break;
          default:
            if (c.startsWith('@')) return { ok: false, reason: `RFC 9421: unsupported ${c}` };
            value = headerValue(req, c);
        }
        if (value === undefined) return { ok: false, reason: `RFC 9421: ${c} is missing` };
        lines.push(`${serializeBare(c)}: ${value}`);
      }
      lines.push(`"@signature-params": ${serializeInnerList(input)}`);
      const ok = await this.checkWithKey(keyId, Buffer.from(lines.join('\n')), sig.value);
      return ok.ok ? { ok: true, keyId, signer: ok.owner, scheme: 'rfc9421' } : ok;
    }
    return { ok: false, reason: `RFC 9421: ${lastReason}` };
  }

  private checkContentDigest(req: http.IncomingMessage, body: Buffer): string | null {
    const header = headerValue(req, 'content-digest');
    if (header === undefined) return 'no Content-Digest header';
    const dict = parseSfDictionary(header);
    for (const [alg, hash] of [
      ['sha-256', 'sha256'],
      ['sha-512', 'sha512'],
    ] as const) {
      const v = dict.get(alg);
      if (v && 'value' in v && Buffer.isBuffer(v.value)) {
        return v.value.equals(createHash(hash).update(body).digest())
          ? null
          : 'Content-Digest does not match the body';
      }
    }
    return 'Content-Digest has neither sha-256 nor sha-512';
  }

  /** Verifies with the key named keyId (cached; a cached key that fails is fetched again once). */
  private async checkWithKey(
    keyId: string,
    data: Buffer,
    signature: Buffer,
  ): Promise<{ ok: true; owner: string } | Failed> {
    const wasCached = this.keyCache.has(keyId);
    for (const fresh of wasCached ? [false, true] : [false]) {
      let key: ResolvedKey;
      try {
        key = await this.resolveKey(keyId, fresh);
      } catch (err) {
        return { ok: false, reason: `cannot get key ${keyId}: ${String(err)}` };
      }
      if (rsaVerify('sha256', data, key.pem, signature)) return { ok: true, owner: key.owner };
    }
    return { ok: false, reason: `signature does not verify with ${keyId}` };
  }

  /** The PEM and owner of keyId, from its owner's actor (fetched with a signed GET). */
  private async resolveKey(keyId: string, fresh: boolean): Promise<ResolvedKey> {
    const cached = this.keyCache.get(keyId);
    if (cached && !fresh) return cached;
    const docUrl = keyId.split('#')[0]!;
    const doc = await this.fetch(docUrl);
    let actor: Json;
    if (typeof doc.publicKeyPem === 'string') {
      // a key document: its owner must list it
      const owner = idOf(doc.owner);
      if (!owner) throw new Error('key document without owner');
      actor = await this.fetch(owner);
    } else {
      actor = doc;
    }
    const keys = asArray(actor.publicKey) as Json[];
    const key = keys.find((k) => k && typeof k === 'object' && k.id === keyId);
    if (!key || typeof key.publicKeyPem !== 'string')
      throw new Error(`actor does not list ${keyId}`);
    if (typeof actor.id !== 'string' || new URL(actor.id).origin !== new URL(keyId).origin) {
      throw new Error('key and actor are on different origins');
    }
    if ((idOf(key.owner) ?? actor.id) !== actor.id) throw new Error('key owner is not the actor');
    this.actorCache.set(actor.id, actor);
    const resolved = { pem: key.publicKeyPem, owner: actor.id };
    this.keyCache.set(keyId, resolved);
    return resolved;
  }

  // ----------------------------------------------------------------------------------------------
  // Signing and HTTP client

  /** The headers of a signed request (Host included), as this peer would send it. */
  signedHeaders(
    method: string,
    url: string,
    body?: string | Buffer | null,
    opts: SignOptions = {},
  ): Record<string, string> {
    const u = new URL(url);
    const m = method.toUpperCase();
    const date = opts.date ?? new Date();
    const keyId = opts.keyId ?? this.keyId;
    const key =
      opts.privateKey === undefined
        ? this.privateKey
        : typeof opts.privateKey === 'string'
          ? createPrivateKey(opts.privateKey)
          : opts.privateKey;
    const hasBody = body !== undefined && body !== null;
    const headers: Record<string, string> = { host: u.host, date: date.toUTCString() };
    if (hasBody) headers['content-type'] = AP_TYPE;
    else headers.accept = opts.accept ?? AP_ACCEPT;

    if ((opts.scheme ?? 'draft-cavage') === 'rfc9421') {
      const covered = ['@method', '@target-uri', '@authority', 'date'];
      if (hasBody) {
        headers['content-digest'] = `sha-256=:${sha256b64(body)}:`;
        covered.push('content-digest');
      }
      const created = Math.floor(date.getTime() / 1000);
      const paramsStr = `(${covered.map((c) => `"${c}"`).join(' ')});created=${created};keyid="${keyId}";alg="rsa-v1_5-sha256"`;
      const values: Record<string, string> = {
        '@method': m,
        '@target-uri': u.href,
        '@authority': u.host,
        date: headers.date!,
        'content-digest': headers['content-digest'] ?? '',
      };
      const base = [
        ...covered.map((c) => `"${c}": ${values[c]}`),
        `"@signature-params": ${paramsStr}`,
      ].join('\n');
      const sig = rsaSign('sha256', Buffer.from(base), key).toString('base64');
      headers['signature-input'] = `sig1=${paramsStr}`;
      headers.signature = `sig1=:${sig}:`;
      return headers;
    }

    if (hasBody) headers.digest = `SHA-256=${sha256b64(body)}`;
    const names = opts.headers ?? (hasBody ? CAVAGE_POST_HEADERS : CAVAGE_GET_HEADERS);
    const lines = names.map((n) => {
      const name = n.toLowerCase();
      if (name === '(request-target)') return `${name}: ${m.toLowerCase()} ${u.pathname}`;
      const v = headers[name];
      if (v === undefined) throw new Error(`cannot sign ${name}: not among the request's headers`);
      return `${name}: ${v}`;
    });
    const sig = rsaSign('sha256', Buffer.from(lines.join('\n')), key).toString('base64');
    headers.signature = `keyId="${keyId}",algorithm="${opts.algorithm ?? 'rsa-sha256'}",headers="${names.join(' ')}",signature="${sig}"`;
    return headers;
  }

  /** One HTTP request (loopback only unless allowNonLoopback), bounded by timeoutMs. */
  request(
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: string | Buffer | null,
  ): Promise<HttpResult> {
    const u = new URL(url);
    if (!this.allowNonLoopback && !isLoopbackHost(u.hostname)) {
      return Promise.reject(new Error(`ap-peer: refusing to contact non-loopback ${u.host}`));
    }
    const mod = u.protocol === 'https:' ? https : http;
    const agent = u.protocol === 'https:' ? this.httpsAgent : this.agent;
    return new Promise<HttpResult>((resolve, reject) => {
      const req = mod.request(
        u,
        {
          method,
          headers: { 'user-agent': 'ap-peer (test; Mastodon-like)', ...headers },
          agent,
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > 4 * 1024 * 1024) req.destroy(new Error('response too large'));
            else chunks.push(c);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`timeout after ${this.timeoutMs} ms: ${method} ${url}`)),
      );
      req.on('error', reject);
      if (body !== undefined && body !== null) req.end(body);
      else req.end();
    });
  }

  /** A GET, signed unless `signed: false`. */
  get(url: string, opts: { signed?: boolean; accept?: string } = {}): Promise<HttpResult> {
    const accept = opts.accept ?? AP_ACCEPT;
    const headers =
      opts.signed === false
        ? { host: new URL(url).host, accept, date: new Date().toUTCString() }
        : this.signedHeaders('GET', url, null, { accept });
    return this.request('GET', url, headers);
  }

  /** Signed GET of an ActivityPub document; throws HttpError unless 2xx JSON. */
  async fetch(url: string): Promise<Json> {
    const r = await this.get(url);
    if (r.status < 200 || r.status >= 300) {
      throw new HttpError(`GET ${url}: ${r.status} ${r.body.slice(0, 200)}`, r.status, r.body);
    }
    try {
      return JSON.parse(r.body) as Json;
    } catch {
      throw new HttpError(`GET ${url}: not JSON`, r.status, r.body);
    }
  }

  /** POSTs a body with exactly these headers (for forged, replayed or unsigned requests). */
  async postRaw(
    inbox: string,
    body: string | Buffer,
    headers: Record<string, string>,
  ): Promise<number> {
    return (await this.request('POST', inbox, headers, body)).status;
  }

  /** Signs and POSTs an activity to an inbox (default draft-cavage). */
  async deliver(inbox: string, activity: Json, opts: SignOptions = {}): Promise<Delivery> {
    const body = JSON.stringify(activity);
    const r = await this.request(
      'POST',
      inbox,
      this.signedHeaders('POST', inbox, body, opts),
      body,
    );
    return { inbox, status: r.status, body: r.body };
  }

  private async deliverAll(inboxes: string | string[], activity: Json): Promise<Delivery[]> {
    const list = [...new Set(asArray(inboxes))];
    return Promise.all(list.map((inbox) => this.deliver(inbox, activity)));
  }

  // ----------------------------------------------------------------------------------------------
  // Remote actors

  /** A remote actor document (signed GET, cached; `fresh` refetches). */
  async actor(url: string, fresh = false): Promise<Json> {
    const cached = this.actorCache.get(url);
    if (cached && !fresh) return cached;
    const doc = await this.fetch(url);
    if (doc.id !== url) throw new Error(`actor ${url} says its id is ${String(doc.id)}`);
    if (typeof doc.inbox !== 'string') throw new Error(`actor ${url} has no inbox`);
    this.actorCache.set(url, doc);
    return doc;
  }

  /** The inbox of a remote actor: its shared inbox when `shared` and it has one. */
  async inboxOf(actorUrl: string, shared = false): Promise<string> {
    const a = await this.actor(actorUrl);
    const sharedInbox = a.endpoints?.sharedInbox;
    return shared && typeof sharedInbox === 'string' ? sharedInbox : a.inbox;
  }

  /**
   * Finds an account as Mastodon does: WebFinger (`acct:user@host[:port]`, unsigned, over http:
   * this is loopback), the `self` link's actor with a signed GET, then the round trip: WebFinger
   * of `preferredUsername@<actor host>` must answer with a `self` link to the same actor id.
   */
  async lookup(acct: string): Promise<{ acct: string; actor: Json; webfinger: Json }> {
    const m = /^(?:acct:)?@?([^@\s]+)@([^@\s]+)$/.exec(acct.trim());
    if (!m) throw new Error(`not an account: ${acct}`);
    const wf = await this.webfingerOf(m[1]!, m[2]!);
    const self = selfLink(wf);
    if (!self) throw new Error(`WebFinger for ${acct} has no ActivityPub self link`);
    const actor = await this.actor(self, true);
    if (typeof actor.preferredUsername !== 'string' || actor.preferredUsername === '') {
      throw new Error(`actor ${self} has no preferredUsername`);
    }
    const back = `${actor.preferredUsername}@${new URL(actor.id).host}`;
    const wf2 =
      typeof wf.subject === 'string' && wf.subject.toLowerCase() === `acct:${back}`.toLowerCase()
        ? wf
        : await this.webfingerOf(actor.preferredUsername, new URL(actor.id).host);
    if (
      typeof wf2.subject !== 'string' ||
      wf2.subject.toLowerCase() !== `acct:${back}`.toLowerCase()
    ) {
      throw new Error(`WebFinger round trip: subject ${String(wf2.subject)} is not acct:${back}`);
    }
    if (selfLink(wf2) !== actor.id) {
      throw new Error(`WebFinger round trip: acct:${back} does not point back to ${actor.id}`);
    }
    return { acct: wf2.subject.replace(/^acct:/i, ''), actor, webfinger: wf };
  }

  private async webfingerOf(user: string, host: string): Promise<Json> {
    const url = `http://${host}/.well-known/webfinger?resource=acct:${user}@${host}`;
    const r = await this.request('GET', url, {
      host,
      accept: 'application/jrd+json, application/json',
    });
    if (r.status !== 200) throw new HttpError(`WebFinger ${url}: ${r.status}`, r.status, r.body);
    return JSON.parse(r.body) as Json;
  }

  // ----------------------------------------------------------------------------------------------
  // Activities

  /** Waits (bounded) for a verified inbound activity matching pred, including ones already in. */
  waitFor(pred: (e: InboxEntry) => boolean, timeoutMs = this.timeoutMs): Promise<InboxEntry> {
    const w = this.waiter(pred, timeoutMs);
    return w.promise;
  }

  private waiter(
    pred: (e: InboxEntry) => boolean,
    timeoutMs: number,
  ): { promise: Promise<InboxEntry>; cancel: () => void } {
    const found = this.inbox.find(pred);
    if (found) return { promise: Promise.resolve(found), cancel: () => {} };
    let timer: NodeJS.Timeout | undefined;
    let w: Waiter | undefined;
    const promise = new Promise<InboxEntry>((resolve, reject) => {
      w = {
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(w);
      timer = setTimeout(() => {
        this.waiters.delete(w!);
        reject(new Error(`ap-peer ${this.username}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    return {
      promise,
      cancel: () => {
        clearTimeout(timer);
        this.waiters.delete(w!);
      },
    };
  }

  /**
   * Follows an actor: a signed Follow to its personal inbox; resolves with the verified Accept
   * (signed by that actor), rejects on a Reject, a non-2xx answer or after timeoutMs.
   */
  async follow(actorUrl: string, opts: { timeoutMs?: number } = {}): Promise<Json> {
    const target = await this.actor(actorUrl);
    const follow = this.store({
      '@context': AS_CONTEXT,
      id: this.nextId('activities'),
      type: 'Follow',
      actor: this.actorId,
      object: target.id,
    });
    const state: FollowState = { followId: follow.id, follow, state: 'pending' };
    this.following.set(target.id, state);
    const w = this.waiter(
      (e) =>
        (e.activity.type === 'Accept' || e.activity.type === 'Reject') &&
        e.signer === target.id &&
        refersToFollow(e.activity.object, follow),
      opts.timeoutMs ?? this.timeoutMs,
    );
    let d: Delivery;
    try {
      d = await this.deliver(target.inbox, follow);
    } catch (err) {
      w.cancel();
      throw err;
    }
    if (d.status < 200 || d.status >= 300) {
      w.cancel();
      throw new HttpError(`Follow to ${d.inbox}: ${d.status} ${d.body}`, d.status, d.body);
    }
    const e = await w.promise;
    if (e.activity.type === 'Reject') throw new Error(`${target.id} rejected the Follow`);
    return e.activity;
  }

  /** Undo(Follow) of an earlier follow(), to the actor's inbox. */
  async unfollow(actorUrl: string): Promise<Sent> {
    const target = await this.actor(actorUrl);
    const f = this.following.get(target.id);
    if (!f) throw new Error(`not following ${target.id}`);
    const { '@context': _, ...follow } = f.follow;
    const undo = this.store({
      '@context': AS_CONTEXT,
      id: `${this.nextId('activities')}`,
      type: 'Undo',
      actor: this.actorId,
      object: follow,
    });
    this.following.delete(target.id);
    return { activity: undo, deliveries: await this.deliverAll(target.inbox, undo) };
  }

  /** A Note (stored, fetchable at its id) in a Create, delivered (see NoteOptions.inbox). */
  async createNote(opts: NoteOptions): Promise<SentNote> {
    const id = this.nextId('statuses');
    const published = new Date().toISOString();
    const note: Json = {
      id,
      type: 'Note',
      summary: opts.summary ?? null,
      inReplyTo: opts.inReplyTo ?? null,
      published,
      url: `${this.profileUrl}/${id.split('/').pop()}`,
      attributedTo: this.actorId,
      to: opts.to ?? [AS_PUBLIC],
      cc: opts.cc ?? [this.followersUrl],
      sensitive: false,
      content: opts.content,
      tag: opts.tag ?? [],
      ...opts.extra,
    };
    this.store({ '@context': NOTE_CONTEXT, ...note });
    const create = this.store({
      '@context': NOTE_CONTEXT,
      id: `${id}/activity`,
      type: 'Create',
      actor: this.actorId,
      published,
      to: note.to,
      cc: note.cc,
      object: note,
    });
    this.outbox.push(create);
    const inboxes = opts.inbox ?? (await this.audienceInboxes(note));
    return {
      note: this.objects.get(id)!,
      activity: create,
      deliveries: await this.deliverAll(inboxes, create),
    };
  }

  /** Mastodon's delivery list: the actors addressed in to/cc and this peer's followers. */
  private async audienceInboxes(obj: Json): Promise<string[]> {
    const out = new Set<string>();
    const targets = new Set<string>(this.followers);
    for (const x of [...asArray(obj.to), ...asArray(obj.cc)]) {
      const id = idOf(x);
      if (!id || isPublicAddress(id) || id === this.followersUrl || id === this.actorId) continue;
      targets.add(id);
    }
    for (const t of targets) {
      try {
        out.add(await this.inboxOf(t, true));
      } catch {
        // not an actor (a collection, say): nothing to deliver to
      }
    }
    return [...out];
  }

  /** Edits a Note of this peer (content and/or summary) and delivers an Update. */
  async updateNote(
    noteId: string,
    changes: { content?: string; summary?: string },
    inbox: string | string[],
  ): Promise<SentNote> {
    const old = this.objects.get(noteId);
    if (!old || old.type !== 'Note') throw new Error(`no Note ${noteId}`);
    const updated = new Date().toISOString();
    const note = this.store({ ...old, ...changes, updated });
    const { '@context': _, ...embedded } = note;
    const update = this.store({
      '@context': NOTE_CONTEXT,
      id: `${noteId}#updates/${Date.now()}`,
      type: 'Update',
      actor: this.actorId,
      published: updated,
      to: note.to,
      cc: note.cc,
      object: embedded,
    });
    return { note, activity: update, deliveries: await this.deliverAll(inbox, update) };
  }

  /** Deletes a Note: it becomes a Tombstone (410 at its id) and a Delete is delivered. */
  async deleteNote(noteId: string, inbox: string | string[]): Promise<Sent> {
    const old = this.objects.get(noteId);
    if (!old || old.type !== 'Note') throw new Error(`no Note ${noteId}`);
    const deleted = new Date().toISOString();
    this.store({
      '@context': AS_CONTEXT,
      id: noteId,
      type: 'Tombstone',
      formerType: 'Note',
      deleted,
    });
    const del = this.store({
      '@context': AS_CONTEXT,
      id: `${noteId}#delete`,
      type: 'Delete',
      actor: this.actorId,
      to: [AS_PUBLIC],
      object: { id: noteId, type: 'Tombstone', atomUri: noteId },
    });
    return { activity: del, deliveries: await this.deliverAll(inbox, del) };
  }

  async like(objectId: string, inbox: string | string[]): Promise<Sent> {
    const like = this.store({
      '@context': AS_CONTEXT,
      id: this.nextId('activities'),
      type: 'Like',
      actor: this.actorId,
      object: objectId,
    });
    return { activity: like, deliveries: await this.deliverAll(inbox, like) };
  }

  /** A boost: Announce of objectId, public, cc this peer's followers (+ opts.cc). */
  async announce(
    objectId: string,
    inbox: string | string[],
    opts: { to?: string | string[]; cc?: string[] } = {},
  ): Promise<Sent> {
    const announce = this.store({
      '@context': AS_CONTEXT,
      id: this.nextId('activities'),
      type: 'Announce',
      actor: this.actorId,
      published: new Date().toISOString(),
      to: opts.to ?? [AS_PUBLIC],
      cc: [this.followersUrl, ...(opts.cc ?? [])],
      object: objectId,
    });
    return { activity: announce, deliveries: await this.deliverAll(inbox, announce) };
  }

  /** Undo of an activity this peer sent (a Like, an Announce, …), embedded as Mastodon does. */
  async undo(activity: Json, inbox: string | string[]): Promise<Sent> {
    const { '@context': _, ...embedded } = activity;
    const undo = this.store({
      '@context': AS_CONTEXT,
      id: `${activity.id}#undo`,
      type: 'Undo',
      actor: this.actorId,
      object: embedded,
    });
    return { activity: undo, deliveries: await this.deliverAll(inbox, undo) };
  }

  async close(): Promise<void> {
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      w.reject(new Error(`ap-peer ${this.username}: closed`));
    }
    this.agent.destroy();
    this.httpsAgent.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function selfLink(wf: Json): string | undefined {
  for (const l of asArray(wf.links) as Json[]) {
    if (!l || l.rel !== 'self' || typeof l.href !== 'string') continue;
    const type = String(l.type ?? '');
    if (type === AP_TYPE || type.startsWith('application/ld+json')) return l.href;
  }
  return undefined;
}

/** Whether an Accept/Reject's object designates this Follow (by id, or embedded without one). */
function refersToFollow(object: unknown, follow: Json): boolean {
  if (typeof object === 'string') return object === follow.id;
  if (!object || typeof object !== 'object') return false;
  const o = object as Json;
  if (typeof o.id === 'string') return o.id === follow.id;
  return o.type === 'Follow' && idOf(o.actor) === follow.actor && idOf(o.object) === follow.object;
}

/** Starts a peer on 127.0.0.1, port 0. */
export async function startApPeer(options: ApPeerOptions = {}): Promise<ApPeer> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return new ApPeer(server, (server.address() as AddressInfo).port, options);
}
