/**
 * The bot gateway's tables (src/storage/schema.ts: bots, bot_groups, bot_chats, bot_users,
 * bot_messages, bot_updates, bot_sends, bot_outcomes), on the node's one database connection
 * (BridgePort.database). Nothing else reads or writes them.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Db } from '../../src/storage/db.ts';

export type BotScope = 'read' | 'post';
export const BOT_SCOPES: readonly BotScope[] = ['read', 'post'];

export interface BotRow {
  botId: number;
  name: string;
  scopes: BotScope[];
  createdAt: number;
  revokedAt: number | null;
  acked: number;
  webhook: BotWebhook | null;
  /** The update kinds the bot asked for (allowed_updates), or null for Telegram's default. */
  allowedUpdates: string[] | null;
  /** Why the webhook stopped (the receiver answered 410), or null. */
  webhookDisabled: string | null;
  lastError: { at: number; message: string } | null;
  /** Whether the bot's updates go to its Redis streams (redis.ts). */
  redisStreams: boolean;
  /** The highest update id added to its Redis updates stream. */
  redisPushed: number;
}

export interface BotWebhook {
  url: string;
  /** `telegram`: the Bot API's own push (X-Telegram-Bot-Api-Secret-Token); `standard`: Standard Webhooks. */
  kind: 'telegram' | 'standard';
  secret: string | null;
  maxConnections: number;
}

export interface StoredUpdate {
  updateId: number;
  kind: string;
  groupId: string;
  trxId: string;
  /** The Telegram update without its update_id. */
  payload: Record<string, unknown>;
  createdAt: number;
}

interface RawBot {
  bot_id: number;
  name: string;
  token_hash: string;
  scopes: string;
  created_at: number;
  revoked_at: number | null;
  acked: number;
  webhook_url: string | null;
  webhook_kind: string | null;
  webhook_secret: string | null;
  webhook_max_connections: number | null;
  allowed_updates: string | null;
  webhook_disabled: string | null;
  last_error_at: number | null;
  last_error_message: string | null;
  redis_streams: number;
  redis_pushed: number;
}

/** What became of a trx a bot sent: open until committed or failed. */
export interface Outcome {
  botId: number;
  trxId: string;
  groupId: string;
  sentAt: number;
  /** When producers stop taking the trx (ms since the epoch). */
  expiresAt: number;
  status: 'committed' | 'failed' | null;
  reason: string | null;
}

interface RawOutcome {
  bot_id: number;
  trx_id: string;
  group_id: string;
  sent_at: number;
  expires_at: number;
  status: string | null;
  reason: string | null;
}

function toOutcome(r: RawOutcome): Outcome {
  return {
    botId: r.bot_id,
    trxId: r.trx_id,
    groupId: r.group_id,
    sentAt: r.sent_at,
    expiresAt: r.expires_at,
    status: r.status === 'committed' || r.status === 'failed' ? r.status : null,
    reason: r.reason,
  };
}

/**
 * Bot ids start above this: a bot's token begins with its id, and clients check tokens as
 * Telegram's look (python-telegram-bot 13 refuses one whose id has fewer than 3 digits).
 * RUM authors' user ids start far above (gateway.ts).
 */
const BOT_ID_BASE = 100_000;

/** Chat ids are a supergroup's: -100 followed by the chat's number (Telegram's -100xxxxxxxxxx). */
const CHAT_BASE = 1_000_000_000_000;

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function toBot(r: RawBot): BotRow {
  return {
    botId: r.bot_id,
    name: r.name,
    scopes: JSON.parse(r.scopes) as BotScope[],
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    acked: r.acked,
    webhook:
      r.webhook_url === null
        ? null
        : {
            url: r.webhook_url,
            kind: r.webhook_kind === 'standard' ? 'standard' : 'telegram',
            secret: r.webhook_secret,
            maxConnections: r.webhook_max_connections ?? 40,
          },
    allowedUpdates: r.allowed_updates ? (JSON.parse(r.allowed_updates) as string[]) : null,
    webhookDisabled: r.webhook_disabled,
    lastError:
      r.last_error_at === null
        ? null
        : { at: r.last_error_at, message: r.last_error_message ?? '' },
    redisStreams: r.redis_streams === 1,
    redisPushed: r.redis_pushed,
  };
}

