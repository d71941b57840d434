// Events and filters as units: the id agrees with nostr-tools' on awkward content, both
// signature back-ends accept nostr-tools' signatures and refuse forged ones, the relay's own
// signatures pass nostr-tools' check, the form checks, filter limits and live matching, and the
// relay key kept across restarts of the bridge.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getEventHash, verifyEvent } from 'nostr-tools/pure';
import {
  checkEvent,
  eventId,
  eventJson,
  loadEventCrypto,
  nobleEventCrypto,
  wasmEventCrypto,
  parseEvent,
} from '../../../bridges/nostr/event.ts';
import { compileFilter, parseFilter, searchTerms } from '../../../bridges/nostr/filter.ts';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import type { NostrEvent, NostrFilter } from '../../../bridges/nostr/types.ts';
import { startGateway } from '../../../src/gateway/gateway.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { newKey, signed } from './raw-client.ts';

const limits = { maxContentChars: 1000, maxEventTags: 10 };

describe('event ids and signatures', () => {
  const k = newKey();
  const awkward = [
    'plain',
    'quote " backslash \\ newline \n tab \t cr \r',
    'controls \u0000\u0001\u001f\u007f and \b\f',
    'emoji 🦩 and CJK 中文 and combining é',
    '\u2028\u2029 separators',
    '',
  ];

  it('computes the NIP-01 id as nostr-tools does, on awkward content and tags', () => {
    for (const content of awkward) {
      const e = signed(k.secret, {
        kind: 1,
        content,
        tags: [
          ['t', content],
          ['e', 'x', ''],
        ],
      });
      assert.equal(eventId(e), getEventHash(e));
      assert.equal(eventId(e), e.id);
    }
  });

  it('every back-end verifies nostr-tools signatures and refuses forged ones', async () => {
    const fast = await loadEventCrypto();
    assert.equal(fast.backend, 'libsecp256k1', 'the native addon loads here');
    const wasm = await wasmEventCrypto();
    assert.equal(wasm.backend, 'nostr-wasm');
    for (const crypto of [fast, wasm, nobleEventCrypto()]) {
      for (const content of awkward) {
        const e = signed(k.secret, { kind: 1, content });
        assert.equal(checkEvent(e, limits, crypto).ok, true, `${crypto.backend}: ${content}`);
        const other = signed(newKey().secret, { kind: 1, content });
        const forged = checkEvent({ ...e, sig: other.sig }, limits, crypto);
        assert.deepEqual(forged, { ok: false, reason: 'invalid: bad signature' });
        const wrongId = checkEvent({ ...e, content: `${content}!` }, limits, crypto);
        assert.deepEqual(wrongId, {
          ok: false,
          reason: 'invalid: the id is not the hash of the event',
        });
        // A pubkey that is not on the curve (x = 5 has no point).
        const offCurve = { ...e, pubkey: `${'0'.repeat(63)}5` };
        offCurve.id = eventId(offCurve);
        assert.equal(checkEvent(offCurve, limits, crypto).ok, false);
      }
    }
  });

  it('signs events that nostr-tools accepts, with every back-end', async () => {
    for (const crypto of [await loadEventCrypto(), await wasmEventCrypto(), nobleEventCrypto()]) {
      const e = crypto.sign(
        { kind: 39000, created_at: 1, tags: [['d', 'g']], content: 'x' },
        k.secret,
      );
      assert.equal(e.pubkey, k.pubkey);
      assert.equal(verifyEvent({ ...e }), true, crypto.backend);
      assert.deepEqual(JSON.parse(eventJson(e)), e);
    }
  });

  it('checks the form: lone surrogates, sizes, and extra fields dropped', () => {
    const e = signed(k.secret, { kind: 1, content: 'ok' });
    assert.deepEqual(parseEvent({ ...e, extra: 1 }, limits), { ok: true, value: e });
    assert.match(
      (parseEvent({ ...e, content: 'a\ud800b' }, limits) as { reason: string }).reason,
      /lone surrogate/,
    );
    assert.match(
      (parseEvent({ ...e, tags: [['t', '\udc00']] }, limits) as { reason: string }).reason,
      /lone surrogate/,
    );
    assert.match(
      (parseEvent({ ...e, content: 'x'.repeat(1001) }, limits) as { reason: string }).reason,
      /longer than 1000/,
    );
    const tags = Array.from({ length: 11 }, () => ['t', 'x']);
    assert.match(
      (parseEvent({ ...e, tags }, limits) as { reason: string }).reason,
      /more than 10 tags/,
    );
    assert.equal(parseEvent([e], limits).ok, false);
  });
});

