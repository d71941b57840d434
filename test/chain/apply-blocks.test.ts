// GroupChain.applyBlocks: a member catching up commits runs of consecutive blocks, one SQLite
// transaction a run, a run ending after a block that changes the rules (CHAIN_CONFIG) or the
// producers; it stops at the first invalid block and keeps the blocks before it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signBlock } from '../../src/chain/block.ts';
import { nowNs } from '../../src/chain/clock.ts';
import type { GroupChain } from '../../src/chain/group.ts';
import { type Block, decodeBlock, encodeBlock, type Trx, TrxType } from '../../src/chain/pb.ts';
import type { Check } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import type { RumNode } from '../../src/node.ts';
import { openTempNode } from '../helpers/temp-node.ts';
import { postBy, pubOf } from '../helpers/chain.ts';

/** A block after `parent`, signed by `priv` (the owner: the group's only producer). */
function blockAfter(
  parent: { BlockId: number; BlockHash: Uint8Array; Epoch: number; GroupId: string },
  trxs: Trx[],
  priv: Uint8Array,
  prevHash: Uint8Array = parent.BlockHash,
): Block {
  return signBlock(
    {
      GroupId: parent.GroupId,
      BlockId: parent.BlockId + 1,
      Epoch: parent.Epoch + 1,
      PrevHash: prevHash,
      ProducerPubkey: pubOf(priv),
      Trxs: trxs,
      Sudo: false,
      TimeStamp: nowNs(),
    },
    priv,
  );
}

/** The owner's node with a group; `build` adds blocks to it. */
async function ownerWithGroup() {
  const { node: owner } = await openTempNode();
  const { groupId, seed } = await owner.createGroup({
    groupName: 'catch-up',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  });
  const og = owner.group(groupId);
  const ownerKey = owner.keystore.get('sign', groupId);
  /** Commits what is pending into one block on the owner and returns it. */
  const seal = async (): Promise<Block> => {
    const made = await og.produce();
    // The owner's block timer may have been first.
    const block = made ?? owner.store.getBlock(groupId, og.head.blockId)!;
    assert.equal(og.mempoolSize, 0);
    return block;
  };
  return { owner, og, groupId, seed, ownerKey, seal };
}

async function joinedMember(seed: string) {
  const { node } = await openTempNode();
  const g = await node.joinGroup(seed);
  // Records how many blocks each SQLite transaction commits (one that fails is rolled back).
  const runs: number[] = [];
  const commitBlocks = node.store.commitBlocks.bind(node.store);
  node.store.commitBlocks = (list, at) => {
    commitBlocks(list, at);
    runs.push(list.length);
  };
  return { node, g, runs };
}