export class BotStore {
  private readonly c: Database.Database;
  private readonly s;

  constructor(db: Db) {
    const c = db.$client;
    this.c = c;
    this.s = {
      insertBot: c.prepare(
        'INSERT INTO bots (bot_id, name, token_hash, scopes, created_at) ' +
          'SELECT max(?, coalesce(max(bot_id), 0)) + 1, ?, ?, ?, ? FROM bots',
      ),
      bot: c.prepare('SELECT * FROM bots WHERE bot_id = ?'),
      bots: c.prepare('SELECT * FROM bots WHERE revoked_at IS NULL ORDER BY bot_id'),
      revoke: c.prepare('UPDATE bots SET revoked_at = ? WHERE bot_id = ? AND revoked_at IS NULL'),
      addGroup: c.prepare('INSERT OR IGNORE INTO bot_groups (bot_id, group_id) VALUES (?, ?)'),
      groupsOf: c.prepare('SELECT group_id FROM bot_groups WHERE bot_id = ? ORDER BY group_id'),
      botsOf: c.prepare(
        'SELECT b.bot_id FROM bot_groups g JOIN bots b ON b.bot_id = g.bot_id ' +
          'WHERE g.group_id = ? AND b.revoked_at IS NULL ORDER BY b.bot_id',
      ),
      allGroups: c.prepare(
        'SELECT DISTINCT g.group_id FROM bot_groups g JOIN bots b ON b.bot_id = g.bot_id ' +
          'WHERE b.revoked_at IS NULL',
      ),
      chatOf: c.prepare('SELECT chat_id FROM bot_chats WHERE group_id = ?'),
      groupOfChat: c.prepare('SELECT group_id FROM bot_chats WHERE chat_id = ?'),
      maxChat: c.prepare('SELECT min(chat_id) AS m FROM bot_chats'),
      addChat: c.prepare('INSERT INTO bot_chats (chat_id, group_id) VALUES (?, ?)'),
      userOf: c.prepare('SELECT user_id FROM bot_users WHERE pubkey = ?'),
      addUser: c.prepare('INSERT INTO bot_users (pubkey) VALUES (?)'),
      messageOf: c.prepare('SELECT message_id FROM bot_messages WHERE chat_id = ? AND trx_id = ?'),
      trxOfMessage: c.prepare(
        'SELECT trx_id FROM bot_messages WHERE chat_id = ? AND message_id = ?',
      ),
      maxMessage: c.prepare('SELECT max(message_id) AS m FROM bot_messages WHERE chat_id = ?'),
      addMessage: c.prepare(
        'INSERT INTO bot_messages (chat_id, message_id, trx_id) VALUES (?, ?, ?)',
      ),
      maxUpdate: c.prepare('SELECT max(update_id) AS m FROM bot_updates WHERE bot_id = ?'),
      addUpdate: c.prepare(
        'INSERT INTO bot_updates (bot_id, update_id, kind, group_id, trx_id, payload, created_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      updatesAfter: c.prepare(
        'SELECT update_id, kind, group_id, trx_id, payload, created_at FROM bot_updates ' +
          'WHERE bot_id = ? AND update_id > ? ORDER BY update_id LIMIT ?',
      ),
      update: c.prepare(
        'SELECT update_id, kind, group_id, trx_id, payload, created_at FROM bot_updates ' +
          'WHERE bot_id = ? AND update_id = ?',
      ),
      hasUpdateFor: c.prepare('SELECT 1 FROM bot_updates WHERE bot_id = ? AND trx_id = ? LIMIT 1'),
      // Not pending: pushed to the bot's webhook (1), or given up on (2; in the failed list).
      pendingCount: c.prepare(
        'SELECT count(*) AS n FROM bot_updates WHERE bot_id = ? AND update_id > ? ' +
          'AND webhook_state IS NULL',
      ),
      setAcked: c.prepare('UPDATE bots SET acked = max(acked, ?) WHERE bot_id = ?'),
      setWebhook: c.prepare(
        'UPDATE bots SET webhook_url = ?, webhook_kind = ?, webhook_secret = ?, ' +
          'webhook_max_connections = ?, webhook_disabled = NULL WHERE bot_id = ?',
      ),
      setAllowed: c.prepare('UPDATE bots SET allowed_updates = ? WHERE bot_id = ?'),
      disableWebhook: c.prepare('UPDATE bots SET webhook_disabled = ? WHERE bot_id = ?'),
      setError: c.prepare(
        'UPDATE bots SET last_error_at = ?, last_error_message = ? WHERE bot_id = ?',
      ),
      send: c.prepare(
        'SELECT trx_id, response, request, created_at FROM bot_sends WHERE bot_id = ? AND key = ?',
      ),
      sentTrx: c.prepare('SELECT 1 FROM bot_sends WHERE bot_id = ? AND trx_id = ? LIMIT 1'),
      addSend: c.prepare(
        'INSERT OR REPLACE INTO bot_sends (bot_id, key, trx_id, response, request, created_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?)',
      ),
      setRedis: c.prepare(
        'UPDATE bots SET redis_streams = ?, redis_pushed = max(redis_pushed, acked) WHERE bot_id = ?',
      ),
      setRedisPushed: c.prepare(
        'UPDATE bots SET redis_pushed = max(redis_pushed, ?) WHERE bot_id = ?',
      ),
      redisBots: c.prepare(
        'SELECT * FROM bots WHERE revoked_at IS NULL AND redis_streams = 1 ORDER BY bot_id',
      ),
      addOutcome: c.prepare(
        'INSERT OR IGNORE INTO bot_outcomes (bot_id, trx_id, group_id, sent_at, expires_at) ' +
          'VALUES (?, ?, ?, ?, ?)',
      ),
      outcome: c.prepare('SELECT * FROM bot_outcomes WHERE bot_id = ? AND trx_id = ?'),
      openOutcomes: c.prepare(
        'SELECT * FROM bot_outcomes WHERE settled_at IS NULL ORDER BY sent_at LIMIT ?',
      ),
      settleOutcome: c.prepare(
        'UPDATE bot_outcomes SET settled_at = ?, status = ?, reason = ? ' +
          'WHERE bot_id = ? AND trx_id = ? AND settled_at IS NULL',
      ),
      pruneOutcomes: c.prepare('DELETE FROM bot_outcomes WHERE settled_at < ?'),
      pruneUpdates: c.prepare('DELETE FROM bot_updates WHERE created_at < ?'),
      pruneSends: c.prepare('DELETE FROM bot_sends WHERE created_at < ?'),
    };
  }

