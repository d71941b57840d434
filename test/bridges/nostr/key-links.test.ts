// Nostr ↔ RUM key links on a real relay over `ws`, Nostr events signed with nostr-tools and the
// RUM keys' tokens with noble (implementations independent of the bridge's): a link posted by
// the RUM key with the Nostr key's NIP-39 list, and one sent from the Nostr side with the RUM
// key's token, make the two keys one author (39002 lists them once, NIP-05 names the RUM key by
// its Nostr key, the owner's deny list of the RUM key blocks its Nostr key); forged statements
// (either signature wrong, another group, another key) link nothing; an unlink by either key, a
// RUM Delete of the statement, undo a link, and an old statement replayed does not make it again.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import type { FastifyInstance } from 'fastify';
import * as nip19 from 'nostr-tools/nip19';
import { verifyEvent } from 'nostr-tools/pure';
import { nostrPubkeyOf } from '../../../bridges/nostr/author.ts';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import { KeyLinks } from '../../../bridges/nostr/key-links.ts';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';
import { buildApi } from '../../../src/api/server.ts';
import { TokenService } from '../../../src/api/tokens.ts';
import { encodePubkey, publicKeyOf } from '../../../src/crypto/keys.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';
import { newKey, RawClient, signed } from './raw-client.ts';

let node: RumNode;
let gateway: Gateway;
let adminApp: FastifyInstance;
let client: RawClient;
let links: KeyLinks;
let groupId: string;
let otherGroup: string;

/** A RUM key held outside the node (as a light client holds its own). */
function rumKey() {
  const priv = schnorr.utils.randomSecretKey();
  const pubkey = encodePubkey(publicKeyOf(priv));
  return { priv, pubkey, hex: Buffer.from(pubkey, 'base64url').toString('hex') };
}
type RumKey = ReturnType<typeof rumKey>;

const now = () => Math.floor(Date.now() / 1000);

/** The RUM key's token for a link made from the Nostr side, written from the spec with noble. */
function token(group: string, rum: RumKey, nostrPubkey: string, createdAt: number): string {
  const msg = createHash('sha256')
    .update(`rum-nostr-link:${group}:${rum.hex}:${nostrPubkey}:${createdAt}`)
    .digest();
  return Buffer.from(schnorr.sign(msg, rum.priv)).toString('hex');
}

/** A NIP-39 list (kind 10011) by a Nostr key. */
function list(secret: Uint8Array, tags: string[][], createdAt = now()): NostrEvent {
  return signed(secret, { kind: 10011, tags, created_at: createdAt });
}

const linkPayload = (rum: RumKey | string, nostrPubkey: string, statement: unknown) => ({
  type: 'NostrKeyLink',
  rumPubkey: typeof rum === 'string' ? rum : rum.pubkey,
  nostrPubkey,
  statement,
});

/** Posts a payload signed by a RUM key (a light client's trx) and commits it. */
async function postAs(rum: RumKey, payload: Record<string, unknown>): Promise<string> {
  const trxId = await node.postAs(groupId, payload, { priv: rum.priv, pubkey: rum.pubkey });
  await node.group(groupId).produce();
  return trxId;
}

/** Posts as the node's own key, commits, and waits until the relay has served past it. */
async function settle(): Promise<void> {
  const content = `marker ${Math.random()}`;
  await node.postContent(groupId, { type: 'Note', content });
  await node.group(groupId).produce();
  await until(async () => {
    const r = await client.req(`m-${Math.random()}`, { kinds: [1], '#h': [groupId] });
    return r.events.some((e) => e.content === content);
  }, 'the marker served');
}

async function members(): Promise<string[]> {
  const r = await client.req(`39002-${Math.random()}`, { kinds: [39002], '#d': [groupId] });
  return (r.events[0]?.tags ?? []).filter((t) => t[0] === 'p').map((t) => t[1]!);
}

async function nip05(rum: RumKey): Promise<Record<string, string>> {
  const res = await fetch(`${gateway.url}/.well-known/nostr.json?name=u_${rum.hex}`);
  return ((await res.json()) as { names: Record<string, string> }).names;
}

