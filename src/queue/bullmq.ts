/**
 * The delivery queue on Redis, through BullMQ: any number of processes (a node, `rum worker`s on
 * other hosts) share one queue. What BullMQ gives: durable jobs, delays, retries, locks and
 * stalled-job recovery (a killed worker's job runs again elsewhere), the failed set used as the
 * dead-letter list. What this module adds:
 *
 * - **Idempotency.** The BullMQ job id is derived from the idempotency key (a hash: BullMQ ids
 *   may not contain ':'), so adding a key that is queued, running, done (until its retention
 *   ends) or failed adds nothing. The key itself travels in the job data.
 * - **Backoff.** A custom backoff strategy: `backoffMs()` of types.ts, or the destination's
 *   Retry-After (capped by backoffMaxMs). A PermanentDeliveryError becomes BullMQ's
 *   UnrecoverableError, so the job goes straight to the failed set.
 * - **Fair turns between destinations** (BullMQ's open-source edition has no groups): start-time
 *   fair queuing on BullMQ priorities. Each job gets a rank when it is added,
 *   max(virtual time, rank of its destination's previous job + 1), where the virtual time is
 *   the highest rank that has started running; its BullMQ priority is the rank minus a base.
 *   So the n-th queued job of every destination runs before the (n+1)-th of any: a destination
 *   with 10,000 queued jobs takes one turn per round like one with a single job, and a new
 *   destination's first job runs next. Ranks only grow; when the virtual time is far above the
 *   base (2^20), one Lua step moves the base up to it and shifts the priority of every queued,
 *   delayed and running job by as much, so priorities stay below BullMQ's limit (2^21).
 * - **Per-destination limits over all processes**: a lease per running job in a Redis sorted set
 *   per destination (member = a token of the process holding the slot, score = expiry by Redis's
 *   clock), renewed while the process runs jobs on it and expiring on its own, so a killed
 *   worker holds no slot for longer than `leaseMs`. The lease operations of one event-loop turn
 *   go to Redis in one Lua call. A job refused while jobs of its destination run in the same
 *   process waits (up to `localWaitMs`) for one of them to hand its slot (its token) over, which
 *   takes no call to Redis; one refused while other processes hold the slots asks again a few
 *   times over some tens of milliseconds. Only then is it moved to the delayed set
 *   (job.moveToDelayed + DelayedError, which costs no attempt) and parked in a per-destination
 *   sorted set: the job that frees a slot promotes the longest-parked one (back in its place,
 *   by its rank), and a growing fallback delay covers a lost wake-up. Either way the worker's
 *   other slots go on with other destinations' jobs.
 * - **Pause** is queue-wide (BullMQ's Queue.pause, kept in Redis): it stops every worker
 *   process on every host, and survives restarts until resume(). pause() also waits for the
 *   jobs running in this process.
 * - **Events** `done` and `attemptFailed` fire in the process that ran the attempt.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  DelayedError,
  Job,
  type JobsOptions,
  Queue,
  UnrecoverableError,
  Worker,
  type JobType,
} from 'bullmq';
import { Redis } from 'ioredis';
import { randomNonce } from '../crypto/random.ts';
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

/** Settings of this backend alone (the shared ones are QueueOptions). */
export interface BullQueueTuning {
  /** Redis key prefix (BullMQ's `prefix`); keys are `<prefix>:<name>:…`. Default `rum`. */
  prefix: string;
  /** How long a per-destination slot lives without renewal (a killed worker's slot frees then). */
  leaseMs: number;
  /** How long a refused job may wait in this process for a slot a job running here frees. */
  localWaitMs: number;
  /** Fallback delay of a job whose destination was full: base, doubling per refusal, capped. */
  parkBaseMs: number;
  parkMaxMs: number;
  /** When the virtual time is this far above the priority base, the base moves up; < 2^21. */
  rebaseAt: number;
  /** BullMQ's job lock: a job whose worker stopped renewing it runs again after this. */
  lockDurationMs: number;
  /** How often workers look for stalled jobs (active, lock expired): recovery takes lock + this. */
  stalledIntervalMs: number;
  /** How often a job may be found stalled (its worker gone) before it counts as failed. */
  maxStalledCount: number;
  /** How long close() waits for running attempts and for Redis before it lets go. */
  closeTimeoutMs: number;
  /** Connection and worker errors (Redis unreachable, a lost lock); the default drops them. */
  onError: (err: Error, where: string) => void;
}

/** How many times a job of a kind this process has no handler for is handed back to the queue. */
const MAX_HANDOFFS = 20;

