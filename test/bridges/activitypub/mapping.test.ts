// The RUM ⇄ ActivityStreams mapping of the ActivityPub bridge, with real @fedify/vocab objects:
// each RUM post, reply, like, delete and edit as the Note/Article and activity the gateway serves
// and sends (addressing, audience, the link back to the chain, attachments with alt text, tags),
// the group's Announce in both forms, which items the group boosts; incoming Mastodon-style JSON
// parsed by Fedify and mapped to RUM payloads (sanitized HTML, bounded sizes); round trips
// RUM → AP → JSON-LD → AP → RUM; and every RUM payload produced passes the chain's checkPostPayload.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Announce,
  Article,
  Create,
  Delete,
  Dislike,
  Document,
  Hashtag,
  Image,
  Like,
  Link,
  Mention,
  Note,
  Object as ASObject,
  PUBLIC_COLLECTION,
  Tombstone,
  Update,
} from '@fedify/vocab';
import { Temporal } from '@js-temporal/polyfill';
import {
  ARTICLE_MIN_CHARS,
  chainRefUrl,
  findChainRef,
  fromApAnnounce,
  fromApDelete,
  fromApLike,
  fromApNote,
  fromApUndo,
  fromApUpdate,
  instantOf,
  isPublicAddressed,
  LIMITS,
  normalizePublicAddressing,
  type OutCtx,
  parseChainRef,
  rumMedia,
  shouldAnnounce,
  toAnnounce,
  toAnnounceOfActivity,
  toApActivity,
  toApObject,
  toTombstone,
} from '../../../bridges/activitypub/mapping.ts';
import {
  htmlToText,
  looksLikeHtml,
  plainTextToHtml,
  sanitizeContent,
} from '../../../bridges/activitypub/sanitize.ts';
import { ApUrls } from '../../../bridges/activitypub/urls.ts';
import type { CommittedItem } from '../../../bridges/port.ts';
import { checkPostPayload, goJsonMarshal, type Json } from '../../../src/chain/content.ts';

const ORIGIN = 'https://rum.example';
const urls = new ApUrls(ORIGIN);
const HANDLE = 'ourforum';
const GROUP_ID = '3bb7a3be-d145-44af-94cf-e64b992ff8f0';
const PUBKEY = Buffer.from(`02${'ab'.repeat(32)}`, 'hex').toString('base64url');
const TS = '1714564800123456789'; // 2024-05-01T12:00:00.123456789Z
const PARENT = '11111111-1111-4111-8111-111111111111';
const FROM_AP = '22222222-2222-4222-8222-222222222222';
const BOB_STATUS = new URL('https://m.example/users/bob/statuses/1');
const BOB = new URL('https://m.example/users/bob');

let seq = 0;
function trxId(): string {
  seq++;
  return `aaaaaaaa-0000-4000-8000-${seq.toString().padStart(12, '0')}`;
}

function item(object: Record<string, unknown> | null, over: Partial<CommittedItem> = {}) {
  return {
    groupId: GROUP_ID,
    trxId: trxId(),
    blockId: 42,
    position: 0,
    senderPubkey: PUBKEY,
    timestamp: TS,
    object,
    type: typeof object?.type === 'string' ? object.type : null,
    inReplyTo: null,
    deleted: false,
    origin: null,
    ...over,
  } satisfies CommittedItem;
}

const ctx: OutCtx = {
  urls,
  handle: HANDLE,
  replyTarget: (trx) => (trx === PARENT ? urls.post(PARENT) : trx === FROM_AP ? BOB_STATUS : null),
};

/** The trx a URL stands for: our post URLs, and Bob's status bridged as FROM_AP. */
const resolveTrx = (u: URL): string | null =>
  u.href === BOB_STATUS.href ? FROM_AP : urls.trxOf(u);

const bob = {
  id: BOB,
  name: 'Bob',
  url: new URL('https://m.example/@bob'),
  preferredUsername: 'bob',
};

/** Passes the chain's payload check and is JSON as the chain stores it. */
function assertRumPayload(payload: Record<string, unknown> | null): Record<string, unknown> {
  assert.ok(payload);
  checkPostPayload(payload);
  goJsonMarshal(payload as Json);
  assert.deepEqual(JSON.parse(JSON.stringify(payload)), payload);
  return payload;
}

async function viaJsonLd<T extends ASObject>(
  obj: ASObject,
  cls: { fromJsonLd(j: unknown): Promise<T> },
) {
  const json = await obj.toJsonLd({ format: 'compact' });
  return cls.fromJsonLd(JSON.parse(JSON.stringify(json)));
}

