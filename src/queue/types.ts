/**
 * The delivery queue: everything a bridge sends out of the node (ActivityPub deliveries, Nostr
 * publishing, bot webhooks) is a job here, so a crash, a restart or a receiver outage loses
 * nothing. Two backends keep the same contract (test/queue/conformance.ts runs against both):
 * BullMQ on Redis when a Redis URL is configured (workers in any number of processes), and an
 * embedded queue in the node's SQLite otherwise.
 *
 * Delivery is at least once: a job may run again after a crash in the middle of it, so every
 * delivery carries the job's idempotency key and receivers count each key once.
 */

export type JobStatus = 'pending' | 'active' | 'done' | 'failed';

export interface EnqueueInput {
  /**
   * Idempotency key: adding a job whose key is already queued, running, done (within the done
   * retention) or failed adds nothing. The key travels with every attempt.
   */
  key: string;
  /** Which registered handler runs the job (for example `http`). */
  kind: string;
  /** Where it goes (a host, a relay URL, a bot endpoint): the unit of fairness and concurrency. */
  destination: string;
  /** JSON-serialisable. */
  payload: unknown;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
}

export interface DeliveryJob {
  /** The backend's id of the job, for the operator's view and redelivery. */
  id: string;
  key: string;
  kind: string;
  destination: string;
  payload: unknown;
  /** 1 on the first try. */
  attempt: number;
}

export interface JobInfo {
  id: string;
  key: string;
  kind: string;
  destination: string;
  status: JobStatus;
  attempts: number;
  /** When it runs next (pending), or when it finished (done, failed), in ms since the epoch. */
  at: number;
  lastError: string | null;
  createdAt: number;
}

export interface QueueCounts {
  pending: number;
  active: number;
  done: number;
  failed: number;
}

/** A handler runs one attempt; it returns when delivered and throws when not. */
export type DeliveryHandler = (job: DeliveryJob) => Promise<void>;

/** Thrown by a handler when retrying cannot help (a 4xx other than 408/429, a gone endpoint). */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}

/** Thrown by a handler when the destination said when to come back (HTTP 429/503 Retry-After). */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

export interface QueueOptions {
  /** Attempts before a job goes to the failed (dead-letter) list. */
  maxAttempts: number;
  /** First retry delay; each retry doubles it up to backoffMaxMs, the upper half random (jitter). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Jobs running at once in this process. */
  concurrency: number;
  /** Jobs running at once for one destination, over all processes. */
  perDestination: number;
  /** How long finished jobs stay listed (done) and keep their idempotency key. */
  doneRetentionMs: number;
}

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = {
  maxAttempts: 12,
  backoffBaseMs: 5_000,
  backoffMaxMs: 6 * 3600_000,
  concurrency: 64,
  perDestination: 8,
  doneRetentionMs: 7 * 24 * 3600_000,
};

/** What the queue tells its observers (metrics, the log line when a destination starts failing). */
export interface QueueEvents {
  done: [job: DeliveryJob];
  /** An attempt failed; `retryInMs` is null when the job went to the failed list. */
  attemptFailed: [job: DeliveryJob, error: Error, retryInMs: number | null];
}

export interface DeliveryQueue {
  readonly backend: 'bullmq' | 'embedded';
  /** Adds a job; `added` is false when a job with its key exists already. */
  enqueue(input: EnqueueInput): Promise<{ id: string; added: boolean }>;
  /** The handler of one kind of job; register before start(). */
  handle(kind: string, handler: DeliveryHandler): void;
  /** Starts running jobs in this process. A queue that is never started only accepts jobs. */
  start(): Promise<void>;
  /** Stops taking new jobs (running ones finish); resume() takes them again. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  list(status: JobStatus, limit: number): Promise<JobInfo[]>;
  /** Runs failed (or done) jobs again, as new attempts from 1; answers how many were requeued. */
  redeliver(ids: string[]): Promise<number>;
  counts(): Promise<QueueCounts>;
  on<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): unknown;
  off<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): unknown;
  /** Stops running jobs, waits for the running ones, releases connections. */
  close(): Promise<void>;
}

/** Retry delay after attempt n (1-based) failed: exponential, the upper half random. */
export function backoffMs(
  attempt: number,
  o: Pick<QueueOptions, 'backoffBaseMs' | 'backoffMaxMs'>,
) {
  const cap = Math.min(o.backoffMaxMs, o.backoffBaseMs * 2 ** Math.min(30, attempt - 1));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}
