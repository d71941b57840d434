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
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter(
    (f) =>
      filter.length === 0 ||
      filter.some((n) => f.includes(n.replace(/^core\.|^net\./, '').replace(/\./g, '-'))),
  )
  .sort();
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
