/**
 * net.commit-3: three node processes (each its own OS process, started as `rum fullnode`), one
 * public group; A (the owner, sole producer), B and C each post a third of N Notes through the
 * node's batch path (bench/node-driver.ts: postContentBatch, batches of 100); timed until all N
 * are committed on all three (their Prometheus counters), which must agree on the head.
 * Baseline, same run: one node process alone committing N/3 of its own posts on the same path.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { report, sharedGroup, soloRate, startBenchNode, stopAll, untilAllAgree } from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 9000);
const DRIVER = fileURLToPath(new URL('./node-driver.ts', import.meta.url));

const driverNode = (peers: string[] = []) => startBenchNode({ peers, script: DRIVER, ipc: true });

function post(child: ChildProcess, groupId: string, count: number, tag: string): Promise<void> {
  return new Promise((resolve) => {
    child.once('message', () => resolve());
    child.send({ cmd: 'post', groupId, count, batch: 100, tag });
  });
}

const solo = await driverNode();
const a = await driverNode();
const b = await driverNode([a.p2pAddr]);
const c = await driverNode([a.p2pAddr]);
try {
  const baseline = await soloRate(solo, N / 3, (g0) => post(solo.child, g0, N / 3, 'solo'));
  const groupId = await sharedGroup(a, [b, c], 'three');
  const t = performance.now();
  await Promise.all([
    post(a.child, groupId, N / 3, 'A'),
    post(b.child, groupId, N / 3, 'B'),
    post(c.child, groupId, N / 3, 'C'),
  ]);
  const height = await untilAllAgree([a, b, c], groupId, N);
  const seconds = (performance.now() - t) / 1000;
  report({
    name: 'net.commit-3',
    value: N / seconds,
    unit: 'trx/s',
    baseline,
    target: 1000,
    trx: N,
    blocks: height,
  });
} finally {
  await stopAll([solo, a, b, c]);
}
