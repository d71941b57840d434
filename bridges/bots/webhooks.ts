/**
 * Bots' webhooks, the node's side: every update of a bot's log goes to its endpoint as a job of
 * the delivery queue (bridges/bots/webhook-delivery.ts), and what became of each is recorded.
 *
 * - **Endpoints.** A bot has at most one webhook: Telegram's (setWebhook) or Standard Webhooks'
 *   (the admin API). Each version of it (kind, URL, secret) is an endpoint with a generation id
 *   (`gen`) that its jobs carry. When the webhook is deleted, replaced, disabled (a 410) or the
 *   bot revoked, the endpoint is revoked: its queued jobs end without a request (checked at run
 *   time, in the node against SQLite, in `rum worker`s against Redis, webhook-redis.ts).
 * - **Queueing.** A pump per bot queues the updates after the endpoint's cursor (or the bot's
 *   confirmed offset, if later) that are neither delivered nor failed, then moves the cursor; it
 *   runs when updates are logged, when a webhook is set and when the node starts, so updates
 *   logged while the node was down or the webhook was unset are pushed too. Queueing is durable
 *   before the cursor moves (a crash queues the same keys again, which adds nothing).
 * - **Outcomes.** Each attempt reports: a delivered update is marked (and the bot's confirmed
 *   offset moves over the delivered ones at its head, as a Telegram push confirms an update);
 *   a failure sets the bot's last error (getWebhookInfo's `last_error_date`/`_message`); an
 *   update whose job failed for good is marked failed (its job is in the queue's failed list,
 *   from where the operator redelivers it); a 410 disables the webhook.
 *   `pending_update_count` counts the updates after the confirmed offset not yet delivered.
 * - **Telegram mode** runs in the node only: max_connections bounds the bot's pushes running at
 *   once (in this process; the queue's per-destination limit applies as well), and a method call
 *   the bot answers a push with is run as the bot (once per update: its idempotency key).
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../src/config/schema.ts';
import { AddressGuard, guardedLookup } from '../../src/gateway/address-guard.ts';
import { httpPost } from '../../src/queue/http-delivery.ts';
import type { BridgePort, DeliveryQueue, JobStatus } from '../port.ts';
import type { BotGateway } from './gateway.ts';
import type { BotRow, BotWebhook } from './store.ts';
import {
  type EndpointForJob,
  parseJobKey,
  STANDARD_KIND,
  standardWebhookHandler,
  TELEGRAM_KIND,
  telegramWebhookHandler,
  type WebhookKind,
  type WebhookOutcome,
  webhookJob,
} from './webhook-delivery.ts';
import { REVOKED_TTL_MS, WebhookRedis } from './webhook-redis.ts';
import { DELIVERED, WebhookStore } from './webhook-store.ts';

/** Runs a Bot API method as a bot (api.ts), for the method call a bot answers a push with. */
export type InvokeMethod = (
  bot: BotRow,
  method: string,
  params: Record<string, unknown>,
  idempotencyKey: string,
) => Promise<unknown>;

/** Updates queued per step of a bot's pump. */
const PUMP_BATCH = 500;
/** Jobs being added at once, all bots together. */
const ENQUEUE_AT_ONCE = 256;
const RETRY_MS = 2_000;
/** Jobs of the queue's lists looked through for a bot's deliveries. */
const LIST_SCAN = 10_000;
/** Updates one range redelivery takes at most. */
export const MAX_REDELIVER = 10_000;

export interface Delivery {
  id: string;
  update_id: number;
  kind: 'standard' | 'telegram';
  /** Whether the job is for the bot's current endpoint. */
  current: boolean;
  destination: string;
  status: JobStatus;
  attempts: number;
  last_error: string | null;
  at: string;
  created_at: string;
}

/** What a bot's webhook is made from: a change makes a new endpoint. */
function fingerprint(w: BotWebhook): string {
  return JSON.stringify([w.kind, w.url, w.secret]);
}

