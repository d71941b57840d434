// NIP-29 groups over real relays: two nodes A and B in one public group over libp2p on loopback,
// each with its gateway's Nostr relay; nostr-tools clients (an implementation independent of
// ours). A client's event posted on A's relay becomes a trx, is committed, and reaches a client
// subscribed on B's relay live, with its author's own pubkey and signature; a post made on node
// A reaches B's relay under A's own key; duplicates and refusals carry their prefixes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import { Relay } from 'nostr-tools/relay';
import { nostrPubkeyOf } from '../../../bridges/nostr/author.ts';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { LOOPBACK, NET_TEST_LIMITS, startBootstrap, until } from '../../helpers/net.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

interface Side {
  node: RumNode;
  gateway: Gateway;
  url: string;
}

async function startSide(peer: string): Promise<Side> {
  const { node } = await openTempNode({
    gatewayPort: 0,
    listen: [LOOPBACK],
    peers: [peer],
    limits: NET_TEST_LIMITS,
  });
  await node.start();
  // The groups layer is the bridge's default policy, started and stopped with it.
  const gateway = await startGateway(node, [
    nostrBridge({ config: node.config, db: node.store.db }),
  ]);
  return { node, gateway, url: gateway.url.replace(/^http/, 'ws') };
}

async function stopSide(s: Side | undefined): Promise<void> {
  if (!s) return;
  await s.gateway.stop();
  await s.node.stop();
}

const secret = generateSecretKey();
const pubkey = getPublicKey(secret);

let boot: Awaited<ReturnType<typeof startBootstrap>>;
let a: Side;
let b: Side;
let groupId: string;
const clients: Relay[] = [];

async function connect(side: Side): Promise<Relay> {
  const r = await Relay.connect(side.url);
  clients.push(r);
  return r;
}

function post(kind: number, content: string, tags: string[][] = []): NostrEvent {
  return finalizeEvent(
    { kind, content, tags: [['h', groupId], ...tags], created_at: Math.floor(Date.now() / 1000) },
    secret,
  ) as NostrEvent;
}

/** A live subscription collecting what it receives. */
function subscribe(r: Relay, filter: Record<string, unknown>) {
  const got: NostrEvent[] = [];
  let eose = false;
  const sub = r.subscribe([filter as never], {
    onevent: (e) => got.push(e as NostrEvent),
    oneose: () => {
      eose = true;
    },
  });
  return { got, sub, eosed: () => eose };
}

before(async () => {
  boot = await startBootstrap();
  a = await startSide(boot.addr);
  b = await startSide(boot.addr);
  const created = await a.node.createGroup({
    groupName: 'Two relays',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  });
  groupId = created.groupId;
  a.gateway.exposures.put(groupId, { handle: 'tworelays' });
  await b.node.joinGroup(created.seed);
  b.gateway.exposures.put(groupId, { handle: 'tworelays' });
});

after(async () => {
  for (const c of clients) c.close();
  await stopSide(a);
  await stopSide(b);
  await boot?.host.stop();
});

describe('a group on two nodes, each with its relay', () => {
  it("serves the NIP-29 metadata signed by each relay's self key (NIP-11)", async () => {
    for (const side of [a, b]) {
      const res = await fetch(side.gateway.url, { headers: { accept: 'application/nostr+json' } });
      const info = (await res.json()) as {
        self: string;
        supported_nips: number[];
        supported_kinds: number[];
      };
      assert.ok(info.supported_nips.includes(29));
      assert.ok(info.supported_kinds.includes(9) && info.supported_kinds.includes(39000));
      const r = await connect(side);
      const s = subscribe(r, { kinds: [39000], '#d': [groupId] });
      await until(() => s.eosed() && s.got.length > 0, 'the metadata');
      assert.equal(s.got[0]!.pubkey, info.self);
      assert.ok(verifyEvent(s.got[0]! as never));
      s.sub.close();
    }
  });

  it("a post made on node A reaches B's relay under A's own key", async () => {
    const onB = subscribe(await connect(b), { kinds: [1], '#h': [groupId] });
    await a.node.postContent(groupId, { type: 'Note', content: 'from node A' });
    const e = await until(() => onB.got.find((x) => x.content === 'from node A'), 'the post on B');
    assert.equal(e.pubkey, nostrPubkeyOf(a.node.group(groupId).userPubkey));
    assert.ok(verifyEvent(e as never));
    onB.sub.close();
  });

  let sent: NostrEvent;
  it("a client's event on A's relay is received live on B's relay, same pubkey and signature", async () => {
    const onB = subscribe(await connect(b), { kinds: [9], '#h': [groupId] });
    await until(() => onB.eosed(), 'EOSE on B');
    const onA = subscribe(await connect(a), { kinds: [9], '#h': [groupId] });
    sent = post(9, 'hello from a Nostr client');
    const ra = await connect(a);
    assert.equal(await ra.publish(sent as never), '', 'OK true once the trx is accepted');
    const got = await until(() => onB.got.find((x) => x.id === sent.id), 'the event on B', 60_000);
    const fields = (e: NostrEvent) => [
      e.id,
      e.pubkey,
      e.created_at,
      e.kind,
      e.tags,
      e.content,
      e.sig,
    ];
    assert.deepEqual(fields(got), fields(sent));
    assert.equal(got.pubkey, pubkey);
    assert.ok(verifyEvent(got as never));
    await until(() => onA.got.find((x) => x.id === sent.id), 'the event on A');
    // It is a trx in the group, on both nodes.
    const trx = a.gateway.port.trxOfOrigin('nostr', sent.id)!;
    await until(() => b.node.store.getContent(groupId, trx.trxId), 'the trx on B');
    onA.sub.close();
    onB.sub.close();
  });

  it('answers duplicate: for the same event again, on either relay', async () => {
    for (const side of [a, b]) {
      const r = await connect(side);
      const answer = await r.publish(sent as never);
      assert.match(answer, /^duplicate: /);
    }
  });

  it('refuses with a prefix: an unknown group, a forged event', async () => {
    const r = await connect(a);
    const unknown = finalizeEvent(
      {
        kind: 9,
        content: 'x',
        tags: [['h', 'no-such-group']],
        created_at: Math.floor(Date.now() / 1000),
      },
      secret,
    );
    await assert.rejects(r.publish(unknown), /^Error: invalid: group no-such-group/);
    const forged = { ...post(9, 'original'), content: 'changed' };
    await assert.rejects(r.publish(forged as never), /invalid: /);
  });

  it("a REQ for the group's history returns the posts with their original signatures", async () => {
    const r = await connect(b);
    const s = subscribe(r, { '#h': [groupId], kinds: [1, 9] });
    await until(() => s.eosed(), 'EOSE');
    const contents = s.got.map((e) => e.content).sort();
    assert.deepEqual(contents, ['from node A', 'hello from a Nostr client']);
    for (const e of s.got) assert.ok(verifyEvent(e as never));
    s.sub.close();
  });
});
