/**
 * What bots' webhook jobs need of Redis when they run in `rum worker` processes (BullMQ), where
 * the node's SQLite is out of reach:
 *
 * - **Revoked endpoints**: the node adds every endpoint deleted, replaced or disabled to the
 *   sorted set `rum:<queue>:bots:revoked` (member: its generation, score: when; 30 days) and
 *   publishes it on the channel of the same name; a worker refuses a job of a revoked endpoint
 *   before it sends (a 410 a worker sees revokes the endpoint at once, too). A worker keeps the
 *   set in memory while it is subscribed (loaded after subscribing, so nothing falls between),
 *   and asks Redis per job whenever its subscription is not up.
 * - **Outcomes**: a worker adds each attempt's outcome to the stream `rum:<queue>:bots:outcomes`
 *   (those of one event-loop turn as one entry, a JSON array);
 *   the node reads it through the consumer group `node` and records what was delivered, the
 *   last error and a 410's disabling, then acknowledges the entries (a node that stops in the
 *   middle reads its unacknowledged entries again: recording is idempotent).
 */
import { Redis } from 'ioredis';
import type { WebhookOutcome } from './webhook-delivery.ts';

/**
 * How long a revoked endpoint is remembered in Redis (and in the node's SQLite): far longer than
 * the default retry schedule (12 attempts, at most 6 h apart). A schedule configured longer than
 * this could let a worker deliver a job of an endpoint revoked more than 30 days before.
 */
export const REVOKED_TTL_MS = 30 * 24 * 3600_000;
/** The outcome stream keeps about this many entries (a node down for long loses the oldest). */
const OUTCOMES_MAXLEN = 1_000_000;
const GROUP = 'node';

/** The key base of a queue's bot webhook state (BullMQ's own keys are `rum:<queue>:…`). */
export function botKeys(queueName: string) {
  const base = `rum:${queueName}:bots`;
  return { revoked: `${base}:revoked`, outcomes: `${base}:outcomes` };
}

export class WebhookRedis {
  private readonly redis: Redis;
  private readonly keys: ReturnType<typeof botKeys>;
  private readonly onError: (err: Error) => void;
  /** Revoked endpoints known here: a revoked one stays revoked. */
  private readonly known = new Set<string>();
  /** Whether `known` holds every revoked endpoint (the subscription is up). */
  private complete = false;
  private subscriber: Redis | null = null;
  /** Outcomes of this turn, written together. */
  private batch: { items: WebhookOutcome[]; done: Promise<void> } | null = null;

  constructor(url: string, queueName: string, onError: (err: Error) => void) {
    this.redis = new Redis(url, { maxRetriesPerRequest: null, enableAutoPipelining: true });
    this.redis.on('error', onError);
    this.keys = botKeys(queueName);
    this.onError = onError;
  }

  /**
   * Keeps the revoked endpoints in memory (a worker's gate then asks Redis nothing): subscribes,
   * then loads the set; while the subscription is down, revoked() asks Redis.
   */
  watch(): void {
    if (this.subscriber) return;
    const sub = this.redis.duplicate();
    this.subscriber = sub;
    sub.on('error', this.onError);
    sub.on('message', (_channel: string, gen: string) => this.known.add(gen));
    const down = () => {
      this.complete = false;
    };
    sub.on('close', down);
    sub.on('reconnecting', down);
    sub.on('ready', () => {
      (async () => {
        await sub.subscribe(this.keys.revoked);
        const all = await this.redis.zrange(this.keys.revoked, '0', '-1');
        for (const g of all) this.known.add(g);
        if (sub.status === 'ready') this.complete = true;
      })().catch((err: Error) => this.onError(err));
    });
  }

  async revoked(gen: string): Promise<boolean> {
    if (this.known.has(gen)) return true;
    if (this.complete) return false;
    const yes = (await this.redis.zscore(this.keys.revoked, gen)) !== null;
    if (yes) this.known.add(gen);
    return yes;
  }

  /** Records revoked endpoints and tells the workers (and forgets those past the TTL). */
  async revoke(gens: string[]): Promise<void> {
    if (gens.length === 0) return;
    const now = Date.now();
    const m = this.redis.multi();
    m.zadd(this.keys.revoked, ...gens.flatMap((g) => [String(now), g]));
    m.zremrangebyscore(this.keys.revoked, '-inf', now - REVOKED_TTL_MS);
    for (const g of gens) m.publish(this.keys.revoked, g);
    await m.exec();
  }

  /**
   * Adds an outcome to the stream; the outcomes of one event-loop turn go in one entry (a JSON
   * array), and each call resolves once its entry is written.
   */
  publish(o: WebhookOutcome): Promise<void> {
    if (!this.batch) {
      const batch: { items: WebhookOutcome[]; done: Promise<void> } = {
        items: [],
        done: new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
          this.batch = null;
          return this.redis
            .xadd(
              this.keys.outcomes,
              'MAXLEN',
              '~',
              String(OUTCOMES_MAXLEN),
              '*',
              'o',
              JSON.stringify(batch.items),
            )
            .then(() => {});
        }),
      };
      this.batch = batch;
    }
    this.batch.items.push(o);
    return this.batch.done;
  }

  /**
   * Reads outcomes until `signal` aborts: first those this node read and did not acknowledge
   * (a stop in the middle), then new ones; `apply` records a batch, then it is acknowledged.
   * Uses a connection of its own (reads block).
   */
  async consume(
    apply: (outcomes: WebhookOutcome[]) => void,
    signal: AbortSignal,
    onError: (err: Error) => void,
  ): Promise<void> {
    const r = this.redis.duplicate();
    r.on('error', onError);
    // A blocked read ends at once when told to stop.
    const stop = () => r.disconnect();
    signal.addEventListener('abort', stop, { once: true });
    const key = this.keys.outcomes;
    try {
      while (!signal.aborted) {
        try {
          await r.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
          break;
        } catch (e) {
          if (/BUSYGROUP/.test((e as Error).message)) break;
          onError(e as Error);
          await sleep(1000, signal);
        }
      }
      let from = '0';
      while (!signal.aborted) {
        let res: [string, [string, string[]][]][] | null;
        try {
          res = (await r.xreadgroup(
            'GROUP',
            GROUP,
            'node',
            'COUNT',
            1000,
            'BLOCK',
            1000,
            'STREAMS',
            key,
            from,
          )) as [string, [string, string[]][]][] | null;
        } catch (e) {
          if (signal.aborted) break;
          onError(e as Error);
          await sleep(1000, signal);
          continue;
        }
        const entries = res?.[0]?.[1] ?? [];
        if (entries.length === 0) {
          from = '>'; // the unacknowledged ones are done: read new ones
          continue;
        }
        const outcomes: WebhookOutcome[] = [];
        for (const [, fields] of entries) {
          const i = fields.indexOf('o');
          if (i < 0) continue;
          try {
            const v = JSON.parse(fields[i + 1]!) as WebhookOutcome | WebhookOutcome[];
            if (Array.isArray(v)) outcomes.push(...v);
            else outcomes.push(v);
          } catch {
            // not ours: acknowledged and dropped
          }
        }
        apply(outcomes);
        await r.xack(key, GROUP, ...entries.map(([id]) => id));
      }
    } finally {
      signal.removeEventListener('abort', stop);
      r.disconnect();
    }
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = null;
    this.complete = false;
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => {});
    this.redis.disconnect();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
