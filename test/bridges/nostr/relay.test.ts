// The Nostr relay core on a real gateway, spoken to in raw frames over `ws`: NIP-11, NIP-01's
// messages (OK, EOSE, CLOSED, NOTICE and their prefixes), ordering and limits, replaceable and
// addressable events, ephemeral events, NIP-09, 40, 42, 45, 50 and 70. The relay runs with a
// policy that stores every kind, so the core's own rules are what is tested; the default
// policy has its own test at the end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defaultPolicy } from '../../../bridges/nostr/default-policy.ts';
import type { RelayPolicy } from '../../../bridges/nostr/types.ts';
import { newKey, RawClient, signed, startRelay, type TestRelay } from './raw-client.ts';

const storeAll: RelayPolicy = {
  readsAll: true,
  onEvent: async () => ({ action: 'store' }),
  canRead: () => true,
};

let relay: TestRelay;
let c: RawClient;
const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  relay = await startRelay({ limits: { nostrEventsPerSecond: 10_000 } }, () => storeAll);
  c = await RawClient.connect(relay.url);
});

after(async () => {
  c.close();
  await relay.stop();
});

describe('NIP-11', () => {
  it('answers the information document with CORS headers and the relay key as self', async () => {
    const res = await fetch(relay.url.replace(/^ws/, 'http'), {
      headers: { accept: 'application/nostr+json' },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/nostr\+json/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.ok(res.headers.get('access-control-allow-headers'));
    assert.ok(res.headers.get('access-control-allow-methods'));
    const info = (await res.json()) as Record<string, unknown>;
    const self = relay.bridge.relay().selfPubkey;
    assert.match(self, /^[0-9a-f]{64}$/);
    assert.equal(info.self, self);
    assert.equal(info.pubkey, self);
    for (const nip of [1, 9, 11, 40, 42, 45, 50, 70]) {
      assert.ok((info.supported_nips as number[]).includes(nip), `NIP-${nip}`);
    }
    const l = info.limitation as Record<string, unknown>;
    assert.equal(l.max_message_length, 256 * 1024);
    assert.equal(l.max_subscriptions, 20);
    assert.equal(l.max_filters, 10);
    assert.equal(l.max_limit, 500);
    assert.equal(l.auth_required, false);
    assert.ok(Array.isArray(info.supported_kinds));
  });

  it('answers a CORS preflight, and a browser gets a short page naming the relay URL', async () => {
    const http = relay.url.replace(/^ws/, 'http');
    const pre = await fetch(http, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    const page = await fetch(http, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.ok((await page.text()).includes(relay.url));
  });

  it('keeps the relay key across restarts of the bridge (kept in the keystore)', async () => {
    const secrets = relay.gateway.port.secrets('nostr');
    assert.ok(secrets.get('relay.key'), 'the key is in the keystore');
  });
});

describe('NIP-01 messages', () => {
  it('EVENT → OK true, and the stored event comes back by id, author and kind', async () => {
    const k = newKey();
    const e = signed(k.secret, { kind: 1, content: 'hello relay' });
    assert.deepEqual(await c.publish(e), [true, '']);
    for (const f of [
      { ids: [e.id] },
      { authors: [k.pubkey] },
      { kinds: [1], authors: [k.pubkey] },
    ]) {
      const { events } = await c.req('byfield', f);
      assert.deepEqual(events, [e]);
    }
  });

  it('a second EVENT of the same event → OK true "duplicate:"', async () => {
    const e = signed(newKey().secret, { kind: 1, content: 'twice' });
    assert.deepEqual(await c.publish(e), [true, '']);
    const [ok, msg] = await c.publish(e);
    assert.equal(ok, true);
    assert.match(msg, /^duplicate: /);
  });

  it('refuses a forged signature, a wrong id and malformed fields with OK false "invalid:"', async () => {
    const k = newKey();
    const e = signed(k.secret, { kind: 1, content: 'original' });
    const other = signed(newKey().secret, { kind: 1, content: 'original' });
    const cases: Record<string, unknown>[] = [
      { ...e, sig: other.sig }, // someone else's signature
      { ...e, content: 'tampered' }, // the id no longer matches
      { ...e, id: other.id }, // another event's id
      { ...e, pubkey: e.pubkey.toUpperCase() },
      { ...e, sig: e.sig.slice(0, 100) },
      { ...e, created_at: 1.5 },
      { ...e, created_at: -1 },
      { ...e, created_at: '1700000000' },
      { ...e, kind: 70000 },
      { ...e, kind: -1 },
      { ...e, tags: [['e', 1]] },
      { ...e, tags: [[]] },
      { ...e, tags: 'none' },
      { ...e, content: 7 },
      { ...e, content: undefined },
    ];
    for (const bad of cases) {
      const [ok, msg] = await c.publish(bad);
      assert.equal(ok, false, JSON.stringify(bad).slice(0, 120));
      assert.match(msg, /^invalid: /);
    }
    const { events } = await c.req('forged', { authors: [k.pubkey] });
    assert.deepEqual(events, [], 'nothing of these was stored');
  });

  it('refuses oversized content and too many tags, and an event from too far in the future', async () => {
    const k = newKey();
    const big = signed(k.secret, { kind: 1, content: 'x'.repeat(64 * 1024 + 1) });
    assert.match((await c.publish(big))[1], /^invalid: content is longer/);
    const tags = Array.from({ length: 2001 }, (_, i) => ['t', String(i)]);
    assert.match((await c.publish(signed(k.secret, { kind: 1, tags })))[1], /^invalid: more than/);
    const future = signed(k.secret, { kind: 1, created_at: now() + 3600 });
    assert.match((await c.publish(future))[1], /^invalid: created_at is too far/);
  });

  it('REQ: newest first, lowest id first on a tie, limit, since/until inclusive', async () => {
    const k = newKey();
    const base = 1_700_000_000;
    const evs = [];
    for (let i = 0; i < 6; i++) {
      // Two events at each of three instants.
      const e = signed(k.secret, {
        kind: 1,
        content: `n${i}`,
        created_at: base + Math.floor(i / 2),
      });
      evs.push(e);
      assert.deepEqual(await c.publish(e), [true, '']);
    }
    const expected = [...evs].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
    const all = await c.req('order', { authors: [k.pubkey] });
    assert.deepEqual(
      all.events.map((e) => e.id),
      expected.map((e) => e.id),
    );
    const three = await c.req('limit', { authors: [k.pubkey], limit: 3 });
    assert.deepEqual(
      three.events.map((e) => e.id),
      expected.slice(0, 3).map((e) => e.id),
    );
    const mid = await c.req('range', { authors: [k.pubkey], since: base + 1, until: base + 1 });
    assert.deepEqual(
      mid.events.map((e) => e.id).sort(),
      evs
        .filter((e) => e.created_at === base + 1)
        .map((e) => e.id)
        .sort(),
    );
    const zero = await c.req('zero', { authors: [k.pubkey], limit: 0 });
    assert.deepEqual(zero, { events: [] }, 'limit 0: EOSE at once');
  });

  it('several filters are OR-ed, each with its own limit, without repeating an event', async () => {
    const a = newKey();
    const b = newKey();
    const ea = signed(a.secret, { kind: 1, content: 'from a', tags: [['t', 'both']] });
    const eb = signed(b.secret, { kind: 1, content: 'from b', tags: [['t', 'both']] });
    await c.publish(ea);
    await c.publish(eb);
    const { events } = await c.req('or', { authors: [a.pubkey] }, { '#t': ['both'] });
    assert.deepEqual(events.map((e) => e.id).sort(), [ea.id, eb.id].sort());
  });

  it('#<letter> filters match the first value of tags with that name', async () => {
    const k = newKey();
    const g = `group-${Math.random()}`;
    const e = signed(k.secret, {
      kind: 9,
      content: 'in a group',
      tags: [
        ['h', g],
        ['t', 'x', 'y'],
      ],
    });
    await c.publish(e);
    assert.deepEqual((await c.req('h1', { '#h': [g] })).events, [e]);
    assert.deepEqual((await c.req('h2', { '#h': [g], kinds: [9] })).events, [e]);
    assert.deepEqual((await c.req('h3', { '#h': [g], kinds: [1] })).events, []);
    assert.deepEqual((await c.req('h4', { '#t': ['y'], authors: [k.pubkey] })).events, []);
    assert.deepEqual((await c.req('h5', { '#h': [g, 'other'], '#t': ['x'] })).events, [e]);
  });

  it('REQ then live: events published after EOSE arrive on the subscription, until CLOSE', async () => {
    const k = newKey();
    const listener = await RawClient.connect(relay.url);
    const first = await listener.subscribe('live', { authors: [k.pubkey] });
    assert.deepEqual(first.events, []);
    const e = signed(k.secret, { kind: 1, content: 'live one' });
    await c.publish(e);
    const got = await listener.take((m) => m[0] === 'EVENT' && m[1] === 'live');
    assert.deepEqual(got[2], e);
    listener.send(['CLOSE', 'live']);
    // A REQ sent after the CLOSE is answered after it: the closed one gets nothing more.
    await listener.req('probe', { ids: [e.id] });
    await c.publish(signed(k.secret, { kind: 1, content: 'after close' }));
    await listener.req('probe2', { ids: [e.id] });
    assert.deepEqual(
      listener.pending().filter((m) => m[1] === 'live'),
      [],
    );
    listener.close();
  });

  it('a REQ with the id of an open subscription replaces it', async () => {
    const a = newKey();
    const b = newKey();
    const l = await RawClient.connect(relay.url);
    await l.subscribe('same', { authors: [a.pubkey] });
    await l.subscribe('same', { authors: [b.pubkey] });
    await c.publish(signed(a.secret, { kind: 1, content: 'to the old filter' }));
    const eb = signed(b.secret, { kind: 1, content: 'to the new filter' });
    await c.publish(eb);
    const m = await l.take((x) => x[0] === 'EVENT');
    assert.equal(m[2].id, eb.id);
    l.close();
  });

  it('CLOSED with a prefix for bad REQs; NOTICE for frames that are no message', async () => {
    const refusals: [unknown[], RegExp][] = [
      [['REQ', 'x'.repeat(65), {}], /^invalid: a subscription id/],
      [['REQ', '', {}], /^invalid: a subscription id/],
      [['REQ', 'nofilter'], /^invalid: REQ needs at least one filter/],
      [['REQ', 'toomany', ...Array.from({ length: 11 }, () => ({}))], /^invalid: at most 10/],
      [['REQ', 'badids', { ids: ['abc'] }], /^invalid: ids/],
      [['REQ', 'badkinds', { kinds: ['1'] }], /^invalid: kinds/],
      [['REQ', 'badsince', { since: -5 }], /^invalid: since/],
      [['REQ', 'badlimit', { limit: 1.5 }], /^invalid: limit/],
      [['REQ', 'badtag', { '#e': [5] }], /^invalid: #e/],
      [['REQ', 'unknown', { foo: 1 }], /^unsupported: filter field/],
      [['REQ', 'longtag', { '#tt': ['x'] }], /^unsupported: filter field/],
      [['REQ', 'arr', []], /^invalid: a filter is a JSON object/],
      [['COUNT', 'cbad', { authors: 'x' }], /^invalid: authors/],
    ];
    for (const [msg, re] of refusals) {
      c.send(msg);
      const m = await c.take(
        (x) => x[0] === 'CLOSED',
        `CLOSED for ${JSON.stringify(msg).slice(0, 60)}`,
      );
      assert.match(m[2], re, JSON.stringify(msg).slice(0, 80));
    }
    const notices: unknown[] = [
      'not json',
      '{"an":"object"}',
      '[]',
      '[1,2]',
      '["EVENT"]',
      '["EVENT", 5]',
      '["REQ", 5, {}]',
      '["CLOSE"]',
      '["WHAT", 1]',
      '["AUTH"]',
      'null',
      '"EVENT"',
    ];
    for (const frame of notices) {
      c.send(frame);
      const m = await c.take((x) => x[0] === 'NOTICE', `NOTICE for ${String(frame)}`);
      assert.equal(typeof m[1], 'string');
    }
    // Still alive.
    assert.deepEqual((await c.req('alive', { ids: ['0'.repeat(64)] })).events, []);
  });

  it('caps subscriptions per connection with CLOSED "rate-limited:"', async () => {
    const l = await RawClient.connect(relay.url);
    for (let i = 0; i < 20; i++) await l.subscribe(`s${i}`, { ids: ['0'.repeat(64)] });
    const over = await l.subscribe('one-too-many', { ids: ['0'.repeat(64)] });
    assert.match(over.closed ?? '', /^rate-limited: /);
    // Replacing an open one is still fine.
    assert.equal((await l.subscribe('s0', { ids: ['1'.repeat(64)] })).closed, undefined);
    l.close();
  });

  it('clamps a limit above the largest to it', async () => {
    const { events, closed } = await c.req('big', { kinds: [1], limit: 1_000_000 });
    assert.equal(closed, undefined);
    assert.ok(events.length <= 500);
  });

  it('closes a connection that sends a frame over the size limit with 1009, and only that one', async () => {
    const l = await RawClient.connect(relay.url);
    l.send(`["EVENT",{"content":"${'x'.repeat(256 * 1024)}"}]`);
    const { code } = await l.closed;
    assert.equal(code, 1009);
    assert.deepEqual((await c.req('after-big', { ids: ['0'.repeat(64)] })).events, []);
  });
});

describe('replaceable and addressable events', () => {
  it('keeps the newest kind-0, and the lowest id of two at the same second', async () => {
    const k = newKey();
    const t = now() - 100;
    const older = signed(k.secret, { kind: 0, content: '{"name":"old"}', created_at: t });
    const newer = signed(k.secret, { kind: 0, content: '{"name":"new"}', created_at: t + 1 });
    await c.publish(older);
    await c.publish(newer);
    assert.deepEqual((await c.req('r1', { authors: [k.pubkey], kinds: [0] })).events, [newer]);
    // An older one arriving late is not kept.
    const late = signed(k.secret, { kind: 0, content: '{"name":"late"}', created_at: t - 5 });
    const [ok, msg] = await c.publish(late);
    assert.equal(ok, true);
    assert.match(msg, /^duplicate: have a newer/);
    assert.deepEqual((await c.req('r2', { authors: [k.pubkey], kinds: [0] })).events, [newer]);
    // Ties: two at the same created_at, the lower id stays whatever the order of arrival.
    const a = signed(k.secret, { kind: 3, content: 'a', created_at: t + 10 });
    const b = signed(k.secret, { kind: 3, content: 'b', created_at: t + 10 });
    const [low, high] = a.id < b.id ? [a, b] : [b, a];
    await c.publish(high);
    await c.publish(low);
    assert.deepEqual((await c.req('r3', { authors: [k.pubkey], kinds: [3] })).events, [low]);
    await c.publish(high);
    assert.deepEqual((await c.req('r4', { authors: [k.pubkey], kinds: [3] })).events, [low]);
  });

  it('keeps one version per d tag of an addressable kind', async () => {
    const k = newKey();
    const t = now() - 50;
    const a1 = signed(k.secret, {
      kind: 30023,
      content: 'a v1',
      tags: [['d', 'a']],
      created_at: t,
    });
    const a2 = signed(k.secret, {
      kind: 30023,
      content: 'a v2',
      tags: [['d', 'a']],
      created_at: t + 1,
    });
    const b1 = signed(k.secret, {
      kind: 30023,
      content: 'b v1',
      tags: [['d', 'b']],
      created_at: t,
    });
    const none = signed(k.secret, { kind: 30023, content: 'no d', created_at: t });
    for (const e of [a1, a2, b1, none]) await c.publish(e);
    const { events } = await c.req('addr', { authors: [k.pubkey], kinds: [30023] });
    assert.deepEqual(events.map((e) => e.id).sort(), [a2.id, b1.id, none.id].sort());
    assert.deepEqual((await c.req('addr-d', { '#d': ['a'], authors: [k.pubkey] })).events, [a2]);
  });

  it('relays ephemeral events to live subscribers and never stores them', async () => {
    const k = newKey();
    const l = await RawClient.connect(relay.url);
    await l.subscribe('eph', { authors: [k.pubkey] });
    const e = signed(k.secret, { kind: 20001, content: 'now or never' });
    assert.deepEqual(await c.publish(e), [true, '']);
    assert.deepEqual((await l.take((m) => m[0] === 'EVENT' && m[1] === 'eph'))[2], e);
    assert.deepEqual((await c.req('eph-stored', { ids: [e.id] })).events, []);
    l.close();
  });
});

describe('NIP-09 deletion', () => {
  it("deletes the author's events named by e and a tags, keeps the deletion, and refuses them again", async () => {
    const k = newKey();
    const t = now() - 30;
    const note = signed(k.secret, { kind: 1, content: 'regret', created_at: t });
    const art = signed(k.secret, {
      kind: 30023,
      content: 'doc',
      tags: [['d', 'doc']],
      created_at: t,
    });
    await c.publish(note);
    await c.publish(art);
    const del = signed(k.secret, {
      kind: 5,
      tags: [
        ['e', note.id],
        ['a', `30023:${k.pubkey}:doc`],
        ['k', '1'],
        ['k', '30023'],
      ],
      created_at: t + 1,
    });
    assert.deepEqual(await c.publish(del), [true, '']);
    const left = await c.req('del', { authors: [k.pubkey] });
    assert.deepEqual(left.events, [del], 'only the deletion remains');
    const [ok, msg] = await c.publish(note);
    assert.equal(ok, false);
    assert.match(msg, /^blocked: /);
    // An older version of the address stays deleted; a newer one may come.
    const oldArt = signed(k.secret, {
      kind: 30023,
      content: 'old',
      tags: [['d', 'doc']],
      created_at: t,
    });
    assert.match((await c.publish(oldArt))[1], /^blocked: /);
    const newArt = signed(k.secret, {
      kind: 30023,
      content: 'new',
      tags: [['d', 'doc']],
      created_at: t + 2,
    });
    assert.deepEqual(await c.publish(newArt), [true, '']);
  });

  it("does not delete another author's events, and a deletion before its event still holds", async () => {
    const victim = newKey();
    const other = newKey();
    const note = signed(victim.secret, { kind: 1, content: 'mine' });
    await c.publish(note);
    await c.publish(signed(other.secret, { kind: 5, tags: [['e', note.id]] }));
    await c.publish(signed(other.secret, { kind: 5, tags: [['a', `30023:${victim.pubkey}:x`]] }));
    assert.deepEqual((await c.req('keep', { ids: [note.id] })).events, [note]);
    // The author deletes an event the relay has not seen yet: it is refused when it comes.
    const later = signed(victim.secret, { kind: 1, content: 'later' });
    await c.publish(signed(victim.secret, { kind: 5, tags: [['e', later.id]] }));
    assert.match((await c.publish(later))[1], /^blocked: /);
  });

  it('a deletion of a deletion has no effect', async () => {
    const k = newKey();
    const note = signed(k.secret, { kind: 1, content: 'x' });
    await c.publish(note);
    const del = signed(k.secret, { kind: 5, tags: [['e', note.id]] });
    await c.publish(del);
    await c.publish(signed(k.secret, { kind: 5, tags: [['e', del.id]] }));
    assert.deepEqual((await c.req('dd', { ids: [del.id] })).events, [del]);
  });
});

describe('NIP-40 expiration', () => {
  it('refuses an expired event, serves one until it expires, then not', async () => {
    const k = newKey();
    const gone = signed(k.secret, { kind: 1, tags: [['expiration', String(now() - 1)]] });
    const [ok, msg] = await c.publish(gone);
    assert.equal(ok, false);
    assert.match(msg, /^invalid: .*expired/);
    const soon = signed(k.secret, {
      kind: 1,
      content: 'brief',
      tags: [['expiration', String(now() + 2)]],
    });
    assert.deepEqual(await c.publish(soon), [true, '']);
    assert.deepEqual((await c.req('exp1', { ids: [soon.id] })).events, [soon]);
    await new Promise((r) => setTimeout(r, 3100));
    assert.deepEqual((await c.req('exp2', { ids: [soon.id] })).events, []);
    assert.equal((await c.count('exp3', { ids: [soon.id] }))[2].count, 0);
  });
});

describe('NIP-45 COUNT', () => {
  it('counts stored matches of any filter, each once', async () => {
    const k = newKey();
    for (let i = 0; i < 5; i++) {
      await c.publish(
        signed(k.secret, { kind: 1, content: `c${i}`, tags: i < 2 ? [['t', 'two']] : [] }),
      );
    }
    const m = await c.count('cnt', { authors: [k.pubkey] }, { '#t': ['two'], authors: [k.pubkey] });
    assert.deepEqual(m, ['COUNT', 'cnt', { count: 5 }]);
    assert.deepEqual(await c.count('cnt2', { authors: [k.pubkey], '#t': ['two'] }), [
      'COUNT',
      'cnt2',
      { count: 2 },
    ]);
  });
});

describe('NIP-50 search', () => {
  it('finds stored events by case-insensitive terms, all of them, and matches live ones the same way', async () => {
    const k = newKey();
    const a = signed(k.secret, { kind: 1, content: 'The Quick brown fox' });
    const b = signed(k.secret, { kind: 1, content: 'a quick 中文 test' });
    const d = signed(k.secret, { kind: 1, content: 'nothing here' });
    for (const e of [a, b, d]) await c.publish(e);
    const ids = async (search: string) =>
      (await c.req(`q${Math.random()}`, { authors: [k.pubkey], search })).events
        .map((e) => e.id)
        .sort();
    assert.deepEqual(await ids('QUICK'), [a.id, b.id].sort());
    assert.deepEqual(await ids('quick fox'), [a.id]);
    assert.deepEqual(await ids('中文'), [b.id], 'two characters: below a trigram');
    assert.deepEqual(await ids('ick bro'), [a.id], 'substrings');
    assert.deepEqual(await ids('quick include:spam'), [a.id, b.id].sort(), 'extensions ignored');
    assert.deepEqual(await ids('absent'), []);
    const l = await RawClient.connect(relay.url);
    await l.subscribe('live-search', { search: 'Zebra', authors: [k.pubkey] });
    await c.publish(signed(k.secret, { kind: 1, content: 'no match' }));
    const z = signed(k.secret, { kind: 1, content: 'a zebra passes' });
    await c.publish(z);
    assert.equal((await l.take((m) => m[0] === 'EVENT'))[2].id, z.id);
    l.close();
  });
});

describe('NIP-42 AUTH and NIP-70 protected events', () => {
  const auth = (secret: Uint8Array, challenge: string, relayUrl: string, created_at = now()) =>
    signed(secret, {
      kind: 22242,
      tags: [
        ['relay', relayUrl],
        ['challenge', challenge],
      ],
      created_at,
    });

  it('sends a challenge on connect and accepts a right AUTH; refuses wrong ones', async () => {
    const l = await RawClient.connect(relay.url);
    assert.match(l.challenge, /^[0-9a-f]{32}$/);
    const k = newKey();
    const bad: [ReturnType<typeof signed>, RegExp][] = [
      [auth(k.secret, 'nope', relay.url), /^invalid: not the challenge/],
      [auth(k.secret, l.challenge, 'wss://elsewhere.example/'), /^invalid: the relay tag/],
      [auth(k.secret, l.challenge, relay.url, now() - 700), /^invalid: created_at/],
      [
        signed(k.secret, {
          kind: 1,
          tags: [
            ['challenge', l.challenge],
            ['relay', relay.url],
          ],
        }),
        /^invalid: an AUTH event has kind 22242/,
      ],
      [
        { ...auth(k.secret, l.challenge, relay.url), sig: '0'.repeat(128) },
        /^invalid: bad signature/,
      ],
    ];
    for (const [e, re] of bad) {
      l.send(['AUTH', e]);
      const m = await l.take((x) => x[0] === 'OK' && x[1] === e.id);
      assert.equal(m[2], false);
      assert.match(m[3], re);
    }
    const good = auth(k.secret, l.challenge, relay.url);
    l.send(['AUTH', good]);
    assert.deepEqual(await l.take((x) => x[0] === 'OK' && x[1] === good.id), [
      'OK',
      good.id,
      true,
      '',
    ]);
    // The public origin without a trailing slash names the relay too.
    const k2 = newKey();
    const good2 = auth(k2.secret, l.challenge, relay.gateway.origin.replace(/^http/, 'ws'));
    l.send(['AUTH', good2]);
    assert.equal((await l.take((x) => x[0] === 'OK' && x[1] === good2.id))[2], true);
    // AUTH events are never relayed nor stored, even sent as EVENT.
    const asEvent = auth(k.secret, l.challenge, relay.url);
    assert.match((await l.publish(asEvent))[1], /^invalid: /);
    l.close();
  });

  it('takes a protected event only from its AUTHed author', async () => {
    const k = newKey();
    const l = await RawClient.connect(relay.url);
    const e = signed(k.secret, { kind: 1, content: 'mine only', tags: [['-']] });
    const [ok, msg] = await l.publish(e);
    assert.equal(ok, false);
    assert.match(msg, /^auth-required: /);
    const someone = newKey();
    const a1 = auth(someone.secret, l.challenge, relay.url);
    l.send(['AUTH', a1]);
    await l.take((x) => x[0] === 'OK' && x[1] === a1.id);
    assert.match((await l.publish(e))[1], /^restricted: /);
    const a2 = auth(k.secret, l.challenge, relay.url);
    l.send(['AUTH', a2]);
    await l.take((x) => x[0] === 'OK' && x[1] === a2.id);
    assert.deepEqual(await l.publish(e), [true, '']);
    // Another connection cannot republish it (it is stored already: duplicate is fine), and a
    // new protected event by the same author from an unauthenticated connection is refused.
    const e2 = signed(k.secret, { kind: 1, content: 'mine too', tags: [['-']] });
    assert.match((await c.publish(e2))[1], /^auth-required: /);
    l.close();
  });
});

describe('limits', () => {
  it('rate-limits EVENTs per connection with OK false "rate-limited:"', async () => {
    const slow = await startRelay({ limits: { nostrEventsPerSecond: 2 } }, () => storeAll);
    try {
      const l = await RawClient.connect(slow.url);
      const k = newKey();
      const answers = [];
      for (let i = 0; i < 5; i++)
        answers.push(await l.publish(signed(k.secret, { kind: 1, content: `r${i}` })));
      assert.ok(answers.some(([ok, m]) => !ok && m.startsWith('rate-limited: ')));
      l.close();
    } finally {
      await slow.stop();
    }
  });

  it('refuses connections past the total cap with 503', async () => {
    const small = await startRelay({ limits: { nostrMaxConnections: 2 } }, () => storeAll);
    try {
      const a = await RawClient.connect(small.url);
      const b = await RawClient.connect(small.url);
      await assert.rejects(RawClient.connect(small.url), /503/);
      a.close();
      await a.closed;
      // A place is free again.
      const d = await (async () => {
        for (let i = 0; i < 50; i++) {
          try {
            return await RawClient.connect(small.url);
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        throw new Error('no place freed');
      })();
      b.close();
      d.close();
    } finally {
      await small.stop();
    }
  });
});

describe('the default policy', () => {
  it('stores kinds 0, 3, 10002, 10009 and their deletions, refuses others with restricted:', async () => {
    const r = await startRelay({}, () => defaultPolicy());
    try {
      const l = await RawClient.connect(r.url);
      const k = newKey();
      for (const kind of [0, 3, 10002, 10009]) {
        assert.deepEqual(await l.publish(signed(k.secret, { kind, content: '' })), [true, '']);
      }
      const note = signed(k.secret, { kind: 1, content: 'a note' });
      const [ok, msg] = await l.publish(note);
      assert.equal(ok, false);
      assert.match(msg, /^restricted: /);
      const del = signed(k.secret, {
        kind: 5,
        tags: [
          ['a', `0:${k.pubkey}:`],
          ['k', '0'],
        ],
      });
      assert.deepEqual(await l.publish(del), [true, '']);
      assert.deepEqual((await l.req('p', { authors: [k.pubkey], kinds: [0] })).events, []);
      const delOther = signed(k.secret, { kind: 5, tags: [['k', '1']] });
      assert.match((await l.publish(delOther))[1], /^restricted: /);
      l.close();
    } finally {
      await r.stop();
    }
  });
});

describe('policy hooks', () => {
  // A policy that takes kind 9 itself, fails on 'boom', refuses filters on #h secret, and keeps
  // kind 4 from everyone but its author's AUTHed connection.
  const policy: RelayPolicy = {
    async onEvent(e) {
      if (e.content === 'boom') throw new Error('policy failure');
      if (e.kind === 9) return { action: 'taken', message: 'duplicate: already posted' };
      return { action: 'store' };
    },
    canRead: (e, conn) => e.kind !== 4 || conn.authed.has(e.pubkey),
    checkFilter: (f) => (f['#h']?.includes('secret') ? 'auth-required: members only' : null),
  };

  it('answers OK false "error:" when the policy fails, and OK true with its message when it takes an event', async () => {
    const r = await startRelay({}, () => policy);
    try {
      const l = await RawClient.connect(r.url);
      const k = newKey();
      const [ok, msg] = await l.publish(signed(k.secret, { kind: 1, content: 'boom' }));
      assert.equal(ok, false);
      assert.match(msg, /^error: /);
      const taken = signed(k.secret, { kind: 9, content: 'to the group' });
      assert.deepEqual(await l.publish(taken), [true, 'duplicate: already posted']);
      assert.deepEqual((await l.req('t', { ids: [taken.id] })).events, [], 'taken, not stored');
      l.close();
    } finally {
      await r.stop();
    }
  });

  it('refuses filters with the CLOSED the policy gives, and serves only what canRead allows', async () => {
    const r = await startRelay({}, () => policy);
    try {
      const l = await RawClient.connect(r.url);
      const refused = await l.req('sec', { kinds: [1] }, { '#h': ['secret'] });
      assert.equal(refused.closed, 'auth-required: members only');
      const cnt = await l.count('seccount', { '#h': ['secret'] });
      assert.deepEqual(cnt, ['CLOSED', 'seccount', 'auth-required: members only']);
      const k = newKey();
      const dm = signed(k.secret, { kind: 4, content: 'private' });
      const pub = signed(k.secret, { kind: 1, content: 'public' });
      const watcher = await RawClient.connect(r.url);
      await watcher.subscribe('w', { authors: [k.pubkey] });
      await l.publish(dm);
      await l.publish(pub);
      assert.equal((await watcher.take((m) => m[0] === 'EVENT'))[2].id, pub.id);
      assert.deepEqual(
        (await l.req('stored', { authors: [k.pubkey] })).events.map((e) => e.id),
        [pub.id],
      );
      assert.deepEqual((await l.count('c', { authors: [k.pubkey] }))[2], { count: 1 });
      // The author, AUTHed, reads it.
      const a = signed(k.secret, {
        kind: 22242,
        tags: [
          ['relay', r.url],
          ['challenge', l.challenge],
        ],
      });
      l.send(['AUTH', a]);
      await l.take((m) => m[0] === 'OK' && m[1] === a.id);
      assert.deepEqual(
        (await l.req('mine', { authors: [k.pubkey] })).events.map((e) => e.id).sort(),
        [dm.id, pub.id].sort(),
      );
      assert.deepEqual((await l.count('c2', { authors: [k.pubkey] }))[2], { count: 2 });
      assert.deepEqual(
        watcher.pending().filter((m) => m[0] === 'EVENT'),
        [],
        'the DM never went to the watcher',
      );
      watcher.close();
      l.close();
    } finally {
      await r.stop();
    }
  });
});
