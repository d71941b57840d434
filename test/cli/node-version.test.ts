// A newcomer on an older Node gets told which version is needed and how to get it, not a
// SyntaxError: from `rum` (bin/rum.js) and from `npm install` (the preinstall script,
// scripts/check-node.cjs), both plain JavaScript that old Node parses. Runs them under the
// system's older Node at /usr/bin/node when there is one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { RUM_BIN } from '../helpers/node-process.ts';

const CHECK = fileURLToPath(new URL('../../scripts/check-node.cjs', import.meta.url));
const PACKAGE = new URL('../../package.json', import.meta.url);
const { tooOld } = createRequire(import.meta.url)(CHECK) as { tooOld: (v: string) => boolean };
const OLD_NODE = '/usr/bin/node';

function run(node: string, ...args: string[]) {
  const r = spawnSync(node, args, { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function oldNodeSkip(): string | false {
  if (!existsSync(OLD_NODE)) return `${OLD_NODE} is missing`;
  const v = run(OLD_NODE, '-p', 'process.versions.node').out.trim();
  if (!tooOld(v)) return `${OLD_NODE} is Node ${v}, not older than 22.18`;
  return false;
}

function assertMessage(r: { code: number | null; out: string; err: string }, what: string) {
  assert.notEqual(r.code, 0, `${what} exits non-zero`);
  assert.match(r.err, /needs Node\.js >= 22\.18/, what);
  assert.match(r.err, /this is Node \d+\.\d+\.\d+/, what);
  assert.match(r.err, /^ {2}\. scripts\/node24\.sh$/m, what);
  assert.doesNotMatch(r.err, /SyntaxError|ERR_/, what);
  assert.equal(r.out, '', what);
}

describe('Node version check', () => {
  it('compares versions against 22.18', () => {
    for (const v of ['0.10.48', '4.9.1', '20.20.2', '22.17.1', '22.9.0', 'v18.0.0'])
      assert.equal(tooOld(v), true, v);
    for (const v of ['22.18.0', '22.20.0', '23.0.0', '24.21.0', '100.0.0'])
      assert.equal(tooOld(v), false, v);
  });

  it('is the preinstall script, in syntax that old Node parses', () => {
    const pkg = JSON.parse(readFileSync(PACKAGE, 'utf8'));
    assert.equal(pkg.scripts.preinstall, 'node scripts/check-node.cjs');
    const src = readFileSync(CHECK, 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
    assert.doesNotMatch(src, /=>|`|\b(const|let|class|async|await)\b|\?\.|\.\.\./);
  });

  it('passes on this Node', () => {
    assert.deepEqual(run(process.execPath, CHECK), { code: 0, out: '', err: '' });
    const r = run(process.execPath, RUM_BIN, 'version');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'rum 2.0.0\n');
  });

  it('tells an older Node which version is needed and how to get it', (t) => {
    const skip = oldNodeSkip();
    if (skip) return t.skip(skip);
    assertMessage(run(OLD_NODE, CHECK), 'check-node.cjs');
    assertMessage(run(OLD_NODE, RUM_BIN, 'version'), 'rum version');
    assertMessage(run(OLD_NODE, RUM_BIN, 'fullnode', '--apiport', '0'), 'rum fullnode');
  });
});
