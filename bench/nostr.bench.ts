/**
 * The Nostr bridge's relay endpoint (issue 10), on a `rum fullnode` process, driven from outside
 * over WebSockets, beside `@nostr-relay/core` with its SQLite repository (bench/nostr-peer-relay.ts,
 * a process of its own) fed the very same events in the same run.
 *
 * - `nostr.ingest`: signed kind-1/9/11 events carrying the group's `h` tag, from 16 connections
 *   (each with at most BENCH_NOSTR_WINDOW EVENTs awaiting their OK), timed from the first EVENT
 *   until every one was answered `OK true` and committed in the group (the node's Prometheus
 *   counter of committed posts). The peer relay's figure: the same events, same connections,
 *   until every `OK true` (it stores before answering). Target ≥ 2,000 events/s and at least the
 *   peer's rate.
 * - `nostr.req-p50` / `nostr.req-p99`: REQ latency, from sending the REQ to its EOSE, over
 *   BENCH_NOSTR_STORED (100,000) stored events, for a fixed sequence of mixed filters (by author,
 *   kind, `#h`, time range, and combinations; limits 20–50), one REQ at a time on one connection,
 *   the same sequence on both relays. Target: p50 ≤ 5 ms and at most the peer's.
 *
 * The events are signed before any clock starts (nostr-wasm), by 100 authors, with created_at
 * spread over the 45 minutes before now (a NIP-29 relay refuses events over an hour old). One
 * event of each author goes first, untimed, to both relays (on ours it makes the key the
 * gateway holds for that author). The first BENCH_NOSTR_INGEST (20,000) are the timed ingest; the
 * rest fill both stores to BENCH_NOSTR_STORED through the same sockets, untimed.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initNostrWasm } from 'nostr-wasm';
import WebSocket from 'ws';
import type { NostrEvent } from '../bridges/nostr/types.ts';
import { freePort } from '../test/helpers/bullmq-redis.ts';
import { api, createPublicGroup, tempDir } from '../test/helpers/node-process.ts';
import { type BenchNode, committedPosts, percentile, report, startBenchNode } from './lib.ts';

const INGEST = Number(process.env.BENCH_NOSTR_INGEST ?? 20_000);
const STORED = Number(process.env.BENCH_NOSTR_STORED ?? 100_000);
const CONNECTIONS = 16;
const WINDOW = Number(process.env.BENCH_NOSTR_WINDOW ?? 4);
const AUTHORS = 100;
const SPAN_S = 45 * 60;
const REQS = Number(process.env.BENCH_NOSTR_REQS ?? 2000);
const PEER_SCRIPT = new URL('./nostr-peer-relay.ts', import.meta.url).pathname;

type Event = NostrEvent;
type Filter = Record<string, unknown>;

function log(msg: string) {
  process.stderr.write(`  ${msg}\n`);
}

/** One client socket: EVENTs awaiting their OK by id, REQs awaiting their EOSE by sub id. */
class Client {
  private readonly ws: WebSocket;
  private readonly oks = new Map<string, (r: [boolean, string]) => void>();
  private readonly eose = new Map<string, () => void>();
  /** Event ids received per subscription, in order. */
  private readonly got = new Map<string, string[]>();
  notices = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as unknown[];
      if (m[0] === 'OK') {
        const done = this.oks.get(m[1] as string);
        this.oks.delete(m[1] as string);
        done?.([m[2] as boolean, m[3] as string]);
      } else if (m[0] === 'EVENT') {
        this.got.get(m[1] as string)?.push((m[2] as Event).id);
      } else if (m[0] === 'EOSE' || m[0] === 'CLOSED') {
        const done = this.eose.get(m[1] as string);
        this.eose.delete(m[1] as string);
        done?.();
      } else if (m[0] === 'NOTICE') this.notices++;
    });
  }

  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('error', reject);
    });
  }

  publish(e: Event): Promise<[boolean, string]> {
    return new Promise((resolve) => {
      this.oks.set(e.id, resolve);
      this.ws.send(`["EVENT",${JSON.stringify(e)}]`);
    });
  }

  /** Sends a REQ, waits for its EOSE, closes it; answers the milliseconds and the ids sent. */
  async req(sub: string, filter: Filter): Promise<{ ms: number; ids: string[] }> {
    const ids: string[] = [];
    this.got.set(sub, ids);
    const t = performance.now();
    await new Promise<void>((resolve) => {
      this.eose.set(sub, resolve);
      this.ws.send(JSON.stringify(['REQ', sub, filter]));
    });
    const ms = performance.now() - t;
    this.got.delete(sub);
    this.ws.send(JSON.stringify(['CLOSE', sub]));
    return { ms, ids };
  }

  close() {
    this.ws.close();
  }
}

