/**
 * Redis streams for bots on the same host (issue 11, part 5): rmb-peer's local Redis API, with
 * acknowledgements. The node needs a Redis (`--redisurl`), and the operator turns the mode on
 * per bot (`PUT /api/v1/bots/{bot_id}/redis {"enabled":true}` on the admin API). Whoever can
 * reach that Redis can read the bot's updates and act as the bot: give it Redis only on this
 * host (a unix socket, a loopback bind, an ACL user per bot).
 *
 * Keys, with `<p>` the node's `botStreamPrefix` (default `rum:bot`):
 *
 * - `<p>:<bot_id>:updates`: every update of the bot's log, in order, each once. Entry id
 *   `<update_id>-0`; fields `update_id`, `kind` (`message`, `edited_message`, …,
 *   `rum_send_result`), `group_id`, `trx_id` and `update` (the Telegram update as JSON,
 *   update_id included). The gateway adds from a durable cursor (bots.redis_pushed) that moves
 *   only after Redis took the entries; an entry added again (a crash before the cursor moved)
 *   is refused by Redis as not above the stream's top, so nothing comes twice, and a Redis
 *   outage only delays. The gateway makes the consumer group `bot` (from the stream's start):
 *   a bot reads with `XREADGROUP GROUP bot <consumer> COUNT n BLOCK ms STREAMS <key> >`,
 *   XACKs what it handled, and takes over what a dead consumer read and never acked with
 *   `XAUTOCLAIM <key> bot <consumer> <min-idle-ms> 0-0`: at least once, an entry handled twice
 *   only when a consumer dies between its work and its XACK. Trimmed at `botStreamMaxLen`
 *   (MAXLEN ~), read or not.
 * - `<p>:<bot_id>:requests`: the bot's calls, XADDed with fields `ref` (1 to 200 characters,
 *   the bot's own id of the call), `method` (a Bot API method: sendMessage, editMessageText,
 *   deleteMessage, setMessageReaction, getMe, getChat, …; not getUpdates), `params` (a JSON
 *   object, as the HTTP API takes them) and optionally `reply_to` (a key under
 *   `<p>:<bot_id>:`). The gateway reads them in its own consumer group `rum-gateway` (consumer
 *   `gateway`), runs them as the HTTP API does (api.ts `call`), answers, and only then XACKs;
 *   after a crash it reads its unacknowledged requests again. A send's ref is its idempotency
 *   key: a request read again, or sent again with the same ref, gets the first answer and
 *   posts nothing more (kept as long as the node keeps send records, a day at least).
 * - `<p>:<bot_id>:replies` (or the request's `reply_to`): the answers, fields `ref`,
 *   `request_id` (the request's entry id), `ok` (`true` or `false`), and `result` (JSON) or
 *   `error_code`, `description` and, on 429, `retry_after` (seconds). A reply may come twice
 *   (the node died between answering and acking); the same ref has the same answer.
 *
 * A send's answer says it was admitted; whether it was committed comes later in the updates
 * stream as a `rum_send_result` (outcomes.ts), on by default for a bot on Redis streams.
 */
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { type BotApi, TgError } from './api.ts';
import type { BotGateway } from './gateway.ts';
import type { BotRow } from './store.ts';

/** The consumer group the gateway makes on a bot's updates stream, for the bot. */
export const BOT_GROUP = 'bot';
/** The gateway's consumer group and consumer on the request streams. */
export const GATEWAY_GROUP = 'rum-gateway';
const GATEWAY_CONSUMER = 'gateway';

/** Updates added to a stream per round trip. */
const PUSH_BATCH = 200;
/** Requests read per stream per read, and how long a read waits for one. */
const READ_COUNT = 64;
const BLOCK_MS = 1000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 10_000;
/** A Redis that stays unreachable is logged again at most this often. */
const WARN_EVERY_MS = 30_000;

const MAX_REF = 200;
/** Redis's refusal of an entry id not above the stream's top: the entry is there already. */
const ADDED_BEFORE = /equal or smaller than the target stream top/i;

export interface StreamKeys {
  updates: string;
  requests: string;
  replies: string;
}

export function streamKeys(prefix: string, botId: number): StreamKeys {
  const base = `${prefix}:${botId}`;
  return { updates: `${base}:updates`, requests: `${base}:requests`, replies: `${base}:replies` };
}

export interface BotStreamsInit {
  redisUrl: string;
  /** Key prefix (`botStreamPrefix`). */
  prefix: string;
  /** MAXLEN ~ of the updates and reply streams. */
  maxLen: number;
}

type Entry = [id: string, fields: string[] | null];

