/**
 * The embedded delivery queue: jobs live in the node's own SQLite (table `delivery_jobs`) and run
 * in this process, so a node needs no Redis. The node (src/queue/create.ts) builds it when no
 * Redis URL is configured; tests build it over a temporary database.
 *
 * One process runs the jobs of a database (the node that owns it); other connections may add
 * jobs, which a bounded poll picks up.
 *
 * - Claiming: jobs are claimed per destination, several at a time, in one transaction with the
 *   results of the attempts that finished since the last one (done, retry, failed), so a busy
 *   queue commits a few times per event-loop turn, not once per job.
 * - Fairness: destinations with due jobs and a free slot take turns (round robin), each taking at
 *   most its free per-destination slots per turn; a destination with thousands of queued jobs
 *   waits its turn like one with a single job.
 * - Leases: a claimed job is `active` with `lease_until`, renewed while its attempt runs. A job
 *   whose lease ran out belongs to a process that died in the middle of it: it goes back to
 *   pending (at start and periodically), so a kill -9 loses nothing; the attempt runs again
 *   with the same idempotency key.
 * - Timers: a turn runs when something changed (a job added or finished); a timer sleeps until
 *   the next delayed job is due; a slow poll (`pollMs`) is the safety net.
 */
import { EventEmitter } from 'node:events';
import type { Statement } from 'better-sqlite3';
import type { Logger } from 'pino';
import { type Db, unsyncedTransaction } from '../storage/db.ts';
import {
  backoffMs,
  DEFAULT_QUEUE_OPTIONS,
  type DeliveryHandler,
  type DeliveryJob,
  type DeliveryQueue,
  type EnqueueInput,
  type JobInfo,
  type JobStatus,
  PermanentDeliveryError,
  type QueueCounts,
  type QueueEvents,
  type QueueOptions,
  RetryAfterError,
} from './types.ts';

export interface EmbeddedQueueInit extends Partial<QueueOptions> {
  /**
   * How long a claimed job stays with this process without a renewal (renewed every third of
   * it while the attempt runs). After a kill -9 its jobs run again once their lease has run out.
   */
  leaseMs?: number;
  /** Safety-net poll for jobs other connections added, expired leases and old done jobs. */
  pollMs?: number;
  /** Where a failing database write is reported (it is retried at the next poll). */
  log?: Logger;
}

/** The most setTimeout can wait. */
const MAX_TIMER_MS = 0x7fff_ffff;
/** The longest last_error kept (a handler's message may quote a whole response). */
const MAX_ERROR_CHARS = 2000;
/** Rows one prune statement deletes, so the write lock is never held long. */
const PRUNE_BATCH = 1000;

interface Row {
  id: number;
  key: string;
  kind: string;
  destination: string;
  payload: string;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  run_at: number;
  last_error: string | null;
  created_at: number;
  finished_at: number | null;
}

type ClaimedRow = Pick<
  Row,
  'id' | 'key' | 'kind' | 'destination' | 'payload' | 'attempts' | 'max_attempts'
>;

/** What this process knows of a destination. */
interface Dest {
  /** Attempts running here. */
  active: number;
  /** The earliest run_at of its pending jobs as far as known; Infinity when it has none. */
  nextAt: number;
}

type Outcome =
  | { job: DeliveryJob; type: 'done' }
  | { job: DeliveryJob; type: 'retry'; error: Error; delayMs: number }
  | { job: DeliveryJob; type: 'failed'; error: Error };

interface PendingEnqueue {
  input: EnqueueInput;
  payload: string;
  delayMs: number;
  resolve: (r: { id: string; added: boolean }) => void;
  reject: (e: unknown) => void;
}

export class EmbeddedQueue extends EventEmitter<QueueEvents> implements DeliveryQueue {
  readonly backend = 'embedded' as const;
  private readonly db: Db;
  private readonly o: QueueOptions;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly log: Logger | undefined;
  private readonly handlers = new Map<string, DeliveryHandler>();
  private readonly sql: ReturnType<typeof prepare>;

  private started = false;
  private paused = false;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private readonly dests = new Map<string, Dest>();
  /** Destinations with a due job and a free slot, in turn order. */
  private readonly ready = new Set<string>();
  /** Ids this process has claimed and not yet written back. */
  private readonly held = new Set<number>();
  private readonly running = new Set<Promise<void>>();
  private outcomes: Outcome[] = [];
  private enqueues: PendingEnqueue[] = [];
  private turnScheduled = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private pollTimer: NodeJS.Timeout | undefined;
  /** PRAGMA data_version at the last look for other connections' jobs (-1: never looked). */
  private dataVersion = -1;

