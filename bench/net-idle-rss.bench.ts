/**
 * net.idle-rss: a `rum fullnode` process (launched as `npm start` does) listening for peers, in
 * 100 groups, left idle; its
 * resident memory after it settles. Baseline, same run: the same process before it joined any
 * group.
 */
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { dirFlags, RUM_BIN, tempDir } from '../test/helpers/node-process.ts';
import { report } from './lib.ts';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 100);
const dir = tempDir('rum-bench-rss-');
const child = spawn(
  process.execPath,
  [
    '--max-semi-space-size=16',
    RUM_BIN,
    'fullnode',
    '--apiport',
    '0',
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    ...dirFlags(dir),
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
const rssMb = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
};
const settle = () => new Promise((r) => setTimeout(r, 5000));
await settle();
const baseline = rssMb();
for (let i = 0; i < GROUPS; i++) {
  const res = await fetch(`${url}/api/v1/group`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      group_name: `group ${i}`,
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'group_bbs',
    }),
  });
  if (res.status !== 200) throw new Error(await res.text());
}
await settle();
const value = rssMb();
report({ name: 'net.idle-rss', value, unit: 'MB', baseline, target: 250, groups: GROUPS });
child.kill('SIGTERM');
await once(child, 'exit');
rmSync(join(dir), { recursive: true, force: true });
