/**
 * net.api-post-3: three `rum fullnode` processes (A the owner and sole producer, B and C members)
 * in one public group; 64 concurrent HTTP clients in this process POST single Notes to the three
 * APIs in turn (a third each) until N were accepted; timed from the first POST until every post
 * is committed on all three nodes (their Prometheus counters), which must agree on the head.
 * Baseline, same run: the same clients and load on one node process alone (N/3 posts).
 */
import {
  postLoad,
  report,
  sharedGroup,
  soloRate,
  startBenchNode,
  stopAll,
  untilAllAgree,
} from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 9000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);

const solo = await startBenchNode();
const a = await startBenchNode();
const b = await startBenchNode({ peers: [a.p2pAddr] });
const c = await startBenchNode({ peers: [a.p2pAddr] });
try {
  const baseline = await soloRate(solo, N / 3, (g0) =>
    postLoad([{ url: solo.url, groupId: g0 }], N / 3, CLIENTS, 'solo'),
  );
  const groupId = await sharedGroup(a, [b, c], 'three');
  const t = performance.now();
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
