/**
 * Bots' webhook deliveries as delivery-queue jobs: what a job carries, the request each attempt
 * makes, and what it reports. Two kinds:
 *
 * - `bot-webhook`, Standard Webhooks (standardwebhooks.com) for service bots. The job carries
 *   everything an attempt needs (URL, body, `webhook-id`, the endpoint's `whsec_` secret), so
 *   it runs in the node or in any `rum worker` sharing its Redis. Each attempt signs anew:
 *   `webhook-timestamp` is the attempt's time and `webhook-signature` is
 *   `v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`; `webhook-id` is the same on
 *   every attempt (the receiver's idempotency key).
 * - `bot-telegram`, the Bot API's own push (setWebhook): the update as JSON, with
 *   `X-Telegram-Bot-Api-Secret-Token` when the bot set a secret. It runs only in the node: the
 *   secret is read from the bot's row at run time, and a bot may answer the push with a method
 *   call in the body, which the node runs as the bot.
 *
 * Either kind asks a gate before each attempt whether the job's endpoint is still the bot's
 * (not deleted, replaced or disabled since it was queued); a job of an endpoint that is gone
 * ends without a request. Each attempt's outcome goes to a sink (the node's store, or, from a
 * worker, a Redis stream the node reads), so the node knows what was delivered.
 *
 * Job keys are `bot-webhook:<bot>:<gen>:<update>` and `bot-telegram:<bot>:<gen>:<update>`: a
 * retry, a restart or a second enqueue of the same update for the same endpoint is the same job.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { HttpPost } from '../../src/queue/http-delivery.ts';
import { answeredStatus } from '../../src/queue/http-delivery.ts';
import {
  type DeliveryHandler,
  type DeliveryJob,
  type EnqueueInput,
  PermanentDeliveryError,
} from '../port.ts';

export const STANDARD_KIND = 'bot-webhook';
export const TELEGRAM_KIND = 'bot-telegram';
export type WebhookKind = typeof STANDARD_KIND | typeof TELEGRAM_KIND;

/** What every webhook job carries. */
interface JobBase {
  bot: number;
  /** The endpoint's generation (bridges/bots/webhooks.ts). */
  gen: string;
  update: number;
  url: string;
  /** The request body, exactly as sent (and signed). */
  body: string;
}

export interface StandardJob extends JobBase {
  /** `webhook-id`. */
  id: string;
  /** `whsec_<base64>`. */
  secret: string;
}

export type TelegramJob = JobBase;

/** What one attempt came to. */
export interface WebhookOutcome {
  bot: number;
  gen: string;
  update: number;
  ok: boolean;
  /** The attempt failed and no other follows (permanent, or the last one). */
  final: boolean;
  /** The receiver's status, when it answered. */
  status: number | null;
  error: string | null;
  /** ms since the epoch. */
  at: number;
}

/** Where outcomes go; a returned promise is awaited (its failure is the sink's to report). */
export type OutcomeSink = (o: WebhookOutcome) => void | Promise<void>;

/** Whether a job's endpoint is still the bot's, asked before each attempt. */
export type EndpointGate = (job: JobBase, kind: WebhookKind) => Promise<boolean> | boolean;

/** Standard Webhooks' symmetric secret: 24 random bytes, `whsec_<base64>`. */
export const SECRET_RE = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

/** `v1,<base64 HMAC-SHA256>` of `<id>.<timestamp>.<body>` (Standard Webhooks' signed content). */
export function signStandard(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}

/** The HMAC keys of the secrets in use (made once each: making one costs more than a MAC). */
const keys = new Map<string, KeyObject>();

function keyOf(secret: string): KeyObject {
  let k = keys.get(secret);
  if (!k) {
    if (keys.size >= 10_000) keys.clear();
    k = createSecretKey(Buffer.from(secret.slice('whsec_'.length), 'base64'));
    keys.set(secret, k);
  }
  return k;
}

/**
 * `webhook-id` of an update: the same on every attempt and across changes of the endpoint; the
 * bot's creation time (ms, base 36) keeps it apart from the same bot id and update id of another
 * node (or of this one after its database was made anew), which a receiver would take for a
 * repeat.
 */
