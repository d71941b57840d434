/**
 * One independent Nostr client's session against the relay, run in a worker thread by
 * clients.test.ts: these clients leave timers behind (NDK's validation ratio, rust-nostr's
 * sleeps), which a terminated worker takes with it. workerData: { which, url }; posts 'done',
 * or fails with the assertion that did not hold.
 */
import assert from 'node:assert/strict';
import { parentPort, workerData } from 'node:worker_threads';
import NDK, {
  NDKEvent,
  NDKPrivateKeySigner,
  NDKRelayAuthPolicies,
  NDKRelaySet,
} from '@nostr-dev-kit/ndk';
import * as rust from '@rust-nostr/nostr-sdk';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { until } from '../../helpers/until.ts';
import { RawClient } from './raw-client.ts';

const { which, url } = workerData as { which: 'nostr-tools' | 'ndk' | 'rust'; url: string };
const relay = { url };
const now = () => Math.floor(Date.now() / 1000);

/** What the relay has for a filter, read with our raw client. */
async function stored(filter: Record<string, unknown>) {
  const c = await RawClient.connect(relay.url);
  try {
    return (await c.req('check', filter)).events;
  } finally {
    c.close();
  }
}

async function nostrTools(): Promise<void> {
  useWebSocketImplementation(WebSocket);

  const pool = new SimplePool();
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  try {
    const profile = finalizeEvent(
      { kind: 0, content: '{"name":"tools"}', tags: [], created_at: now() },
      sk,
    );
    await Promise.all(pool.publish([relay.url], profile));
    const back = await pool.querySync([relay.url], { authors: [pk], kinds: [0] });
    assert.deepEqual(
      back.map((e) => e.id),
      [profile.id],
    );

    const live: string[] = [];
    const sub = pool.subscribeMany(
      [relay.url],
      { authors: [pk], kinds: [3] },
      { onevent: (e) => live.push(e.id) },
    );
    const follows = finalizeEvent(
      { kind: 3, content: '', tags: [['p', pk]], created_at: now() },
      sk,
    );
    // Published through another connection, so that it arrives live.
    const other = new SimplePool();
    await Promise.all(other.publish([relay.url], follows));
    other.destroy();
    await until(() => live.includes(follows.id), 'the live kind-3');
    sub.close();

    const r = await pool.ensureRelay(relay.url);
    assert.equal(await r.count([{ authors: [pk] }], {}), 2);

    // A protected event: refused with auth-required, then AUTH, then accepted.
    const protectedProfile = finalizeEvent(
      { kind: 0, content: '{"name":"mine"}', tags: [['-']], created_at: now() + 1 },
      sk,
    );
    await Promise.all(
      pool.publish([relay.url], protectedProfile, {
        onauth: async (template) => finalizeEvent(template, sk),
      }),
    );
    assert.deepEqual(
      (await stored({ ids: [protectedProfile.id] })).map((e) => e.id),
      [protectedProfile.id],
    );
  } finally {
    pool.destroy();
  }
}

