/**
 * What the bot webhook tests share: a `rum fullnode` process on either queue backend (embedded;
 * or BullMQ on the Redis at REDIS_URL, optionally with its Standard Webhooks left to a
 * `rum worker` process), a retry schedule shortened by config, a group exposed to bots, and a
 * loopback receiver whose answer each test scripts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dropKeys, REDIS_URL, redisUnreachable } from '../../helpers/bullmq-redis.ts';
import {
  api,
  createPublicGroup,
  dirFlags,
  type NodeProcess,
  RUM_BIN,
  startNodeProcess,
  tempDir,
} from '../../helpers/node-process.ts';

export type Backend = 'embedded' | 'bullmq' | 'bullmq+worker';

/** The shortened schedule: 5 attempts, retries 50–400 ms apart (about 1 s in all). */
export const MAX_ATTEMPTS = 5;
export const LIMITS = {
  deliveryBackoffBaseMs: 100,
  deliveryBackoffMaxMs: 400,
  deliveryMaxAttempts: MAX_ATTEMPTS,
  deliveryTimeoutMs: 5_000,
  botPostsPerSecond: 1000,
  botGroupPostsPerSecond: 1000,
};

const unreachable = await redisUnreachable();

/**
 * The backends a delivery test runs on, each with its skip reason (false: it runs). Without
 * Redis, BullMQ is skipped, except under CI=true, where the test fails instead.
 */
export function backends(which: Backend[]): { backend: Backend; skip: string | false }[] {
  return which.map((backend) => ({
    backend,
    skip:
      backend !== 'embedded' && unreachable && process.env.CI !== 'true'
        ? `${unreachable}; set REDIS_URL or start redis-server`
        : false,
  }));
}

export interface BotNode {
  n: NodeProcess;
  groupId: string;
  backend: Backend;
  /** Stops the node (and worker) and starts them again on the same data. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function startBotNode(backend: Backend): Promise<BotNode> {
  if (backend !== 'embedded' && unreachable) {
    throw new Error(`${unreachable} (CI=true: the BullMQ tests must run)`);
  }
  const dir = tempDir('rum-bot-webhooks-');
  const config = join(dir, 'test-config.json');
  writeFileSync(config, JSON.stringify({ limits: LIMITS }));
  const queueName = `test-botwh-${randomUUID().slice(0, 8)}`;
  const bull =
    backend === 'embedded'
      ? []
      : [
          '--redisurl',
          REDIS_URL,
          '--queuename',
          queueName,
          ...(backend === 'bullmq+worker' ? ['--rundeliveries', 'false'] : []),
        ];
  const args = ['--config', config, '--allowprivateaddress', 'true', ...bull];
  const start = () => startNodeProcess({ dir, args, timeoutMs: 60_000 });
  let worker: ChildProcess | null = null;
  const startWorker = () => {
    const wdir = tempDir('rum-bot-worker-');
    const w = spawn(process.execPath, [RUM_BIN, 'worker', ...args, ...dirFlags(wdir)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return w;
  };
  const n = await start();
  if (backend === 'bullmq+worker') worker = startWorker();
  const groupId = (await createPublicGroup(n.url, 'bot-webhooks')).group_id;
  const put = await api(n.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
    handle: `wh${randomUUID().slice(0, 6)}`,
    bots: true,
  });
  if (put.status !== 200) throw new Error(`expose: ${put.status} ${put.text}`);
  const self: BotNode = {
    n,
    groupId,
    backend,
    async restart(signal = 'SIGTERM') {
      await self.n.stop(signal);
      self.n = await start();
    },
    async stop() {
      if (worker && worker.exitCode === null) {
        const gone = new Promise((r) => worker!.once('exit', r));
        worker.kill('SIGTERM');
        await gone;
      }
      await self.n.stop();
      if (backend !== 'embedded') await dropKeys(`rum:${queueName}:*`);
    },
  };
  return self;
}

export interface MadeBot {
  bot_id: number;
  token: string;
  chats: { group_id: string; chat_id: number }[];
  created_at: string;
}

export async function makeBot(node: BotNode, name: string, scopes = ['read', 'post']) {
  const made = await api(node.n.url, 'POST', '/api/v1/bots', {
    name,
    group_ids: [node.groupId],
    scopes,
  });
  if (made.status !== 201) throw new Error(`make bot: ${made.status} ${made.text}`);
  return made.json as MadeBot;
}

/** Posts a Note into the node's group; answers its trx id. */
export async function post(node: BotNode, content: string): Promise<string> {
  const r = await api(node.n.url, 'POST', `/api/v1/group/${node.groupId}/content`, {
    data: { type: 'Note', content },
  });
  if (r.status !== 200) throw new Error(`post: ${r.status} ${r.text}`);
  return r.json.trx_id as string;
}

/** A Telegram call on the gateway. */
export function tg(node: BotNode, token: string, method: string, params = {}) {
  return api(node.n.gatewayUrl, 'POST', `/bot${token}/${method}`, params);
}

/** The group's committed posts: [sender, content]. */
export async function posts(node: BotNode): Promise<{ content: string; sender: string }[]> {
  const res = await api(
    node.n.url,
    'GET',
    `/app/api/v1/group/${node.groupId}/content?num=200&reverse=false`,
  );
  return (res.json as { Data: string; SenderPubkey: string }[]).map((t) => ({
    content: (JSON.parse(Buffer.from(t.Data, 'base64').toString('utf8')) as { content: string })
      .content,
    sender: t.SenderPubkey,
  }));
}

export interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
  status: number;
}

/** How a path answers a request: a status (and headers). */
export type Answer = (req: Seen) => { status: number; headers?: Record<string, string> };

/** A loopback receiver: every request is recorded; each path answers as it is told. */
export async function startReceiver() {
  const seen: Seen[] = [];
  const answers = new Map<string, Answer>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
        status: 0,
      };
      const answer: Answer = answers.get(s.path) ?? (() => ({ status: 404 }));
      const a = answer(s);
      s.status = a.status;
      seen.push(s);
      res.writeHead(a.status, a.headers ?? {}).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    seen,
    /** The requests a path received. */
    at: (path: string) => seen.filter((s) => s.path === path),
    answer(path: string, a: Answer) {
      answers.set(path, a);
      return `${base}${path}`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