  /** Makes a bot; answers it with its token (`<bot_id>:<secret>`), shown this once. */
  createBot(name: string, scopes: BotScope[], groupIds: string[]): { bot: BotRow; token: string } {
    const secret = randomBytes(24).toString('base64url');
    const botId = this.c.transaction(() => {
      const id = Number(
        this.s.insertBot.run(
          BOT_ID_BASE,
          name,
          hashSecret(secret),
          JSON.stringify(scopes),
          Date.now(),
        ).lastInsertRowid,
      );
      for (const g of groupIds) {
        this.s.addGroup.run(id, g);
        this.chatOf(g);
      }
      return id;
    })();
    return { bot: this.bot(botId)!, token: `${botId}:${secret}` };
  }

  bot(botId: number): BotRow | undefined {
    const r = this.s.bot.get(botId) as RawBot | undefined;
    return r ? toBot(r) : undefined;
  }

  /** The live bot a token names, or why not: `unknown` (no such bot or wrong secret), `revoked`. */
  authenticate(token: string): BotRow | 'unknown' | 'revoked' {
    const m = /^(\d{1,15}):([A-Za-z0-9_-]{16,128})$/.exec(token);
    if (!m) return 'unknown';
    const r = this.s.bot.get(Number(m[1])) as RawBot | undefined;
    if (!r) return 'unknown';
    const want = Buffer.from(r.token_hash, 'hex');
    const got = Buffer.from(hashSecret(m[2]!), 'hex');
    if (want.length !== got.length || !timingSafeEqual(want, got)) return 'unknown';
    if (r.revoked_at !== null) return 'revoked';
    return toBot(r);
  }

  bots(): BotRow[] {
    return (this.s.bots.all() as RawBot[]).map(toBot);
  }

