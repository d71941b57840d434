// The keystore never writes a secret in plaintext, refuses a wrong password without touching
// anything, and binds each sealed file to its kind and name.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toHex } from '../../src/crypto/encoding.ts';
import { encodePubkey, publicKeyOf } from '../../src/crypto/keys.ts';
import { KeystoreError, openKeystore } from '../../src/crypto/keystore.ts';

const fast = { scryptN: 1 << 10 };
const fresh = () => join(mkdtempSync(join(tmpdir(), 'ks-')), 'keystore');

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'hex')]));
}

describe('keystore', () => {
  it('creates a key once and returns the same key after reopening', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    const k1 = await ks.signKey('default');
    assert.equal(ks.publicOf('sign', 'default'), encodePubkey(publicKeyOf(k1)));
    const again = await openKeystore(dir, 'pw', fast);
    assert.equal(toHex(await again.signKey('default')), toHex(k1));
    assert.deepEqual(again.list('sign'), ['default']);
  });

  it('uses the default scrypt cost when none is given', async () => {
    const dir = fresh();
    await openKeystore(dir, 'pw');
    const header = JSON.parse(readFileSync(join(dir, 'keystore.json'), 'utf8'));
    assert.equal(header.kdf, 'scrypt');
    assert.ok(header.kdfparams.N >= 1 << 16);
  });

  it('refuses a wrong password and leaves the files untouched', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'right', fast);
    await ks.signKey('default');
    const before = snapshot(dir);
    await assert.rejects(openKeystore(dir, 'wrong', fast), (err: Error) => {
      assert.ok(err instanceof KeystoreError);
      assert.match(err.message, /wrong keystore password/);
      return true;
    });
    assert.deepEqual(snapshot(dir), before);
    await assert.rejects(openKeystore(dir, '', fast), /password is empty/);
  });

  it('never writes a secret in plaintext', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    const secrets = [await ks.signKey('a'), await ks.signKey('b')];
    const secret = new Uint8Array(32).fill(0x5a);
    await ks.put('secret', 'jwt', secret, '');
    secrets.push(secret);
    for (const f of readdirSync(dir)) {
      const raw = readFileSync(join(dir, f));
      const text = raw.toString('utf8').toLowerCase();
      for (const s of secrets) {
        assert.equal(raw.includes(Buffer.from(s)), false, `${f} holds raw key bytes`);
        assert.equal(text.includes(toHex(s)), false, `${f} holds the key in hex`);
        assert.equal(text.includes(Buffer.from(s).toString('base64').toLowerCase()), false);
      }
    }
  });

  it('binds a sealed file to its name and detects damage', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    await ks.signKey('alice');
    const renamed = JSON.parse(readFileSync(join(dir, 'sign_alice.json'), 'utf8'));
    renamed.name = 'mallory';
    writeFileSync(join(dir, 'sign_mallory.json'), JSON.stringify(renamed));
    const damaged = JSON.parse(readFileSync(join(dir, 'sign_alice.json'), 'utf8'));
    damaged.ciphertext = `00${damaged.ciphertext.slice(2)}`;
    writeFileSync(join(dir, 'sign_bob.json'), JSON.stringify({ ...damaged, name: 'bob' }));
    const again = await openKeystore(dir, 'pw', fast);
    assert.throws(() => again.get('sign', 'mallory'), /does not decrypt/);
    assert.throws(() => again.get('sign', 'bob'), /does not decrypt/);
    assert.ok(again.get('sign', 'alice').length === 32);
  });

  it('validates names, refuses overwrites and removes keys', async () => {
    const ks = await openKeystore(fresh(), 'pw', fast);
    for (const bad of ['', '../x', '.hidden', 'a/b', 'x'.repeat(81)]) {
      await assert.rejects(ks.put('secret', bad, new Uint8Array(1), ''), /invalid key name/);
    }
    await ks.put('secret', 'one', new Uint8Array([1]), '');
    await assert.rejects(ks.put('secret', 'one', new Uint8Array([2]), ''), /already exists/);
    await ks.remove('secret', 'one');
    assert.equal(ks.has('secret', 'one'), false);
    assert.throws(() => ks.get('secret', 'one'), /no secret key/);
  });

  it('keeps files private to the owner', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    await ks.signKey('default');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  });
});
