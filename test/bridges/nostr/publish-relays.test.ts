// Publishing a group's posts to outside relays, over real sockets on loopback: a node with the
// Nostr bridge, the embedded delivery queue and the admin API, publishing to an independent relay
// (`@nostr-relay/core`, test/helpers/nostr-peer-relay.ts) and to scripted relays
// (scripted-relay.ts). A committed post reaches the outside relay as the event this node's relay
// serves (the author's own signature, or the relay key's for a proxy event), checked with
// nostr-tools; a relay that rate-limits, is down or asks for AUTH gets it later; a refusal is
// permanent; a NIP-70 protected event is never sent; a deletion goes out as its kind 5; after a
// restart each relay's stream resumes from its cursor (nothing sent twice, nothing skipped, even
// what was committed while the bridge was down); the admin API refuses bad input with 4xx.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { verifyEvent } from 'nostr-tools/pure';
import { Relay } from 'nostr-tools/relay';
import { nostrPubkeyOf } from '../../../bridges/nostr/author.ts';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import { publishKey } from '../../../bridges/nostr/publisher.ts';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';
import { buildApi } from '../../../src/api/server.ts';
import { TokenService } from '../../../src/api/tokens.ts';
import { runBridgeCommand } from '../../../src/cli/bridge.ts';
import type { ConfigInput } from '../../../src/config/schema.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { type PeerRelay, startPeerRelay } from '../../helpers/nostr-peer-relay.ts';
import { api } from '../../helpers/node-process.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';
import { newKey, RawClient, signed } from './raw-client.ts';
import { type ScriptedRelay, startScriptedRelay } from './scripted-relay.ts';

const CONFIG: ConfigInput = {
  gatewayPort: 0,
  allowPrivateAddress: true,
  limits: { deliveryBackoffBaseMs: 20, deliveryBackoffMaxMs: 100, deliveryTimeoutMs: 3000 },
};

interface Running {
  node: RumNode;
  gateway: Gateway;
  bridge: ReturnType<typeof nostrBridge>;
  admin: FastifyInstance;
  apiUrl: string;
}

let dir: string;
let run: Running;
let peer: PeerRelay;
let scripted: ScriptedRelay;
let authRelay: ScriptedRelay;
let groupId: string;
let privateId: string;
let hiddenId: string;
let spareId: string;

