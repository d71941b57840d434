// The command line: help for every command, wrong or missing values named in the error, a wrong
// keystore password is an error and not a new key.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dirFlags, RUM_BIN, startNodeProcess, tempDir } from '../helpers/node-process.ts';

function rum(...args: string[]) {
  const res = spawnSync(process.execPath, [RUM_BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return {
    code: res.status,
    out: res.stdout,
    err: `${res.stderr}${res.signal ? ` [signal ${res.signal}]` : ''}${res.error ? ` [${res.error.message}]` : ''}`,
  };
}

describe('rum command line', () => {
  it('prints help listing commands and fullnode flags', () => {
    const r = rum('--help');
    assert.equal(r.code, 0);
    for (const word of [
      'fullnode',
      'reindex',
      'token',
      '--listen',
      '--apiport',
      '--keystorepwd',
      '--peer',
      '--autorelay',
      '--enablenat',
    ]) {
      assert.ok(r.out.includes(word), `help mentions ${word}`);
    }
    assert.equal(rum('fullnode', '--help').code, 0);
    assert.equal(rum('version').out.trim(), 'rum 2.0.0');
  });

  it('names the flag that is wrong', () => {
    let r = rum('fullnode', '--apiport', 'eighty');
    assert.equal(r.code, 2);
    assert.match(r.err, /--apiport/);
    r = rum('fullnode', '--apiport', '70000');
    assert.equal(r.code, 2);
    assert.match(r.err, /--apiport/);
    r = rum('fullnode', '--bogus');
    assert.equal(r.code, 2);
    assert.match(r.err, /--bogus/);
    r = rum('fullnode', '--loglevel', 'loud');
    assert.equal(r.code, 2);
    assert.match(r.err, /--loglevel/);
    r = rum('fullnode', '--autorelay', 'maybe');
    assert.equal(r.code, 2);
    assert.match(r.err, /--autorelay: "maybe" is not true or false/);
    r = rum('fullnode', '--enablenat', '1');
    assert.equal(r.code, 2);
    assert.match(r.err, /--enablenat: "1" is not true or false/);
    r = rum('launch');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command "launch"/);
  });

  it('refuses a wrong keystore password without creating a key', async () => {
    const dir = tempDir('rum-cli-');
    const n = await startNodeProcess({ dir });
    assert.equal(await n.stop(), 0);
    const before = readdirSync(join(dir, 'keystore')).sort();
    const r = rum(
      'fullnode',
      '--apiport',
      '0',
      ...dirFlags(dir),
      '--keystorepwd',
      'not-the-password',
    );
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /wrong keystore password/);
    assert.deepEqual(readdirSync(join(dir, 'keystore')).sort(), before);
  });

  it('starts with no password flag on the default directories, generating one once', async () => {
    const cwd = tempDir('rum-defaults-');
    const start = async () => {
      const args = ['fullnode', '--apiport', '0', '--gatewayport', '0'];
      const child = spawn(process.execPath, [RUM_BIN, ...args], {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      for (let i = 0; i < 200 && !out.includes('API listening'); i++)
        await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      const code = await new Promise((r) => child.once('exit', r));
      return { out, code };
    };
    const first = await start();
    assert.match(first.out, /API listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(first.out, /gateway listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(first.out, /no keystore password given: generated one/);
    assert.equal(first.code, 0);
    const file = join(cwd, 'config', 'peer_keystore_password');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    for (const d of ['data', 'keystore']) assert.ok(existsSync(join(cwd, d)), `./${d} created`);
    const second = await start();
    assert.match(second.out, /API listening/);
    assert.doesNotMatch(second.out, /generated one/, 'the saved password is reused');
  });
});
