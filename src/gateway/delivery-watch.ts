/**
 * The operator's view of the delivery queue: Prometheus metrics (depth, in flight, done, failed,
 * retries, per destination) and one log line when a destination starts failing and one when it
 * recovers, rather than one per failed attempt.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeliveryJob, DeliveryQueue } from '../queue/types.ts';

/** Destinations named in labels; beyond them, `other` (a hostile peer cannot grow the series). */
const MAX_DESTINATIONS = 500;

export class DeliveryWatch {
  private readonly labelled = new Set<string>();
  /** Destinations failing now: since when, and how many attempts failed since. */
  private readonly failing = new Map<string, { since: number; attempts: number }>();
  private readonly outcomes: Counter<'destination' | 'outcome'>;
  private readonly log: Logger;
  private readonly onDone: (job: DeliveryJob) => void;
  private readonly onFailed: (job: DeliveryJob, err: Error, retryInMs: number | null) => void;
  private readonly queue: DeliveryQueue;

  constructor(queue: DeliveryQueue, registry: Registry, log: Logger) {
    this.queue = queue;
    this.log = log;
    const counts = () => queue.counts();
    new Gauge({
      name: 'rum_delivery_queue_depth',
      help: 'delivery jobs by status (pending includes delayed retries; failed is the dead-letter list)',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const c = await counts();
        for (const s of ['pending', 'active', 'done', 'failed'] as const)
          this.set({ status: s }, c[s]);
      },
    });
    new Gauge({
      name: 'rum_delivery_in_flight',
      help: 'delivery jobs running now',
      registers: [registry],
      async collect() {
        this.set((await counts()).active);
      },
    });
    this.outcomes = new Counter({
      name: 'rum_delivery_attempts_total',
      help: 'delivery attempts by destination and outcome (done, retry, failed)',
      labelNames: ['destination', 'outcome'],
      registers: [registry],
    });
    this.onDone = (job) => {
      this.outcomes.inc({ destination: this.label(job.destination), outcome: 'done' });
      const f = this.failing.get(job.destination);
      if (f) {
        this.failing.delete(job.destination);
        this.log.info(
          { destination: job.destination, failedAttempts: f.attempts, forMs: Date.now() - f.since },
          'delivery destination recovered',
        );
      }
    };
    this.onFailed = (job, err, retryInMs) => {
      const outcome = retryInMs === null ? 'failed' : 'retry';
      this.outcomes.inc({ destination: this.label(job.destination), outcome });
      const f = this.failing.get(job.destination);
      if (f) {
        f.attempts++;
        return;
      }
      this.failing.set(job.destination, { since: Date.now(), attempts: 1 });
      this.log.warn(
        { destination: job.destination, error: err.message, retryInMs },
        'delivery destination failing',
      );
    };
    queue.on('done', this.onDone);
    queue.on('attemptFailed', this.onFailed);
  }

  private label(destination: string): string {
    if (this.labelled.has(destination)) return destination;
    if (this.labelled.size >= MAX_DESTINATIONS) return 'other';
    this.labelled.add(destination);
    return destination;
  }

  /** Destinations failing now, for the operator's view. */
  failingDestinations(): { destination: string; since: number; attempts: number }[] {
    return [...this.failing].map(([destination, f]) => ({ destination, ...f }));
  }

  close(): void {
    this.queue.off('done', this.onDone);
    this.queue.off('attemptFailed', this.onFailed);
  }
}