  revoke(botId: number): boolean {
    return this.s.revoke.run(Date.now(), botId).changes > 0;
  }

  groupsOf(botId: number): string[] {
    return (this.s.groupsOf.all(botId) as { group_id: string }[]).map((r) => r.group_id);
  }

  /** The live bots of a group. */
  botsOf(groupId: string): number[] {
    return (this.s.botsOf.all(groupId) as { bot_id: number }[]).map((r) => r.bot_id);
  }

  /** Every group some live bot is in. */
  groups(): string[] {
    return (this.s.allGroups.all() as { group_id: string }[]).map((r) => r.group_id);
  }

  /** The group's chat id, made on first use. */
  chatOf(groupId: string): number {
    const r = this.s.chatOf.get(groupId) as { chat_id: number } | undefined;
    if (r) return r.chat_id;
    const min = (this.s.maxChat.get() as { m: number | null }).m;
    const chatId = min === null ? -(CHAT_BASE + 1) : min - 1;
    this.s.addChat.run(chatId, groupId);
    return chatId;
  }

  groupOfChat(chatId: number): string | undefined {
    return (this.s.groupOfChat.get(chatId) as { group_id: string } | undefined)?.group_id;
  }

  /** A RUM key's user id, made on first use. */
  userOf(pubkey: string): number {
    const r = this.s.userOf.get(pubkey) as { user_id: number } | undefined;
    if (r) return r.user_id;
    return Number(this.s.addUser.run(pubkey).lastInsertRowid);
  }

  /** The message id of a trx in a chat, made (the chat's next) on first use. */
  messageOf(chatId: number, trxId: string): number {
    const r = this.s.messageOf.get(chatId, trxId) as { message_id: number } | undefined;
    if (r) return r.message_id;
    const max = (this.s.maxMessage.get(chatId) as { m: number | null }).m ?? 0;
    this.s.addMessage.run(chatId, max + 1, trxId);
    return max + 1;
  }

  /** The message id of a trx, if it has one. */
  knownMessage(chatId: number, trxId: string): number | undefined {
    return (this.s.messageOf.get(chatId, trxId) as { message_id: number } | undefined)?.message_id;
  }

  trxOfMessage(chatId: number, messageId: number): string | undefined {
    return (this.s.trxOfMessage.get(chatId, messageId) as { trx_id: string } | undefined)?.trx_id;
  }

  /** Appends to a bot's log; answers the update id given. */
  appendUpdate(
    botId: number,
    u: { kind: string; groupId: string; trxId: string; payload: Record<string, unknown> },
  ): number {
    const max = (this.s.maxUpdate.get(botId) as { m: number | null }).m;
    // A log that was pruned empty continues after the bot's confirmed offset.
    const next = Math.max(max ?? 0, this.bot(botId)?.acked ?? 0) + 1;
    this.s.addUpdate.run(
      botId,
      next,
      u.kind,
      u.groupId,
      u.trxId,
      JSON.stringify(u.payload),
      Date.now(),
    );
    return next;
  }

  updatesAfter(botId: number, after: number, limit: number): StoredUpdate[] {
    return (this.s.updatesAfter.all(botId, after, limit) as RawUpdate[]).map(toUpdate);
  }

  update(botId: number, updateId: number): StoredUpdate | undefined {
    const r = this.s.update.get(botId, updateId) as RawUpdate | undefined;
    return r ? toUpdate(r) : undefined;
  }

  /** Whether a trx is in the bot's log already. */
  hasUpdateFor(botId: number, trxId: string): boolean {
    return this.s.hasUpdateFor.get(botId, trxId) !== undefined;
  }

  lastUpdateId(botId: number): number {
    return (this.s.maxUpdate.get(botId) as { m: number | null }).m ?? 0;
  }

  pendingCount(botId: number, after: number): number {
    return (this.s.pendingCount.get(botId, after) as { n: number }).n;
  }

  ack(botId: number, upTo: number): void {
    this.s.setAcked.run(upTo, botId);
  }

  setWebhook(botId: number, w: BotWebhook | null): void {
    this.s.setWebhook.run(
      w?.url ?? null,
      w?.kind ?? null,
      w?.secret ?? null,
      w?.maxConnections ?? null,
      botId,
    );
  }

