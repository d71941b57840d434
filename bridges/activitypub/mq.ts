/**
 * Fedify's MessageQueue on the gateway's delivery queue (BullMQ or the embedded SQLite queue),
 * so a crash, a restart or a receiver outage loses no delivery, and the operator sees Fedify's
 * jobs beside every other bridge's.
 *
 * - One job kind, `fedify`; the queue's backoff and dead-letter list own the retries
 *   (`nativeRetrial`: Fedify throws from a failed delivery instead of re-enqueuing it; it still
 *   re-enqueues by itself for a Retry-After, with the next attempt number).
 * - Idempotency keys: an outbox message by sha256(activity id, inbox, attempt) — a fan-out that
 *   runs again makes new message ids but the same keys, so nothing is delivered twice; a fan-out
 *   by its message id; an inbox message by its id and attempt.
 * - Destination: the inbox's host for an outbox message (the unit of fairness and per-server
 *   concurrency), `fedify-fanout` / `fedify-inbox` otherwise.
 * - Private keys never enter the queue (Redis would hold them in the clear): they are stripped
 *   from messages on enqueue and put back from the keystore when the job runs.
 * - Inbox URLs are checked against the gateway's address guard before delivery: Fedify delivers
 *   with the global fetch and does not check them itself.
 * - Nothing goes to a blocked actor's inbox or a blocked instance but the block's own `Reject`
 *   and `Block` (the job fails at once, `blocked`, and the operator sees it).
 */
import { createHash } from 'node:crypto';
import type {
  MessageQueue,
  MessageQueueEnqueueOptions,
  MessageQueueListenOptions,
} from '@fedify/fedify';
import {
  type DeliveryJob,
  type DeliveryQueue,
  type EnqueueInput,
  PermanentDeliveryError,
} from '../port.ts';

export const JOB_KIND = 'fedify';

/** What may still be delivered to a blocked actor or instance: the block itself. */
export const SENT_WHEN_BLOCKED: ReadonlySet<string> = new Set([
  'https://www.w3.org/ns/activitystreams#Reject',
  'https://www.w3.org/ns/activitystreams#Block',
]);

interface KeyRef {
  keyId: string;
  privateKey?: unknown;
}

/** The fields of Fedify's queue messages this module reads (the rest travel untouched). */
interface FedifyMessage {
  type: 'outbox' | 'fanout' | 'inbox' | string;
  id: string;
  baseUrl?: string;
  keys?: KeyRef[];
  activityId?: string;
  activityType?: string;
  actorIds?: string[];
  inbox?: string;
  attempt?: number;
  [k: string]: unknown;
}

export interface QueueHooks {
  /** The private key (JWK) of one of the bridge's actor keys, by its key id. */
  privateJwk(keyId: string): Promise<unknown>;
  /** Checks a URL may be delivered to (throws when not). */
  checkUrl(url: string): Promise<void>;
  /**
   * Whether an outbox delivery must not go (a blocked inbox, or only blocked recipients); the
   * activity type is the full IRI Fedify gives it.
   */
  blocked?(inbox: string, activityType: string | undefined, actorIds: string[]): boolean;
  /** Runs one message (federation.processQueuedTask). */
  process(message: unknown): Promise<void>;
}

/** One outbox delivery put on the queue: the activity, the inbox, Fedify's attempt number. */
export type OutboxQueued = (activityId: string, inbox: string, attempt: number) => void;

const queuedObservers = new WeakMap<DeliveryQueue, Set<OutboxQueued>>();

