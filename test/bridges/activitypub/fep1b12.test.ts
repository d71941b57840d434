// FEP-1b12 group announces beside Mastodon's boosts: two independent ActivityPub peers on
// loopback (test/helpers/ap-peer.ts, no Fedify) follow the same group, one whose NodeInfo says
// `lemmy`, one `mastodon`. The group learns that at the Follow; then a post, a reply, a like, an
// edit and a delete in RUM reach the Lemmy-like peer as the group's signed `Announce` of the
// author's activity (embedded, served at its id), and the Mastodon-like peer as before: the
// author's activity and, for a top-level post, the group's boost. No inbox gets both forms.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type Follower, recipientOf } from '../../../bridges/activitypub/federation.ts';
import { activityPubBridge } from '../../../bridges/activitypub/index.ts';
import {
  FRESH_MS,
  InstanceKinds,
  instanceKinds,
  kindOf,
} from '../../../bridges/activitypub/instance-kind.ts';
import { splitByKind } from '../../../bridges/activitypub/outbound.ts';
import type { BridgeKv } from '../../../bridges/port.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import {
  AS_PUBLIC,
  type ApPeer,
  idOf,
  type InboxEntry,
  type Json,
  startApPeer,
} from '../../helpers/ap-peer.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

let node: RumNode;
let gateway: Gateway;
const bridge = activityPubBridge();
let lemmy: ApPeer;
let masto: ApPeer;
let groupId: string;
let groupActor: string;

async function produce(): Promise<void> {
  await node.group(groupId).produce();
}

const postUrl = (trx: string) => `${gateway.origin}/ap/posts/${trx}`;

/** The group's announce of an activity (its object embedded, not an id). */
function relayOf(type: string, objectId: string) {
  return (e: InboxEntry) =>
    e.activity.type === 'Announce' &&
    e.signer === groupActor &&
    typeof e.activity.object === 'object' &&
    e.activity.object.type === type &&
    idOf(e.activity.object.object) === objectId;
}

/** The group's boost: an Announce of the post by id. */
const isBoost = (e: InboxEntry) =>
  e.activity.type === 'Announce' && typeof e.activity.object === 'string';

/** Everything of a peer's inbox that came from the gateway, as "Type(object type or id)". */
function received(peer: ApPeer): string[] {
  return peer.inbox
    .filter((e) => e.signer.startsWith(gateway.origin))
    .map((e) => {
      const o = e.activity.object;
      return `${e.activity.type}(${typeof o === 'string' ? o : o?.type})`;
    });
}

/** The addressing fields hold the public collection as the full URI (Lemmy compares URLs). */
function addressedPublicly(a: Json): boolean {
  const all = [a.to, a.cc].flat().filter((x) => x !== undefined);
  return all.includes(AS_PUBLIC);
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  gateway = await startGateway(node, [bridge]);
  ({ groupId } = await node.createGroup({
    groupName: 'Threads',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  }));
  gateway.exposures.put(groupId, { handle: 'threads' });
  groupActor = `${gateway.origin}/ap/actors/g.threads`;
  lemmy = await startApPeer({
    username: 'lemmy_user',
    software: { name: 'lemmy', version: '0.19.9' },
  });
  masto = await startApPeer({ username: 'alice' });
});

after(async () => {
  await lemmy?.close();
  await masto?.close();
  await gateway.stop();
  await node.stop();
});