export function webhookId(botId: number, createdAt: number, updateId: number): string {
  return `msg_${botId}_${createdAt.toString(36)}_${updateId}`;
}

/** The Standard Webhooks event type of a bot update kind. */
export function eventType(kind: string): string {
  switch (kind) {
    case 'message':
      return 'rum.message';
    case 'edited_message':
      return 'rum.message.edited';
    case 'deleted_business_messages':
      return 'rum.message.deleted';
    case 'message_reaction':
      return 'rum.message.reaction';
    case 'rum_send_result':
      return 'rum.send.result';
    default:
      return `rum.${kind.replace(/[^a-z0-9_]/g, '_')}`;
  }
}

export interface UpdateForJob {
  updateId: number;
  kind: string;
  groupId: string;
  trxId: string;
  payload: Record<string, unknown>;
  createdAt: number;
}

export interface EndpointForJob {
  botId: number;
  /** When the bot was made (ms): part of its webhook-ids. */
  botCreatedAt: number;
  gen: string;
  kind: 'standard' | 'telegram';
  url: string;
  /** The `whsec_` secret (standard); unused for telegram (read at run time). */
  secret: string | null;
}

/** The job key of an update for an endpoint. */
export function jobKey(kind: WebhookKind, botId: number, gen: string, updateId: number): string {
  return `${kind}:${botId}:${gen}:${updateId}`;
}

/** The bot, endpoint and update of a webhook job key, or null for another key. */
export function parseJobKey(
  key: string,
): { kind: WebhookKind; bot: number; gen: string; update: number } | null {
  const m = /^(bot-webhook|bot-telegram):(\d{1,15}):([a-z0-9]{1,40}):(\d{1,15})$/.exec(key);
  if (!m) return null;
  return { kind: m[1] as WebhookKind, bot: Number(m[2]), gen: m[3]!, update: Number(m[4]) };
}

/** The queue job that delivers an update to an endpoint. */
export function webhookJob(ep: EndpointForJob, u: UpdateForJob): EnqueueInput {
  const destination = new URL(ep.url).origin;
  if (ep.kind === 'telegram') {
    const payload: TelegramJob = {
      bot: ep.botId,
      gen: ep.gen,
      update: u.updateId,
      url: ep.url,
      body: JSON.stringify({ update_id: u.updateId, ...u.payload }),
    };
    return {
      key: jobKey(TELEGRAM_KIND, ep.botId, ep.gen, u.updateId),
      kind: TELEGRAM_KIND,
      destination,
      payload,
    };
  }
  const payload: StandardJob = {
    bot: ep.botId,
    gen: ep.gen,
    update: u.updateId,
    url: ep.url,
    id: webhookId(ep.botId, ep.botCreatedAt, u.updateId),
    secret: ep.secret ?? '',
    body: JSON.stringify({
      type: eventType(u.kind),
      timestamp: new Date(u.createdAt).toISOString(),
      data: { update_id: u.updateId, group_id: u.groupId, trx_id: u.trxId, ...u.payload },
    }),
  };
  return {
    key: jobKey(STANDARD_KIND, ep.botId, ep.gen, u.updateId),
    kind: STANDARD_KIND,
    destination,
    payload,
  };
}

function checkBase(p: unknown, kind: WebhookKind): JobBase {
  const o = p as Partial<StandardJob> | null;
  if (
    !o ||
    typeof o !== 'object' ||
    typeof o.bot !== 'number' ||
    typeof o.gen !== 'string' ||
    typeof o.update !== 'number' ||
    typeof o.url !== 'string' ||
    typeof o.body !== 'string'
  ) {
    throw new PermanentDeliveryError(`${kind} delivery: not a webhook job`);
  }
  if (kind === STANDARD_KIND && (typeof o.id !== 'string' || !SECRET_RE.test(o.secret ?? ''))) {
    throw new PermanentDeliveryError(`${kind} delivery: no webhook-id or secret`);
  }
  return o as JobBase;
}

