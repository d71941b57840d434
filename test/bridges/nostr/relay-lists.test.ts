// NIP-65 relay lists on a real relay over `ws`: the relay key's list, and the list of this node's
// own author of a served public group once its post is served, each naming the relay's URL as a
// write relay and signed by the key itself (checked with nostr-tools); the author's own list,
// older or already there, is never overwritten; its deletion is never undone; after a restart on
// a new URL the relay's own list follows the URL and the authors' own lists stay.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { verifyEvent } from 'nostr-tools/pure';
import { nostrPubkeyOf } from '../../../bridges/nostr/author.ts';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';
import { RawClient, signed } from './raw-client.ts';

let node: RumNode;
let dir: string;
let gateway: Gateway;
let client: RawClient;
let relayKey: string;
const clients: RawClient[] = [];

async function open(): Promise<void> {
  gateway = await startGateway(node, [nostrBridge({ config: node.config })]);
  client = await RawClient.connect(`${gateway.url.replace(/^http/, 'ws')}/`);
  clients.push(client);
  const info = await fetch(`${gateway.url}/`, { headers: { accept: 'application/nostr+json' } });
  relayKey = ((await info.json()) as { self: string }).self;
}

const relayUrl = () => `${gateway.url.replace(/^http/, 'ws')}/`;

async function listsOf(pubkey: string): Promise<NostrEvent[]> {
  return (await client.req(`rl-${Math.random()}`, { kinds: [10002], authors: [pubkey] })).events;
}

async function servedGroup(name: string): Promise<{ groupId: string; pubkey: string }> {
  const { groupId } = await node.createGroup({
    groupName: name,
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_timeline',
  });
  gateway.exposures.put(groupId, { handle: name, nostr: true, activitypub: false });
  return { groupId, pubkey: nostrPubkeyOf(node.group(groupId).userPubkey)! };
}

/** Posts as the node's own author and waits until the relay serves the post. */
async function post(groupId: string, content: string): Promise<void> {
  await node.postContent(groupId, { type: 'Note', content });
  await node.group(groupId).produce();
  await until(async () => {
    const r = await client.req(`p-${Math.random()}`, { kinds: [1], '#h': [groupId] });
    return r.events.some((e) => e.content === content);
  }, 'the post served');
}

const secretOf = (groupId: string) => node.keystore.get('sign', groupId);

before(async () => {
  ({ node, dir } = await openTempNode({ gatewayPort: 0 }));
  await node.start();
  await open();
});

after(async () => {
  for (const c of clients) c.close();
  await gateway.stop();
  await node.stop();
});

it("serves the relay key's own list: its URL as a write relay, signed by the relay key", async () => {
  const lists = await until(async () => {
    const l = await listsOf(relayKey);
    return l.length > 0 ? l : undefined;
  }, "the relay key's list");
  assert.equal(lists.length, 1);
  assert.equal(lists[0]!.pubkey, relayKey);
  assert.equal(lists[0]!.content, '');
  assert.deepEqual(lists[0]!.tags, [['r', relayUrl(), 'write']]);
  assert.ok(verifyEvent(lists[0]! as never));
});

let first: { groupId: string; pubkey: string };
it("serves the list of the node's own author once its post is served, signed by its own key", async () => {
  first = await servedGroup('lists');
  assert.deepEqual(await listsOf(first.pubkey), [], 'none before the author posts');
  await post(first.groupId, 'hello');
  const lists = await until(async () => {
    const l = await listsOf(first.pubkey);
    return l.length > 0 ? l : undefined;
  }, "the author's list");
  assert.equal(lists.length, 1);
  assert.equal(lists[0]!.pubkey, first.pubkey);
  assert.deepEqual(lists[0]!.tags, [['r', relayUrl(), 'write']]);
  assert.ok(verifyEvent(lists[0]! as never), "the author's own BIP-340 signature");
});

let own: NostrEvent;
it("an author's own list replaces the relay's, even an older one", async () => {
  const [ours] = await listsOf(first.pubkey);
  own = signed(secretOf(first.groupId), {
    kind: 10002,
    tags: [['r', 'wss://elsewhere.example/']],
    created_at: ours!.created_at - 60,
  });
  assert.deepEqual(await client.publish(own), [true, '']);
  assert.deepEqual(
    (await listsOf(first.pubkey)).map((e) => e.id),
    [own.id],
  );
});

let second: { groupId: string; pubkey: string };
it('never publishes over a list the author had published before its first post', async () => {
  second = await servedGroup('already');
  const theirs = signed(secretOf(second.groupId), {
    kind: 10002,
    tags: [['r', 'wss://mine.example/', 'write']],
    created_at: Math.floor(Date.now() / 1000) - 3600,
  });
  assert.deepEqual(await client.publish(theirs), [true, '']);
  await post(second.groupId, 'first post');
  assert.deepEqual(
    (await listsOf(second.pubkey)).map((e) => e.id),
    [theirs.id],
  );
});

let third: { groupId: string; pubkey: string };
it("an author's deletion of the relay's list stands", async () => {
  third = await servedGroup('deleted');
  await post(third.groupId, 'soon without a list');
  const [ours] = await until(async () => {
    const l = await listsOf(third.pubkey);
    return l.length > 0 ? l : undefined;
  }, "the author's list");
  const deletion = signed(secretOf(third.groupId), {
    kind: 5,
    tags: [
      ['a', `10002:${third.pubkey}:`],
      ['k', '10002'],
    ],
  });
  assert.equal(ours!.pubkey, third.pubkey);
  assert.deepEqual(await client.publish(deletion), [true, '']);
  assert.deepEqual(await listsOf(third.pubkey), []);
});

it("after a restart on another URL, the relay's list follows it; the authors' own words stay", async () => {
  const before = (await listsOf(relayKey))[0]!;
  const oldUrl = relayUrl();
  await gateway.stop();
  await node.stop();
  ({ node } = await openTempNode({ gatewayPort: 0 }, dir));
  await node.start();
  await open();
  assert.notEqual(relayUrl(), oldUrl, 'the OS picked another port');
  const lists = await until(async () => {
    const l = await listsOf(relayKey);
    return l[0] && l[0].id !== before.id ? l : undefined;
  }, "the relay key's new list");
  assert.deepEqual(lists[0]!.tags, [['r', relayUrl(), 'write']]);
  assert.ok(lists[0]!.created_at > before.created_at);
  assert.deepEqual(
    (await listsOf(first.pubkey)).map((e) => e.id),
    [own.id],
  );
  assert.deepEqual(await listsOf(third.pubkey), []);
  assert.equal((await listsOf(second.pubkey))[0]?.tags[0]?.[1], 'wss://mine.example/');
});
