/**
 * api.post: one `rum fullnode` process, one public group; 64 concurrent HTTP clients in this
 * process each POST single Notes to /api/v1/group/{id}/content (one trx per call, as users and
 * bridges post) until N were accepted. Rate = N / time from the first POST to the commit of the
 * last, as seen by a client on the node's /api/v1/ws/trx WebSocket; p50/p99 of POST → commit per
 * trx. Run under --dbsync full (the default) and normal.
 * Baseline, same run: the same 64 clients calling GET /api/v1/node (the HTTP ceiling of this
 * node and load generator on this machine).
 */
import http from 'node:http';
import { createPublicGroup } from '../test/helpers/node-process.ts';
import {
  noteBody,
  percentile,
  postJson,
  postLoad,
  report,
  startBenchNode,
  stopAll,
  watchCommits,
} from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 20_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);
const WARMUP = 1000;

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

async function httpCeiling(url: string, total: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next++ < total) if ((await get(`${url}/api/v1/node`)) !== 200) throw new Error('GET');
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

for (const dbsync of ['full', 'normal'] as const) {
  const node = await startBenchNode({ args: ['--dbsync', dbsync] });
  try {
    const { group_id: groupId } = await createPublicGroup(node.url, 'api-post');
    const baseline = await httpCeiling(node.url, N);
    const commits = await watchCommits(node.url, groupId);
    // JIT warm-up of the post path (its trxs are not counted).
    for (let i = 0; i < WARMUP; i++) {
      const r = await postJson(`${node.url}/api/v1/group/${groupId}/content`, noteBody(`w${i}`));
      if (r.status !== 200) throw new Error(`warm-up POST ${r.status}`);
    }
    while (commits.times.size < WARMUP) await new Promise((r) => setTimeout(r, 20));
    commits.times.clear();
    const start = performance.now();
    const { sentAt } = await postLoad([{ url: node.url, groupId }], N, CLIENTS, 'api.post');
    const bound = Date.now() + 300_000;
    while (commits.times.size < N && Date.now() < bound)
      await new Promise((r) => setTimeout(r, 20));
    if (commits.times.size < N) throw new Error(`only ${commits.times.size} of ${N} committed`);
    const last = Math.max(...commits.times.values());
    const lat = [...sentAt].map(([id, t]) => commits.times.get(id)! - t);
    commits.close();
    report({
      name: dbsync === 'full' ? 'api.post' : 'api.post.dbsync-normal',
      value: N / ((last - start) / 1000),
      unit: 'trx/s',
      baseline,
      target: 3000,
      dbsync,
      clients: CLIENTS,
      trx: N,
      p50_ms: Math.round(percentile(lat, 50)),
      p99_ms: Math.round(percentile(lat, 99)),
    });
  } finally {
    await stopAll([node]);
  }
}
