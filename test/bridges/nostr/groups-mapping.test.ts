// RUM payloads ⇄ Nostr events (bridges/nostr/mapping.ts) and authors' own signatures
// (bridges/nostr/author.ts): the kinds and tags each side gets, what a carried event must match,
// and that a post made on a node carries an event signed with the author's own group key.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { verifyEvent as ntVerify } from 'nostr-tools/pure';
import {
  checkCarried,
  nostrPubkeyOf,
  rumPubkeysOf,
  signEvent,
  verifyEvent,
  withAuthorEvent,
} from '../../../bridges/nostr/author.ts';
import {
  carriedEvent,
  type EventRef,
  fromNostr,
  htmlToPlain,
  matchesPayload,
  replyTargetEvent,
  toNostr,
} from '../../../bridges/nostr/mapping.ts';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

const G = 'a9d1a5a8-6c1f-4d1e-9a43-3f3b9b3c0c11';
const priv = schnorr.utils.randomSecretKey();
const other = schnorr.utils.randomSecretKey();

function ev(kind: number, content: string, tags: string[][], key = other): NostrEvent {
  return signEvent({ kind, content, tags, created_at: 1_700_000_000 }, key);
}

const none = () => null;

describe('RUM → Nostr', () => {
  const root = ev(1, 'root', [['h', G]]);
  const rootRef: EventRef = { id: root.id, pubkey: root.pubkey, kind: 1, tags: root.tags };
  const refs = new Map<string, EventRef>([['t-root', rootRef]]);
  const eventOf = (t: string) => refs.get(t) ?? null;

  it('a Note is a kind 1 with the h tag; a titled Note puts its title first', () => {
    const r = toNostr({ type: 'Note', content: 'hello' }, G, none);
    assert.deepEqual(r, { ok: true, event: { kind: 1, content: 'hello', tags: [['h', G]] } });
    const titled = toNostr(
      { type: 'Create', object: { type: 'Note', name: 'T', content: 'b' } },
      G,
      none,
    );
    assert.ok(titled.ok && titled.event.content === 'T\n\nb');
  });

  it('an Article is a kind 11 thread with a title; HTML becomes text', () => {
    const r = toNostr(
      { type: 'Article', name: 'Title', content: '<p>a &amp; b</p><p>c<br>d</p>' },
      G,
      none,
    );
    assert.ok(r.ok);
    assert.equal(r.event.kind, 11);
    assert.equal(r.event.content, 'a & b\n\nc\nd');
    assert.deepEqual(r.event.tags, [
      ['h', G],
      ['title', 'Title'],
    ]);
  });

  it('an Image with a URL is a kind 1 with the URL and an imeta tag; inline data is lost', () => {
    const r = toNostr(
      { type: 'Image', url: 'https://x.example/a.png', mediaType: 'image/png', name: 'cat' },
      G,
      none,
    );
    assert.ok(r.ok);
    assert.equal(r.event.content, 'cat\n\nhttps://x.example/a.png');
    assert.deepEqual(r.event.tags[1], ['imeta', 'url https://x.example/a.png', 'm image/png']);
    assert.equal(toNostr({ type: 'Image', content: 'aGVsbG8=' }, G, none).ok, false);
  });

  it('a reply to a kind 1 has NIP-10 root/reply tags; its reply keeps the root', () => {
    const r = toNostr(
      { type: 'Note', content: 'r1', inReplyTo: { type: 'Note', id: 't-root' } },
      G,
      eventOf,
    );
    assert.ok(r.ok);
    assert.equal(r.event.kind, 1);
    assert.deepEqual(r.event.tags, [
      ['h', G],
      ['e', root.id, '', 'root', root.pubkey],
      ['p', root.pubkey],
    ]);
    const r1 = ev(1, 'r1', r.event.tags, priv);
    refs.set('t-r1', { id: r1.id, pubkey: r1.pubkey, kind: 1, tags: r1.tags });
    const r2 = toNostr({ type: 'Note', content: 'r2', inReplyTo: 't-r1' }, G, eventOf);
    assert.ok(r2.ok);
    assert.deepEqual(r2.event.tags.slice(1, 3), [
      ['e', root.id, '', 'root', root.pubkey],
      ['e', r1.id, '', 'reply', r1.pubkey],
    ]);
    assert.equal(replyTargetEvent({ ...r1, ...r2.event }), r1.id);
  });

  it('a reply to a thread is a NIP-22 comment; to a chat message a kind 9 with q', () => {
    const thread = ev(11, 'thread', [['h', G]]);
    refs.set('t-11', { id: thread.id, pubkey: thread.pubkey, kind: 11, tags: thread.tags });
    const c = toNostr({ type: 'Note', content: 'c', inReplyTo: 't-11' }, G, eventOf);
    assert.ok(c.ok);
    assert.equal(c.event.kind, 1111);
    assert.deepEqual(c.event.tags.slice(1, 4), [
      ['E', thread.id, '', thread.pubkey],
      ['K', '11'],
      ['P', thread.pubkey],
    ]);
    const chat = ev(9, 'chat', [['h', G]]);
    refs.set('t-9', { id: chat.id, pubkey: chat.pubkey, kind: 9, tags: chat.tags });
    const q = toNostr({ type: 'Note', content: 'q', inReplyTo: 't-9' }, G, eventOf);
    assert.ok(q.ok && q.event.kind === 9);
    assert.deepEqual(q.event.tags[1], ['q', chat.id, '', chat.pubkey]);
  });

  it('Like, Dislike, Announce, Delete and Undo are kinds 7, 7, 6/16, 5, 5', () => {
    const like = toNostr({ type: 'Like', object: { type: 'Note', id: 't-root' } }, G, eventOf);
    assert.ok(like.ok && like.event.kind === 7 && like.event.content === '+');
    const dislike = toNostr({ type: 'Dislike', object: { id: 't-root' } }, G, eventOf);
    assert.ok(dislike.ok && dislike.event.content === '-');
    const rp = toNostr({ type: 'Announce', object: { id: 't-root' } }, G, eventOf);
    assert.ok(rp.ok && rp.event.kind === 6);
    const rp16 = toNostr({ type: 'Announce', object: { id: 't-11' } }, G, eventOf);
    assert.ok(rp16.ok && rp16.event.kind === 16);
    assert.deepEqual(rp16.event.tags.at(-1), ['k', '11']);
    const del = toNostr({ type: 'Delete', object: { id: 't-root' } }, G, eventOf);
    assert.ok(del.ok && del.event.kind === 5);
    assert.deepEqual(del.event.tags, [
      ['h', G],
      ['e', root.id],
      ['k', '1'],
    ]);
  });

  it('a reference without an event names the missing trx; profiles and edits do not map', () => {
    const r = toNostr({ type: 'Like', object: { id: 'nope' } }, G, eventOf);
    assert.deepEqual(r, { ok: false, reason: 'trx nope has no event', missing: 'nope' });
    assert.equal(
      toNostr({ type: 'Create', object: { type: 'Profile', name: 'x' } }, G, none).ok,
      false,
    );
    assert.equal(
      toNostr({ type: 'Update', object: { type: 'Note', content: 'x' } }, G, none).ok,
      false,
    );
  });

  it('htmlToPlain decodes numeric entities and keeps unknown ones', () => {
    assert.equal(htmlToPlain('&#65;&#x42;&bogus;'), 'AB&bogus;');
  });
});

