/**
 * What bots' webhook jobs need of Redis when they run in `rum worker` processes (BullMQ), where
 * the node's SQLite is out of reach:
 *
 * - **Revoked endpoints**: the node writes `rum:<queue>:bots:revoked:<gen>` (30 days) for every
 *   endpoint deleted, replaced or disabled, and a worker refuses a job of a revoked endpoint
 *   before it sends (a 410 a worker sees revokes the endpoint at once, too).
 * - **Outcomes**: a worker adds each attempt's outcome to the stream `rum:<queue>:bots:outcomes`;
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
  return { revoked: (gen: string) => `${base}:revoked:${gen}`, outcomes: `${base}:outcomes` };
}

export class WebhookRedis {
  private readonly redis: Redis;
  private readonly keys: ReturnType<typeof botKeys>;
  /** Revoked stays revoked: no need to ask twice. */
  private readonly known = new Set<string>();

  constructor(url: string, queueName: string, onError: (err: Error) => void) {
    this.redis = new Redis(url, { maxRetriesPerRequest: null, enableAutoPipelining: true });
    this.redis.on('error', onError);
    this.keys = botKeys(queueName);
  }

  async revoked(gen: string): Promise<boolean> {
    if (this.known.has(gen)) return true;
    const yes = (await this.redis.exists(this.keys.revoked(gen))) === 1;
    if (yes) {
      if (this.known.size > 10_000) this.known.clear();
      this.known.add(gen);
    }
    return yes;
  }

  async revoke(gens: string[]): Promise<void> {
    if (gens.length === 0) return;
    const m = this.redis.multi();
    for (const g of gens) m.set(this.keys.revoked(g), '1', 'PX', REVOKED_TTL_MS);
    await m.exec();
  }

  async publish(o: WebhookOutcome): Promise<void> {
    await this.redis.xadd(
      this.keys.outcomes,
      'MAXLEN',
      '~',
      String(OUTCOMES_MAXLEN),
      '*',
      'o',
      JSON.stringify(o),
    );
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
            outcomes.push(JSON.parse(fields[i + 1]!) as WebhookOutcome);
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