describe('sanitizer', () => {
  it('strips scripts, styles, event handlers and javascript: links', () => {
    const out = sanitizeContent(
      '<p onclick="steal()" style="color:red">hi<script>alert(1)</script><style>p{}</style>' +
        '<img src="x" onerror="alert(2)"><a href="javascript:alert(3)">js</a>' +
        '<a href="JaVaScRiPt&colon;alert(4)">js2</a><a href="//evil.example/x">rel</a>' +
        '<span class="evil" style="x">s</span><iframe src="https://evil.example">f</iframe></p>',
    );
    for (const bad of [
      'script',
      'alert',
      'style',
      'onclick',
      'onerror',
      'img',
      'javascript',
      'evil',
      'iframe',
    ]) {
      assert.ok(!out.toLowerCase().includes(bad), `${bad} in ${out}`);
    }
    assert.equal(
      out,
      '<p>hi<a rel="nofollow noopener">js</a><a rel="nofollow noopener">js2</a><a rel="nofollow noopener">rel</a><span>s</span></p>',
    );
  });

  it("keeps Mastodon's mention and hashtag markup and links, with rel nofollow noopener", () => {
    const mention =
      '<span class="h-card" translate="no"><a href="https://m.example/@bob" class="u-url mention">@<span>bob</span></a></span>';
    const out = sanitizeContent(
      `<p>${mention} <a href="https://m.example/tags/rum" class="mention hashtag" rel="tag">#<span>rum</span></a> <a href="https://x.example/a?b=1&amp;c=2" target="_blank" rel="noreferrer">link</a></p>`,
    );
    assert.equal(
      out,
      '<p><span class="h-card"><a href="https://m.example/@bob" class="u-url mention" rel="nofollow noopener">@<span>bob</span></a></span> ' +
        '<a href="https://m.example/tags/rum" class="mention hashtag" rel="tag nofollow noopener">#<span>rum</span></a> ' +
        '<a href="https://x.example/a?b=1&amp;c=2" rel="nofollow noopener">link</a></p>',
    );
  });

  it('keeps the allowed tags and turns headings into paragraphs', () => {
    const html =
      '<p><strong>a</strong><em>b</em><b>c</b><i>d</i><u>e</u><s>f</s><code>g</code><br></p><pre>h</pre><blockquote>i</blockquote><ul><li>j</li></ul><ol><li>k</li></ol>';
    assert.equal(sanitizeContent(html), html.replace('<br>', '<br />'));
    assert.equal(sanitizeContent('<h2>Title</h2>'), '<p>Title</p>');
  });

  it('turns plain text into escaped paragraphs, line breaks and links', () => {
    assert.equal(
      plainTextToHtml("Hello <b> & 'you'\nsee https://ex.example/a?b=1&c=2.\n\n\nNext"),
      '<p>Hello &lt;b&gt; &amp; &#39;you&#39;<br />see <a href="https://ex.example/a?b=1&amp;c=2" rel="nofollow noopener">https://ex.example/a?b=1&amp;c=2</a>.</p><p>Next</p>',
    );
    assert.equal(plainTextToHtml('\n\n'), '');
    assert.equal(looksLikeHtml('1 < 2 and 3 > 2'), false);
    assert.equal(looksLikeHtml('<p>x</p>'), true);
    assert.equal(htmlToText('<p>a &amp; <b>b</b></p>'), 'a &amp; b');
  });
});

