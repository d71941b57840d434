// Three real nodes on loopback: A creates a public group, B and C join by seed through a
// bootstrap node only; posts from A, B and C reach all three; all agree on the head.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../src/crypto/encoding.ts';
import type { RumNode } from '../../src/node.ts';
import { startBootstrap, startMember, until } from '../helpers/net.ts';

describe('a group across three nodes', () => {
  let boot: Awaited<ReturnType<typeof startBootstrap>>;
  let a: RumNode;
  let b: RumNode;
  let c: RumNode;
  let groupId = '';

  before(async () => {
    boot = await startBootstrap();
    a = (await startMember([boot.addr])).node;
    b = (await startMember([boot.addr])).node;
    c = (await startMember([boot.addr])).node;
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await boot?.host.stop();
  });

  it('joins by seed and sees every member post on every node', async () => {
    const created = await a.createGroup({
      groupName: 'three',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    groupId = created.groupId;
    const first = await a.postContent(groupId, {
      type: 'Note',
      content: 'from A before anyone joined',
    });
    await until(() => a.group(groupId).head.blockId >= 1, 'A to commit its first post');

    await b.joinGroup(created.seed);
    await c.joinGroup(created.seed);
    await until(
      () => b.group(groupId).head.blockId >= 1 && c.group(groupId).head.blockId >= 1,
      'B and C to sync the first block',
    );

    const ids = [
      first,
      await a.postContent(groupId, { type: 'Note', content: 'hello from A' }),
      await b.postContent(groupId, { type: 'Note', content: 'hello from B' }),
      await c.postContent(groupId, { type: 'Note', content: 'hello from C' }),
    ];
    const all = [a, b, c];
    const read = (n: RumNode) =>
      n.store
        .queryContent({ groupId, num: 100, reverse: false, includeStartTrx: false, senders: [] })
        .map((r) => r.trxId);
    await until(
      () => all.every((n) => ids.every((id) => read(n).includes(id))),
      'every post on every node',
    );
    await until(
      () =>
        all.every(
          (n) =>
            n.group(groupId).head.blockId === a.group(groupId).head.blockId &&
            n.group(groupId).mempoolSize === 0,
        ),
      'the same head everywhere',
    );
    const heads = all.map(
      (n) => `${n.group(groupId).head.blockId}:${toHex(n.group(groupId).head.hash)}`,
    );
    assert.equal(new Set(heads).size, 1, `heads ${heads.join(' ')}`);
    assert.deepEqual(read(b), read(a), 'same content order');
    assert.deepEqual(read(c), read(a));
    const texts = read(c).map(
      (id) => JSON.parse(Buffer.from(c.store.getContent(groupId, id)!.data!).toString()).content,
    );
    assert.ok(texts.includes('hello from B'));
  });
});