describe('Nostr → RUM', () => {
  const target = ev(1, 'target', [['h', G]]);
  const trxOf = (id: string) =>
    id === target.id ? { trxId: 't-target', type: 'Note', pubkey: target.pubkey } : null;

  it('kinds 1, 9, 11, 1111 are posts carrying the whole event; replies resolve', () => {
    for (const kind of [1, 9, 1111]) {
      const e = ev(kind, '<p>not html</p>', [
        ['h', G],
        ['e', target.id, '', 'reply'],
      ]);
      const r = fromNostr(e, trxOf);
      assert.ok(r.ok);
      assert.equal(r.payload.type, 'Note');
      assert.equal(r.payload.mediaType, 'text/plain');
      assert.deepEqual(r.payload.inReplyTo, { type: 'Note', id: 't-target' });
      assert.deepEqual(carriedEvent(r.payload), e);
      assert.ok(matchesPayload(e, r.payload, G), `kind ${kind} matches its payload`);
    }
    const t = ev(11, 'body', [
      ['h', G],
      ['title', 'Topic'],
    ]);
    const r = fromNostr(t, trxOf);
    assert.ok(r.ok && r.payload.type === 'Article' && r.payload.name === 'Topic');
    assert.ok(matchesPayload(t, r.payload, G));
  });

  it('reactions, reposts and deletions need a target in the group', () => {
    const like = fromNostr(
      ev(7, '🤙', [
        ['h', G],
        ['e', target.id],
      ]),
      trxOf,
    );
    assert.ok(like.ok && like.payload.type === 'Like');
    const dislike = fromNostr(
      ev(7, '-', [
        ['h', G],
        ['e', target.id],
      ]),
      trxOf,
    );
    assert.ok(dislike.ok && dislike.payload.type === 'Dislike');
    const repost = fromNostr(
      ev(16, '', [
        ['h', G],
        ['e', target.id],
        ['k', '1'],
      ]),
      trxOf,
    );
    assert.ok(repost.ok && repost.payload.type === 'Announce');
    const del = fromNostr(
      ev(5, '', [
        ['h', G],
        ['e', target.id],
      ]),
      trxOf,
    );
    assert.ok(del.ok && del.payload.type === 'Delete');
    const forged = fromNostr(
      ev(
        5,
        '',
        [
          ['h', G],
          ['e', target.id],
        ],
        priv,
      ),
      trxOf,
    );
    assert.ok(!forged.ok && forged.reason.startsWith('blocked:'));
    const unknown = fromNostr(
      ev(7, '+', [
        ['h', G],
        ['e', 'f'.repeat(64)],
      ]),
      trxOf,
    );
    assert.ok(!unknown.ok && unknown.reason.startsWith('invalid:'));
  });
});

