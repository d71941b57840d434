// The pieces of publishing to outside relays on their own: relay lists as the operator gives them
// (normalized, deduplicated, bounded), the OK prefixes and what each means for a delivery, the
// consumer names the port takes, and the `nostr-event` delivery handler against relays on
// loopback: one reused connection, the SSRF guard (an address, a name, and again at connect
// time), no answer, an answer
// frame too large, an upgrade refused, a protected event, idle and stop closing connections.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { signEvent } from '../../../bridges/nostr/author.ts';
import {
  consumerOf,
  normalizeRelayUrl,
  parseRelayList,
  RelayListError,
} from '../../../bridges/nostr/publish-config.ts';
import {
  okOutcome,
  PUBLISH_KIND,
  RelayClient,
  type RelayClientInit,
} from '../../../bridges/nostr/relay-client.ts';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';
import { PermanentDeliveryError } from '../../../bridges/port.ts';
import { AddressGuard } from '../../../src/gateway/address-guard.ts';
import { until } from '../../helpers/until.ts';
import { newKey, signed } from './raw-client.ts';
import { type ScriptedRelay, startScriptedRelay } from './scripted-relay.ts';

const relayKey = newKey();
const author = newKey();
const log = pino({ level: 'silent' });

function client(allowPrivate: boolean, init: Partial<RelayClientInit> = {}): RelayClient {
  const guard = new AddressGuard({ allowPrivate });
  return new RelayClient(
    {
      checkUrl: (url) => guard.check(url),
      allowPrivateAddress: allowPrivate,
      sign: (t) => signEvent(t, relayKey.secret),
      log,
    },
    { timeoutMs: 2000, maxAnswerBytes: 64 * 1024, idleMs: 60_000, ...init },
  );
}

let n = 0;
function job(relay: string, event: NostrEvent = note()) {
  n++;
  return {
    id: String(n),
    key: `nostr:${relay}:${event.id}`,
    kind: PUBLISH_KIND,
    destination: relay,
    payload: { relay, event },
    attempt: 1,
  };
}

function note(content = `note ${n}`, tags: string[][] = []): NostrEvent {
  return signed(author.secret, { kind: 1, content, tags });
}

describe('relay lists', () => {
  it('normalizes relay URLs to one written form', () => {
    assert.equal(normalizeRelayUrl(' WSS://Relay.Example.COM/ '), 'wss://relay.example.com');
    assert.equal(normalizeRelayUrl('wss://relay.example.com:443'), 'wss://relay.example.com');
    assert.equal(normalizeRelayUrl('ws://relay.example.com:80/'), 'ws://relay.example.com');
    assert.equal(normalizeRelayUrl('wss://r.example/nostr#frag'), 'wss://r.example/nostr');
    assert.equal(normalizeRelayUrl('wss://r.example/?a=1'), 'wss://r.example/?a=1');
    assert.equal(normalizeRelayUrl('wss://[2001:db8::1]:7000'), 'wss://[2001:db8::1]:7000');
    for (const bad of ['', 'relay.example', 'https://r.example', 'wss://u:p@r.example', 7, null]) {
      assert.throws(() => normalizeRelayUrl(bad), RelayListError, String(bad));
    }
    assert.throws(() => normalizeRelayUrl(`wss://r.example/${'a'.repeat(600)}`), /longer than/);
  });

  it('deduplicates in order, bounds the count and refuses this relay itself', () => {
    assert.deepEqual(
      parseRelayList(['wss://b.example', 'wss://a.example/', 'WSS://B.example'], 3),
      ['wss://b.example', 'wss://a.example'],
    );
    assert.throws(() => parseRelayList(['wss://a.example', 'wss://b.example'], 1), /at most 1/);
    assert.throws(() => parseRelayList('wss://a.example', 3), /list/);
    assert.throws(
      () => parseRelayList(['ws://127.0.0.1:8080'], 3, 'ws://127.0.0.1:8080/'),
      /own relay/,
    );
  });

  it('names each (relay, generation) a consumer the port takes', () => {
    const long = `wss://r.example/${'a'.repeat(500)}`;
    for (const url of ['wss://r.example', long]) {
      const c = consumerOf({ url, gen: 'abc123' });
      assert.match(c, /^[A-Za-z0-9_.:@-]{1,100}$/);
    }
    assert.notEqual(
      consumerOf({ url: 'wss://r.example', gen: 'a' }),
      consumerOf({ url: 'wss://r.example', gen: 'b' }),
    );
  });
});

describe('OK answers', () => {
  it('reads the NIP-01 prefixes', () => {
    const cases: [boolean, string, string][] = [
      [true, '', 'delivered'],
      [true, 'duplicate: have it', 'delivered'],
      [false, 'duplicate: already have this event', 'delivered'],
      [false, 'rate-limited: slow down', 'retry'],
      [false, 'error: could not connect to the database', 'retry'],
      [false, 'something odd', 'retry'],
      [false, '', 'retry'],
      [false, 'invalid: bad signature', 'permanent'],
      [false, 'blocked: you are banned', 'permanent'],
      [false, 'pow: difficulty 25 < 30', 'permanent'],
      [false, 'restricted: not allowed to write', 'permanent'],
      [false, 'mute: no one listens', 'permanent'],
      [false, 'auth-required: who are you', 'auth'],
    ];
    for (const [ok, msg, want] of cases) assert.equal(okOutcome(ok, msg), want, msg);
  });
});

