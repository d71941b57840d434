/**
 * net.latency: three nodes on default settings; A posts Notes one by one at 100 trx/s for 10 s;
 * for each, the time from the post to its commit on C. Prints p50 and p99. Baseline, same run:
 * the same measure on A itself (post to local commit).
 */
import type { RumNode } from '../src/node.ts';
import { startMember } from '../test/helpers/net.ts';
import { report } from './lib.ts';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

// Default limits ({}): the production block interval, not the tests' fast timers.
const node = async (peers: string[]): Promise<RumNode> =>
  (await startMember(peers, undefined, {})).node;

const a = await node([]);
const addr = a.p2p.getMultiaddrs()[0]!.toString();
const b = await node([addr]);
const c = await node([addr]);
const { groupId, seed } = await a.createGroup({
  groupName: 'latency',
  consensusType: 'poa',
  encryptionType: 'public',
  appKey: 'group_bbs',
});
await b.joinGroup(seed);
await c.joinGroup(seed);
while (c.net.groupPeers(groupId).length === 0) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 2000));

const postedAt = new Map<string, number>();
const onA: number[] = [];
const onC: number[] = [];
a.events.on('committed', (e) => {
  const now = performance.now();
  for (const { trx } of e.trxs) {
    const t = postedAt.get(trx.TrxId);
    if (t !== undefined) onA.push(now - t);
  }
});
c.events.on('committed', (e) => {
  const now = performance.now();
  for (const { trx } of e.trxs) {
    const t = postedAt.get(trx.TrxId);
    if (t !== undefined) onC.push(now - t);
  }
});
const total = RATE * SECONDS;
const start = performance.now();
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / RATE;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const t = performance.now();
  const id = await a.postContent(groupId, { type: 'Note', content: `latency ${i}` });
  postedAt.set(id, t);
}
while (onC.length < total) await new Promise((r) => setTimeout(r, 50));
const pct = (xs: number[], p: number) =>
  [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
report({
  name: 'net.latency-p50',
  value: pct(onC, 50),
  unit: 'ms',
  baseline: pct(onA, 50),
  target: 200,
  rate: RATE,
});
report({
  name: 'net.latency-p99',
  value: pct(onC, 99),
  unit: 'ms',
  baseline: pct(onA, 99),
  target: 1000,
  rate: RATE,
});
await Promise.all([a.stop(), b.stop(), c.stop()]);