describe('filters', () => {
  const fl = { maxFilterValues: 3, maxLimit: 100 };
  const ev = (over: Partial<NostrEvent>): NostrEvent => ({
    id: 'a'.repeat(64),
    pubkey: 'b'.repeat(64),
    created_at: 100,
    kind: 1,
    tags: [],
    content: '',
    sig: 'c'.repeat(128),
    ...over,
  });

  it('clamps limit, caps list lengths, refuses unknown fields', () => {
    assert.deepEqual(parseFilter({ limit: 1000 }, fl), { ok: true, value: { limit: 100 } });
    assert.equal(parseFilter({ kinds: [1, 2, 3, 4] }, fl).ok, false);
    assert.equal(parseFilter({ '#t': ['a', 'b', 'c', 'd'] }, fl).ok, false);
    assert.match((parseFilter({ foo: [] }, fl) as { reason: string }).reason, /^unsupported: /);
    assert.match(
      (parseFilter({ ids: ['A'.repeat(64)] }, fl) as { reason: string }).reason,
      /^invalid: /,
    );
    assert.equal(parseFilter({ search: 'x'.repeat(257) }, fl).ok, false);
  });

  it('matches live events: lists, inclusive since/until, first tag value, search terms', () => {
    const m = (f: NostrFilter, e: NostrEvent) => compileFilter(f)(e);
    assert.equal(m({ since: 100, until: 100 }, ev({})), true);
    assert.equal(m({ since: 101 }, ev({})), false);
    assert.equal(m({ until: 99 }, ev({})), false);
    assert.equal(m({ kinds: [2, 1] }, ev({})), true);
    assert.equal(m({ authors: ['d'.repeat(64)] }, ev({})), false);
    assert.equal(m({ ids: [] }, ev({})), false, 'an empty list matches nothing');
    assert.equal(m({ '#e': ['x'] }, ev({ tags: [['e', 'x']] })), true);
    assert.equal(m({ '#e': ['y'] }, ev({ tags: [['e', 'x', 'y']] })), false, 'first value only');
    assert.equal(m({ '#e': ['x'], '#p': ['z'] }, ev({ tags: [['e', 'x']] })), false, 'tags AND');
    assert.equal(m({ search: 'HELLO wor' }, ev({ content: 'hello world' })), true);
    assert.equal(m({ search: 'hello moon' }, ev({ content: 'hello world' })), false);
    assert.deepEqual(searchTerms('a  B include:spam domain:x.org a'), ['a', 'b']);
  });
});

describe('the relay key', () => {
  it('is made once and kept in the keystore: the restarted node has the same', async () => {
    const { node, dir } = await openTempNode({ gatewayPort: 0 });
    const first = nostrBridge({ config: node.config, db: node.store.db });
    const g1 = await startGateway(node, [first]);
    const pubkey = first.relay().selfPubkey;
    await g1.stop();
    await node.stop();
    const { node: again } = await openTempNode({ gatewayPort: 0 }, dir);
    try {
      const second = nostrBridge({ config: again.config, db: again.store.db });
      const g2 = await startGateway(again, [second]);
      assert.equal(second.relay().selfPubkey, pubkey);
      const e = second.relay().sign({ kind: 39000, created_at: 1, tags: [], content: '' });
      assert.equal(e.pubkey, pubkey);
      assert.equal(verifyEvent({ ...e }), true);
      await g2.stop();
    } finally {
      await again.stop();
    }
  });
});
