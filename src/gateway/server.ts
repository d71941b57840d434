/**
 * The gateway: the node's public HTTP listener, next to its private admin API. It serves only
 * what strangers may call (bridge routes, /healthz); no admin route is registered here, so an
 * admin path answers 404. Every request has a body limit, a per-address rate limit and a
 * timeout. TLS is a reverse proxy's job (README "Bridges").
 */
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.ts';
import type { Logger } from 'pino';

/** A bridge's routes, registered on the gateway before it listens. */
export type GatewayPlugin = (app: FastifyInstance) => Promise<void> | void;

export interface GatewayOptions {
  config: Config;
  log: Logger;
  /** Whether the node can serve (its database answers): /healthz says so. */
  healthy: () => boolean;
  plugins?: GatewayPlugin[];
}

/** The URL a listener is bound to, with IPv6 hosts in brackets. */
export function boundUrl(app: FastifyInstance, host: string, fallbackPort: number): string {
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : fallbackPort;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export async function buildGateway(o: GatewayOptions): Promise<FastifyInstance> {
  const limits = o.config.limits;
  const app = Fastify({
    logger: false,
    bodyLimit: limits.gatewayBodyBytes,
    connectionTimeout: limits.gatewayRequestTimeoutMs,
    requestTimeout: limits.gatewayRequestTimeoutMs,
    // Behind a reverse proxy on this host, the client's address is the proxy's
    // X-Forwarded-For; from anywhere else that header is not believed.
    trustProxy: o.config.gatewayTrustProxy ? ['127.0.0.1', '::1'] : false,
    routerOptions: { maxParamLength: 500 },
  });

  await app.register(rateLimit, {
    max: limits.gatewayRateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => req.ip,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      message: `rate limit: ${ctx.max} requests a minute per address; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
    }),
  });

  app.setErrorHandler((err, req, reply) => {
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation) return reply.code(400).send({ message: e.message });
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.code(e.statusCode).send({ message: e.message });
    }
    o.log.error({ err, url: req.url }, 'gateway error');
    return reply.code(500).send({ message: 'internal error' });
  });
  // Unknown paths count against the limit too (scanners).
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, (req, reply) => {
    reply.code(404).send({ message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.get('/healthz', async (_req, reply) => {
    if (!o.healthy()) return reply.code(503).send({ status: 'unavailable' });
    return { status: 'ok' };
  });

  for (const plugin of o.plugins ?? []) await plugin(app);
  return app;
}
