/** Helpers for benchmarks: timing, the JSON result line, a throwaway node. */
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { ConfigInput } from '../src/config/schema.ts';
import type { RumNode } from '../src/node.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
} from '../test/helpers/node-process.ts';
import {
  hasRedisServer,
  REDIS_URL,
  redisUnreachable,
  startOwnRedis,
} from '../test/helpers/bullmq-redis.ts';
import { openTempNode } from '../test/helpers/temp-node.ts';

// biome-ignore lint/suspicious/noExplicitAny: benchmarks read arbitrary JSON answers.
type AnyJson = any;

export interface Result {
  name: string;
  value: number;
  unit: string;
  baseline: number;
  ratio?: number;
  /** Context printed beside the figures (target, sizes). */
  [extra: string]: string | number | undefined;
}

export function report(r: Result): void {
  const ratio = r.ratio ?? (r.baseline === 0 ? 0 : r.value / r.baseline);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  process.stdout.write(
    `${JSON.stringify({ ...r, value: round(r.value), baseline: round(r.baseline), ratio: round(ratio) })}\n`,
  );
}

/** Operations per second of fn over at least minMs, after a warm-up. */
export function rate(fn: () => void, minMs = 1000, warmup = 200): number {
  for (let i = 0; i < warmup; i++) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

export async function withTempNode<T>(
  fn: (node: RumNode, dir: string) => Promise<T>,
  config: ConfigInput = {},
): Promise<T> {
  const { node, dir } = await openTempNode(config);
  try {
    await node.start();
    return await fn(node, dir);
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- nodes in their own processes, driven over their public HTTP API ----

/** A `rum fullnode` process on loopback (HTTP API and libp2p), with its libp2p address. */
export interface BenchNode extends NodeProcess {
  p2pAddr: string;
}

/**
 * Starts a node as deployed: its own OS process, `rum fullnode` (or a benchmark driver that
 * starts the node the same way), default limits, libp2p on loopback, --max-semi-space-size as
 * `npm start` passes it. Nothing in the benchmark's process has seen its trxs or signatures.
 */
export async function startBenchNode(
  opts: { peers?: string[]; args?: string[]; dir?: string; script?: string; ipc?: boolean } = {},
): Promise<BenchNode> {
  const n = await startNodeProcess({
    ...(opts.dir ? { dir: opts.dir } : {}),
    ...(opts.script ? { script: opts.script } : {}),
    ...(opts.ipc ? { ipc: true } : {}),
    args: [
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      ...(opts.peers ?? []).flatMap((p) => ['--peer', p]),
      ...(opts.args ?? []),
    ],
    // BENCH_CPU_PROF=DIR writes a CPU profile of every node process into DIR (when it stops).
    nodeArgs: [
      '--max-semi-space-size=16',
      ...(process.env.BENCH_CPU_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
        : []),
    ],
    timeoutMs: 60_000,
  });
  const net = (await api(n.url, 'GET', '/api/v1/network')).json as { addrs: string[] };
  return Object.assign(n, { p2pAddr: net.addrs[0]! });
}

/** Posts committed on a node (its Prometheus counter of committed POST trxs, all groups). */
export async function committedPosts(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^rum_trx_committed_total\{type="0"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Polls until every node has committed at least `n` posts; bounded by timeoutMs. */
export async function untilCommitted(urls: string[], n: number, timeoutMs = 600_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(urls.map(committedPosts));
    if (counts.every((c) => c >= n)) return;
    if (Date.now() > end) throw new Error(`committed ${counts.join('/')} of ${n} in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The group's head as a node's API reports it. */
export async function groupHead(url: string, groupId: string) {
  const g = (await api(url, 'GET', `/api/v1/group/${groupId}`)).json as {
    highest_height: number;
    highest_block_id: string;
  };
  return { height: Number(g.highest_height), blockId: g.highest_block_id };
}

/**
 * Commit times, as a client sees them: a WebSocket on the node's /api/v1/ws/trx, recording when
 * each trx id arrives (performance.now() of this process).
 */
export async function watchCommits(url: string, groupId: string) {
  const times = new Map<string, number>();
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/ws/trx?group_id=${groupId}`);
  ws.onmessage = (ev) => {
    const now = performance.now();
    const id = (JSON.parse(String(ev.data)) as { TrxId?: string }).TrxId;
    if (id) times.set(id, now);
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`websocket to ${url} failed`));
  });
  return { times, close: () => ws.close() };
}

const postAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** POSTs one JSON body with a keep-alive connection; resolves to the status and parsed answer. */
export function postJson(url: string, body: string): Promise<{ status: number; json: AnyJson }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: postAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            resolve({ status: res.statusCode ?? 0, json: { message: text } });
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A Note as a user posts it: quorum's POST /api/v1/group/{id}/content body. */
export function noteBody(text: string): string {
  return JSON.stringify({ data: { type: 'Create', object: { type: 'Note', content: text } } });
}

/**
 * The load generator: `clients` concurrent HTTP clients, each POSTing single Notes one after
 * another (each waits for its answer) to the given nodes' APIs in turn, until `total` posts were
 * accepted. Records when each accepted trx id was sent. Any refused post fails the benchmark.
 */
export async function postLoad(
  targets: { url: string; groupId: string }[],
  total: number,
  clients: number,
  tag = 'load',
): Promise<{ sentAt: Map<string, number>; seconds: number }> {
  const sentAt = new Map<string, number>();
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const t = targets[c % targets.length]!;
      const url = `${t.url}/api/v1/group/${t.groupId}/content`;
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const at = performance.now();
        const res = await postJson(url, noteBody(`${tag} note ${i} from client ${c}`));
        if (res.status !== 200) throw new Error(`POST ${res.status}: ${res.json.message}`);
        sentAt.set(res.json.trx_id as string, at);
      }
    }),
  );
  return { sentAt, seconds: (performance.now() - start) / 1000 };
}