describe('a Lemmy-like and a Mastodon-like instance follow one group', () => {
  it("learns each instance's software from its NodeInfo before the Accept", async () => {
    for (const peer of [lemmy, masto]) {
      const accept = await peer.follow(groupActor);
      assert.equal(accept.type, 'Accept');
      // Lemmy reads the answered Follow's actor and object as bare ids.
      assert.equal(accept.object.actor, peer.actorId);
      assert.equal(accept.object.object, groupActor);
      assert.ok(
        peer.fetches.some((f) => f.path === '/.well-known/nodeinfo'),
        'the NodeInfo links were fetched',
      );
      assert.ok(peer.fetches.some((f) => f.path === '/nodeinfo/2.0'));
    }
    const kinds = instanceKinds(bridge.state());
    assert.equal(kinds.record(lemmy.host)?.software, 'lemmy');
    assert.equal(kinds.record(masto.host)?.software, 'mastodon');
    assert.equal(kinds.kind(lemmy.actorId), 'fep-1b12');
    assert.equal(kinds.kind(masto.actorId), 'boost');
  });

  let postTrx: string;
  it('a post reaches Lemmy as Announce(Create(Note)), Mastodon as Create and boost', async () => {
    postTrx = await node.postContent(groupId, { type: 'Note', content: 'a new thread' });
    await produce();
    const note = postUrl(postTrx);

    const relay = await lemmy.waitFor(relayOf('Create', note));
    const announce = relay.activity;
    assert.equal(
      announce.id,
      `${groupActor}/announces/${postTrx}/activity`,
      'its own id, not the boost',
    );
    assert.equal(announce.actor, groupActor);
    assert.ok(addressedPublicly(announce), JSON.stringify(announce.to));
    const create = announce.object;
    assert.equal(create.id, `${note}/create`);
    assert.match(create.actor, /\/ap\/actors\/u_0[23][0-9a-f]{64}$/);
    assert.ok(addressedPublicly(create), 'the embedded Create is public for Lemmy too');
    assert.equal(create.object.type, 'Note');
    assert.match(String(create.object.content), /a new thread/);
    assert.equal(create.object.attributedTo, create.actor);
    assert.equal(create.object.audience, groupActor);

    // Served at its id (content negotiation), as sent.
    const served = await lemmy.fetch(announce.id);
    assert.equal(served.type, 'Announce');
    assert.equal(served.id, announce.id);
    assert.equal(idOf(served.object), create.id);
    // A browser at that id is sent to the post's page, as for every other id of the post.
    const page = await fetch(announce.id, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(page.status, 302);
    assert.equal(page.headers.get('location'), `${gateway.origin}/p/${postTrx}`);

    const boost = await masto.waitFor((e) => isBoost(e) && e.activity.object === note);
    assert.equal(boost.signer, groupActor);
    assert.equal(boost.activity.id, `${groupActor}/announces/${postTrx}`);
    const direct = await masto.waitFor(
      (e) => e.activity.type === 'Create' && idOf(e.activity.object) === note,
    );
    assert.equal(direct.signer, create.actor);
  });

  let replyTrx: string;
  it('a reply reaches Lemmy as Announce(Create(reply)); Mastodon gets no boost of it', async () => {
    replyTrx = await node.postContent(groupId, {
      type: 'Note',
      content: 'a comment',
      inReplyTo: { type: 'Note', id: postTrx },
    });
    await produce();
    const reply = postUrl(replyTrx);
    const relay = await lemmy.waitFor(relayOf('Create', reply));
    assert.equal(relay.activity.object.object.inReplyTo, postUrl(postTrx));
    await masto.waitFor((e) => e.activity.type === 'Create' && idOf(e.activity.object) === reply);
  });

  let likeTrx: string;
  it('a like reaches Lemmy as Announce(Like), Mastodon as the Like', async () => {
    likeTrx = await node.postContent(groupId, {
      type: 'Like',
      object: { type: 'Note', id: postTrx },
    });
    await produce();
    const relay = await lemmy.waitFor(relayOf('Like', postUrl(postTrx)));
    assert.equal(relay.activity.id, `${groupActor}/announces/${likeTrx}/activity`);
    assert.equal(relay.activity.object.id, postUrl(likeTrx));
    await masto.waitFor(
      (e) => e.activity.type === 'Like' && idOf(e.activity.object) === postUrl(postTrx),
    );
  });

  it('an edit reaches Lemmy as Announce(Update), Mastodon as the Update', async () => {
    await node.postContent(groupId, {
      type: 'Update',
      object: { type: 'Note', id: postTrx, content: 'a new thread, edited' },
    });
    await produce();
    const relay = await lemmy.waitFor(relayOf('Update', postUrl(postTrx)));
    assert.match(String(relay.activity.object.object.content), /edited/);
    await masto.waitFor(
      (e) => e.activity.type === 'Update' && idOf(e.activity.object) === postUrl(postTrx),
    );
  });

  it('a delete reaches Lemmy as Announce(Delete), Mastodon as the Delete', async () => {
    await node.postContent(groupId, { type: 'Delete', object: { type: 'Note', id: replyTrx } });
    await produce();
    const relay = await lemmy.waitFor(relayOf('Delete', postUrl(replyTrx)));
    assert.equal(relay.activity.object.object.type, 'Tombstone');
    await masto.waitFor(
      (e) => e.activity.type === 'Delete' && idOf(e.activity.object) === postUrl(replyTrx),
    );
  });

  it('each instance got one form only, each activity once', async () => {
    // A last post: once it is in, everything queued before it went out (one stream, in order).
    const last = await node.postContent(groupId, { type: 'Note', content: 'the last one' });
    await produce();
    await lemmy.waitFor(relayOf('Create', postUrl(last)));
    await masto.waitFor((e) => isBoost(e) && e.activity.object === postUrl(last));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(received(lemmy), [
      'Accept(Follow)',
      'Announce(Create)',
      'Announce(Create)',
      'Announce(Like)',
      'Announce(Update)',
      'Announce(Delete)',
      'Announce(Create)',
    ]);
    const m = received(masto);
    assert.ok(
      m.every((r) => !/^Announce\((Create|Like|Update|Delete)\)$/.test(r)),
      `no group announce of an activity: ${m}`,
    );
    assert.equal(m.filter((r) => r.startsWith('Announce(')).length, 2, 'two boosts, no reply');
    assert.equal(m.filter((r) => r === 'Create(Note)').length, 3);
    const ids = lemmy.inbox.map((e) => e.activity.id);
    assert.equal(new Set(ids).size, ids.length, 'no activity twice');
  });
});

// ---------------------------------------------------------------------------------------------

function memoryKv(): BridgeKv & { data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  return {
    data,
    get: <T>(k: string) => data.get(k) as T | undefined,
    set: (k, v) => void data.set(k, v),
    delete: (k) => void data.delete(k),
    list: () => [],
    cas: () => false,
  };
}

/** A NodeInfo server answering with `software`, counting requests; `stall` never answers. */
async function nodeInfoServer(software: string, o: { stall?: boolean } = {}) {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    if (o.stall) return;
    const origin = `http://${req.headers.host}`;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/nodeinfo') {
      res.end(
        JSON.stringify({
          links: [
            { rel: 'http://nodeinfo.diaspora.software/ns/schema/2.0', href: `${origin}/ni/2.0` },
            { rel: 'http://nodeinfo.diaspora.software/ns/schema/2.1', href: `${origin}/ni/2.1` },
          ],
        }),
      );
    } else if (req.url === '/ni/2.1') {
      res.end(JSON.stringify({ version: '2.1', software: { name: software, version: '1' } }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    actor: `http://${host}/u/someone`,
    host,
    hits: () => hits,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const allowAll = { checkUrl: async () => {}, userAgent: 'test' };

describe('instance kinds', () => {
  it('the newest NodeInfo 2.x linked names the software; FEP-1b12 software gets announces', async () => {
    const srv = await nodeInfoServer('mbin');
    try {
      const kinds = new InstanceKinds(memoryKv(), allowAll);
      assert.equal((await kinds.learn(srv.actor))?.software, 'mbin');
      assert.equal(kinds.kind(srv.actor), 'fep-1b12');
      assert.equal(kindOf({ software: 'mastodon', checked: 0 }), 'boost');
      assert.equal(kindOf({ software: 'piefed', checked: 0 }), 'fep-1b12');
      assert.equal(kindOf(null), 'boost');
    } finally {
      srv.close();
    }
  });

  it('a refused address or a server that does not answer in time leaves the instance on boosts', async () => {
    const srv = await nodeInfoServer('lemmy');
    const stalled = await nodeInfoServer('lemmy', { stall: true });
    try {
      const refusing = new InstanceKinds(memoryKv(), {
        ...allowAll,
        checkUrl: async (u) => {
          throw new Error(`refused ${u}`);
        },
      });
      assert.equal((await refusing.learn(srv.actor))?.software, null);
      assert.equal(refusing.kind(srv.actor), 'boost');
      assert.equal(srv.hits(), 0, 'nothing fetched from a refused address');

      const t0 = Date.now();
      const slow = new InstanceKinds(memoryKv(), { ...allowAll, timeoutMs: 300 });
      assert.equal((await slow.learn(stalled.actor))?.software, null);
      assert.ok(Date.now() - t0 < 3000, 'bounded');
      assert.equal(slow.kind(stalled.actor), 'boost');
    } finally {
      srv.close();
      stalled.close();
    }
  });

  it('remembered per instance for a day, then looked up again without holding a send', async () => {
    const srv = await nodeInfoServer('lemmy');
    try {
      let now = 1_000_000;
      const kv = memoryKv();
      const kinds = new InstanceKinds(kv, allowAll, { now: () => now });
      await kinds.learn(srv.actor);
      const hits = srv.hits();
      await kinds.learn(`http://${srv.host}/u/another`);
      assert.equal(srv.hits(), hits, 'one look-up per instance');
      // Another process start reads it from the kv.
      const again = new InstanceKinds(kv, allowAll, { now: () => now });
      assert.equal(again.kind(srv.actor), 'fep-1b12');
      assert.equal(srv.hits(), hits);
      now += FRESH_MS + 1;
      assert.equal(again.kind(srv.actor), 'fep-1b12', 'the stale answer meanwhile');
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(srv.hits() > hits, 'looked up again in the background');
      assert.equal(again.record(srv.host)?.checked, now);
    } finally {
      srv.close();
    }
  });

  it('a shared inbox an announced follower is reached through gets announces for all behind it', () => {
    const f = (id: string, sharedInbox: string | null): Follower => ({
      id,
      inbox: `${id}/inbox`,
      sharedInbox,
      follow: `${id}#follow`,
      since: 0,
    });
    const followers = [
      f('https://lemmy.example/u/a', 'https://lemmy.example/inbox'),
      // An actor of another host delivered through the same shared inbox.
      f('https://alias.example/u/b', 'https://lemmy.example/inbox'),
      f('https://masto.example/users/c', 'https://masto.example/inbox'),
      f('https://solo.example/users/d', null),
    ];
    const { announced, boosted } = splitByKind(followers, (id) =>
      id.startsWith('https://lemmy.example/') ? 'fep-1b12' : 'boost',
    );
    assert.deepEqual(
      announced.map((x) => x.id),
      ['https://lemmy.example/u/a', 'https://alias.example/u/b'],
    );
    assert.deepEqual(
      boosted.map((x) => recipientOf(x).id?.href),
      ['https://masto.example/users/c', 'https://solo.example/users/d'],
    );
  });
});
