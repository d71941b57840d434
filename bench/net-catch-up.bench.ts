/**
 * net.catch-up: A holds a public group of N trxs; a new node joins by seed, connected to A
 * only, and syncs it; every block and trx is verified. Rate = N / time from join to the head.
 * Baseline, same run: A's own rate of committing those trxs while filling the group.
 */
import { once } from 'node:events';
import type { RumNode } from '../src/node.ts';
import { LOOPBACK } from '../test/helpers/net.ts';
import { openTempNode } from '../test/helpers/temp-node.ts';
import { report } from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 100_000);

async function node(peers: string[]): Promise<RumNode> {
  const { node } = await openTempNode({ listen: [LOOPBACK], peers });
  await node.start();
  return node;
}

const a = await node([]);
const { groupId, seed } = await a.createGroup({
  groupName: 'catch-up',
  consensusType: 'poa',
  encryptionType: 'public',
  appKey: 'group_bbs',
});
let committed = 0;
a.events.on('committed', (e) => {
  committed += e.trxs.length;
});
let t = performance.now();
for (let i = 0; i < N; i += 500) {
  await a.postContentBatch(
    groupId,
    Array.from({ length: Math.min(500, N - i) }, (_, j) => ({
      type: 'Note',
      content: `note ${i + j} of the catch-up benchmark`,
    })),
  );
  await new Promise((r) => setImmediate(r));
}
while (committed < N) await once(a.events, 'committed');
const baseline = N / ((performance.now() - t) / 1000);

const d = await node([a.p2p.getMultiaddrs()[0]!.toString()]);
t = performance.now();
const g = await d.joinGroup(seed);
const head = a.group(groupId).head;
while (g.head.blockId < head.blockId) await new Promise((r) => setTimeout(r, 20));
const seconds = (performance.now() - t) / 1000;
if (Buffer.compare(Buffer.from(g.head.hash), Buffer.from(head.hash)) !== 0)
  throw new Error('different head');
report({
  name: 'net.catch-up',
  value: N / seconds,
  unit: 'trx/s',
  baseline,
  target: 5000,
  trx: N,
  blocks: head.blockId,
});
await Promise.all([a.stop(), d.stop()]);