describe('outbound: RUM post → Note/Article', () => {
  it('a plain-text Note: id, author, HTML content, original time, addressing, audience, links', async () => {
    const it0 = item({ type: 'Note', content: 'Hello <world>\nsecond line\n\nnew #paragraph' });
    const note = toApObject(it0, ctx);
    assert.ok(note instanceof Note);
    assert.equal(note.id?.href, `${ORIGIN}/ap/posts/${it0.trxId}`);
    assert.equal(note.attributionId?.href, urls.author(PUBKEY).href);
    assert.equal(note.content, '<p>Hello &lt;world&gt;<br />second line</p><p>new #paragraph</p>');
    assert.equal(note.published?.toString(), '2024-05-01T12:00:00.123456789Z');
    assert.equal(note.published?.epochNanoseconds, BigInt(TS));
    assert.deepEqual(note.toIds.map(String), [PUBLIC_COLLECTION.href]);
    assert.deepEqual(note.ccIds.map(String), [
      `${ORIGIN}/ap/actors/g.ourforum/followers`,
      `${ORIGIN}/ap/actors/g.ourforum`,
    ]);
    assert.equal(note.audienceId?.href, `${ORIGIN}/ap/actors/g.ourforum`);
    assert.equal(String(note.urls[0]), `${ORIGIN}/p/${it0.trxId}`);
    assert.equal(note.replyTargetId, null);
    assert.equal(note.sensitive, false);
    const tags = [];
    for await (const t of note.getTags()) tags.push(t);
    assert.equal(tags.length, 1);
    assert.ok(tags[0] instanceof Hashtag);
    assert.equal(String(tags[0].name), '#paragraph');
  });

  it('links back to its origin on the chain (group, trx id, block height)', async () => {
    const it0 = item({ type: 'Note', content: 'x' }, { blockId: 1234 });
    const note = toApObject(it0, ctx)!;
    const ref = { groupId: GROUP_ID, trxId: it0.trxId, blockId: 1234 };
    assert.deepEqual(findChainRef(note), ref);
    const link = note.urls[1];
    assert.ok(link instanceof Link);
    assert.equal(link.rel, 'via');
    assert.equal(String(link.name), `rum:trx ${GROUP_ID}/${it0.trxId}@1234`);
    assert.equal(link.href?.href, `rum://${GROUP_ID}/${it0.trxId}?block=1234`);
    // Mastodon takes the first url: the post's page.
    const json = (await note.toJsonLd({ format: 'compact' })) as { url: unknown[] };
    assert.equal(json.url[0], `${ORIGIN}/p/${it0.trxId}`);
    assert.deepEqual(findChainRef(await viaJsonLd(note, Note)), ref);
    assert.deepEqual(parseChainRef(chainRefUrl(ref)), ref);
    assert.equal(parseChainRef('https://rum.example/x'), null);
    assert.equal(parseChainRef('rum://g/t'), null);
  });

  it('HTML content is sanitized, not escaped', () => {
    const note = toApObject(
      item({
        type: 'Note',
        content: '<p>Hi <a href="javascript:x()">there</a><script>x()</script></p>',
      }),
      ctx,
    )!;
    assert.equal(note.content, '<p>Hi <a rel="nofollow noopener">there</a></p>');
    const md = toApObject(
      item({ type: 'Note', content: '<b>not html</b>', mediaType: 'text/markdown' }),
      ctx,
    )!;
    assert.equal(md.content, '<p>&lt;b&gt;not html&lt;/b&gt;</p>');
  });

  it('replies keep inReplyTo: our post, or the original AP id of a bridged post', () => {
    const toOurs = toApObject(
      item({ type: 'Note', content: 'r', inReplyTo: { type: 'Note', id: PARENT } }),
      ctx,
    )!;
    assert.equal(toOurs.replyTargetId?.href, urls.post(PARENT).href);
    const toAp = toApObject(
      item({ type: 'Note', content: 'r', inReplyTo: { type: 'Note', id: FROM_AP } }),
      ctx,
    )!;
    assert.equal(toAp.replyTargetId?.href, BOB_STATUS.href);
    const legacy = toApObject(
      item({ type: 'Note', content: 'r', inreplyto: { trxid: PARENT } }),
      ctx,
    )!;
    assert.equal(legacy.replyTargetId?.href, urls.post(PARENT).href);
    const unknown = toApObject(
      item({ type: 'Note', content: 'r', inReplyTo: { type: 'Note', id: 'nope' } }),
      ctx,
    )!;
    assert.equal(unknown.replyTargetId, null);
  });

  it('Article for a RUM Article or a long titled post; a short titled Note shows its title', () => {
    const art = toApObject(item({ type: 'Article', name: 'Title', content: 'Body' }), ctx);
    assert.ok(art instanceof Article);
    assert.equal(String(art.name), 'Title');
    assert.equal(art.content, '<p>Body</p>');
    const long = toApObject(
      item({ type: 'Note', name: 'Long', content: 'x'.repeat(ARTICLE_MIN_CHARS + 1) }),
      ctx,
    );
    assert.ok(long instanceof Article);
    const short = toApObject(item({ type: 'Note', name: 'A <title>', content: 'short' }), ctx);
    assert.ok(short instanceof Note && !(short instanceof Article));
    assert.equal(short.content, '<p><strong>A &lt;title&gt;</strong></p><p>short</p>');
    const untitled = toApObject(item({ type: 'Article', content: 'no title' }), ctx);
    assert.ok(untitled instanceof Note);
  });

  it('images become attachments with their alt text; inline images through inlineMedia', async () => {
    const img = toApObject(
      item({
        type: 'Image',
        url: 'https://cdn.example/a.png',
        mediaType: 'image/png',
        name: 'a cat',
      }),
      ctx,
    )!;
    const atts = [];
    for await (const a of img.getAttachments()) atts.push(a);
    assert.equal(atts.length, 1);
    assert.ok(atts[0] instanceof Image);
    assert.equal(String(atts[0].url), 'https://cdn.example/a.png');
    assert.equal(atts[0].mediaType, 'image/png');
    assert.equal(String(atts[0].name), 'a cat');
    assert.equal(img.content, '');

    const post = {
      type: 'Note',
      content: 'two pictures',
      image: [
        { type: 'Image', mediaType: 'image/jpeg', content: 'AAAA', name: 'inline one' },
        { type: 'Image', url: 'https://cdn.example/b.webp', mediaType: 'image/webp', name: 'b' },
        { type: 'Image', url: 'javascript:alert(1)' },
      ],
    };
    assert.deepEqual(
      rumMedia(post).map((m) => [m.url, m.data, m.name]),
      [
        [null, 'AAAA', 'inline one'],
        ['https://cdn.example/b.webp', null, 'b'],
      ],
    );
    const it1 = item(post);
    const without = toApObject(it1, ctx)!;
    assert.deepEqual(without.attachmentIds, []);
    const names = [];
    for await (const a of without.getAttachments()) names.push(String((a as Image).name));
    assert.deepEqual(names, ['b']);
    const withHook = toApObject(it1, {
      ...ctx,
      inlineMedia: (trx, i) => new URL(`${ORIGIN}/media/${trx}/${i}`),
    })!;
    const urlsOf = [];
    for await (const a of withHook.getAttachments()) urlsOf.push(String((a as Image).url));
    assert.deepEqual(urlsOf, [`${ORIGIN}/media/${it1.trxId}/0`, 'https://cdn.example/b.webp']);
  });

  it('mentions are tagged and addressed; hashtags tagged; content warnings kept', async () => {
    const note = toApObject(
      item({
        type: 'Note',
        content: 'hi @bob #Rum #rum',
        summary: 'spoiler',
        tag: [
          { type: 'Mention', href: BOB.href, name: '@bob@m.example' },
          { type: 'Hashtag', name: 'rum' },
          { type: 'Mention', href: 'javascript:x' },
        ],
      }),
      ctx,
    )!;
    const tags = [];
    for await (const t of note.getTags()) tags.push(t);
    assert.equal(tags.length, 2);
    assert.ok(tags[0] instanceof Mention);
    assert.equal(tags[0].href?.href, BOB.href);
    assert.ok(tags[1] instanceof Hashtag);
    assert.equal(String(tags[1].name), '#rum');
    assert.ok(note.ccIds.some((u) => u.href === BOB.href));
    assert.equal(String(note.summary), 'spoiler');
    assert.equal(note.sensitive, true);
  });

  it('null for unreadable items and for what is not a post', () => {
    assert.equal(toApObject(item(null), ctx), null);
    assert.equal(
      toApObject(item({ type: 'Like', object: { type: 'Note', id: PARENT } }), ctx),
      null,
    );
    assert.equal(toApObject(item({ content: 'no type' }), ctx), null);
    const wrapped = toApObject(
      item({ type: 'Create', object: { type: 'Note', content: 'w' } }),
      ctx,
    );
    assert.equal(wrapped?.content, '<p>w</p>');
  });

  it('an edited post keeps its id and published time, with the new content and updated', () => {
    const original = item({ type: 'Note', content: 'before' });
    const edit = item(
      { type: 'Update', object: { type: 'Note', id: original.trxId, content: 'after' } },
      { timestamp: '1714564900000000000' },
    );
    const note = toApObject(original, ctx, edit)!;
    assert.equal(note.id?.href, urls.post(original.trxId).href);
    assert.equal(note.content, '<p>after</p>');
    assert.equal(note.published?.epochNanoseconds, BigInt(TS));
    assert.equal(note.updated?.epochNanoseconds, 1714564900000000000n);
  });

  it('a Tombstone for a deleted post', () => {
    const t = toTombstone(PARENT, ctx, TS);
    assert.ok(t instanceof Tombstone);
    assert.equal(t.id?.href, urls.post(PARENT).href);
    assert.equal(t.deleted?.epochNanoseconds, BigInt(TS));
  });
});

