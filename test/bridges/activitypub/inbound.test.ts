// The bridge with a Mastodon-like peer on loopback (test/helpers/ap-peer.ts, no Fedify): a
// Follow gets a signed Accept through the delivery queue and the follower is listed; a group post
// reaches the peer as the author's Create and the group's Announce; the peer's reply, Like and
// Delete become trxs in the group; Undo(Follow) removes the follower.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { activityPubBridge } from '../../../bridges/activitypub/index.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { type ApPeer, idOf, startApPeer } from '../../helpers/ap-peer.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';

let node: RumNode;
let gateway: Gateway;
let peer: ApPeer;
let groupId: string;
let groupActor: string;

/** Commits what is pending in the group. */
async function produce(): Promise<void> {
  await node.group(groupId).produce();
}

function contents() {
  return node.store.db.$client
    .prepare(
      'SELECT trx_id, data, deleted FROM contents WHERE group_id = ? ORDER BY block_id, position',
    )
    .all(groupId) as { trx_id: string; data: Uint8Array | null; deleted: number }[];
}

function payloads() {
  return contents().map((r) => ({
    trxId: r.trx_id,
    deleted: !!r.deleted,
    object: r.data ? JSON.parse(Buffer.from(r.data).toString('utf8')) : null,
  }));
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  gateway = await startGateway(node, [activityPubBridge()]);
  ({ groupId } = await node.createGroup({
    groupName: 'Inbound',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  }));
  gateway.exposures.put(groupId, { handle: 'inbound' });
  groupActor = `${gateway.origin}/ap/actors/g.inbound`;
  peer = await startApPeer();
});

after(async () => {
  await peer?.close();
  await gateway.stop();
  await node.stop();
});

describe('a Mastodon-like peer and a group', () => {
  it('finds the group by WebFinger, follows it and gets a signed Accept', async () => {
    const found = await peer.lookup(`inbound@${new URL(gateway.origin).host}`);
    assert.equal(found.actor.id, groupActor);
    const accept = await peer.follow(groupActor);
    assert.equal(accept.type, 'Accept');
    const followers = (await peer.fetch(`${groupActor}/followers`)) as { totalItems: number };
    assert.equal(followers.totalItems, 1);
  });

  let postId: string;
  it('a post of the group reaches the peer as a Create and the group Announce', async () => {
    postId = await node.postContent(groupId, { type: 'Note', content: 'hello fediverse' });
    await produce();
    const note = `${gateway.origin}/ap/posts/${postId}`;
    const announce = await peer.waitFor(
      (e) => e.activity.type === 'Announce' && idOf(e.activity.object) === note,
    );
    assert.equal(announce.signer, groupActor);
    const create = await peer.waitFor(
      (e) => e.activity.type === 'Create' && idOf(e.activity.object) === note,
    );
    assert.match(create.signer, /\/ap\/actors\/u_0[23][0-9a-f]{64}$/);
    const fetched = await peer.fetch(note);
    assert.equal(fetched.type, 'Note');
    assert.match(String(fetched.content), /hello fediverse/);
  });

  let replyTrx: string;
  it("the peer's reply becomes a post in the group, once", async () => {
    const note = `${gateway.origin}/ap/posts/${postId}`;
    const sent = await peer.createNote({
      content: '<p>a reply from afar</p>',
      inReplyTo: note,
      cc: [peer.followersUrl, groupActor],
    });
    for (const d of sent.deliveries) assert.ok(d.status >= 200 && d.status < 300, d.body);
    await produce();
    const row = await until(
      () => payloads().find((p) => JSON.stringify(p.object ?? {}).includes('a reply from afar')),
      'the reply in the chain',
    );
    replyTrx = row.trxId;
    assert.equal(row.object.attributedTo?.name, peer.name, "the reply carries its author's name");
    // Delivered again (a retry re-signs): still one trx.
    await peer.deliver(`${gateway.origin}/ap/inbox`, sent.activity);
    await produce();
    const copies = payloads().filter((p) =>
      JSON.stringify(p.object ?? {}).includes('a reply from afar'),
    );
    assert.equal(copies.length, 1);
  });

  it("the peer's Update of its profile renames it on its next reply", async () => {
    const note = `${gateway.origin}/ap/posts/${postId}`;
    // The bridge remembers remote profiles; the peer renames itself and says so.
    (peer as { name: string }).name = 'Alice Renamed';
    const update = {
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: `${peer.actorId}#updates/1`,
      type: 'Update',
      actor: peer.actorId,
      to: ['https://www.w3.org/ns/activitystreams#Public'],
      object: await peer.actor(peer.actorId, true),
    };
    const d = await peer.deliver(`${gateway.origin}/ap/inbox`, update);
    assert.ok(d.status >= 200 && d.status < 300, d.body);
    await peer.createNote({
      content: '<p>renamed reply</p>',
      inReplyTo: note,
      cc: [peer.followersUrl, groupActor],
    });
    await produce();
    const row = await until(
      () => payloads().find((p) => JSON.stringify(p.object ?? {}).includes('renamed reply')),
      'the second reply in the chain',
    );
    assert.equal(row.object.attributedTo?.name, 'Alice Renamed');
  });

  it("the peer's Like of a group post becomes a Like", async () => {
    const note = `${gateway.origin}/ap/posts/${postId}`;
    await peer.like(note, `${gateway.origin}/ap/inbox`);
    await produce();
    await until(
      () => payloads().find((p) => p.object?.type === 'Like' && p.object?.object?.id === postId),
      'the Like in the chain',
    );
  });

  it("the peer's Delete of its reply deletes it", async () => {
    const reply = payloads().find((p) => p.trxId === replyTrx)!;
    const noteId = reply.object.origin?.id as string;
    assert.ok(noteId, JSON.stringify(reply.object));
    await peer.deleteNote(noteId, `${gateway.origin}/ap/inbox`);
    await produce();
    await until(() => payloads().find((p) => p.trxId === replyTrx)?.deleted, 'the reply deleted');
  });

  it('a replayed signed POST is refused with 401 and posts nothing', async () => {
    const note = `${gateway.origin}/ap/posts/${postId}`;
    const activity = {
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: `${peer.actorId}/statuses/replayed/activity`,
      type: 'Create',
      actor: peer.actorId,
      object: {
        id: `${peer.actorId}/statuses/replayed`,
        type: 'Note',
        attributedTo: peer.actorId,
        content: '<p>replayed once</p>',
        inReplyTo: note,
        to: ['https://www.w3.org/ns/activitystreams#Public'],
      },
    };
    const inbox = `${gateway.origin}/ap/inbox`;
    const body = JSON.stringify(activity);
    const headers = peer.signedHeaders('POST', inbox, body, {}) as Record<string, string>;
    assert.equal(await peer.postRaw(inbox, body, headers), 202);
    assert.equal(await peer.postRaw(inbox, body, headers), 401);
    await produce();
    const copies = payloads().filter((p) =>
      JSON.stringify(p.object ?? {}).includes('replayed once'),
    );
    assert.equal(copies.length, 1);
  });

  it('Undo(Follow) removes the follower', async () => {
    await peer.unfollow(groupActor);
    const followers = (await peer.fetch(`${groupActor}/followers`)) as { totalItems: number };
    assert.equal(followers.totalItems, 0);
  });
});
