// SignatureCache (src/chain/trx.ts): each node believes only signatures it verified itself or
// made, and a cached verification matches only the same signature over the same digest by the
// same key. A forged trx that shares its id, its signature bytes or its key with a trx verified
// before is still refused, through checkTrx and through a GroupChain's admission and blocks.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { nowNs } from '../../src/chain/clock.ts';
import { type GroupEvents, GroupChain } from '../../src/chain/group.ts';
import { type Trx, TrxType } from '../../src/chain/pb.ts';
import {
  type Check,
  checkTrx,
  SignatureCache,
  signTrx,
  trxDigest,
  verifyTrxSignature,
} from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import { signDigest } from '../../src/crypto/sign.ts';
import type { RumNode } from '../../src/node.ts';
import { startMember, until } from '../helpers/net.ts';
import { openTempNode } from '../helpers/temp-node.ts';
import { highS, nextBlock, ownerAndMember, postBy, pubOf, unsignedPost } from '../helpers/chain.ts';

/**
 * Forgeries of a valid trx `t` signed by `alice`, each sharing something with it (or with another
 * trx by alice that was verified too): its id and content, its signature bytes, its key, its digest.
 */
function forgeriesOf(t: Trx, alice: Uint8Array, bob: Uint8Array, cipherKey: Uint8Array) {
  const other = signTrx(unsignedPost(t.GroupId, cipherKey, pubOf(alice), 'other'), alice);
  const flipped = Uint8Array.from(t.SenderSign);
  flipped[5] = flipped[5]! ^ 0x01;
  const list: [string, Trx][] = [
    // (a) t's id and content, another SenderSign.
    ['(a) same trx, one bit of the signature flipped', { ...t, SenderSign: flipped }],
    [
      "(a) same trx, alice's valid signature of another trx",
      { ...t, SenderSign: other.SenderSign },
    ],
    [
      "(a) same trx, bob's signature of t's very digest",
      { ...t, SenderSign: signDigest(trxDigest(t), bob) },
    ],
    [
      '(a) same trx, the high-S twin of its own signature',
      { ...t, SenderSign: highS(t.SenderSign) },
    ],
    ['(a) same trx, no signature', { ...t, SenderSign: new Uint8Array(0) }],
    // (b) t's exact signature bytes on other content (another digest).
    [
      "(b) t's signature on other Data, same id",
      { ...t, Data: aesEncrypt(cipherKey, Buffer.from('{"type":"Note","content":"changed"}')) },
    ],
    [
      "(b) t's signature on other Data and another id",
      {
        ...t,
        TrxId: crypto.randomUUID(),
        Data: aesEncrypt(cipherKey, Buffer.from('{"type":"Note","content":"changed"}')),
      },
    ],
    ["(b) t's signature, a later Expired", { ...t, Expired: t.Expired + 1n }],
    // (c) another trx by alice's key, signed by bob.
    [
      "(c) alice's key, bob's signature",
      signTrx(unsignedPost(t.GroupId, cipherKey, pubOf(alice), 'by bob'), bob),
    ],
    // (d) t's signature with another SenderPubkey (the digest covers the key, so it changes too).
    ["(d) t's signature, bob as the sender", { ...t, SenderPubkey: pubOf(bob) }],
  ];
  return { other, list };
}

function reasonOf(c: Check): string {
  return c.ok ? 'ok' : c.reason;
}

