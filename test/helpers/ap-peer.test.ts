// The test ActivityPub peer (test/helpers/ap-peer.ts) checked against a second instance of
// itself, so that the e2e test of the bridge can trust it: WebFinger and the actor with the
// round trip; a signed Follow verified by the other peer and a signed Accept verified back; a
// Create to a shared inbox and the Note fetched at its id; and above all that verification can
// fail: a tampered body (with and without a matching Digest), a wrong key, a stale or future
// Date, an unsigned POST, a signer who is not the actor, unsigned headers Mastodon requires, and
// RFC 9421 refused by default but verified when accepted. Everything on loopback, every wait
// bounded.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AS_PUBLIC, type ApPeer, isPublic, parseSfDictionary, startApPeer } from './ap-peer.ts';

describe('ap-peer (independent ActivityPub test peer)', () => {
  let a: ApPeer;
  let b: ApPeer;

  before(async () => {
    a = await startApPeer({ username: 'alice', timeoutMs: 5000 });
    b = await startApPeer({ username: 'bob', timeoutMs: 5000 });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  /** A fresh Create by a, as JSON text, for hand-made POSTs. */
  function createBody(actor = a.actorId): string {
    return JSON.stringify({
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: `${a.actorId}/activities/${Math.random().toString(36).slice(2)}`,
      type: 'Create',
      actor,
      to: [AS_PUBLIC],
      object: { id: `${a.actorId}/statuses/x`, type: 'Note', content: 'hi', attributedTo: actor },
    });
  }

  it('serves WebFinger and its actor; lookup does the round trip with a signed GET', async () => {
    const found = await a.lookup(`@${b.acct}`);
    assert.equal(found.acct, b.acct);
    assert.equal(found.actor.id, b.actorId);
    assert.equal(found.actor.type, 'Person');
    assert.equal(found.actor.preferredUsername, 'bob');
    assert.equal(found.actor.inbox, b.inboxUrl);
    assert.equal(found.actor.endpoints.sharedInbox, `${b.origin}/inbox`);
    assert.deepEqual(found.actor.publicKey, {
      id: `${b.actorId}#main-key`,
      owner: b.actorId,
      publicKeyPem: b.publicKeyPem,
    });
    const actorGet = b.fetches.find((f) => f.path === '/users/bob');
    assert.ok(actorGet?.signed, 'the actor fetch was signed');
    const wf = await a.get(`${b.origin}/.well-known/webfinger?resource=acct:nobody@${b.host}`, {
      signed: false,
    });
    assert.equal(wf.status, 404);
  });

  it('a follows b: b verifies the Follow and answers a signed Accept that a verifies', async () => {
    const accept = await a.follow(b.actorId);
    assert.equal(accept.type, 'Accept');
    assert.equal(accept.actor, b.actorId);
    const follow = b.inbox.find((e) => e.activity.type === 'Follow');
    assert.ok(follow);
    assert.equal(follow.verified, true);
    assert.equal(follow.keyId, a.keyId);
    assert.equal(follow.signer, a.actorId);
    assert.equal(follow.scheme, 'draft-cavage');
    assert.equal(follow.path, '/users/bob/inbox');
    const got = a.inbox.find((e) => e.activity.id === accept.id);
    assert.equal(got?.keyId, b.keyId);
    assert.ok(b.followers.has(a.actorId));
    assert.equal(a.following.get(b.actorId)?.state, 'accepted');
    const followers = await a.fetch(b.followersUrl);
    assert.deepEqual(followers.orderedItems, [a.actorId]);
  });

  it('b posts: the Create goes to its follower a (shared inbox), verified; the Note is fetchable', async () => {
    const sent = await b.createNote({ content: '<p>hello followers</p>' });
    assert.deepEqual(
      sent.deliveries.map((d) => [d.inbox, d.status]),
      [[a.sharedInboxUrl, 202]],
    );
    const e = await a.waitFor((x) => x.activity.id === sent.activity.id, 2000);
    assert.equal(e.path, '/inbox');
    assert.equal(e.keyId, b.keyId);
    assert.ok(isPublic(e.activity.object));
    const note = await a.fetch(sent.note.id);
    assert.equal(note.content, '<p>hello followers</p>');
    assert.equal(note.attributedTo, b.actorId);
  });

  it('a replies to a given inbox with to: as:Public; like, announce, update and delete verify', async () => {
    const parent = [...b.objects.values()].find((o) => o.type === 'Note')!;
    const reply = await a.createNote({
      content: 'a reply',
      inReplyTo: parent.id,
      to: 'as:Public',
      cc: [b.actorId],
      inbox: b.sharedInboxUrl,
    });
    assert.equal(reply.deliveries[0]?.status, 202);
    const got = await b.waitFor((x) => x.activity.id === reply.activity.id, 2000);
    assert.equal(got.activity.object.inReplyTo, parent.id);
    assert.equal(got.activity.object.to, 'as:Public');
    assert.ok(isPublic(got.activity.object));
    assert.ok(isPublic({ cc: ['Public'] }));
    assert.ok(!isPublic({ to: [a.followersUrl] }));

    for (const sent of [
      await a.like(parent.id, b.inboxUrl),
      await a.announce(parent.id, b.inboxUrl, { cc: [b.actorId] }),
      await a.updateNote(reply.note.id, { content: 'edited' }, b.sharedInboxUrl),
    ]) {
      assert.equal(sent.deliveries[0]?.status, 202, sent.activity.type);
      assert.ok(b.inbox.some((x) => x.activity.id === sent.activity.id));
    }
    assert.equal((await b.fetch(reply.note.id)).content, 'edited');

    const del = await a.deleteNote(reply.note.id, b.sharedInboxUrl);
    assert.equal(del.deliveries[0]?.status, 202);
    const delGot = b.inbox.find((x) => x.activity.id === del.activity.id);
    assert.equal(delGot?.activity.object.type, 'Tombstone');
    const gone = await b.get(reply.note.id);
    assert.equal(gone.status, 410);
    assert.equal(JSON.parse(gone.body).type, 'Tombstone');
  });

  it('refuses what does not verify (401, recorded in refused, never in inbox)', async () => {
    const url = b.inboxUrl;
    const before = b.inbox.length;
    const refusedBefore = b.refused.length;
    const cases: [string, () => Promise<number>, RegExp][] = [];

    // control: the same helper, untouched, verifies
    const okBody = createBody();
    assert.equal(await a.postRaw(url, okBody, a.signedHeaders('POST', url, okBody)), 202);
    assert.equal(b.inbox.length, before + 1);

    cases.push([
      'unsigned',
      () => a.postRaw(url, createBody(), { 'content-type': 'application/activity+json' }),
      /unsigned/,
    ]);
    cases.push([
      'tampered body',
      async () => {
        const body = createBody();
        const headers = a.signedHeaders('POST', url, body);
        return a.postRaw(url, body.replace('"hi"', '"HI"'), headers);
      },
      /Digest does not match/,
    ]);
    cases.push([
      'tampered body with a recomputed Digest',
      async () => {
        const body = createBody();
        const headers = a.signedHeaders('POST', url, body);
        const forged = body.replace('"hi"', '"HI"');
        const fresh = a.signedHeaders('POST', url, forged);
        return a.postRaw(url, forged, { ...headers, digest: fresh.digest! });
      },
      /does not verify/,
    ]);
    cases.push([
      'wrong key under a’s keyId',
      async () => {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        const body = createBody();
        return a.postRaw(url, body, a.signedHeaders('POST', url, body, { privateKey }));
      },
      /does not verify/,
    ]);
    cases.push([
      'stale Date (2 h)',
      async () => {
        const body = createBody();
        const date = new Date(Date.now() - 2 * 3_600_000);
        return a.postRaw(url, body, a.signedHeaders('POST', url, body, { date }));
      },
      /outside/,
    ]);
    cases.push([
      'future Date (2 h)',
      async () => {
        const body = createBody();
        const date = new Date(Date.now() + 2 * 3_600_000);
        return a.postRaw(url, body, a.signedHeaders('POST', url, body, { date }));
      },
      /outside/,
    ]);
    cases.push([
      'signer is not the actor',
      async () => {
        const body = createBody(b.actorId);
        return a.postRaw(url, body, a.signedHeaders('POST', url, body));
      },
      /is not the actor/,
    ]);
    cases.push([
      'Digest not signed',
      async () => {
        const body = createBody();
        const headers = ['(request-target)', 'host', 'date'];
        return a.postRaw(url, body, a.signedHeaders('POST', url, body, { headers }));
      },
      /Digest is not signed/,
    ]);
    cases.push([
      'signed for another path',
      async () => {
        const body = createBody();
        return a.postRaw(url, body, a.signedHeaders('POST', b.sharedInboxUrl, body));
      },
      /does not verify/,
    ]);
    cases.push([
      'unknown key',
      async () => {
        const body = createBody();
        const keyId = `${a.origin}/users/nobody#main-key`;
        return a.postRaw(url, body, a.signedHeaders('POST', url, body, { keyId }));
      },
      /cannot get key/,
    ]);

    for (const [name, run, reason] of cases) {
      const n = b.refused.length;
      assert.equal(await run(), 401, name);
      assert.equal(b.refused.length, n + 1, name);
      assert.match(b.refused.at(-1)!.reason, reason, name);
    }
    assert.equal(b.inbox.length, before + 1, 'no refused request reached the inbox');
    assert.equal(b.refused.length, refusedBefore + cases.length);

    // not JSON → 400; too large → 413
    const notJson = 'not json';
    assert.equal(await a.postRaw(url, notJson, a.signedHeaders('POST', url, notJson)), 400);
    const big = 'x'.repeat(1024 * 1024 + 1);
    assert.equal(await a.postRaw(url, big, a.signedHeaders('POST', url, big)), 413);
  });

  it('RFC 9421: refused with 401 by default, verified when accepted, tampering still fails', async () => {
    const url = b.sharedInboxUrl;
    const body = createBody();
    const headers = a.signedHeaders('POST', url, body, { scheme: 'rfc9421' });
    assert.ok(headers['signature-input']?.startsWith('sig1=("@method" "@target-uri"'));
    const input = parseSfDictionary(headers['signature-input']!);
    assert.ok(input.has('sig1'));

    assert.equal(await a.postRaw(url, body, headers), 401);
    assert.match(b.refused.at(-1)!.reason, /RFC 9421 signatures are not accepted/);

    b.rfc9421 = 'accept';
    try {
      assert.equal(await a.postRaw(url, body, headers), 202);
      const e = b.inbox.at(-1)!;
      assert.equal(e.scheme, 'rfc9421');
      assert.equal(e.keyId, a.keyId);

      const tampered = body.replace('"hi"', '"HI"');
      assert.equal(await a.postRaw(url, tampered, headers), 401);
      assert.match(b.refused.at(-1)!.reason, /Content-Digest does not match/);

      const stale = a.signedHeaders('POST', url, body, {
        scheme: 'rfc9421',
        date: new Date(Date.now() - 2 * 3_600_000),
      });
      assert.equal(await a.postRaw(url, body, stale), 401);

      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const wrong = a.signedHeaders('POST', url, body, { scheme: 'rfc9421', privateKey });
      assert.equal(await a.postRaw(url, body, wrong), 401);
      assert.match(b.refused.at(-1)!.reason, /does not verify/);
    } finally {
      b.rfc9421 = 'refuse';
    }
  });

  it('authorized fetch: unsigned GETs of objects get 401, signed ones 200; the actor stays public', async () => {
    const note = [...b.objects.values()].find((o) => o.type === 'Note')!;
    b.authorizedFetch = true;
    try {
      assert.equal((await a.get(note.id, { signed: false })).status, 401);
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const forged = a.signedHeaders('GET', note.id, null, { privateKey });
      assert.equal((await a.request('GET', note.id, forged)).status, 401);
      assert.equal((await a.fetch(note.id)).id, note.id);
      assert.equal(b.fetches.at(-1)?.keyId, a.keyId);
      const bare = JSON.parse((await a.get(b.actorId, { signed: false })).body);
      assert.equal(bare.publicKey.publicKeyPem, b.publicKeyPem);
      assert.equal(bare.followers, undefined, 'only the public parts without a signature');
    } finally {
      b.authorizedFetch = false;
    }
  });

  it('follow() is bounded: a locked account that never answers makes it reject; unfollow undoes; close settles waits', async () => {
    const c = await startApPeer({ username: 'carol', autoAcceptFollows: false, timeoutMs: 5000 });
    try {
      const t0 = Date.now();
      await assert.rejects(a.follow(c.actorId, { timeoutMs: 300 }), /timed out/);
      assert.ok(Date.now() - t0 < 3000);
      assert.ok(c.followRequests.has(a.actorId), 'the Follow itself was verified');
      assert.ok(!c.followers.has(a.actorId));
      const undo = await a.unfollow(c.actorId);
      assert.equal(undo.deliveries[0]?.status, 202);
      assert.ok(!c.followRequests.has(a.actorId));
      await assert.rejects(
        a.request('GET', 'http://192.0.2.1/x', {}),
        /non-loopback/,
        'never leaves loopback',
      );
      const pending = c.waitFor(() => false, 5000);
      await c.close();
      await assert.rejects(pending, /closed/, 'close() settles pending waits');
    } finally {
      await c.close();
    }
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  });
});