/** The node, its gateway with the Nostr bridge, and its admin API, on the test's directory. */
async function startAll(node?: RumNode): Promise<Running> {
  const opened = node ?? (await openTempNode(CONFIG, dir)).node;
  const bridge = nostrBridge({ config: opened.config });
  const gateway = await startGateway(opened, [bridge]);
  const tokens = await TokenService.open(opened.store, opened.keystore);
  const admin = await buildApi({ node: opened, tokens, gateway });
  await admin.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(admin.server.address() as AddressInfo).port}`;
  return { node: opened, gateway, bridge, admin, apiUrl };
}

async function stopAll(r: Running | undefined): Promise<void> {
  if (!r) return;
  await r.admin.close();
  await r.gateway.stop();
  await r.node.stop();
}

/** This node's own relay. */
function ourUrl(): string {
  return `${run.gateway.url.replace(/^http/, 'ws')}/`;
}

function relaysPath(id: string): string {
  return `/api/v1/bridges/nostr/groups/${id}/relays`;
}

async function putRelays(id: string, relays: unknown) {
  return api(run.apiUrl, 'PUT', relaysPath(id), { relays });
}

/** A post in the group, committed; answers its trx id. */
async function post(content: string, batch = false): Promise<string> {
  const trx = batch
    ? (await run.node.postContentBatch(groupId, [{ type: 'Note', content }]))[0]!
    : await run.node.postContent(groupId, { type: 'Note', content });
  await run.node.group(groupId).produce();
  return trx;
}

/** The events the independent relay stores that match a filter (nostr-tools as the client). */
async function stored(filter: Record<string, unknown>): Promise<NostrEvent[]> {
  const r = await Relay.connect(peer.url);
  try {
    return await new Promise<NostrEvent[]>((resolve) => {
      const got: NostrEvent[] = [];
      const sub = r.subscribe([filter as never], {
        onevent: (e) => got.push(e as NostrEvent),
        oneose: () => {
          sub.close();
          resolve(got);
        },
      });
    });
  } finally {
    r.close();
  }
}

async function onPeer(content: string): Promise<NostrEvent> {
  return until(async () => {
    const got = await stored({ '#h': [groupId], kinds: [1] });
    return got.find((e) => e.content === content);
  }, `"${content}" on the outside relay`);
}

/** Waits until the delivery queue has nothing pending or running. */
async function idle(): Promise<void> {
  await until(async () => {
    const c = await run.gateway.queue.counts();
    return c.pending === 0 && c.active === 0;
  }, 'the delivery queue to drain');
}

async function allJobKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const s of ['pending', 'active', 'done', 'failed'] as const) {
    for (const j of await run.gateway.queue.list(s, 10_000)) keys.push(j.key);
  }
  return keys;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rum-publish-'));
  peer = await startPeerRelay(join(dir, 'peer-relay.sqlite'));
  scripted = await startScriptedRelay();
  authRelay = await startScriptedRelay();
  run = await startAll();
  const make = async (name: string, encryptionType: 'public' | 'private') =>
    (
      await run.node.createGroup({
        groupName: name,
        consensusType: 'poa',
        encryptionType,
        appKey: 'group_timeline',
      })
    ).groupId;
  groupId = await make('Published', 'public');
  privateId = await make('Sealed', 'private');
  hiddenId = await make('Not on Nostr', 'public');
  spareId = await make('Spare', 'public');
  run.gateway.exposures.put(groupId, { handle: 'published', nostr: true, activitypub: false });
  run.gateway.exposures.put(privateId, { handle: 'sealed', nostr: true, activitypub: false });
  run.gateway.exposures.put(hiddenId, { handle: 'hidden', nostr: false, activitypub: true });
  run.gateway.exposures.put(spareId, { handle: 'spare', nostr: true, activitypub: false });
});

after(async () => {
  await stopAll(run);
  await peer?.stop();
  await scripted?.close();
  await authRelay?.close();
});

describe('the admin API', () => {
  it('refuses bad relay lists with 4xx and a message', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      [groupId, { url: 'wss://relay.example' }, 400, /relays/],
      [groupId, ['https://relay.example'], 400, /not a ws:\/\/ or wss:\/\/ URL/],
      [groupId, ['not a url'], 400, /not a URL/],
      [groupId, [42], 400, /not a URL/],
      [groupId, ['wss://user:pw@relay.example'], 400, /credentials/],
      [groupId, [`wss://relay.example/${'x'.repeat(600)}`], 400, /longer than 512/],
      [groupId, Array.from({ length: 11 }, (_, i) => `wss://r${i}.example`), 400, /at most 10/],
      [groupId, [ourUrl()], 400, /own relay/],
      [privateId, ['wss://relay.example'], 409, /private/],
      [hiddenId, ['wss://relay.example'], 404, /not exposed on Nostr/],
      ['6a1b7c4e-0000-4000-8000-000000000000', ['wss://relay.example'], 404, /not exposed/],
    ];
    for (const [id, relays, status, message] of cases) {
      const r = await putRelays(id, relays);
      assert.equal(r.status, status, `${JSON.stringify(relays).slice(0, 80)}: ${r.text}`);
      assert.match(r.json.message, message);
    }
    const extra = await api(run.apiUrl, 'PUT', relaysPath(groupId), { relays: [], more: 1 });
    assert.equal(extra.status, 400);
    const got = await api(run.apiUrl, 'GET', relaysPath(groupId));
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.relays, []);
    assert.equal(got.json.publishing, false);
    assert.equal((await api(run.apiUrl, 'GET', relaysPath(privateId))).json.relays.length, 0);
  });

  it('normalizes and deduplicates, and the CLI sets and shows the list', async () => {
    const r = await putRelays(spareId, [
      'WSS://Relay.Example.COM/',
      'wss://relay.example.com:443',
      'wss://relay.example.com#x',
      'ws://other.example:7777/path/',
    ]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.relays, ['wss://relay.example.com', 'ws://other.example:7777/path/']);
    assert.equal(r.json.publishing, true);
    let text = '';
    const out = {
      stdout: (s: string) => {
        text += s;
      },
    };
    assert.equal(
      await runBridgeCommand(['nostr', 'set-relays', spareId, '--api', run.apiUrl], out),
      0,
    );
    text = '';
    assert.equal(await runBridgeCommand(['nostr', 'relays', spareId, '--api', run.apiUrl], out), 0);
    assert.match(text, /no outside relay/);
    assert.equal(
      await runBridgeCommand(
        ['nostr', 'set-relays', spareId, 'wss://relay.example.com', '--api', run.apiUrl],
        out,
      ),
      0,
    );
    text = '';
    await runBridgeCommand(['nostr', 'relays', spareId, '--api', run.apiUrl], out);
    assert.match(text, /^wss:\/\/relay\.example\.com {2}since /m);
    await assert.rejects(
      runBridgeCommand(['nostr', 'set-relays', spareId, 'http://x', '--api', run.apiUrl], out),
      /400 .*not a ws/,
    );
    assert.equal((await putRelays(spareId, [])).status, 200);
  });
});

