/**
 * The bot gateway: Telegram-style bots (grammY, Telegraf, node-telegram-bot-api,
 * python-telegram-bot) read and post into RUM groups through a Telegram Bot API subset on the
 * gateway (`/bot<token>/<method>`, api.ts); every committed item of a bot's groups is logged for
 * it (gateway.ts, store.ts) and served by long polling or pushed to its webhook. Bots post with
 * keys the gateway holds for them, so members see which bot wrote what. With a Redis
 * (`--redisurl`), bots on the same host may read their updates and post through Redis streams
 * instead (redis.ts); every send's outcome comes back in the log (outcomes.ts). Webhooks, the
 * Telegram kind and Standard Webhooks, go out through the delivery queue (webhooks.ts).
 */
import type { FastifyInstance } from 'fastify';
import { type Config, ConfigSchema } from '../../src/config/schema.ts';
import type { Bridge } from '../../src/gateway/gateway.ts';
import type { BridgePort } from '../port.ts';
import { registerBotAdminRoutes } from './admin.ts';
import { type BotApi, mountBotApi } from './api.ts';
import { BotGateway } from './gateway.ts';
import { BotStreams, registerBotStreamRoutes } from './redis.ts';
import { registerWebhookAdminRoutes } from './webhook-admin.ts';
import { BotWebhooks } from './webhooks.ts';

export interface BotBridgeOptions {
  /** The node's config (`limits.bot*`); default: the schema's defaults. */
  config?: Config;
}

export function botBridge(options: BotBridgeOptions = {}): Bridge & { gateway(): BotGateway } {
  let gw: BotGateway | null = null;
  let api: BotApi | null = null;
  let streams: BotStreams | null = null;
  let webhooks: BotWebhooks | null = null;
  const need = (): BotGateway => {
    if (!gw) throw new Error('the bot bridge is not registered');
    return gw;
  };
  const needWebhooks = () => {
    if (!webhooks) throw new Error('the bot bridge is not registered');
    return { gw: need(), webhooks };
  };
  return {
    name: 'bots',
    gateway: need,
    async register(app: FastifyInstance, port: BridgePort) {
      gw = new BotGateway(port, options.config ?? ConfigSchema.parse({}));
      const methods = await mountBotApi(app, gw);
      api = methods;
      // Registered before the gateway starts the queue.
      webhooks = new BotWebhooks(gw, gw.config);
      webhooks.register((bot, method, params, key) =>
        methods.call(bot, method, params, { key: `w:${key}` }),
      );
    },
    start() {
      const g = need();
      g.start();
      webhooks?.start();
      const { redisUrl, botStreamPrefix, limits } = g.config;
      if (redisUrl && api) {
        streams = new BotStreams(g, api, {
          redisUrl,
          prefix: botStreamPrefix,
          maxLen: limits.botStreamMaxLen,
        });
        streams.start();
      }
    },
    async stop() {
      await streams?.stop();
      streams = null;
      await webhooks?.stop();
      await gw?.stop();
    },
    admin(app: FastifyInstance) {
      registerBotAdminRoutes(app, need);
      registerBotStreamRoutes(app, need, () => streams);
      registerWebhookAdminRoutes(app, needWebhooks);
    },
  };
}