/** A kind-1 group post by a Nostr key through the relay: its OK. */
function groupPost(secret: Uint8Array, content: string): Promise<[boolean, string]> {
  return client.publish(signed(secret, { kind: 1, content, tags: [['h', groupId]] }));
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0 }));
  await node.start();
  gateway = await startGateway(node, [nostrBridge({ config: node.config })]);
  client = await RawClient.connect(`${gateway.url.replace(/^http/, 'ws')}/`);
  links = new KeyLinks(gateway.port.kv('nostr'));
  const make = async (name: string) => {
    const { groupId: id } = await node.createGroup({
      groupName: name,
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_timeline',
    });
    gateway.exposures.put(id, { handle: name, nostr: true, activitypub: false });
    return id;
  };
  groupId = await make('linked');
  otherGroup = await make('elsewhere');
  adminApp = await buildApi({
    node,
    tokens: await TokenService.open(node.store, node.keystore),
    gateway,
  });
});

after(async () => {
  client?.close();
  await adminApp?.close();
  await gateway.stop();
  await node.stop();
});

describe('a link posted by the RUM key', () => {
  const rum = rumKey();
  const nostr = newKey();
  let statement: NostrEvent;
  let linkTrx: string;

  it('makes one author: listed once, named by its Nostr key', async () => {
    // Both keys joined from Nostr: two members before the link.
    for (const secret of [nostr.secret, rum.priv]) {
      const join = signed(secret, { kind: 9021, tags: [['h', groupId]] });
      assert.deepEqual(await client.publish(join), [true, '']);
    }
    const x = nostrPubkeyOf(rum.pubkey)!;
    await until(async () => {
      const m = await members();
      return m.includes(x) && m.includes(nostr.pubkey);
    }, 'both keys in 39002');
    statement = list(nostr.secret, [['i', `rum:${rum.hex}`, groupId]]);
    linkTrx = await postAs(rum, linkPayload(rum, nostr.pubkey, statement));
    await until(() => links.rumOf(groupId, nostr.pubkey) === rum.pubkey, 'the link');
    assert.equal(links.nostrOf(groupId, rum.pubkey), nostr.pubkey);
    await until(async () => {
      const m = await members();
      return m.includes(nostr.pubkey) && !m.includes(x);
    }, '39002 lists the pair once, by its Nostr key');
    assert.deepEqual(await nip05(rum), { [`u_${rum.hex}`]: nostr.pubkey });
  });

  it('the admin API lists the pair as one author, with its NIP-19 and NIP-05 identifiers', async () => {
    const res = await adminApp.inject({
      method: 'GET',
      url: `/api/v1/bridges/nostr/groups/${groupId}/links`,
    });
    assert.equal(res.statusCode, 200, res.body);
    const host = new URL(gateway.url).host;
    assert.deepEqual(res.json(), {
      group_id: groupId,
      links: [
        {
          rum_pubkey: rum.pubkey,
          nostr_pubkey: nostr.pubkey,
          npub: nip19.npubEncode(nostr.pubkey),
          nip05: `u_${rum.hex}@${host}`,
          trx_id: linkTrx,
        },
      ],
    });
    const unknown = await adminApp.inject({
      method: 'GET',
      url: '/api/v1/bridges/nostr/groups/no-such-group/links',
    });
    assert.equal(unknown.statusCode, 404);
  });

  it("the owner's deny list of the RUM key blocks its Nostr key", async () => {
    assert.deepEqual(await groupPost(nostr.secret, 'allowed'), [true, '']);
    await node.updateTrxList(groupId, 'deny', 'add', rum.pubkey, [0], '');
    await node.group(groupId).produce();
    const [ok, message] = await groupPost(nostr.secret, 'denied');
    assert.equal(ok, false);
    assert.match(message, /^blocked: /);
    await node.updateTrxList(groupId, 'deny', 'remove', rum.pubkey, [0], '');
    await node.group(groupId).produce();
  });

  it('a RUM Delete of the statement by the RUM key unlinks; posting it again links again', async () => {
    await postAs(rum, { type: 'Delete', object: { type: 'Note', id: linkTrx } });
    await until(() => links.rumOf(groupId, nostr.pubkey) === undefined, 'unlinked');
    await postAs(rum, linkPayload(rum, nostr.pubkey, statement));
    await until(() => links.rumOf(groupId, nostr.pubkey) === rum.pubkey, 'linked again');
  });

  it("the RUM key's unlink undoes it; the old link replayed by someone else does not", async () => {
    await postAs(rum, { type: 'NostrKeyUnlink', rumPubkey: rum.pubkey, nostrPubkey: nostr.pubkey });
    await until(() => links.rumOf(groupId, nostr.pubkey) === undefined, 'unlinked');
    // Named by its own key again (it posted its statements); its Nostr key is on its own.
    assert.deepEqual(await nip05(rum), { [`u_${rum.hex}`]: nostrPubkeyOf(rum.pubkey) });
    await node.updateTrxList(groupId, 'deny', 'add', rum.pubkey, [0], '');
    await node.group(groupId).produce();
    assert.deepEqual(await groupPost(nostr.secret, 'on its own'), [true, '']);
    // Anyone may carry the Nostr key's list with a token; one older than the unlink is void.
    const t = now() - 5;
    const old = list(
      nostr.secret,
      [['i', `rum:${rum.hex}`, groupId, token(groupId, rum, nostr.pubkey, t)]],
      t,
    );
    await node.postContent(groupId, linkPayload(rum, nostr.pubkey, old));
    await settle();
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
  });
});

