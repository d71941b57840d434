/**
 * core.cold-start-first and core.cold-start: time from spawning `rum fullnode` (as `npm start`
 * does) to its API answering GET /api/v1/groups, with 10 groups and 100k trxs stored: the first
 * start with an empty compile cache (as after a clean install), then the median of 3 later starts.
 * Baseline, same run: a bare `node -e 0` process start.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { ConfigSchema } from '../src/config/schema.ts';
import { RumNode } from '../src/node.ts';
import { startNodeProcess, TEST_PASSWORD, tempDir } from '../test/helpers/node-process.ts';
import { report } from './lib.ts';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 10);
const TRX = Number(process.env.BENCH_TRX ?? 100_000);
const dir = tempDir('rum-bench-cold-');
const args = {
  configDir: join(dir, 'config'),
  dataDir: join(dir, 'data'),
  keystoreDir: join(dir, 'keystore'),
};

try {
  // Fill the store through the node itself.
  const node = await RumNode.open({
    config: ConfigSchema.parse(args),
    logger: pino({ level: 'warn' }),
    keystorePassword: TEST_PASSWORD,
  });
  await node.start();
  let committed = 0;
  node.events.on('committed', (e) => {
    committed += e.trxs.length;
  });
  const ids: string[] = [];
  for (let i = 0; i < GROUPS; i++) {
    ids.push(
      (
        await node.createGroup({
          groupName: `g${i}`,
          consensusType: 'poa',
          encryptionType: 'public',
          appKey: 'group_bbs',
        })
      ).groupId,
    );
  }
  for (let i = 0; i < TRX; i += 500) {
    const batch = Array.from({ length: Math.min(500, TRX - i) }, (_, j) => ({
      type: 'Note',
      content: `note ${i + j}`,
    }));
    await node.postContentBatch(ids[(i / 500) % GROUPS]!, batch);
    await new Promise((r) => setImmediate(r));
  }
  while (committed < TRX) await once(node.events, 'committed');
  await node.stop();

  const bare = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(performance.now() - t);
  }
  // The first start after a clean install: Node's compile cache (bin/rum.js enables it) is empty.
  // Later starts reuse what the first one cached, as every start after the first does.
  const env = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') };
  const start = async () => {
    const t = performance.now();
    const n = await startNodeProcess({ dir, env, nodeArgs: ['--max-semi-space-size=16'] });
    const url = n.url;
    const res = await fetch(`${url}/api/v1/groups`);
    const body = (await res.json()) as { groups: unknown[] };
    if (body.groups.length !== GROUPS) throw new Error('groups missing after restart');
    const ms = performance.now() - t;
    await n.stop();
    return ms;
  };
  const first = await start();
  const times = [];
  for (let i = 0; i < 3; i++) times.push(await start());
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  report({
    name: 'core.cold-start-first',
    value: first,
    unit: 'ms',
    baseline: median(bare),
    target: 3000,
    groups: GROUPS,
    trx: TRX,
  });
  report({
    name: 'core.cold-start',
    value: median(times),
    unit: 'ms',
    baseline: median(bare),
    target: 2000,
    groups: GROUPS,
    trx: TRX,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
