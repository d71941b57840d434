// The ActivityPub bridge's operator controls over the real admin API (HTTP), against Mastodon-like
// peers on loopback (test/helpers/ap-peer.ts, no Fedify), each peer its own instance (host:port):
// followers listed, paged and removed (the follower gets a Reject); an actor blocked (Reject and
// Block reach it, its Create is refused with 403 and nothing reaches the chain, a new post is not
// delivered to it, a Follow from it is rejected, a delivery that is queued anyway fails as
// blocked); an instance blocked; both unblocked (Undo(Block)); the CLI; and the inbound rules:
// a Delete before its Create holds the Create off, an object of this gateway is not posted again,
// a Create addressed to two groups becomes one post in each (once, however it is delivered), and
// a 410 from a personal inbox removes that follower while a 410 from a shared inbox removes
// nobody.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Create, Note } from '@fedify/vocab';
import { activityPubBridge } from '../../../bridges/activitypub/index.ts';
import { buildApi } from '../../../src/api/server.ts';
import { TokenService } from '../../../src/api/tokens.ts';
import { runBridgeCommand } from '../../../src/cli/bridge.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { type ApPeer, idOf, type Json, startApPeer } from '../../helpers/ap-peer.ts';
import { api } from '../../helpers/node-process.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';

let node: RumNode;
let gateway: Gateway;
let adminApp: FastifyInstance;
let apiUrl: string;
const bridge = activityPubBridge();
let alice: ApPeer;
let bob: ApPeer;
let carol: ApPeer;
let dave: ApPeer;
let groupId: string;
let group2Id: string;
let groupActor: string;
let group2Actor: string;
let sharedInbox: string;

/** Waits until the delivery queue has nothing pending or running. */
async function idle(): Promise<void> {
  await until(async () => {
    const c = await gateway.queue.counts();
    return c.pending === 0 && c.active === 0;
  }, 'the delivery queue to drain');
}

function payloads(gid = groupId) {
  return (
    node.store.db.$client
      .prepare(
        'SELECT trx_id, data, deleted FROM contents WHERE group_id = ? ORDER BY block_id, position',
      )
      .all(gid) as { trx_id: string; data: Uint8Array | null; deleted: number }[]
  ).map((r) => ({
    trxId: r.trx_id,
    deleted: !!r.deleted,
    object: r.data ? (JSON.parse(Buffer.from(r.data).toString('utf8')) as Json) : null,
  }));
}

function withText(text: string, gid = groupId) {
  return payloads(gid).filter((p) => JSON.stringify(p.object ?? {}).includes(text));
}

async function produce(): Promise<void> {
  await node.group(groupId).produce();
  await node.group(group2Id).produce();
}

/** A group post, committed; answers its ActivityPub id. */
async function post(content: string): Promise<string> {
  const trx = await node.postContent(groupId, { type: 'Note', content });
  await produce();
  return `${gateway.origin}/ap/posts/${trx}`;
}

