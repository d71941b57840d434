/**
 * The node's delivery queue: BullMQ on Redis when `--redisurl` (or REDIS_URL) is set, so that
 * `rum worker` processes on any host sharing the Redis run deliveries; otherwise the embedded
 * queue in the node's own SQLite, so a node needs no Redis.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Db } from '../storage/db.ts';
import { DEFAULT_QUEUE_OPTIONS, type DeliveryQueue, type QueueOptions } from './types.ts';

export function queueOptions(config: Config): QueueOptions {
  return {
    ...DEFAULT_QUEUE_OPTIONS,
    maxAttempts: config.limits.deliveryMaxAttempts,
    backoffBaseMs: config.limits.deliveryBackoffBaseMs,
    backoffMaxMs: config.limits.deliveryBackoffMaxMs,
    concurrency: config.limits.deliveryConcurrency,
    perDestination: config.limits.deliveryPerDestination,
  };
}

export async function createDeliveryQueue(
  config: Config,
  db: Db,
  log: Logger,
): Promise<DeliveryQueue> {
  const options = queueOptions(config);
  if (config.redisUrl) {
    const { BullQueue } = await import('./bullmq.ts');
    log.info({ redis: redactUrl(config.redisUrl) }, 'delivery queue on BullMQ');
    // Redis errors repeat while it is down (the connections retry forever): one line per
    // place every 10 s is enough to see it.
    const last = new Map<string, number>();
    const onError = (err: Error, where: string) => {
      const now = Date.now();
      if (now - (last.get(where) ?? 0) < 10_000) return;
      last.set(where, now);
      log.warn({ where, err: err.message }, 'delivery queue: Redis error');
    };
    return new BullQueue(config.redisUrl, config.queueName, options, { onError });
  }
  const { EmbeddedQueue } = await import('./embedded.ts');
  return new EmbeddedQueue(db, { ...options, log });
}

/** A Redis URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://?';
  }
}
