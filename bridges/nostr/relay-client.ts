/**
 * The delivery kind `nostr-event`: one signed event sent to an outside relay (NIP-01 `EVENT`),
 * delivered when the relay answers `OK` for it. The publisher (publisher.ts) enqueues the jobs;
 * the bridge registers this handler on the port's queue. One WebSocket per relay URL is opened
 * on demand, reused by every job to that relay, and closed after `idleMs` with nothing to send
 * (and at once when the bridge stops).
 *
 * Outcomes of an attempt, from the relay's `["OK", id, accepted, message]`:
 * - accepted, or `duplicate:` (the relay has the event already, accepted or not): delivered;
 * - `rate-limited:`, `error:`, any other message, no answer within `timeoutMs`, a connection
 *   that fails or closes: thrown, so the queue retries with its backoff;
 * - `invalid:`, `blocked:`, `pow:`, `restricted:`, `mute:`: PermanentDeliveryError (no retry);
 * - `auth-required:`: the relay's NIP-42 challenge is answered with a kind 22242 event signed by
 *   the relay's own key (keys.ts) and the event sent once more; refused again, or the AUTH itself
 *   refused, is permanent (the relay wants someone else); no challenge yet is retried.
 *
 * Before connecting, the URL goes through the SSRF guard (port.checkUrl, with the http(s) form of
 * the ws(s) URL), and the connection's own DNS lookup judges every address again, so a name that
 * rebinds to a private address is refused too (`--allowprivateaddress` lifts both). Frames larger
 * than `maxAnswerBytes` close the connection; redirects are not followed. A NIP-70 protected
 * event is refused here too (permanent), whoever enqueued it.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import { type DeliveryHandler, type DeliveryJob, PermanentDeliveryError } from '../port.ts';
import { isProtected } from './event.ts';
import type { NostrEvent } from './types.ts';

export const PUBLISH_KIND = 'nostr-event';

/** The payload of a job of kind `nostr-event`. */
export interface PublishPayload {
  /** The relay's normalized URL (the job's destination). */
  relay: string;
  event: NostrEvent;
}

export interface RelayClientComponents {
  /** The SSRF guard (BridgePort.checkUrl): throws for a URL that may not be reached. */
  checkUrl(url: string): Promise<void>;
  /** Whether private addresses may be reached (then the connect-time lookup is the default). */
  allowPrivateAddress: boolean;
  /** Signs with the relay's own key: the answers to NIP-42 AUTH challenges. */
  sign(template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>): NostrEvent;
  log: Logger;
}

export interface RelayClientInit {
  /** Connecting, and then each OK, must come within this (limits.deliveryTimeoutMs). */
  timeoutMs: number;
  /** The largest frame read from a relay (limits.nostrPublishMaxAnswerBytes). */
  maxAnswerBytes: number;
  /** A connection with nothing in flight this long is closed (limits.nostrPublishIdleMs). */
  idleMs: number;
  userAgent?: string;
}

/** What the relay's OK means for the job. */
export type OkOutcome = 'delivered' | 'retry' | 'permanent' | 'auth';

const PERMANENT_PREFIXES = new Set(['invalid', 'blocked', 'pow', 'restricted', 'mute']);

/** The outcome of `["OK", id, accepted, message]` (NIP-01's machine-readable prefixes). */
export function okOutcome(accepted: boolean, message: string): OkOutcome {
  if (accepted) return 'delivered';
  const colon = message.indexOf(':');
  const prefix = colon < 0 ? '' : message.slice(0, colon).trim().toLowerCase();
  if (prefix === 'duplicate') return 'delivered';
  if (prefix === 'auth-required') return 'auth';
  if (PERMANENT_PREFIXES.has(prefix)) return 'permanent';
  return 'retry';
}

/** The most of a relay's message kept in an error. */
const MESSAGE_CHARS = 300;
/** The longest AUTH challenge answered. */
const MAX_CHALLENGE_CHARS = 1024;

interface Answer {
  accepted: boolean;
  message: string;
}

