/**
 * The built-in delivery kind `http`: one HTTP POST of a prepared body (a bot webhook, an
 * ActivityPub inbox delivery whose headers the bridge signed already). Every attempt carries
 * `Idempotency-Key: <job key>`, so a receiver counts a repeated delivery once, and, when the job
 * has an HMAC secret, `X-Rum-Signature: sha256=<hex HMAC-SHA256 of the body>`.
 *
 * Outcomes: 2xx is delivered; 429 or 503 with Retry-After is retried when the destination asked
 * (RetryAfterError); 408, 429, 5xx and network errors and timeouts are retried with backoff; 3xx
 * (redirects are not followed), 410 and every other 4xx are permanent (PermanentDeliveryError).
 */
import { createHmac } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import { Agent, type Dispatcher, request } from 'undici';
import {
  type DeliveryHandler,
  type DeliveryJob,
  PermanentDeliveryError,
  RetryAfterError,
} from './types.ts';

/** The payload of a job of kind `http`. */
export interface HttpDeliveryPayload {
  url: string;
  method?: 'POST';
  /** Extra request headers; Content-Type defaults to application/json. */
  headers?: Record<string, string>;
  body: string;
  /** When set, the body is signed: `X-Rum-Signature: sha256=<hex HMAC-SHA256(secret, body)>`. */
  hmacSecret?: string;
}

export interface HttpDeliveryOptions {
  /** The whole attempt (connect, send, answer) must end within this. */
  timeoutMs: number;
  /**
   * Called with the URL before each attempt; throws to refuse it (the SSRF guard:
   * src/gateway/address-guard.ts). A refusal named BlockedAddressError or
   * PermanentDeliveryError is permanent; any other error (a DNS failure) is retried.
   */
  guard?: (url: string) => Promise<void>;
  /**
   * The undici dispatcher that connects (for instance the guard's guardedDispatcher, which
   * judges the address again at connect time and so defeats DNS rebinding). Default: an Agent
   * of this handler's own, keeping connections alive.
   */
  dispatcher?: Dispatcher;
  /**
   * The DNS lookup of the default dispatcher's connections (for instance the guard's
   * guardedLookup, which refuses a name that resolves to a private address when connecting).
   */
  lookup?: LookupFunction;
  /** Open connections per origin of the default dispatcher (default 64). */
  maxSockets?: number;
  /** User-Agent header (default `rum-node`). */
  userAgent?: string;
}

/** The longest Retry-After honoured; a longer one is cut to this. */
const MAX_RETRY_AFTER_MS = 7 * 24 * 3600_000;
/** How much of an error answer's body goes into the error message. */
const ERROR_BODY_BYTES = 300;

/** Retry-After (delta-seconds or an HTTP date) in ms from `now`, or null when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(MAX_RETRY_AFTER_MS, Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, t - now));
}

/** `sha256=<hex>`: the X-Rum-Signature of a body. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

function parsePayload(p: unknown): HttpDeliveryPayload {
  const o = p as Partial<HttpDeliveryPayload> | null;
  if (!o || typeof o !== 'object') throw new PermanentDeliveryError('http delivery: no payload');
  if (typeof o.url !== 'string') throw new PermanentDeliveryError('http delivery: no url');
  if (typeof o.body !== 'string')
    throw new PermanentDeliveryError('http delivery: body is not a string');
  if (o.method !== undefined && o.method !== 'POST') {
    throw new PermanentDeliveryError(`http delivery: method ${String(o.method)} is not supported`);
  }
  if (o.hmacSecret !== undefined && typeof o.hmacSecret !== 'string') {
    throw new PermanentDeliveryError('http delivery: hmacSecret is not a string');
  }
  return o as HttpDeliveryPayload;
}

/** The status of the answer an HTTP delivery error came from; null when none came. */
export function answeredStatus(err: unknown): number | null {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : null;
}

/** An HTTP answer's error, carrying its status (answeredStatus). */
function withStatus<E extends Error>(err: E, status: number): E {
  return Object.assign(err, { status });
}

/**
 * One POST, with the guard, timeout and outcomes of kind `http` (see the module comment):
 * resolves with the first `answerBytes` of a 2xx answer's body ('' when 0), throws otherwise.
 * Errors for an answer carry its status (answeredStatus). For delivery kinds of the bridges
 * that sign or read answers their own way (the bots' webhooks).
 */
