// The keystore never writes a secret in plaintext, refuses a wrong password without touching
// anything, and binds each sealed file to its kind and name.
import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toHex } from '../../src/crypto/encoding.ts';
import { encodePubkey, publicKeyOf } from '../../src/crypto/keys.ts';
import { DEFAULT_SCRYPT_N, KeystoreError, openKeystore } from '../../src/crypto/keystore.ts';

const fast = { scryptN: 2 ** 10 };
/** A keystore directory that does not exist yet, inside a fresh temp dir. */
const fresh = () => join(mkdtempSync(join(tmpdir(), 'ks-')), 'keystore');

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'hex')]));
}

function isKeystoreError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof KeystoreError, `expected a KeystoreError, got ${err}`);
    assert.equal(err.name, 'KeystoreError');
    assert.match(err.message, pattern);
    return true;
  };
}

function readJson(path: string) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

describe('keystore', () => {
  it('creates a key once and returns the same key after reopening', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    assert.equal(ks.dir, dir);
    const k1 = await ks.signKey('default');
    assert.equal(k1.length, 32);
    assert.equal(ks.publicOf('sign', 'default'), encodePubkey(publicKeyOf(k1)));
    assert.equal(toHex(await ks.signKey('default')), toHex(k1));
    const header = readJson(join(dir, 'keystore.json'));
    assert.equal(header.version, 1);
    assert.equal(header.kdf, 'scrypt');
    assert.deepEqual(
      { N: header.kdfparams.N, r: header.kdfparams.r, p: header.kdfparams.p },
      { N: 2 ** 10, r: 8, p: 1 },
    );
    assert.match(header.kdfparams.salt, /^[0-9a-f]{64}$/);
    assert.match(header.check.nonce, /^[0-9a-f]{24}$/);
    const file = readJson(join(dir, 'sign_default.json'));
    assert.deepEqual(Object.keys(file).sort(), [
      'ciphertext',
      'kind',
      'name',
      'nonce',
      'public',
      'version',
    ]);
    assert.equal(file.ciphertext.length, (32 + 16) * 2);

    const again = await openKeystore(dir, 'pw', fast);
    assert.deepEqual(again.list('sign'), ['default']);
    assert.equal(toHex(again.get('sign', 'default')), toHex(k1));
    assert.equal(toHex(await again.signKey('default')), toHex(k1));
    assert.equal(again.publicOf('sign', 'default'), encodePubkey(publicKeyOf(k1)));
  });

  it('uses the default scrypt cost when none is given', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw');
    const key = await ks.signKey('default');
    assert.equal(readJson(join(dir, 'keystore.json')).kdfparams.N, DEFAULT_SCRYPT_N);
    assert.equal(DEFAULT_SCRYPT_N, 2 ** 17);
    // The cost is read from the file, not from the options, when reopening.
    const again = await openKeystore(dir, 'pw', fast);
    assert.equal(toHex(again.get('sign', 'default')), toHex(key));
  });

  it('refuses a wrong or empty password and leaves the files untouched', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'right', fast);
    await ks.signKey('default');
    await ks.put('encrypt', 'box', new Uint8Array(32).fill(7), 'pub');
    const before = snapshot(dir);
    await assert.rejects(
      openKeystore(dir, 'wrong', fast),
      isKeystoreError(new RegExp(`^wrong keystore password for ${dir}$`)),
    );
    assert.deepEqual(snapshot(dir), before);
    await assert.rejects(
      openKeystore(dir, '', fast),
      isKeystoreError(/^keystore password is empty$/),
    );
    assert.deepEqual(snapshot(dir), before);
    const right = await openKeystore(dir, 'right', fast);
    assert.deepEqual(right.get('encrypt', 'box'), new Uint8Array(32).fill(7));
  });

  it('rejects a malformed keystore.json, saying what is wrong', async () => {
    const dir = fresh();
    await openKeystore(dir, 'pw', fast);
    const path = join(dir, 'keystore.json');
    const good = readJson(path);
    const cases: [unknown, RegExp][] = [
      ['not json', /not JSON/],
      [[], /not a JSON object/],
      [{ ...good, version: 2 }, /unsupported version 2/],
      [{ ...good, kdf: 'pbkdf2' }, /unsupported kdf/],
      [{ ...good, kdfparams: { ...good.kdfparams, N: 1000 } }, /kdfparams\.N/],
      [{ ...good, kdfparams: { ...good.kdfparams, N: 2 ** 30 } }, /kdfparams\.N/],
      [{ ...good, kdfparams: { ...good.kdfparams, salt: 'zz' } }, /kdfparams\.salt/],
      [{ ...good, check: undefined }, /check missing/],
      [{ ...good, check: { ...good.check, nonce: 'abc' } }, /check nonce/],
    ];
    for (const [content, pattern] of cases) {
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      const before = snapshot(dir);
      await assert.rejects(openKeystore(dir, 'pw', fast), isKeystoreError(pattern));
      assert.deepEqual(snapshot(dir), before);
    }
  });

  it('never creates a keystore over key files without a keystore.json', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    await ks.signKey('default');
    const header = join(dir, 'keystore.json');
    unlinkSync(header);
    await assert.rejects(openKeystore(dir, 'pw', fast), isKeystoreError(/no keystore\.json/));
    assert.deepEqual(readdirSync(dir), ['sign_default.json']);
  });

  it('never writes a secret in plaintext', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    const secrets = [await ks.signKey('a'), await ks.signKey('b')];
    const other = new Uint8Array(32).fill(0x5a);
    await ks.put('encrypt', 'box', other, 'box-public');
    secrets.push(other);
    const files = readdirSync(dir);
    assert.deepEqual(files.sort(), [
      'encrypt_box.json',
      'keystore.json',
      'sign_a.json',
      'sign_b.json',
    ]);
    for (const f of files) {
      const raw = readFileSync(join(dir, f));
      const text = raw.toString('latin1').toLowerCase();
      for (const s of secrets) {
        const b = Buffer.from(s);
        assert.equal(raw.includes(b), false, `${f} holds raw key bytes`);
        assert.equal(text.includes(toHex(s)), false, `${f} holds the key in hex`);
        assert.equal(text.includes(b.toString('base64').toLowerCase()), false, `${f}: base64`);
        assert.equal(text.includes(b.toString('base64url').toLowerCase()), false, `${f}: b64url`);
      }
    }
  });

  it('binds a sealed file to its name (AAD) and detects damage', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    const alice = await ks.signKey('alice');
    const aliceFile = readJson(join(dir, 'sign_alice.json'));
    // Renamed, with its name field edited to match: only the additional data catches it.
    writeFileSync(
      join(dir, 'sign_mallory.json'),
      JSON.stringify({ ...aliceFile, name: 'mallory' }),
    );
    // Copied as is: the name inside does not match the file name.
    copyFileSync(join(dir, 'sign_alice.json'), join(dir, 'sign_eve.json'));
    // Moved to another kind.
    writeFileSync(
      join(dir, 'encrypt_alice.json'),
      JSON.stringify({ ...aliceFile, kind: 'encrypt' }),
    );
    // One flipped ciphertext byte.
    const flipped = (Number.parseInt(aliceFile.ciphertext.slice(0, 2), 16) ^ 1)
      .toString(16)
      .padStart(2, '0');
    writeFileSync(
      join(dir, 'sign_bob.json'),
      JSON.stringify({
        ...aliceFile,
        name: 'bob',
        ciphertext: flipped + aliceFile.ciphertext.slice(2),
      }),
    );
    writeFileSync(join(dir, 'sign_carol.json'), '{"version":1,');

    const again = await openKeystore(dir, 'pw', fast);
    assert.deepEqual(again.list('sign'), ['alice', 'bob', 'carol', 'eve', 'mallory']);
    assert.throws(() => again.get('sign', 'mallory'), isKeystoreError(/does not decrypt/));
    assert.throws(() => again.get('encrypt', 'alice'), isKeystoreError(/does not decrypt/));
    assert.throws(() => again.get('sign', 'bob'), isKeystoreError(/does not decrypt/));
    await assert.rejects(again.signKey('bob'), isKeystoreError(/does not decrypt/));
    assert.throws(() => again.get('sign', 'eve'), isKeystoreError(/unreadable: .*"alice"/));
    assert.throws(() => again.get('sign', 'carol'), isKeystoreError(/unreadable: not JSON/));
    // A damaged key is never replaced by a new one.
    const carol = readFileSync(join(dir, 'sign_carol.json'));
    await assert.rejects(again.signKey('carol'), isKeystoreError(/unreadable/));
    assert.deepEqual(readFileSync(join(dir, 'sign_carol.json')), carol);
    assert.equal(toHex(again.get('sign', 'alice')), toHex(alice));
  });

  it('validates names and kinds', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    const key = new Uint8Array(32).fill(1);
    const bad = ['', '.hidden', '..', '../x', 'a/b', 'a b', 'é', 'x'.repeat(81), 'a\0b'];
    for (const name of bad) {
      await assert.rejects(ks.put('encrypt', name, key, ''), isKeystoreError(/invalid key name/));
      await assert.rejects(ks.signKey(name), isKeystoreError(/invalid key name/));
      assert.throws(() => ks.get('sign', name), isKeystoreError(/invalid key name/));
      assert.equal(ks.has('sign', name), false);
    }
    for (const name of ['a', 'x'.repeat(80), 'A-z_0.9', 'a.', '-x', '_x']) {
      await ks.put('encrypt', name, key, '');
      assert.ok(ks.has('encrypt', name));
    }
    await assert.rejects(
      ks.put('other' as 'sign', 'x', key, ''),
      isKeystoreError(/unknown key kind/),
    );
    await assert.rejects(
      ks.put('sign', 'notakey', new Uint8Array(32), ''),
      isKeystoreError(/secp256k1/),
    );
    await assert.rejects(
      ks.put('encrypt', 'empty', new Uint8Array(0), ''),
      isKeystoreError(/bytes/),
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('sign_')),
      [],
    );
  });

  it('refuses to overwrite, removes keys, and lists them sorted', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    await ks.put('encrypt', 'one', new Uint8Array([1]), 'p1');
    await ks.put('encrypt', 'b', new Uint8Array([2]), 'p2');
    await ks.put('encrypt', 'a', new Uint8Array([3]), 'p3');
    const before = snapshot(dir);
    await assert.rejects(
      ks.put('encrypt', 'one', new Uint8Array([9]), 'x'),
      isKeystoreError(/already exists/),
    );
    assert.deepEqual(snapshot(dir), before);
    assert.deepEqual(ks.list('encrypt'), ['a', 'b', 'one']);
    assert.deepEqual(ks.list('sign'), []);
    assert.equal(ks.publicOf('encrypt', 'b'), 'p2');
    // The returned bytes are a copy: changing them does not change the store.
    ks.get('encrypt', 'one')[0] = 42;
    assert.deepEqual(ks.get('encrypt', 'one'), new Uint8Array([1]));

    await ks.remove('encrypt', 'one');
    assert.equal(ks.has('encrypt', 'one'), false);
    assert.deepEqual(ks.list('encrypt'), ['a', 'b']);
    assert.throws(() => ks.get('encrypt', 'one'), isKeystoreError(/no encrypt key named one/));
    assert.throws(() => ks.publicOf('encrypt', 'one'), isKeystoreError(/no encrypt key/));
    await assert.rejects(ks.remove('encrypt', 'one'), isKeystoreError(/no encrypt key/));
    assert.equal(readdirSync(dir).includes('encrypt_one.json'), false);
    // The name is free again, and the removal holds after reopening.
    const again = await openKeystore(dir, 'pw', fast);
    assert.deepEqual(again.list('encrypt'), ['a', 'b']);
    await again.put('encrypt', 'one', new Uint8Array([4]), 'p4');
    assert.deepEqual(again.get('encrypt', 'one'), new Uint8Array([4]));
  });

  it('refuses to overwrite a file another opener wrote', async () => {
    const dir = fresh();
    const first = await openKeystore(dir, 'pw', fast);
    const second = await openKeystore(dir, 'pw', fast);
    const key = await first.signKey('g');
    await assert.rejects(second.signKey('g'), isKeystoreError(/already exists/));
    assert.equal(toHex((await openKeystore(dir, 'pw', fast)).get('sign', 'g')), toHex(key));
  });

  it('keeps files private to the owner and leaves no temp files', async () => {
    const dir = fresh();
    const ks = await openKeystore(dir, 'pw', fast);
    await ks.signKey('default');
    await ks.put('encrypt', 'box', new Uint8Array([1, 2, 3]), '');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const files = readdirSync(dir);
    assert.equal(files.length, 3);
    for (const f of files) {
      assert.ok(!f.endsWith('.tmp'), f);
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    }
  });
});