  setAllowedUpdates(botId: number, allowed: string[] | null): void {
    this.s.setAllowed.run(allowed ? JSON.stringify(allowed) : null, botId);
  }

  disableWebhook(botId: number, why: string): void {
    this.s.disableWebhook.run(why, botId);
  }

  recordError(botId: number, message: string): void {
    this.s.setError.run(Math.floor(Date.now() / 1000), message.slice(0, 500), botId);
  }

  sent(
    botId: number,
    key: string,
  ):
    | { trxId: string | null; response: unknown; request: string | null; createdAt: number }
    | undefined {
    const r = this.s.send.get(botId, key) as
      | { trx_id: string | null; response: string; request: string | null; created_at: number }
      | undefined;
    return r
      ? {
          trxId: r.trx_id,
          response: JSON.parse(r.response) as unknown,
          request: r.request,
          createdAt: r.created_at,
        }
      : undefined;
  }

  /** Whether a trx is one the bot sent (within the send records' retention). */
  sentTrx(botId: number, trxId: string): boolean {
    return this.s.sentTrx.get(botId, trxId) !== undefined;
  }

  /**
   * Records a send's answer under its key, with the hash of the request that made it (null for
   * a record that no request's key names: a chat's last reaction).
   */
  recordSend(
    botId: number,
    key: string,
    trxId: string | null,
    response: unknown,
    request: string | null,
  ): void {
    this.s.addSend.run(botId, key, trxId, JSON.stringify(response), request, Date.now());
  }

  /**
   * Turns a bot's Redis streams on or off. Turned on, they start after what the bot confirmed
   * by getUpdates (or where they stopped, when that is further).
   */
  setRedis(botId: number, enabled: boolean): void {
    this.s.setRedis.run(enabled ? 1 : 0, botId);
  }

  /** Records that the bot's updates up to `upTo` are in its Redis stream. */
  setRedisPushed(botId: number, upTo: number): void {
    this.s.setRedisPushed.run(upTo, botId);
  }

  /** The live bots whose updates go to Redis streams. */
  redisBots(): BotRow[] {
    return (this.s.redisBots.all() as RawBot[]).map(toBot);
  }

  /** Opens the outcome of a trx the bot sent (a repeat of the same trx changes nothing). */
  addOutcome(botId: number, trxId: string, groupId: string, sentAt: number, expiresAt: number) {
    this.s.addOutcome.run(botId, trxId, groupId, sentAt, expiresAt);
  }

  outcome(botId: number, trxId: string): Outcome | undefined {
    const r = this.s.outcome.get(botId, trxId) as RawOutcome | undefined;
    return r ? toOutcome(r) : undefined;
  }

  /** Open outcomes, oldest send first. */
  openOutcomes(limit: number): Outcome[] {
    return (this.s.openOutcomes.all(limit) as RawOutcome[]).map(toOutcome);
  }

  /** Settles an open outcome; answers false when it was settled already (or is unknown). */
  settleOutcome(
    botId: number,
    trxId: string,
    status: 'committed' | 'failed',
    reason: string | null,
  ): boolean {
    return this.s.settleOutcome.run(Date.now(), status, reason, botId, trxId).changes > 0;
  }

  /**
   * Deletes log entries, and send records and settled outcomes older than their retention;
   * answers how many.
   */
  prune(retentionMs: number, sendsMs: number, now = Date.now()): number {
    return (
      this.s.pruneUpdates.run(now - retentionMs).changes +
      this.s.pruneSends.run(now - sendsMs).changes +
      this.s.pruneOutcomes.run(now - sendsMs).changes
    );
  }

  transaction<T>(fn: () => T): T {
    return this.c.transaction(fn)();
  }
}

/** A bot_updates row as SQLite gives it. */
export interface RawUpdate {
  update_id: number;
  kind: string;
  group_id: string;
  trx_id: string;
  payload: string;
  created_at: number;
}

export function toUpdate(r: RawUpdate): StoredUpdate {
  return {
    updateId: r.update_id,
    kind: r.kind,
    groupId: r.group_id,
    trxId: r.trx_id,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    createdAt: r.created_at,
  };
}
