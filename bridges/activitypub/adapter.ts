/**
 * Fedify on the gateway's fastify: there is no Fedify integration for fastify, so the routes
 * Fedify owns are handed to `federation.fetch()` as Web Requests.
 *
 * - An encapsulated plugin: only these routes take bodies as raw bytes (Fedify checks the
 *   `Digest`/`Content-Digest` of the exact bytes), with their own body limit.
 * - The Web Request's URL is built on the gateway's PUBLIC origin, not the listener's address:
 *   Fedify takes collection links, WebFinger aliases and RFC 9421's `@target-uri` from it.
 * - A replay guard in front: Fedify answers a second delivery of the same signed POST with 202
 *   ("already processed"); here a POST whose signature was seen within the signature window is
 *   refused with 401. Real senders sign every attempt anew (a new Date), so identical signature
 *   bytes are a replay.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BridgeKv } from '../port.ts';

export const FEDIFY_ROUTES = [
  '/ap/*',
  '/.well-known/webfinger',
  '/.well-known/nodeinfo',
  '/nodeinfo/2.1',
];

export interface AdapterOptions {
  /** The Fedify entry point (federation.fetch with our context data), made on first use. */
  fetch: (request: Request, handlers: FetchHandlers) => Promise<Response>;
  /** The public origin (port.origin), read per request. */
  origin: () => string;
  /** Where seen signatures are kept (with a TTL of the signature window). */
  kv: BridgeKv;
  signatureWindowMs: number;
  bodyLimit: number;
  /** What a browser (no ActivityPub in its Accept) gets instead of a 406; null: the 406. */
  browserPage?: (request: Request) => Response | null;
  /** Why an inbox POST is refused with 403 before Fedify (a block), or null to let it in. */
  refusePost?: (headers: FastifyRequest['headers'], body: unknown) => string | null;
}

export interface FetchHandlers {
  onNotAcceptable: (request: Request) => Response | Promise<Response>;
}

export function toWebRequest(req: FastifyRequest, origin: string): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) headers.append(k, x);
    else headers.set(k, String(v));
  }
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const body = hasBody && Buffer.isBuffer(req.body) ? new Uint8Array(req.body) : undefined;
  return new Request(new URL(req.url, `${origin}/`), { method: req.method, headers, body });
}

/** The replay key of a signed POST (draft-cavage `Signature`, or RFC 9421's pair), or null. */
export function signatureKey(headers: FastifyRequest['headers']): string | null {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);
  const sig = one(headers.signature);
  if (!sig) return null;
  const input = one(headers['signature-input']) ?? '';
  return `replay:${createHash('sha256').update(`${input}\n${sig}`).digest('hex')}`;
}

function notAcceptable(): Response {
  return new Response('Not Acceptable: ask for application/activity+json', {
    status: 406,
    headers: { 'content-type': 'text/plain; charset=utf-8', vary: 'Accept' },
  });
}

export async function mountFedify(app: FastifyInstance, o: AdapterOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: o.bodyLimit },
      (_r, body, done) => done(null, body),
    );
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.method === 'POST') {
        const refused = o.refusePost?.(req.headers, req.body);
        if (refused) return reply.code(403).type('text/plain').send(refused);
        const key = signatureKey(req.headers);
        if (key && !o.kv.cas(key, undefined, Date.now(), o.signatureWindowMs)) {
          return reply
            .code(401)
            .type('text/plain')
            .send('This signature was used before (replay).');
        }
      }
      const res = await o.fetch(toWebRequest(req, o.origin()), {
        onNotAcceptable: (r) => o.browserPage?.(r) ?? notAcceptable(),
      });
      return reply.send(res);
    };
    for (const url of FEDIFY_ROUTES) {
      scope.route({ method: ['GET', 'HEAD', 'POST'], url, handler });
    }
  });
}
