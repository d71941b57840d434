/**
 * The operator's bots, on the node's admin API (never on the public gateway; the admin API's
 * own token rules apply):
 *
 * - `POST /api/v1/bots` with `{"name":"echo","group_ids":["…"],"scopes":["read","post"]}`
 *   makes a bot: `{"bot_id":…, "token":"<bot_id>:<secret>", "chats":[{"group_id","chat_id"}]}`.
 *   The token is shown this once (the node keeps its hash). Each group must be exposed to bots.
 * - `GET /api/v1/bots`: the live bots, their chats, webhook and pending updates, and `pubkey`,
 *   the RUM key the bot posts with (made at its first post, null before): what a group's owner
 *   puts on the deny list to ban it.
 * - `DELETE /api/v1/bots/{bot_id}`: revokes the bot; its token fails on its next call.
 */
import type { FastifyInstance } from 'fastify';
import { type BotGateway, botAuthor } from './gateway.ts';
import { BOT_SCOPES, type BotRow, type BotScope } from './store.ts';

class BotAdminError extends Error {
  override name = 'BotAdminError';
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

/** At most this many groups per bot. */
export const MAX_BOT_GROUPS = 100;

function describe(gw: BotGateway, bot: BotRow) {
  return {
    bot_id: bot.botId,
    name: bot.name,
    scopes: bot.scopes,
    pubkey: gw.bridgePort.authorKey('bots', botAuthor(bot.botId)) ?? null,
    chats: gw.store.groupsOf(bot.botId).map((g) => ({ group_id: g, chat_id: gw.store.chatOf(g) })),
    created_at: new Date(bot.createdAt).toISOString(),
    webhook: bot.webhook
      ? {
          url: bot.webhook.url,
          kind: bot.webhook.kind,
          ...(bot.webhookDisabled ? { disabled: bot.webhookDisabled } : {}),
        }
      : null,
    pending_updates: gw.store.pendingCount(bot.botId, bot.acked),
    /** Its Redis streams (redis.ts): on or off; `GET /api/v1/bots/{bot_id}/redis` says more. */
    redis_streams: bot.redisStreams,
  };
}

export function registerBotAdminRoutes(app: FastifyInstance, need: () => BotGateway): void {
  const tags = ['Bots'];
  app.post(
    '/api/v1/bots',
    {
      schema: {
        tags,
        summary: 'Make a bot for some groups; answers its token (shown once)',
        body: {
          type: 'object',
          required: ['name', 'group_ids'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9_]{1,32}$' },
            group_ids: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_BOT_GROUPS,
              items: { type: 'string', minLength: 1, maxLength: 100 },
            },
            scopes: {
              type: 'array',
              minItems: 1,
              maxItems: 2,
              items: { type: 'string', enum: [...BOT_SCOPES] },
            },
          },
        },
      },
    },
    async (req, reply) => {
      const gw = need();
      const body = req.body as { name: string; group_ids: string[]; scopes?: BotScope[] };
      const groups = [...new Set(body.group_ids)];
      for (const g of groups) {
        const e = gw.bridgePort.exposure(g);
        if (!e) throw new BotAdminError(`group ${g} is not exposed to bridges`, 404);
        if (!e.bots) throw new BotAdminError(`group ${g} is not exposed to bots`, 409);
      }
      const scopes = [...new Set<BotScope>(body.scopes ?? ['read', 'post'])];
      const { bot, token } = gw.store.createBot(body.name, scopes, groups);
      for (const g of groups) await gw.refresh(g);
      return reply.code(201).send({ ...describe(gw, bot), token });
    },
  );

  app.get('/api/v1/bots', { schema: { tags, summary: 'The live bots' } }, async () => {
    const gw = need();
    return { bots: gw.store.bots().map((b) => describe(gw, b)) };
  });

  app.delete(
    '/api/v1/bots/:bot_id',
    {
      schema: {
        tags,
        summary: 'Revoke a bot: its token fails from its next call',
        params: {
          type: 'object',
          required: ['bot_id'],
          properties: { bot_id: { type: 'integer', minimum: 1 } },
        },
      },
    },
    async (req) => {
      const gw = need();
      const botId = (req.params as { bot_id: number }).bot_id;
      const groups = gw.store.groupsOf(botId);
      if (!gw.store.revoke(botId)) throw new BotAdminError(`no live bot ${botId}`, 404);
      gw.revoked(botId);
      for (const g of groups) await gw.refresh(g);
      return { bot_id: botId, revoked: true };
    },
  );
}
