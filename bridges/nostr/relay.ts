/**
 * The Nostr relay at the gateway's root: a WebSocket on `/` speaking NIP-01 (EVENT, REQ, CLOSE;
 * OK, EOSE, CLOSED, NOTICE) with NIP-09 deletions, NIP-40 expiration, NIP-42 AUTH, NIP-45 COUNT,
 * NIP-50 search and NIP-70 protected events, and NIP-11's information document on an HTTP GET of
 * `/` that asks for `application/nostr+json`. It knows nothing of RUM: what it accepts and who
 * may read what is the RelayPolicy's to say (bridges/nostr/types.ts), and the groups layer feeds
 * it through the RelayHandle it is.
 *
 * Every frame from a client is checked before it is acted on; bad input is answered (NOTICE,
 * CLOSED, OK false) and the connection lives on, except a frame over the size limit, which
 * closes it with 1009.
 */
import { randomBytes } from 'node:crypto';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import {
  type EventCrypto,
  checkEventAsync,
  eventJson,
  expirationOf,
  isEphemeral,
  isProtected,
} from './event.ts';
import { compileFilter, type Matcher, parseFilter } from './filter.ts';
import type { RelayKey } from './keys.ts';
import type { NostrStore } from './store.ts';
import type {
  NostrEvent,
  NostrFilter,
  RelayConnection,
  RelayHandle,
  RelayPolicy,
} from './types.ts';

export interface RelayLimits {
  maxMessageBytes: number;
  maxContentChars: number;
  maxEventTags: number;
  maxSubscriptions: number;
  maxFilters: number;
  maxFilterValues: number;
  maxLimit: number;
  eventsPerSecond: number;
  maxConnections: number;
  maxFutureSeconds: number;
}

export interface RelayComponents {
  store: NostrStore;
  crypto: EventCrypto;
  key: RelayKey;
  limits: RelayLimits;
  /** The gateway's public origin (`http(s)://host[:port]`), read when needed. */
  origin: () => string;
  log: Logger;
  /** Now, in ms since the epoch (tests move it). */
  now?: () => number;
}

export interface RelayInit {
  name?: string;
  description?: string;
  software?: string;
  version?: string;
}

/** NIP-01's longest subscription id. */
export const MAX_SUBID_CHARS = 64;
/** NIP-42: an AUTH event's created_at is within this of now. */
export const AUTH_WINDOW_SECONDS = 600;
/** Unsent bytes past which a connection gets no more until it reads (REQ refused, live: closed). */
const MAX_BUFFERED_BYTES = 8 << 20;
const PRUNE_EVERY_MS = 60_000;
/** The NIPs the core serves; a policy adds its own (29 for groups). */
const CORE_NIPS = [1, 9, 11, 40, 42, 45, 50, 70];

interface Subscription {
  filters: NostrFilter[];
  matchers: Matcher[];
}

/** One client connection. */
class Conn implements RelayConnection {
  readonly id: string;
  readonly ip: string;
  readonly authed = new Set<string>();
  readonly challenge = randomBytes(16).toString('hex');
  readonly subs = new Map<string, Subscription>();
  readonly ws: WebSocket;
  /** Token bucket of EVENTs: `tokens` left at `refilled` (ms). */
  tokens: number;
  refilled: number;

  constructor(id: string, ip: string, ws: WebSocket, burst: number, now: number) {
    this.id = id;
    this.ip = ip;
    this.ws = ws;
    this.tokens = burst;
    this.refilled = now;
  }

  send(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }
}

const json = (v: unknown) => JSON.stringify(v);

/** host[:port]/path of a ws/wss/http/https URL, default ports made explicit; null if none. */
function relayKey(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  if (!secure && u.protocol !== 'ws:' && u.protocol !== 'http:') return null;
  const port = u.port || (secure ? '443' : '80');
  return `${u.hostname.toLowerCase()}:${port}${u.pathname.replace(/\/+$/, '')}`;
}

/** The origin as the relay's WebSocket URL (`https:` → `wss:`). */
export function wsUrlOf(origin: string): string {
  return `${origin.replace(/^http/, 'ws').replace(/\/+$/, '')}/`;
}

