/**
 * net.catch-up: a node process A holds a public group of N trxs (200 blocks); a new node process
 * D, connected to A only, joins by seed and syncs it, verifying every block and trx signature
 * (neither process has seen a signature before). Rate = N / time from D's join call to D's API
 * reporting A's head. Baseline, same run: the rate at which the group was filled (this process,
 * through the node's batch path, before A was started as its own process on the same data).
 */
import { once } from 'node:events';
import { api, tempDir } from '../test/helpers/node-process.ts';
import { openTempNode } from '../test/helpers/temp-node.ts';
import { groupHead, report, startBenchNode, stopAll } from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 100_000);

// Fill A's store through the node itself.
const dir = tempDir('rum-bench-catchup-');
const filler = (await openTempNode({}, dir)).node;
await filler.start();
const { groupId, seed } = await filler.createGroup({
  groupName: 'catch-up',
  consensusType: 'poa',
  encryptionType: 'public',
  appKey: 'group_bbs',
});
let committed = 0;
filler.events.on('committed', (e) => {
  committed += e.trxs.length;
});
let t = performance.now();
for (let i = 0; i < N; i += 500) {
  await filler.postContentBatch(
    groupId,
    Array.from({ length: Math.min(500, N - i) }, (_, j) => ({
      type: 'Note',
      content: `note ${i + j} of the catch-up benchmark`,
    })),
  );
  await new Promise((r) => setImmediate(r));
}
while (committed < N) await once(filler.events, 'committed');
const baseline = N / ((performance.now() - t) / 1000);
const head = filler.group(groupId).head;
await filler.stop();

// A serves the group from its own process; D, a fresh node process connected to A only, joins
// it by seed over HTTP and syncs it; the time runs from the join call until D's API reports A's
// head.
const a = await startBenchNode({ dir });
const d = await startBenchNode({ peers: [a.p2pAddr] });
try {
  t = performance.now();
  const joined = await api(d.url, 'POST', '/api/v2/group/join', { seed });
  if (joined.status !== 200) throw new Error(`join: ${joined.text}`);
  for (;;) {
    const h = await groupHead(d.url, groupId);
    if (h.height >= head.blockId) break;
    if (performance.now() - t > 600_000) throw new Error(`stuck at height ${h.height}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - t) / 1000;
  const got = await groupHead(d.url, groupId);
  if (got.blockId !== Buffer.from(head.hash).toString('hex'))
    throw new Error(`different head: ${got.blockId}`);
  report({
    name: 'net.catch-up',
    value: N / seconds,
    unit: 'trx/s',
    baseline,
    target: 12000,
    trx: N,
    blocks: head.blockId,
  });
} finally {
  await stopAll([d, a]);
}
