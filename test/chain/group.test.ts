// Block validation by a member: forged, foreign, duplicated and deny-listed trxs and blocks are
// rejected and leave the chain as it was; a valid block from the owner is applied.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TrxType } from '../../src/chain/pb.ts';
import type { Check } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import { nextBlock, ownerAndMember, postBy } from '../helpers/chain.ts';

async function reasonOf(p: Promise<Check>): Promise<string> {
  const r = await p;
  return r.ok ? 'ok' : r.reason;
}

describe('block validation', () => {
  it('applies a valid owner block and rejects bad ones without changing the chain', async () => {
    const { owner, member, groupId, ownerKey } = await ownerAndMember();
    const g = member.group(groupId);
    const alice = generatePrivateKey();

    const good = nextBlock(g.head, groupId, [postBy(groupId, g.cipherKey, alice, 'hi')], ownerKey);
    assert.deepEqual(await g.applyBlock(good), { ok: true });
    assert.equal(g.head.blockId, 1);
    assert.equal(
      member.store.queryContent({
        groupId,
        num: 10,
        reverse: false,
        includeStartTrx: false,
        senders: [],
      }).length,
      1,
    );

    const forgedTrx = postBy(groupId, g.cipherKey, alice, 'original');
    forgedTrx.Data = aesEncrypt(g.cipherKey, Buffer.from('{"type":"Note","content":"changed"}'));
    const r1 = await g.applyBlock(nextBlock(g.head, groupId, [forgedTrx], ownerKey));
    assert.equal(r1.ok, false);
    assert.match((r1 as { reason: string }).reason, /signature/);

    const stranger = generatePrivateKey();
    const r2 = await g.applyBlock(
      nextBlock(g.head, groupId, [postBy(groupId, g.cipherKey, alice, 'x')], stranger),
    );
    assert.match((r2 as { reason: string }).reason, /not a producer/);

    const t = postBy(groupId, g.cipherKey, alice, 'twice');
    const r3 = await g.applyBlock(nextBlock(g.head, groupId, [t, t], ownerKey));
    assert.match((r3 as { reason: string }).reason, /twice/);

    const r4 = await g.applyBlock(nextBlock(g.head, groupId, [good.Trxs[0]!], ownerKey));
    assert.match((r4 as { reason: string }).reason, /committed/);

    const tampered = nextBlock(
      g.head,
      groupId,
      [postBy(groupId, g.cipherKey, alice, 'y')],
      ownerKey,
    );
    tampered.TimeStamp += 1n;
    assert.match(await reasonOf(g.applyBlock(tampered)), /hash/);

    const gap = nextBlock(
      { ...g.head, blockId: g.head.blockId + 1 },
      groupId,
      [postBy(groupId, g.cipherKey, alice, 'z')],
      ownerKey,
    );
    assert.match(await reasonOf(g.applyBlock(gap)), /does not follow/);

    const otherTrx = postBy(
      '00000000-0000-4000-8000-000000000000',
      g.cipherKey,
      alice,
      'elsewhere',
    );
    assert.match(
      await reasonOf(g.applyBlock(nextBlock(g.head, groupId, [otherTrx], ownerKey))),
      /another group/,
    );

    assert.equal(g.head.blockId, 1, 'no rejected block moved the head');
    await owner.stop();
    await member.stop();
  });

  it('enforces the deny list on every node, from the block after the config is committed', async () => {
    const { owner, member, groupId, ownerKey } = await ownerAndMember();
    const og = owner.group(groupId);
    const g = member.group(groupId);
    const mallory = generatePrivateKey();
    const malloryPub = encodePubkey(publicKeyOf(mallory));

    await owner.updateTrxList(groupId, 'deny', 'add', malloryPub, [TrxType.POST], 'spam');
    const cfgBlock = (await og.produce())!;
    assert.deepEqual(await g.applyBlock(cfgBlock), { ok: true });
    assert.ok(g.rules.deny.get(malloryPub)?.has(TrxType.POST));

    const r = await g.applyBlock(
      nextBlock(g.head, groupId, [postBy(groupId, g.cipherKey, mallory, 'spam')], ownerKey),
    );
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /deny list/);
    assert.throws(() => og.submit(postBy(groupId, og.cipherKey, mallory, 'spam')), /deny list/);

    // Only the owner may change the chain config.
    const fake = await member.group(groupId).buildTrx(TrxType.CHAIN_CONFIG, new Uint8Array([1]));
    assert.match(
      await reasonOf(g.applyBlock(nextBlock(g.head, groupId, [fake], ownerKey))),
      /owner/,
    );
    await owner.stop();
    await member.stop();
  });

  it('rebuilds the same content index by replaying the chain', async () => {
    const { owner, groupId } = await ownerAndMember();
    const ids = await owner.postContentBatch(groupId, [
      { type: 'Note', content: 'a' },
      { type: 'Note', content: 'b' },
    ]);
    await owner.group(groupId).produce();
    const del = await owner.postContent(groupId, {
      type: 'Delete',
      object: { type: 'Note', id: ids[0]! },
    });
    await owner.group(groupId).produce();
    const q = { groupId, num: 50, reverse: false, includeStartTrx: false, senders: [] };
    const before = owner.store.queryContent(q).map((r) => r.trxId);
    assert.deepEqual(before, [ids[1], del], 'the deleted post is hidden');
    const res = await owner.reindex();
    assert.equal(res.trxs, 3);
    assert.deepEqual(
      owner.store.queryContent(q).map((r) => r.trxId),
      before,
    );
    await assert.rejects(
      () =>
        owner.postContent(groupId, {
          type: 'Delete',
          object: { type: 'Note', id: '00000000-0000-4000-8000-000000000000' },
        }),
      /not a post/,
    );
    await owner.stop();
  });
});
