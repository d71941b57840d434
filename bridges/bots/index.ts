/**
 * The bot gateway: Telegram-style bots (grammY, Telegraf, node-telegram-bot-api,
 * python-telegram-bot) read and post into RUM groups through a Telegram Bot API subset on the
 * gateway (`/bot<token>/<method>`, api.ts); every committed item of a bot's groups is logged for
 * it (gateway.ts, store.ts) and served by long polling or pushed to its webhook. Bots post with
 * keys the gateway holds for them, so members see which bot wrote what.
 */
import type { FastifyInstance } from 'fastify';
import { type Config, ConfigSchema } from '../../src/config/schema.ts';
import type { Bridge } from '../../src/gateway/gateway.ts';
import type { BridgePort } from '../port.ts';
import { registerBotAdminRoutes } from './admin.ts';
import { mountBotApi } from './api.ts';
import { BotGateway } from './gateway.ts';

export interface BotBridgeOptions {
  /** The node's config (`limits.bot*`); default: the schema's defaults. */
  config?: Config;
}

export function botBridge(options: BotBridgeOptions = {}): Bridge & { gateway(): BotGateway } {
  let gw: BotGateway | null = null;
  const need = (): BotGateway => {
    if (!gw) throw new Error('the bot bridge is not registered');
    return gw;
  };
  return {
    name: 'bots',
    gateway: need,
    async register(app: FastifyInstance, port: BridgePort) {
      gw = new BotGateway(port, options.config ?? ConfigSchema.parse({}));
      await mountBotApi(app, gw);
    },
    start() {
      need().start();
    },
    async stop() {
      await gw?.stop();
    },
    admin(app: FastifyInstance) {
      registerBotAdminRoutes(app, need);
    },
  };
}
