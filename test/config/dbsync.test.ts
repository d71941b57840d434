// --dbsync: SQLite's synchronous mode from a flag, RUM_DBSYNC or the config file (default full);
// a wrong value is named in the error, and the node's database runs with the mode asked for.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { RUM_BIN, tempDir } from '../helpers/node-process.ts';
import { openTempNode } from '../helpers/temp-node.ts';

function config(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const res = loadConfig(argv, env);
  assert.equal(res.help, false);
  return (res as { config: Config }).config;
}

describe('--dbsync', () => {
  it('defaults to full and is read from a flag, the environment and the config file', () => {
    assert.equal(config([]).dbSync, 'full');
    assert.equal(config(['--dbsync', 'normal']).dbSync, 'normal');
    assert.equal(config(['--dbsync=full']).dbSync, 'full');
    assert.equal(config([], { RUM_DBSYNC: 'normal' }).dbSync, 'normal');
    const file = join(tempDir('rum-dbsync-'), 'config.json');
    writeFileSync(file, JSON.stringify({ dbSync: 'normal' }));
    assert.equal(config(['--config', file]).dbSync, 'normal');
    // defaults < config file < environment < flags
    assert.equal(config(['--config', file], { RUM_DBSYNC: 'full' }).dbSync, 'full');
    assert.equal(
      config(['--config', file, '--dbsync', 'full'], { RUM_DBSYNC: 'normal' }).dbSync,
      'full',
    );
  });

  it('names the flag, variable or file key of a wrong value', () => {
    assert.throws(
      () => config(['--dbsync', 'off']),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^--dbsync: .*"full".*"normal"/);
        return true;
      },
    );
    assert.throws(() => config([], { RUM_DBSYNC: 'FULL' }), /environment variable RUM_DBSYNC/);
    const file = join(tempDir('rum-dbsync-'), 'config.json');
    writeFileSync(file, JSON.stringify({ dbSync: 'extra' }));
    assert.throws(() => config(['--config', file]), /config file key "dbSync"/);
    const r = spawnSync(process.execPath, [RUM_BIN, 'fullnode', '--dbsync', 'fast'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^rum: --dbsync: /);
    const help = spawnSync(process.execPath, [RUM_BIN, 'help'], { encoding: 'utf8' });
    assert.match(help.stdout, /--dbsync/);
  });

  it('sets PRAGMA synchronous on the node’s database (FULL = 2, NORMAL = 1), WAL either way', async () => {
    for (const [dbSync, expected] of [
      [undefined, 2],
      ['full', 2],
      ['normal', 1],
    ] as const) {
      const { node } = await openTempNode(dbSync ? { dbSync } : {});
      try {
        const sqlite = node.store.db.$client;
        assert.equal(sqlite.pragma('synchronous', { simple: true }), expected, String(dbSync));
        assert.equal(sqlite.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        await node.stop();
      }
    }
  });
});
