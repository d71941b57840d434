/**
 * net.catch-up: a node process A holds a public group of N trxs; a new node (this process),
 * connected to A only, joins by seed and syncs it, verifying every block and trx.
 * Rate = N / time from join to head. Baseline, same run: the rate at which A committed those
 * trxs while the group was filled (in this process, before A was started as its own process).
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { LOOPBACK, startMember } from '../test/helpers/net.ts';
import { startNodeProcess, tempDir } from '../test/helpers/node-process.ts';
import { openTempNode } from '../test/helpers/temp-node.ts';
import { report } from './lib.ts';

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

// A serves the group from its own process; D syncs it here.
const a = await startNodeProcess({
  dir,
  args: ['--listen', LOOPBACK],
  nodeArgs: ['--max-semi-space-size=16'],
});
const aAddr = ((await (await fetch(`${a.url}/api/v1/network`)).json()) as { addrs: string[] })
  .addrs[0]!;
const d = (await startMember([aAddr], undefined, {})).node;
while (d.p2p.getConnections().length === 0) await new Promise((r) => setTimeout(r, 20));
t = performance.now();
const g = await d.joinGroup(seed);
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
await d.stop();
await a.stop();
rmSync(dir, { recursive: true, force: true });