interface Waiter {
  resolve(a: Answer): void;
  reject(e: Error): void;
}

function parsePayload(job: DeliveryJob): PublishPayload {
  const p = job.payload as Partial<PublishPayload> | null;
  if (!p || typeof p !== 'object' || typeof p.relay !== 'string') {
    throw new PermanentDeliveryError('nostr-event delivery: no relay');
  }
  const e = p.event as Partial<NostrEvent> | undefined;
  if (
    !e ||
    typeof e.id !== 'string' ||
    typeof e.sig !== 'string' ||
    typeof e.pubkey !== 'string' ||
    !Array.isArray(e.tags)
  ) {
    throw new PermanentDeliveryError('nostr-event delivery: no signed event');
  }
  if (p.relay !== job.destination) {
    throw new PermanentDeliveryError('nostr-event delivery: the relay is not the destination');
  }
  return p as PublishPayload;
}

/** A refusal of the address guard is permanent; anything else (a DNS failure) is retried. */
function guardRefusal(e: unknown): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  const cause = (err as { cause?: unknown }).cause;
  for (const x of [err, cause]) {
    if (
      x instanceof Error &&
      (x.name === 'BlockedAddressError' || x instanceof PermanentDeliveryError)
    ) {
      return new PermanentDeliveryError(x.message);
    }
  }
  return err;
}

/**
 * A net `lookup` that resolves a name and refuses it when any of its addresses may not be reached
 * (judged by the guard, each address as an IP-literal URL), at connect time.
 */
