/**
 * net.latency: three `rum fullnode` processes on default settings (200 ms block interval): A the
 * owner and sole producer, B and C members. Notes are POSTed one at a time over HTTP at 100/s for
 * 10 s, first on A (the producer's own posts), then on B (a member's posts, which travel B → A
 * over gossip before A puts them in a block); for each, the time from its POST to its arrival on
 * C's /api/v1/ws/trx WebSocket. Prints p50 and p99 of both; the member's figures are the
 * `net.latency-member-*` ones, and their baseline is the producer's in the same run.
 */
import { createPublicGroup } from '../test/helpers/node-process.ts';
import {
  joinAll,
  noteBody,
  percentile,
  postJson,
  report,
  startBenchNode,
  stopAll,
  watchCommits,
} from './lib.ts';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

const a = await startBenchNode();
const b = await startBenchNode({ peers: [a.p2pAddr] });
const c = await startBenchNode({ peers: [a.p2pAddr] });
try {
  const { group_id: groupId, seed } = await createPublicGroup(a.url, 'latency');
  await joinAll([b, c], groupId, seed);
  await new Promise((r) => setTimeout(r, 2000));
  const onC = await watchCommits(c.url, groupId);

  /** Posts on one node at RATE for SECONDS; the POST → commit-on-C times. */
  async function run(url: string, tag: string): Promise<number[]> {
    const sentAt = new Map<string, number>();
    const total = RATE * SECONDS;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / RATE - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = performance.now();
      const res = await postJson(`${url}/api/v1/group/${groupId}/content`, noteBody(`${tag} ${i}`));
      if (res.status !== 200) throw new Error(`POST ${res.status}: ${res.json.message}`);
      sentAt.set(res.json.trx_id, t);
    }
    const bound = Date.now() + 60_000;
    while ([...sentAt.keys()].some((id) => !onC.times.has(id)) && Date.now() < bound)
      await new Promise((r) => setTimeout(r, 50));
    return [...sentAt].map(([id, t]) => {
      const at = onC.times.get(id);
      if (at === undefined) throw new Error(`${tag}: trx ${id} never reached C`);
      return at - t;
    });
  }

  const producer = await run(a.url, 'producer');
  const member = await run(b.url, 'member');
  onC.close();
  const extra = { unit: 'ms', rate: RATE, seconds: SECONDS };
  report({
    name: 'net.latency-p50',
    value: percentile(producer, 50),
    baseline: percentile(member, 50),
    target: 200,
    ...extra,
  });
  report({
    name: 'net.latency-p99',
    value: percentile(producer, 99),
    baseline: percentile(member, 99),
    target: 1000,
    ...extra,
  });
  report({
    name: 'net.latency-member-p50',
    value: percentile(member, 50),
    baseline: percentile(producer, 50),
    target: 300,
    ...extra,
  });
  report({
    name: 'net.latency-member-p99',
    value: percentile(member, 99),
    baseline: percentile(producer, 99),
    target: 1000,
    ...extra,
  });
} finally {
  await stopAll([a, b, c]);
}