async function ndkSession(): Promise<void> {
  const signer = NDKPrivateKeySigner.generate();
  // Only this relay: NDK's outbox model would reach for public relays (loopback only here).
  const ndk = new NDK({
    explicitRelayUrls: [relay.url],
    signer,
    enableOutboxModel: false,
    outboxRelayUrls: [],
    autoConnectUserRelays: false,
    relayConnectionFilter: (url) => url === relay.url,
  });
  ndk.relayAuthDefaultPolicy = NDKRelayAuthPolicies.signIn({ ndk });
  // NDK signs in as soon as the relay sends its challenge (on connect), then says 'authed'.
  const ndkRelay = [...ndk.pool.relays.values()][0]!;
  let authed = false;
  ndkRelay.once('authed', () => {
    authed = true;
  });
  await ndk.connect(5000);
  const pk = (await signer.user()).pubkey;
  try {
    const profile = new NDKEvent(ndk, { kind: 0, content: '{"name":"ndk"}' });
    await profile.publish();
    const back = await ndk.fetchEvents({ authors: [pk], kinds: [0] });
    assert.deepEqual(
      [...back].map((e) => e.id),
      [profile.id],
    );

    const live: string[] = [];
    const sub = ndk.subscribe(
      { authors: [pk], kinds: [3], since: now() - 5 },
      { closeOnEose: false },
      { onEvent: (e) => void live.push(e.id) },
    );
    const follows = new NDKEvent(ndk, { kind: 3, content: '', tags: [['p', pk]] });
    await follows.sign();
    const c = await RawClient.connect(relay.url);
    assert.deepEqual(await c.publish(follows.rawEvent() as never), [true, '']);
    c.close();
    await until(() => live.includes(follows.id), 'the live kind-3');
    sub.stop();

    const set = NDKRelaySet.fromRelayUrls([relay.url], ndk);
    const counted = await set.count([{ authors: [pk] }]);
    assert.equal(counted.count, 2);

    // Signed in: a protected event by the signed-in author is taken.
    await until(() => authed, 'NDK to authenticate');
    const mine = new NDKEvent(ndk, {
      kind: 10002,
      content: '',
      tags: [['-'], ['r', 'wss://relay.example']],
    });
    await mine.publish();
    assert.deepEqual(
      (await stored({ ids: [mine.id] })).map((e) => e.id),
      [mine.id],
    );
  } finally {
    for (const r of ndk.pool.relays.values()) r.disconnect();
  }
}

async function rustSession(): Promise<void> {
  await rust.loadWasmAsync();
  const keys = rust.Keys.generate();
  const pk = keys.publicKey.toHex();
  const client = new rust.Client(rust.NostrSigner.keys(keys));
  await client.addRelay(relay.url);
  await client.connect();
  try {
    const sent = await client.sendEventBuilder(
      rust.EventBuilder.metadata(new rust.Metadata().name('rust')),
    );
    assert.deepEqual(sent.success, [relay.url], JSON.stringify(sent.failed));
    const back = await client.fetchEvents(
      new rust.Filter().author(keys.publicKey).kind(new rust.Kind(0)),
      rust.Duration.fromSecs(5),
    );
    assert.deepEqual(
      back.toVec().map((e) => e.id.toHex()),
      [sent.id.toHex()],
    );

    const live: string[] = [];
    const abort = client.handleNotifications({
      handleEvent: async (_url, _sub, event) => {
        live.push(event.id.toHex());
        return false;
      },
      handleMsg: async () => false,
    });
    await client.subscribe(
      new rust.Filter().author(keys.publicKey).kind(new rust.Kind(3)).since(rust.Timestamp.now()),
    );
    // From another connection: the SDK does not notify events it sent itself.
    const follows = rust.EventBuilder.contactList([]).signWithKeys(keys);
    const c = await RawClient.connect(relay.url);
    assert.deepEqual(await c.publish(JSON.parse(follows.asJson())), [true, '']);
    c.close();
    await until(() => live.includes(follows.id.toHex()), 'the live kind-3');
    abort.abort();

    const r = await client.relay(relay.url);
    const n = await r.countEvents(
      new rust.Filter().author(keys.publicKey),
      rust.Duration.fromSecs(5),
    );
    assert.equal(Number(n), 2);

    // A protected event: the relay answers auth-required, the client authenticates and sends
    // it again (automatic authentication is on by default).
    const prot = await client.sendEventBuilder(
      rust.EventBuilder.metadata(new rust.Metadata().name('mine'))
        .tags([rust.Tag.protected()])
        // Later than the first profile: at the same second the lower id would stay.
        .customCreatedAt(rust.Timestamp.fromSecs(now() + 1)),
    );
    assert.deepEqual(prot.success, [relay.url], JSON.stringify(prot.failed));
    assert.deepEqual(
      (await stored({ ids: [prot.id.toHex()] })).map((e) => e.pubkey),
      [pk],
    );
  } finally {
    await client.shutdown();
  }
}

await { 'nostr-tools': nostrTools, ndk: ndkSession, rust: rustSession }[which]();
parentPort?.postMessage('done');