/** Tells `fn` of each outbox delivery newly added to this queue; answers the unsubscribe. */
export function onOutboxQueued(queue: DeliveryQueue, fn: OutboxQueued): () => void {
  const set = queuedObservers.get(queue) ?? new Set<OutboxQueued>();
  queuedObservers.set(queue, set);
  set.add(fn);
  return () => set.delete(fn);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The delivery-queue job of one Fedify message (private keys stripped). */
export function jobOf(message: FedifyMessage, options?: MessageQueueEnqueueOptions): EnqueueInput {
  const payload: FedifyMessage = message.keys
    ? { ...message, keys: message.keys.map((k) => ({ keyId: k.keyId })) }
    : message;
  const attempt = message.attempt ?? 0;
  let key: string;
  let destination: string;
  if (message.type === 'outbox' && message.inbox) {
    key = `fedify:outbox:${sha256(`${message.activityId ?? message.id}\n${message.inbox}\n${attempt}`)}`;
    try {
      destination = new URL(message.inbox).host;
    } catch {
      destination = 'fedify-outbox';
    }
  } else if (message.type === 'fanout') {
    key = `fedify:fanout:${message.id}`;
    destination = 'fedify-fanout';
  } else {
    key = `fedify:${message.type}:${message.id}:${attempt}`;
    destination = `fedify-${message.type}`;
  }
  const delay = options?.delay as { total(o: { unit: string }): number } | undefined;
  const delayMs = delay ? Math.max(0, Math.round(delay.total({ unit: 'milliseconds' }))) : 0;
  return { key, kind: JOB_KIND, destination, payload, ...(delayMs > 0 ? { delayMs } : {}) };
}

export class DeliveryMessageQueue implements MessageQueue {
  readonly nativeRetrial = true;
  private readonly queue: DeliveryQueue;

  constructor(queue: DeliveryQueue) {
    this.queue = queue;
  }

  async enqueue(message: FedifyMessage, options?: MessageQueueEnqueueOptions): Promise<void> {
    const { added } = await this.queue.enqueue(jobOf(message, options));
    if (added) this.queued(message);
  }

  private queued(m: FedifyMessage): void {
    if (m.type !== 'outbox' || !m.inbox || !m.activityId) return;
    for (const fn of queuedObservers.get(this.queue) ?? [])
      fn(m.activityId, m.inbox, m.attempt ?? 0);
  }

  /**
   * Each message is its own job; a failure part way leaves some added, and the fan-out that
   * runs again adds only the rest (the keys of the added ones are taken).
   */
  async enqueueMany(
    messages: readonly FedifyMessage[],
    options?: MessageQueueEnqueueOptions,
  ): Promise<void> {
    await Promise.all(
      messages.map(async (m) => {
        const { added } = await this.queue.enqueue(jobOf(m, options));
        if (added) this.queued(m);
      }),
    );
  }

  /**
   * The jobs run through the delivery queue's `fedify` handler (registered by the bridge, the
   * gateway starts the queue); Fedify is created with manuallyStartQueue and never calls this,
   * but a listener waits here for its signal, as the contract wants.
   */
  listen(
    _handler: (message: unknown) => Promise<void> | void,
    options?: MessageQueueListenOptions,
  ): Promise<void> {
    const signal = options?.signal;
    return new Promise((resolve) => {
      if (!signal) return;
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
}

/** The delivery-queue handler of `fedify` jobs. */
export function fedifyJobHandler(hooks: QueueHooks): (job: DeliveryJob) => Promise<void> {
  return async (job) => {
    let message = job.payload as FedifyMessage;
    if (message.type === 'outbox' && message.inbox) {
      if (hooks.blocked?.(message.inbox, message.activityType, message.actorIds ?? [])) {
        throw new PermanentDeliveryError(`blocked: ${message.inbox} (${message.activityType})`);
      }
      try {
        await hooks.checkUrl(message.inbox);
      } catch (err) {
        throw new PermanentDeliveryError(
          `refused inbox ${message.inbox}: ${(err as Error).message}`,
        );
      }
    }
    if (message.keys) {
      const keys = await Promise.all(
        message.keys.map(async (k) => ({
          keyId: k.keyId,
          privateKey: await hooks.privateJwk(k.keyId),
        })),
      );
      message = { ...message, keys };
    }
    try {
      await hooks.process(message);
    } catch (err) {
      const status = (err as { statusCode?: unknown }).statusCode;
      // A refusal other than a timeout or a rate limit will not change when tried again.
      if (
        typeof status === 'number' &&
        status >= 400 &&
        status < 500 &&
        status !== 408 &&
        status !== 429
      ) {
        throw new PermanentDeliveryError(`${message.inbox ?? ''} answered ${status}`);
      }
      throw err;
    }
  };
}
