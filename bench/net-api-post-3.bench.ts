/**
 * net.api-post-3: three `rum fullnode` processes (A the owner and sole producer, B and C members)
 * in one public group; 64 concurrent HTTP clients in this process POST single Notes to the three
 * APIs in turn (a third each) until N were accepted; timed from the first POST until every post
 * is committed on all three nodes (their Prometheus counters), which must agree on the head.
 * Baseline, same run: the same clients and load on one node process alone (N/3 posts).
 */
import { createPublicGroup } from '../test/helpers/node-process.ts';
import {
  joinAll,
  postLoad,
  report,
  startBenchNode,
  stopAll,
  untilAllAgree,
  untilCommitted,
} from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 9000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);

const solo = await startBenchNode();
const a = await startBenchNode();
const b = await startBenchNode({ peers: [a.p2pAddr] });
const c = await startBenchNode({ peers: [a.p2pAddr] });
try {
  const g0 = (await createPublicGroup(solo.url, 'solo')).group_id;
  let t = performance.now();
  await postLoad([{ url: solo.url, groupId: g0 }], N / 3, CLIENTS, 'solo');
  await untilCommitted([solo.url], N / 3);
  const baseline = N / 3 / ((performance.now() - t) / 1000);
  await solo.stop();

  const { group_id: groupId, seed } = await createPublicGroup(a.url, 'three');
  await joinAll([b, c], groupId, seed);
  await new Promise((r) => setTimeout(r, 1500));
  t = performance.now();
  await postLoad(
    [a, b, c].map((n) => ({ url: n.url, groupId })),
    N,
    CLIENTS,
    'net.api-post-3',
  );
  const height = await untilAllAgree([a, b, c], groupId, N);
  const seconds = (performance.now() - t) / 1000;
  report({
    name: 'net.api-post-3',
    value: N / seconds,
    unit: 'trx/s',
    baseline,
    target: 800,
    clients: CLIENTS,
    trx: N,
    blocks: height,
  });
} finally {
  await stopAll([solo, a, b, c]);
}
