import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aesDecrypt, aesEncrypt } from '../../src/crypto/aes.ts';
import { randomNonce } from '../../src/crypto/random.ts';

test('randomNonce: fresh buffers of the asked size, never repeated, across pool refills', () => {
  const seen = new Set<string>();
  // 4096-byte pool: 5,000 draws of 12 bytes refill it about 15 times.
  for (let i = 0; i < 5000; i++) {
    const n = randomNonce(12);
    assert.equal(n.length, 12);
    const hex = n.toString('hex');
    assert.ok(!seen.has(hex), 'a nonce came twice');
    seen.add(hex);
  }
  const a = randomNonce(32);
  const copy = Buffer.from(a);
  randomNonce(32);
  assert.deepEqual(a, copy, 'a later draw changed an earlier answer');
  assert.notEqual(a.buffer, randomNonce(32).buffer, 'answers share memory');
  assert.equal(randomNonce(0).length, 0);
  assert.equal(randomNonce(256).length, 256);
  assert.throws(() => randomNonce(257), RangeError);
  assert.throws(() => randomNonce(-1), RangeError);
  assert.throws(() => randomNonce(1.5), RangeError);
});

test('aesEncrypt: two encryptions of one plaintext differ in nonce and both decrypt', () => {
  const key = new Uint8Array(32).fill(7);
  const msg = new TextEncoder().encode('hello group');
  const x = aesEncrypt(key, msg);
  const y = aesEncrypt(key, msg);
  assert.notDeepEqual(x.subarray(0, 12), y.subarray(0, 12));
  assert.deepEqual(aesDecrypt(key, x), msg);
  assert.deepEqual(aesDecrypt(key, y), msg);
});