/** Publishes events over CONNECTIONS sockets, WINDOW in flight each; refuses any OK false. */
async function publishAll(url: string, events: Event[]): Promise<void> {
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => Client.open(url)));
  let next = 0;
  const refused: string[] = [];
  await Promise.all(
    clients.flatMap((c) =>
      Array.from({ length: WINDOW }, async () => {
        for (;;) {
          const i = next++;
          if (i >= events.length) return;
          const [ok, msg] = await c.publish(events[i]!);
          if (!ok) refused.push(msg);
        }
      }),
    ),
  );
  for (const c of clients) c.close();
  if (refused.length > 0) {
    throw new Error(`${refused.length} events refused, e.g. ${JSON.stringify(refused[0])}`);
  }
}

async function signEvents(groupId: string): Promise<{ events: Event[]; authors: string[] }> {
  const nw = await initNostrWasm();
  const keys = Array.from({ length: AUTHORS }, () => nw.generateSecretKey());
  const authors = keys.map((k) => Buffer.from(nw.getPublicKey(k)).toString('hex'));
  const now = Math.floor(Date.now() / 1000);
  const kinds = [1, 9, 11];
  const events: Event[] = [];
  for (let i = 0; i < STORED; i++) {
    const e = {
      kind: kinds[i % kinds.length]!,
      // Spread over the last 45 minutes: the groups layer takes no event older than an hour
      // (NIP-29 relays refuse late publication), and the whole run fits in the rest.
      created_at: now - Math.floor(((STORED - i) * SPAN_S) / STORED),
      tags: [['h', groupId]],
      content: `bench post ${i} about ${['rum', 'nostr', 'groups', 'relays'][i % 4]}`,
    } as Event;
    nw.finalizeEvent(e, keys[(i * 7) % AUTHORS]!);
    events.push(e);
  }
  return { events, authors };
}

/** The same mixed filters for both relays. */
function filters(groupId: string, authors: string[], events: Event[]): Filter[] {
  const first = events[0]!.created_at;
  const last = events[events.length - 1]!.created_at;
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const out: Filter[] = [];
  for (let i = 0; i < REQS; i++) {
    const a = authors[rnd(authors.length)]!;
    const t = first + rnd(last - first);
    switch (i % 6) {
      case 0:
        out.push({ authors: [a], limit: 20 });
        break;
      case 1:
        out.push({ kinds: [9], limit: 20 });
        break;
      case 2:
        out.push({ '#h': [groupId], limit: 20 });
        break;
      case 3:
        out.push({ since: t, until: t + 60, limit: 50 });
        break;
      case 4:
        out.push({ kinds: [1], authors: [a, authors[rnd(authors.length)]!], since: t, limit: 20 });
        break;
      default:
        out.push({ '#h': [groupId], kinds: [11], until: t, limit: 20 });
    }
  }
  return out;
}

async function reqLatencies(url: string, list: Filter[]) {
  const c = await Client.open(url);
  try {
    // Warm-up (untimed): the first 100 of the same sequence.
    for (let i = 0; i < Math.min(100, list.length); i++) await c.req(`w${i}`, list[i]!);
    const ms: number[] = [];
    const answers: string[][] = [];
    for (let i = 0; i < list.length; i++) {
      const r = await c.req(`r${i}`, list[i]!);
      ms.push(r.ms);
      answers.push(r.ids);
    }
    return { ms, answers };
  } finally {
    c.close();
  }
}

