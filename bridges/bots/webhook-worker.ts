/**
 * Standard Webhooks deliveries of bots in a `rum worker` process (BullMQ): the jobs carry their
 * URL, body and secret, so a worker needs no key and no database of the node's. What it needs of
 * the node goes through Redis (webhook-redis.ts): whether a job's endpoint was revoked, asked
 * before each attempt, and where each attempt's outcome goes (the node records it). A 410 revokes
 * the endpoint at once for every worker. Telegram-mode pushes stay in the node (they read the
 * bot's secret token at run time and run the method call a bot may answer with).
 */
import type { HttpPost } from '../../src/queue/http-delivery.ts';
import type { DeliveryQueue } from '../port.ts';
import { STANDARD_KIND, standardWebhookHandler } from './webhook-delivery.ts';
import { WebhookRedis } from './webhook-redis.ts';

export interface WorkerWebhookOptions {
  redisUrl: string;
  queueName: string;
  /** The queue's attempts per job (config limits.deliveryMaxAttempts). */
  maxAttempts: number;
  post: HttpPost;
  onError: (err: Error, where: string) => void;
}

/** Registers kind `bot-webhook` on a worker's queue; answers what closes its Redis connection. */
export function registerWorkerWebhooks(
  queue: DeliveryQueue,
  o: WorkerWebhookOptions,
): { close(): Promise<void> } {
  const redis = new WebhookRedis(o.redisUrl, o.queueName, (err) => o.onError(err, 'bots'));
  redis.watch();
  queue.handle(
    STANDARD_KIND,
    standardWebhookHandler({
      post: o.post,
      maxAttempts: o.maxAttempts,
      gate: async (p) => !(await redis.revoked(p.gen)),
      // Written before the attempt ends: a worker killed after it loses no outcome.
      report: async (outcome) => {
        try {
          if (outcome.status === 410) await redis.revoke([outcome.gen]);
          await redis.publish(outcome);
        } catch (err) {
          o.onError(err as Error, 'bots');
        }
      },
    }),
  );
  return { close: () => redis.close() };
}
