// The `http` delivery handler against a loopback server: what it sends (key, signature, body),
// and how each answer maps to done, retry, retry after, or permanent failure.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AddressGuard, guardedDispatcher, guardedLookup } from '../../src/gateway/address-guard.ts';
import {
  type HttpDeliveryPayload,
  httpDeliveryHandler,
  parseRetryAfter,
  signBody,
} from '../../src/queue/http-delivery.ts';
import {
  type DeliveryJob,
  PermanentDeliveryError,
  RetryAfterError,
} from '../../src/queue/types.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Answers by path: /status/<code>[?retry-after=<v>], /hang (never answers). */
let server: http.Server;
let base: string;
const seen: Seen[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/hang') return;
      const m = /^\/status\/(\d+)$/.exec(u.pathname);
      const status = m ? Number(m[1]) : 200;
      const headers: Record<string, string> = {};
      const ra = u.searchParams.get('retry-after');
      if (ra !== null) headers['retry-after'] = ra;
      res.writeHead(status, headers).end(status >= 400 ? `error body ${status}` : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function job(payload: Partial<HttpDeliveryPayload> & { url: string }, key = 'key-1'): DeliveryJob {
  return {
    id: 'j1',
    key,
    kind: 'http',
    destination: new URL(payload.url).host,
    payload: { body: '{"a":1}', ...payload },
    attempt: 1,
  };
}

const handler = httpDeliveryHandler({ timeoutMs: 1_000 });

/** The error the handler throws for `path`, or null when it delivered. */
async function outcome(path: string, h = handler): Promise<Error | null> {
  try {
    await h(job({ url: `${base}${path}` }));
    return null;
  } catch (e) {
    return e as Error;
  }
}

describe('http delivery handler', () => {
  it('POSTs the body with the idempotency key and the HMAC signature of the body', async () => {
    seen.length = 0;
    const body = JSON.stringify({ type: 'Create', content: 'héllo' });
    await handler(
      job(
        {
          url: `${base}/inbox`,
          body,
          hmacSecret: 'shh',
          headers: { 'Content-Type': 'application/activity+json', 'X-Extra': 'yes' },
        },
        'https://node.example/trx/1',
      ),
    );
    const [r] = seen;
    assert.equal(r!.method, 'POST');
    assert.equal(r!.url, '/inbox');
    assert.equal(r!.body, body);
    assert.equal(r!.headers['idempotency-key'], 'https://node.example/trx/1');
    const want = `sha256=${createHmac('sha256', 'shh').update(Buffer.from(body)).digest('hex')}`;
    assert.equal(r!.headers['x-rum-signature'], want);
    assert.equal(signBody('shh', body), want);
    assert.equal(r!.headers['content-type'], 'application/activity+json');
    assert.equal(r!.headers['x-extra'], 'yes');
    assert.equal(r!.headers['content-length'], String(Buffer.byteLength(body)));
  });

  it('sends no signature without a secret, and JSON by default', async () => {
    seen.length = 0;
    await handler(job({ url: `${base}/hook` }));
    assert.equal(seen[0]!.headers['x-rum-signature'], undefined);
    assert.equal(seen[0]!.headers['content-type'], 'application/json');
  });

  it('a payload cannot replace the idempotency key or the signature', async () => {
    seen.length = 0;
    await handler(
      job({
        url: `${base}/hook`,
        hmacSecret: 'k',
        headers: { 'Idempotency-Key': 'forged', 'X-Rum-Signature': 'forged' },
      }),
    );
    assert.equal(seen[0]!.headers['idempotency-key'], 'key-1');
    assert.equal(seen[0]!.headers['x-rum-signature'], signBody('k', '{"a":1}'));
  });

  it('2xx is delivered', async () => {
    for (const code of [200, 201, 202, 204]) assert.equal(await outcome(`/status/${code}`), null);
  });

  it('429 and 503 with Retry-After retry when the destination asked', async () => {
    const a = await outcome('/status/429?retry-after=7');
    assert.ok(a instanceof RetryAfterError, String(a));
    assert.equal(a.retryAfterMs, 7000);
    const date = new Date(Date.now() + 60_000).toUTCString();
    const b = await outcome(`/status/503?retry-after=${encodeURIComponent(date)}`);
    assert.ok(b instanceof RetryAfterError, String(b));
    assert.ok(b.retryAfterMs > 55_000 && b.retryAfterMs <= 60_000, String(b.retryAfterMs));
  });

  it('408, 429, 5xx without Retry-After and network errors are retried', async () => {
    for (const path of [
      '/status/408',
      '/status/429',
      '/status/500',
      '/status/502',
      '/status/503',
    ]) {
      const e = await outcome(path);
      assert.ok(e instanceof Error, path);
      assert.ok(!(e instanceof PermanentDeliveryError) && !(e instanceof RetryAfterError), path);
      assert.match(e.message, /answered \d{3}: error body/);
    }
    // A closed port: connection refused.
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      await handler(job({ url: `http://127.0.0.1:${port}/` }));
      assert.fail('delivered to a closed port');
    } catch (e) {
      assert.ok(!(e instanceof PermanentDeliveryError));
      assert.match((e as Error).message, /ECONNREFUSED/);
    }
  });

  it('gives up an attempt after the timeout, to retry it', async () => {
    const quick = httpDeliveryHandler({ timeoutMs: 200 });
    const t0 = Date.now();
    const e = await outcome('/hang', quick);
    assert.ok(e instanceof Error && !(e instanceof PermanentDeliveryError));
    assert.match(e.message, /no answer within 200 ms/);
    assert.ok(Date.now() - t0 < 1_000);
  });

  it('410, other 4xx and redirects are permanent', async () => {
    for (const code of [410, 400, 401, 403, 404, 413, 422, 301, 302]) {
      const e = await outcome(`/status/${code}`);
      assert.ok(e instanceof PermanentDeliveryError, `${code}: ${e}`);
    }
  });

  it('refuses what the guard refuses, permanently; a guard that failed (DNS) is retried', async () => {
    const checked: string[] = [];
    const blocked = httpDeliveryHandler({
      timeoutMs: 1_000,
      guard: async (url) => {
        checked.push(url);
        throw Object.assign(new Error('refused 127.0.0.1: a loopback address'), {
          name: 'BlockedAddressError',
        });
      },
    });
    seen.length = 0;
    const e = await outcome('/hook', blocked);
    assert.ok(e instanceof PermanentDeliveryError, String(e));
    assert.match(e.message, /loopback/);
    assert.deepEqual(checked, [`${base}/hook`]);
    assert.equal(seen.length, 0, 'the request went out');

    const dnsDown = httpDeliveryHandler({
      timeoutMs: 1_000,
      guard: async () => {
        throw Object.assign(new Error('getaddrinfo EAI_AGAIN example.org'), { code: 'EAI_AGAIN' });
      },
    });
    const d = await outcome('/hook', dnsDown);
    assert.ok(d instanceof Error && !(d instanceof PermanentDeliveryError));
  });

  it('a refusal by a guarded dispatcher when it connects is permanent', async () => {
    const guard = new AddressGuard({ allowPrivate: false });
    const h = httpDeliveryHandler({ timeoutMs: 1_000, dispatcher: guardedDispatcher(guard) });
    seen.length = 0;
    const e = await outcome('/hook', h);
    assert.ok(e instanceof PermanentDeliveryError, String(e));
    assert.match(e.message, /loopback/);
    assert.equal(seen.length, 0, 'the request went out');
  });

  it('a refusal by a guarded lookup when it connects is permanent', async () => {
    const guard = new AddressGuard({ allowPrivate: false });
    const h = httpDeliveryHandler({ timeoutMs: 1_000, lookup: guardedLookup(guard) });
    seen.length = 0;
    const port = new URL(base).port;
    try {
      await h(job({ url: `http://localhost:${port}/hook` }));
      assert.fail('delivered to localhost');
    } catch (e) {
      assert.ok(e instanceof PermanentDeliveryError, String(e));
      assert.match((e as Error).message, /localhost/);
    }
    assert.equal(seen.length, 0, 'the request went out');
  });

  it('refuses a malformed payload permanently', async () => {
    const bad: unknown[] = [
      null,
      { url: 'not a url', body: '' },
      { url: 'ftp://example.org/x', body: '' },
      { url: `${base}/x`, body: { not: 'a string' } },
      { url: `${base}/x`, body: '', method: 'DELETE' },
    ];
    for (const payload of bad) {
      await assert.rejects(
        handler({ id: '1', key: 'k', kind: 'http', destination: 'd', payload, attempt: 1 }),
        PermanentDeliveryError,
        JSON.stringify(payload),
      );
    }
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), null);
    assert.equal(parseRetryAfter(undefined, now), null);
    assert.equal(parseRetryAfter('99999999999', now), 7 * 24 * 3600_000);
  });
});