export class Relay implements RelayHandle {
  private readonly c: RelayComponents;
  private readonly init: RelayInit;
  private readonly now: () => number;
  private policy: RelayPolicy;
  private readonly conns = new Set<Conn>();
  private nextConn = 1;
  private prune: NodeJS.Timeout | null = null;
  private bound: string | null = null;

  constructor(c: RelayComponents, policy: RelayPolicy, init: RelayInit = {}) {
    this.c = c;
    this.init = init;
    this.policy = policy;
    this.now = c.now ?? Date.now;
  }

  // ---- RelayHandle ----

  get selfPubkey(): string {
    return this.c.key.pubkey;
  }

  sign(template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>): NostrEvent {
    return this.c.key.sign(template);
  }

  put(event: NostrEvent): { stored: boolean; reason?: string } {
    const outcome = this.c.store.put(event);
    if (outcome === 'stored' || outcome === 'ephemeral') this.broadcast(event);
    if (outcome === 'stored') return { stored: true };
    return { stored: false, reason: outcome };
  }

  remove(id: string): boolean {
    return this.c.store.remove(id);
  }

  query(filter: NostrFilter, limit: number): NostrEvent[] {
    return this.c.store.query(filter, limit);
  }

  /** Replaces the policy (the bridge makes it once the handle exists). */
  setPolicy(policy: RelayPolicy): void {
    this.policy = policy;
  }

  /** How many clients are connected. */
  get connections(): number {
    return this.conns.size;
  }

  // ---- NIP-11 ----

  /** The relay information document. */
  info(): Record<string, unknown> {
    const l = this.c.limits;
    const nips = [...new Set([...CORE_NIPS, ...(this.policy.nips ?? [])])].sort((a, b) => a - b);
    return {
      name: this.init.name ?? 'rum-node relay',
      description:
        this.init.description ?? 'A Nostr relay served by a RUM node (a peer of RUM groups).',
      pubkey: this.selfPubkey,
      self: this.selfPubkey,
      supported_nips: nips,
      software: this.init.software ?? 'rum-node',
      version: this.init.version ?? '0',
      limitation: {
        max_message_length: l.maxMessageBytes,
        max_subscriptions: l.maxSubscriptions,
        max_filters: l.maxFilters,
        max_limit: l.maxLimit,
        default_limit: l.maxLimit,
        max_subid_length: MAX_SUBID_CHARS,
        max_event_tags: l.maxEventTags,
        max_content_length: l.maxContentChars,
        min_pow_difficulty: 0,
        auth_required: false,
        payment_required: false,
        restricted_writes: true,
      },
      supported_kinds: [...(this.policy.kinds ?? [])].sort((a, b) => a - b),
    };
  }

  // ---- mounting, lifecycle ----

  /** Registers `GET /` (NIP-11, the WebSocket, a short page) and `OPTIONS /` on the gateway. */
  async mount(app: FastifyInstance): Promise<void> {
    const l = this.c.limits;
    // Another bridge may have registered the plugin already: frames are measured here too.
    if (!app.hasDecorator('websocketServer')) {
      await app.register(websocket, { options: { maxPayload: l.maxMessageBytes } });
    }
    const cors = (reply: FastifyReply) =>
      reply
        .header('access-control-allow-origin', '*')
        .header('access-control-allow-headers', '*')
        .header('access-control-allow-methods', 'GET, OPTIONS');
    app.options('/', async (_req, reply) => cors(reply).code(204).send());
    app.route({
      method: 'GET',
      url: '/',
      onRequest: async (req: FastifyRequest, reply: FastifyReply) => {
        if (req.ws && this.conns.size >= l.maxConnections) {
          await reply.code(503).send({ message: 'too many connections: try again later' });
        }
      },
      handler: async (req, reply) => {
        cors(reply).header('vary', 'Accept');
        if ((req.headers.accept ?? '').includes('application/nostr+json')) {
          return reply.type('application/nostr+json').send(json(this.info()));
        }
        return reply.type('text/html; charset=utf-8').send(this.page());
      },
      wsHandler: (socket, req) => this.open(socket, req.ip),
    });
    app.addHook('onListen', async () => {
      const addr = app.server.address();
      if (typeof addr === 'object' && addr) {
        const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        this.bound = `ws://${host}:${addr.port}/`;
      }
    });
  }