describe('publishing', () => {
  let first: NostrEvent;

  it("sends a committed post as its author's signed event, from the head on", async () => {
    await post('before any relay');
    const r = await putRelays(groupId, [peer.url, scripted.url]);
    assert.equal(r.status, 200, r.text);
    await post('first published');
    first = await onPeer('first published');
    assert.ok(verifyEvent(first));
    const owner = run.gateway.port.exposure(groupId)!.ownerPubkey;
    assert.equal(first.pubkey, nostrPubkeyOf(owner));
    assert.deepEqual(
      first.tags.find((t) => t[0] === 'h'),
      ['h', groupId],
    );
    // The same event this node's relay serves.
    const client = await RawClient.connect(ourUrl());
    const here = await client.req('same', { ids: [first.id] });
    client.close();
    assert.deepEqual(JSON.stringify(here.events), JSON.stringify([first]));
    assert.equal(scripted.received(first.id), 1);
    await idle();
    // What was committed before the relay was added is not sent.
    assert.ok(!scripted.events.some((e) => e.content === 'before any relay'));
    assert.equal((await stored({ '#h': [groupId] })).filter((e) => e.kind === 1).length, 1);
  });

  it('sends a post without an author event as the proxy event signed by the relay key', async () => {
    const trx = await post('proxied', true);
    const e = await onPeer('proxied');
    assert.ok(verifyEvent(e));
    assert.equal(e.pubkey, run.bridge.relay().selfPubkey);
    assert.deepEqual(
      e.tags.find((t) => t[0] === 'proxy'),
      ['proxy', trx, 'rum'],
    );
  });

  it('retries a relay that rate-limits, then takes it', async () => {
    scripted.answer = (e) =>
      e.content === 'slow down' && scripted.received(e.id) <= 2
        ? [false, 'rate-limited: slow down']
        : [true, ''];
    await post('slow down');
    const e = await until(
      () => scripted.events.find((x) => x.content === 'slow down' && scripted.received(x.id) >= 3),
      'the third attempt',
    );
    await idle();
    assert.equal(scripted.received(e.id), 3);
    const done = await run.gateway.queue.list('done', 10_000);
    assert.equal(done.find((j) => j.key === publishKey(scripted.url, e.id))?.attempts, 3);
    scripted.answer = () => [true, ''];
  });

  it('retries a relay that is down until it is back', async () => {
    scripted.setDown(true);
    const trx = await post('while the relay is down');
    // The attempt failed and is due again: the queue has it with its error.
    const job = await until(async () => {
      const pending = await run.gateway.queue.list('pending', 10_000);
      return pending.find(
        (j) => j.destination === scripted.url && j.attempts >= 1 && j.lastError !== null,
      );
    }, 'a failed attempt');
    assert.match(job.lastError!, /503/);
    assert.ok(!scripted.events.some((e) => e.content === 'while the relay is down'));
    scripted.setDown(false);
    const e = await until(
      () => scripted.events.find((x) => x.content === 'while the relay is down'),
      'the event once the relay is back',
    );
    assert.ok(verifyEvent(e));
    assert.ok(run.gateway.port.item(groupId, trx));
    await idle();
  });

  it('stops at a permanent refusal', async () => {
    scripted.answer = (e) => (e.content === 'refused' ? [false, 'blocked: not here'] : [true, '']);
    await post('refused');
    const failed = await until(async () => {
      const list = await run.gateway.queue.list('failed', 10_000);
      return list.find((j) => j.destination === scripted.url);
    }, 'the failed job');
    assert.equal(failed.attempts, 1);
    assert.match(failed.lastError ?? '', /blocked: not here/);
    // The other relay took it.
    await onPeer('refused');
    scripted.answer = () => [true, ''];
  });

  it('answers a NIP-42 challenge with the relay key and then sends', async () => {
    authRelay.challenge = true;
    authRelay.answer = (_e, authed) =>
      authed ? [true, ''] : [false, 'auth-required: who are you'];
    assert.equal((await putRelays(groupId, [peer.url, scripted.url, authRelay.url])).status, 200);
    await post('after AUTH');
    const e = await until(
      () => authRelay.events.find((x) => x.content === 'after AUTH'),
      'the event on the relay that wants AUTH',
    );
    await idle();
    assert.ok(authRelay.auths.length >= 1);
    assert.equal(authRelay.auths[0]!.pubkey, run.bridge.relay().selfPubkey);
    const done = await run.gateway.queue.list('done', 10_000);
    assert.ok(done.some((j) => j.key === publishKey(authRelay.url, e.id)));
  });

  it('never sends a NIP-70 protected event', async () => {
    const author = newKey();
    const client = await RawClient.connect(ourUrl());
    try {
      const auth = signed(author.secret, {
        kind: 22242,
        tags: [
          ['relay', ourUrl()],
          ['challenge', client.challenge],
        ],
      });
      client.send(['AUTH', auth]);
      await client.take((m) => m[0] === 'OK' && m[1] === auth.id, 'the AUTH OK');
      const guarded = signed(author.secret, {
        kind: 1,
        content: 'only where I put it',
        tags: [['h', groupId], ['-']],
      });
      const [ok, msg] = await client.publish(guarded);
      assert.ok(ok, msg);
      await run.node.group(groupId).produce();
      // Served here, by this node's relay…
      const served = await until(async () => {
        const r = await client.req('s', { ids: [guarded.id] });
        return r.events[0];
      }, 'the protected event served here');
      assert.deepEqual(served.tags, guarded.tags);
      // …and a later post reaches the outside relays, while the protected one never does.
      await post('after the protected one');
      await onPeer('after the protected one');
      await until(
        () => authRelay.events.find((x) => x.content === 'after the protected one'),
        'the later post',
      );
      await idle();
      for (const r of [scripted, authRelay]) assert.equal(r.received(guarded.id), 0);
      assert.equal((await stored({ ids: [guarded.id] })).length, 0);
      assert.ok(!(await allJobKeys()).some((k) => k.endsWith(guarded.id)));
    } finally {
      client.close();
    }
  });

  it('sends a RUM delete as its kind 5', async () => {
    const trx = await post('to be deleted');
    const target = await onPeer('to be deleted');
    await run.node.postContent(groupId, { type: 'Delete', object: { type: 'Note', id: trx } });
    await run.node.group(groupId).produce();
    const deletion = await until(
      () => scripted.events.find((e) => e.kind === 5 && e.tags.some((t) => t[1] === target.id)),
      'the kind 5',
    );
    assert.ok(verifyEvent(deletion));
    assert.equal(deletion.pubkey, target.pubkey);
    assert.deepEqual(
      deletion.tags.find((t) => t[0] === 'e'),
      ['e', target.id],
    );
    // The independent relay applies it (it keeps no kind 5 itself): the post is gone there.
    await until(
      async () => (await stored({ ids: [target.id] })).length === 0,
      'the post deleted on the outside relay',
    );
    await idle();
  });
});

