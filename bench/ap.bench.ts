/**
 * The ActivityPub bridge (issue 9), on a `rum fullnode` process, driven from outside.
 *
 * - `ap.fanout-bullmq`, `ap.fanout-embedded`: one RUM post (POST /api/v1/group/{id}/content on
 *   the node's admin API) to 10,000 followers spread over 1,000 loopback instances (10 each,
 *   sharing their instance's inbox), timed until every instance acknowledged (202 after
 *   verifying the signature) both the author's Create and the group's Announce. The same node
 *   data, once with `--redisurl` to a redis-server of the benchmark's own (AOF, fsync every
 *   second) and once with the embedded queue (restarted in between). Target ≤ 3 s on BullMQ.
 * - `ap.inbox`: signed Create(Note) replies to a group post from 20 remote actors (each its own
 *   RSA key) POSTed to the group's inbox, 64 at a time, timed until all are committed (the
 *   node's Prometheus counter). Baseline in the same run: the same node's rate for plain
 *   `POST /api/v1/group/{id}/content` under the same concurrency. Target ≥ 500/s.
 *
 * The instances are test/helpers/ap-receivers.ts (node:http + node:crypto, no Fedify) in two
 * processes of their own. Before the clock starts, the followers of BENCH_AP_FOLLOW_INSTANCES
 * instances per receiver process follow through real signed Follow activities (and get the
 * node's signed Accept); the rest are written into the stopped node's database in the shape the
 * bridge writes (seed(), which fails if that shape changes). BENCH_AP_INSTANCES (1000), BENCH_AP_INBOX
 * (5000 replies).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type ApReceiverProcess, startApReceiverProcess } from '../test/helpers/ap-receivers.ts';
import {
  freePort,
  hasRedisServer,
  type OwnRedis,
  startOwnRedis,
} from '../test/helpers/bullmq-redis.ts';
import { api, createPublicGroup, tempDir } from '../test/helpers/node-process.ts';
import {
  type BenchNode,
  committedPosts,
  noteBody,
  postJson,
  postLoad,
  report,
  startBenchNode,
} from './lib.ts';

const INSTANCES = Number(process.env.BENCH_AP_INSTANCES ?? 1000);
/** Instances (per receiver process) whose actors follow through signed Follows. */
const FOLLOW_INSTANCES = Number(process.env.BENCH_AP_FOLLOW_INSTANCES ?? 10);
const PER_INSTANCE = 10;
const RECEIVER_PROCESSES = 2;
const INBOX_N = Number(process.env.BENCH_AP_INBOX ?? 5000);
const INBOX_ACTORS = 20;
const CLIENTS = Number(process.env.BENCH_AP_CLIENTS ?? 64);
const HANDLE = 'bench';
const TIMEOUT_MS = 600_000;

function log(msg: string) {
  process.stderr.write(`  ${msg}\n`);
}