  start(): void {
    this.prune ??= setInterval(() => {
      try {
        this.c.store.pruneExpired();
      } catch (err) {
        this.c.log.error({ err }, 'nostr: pruning expired events failed');
      }
    }, PRUNE_EVERY_MS);
    this.prune.unref();
  }

  stop(): void {
    if (this.prune) clearInterval(this.prune);
    this.prune = null;
    for (const conn of this.conns) conn.ws.close(1001, 'relay stopping');
    this.conns.clear();
  }

  private page(): string {
    const url = wsUrlOf(this.c.origin());
    const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
    return (
      '<!doctype html><meta charset="utf-8"><title>Nostr relay</title>' +
      `<h1>${esc(this.init.name ?? 'rum-node relay')}</h1>` +
      `<p>This is a Nostr relay. Add <code>${esc(url)}</code> to your Nostr client.</p>`
    );
  }

  // ---- connections ----

  private open(ws: WebSocket, ip: string): void {
    const conn = new Conn(
      `n${this.nextConn++}`,
      ip,
      ws,
      Math.max(1, this.c.limits.eventsPerSecond),
      this.now(),
    );
    this.conns.add(conn);
    ws.on('close', () => this.conns.delete(conn));
    ws.on('error', (err) => this.c.log.debug({ err, conn: conn.id }, 'nostr: socket error'));
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const buf = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      if (buf.length > this.c.limits.maxMessageBytes) {
        ws.close(1009, 'message too big');
        return;
      }
      if (isBinary) {
        conn.send(json(['NOTICE', 'invalid: binary frames are not Nostr messages']));
        return;
      }
      this.onMessage(conn, buf.toString('utf8')).catch((err) => {
        this.c.log.error({ err, conn: conn.id }, 'nostr: message failed');
        conn.send(json(['NOTICE', 'error: the relay failed on this message']));
      });
    });
    conn.send(json(['AUTH', conn.challenge]));
  }

  private async onMessage(conn: Conn, text: string): Promise<void> {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      conn.send(json(['NOTICE', 'invalid: not JSON']));
      return;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== 'string') {
      conn.send(json(['NOTICE', 'invalid: a message is a JSON array starting with its type']));
      return;
    }
    switch (msg[0]) {
      case 'EVENT':
        return this.onEvent(conn, msg);
      case 'REQ':
        return this.onReq(conn, msg, 'REQ');
      case 'COUNT':
        return this.onReq(conn, msg, 'COUNT');
      case 'CLOSE':
        if (msg.length !== 2 || typeof msg[1] !== 'string') {
          conn.send(json(['NOTICE', 'invalid: CLOSE takes a subscription id']));
          return;
        }
        conn.subs.delete(msg[1]);
        return;
      case 'AUTH':
        return this.onAuth(conn, msg);
      default:
        conn.send(json(['NOTICE', `unsupported: message type ${json(msg[0].slice(0, 20))}`]));
    }
  }

  /** The id to answer an EVENT or AUTH with (OK needs one, even for a bad event). */
  private static idOf(v: unknown): string | null {
    if (typeof v !== 'object' || v === null) return null;
    const id = (v as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 64 ? id : null;
  }

  private ok(conn: Conn, id: string, accepted: boolean, message: string): void {
    conn.send(json(['OK', id, accepted, message]));
  }

  /** Takes one EVENT from the connection's token bucket, if there is one. */
  private takeToken(conn: Conn): boolean {
    const rate = this.c.limits.eventsPerSecond;
    const now = this.now();
    conn.tokens = Math.min(Math.max(1, rate), conn.tokens + ((now - conn.refilled) / 1000) * rate);
    conn.refilled = now;
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  /**
   * The id of the one event an EVENT or AUTH message carries, or null after telling the client
   * (a NOTICE: without an id there is nothing an OK could name).
   */
  private eventArg(conn: Conn, msg: unknown[], notice: string): string | null {
    const id = Relay.idOf(msg[1]);
    if (id !== null && msg.length === 2) return id;
    conn.send(json(['NOTICE', notice]));
    return null;
  }

  private async onEvent(conn: Conn, msg: unknown[]): Promise<void> {
    const id = this.eventArg(conn, msg, 'invalid: EVENT takes one event object with an id');
    if (id === null) return;
    if (!this.takeToken(conn)) {
      this.ok(conn, id, false, 'rate-limited: slow down');
      return;
    }
    const checked = await checkEventAsync(msg[1], this.c.limits, this.c.crypto);
    if (!checked.ok) {
      this.ok(conn, id, false, checked.reason);
      return;
    }
    const e = checked.value;
    const nowS = Math.floor(this.now() / 1000);
    if (e.created_at > nowS + this.c.limits.maxFutureSeconds) {
      this.ok(conn, id, false, 'invalid: created_at is too far in the future');
      return;
    }
    if (e.kind === 22242) {
      this.ok(conn, id, false, 'invalid: an AUTH event goes in an AUTH message');
      return;
    }
    const expires = expirationOf(e);
    if (expires !== null && expires <= nowS) {
      this.ok(conn, id, false, 'invalid: this event has expired');
      return;
    }
    if (isProtected(e) && !conn.authed.has(e.pubkey)) {
      this.ok(
        conn,
        id,
        false,
        conn.authed.size === 0
          ? 'auth-required: this event is protected: only its author may publish it'
          : 'restricted: this event is protected: only its author may publish it',
      );
      return;
    }
    if (!isEphemeral(e.kind) && this.c.store.has(e.id)) {
      this.ok(conn, id, true, 'duplicate: already have this event');
      return;
    }
    let verdict: Awaited<ReturnType<RelayPolicy['onEvent']>>;
    try {
      verdict = await this.policy.onEvent(e, conn);
    } catch (err) {
      // OK must answer every EVENT, a failure of the policy's included.
      this.c.log.error({ err, conn: conn.id, id }, 'nostr: the policy failed on an event');
      this.ok(conn, id, false, 'error: the relay could not take this event; try again later');
      return;
    }
    if (verdict.action === 'refuse') {
      this.ok(conn, id, false, verdict.message);
      return;
    }
    if (verdict.action === 'taken') {
      this.ok(conn, id, true, verdict.message ?? '');
      return;
    }
    const outcome = this.c.store.put(e);
    switch (outcome) {
      case 'stored':
      case 'ephemeral':
        this.broadcast(e);
        this.ok(conn, id, true, '');
        return;
      case 'duplicate':
        this.ok(conn, id, true, 'duplicate: already have this event');
        return;
      case 'older':
        this.ok(conn, id, true, 'duplicate: have a newer version of this event');
        return;
      case 'deleted':
        this.ok(conn, id, false, 'blocked: this event was deleted by its author');
        return;
      case 'expired':
        this.ok(conn, id, false, 'invalid: this event has expired');
        return;
    }
  }

  private closed(conn: Conn, subId: string, message: string): void {
    conn.send(json(['CLOSED', subId, message]));
  }

  private async onReq(conn: Conn, msg: unknown[], verb: 'REQ' | 'COUNT'): Promise<void> {
    const subId = msg[1];
    if (typeof subId !== 'string') {
      conn.send(json(['NOTICE', `invalid: ${verb} takes a subscription id (a string)`]));
      return;
    }
    if (subId.length === 0 || subId.length > MAX_SUBID_CHARS) {
      this.closed(
        conn,
        subId.slice(0, MAX_SUBID_CHARS),
        `invalid: a subscription id has 1 to ${MAX_SUBID_CHARS} characters`,
      );
      return;
    }
    const l = this.c.limits;
    const raws = msg.slice(2);
    if (raws.length === 0) {
      this.closed(conn, subId, `invalid: ${verb} needs at least one filter`);
      return;
    }
    if (raws.length > l.maxFilters) {
      this.closed(conn, subId, `invalid: at most ${l.maxFilters} filters`);
      return;
    }
    if (verb === 'REQ' && !conn.subs.has(subId) && conn.subs.size >= l.maxSubscriptions) {
      this.closed(
        conn,
        subId,
        `rate-limited: at most ${l.maxSubscriptions} subscriptions per connection`,
      );
      return;
    }
    const filters: NostrFilter[] = [];
    for (const raw of raws) {
      const f = parseFilter(raw, l);
      if (!f.ok) {
        if (verb === 'REQ') conn.subs.delete(subId);
        this.closed(conn, subId, f.reason);
        return;
      }
      const refusal = this.policy.checkFilter?.(f.value, conn) ?? null;
      if (refusal !== null) {
        if (verb === 'REQ') conn.subs.delete(subId);
        this.closed(conn, subId, refusal);
        return;
      }
      filters.push(f.value);
    }
    if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.closed(conn, subId, 'rate-limited: read what was sent first');
      return;
    }
    if (verb === 'COUNT') {
      conn.send(json(['COUNT', subId, { count: this.count(filters, conn) }]));
      return;
    }
    // The query and the subscription happen in one turn: no live event falls between them.
    const stored = this.c.store.queryAll(filters, l.maxLimit);
    const sub = json(subId);
    for (const e of stored) {
      if (this.policy.canRead(e, conn)) conn.send(`["EVENT",${sub},${eventJson(e)}]`);
    }
    conn.send(`["EOSE",${sub}]`);
    conn.subs.set(subId, { filters, matchers: filters.map(compileFilter) });
  }

  /** What the connection may read among the stored events matching the filters. */
  private count(filters: NostrFilter[], conn: Conn): number {
    if (this.policy.readsAll) return this.c.store.count(filters);
    let n = 0;
    this.c.store.each(filters, (e) => {
      if (this.policy.canRead(e, conn)) n++;
      return true;
    });
    return n;
  }

  private async onAuth(conn: Conn, msg: unknown[]): Promise<void> {
    const id = this.eventArg(conn, msg, 'invalid: AUTH takes one signed event');
    if (id === null) return;
    const checked = await checkEventAsync(msg[1], this.c.limits, this.c.crypto);
    if (!checked.ok) {
      this.ok(conn, id, false, checked.reason);
      return;
    }
    const e = checked.value;
    if (e.kind !== 22242) {
      this.ok(conn, id, false, 'invalid: an AUTH event has kind 22242');
      return;
    }
    const nowS = Math.floor(this.now() / 1000);
    if (Math.abs(e.created_at - nowS) > AUTH_WINDOW_SECONDS) {
      this.ok(conn, id, false, 'invalid: created_at is not within 10 minutes of now');
      return;
    }
    const tag = (name: string) => e.tags.find((t) => t[0] === name)?.[1];
    if (tag('challenge') !== conn.challenge) {
      this.ok(conn, id, false, 'invalid: not the challenge of this connection');
      return;
    }
    if (!this.isThisRelay(tag('relay'))) {
      this.ok(conn, id, false, "invalid: the relay tag is not this relay's URL");
      return;
    }
    conn.authed.add(e.pubkey);
    this.ok(conn, id, true, '');
  }

  /** Whether a NIP-42 relay tag names this relay: its public origin, or the bound address. */
  private isThisRelay(url: string | undefined): boolean {
    if (url === undefined) return false;
    const key = relayKey(url);
    if (key === null) return false;
    const ours = [relayKey(this.c.origin()), this.bound ? relayKey(this.bound) : null];
    return ours.includes(key);
  }

  /** Sends an event to every live subscription that matches and may read it. */
  private broadcast(e: NostrEvent): void {
    let text: string | null = null;
    for (const conn of this.conns) {
      for (const [subId, sub] of conn.subs) {
        if (!sub.matchers.some((m) => m(e))) continue;
        if (!this.policy.canRead(e, conn)) break;
        if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
          conn.ws.close(1013, 'too slow: reading less than is sent');
          break;
        }
        text ??= eventJson(e);
        conn.send(`["EVENT",${json(subId)},${text}]`);
      }
    }
  }
}