describe('SignatureCache', () => {
  it('is one per node: a node makes its own check of a trx another node in the process verified', async () => {
    const { owner, member, groupId, ownerKey } = await ownerAndMember('sigcache');
    const og = owner.group(groupId);
    const mg = member.group(groupId);

    // The owner makes a post (remembered when signed: no check) and admits alice's (one check).
    const alice = generatePrivateKey();
    const ownChecks = og.signatures.checks;
    await owner.postContent(groupId, { type: 'Note', content: 'own' });
    assert.equal(og.signatures.checks, ownChecks, "the owner's own trx needed no ECDSA check");
    const fromAlice = postBy(groupId, og.cipherKey, alice, 'from alice');
    assert.deepEqual(og.admitEach([fromAlice]), { admitted: 1, rejected: [] });
    assert.equal(og.signatures.checks, ownChecks + 1);
    const block = (await og.produce()) ?? owner.store.getBlock(groupId, og.head.blockId)!;
    assert.equal(block.Trxs.length, 2);
    for (const trx of block.Trxs) assert.ok(og.signatures.verify(trx));
    assert.equal(og.signatures.checks, ownChecks + 1, 'both are in the owner cache');

    // The member, in the same process, verifies each trx of the block itself.
    const before = mg.signatures.checks;
    assert.deepEqual(await mg.applyBlock(block), { ok: true });
    assert.equal(mg.signatures.checks, before + 2, 'one real check per trx of the block');

    // A trx the owner admitted (and verified) is verified again by the member when gossiped.
    const again = postBy(groupId, og.cipherKey, alice, 'again');
    assert.equal(og.admitEach([again]).admitted, 1);
    const m0 = mg.signatures.checks;
    assert.deepEqual(mg.admitEach([again]), { admitted: 1, rejected: [] });
    assert.equal(mg.signatures.checks, m0 + 1);
    // Known now: a repeat costs no check.
    assert.ok(mg.signatures.verify(again));
    assert.equal(mg.signatures.checks, m0 + 1);

    // What one node believes is never believed by another: the owner's cache is made to hold a
    // forged trx (as if it had signed it), and the member still refuses it.
    const forged: Trx = {
      ...postBy(groupId, og.cipherKey, alice, 'forged'),
      Data: aesEncrypt(og.cipherKey, Buffer.from('{"type":"Note","content":"not signed"}')),
    };
    og.signatures.rememberOwn(forged, trxDigest(forged));
    assert.equal(og.checkAdmission(forged, nowNs()).ok, true, 'the owner believes its cache');
    assert.match(reasonOf(mg.checkAdmission(forged, nowNs())), /signature/);
    assert.deepEqual(mg.admitEach([forged]), {
      admitted: 0,
      rejected: ['trx signature does not verify'],
    });
    assert.match(
      reasonOf(await mg.applyBlock(nextBlock(mg.head, groupId, [forged], ownerKey))),
      /signature/,
    );
    assert.equal(mg.head.blockId, 1);

    assert.notEqual(og.signatures, mg.signatures, 'two nodes, two caches');
    // The groups of one node share its cache.
    const second = await owner.createGroup({
      groupName: 'second',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    assert.equal(owner.group(second.groupId).signatures, og.signatures);
    await owner.stop();
    await member.stop();
  });

  // Each forgery on its own, against a cache that verified t, alice's other trx and bob's trx.
  describe('refuses forgeries of a verified trx through checkTrx with the cache', () => {
    const groupId = crypto.randomUUID();
    const cipherKey = new Uint8Array(32).fill(7);
    const alice = generatePrivateKey();
    const bob = generatePrivateKey();
    const t = postBy(groupId, cipherKey, alice, 'original');
    const { other, list } = forgeriesOf(t, alice, bob, cipherKey);
    const verifiedCache = () => {
      const cache = new SignatureCache();
      const ctx = { groupId, maxTrxDataBytes: 300 * 1024, nowNs: nowNs(), signatures: cache };
      assert.deepEqual(checkTrx(t, ctx), { ok: true });
      assert.deepEqual(checkTrx(other, ctx), { ok: true });
      assert.deepEqual(checkTrx(postBy(groupId, cipherKey, bob, 'bob'), ctx), { ok: true });
      assert.equal(cache.checks, 3);
      assert.equal(cache.size, 3);
      return { cache, ctx };
    };

    for (const [what, forged] of list) {
      it(what, () => {
        assert.equal(verifyTrxSignature(forged), false, 'invalid without any cache');
        const { cache, ctx } = verifiedCache();
        assert.deepEqual(checkTrx(forged, ctx), {
          ok: false,
          reason: 'trx signature does not verify',
        });
        assert.equal(cache.checks, 4, 'a real verification');
        // Refused again: a failed check is not remembered.
        assert.equal(cache.verify(forged), false);
        assert.equal(cache.checks, 5);
        assert.equal(cache.size, 3);
        // The genuine trx still verifies, from the cache.
        assert.deepEqual(checkTrx(t, ctx), { ok: true });
        assert.equal(cache.checks, 5);
      });
    }
  });

  describe("refuses forgeries of a verified trx in a group's admission and blocks", () => {
    let ctx: Awaited<ReturnType<typeof ownerAndMember>>;
    let t: Trx;
    let list: [string, Trx][] = [];
    const names = forgeriesOf(
      postBy(crypto.randomUUID(), new Uint8Array(32), generatePrivateKey(), 'x'),
      generatePrivateKey(),
      generatePrivateKey(),
      new Uint8Array(32),
    ).list.map(([what]) => what);
    before(async () => {
      ctx = await ownerAndMember('sigcache');
      const g = ctx.member.group(ctx.groupId);
      const alice = generatePrivateKey();
      t = postBy(ctx.groupId, g.cipherKey, alice, 'original');
      const made = forgeriesOf(t, alice, generatePrivateKey(), g.cipherKey);
      list = made.list;
      assert.deepEqual(
        list.map(([what]) => what),
        names,
      );
      assert.deepEqual(g.checkAdmission(t, nowNs()), { ok: true });
      assert.deepEqual(g.checkAdmission(made.other, nowNs()), { ok: true });
    });
    after(async () => {
      await ctx.owner.stop();
      await ctx.member.stop();
    });

    names.forEach((what, i) => {
      it(what, () => {
        const g = ctx.member.group(ctx.groupId);
        const forged = list[i]![1];
        assert.match(reasonOf(g.checkAdmission(forged, nowNs())), /signature/);
        assert.match(
          reasonOf(g.validateBlock(nextBlock(g.head, ctx.groupId, [forged], ctx.ownerKey))),
          /signature/,
        );
        assert.equal(g.admitEach([forged]).admitted, 0);
        assert.equal(g.mempoolSize, 0);
      });
    });

    it('refuses them in blocks, before and after the genuine trx is committed', async () => {
      const { member, groupId, ownerKey } = ctx;
      const g = member.group(groupId);
      // A block of the genuine trx followed by a forgery is refused whole.
      const mixed = nextBlock(g.head, groupId, [t, list[6]![1]], ownerKey);
      assert.match(reasonOf(await g.applyBlock(mixed)), /signature/);
      assert.equal(g.head.blockId, 0);
      // Once t is committed, the forgeries that reuse its signature are still refused.
      assert.deepEqual(await g.applyBlock(nextBlock(g.head, groupId, [t], ownerKey)), {
        ok: true,
      });
      for (const [what, forged] of list) {
        assert.match(
          reasonOf(await g.applyBlock(nextBlock(g.head, groupId, [forged], ownerKey))),
          /signature/,
          what,
        );
      }
      assert.equal(g.head.blockId, 1);
    });
  });

  it('signTrx remembers a signature only when given the cache', () => {
    const groupId = crypto.randomUUID();
    const key = new Uint8Array(32).fill(1);
    const alice = generatePrivateKey();
    const cache = new SignatureCache();

    const plain = signTrx(unsignedPost(groupId, key, pubOf(alice), 'a'), alice);
    assert.equal(cache.size, 0);
    assert.ok(cache.verify(plain));
    assert.equal(cache.checks, 1, 'not remembered when signed: verified for real');

    const remembered = signTrx(unsignedPost(groupId, key, pubOf(alice), 'b'), alice, cache);
    assert.equal(cache.size, 2);
    assert.ok(cache.verify(remembered));
    assert.equal(cache.checks, 1, 'remembered when signed: no check');
    // Remembered as that signature over that digest by that key only.
    assert.equal(cache.verify({ ...remembered, Expired: remembered.Expired + 1n }), false);
    assert.equal(cache.checks, 2);
  });

  it('a GroupChain remembers what it signs only when its sign key is the key of userPubkey', async () => {
    const { node } = await openTempNode();
    const { groupId } = await node.createGroup({
      groupName: 'keys',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    // The node's own chain: its key matches, what it builds is known without a check.
    const own = node.group(groupId);
    const size = own.signatures.size;
    const checks = own.signatures.checks;
    const mine = await own.buildTrx(TrxType.POST, Buffer.from('{"type":"Note","content":"x"}'));
    assert.equal(own.signatures.size, size + 1);
    assert.deepEqual(own.checkAdmission(mine, nowNs()), { ok: true });
    assert.equal(own.signatures.checks, checks);

    // A chain over the same group whose sign key is not the key of userPubkey: the trxs it signs
    // carry a signature that does not match their SenderPubkey, and its cache must not vouch.
    // Both ways of signing: here, and through a signer (the node's worker threads).
    for (const signer of [undefined, async (d: Uint8Array, k: Uint8Array) => signDigest(d, k)]) {
      const cache = new SignatureCache();
      const wrong = new GroupChain(node.store.getGroup(groupId)!, {
        store: node.store,
        limits: node.config.limits,
        signKey: generatePrivateKey(),
        events: new EventEmitter<GroupEvents>(),
        signatures: cache,
        ...(signer ? { signer } : {}),
      });
      const bad = await wrong.buildTrx(TrxType.POST, Buffer.from('{"type":"Note","content":"y"}'));
      assert.equal(bad.SenderPubkey, own.userPubkey);
      assert.match(reasonOf(wrong.checkAdmission(bad, nowNs())), /signature/);
      assert.equal(cache.checks, 1, 'a real verification');
      assert.equal(cache.size, 0, 'not remembered');
      assert.throws(() => wrong.submit(bad), /signature/);
      assert.match(reasonOf(own.checkAdmission(bad, nowNs())), /signature/);
      wrong.stop();
    }
    await node.stop();
  });

  it('forgets the oldest signature when full, and checks it again', () => {
    const groupId = crypto.randomUUID();
    const key = new Uint8Array(32).fill(2);
    const alice = generatePrivateKey();
    const cache = new SignatureCache(2);
    const trxs = ['a', 'b', 'c'].map((s) => postBy(groupId, key, alice, s));
    for (const t of trxs) assert.ok(cache.verify(t));
    assert.equal(cache.size, 2);
    assert.equal(cache.checks, 3);
    assert.ok(cache.verify(trxs[2]!));
    assert.equal(cache.checks, 3, 'the newest is cached');
    assert.ok(cache.verify(trxs[0]!));
    assert.equal(cache.checks, 4, 'the oldest was forgotten');
  });
});

describe('SignatureCache between started nodes', () => {
  const nodes: RumNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('a node catching up and then receiving gossip verifies what the producer made', async () => {
    const a = (await startMember([])).node;
    nodes.push(a);
    const { groupId, seed } = await a.createGroup({
      groupName: 'sigcache-net',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    const ag = a.group(groupId);
    const aChecks = ag.signatures.checks;
    // Enough trxs for the catch-up to check them on worker threads (64 and more at once).
    await a.postContentBatch(
      groupId,
      Array.from({ length: 80 }, (_, i) => ({ type: 'Note', content: `n${i}` })),
    );
    await until(() => ag.mempoolSize === 0, 'A to commit');
    assert.equal(ag.signatures.checks, aChecks, 'A made them: no check on A');

    const b = (await startMember([a.p2p.getMultiaddrs()[0]!.toString()])).node;
    nodes.push(b);
    const bg = await b.joinGroup(seed);
    assert.notEqual(bg.signatures, ag.signatures);
    await until(() => bg.head.blockId === ag.head.blockId, 'B to catch up');
    assert.ok(bg.signatures.checks >= 80, `B checked ${bg.signatures.checks} of 80 itself`);

    // A post gossiped once B is at the head: B checks it too.
    await until(() => b.net.bestKnownHeight(groupId) >= ag.head.blockId, 'B to see A');
    const before = bg.signatures.checks;
    const id = await a.postContent(groupId, { type: 'Note', content: 'live' });
    await until(() => b.store.committedTrxIds(groupId, [id]).size === 1, 'B to commit the post');
    assert.ok(bg.signatures.checks > before, 'B verified the gossiped trx');
    assert.equal(ag.signatures.checks, aChecks);
  });
});
