/**
 * The Telegram Bot API subset at `<gateway>/bot<token>/<method>`: a bot written for Telegram
 * (grammY, Telegraf, node-telegram-bot-api, python-telegram-bot) runs against RUM groups with
 * its API root pointed here. Parameters come as Telegram takes them: query string, JSON,
 * form-urlencoded or multipart (values of forms are text: numbers and JSON as text). Answers are
 * `{"ok":true,"result":…}` or `{"ok":false,"error_code":…,"description":…}`, with
 * `parameters.retry_after` on 429.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BridgeRefusedError } from '../port.ts';
import { type BotGateway, SEND_RESULT, botAuthor, sendId, usernameOf } from './gateway.ts';
import type { BotRow, BotScope } from './store.ts';
import { type TgMessage, UPDATE_KINDS, secondsOf, textPayload } from './telegram.ts';

/** Telegram's error: the HTTP status is the error_code. */
export class TgError extends Error {
  readonly code: number;
  readonly retryAfter: number | undefined;
  constructor(code: number, description: string, retryAfter?: number) {
    super(description);
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const bad = (what: string) => new TgError(400, `Bad Request: ${what}`);

/** An Idempotency-Key (or a Redis request's ref) used again for another request. */
const reused = () =>
  new TgError(
    422,
    'Unprocessable Entity: this Idempotency-Key was used for another request (method or parameters); use a new key',
  );

const MAX_PARAMS = 64;
const MAX_PARAM_CHARS = 64 * 1024;
const MAX_IDEMPOTENCY_KEY = 200;
/** The longest long poll, in seconds (Telegram's own cap is 50). */
const MAX_POLL_S = 50;

/** A request's parameters, read as Telegram reads them. */
class Params {
  private readonly raw: Record<string, unknown>;
  constructor(raw: Record<string, unknown>) {
    this.raw = raw;
  }
  has(name: string): boolean {
    const v = this.raw[name];
    return v !== undefined && v !== null && v !== '';
  }
  str(name: string, required = false): string | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === '') {
      if (required) throw bad(`${name} is empty`);
      return undefined;
    }
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw bad(`${name} must be a string`);
  }
  int(name: string, required = false): number | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === '') {
      if (required) throw bad(`${name} is empty`);
      return undefined;
    }
    const n =
      typeof v === 'number' ? v : typeof v === 'string' && /^-?\d{1,16}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw bad(`${name} must be an integer`);
    return n;
  }
  bool(name: string): boolean {
    const v = this.raw[name];
    return v === true || v === 'true' || v === '1' || v === 1;
  }
  /** A JSON-serialized parameter (an object or array), given as JSON or as its text. */
  json(name: string): unknown {
    const v = this.raw[name];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v);
    } catch {
      throw bad(`can't parse ${name} JSON object`);
    }
  }
  /**
   * The parameters as one canonical text (for the retry key): text as is, anything else (an
   * object given as JSON: reply_parameters, reaction) as its JSON.
   */
  canonical(): string {
    return JSON.stringify(
      Object.keys(this.raw)
        .sort()
        .map((k) => {
          const v = this.raw[k];
          return [k, typeof v === 'string' ? v : JSON.stringify(v)];
        }),
    );
  }
}

/** What a call knows of its caller, besides the bot and the parameters. */
export interface CallContext {
  /**
   * The caller's own idempotency key, prefixed by where it came from (`k:` an Idempotency-Key
   * header, `s:` a Redis request's ref): a send under a key it was made with before answers
   * what it answered then, and posts nothing.
   */
  key?: string;
  /** Aborted when the caller went away (its long poll ends). */
  signal?: AbortSignal;
}

type Handler = (bot: BotRow, p: Params, ctx: CallContext) => Promise<unknown> | unknown;

