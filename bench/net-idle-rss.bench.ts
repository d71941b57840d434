/**
 * net.idle-rss: a `rum fullnode` process (launched as `npm start` does) listening for peers, in
 * 100 groups, left idle; its
 * resident memory after it settles. Baseline, same run: the same process before it joined any
 * group.
 */
import { readFileSync, rmSync } from 'node:fs';
import { startNodeProcess, tempDir } from '../test/helpers/node-process.ts';
import { report } from './lib.ts';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 100);
const n = await startNodeProcess({
  dir: tempDir('rum-bench-rss-'),
  args: ['--listen', '/ip4/127.0.0.1/tcp/0'],
  nodeArgs: ['--max-semi-space-size=16'],
});
const url = n.url;
const child = n.child;
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
await n.stop();
rmSync(n.dir, { recursive: true, force: true });
