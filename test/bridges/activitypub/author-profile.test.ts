// Authors' names on the ActivityPub bridge, from the profiles they post in the group (issue 9,
// "Actors"): a RUM app posts `{"type":"Create","object":{"type":"Profile","name":…,"image":…,
// "describes":{"type":"Person","id":…}}}` (rum-app's form). On a real gateway, in process: the
// Person actor fetched over HTTP carries the profile's name and avatar, a later profile replaces
// it, a profile someone else posts about the author is ignored, an author without one is named
// by a short form of its key; the post's page names the author the same way. Below that, the
// port's profile() itself: Deletes, profiles describing someone else, the Ethereum address form,
// and the avatar's checks.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { displayName, MAX_DISPLAY_NAME_CHARS } from '../../../bridges/activitypub/federation.ts';
import { activityPubBridge } from '../../../bridges/activitypub/index.ts';
import { authorIdentifier } from '../../../bridges/activitypub/urls.ts';
import {
  encodePubkey,
  ethAddress,
  generatePrivateKey,
  publicKeyOf,
} from '../../../src/crypto/keys.ts';
import { profileOf } from '../../../src/gateway/author-profiles.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { startApPeer } from '../../helpers/ap-peer.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

// biome-ignore lint/suspicious/noExplicitAny: ActivityPub documents are free-form JSON
type Json = Record<string, any>;
const AP = 'application/activity+json';
/** A 1×1 PNG. */
const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

let node: RumNode;
let gateway: Gateway;
let groupId: string;

interface Author {
  priv: Uint8Array;
  pubkey: string;
}

function newAuthor(): Author {
  const priv = generatePrivateKey();
  return { priv, pubkey: encodePubkey(publicKeyOf(priv)) };
}

/** Posts as an author and commits it in a block; answers the trx id. */
async function postAs(author: Author, payload: Json, gid = groupId): Promise<string> {
  const trxId = await node.postAs(gid, payload, { priv: author.priv, pubkey: author.pubkey });
  await node.group(gid).produce();
  return trxId;
}

/** A profile as rum-app posts it (`describes.id` is the author's Ethereum address there). */
function profile(name: string | null, describes: string | null, image?: string): Json {
  return {
    type: 'Create',
    object: {
      type: 'Profile',
      ...(name === null ? {} : { name }),
      ...(describes === null ? {} : { describes: { type: 'Person', id: describes } }),
      ...(image ? { image: [{ type: 'Image', mediaType: 'image/png', content: image }] } : {}),
    },
    published: new Date().toISOString(),
  };
}

function note(content: string): Json {
  return { type: 'Create', object: { type: 'Note', content } };
}

async function person(pubkey: string): Promise<Json> {
  const url = `${gateway.origin}/ap/actors/${authorIdentifier(pubkey)}`;
  const res = await fetch(url, { headers: { accept: AP } });
  assert.equal(res.status, 200, `${url}: ${res.status}`);
  const actor = (await res.json()) as Json;
  assert.equal(actor.type, 'Person');
  return actor;
}

function shortForm(pubkey: string): string {
  return `${pubkey.slice(0, 8)}…${pubkey.slice(-4)}`;
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  gateway = await startGateway(node, [activityPubBridge()]);
  ({ groupId } = await node.createGroup({
    groupName: 'Profiles',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_timeline',
  }));
  gateway.exposures.put(groupId, { handle: 'profiles' });
});

after(async () => {
  await gateway.stop();
  await node.stop();
});