/** Mounts the Bot API on the gateway; answers it, for the other ways in (Redis streams). */
export async function mountBotApi(app: FastifyInstance, gw: BotGateway): Promise<BotApi> {
  const api = new BotApi(gw);
  await app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_req, body, done) => {
        try {
          const params = new URLSearchParams(body as string);
          done(null, Object.fromEntries(params));
        } catch (err) {
          done(err as Error, undefined);
        }
      },
    );
    scope.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (req, body, done) => {
      const type = String(req.headers['content-type']);
      new Response(body as Buffer, { headers: { 'content-type': type } })
        .formData()
        .then((form) => {
          const out: Record<string, unknown> = {};
          for (const [k, v] of form.entries()) {
            if (typeof v !== 'string') {
              done(new TgError(400, 'Bad Request: files are not supported here'), undefined);
              return;
            }
            out[k] = v;
          }
          done(null, out);
        })
        .catch(() => done(new TgError(400, 'Bad Request: bad multipart body'), undefined));
    });
    scope.setErrorHandler((err, _req, reply) => {
      if (err instanceof TgError) return api.fail(reply, err);
      const e = err as { statusCode?: number; message: string };
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
        return api.fail(reply, new TgError(e.statusCode, `Bad Request: ${e.message}`));
      }
      gw.bridgePort.log.error({ err }, 'bots: request failed');
      return api.fail(reply, new TgError(500, 'Internal Server Error'));
    });
    const route = (req: FastifyRequest, reply: FastifyReply) => api.handle(req, reply);
    scope.route({
      method: ['GET', 'POST'],
      url: '/bot:token/:method',
      handler: route,
      // Per bot, not per address: many bots of one host share it. A bot's posts have their
      // own limits on top (rate.ts).
      config: {
        rateLimit: {
          max: gw.config.limits.botRequestsPerMinute,
          timeWindow: 60_000,
          keyGenerator: (req: FastifyRequest) =>
            `bot:${String((req.params as { token?: string }).token ?? '').split(':')[0]}`,
          errorResponseBuilder: (_req: FastifyRequest, ctx: { ttl: number }) => {
            const s = Math.max(1, Math.ceil(ctx.ttl / 1000));
            return new TgError(429, `Too Many Requests: retry after ${s}`, s);
          },
        },
      },
    });
  });
  return api;
}

/**
 * The Bot API's methods, called by the HTTP route (`handle`) and by the Redis request streams
 * (redis.ts) alike (`call`).
 */
export class BotApi {
  private readonly gw: BotGateway;
  private readonly methods: Map<string, { scope: BotScope | null; run: Handler }>;
  /** The running long poll of each bot (a newer one ends it with 409). */
  private readonly polls = new Map<number, AbortController>();
  /** Sends in flight by key: a retry waits for the first and gets its answer. */
  private readonly sending = new Map<string, { work: Promise<unknown>; request: string }>();

  constructor(gw: BotGateway) {
    this.gw = gw;
    const m: [string, BotScope | null, Handler][] = [
      ['getMe', null, (bot) => this.getMe(bot)],
      ['getUpdates', 'read', (bot, p, ctx) => this.getUpdates(bot, p, ctx)],
      ['setWebhook', 'read', (bot, p) => this.setWebhook(bot, p)],
      ['deleteWebhook', 'read', (bot, p) => this.deleteWebhook(bot, p)],
      ['getWebhookInfo', 'read', (bot) => this.webhookInfo(bot)],
      ['getChat', 'read', (bot, p) => this.getChat(bot, p)],
      ['close', null, () => true],
      ['logOut', null, () => true],
    ];
    // Sends: each run once per key (idempotent), checked and rate-limited first.
    type Prepare = () => Promise<
      (key: string) => Promise<{ result: unknown; trxId: string | null }>
    >;
    const sends: [string, (bot: BotRow, p: Params) => ReturnType<Prepare>][] = [
      ['sendMessage', (bot, p) => this.sendMessage(bot, p)],
      ['editMessageText', (bot, p) => this.editMessageText(bot, p)],
      ['deleteMessage', (bot, p) => this.deleteMessage(bot, p)],
      ['setMessageReaction', (bot, p) => this.setMessageReaction(bot, p)],
    ];
    for (const [name, prepare] of sends) {
      m.push([
        name,
        'post',
        (bot, p, ctx) => this.idempotent(bot, name, p, ctx, () => prepare(bot, p)),
      ]);
    }
    this.methods = new Map(m.map(([name, scope, run]) => [name.toLowerCase(), { scope, run }]));
  }

