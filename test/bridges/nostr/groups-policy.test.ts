// The groups layer (bridges/nostr/groups.ts, inbound.ts, outbound.ts) on a real node and its
// bridge port, with a relay handle that keeps events in a map: metadata signed by the relay key,
// committed posts served under their authors' own signatures or as proxy events, client events
// posted into the chain and served back as they were signed, and every refusal with its prefix.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { nostrPubkeyOf, signEvent, verifyEvent } from '../../../bridges/nostr/author.ts';
import { NostrGroups } from '../../../bridges/nostr/groups.ts';
import type {
  NostrEvent,
  NostrFilter,
  RelayConnection,
  RelayHandle,
} from '../../../bridges/nostr/types.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';

class MapRelay implements RelayHandle {
  readonly events = new Map<string, NostrEvent>();
  readonly removed: string[] = [];
  private readonly key = schnorr.utils.randomSecretKey();
  readonly selfPubkey = Buffer.from(schnorr.getPublicKey(this.key)).toString('hex');
  put(event: NostrEvent) {
    if (this.events.has(event.id)) return { stored: false, reason: 'duplicate' };
    this.events.set(event.id, event);
    return { stored: true };
  }
  remove(id: string) {
    this.removed.push(id);
    return this.events.delete(id);
  }
  sign(template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>) {
    return signEvent(template, this.key);
  }
  find(p: (e: NostrEvent) => boolean) {
    return [...this.events.values()].find(p);
  }
  query(f: NostrFilter, limit: number) {
    return [...this.events.values()]
      .filter(
        (e) =>
          (!f.kinds || f.kinds.includes(e.kind)) &&
          (!f.authors || f.authors.includes(e.pubkey)) &&
          (!f.ids || f.ids.includes(e.id)),
      )
      .sort((a, b) => b.created_at - a.created_at)
      .slice(0, f.limit ?? limit);
  }
}

const anon: RelayConnection = { id: 'c1', ip: '127.0.0.1', authed: new Set() };
const client = schnorr.utils.randomSecretKey();
const clientPk = Buffer.from(schnorr.getPublicKey(client)).toString('hex');

let node: RumNode;
let gateway: Gateway;
let relay: MapRelay;
let groups: NostrGroups;
let groupId: string;

function clientEvent(kind: number, content: string, tags: string[][], key = client) {
  return signEvent(
    { kind, content, tags: [['h', groupId], ...tags], created_at: Math.floor(Date.now() / 1000) },
    key,
  );
}

const produce = () => node.group(groupId).produce();

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0 }));
  gateway = await startGateway(node, []);
  ({ groupId } = await node.createGroup({
    groupName: 'Pizza lovers',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  }));
  gateway.exposures.put(groupId, { handle: 'pizza' });
  relay = new MapRelay();
  groups = new NostrGroups(gateway.port, relay, { verify: verifyEvent });
  groups.start();
});

after(async () => {
  await groups.stop();
  await gateway.stop();
  await node.stop();
});

