/**
 * The operator's routes for bots' webhooks, on the node's admin API (never on the gateway):
 *
 * - `PUT /api/v1/bots/{bot_id}/webhook` with `{"url":…}` (and optionally `"secret":"whsec_…"`)
 *   sets the bot's Standard Webhooks endpoint, replacing any webhook it had (a Telegram one
 *   included); answers the secret once: `{"bot_id","url","secret":"whsec_<base64>"}`.
 * - `DELETE /api/v1/bots/{bot_id}/webhook`: no more pushes; queued ones are not sent.
 * - `GET /api/v1/bots/{bot_id}/deliveries?status=failed|pending|active|done&limit=N`: the bot's
 *   webhook deliveries in the queue (failed: what the retry schedule gave up on, or a receiver
 *   refused for good).
 * - `POST /api/v1/bots/{bot_id}/deliveries/redeliver` with `{"ids":[…]}` (failed deliveries) or
 *   `{"from_update_id":…,"to_update_id":…}` (every update of the range not delivered yet):
 *   queues them again for the bot's current endpoint.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { JobStatus } from '../port.ts';
import type { BotGateway } from './gateway.ts';
import { SECRET_RE } from './webhook-delivery.ts';
import { type BotWebhooks, MAX_REDELIVER, RedeliverError } from './webhooks.ts';

class WebhookAdminError extends Error {
  override name = 'WebhookAdminError';
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

const botParams = {
  type: 'object',
  required: ['bot_id'],
  properties: { bot_id: { type: 'integer', minimum: 1 } },
} as const;

/** A new Standard Webhooks secret: 24 random bytes. */
export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export function registerWebhookAdminRoutes(
  app: FastifyInstance,
  need: () => { gw: BotGateway; webhooks: BotWebhooks },
): void {
  const tags = ['Bots'];
  const liveBot = (gw: BotGateway, botId: number) => {
    const bot = gw.store.bot(botId);
    if (!bot || bot.revokedAt !== null) throw new WebhookAdminError(`no live bot ${botId}`, 404);
    return bot;
  };

  app.put(
    '/api/v1/bots/:bot_id/webhook',
    {
      schema: {
        tags,
        summary: "Set a bot's Standard Webhooks endpoint; answers its secret (shown once)",
        params: botParams,
        body: {
          type: 'object',
          required: ['url'],
          additionalProperties: false,
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            secret: { type: 'string', pattern: SECRET_RE.source },
          },
        },
      },
    },
    async (req) => {
      const { gw } = need();
      const botId = (req.params as { bot_id: number }).bot_id;
      const bot = liveBot(gw, botId);
      const body = req.body as { url: string; secret?: string };
      let url: URL;
      try {
        url = new URL(body.url);
      } catch {
        throw new WebhookAdminError('url is not a URL', 400);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new WebhookAdminError('url must be http(s)', 400);
      }
      try {
        await gw.bridgePort.checkUrl(url);
      } catch (err) {
        throw new WebhookAdminError(`url refused: ${(err as Error).message}`, 400);
      }
      const secret = body.secret ?? newSecret();
      gw.store.setWebhook(botId, {
        url: url.href,
        kind: 'standard',
        secret,
        maxConnections: bot.webhook?.maxConnections ?? 40,
      });
      gw.webhookChanged(botId);
      return { bot_id: botId, url: url.href, secret };
    },
  );

  app.delete(
    '/api/v1/bots/:bot_id/webhook',
    {
      schema: {
        tags,
        summary: "Delete a bot's webhook: nothing more is pushed",
        params: botParams,
      },
    },
    async (req) => {
      const { gw } = need();
      const botId = (req.params as { bot_id: number }).bot_id;
      liveBot(gw, botId);
      gw.store.setWebhook(botId, null);
      gw.webhookChanged(botId);
      return { bot_id: botId, webhook: null };
    },
  );

  app.get(
    '/api/v1/bots/:bot_id/deliveries',
    {
      schema: {
        tags,
        summary: "A bot's webhook deliveries in the delivery queue (the failed list by default)",
        params: botParams,
        querystring: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: ['failed', 'pending', 'active', 'done'] },
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        },
      },
    },
    async (req) => {
      const { gw, webhooks } = need();
      const botId = (req.params as { bot_id: number }).bot_id;
      liveBot(gw, botId);
      const q = req.query as { status?: JobStatus; limit?: number };
      const status = q.status ?? 'failed';
      return {
        bot_id: botId,
        status,
        deliveries: await webhooks.deliveries(botId, status, q.limit ?? 100),
      };
    },
  );

  app.post(
    '/api/v1/bots/:bot_id/deliveries/redeliver',
    {
      schema: {
        tags,
        summary: "Deliver a bot's updates again: failed deliveries by id, or a range of updates",
        params: botParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ids: {
              type: 'array',
              minItems: 1,
              maxItems: 1000,
              items: { type: 'string', minLength: 1, maxLength: 100 },
            },
            from_update_id: { type: 'integer', minimum: 1 },
            to_update_id: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
    async (req) => {
      const { gw, webhooks } = need();
      const botId = (req.params as { bot_id: number }).bot_id;
      liveBot(gw, botId);
      const b = req.body as { ids?: string[]; from_update_id?: number; to_update_id?: number };
      const byRange = b.from_update_id !== undefined || b.to_update_id !== undefined;
      if ((b.ids !== undefined) === byRange) {
        throw new WebhookAdminError('give either ids, or from_update_id and to_update_id', 400);
      }
      let what: { ids: string[] } | { from: number; to: number };
      if (b.ids) what = { ids: b.ids };
      else {
        const from = b.from_update_id ?? 1;
        const to = b.to_update_id ?? Number.MAX_SAFE_INTEGER;
        if (to < from) throw new WebhookAdminError('to_update_id is below from_update_id', 400);
        if (b.to_update_id !== undefined && to - from >= MAX_REDELIVER) {
          throw new WebhookAdminError(`at most ${MAX_REDELIVER} updates at once`, 400);
        }
        what = { from, to };
      }
      try {
        const r = await webhooks.redeliver(botId, what);
        return { bot_id: botId, redelivered: r.redelivered, skipped: r.skipped };
      } catch (err) {
        if (err instanceof RedeliverError) throw new WebhookAdminError(err.message, err.statusCode);
        throw err;
      }
    },
  );
}
