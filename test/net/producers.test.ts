// Three producers: the owner approves B and C as producers; blocks then need two of three
// signatures. One producer is stopped in the middle of a run of posts: the chain keeps growing;
// it comes back and catches up; every node holds the same block at every height, each carrying
// a producer majority.
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkFinality, signersOf } from '../../src/chain/producers.ts';
import { toHex } from '../../src/crypto/encoding.ts';
import type { RumNode } from '../../src/node.ts';
import { NET_TEST_LIMITS, startMember, until } from '../helpers/net.ts';

const LIMITS = { ...NET_TEST_LIMITS, producerRoundTimeoutMs: 1000 };

const member = (peers: string[], dir?: string, limits = LIMITS) => startMember(peers, dir, limits);

async function threeProducers(nodes: Set<RumNode>, limits = LIMITS) {
  const a = (await member([], undefined, limits)).node;
  nodes.add(a);
  const addr = a.p2p.getMultiaddrs()[0]!.toString();
  const aDir = dirname(a.config.dataDir);
  const b = (await member([addr], undefined, limits)).node;
  const c = (await member([addr], undefined, limits)).node;
  const d = (await member([addr], undefined, limits)).node;
  for (const n of [b, c, d]) nodes.add(n);
  const { groupId, seed } = await a.createGroup({
    groupName: 'producers',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  });
  for (const n of [b, c, d]) await n.joinGroup(seed);
  for (const n of [b, c]) await n.announce(groupId, 'add', 'producer', 'producer');
  const keys = [b, c].map((n) => n.group(groupId).userPubkey);
  await until(() => keys.every((k) => a.store.getAnnounce(groupId, 1, k)), 'announcements on A');
  await a.updateProducers(groupId, keys, 'add', '');
  await until(
    () => [a, b, c, d].every((n) => n.group(groupId).producers.length === 3),
    'three producers everywhere',
  );
  return { a, b, c, d, groupId, addr, aDir };
}

describe('several producers', () => {
  const nodes = new Set<RumNode>();
  after(async () => {
    await Promise.all([...nodes].map((n) => n.stop()));
  });

  it('keeps producing with one producer down and never forks', async () => {
    const { a, b, c: firstC, d, groupId, addr } = await threeProducers(nodes);
    let c = firstC;
    const cDir = dirname(c.config.dataDir);
    const setAt = a.group(groupId).head.blockId;

    const posted: string[] = [];
    const post = async (n: RumNode, i: number) =>
      posted.push(await n.postContent(groupId, { type: 'Note', content: `post ${i}` }));
    for (let i = 0; i < 10; i++) await post([a, b, d][i % 3]!, i);
    await until(
      () => posted.every((id) => d.store.getTrx(groupId, id)),
      'the first posts final on D',
    );

    // Stop C (one of three producers) and keep posting: A and B are still a majority.
    await c.stop();
    nodes.delete(c);
    const headBefore = a.group(groupId).head.blockId;
    for (let i = 10; i < 25; i++) {
      await post([a, b, d][i % 3]!, i);
      await new Promise((r) => setTimeout(r, 30));
    }
    await until(
      () => posted.every((id) => a.store.getTrx(groupId, id) && d.store.getTrx(groupId, id)),
      'posts final while C is down',
      60_000,
    );
    assert.ok(a.group(groupId).head.blockId > headBefore, 'the chain kept growing');

    // C comes back and catches up.
    c = (await member([addr], cDir)).node;
    nodes.add(c);
    for (let i = 25; i < 30; i++) await post([a, b, d][i % 3]!, i);
    const all = [a, b, c, d];
    await until(
      () =>
        posted.every((id) => all.every((n) => n.store.getTrx(groupId, id))) &&
        all.every((n) => n.group(groupId).head.blockId === a.group(groupId).head.blockId),
      'every post on every node, the same head',
      60_000,
    );

    const top = a.group(groupId).head.blockId;
    const set = a.group(groupId).producers;
    for (let h = 1; h <= top; h++) {
      const blocks = all.map((n) => n.store.getBlock(groupId, h)!);
      assert.equal(
        new Set(blocks.map((bl) => toHex(bl.BlockHash))).size,
        1,
        `one block at height ${h} on every node`,
      );
      if (h > setAt + 1) {
        assert.deepEqual(
          checkFinality(blocks[0]!, set),
          { ok: true },
          `block ${h} has a producer majority`,
        );
      }
    }
    const producersSeen = new Set<string>();
    for (let h = setAt + 1; h <= top; h++)
      producersSeen.add(a.store.getBlock(groupId, h)!.ProducerPubkey);
    assert.ok(producersSeen.size >= 2, 'producers took turns');
    assert.ok(signersOf(a.store.getBlock(groupId, top)!, set).size >= 2);
  });

  it('goes on without the owner, and the owner catches up when it returns', async () => {
    const { a, b, c, d, groupId, aDir } = await threeProducers(nodes);
    await a.stop();
    nodes.delete(a);
    const posted: string[] = [];
    for (let i = 0; i < 12; i++)
      posted.push(
        await [b, c, d][i % 3]!.postContent(groupId, { type: 'Note', content: `no owner ${i}` }),
      );
    await until(
      () => posted.every((id) => [b, c, d].every((n) => n.store.getTrx(groupId, id))),
      'final without the owner',
      60_000,
    );
    const back = (await member([b.p2p.getMultiaddrs()[0]!.toString()], aDir)).node;
    nodes.add(back);
    await until(
      () => back.group(groupId).head.blockId === b.group(groupId).head.blockId,
      'the owner to catch up',
      60_000,
    );
    assert.equal(toHex(back.group(groupId).head.hash), toHex(c.group(groupId).head.hash));
  });

  it('decides every height when rounds time out faster than a vote travels, owner down', async () => {
    // 100 ms rounds: producers move on while proposals and votes are still on their way, so
    // their votes split between blocks and rounds. With the owner stopped, B and C must both vote
    // for a block: a split that binds them to different blocks would stall the height for good;
    // the next round's justification reunites them instead.
    const { a, b, c, d, groupId } = await threeProducers(nodes, {
      ...NET_TEST_LIMITS,
      producerRoundTimeoutMs: 100,
    });
    await a.stop();
    nodes.delete(a);
    const posted: string[] = [];
    for (let i = 0; i < 30; i++) {
      const n = [b, c, d][i % 3]!;
      posted.push(await n.postContent(groupId, { type: 'Note', content: `hurried ${i}` }));
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(
      () => posted.every((id) => [b, c, d].every((n) => n.store.getTrx(groupId, id))),
      'every post final on every node',
      60_000,
    );
    const top = Math.min(...[b, c, d].map((n) => n.group(groupId).head.blockId));
    const set = b.group(groupId).producers;
    for (let h = 1; h <= top; h++) {
      const blocks = [b, c, d].map((n) => n.store.getBlock(groupId, h)!);
      assert.equal(new Set(blocks.map((x) => toHex(x.BlockHash))).size, 1, `one block at ${h}`);
      if (blocks[0]!.Witnesses?.length) {
        assert.deepEqual(checkFinality(blocks[0]!, set), { ok: true }, `block ${h} is final`);
      }
    }
  });
});