function newGen(): string {
  return randomBytes(8).toString('hex');
}

/** A redelivery refused for a reason (the admin API answers it as a 4xx). */
export class RedeliverError extends Error {
  override name = 'RedeliverError';
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

export class BotWebhooks {
  readonly store: WebhookStore;
  private readonly gw: BotGateway;
  private readonly port: BridgePort;
  private readonly config: Config;
  private invoke: InvokeMethod | null = null;
  private redis: WebhookRedis | null = null;
  private consumer: AbortController | null = null;
  private consuming: Promise<void> | null = null;
  private readonly pumps = new Map<number, { again: boolean }>();
  private readonly running = new Set<Promise<void>>();
  private enqueuing = 0;
  private readonly enqueueWaiting: (() => void)[] = [];
  private outcomes: WebhookOutcome[] = [];
  private readonly slots = new Map<number, { active: number; waiting: (() => void)[] }>();
  /** Revoked endpoints not yet written to Redis (retried). */
  private unmirrored = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void)[] = [];
  private stopped = true;

  constructor(gw: BotGateway, config: Config) {
    this.gw = gw;
    this.port = gw.bridgePort;
    this.config = config;
    this.store = new WebhookStore(this.port.database());
  }

  private get queue(): DeliveryQueue {
    return this.port.queue;
  }

  /**
   * Registers the delivery kinds on the queue (before it starts). Standard Webhooks' kind runs
   * here unless deliveries are left to `rum worker`s (BullMQ with --rundeliveries false).
   */
  register(invoke: InvokeMethod): void {
    this.invoke = invoke;
    const queue = this.queue;
    const post = httpPost({
      timeoutMs: this.config.limits.deliveryTimeoutMs,
      guard: (url) => this.port.checkUrl(url),
      // The address is judged again when connecting: a name cannot rebind to a private one.
      ...(this.port.allowPrivateAddress
        ? {}
        : { lookup: guardedLookup(new AddressGuard({ allowPrivate: false })) }),
    });
    const common = {
      post,
      gate: (p: { bot: number; gen: string; update: number }) => this.gate(p),
      report: (o: WebhookOutcome) => this.report(o),
      maxAttempts: this.config.limits.deliveryMaxAttempts,
    };
    if (queue.backend === 'embedded' || this.config.runDeliveries) {
      queue.handle(STANDARD_KIND, standardWebhookHandler(common));
    }
    queue.handle(
      TELEGRAM_KIND,
      telegramWebhookHandler({
        ...common,
        secretToken: (botId) => {
          const w = this.gw.store.bot(botId)?.webhook;
          return w?.kind === 'telegram' ? w.secret : null;
        },
        slot: (botId) => this.slot(botId),
        answer: (botId, updateId, call) => this.answer(botId, updateId, call),
      }),
    );
  }

