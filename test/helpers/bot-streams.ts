/**
 * A bot on the gateway's Redis streams, as a test drives it (bridges/bots/redis.ts): read the
 * updates stream, send requests and wait for their replies, and read a group's posts back.
 */
import type { Redis } from 'ioredis';
import { api } from './node-process.ts';
import { until } from './until.ts';

export interface StreamUpdate {
  id: string;
  updateId: number;
  kind: string;
  trxId: string;
  // biome-ignore lint/suspicious/noExplicitAny: a Telegram update, read loosely by tests.
  update: any;
}

export function fieldsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

export function toUpdate([id, fields]: [string, string[]]): StreamUpdate {
  const f = fieldsOf(fields);
  return {
    id,
    updateId: Number(f.update_id),
    kind: f.kind!,
    trxId: f.trx_id!,
    update: JSON.parse(f.update!),
  };
}

/** Every entry of a bot's updates stream, in order. */
export async function streamUpdates(redis: Redis, key: string): Promise<StreamUpdate[]> {
  const entries = (await redis.xrange(key, '-', '+')) as [string, string[]][];
  return entries.map(toUpdate);
}

/** XADDs a request; answers its entry id. */
export async function request(
  redis: Redis,
  key: string,
  r: { ref: string; method: string; params?: unknown; replyTo?: string },
): Promise<string> {
  const fields = ['ref', r.ref, 'method', r.method];
  if (r.params !== undefined) fields.push('params', JSON.stringify(r.params));
  if (r.replyTo) fields.push('reply_to', r.replyTo);
  return (await redis.xadd(key, '*', ...fields))!;
}

/** The replies with a ref, once there are `count` of them (in order). */
export async function replies(
  redis: Redis,
  key: string,
  ref: string,
  count = 1,
  ms = 20_000,
): Promise<Record<string, string>[]> {
  return until(
    async () => {
      const all = ((await redis.xrange(key, '-', '+')) as [string, string[]][])
        .map(([, f]) => fieldsOf(f))
        .filter((f) => f.ref === ref);
      return all.length >= count && all;
    },
    `${count} replies to ${ref} on ${key}`,
    ms,
  );
}

/** The group's committed posts, oldest first: their content and sender. */
export async function groupPosts(
  base: string,
  groupId: string,
): Promise<{ content: string; sender: string; trxId: string }[]> {
  const res = await api(base, 'GET', `/app/api/v1/group/${groupId}/content?num=200&reverse=false`);
  if (res.status !== 200) throw new Error(`content: ${res.status} ${res.text}`);
  return (res.json as { TrxId: string; Data: string; SenderPubkey: string }[]).map((t) => ({
    content: String(
      (JSON.parse(Buffer.from(t.Data, 'base64').toString('utf8')) as { content?: unknown }).content,
    ),
    sender: t.SenderPubkey,
    trxId: t.TrxId,
  }));
}
