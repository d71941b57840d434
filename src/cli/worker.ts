/**
 * `rum worker --redisurl …`: a process that only runs deliveries. It joins the node's BullMQ
 * queue on the shared Redis and runs its jobs with the built-in handlers, so deliveries scale
 * over processes and hosts; per-destination limits hold over all of them (src/queue/bullmq.ts).
 * It keeps no keys and no chain: what it delivers was prepared (and signed) by the node, or
 * carries its own HMAC secret (bots' Standard Webhooks, bridges/bots/webhook-worker.ts).
 */
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Dispatcher } from 'undici';
import { AddressGuard, guardedDispatcher } from '../gateway/address-guard.ts';
import { DeliveryWatch } from '../gateway/delivery-watch.ts';
import { BullQueue } from '../queue/bullmq.ts';
import { queueOptions, redactUrl } from '../queue/create.ts';
import { registerWorkerWebhooks } from '../../bridges/bots/webhook-worker.ts';
import { httpDeliveryHandler, httpPost } from '../queue/http-delivery.ts';

export interface WorkerDeps {
  /** Refuses a destination URL (the SSRF guard); default: the address guard of the config. */
  guard?: (url: string) => Promise<void>;
}

/** Runs delivery workers until `signal` aborts, then lets running jobs finish and returns. */
export async function runWorker(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  deps: WorkerDeps = {},
): Promise<void> {
  if (!config.redisUrl) {
    throw new Error('rum worker needs a Redis: pass --redisurl redis://… (or set REDIS_URL)');
  }
  const redis = redactUrl(config.redisUrl);
  // Redis errors repeat while it is unreachable: one line when it starts, one when it is back.
  let redisDown = false;
  const onError = (err: Error, where: string) => {
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed/i.test(err.message)) {
      if (!redisDown) log.warn({ redis, error: err.message }, 'redis unreachable; retrying');
      redisDown = true;
      return;
    }
    log.warn({ where, error: err.message }, 'delivery queue error');
  };
  const queue = new BullQueue(config.redisUrl, config.queueName, queueOptions(config), {
    onError,
  });
  let guard = deps.guard;
  let dispatcher: Dispatcher | undefined;
  if (!guard) {
    // Checked before each attempt, and again by the dispatcher when it connects (DNS rebinding).
    const g = new AddressGuard({ allowPrivate: config.allowPrivateAddress });
    guard = (url) => g.check(url);
    if (!config.allowPrivateAddress) {
      dispatcher = guardedDispatcher(g, { connections: 64, keepAliveTimeout: 30_000 });
    }
  }
  const http = {
    timeoutMs: config.limits.deliveryTimeoutMs,
    guard,
    ...(dispatcher ? { dispatcher } : {}),
  };
  queue.handle('http', httpDeliveryHandler(http));
  const bots = registerWorkerWebhooks(queue, {
    redisUrl: config.redisUrl,
    queueName: config.queueName,
    maxAttempts: config.limits.deliveryMaxAttempts,
    post: httpPost(http),
    onError,
  });
  const watch = new DeliveryWatch(queue, new Registry(), log);
  queue.on('done', () => {
    if (redisDown) log.info({ redis }, 'redis reachable again');
    redisDown = false;
  });
  const stopped = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    // Waits for Redis (BullMQ retries the connection) unless told to stop first.
    await Promise.race([queue.start(), stopped]);
    if (signal.aborted) return;
    log.info(
      {
        redis,
        queue: config.queueName,
        concurrency: queue.options.concurrency,
        perDestination: queue.options.perDestination,
      },
      'delivery worker running',
    );
    await stopped;
  } finally {
    watch.close();
    await queue.close();
    await bots.close();
    log.info('delivery worker stopped');
  }
}
