// The relay's query path under load: 100,000 stored events (200 authors, 50 groups by `h` tag,
// several kinds, 30 days), then REQs with mixed filters (author, kind, #h, time range) over a
// real WebSocket, timed from REQ to EOSE. Target: p50 ≤ 5 ms. Also the query plans: each kind of
// filter reads an index, never the whole table.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { eventId } from '../../../bridges/nostr/event.ts';
import type { NostrEvent, NostrFilter, RelayPolicy } from '../../../bridges/nostr/types.ts';
import { RawClient, startRelay, type TestRelay } from './raw-client.ts';
import { rng } from '../../helpers/rng.ts';

const EVENTS = 100_000;
const AUTHORS = 200;
const GROUPS = 50;
const END = 1_790_000_000;
const SPAN = 30 * 24 * 3600;

const storeAll: RelayPolicy = {
  readsAll: true,
  onEvent: async () => ({ action: 'store' }),
  canRead: () => true,
};

const hex = (n: number) => randomBytes(n).toString('hex');
const authors = Array.from({ length: AUTHORS }, () => hex(32));
const groups = Array.from({ length: GROUPS }, (_, i) => `g${i}`);
const words = 'alpha beta gamma delta relay group chain block note reply river stone cloud'.split(
  ' ',
);

let relay: TestRelay;
let client: RawClient;

before(async () => {
  relay = await startRelay({ dbSync: 'normal' }, () => storeAll);
  const handle = relay.bridge.relay();
  const rand = rng(42);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const db = relay.node.store.db.$client;
  const t0 = Date.now();
  db.transaction(() => {
    for (let i = 0; i < EVENTS; i++) {
      const kind = pick([1, 1, 1, 7, 9, 9, 11, 1111]);
      const tags: string[][] = [];
      if (kind !== 1 || rand() < 0.3) tags.push(['h', pick(groups)]);
      if (rand() < 0.5) tags.push(['p', pick(authors)]);
      if (kind === 7 || rand() < 0.2) tags.push(['e', hex(32)]);
      const e = {
        pubkey: pick(authors),
        created_at: END - Math.floor(rand() * SPAN),
        kind,
        tags,
        content: Array.from({ length: 12 }, () => pick(words)).join(' '),
      };
      const ev: NostrEvent = { ...e, id: eventId(e), sig: hex(64) };
      const r = handle.put(ev);
      assert.ok(r.stored, r.reason);
    }
  })();
  console.log(`# seeded ${EVENTS} events in ${Date.now() - t0} ms`);
  client = await RawClient.connect(relay.url);
});

after(async () => {
  client?.close();
  await relay.stop();
});

function mixedFilters(n: number): NostrFilter[] {
  const rand = rng(7);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const out: NostrFilter[] = [];
  for (let i = 0; i < n; i++) {
    const until = END - Math.floor(rand() * SPAN * 0.9);
    const since = until - 3 * 24 * 3600;
    switch (i % 6) {
      case 0:
        out.push({ authors: [pick(authors)], limit: 50 });
        break;
      case 1:
        out.push({ kinds: [1], limit: 100 });
        break;
      case 2:
        out.push({ '#h': [pick(groups)], kinds: [9, 11], limit: 50 });
        break;
      case 3:
        out.push({ '#h': [pick(groups)], since, until, limit: 100 });
        break;
      case 4:
        out.push({ authors: [pick(authors), pick(authors), pick(authors)], kinds: [1], since });
        break;
      default:
        out.push({ kinds: [7], since, until, limit: 100 });
    }
  }
  return out;
}

describe('query speed over 100,000 events', () => {
  it('REQ p50 ≤ 5 ms (REQ → EOSE over the WebSocket), mixed filters', async () => {
    const filters = mixedFilters(300);
    // Warm up: statements prepared, pages cached.
    for (const f of filters.slice(0, 30)) await client.req('warm', f);
    const times: number[] = [];
    let returned = 0;
    for (const [i, f] of filters.entries()) {
      const t = process.hrtime.bigint();
      const { events, closed } = await client.req(`q${i}`, f);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (process.env.NOSTR_SPEED_DETAIL)
        console.log(
          `# ${i % 6} ${times.at(-1)!.toFixed(2)} ms ${events.length} ${JSON.stringify(f).slice(0, 80)}`,
        );
      assert.equal(closed, undefined);
      returned += events.length;
    }
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
    console.log(
      `# REQ over ${EVENTS} events: p50 ${p(0.5).toFixed(2)} ms, p90 ${p(0.9).toFixed(2)} ms, ` +
        `p99 ${p(0.99).toFixed(2)} ms, ${(returned / filters.length).toFixed(0)} events per REQ`,
    );
    assert.ok(p(0.5) <= 5, `p50 ${p(0.5)} ms`);
  });

  it('COUNT and search stay fast too', async () => {
    const t = process.hrtime.bigint();
    const m = await client.count('c', { kinds: [1] });
    const countMs = Number(process.hrtime.bigint() - t) / 1e6;
    assert.ok(m[2].count > 30_000);
    const t2 = process.hrtime.bigint();
    const { events } = await client.req('s', { search: 'river stone', limit: 20 });
    const searchMs = Number(process.hrtime.bigint() - t2) / 1e6;
    assert.equal(events.length, 20);
    console.log(`# COUNT kind 1: ${countMs.toFixed(1)} ms; search: ${searchMs.toFixed(1)} ms`);
  });

  it('reads an index for each kind of filter, never the whole table', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the store is private to the relay
    const store = (relay.bridge.relay() as any).c.store;
    const plans: NostrFilter[] = [
      { ids: [hex(32)] },
      { authors: [authors[0]!] },
      { authors: [authors[0]!, authors[1]!], kinds: [1] },
      { kinds: [1], limit: 10 },
      { '#h': ['g1'], kinds: [9] },
      { '#h': ['g1', 'g2'] },
      { since: END - 100, until: END },
      {},
    ];
    for (const f of plans) {
      const plan: string[] = store.explain(f);
      const text = plan.join(' | ');
      assert.ok(
        !/SCAN e(?! USING)/.test(text) && !/SCAN nostr_events(?! USING)/.test(text),
        `${JSON.stringify(f)}: ${text}`,
      );
    }
  });
});
