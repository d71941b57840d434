// The ActivityPub bridge's federation on a real gateway, in process: WebFinger round trip, the
// Group, Person and instance actors with their keys, NodeInfo 2.1, the outbox with the original
// timestamps, and inboxes that refuse unsigned, forged and replayed POSTs.
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHash, createSign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { activityPubBridge } from '../../../bridges/activitypub/index.ts';
import { authorIdentifier } from '../../../bridges/activitypub/urls.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

// biome-ignore lint/suspicious/noExplicitAny: ActivityPub documents are free-form JSON
type Json = Record<string, any>;
const AP = 'application/activity+json';
let node: RumNode;
let gateway: Gateway;
let groupId: string;
let host: string;
const posted: string[] = [];

async function getJson(url: string | URL, accept = AP) {
  const res = await fetch(url, { headers: { accept } });
  assert.equal(res.status, 200, `${url}: ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as Json;
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  gateway = await startGateway(node, [activityPubBridge()]);
  host = new URL(gateway.origin).host;
  ({ groupId } = await node.createGroup({
    groupName: 'Our forum',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  }));
  for (const content of ['first post', 'second post']) {
    posted.push(await node.postContent(groupId, { type: 'Note', content }));
    await node.group(groupId).produce();
  }
  gateway.exposures.put(groupId, { handle: 'ourforum' });
});

after(async () => {
  await gateway.stop();
  await node.stop();
});

describe('actors', () => {
  it('WebFinger finds the group, and its preferredUsername maps back to the same actor', async () => {
    const jrd = await getJson(
      `${gateway.origin}/.well-known/webfinger?resource=${encodeURIComponent(`acct:ourforum@${host}`)}`,
      'application/jrd+json',
    );
    assert.equal(jrd.subject, `acct:ourforum@${host}`);
    const self = jrd.links.find((l: Json) => l.rel === 'self');
    assert.equal(self.href, `${gateway.origin}/ap/actors/g.ourforum`);
    const actor = await getJson(self.href);
    assert.equal(actor.type, 'Group');
    const back = await getJson(
      `${gateway.origin}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${actor.preferredUsername}@${new URL(actor.id).host}`)}`,
      'application/jrd+json',
    );
    assert.equal(back.links.find((l: Json) => l.rel === 'self').href, actor.id);
    const missing = await fetch(
      `${gateway.origin}/.well-known/webfinger?resource=${encodeURIComponent(`acct:nobody@${host}`)}`,
    );
    assert.equal(missing.status, 404);
  });

  it('the Group actor has its keys, inbox, outbox, followers and shared inbox', async () => {
    const a = await getJson(`${gateway.origin}/ap/actors/g.ourforum`);
    assert.equal(a.id, `${gateway.origin}/ap/actors/g.ourforum`);
    assert.equal(a.preferredUsername, 'ourforum');
    assert.equal(a.name, 'Our forum');
    assert.equal(a.inbox, `${a.id}/inbox`);
    assert.equal(a.outbox, `${a.id}/outbox`);
    assert.equal(a.followers, `${a.id}/followers`);
    assert.equal(a.endpoints.sharedInbox, `${gateway.origin}/ap/inbox`);
    assert.equal(a.publicKey.id, `${a.id}#main-key`);
    assert.match(a.publicKey.publicKeyPem, /BEGIN PUBLIC KEY/);
    assert.equal(a.assertionMethod.length, 2);
    for (const m of a.assertionMethod) assert.equal(m.type, 'Multikey');
    assert.match(a.assertionMethod[1].publicKeyMultibase, /^z6Mk/);
    // The same keys on every fetch (kept, not made anew).
    const again = await getJson(a.id);
    assert.equal(again.publicKey.publicKeyPem, a.publicKey.publicKeyPem);
  });

  it('an author of the group is a Person; an unknown key is not', async () => {
    const pubkey = node.store.getContent(groupId, posted[0]!)!.senderPubkey;
    const id = `${gateway.origin}/ap/actors/${authorIdentifier(pubkey)}`;
    const p = await getJson(id);
    assert.equal(p.type, 'Person');
    assert.equal(p.preferredUsername, authorIdentifier(pubkey));
    assert.ok(p.name);
    assert.equal(p.assertionMethod.length, 2);
    const jrd = await getJson(
      `${gateway.origin}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${p.preferredUsername}@${host}`)}`,
      'application/jrd+json',
    );
    assert.equal(jrd.links.find((l: Json) => l.rel === 'self').href, id);
    const other = `u_02${'ab'.repeat(32)}`;
    const res = await fetch(`${gateway.origin}/ap/actors/${other}`, { headers: { accept: AP } });
    assert.equal(res.status, 404);
  });

  it('the instance actor is an Application at /ap/actor', async () => {
    const a = await getJson(`${gateway.origin}/ap/actor`);
    assert.equal(a.type, 'Application');
    assert.equal(a.id, `${gateway.origin}/ap/actor`);
    assert.ok(a.publicKey.publicKeyPem);
  });

  it("a browser opening the group's actor id is sent to its page", async () => {
    const res = await fetch(`${gateway.origin}/ap/actors/g.ourforum`, {
      headers: { accept: 'text/html' },
      redirect: 'manual',
    });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${gateway.origin}/@ourforum`);
  });

  it('NodeInfo 2.1 is linked from /.well-known/nodeinfo', async () => {
    const links = await getJson(`${gateway.origin}/.well-known/nodeinfo`, 'application/json');
    const href = links.links[0].href;
    assert.equal(href, `${gateway.origin}/nodeinfo/2.1`);
    const info = await getJson(href, 'application/json');
    assert.equal(info.version, '2.1');
    assert.equal(info.software.name, 'rum-node');
    assert.deepEqual(info.protocols, ['activitypub']);
  });
});

