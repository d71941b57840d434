// SignaturePool (src/crypto/signature-pool.ts, formerly VerifyPool in verify-pool.ts): signatures
// checked on worker threads get exactly the answers verifyDigest gives on the main thread, in the
// order asked, and SignatureCache.preverify remembers only the valid ones. A closed pool still
// answers, on the calling thread.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { type Trx, TrxType } from '../../src/chain/pb.ts';
import { SignatureCache, signTrx, trxDigest, verifyTrxSignature } from '../../src/chain/trx.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import { sha256, signDigest, verifyDigest } from '../../src/crypto/sign.ts';
import { type VerifyItem, SignaturePool } from '../../src/crypto/signature-pool.ts';
import { highS } from '../helpers/chain.ts';

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at] = out[at]! ^ 0x40;
  return out;
}

const keys = Array.from({ length: 5 }, () => generatePrivateKey());
const pubs = keys.map((k) => publicKeyOf(k));

/**
 * Item i of a batch of well-formed (packable) items and whether it should verify. The kinds
 * cycle with a period of 9, so that two halves swapped or shifted give other answers.
 */
function wellFormed(i: number): { item: VerifyItem; valid: boolean; kind: string } {
  const k = i % keys.length;
  const digest = sha256(Buffer.from(`message ${i}`));
  const sig = signDigest(digest, keys[k]!);
  const pub = pubs[k]!;
  switch (i % 9) {
    case 0:
      return { kind: 'valid', valid: true, item: { pub, digest, sig } };
    case 1:
      return { kind: 'valid, 64 bytes', valid: true, item: { pub, digest, sig: sig.slice(0, 64) } };
    case 2:
      return { kind: 'bad digest', valid: false, item: { pub, digest: flip(digest, 7), sig } };
    case 3:
      return { kind: 'bad r', valid: false, item: { pub, digest, sig: flip(sig, 3) } };
    case 4:
      return { kind: 'bad s', valid: false, item: { pub, digest, sig: flip(sig, 40) } };
    case 5:
      return { kind: 'high-S', valid: false, item: { pub, digest, sig: highS(sig) } };
    case 6:
      return {
        kind: 'wrong key',
        valid: false,
        item: { pub: pubs[(k + 1) % keys.length]!, digest, sig },
      };
    case 7:
      return {
        kind: 'not a point',
        valid: false,
        item: { pub: Uint8Array.of(0x05, ...pub.subarray(1)), digest, sig },
      };
    default:
      return { kind: 'zero s', valid: false, item: { pub, digest, sig: sig.fill(0, 32, 64) } };
  }
}

/** Items of impossible lengths: a worker cannot be given them. */
function malformed(i: number): VerifyItem {
  const digest = sha256(Buffer.from(`malformed ${i}`));
  const sig = signDigest(digest, keys[0]!);
  const pub = pubs[0]!;
  switch (i % 6) {
    case 0:
      return { pub, digest, sig: sig.subarray(0, 63) };
    case 1:
      return { pub, digest, sig: Uint8Array.of(...sig, 0) };
    case 2:
      return { pub, digest: digest.subarray(0, 31), sig };
    case 3:
      return { pub: secp256k1.getPublicKey(keys[0]!, false), digest, sig };
    case 4:
      return { pub: pub.subarray(0, 32), digest, sig };
    default:
      return { pub, digest, sig: new Uint8Array(0) };
  }
}

const onMainThread = (items: VerifyItem[]) =>
  items.map((it) => verifyDigest(it.pub, it.digest, it.sig));

/** Counts the answers each worker of a pool sends. */
function countAnswers(pool: SignaturePool): number[] {
  const workers = (pool as unknown as { workers: Worker[] }).workers;
  const counts = workers.map(() => 0);
  workers.forEach((w, i) => {
    w.on('message', () => {
      counts[i]!++;
    });
  });
  return counts;
}

