// BIP-340 signatures made with the native addon's primitives are noble's, byte for byte, for the
// same key, message and aux; they verify with noble; BIP-340's own test vector 0 holds.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { schnorrPublicKey, schnorrSign, schnorrVerify } from '../../src/crypto/schnorr.ts';
import { signatureBackend } from '../../src/crypto/sign.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

describe('BIP-340 signing', () => {
  it('runs on the native addon here (the fast path is what the tests check)', () => {
    if (process.env.CI === 'true') assert.equal(signatureBackend, 'libsecp256k1');
  });

  it('gives noble’s signature for the same key, message and aux, over 300 random cases', () => {
    for (let i = 0; i < 300; i++) {
      const priv = randomBytes(32);
      const msg = randomBytes(32);
      const aux = randomBytes(32);
      const ours = schnorrSign(msg, priv, aux);
      assert.equal(hex(ours), hex(schnorr.sign(msg, priv, aux)), `case ${i}`);
      assert.equal(hex(schnorrPublicKey(priv)), hex(schnorr.getPublicKey(priv)));
      assert.ok(schnorr.verify(ours, msg, schnorrPublicKey(priv)));
    }
  });

  it('BIP-340 test vector 0 (secret key 3, aux and message zero)', () => {
    const priv = bytes('0000000000000000000000000000000000000000000000000000000000000003');
    const sig = schnorrSign(new Uint8Array(32), priv, new Uint8Array(32));
    assert.equal(
      hex(schnorrPublicKey(priv)).toUpperCase(),
      'F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9',
    );
    assert.equal(
      hex(sig).toUpperCase(),
      'E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA8215' +
        '25F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0',
    );
  });

  it('verifies as noble does: valid signatures, and any flipped bit of signature, message or key', () => {
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const priv = randomBytes(32);
      const msg = randomBytes(32);
      const pub = schnorrPublicKey(priv);
      const sig = schnorr.sign(msg, priv);
      assert.ok(schnorrVerify(sig, msg, pub), `valid case ${i}`);
      const which = i % 3;
      const bad = [Uint8Array.from(sig), Uint8Array.from(msg), Uint8Array.from(pub)];
      const target = bad[which]!;
      target[i % target.length]! ^= 1 << (i % 8);
      const expected = (() => {
        try {
          return schnorr.verify(bad[0]!, bad[1]!, bad[2]!);
        } catch {
          return false;
        }
      })();
      assert.equal(schnorrVerify(bad[0]!, bad[1]!, bad[2]!), expected, `flipped case ${i}`);
      if (!expected) refused++;
    }
    assert.ok(refused >= 195, `${refused} of 200 tampered signatures refused`);
    assert.equal(schnorrVerify(new Uint8Array(64), new Uint8Array(32), new Uint8Array(32)), false);
  });

  it('refuses inputs of the wrong length', () => {
    assert.throws(() => schnorrSign(new Uint8Array(31), randomBytes(32)), /32 bytes/);
  });
});