describe('carried events', () => {
  const groupKey = new Uint8Array(Buffer.from(priv));
  // The group key in quorum's encoding: compressed, base64url.
  const rum = rumPubkeysOf(Buffer.from(schnorr.getPublicKey(priv)).toString('hex'));

  it('the x-only key of a group key is its Nostr pubkey, both parities map back', () => {
    const x = Buffer.from(schnorr.getPublicKey(priv)).toString('hex');
    assert.equal(nostrPubkeyOf(rum[0]!), x);
    assert.equal(nostrPubkeyOf(rum[1]!), x);
  });

  it('an author-signed payload verifies with nostr-tools and matches its post', () => {
    const payload = withAuthorEvent({ type: 'Note', content: 'mine' }, G, groupKey, none);
    assert.ok(payload);
    const e = carriedEvent(payload)!;
    assert.ok(ntVerify({ ...e }));
    assert.ok(checkCarried(payload, G, rum[0]!).ok);
    assert.ok(checkCarried(payload, G, rum[1]!).ok);
  });

  it('is refused when signed by another key, edited, or for another group', () => {
    const payload = withAuthorEvent({ type: 'Note', content: 'mine' }, G, groupKey, none)!;
    const stranger = rumPubkeysOf(Buffer.from(schnorr.getPublicKey(other)).toString('hex'))[0]!;
    assert.deepEqual(checkCarried(payload, G, stranger), {
      ok: false,
      reason: 'the event is not signed by the trx sender',
    });
    const edited = { ...payload, content: 'changed' };
    assert.equal(checkCarried(edited, G, rum[0]!).ok, false);
    assert.equal(checkCarried(payload, 'another-group', rum[0]!).ok, false);
    const e = carriedEvent(payload)!;
    const badSig = { ...payload, nostr: { ...e, sig: 'ab'.repeat(64) } };
    assert.deepEqual(checkCarried(badSig, G, rum[0]!), {
      ok: false,
      reason: 'the event signature does not verify',
    });
    assert.equal(verifyEvent({ ...e, content: 'x' }), false);
  });

  it('an event relayed from Nostr is served under its own author when its origin says so', () => {
    const e = ev(9, 'from nostr', [['h', G]]);
    const r = fromNostr(e, none);
    assert.ok(r.ok);
    // The trx is signed by the gateway-held key of the Nostr author: not the event's pubkey.
    assert.ok(checkCarried(r.payload, G, rum[0]!).ok);
    const noOrigin = { ...r.payload, origin: undefined };
    assert.equal(checkCarried(noOrigin, G, rum[0]!).ok, false);
  });
});

describe('a post made on a node', () => {
  let node: RumNode;
  before(async () => {
    ({ node } = await openTempNode());
  });
  after(async () => {
    await node.stop();
  });

  it("carries an event with the author's pubkey and a valid signature (public groups)", async () => {
    const { groupId } = await node.createGroup({
      groupName: 'signed',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    const trxId = await node.postContent(groupId, { type: 'Note', content: 'by me' });
    await node.group(groupId).produce();
    const row = node.store.getContent(groupId, trxId)!;
    const payload = JSON.parse(Buffer.from(row.data!).toString('utf8'));
    const e = carriedEvent(payload)!;
    assert.equal(e.pubkey, nostrPubkeyOf(node.group(groupId).userPubkey));
    assert.equal(e.content, 'by me');
    assert.deepEqual(e.tags, [['h', groupId]]);
    assert.ok(ntVerify({ ...e }));
    assert.ok(checkCarried(payload, groupId, row.senderPubkey).ok);

    // A reply to it references the author-signed event.
    const reply = await node.postContent(groupId, {
      type: 'Note',
      content: 'reply',
      inReplyTo: { type: 'Note', id: trxId },
    });
    await node.group(groupId).produce();
    const rp = JSON.parse(
      Buffer.from(node.store.getContent(groupId, reply)!.data!).toString('utf8'),
    );
    assert.deepEqual(carriedEvent(rp)!.tags[1], ['e', e.id, '', 'root', e.pubkey]);
  });

  it('a private group post carries none', async () => {
    const { groupId } = await node.createGroup({
      groupName: 'private',
      consensusType: 'poa',
      encryptionType: 'private',
      appKey: 'group_bbs',
    });
    const trxId = await node.postContent(groupId, { type: 'Note', content: 'secret' });
    await node.group(groupId).produce();
    const row = node.store.getContent(groupId, trxId)!;
    assert.equal(carriedEvent(JSON.parse(Buffer.from(row.data!).toString('utf8'))), null);
  });
});