  fail(reply: FastifyReply, err: TgError): FastifyReply {
    return reply.code(err.code).send({
      ok: false,
      error_code: err.code,
      description: err.message,
      ...(err.retryAfter !== undefined ? { parameters: { retry_after: err.retryAfter } } : {}),
    });
  }

  async handle(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const { token, method } = req.params as { token: string; method: string };
    const found = this.gw.store.authenticate(token);
    if (found === 'unknown' || found === 'revoked') {
      return this.fail(reply, new TgError(401, 'Unauthorized'));
    }
    const raw: Record<string, unknown> = { ...(req.query as Record<string, unknown>) };
    const body = req.body;
    if (body !== undefined && body !== null && body !== '') {
      if (typeof body !== 'object' || Array.isArray(body)) {
        return this.fail(reply, bad('the parameters must be an object'));
      }
      Object.assign(raw, body);
    }
    const header = req.headers['idempotency-key'];
    const given = Array.isArray(header) ? header[0] : header;
    if (given !== undefined && (given.length === 0 || given.length > MAX_IDEMPOTENCY_KEY)) {
      return this.fail(
        reply,
        bad(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`),
      );
    }
    // The client went away (its connection closed before the answer).
    const gone = new AbortController();
    const abort = () => gone.abort();
    reply.raw.once('close', abort);
    try {
      const result = await this.call(found, method, raw, {
        ...(given ? { key: `k:${given}` } : {}),
        signal: gone.signal,
      });
      return reply.send({ ok: true, result });
    } finally {
      reply.raw.off('close', abort);
    }
  }

  /**
   * Runs a method for an authenticated bot with its parameters (as Telegram takes them: text,
   * numbers, JSON-serialized objects); answers its result or throws TgError.
   */
  async call(
    bot: BotRow,
    method: string,
    raw: Record<string, unknown>,
    ctx: CallContext = {},
  ): Promise<unknown> {
    const entry = this.methods.get(method.toLowerCase());
    if (!entry) throw new TgError(404, 'Not Found: method not found');
    if (entry.scope && !bot.scopes.includes(entry.scope)) {
      throw new TgError(403, `Forbidden: this bot has no "${entry.scope}" scope`);
    }
    const names = Object.keys(raw);
    if (names.length > MAX_PARAMS) throw bad('too many parameters');
    for (const k of names) {
      const v = raw[k];
      if (typeof v === 'string' && v.length > MAX_PARAM_CHARS) throw bad(`${k} is too long`);
    }
    return entry.run(bot, new Params(raw), ctx);
  }

  // ---- the bot and its chats ----

  private getMe(bot: BotRow) {
    return {
      ...this.gw.botUser(bot),
      username: usernameOf(bot.name),
      can_join_groups: true,
      can_read_all_group_messages: true,
      supports_inline_queries: false,
      can_connect_to_business: false,
      has_main_web_app: false,
    };
  }

  /** The group of a chat_id the bot is in. */
  private groupOf(bot: BotRow, p: Params): string {
    const v = p.str('chat_id', true)!;
    const id = /^-?\d{1,16}$/.test(v) ? Number(v) : NaN;
    const groupId = Number.isSafeInteger(id) ? this.gw.store.groupOfChat(id) : undefined;
    if (!groupId || !this.gw.store.groupsOf(bot.botId).includes(groupId)) {
      throw bad('chat not found');
    }
    if (!this.gw.exposed(groupId)) {
      throw new TgError(403, 'Forbidden: the group is not open to bots now');
    }
    return groupId;
  }

  private getChat(bot: BotRow, p: Params) {
    const groupId = this.groupOf(bot, p);
    const g = this.gw.bridgePort.exposure(groupId)!;
    const about = g.appConfig.about ?? g.appConfig.description;
    return {
      ...this.gw.chat(groupId),
      ...(about ? { description: about } : {}),
      accent_color_id: 0,
      max_reaction_count: 1,
      available_reactions: [
        { type: 'emoji', emoji: '👍' },
        { type: 'emoji', emoji: '👎' },
      ],
    };
  }

  // ---- updates ----

  private async getUpdates(bot: BotRow, p: Params, ctx: CallContext) {
    if (bot.webhook && !bot.webhookDisabled) {
      throw new TgError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      );
    }
    const store = this.gw.store;
    const offset = p.int('offset') ?? 0;
    const limit = Math.min(100, Math.max(1, p.int('limit') ?? 100));
    const cap = Math.max(0, Math.floor(this.gw.config.limits.gatewayRequestTimeoutMs / 1000) - 2);
    const timeout = Math.min(MAX_POLL_S, cap, Math.max(0, p.int('timeout') ?? 0));
    const allowed = p.json('allowed_updates');
    if (allowed !== undefined) store.setAllowedUpdates(bot.botId, checkAllowed(allowed));
    if (offset > 0) store.ack(bot.botId, offset - 1);
    else if (offset < 0) store.ack(bot.botId, store.lastUpdateId(bot.botId) + offset);
    // One poll at a time per bot, as Telegram: a newer one ends the older with 409.
    this.polls.get(bot.botId)?.abort();
    const ac = new AbortController();
    this.polls.set(bot.botId, ac);
    const gone = () => ac.abort();
    ctx.signal?.addEventListener('abort', gone, { once: true });
    try {
      const deadline = Date.now() + timeout * 1000;
      for (;;) {
        // Read again each time: a bot revoked meanwhile (which wakes its polls) ends here.
        const now = store.bot(bot.botId);
        if (!now || now.revokedAt !== null) throw new TgError(401, 'Unauthorized');
        const rows = store.updatesAfter(bot.botId, now.acked, limit);
        if (rows.length > 0) {
          return rows.map((u) => ({ update_id: u.updateId, ...u.payload }));
        }
        const left = deadline - Date.now();
        if (left <= 0 || ac.signal.aborted) break;
        await this.gw.waitForUpdates(bot.botId, left, ac.signal);
        if (ac.signal.aborted) break;
      }
      if (ac.signal.aborted && this.polls.get(bot.botId) !== ac && !ctx.signal?.aborted) {
        throw new TgError(
          409,
          'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
        );
      }
      return [];
    } finally {
      ctx.signal?.removeEventListener('abort', gone);
      if (this.polls.get(bot.botId) === ac) this.polls.delete(bot.botId);
    }
  }

  private async setWebhook(bot: BotRow, p: Params) {
    const url = p.str('url');
    if (url === undefined) return this.deleteWebhook(bot, p);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw bad('bad webhook: invalid URL');
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw bad('bad webhook: an HTTPS URL must be provided for webhook');
    }
    try {
      await this.gw.bridgePort.checkUrl(parsed);
    } catch (err) {
      throw bad(`bad webhook: ${(err as Error).message}`);
    }
    const secret = p.str('secret_token');
    if (secret !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) {
      throw bad('secret token contains unallowed characters');
    }
    const max = p.int('max_connections') ?? 40;
    if (max < 1 || max > 100) throw bad('max_connections must be between 1 and 100');
    const allowed = p.json('allowed_updates');
    const store = this.gw.store;
    store.transaction(() => {
      store.setWebhook(bot.botId, {
        url: parsed.href,
        kind: 'telegram',
        secret: secret ?? null,
        maxConnections: max,
      });
      if (allowed !== undefined) store.setAllowedUpdates(bot.botId, checkAllowed(allowed));
      if (p.bool('drop_pending_updates')) store.ack(bot.botId, store.lastUpdateId(bot.botId));
    });
    this.polls.get(bot.botId)?.abort();
    this.gw.webhookChanged(bot.botId);
    return true;
  }

  private deleteWebhook(bot: BotRow, p: Params) {
    const store = this.gw.store;
    store.transaction(() => {
      store.setWebhook(bot.botId, null);
      if (p.bool('drop_pending_updates')) store.ack(bot.botId, store.lastUpdateId(bot.botId));
    });
    this.gw.webhookChanged(bot.botId);
    return true;
  }

  private webhookInfo(bot: BotRow) {
    const b = this.gw.store.bot(bot.botId)!;
    const w = b.webhook;
    return {
      url: w?.url ?? '',
      has_custom_certificate: false,
      pending_update_count: this.gw.store.pendingCount(b.botId, b.acked),
      ...(w ? { max_connections: w.maxConnections } : {}),
      ...(b.allowedUpdates ? { allowed_updates: b.allowedUpdates } : {}),
      ...(b.lastError
        ? { last_error_date: b.lastError.at, last_error_message: b.lastError.message }
        : {}),
    };
  }

  // ---- sending ----

  /**
   * Runs a send once per key: the caller's own (an Idempotency-Key header, a Redis request's
   * ref; kept a day at least), or else the request itself (method and parameters) within the
   * retry window. A repeat gets the first answer, and nothing is posted again. A key of the
   * caller's used again for another request (another method or other parameters) is refused
   * with 422, as the IETF Idempotency-Key draft asks: answering the first message would hide
   * that the second was never sent.
   */
  private async idempotent(
    bot: BotRow,
    method: string,
    p: Params,
    ctx: CallContext,
    prepare: () => Promise<(key: string) => Promise<{ result: unknown; trxId: string | null }>>,
  ): Promise<unknown> {
    const given = ctx.key;
    const request = createHash('sha256').update(`${method}\n${p.canonical()}`).digest('base64url');
    const key = given ?? `r:${request}`;
    const store = this.gw.store;
    const windowMs = given ? Number.POSITIVE_INFINITY : this.gw.config.limits.botRetryWindowMs;
    const flight = `${bot.botId}\n${key}`;
    const running = this.sending.get(flight);
    if (running) {
      if (running.request !== request) throw reused();
      return running.work;
    }
    const before = store.sent(bot.botId, key);
    if (before && Date.now() - before.createdAt <= windowMs) {
      if (before.request !== null && before.request !== request) throw reused();
      return before.response;
    }
    const work = (async () => {
      // Checked and rate-limited first; then posted under the key.
      const run = await prepare();
      // With a key of the bot's, the post's own id is that key: even a send cut off by a crash
      // before its answer was recorded is found again by the port, not posted twice.
      const { result, trxId } = await run(given ? key : `${key}:${randomUUID()}`);
      store.recordSend(bot.botId, key, trxId, result, request);
      return result;
    })();
    this.sending.set(flight, { work, request });
    try {
      return await work;
    } finally {
      this.sending.delete(flight);
    }
  }

  /**
   * Admits a post of the bot into a group: refuses it (403) when the group's rules do not let
   * the bot's key post (the owner put it on the deny list), then waits for the rate limits of
   * the bot and the group, or refuses with 429. A refused post takes nothing from the limits.
   */
  private async admit(bot: BotRow, groupId: string): Promise<void> {
    const port = this.gw.bridgePort;
    // A bot that never posted has no key yet, which no list can name.
    const key = port.authorKey('bots', botAuthor(bot.botId));
    const may = key ? port.mayPost(groupId, key) : ({ ok: true } as const);
    if (!may.ok) {
      throw new TgError(403, `Forbidden: the bot may not post in this chat: ${may.reason}`);
    }
    const l = this.gw.config.limits;
    const keys = [
      { key: `bot:${bot.botId}`, rate: l.botPostsPerSecond },
      { key: `group:${groupId}`, rate: l.botGroupPostsPerSecond },
    ];
    const wait = this.gw.buckets.take(keys, l.botMaxDelayMs);
    if (wait === null) {
      const s = this.gw.buckets.retryAfter(keys, l.botMaxDelayMs);
      throw new TgError(429, `Too Many Requests: retry after ${s}`, s);
    }
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /**
   * Posts for the bot, signed by its key; the trx expires after botSendTimeoutMs, and its
   * outcome (outcomes.ts) is open from now until it is committed or fails.
   */
  private async submit(bot: BotRow, groupId: string, key: string, object: Record<string, unknown>) {
    try {
      const r = await this.gw.bridgePort.submit({
        groupId,
        network: 'bots',
        externalId: sendId(bot.botId, key),
        author: botAuthor(bot.botId),
        object,
        ttlMs: this.gw.config.limits.botSendTimeoutMs,
      });
      this.gw.outcomes.opened(bot.botId, groupId, r.trxId);
      return r;
    } catch (err) {
      if (err instanceof BridgeRefusedError) {
        throw new TgError(
          err.status === 403 ? 403 : 400,
          `${err.status === 403 ? 'Forbidden' : 'Bad Request'}: ${err.message}`,
        );
      }
      throw err;
    }
  }

  private textOf(p: Params) {
    const text = p.str('text');
    if (text === undefined) throw bad('message text is empty');
    const r = textPayload(text, p.str('parse_mode'));
    if ('error' in r) throw bad(r.error);
    return r;
  }

  /** The trx of a message of the chat, or a 400 with `what`. */
  private trxOf(chatId: number, messageId: number | undefined, what: string): string {
    const trx = messageId === undefined ? undefined : this.gw.store.trxOfMessage(chatId, messageId);
    if (!trx) throw bad(what);
    return trx;
  }

  private async sendMessage(bot: BotRow, p: Params) {
    const groupId = this.groupOf(bot, p);
    const chat = this.gw.chat(groupId);
    const { content, html } = this.textOf(p);
    const rp = p.json('reply_parameters') as { message_id?: unknown } | undefined;
    const replyId =
      p.int('reply_to_message_id') ??
      (rp && typeof rp === 'object' && typeof rp.message_id === 'number'
        ? rp.message_id
        : undefined);
    let replyTrx: string | null = null;
    if (replyId !== undefined) {
      const t = this.gw.store.trxOfMessage(chat.id, replyId);
      if (t) replyTrx = t;
      else if (!p.bool('allow_sending_without_reply')) throw bad('message to be replied not found');
    }
    await this.admit(bot, groupId);
    const object: Record<string, unknown> = {
      type: 'Note',
      content,
      ...(html ? { mediaType: 'text/html' } : {}),
      ...(replyTrx ? { inReplyTo: { type: 'Note', id: replyTrx } } : {}),
    };
    return async (key: string) => {
      const r = await this.submit(bot, groupId, key, object);
      const message: TgMessage = {
        message_id: this.gw.store.messageOf(chat.id, r.trxId),
        from: this.gw.botUser(bot),
        chat,
        date: Math.floor(Date.now() / 1000),
        text: p.str('text')!,
      };
      if (replyTrx) {
        const parent = this.gw.bridgePort.item(groupId, replyTrx);
        if (parent) {
          message.reply_to_message = {
            message_id: replyId!,
            from: this.gw.user(groupId, parent.senderPubkey),
            chat,
            date: secondsOf(parent.timestamp),
          };
        }
      }
      return { result: message, trxId: r.trxId };
    };
  }

  /**
   * The message a request names (`chat_id`, `message_id`) when this bot sent it: its group,
   * chat, trx and committed item (undefined while pending), or a 400 with `what`.
   */
  private ownMessage(bot: BotRow, p: Params, what: string) {
    const groupId = this.groupOf(bot, p);
    const chat = this.gw.chat(groupId);
    const messageId = p.int('message_id', true)!;
    const trx = this.trxOf(chat.id, messageId, what);
    const item = this.gw.bridgePort.item(groupId, trx);
    const origin = item ? item.origin : null;
    const own = item
      ? origin?.network === 'bots' && origin.externalId.startsWith(`${bot.botId}:`)
      : this.gw.store.sentTrx(bot.botId, trx);
    if (!own) throw bad(what.replace('not found', "can't be changed: it is not the bot's"));
    return { groupId, chat, messageId, trx, item };
  }

  private async editMessageText(bot: BotRow, p: Params) {
    const { groupId, chat, messageId, trx, item } = this.ownMessage(
      bot,
      p,
      'message to edit not found',
    );
    const { content, html } = this.textOf(p);
    await this.admit(bot, groupId);
    const object = {
      type: 'Update',
      object: { type: 'Note', id: trx, content, ...(html ? { mediaType: 'text/html' } : {}) },
    };
    return async (key: string) => {
      const r = await this.submit(bot, groupId, key, object);
      const message: TgMessage = {
        message_id: messageId,
        from: this.gw.botUser(bot),
        chat,
        date: item ? secondsOf(item.timestamp) : Math.floor(Date.now() / 1000),
        edit_date: Math.floor(Date.now() / 1000),
        text: p.str('text')!,
      };
      return { result: message, trxId: r.trxId };
    };
  }

  private async deleteMessage(bot: BotRow, p: Params) {
    const { groupId, trx, item } = this.ownMessage(bot, p, 'message to delete not found');
    // The node deletes only committed posts: the bot's own message sent a moment ago may not be
    // committed yet, and is waited for (within the request's time).
    const waitMs = Math.max(0, this.gw.config.limits.gatewayRequestTimeoutMs - 2000);
    if (!item && !(await this.gw.committedItem(groupId, trx, waitMs))) {
      throw bad("message can't be deleted: it is not committed yet");
    }
    await this.admit(bot, groupId);
    return async (key: string) => {
      const r = await this.submit(bot, groupId, key, {
        type: 'Delete',
        object: { type: 'Note', id: trx },
      });
      return { result: true, trxId: r.trxId };
    };
  }

  /**
   * A reaction is a RUM Like (👎: a Dislike); an empty list takes back the bot's last reaction
   * to the message (an Undo of it).
   */
  private async setMessageReaction(bot: BotRow, p: Params) {
    const groupId = this.groupOf(bot, p);
    const chat = this.gw.chat(groupId);
    const messageId = p.int('message_id', true)!;
    const trx = this.trxOf(chat.id, messageId, 'message to react not found');
    const list = p.json('reaction') ?? [];
    if (!Array.isArray(list) || list.length > 1) {
      throw bad('reaction must be a list of at most one reaction');
    }
    const r0 = list[0] as { type?: unknown; emoji?: unknown } | undefined;
    if (r0 && (r0.type !== 'emoji' || typeof r0.emoji !== 'string' || r0.emoji.length > 16)) {
      throw bad('REACTION_INVALID');
    }
    const mark = `reaction:${chat.id}:${messageId}`;
    let object: Record<string, unknown>;
    if (r0) {
      const type = r0.emoji === '👎' ? 'Dislike' : 'Like';
      object = { type, object: { type: 'Note', id: trx } };
    } else {
      const last = this.gw.store.sent(bot.botId, mark);
      if (!last?.trxId) return async () => ({ result: true, trxId: null });
      const was = (last.response as { type?: string } | null)?.type ?? 'Like';
      object = { type: 'Undo', object: { type: was, id: last.trxId } };
    }
    await this.admit(bot, groupId);
    return async (key: string) => {
      const r = await this.submit(bot, groupId, key, object);
      if (r0) this.gw.store.recordSend(bot.botId, mark, r.trxId, { type: object.type }, null);
      else this.gw.store.recordSend(bot.botId, mark, null, null, null);
      return { result: true, trxId: r.trxId };
    };
  }
}

/** allowed_updates: a JSON array of update kinds (an empty one means Telegram's default). */
function checkAllowed(v: unknown): string[] | null {
  const known = new Set<string>([
    ...UPDATE_KINDS,
    SEND_RESULT,
    'channel_post',
    'callback_query',
    'inline_query',
    'chat_member',
    'my_chat_member',
    'message_reaction_count',
    'edited_channel_post',
    'poll',
    'poll_answer',
    'chat_join_request',
  ]);
  if (
    !Array.isArray(v) ||
    v.length > 30 ||
    !v.every((x) => typeof x === 'string' && known.has(x))
  ) {
    throw bad("can't parse allowed_updates: a JSON array of update types");
  }
  return v.length === 0 ? null : (v as string[]);
}
