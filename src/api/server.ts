/**
 * The HTTP API: fastify with a JSON schema on every route, quorum's paths and JSON shapes, and
 * errors as {"message": …} with a 4xx status. Locality is decided from the socket's remote
 * address, never from the Host header; a non-loopback bind always requires a token.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { RumError } from '../errors.ts';
import type { ApiComponents } from './context.ts';
import { parseBearer } from './jwt.ts';
import { registerBridgeRoutes } from './routes/bridges.ts';
import { registerChainRoutes } from './routes/chain.ts';
import { registerContentRoutes } from './routes/content.ts';
import { registerGroupRoutes } from './routes/groups.ts';
import { registerLightNodeRoutes } from './routes/lightnode.ts';
import { registerLiveRoutes } from './routes/live.ts';
import { registerNodeRoutes } from './routes/node.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerUserRoutes } from './routes/users.ts';

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  if (addr === '::1') return true;
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}

/** What a node-role token may call: its group's light-client routes and trxs, and refreshing itself. */
function nodeTokenAllows(req: FastifyRequest, allowGroup: string): boolean {
  const route = req.routeOptions.url ?? '';
  const params = req.params as Record<string, string> | undefined;
  if (route === '/app/api/v1/token/refresh') return true;
  const groupRoute =
    route.startsWith('/api/v1/node/:group_id/') || route === '/api/v1/trx/:group_id/:trx_id';
  if (groupRoute) return allowGroup === '*' || params?.group_id === allowGroup;
  return false;
}

const PUBLIC_PREFIXES = ['/swagger'];

export async function buildApi(c: ApiComponents): Promise<FastifyInstance> {
  const { node } = c;
  const cfg = node.config;
  const app = Fastify({
    logger: false,
    bodyLimit: cfg.limits.maxRequestBodyBytes,
    routerOptions: { maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'RUM node API',
        version: '2.0.0',
        description: 'quorum-compatible REST API of a RUM node (see docs/api.md)',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/swagger' });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  const localBind = isLoopbackHost(cfg.apiHost);
  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC_PREFIXES.some((p) => req.url.startsWith(p))) return;
    const local = isLoopbackAddress(req.socket.remoteAddress);
    if (localBind && local && !cfg.apiRequireTokenOnLoopback) return;
    const token = parseBearer(req.headers.authorization);
    if (!token) {
      return reply.code(401).send({ message: 'missing Authorization: Bearer <token>' });
    }
    const res = c.tokens.verify(token);
    if (!res.ok) return reply.code(401).send({ message: `invalid token: ${res.reason}` });
    if (res.claims.role === 'chain') return;
    if (!nodeTokenAllows(req, res.claims.allowGroup)) {
      return reply.code(403).send({ message: 'token does not allow this call' });
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    node.metrics.apiRequests.inc({
      method: req.method,
      route: req.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    });
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof RumError && err.status < 500) {
      return reply.code(err.status).send({ message: err.message });
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation) return reply.code(400).send({ message: e.message });
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.code(e.statusCode).send({ message: e.message });
    }
    node.log.error({ err, url: req.url }, 'API error');
    return reply.code(500).send({ message: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  // axios, as rum-fullnode-sdk's Token.refresh uses it, sends a POST with no body as
  // application/x-www-form-urlencoded: an empty form is no body; a form with content stays 415.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req, body, done) => {
      if (body === '') return done(null, undefined);
      const err = new Error('Unsupported Media Type: application/x-www-form-urlencoded');
      done(Object.assign(err, { statusCode: 415 }), undefined);
    },
  );

  registerGroupRoutes(app, c);
  registerContentRoutes(app, c);
  registerChainRoutes(app, c);
  registerNodeRoutes(app, c);
  registerTokenRoutes(app, c);
  registerLightNodeRoutes(app, c);
  registerLiveRoutes(app, c);
  registerUserRoutes(app, c);
  registerBridgeRoutes(app, c);
  for (const b of c.gateway?.bridges ?? []) await b.admin?.(app);
  return app;
}