async function withTimeout<T>(p: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A config file: the gateway's per-client rate limit off (every instance is 127.0.0.1). */
function configFile(dir: string): string {
  const file = join(dir, 'bench-config.json');
  writeFileSync(file, JSON.stringify({ limits: { gatewayRateLimitPerMinute: 1_000_000 } }));
  return file;
}

/** Gateway ports by data folder: a restarted node keeps its origin (its actors' ids). */
const gatewayPorts = new Map<string, number>();

async function startApNode(dir: string, extra: string[] = []): Promise<BenchNode> {
  let port = gatewayPorts.get(dir);
  if (port === undefined) {
    port = await freePort();
    gatewayPorts.set(dir, port);
  }
  return startBenchNode({
    dir,
    args: [
      '--config',
      configFile(dir),
      '--allowprivateaddress',
      'true',
      '--gatewayport',
      String(port),
      ...extra,
    ],
  });
}

async function exposedGroup(node: BenchNode, name: string) {
  const { group_id: groupId } = await createPublicGroup(node.url, name);
  const r = await api(node.url, 'PUT', `/api/v1/group/${groupId}/bridges`, { handle: HANDLE });
  if (r.status !== 200) throw new Error(`expose: ${r.status} ${r.text}`);
  const actor = `${node.gatewayUrl}/ap/actors/g.${HANDLE}`;
  return { groupId, actor, inbox: `${actor}/inbox`, sharedInbox: `${node.gatewayUrl}/ap/inbox` };
}

async function postNote(node: BenchNode, groupId: string, text: string): Promise<string> {
  const res = await postJson(`${node.url}/api/v1/group/${groupId}/content`, noteBody(text));
  if (res.status !== 200) throw new Error(`POST ${res.status}: ${res.json.message}`);
  return res.json.trx_id as string;
}

/**
 * One post, timed from its POST to the moment every instance has acknowledged both its Create
 * and its Announce. Milliseconds.
 */
async function fanoutOnce(
  node: BenchNode,
  groupId: string,
  receivers: ApReceiverProcess[],
  text: string,
): Promise<{ ms: number; trxId: string }> {
  const t0 = performance.now();
  const trxId = await postNote(node, groupId, text);
  const ids = [
    `${node.gatewayUrl}/ap/posts/${trxId}/create`,
    `${node.gatewayUrl}/ap/actors/g.${HANDLE}/announces/${trxId}`,
  ];
  const perProcess = INSTANCES / RECEIVER_PROCESSES;
  await withTimeout(
    Promise.all(receivers.map((r) => r.waitFor(ids, perProcess))),
    `fan-out of ${trxId}`,
    120_000,
  ).catch(async (err) => {
    const reach = await Promise.all(receivers.map((r) => r.reach(ids)));
    throw new Error(`${(err as Error).message}; instances reached: ${JSON.stringify(reach)}`);
  });
  return { ms: performance.now() - t0, trxId };
}

async function receiverTotals(receivers: ApReceiverProcess[]) {
  const all = await Promise.all(receivers.map((r) => r.getStats()));
  const refused: Record<string, number> = {};
  for (const s of all)
    for (const [k, v] of Object.entries(s.refused)) refused[k] = (refused[k] ?? 0) + v;
  return {
    accepted: all.reduce((a, s) => a + s.accepted, 0),
    duplicates: all.reduce((a, s) => a + s.duplicates, 0),
    knocks: all.reduce((a, s) => a + s.knocks, 0),
    keyFetches: all.reduce((a, s) => a + s.keyFetches, 0),
    refused,
  };
}

/**
 * The test-only path: the followers the signed Follows did not make are written into the
 * stopped node's SQLite (bridge_kv, namespace `activitypub`), in the form the bridge's Follow
 * listener writes (checked against the rows the real Follows left). Signed Follows cost the node
 * about 75 ms each here (see docs/benchmarks.md): 10,000 would take longer than the whole run.
 */
async function seed(dir: string, receivers: ApReceiverProcess[]): Promise<number> {
  const db = new Database(join(dir, 'data', 'peer', 'rum.db'));
  try {
    const prefix = `followers:g.${HANDLE}\n`;
    const real = db
      .prepare(
        "SELECT key, value FROM bridge_kv WHERE bridge = 'activitypub' AND key > ? AND substr(key, 1, ?) = ?",
      )
      .all(prefix, prefix.length, prefix) as { key: string; value: string }[];
    const sample = JSON.parse(real[0]!.value) as Record<string, unknown>;
    const fields = Object.keys(sample).sort().join(',');
    if (fields !== 'follow,id,inbox,sharedInbox,since') {
      throw new Error(`the bridge keeps followers as {${fields}} now: update seed()`);
    }
    const have = new Set(real.map((r) => r.key));
    const insert = db.prepare(
      "INSERT INTO bridge_kv (bridge, key, value, expires_at) VALUES ('activitypub', ?, ?, NULL)",
    );
    // What the Follow listener learnt of each instance's software (instance-kind.ts; these
    // serve no NodeInfo): without it the first post would look every seeded instance up.
    const learnt = db
      .prepare(
        "SELECT key, value, expires_at FROM bridge_kv WHERE bridge = 'activitypub' AND substr(key, 1, 9) = 'instance:'",
      )
      .all() as { key: string; value: string; expires_at: number }[];
    const kindFields = Object.keys(JSON.parse(learnt[0]!.value)).sort().join(',');
    if (kindFields !== 'checked,software') {
      throw new Error(`the bridge keeps instances as {${kindFields}} now: update seed()`);
    }
    const learntKeys = new Set(learnt.map((r) => r.key));
    const insertKind = db.prepare(
      "INSERT INTO bridge_kv (bridge, key, value, expires_at) VALUES ('activitypub', ?, ?, ?)",
    );
    let n = 0;
    const now = Date.now();
    const instances = (await Promise.all(receivers.map((r) => r.describe()))).flat();
    db.transaction(() => {
      for (const inst of instances) {
        for (const id of inst.actors) {
          if (have.has(prefix + id)) continue;
          const f = {
            id,
            inbox: `${id}/inbox`,
            sharedInbox: inst.sharedInbox,
            follow: `${id}/follows/seeded`,
            since: now,
          };
          insert.run(prefix + id, JSON.stringify(f));
          n++;
        }
        const kindKey = `instance:${new URL(inst.sharedInbox).host}`;
        if (!learntKeys.has(kindKey)) {
          insertKind.run(
            kindKey,
            JSON.stringify({ software: null, checked: now }),
            learnt[0]!.expires_at,
          );
        }
      }
    })();
    return n;
  } finally {
    db.close();
  }
}

async function fanout(redis: OwnRedis) {
  const dir = tempDir('rum-bench-ap-');
  const receivers: ApReceiverProcess[] = [];
  let node: BenchNode | undefined;
  try {
    for (let i = 0; i < RECEIVER_PROCESSES; i++) {
      receivers.push(
        await startApReceiverProcess({
          instances: INSTANCES / RECEIVER_PROCESSES,
          actorsPerInstance: PER_INSTANCE,
        }),
      );
    }
    // Followers first, on the embedded queue (they live in the node's SQLite either way): the
    // actors of the first FOLLOW_INSTANCES instances of each receiver process follow through
    // signed Follows (and get the node's signed Accept); the rest are seeded (see seed()).
    node = await startApNode(dir);
    const g = await exposedGroup(node, 'ap-fanout');
    const tf = performance.now();
    await withTimeout(
      Promise.all(
        receivers.map((r) => r.followAll(g.actor, g.inbox, 32, TIMEOUT_MS, FOLLOW_INSTANCES)),
      ),
      'follows',
    );
    const followSeconds = (performance.now() - tf) / 1000;
    const followed = RECEIVER_PROCESSES * FOLLOW_INSTANCES * PER_INSTANCE;
    log(`${followed} signed Follows accepted in ${followSeconds.toFixed(1)} s`);
    await node.stop();
    const seeded = await seed(dir, receivers);
    node = await startApNode(dir);
    const followers = (
      await fetch(`${g.actor}/followers`, {
        headers: { accept: 'application/activity+json' },
      }).then((r) => r.json() as Promise<{ totalItems: number }>)
    ).totalItems;
    log(`${followers} followers (${seeded} seeded)`);
    if (followers !== INSTANCES * PER_INSTANCE) throw new Error(`${followers} followers`);

    const results: Record<string, { ms: number; firstMs: number }> = {};
    for (const backend of ['bullmq', 'embedded'] as const) {
      await node.stop();
      node = await startApNode(dir, backend === 'bullmq' ? ['--redisurl', redis.url] : []);
      // Warm-up (untimed in the figure): JIT in the new process, and the first post of an author
      // makes every instance fetch its key once (the group's was fetched with the Accepts).
      const first = await fanoutOnce(node, g.groupId, receivers, `${backend} warm-up`);
      log(`${backend}: first post ${first.ms.toFixed(0)} ms`);
      await new Promise((r) => setTimeout(r, 1000));
      const measured = await fanoutOnce(node, g.groupId, receivers, `${backend} measured`);
      log(`${backend}: measured post ${measured.ms.toFixed(0)} ms`);
      results[backend] = { ms: measured.ms, firstMs: first.ms };
    }
    const totals = await receiverTotals(receivers);
    if (totals.duplicates > 0) log(`WARNING: ${totals.duplicates} duplicate deliveries`);
    const context = {
      followers,
      instances: INSTANCES,
      deliveries: INSTANCES * 2,
      followed_by_signed_follow: followed,
      follows_per_s: Math.round(followed / followSeconds),
      seeded_followers: seeded,
      receiver_processes: RECEIVER_PROCESSES,
      duplicates: totals.duplicates,
      refused: Object.values(totals.refused).reduce((a, b) => a + b, 0),
      rfc9421_knocks: totals.knocks,
      key_fetches: totals.keyFetches,
    };
    report({
      name: 'ap.fanout-bullmq',
      value: results.bullmq!.ms,
      unit: 'ms',
      baseline: results.embedded!.ms,
      target: 3000,
      first_post_ms: Math.round(results.bullmq!.firstMs),
      queue:
        'BullMQ, own redis-server (AOF everysec); the node the only process running fedify jobs, concurrency 64',
      ...context,
    });
    report({
      name: 'ap.fanout-embedded',
      value: results.embedded!.ms,
      unit: 'ms',
      baseline: results.bullmq!.ms,
      first_post_ms: Math.round(results.embedded!.firstMs),
      queue: 'embedded (SQLite), concurrency 64',
      ...context,
    });
  } finally {
    await node?.stop();
    await Promise.all(receivers.map((r) => r.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function untilCommitted(url: string, n: number) {
  const end = Date.now() + TIMEOUT_MS;
  for (;;) {
    const c = await committedPosts(url);
    if (c >= n) return;
    if (Date.now() > end) throw new Error(`committed ${c} of ${n} in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function inbox() {
  const dir = tempDir('rum-bench-ap-inbox-');
  let node: BenchNode | undefined;
  let peer: ApReceiverProcess | undefined;
  try {
    node = await startApNode(dir);
    peer = await startApReceiverProcess({
      instances: 1,
      actorsPerInstance: INBOX_ACTORS,
      keys: 'per-actor',
    });
    const g = await exposedGroup(node, 'ap-inbox');
    const target = await postNote(node, g.groupId, 'the post they reply to');
    await untilCommitted(node.url, 1);
    const inReplyTo = `${node.gatewayUrl}/ap/posts/${target}`;
    const fire = async (count: number, tag: string) => {
      await peer!.prepareNotes({ inbox: g.inbox, inReplyTo, cc: g.actor, count, tag });
      const before = await committedPosts(node!.url);
      const t = performance.now();
      const statuses = await peer!.firePrepared(CLIENTS);
      const answered = (performance.now() - t) / 1000;
      const bad = Object.entries(statuses).filter(([s]) => !s.startsWith('2'));
      if (bad.length > 0) throw new Error(`inbox answered ${JSON.stringify(statuses)}`);
      await untilCommitted(node!.url, before + count);
      return { seconds: (performance.now() - t) / 1000, answered };
    };
    // Warm-up: JIT, each actor's key fetched and its gateway-held identity made.
    await fire(500, 'warm');
    const r = await fire(INBOX_N, 'measured');
    const rate = INBOX_N / r.seconds;
    log(
      `inbox: ${INBOX_N} replies in ${r.seconds.toFixed(2)} s (answered in ${r.answered.toFixed(2)} s)`,
    );

    // Baseline: plain posts through the admin API, same node, same concurrency.
    const before = await committedPosts(node.url);
    await postLoad([{ url: node.url, groupId: g.groupId }], 500, CLIENTS, 'warm');
    await untilCommitted(node.url, before + 500);
    const b0 = await committedPosts(node.url);
    const tb = performance.now();
    await postLoad([{ url: node.url, groupId: g.groupId }], INBOX_N, CLIENTS, 'baseline');
    await untilCommitted(node.url, b0 + INBOX_N);
    const baseline = INBOX_N / ((performance.now() - tb) / 1000);
    const stats = await peer.getStats();
    report({
      name: 'ap.inbox',
      value: rate,
      unit: 'replies/s',
      baseline,
      target: 500,
      replies: INBOX_N,
      actors: INBOX_ACTORS,
      clients: CLIENTS,
      answered_per_s: Math.round(INBOX_N / r.answered),
      baseline_is: 'POST /api/v1/group/{id}/content, same node, same concurrency',
      peer_key_fetches: stats.keyFetches,
    });
  } finally {
    await node?.stop();
    await peer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (!hasRedisServer()) throw new Error('ap.fanout needs /usr/bin/redis-server');
  const only = process.env.BENCH_AP_ONLY; // fanout | inbox (while working on one)
  if (only !== 'inbox') {
    const redis = await startOwnRedis({ appendfsync: 'everysec' });
    try {
      await fanout(redis);
    } finally {
      await redis.cleanup();
    }
  }
  if (only !== 'fanout') await inbox();
}

await main();