describe('SignaturePool', () => {
  const pools: SignaturePool[] = [];
  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  it('gives the answers of verifyDigest on the main thread for a mixed batch', async () => {
    const pool = new SignaturePool();
    pools.push(pool);
    const made = Array.from({ length: 270 }, (_, i) => wellFormed(i));
    const items = made.map((m) => m.item);
    const expected = onMainThread(items);
    // The test's own idea of each item agrees with verifyDigest: the batch is really mixed.
    made.forEach((m, i) => {
      assert.equal(expected[i], m.valid, `${i}: ${m.kind}`);
    });
    assert.deepEqual(await pool.verify(items), expected);

    // With items of impossible lengths among them: still the same answers.
    const mixed = [...items];
    for (let i = 0; i < 30; i++) mixed.splice(i * 9 + 4, 0, malformed(i));
    assert.deepEqual(await pool.verify(mixed), onMainThread(mixed));
  });

  it('splits a batch between 2 workers and puts the answers back in order', async () => {
    const pool = new SignaturePool(2);
    pools.push(pool);
    const answers = countAnswers(pool);
    // An odd count: the parts are 101 and 100 items.
    const items = Array.from({ length: 201 }, (_, i) => wellFormed(i).item);
    const expected = onMainThread(items);
    assert.deepEqual(await pool.verify(items), expected);
    assert.deepEqual(answers, [1, 1], 'each worker answered one part');

    // Again with the halves' kinds arranged so that any swap or shift shows.
    const reversed = [...items].reverse();
    assert.deepEqual(await pool.verify(reversed), onMainThread(reversed));
    assert.deepEqual(answers, [2, 2]);

    // Several batches at once: each gets its own answers.
    const batches = [0, 1, 2].map((b) =>
      Array.from({ length: 100 + b * 37 }, (_, i) => wellFormed(i * 3 + b).item),
    );
    const all = await Promise.all(batches.map((b) => pool.verify(b)));
    batches.forEach((b, k) => {
      assert.deepEqual(all[k], onMainThread(b));
    });

    // A small batch is not worth a round trip: answered on the calling thread.
    const small = items.slice(0, 20);
    const before = [...answers];
    assert.deepEqual(await pool.verify(small), onMainThread(small));
    assert.deepEqual(answers, before);
  });

  it('signs on the workers the very signatures signDigest makes', async () => {
    const pool = new SignaturePool(2);
    pools.push(pool);
    const answers = countAnswers(pool);
    const items = Array.from({ length: 40 }, (_, i) => ({
      digest: sha256(Buffer.from(`to sign ${i}`)),
      priv: keys[i % keys.length]!,
    }));
    const sigs = await pool.sign(items);
    assert.deepEqual(answers, [1, 0], 'one job, on a worker');
    items.forEach((it, i) => {
      assert.deepEqual(sigs[i], signDigest(it.digest, it.priv), `${i}`);
      assert.ok(verifyDigest(pubs[i % keys.length]!, it.digest, sigs[i]!));
    });
    await pool.close();
    assert.deepEqual(await pool.sign(items), sigs, 'closed: signed here');
  });

  it('close() resolves, a job under way still gets its answers, and later calls answer here', async () => {
    const pool = new SignaturePool(2);
    pools.push(pool);
    const items = Array.from({ length: 300 }, (_, i) => wellFormed(i + 5).item);
    const expected = onMainThread(items);
    const pending = pool.verify(items);
    await pool.close();
    assert.deepEqual(await pending, expected);
    const answers = countAnswers(pool);
    assert.deepEqual(await pool.verify(items), expected);
    assert.deepEqual(answers, [0, 0], 'answered on the calling thread');
    await pool.close();
  });
});

describe('SignatureCache.preverify', () => {
  const pools: SignaturePool[] = [];
  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  function trxBy(priv: Uint8Array, i: number, sender = encodePubkey(publicKeyOf(priv))): Trx {
    const ts = 1_700_000_000_000_000_000n + BigInt(i);
    return signTrx(
      {
        TrxId: crypto.randomUUID(),
        Type: TrxType.POST,
        GroupId: '00000000-0000-4000-8000-000000000001',
        Data: Buffer.from(`data ${i}`),
        TimeStamp: ts,
        Expired: 0n,
        SenderPubkey: sender,
      },
      priv,
    );
  }

  it('remembers only valid signatures, so a later verify rejects the invalid ones', async () => {
    const pool = new SignaturePool(2);
    pools.push(pool);
    const answers = countAnswers(pool);
    const list: { trx: Trx; valid: boolean }[] = [];
    for (let i = 0; i < 160; i++) {
      const priv = keys[i % keys.length]!;
      const t = trxBy(priv, i);
      switch (i % 5) {
        case 0:
        case 1:
          list.push({ trx: t, valid: true });
          break;
        case 2:
          list.push({ trx: { ...t, Data: Buffer.from(`tampered ${i}`) }, valid: false });
          break;
        case 3:
          list.push({ trx: { ...t, SenderSign: highS(t.SenderSign) }, valid: false });
          break;
        default: {
          // Signed by another key than its sender's.
          const other = keys[(i + 1) % keys.length]!;
          list.push({ trx: trxBy(other, i, t.SenderPubkey), valid: false });
        }
      }
    }
    // A sender that is not a key at all is left out (and rejected later).
    const noKey = { ...trxBy(keys[0]!, 999), SenderPubkey: 'not a key' };
    for (const { trx, valid } of list) assert.equal(verifyTrxSignature(trx), valid);

    const cache = new SignatureCache();
    await cache.preverify([...list.map((l) => l.trx), noKey], pool);
    assert.equal(cache.checks, list.length);
    assert.ok(
      answers.every((n) => n > 0),
      'checked on the workers',
    );
    const valid = list.filter((l) => l.valid).length;
    assert.equal(cache.size, valid, 'only the valid ones are remembered');

    for (const { trx, valid } of list) {
      const checks = cache.checks;
      assert.equal(cache.verify(trx), valid);
      assert.equal(cache.checks, valid ? checks : checks + 1, 'invalid ones are checked again');
    }
    assert.equal(cache.verify(noKey), false);

    // Preverifying again checks only what is not remembered.
    const checks = cache.checks;
    await cache.preverify(
      list.map((l) => l.trx),
      pool,
    );
    assert.equal(cache.checks, checks + list.length - valid);
    assert.equal(cache.size, valid);

    // The digest a valid trx was remembered with is its own: its signature on another trx is not.
    const first = list[0]!.trx;
    const moved = { ...first, Data: Buffer.from('moved') };
    assert.notDeepEqual(trxDigest(moved), trxDigest(first));
    assert.equal(cache.verify(moved), false);
  });
});
