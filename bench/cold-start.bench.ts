/**
 * core.cold-start: time from spawning `rum fullnode` to its API answering, with 10 groups and
 * 100k trxs stored. Baseline, same run: a bare `node -e` process start.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../src/config/schema.ts';
import { RumNode } from '../src/node.ts';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { report } from './lib.ts';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 10);
const TRX = Number(process.env.BENCH_TRX ?? 100_000);
const bin = fileURLToPath(new URL('../bin/rum.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rum-bench-cold-'));
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
    keystorePassword: 'bench',
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
    const child = spawn(
      process.execPath,
      [
        bin,
        'fullnode',
        '--apiport',
        '0',
        '--configdir',
        args.configDir,
        '--datadir',
        args.dataDir,
        '--keystoredir',
        args.keystoreDir,
        '--keystorepwd',
        'bench',
        '--loglevel',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /API listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const res = await fetch(`${url}/api/v1/groups`);
    const body = (await res.json()) as { groups: unknown[] };
    if (body.groups.length !== GROUPS) throw new Error('groups missing after restart');
    times.push(performance.now() - t);
    child.kill('SIGTERM');
    await once(child, 'exit');
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
