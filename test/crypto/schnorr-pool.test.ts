// BIP-340 verification in worker threads (src/crypto/schnorr-pool.ts) gives schnorrVerify's
// verdicts, for signatures asked one by one and in batches larger than one message, good and
// tampered alike; a pool whose workers are gone still answers, on the calling thread.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { SchnorrPool } from '../../src/crypto/schnorr-pool.ts';
import { schnorrPublicKey, schnorrSign, schnorrVerify } from '../../src/crypto/schnorr.ts';

interface Case {
  sig: Uint8Array;
  msg: Uint8Array;
  pub: Uint8Array;
}

function cases(n: number): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const priv = randomBytes(32);
    const msg = randomBytes(32);
    const sig = schnorrSign(msg, priv);
    const pub = schnorrPublicKey(priv);
    // Every third one tampered: a flipped bit of the signature, the message or the key.
    if (i % 3 === 1) sig[i % 64]! ^= 1;
    if (i % 3 === 2) msg[i % 32]! ^= 0x80;
    out.push({ sig, msg, pub });
  }
  return out;
}

describe('SchnorrPool', () => {
  const pool = new SchnorrPool(2);
  after(() => pool.close());

  it("gives schnorrVerify's verdicts, in a batch of 600 (more than one message to a worker)", async () => {
    const list = cases(600);
    const got = await Promise.all(list.map((c) => pool.verify(c.sig, c.msg, c.pub)));
    const want = list.map((c) => schnorrVerify(c.sig, c.msg, c.pub));
    assert.deepEqual(got, want);
    assert.equal(want.filter(Boolean).length, 200);
    assert.equal(pool.verifiedOffThread, 600, 'verified by the worker threads');
  });

  it('one at a time, and a malformed input is false', async () => {
    for (const c of cases(9)) {
      assert.equal(await pool.verify(c.sig, c.msg, c.pub), schnorrVerify(c.sig, c.msg, c.pub));
    }
    const [c] = cases(1);
    assert.equal(await pool.verify(c!.sig.subarray(0, 63), c!.msg, c!.pub), false);
    assert.equal(await pool.verify(c!.sig, c!.msg, new Uint8Array(32)), false);
  });

  it('answers on the calling thread once closed', async () => {
    const closed = new SchnorrPool(1);
    const list = cases(6);
    const first = await closed.verify(list[0]!.sig, list[0]!.msg, list[0]!.pub);
    assert.equal(first, true);
    await closed.close();
    const got = await Promise.all(list.map((c) => closed.verify(c.sig, c.msg, c.pub)));
    assert.deepEqual(
      got,
      list.map((c) => schnorrVerify(c.sig, c.msg, c.pub)),
    );
  });
});