describe('NIP-29 groups on RUM groups', () => {
  it('publishes the group metadata signed by the relay key', () => {
    const meta = (kind: number) => relay.find((e) => e.kind === kind && e.tags[0]?.[1] === groupId);
    const m = meta(39000)!;
    assert.equal(m.pubkey, relay.selfPubkey);
    assert.ok(verifyEvent(m));
    assert.ok(Math.abs(m.created_at - Date.now() / 1000) < 60, 'a real created_at');
    assert.deepEqual(m.tags.slice(0, 4), [
      ['d', groupId],
      ['name', 'Pizza lovers'],
      ['public'],
      ['open'],
    ]);
    const owner = nostrPubkeyOf(node.group(groupId).userPubkey)!;
    assert.deepEqual(meta(39001)!.tags[1], ['p', owner, 'owner']);
    assert.deepEqual(meta(39002)!.tags[1], ['p', owner]);
    assert.equal(meta(39003)!.tags[1]![0], 'role');
  });

  let ownPost: NostrEvent;
  it("serves a post made on the node under its author's own key", async () => {
    const trxId = await node.postContent(groupId, { type: 'Note', content: 'margherita' });
    await produce();
    ownPost = await until(() => relay.find((e) => e.content === 'margherita'), 'the post');
    assert.equal(ownPost.pubkey, nostrPubkeyOf(node.group(groupId).userPubkey));
    assert.ok(verifyEvent(ownPost));
    assert.deepEqual(groups.links.trxOf(groupId, ownPost.id)?.trxId, trxId);
  });

  let proxy: NostrEvent;
  let proxyTrx: string;
  it('serves a post without an author event as a relay-signed event with a NIP-48 proxy tag', async () => {
    // The batch path signs no Nostr event (as an older node or quorum).
    proxyTrx = (await node.postContentBatch(groupId, [{ type: 'Note', content: 'quattro' }]))[0]!;
    await produce();
    proxy = await until(() => relay.find((e) => e.content === 'quattro'), 'the proxy event');
    assert.equal(proxy.pubkey, relay.selfPubkey);
    assert.deepEqual(
      proxy.tags.find((t) => t[0] === 'proxy'),
      ['proxy', proxyTrx, 'rum'],
    );
    const item = gateway.port.item(groupId, proxyTrx)!;
    assert.equal(proxy.created_at, Math.floor(Number(BigInt(item.timestamp) / 1_000_000n) / 1000));
    assert.ok(proxy.tags.some((t) => t[0] === 'previous' && t[1] === ownPost.id.slice(0, 8)));
  });

  let clientPost: NostrEvent;
  it("takes a client's reply, posts it as a trx and serves the client's own event", async () => {
    clientPost = clientEvent(1, 'with pineapple?', [
      ['e', proxy.id, '', 'root', proxy.pubkey],
      ['previous', ownPost.id.slice(0, 8)],
    ]);
    assert.deepEqual(await groups.onEvent(clientPost, anon), { action: 'taken' });
    const origin = gateway.port.trxOfOrigin('nostr', clientPost.id)!;
    assert.equal(origin.groupId, groupId);
    await produce();
    const served = await until(() => relay.events.get(clientPost.id), 'the client event');
    assert.deepEqual(served, clientPost);
    const item = gateway.port.item(groupId, origin.trxId)!;
    assert.equal(item.inReplyTo, proxyTrx, 'the reply target resolves to the trx');
    assert.equal(item.senderPubkey, gateway.port.authorKey('nostr', clientPk));
    // The client became a member.
    await until(
      () =>
        relay.find(
          (e) => e.kind === 39002 && e.tags.some((t) => t[0] === 'p' && t[1] === clientPk),
        ),
      'the member list with the client',
    );
  });

  it('answers duplicate: for an event already in the group', async () => {
    const v = await groups.onEvent(clientPost, anon);
    assert.equal(v.action, 'taken');
    assert.match((v as { message: string }).message, /^duplicate: /);
  });

  it('takes a reaction and a deletion by the author; refuses a deletion by someone else', async () => {
    const like = clientEvent(7, '+', [
      ['e', ownPost.id],
      ['p', ownPost.pubkey],
    ]);
    assert.deepEqual(await groups.onEvent(like, anon), { action: 'taken' });
    const stranger = schnorr.utils.randomSecretKey();
    await produce();
    await until(() => relay.events.get(like.id), 'the like');
    const forged = clientEvent(5, '', [['e', clientPost.id]], stranger);
    const refused = await groups.onEvent(forged, anon);
    assert.equal(refused.action, 'refuse');
    assert.match((refused as { message: string }).message, /^blocked: /);
    const del = clientEvent(5, '', [['e', clientPost.id]]);
    assert.deepEqual(await groups.onEvent(del, anon), { action: 'taken' });
    await produce();
    await until(() => relay.removed.includes(clientPost.id), 'the deleted event removed');
    assert.equal(relay.events.has(clientPost.id), false);
  });

  it('refuses with the standard prefixes', async () => {
    const msg = async (e: NostrEvent) => {
      const v = await groups.onEvent(e, anon);
      return v.action === 'refuse' ? v.message : `(${v.action})`;
    };
    const noH = signEvent({ kind: 1, content: 'x', tags: [], created_at: 1 }, client);
    assert.match(await msg(noH), /^restricted: /);
    const other = signEvent(
      { kind: 1, content: 'x', tags: [['h', 'nope']], created_at: Math.floor(Date.now() / 1000) },
      client,
    );
    assert.match(await msg(other), /^invalid: group nope is not on this relay/);
    assert.match(await msg(clientEvent(1, 'x', [['previous', 'deadbeef']])), /^invalid: previous/);
    const late = signEvent(
      { kind: 1, content: 'x', tags: [['h', groupId]], created_at: 1_000_000 },
      client,
    );
    assert.match(await msg(late), /^invalid: late publication/);
    assert.match(await msg(clientEvent(9000, '', [['p', clientPk]])), /^restricted: /);
    assert.match(await msg(clientEvent(30023, 'x', [])), /^invalid: kind 30023/);
    assert.equal(
      await msg(signEvent({ kind: 0, content: '{}', tags: [], created_at: 1 }, client)),
      '(store)',
    );
  });

  it('answers join and leave requests', async () => {
    const joiner = schnorr.utils.randomSecretKey();
    const join = () => clientEvent(9021, '', [], joiner);
    assert.deepEqual(await groups.onEvent(join(), anon), { action: 'taken' });
    const again = await groups.onEvent(join(), anon);
    assert.equal(again.action, 'refuse');
    assert.match((again as { message: string }).message, /^duplicate: /);
    assert.deepEqual(await groups.onEvent(clientEvent(9022, '', [], joiner), anon), {
      action: 'taken',
    });
  });

  it("refuses an author the owner's deny list names", async () => {
    const denied = schnorr.utils.randomSecretKey();
    const deniedPk = Buffer.from(schnorr.getPublicKey(denied)).toString('hex');
    // The owner denies the Nostr key itself (its RUM form).
    const rumKey = Buffer.concat([Buffer.of(2), Buffer.from(deniedPk, 'hex')]).toString(
      'base64url',
    );
    await node.updateTrxList(groupId, 'deny', 'add', rumKey, [0], '');
    await produce();
    const v = await groups.onEvent(clientEvent(1, 'let me in', [], denied), anon);
    assert.equal(v.action, 'refuse');
    assert.match((v as { message: string }).message, /^blocked: /);
  });

  it('serves a forged carried event as a proxy event, never under the forged key', async () => {
    const victim = schnorr.utils.randomSecretKey();
    const forged = signEvent(
      {
        kind: 1,
        content: 'I said this',
        tags: [['h', groupId]],
        created_at: Math.floor(Date.now() / 1000),
      },
      victim,
    );
    // The node's own key posts a payload claiming another key's event as its own.
    const [trxId] = await node.postContentBatch(groupId, [
      { type: 'Note', content: 'I said this', nostr: forged },
    ]);
    await produce();
    const served = await until(
      () => relay.find((e) => e.tags.some((t) => t[0] === 'proxy' && t[1] === trxId)),
      'the proxy event',
    );
    assert.equal(served.pubkey, relay.selfPubkey);
    assert.equal(relay.events.has(forged.id), false, 'the forged event is not served');
  });

  it('after a restart, previous references to events served before it still resolve', async () => {
    await groups.stop();
    groups = new NostrGroups(gateway.port, relay, { verify: verifyEvent });
    await groups.start();
    const e = clientEvent(1, 'still here', [['previous', ownPost.id.slice(0, 8)]]);
    assert.deepEqual(await groups.onEvent(e, anon), { action: 'taken' });
  });

  it('serves a private group only to connections that AUTHed with a member key', async () => {
    const { groupId: priv } = await node.createGroup({
      groupName: 'secret',
      consensusType: 'poa',
      encryptionType: 'private',
      appKey: 'group_bbs',
    });
    gateway.exposures.put(priv, { handle: 'secret', activitypub: false });
    await until(() => relay.find((e) => e.kind === 39000 && e.tags[0]?.[1] === priv), 'metadata');
    const owner = nostrPubkeyOf(node.group(priv).userPubkey)!;
    const member: RelayConnection = { id: 'c2', ip: '127.0.0.1', authed: new Set([owner]) };
    const stranger: RelayConnection = { id: 'c3', ip: '127.0.0.1', authed: new Set([clientPk]) };
    const ev = signEvent({ kind: 1, content: 's', tags: [['h', priv]], created_at: 1 }, client);
    assert.equal(groups.canRead(ev, member), true);
    assert.equal(groups.canRead(ev, anon), false);
    assert.equal(groups.canRead(ev, stranger), false);
    assert.match(groups.checkFilter({ '#h': [priv] }, anon)!, /^auth-required: /);
    assert.match(groups.checkFilter({ '#h': [priv] }, stranger)!, /^restricted: /);
    assert.equal(groups.checkFilter({ '#h': [priv] }, member), null);
    assert.equal(groups.checkFilter({ '#h': [groupId] }, anon), null);
    const join = signEvent(
      { kind: 9021, content: '', tags: [['h', priv]], created_at: Math.floor(Date.now() / 1000) },
      client,
    );
    const v = await groups.onEvent(join, stranger);
    assert.match((v as { message: string }).message, /^restricted: /);
  });
});