describe('after a restart', () => {
  it('resumes each relay from its cursor: nothing twice, nothing skipped', async () => {
    const before = await until(
      () => scripted.events.find((e) => e.content === 'first published'),
      'an earlier event',
    );
    await idle();
    const counts = new Map(scripted.events.map((e) => [e.id, scripted.received(e.id)]));
    const connectionsBefore = scripted.connections();
    // Each relay's cursor stands on the group's last item: it was acknowledged once queued.
    const last = run.gateway.port.history(groupId, { limit: 1 })[0]!;
    const cursors = run.node.store.db.$client
      .prepare(
        "SELECT block_id AS blockId, position FROM bridge_cursors WHERE consumer LIKE 'nostr-pub:%' AND group_id = ?",
      )
      .all(groupId) as { blockId: number; position: number }[];
    assert.equal(cursors.length, 3);
    for (const c of cursors) {
      assert.deepEqual({ ...c }, { blockId: last.blockId, position: last.position });
    }
    await stopAll(run);
    // Committed while the bridge is down: the node alone.
    const { node } = await openTempNode(CONFIG, dir);
    const groupBefore = groupId;
    await node.postContent(groupBefore, { type: 'Note', content: 'while the bridge was down' });
    await node.group(groupBefore).produce();
    run = await startAll(node);
    await post('after the restart');
    for (const content of ['while the bridge was down', 'after the restart']) {
      await onPeer(content);
      await until(() => scripted.events.find((e) => e.content === content), content);
      await until(() => authRelay.events.find((e) => e.content === content), content);
    }
    await idle();
    assert.ok(scripted.connections() > connectionsBefore);
    // Nothing sent before the restart was sent again…
    for (const [id, n] of counts) assert.equal(scripted.received(id), n, `event ${id}`);
    assert.equal(scripted.received(before.id), 1);
    // …and what came after was sent once each.
    for (const content of ['while the bridge was down', 'after the restart']) {
      const sent = scripted.events.filter((e) => e.content === content);
      assert.equal(sent.length, 1, content);
    }
    assert.equal((await api(run.apiUrl, 'GET', relaysPath(groupId))).json.relays.length, 3);
  });

  it('stops publishing to a relay taken off the list', async () => {
    assert.equal((await putRelays(groupId, [peer.url])).status, 200);
    await post('only to the independent relay');
    await onPeer('only to the independent relay');
    await idle();
    assert.ok(!scripted.events.some((e) => e.content === 'only to the independent relay'));
    assert.ok(!authRelay.events.some((e) => e.content === 'only to the independent relay'));
  });
});