  constructor(db: Db, init: EmbeddedQueueInit = {}) {
    super();
    this.db = db;
    const { leaseMs, pollMs, log, ...options } = init;
    this.o = { ...DEFAULT_QUEUE_OPTIONS, ...withoutUndefined(options) };
    this.leaseMs = leaseMs ?? 60_000;
    this.pollMs = pollMs ?? 5_000;
    this.log = log;
    this.sql = prepare(db);
  }

  enqueue(input: EnqueueInput): Promise<{ id: string; added: boolean }> {
    if (this.closing) return Promise.reject(new Error('delivery queue closed'));
    // Checked here so that a bad job fails alone, not the transaction of its whole tick.
    let payload: string | undefined;
    try {
      payload = JSON.stringify(input.payload ?? null);
    } catch (err) {
      return Promise.reject(new TypeError('delivery payload is not JSON', { cause: err }));
    }
    for (const field of ['key', 'kind', 'destination'] as const) {
      if (typeof input[field] !== 'string' || input[field] === '')
        return Promise.reject(new TypeError(`delivery ${field} must be a non-empty string`));
    }
    if (payload === undefined) return Promise.reject(new TypeError('delivery payload is not JSON'));
    const delayMs = input.delayMs ?? 0;
    if (!Number.isFinite(delayMs)) return Promise.reject(new TypeError('delayMs must be finite'));
    return new Promise((resolve, reject) => {
      // Every job added in the same tick goes in one transaction.
      if (this.enqueues.length === 0) queueMicrotask(() => this.writeEnqueues());
      this.enqueues.push({ input, payload, delayMs, resolve, reject });
    });
  }

  handle(kind: string, handler: DeliveryHandler): void {
    this.handlers.set(kind, handler);
  }

  async start(): Promise<void> {
    if (this.started || this.closing) return;
    this.started = true;
    this.maintain();
    const every = Math.max(10, Math.min(this.pollMs, this.leaseMs / 3));
    this.pollTimer = setInterval(() => this.maintain(), every);
  }

  async pause(): Promise<void> {
    this.paused = true;
  }

  async resume(): Promise<void> {
    this.paused = false;
    this.scheduleTurn();
  }

  async list(status: JobStatus, limit: number): Promise<JobInfo[]> {
    const n = Math.max(0, Math.min(Math.floor(limit), 10_000));
    const rows = (
      status === 'pending' || status === 'active' ? this.sql.listOldest : this.sql.listNewest
    ).all(status, n) as Row[];
    return rows.map((r) => ({
      id: String(r.id),
      key: r.key,
      kind: r.kind,
      destination: r.destination,
      status: r.status,
      attempts: r.attempts,
      at: r.run_at,
      lastError: r.last_error,
      createdAt: r.created_at,
    }));
  }

  async redeliver(ids: string[]): Promise<number> {
    const now = Date.now();
    const requeued = this.db.$client.transaction(() => {
      const out: { destination: string }[] = [];
      for (const id of ids) {
        if (!/^[0-9]{1,15}$/.test(id)) continue;
        const row = this.sql.redeliver.get(now, Number(id)) as { destination: string } | undefined;
        if (row) out.push(row);
      }
      return out;
    })();
    for (const r of requeued) this.noteWork(r.destination, now);
    return requeued.length;
  }

  async counts(): Promise<QueueCounts> {
    const counts: QueueCounts = { pending: 0, active: 0, done: 0, failed: 0 };
    for (const r of this.sql.counts.all() as { status: JobStatus; n: number }[]) {
      if (r.status in counts) counts[r.status] = r.n;
    }
    return counts;
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutDown();
    return this.closePromise;
  }

