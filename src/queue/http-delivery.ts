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
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
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
   * DNS lookup used when connecting (for instance the guard's, which judges the address again
   * at connect time and so defeats DNS rebinding). Default: node's.
   */
  lookup?: LookupFunction;
  /** Open connections per host kept by this handler's agents (default 64). */
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

/** The handler for kind `http`; register it with queue.handle('http', …). */
export function httpDeliveryHandler(opts: HttpDeliveryOptions): DeliveryHandler {
  const agentOpts = {
    keepAlive: true,
    maxSockets: opts.maxSockets ?? 64,
    scheduling: 'lifo' as const,
  };
  const agents = { http: new http.Agent(agentOpts), https: new https.Agent(agentOpts) };
  const userAgent = opts.userAgent ?? 'rum-node';
  return async (job: DeliveryJob) => {
    const p = parsePayload(job.payload);
    let url: URL;
    try {
      url = new URL(p.url);
    } catch {
      throw new PermanentDeliveryError(`http delivery: not a URL: ${p.url}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PermanentDeliveryError(`http delivery: not http(s): ${url.protocol}`);
    }
    if (opts.guard) {
      try {
        await opts.guard(url.href);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        if (err.name === 'BlockedAddressError' || err.name === 'PermanentDeliveryError') {
          throw new PermanentDeliveryError(err.message);
        }
        throw err;
      }
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(p.headers ?? {})) headers[k.toLowerCase()] = String(v);
    headers['user-agent'] ??= userAgent;
    headers['content-length'] = String(Buffer.byteLength(p.body));
    headers['idempotency-key'] = job.key;
    if (p.hmacSecret !== undefined) headers['x-rum-signature'] = signBody(p.hmacSecret, p.body);
    const { status, retryAfter, snippet } = await send(url, headers, p.body, opts, agents);
    if (status >= 200 && status < 300) return;
    const what = `${url.origin} answered ${status}${snippet ? `: ${snippet}` : ''}`;
    if (status === 429 || status === 503) {
      const ms = parseRetryAfter(retryAfter);
      if (ms !== null) throw new RetryAfterError(what, ms);
      throw new Error(what);
    }
    if (status === 408 || status >= 500) throw new Error(what);
    throw new PermanentDeliveryError(what);
  };
}

function send(
  url: URL,
  headers: Record<string, string>,
  body: string,
  opts: HttpDeliveryOptions,
  agents: { http: http.Agent; https: https.Agent },
): Promise<{ status: number; retryAfter: string | undefined; snippet: string }> {
  return new Promise((resolve, reject) => {
    const isHttps = url.protocol === 'https:';
    const req = (isHttps ? https : http).request(url, {
      method: 'POST',
      headers,
      agent: isHttps ? agents.https : agents.http,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });
    const timer = setTimeout(() => {
      const err = new Error(`${url.origin}: no answer within ${opts.timeoutMs} ms`);
      reject(err);
      req.destroy(err);
    }, opts.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const retryAfter = res.headers['retry-after'];
      const ok = status >= 200 && status < 300;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        if (!ok && kept < ERROR_BODY_BYTES) {
          chunks.push(c);
          kept += c.length;
        }
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const snippet = Buffer.concat(chunks)
          .toString('utf8', 0, Math.min(kept, ERROR_BODY_BYTES))
          .replace(/\s+/g, ' ')
          .trim();
        resolve({ status, retryAfter, snippet });
      });
    });
    req.end(body);
  });
}