function checkedLookup(check: (url: string) => Promise<void>): LookupFunction {
  return (hostname, options, callback) => {
    const opts = (typeof options === 'object' && options !== null ? options : {}) as {
      family?: number | string;
      all?: boolean;
    };
    const cb = callback as (
      err: Error | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void;
    dnsLookup(hostname, { all: true }, (err, addresses) => {
      if (err) return cb(err, opts.all ? [] : '');
      Promise.all(
        addresses.map((a) => check(`http://${a.family === 6 ? `[${a.address}]` : a.address}/`)),
      ).then(
        () => {
          const family = opts.family === 'IPv4' ? 4 : opts.family === 'IPv6' ? 6 : opts.family;
          const wanted =
            family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
          if (wanted.length === 0) {
            const e = Object.assign(new Error(`${hostname} has no IPv${family} address`), {
              code: 'ENOTFOUND',
            });
            return cb(e, opts.all ? [] : '');
          }
          if (opts.all) cb(null, wanted);
          else cb(null, wanted[0]!.address, wanted[0]!.family);
        },
        (e: Error) => cb(e, opts.all ? [] : ''),
      );
    });
  };
}

/** One relay's connection: opened on demand, shared by every job to that relay. */
class RelayConnection {
  readonly url: string;
  private readonly c: RelayClientComponents;
  private readonly init: RelayClientInit;
  private readonly lookup: LookupFunction | undefined;
  private readonly onGone: (conn: RelayConnection) => void;
  private ws: WebSocket | null = null;
  private opening: Promise<WebSocket> | null = null;
  /** Waiters for the OK of each event id sent (EVENT and AUTH). */
  private readonly waiting = new Map<string, Set<Waiter>>();
  private challenge: string | null = null;
  private auth: Promise<Answer> | null = null;
  private idle: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    url: string,
    c: RelayClientComponents,
    init: RelayClientInit,
    lookup: LookupFunction | undefined,
    onGone: (conn: RelayConnection) => void,
  ) {
    this.url = url;
    this.c = c;
    this.init = init;
    this.lookup = lookup;
    this.onGone = onGone;
  }

  /** Sends an event and answers the relay's OK for it. */
  async publish(event: NostrEvent): Promise<Answer> {
    return this.request(['EVENT', event], event.id);
  }

  /**
   * Answers the relay's AUTH challenge (once per challenge), or null when it sent none yet.
   */
  authenticate(): Promise<Answer> | null {
    const challenge = this.challenge;
    if (challenge === null) return null;
    this.auth ??= (async () => {
      const e = this.c.sign({
        kind: 22242,
        created_at: Math.floor(Date.now() / 1000),
        tags: [
          ['relay', this.url],
          ['challenge', challenge],
        ],
        content: '',
      });
      return this.request(['AUTH', e], e.id);
    })();
    const mine = this.auth;
    // A failed AUTH (a timeout, a closed connection) is tried again on the next need.
    mine.catch(() => {
      if (this.auth === mine) this.auth = null;
    });
    return mine;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.clearIdle();
    this.failAll(new Error(`${this.url}: ${reason}`));
    this.ws?.terminate();
    this.ws = null;
    this.onGone(this);
  }

  private async request(message: unknown[], id: string): Promise<Answer> {
    this.clearIdle();
    const ws = await this.open();
    return new Promise<Answer>((resolve, reject) => {
      let set = this.waiting.get(id);
      if (!set) {
        set = new Set();
        this.waiting.set(id, set);
      }
      const done = () => {
        clearTimeout(timer);
        const s = this.waiting.get(id);
        s?.delete(waiter);
        if (s?.size === 0) this.waiting.delete(id);
        this.armIdle();
      };
      const waiter: Waiter = {
        resolve: (a) => {
          done();
          resolve(a);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.reject(new Error(`${this.url}: no OK for ${id} within ${this.init.timeoutMs} ms`)),
        this.init.timeoutMs,
      );
      set.add(waiter);
      ws.send(JSON.stringify(message), (err) => {
        if (err) waiter.reject(new Error(`${this.url}: send failed: ${err.message}`));
      });
    });
  }

  private open(): Promise<WebSocket> {
    if (this.closed) return Promise.reject(new Error(`${this.url}: the client is closed`));
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.opening ??= this.connect().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async connect(): Promise<WebSocket> {
    try {
      await this.c.checkUrl(this.url.replace(/^ws/, 'http'));
    } catch (e) {
      throw guardRefusal(e);
    }
    return new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(this.url, {
        handshakeTimeout: this.init.timeoutMs,
        maxPayload: this.init.maxAnswerBytes,
        followRedirects: false,
        perMessageDeflate: false,
        headers: { 'user-agent': this.init.userAgent ?? 'rum-node' },
        ...(this.lookup ? { lookup: this.lookup } : {}),
      });
      let opened = false;
      ws.on('error', (err) => {
        if (!opened) reject(this.connectError(err));
        else
          this.c.log.debug({ relay: this.url, err: err.message }, 'nostr: relay connection error');
      });
      ws.on('open', () => {
        opened = true;
        if (this.closed) {
          ws.terminate();
          reject(new Error(`${this.url}: the client is closed`));
          return;
        }
        this.ws = ws;
        this.challenge = null;
        this.auth = null;
        resolve(ws);
      });
      ws.on('message', (data, isBinary) => {
        if (!isBinary) this.onMessage(data);
      });
      ws.on('close', () => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.clearIdle();
        this.failAll(new Error(`${this.url}: the relay closed the connection`));
      });
    });
  }

  private connectError(err: Error): Error {
    const refused = guardRefusal(err);
    if (refused instanceof PermanentDeliveryError) return refused;
    const status = /Unexpected server response: (\d{3})/.exec(err.message)?.[1];
    if (status) {
      const n = Number(status);
      const what = `${this.url} answered the WebSocket upgrade with ${n}`;
      if (n >= 400 && n < 500 && n !== 408 && n !== 429) return new PermanentDeliveryError(what);
      return new Error(what);
    }
    return new Error(`${this.url}: cannot connect: ${err.message}`);
  }

  private onMessage(data: RawData): void {
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return; // not JSON: nothing a client has to read
    }
    if (!Array.isArray(msg)) return;
    if (msg[0] === 'OK' && typeof msg[1] === 'string') {
      const set = this.waiting.get(msg[1]);
      if (!set) return;
      const answer = {
        accepted: msg[2] === true,
        message: typeof msg[3] === 'string' ? msg[3].slice(0, MESSAGE_CHARS) : '',
      };
      for (const w of [...set]) w.resolve(answer);
    } else if (msg[0] === 'AUTH' && typeof msg[1] === 'string') {
      if (msg[1].length > MAX_CHALLENGE_CHARS) return;
      this.challenge = msg[1];
      this.auth = null;
      // Answered at once: the next EVENT that needs it finds the connection authenticated.
      this.authenticate()?.catch((err: Error) =>
        this.c.log.debug({ relay: this.url, err: err.message }, 'nostr: AUTH not answered'),
      );
    } else if (msg[0] === 'NOTICE' && typeof msg[1] === 'string') {
      this.c.log.debug(
        { relay: this.url, notice: msg[1].slice(0, MESSAGE_CHARS) },
        'nostr: relay notice',
      );
    }
  }

  private failAll(err: Error): void {
    for (const set of [...this.waiting.values()]) for (const w of [...set]) w.reject(err);
    this.waiting.clear();
  }

  private armIdle(): void {
    if (this.waiting.size > 0 || this.closed || this.idle) return;
    this.idle = setTimeout(() => {
      this.idle = null;
      if (this.waiting.size === 0) this.close('idle');
    }, this.init.idleMs);
    this.idle.unref?.();
  }

  private clearIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
  }
}

