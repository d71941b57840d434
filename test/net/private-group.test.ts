// A private group across three nodes: the owner approves B; B reads and posts; C holds the seed
// but is not approved and sees only ciphertext, in its store and on the wire; once B is removed,
// B cannot read what is posted after.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { GossipSub } from '@libp2p/gossipsub';
import type { RumNode } from '../../src/node.ts';
import { userChannel } from '../../src/p2p/wire.ts';
import { startMember, until } from '../helpers/net.ts';

describe('a private group across nodes', () => {
  const nodes: RumNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  const text = (n: RumNode, groupId: string, trxId: string): string | null | undefined => {
    const row = n.store.getContent(groupId, trxId);
    if (!row) return undefined;
    return row.data ? JSON.parse(Buffer.from(row.data).toString()).content : null;
  };

  it('lets approved members read, keeps others out, and stops reading at removal', async () => {
    const a = (await startMember([])).node;
    const addr = a.p2p.getMultiaddrs()[0]!.toString();
    const b = (await startMember([addr])).node;
    const c = (await startMember([addr])).node;
    nodes.push(a, b, c);
    const { groupId, seed } = await a.createGroup({
      groupName: 'private',
      consensusType: 'poa',
      encryptionType: 'private',
      appKey: 'group_bbs',
    });
    await b.joinGroup(seed);
    await c.joinGroup(seed);

    const wire: Uint8Array[] = [];
    (c.p2p.services.pubsub as GossipSub).addEventListener('message', (e) => {
      if (e.detail.topic === userChannel(groupId)) wire.push(e.detail.data);
    });

    await b.announce(groupId, 'add', 'B would like to read');
    await until(
      () => a.store.getAnnounce(groupId, 0, b.group(groupId).userPubkey),
      'A to see B’s announcement',
    );
    await a.approveUser(groupId, b.group(groupId).userPubkey, 'add', 'welcome');
    await until(
      () => b.store.isApprovedUser(groupId, b.group(groupId).userPubkey),
      'B to see its approval',
    );
    assert.equal(
      a.store.getAnnounce(groupId, 0, b.group(groupId).userPubkey)!.result,
      1,
      'announce marked APPROVED',
    );
    await assert.rejects(
      c.postContent(groupId, { type: 'Note', content: 'let me in' }),
      /not an approved member/,
    );

    const s1 = await a.postContent(groupId, { type: 'Note', content: 'secret one' });
    await until(
      () => text(b, groupId, s1) !== undefined && text(c, groupId, s1) !== undefined,
      'the post on B and C',
    );
    assert.equal(text(b, groupId, s1), 'secret one', 'approved B reads it');
    assert.equal(text(c, groupId, s1), null, 'unapproved C cannot');
    const stored = c.store.getTrx(groupId, s1)!.trx.Data;
    assert.equal(
      Buffer.from(stored).includes(Buffer.from('secret one')),
      false,
      'C stores ciphertext',
    );
    assert.ok(wire.length > 0, 'C saw gossip');
    assert.ok(
      wire.every((m) => !Buffer.from(m).includes(Buffer.from('secret one'))),
      'the gossiped bytes are ciphertext',
    );

    const fromB = await b.postContent(groupId, { type: 'Note', content: 'B writes back' });
    await until(() => text(a, groupId, fromB) !== undefined, 'B’s post on A');
    assert.equal(text(a, groupId, fromB), 'B writes back', 'the owner reads an approved member');

    await a.approveUser(groupId, b.group(groupId).userPubkey, 'remove', 'bye');
    await until(
      () => !b.store.isApprovedUser(groupId, b.group(groupId).userPubkey),
      'B to see its removal',
    );
    const s2 = await a.postContent(groupId, { type: 'Note', content: 'secret two' });
    await until(() => text(b, groupId, s2) !== undefined, 'the later post on B');
    assert.equal(text(b, groupId, s2), null, 'a removed member cannot read later posts');
    assert.equal(text(b, groupId, s1), 'secret one', 'what B could read before stays readable');
  });
});
