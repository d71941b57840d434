/**
 * `bots.webhook` (issue 11): committed posts pushed to 100 bots' Standard Webhooks receivers on
 * loopback, signed, every process on its own, over the public path:
 *
 * - a `rum fullnode` process: a public group exposed to bots, 100 bots made and given a webhook
 *   through the admin API; Notes posted through `POST /api/v1/group/{id}/content` (16 clients);
 *   each committed Note becomes an update in each bot's log and a `bot-webhook` job per bot;
 * - `bots.webhook-bullmq`: the node on BullMQ with `--rundeliveries false`, and 2 `rum worker`
 *   processes running the deliveries (they check revoked endpoints and report outcomes through
 *   Redis; the node reads the outcomes and records each delivery);
 * - `bots.webhook-bullmq-node`: the same with the node delivering too (`--rundeliveries true`,
 *   the default): a BullMQ worker in a node that may not run a job's kind hands it back to the
 *   queue, which costs a delay and Redis work, so a node that does not deliver still slows
 *   the workers down;
 * - `bots.webhook-embedded`: a node of its own on the embedded queue, running its deliveries;
 * - the receivers, a process of their own (bench/bots-webhook-receivers.ts): one loopback
 *   server per bot, each verifying every request with the `standardwebhooks` library and
 *   counting distinct webhook-ids.
 *
 * Timed from the first post to the last distinct webhook-id (commits, the update logs and
 * enqueueing included; a warm-up post before). Baseline, same run, same receivers and Redis: the
 * same number of plain `http` jobs (X-Rum-Signature) queued beforehand and delivered by
 * BullQueue with 2 worker processes (what `queue.deliver-bullmq` measures, over 100
 * destinations). Each line gives the cores each process used while timed (from /proc).
 *
 * Redis is a redis-server of the benchmark's own (AOF, fsync every second) when
 * /usr/bin/redis-server exists, else REDIS_URL. BENCH_BOT_POSTS sets the posts (300: 30,000
 * deliveries); BENCH_DEBUG=1 prints the progress every second.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { BullQueue } from '../src/queue/bullmq.ts';
import { dropKeys } from '../test/helpers/bullmq-redis.ts';
import { fillJobs, startWorkerProcess, type WorkerProcess } from '../test/helpers/bullmq-worker.ts';
import {
  api,
  createPublicGroup,
  dirFlags,
  RUM_BIN,
  tempDir,
} from '../test/helpers/node-process.ts';
import { startWebhookReceivers, type WebhookReceivers } from './bots-webhook-receivers.ts';
import {
  type BenchNode,
  benchRedis,
  committedPosts,
  postLoad,
  report,
  startBenchNode,
  stopAll,
} from './lib.ts';

const BOTS = 100;
const POSTS = Number(process.env.BENCH_BOT_POSTS ?? 300);
const N = POSTS * BOTS;
const WORKERS = 2;
const CLIENTS = 16;
const HTTP_SECRET = 'bench-secret';
const TIMEOUT_MS = 600_000;

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(what: string, check: () => Promise<boolean>) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

/** A `rum worker` process; resolves once it runs. */
async function startRumWorker(args: string[]): Promise<ChildProcess> {
  const prof = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const child = spawn(
    process.execPath,
    [
      ...prof,
      RUM_BIN,
      'worker',
      ...args,
      ...dirFlags(tempDir('rum-bench-worker-')),
      '--loglevel',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rum worker not running: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('delivery worker running')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`rum worker exited ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return child;
}

async function stopChild(c: ChildProcess) {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await gone;
}

/** Plain http jobs, queued beforehand, 2 BullQueue worker processes: deliveries per second. */
async function baseline(
  redisUrl: string,
  rx: WebhookReceivers,
  redisPid: number | undefined,
): Promise<{ rate: number; cpu: Record<string, number> }> {
  const prefix = `rumbench-${process.pid}`;
  const name = 'bots-baseline';
  const producer = new BullQueue(redisUrl, name, {}, { prefix });
  const workers: WorkerProcess[] = [];
  try {
    await producer.pause();
    const origins = rx.urls.map((u) => new URL(u).origin);
    let batch: Promise<unknown>[] = [];
    for (const input of fillJobs({ count: N, urls: origins, secret: HTTP_SECRET })) {
      batch.push(producer.enqueue(input));
      if (batch.length >= 1000) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    for (let i = 0; i < WORKERS; i++) {
      workers.push(await startWorkerProcess({ redisUrl, name, prefix }));
    }
    const before = (await rx.stats()).httpDistinct;
    const pids: Record<string, number | undefined> = {
      ...Object.fromEntries(workers.map((w, i) => [`worker${i + 1}`, w.child.pid])),
      redis: redisPid,
      receivers: rx.child.pid,
    };
    const cpu0 = cpuSeconds(pids);
    const t0 = performance.now();
    await producer.resume();
    await until('http deliveries', async () => (await rx.stats()).httpDistinct >= before + N);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(pids);
    const cpu = Object.fromEntries(
      Object.keys(cpu1).map((k) => [k, Math.round(((cpu1[k]! - cpu0[k]!) / seconds) * 100) / 100]),
    );
    return { rate: N / seconds, cpu };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await producer.close();
    await dropKeys(`${prefix}:*`, redisUrl);
  }
}

/**
 * A node (and, on BullMQ, 2 workers), 100 bots with webhooks to the receivers, then POSTS Notes:
 * deliveries per second, and when the posts were all committed.
 */
type Mode = 'workers' | 'node+workers' | 'embedded';

async function botsWebhook(
  rx: WebhookReceivers,
  mode: Mode,
  redis: { url: string; pid: number | undefined },
): Promise<{
  rate: number;
  committedS: number;
  seconds: number;
  cpu: Record<string, number>;
}> {
  const dir = tempDir('rum-bench-bots-');
  const config = join(dir, 'bench-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      limits: {
        gatewayRateLimitPerMinute: 1_000_000,
      },
    }),
  );
  const queueName = `bench-bots-${randomUUID().slice(0, 8)}`;
  const shared = ['--config', config, '--allowprivateaddress', 'true'];
  const redisUrl = mode === 'embedded' ? null : redis.url;
  const bull = redisUrl ? ['--redisurl', redisUrl, '--queuename', queueName] : [];
  let node: BenchNode | undefined;
  const workers: ChildProcess[] = [];
  try {
    node = await startBenchNode({
      dir,
      args: [...shared, ...bull, ...(mode === 'workers' ? ['--rundeliveries', 'false'] : [])],
    });
    for (let i = 0; redisUrl && i < WORKERS; i++) {
      workers.push(await startRumWorker([...shared, ...bull]));
    }
    const groupId = (await createPublicGroup(node.url, 'bots-bench')).group_id;
    const put = await api(node.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
      handle: `bench${randomUUID().slice(0, 6)}`,
      bots: true,
    });
    if (put.status !== 200) throw new Error(`expose: ${put.text}`);
    const secrets: string[] = [];
    for (let i = 0; i < BOTS; i++) {
      const bot = await api(node.url, 'POST', '/api/v1/bots', {
        name: `bench${i}`,
        group_ids: [groupId],
        scopes: ['read'],
      });
      if (bot.status !== 201) throw new Error(`bot: ${bot.text}`);
      const hook = await api(node.url, 'PUT', `/api/v1/bots/${bot.json.bot_id}/webhook`, {
        url: rx.urls[i],
      });
      if (hook.status !== 200) throw new Error(`webhook: ${hook.text}`);
      secrets.push(hook.json.secret as string);
    }
    await rx.setSecrets(secrets);
    const url = node.url;
    const target = { url, groupId };
    // Warm-up: one post to every bot.
    const warm = (await rx.stats()).distinct;
    await postLoad([target], 1, 1, 'warm-up');
    await until('the warm-up', async () => (await rx.stats()).distinct >= warm + BOTS);
    const before = (await rx.stats()).distinct;
    const pids: Record<string, number | undefined> = {
      node: node.child.pid,
      ...Object.fromEntries(workers.map((w, i) => [`worker${i + 1}`, w.pid])),
      redis: redisUrl ? redis.pid : undefined,
      receivers: rx.child.pid,
      bench: process.pid,
    };
    const cpu0 = cpuSeconds(pids);
    const t0 = performance.now();
    let committedS = 0;
    const posting = postLoad([target], POSTS, CLIENTS, 'bench').then(async () => {
      await until('the posts committed', async () => (await committedPosts(url)) >= POSTS + 1);
      committedS = (performance.now() - t0) / 1000;
    });
    // BENCH_DEBUG=1: the progress every second (delivered, and the queue's counts on BullMQ,
    // read on a connection of this process's own).
    const watch =
      process.env.BENCH_DEBUG && redisUrl
        ? new Queue(queueName, { connection: { url: redisUrl }, prefix: 'rum' })
        : null;
    const progress = process.env.BENCH_DEBUG
      ? setInterval(async () => {
          const d = (await rx.stats()).distinct - before;
          const c = watch
            ? await watch.getJobCounts('prioritized', 'wait', 'delayed', 'active', 'completed')
            : {};
          process.stderr.write(
            `${((performance.now() - t0) / 1000).toFixed(1)} s: ${d} delivered, committed ${await committedPosts(url)}, queue ${JSON.stringify(c)}\n`,
          );
        }, 1000)
      : null;
    await until('the deliveries', async () => (await rx.stats()).distinct >= before + N);
    if (progress) clearInterval(progress);
    await watch?.close();
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(pids);
    await posting;
    const cpu = Object.fromEntries(
      Object.keys(cpu1).map((k) => [k, Math.round(((cpu1[k]! - cpu0[k]!) / seconds) * 100) / 100]),
    );
    return { rate: N / seconds, committedS, seconds, cpu };
  } finally {
    await Promise.all(workers.map(stopChild));
    await stopAll([node]);
    if (redisUrl) await dropKeys(`rum:${queueName}:*`, redisUrl);
  }
}

/** CPU seconds (user + system) each process has used, from /proc (Linux). */
function cpuSeconds(pids: Record<string, number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    if (pid === undefined) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // not Linux, or gone
    }
  }
  return out;
}

async function main() {
  const redisServer = await benchRedis();
  const redisUrl = redisServer.url;
  const rx = await startWebhookReceivers({ count: BOTS, httpSecret: HTTP_SECRET });
  try {
    const { rate: base, cpu: baseCpu } = await baseline(redisUrl, rx, redisServer.pid);
    const context = {
      bots: BOTS,
      posts: POSTS,
      deliveries: N,
      redis: redisServer.label,
      baseline_cores_used: JSON.stringify(baseCpu),
    };
    const redis = { url: redisUrl, pid: redisServer.pid };
    const lines: [string, Mode, number | undefined][] = [
      ['bots.webhook-bullmq', 'workers', 3000],
      ['bots.webhook-bullmq-node', 'node+workers', undefined],
      ['bots.webhook-embedded', 'embedded', undefined],
    ];
    for (const [name, mode, target] of lines) {
      const r = await botsWebhook(rx, mode, redis);
      report({
        name,
        value: r.rate,
        unit: 'deliveries/s',
        baseline: base,
        ...(target ? { target } : {}),
        delivering:
          mode === 'workers'
            ? '2 rum workers (node --rundeliveries false)'
            : mode === 'node+workers'
              ? 'the node and 2 rum workers'
              : 'the node (embedded queue)',
        posts_committed_s: Math.round(r.committedS * 100) / 100,
        seconds: Math.round(r.seconds * 100) / 100,
        cores_used: JSON.stringify(r.cpu),
        ...context,
      });
    }
    const s = await rx.stats();
    if (s.bad > 0) throw new Error(`${s.bad} deliveries did not verify`);
  } finally {
    await rx.stop();
    await redisServer.stop();
  }
}

await main();
