/**
 * net.commit-3: three nodes in this process (one core between them), one public group; A, B and
 * C each post a third of N Notes; timed until all N are committed on all three nodes.
 * Baseline, same run: one node alone committing N/3 of its own posts (core.commit's path).
 */
import { once } from 'node:events';
import type { RumNode } from '../src/node.ts';
import { startMember } from '../test/helpers/net.ts';
import { report } from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 9000);
const BATCH = 100;

function committedCounter(node: RumNode, groupId: string) {
  let n = 0;
  node.events.on('committed', (e) => {
    if (e.groupId === groupId) n += e.trxs.length;
  });
  return () => n;
}

async function postAll(node: RumNode, groupId: string, count: number, tag: string) {
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => ({
      type: 'Note',
      content: `${tag} ${i + j}`,
    }));
    await node.postContentBatch(groupId, batch);
    await new Promise((r) => setImmediate(r));
  }
}

// Baseline: a single node.
const solo = (await startMember([])).node;
const g0 = (
  await solo.createGroup({
    groupName: 'solo',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  })
).groupId;
const soloCount = committedCounter(solo, g0);
let t = performance.now();
await postAll(solo, g0, N / 3, 'solo');
while (soloCount() < N / 3) await once(solo.events, 'committed');
const baseline = N / 3 / ((performance.now() - t) / 1000);
await solo.stop();

const a = (await startMember([])).node;
const addr = a.p2p.getMultiaddrs()[0]!.toString();
const b = (await startMember([addr])).node;
const c = (await startMember([addr])).node;
const { groupId, seed } = await a.createGroup({
  groupName: 'three',
  consensusType: 'poa',
  encryptionType: 'public',
  appKey: 'group_bbs',
});
await b.joinGroup(seed);
await c.joinGroup(seed);
// Let the gossip mesh form before timing.
while (b.net.groupPeers(groupId).length === 0 || c.net.groupPeers(groupId).length === 0)
  await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 1500));
const counts = [a, b, c].map((n) => committedCounter(n, groupId));
t = performance.now();
await Promise.all([
  postAll(a, groupId, N / 3, 'A'),
  postAll(b, groupId, N / 3, 'B'),
  postAll(c, groupId, N / 3, 'C'),
]);
while (!counts.every((f) => f() >= N)) await new Promise((r) => setTimeout(r, 20));
const seconds = (performance.now() - t) / 1000;
const heads = new Set(
  [a, b, c].map((n) => Buffer.from(n.group(groupId).head.hash).toString('hex')),
);
if (heads.size !== 1) throw new Error('nodes disagree on the head');
report({
  name: 'net.commit-3',
  value: N / seconds,
  unit: 'trx/s',
  baseline,
  target: 1000,
  trx: N,
  blocks: a.group(groupId).head.blockId,
});
await Promise.all([a.stop(), b.stop(), c.stop()]);