export const DEFAULT_BULL_TUNING: BullQueueTuning = {
  prefix: 'rum',
  leaseMs: 30_000,
  localWaitMs: 1_000,
  parkBaseMs: 1_000,
  parkMaxMs: 30_000,
  rebaseAt: 2 ** 20,
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 10,
  closeTimeoutMs: 30_000,
  onError: () => {},
};

/** What a job carries in BullMQ (its name is the kind). */
interface JobData {
  key: string;
  destination: string;
  payload: unknown;
  /** Written by the enqueue that created the job, so that call can tell it added it. */
  nonce: string;
  /** Its place in the fair order (see the module comment). */
  rank: number;
}

/** The BullMQ job id of an idempotency key: no ':' (BullMQ refuses it), never all digits. */
export function jobIdOf(key: string): string {
  return `d${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

const BACKOFF_TYPE = 'rum-backoff';
/** BullMQ's highest priority number (the lowest priority). */
const MAX_PRIORITY = 2 ** 21 - 1;
/** How long a destination's last rank is remembered after its last enqueue. */
const LAST_RANK_TTL_MS = 24 * 3600_000;

// ---- fair order ----

/**
 * KEYS: fair hash {vt, base}, the destination's last rank, the job's key. ARGV: ttl of the last
 * rank. Answers {rank, base, virtual time}, or {-1, 0, 0} when the job exists already.
 */
const RANK_LUA = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1, 0, 0} end
local vt = tonumber(redis.call('HGET', KEYS[1], 'vt') or '0')
local base = tonumber(redis.call('HGET', KEYS[1], 'base') or '0')
local last = tonumber(redis.call('GET', KEYS[2]) or '-1')
local rank = math.max(vt, last + 1)
redis.call('SET', KEYS[2], rank, 'PX', tonumber(ARGV[1]))
return {rank, base, vt}
`;

/**
 * KEYS: fair hash, prioritized zset, delayed zset, active list. ARGV: job key prefix, highest
 * priority. Moves the base up to just below the virtual time and shifts the priority of every
 * job queued, delayed or running by as much, in one step, so the order of the jobs holds. It
 * reads and writes BullMQ's own records (src/commands/includes/getPriorityScore.lua: a
 * prioritized job's score is priority * 2^32 + a counter). Answers the base.
 */
const REBASE_LUA = `
local vt = tonumber(redis.call('HGET', KEYS[1], 'vt') or '0')
local base = tonumber(redis.call('HGET', KEYS[1], 'base') or '0')
local newBase = vt - 1
if newBase <= base then return base end
local shift = newBase - base
local maxp = tonumber(ARGV[2])
local P = 4294967296
local function moved(p)
  local q = p - shift
  if q < 1 then q = 1 end
  if q > maxp then q = maxp end
  return q
end
local function shiftField(id)
  local k = ARGV[1] .. id
  local p = tonumber(redis.call('HGET', k, 'priority') or '0')
  if p > 0 then redis.call('HSET', k, 'priority', moved(p)) end
end
local queued = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local batch = {}
for i = 1, #queued, 2 do
  local score = tonumber(queued[i + 1])
  local p = math.floor(score / P)
  local q = moved(p)
  batch[#batch + 1] = q * P + (score - p * P)
  batch[#batch + 1] = queued[i]
  redis.call('HSET', ARGV[1] .. queued[i], 'priority', q)
  if #batch >= 1000 then
    redis.call('ZADD', KEYS[2], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('ZADD', KEYS[2], unpack(batch)) end
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do shiftField(id) end
for _, id in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do shiftField(id) end
redis.call('HSET', KEYS[1], 'base', newBase)
return newBase
`;

function priorityOf(rank: number, base: number): number {
  return Math.min(MAX_PRIORITY, Math.max(1, rank - base));
}

// ---- per-destination leases ----

/**
 * Lease operations of one event-loop turn of a process, in order, in one call. A slot is held
 * under a token (`<process>:<n>`), not a job id: a process hands a token from a finished job to
 * the next job of the same destination waiting here, with no call at all. KEYS: the fair hash,
 * then a leases zset and a parked zset per destination. ARGV: limit, lease ms, the highest rank
 * started here by a hand-over since the last call (-1: none), then the operations, each
 * `op, index of its leases key in KEYS, …`:
 * - `a`, token, job id, rank: acquire: 1 = slot taken (the job is no longer parked, and the
 *   virtual time is at least the rank), 0 = the destination is full;
 * - `r`, token or '': release: frees the token's slot, answers the parked jobs to wake, oldest
 *   first, as many as there are free slots.
 * Answers one result per operation.
 */
const LEASE_OPS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local topRank = tonumber(ARGV[3])
local out = {}
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  local k = tonumber(ARGV[i + 1])
  local leases, parked = KEYS[k], KEYS[k + 1]
  if op == 'a' then
    local token, job, rank = ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
    i = i + 5
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    if redis.call('ZCARD', leases) < limit then
      redis.call('ZADD', leases, now + lease, token)
      redis.call('PEXPIRE', leases, lease)
      redis.call('ZREM', parked, job)
      if rank > topRank then topRank = rank end
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  else
    local token = ARGV[i + 2]
    i = i + 3
    if token ~= '' then redis.call('ZREM', leases, token) end
    local ids = {}
    if redis.call('EXISTS', parked) == 1 then
      redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
      local free = limit - redis.call('ZCARD', leases)
      if free > 0 then
        local popped = redis.call('ZPOPMIN', parked, free)
        for j = 1, #popped, 2 do ids[#ids + 1] = popped[j] end
      end
    end
    out[#out + 1] = ids
  end
end
if topRank >= 0 and topRank > tonumber(redis.call('HGET', KEYS[1], 'vt') or '0') then
  redis.call('HSET', KEYS[1], 'vt', topRank)
end
return out
`;

/**
 * KEYS: leases zset, parked zset. ARGV: job id, limit, parked ttl ms. Parks a refused job that
 * is in the delayed set now, so the next freed slot wakes it. Answers 1 instead when a slot
 * was freed meanwhile (its releaser could not see this job): the job wakes itself.
 */
const PARK_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then return 1 end
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return 0
`;

/** KEYS: leases zset. ARGV: lease ms, then tokens. Extends the leases of the slots held here. */
const RENEW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
-- XX: a slot released meanwhile is not made again.
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`;

interface RumCommands {
  rumRank(
    fair: string,
    last: string,
    job: string,
    ttlMs: number,
  ): Promise<[number, number, number]>;
  rumRebase(
    fair: string,
    prioritized: string,
    delayed: string,
    active: string,
    jobKeyPrefix: string,
    maxPriority: number,
  ): Promise<number>;
  /** numKeys, keys…, args… (see LEASE_OPS_LUA). */
  rumLeaseOps(...args: (string | number)[]): Promise<(number | string[])[]>;
  rumLeasePark(
    leases: string,
    parked: string,
    jobId: string,
    limit: number,
    parkedTtlMs: number,
  ): Promise<number>;
  rumLeaseRenew(leases: string, leaseMs: number, ...tokens: string[]): Promise<number>;
}

/** Pauses between the tries of a job refused while no job of its destination runs here. */
const POLL_MS = [5, 15, 40];

interface Waiter {
  jobId: string;
  rank: number;
  resolve: (acquired: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * Slots per destination over every process sharing the Redis; see the module comment. A slot
 * is held under a token of this process. A job refused while this process runs jobs of the same
 * destination waits here for one of them to finish, which hands it its token with no call to
 * Redis (so a busy destination costs neither parking nor a call per job). Only a job that
 * cannot wait here is parked in Redis.
 */
class DestinationLeases {
  /** job id → its destination and the token of its slot, for the jobs running here. */
  private readonly held = new Map<string, { destination: string; token: string }>();
  /** destination → how many of its jobs run here. */
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly keyCache = new Map<string, { leases: string; parked: string }>();
  private batch: {
    destination: string;
    args: (string | number)[];
    resolve: (result: number | string[]) => void;
    reject: (err: unknown) => void;
  }[] = [];
  /** The highest rank started by a hand-over and not yet told to Redis (-1: none). */
  private handedRank = -1;
  private handedTimer: NodeJS.Timeout | null = null;
  private readonly tokenBase = randomNonce(8).toString('hex');
  private tokenSeq = 0;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;
  private readonly redis: Redis & RumCommands;
  private readonly keyBase: string;
  private readonly limit: number;
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly onError: (err: Error) => void;

  constructor(
    redis: Redis & RumCommands,
    keyBase: string,
    limit: number,
    leaseMs: number,
    waitMs: number,
    onError: (err: Error) => void,
  ) {
    this.keyBase = keyBase;
    this.limit = limit;
    this.leaseMs = leaseMs;
    this.waitMs = waitMs;
    this.onError = onError;
    this.redis = redis;
    this.timer = setInterval(() => this.renew(), Math.max(50, Math.floor(leaseMs / 3)));
    this.timer.unref();
  }

  private keys(destination: string) {
    let k = this.keyCache.get(destination);
    if (!k) {
      const h = destinationHash(destination);
      k = {
        leases: `${this.keyBase}:dest:${h}:leases`,
        parked: `${this.keyBase}:dest:${h}:parked`,
      };
      if (this.keyCache.size >= 10_000) this.keyCache.clear();
      this.keyCache.set(destination, k);
    }
    return k;
  }

  private hold(destination: string, jobId: string, token: string) {
    this.held.set(jobId, { destination, token });
    this.running.set(destination, (this.running.get(destination) ?? 0) + 1);
  }

  /** Forgets a job's slot here; answers its token ('' when it held none). */
  private unhold(destination: string, jobId: string): string {
    const h = this.held.get(jobId);
    if (!h) return '';
    this.held.delete(jobId);
    const n = (this.running.get(destination) ?? 1) - 1;
    if (n > 0) this.running.set(destination, n);
    else this.running.delete(destination);
    return h.token;
  }

  /**
   * Takes a slot for the job (true), or answers that the destination is full (false). A job
   * refused while jobs of its destination run here waits (up to waitMs) for one of them to hand
   * over its slot; otherwise (the slots are held by other processes) it asks again a few times
   * over some tens of milliseconds: both cost far less than parking it in Redis.
   */
  async acquire(destination: string, jobId: string, rank: number): Promise<boolean> {
    if (await this.tryAcquire(destination, jobId, rank)) return true;
    for (const pause of POLL_MS) {
      if ((this.running.get(destination) ?? 0) > 0) return this.waitHere(destination, jobId, rank);
      if (this.stopped) return false;
      await new Promise((resolve) => setTimeout(resolve, pause));
      if (await this.tryAcquire(destination, jobId, rank)) return true;
    }
    return false;
  }

  private async tryAcquire(destination: string, jobId: string, rank: number): Promise<boolean> {
    const token = `${this.tokenBase}:${(this.tokenSeq++).toString(36)}`;
    const ok = await this.op(destination, ['a', token, jobId, rank]);
    if (ok === 1) this.hold(destination, jobId, token);
    return ok === 1;
  }

  /** Queues one operation of LEASE_OPS_LUA; those of one event-loop turn go in one call. */
  private op(destination: string, args: (string | number)[]): Promise<number | string[]> {
    return new Promise((resolve, reject) => {
      if (this.batch.push({ destination, args, resolve, reject }) === 1) {
        setImmediate(() => this.flush());
      }
    });
  }

  private flush() {
    const ops = this.batch;
    this.batch = [];
    if (this.handedTimer) {
      clearTimeout(this.handedTimer);
      this.handedTimer = null;
    }
    const handed = this.handedRank;
    this.handedRank = -1;
    const keys = [`${this.keyBase}:fair`];
    const index = new Map<string, number>();
    const argv: (string | number)[] = [this.limit, this.leaseMs, handed];
    for (const o of ops) {
      let i = index.get(o.destination);
      if (i === undefined) {
        const k = this.keys(o.destination);
        i = keys.length + 1;
        keys.push(k.leases, k.parked);
        index.set(o.destination, i);
      }
      argv.push(o.args[0]!, i, ...o.args.slice(1));
    }
    this.redis.rumLeaseOps(keys.length, ...keys, ...argv).then(
      (results) => {
        for (let j = 0; j < ops.length; j++) ops[j]!.resolve(results[j]!);
      },
      (e: unknown) => {
        // With no operation to answer (a hand-over's rank alone), the error is reported here.
        if (ops.length === 0) this.onError(asError(e));
        for (const o of ops) o.reject(e);
      },
    );
  }

  /**
   * A job started by a hand-over raises the virtual time as an acquire does: told to Redis with
   * the next call, or within 50 ms when none comes.
   */
  private handed(rank: number) {
    if (rank <= this.handedRank) return;
    this.handedRank = rank;
    if (this.batch.length > 0 || this.handedTimer) return;
    this.handedTimer = setTimeout(() => {
      this.handedTimer = null;
      // A call with no operation: only the rank goes.
      if (this.handedRank >= 0 && this.batch.length === 0) this.flush();
    }, 50);
    this.handedTimer.unref();
  }

  /** Waits for a job of the destination running here to hand over its slot (true), or not. */
  private waitHere(destination: string, jobId: string, rank: number): Promise<boolean> {
    const queue = this.waiting.get(destination) ?? [];
    if (this.stopped || queue.length >= this.limit) return Promise.resolve(false);
    this.waiting.set(destination, queue);
    return new Promise<boolean>((resolve) => {
      const w: Waiter = {
        jobId,
        rank,
        resolve,
        timer: setTimeout(() => {
          const i = queue.indexOf(w);
          if (i >= 0) queue.splice(i, 1);
          if (queue.length === 0 && this.waiting.get(destination) === queue) {
            this.waiting.delete(destination);
          }
          resolve(false);
        }, this.waitMs),
      };
      queue.push(w);
    });
  }

  /**
   * Parks a refused job once it is in the delayed set: the next freed slot wakes it. Answers
   * true when a slot is free already, so the caller wakes it now.
   */
  async park(destination: string, jobId: string): Promise<boolean> {
    const k = this.keys(destination);
    const ttl = Math.max(600_000, this.leaseMs * 4);
    return (await this.redis.rumLeasePark(k.leases, k.parked, jobId, this.limit, ttl)) === 1;
  }

  /**
   * Frees the job's slot (or none: ''): hands it to a job waiting here, with no call, or frees
   * it in Redis and answers the ids of parked jobs to wake.
   */
  async release(destination: string, jobId: string): Promise<string[]> {
    const token = jobId === '' ? '' : this.unhold(destination, jobId);
    const queue = token === '' ? undefined : this.waiting.get(destination);
    const next = queue?.shift();
    if (queue?.length === 0) this.waiting.delete(destination);
    if (!next) return (await this.op(destination, ['r', token])) as string[];
    clearTimeout(next.timer);
    this.hold(destination, next.jobId, token);
    this.handed(next.rank);
    next.resolve(true);
    return [];
  }

  /** Lets every waiting job go (they are parked): the queue is closing. */
  dropWaiters() {
    this.stopped = true;
    for (const queue of this.waiting.values()) {
      for (const w of queue) {
        clearTimeout(w.timer);
        w.resolve(false);
      }
    }
    this.waiting.clear();
  }

  private renew() {
    const byDest = new Map<string, string[]>();
    for (const { destination, token } of this.held.values()) {
      const tokens = byDest.get(destination);
      if (tokens) tokens.push(token);
      else byDest.set(destination, [token]);
    }
    for (const [destination, tokens] of byDest) {
      this.redis
        .rumLeaseRenew(this.keys(destination).leases, this.leaseMs, ...tokens)
        .catch((e: unknown) => this.onError(asError(e)));
    }
  }

  stop() {
    clearInterval(this.timer);
    if (this.handedTimer) clearTimeout(this.handedTimer);
  }
}

/** The part of a destination's Redis keys that names it (`<prefix>:<name>:dest:<hash>:…`). */
export function destinationHash(destination: string): string {
  return createHash('sha256').update(destination).digest('hex').slice(0, 32);
}

function defineCommands(redis: Redis): Redis & RumCommands {
  redis.defineCommand('rumRank', { numberOfKeys: 3, lua: RANK_LUA });
  redis.defineCommand('rumRebase', { numberOfKeys: 4, lua: REBASE_LUA });
  redis.defineCommand('rumLeaseOps', { lua: LEASE_OPS_LUA });
  redis.defineCommand('rumLeasePark', { numberOfKeys: 2, lua: PARK_LUA });
  redis.defineCommand('rumLeaseRenew', { numberOfKeys: 1, lua: RENEW_LUA });
  return redis as Redis & RumCommands;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function isPermanent(err: Error): boolean {
  return err instanceof PermanentDeliveryError || err.name === 'PermanentDeliveryError';
}

function retryAfterOf(err: Error): number | null {
  if (err instanceof RetryAfterError) return err.retryAfterMs;
  if (err.name === 'RetryAfterError') {
    const ms = (err as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof ms === 'number' && Number.isFinite(ms)) return ms;
  }
  return null;
}

// ---- the queue ----

// BullMQ 6 keeps the jobs of a paused queue in 'wait' (a flag in its meta pauses it).
const PENDING_TYPES: JobType[] = ['wait', 'prioritized', 'waiting-children', 'delayed'];

export class BullQueue implements DeliveryQueue {
  readonly backend = 'bullmq' as const;
  readonly options: QueueOptions;
  readonly tuning: BullQueueTuning;
  private readonly queue: Queue;
  /** Our own connection: ranks, leases, reading back what enqueue stored. */
  private readonly redis: Redis & RumCommands;
  private readonly connection: { url: string; maxRetriesPerRequest: null };
  private readonly keyBase: string;
  private readonly handlers = new Map<string, DeliveryHandler>();
  private readonly events = new EventEmitter();
  private leases: DestinationLeases | null = null;
  private worker: Worker | null = null;
  private workerReady = false;
  /** What the processor decided about a failed attempt, read by the backoff and 'failed' event. */
  private readonly failures = new Map<
    string,
    { job: DeliveryJob; error: Error; retryInMs: number | null }
  >();
  /** Attempts that succeeded, until BullMQ has recorded them (then `done` fires). */
  private readonly succeeded = new Map<string, DeliveryJob>();
  /** Lease releases and wake-ups still under way (close() waits for them). */
  private readonly releasing = new Set<Promise<void>>();
  private closed = false;

  readonly redisUrl: string;
  /** The BullMQ queue name; with the prefix, the Redis keys are `<prefix>:<name>:…`. */
  readonly name: string;

  constructor(
    redisUrl: string,
    name = 'deliveries',
    options: Partial<QueueOptions> = {},
    tuning: Partial<BullQueueTuning> = {},
  ) {
    this.redisUrl = redisUrl;
    this.name = name;
    if (!/^rediss?:\/\//.test(redisUrl)) throw new Error(`not a redis:// URL: ${redisUrl}`);
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) throw new Error(`bad queue name: ${name}`);
    this.options = { ...DEFAULT_QUEUE_OPTIONS, ...options };
    this.tuning = { ...DEFAULT_BULL_TUNING, ...tuning };
    this.keyBase = `${this.tuning.prefix}:${name}`;
    this.connection = { url: redisUrl, maxRetriesPerRequest: null };
    this.queue = new Queue(name, {
      connection: this.connection,
      prefix: this.tuning.prefix,
      defaultJobOptions: this.jobOptions(),
    });
    this.queue.on('error', (e) => this.tuning.onError(e, 'queue'));
    this.redis = defineCommands(
      new Redis(redisUrl, { maxRetriesPerRequest: null, enableAutoPipelining: true }),
    );
    this.redis.on('error', (e) => this.tuning.onError(e, 'redis'));
  }

  private jobOptions(): JobsOptions {
    return {
      attempts: this.options.maxAttempts,
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: { age: Math.max(1, Math.ceil(this.options.doneRetentionMs / 1000)) },
      removeOnFail: false,
    };
  }

  async enqueue(input: EnqueueInput): Promise<{ id: string; added: boolean }> {
    if (this.closed) throw new Error('queue closed');
    const id = jobIdOf(input.key);
    const [rank, rawBase, vt] = await this.redis.rumRank(
      `${this.keyBase}:fair`,
      `${this.keyBase}:last:${destinationHash(input.destination)}`,
      `${this.keyBase}:${id}`,
      LAST_RANK_TTL_MS,
    );
    if (rank < 0) return { id, added: false };
    const base = vt - rawBase > this.tuning.rebaseAt ? await this.rebase() : rawBase;
    const nonce = randomNonce(8).toString('hex');
    const data: JobData = {
      key: input.key,
      destination: input.destination,
      payload: input.payload,
      nonce,
      rank,
    };
    const delay = Math.max(0, Math.round(input.delayMs ?? 0));
    await this.queue.add(input.kind, data, {
      ...this.jobOptions(),
      jobId: id,
      delay,
      priority: priorityOf(rank, base),
    });
    // BullMQ answers the id whether it stored the job or found one (two enqueues of one key at
    // once both pass the check above): the stored nonce tells which one added it.
    const [stored, baseNow] = await Promise.all([
      this.redis.hget(`${this.keyBase}:${id}`, 'data'),
      this.redis.hget(`${this.keyBase}:fair`, 'base'),
    ]);
    const added = stored?.includes(`"nonce":"${nonce}"`) === true;
    // Another process moved the base between our rank and our add (which its move could not
    // see): give the job the priority of its rank over the new base.
    if (added && Number(baseNow ?? 0) !== base) {
      await new Job(this.queue, input.kind, {}, {}, id)
        .changePriority({ priority: priorityOf(rank, Number(baseNow ?? 0)) })
        .catch(() => {}); // it ran already
    }
    return { id, added };
  }

  /** Moves the priority base up (see the module comment); answers the base. */
  private rebase(): Promise<number> {
    const k = this.keyBase;
    return this.redis.rumRebase(
      `${k}:fair`,
      `${k}:prioritized`,
      `${k}:delayed`,
      `${k}:active`,
      `${k}:`,
      MAX_PRIORITY,
    );
  }

  handle(kind: string, handler: DeliveryHandler): void {
    this.handlers.set(kind, handler);
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('queue closed');
    if (this.worker) return;
    this.leases = new DestinationLeases(
      this.redis,
      this.keyBase,
      this.options.perDestination,
      this.tuning.leaseMs,
      this.tuning.localWaitMs,
      (e) => this.tuning.onError(e, 'lease'),
    );
    const worker = new Worker(this.name, (job, token) => this.process(job, token), {
      connection: this.connection,
      prefix: this.tuning.prefix,
      concurrency: this.options.concurrency,
      lockDuration: this.tuning.lockDurationMs,
      stalledInterval: this.tuning.stalledIntervalMs,
      maxStalledCount: this.tuning.maxStalledCount,
      settings: {
        backoffStrategy: (attemptsMade, _type, err, job) => {
          const f = job?.id ? this.failures.get(job.id) : undefined;
          if (f && f.retryInMs !== null) return f.retryInMs;
          const after = err ? retryAfterOf(err) : null;
          if (after !== null) return Math.min(this.options.backoffMaxMs, Math.max(0, after));
          return backoffMs(attemptsMade, this.options);
        },
      },
    });
    worker.on('error', (e) => this.tuning.onError(e, 'worker'));
    worker.on('completed', (job) => {
      const id = job.id;
      const dj = id ? this.succeeded.get(id) : undefined;
      if (!id || !dj) return;
      this.succeeded.delete(id);
      this.events.emit('done', dj);
    });
    worker.on('failed', (job, err) => {
      if (!job?.id) return;
      const f = this.failures.get(job.id);
      this.failures.delete(job.id);
      if (f) this.events.emit('attemptFailed', f.job, f.error, f.retryInMs);
      else this.events.emit('attemptFailed', toDeliveryJob(job), err, null);
    });
    this.worker = worker;
    await worker.waitUntilReady();
    this.workerReady = true;
  }

  /** One attempt: take the destination's slot (or park the job), run the handler, free the slot. */
  private async process(job: Job, token: string | undefined): Promise<void> {
    const id = job.id!;
    const data = job.data as JobData;
    this.succeeded.delete(id);
    this.failures.delete(id);
    const leases = this.leases!;
    const handedOff = Math.max(0, job.attemptsStarted - job.attemptsMade - 1);
    if (!this.handlers.has(job.name) && handedOff < MAX_HANDOFFS) {
      // A kind this process cannot run (an ActivityPub delivery needs the node's keys; a
      // `rum worker` runs only http): back to the queue for a process that can, no attempt
      // spent. A kind that no process takes in MAX_HANDOFFS turns fails as any error does.
      await job.moveToDelayed(Date.now() + 100 + Math.round(Math.random() * 200), token);
      throw new DelayedError();
    }
    if (!(await leases.acquire(data.destination, id, data.rank ?? 0))) {
      // Refused by the destination's limit: no attempt spent. Waits for a wake-up from the job
      // that frees a slot, or this growing fallback, whichever comes first.
      const refusals = Math.max(0, job.attemptsStarted - job.attemptsMade - 1);
      const cap = Math.min(
        this.tuning.parkMaxMs,
        this.tuning.parkBaseMs * 2 ** Math.min(20, refusals),
      );
      const wait = Math.round(cap / 2 + (Math.random() * cap) / 2);
      await job.moveToDelayed(Date.now() + wait, token);
      if (await leases.park(data.destination, id)) this.track(this.wake([id], data.destination));
      throw new DelayedError();
    }
    const dj = toDeliveryJob(job);
    try {
      const handler = this.handlers.get(job.name);
      if (!handler)
        throw new Error(`no handler for deliveries of kind ${job.name} in this process`);
      await handler(dj);
      this.succeeded.set(id, dj);
    } catch (e) {
      const err = asError(e);
      const permanent = isPermanent(err);
      const last = permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const after = retryAfterOf(err);
      const retryInMs = last
        ? null
        : after !== null
          ? Math.min(this.options.backoffMaxMs, Math.max(0, Math.round(after)))
          : backoffMs(job.attemptsMade + 1, this.options);
      this.failures.set(id, { job: dj, error: err, retryInMs });
      if (permanent) throw new UnrecoverableError(err.message);
      throw err;
    } finally {
      this.track(this.release(data.destination, id));
    }
  }

  private async release(destination: string, jobId: string) {
    await this.wake(await this.leases!.release(destination, jobId), destination);
  }

  /**
   * Promotes parked jobs (back to their place by rank). One that is gone or ran already (its
   * fallback fired) wakes nothing, so another parked job is woken in its stead, a few times.
   */
  private async wake(ids: string[], destination: string) {
    let missed = 0;
    for (const id of ids) {
      try {
        await new Job(this.queue, 'wake', {}, {}, id).promote();
      } catch {
        missed++;
      }
    }
    for (let tries = 0; missed > 0 && tries < 3; tries++) {
      const more = await this.leases!.release(destination, '');
      if (more.length === 0) return;
      missed = 0;
      for (const id of more) {
        try {
          await new Job(this.queue, 'wake', {}, {}, id).promote();
        } catch {
          missed++;
        }
      }
    }
  }

  private track(p: Promise<void>) {
    const t = p.catch((e: unknown) => this.tuning.onError(asError(e), 'lease'));
    this.releasing.add(t);
    t.finally(() => this.releasing.delete(t));
  }

  async pause(): Promise<void> {
    await this.queue.pause();
    if (this.worker) {
      // Wait for this process's running jobs; the queue-wide pause keeps the worker idle.
      await this.worker.pause();
      await this.worker.resume();
    }
  }

  async resume(): Promise<void> {
    await this.queue.resume();
  }

  async list(status: JobStatus, limit: number): Promise<JobInfo[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    const types: JobType[] =
      status === 'pending'
        ? PENDING_TYPES
        : status === 'active'
          ? ['active']
          : status === 'done'
            ? ['completed']
            : ['failed'];
    const asc = status === 'pending' || status === 'active';
    const jobs = (await this.queue.getJobs(types, 0, n - 1, asc)) as Job[];
    let runAt = new Map<string, number>();
    if (status === 'pending' && jobs.length > 0) {
      const ids = jobs.map((j) => j.id!);
      const scores = await this.redis.zmscore(`${this.keyBase}:delayed`, ...ids);
      runAt = new Map(
        ids.flatMap((id, i) => {
          const s = scores[i];
          return s == null ? [] : [[id, Math.floor(Number(s) / 0x1000)] as [string, number]];
        }),
      );
    }
    const out = jobs.map((j) => {
      const info = toInfo(j, status);
      const at = runAt.get(info.id);
      if (at !== undefined) info.at = at;
      return info;
    });
    if (status === 'pending') out.sort((a, b) => a.at - b.at);
    return out.slice(0, n);
  }

  async redeliver(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of new Set(ids)) {
      const job = (await this.queue.getJob(id)) as Job | undefined;
      if (!job) continue;
      const state = await job.getState();
      if (state !== 'failed' && state !== 'completed') continue;
      try {
        await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
        n++;
      } catch {
        // Another operator (or process) redelivered it first.
      }
    }
    return n;
  }

  async counts(): Promise<QueueCounts> {
    const c = await this.queue.getJobCounts(...PENDING_TYPES, 'active', 'completed', 'failed');
    const v = (k: string) => c[k] ?? 0;
    return {
      pending: PENDING_TYPES.reduce((s, t) => s + v(t), 0),
      active: v('active'),
      done: v('completed'),
      failed: v('failed'),
    };
  }

  on<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): this {
    this.events.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leases?.dropWaiters();
    if (this.worker) {
      // Running attempts end within their handler's timeout; a worker that never reached Redis,
      // or cannot reach it now, is not waited for beyond closeTimeoutMs.
      // A forced close is bounded too: right after Redis comes back, BullMQ's close may never
      // settle (seen when a node was stopped moments after its Redis restarted).
      const worker = this.worker;
      const limit = this.tuning.closeTimeoutMs;
      if (!this.workerReady || !(await within(worker.close(), limit))) {
        if (!(await within(worker.close(true), limit))) {
          this.tuning.onError(
            new Error('the worker did not close in time; its connections are dropped'),
            'worker',
          );
          await within(
            worker.disconnect().catch(() => {}),
            limit,
          );
        }
      }
    }
    this.leases?.stop();
    await within(Promise.all(this.releasing), this.tuning.closeTimeoutMs);
    await within(this.queue.close(), this.tuning.closeTimeoutMs);
    if (this.redis.status === 'ready') {
      await within(
        this.redis.quit().catch(() => {}),
        1_000,
      );
    }
    this.redis.disconnect();
  }
}

/** Whether `p` settled within `ms` (it keeps running either way). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function toDeliveryJob(job: Job): DeliveryJob {
  const data = job.data as JobData;
  return {
    id: job.id!,
    key: data.key,
    kind: job.name,
    destination: data.destination,
    payload: data.payload,
    attempt: job.attemptsMade + 1,
  };
}

function toInfo(job: Job, status: JobStatus): JobInfo {
  const data = job.data as JobData;
  const at =
    status === 'done' || status === 'failed'
      ? (job.finishedOn ?? job.timestamp)
      : status === 'active'
        ? (job.processedOn ?? job.timestamp)
        : job.timestamp + (job.delay ?? 0);
  return {
    id: job.id!,
    key: data.key,
    kind: job.name,
    destination: data.destination,
    status,
    attempts: job.attemptsMade,
    at,
    lastError: job.failedReason ? job.failedReason : null,
    createdAt: job.timestamp,
  };
}