  private async shutDown() {
    this.closing = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.wakeTimer);
    this.writeEnqueues();
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.turn();
    this.closed = true;
  }

  /** Writes the jobs added since the last write, in one transaction. */
  private writeEnqueues() {
    const batch = this.enqueues;
    if (batch.length === 0) return;
    this.enqueues = [];
    const now = Date.now();
    let results: { id: number; added: boolean; runAt: number }[];
    try {
      results = this.db.$client.transaction(() =>
        batch.map(({ input, payload, delayMs }) => {
          const runAt = now + Math.max(0, Math.round(delayMs));
          const inserted = this.sql.insert.get(
            input.key,
            input.kind,
            input.destination,
            payload,
            this.o.maxAttempts,
            runAt,
            now,
          ) as { id: number } | undefined;
          if (inserted) return { id: inserted.id, added: true, runAt };
          const existing = this.sql.byKey.get(input.key) as { id: number };
          return { id: existing.id, added: false, runAt };
        }),
      )();
    } catch (err) {
      for (const e of batch) e.reject(err);
      return;
    }
    batch.forEach((e, i) => {
      const r = results[i]!;
      if (r.added) this.noteWork(e.input.destination, r.runAt);
      e.resolve({ id: String(r.id), added: r.added });
    });
  }

  private scheduleTurn() {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => this.turn());
  }

  /**
   * One turn: writes the outcomes of finished attempts and claims jobs for the free slots, in
   * one transaction; then starts the claimed attempts and tells the listeners.
   */
  private turn() {
    this.turnScheduled = false;
    if (this.closed) return;
    const claiming =
      this.started &&
      !this.paused &&
      !this.closing &&
      this.ready.size > 0 &&
      this.running.size < this.o.concurrency;
    if (this.outcomes.length === 0 && !claiming) return;
    const outcomes = this.outcomes;
    this.outcomes = [];
    const now = Date.now();
    let claims: Claim[];
    try {
      claims = this.unsynced(() => {
        for (const o of outcomes) this.writeOutcome(o, now);
        return claiming ? this.claim(now) : [];
      });
    } catch (err) {
      // Nothing was written: keep the outcomes for the next turn, at the next poll at the latest.
      this.outcomes = outcomes.concat(this.outcomes);
      this.log?.error({ err }, 'delivery queue: writing to the database failed');
      return;
    }
    for (const o of outcomes) {
      this.held.delete(Number(o.job.id));
      if (o.type === 'retry') this.noteWork(o.job.destination, now + o.delayMs);
    }
    for (const c of claims) {
      const d = this.dest(c.destination);
      d.active += c.rows.length;
      this.ready.delete(c.destination);
      if (c.exhausted) d.nextAt = c.nextAt;
      for (const row of c.rows) this.run(row, d);
      this.place(c.destination, d);
    }
    for (const o of outcomes) {
      if (o.type === 'done') this.emit('done', o.job);
      else if (o.type === 'retry') this.emit('attemptFailed', o.job, o.error, o.delayMs);
      else this.emit('attemptFailed', o.job, o.error, null);
    }
  }

  /**
   * What a turn writes (claims, outcomes, leases) may be lost on a power loss without losing a
   * job: a lost claim leaves the job pending, a lost outcome leaves it active until its lease
   * runs out, and either way it runs again with the same key. One fsync per turn would otherwise
   * cost more than the turn itself.
   */
  private unsynced<T>(f: () => T): T {
    return unsyncedTransaction(this.db.$client, f);
  }

  private writeOutcome(o: Outcome, now: number) {
    const id = Number(o.job.id);
    if (o.type === 'done') this.sql.done.run(now, now, id);
    else if (o.type === 'retry') this.sql.retry.run(now + o.delayMs, lastError(o.error), id);
    else this.sql.failed.run(now, now, lastError(o.error), id);
  }

  /** Takes jobs for the free slots, destinations in turn. Runs inside the turn's transaction. */
  private claim(now: number): Claim[] {
    const claims: Claim[] = [];
    let free = this.o.concurrency - this.running.size;
    const leaseUntil = now + this.leaseMs;
    // The free slots are shared over the waiting destinations, in turn order; what one of them
    // leaves goes to the next, and what is left at the end to the next turn.
    const share = Math.ceil(free / this.ready.size);
    for (const destination of this.ready) {
      if (free <= 0) break;
      const d = this.dest(destination);
      const want = Math.min(free, share, this.o.perDestination - d.active);
      if (want <= 0) continue;
      const rows = this.sql.claim.all(leaseUntil, destination, now, want) as ClaimedRow[];
      rows.sort((a, b) => a.id - b.id);
      free -= rows.length;
      const exhausted = rows.length < want;
      const next = exhausted
        ? (this.sql.nextAt.get(destination) as { at: number | null }).at
        : null;
      claims.push({ destination, rows, exhausted, nextAt: next ?? Infinity });
    }
    return claims;
  }

  private run(row: ClaimedRow, d: Dest) {
    this.held.add(row.id);
    const job: DeliveryJob = {
      id: String(row.id),
      key: row.key,
      kind: row.kind,
      destination: row.destination,
      payload: null,
      attempt: row.attempts,
    };
    const handler = this.handlers.get(row.kind);
    const attempt = (async () => {
      try {
        job.payload = JSON.parse(row.payload);
      } catch (err) {
        throw new PermanentDeliveryError('the stored payload is not JSON', { cause: err });
      }
      if (!handler) throw new Error(`no handler for deliveries of kind ${row.kind}`);
      await handler(job);
    })().then(
      () => this.finish(d, { job, type: 'done' }),
      (err: unknown) => this.finish(d, this.failure(job, row.max_attempts, toError(err))),
    );
    this.running.add(attempt);
    void attempt.finally(() => this.running.delete(attempt));
  }

  private failure(job: DeliveryJob, maxAttempts: number, error: Error): Outcome {
    if (isPermanent(error) || job.attempt >= maxAttempts) return { job, type: 'failed', error };
    const retryAfter = retryAfterMs(error);
    const delayMs =
      retryAfter === null
        ? backoffMs(job.attempt, this.o)
        : Math.round(Math.min(Math.max(0, retryAfter), this.o.backoffMaxMs));
    return { job, type: 'retry', error, delayMs };
  }

  private finish(d: Dest, outcome: Outcome) {
    d.active--;
    this.outcomes.push(outcome);
    this.place(outcome.job.destination, d);
    this.scheduleTurn();
  }

  private dest(destination: string): Dest {
    let d = this.dests.get(destination);
    if (!d) {
      d = { active: 0, nextAt: Infinity };
      this.dests.set(destination, d);
    }
    return d;
  }

  /** A destination has a pending job due at `at` (or may have, when another connection added it). */
  private noteWork(destination: string, at: number) {
    if (!this.started || this.closing) return;
    const d = this.dest(destination);
    if (at < d.nextAt) d.nextAt = at;
    this.place(destination, d);
  }

  /** Puts a destination where it belongs: in the turn order, waiting for a timer, or forgotten. */
  private place(destination: string, d: Dest) {
    if (d.active >= this.o.perDestination) return;
    if (d.nextAt <= Date.now()) {
      this.ready.add(destination);
      this.scheduleTurn();
    } else if (d.nextAt !== Infinity) this.armWake(d.nextAt);
    else if (d.active === 0) this.dests.delete(destination);
  }

  private armWake(at: number) {
    if (this.closing || at >= this.wakeAt) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => this.wake(), Math.min(MAX_TIMER_MS, at - Date.now()));
  }

  /** The earliest waiting destination is due: move every due one into the turn order. */
  private wake() {
    this.wakeAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [destination, d] of this.dests) {
      if (d.active >= this.o.perDestination || d.nextAt === Infinity) continue;
      if (d.nextAt <= now) this.ready.add(destination);
      else next = Math.min(next, d.nextAt);
    }
    if (next !== Infinity) this.armWake(next);
    if (this.ready.size > 0) this.scheduleTurn();
  }

  /**
   * The periodic safety net: renews the leases of this process's attempts, takes back jobs whose
   * lease ran out (a process died in the middle of them), learns of jobs other connections
   * added, and deletes done jobs past their retention.
   */
  private maintain() {
    if (this.closing) return;
    const now = Date.now();
    try {
      const released = this.unsynced(() => {
        const leaseUntil = now + this.leaseMs;
        for (const id of this.held) this.sql.renew.run(leaseUntil, id);
        const out: PendingAt[] = [];
        for (const r of this.sql.expired.all(now) as { id: number }[]) {
          if (this.held.has(r.id)) continue;
          const row = this.sql.release.get(r.id) as PendingAt | undefined;
          if (row) out.push(row);
        }
        return out;
      });
      for (const r of released) this.noteWork(r.destination, r.at);
      // Only another connection's commit can add jobs this process has not seen.
      const version = this.sql.dataVersion.get() as number;
      if (version !== this.dataVersion) {
        this.dataVersion = version;
        for (const r of this.sql.pendingByDestination.all() as PendingAt[])
          this.noteWork(r.destination, r.at);
      }
      const before = now - this.o.doneRetentionMs;
      for (let i = 0; i < 10; i++) {
        if (this.sql.prune.run(before, PRUNE_BATCH).changes < PRUNE_BATCH) break;
      }
    } catch (err) {
      this.log?.error({ err }, 'delivery queue: maintenance failed');
    }
    if (this.outcomes.length > 0) this.scheduleTurn();
  }
}