function followerIds(handle = 'controls') {
  return bridge
    .state()
    .followers.all(`g.${handle}`)
    .map((f) => f.id)
    .sort();
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  gateway = await startGateway(node, [bridge]);
  const tokens = await TokenService.open(node.store, node.keystore);
  adminApp = await buildApi({ node, tokens, gateway });
  await adminApp.listen({ host: '127.0.0.1', port: 0 });
  apiUrl = `http://127.0.0.1:${(adminApp.server.address() as AddressInfo).port}`;
  for (const [name, handle] of [
    ['Controls', 'controls'],
    ['Controls two', 'controls2'],
  ] as const) {
    const { groupId: id } = await node.createGroup({
      groupName: name,
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    gateway.exposures.put(id, { handle });
    if (handle === 'controls') groupId = id;
    else group2Id = id;
  }
  groupActor = `${gateway.origin}/ap/actors/g.controls`;
  group2Actor = `${gateway.origin}/ap/actors/g.controls2`;
  sharedInbox = `${gateway.origin}/ap/inbox`;
  alice = await startApPeer({ username: 'alice' });
  bob = await startApPeer({ username: 'bob' });
  carol = await startApPeer({ username: 'carol' });
  dave = await startApPeer({ username: 'dave' });
});

after(async () => {
  for (const p of [alice, bob, carol, dave]) await p?.close();
  await adminApp?.close();
  await gateway?.stop();
  await node?.stop();
});

describe('followers over the admin API', () => {
  it('lists the followers of a group, paged', async () => {
    for (const p of [alice, bob, carol]) await p.follow(groupActor);
    const all = await api(apiUrl, 'GET', '/api/v1/bridges/activitypub/controls/followers');
    assert.equal(all.status, 200, all.text);
    assert.equal(all.json.total, 3);
    assert.deepEqual(
      all.json.followers.map((f: Json) => f.id).sort(),
      [alice.actorId, bob.actorId, carol.actorId].sort(),
    );
    const first = await api(
      apiUrl,
      'GET',
      '/api/v1/bridges/activitypub/controls/followers?limit=2',
    );
    assert.equal(first.json.followers.length, 2);
    assert.ok(first.json.next);
    const rest = await api(
      apiUrl,
      'GET',
      `/api/v1/bridges/activitypub/controls/followers?limit=2&after=${encodeURIComponent(first.json.next)}`,
    );
    assert.equal(rest.json.followers.length, 1);
    assert.equal(rest.json.next, null);
    const none = await api(apiUrl, 'GET', '/api/v1/bridges/activitypub/nosuch/followers');
    assert.equal(none.status, 404);
  });

  it('the CLI lists them too', async () => {
    let text = '';
    const code = await runBridgeCommand(['activitypub', 'followers', 'controls', '--api', apiUrl], {
      stdout: (s) => {
        text += s;
      },
    });
    assert.equal(code, 0);
    assert.match(text, /^3 follower\(s\) of controls/);
    assert.ok(text.includes(bob.actorId), text);
  });

  it('removing a follower sends it a Reject of its Follow', async () => {
    const follow = bob.following.get(groupActor)!.follow;
    const res = await api(apiUrl, 'DELETE', '/api/v1/bridges/activitypub/controls/followers', {
      actor: bob.actorId,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.removed, true);
    const reject = await bob.waitFor((e) => e.activity.type === 'Reject');
    assert.equal(reject.signer, groupActor);
    assert.equal(idOf(reject.activity.object), follow.id);
    assert.equal(bob.following.get(groupActor)?.state, 'rejected');
    assert.deepEqual(followerIds(), [alice.actorId, carol.actorId].sort());
    const again = await api(apiUrl, 'DELETE', '/api/v1/bridges/activitypub/controls/followers', {
      actor: bob.actorId,
    });
    assert.equal(again.status, 404);
  });
});

describe('blocking an actor', () => {
  let aliceFollow: Json;
  it('sends it a Reject of its Follow and a Block, and removes it', async () => {
    aliceFollow = alice.following.get(groupActor)!.follow;
    const res = await api(apiUrl, 'PUT', '/api/v1/bridges/activitypub/blocks', {
      actor: alice.actorId,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.removed_followers, 1);
    const reject = await alice.waitFor((e) => e.activity.type === 'Reject');
    assert.equal(reject.signer, groupActor);
    assert.equal(idOf(reject.activity.object), aliceFollow.id);
    const block = await alice.waitFor((e) => e.activity.type === 'Block');
    assert.equal(block.signer, groupActor);
    assert.equal(idOf(block.activity.object), alice.actorId);
    assert.deepEqual(followerIds(), [carol.actorId]);
    const list = await api(apiUrl, 'GET', '/api/v1/bridges/activitypub/blocks');
    assert.deepEqual(
      list.json.blocks.map((b: Json) => [b.kind, b.actor ?? b.instance]),
      [['actor', alice.actorId]],
    );
  });

  it('its Create is refused with 403 and nothing reaches the chain', async () => {
    const note = await post('a post alice may not answer');
    const sent = await alice.createNote({
      content: '<p>alice was blocked</p>',
      inReplyTo: note,
      cc: [groupActor],
      inbox: [sharedInbox, `${groupActor}/inbox`],
    });
    for (const d of sent.deliveries) assert.equal(d.status, 403, d.body);
    // Also with the actor named only in the body (signed by a key of another, unblocked actor).
    const body = JSON.stringify(sent.activity);
    const headers = carol.signedHeaders('POST', sharedInbox, body, {}) as Record<string, string>;
    assert.equal(await carol.postRaw(sharedInbox, body, headers), 403);
    await produce();
    assert.equal(withText('alice was blocked').length, 0);
  });

  it('a new post is not delivered to it, even if it were still listed as a follower', async () => {
    // A follower left behind (as if removed only half way): the outbound filter still skips it.
    const f = { id: alice.actorId, inbox: alice.inboxUrl, sharedInbox: alice.sharedInboxUrl };
    bridge.state().followers.add('g.controls', { ...f, follow: aliceFollow.id, since: Date.now() });
    try {
      const note = await post('after the block');
      await carol.waitFor(
        (e) => e.activity.type === 'Announce' && idOf(e.activity.object) === note,
      );
      await idle();
      assert.equal(
        alice.inbox.filter((e) => JSON.stringify(e.activity).includes(note)).length,
        0,
        'alice got the post',
      );
    } finally {
      bridge.state().followers.remove('g.controls', alice.actorId);
    }
  });

  it('a delivery queued to it anyway fails as blocked, and the deliveries view shows it', async () => {
    const ctx = bridge.state().context();
    const actor = ctx.getActorUri('g.controls');
    const note = new Note({ id: new URL(`${actor.href}#stray-note`), attribution: actor });
    await ctx.sendActivity(
      { identifier: 'g.controls' },
      { id: new URL(alice.actorId), inboxId: new URL(alice.inboxUrl), endpoints: null },
      new Create({ id: new URL(`${actor.href}#stray`), actor, object: note }),
    );
    await idle();
    assert.equal(alice.inbox.filter((e) => e.activity.type === 'Create').length, 0);
    const res = await api(apiUrl, 'GET', '/api/v1/bridges/activitypub/deliveries');
    assert.equal(res.status, 200, res.text);
    const a = res.json.destinations.find((d: Json) => d.destination === alice.host);
    assert.ok(a, JSON.stringify(res.json));
    assert.equal(a.failed, 1);
    assert.match(a.last_error, /blocked/);
    assert.ok(a.done >= 2, 'the Reject and the Block were delivered');
    const c = res.json.destinations.find((d: Json) => d.destination === carol.host);
    assert.ok(c.done >= 1 && c.failed === 0 && c.followers >= 1, JSON.stringify(c));
  });

  it('a Follow from it is answered with a Reject', async () => {
    await assert.rejects(alice.follow(groupActor), /rejected the Follow/);
    assert.deepEqual(followerIds(), [carol.actorId]);
  });

  it('unblocking sends Undo(Block); it can follow again', async () => {
    const res = await api(apiUrl, 'DELETE', '/api/v1/bridges/activitypub/blocks', {
      actor: alice.actorId,
    });
    assert.equal(res.status, 200, res.text);
    const undo = await alice.waitFor(
      (e) => e.activity.type === 'Undo' && e.activity.object?.type === 'Block',
    );
    assert.equal(undo.signer, groupActor);
    await alice.follow(groupActor);
    assert.deepEqual(followerIds(), [alice.actorId, carol.actorId].sort());
    const again = await api(apiUrl, 'DELETE', '/api/v1/bridges/activitypub/blocks', {
      actor: alice.actorId,
    });
    assert.equal(again.status, 404);
  });
});

describe('blocking an instance', () => {
  it('rejects and blocks its followers, refuses what it sends, and unblocks', async () => {
    await bob.follow(groupActor);
    let text = '';
    const code = await runBridgeCommand(['activitypub', 'block', bob.host, '--api', apiUrl], {
      stdout: (s) => {
        text += s;
      },
    });
    assert.equal(code, 0);
    assert.equal(JSON.parse(text).removed_followers, 1);
    const follow = bob.following.get(groupActor)!.follow;
    await bob.waitFor((e) => e.activity.type === 'Reject' && idOf(e.activity.object) === follow.id);
    await bob.waitFor((e) => e.activity.type === 'Block' && e.signer === groupActor);
    assert.deepEqual(followerIds(), [alice.actorId, carol.actorId].sort());
    const note = await post('bob may not answer either');
    const sent = await bob.createNote({
      content: '<p>bob from a blocked instance</p>',
      inReplyTo: note,
      cc: [groupActor],
      inbox: sharedInbox,
    });
    assert.equal(sent.deliveries[0]!.status, 403);
    // The other instances still get through.
    const ok = await carol.createNote({
      content: '<p>carol is fine</p>',
      inReplyTo: note,
      cc: [groupActor],
      inbox: sharedInbox,
    });
    assert.equal(ok.deliveries[0]!.status, 202);
    await produce();
    await until(() => withText('carol is fine').length === 1, 'carol in the chain');
    assert.equal(withText('bob from a blocked instance').length, 0);

    text = '';
    await runBridgeCommand(['activitypub', 'unblock', bob.host, '--api', apiUrl], {
      stdout: (s) => {
        text += s;
      },
    });
    assert.equal(JSON.parse(text).undone, 1);
    await bob.waitFor((e) => e.activity.type === 'Undo' && e.activity.object?.type === 'Block');
    const list = await api(apiUrl, 'GET', '/api/v1/bridges/activitypub/blocks');
    assert.deepEqual(list.json.blocks, []);
  });

  it('asks for exactly one of actor and instance', async () => {
    const both = await api(apiUrl, 'PUT', '/api/v1/bridges/activitypub/blocks', {
      actor: alice.actorId,
      instance: alice.host,
    });
    assert.equal(both.status, 400);
    const ours = await api(apiUrl, 'PUT', '/api/v1/bridges/activitypub/blocks', {
      instance: new URL(gateway.origin).host,
    });
    assert.equal(ours.status, 400);
  });
});

describe('inbound rules', () => {
  it('a Delete that comes before its Create holds the Create off', async () => {
    const note = await post('to be answered and deleted at once');
    const sent = await carol.createNote({
      content: '<p>deleted before it came</p>',
      inReplyTo: note,
      cc: [groupActor],
      inbox: [],
    });
    const del = await carol.deleteNote(sent.note.id, sharedInbox);
    assert.equal(del.deliveries[0]!.status, 202);
    const create = await carol.deliver(sharedInbox, sent.activity);
    assert.equal(create.status, 202);
    await produce();
    await new Promise((r) => setTimeout(r, 300));
    await produce();
    assert.equal(withText('deleted before it came').length, 0);
  });

  it('an object whose id is on this gateway is not posted again', async () => {
    const note = await post('an original');
    const trx = note.split('/').pop()!;
    const create = {
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: `${carol.actorId}/statuses/echo/activity`,
      type: 'Create',
      actor: carol.actorId,
      object: {
        id: `${gateway.origin}/ap/posts/${trx}-echo`,
        type: 'Note',
        attributedTo: carol.actorId,
        content: '<p>an echo of this gateway</p>',
        to: ['https://www.w3.org/ns/activitystreams#Public'],
        cc: [groupActor],
      },
    };
    const d = await carol.deliver(sharedInbox, create);
    assert.ok(d.status >= 200 && d.status < 300, d.body);
    await produce();
    await new Promise((r) => setTimeout(r, 300));
    await produce();
    assert.equal(withText('an echo of this gateway').length, 0);
  });

  it('a Create addressed to two groups is one post in each, once, and its Delete reaches both', async () => {
    const sent = await carol.createNote({
      content: '<p>to both groups</p>',
      cc: [groupActor, group2Actor],
      inbox: [sharedInbox, `${groupActor}/inbox`, `${group2Actor}/inbox`],
    });
    for (const d of sent.deliveries) assert.ok(d.status >= 200 && d.status < 300, d.body);
    await produce();
    await until(
      () =>
        withText('to both groups').length === 1 &&
        withText('to both groups', group2Id).length === 1,
      'the post in both groups',
    );
    // Delivered again (each inbox once more): still one in each.
    for (const inbox of [sharedInbox, `${groupActor}/inbox`, `${group2Actor}/inbox`]) {
      await carol.deliver(inbox, sent.activity);
    }
    await produce();
    await new Promise((r) => setTimeout(r, 300));
    await produce();
    assert.equal(withText('to both groups').length, 1);
    assert.equal(withText('to both groups', group2Id).length, 1);
    await carol.deleteNote(sent.note.id, sharedInbox);
    await produce();
    await until(
      () =>
        withText('to both groups')[0]?.deleted && withText('to both groups', group2Id)[0]?.deleted,
      'the post deleted in both groups',
    );
  });

  it('a 410 from a shared inbox removes nobody; from a personal inbox, that follower', async () => {
    await dave.follow(groupActor);
    dave.failWith = 410;
    const before = dave.refused.length;
    await post('to a gone shared inbox');
    await until(() => dave.refused.length > before, 'a 410 from the shared inbox');
    await idle();
    assert.ok(dave.refused.slice(before).every((r) => r.path === '/inbox' && r.status === 410));
    assert.ok(followerIds().includes(dave.actorId), 'a gone shared inbox removed dave');
    // Now as an actor with no shared inbox: deliveries go to its personal inbox.
    const f = bridge.state().followers.get('g.controls', dave.actorId)!;
    bridge.state().followers.add('g.controls', { ...f, sharedInbox: null });
    const mark = dave.refused.length;
    await post('to a gone personal inbox');
    await until(
      () => dave.refused.slice(mark).some((r) => r.path === `/users/dave/inbox`),
      'a 410 from the personal inbox',
    );
    await idle();
    await until(() => !followerIds().includes(dave.actorId), 'dave removed');
    assert.ok(followerIds().includes(carol.actorId));
    const res = await api(apiUrl, 'GET', '/api/v1/bridges/activitypub/deliveries');
    const d = res.json.destinations.find((x: Json) => x.destination === dave.host);
    assert.equal(d.gone?.status, 410, JSON.stringify(d));
  });
});