export class BotStreams {
  private readonly gw: BotGateway;
  private readonly api: BotApi;
  private readonly init: BotStreamsInit;
  private cmd: Redis | null = null;
  /** The connection the request reads block on. */
  private blocking: Redis | null = null;
  private stopped = true;
  private readonly pushing = new Map<number, Promise<void>>();
  private readonly again = new Set<number>();
  /** Consumer groups known to exist (`key group`), forgotten on a reconnect or an error. */
  private readonly groupsMade = new Set<string>();
  /** Bots whose unacknowledged requests were read again since the reader (re)connected. */
  private readonly recovered = new Set<number>();
  private reader: Promise<void> | null = null;
  private wakeReader: (() => void) | null = null;
  private unsubscribe: (() => void) | null = null;
  private lastWarn = 0;

  constructor(gw: BotGateway, api: BotApi, init: BotStreamsInit) {
    this.gw = gw;
    this.api = api;
    this.init = init;
  }

  keys(botId: number): StreamKeys {
    return streamKeys(this.init.prefix, botId);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const open = (name: string) => {
      const r = new Redis(this.init.redisUrl, {
        // Commands wait through an outage and go once Redis is back.
        maxRetriesPerRequest: null,
        connectionName: `rum-bots-${name}`,
      });
      r.on('error', (err: Error) => this.problem(err, `redis (${name})`));
      return r;
    };
    this.cmd = open('cmd');
    this.blocking = open('read');
    this.cmd.on('ready', () => {
      this.groupsMade.clear();
      for (const b of this.gw.store.redisBots()) this.kick(b.botId);
    });
    this.blocking.on('ready', () => this.recovered.clear());
    this.unsubscribe = this.gw.onUpdates((bot) => {
      if (bot.redisStreams) this.kick(bot.botId);
    });
    for (const b of this.gw.store.redisBots()) this.kick(b.botId);
    this.reader = this.readLoop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.wakeReader?.();
    // Commands under way are cut off: an update added but not recorded is refused as a
    // duplicate next time, a request answered but not acked is read (and answered) again.
    this.blocking?.disconnect();
    this.cmd?.disconnect();
    await Promise.allSettled([this.reader, ...this.pushing.values()]);
    this.reader = null;
    this.cmd = null;
    this.blocking = null;
  }

  /** Turns a bot's streams on or off (the admin API). */
  setEnabled(botId: number, enabled: boolean): void {
    this.gw.store.setRedis(botId, enabled);
    if (enabled) this.kick(botId);
    this.wakeReader?.();
  }

  // ---- updates: the bot's log → its updates stream ----

  /** Pushes what the bot's stream lacks; one push at a time per bot. */
  private kick(botId: number): void {
    if (this.stopped) return;
    if (this.pushing.has(botId)) {
      this.again.add(botId);
      return;
    }
    const run = this.push(botId).finally(() => {
      this.pushing.delete(botId);
      if (this.again.delete(botId)) this.kick(botId);
    });
    this.pushing.set(botId, run);
  }