describe('outbound: RUM item → activity', () => {
  it('a post → Create of its Note, with the same addressing and time', async () => {
    const it0 = item({ type: 'Note', content: 'hello' });
    const create = toApActivity(it0, ctx);
    assert.ok(create instanceof Create);
    assert.equal(create.id?.href, urls.create(it0.trxId).href);
    assert.equal(create.actorId?.href, urls.author(PUBKEY).href);
    assert.deepEqual(create.toIds.map(String), [PUBLIC_COLLECTION.href]);
    assert.deepEqual(create.ccIds.map(String), [
      urls.followers('g.ourforum').href,
      urls.group(HANDLE).href,
    ]);
    assert.equal(create.audienceId?.href, urls.group(HANDLE).href);
    assert.equal(create.published?.epochNanoseconds, BigInt(TS));
    const note = await create.getObject();
    assert.ok(note instanceof Note);
    assert.equal(note.id?.href, urls.post(it0.trxId).href);
  });

  it('a like → Like of the target, null when the target is not known', () => {
    const it0 = item({ type: 'Like', object: { type: 'Note', id: FROM_AP } });
    const like = toApActivity(it0, ctx);
    assert.ok(like instanceof Like);
    assert.equal(like.id?.href, urls.post(it0.trxId).href);
    assert.equal(like.actorId?.href, urls.author(PUBKEY).href);
    assert.equal(like.objectId?.href, BOB_STATUS.href);
    assert.equal(
      toApActivity(item({ type: 'Like', object: { type: 'Note', id: 'zzz' } }), ctx),
      null,
    );
  });

  it('a delete → Delete with a Tombstone of the post', async () => {
    const it0 = item({ type: 'Delete', object: { type: 'Note', id: PARENT } });
    const del = toApActivity(it0, ctx);
    assert.ok(del instanceof Delete);
    assert.equal(del.id?.href, urls.post(it0.trxId).href);
    const tomb = await del.getObject();
    assert.ok(tomb instanceof Tombstone);
    assert.equal(tomb.id?.href, urls.post(PARENT).href);
    const back = await viaJsonLd(del, Delete);
    assert.equal((await back.getObject())?.id?.href, urls.post(PARENT).href);
  });

  it('an edit → Update of the Note at the edited post id, with the new content', async () => {
    const it0 = item({
      type: 'Update',
      object: {
        type: 'Note',
        id: PARENT,
        content: 'edited',
        inReplyTo: { type: 'Note', id: FROM_AP },
      },
    });
    const upd = toApActivity(it0, ctx);
    assert.ok(upd instanceof Update);
    assert.equal(upd.id?.href, urls.post(it0.trxId).href);
    const note = await upd.getObject();
    assert.ok(note instanceof Note);
    assert.equal(note.id?.href, urls.post(PARENT).href);
    assert.equal(note.content, '<p>edited</p>');
    assert.equal(note.replyTargetId?.href, BOB_STATUS.href);
    assert.equal(note.updated?.epochNanoseconds, BigInt(TS));
    assert.equal(
      toApActivity(item({ type: 'Update', object: { type: 'Note', content: 'no id' } }), ctx),
      null,
    );
  });

  it('null for what has no ActivityPub form', () => {
    assert.equal(toApActivity(item(null), ctx), null);
    assert.equal(
      toApActivity(item({ type: 'Announce', object: { type: 'Note', id: PARENT } }), ctx),
      null,
    );
    assert.equal(
      toApActivity(item({ type: 'Undo', object: { type: 'Like', id: PARENT } }), ctx),
      null,
    );
    assert.equal(toApActivity(item({ type: 'Delete', object: { type: 'Note' } }), ctx), null);
  });
});