describe('a link sent from the Nostr side', () => {
  const rum = rumKey();
  const nostr = newKey();
  let statement: NostrEvent;

  it('is posted into the group by the relay and links once committed', async () => {
    const t = now() - 30;
    statement = list(
      nostr.secret,
      [
        ['i', 'github:someone', 'abc'],
        ['i', `rum:${rum.hex}`, groupId, token(groupId, rum, nostr.pubkey, t)],
      ],
      t,
    );
    assert.ok(verifyEvent(statement as never));
    assert.deepEqual(await client.publish(statement), [true, '']);
    await node.group(groupId).produce();
    await until(() => links.rumOf(groupId, nostr.pubkey) === rum.pubkey, 'the link');
    assert.deepEqual(await nip05(rum), { [`u_${rum.hex}`]: nostr.pubkey });
    // The list is kept as any relay keeps a NIP-39 list.
    const stored = await client.req('nip39', { kinds: [10011], authors: [nostr.pubkey] });
    assert.deepEqual(
      stored.events.map((e) => e.id),
      [statement.id],
    );
  });

  it('an older list without the identity, carried into the chain, does not unlink', async () => {
    const older = list(nostr.secret, [['i', 'github:someone', 'abc']], statement.created_at - 60);
    await node.postContent(groupId, {
      type: 'NostrKeyUnlink',
      rumPubkey: rum.pubkey,
      nostrPubkey: nostr.pubkey,
      statement: older,
    });
    await settle();
    assert.equal(links.rumOf(groupId, nostr.pubkey), rum.pubkey);
  });

  it('a newer list that still names the RUM key, carried as an unlink, does not unlink', async () => {
    const still = list(nostr.secret, [['i', `rum:${rum.hex}`, groupId]], statement.created_at + 1);
    await node.postContent(groupId, {
      type: 'NostrKeyUnlink',
      rumPubkey: rum.pubkey,
      nostrPubkey: nostr.pubkey,
      statement: still,
    });
    await settle();
    assert.equal(links.rumOf(groupId, nostr.pubkey), rum.pubkey);
  });

  it('a newer list that drops the identity, sent to the relay, unlinks', async () => {
    const newer = list(nostr.secret, [['i', 'github:someone', 'abc']]);
    assert.deepEqual(await client.publish(newer), [true, '']);
    await node.group(groupId).produce();
    await until(() => links.rumOf(groupId, nostr.pubkey) === undefined, 'unlinked');
  });

  it('the relay refuses a list whose token does not verify, and posts nothing', async () => {
    const t = now();
    const wrong = rumKey();
    const forged = list(
      nostr.secret,
      [['i', `rum:${rum.hex}`, groupId, token(groupId, wrong, nostr.pubkey, t)]],
      t,
    );
    const [ok, message] = await client.publish(forged);
    assert.equal(ok, false);
    assert.match(message, /^invalid: the token of rum:/);
    assert.equal(gateway.port.trxOfOrigin('nostr', `${forged.id}:${groupId}`), undefined);
  });
});