  private async push(botId: number): Promise<void> {
    const store = this.gw.store;
    const key = this.keys(botId).updates;
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      try {
        const bot = store.bot(botId);
        if (!bot || bot.revokedAt !== null || !bot.redisStreams) return;
        // Made before the first update, so the bot may start reading at once.
        await this.ensureGroup(key, BOT_GROUP);
        const rows = store.updatesAfter(botId, bot.redisPushed, PUSH_BATCH);
        if (rows.length === 0) return;
        const pipe = this.redis().pipeline();
        for (const u of rows) {
          pipe.xadd(
            key,
            'MAXLEN',
            '~',
            this.init.maxLen,
            `${u.updateId}-0`,
            'update_id',
            String(u.updateId),
            'kind',
            u.kind,
            'group_id',
            u.groupId,
            'trx_id',
            u.trxId,
            'update',
            JSON.stringify({ update_id: u.updateId, ...u.payload }),
          );
        }
        const results = (await pipe.exec()) ?? [];
        // In order: the cursor moves up to the first entry Redis did not take.
        let done = 0;
        let failed: Error | null = null;
        for (const [i, [err]] of results.entries()) {
          if (err && !ADDED_BEFORE.test(err.message)) {
            failed = err;
            break;
          }
          done = rows[i]!.updateId;
        }
        if (done > 0) store.setRedisPushed(botId, done);
        if (failed) throw failed;
        delay = RETRY_MIN_MS;
      } catch (err) {
        if (this.stopped) return;
        this.problem(err as Error, `pushing bot ${botId}'s updates`);
        await sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  // ---- requests: the bots' request streams → the Bot API → their reply streams ----

  private async readLoop(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      try {
        const bots = this.gw.store.redisBots();
        if (bots.length === 0) {
          await this.idle(BLOCK_MS);
          continue;
        }
        const keyOf = new Map<string, BotRow>();
        for (const b of bots) {
          const key = this.keys(b.botId).requests;
          keyOf.set(key, b);
          await this.ensureGroup(key, GATEWAY_GROUP);
        }
        // Requests read before a crash or a lost connection and never acked: run again (a
        // send's ref keeps it from posting twice).
        for (const [key, b] of keyOf) {
          if (this.recovered.has(b.botId)) continue;
          let from = '0';
          for (;;) {
            const got = await this.read([key], from, null);
            const entries = got.get(key) ?? [];
            if (entries.length === 0) break;
            await this.handle(b, entries);
            from = entries[entries.length - 1]![0];
          }
          this.recovered.add(b.botId);
        }
        const got = await this.read([...keyOf.keys()], '>', BLOCK_MS);
        if (this.stopped) return;
        await Promise.all([...got].map(([key, entries]) => this.handle(keyOf.get(key)!, entries)));
        delay = RETRY_MIN_MS;
      } catch (err) {
        if (this.stopped) return;
        this.problem(err as Error, 'reading bot requests');
        this.groupsMade.clear();
        this.recovered.clear();
        await this.idle(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** XREADGROUP for the gateway: entries by stream key. */
  private async read(keys: string[], id: string, blockMs: number | null) {
    const r = this.blocking;
    if (!r) throw new Error('bot streams are stopped');
    const args: (string | number)[] = ['GROUP', GATEWAY_GROUP, GATEWAY_CONSUMER];
    args.push('COUNT', READ_COUNT);
    if (blockMs !== null) args.push('BLOCK', blockMs);
    args.push('STREAMS', ...keys, ...keys.map(() => id));
    return streamsOf(await r.call('XREADGROUP', ...args));
  }

  /** Runs a bot's requests in order, each answered, then acked. */
  private async handle(bot: BotRow, entries: Entry[]): Promise<void> {
    const keys = this.keys(bot.botId);
    for (const [id, fields] of entries) {
      if (fields) {
        const { replyTo, reply } = await this.answer(bot.botId, id, fieldsOf(fields));
        await this.redis().xadd(replyTo, 'MAXLEN', '~', this.init.maxLen, '*', ...reply);
      }
      // An entry trimmed away before it was read again has no fields: nothing to answer.
      await this.redis().xack(keys.requests, GATEWAY_GROUP, id);
    }
  }

  /** A request's reply: where it goes and its fields. */
  private async answer(
    botId: number,
    id: string,
    f: Map<string, string>,
  ): Promise<{ replyTo: string; reply: string[] }> {
    const keys = this.keys(botId);
    const ref = (f.get('ref') ?? '').slice(0, MAX_REF);
    let replyTo = keys.replies;
    const head = ['ref', ref, 'request_id', id];
    const fail = (err: TgError) => ({
      replyTo,
      reply: [
        ...head,
        'ok',
        'false',
        'error_code',
        String(err.code),
        'description',
        err.message,
        ...(err.retryAfter !== undefined ? ['retry_after', String(err.retryAfter)] : []),
      ],
    });
    const given = f.get('reply_to');
    if (given !== undefined) {
      if (!given.startsWith(`${this.init.prefix}:${botId}:`) || !/^[\w:.-]{1,300}$/.test(given)) {
        return fail(
          new TgError(
            400,
            `Bad Request: reply_to must be a key under ${this.init.prefix}:${botId}:`,
          ),
        );
      }
      replyTo = given;
    }
    const fullRef = f.get('ref') ?? '';
    if (fullRef.length === 0 || fullRef.length > MAX_REF) {
      return fail(new TgError(400, `Bad Request: ref must be 1 to ${MAX_REF} characters`));
    }
    const method = f.get('method') ?? '';
    if (!/^[A-Za-z]{1,64}$/.test(method)) {
      return fail(new TgError(400, 'Bad Request: method is empty'));
    }
    if (method.toLowerCase() === 'getupdates') {
      return fail(new TgError(400, `Bad Request: read updates from the stream ${keys.updates}`));
    }
    let params: unknown = {};
    const text = f.get('params');
    if (text !== undefined && text !== '') {
      try {
        params = JSON.parse(text);
      } catch {
        params = null;
      }
    }
    if (params === null || typeof params !== 'object' || Array.isArray(params)) {
      return fail(new TgError(400, "Bad Request: can't parse params: a JSON object"));
    }
    const bot = this.gw.store.bot(botId);
    if (!bot || bot.revokedAt !== null) return fail(new TgError(401, 'Unauthorized'));
    try {
      const result = await this.api.call(bot, method, params as Record<string, unknown>, {
        key: `s:${ref}`,
      });
      return { replyTo, reply: [...head, 'ok', 'true', 'result', JSON.stringify(result)] };
    } catch (err) {
      if (err instanceof TgError) return fail(err);
      this.gw.bridgePort.log.error({ err, bot: botId, ref }, 'bots: a Redis request failed');
      return fail(new TgError(500, 'Internal Server Error'));
    }
  }

  // ---- helpers ----

  private redis(): Redis {
    if (!this.cmd) throw new Error('bot streams are stopped');
    return this.cmd;
  }

  /** Makes a consumer group reading the stream from its start, unless it is there. */
  private async ensureGroup(key: string, group: string): Promise<void> {
    const id = `${key} ${group}`;
    if (this.groupsMade.has(id)) return;
    try {
      await this.redis().xgroup('CREATE', key, group, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
    this.groupsMade.add(id);
  }

  /** Waits `ms`, or less when a bot's streams are turned on or the streams stop. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeReader = () => {
        this.wakeReader = null;
        done();
      };
    });
  }

  private problem(err: Error, where: string): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.lastWarn < WARN_EVERY_MS) {
      this.gw.bridgePort.log.debug({ err, where }, 'bots: Redis streams');
      return;
    }
    this.lastWarn = now;
    this.gw.bridgePort.log.warn(
      { err: err.message, where },
      'bots: Redis streams: Redis failed (retrying)',
    );
  }
}

/**
 * XREADGROUP's answer by stream key: RESP2 gives `[[key, entries], …]`; RESP3 (ioredis 6's
 * default) a map, which ioredis gives as `[key, entries, key, entries, …]` or as an object.
 */
function streamsOf(res: unknown): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  if (res === null || res === undefined) return out;
  if (!Array.isArray(res)) {
    for (const [k, v] of Object.entries(res as Record<string, Entry[]>)) out.set(k, v);
    return out;
  }
  if (typeof res[0] === 'string') {
    for (let i = 0; i + 1 < res.length; i += 2) out.set(res[i] as string, res[i + 1] as Entry[]);
    return out;
  }
  for (const [k, v] of res as [string, Entry[]][]) out.set(k, v);
  return out;
}

function fieldsOf(list: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) m.set(list[i]!, list[i + 1]!);
  return m;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class BotStreamsError extends Error {
  override name = 'BotStreamsError';
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

/**
 * The operator's switch, on the admin API: `PUT /api/v1/bots/{bot_id}/redis {"enabled":true}`
 * (409 when the node has no Redis), and `GET` of the same path: the bot's keys and how far its
 * updates stream got.
 */
export function registerBotStreamRoutes(
  app: FastifyInstance,
  need: () => BotGateway,
  streams: () => BotStreams | null,
): void {
  const tags = ['Bots'];
  const params = {
    type: 'object',
    required: ['bot_id'],
    properties: { bot_id: { type: 'integer', minimum: 1 } },
  };
  const describe = (gw: BotGateway, botId: number) => {
    const bot = gw.store.bot(botId);
    if (!bot || bot.revokedAt !== null) throw new BotStreamsError(`no live bot ${botId}`, 404);
    return {
      bot_id: botId,
      enabled: bot.redisStreams,
      ...streamKeys(gw.config.botStreamPrefix, botId),
      consumer_group: BOT_GROUP,
      pushed_update_id: bot.redisPushed,
      redis: streams() !== null,
    };
  };
  app.get(
    '/api/v1/bots/:bot_id/redis',
    { schema: { tags, summary: "A bot's Redis streams: keys and state", params } },
    async (req) => describe(need(), (req.params as { bot_id: number }).bot_id),
  );
  app.put(
    '/api/v1/bots/:bot_id/redis',
    {
      schema: {
        tags,
        summary: "Turn a bot's Redis streams on or off",
        params,
        body: {
          type: 'object',
          required: ['enabled'],
          additionalProperties: false,
          properties: { enabled: { type: 'boolean' } },
        },
      },
    },
    async (req) => {
      const gw = need();
      const botId = (req.params as { bot_id: number }).bot_id;
      const { enabled } = req.body as { enabled: boolean };
      describe(gw, botId);
      const s = streams();
      if (!s) {
        if (enabled) {
          throw new BotStreamsError('the node has no Redis: start it with --redisurl', 409);
        }
        gw.store.setRedis(botId, false);
      } else {
        s.setEnabled(botId, enabled);
      }
      return describe(gw, botId);
    },
  );
}