export type HttpPost = (
  url: string,
  headers: Record<string, string>,
  body: string,
  answerBytes?: number,
) => Promise<string>;

export function httpPost(opts: HttpDeliveryOptions): HttpPost {
  const dispatcher =
    opts.dispatcher ??
    new Agent({
      connections: opts.maxSockets ?? 64,
      keepAliveTimeout: 30_000,
      pipelining: 1,
      ...(opts.lookup ? { connect: { lookup: opts.lookup } } : {}),
    });
  const userAgent = opts.userAgent ?? 'rum-node';
  return async (href, given, body, answerBytes = 0) => {
    let url: URL;
    try {
      url = new URL(href);
    } catch {
      throw new PermanentDeliveryError(`http delivery: not a URL: ${href}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PermanentDeliveryError(`http delivery: not http(s): ${url.protocol}`);
    }
    if (opts.guard) {
      try {
        await opts.guard(url.href);
      } catch (e) {
        throw refusal(e);
      }
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(given)) {
      const name = k.toLowerCase();
      if (name !== 'content-length' && name !== 'host') headers[name] = String(v);
    }
    headers['user-agent'] ??= userAgent;
    const { status, retryAfter, snippet } = await send(
      url,
      headers,
      body,
      opts.timeoutMs,
      dispatcher,
      answerBytes,
    );
    if (status >= 200 && status < 300) return snippet;
    const what = `${url.origin} answered ${status}${snippet ? `: ${snippet}` : ''}`;
    if (status === 429 || status === 503) {
      const ms = parseRetryAfter(retryAfter);
      if (ms !== null) throw withStatus(new RetryAfterError(what, ms), status);
      throw withStatus(new Error(what), status);
    }
    if (status === 408 || status >= 500) throw withStatus(new Error(what), status);
    throw withStatus(new PermanentDeliveryError(what), status);
  };
}

/** The handler for kind `http`; register it with queue.handle('http', …). */
export function httpDeliveryHandler(opts: HttpDeliveryOptions): DeliveryHandler {
  const post = httpPost(opts);
  return async (job: DeliveryJob) => {
    const p = parsePayload(job.payload);
    const headers: Record<string, string> = { ...(p.headers ?? {}) };
    for (const k of Object.keys(headers)) {
      if (k.toLowerCase() === 'idempotency-key' || k.toLowerCase() === 'x-rum-signature') {
        delete headers[k];
      }
    }
    headers['idempotency-key'] = job.key;
    if (p.hmacSecret !== undefined) headers['x-rum-signature'] = signBody(p.hmacSecret, p.body);
    await post(p.url, headers, p.body);
  };
}

/**
 * A refusal of the guard (checked before, or again by a guarded dispatcher at connect time) is
 * permanent; any other error (a DNS failure) is not.
 */
function refusal(e: unknown): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  const cause = (err as { cause?: unknown }).cause;
  for (const x of [err, cause]) {
    if (
      x instanceof Error &&
      (x.name === 'BlockedAddressError' || x.name === 'PermanentDeliveryError')
    ) {
      return new PermanentDeliveryError(x.message);
    }
  }
  return err;
}

async function send(
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  dispatcher: Dispatcher,
  answerBytes: number,
): Promise<{ status: number; retryAfter: string | undefined; snippet: string }> {
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new Error(`${url.origin}: no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    const res = await request(url, {
      method: 'POST',
      headers,
      body,
      dispatcher,
      signal: ac.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const status = res.statusCode;
    const ra = res.headers['retry-after'];
    const retryAfter = Array.isArray(ra) ? ra[0] : ra;
    const ok = status >= 200 && status < 300;
    const limit = ok ? answerBytes : ERROR_BODY_BYTES;
    if (limit === 0) {
      await res.body.dump();
      return { status, retryAfter, snippet: '' };
    }
    const chunks: Buffer[] = [];
    let kept = 0;
    for await (const c of res.body) {
      chunks.push(c as Buffer);
      kept += (c as Buffer).length;
      if (kept >= limit) break;
    }
    const text = Buffer.concat(chunks).toString('utf8', 0, Math.min(kept, limit));
    // A 2xx answer is read as it is (a Telegram bot may answer with a method call).
    const snippet = ok ? text : text.replace(/\s+/g, ' ').trim();
    return { status, retryAfter, snippet };
  } catch (e) {
    if (ac.signal.aborted) throw ac.signal.reason as Error;
    throw refusal(e);
  } finally {
    clearTimeout(timer);
  }
}
