// 10,000 malformed frames at the relay: garbage, truncated and deeply nested JSON, every message
// type with wrong arities and types, mutated events and filters, binary frames. The node must
// survive, the connection must keep answering, nothing malformed may be stored, and every
// answer must be a well-formed relay message.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RelayPolicy } from '../../../bridges/nostr/types.ts';
import { newKey, RawClient, signed, startRelay, type TestRelay } from './raw-client.ts';
import { rng } from '../../helpers/rng.ts';

const FRAMES = 10_000;

const storeAll: RelayPolicy = {
  readsAll: true,
  onEvent: async () => ({ action: 'store' }),
  canRead: () => true,
};

let relay: TestRelay;

before(async () => {
  relay = await startRelay({ limits: { nostrEventsPerSecond: 100_000 } }, () => storeAll);
});

after(async () => {
  await relay.stop();
});

describe('malformed frames', () => {
  it(`survives ${FRAMES.toLocaleString('en')} of them, keeps answering, stores nothing malformed`, async () => {
    const rand = rng(1234);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const k = newKey();
    const good = signed(k.secret, { kind: 1, content: 'a good event', tags: [['t', 'x']] });
    const junk: readonly unknown[] = [
      null,
      true,
      0,
      -1,
      1e308,
      Number.MAX_SAFE_INTEGER + 2,
      '',
      'x'.repeat(70),
      [],
      {},
      [[]],
      { __proto__: { polluted: true } },
      { constructor: { prototype: { x: 1 } } },
      '\u0000',
      '\ud800',
      ['\u0000'],
      { '#e': null },
    ];
    const mutateEvent = (): unknown => {
      const e: Record<string, unknown> = { ...good, tags: good.tags.map((t) => [...t]) };
      const field = pick(['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig', 'extra']);
      if (rand() < 0.2) delete e[field];
      else e[field] = pick(junk);
      return e;
    };
    const mutateFilter = (): unknown =>
      pick([
        { ids: pick(junk) },
        { authors: [pick(junk)] },
        { kinds: [pick(junk)] },
        { since: pick(junk), until: pick(junk) },
        { limit: pick(junk) },
        { search: pick(junk) },
        { [`#${pick(['e', 'p', 'h', 'ee', '', '#', '1'])}`]: pick(junk) },
        pick(junk),
      ]);
    const frame = (): string | Buffer => {
      switch (Math.floor(rand() * 10)) {
        case 0:
          return Buffer.from(
            Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)),
          );
        case 1: {
          const text = JSON.stringify(['EVENT', good]);
          return text.slice(0, Math.floor(rand() * text.length));
        }
        case 2:
          return `${'['.repeat(1 + Math.floor(rand() * 5000))}"EVENT"`;
        case 3:
          return JSON.stringify(['EVENT', mutateEvent()]);
        case 4:
          return JSON.stringify(['REQ', pick(['s', '', 5, null, 'x'.repeat(65)]), mutateFilter()]);
        case 5:
          return JSON.stringify(['COUNT', 'c', mutateFilter(), mutateFilter()]);
        case 6:
          return JSON.stringify([
            pick(['CLOSE', 'AUTH', 'EVENT', 'REQ', 'COUNT', 'NEG-OPEN', 'close']),
            ...Array.from({ length: Math.floor(rand() * 4) }, () => pick(junk)),
          ]);
        case 7:
          return JSON.stringify(['AUTH', mutateEvent()]);
        case 8:
          return JSON.stringify(pick(junk));
        default:
          return String.fromCharCode(
            ...Array.from({ length: 1 + Math.floor(rand() * 40) }, () =>
              Math.floor(rand() * 0xd7ff),
            ),
          );
      }
    };
    const c = await RawClient.connect(relay.url);
    for (let i = 0; i < FRAMES; i++) {
      const f = frame();
      if (typeof f === 'string') c.ws.send(f);
      else c.ws.send(f, { binary: true });
      // Every 1,000 frames the connection still answers a REQ, in order.
      if (i % 1000 === 999) {
        const { events, closed } = await c.req(`alive${i}`, { ids: [good.id] });
        assert.equal(closed, undefined);
        // An unknown extra field is dropped, not refused: the good event may be in.
        assert.ok(events.every((e) => e.id === good.id));
      }
    }
    // Every answer is a relay message of a known type, with its parts of the right types.
    for (const m of c.pending()) {
      assert.ok(Array.isArray(m), JSON.stringify(m));
      switch (m[0]) {
        case 'NOTICE':
          assert.equal(typeof m[1], 'string');
          break;
        case 'OK':
          assert.equal(typeof m[1], 'string');
          if (m[2] === true) assert.equal(m[1], good.id, 'only the good event is accepted');
          else assert.match(m[3], /^[a-z-]+: /);
          break;
        case 'CLOSED':
          assert.equal(typeof m[1], 'string');
          assert.match(m[2], /^[a-z-]+: /);
          break;
        case 'EOSE':
        case 'COUNT':
        case 'EVENT':
          assert.equal(typeof m[1], 'string');
          break;
        default:
          assert.fail(`unexpected message ${JSON.stringify(m)}`);
      }
    }
    assert.equal(c.ws.readyState, c.ws.OPEN, 'the connection lives');
    c.clear();
    // The good event still goes in, and nothing else of that author was stored.
    assert.equal((await c.publish(good))[0], true);
    assert.deepEqual(
      (await c.req('final', { authors: [k.pubkey] })).events.map((e) => e.id),
      [good.id],
    );
    c.close();
    // The gateway serves other clients as before.
    const d = await RawClient.connect(relay.url);
    assert.deepEqual((await d.req('other', { ids: [good.id] })).events, [good]);
    d.close();
  });
});