describe('the nostr-event delivery handler', () => {
  let relay: ScriptedRelay;

  before(async () => {
    relay = await startScriptedRelay();
  });

  after(async () => {
    await relay.close();
  });

  it('sends over one connection and takes OK true', async () => {
    const c = client(true);
    try {
      const deliver = c.handler();
      const before = relay.connections();
      const events = [note('one'), note('two'), note('three')];
      await Promise.all(events.map((e) => deliver(job(relay.url, e))));
      await deliver(job(relay.url, note('four')));
      assert.equal(relay.connections() - before, 1);
      for (const e of events) assert.equal(relay.received(e.id), 1);
      assert.equal(c.open, 1);
    } finally {
      c.close();
    }
    assert.equal(c.open, 0);
  });

  it('refuses loopback unless private addresses are allowed, by address and by name', async () => {
    const c = client(false);
    const before = relay.connections();
    try {
      const port = new URL(relay.url).port;
      for (const url of [relay.url, `ws://localhost:${port}`]) {
        await assert.rejects(c.handler()(job(url)), (err: Error) => {
          assert.ok(err instanceof PermanentDeliveryError, err.message);
          assert.match(err.message, /loopback/);
          return true;
        });
      }
      assert.equal(relay.connections(), before);
    } finally {
      c.close();
    }
  });

  it('judges the addresses again when it connects (a name that rebinds to loopback)', async () => {
    const guard = new AddressGuard({ allowPrivate: false });
    // The check before connecting is fooled (as by a name that resolved to a public address
    // then); the connection's own lookup still sees loopback and refuses.
    const c = new RelayClient(
      {
        checkUrl: (url) => (url.includes('localhost') ? Promise.resolve() : guard.check(url)),
        allowPrivateAddress: false,
        sign: (t) => signEvent(t, relayKey.secret),
        log,
      },
      { timeoutMs: 2000, maxAnswerBytes: 64 * 1024, idleMs: 60_000 },
    );
    const before = relay.connections();
    try {
      const url = `ws://localhost:${new URL(relay.url).port}`;
      await assert.rejects(c.handler()(job(url)), (err: Error) => {
        assert.ok(err instanceof PermanentDeliveryError, err.message);
        assert.match(err.message, /loopback/);
        return true;
      });
      assert.equal(relay.connections(), before);
    } finally {
      c.close();
    }
  });

  it('retries a relay that does not answer, and one whose answer is too large', async () => {
    const c = client(true, { timeoutMs: 300, maxAnswerBytes: 1024 });
    try {
      relay.answer = () => null;
      await assert.rejects(c.handler()(job(relay.url)), (err: Error) => {
        assert.ok(!(err instanceof PermanentDeliveryError));
        assert.match(err.message, /no OK/);
        return true;
      });
      relay.answer = () => {
        relay.broadcast(JSON.stringify(['NOTICE', 'x'.repeat(5000)]));
        return null;
      };
      await assert.rejects(c.handler()(job(relay.url)), (err: Error) => {
        assert.ok(!(err instanceof PermanentDeliveryError));
        assert.match(err.message, /closed the connection/);
        return true;
      });
    } finally {
      relay.answer = () => [true, ''];
      c.close();
    }
  });

  it('takes an upgrade refused with 404 as permanent, with 503 as worth retrying', async () => {
    const http = createServer((_req, res) => {
      res.writeHead(404).end('no relay here');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const c = client(true);
    try {
      const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
      await assert.rejects(c.handler()(job(url)), PermanentDeliveryError);
      relay.setDown(true);
      await assert.rejects(c.handler()(job(relay.url)), (err: Error) => {
        assert.ok(!(err instanceof PermanentDeliveryError));
        assert.match(err.message, /503/);
        return true;
      });
    } finally {
      relay.setDown(false);
      c.close();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });

  it('never sends a protected event, nor one whose relay is not the destination', async () => {
    const c = client(true);
    const before = relay.events.length;
    try {
      await assert.rejects(c.handler()(job(relay.url, note('mine', [['-']]))), /NIP-70/);
      const bad = { ...job(relay.url), destination: 'ws://elsewhere.example' };
      await assert.rejects(c.handler()(bad), PermanentDeliveryError);
      assert.equal(relay.events.length, before);
    } finally {
      c.close();
    }
  });

  it('closes an idle connection, and opens a new one when needed', async () => {
    const c = client(true, { idleMs: 100 });
    try {
      await c.handler()(job(relay.url));
      assert.equal(c.open, 1);
      await until(() => c.open === 0, 'the idle connection closed');
      const before = relay.connections();
      await c.handler()(job(relay.url));
      assert.equal(relay.connections(), before + 1);
    } finally {
      c.close();
    }
  });
});