/** The p-th percentile (0–100) of a list of numbers. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Stops every process, ignoring those already gone, and removes their directories. */
export async function stopAll(nodes: (NodeProcess | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((n) => n?.stop()));
  for (const n of nodes) if (n) rmSync(n.dir, { recursive: true, force: true });
}

/** Joins each node to a group by its seed, waits until each sees a peer in the group's topic. */
export async function joinAll(nodes: NodeProcess[], groupId: string, seed: string) {
  for (const n of nodes) {
    const r = await api(n.url, 'POST', '/api/v2/group/join', { seed });
    if (r.status !== 200) throw new Error(`join: ${r.status} ${r.text}`);
  }
  for (const n of nodes) {
    for (let i = 0; ; i++) {
      const net = (await api(n.url, 'GET', '/api/v1/network')).json as {
        groups: { GroupId: string; Peers: string[] }[];
      };
      if (net.groups.find((g) => g.GroupId === groupId)?.Peers.length) break;
      if (i > 600) throw new Error('no peer in the group topic after 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Waits until every node has committed `n` posts, checks that they agree on the group's head,
 * and answers its height.
 */
export async function untilAllAgree(nodes: NodeProcess[], groupId: string, n: number) {
  await untilCommitted(
    nodes.map((x) => x.url),
    n,
  );
  const heads = await Promise.all(nodes.map((x) => groupHead(x.url, groupId)));
  if (new Set(heads.map((h) => h.blockId)).size !== 1)
    throw new Error('nodes disagree on the head');
  return heads[0]!.height;
}

/**
 * The same-run baseline of a network benchmark: one node alone, posting `count` Notes through
 * `post`; trxs committed per second. The node is stopped afterwards.
 */
export async function soloRate(
  node: BenchNode,
  count: number,
  post: (groupId: string) => Promise<unknown>,
): Promise<number> {
  const groupId = (await createPublicGroup(node.url, 'solo')).group_id;
  const t = performance.now();
  await post(groupId);
  await untilCommitted([node.url], count);
  const rate = count / ((performance.now() - t) / 1000);
  await node.stop();
  return rate;
}

/** A public group of `owner` joined by `members`, once the gossip mesh had time to settle. */
export async function sharedGroup(owner: BenchNode, members: BenchNode[], name: string) {
  const { group_id: groupId, seed } = await createPublicGroup(owner.url, name);
  await joinAll(members, groupId, seed);
  await new Promise((r) => setTimeout(r, 1500));
  return groupId;
}

/**
 * The Redis of a queue benchmark: a redis-server of the benchmark's own (AOF, fsync every
 * second, as deployed) when one is installed, else REDIS_URL (which must answer). `label` says
 * which in the figures' context; `stop` ends the own server.
 */
export async function benchRedis(): Promise<{
  url: string;
  pid: number | undefined;
  label: string;
  stop(): Promise<void>;
}> {
  if (hasRedisServer()) {
    const own = await startOwnRedis({ appendfsync: 'everysec' });
    return {
      url: own.url,
      pid: own.child.pid,
      label: 'own redis-server, AOF fsync every second',
      stop: () => own.cleanup(),
    };
  }
  const why = await redisUnreachable(REDIS_URL);
  if (why) throw new Error(`${why}; install redis-server or set REDIS_URL`);
  return { url: REDIS_URL, pid: undefined, label: 'REDIS_URL', stop: async () => {} };
}