function contentOf(node: RumNode, groupId: string) {
  return node.store
    .queryContent({ groupId, num: 1000, reverse: false, includeStartTrx: false, senders: [] })
    .map((r) => ({
      trxId: r.trxId,
      sender: r.senderPubkey,
      blockId: r.blockId,
      data: Buffer.from(r.data ?? []).toString('hex'),
    }));
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function reasonOf(c: Check): string {
  return c.ok ? 'ok' : c.reason;
}

/** Nothing of blocks from `from` on is stored on `node`: no block, no trx, no content. */
function assertAbsent(node: RumNode, g: GroupChain, blocks: Block[]) {
  const ids = blocks.flatMap((b) => b.Trxs.map((t) => t.TrxId));
  for (const b of blocks) {
    assert.equal(node.store.getBlock(g.groupId, b.BlockId), undefined, `block ${b.BlockId}`);
  }
  assert.equal(node.store.committedTrxIds(g.groupId, ids).size, 0);
  const stored = new Set(contentOf(node, g.groupId).map((c) => c.trxId));
  for (const id of ids) assert.ok(!stored.has(id), `content of ${id}`);
}

/**
 * Six blocks on the owner: 1 post, 2 posts, a deny-list CHAIN_CONFIG, then 1 post each.
 */
async function sixBlocks() {
  const o = await ownerWithGroup();
  const blocks: Block[] = [];
  await o.owner.postContent(o.groupId, { type: 'Note', content: 'one' });
  blocks.push(await o.seal());
  await o.owner.postContentBatch(o.groupId, [
    { type: 'Note', content: 'two' },
    { type: 'Note', content: 'three' },
  ]);
  blocks.push(await o.seal());
  const denied = pubOf(generatePrivateKey());
  await o.owner.updateTrxList(o.groupId, 'deny', 'add', denied, [TrxType.POST], 'no');
  blocks.push(await o.seal());
  for (const text of ['four', 'five', 'six']) {
    await o.owner.postContent(o.groupId, { type: 'Note', content: text });
    blocks.push(await o.seal());
  }
  assert.deepEqual(
    blocks.map((b) => b.BlockId),
    [1, 2, 3, 4, 5, 6],
  );
  assert.equal(blocks[2]!.Trxs[0]!.Type, TrxType.CHAIN_CONFIG);
  return { ...o, blocks, denied };
}

describe('GroupChain.applyBlocks', () => {
  it('applies a whole list: same head, blocks and content as the owner, one transaction a run', async () => {
    const { owner, og, groupId, seed, blocks, denied } = await sixBlocks();
    // As a syncing node gets them: the frames the owner serves, built from the stored trx bytes,
    // which must be the bytes of the blocks re-encoded.
    const frames = owner.store.blockFramesRange(groupId, 1, 100, 8 << 20);
    assert.equal(frames.length, 6);
    frames.forEach((f, i) => {
      assert.equal(hex(f), hex(encodeBlock(owner.store.getBlock(groupId, i + 1)!)));
    });
    const fromStore = frames.map((f) => decodeBlock(f));
    const { node, g, runs } = await joinedMember(seed);
    assert.deepEqual(await g.applyBlocks(fromStore), { applied: 6, check: { ok: true } });
    assert.deepEqual(runs, [3, 3], 'a run ends after the CHAIN_CONFIG block');
    assert.equal(g.head.blockId, og.head.blockId);
    assert.equal(hex(g.head.hash), hex(og.head.hash));
    for (const b of blocks) {
      assert.equal(
        hex(encodeBlock(node.store.getBlock(groupId, b.BlockId)!)),
        hex(encodeBlock(owner.store.getBlock(groupId, b.BlockId)!)),
      );
    }
    const content = contentOf(node, groupId);
    assert.equal(content.length, 6);
    assert.deepEqual(content, contentOf(owner, groupId));
    assert.ok(g.rules.deny.get(denied)?.has(TrxType.POST), 'the config is in force');
    assert.deepEqual(await g.applyBlocks([]), { applied: 0, check: { ok: true } });
    await owner.stop();
    await node.stop();
  });

  it('stops at an invalid block and keeps the blocks before it', async () => {
    const { owner, og, groupId, seed, ownerKey, blocks } = await sixBlocks();

    // Block 5 (second run) links to a wrong parent hash, though signed by the owner.
    {
      const { node, g, runs } = await joinedMember(seed);
      const bad = blockAfter(blocks[3]!, blocks[4]!.Trxs, ownerKey, new Uint8Array(32).fill(9));
      const list = [...blocks.slice(0, 4), bad, blocks[5]!];
      const r = await g.applyBlocks(list);
      assert.equal(r.applied, 4);
      assert.match(reasonOf(r.check), /parent hash/);
      assert.deepEqual(runs, [3, 1]);
      assert.equal(g.head.blockId, 4);
      assert.equal(hex(g.head.hash), hex(blocks[3]!.BlockHash));
      assertAbsent(node, g, blocks.slice(4));
      assert.equal(contentOf(node, groupId).length, 4);
      // The rest of the chain applies afterwards.
      assert.deepEqual(await g.applyBlocks(blocks.slice(4)), { applied: 2, check: { ok: true } });
      assert.equal(hex(g.head.hash), hex(og.head.hash));
      await node.stop();
    }

    // Block 2 (in the first run) carries a tampered trx; the owner signed the block anyway.
    {
      const { node, g, runs } = await joinedMember(seed);
      const trx = { ...blocks[1]!.Trxs[1]! };
      trx.Data = aesEncrypt(og.cipherKey, Buffer.from('{"type":"Note","content":"changed"}'));
      const bad = blockAfter(blocks[0]!, [blocks[1]!.Trxs[0]!, trx], ownerKey);
      const r = await g.applyBlocks([blocks[0]!, bad, ...blocks.slice(2)]);
      assert.equal(r.applied, 1);
      assert.match(reasonOf(r.check), /signature/);
      assert.deepEqual(runs, [1]);
      assert.equal(g.head.blockId, 1);
      assert.equal(hex(g.head.hash), hex(blocks[0]!.BlockHash));
      assertAbsent(node, g, blocks.slice(1));
      assert.equal(g.rules.deny.size, 0, 'the later config block was not applied');
      await node.stop();
    }

    // The first block itself is invalid (changed after the owner signed it): nothing is applied.
    {
      const { node, g, runs } = await joinedMember(seed);
      const bad = { ...blocks[0]!, TimeStamp: blocks[0]!.TimeStamp + 1n };
      const r = await g.applyBlocks([bad, ...blocks.slice(1)]);
      assert.equal(r.applied, 0);
      assert.match(reasonOf(r.check), /hash/);
      assert.deepEqual(runs, []);
      assert.equal(g.head.blockId, 0);
      assertAbsent(node, g, blocks);
      await node.stop();
    }
    await owner.stop();
  });

  it('checks the block after a deny-list update against the new rules', async () => {
    const { owner, og, groupId, seed, ownerKey, seal } = await ownerWithGroup();
    const mallory = generatePrivateKey();
    const alice = generatePrivateKey();
    await owner.postContent(groupId, { type: 'Note', content: 'before' });
    const b1 = await seal();
    await owner.updateTrxList(groupId, 'deny', 'add', pubOf(mallory), [TrxType.POST], 'spam');
    const b2 = await seal();
    assert.equal(b2.Trxs[0]!.Type, TrxType.CHAIN_CONFIG);
    // The owner would not put mallory's post in a block now: sign such a block by hand.
    const spam = postBy(groupId, og.cipherKey, mallory, 'spam');
    const b3 = blockAfter(b2, [spam], ownerKey);

    const { node, g, runs } = await joinedMember(seed);
    // Before the update, mallory's post was admissible.
    assert.deepEqual(g.checkAdmission(spam, nowNs()), { ok: true });
    const r = await g.applyBlocks([b1, b2, b3]);
    assert.equal(r.applied, 2);
    assert.match(reasonOf(r.check), /deny list/);
    assert.deepEqual(runs, [2]);
    assert.equal(g.head.blockId, 2);
    assertAbsent(node, g, [b3]);

    // The same block with alice's post in place of mallory's applies.
    const ok = blockAfter(b2, [postBy(groupId, og.cipherKey, alice, 'fine')], ownerKey);
    assert.deepEqual(await g.applyBlocks([ok]), { applied: 1, check: { ok: true } });
    await owner.stop();
    await node.stop();
  });

  it('rejects a block that repeats a trx of an earlier block of the list', async () => {
    const { owner, og, groupId, seed, ownerKey, seal } = await ownerWithGroup();
    const alice = generatePrivateKey();
    const t = postBy(groupId, og.cipherKey, alice, 'once');
    og.submit(t);
    const b1 = await seal();
    assert.equal(b1.Trxs[0]!.TrxId, t.TrxId);

    // In the same run: the earlier block is not committed yet when the later one is checked.
    {
      const { node, g, runs } = await joinedMember(seed);
      const fresh = postBy(groupId, og.cipherKey, alice, 'fresh');
      const b2 = blockAfter(b1, [fresh, t], ownerKey);
      const r = await g.applyBlocks([b1, b2]);
      assert.equal(r.applied, 1);
      assert.match(reasonOf(r.check), /repeats a committed trx/);
      assert.deepEqual(runs, [1]);
      assert.equal(g.head.blockId, 1);
      assertAbsent(node, g, [{ ...b2, Trxs: [fresh] }]);
      assert.equal(node.store.getBlock(groupId, 1)!.Trxs.length, 1);
      await node.stop();
    }

    // Across runs: a CHAIN_CONFIG block between them.
    {
      await owner.updateTrxList(
        groupId,
        'deny',
        'add',
        pubOf(generatePrivateKey()),
        [TrxType.POST],
        'x',
      );
      const b2 = await seal();
      const b3 = blockAfter(b2, [t], ownerKey);
      const { node, g, runs } = await joinedMember(seed);
      const r = await g.applyBlocks([b1, b2, b3]);
      assert.equal(r.applied, 2);
      assert.match(reasonOf(r.check), /repeats a committed trx/);
      assert.deepEqual(runs, [2]);
      assert.equal(g.head.blockId, 2);
      assert.equal(node.store.getBlock(groupId, 3), undefined);
      await node.stop();
    }

    // The same block twice in one list.
    {
      const { node, g } = await joinedMember(seed);
      const r = await g.applyBlocks([b1, b1]);
      assert.equal(r.applied, 1);
      assert.equal(r.check.ok, false);
      assert.equal(g.head.blockId, 1);
      await node.stop();
    }
    await owner.stop();
  });
});
