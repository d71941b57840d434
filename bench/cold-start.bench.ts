/**
 * core.cold-start: time from spawning `rum fullnode` (as `npm start` does) to its API answering, with 10 groups and
 * 100k trxs stored. Baseline, same run: a bare `node -e` process start.
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
  const times = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const n = await startNodeProcess({ dir, nodeArgs: ['--max-semi-space-size=16'] });
    const url = n.url;
    const res = await fetch(`${url}/api/v1/groups`);
    const body = (await res.json()) as { groups: unknown[] };
    if (body.groups.length !== GROUPS) throw new Error('groups missing after restart');
    times.push(performance.now() - t);
    await n.stop();
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
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