describe('outbound: the group boosts', () => {
  it('Announce of the Note by id, as Mastodon shows it', async () => {
    const it0 = item({ type: 'Note', content: 'top' });
    const ann = toAnnounce(it0, ctx);
    assert.ok(ann instanceof Announce);
    assert.equal(ann.id?.href, urls.announce(HANDLE, it0.trxId).href);
    assert.equal(ann.actorId?.href, urls.group(HANDLE).href);
    assert.equal(ann.objectId?.href, urls.post(it0.trxId).href);
    assert.deepEqual(ann.toIds.map(String), [PUBLIC_COLLECTION.href]);
    assert.deepEqual(ann.ccIds.map(String), [
      urls.followers('g.ourforum').href,
      urls.author(PUBKEY).href,
    ]);
    const json = (await ann.toJsonLd({ format: 'compact' })) as Record<string, unknown>;
    assert.equal(json.object, urls.post(it0.trxId).href);
    assert.equal(
      toAnnounce(item({ type: 'Like', object: { type: 'Note', id: PARENT } }), ctx),
      null,
    );
  });

  it('Announce of a post that came from ActivityPub names its original id and author', () => {
    const it0 = item(
      { type: 'Note', content: 'x', attributedTo: { type: 'Person', id: BOB.href } },
      { trxId: FROM_AP, origin: { network: 'activitypub', externalId: BOB_STATUS.href } },
    );
    const ann = toAnnounce(it0, ctx)!;
    assert.equal(ann.objectId?.href, BOB_STATUS.href);
    assert.equal(ann.ccIds[1]?.href, BOB.href);
    assert.equal(toAnnounceOfActivity(it0, ctx), null, 'its activity is not ours to relay');
  });

  it('the FEP-1b12 form: Announce of the embedded Create, under its own id', async () => {
    const it0 = item({ type: 'Note', content: 'top' });
    const ann = toAnnounceOfActivity(it0, ctx);
    assert.ok(ann instanceof Announce);
    assert.equal(ann.id?.href, urls.announceActivity(HANDLE, it0.trxId).href);
    assert.notEqual(ann.id?.href, urls.announce(HANDLE, it0.trxId).href, 'not the boost');
    assert.equal(ann.audienceId?.href, urls.group(HANDLE).href);
    const back = await viaJsonLd(ann, Announce);
    const create = await back.getObject();
    assert.ok(create instanceof Create);
    assert.equal(create.id?.href, urls.create(it0.trxId).href);
    const note = await create.getObject();
    assert.ok(note instanceof Note);
    assert.equal(note.content, '<p>top</p>');
  });

  it('the FEP-1b12 form of a Like and a Delete: Announce of the activity itself', async () => {
    const like = toAnnounceOfActivity(
      item({ type: 'Like', object: { type: 'Note', id: PARENT } }),
      ctx,
    );
    assert.ok(like instanceof Announce);
    const liked = await (await viaJsonLd(like, Announce)).getObject();
    assert.equal(liked?.constructor.name, 'Like');
  });

  it('shouldAnnounce: public top-level posts by default, replies with `all`, never what is not public', () => {
    const top = item({ type: 'Note', content: 't' });
    const reply = item(
      { type: 'Note', content: 'r', inReplyTo: { type: 'Note', id: PARENT } },
      { inReplyTo: PARENT },
    );
    const apReplyUnresolved = item({
      type: 'Note',
      content: 'r',
      origin: {
        network: 'activitypub',
        id: 'https://m.example/s/2',
        public: true,
        inReplyTo: 'https://x.example/1',
      },
    });
    const apFollowersOnly = item({
      type: 'Note',
      content: 'p',
      origin: { network: 'activitypub', id: 'https://m.example/s/3', public: false },
    });
    const addressedPrivately = item({
      type: 'Note',
      content: 'p',
      to: ['https://m.example/users/bob'],
    });
    const addressedPublic = item({ type: 'Note', content: 'p', to: ['as:Public'] });
    const image = item({ type: 'Image', url: 'https://cdn.example/a.png' });
    const like = item({ type: 'Like', object: { type: 'Note', id: PARENT } });
    const deleted = item({ type: 'Note', content: 'd' }, { deleted: true });
    const unreadable = item(null);
    const table: [CommittedItem, 'top-level' | 'all', boolean, boolean][] = [
      [top, 'top-level', true, true],
      [top, 'all', true, true],
      [top, 'top-level', false, false],
      [top, 'all', false, false],
      [reply, 'top-level', true, false],
      [reply, 'all', true, true],
      [reply, 'all', false, false],
      [apReplyUnresolved, 'top-level', true, false],
      [apReplyUnresolved, 'all', true, true],
      [apFollowersOnly, 'all', true, false],
      [addressedPrivately, 'all', true, false],
      [addressedPublic, 'top-level', true, true],
      [image, 'top-level', true, true],
      [like, 'all', true, false],
      [deleted, 'all', true, false],
      [unreadable, 'all', true, false],
    ];
    for (const [it0, setting, groupPublic, expected] of table) {
      assert.equal(
        shouldAnnounce(it0, setting, groupPublic),
        expected,
        `${JSON.stringify(it0.object)} ${setting} ${groupPublic}`,
      );
    }
  });
});

describe('round trips RUM → AP → JSON-LD → AP → RUM', () => {
  it('keeps content, reply target, attachments with alt text, tags and timestamps', async () => {
    const it0 = item({
      type: 'Note',
      content: 'A reply <with> markup-looking text\nand a link https://ex.example/x',
      inReplyTo: { type: 'Note', id: PARENT },
      image: [
        {
          type: 'Image',
          url: 'https://cdn.example/p.png',
          mediaType: 'image/png',
          name: 'alt: a dog',
        },
      ],
      tag: [{ type: 'Mention', href: BOB.href, name: '@bob@m.example' }],
    });
    const create = toApActivity(it0, ctx)!;
    const json = JSON.parse(JSON.stringify(await create.toJsonLd({ format: 'compact' })));
    const back = await ASObject.fromJsonLd(json);
    assert.ok(back instanceof Create);
    const note = await back.getObject();
    assert.ok(note instanceof Note);
    const rum = assertRumPayload(
      await fromApNote(note, { id: urls.author(PUBKEY), name: 'Alice' }, resolveTrx),
    );
    const sent = toApObject(it0, ctx)!;
    assert.equal(rum.content, sent.content);
    assert.equal(
      rum.content,
      '<p>A reply &lt;with&gt; markup-looking text<br />and a link <a href="https://ex.example/x" rel="nofollow noopener">https://ex.example/x</a></p>',
    );
    assert.deepEqual(rum.inReplyTo, { type: 'Note', id: PARENT });
    assert.deepEqual(rum.attachment, [
      {
        type: 'Image',
        url: 'https://cdn.example/p.png',
        mediaType: 'image/png',
        name: 'alt: a dog',
      },
    ]);
    assert.deepEqual(rum.tag, [{ type: 'Mention', href: BOB.href, name: '@bob@m.example' }]);
    assert.equal(rum.published, '2024-05-01T12:00:00.123456789Z');
    assert.equal(Temporal.Instant.from(rum.published as string).epochNanoseconds, BigInt(TS));
    assert.equal(rum.url, urls.postPage(it0.trxId).href);
    assert.deepEqual(rum.origin, {
      network: 'activitypub',
      id: urls.post(it0.trxId).href,
      public: true,
    });
    assert.deepEqual(rum.attributedTo, {
      type: 'Person',
      id: urls.author(PUBKEY).href,
      name: 'Alice',
    });
    // …and once more out: the same Note.
    const again = toApObject(item(rum), ctx)!;
    assert.equal(again.content, sent.content);
    assert.equal(again.replyTargetId?.href, urls.post(PARENT).href);
  });

  it('keeps an Article with its title', async () => {
    const it0 = item({ type: 'Article', name: 'On chains', content: '<p>Long <em>form</em></p>' });
    const art = await viaJsonLd(toApObject(it0, ctx)!, Article);
    const rum = assertRumPayload(await fromApNote(art, bob, resolveTrx));
    assert.equal(rum.type, 'Article');
    assert.equal(rum.name, 'On chains');
    assert.equal(rum.content, '<p>Long <em>form</em></p>');
  });

  it('an edit comes back as an Update of the same trx', async () => {
    const it0 = item({ type: 'Update', object: { type: 'Note', id: PARENT, content: 'v2' } });
    const upd = await viaJsonLd(toApActivity(it0, ctx)!, Update);
    const note = (await upd.getObject()) as Note;
    const rum = assertRumPayload(await fromApUpdate(note, bob, resolveTrx, PARENT));
    assert.equal(rum.type, 'Update');
    assert.equal((rum.object as Record<string, unknown>).id, PARENT);
    assert.equal((rum.object as Record<string, unknown>).content, '<p>v2</p>');
  });
});