async function startPeerRelay(file: string) {
  const child = spawn(process.execPath, [PEER_SCRIPT, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`peer relay exited with ${code}`)));
  });
  return {
    url: `ws://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function untilCommitted(url: string, n: number, timeoutMs = 600_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = await committedPosts(url);
    if (c >= n) return;
    if (Date.now() > end) throw new Error(`committed ${c} of ${n} in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main() {
  const dir = tempDir('rum-bench-nostr-');
  let node: BenchNode | undefined;
  let peer: Awaited<ReturnType<typeof startPeerRelay>> | undefined;
  try {
    // The relay's per-connection limits are for strangers; the benchmark is one client at full
    // speed (the same lift for the peer relay, which has none).
    const config = join(dir, 'bench-config.json');
    writeFileSync(
      config,
      JSON.stringify({
        limits: { nostrEventsPerSecond: 100_000, gatewayRateLimitPerMinute: 1_000_000 },
      }),
    );
    node = await startBenchNode({
      dir,
      args: ['--config', config, '--gatewayport', String(await freePort())],
    });
    const { group_id: groupId } = await createPublicGroup(node.url, 'nostr-bench');
    const r = await api(node.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
      handle: 'bench',
      nostr: true,
      activitypub: false,
    });
    if (r.status !== 200) throw new Error(`expose: ${r.status} ${r.text}`);
    const ours = node.gatewayUrl.replace(/^http/, 'ws');
    peer = await startPeerRelay(join(dir, 'peer-relay.sqlite'));

    const t0 = performance.now();
    const { events, authors } = await signEvents(groupId);
    log(`${events.length} events signed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Warm-up, untimed, on both relays: one event of each author (the first AUTHORS events
    // have AUTHORS different authors). On ours, an author's first event makes the RUM key the
    // gateway holds for it (kept encrypted in the keystore): once per author, ever.
    const warm = events.slice(0, AUTHORS);
    const timed = events.slice(AUTHORS, AUTHORS + INGEST);
    const rest = events.slice(AUTHORS + INGEST);
    const w0 = await committedPosts(node.url);
    const tw = performance.now();
    await publishAll(ours, warm);
    await untilCommitted(node.url, w0 + warm.length);
    log(
      `warm-up: ${warm.length} authors' first events in ${((performance.now() - tw) / 1000).toFixed(1)} s`,
    );
    await publishAll(peer.url, warm);

    // Ingest, timed: ours until committed, the peer until every OK.
    const before = await committedPosts(node.url);
    let t = performance.now();
    await publishAll(ours, timed);
    const okSeconds = (performance.now() - t) / 1000;
    await untilCommitted(node.url, before + timed.length);
    const oursRate = timed.length / ((performance.now() - t) / 1000);
    log(
      `ours: ${timed.length} OK in ${okSeconds.toFixed(1)} s, committed at ${oursRate.toFixed(0)}/s`,
    );
    t = performance.now();
    await publishAll(peer.url, timed);
    const peerRate = timed.length / ((performance.now() - t) / 1000);
    log(`peer: ${timed.length} stored at ${peerRate.toFixed(0)}/s`);
    report({
      name: 'nostr.ingest',
      value: oursRate,
      unit: 'events/s',
      baseline: peerRate,
      target: 2000,
      events: timed.length,
      connections: CONNECTIONS,
      window: WINDOW,
      ok_per_s: Math.round(timed.length / okSeconds),
      baseline_is:
        '@nostr-relay/core + event-repository-sqlite, same events, same sockets, until OK',
    });

    // Fill both stores to STORED (untimed), then REQ latency.
    await publishAll(ours, rest);
    await untilCommitted(node.url, before + timed.length + rest.length);
    await publishAll(peer.url, rest);
    log(`${events.length} events stored in both`);
    const list = filters(groupId, authors, events);
    const o = await reqLatencies(ours, list);
    const p = await reqLatencies(peer.url, list);
    // Both relays hold the same events, so each REQ must answer as many events with the same
    // created_at values, or the latencies compare different work. Which events of a tie come
    // first (and which make the cut at the limit) may differ: NIP-01 puts the lowest id first,
    // the peer relay the highest.
    // Ours also holds the group's NIP-29 metadata (kinds 39000–39003, signed by the relay key
    // just now): a filter they match answers them too, and as many fewer of the benchmark's.
    const createdAt = new Map(events.map((e) => [e.id, e.created_at]));
    const known = (ids: string[]) => ids.filter((id) => createdAt.has(id));
    const times = (ids: string[]) => ids.map((id) => createdAt.get(id)).join();
    const differ = list.filter((_, i) => {
      const mine = known(o.answers[i]!);
      return times(mine) !== times(p.answers[i]!.slice(0, mine.length));
    }).length;
    const tieOrder = list.filter((_, i) => o.answers[i]!.join() !== p.answers[i]!.join()).length;
    const returned = o.answers.reduce((a, x) => a + x.length, 0);
    log(
      `REQ answers: ${returned} events in all; ${differ} of ${list.length} differ from the peer's` +
        ` (${tieOrder} in which event of a tie comes first)`,
    );
    if (returned === 0) throw new Error('no REQ returned anything');
    if (differ > 0) throw new Error(`${differ} REQs answered other events than the peer relay`);
    const oursMs = o.ms;
    const peerMs = p.ms;
    for (const [name, p, target] of [
      ['nostr.req-p50', 50, 5],
      ['nostr.req-p99', 99, undefined],
    ] as const) {
      report({
        name,
        value: percentile(oursMs, p),
        unit: 'ms',
        baseline: percentile(peerMs, p),
        ...(target === undefined ? {} : { target }),
        stored: events.length,
        reqs: list.length,
        events_per_req: Math.round((returned / list.length) * 10) / 10,
        answers_differing_in_ties: tieOrder,
        baseline_is: '@nostr-relay/core + event-repository-sqlite, same events, same REQs',
      });
    }
  } finally {
    await peer?.stop();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