  start(): void {
    this.stopped = false;
    if (this.config.redisUrl && this.queue.backend === 'bullmq') {
      this.redis = new WebhookRedis(this.config.redisUrl, this.config.queueName, (err) =>
        this.port.log.debug({ err: err.message }, 'bots: webhook Redis error'),
      );
      for (const g of this.store.revokedSince(Date.now() - REVOKED_TTL_MS)) {
        this.unmirrored.add(g);
      }
      this.mirror();
      const ac = new AbortController();
      this.consumer = ac;
      this.consuming = this.redis.consume(
        (outcomes) => this.apply(outcomes),
        ac.signal,
        (err) => this.port.log.warn({ err: err.message }, 'bots: reading webhook outcomes'),
      );
    }
    this.unsubscribe.push(
      this.gw.onUpdates((bot) => {
        if (bot.webhook) this.pump(bot.botId);
      }),
      this.gw.onWebhookChange((botId) => this.sync(botId)),
    );
    // Endpoints changed while the node was down (none should), and what is left to queue.
    const ids = new Set([
      ...this.gw.store.bots().map((b) => b.botId),
      ...this.store.endpoints().map((e) => e.botId),
    ]);
    for (const id of ids) this.sync(id);
    this.timer = setInterval(() => this.tick(), 5_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.consumer?.abort();
    await this.consuming;
    this.flush();
    await this.redis?.close();
    this.redis = null;
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private tick(): void {
    this.mirror();
    try {
      this.store.pruneRevoked(Date.now() - REVOKED_TTL_MS);
    } catch (err) {
      this.port.log.warn({ err }, 'bots: pruning revoked webhooks failed');
    }
  }

  // ---- endpoints ----

  /** The bot's webhook that is pushed to now, or null. */
  private live(botId: number): { bot: BotRow; w: BotWebhook } | null {
    const bot = this.gw.store.bot(botId);
    if (!bot || bot.revokedAt !== null || !bot.webhook || bot.webhookDisabled) return null;
    if (!bot.scopes.includes('read')) return null;
    return { bot, w: bot.webhook };
  }

  /**
   * Brings the bot's endpoint in line with its webhook: a new endpoint (and the old one revoked)
   * when it changed, none when it is gone; then queues what is pending.
   */
  sync(botId: number): void {
    if (this.stopped) return;
    const live = this.live(botId);
    const fp = live ? fingerprint(live.w) : null;
    const cur = this.store.endpoint(botId);
    if (cur && cur.fingerprint === fp) {
      this.pump(botId);
      return;
    }
    if (!cur && fp === null) return;
    const old = this.store.transaction(() =>
      this.store.replaceEndpoint(
        botId,
        fp === null ? null : { gen: newGen(), fingerprint: fp, enqueued: live!.bot.acked },
      ),
    );
    if (old) {
      this.unmirrored.add(old.gen);
      this.mirror();
    }
    if (fp !== null) this.pump(botId);
  }

  private endpointFor(botId: number): EndpointForJob | null {
    const live = this.live(botId);
    const ep = this.store.endpoint(botId);
    if (!live || !ep || ep.fingerprint !== fingerprint(live.w)) return null;
    return {
      botId,
      botCreatedAt: live.bot.createdAt,
      gen: ep.gen,
      kind: live.w.kind,
      url: live.w.url,
      secret: live.w.secret,
    };
  }

  /** Whether a job's endpoint is the bot's now and its update is not confirmed (the node's gate). */
  private gate(p: { bot: number; gen: string; update: number }): boolean {
    const ep = this.endpointFor(p.bot);
    if (!ep || ep.gen !== p.gen) return false;
    return p.update > this.store.acked(p.bot);
  }

  /** Writes revoked endpoints to Redis, for the workers; retried on the next tick when it fails. */
  private mirror(): void {
    const redis = this.redis;
    if (!redis || this.unmirrored.size === 0) return;
    const gens = [...this.unmirrored];
    this.unmirrored = new Set();
    redis.revoke(gens).catch((err: Error) => {
      for (const g of gens) this.unmirrored.add(g);
      this.port.log.warn({ err: err.message }, 'bots: telling workers of revoked webhooks failed');
    });
  }

  // ---- queueing ----

  /** Queues the bot's pending updates for its endpoint (one pump per bot; a call during it runs it again). */
  pump(botId: number): void {
    if (this.stopped) return;
    const p = this.pumps.get(botId);
    if (p) {
      p.again = true;
      return;
    }
    const entry = { again: true };
    this.pumps.set(botId, entry);
    this.track(
      (async () => {
        let failed = false;
        try {
          while (entry.again && !this.stopped) {
            entry.again = false;
            await this.queueAll(botId);
          }
        } catch (err) {
          failed = true;
          this.port.log.warn({ err, bot: botId }, 'bots: queueing webhook deliveries failed');
        } finally {
          this.pumps.delete(botId);
        }
        if (failed && !this.stopped) setTimeout(() => this.pump(botId), RETRY_MS).unref();
      })(),
    );
  }

  private async queueAll(botId: number): Promise<void> {
    while (!this.stopped) {
      const ep = this.endpointFor(botId);
      if (!ep) return;
      const row = this.store.endpoint(botId)!;
      const after = Math.max(row.enqueued, this.store.acked(botId));
      const updates = this.store.toQueue(botId, after, PUMP_BATCH);
      if (updates.length === 0) return;
      await Promise.all(updates.map((u) => this.enqueue(webhookJob(ep, u))));
      this.store.setEnqueued(botId, ep.gen, updates[updates.length - 1]!.updateId);
    }
  }

  /**
   * Adds a job, at most ENQUEUE_AT_ONCE at a time over all bots: a burst of thousands at once
   * (100 bots' pumps) would queue up on Redis before the workers' own calls.
   */
  private async enqueue(job: ReturnType<typeof webhookJob>): Promise<void> {
    if (this.enqueuing >= ENQUEUE_AT_ONCE) {
      await new Promise<void>((resolve) => this.enqueueWaiting.push(resolve));
    } else this.enqueuing++;
    try {
      await this.queue.enqueue(job);
    } finally {
      const next = this.enqueueWaiting.shift();
      if (next) next();
      else this.enqueuing--;
    }
  }

  // ---- outcomes ----

  /** An attempt's outcome in this process; recorded with the others of the same turn. */
  private report(o: WebhookOutcome): void {
    this.outcomes.push(o);
    if (this.outcomes.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.outcomes;
    this.outcomes = [];
    if (batch.length > 0) this.apply(batch);
  }

  /** Records outcomes (from this process or from workers), in one transaction. */
  apply(batch: WebhookOutcome[]): void {
    if (batch.length === 0) return;
    const gone = new Set<number>();
    try {
      this.store.transaction(() => {
        const touched = new Set<number>();
        for (const o of batch) {
          touched.add(o.bot);
          if (o.ok) {
            this.store.delivered(o.bot, o.update);
            continue;
          }
          const current = this.store.endpoint(o.bot)?.gen === o.gen;
          if (current && o.error) this.gw.store.recordError(o.bot, o.error);
          if (o.final) this.store.failed(o.bot, o.update);
          if (o.status === 410 && current && !this.gw.store.bot(o.bot)?.webhookDisabled) {
            this.gw.store.disableWebhook(
              o.bot,
              `the receiver answered 410 Gone at ${new Date(o.at).toISOString()}`,
            );
            gone.add(o.bot);
          }
        }
        for (const bot of touched) this.store.advanceAcked(bot);
      });
    } catch (err) {
      this.port.log.error({ err }, 'bots: recording webhook outcomes failed');
      return;
    }
    for (const bot of gone) {
      this.port.log.warn({ bot }, 'bots: webhook answered 410 Gone; disabled');
      this.gw.webhookChanged(bot);
    }
  }

  // ---- Telegram mode ----

  /** One of the bot's max_connections, in this process; resolves to its release. */
  private slot(botId: number): Promise<() => void> {
    let s = this.slots.get(botId);
    if (!s) {
      s = { active: 0, waiting: [] };
      this.slots.set(botId, s);
    }
    const state = s;
    const max = this.gw.store.bot(botId)?.webhook?.maxConnections ?? 40;
    return new Promise((resolve) => {
      const grant = () => {
        state.active++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          state.active--;
          const next = state.waiting.shift();
          if (next) next();
          else if (state.active === 0) this.slots.delete(botId);
        });
      };
      if (state.active < max) grant();
      else state.waiting.push(grant);
    });
  }

  /** Runs the method call a bot answered a push with, as the bot, once per update. */
  private async answer(botId: number, updateId: number, call: Record<string, unknown>) {
    const bot = this.gw.store.bot(botId);
    if (!bot || bot.revokedAt !== null || !this.invoke) return;
    const { method, ...params } = call;
    try {
      await this.invoke(bot, String(method), params, `webhook-answer-${updateId}`);
    } catch (err) {
      // As Telegram: the bot cannot see the result of a call made this way.
      this.port.log.info(
        { bot: botId, update: updateId, method, err: (err as Error).message },
        'bots: the method call a bot answered its webhook with failed',
      );
    }
  }

  // ---- the operator's view ----

  /** The bot's deliveries of a status in the queue (newest first for done and failed). */
  async deliveries(botId: number, status: JobStatus, limit: number): Promise<Delivery[]> {
    const gen = this.store.endpoint(botId)?.gen;
    const jobs = await this.queue.list(status, LIST_SCAN);
    const out: Delivery[] = [];
    for (const j of jobs) {
      const k = parseJobKey(j.key);
      if (!k || k.bot !== botId) continue;
      out.push({
        id: j.id,
        update_id: k.update,
        kind: k.kind === STANDARD_KIND ? 'standard' : 'telegram',
        current: k.gen === gen,
        destination: j.destination,
        status: j.status,
        attempts: j.attempts,
        last_error: j.lastError,
        at: new Date(j.at).toISOString(),
        created_at: new Date(j.createdAt).toISOString(),
      });
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Delivers updates again to the bot's endpoint: failed jobs by id (a job of an endpoint since
   * replaced becomes a job of the current one), or every update in an id range that is not
   * delivered. Answers the updates queued again, and those that could not be.
   */
  async redeliver(
    botId: number,
    what: { ids: string[] } | { from: number; to: number },
  ): Promise<{
    redelivered: number[];
    skipped: { update_id?: number; id?: string; reason: string }[];
  }> {
    const ep = this.endpointFor(botId);
    if (!ep) throw new RedeliverError(`bot ${botId} has no webhook to deliver to`, 409);
    const redelivered: number[] = [];
    const skipped: { update_id?: number; id?: string; reason: string }[] = [];
    const acked = this.store.acked(botId);
    const again = async (updateId: number) => {
      const u = this.store.update(botId, updateId);
      if (!u) return skipped.push({ update_id: updateId, reason: 'no longer in the log' });
      if (u.state === DELIVERED) return skipped.push({ update_id: updateId, reason: 'delivered' });
      if (updateId <= acked) {
        return skipped.push({ update_id: updateId, reason: 'confirmed by the bot' });
      }
      this.store.reopen(botId, updateId);
      const { id, added } = await this.queue.enqueue(webhookJob(ep, u));
      if (added || (await this.queue.redeliver([id])) > 0) redelivered.push(updateId);
      else skipped.push({ update_id: updateId, reason: 'being delivered' });
    };
    if ('ids' in what) {
      const failed = new Map<string, ReturnType<typeof parseJobKey>>();
      for (const j of await this.queue.list('failed', LIST_SCAN)) {
        const k = parseJobKey(j.key);
        if (k && k.bot === botId) failed.set(j.id, k);
      }
      for (const id of new Set(what.ids)) {
        const k = failed.get(id);
        if (!k) {
          skipped.push({ id, reason: "not a failed delivery of this bot's" });
        } else if (k.gen === ep.gen && kindOf(ep) === k.kind) {
          this.store.reopen(botId, k.update);
          if ((await this.queue.redeliver([id])) > 0) redelivered.push(k.update);
          else skipped.push({ id, update_id: k.update, reason: 'being delivered' });
        } else {
          await again(k.update);
        }
      }
    } else {
      const updates = this.store.inRange(botId, what.from, what.to, MAX_REDELIVER);
      for (const u of updates) await again(u.updateId);
    }
    return { redelivered, skipped };
  }
}

function kindOf(ep: EndpointForJob): WebhookKind {
  return ep.kind === 'standard' ? STANDARD_KIND : TELEGRAM_KIND;
}