/** The connections to outside relays, and the `nostr-event` delivery handler that uses them. */
export class RelayClient {
  private readonly c: RelayClientComponents;
  private readonly init: RelayClientInit;
  private readonly lookup: LookupFunction | undefined;
  private readonly connections = new Map<string, RelayConnection>();
  private closed = false;

  constructor(c: RelayClientComponents, init: RelayClientInit) {
    this.c = c;
    this.init = init;
    this.lookup = c.allowPrivateAddress ? undefined : checkedLookup((url) => c.checkUrl(url));
  }

  /** The handler of kind `nostr-event`; register it with queue.handle(PUBLISH_KIND, …). */
  handler(): DeliveryHandler {
    return (job) => this.deliver(job);
  }

  /** How many relays have a connection kept (open, opening, or to be reopened by the next job). */
  get open(): number {
    return this.connections.size;
  }

  /** Closes every connection (running attempts fail and are retried later). */
  close(): void {
    this.closed = true;
    for (const conn of [...this.connections.values()]) conn.close('the bridge stopped');
  }

  private connection(url: string): RelayConnection {
    if (this.closed) throw new Error('the Nostr relay client is closed');
    let conn = this.connections.get(url);
    if (!conn) {
      conn = new RelayConnection(url, this.c, this.init, this.lookup, (gone) => {
        if (this.connections.get(url) === gone) this.connections.delete(url);
      });
      this.connections.set(url, conn);
    }
    return conn;
  }

  private async deliver(job: DeliveryJob): Promise<void> {
    const { relay, event } = parsePayload(job);
    if (isProtected(event)) {
      throw new PermanentDeliveryError('a NIP-70 protected event is never republished');
    }
    const conn = this.connection(relay);
    const first = await conn.publish(event);
    let outcome = okOutcome(first.accepted, first.message);
    let answer = first;
    if (outcome === 'auth') {
      const auth = conn.authenticate();
      if (!auth) throw new Error(`${relay}: ${first.message} (and no AUTH challenge yet)`);
      const a = await auth;
      if (!a.accepted) {
        throw new PermanentDeliveryError(`${relay} refused our AUTH: ${a.message}`);
      }
      answer = await conn.publish(event);
      outcome = okOutcome(answer.accepted, answer.message);
      if (outcome === 'auth') outcome = 'permanent';
    }
    const what = `${relay} answered OK false: ${answer.message || '(no message)'}`;
    if (outcome === 'delivered') return;
    if (outcome === 'permanent') throw new PermanentDeliveryError(what);
    throw new Error(what);
  }
}