/** A Create of a reply as Mastodon 4.x sends it. */
function mastodonCreate(note: Record<string, unknown>) {
  return {
    '@context': [
      'https://www.w3.org/ns/activitystreams',
      {
        ostatus: 'http://ostatus.org#',
        atomUri: 'ostatus:atomUri',
        inReplyToAtomUri: 'ostatus:inReplyToAtomUri',
        conversation: 'ostatus:conversation',
        sensitive: 'as:sensitive',
        toot: 'http://joinmastodon.org/ns#',
        votersCount: 'toot:votersCount',
        blurhash: 'toot:blurhash',
        focalPoint: { '@container': '@list', '@id': 'toot:focalPoint' },
        Hashtag: 'as:Hashtag',
      },
    ],
    id: 'https://m.example/users/bob/statuses/2/activity',
    type: 'Create',
    actor: BOB.href,
    published: '2024-05-01T12:05:00Z',
    to: ['https://www.w3.org/ns/activitystreams#Public'],
    cc: ['https://m.example/users/bob/followers', urls.group(HANDLE).href],
    object: {
      id: 'https://m.example/users/bob/statuses/2',
      type: 'Note',
      summary: null,
      inReplyTo: null,
      published: '2024-05-01T12:05:00Z',
      url: 'https://m.example/@bob/2',
      attributedTo: BOB.href,
      to: ['https://www.w3.org/ns/activitystreams#Public'],
      cc: ['https://m.example/users/bob/followers', urls.group(HANDLE).href],
      sensitive: false,
      atomUri: 'https://m.example/users/bob/statuses/2',
      conversation: 'tag:m.example,2024-05-01:objectId=1:objectType=Conversation',
      content: '<p>x</p>',
      contentMap: { en: '<p>x</p>' },
      attachment: [],
      tag: [],
      replies: {
        id: 'https://m.example/users/bob/statuses/2/replies',
        type: 'Collection',
        first: {
          type: 'CollectionPage',
          next: 'https://m.example/users/bob/statuses/2/replies?page=true',
          partOf: 'https://m.example/users/bob/statuses/2/replies',
          items: [],
        },
      },
      ...note,
    },
  };
}

const MENTION_HTML =
  '<span class="h-card" translate="no"><a href="https://rum.example/@ourforum" class="u-url mention">@<span>ourforum</span></a></span>';

