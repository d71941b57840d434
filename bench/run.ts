/**
 * `npm run bench` runs every bench/*.bench.ts in its own process; `npm run bench -- NAME` runs
 * those whose file name contains NAME. Each benchmark prints its results as JSON lines
 * {"name","value","unit","baseline","ratio"} where the baseline is measured in the same run.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const filter = process.argv.slice(2);
const all = readdirSync(dir).filter((f) => f.endsWith('.bench.ts'));
/**
 * The files of a figure's name. A file with several figures (`queue.deliver-bullmq` and
 * `queue.deliver-embedded`) is named by a figure's name without its last part.
 */
function filesOf(name: string): string[] {
  // A file named exactly (`ap` is ap.bench.ts, not also api-post and net-api-post-3).
  if (all.includes(`${name}.bench.ts`)) return [`${name}.bench.ts`];
  const n = name.replace(/^core\.|^net\./, '').replace(/\./g, '-');
  const direct = all.filter((f) => f.includes(n));
  if (direct.length > 0 || !n.includes('-')) return direct;
  // `ap.inbox`, `ap.fanout-bullmq`: the file named by the figure's first part, when there is one.
  const first = `${n.slice(0, n.indexOf('-'))}.bench.ts`;
  if (all.includes(first)) return [first];
  return all.filter((f) => f.includes(n.slice(0, n.lastIndexOf('-'))));
}
const files = (filter.length === 0 ? all : [...new Set(filter.flatMap(filesOf))]).sort();
if (files.length === 0) {
  process.stderr.write(`no benchmark matches ${filter.join(' ')}\n`);
  process.exit(2);
}
let failed = 0;
for (const f of files) {
  process.stderr.write(`# ${f}\n`);
  const res = spawnSync(process.execPath, ['--expose-gc', join(dir, f)], { stdio: 'inherit' });
  if (res.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