describe('collections and posts', () => {
  it('the outbox holds the history, newest first, with the original timestamps', async () => {
    const box = await getJson(`${gateway.origin}/ap/actors/g.ourforum/outbox`);
    assert.equal(box.type, 'OrderedCollection');
    const page = await getJson(box.first);
    const items = page.orderedItems as Json[] & [Json, Json];
    assert.equal(items.length, 2);
    assert.equal(items[0].type, 'Create');
    assert.equal(items[0].object.id, `${gateway.origin}/ap/posts/${posted[1]}`);
    assert.equal(items[1].object.id, `${gateway.origin}/ap/posts/${posted[0]}`);
    for (const [i, trx] of [posted[1]!, posted[0]!].entries()) {
      const ts = BigInt(node.store.getContent(groupId, trx)!.timestamp);
      const ms = Number(ts / 1_000_000n);
      assert.ok(
        Math.abs(Date.parse(items[i]!.object.published) - ms) < 1000,
        items[i]!.object.published,
      );
    }
  });

  it('each post is served at its id, and its Create', async () => {
    const note = await getJson(`${gateway.origin}/ap/posts/${posted[0]}`);
    assert.equal(note.type, 'Note');
    assert.equal(note.id, `${gateway.origin}/ap/posts/${posted[0]}`);
    const create = await getJson(`${gateway.origin}/ap/posts/${posted[0]}/create`);
    assert.equal(create.type, 'Create');
    const missing = await fetch(`${gateway.origin}/ap/posts/nope`, { headers: { accept: AP } });
    assert.equal(missing.status, 404);
  });

  it('the followers collection is empty at first', async () => {
    const c = await getJson(`${gateway.origin}/ap/actors/g.ourforum/followers`);
    assert.equal(c.totalItems, 0);
  });
});

describe('inbox', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  function note(id: string) {
    return JSON.stringify({
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: `https://remote.example/activities/${id}`,
      type: 'Create',
      actor: 'https://remote.example/users/mallory',
      object: {
        id: `https://remote.example/notes/${id}`,
        type: 'Note',
        attributedTo: 'https://remote.example/users/mallory',
        content: 'forged',
        inReplyTo: `${gateway.origin}/ap/posts/${posted[0]}`,
        to: ['https://www.w3.org/ns/activitystreams#Public'],
      },
    });
  }
  const contentCount = () =>
    (
      node.store.db.$client
        .prepare('SELECT count(*) AS n FROM contents WHERE group_id = ?')
        .get(groupId) as {
        n: number;
      }
    ).n;

  it('an unsigned POST is refused with 401 and nothing reaches the chain', async () => {
    const before = contentCount();
    const res = await fetch(`${gateway.origin}/ap/actors/g.ourforum/inbox`, {
      method: 'POST',
      headers: { 'content-type': AP },
      body: note('unsigned'),
    });
    assert.equal(res.status, 401);
    assert.equal(contentCount(), before);
  });

  it('a POST signed with a key the actor does not have is refused, and its replay too', async () => {
    const before = contentCount();
    const body = note('forged');
    const url = new URL(`${gateway.origin}/ap/inbox`);
    const date = new Date().toUTCString();
    const digest = `SHA-256=${createHash('sha256').update(body).digest('base64')}`;
    const signed = `(request-target): post ${url.pathname}\nhost: ${url.host}\ndate: ${date}\ndigest: ${digest}`;
    const sig = createSign('RSA-SHA256').update(signed).sign(privateKey, 'base64');
    const headers = {
      'content-type': AP,
      date,
      digest,
      signature: `keyId="https://remote.example/users/mallory#main-key",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="${sig}"`,
    };
    const first = await fetch(url, { method: 'POST', headers, body });
    assert.equal(first.status, 401);
    const replay = await fetch(url, { method: 'POST', headers, body });
    assert.equal(replay.status, 401);
    assert.match(await replay.text(), /replay/);
    assert.equal(contentCount(), before);
  });
});