describe('inbound: Mastodon-style JSON → RUM payloads', () => {
  it('a reply with a content warning, mention, hashtag and an image with blurhash', async () => {
    const json = mastodonCreate({
      summary: 'cw: spoilers',
      sensitive: true,
      inReplyTo: urls.post(PARENT).href,
      content: `<p>${MENTION_HTML} hello <a href="https://m.example/tags/rum" class="mention hashtag" rel="tag">#<span>rum</span></a><script>alert(1)</script></p>`,
      contentMap: { en: `<p>${MENTION_HTML} hello</p>` },
      attachment: [
        {
          type: 'Document',
          mediaType: 'image/jpeg',
          url: 'https://files.m.example/media/1.jpg',
          name: 'A red bicycle',
          blurhash: 'UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH',
          focalPoint: [0, 0],
          width: 1200,
          height: 800,
        },
      ],
      tag: [
        { type: 'Mention', href: urls.group(HANDLE).href, name: '@ourforum@rum.example' },
        { type: 'Hashtag', href: 'https://m.example/tags/rum', name: '#rum' },
        {
          type: 'Emoji',
          id: 'https://m.example/emojis/1',
          name: ':blob:',
          icon: { type: 'Image', url: 'https://m.example/e.png' },
        },
      ],
    });
    const create = await ASObject.fromJsonLd(json);
    assert.ok(create instanceof Create);
    const note = await create.getObject();
    assert.ok(note instanceof Note);
    assert.ok(isPublicAddressed(note));
    const rum = assertRumPayload(await fromApNote(note, bob, resolveTrx));
    assert.deepEqual(rum, {
      type: 'Note',
      content:
        '<p><span class="h-card"><a href="https://rum.example/@ourforum" class="u-url mention" rel="nofollow noopener">@<span>ourforum</span></a></span> hello <a href="https://m.example/tags/rum" class="mention hashtag" rel="tag nofollow noopener">#<span>rum</span></a></p>',
      summary: 'cw: spoilers',
      sensitive: true,
      inReplyTo: { type: 'Note', id: PARENT },
      attributedTo: {
        type: 'Person',
        id: BOB.href,
        name: 'Bob',
        preferredUsername: 'bob',
        url: 'https://m.example/@bob',
      },
      url: 'https://m.example/@bob/2',
      published: '2024-05-01T12:05:00Z',
      attachment: [
        {
          type: 'Image',
          url: 'https://files.m.example/media/1.jpg',
          mediaType: 'image/jpeg',
          name: 'A red bicycle',
          width: 1200,
          height: 800,
        },
      ],
      tag: [
        { type: 'Mention', href: urls.group(HANDLE).href, name: '@ourforum@rum.example' },
        { type: 'Hashtag', href: 'https://m.example/tags/rum', name: '#rum' },
      ],
      origin: {
        network: 'activitypub',
        id: 'https://m.example/users/bob/statuses/2',
        public: true,
      },
    });
  });

  it('a reply to a bridged AP post resolves to its trx; to an unknown object it is kept in origin', async () => {
    const toBridged = (await ASObject.fromJsonLd(
      mastodonCreate({ inReplyTo: BOB_STATUS.href }),
    )) as Create;
    const a = assertRumPayload(
      await fromApNote((await toBridged.getObject()) as Note, bob, resolveTrx),
    );
    assert.deepEqual(a.inReplyTo, { type: 'Note', id: FROM_AP });
    const toUnknown = (await ASObject.fromJsonLd(
      mastodonCreate({ inReplyTo: 'https://other.example/notes/9' }),
    )) as Create;
    const b = assertRumPayload(
      await fromApNote((await toUnknown.getObject()) as Note, bob, resolveTrx),
    );
    assert.equal(b.inReplyTo, undefined);
    assert.deepEqual(b.origin, {
      network: 'activitypub',
      id: 'https://m.example/users/bob/statuses/2',
      public: true,
      inReplyTo: 'https://other.example/notes/9',
    });
  });

  it('content only in contentMap is taken from there', async () => {
    const note = await Note.fromJsonLd({
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: 'https://misskey.example/notes/1',
      type: 'Note',
      attributedTo: 'https://misskey.example/users/1',
      contentMap: { ja: '<p>こんにちは</p>' },
      to: 'as:Public',
    });
    const rum = assertRumPayload(
      await fromApNote(note, { id: new URL('https://misskey.example/users/1') }, resolveTrx),
    );
    assert.equal(rum.content, '<p>こんにちは</p>');
    assert.deepEqual(rum.attributedTo, { type: 'Person', id: 'https://misskey.example/users/1' });
  });

  it('public addressing in every spelling; followers-only and direct are not public', async () => {
    const cases: [unknown, unknown, boolean][] = [
      ['https://www.w3.org/ns/activitystreams#Public', [], true],
      ['as:Public', [], true],
      ['Public', [], true],
      [
        ['https://m.example/users/bob/followers'],
        ['https://www.w3.org/ns/activitystreams#Public'],
        true,
      ],
      [['https://m.example/users/bob/followers'], [], false],
      [[urls.group(HANDLE).href], [], false],
      [['https://m.example/users/Public'], [], false],
    ];
    for (const [to, cc, expected] of cases) {
      const note = await Note.fromJsonLd({
        '@context': 'https://www.w3.org/ns/activitystreams',
        id: 'https://m.example/users/bob/statuses/5',
        type: 'Note',
        content: 'x',
        to,
        cc,
      });
      assert.equal(isPublicAddressed(note), expected, JSON.stringify(to));
      const rum = await fromApNote(note, bob, resolveTrx);
      assert.equal((rum.origin as { public: boolean }).public, expected);
    }
  });

  it('a bare "Public" inside a Create is recognised once the raw JSON is normalised', async () => {
    const raw = mastodonCreate({ to: 'Public', cc: ['https://m.example/users/bob/followers'] });
    raw.to = ['as:Public'];
    const parsedAsIs = (await ASObject.fromJsonLd(raw)) as Create;
    // The Note's "Public" is resolved against the activity's id, not its own.
    assert.equal(isPublicAddressed((await parsedAsIs.getObject()) as Note), false);
    const normalised = normalizePublicAddressing(raw) as typeof raw;
    assert.notEqual(normalised, raw);
    assert.deepEqual(raw.to, ['as:Public'], 'the input is not changed');
    assert.deepEqual(normalised.to, [PUBLIC_COLLECTION.href]);
    assert.equal(normalised.object.to, PUBLIC_COLLECTION.href);
    assert.deepEqual(normalised.object.cc, ['https://m.example/users/bob/followers']);
    const create = (await ASObject.fromJsonLd(normalised)) as Create;
    assert.ok(isPublicAddressed(create));
    assert.ok(isPublicAddressed((await create.getObject()) as Note));
    const untouched = { type: 'Note', to: ['https://m.example/users/Public'] };
    assert.equal(normalizePublicAddressing(untouched), untouched);
  });

  it('nothing is fetched: attachments and tags given only by URL are left out', async () => {
    const note = await Note.fromJsonLd({
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: 'https://m.example/users/bob/statuses/6',
      type: 'Note',
      content: 'x',
      attachment: ['https://127.0.0.1:1/never'],
      tag: ['https://127.0.0.1:1/never-tag'],
    });
    const rum = assertRumPayload(await fromApNote(note, bob, resolveTrx));
    assert.equal(rum.attachment, undefined);
    assert.equal(rum.tag, undefined);
  });

  it('sizes are bounded: content, attachments, tags, names', async () => {
    const note = new Note({
      id: new URL('https://m.example/users/bob/statuses/7'),
      contents: [`<p>${'<b>x</b> '.repeat(40_000)}</p>`],
      name: 'n'.repeat(5_000),
      attachments: Array.from(
        { length: 100 },
        (_, i) =>
          new Image({
            url: new URL(`https://cdn.example/${i}.png`),
            mediaType: 'image/png',
            name: 'a'.repeat(5_000),
          }),
      ),
      tags: Array.from({ length: 200 }, (_, i) => new Hashtag({ name: `#t${i}` })),
    });
    const rum = assertRumPayload(await fromApNote(note, bob, resolveTrx));
    assert.ok((rum.content as string).length <= LIMITS.contentChars);
    assert.ok((rum.content as string).length > LIMITS.contentChars / 2);
    assert.equal((rum.name as string).length, LIMITS.nameChars);
    assert.equal((rum.attachment as unknown[]).length, LIMITS.attachments);
    assert.equal((rum.attachment as { name: string }[])[0]!.name.length, LIMITS.altChars);
    assert.equal((rum.tag as unknown[]).length, LIMITS.tags);
    assert.ok(Buffer.byteLength(goJsonMarshal(rum as Json)) < 300 * 1024);
  });

  it('an object without an id is refused', async () => {
    await assert.rejects(fromApNote(new Note({ content: 'x' }), bob, resolveTrx), TypeError);
  });

  it('Like, Dislike, Announce, Undo, Delete and Update become payloads the chain takes', async () => {
    const like = await Like.fromJsonLd({
      '@context': 'https://www.w3.org/ns/activitystreams',
      id: 'https://m.example/users/bob#likes/1',
      type: 'Like',
      actor: BOB.href,
      object: urls.post(PARENT).href,
    });
    assert.deepEqual(assertRumPayload(fromApLike(like, bob, resolveTrx)), {
      type: 'Like',
      object: { type: 'Note', id: PARENT },
      actor: {
        type: 'Person',
        id: BOB.href,
        name: 'Bob',
        preferredUsername: 'bob',
        url: 'https://m.example/@bob',
      },
      origin: { network: 'activitypub', id: 'https://m.example/users/bob#likes/1' },
    });
    const notOurs = new Like({
      id: new URL('https://m.example/l/2'),
      actor: BOB,
      object: new URL('https://else.example/1'),
    });
    assert.equal(fromApLike(notOurs, bob, resolveTrx), null);
    const dislike = new Dislike({
      id: new URL('https://lemmy.example/d/1'),
      actor: BOB,
      object: BOB_STATUS,
    });
    assert.equal(assertRumPayload(fromApLike(dislike, bob, resolveTrx)).type, 'Dislike');
    assert.deepEqual(
      (fromApLike(dislike, bob, resolveTrx)!.object as Record<string, unknown>).id,
      FROM_AP,
    );

    const ann = new Announce({
      id: new URL('https://m.example/users/bob/statuses/9/activity'),
      actor: BOB,
      object: urls.post(PARENT),
    });
    assert.deepEqual(assertRumPayload(fromApAnnounce(ann, bob, resolveTrx)).object, {
      type: 'Note',
      id: PARENT,
    });
    assert.equal(
      fromApAnnounce(
        new Announce({ actor: BOB, object: new URL('https://x.example/') }),
        bob,
        resolveTrx,
      ),
      null,
    );

    assert.deepEqual(
      assertRumPayload(fromApUndo(PARENT, 'Like', new URL('https://m.example/u/1'))),
      {
        type: 'Undo',
        object: { type: 'Like', id: PARENT },
        origin: { network: 'activitypub', id: 'https://m.example/u/1' },
      },
    );
    assert.deepEqual(assertRumPayload(fromApDelete(FROM_AP)), {
      type: 'Delete',
      object: { type: 'Note', id: FROM_AP },
    });
    assert.deepEqual(
      assertRumPayload(
        fromApDelete(FROM_AP, new URL('https://m.example/users/bob/statuses/1#delete')),
      ).origin,
      { network: 'activitypub', id: 'https://m.example/users/bob/statuses/1#delete' },
    );

    const json = mastodonCreate({
      id: BOB_STATUS.href,
      content: '<p>edited</p>',
      updated: '2024-05-02T00:00:00Z',
    });
    const edited = await Note.fromJsonLd({ '@context': json['@context'], ...json.object });
    const upd = assertRumPayload(await fromApUpdate(edited, bob, resolveTrx, FROM_AP));
    const obj = upd.object as Record<string, unknown>;
    assert.equal(obj.id, FROM_AP);
    assert.equal(obj.type, 'Note');
    assert.equal(obj.content, '<p>edited</p>');
    assert.equal(obj.updated, '2024-05-02T00:00:00Z');
  });

  it('attachments: Document types by media type, only http(s) URLs, Link urls', async () => {
    const note = new Note({
      id: new URL('https://m.example/users/bob/statuses/8'),
      content: '',
      attachments: [
        new Document({
          url: new URL('https://cdn.example/v.mp4'),
          mediaType: 'video/mp4',
          name: 'clip',
        }),
        new Document({ url: new URL('ftp://cdn.example/x.png'), mediaType: 'image/png' }),
        new Image({
          url: new Link({ href: new URL('https://cdn.example/l.gif'), mediaType: 'image/gif' }),
        }),
        new Document({ url: new URL('https://cdn.example/doc.pdf'), mediaType: 'application/pdf' }),
      ],
    });
    const rum = assertRumPayload(await fromApNote(note, bob, resolveTrx));
    assert.deepEqual(rum.attachment, [
      { type: 'Video', url: 'https://cdn.example/v.mp4', mediaType: 'video/mp4', name: 'clip' },
      { type: 'Image', url: 'https://cdn.example/l.gif', mediaType: 'image/gif' },
      { type: 'Document', url: 'https://cdn.example/doc.pdf', mediaType: 'application/pdf' },
    ]);
  });
});

describe('helpers', () => {
  it('instantOf keeps nanoseconds and refuses what is not a timestamp', () => {
    assert.equal(instantOf(TS)?.toString(), '2024-05-01T12:00:00.123456789Z');
    assert.equal(instantOf('-1'), null);
    assert.equal(instantOf('1e9'), null);
    assert.equal(instantOf('9'.repeat(30)), null);
  });
});