describe('the Person actor of a RUM author', () => {
  const alice = newAuthor();
  const mallory = newAuthor();
  let alicePost: string;

  before(async () => {
    await postAs(alice, profile('Alice', alice.pubkey));
    alicePost = await postAs(alice, note('hello from alice'));
  });

  it('is named by the profile the author posted in the group', async () => {
    const p = await person(alice.pubkey);
    assert.equal(p.name, 'Alice');
    assert.equal(p.preferredUsername, authorIdentifier(alice.pubkey));
    assert.equal(p.icon, undefined);
  });

  it("the post's page names its author the same way", async () => {
    const res = await fetch(`${gateway.origin}/p/${alicePost}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<span class="author" title="RUM key [^"]+">Alice<\/span>/);
  });

  it('a later profile renames it, and its avatar becomes the icon', async () => {
    // rum-app's own form: describes.id is the author's Ethereum address.
    const trx = await postAs(
      alice,
      profile('Alice Liddell', ethAddress(publicKeyOf(alice.priv)), PNG_BASE64),
    );
    const p = await person(alice.pubkey);
    assert.equal(p.name, 'Alice Liddell');
    assert.equal(p.icon.type, 'Image');
    assert.equal(p.icon.mediaType, 'image/png');
    assert.equal(p.icon.url, `${gateway.origin}/avatars/${authorIdentifier(alice.pubkey)}/${trx}`);
    const img = await fetch(p.icon.url);
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.equal(img.headers.get('x-content-type-options'), 'nosniff');
    assert.deepEqual(Buffer.from(await img.arrayBuffer()), Buffer.from(PNG_BASE64, 'base64'));
    // Another trx's avatar, or another key's, is not served.
    const other = await fetch(`${gateway.origin}/avatars/${authorIdentifier(alice.pubkey)}/x`);
    assert.equal(other.status, 404);
    const page = await (await fetch(`${gateway.origin}/p/${alicePost}`)).text();
    assert.match(page, />Alice Liddell<\/span>/);
  });

  it('a profile someone else posts describing the author is ignored', async () => {
    await postAs(mallory, profile('Mallory was here', alice.pubkey));
    await postAs(mallory, profile('Mallory, again', ethAddress(publicKeyOf(alice.priv))));
    assert.equal((await person(alice.pubkey)).name, 'Alice Liddell');
    // Nor is it the profile of the one who posted it.
    assert.equal((await person(mallory.pubkey)).name, shortForm(mallory.pubkey));
  });

  it('an author without a profile is named by a short form of its key', async () => {
    const bob = newAuthor();
    const bobPost = await postAs(bob, note('no profile here'));
    const p = await person(bob.pubkey);
    assert.equal(p.name, shortForm(bob.pubkey));
    assert.equal(p.icon, undefined);
    const page = await (await fetch(`${gateway.origin}/p/${bobPost}`)).text();
    assert.ok(page.includes(`>${shortForm(bob.pubkey)}</span>`));
  });

  it('a hostile name is plain text on one line, cut to the limit, escaped on the page', async () => {
    const eve = newAuthor();
    const hostile = `  <b>Eve</b>\u202e & "co"\n${'x'.repeat(200)}  `;
    await postAs(eve, profile(hostile, null));
    const evePost = await postAs(eve, note('hi'));
    const p = await person(eve.pubkey);
    assert.equal(Array.from(p.name).length, MAX_DISPLAY_NAME_CHARS);
    assert.ok(p.name.startsWith('<b>Eve</b> & "co" xxx'));
    assert.ok(p.name.endsWith('…'));
    const page = await (await fetch(`${gateway.origin}/p/${evePost}`)).text();
    assert.ok(page.includes('&lt;b&gt;Eve&lt;/b&gt; &amp; &quot;co&quot; xxx'));
    assert.ok(!page.includes('<b>Eve</b>'));
  });
});

describe("an author's new profile reaches the group's followers", () => {
  it('as a signed Update of the Person, with the new name', async () => {
    const peer = await startApPeer();
    try {
      const groupActor = `${gateway.origin}/ap/actors/g.profiles`;
      assert.equal((await peer.follow(groupActor)).type, 'Accept');
      const carol = newAuthor();
      await postAs(carol, note('carol was here'));
      await postAs(carol, profile('Carol', carol.pubkey));
      const actorId = `${gateway.origin}/ap/actors/${authorIdentifier(carol.pubkey)}`;
      const got = await peer.waitFor(
        (e) => e.activity.type === 'Update' && e.activity.object?.id === actorId,
      );
      assert.equal(got.signer, actorId, 'signed by the author actor');
      assert.equal(got.activity.object.type, 'Person');
      assert.equal(got.activity.object.name, 'Carol');
      // A later profile renames again; each profile is its own Update.
      await postAs(carol, profile('Carol B.', carol.pubkey));
      const again = await peer.waitFor(
        (e) => e.activity.type === 'Update' && e.activity.object?.name === 'Carol B.',
      );
      assert.notEqual(again.activity.id, got.activity.id);
    } finally {
      await peer.close();
    }
  });
});

describe('port.profile()', () => {
  it('answers the newest profile the author posted, in chain order, and follows Deletes', async () => {
    const port = gateway.port;
    const carol = newAuthor();
    assert.equal(port.profile(groupId, carol.pubkey), undefined);
    const first = await postAs(carol, profile('Carol', carol.pubkey));
    assert.equal(port.profile(groupId, carol.pubkey)?.name, 'Carol');
    assert.equal(port.profile(groupId, carol.pubkey)?.trxId, first);
    // Her posts since (no profile among them) keep the name.
    await postAs(carol, note('one'));
    assert.equal(port.profile(groupId, carol.pubkey)?.name, 'Carol');
    // One describing someone else is not hers: the one before still counts.
    await postAs(carol, profile('Not Carol', newAuthor().pubkey));
    assert.equal(port.profile(groupId, carol.pubkey)?.trxId, first);
    const second = await postAs(carol, profile('Carol II', null));
    assert.equal(port.profile(groupId, carol.pubkey)?.name, 'Carol II');
    // Her Delete of the newer profile brings back the older one.
    await postAs(carol, { type: 'Delete', object: { type: 'Note', id: second } });
    assert.equal(port.profile(groupId, carol.pubkey)?.trxId, first);
    // Another group, and a group the node does not have, have none.
    const { groupId: other } = await node.createGroup({
      groupName: 'Other',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_timeline',
    });
    assert.equal(port.profile(other, carol.pubkey), undefined);
    assert.equal(port.profile('00000000-0000-4000-8000-000000000000', carol.pubkey), undefined);
  });
});

describe('profileOf() and displayName()', () => {
  const a = newAuthor();
  const b = newAuthor();

  it('takes the object of a Create or a bare Profile; names or avatars, nothing else', () => {
    assert.deepEqual(profileOf(profile(' Ann ', a.pubkey), a.pubkey), { name: 'Ann', image: null });
    assert.deepEqual(profileOf({ type: 'Profile', name: 'Ann' }, a.pubkey)?.name, 'Ann');
    assert.equal(
      profileOf({ type: 'Create', object: { type: 'Note', name: 'x' } }, a.pubkey),
      null,
    );
    assert.equal(profileOf(profile('   ', a.pubkey), a.pubkey), null);
    assert.equal(profileOf(profile('Ann', b.pubkey), a.pubkey), null);
    const bad = profile('Ann', a.pubkey);
    bad.object.describes = 'Ann';
    assert.equal(profileOf(bad, a.pubkey), null);
    // The address form, in any case.
    const addr = ethAddress(publicKeyOf(a.priv)).toLowerCase();
    assert.equal(profileOf(profile('Ann', addr), a.pubkey)?.name, 'Ann');
    assert.equal(profileOf(profile('Ann', ethAddress(publicKeyOf(b.priv))), a.pubkey), null);
  });

  it('keeps an avatar only when its bytes are the image type it claims', () => {
    const ok = profileOf(profile(null, a.pubkey, PNG_BASE64), a.pubkey);
    assert.equal(ok?.image?.mediaType, 'image/png');
    assert.equal(ok?.name, null);
    const svg = profile('Ann', a.pubkey);
    svg.object.image = {
      mediaType: 'image/svg+xml',
      content: Buffer.from('<svg/>').toString('base64'),
    };
    assert.deepEqual(profileOf(svg, a.pubkey), { name: 'Ann', image: null });
    const lying = profile(
      'Ann',
      a.pubkey,
      Buffer.from('<html>not a png</html>').toString('base64'),
    );
    assert.equal(profileOf(lying, a.pubkey)?.image, null);
  });

  it('displayName makes one plain line of at most the limit, or null', () => {
    assert.equal(displayName('  a\tb\n\nc  '), 'a b c');
    assert.equal(displayName('\u202eevil\u2066'), 'evil');
    assert.equal(displayName(' \u200e '), null);
    assert.equal(displayName(null), null);
    const long = displayName('😀'.repeat(100))!;
    assert.equal(Array.from(long).length, MAX_DISPLAY_NAME_CHARS);
  });
});