describe('forged statements link nothing', () => {
  /** Posts a statement as `sender` and waits until the relay has read past it. */
  async function attempt(sender: RumKey, payload: Record<string, unknown>) {
    await postAs(sender, payload);
    await settle();
  }

  it("a Nostr key's list whose signature does not verify", async () => {
    const rum = rumKey();
    const nostr = newKey();
    const good = list(nostr.secret, [['i', `rum:${rum.hex}`, groupId]]);
    const tampered = { ...good, tags: [['i', `rum:${rum.hex}`, groupId], ['x']] };
    await attempt(rum, linkPayload(rum, nostr.pubkey, tampered));
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
    await attempt(
      rum,
      linkPayload(rum, nostr.pubkey, {
        ...good,
        sig: good.sig.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      }),
    );
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
  });

  it('a list signed by another Nostr key than the one named', async () => {
    const rum = rumKey();
    const named = newKey();
    const signer = newKey();
    const statement = list(signer.secret, [['i', `rum:${rum.hex}`, groupId]]);
    await attempt(rum, linkPayload(rum, named.pubkey, statement));
    assert.equal(links.rumOf(groupId, named.pubkey), undefined);
    assert.equal(links.rumOf(groupId, signer.pubkey), undefined);
  });

  it('a list that names the RUM key for another group', async () => {
    const rum = rumKey();
    const nostr = newKey();
    const statement = list(nostr.secret, [['i', `rum:${rum.hex}`, otherGroup]]);
    await attempt(rum, linkPayload(rum, nostr.pubkey, statement));
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
  });

  it('a list that names another RUM key than the trx sender, with no token', async () => {
    const rum = rumKey();
    const sender = rumKey();
    const nostr = newKey();
    const statement = list(nostr.secret, [['i', `rum:${rum.hex}`, groupId]]);
    await attempt(sender, linkPayload(rum, nostr.pubkey, statement));
    await attempt(sender, linkPayload(sender, nostr.pubkey, statement));
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
  });

  it("a RUM key's token signed by another key, or for another group", async () => {
    const rum = rumKey();
    const nostr = newKey();
    const carrier = rumKey();
    const t = now();
    for (const tok of [
      token(groupId, rumKey(), nostr.pubkey, t),
      token(otherGroup, rum, nostr.pubkey, t),
      token(groupId, rum, nostr.pubkey, t - 1),
    ]) {
      const statement = list(nostr.secret, [['i', `rum:${rum.hex}`, groupId, tok]], t);
      await attempt(carrier, linkPayload(rum, nostr.pubkey, statement));
    }
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
    // The same, with the right token, links: the checks above were what refused.
    const statement = list(
      nostr.secret,
      [['i', `rum:${rum.hex}`, groupId, token(groupId, rum, nostr.pubkey, t)]],
      t,
    );
    await attempt(carrier, linkPayload(rum, nostr.pubkey, statement));
    assert.equal(links.rumOf(groupId, nostr.pubkey), rum.pubkey);
  });

  it('a list dated well after its trx, or over the limits', async () => {
    const rum = rumKey();
    const nostr = newKey();
    const tag = ['i', `rum:${rum.hex}`, groupId];
    await attempt(rum, linkPayload(rum, nostr.pubkey, list(nostr.secret, [tag], now() + 3600)));
    const many = Array.from({ length: 300 }, (_, i) => ['t', `t${i}`]);
    await attempt(rum, linkPayload(rum, nostr.pubkey, list(nostr.secret, [tag, ...many])));
    assert.equal(links.rumOf(groupId, nostr.pubkey), undefined);
    await attempt(rum, linkPayload(rum, nostr.pubkey, list(nostr.secret, [tag], now() + 60)));
    assert.equal(links.rumOf(groupId, nostr.pubkey), rum.pubkey, 'a little ahead is fine');
  });

  it('malformed statements are ignored, and the stream goes on', async () => {
    const rum = rumKey();
    for (const payload of [
      { type: 'NostrKeyLink' },
      { type: 'NostrKeyLink', rumPubkey: 'x', nostrPubkey: 'y', statement: 1 },
      linkPayload(rum, 'ab'.repeat(32), { kind: 10011 }),
      linkPayload(rum, 'ab'.repeat(32), 'not an event'),
      {
        type: 'NostrKeyUnlink',
        rumPubkey: rum.pubkey,
        nostrPubkey: 'ab'.repeat(32),
        statement: [],
      },
    ]) {
      await attempt(rum, payload);
    }
    assert.deepEqual(
      links.linksOf(groupId, 100).filter((l) => l.rum === rum.pubkey),
      [],
    );
  });
});