interface PendingAt {
  destination: string;
  at: number;
}

interface Claim {
  destination: string;
  rows: ClaimedRow[];
  /** Fewer due jobs than free slots: nextAt is the destination's next run_at (or Infinity). */
  exhausted: boolean;
  nextAt: number;
}

function prepare(db: Db) {
  const s = (sql: string): Statement => db.$client.prepare(sql);
  return {
    insert: s(
      `INSERT INTO delivery_jobs (key, kind, destination, payload, status, attempts, max_attempts, run_at, created_at)
       VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
    ),
    byKey: s('SELECT id FROM delivery_jobs WHERE key = ?'),
    // The destination's index walks its pending jobs oldest first; without INDEXED BY, SQLite
    // would take the status index and sort every due job of every destination.
    claim: s(
      `UPDATE delivery_jobs SET status = 'active', attempts = attempts + 1, lease_until = ?
       WHERE id IN (SELECT id FROM delivery_jobs INDEXED BY delivery_jobs_destination_status
                    WHERE destination = ? AND status = 'pending' AND run_at <= ? ORDER BY id LIMIT ?)
       RETURNING id, key, kind, destination, payload, attempts, max_attempts`,
    ),
    nextAt: s(
      `SELECT MIN(run_at) AS at FROM delivery_jobs INDEXED BY delivery_jobs_destination_status
       WHERE destination = ? AND status = 'pending'`,
    ),
    // A finished job's run_at is when it finished: the status index then serves pruning and lists.
    done: s(
      `UPDATE delivery_jobs SET status = 'done', lease_until = NULL, run_at = ?, finished_at = ?
       WHERE id = ? AND status = 'active'`,
    ),
    retry: s(
      `UPDATE delivery_jobs SET status = 'pending', lease_until = NULL, run_at = ?, last_error = ?
       WHERE id = ? AND status = 'active'`,
    ),
    failed: s(
      `UPDATE delivery_jobs SET status = 'failed', lease_until = NULL, run_at = ?, finished_at = ?,
       last_error = ? WHERE id = ? AND status = 'active'`,
    ),
    redeliver: s(
      `UPDATE delivery_jobs SET status = 'pending', attempts = 0, run_at = ?, finished_at = NULL
       WHERE id = ? AND status IN ('failed', 'done') RETURNING destination`,
    ),
    renew: s(`UPDATE delivery_jobs SET lease_until = ? WHERE id = ? AND status = 'active'`),
    expired: s(`SELECT id FROM delivery_jobs WHERE status = 'active' AND lease_until < ?`),
    release: s(
      `UPDATE delivery_jobs SET status = 'pending', lease_until = NULL WHERE id = ? AND status = 'active'
       RETURNING destination, run_at AS at`,
    ),
    pendingByDestination: s(
      `SELECT destination, MIN(run_at) AS at FROM delivery_jobs WHERE status = 'pending' GROUP BY destination`,
    ),
    prune: s(
      `DELETE FROM delivery_jobs WHERE id IN
       (SELECT id FROM delivery_jobs WHERE status = 'done' AND run_at < ? LIMIT ?)`,
    ),
    dataVersion: s('PRAGMA data_version').pluck(),
    counts: s('SELECT status, COUNT(*) AS n FROM delivery_jobs GROUP BY status'),
    listOldest: s('SELECT * FROM delivery_jobs WHERE status = ? ORDER BY run_at, id LIMIT ?'),
    listNewest: s(
      'SELECT * FROM delivery_jobs WHERE status = ? ORDER BY run_at DESC, id DESC LIMIT ?',
    ),
  };
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** By class, or by name for errors made by another copy of types.ts. */
function isPermanent(err: Error): boolean {
  return err instanceof PermanentDeliveryError || err.name === 'PermanentDeliveryError';
}

function retryAfterMs(err: Error): number | null {
  if (!(err instanceof RetryAfterError) && err.name !== 'RetryAfterError') return null;
  const ms = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : null;
}

/** What is kept of an error: its message, cut to a size fit for a list. */
function lastError(err: Error): string {
  const m = err.message || err.name;
  return m.length > MAX_ERROR_CHARS ? `${m.slice(0, MAX_ERROR_CHARS)}…` : m;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
