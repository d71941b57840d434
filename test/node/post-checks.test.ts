// Posting from this node: postContent and postContentBatch refuse the same things with the same
// message (an oversized item, a post by a node the private group's owner has not approved,
// someone else's Delete), and a refused batch admits nothing, valid items included.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RumNode } from '../../src/node.ts';
import { openTempNode } from '../helpers/temp-node.ts';

const nodes: RumNode[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

async function node(limits: { maxContentBytes?: number } = {}): Promise<RumNode> {
  const { node } = await openTempNode({ limits });
  nodes.push(node);
  return node;
}

async function group(owner: RumNode, encryptionType: 'public' | 'private') {
  return owner.createGroup({
    groupName: `checks-${encryptionType}`,
    consensusType: 'poa',
    encryptionType,
    appKey: 'group_bbs',
  });
}

/** Refused through both paths with `message`; the batch names item `index`; nothing admitted. */
async function refusedByBoth(
  n: RumNode,
  groupId: string,
  bad: unknown,
  message: RegExp,
  index: number | null,
) {
  const g = n.group(groupId);
  const pending = g.mempoolSize;
  const height = g.head.blockId;
  const good = { type: 'Note', content: 'fine on its own' };
  await assert.rejects(n.postContent(groupId, bad), (err: Error) => {
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /^item /);
    assert.equal(err.name, 'BadRequestError');
    return true;
  });
  await assert.rejects(n.postContentBatch(groupId, [good, bad, good]), (err: Error) => {
    assert.match(err.message, message);
    if (index !== null) assert.ok(err.message.startsWith(`item ${index}: `), err.message);
    assert.equal(err.name, 'BadRequestError');
    return true;
  });
  assert.equal(g.mempoolSize, pending, 'nothing admitted to the mempool');
  assert.equal(n.store.listPending(groupId).length, pending, 'nothing stored as pending');
  assert.equal(g.head.blockId, height, 'no block made');
}

describe('post checks, one set for postContent and postContentBatch', () => {
  it('refuses content over the size limit', async () => {
    const owner = await node({ maxContentBytes: 1000 });
    const { groupId } = await group(owner, 'public');
    const big = { type: 'Note', content: 'x'.repeat(1000) };
    await refusedByBoth(owner, groupId, big, /^(item 1: )?content is 1\d{3} bytes, limit 1000$/, 1);
    // Just under the limit passes both ways.
    const fits = { type: 'Note', content: 'x'.repeat(900) };
    assert.match(await owner.postContent(groupId, fits), /^[0-9a-f-]{36}$/);
    assert.equal((await owner.postContentBatch(groupId, [fits, fits])).length, 2);
  });

  it('refuses malformed content, naming the item', async () => {
    const owner = await node();
    const { groupId } = await group(owner, 'public');
    await refusedByBoth(owner, groupId, { type: 'Note' }, /a Note needs "content" or "name"/, 1);
    await refusedByBoth(owner, groupId, [1, 2], /content must be a JSON object/, 1);
  });

  it('refuses a post by a node the private group’s owner has not approved', async () => {
    const owner = await node();
    const outsider = await node();
    const { groupId, seed } = await group(owner, 'private');
    await outsider.joinGroup(seed);
    await refusedByBoth(
      outsider,
      groupId,
      { type: 'Note', content: 'let me in' },
      /^this node is not an approved member of the private group/,
      null,
    );
    // The owner itself posts both ways.
    await owner.postContent(groupId, { type: 'Note', content: 'owner' });
    await owner.postContentBatch(groupId, [{ type: 'Note', content: 'owner again' }]);
  });

  it('refuses a Delete of someone else’s post, and of no post', async () => {
    const owner = await node();
    const member = await node();
    const { groupId, seed } = await group(owner, 'public');
    const m = await member.joinGroup(seed);
    const ownerPost = await owner.postContent(groupId, { type: 'Note', content: 'mine' });
    const block = (await owner.group(groupId).produce())!;
    assert.deepEqual(await m.applyBlock(block), { ok: true });
    assert.ok(member.store.getContent(groupId, ownerPost), 'the member has indexed the post');

    const del = (id: string) => ({ type: 'Delete', object: { type: 'Note', id } });
    await refusedByBoth(
      member,
      groupId,
      del(ownerPost),
      /^(item 1: )?you can only delete your own posts$/,
      1,
    );
    const none = '00000000-0000-4000-8000-000000000000';
    await refusedByBoth(member, groupId, del(none), /trx 0{8}-.* is not a post in this group/, 1);
    // The owner deletes its own post, through the batch path too.
    assert.equal((await owner.postContentBatch(groupId, [del(ownerPost)])).length, 1);
  });
});