export interface WebhookHandlerComponents {
  post: HttpPost;
  gate: EndpointGate;
  report: OutcomeSink;
  /** The queue's attempts per job: an attempt that fails at this number is final. */
  maxAttempts: number;
}

/** Runs an attempt: asks the gate, sends, reports; returns the answer body (telegram). */
async function attempt(
  c: WebhookHandlerComponents,
  kind: WebhookKind,
  job: DeliveryJob,
  request: (p: JobBase) => Promise<{ headers: Record<string, string>; answerBytes: number }>,
): Promise<{ p: JobBase; answer: string } | null> {
  const p = checkBase(job.payload, kind);
  if (!(await c.gate(p, kind))) return null; // its endpoint is gone: nothing is sent
  const base = { bot: p.bot, gen: p.gen, update: p.update };
  try {
    const { headers, answerBytes } = await request(p);
    const answer = await c.post(p.url, headers, p.body, answerBytes);
    await c.report({ ...base, ok: true, final: false, status: null, error: null, at: Date.now() });
    return { p, answer };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const status = answeredStatus(err);
    const permanent =
      err instanceof PermanentDeliveryError || err.name === 'PermanentDeliveryError';
    await c.report({
      ...base,
      ok: false,
      final: permanent || job.attempt >= c.maxAttempts,
      status,
      error: err.message,
      at: Date.now(),
    });
    throw err;
  }
}

/** The handler of kind `bot-webhook` (Standard Webhooks). */
export function standardWebhookHandler(c: WebhookHandlerComponents): DeliveryHandler {
  return async (job) => {
    await attempt(c, STANDARD_KIND, job, async (p) => {
      const s = p as StandardJob;
      const timestamp = Math.floor(Date.now() / 1000);
      return {
        headers: {
          'webhook-id': s.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signStandard(s.secret, s.id, timestamp, s.body),
          'idempotency-key': s.id,
        },
        answerBytes: 0,
      };
    });
  };
}

/** The largest answer of a Telegram bot read for a method call. */
export const TELEGRAM_ANSWER_BYTES = 64 * 1024;

export interface TelegramHandlerComponents extends WebhookHandlerComponents {
  /** The bot's secret token now (null: none), read at run time. */
  secretToken(botId: number): string | null;
  /** Waits for one of the bot's max_connections; answers the release. */
  slot(botId: number): Promise<() => void>;
  /** A method call the bot answered the push with (JSON with `method`); runs it as the bot. */
  answer(botId: number, updateId: number, call: Record<string, unknown>): Promise<void>;
}

/** The handler of kind `bot-telegram` (setWebhook's push); runs in the node only. */
export function telegramWebhookHandler(c: TelegramHandlerComponents): DeliveryHandler {
  return async (job) => {
    const p = checkBase(job.payload, TELEGRAM_KIND);
    const release = await c.slot(p.bot);
    let done: { p: JobBase; answer: string } | null;
    try {
      done = await attempt(c, TELEGRAM_KIND, job, async (q) => {
        const token = c.secretToken(q.bot);
        const headers: Record<string, string> = {};
        if (token !== null) headers['x-telegram-bot-api-secret-token'] = token;
        return { headers, answerBytes: TELEGRAM_ANSWER_BYTES };
      });
    } finally {
      release();
    }
    if (!done) return;
    const call = methodCall(done.answer);
    if (call) await c.answer(p.bot, p.update, call);
  };
}

/** A method call in a bot's answer to a push (`{"method":"sendMessage",…}`), or null. */
export function methodCall(answer: string): Record<string, unknown> | null {
  const t = answer.trim();
  if (!t.startsWith('{')) return null;
  try {
    const o = JSON.parse(t) as unknown;
    if (o && typeof o === 'object' && !Array.isArray(o)) {
      const m = (o as { method?: unknown }).method;
      if (typeof m === 'string' && /^[A-Za-z]{1,64}$/.test(m)) return o as Record<string, unknown>;
    }
  } catch {
    // not JSON: an answer without a call
  }
  return null;
}
