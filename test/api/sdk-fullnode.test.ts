// rumsystem's rum-fullnode-sdk, unmodified, against two real `rum fullnode` processes: every call
// of its README and of its test cases that maps to a route this node serves (Group, Content, Trx,
// AppConfig, Auth, User, Producer, Network, Node, Token), checked for the answers quorum gives.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sdk from 'rum-fullnode-sdk';
import { decodeSeedUrl } from '../../src/chain/seed.ts';
import { aesDecrypt } from '../../src/crypto/aes.ts';
import { fromBase64, fromHex } from '../../src/crypto/encoding.ts';
import { NET_TEST_LIMITS } from '../helpers/net.ts';
import {
  api,
  type NodeProcess,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../helpers/node-process.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON responses.
type AnyJson = any;
type Client = ReturnType<typeof sdk.RumFullNodeClient>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OTHER_KEY = 'AnRP4sojIvAH-Ugqnd7ZaM1H8j_c1pX6clyeXgAORiGZ';

/** The keys of an answer, sorted (the SDK's own tests check them with chai's hasAllKeys). */
const keysOf = (o: object) => Object.keys(o).sort();
function hasKeys(o: object, keys: string[], what: string): void {
  for (const k of keys) assert.ok(k in o, `${what} has ${k}: ${JSON.stringify(o)}`);
}

/** The SDK rejects with axios' error; the node's answer is in err.response. */
async function rejectsWith(p: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: AnyJson) => {
    assert.equal(err.response?.status, status, err.message);
    assert.match(err.response.data.message, message);
    return true;
  });
}

const GROUP_KEYS = [
  'app_key',
  'cipher_key',
  'consensus_type',
  'currt_epoch',
  'currt_top_block',
  'encryption_type',
  'group_id',
  'group_name',
  'last_updated',
  'owner_pubkey',
  'rex_Syncer_result',
  'rex_syncer_status',
  'user_eth_addr',
  'user_pubkey',
];

/** The keys of quorum's answer to an announce (POST /api/v1/group/announce). */
const ANNOUNCE_KEYS = [
  'action',
  'encrypt_pubkey',
  'group_id',
  'sign',
  'sign_pubkey',
  'trx_id',
  'type',
];

describe('rum-fullnode-sdk against real nodes', () => {
  let n1: NodeProcess;
  let n2: NodeProcess;
  let client: Client;
  let client2: Client;
  let groupId = '';
  let seed = '';
  let owner = '';
  const note = { type: 'Create', object: { type: 'Note', id: '1', content: 'hello world' } };
  const trxIds: string[] = [];

  const newGroup = (name: string) =>
    client.Group.create({
      group_name: name,
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'testing',
    });

  async function idle(groupId: string, base = n1.url) {
    await waitFor(
      async () => (await api(base, 'GET', `/api/v1/group/${groupId}`)).json.mempool_size === 0,
      'the mempool to drain',
    );
  }

  before(async () => {
    const cfg = join(tempDir('rum-sdk-cfg-'), 'rum.json');
    writeFileSync(cfg, JSON.stringify({ limits: NET_TEST_LIMITS }));
    const net = ['--listen', '/ip4/127.0.0.1/tcp/0', '--config', cfg];
    n1 = await startNodeProcess({ args: net });
    const info = await waitFor(async () => {
      const r = await api(n1.url, 'GET', '/api/v1/network');
      return r.json.addrs.length > 0 ? r.json : null;
    }, 'n1 to listen');
    const addr: string = info.addrs[0];
    const peer = addr.includes('/p2p/') ? addr : `${addr}/p2p/${info.peer_id}`;
    n2 = await startNodeProcess({ args: [...net, '--peer', peer] });
    client = sdk.RumFullNodeClient({ baseURL: n1.url });
    client2 = sdk.RumFullNodeClient({ baseURL: n2.url, jwt: '' });
  });
  after(async () => {
    assert.equal(await n2.stop(), 0);
    assert.equal(await n1.stop(), 0);
  });

  it('README: Group.create, Content.create, Content.list', async () => {
    const created = await newGroup('testing group');
    assert.deepEqual(keysOf(created), ['group_id', 'seed']);
    groupId = created.group_id;
    seed = created.seed;
    assert.equal(decodeSeedUrl(seed).seed.groupId, groupId);
    owner = (await client.Group.get(groupId)).owner_pubkey;

    const res = await client.Content.create(groupId, note);
    assert.deepEqual(keysOf(res), ['trx_id']);
    assert.match(res.trx_id, UUID);
    trxIds.push(res.trx_id);

    // As the README calls it: no paging parameters.
    const list = client.Content.list as (g: string) => ReturnType<Client['Content']['list']>;
    const contents = await waitFor(async () => {
      const c = await list(groupId);
      return c && c.length > 0 ? c : null;
    }, 'the post to be listed');
    assert.equal(contents.length, 1);
    const content = contents[0]!;
    assert.equal(content.TrxId, res.trx_id);
    // A public post also carries its author's signed Nostr event (bridges/nostr/SPEC.md).
    const { nostr, ...data } = content.Data as unknown as Record<string, unknown>;
    assert.equal((nostr as { content?: string }).content, 'hello world');
    assert.deepEqual(data, note, 'the SDK decodes Data to the posted object');
    assert.equal(content.GroupId, groupId);
    assert.equal(content.SenderPubkey, owner);
    hasKeys(
      content,
      ['Data', 'GroupId', 'SenderPubkey', 'SenderSign', 'TimeStamp', 'TrxId', 'Version'],
      'content',
    );
  });

  it('pages Content.list with num, start_trx, include_start_trx, reverse and senders', async () => {
    for (const content of ['second', 'third']) {
      trxIds.push((await client.Content.create(groupId, { type: 'Note', content })).trx_id);
    }
    await idle(groupId);
    const ids = async (p: AnyJson) =>
      ((await client.Content.list(groupId, p)) ?? []).map((c) => c.TrxId);
    assert.deepEqual(await ids({ num: 20 }), trxIds);
    assert.deepEqual(await ids({ num: 1, reverse: true }), [trxIds[2]]);
    assert.deepEqual(await ids({ num: 20, start_trx: trxIds[0] }), trxIds.slice(1));
    assert.deepEqual(
      await ids({ num: 20, start_trx: trxIds[1], include_start_trx: true }),
      trxIds.slice(1),
    );
    assert.deepEqual(await ids({ num: 20, senders: [owner] }), trxIds);
    assert.deepEqual(await ids({ num: 20, senders: [OTHER_KEY] }), []);
  });

  it('Trx.get: the committed trx as stored, Data encrypted for the group', async () => {
    const trx = await client.Trx.get(groupId, trxIds[0]!);
    hasKeys(
      trx,
      ['TrxId', 'GroupId', 'SenderPubkey', 'Data', 'TimeStamp', 'Version', 'SenderSign'],
      'trx',
    );
    assert.equal(trx.TrxId, trxIds[0]);
    assert.equal(trx.SenderPubkey, owner);
    const group = await client.Group.get(groupId);
    const plain = aesDecrypt(fromHex(group.cipher_key), fromBase64(trx.Data));
    assert.ok(plain, 'Data decrypts with the group key');
    const { nostr: _, ...data } = JSON.parse(Buffer.from(plain).toString());
    assert.deepEqual(data, note);
    assert.deepEqual(await client.Trx.get(groupId, crypto.randomUUID()), {}, '{} when unknown');
  });

  it('CURD Group: get, getSeed, list, leave, clear', async () => {
    const group = await client.Group.get(groupId);
    hasKeys(group, GROUP_KEYS, 'group');
    assert.equal(group.group_id, groupId);
    assert.equal(group.group_name, 'testing group');
    assert.equal(group.app_key, 'testing');
    assert.equal(group.consensus_type, 'POA');
    assert.equal(group.encryption_type, 'PUBLIC');
    assert.equal(group.user_pubkey, group.owner_pubkey);
    assert.ok(group.currt_top_block >= 1);

    assert.deepEqual(await client.Group.getSeed(groupId), { seed });
    const withUrl = await client.Group.getSeed(groupId, { include_chain_url: 'true' });
    const { seed: decoded, urls } = decodeSeedUrl(withUrl.seed);
    assert.equal(decoded.groupId, groupId);
    assert.equal(urls.length, 1);
    assert.equal(new URL(urls[0]!).origin, n1.url, "the chain URL is this node's API");
    assert.match(new URL(urls[0]!).searchParams.get('jwt') ?? '', /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const { groups } = await client.Group.list();
    const listed = groups!.find((g) => g.group_id === groupId)!;
    hasKeys(listed, GROUP_KEYS, 'listed group');

    const gone = await newGroup('to leave');
    assert.deepEqual(await client.Group.leave(gone.group_id), { group_id: gone.group_id });
    const after = (await client.Group.list()).groups ?? [];
    assert.ok(!after.some((g) => g.group_id === gone.group_id), 'left groups are not listed');
    await rejectsWith(client.Group.get(gone.group_id), 404, /not found/);
    assert.deepEqual(await client.Group.clear(gone.group_id), { group_id: gone.group_id });
  });

  it('Join and leave group: a second node joins by seed, then leaves', async () => {
    const g = await newGroup('testing group');
    const joined = await client2.Group.join(g.seed);
    assert.deepEqual(keysOf(joined), [
      'app_key',
      'cipher_key',
      'consensus_type',
      'encryption_type',
      'group_id',
      'group_name',
      'owner_pubkey',
      'signature',
      'user_encryptpubkey',
      'user_pubkey',
    ]);
    assert.equal(joined.group_id, g.group_id);
    const gOwner = (await client.Group.get(g.group_id)).owner_pubkey;
    assert.equal(joined.owner_pubkey, gOwner);
    assert.notEqual(joined.user_pubkey, gOwner, 'the second node has its own key');
    assert.deepEqual(await client2.Group.leave(g.group_id), { group_id: g.group_id });
    assert.deepEqual(await client2.Group.clear(g.group_id), { group_id: g.group_id });
    await rejectsWith(client2.Group.get(g.group_id), 404, /not found/);
  });

  it('Network.get and Node.get', async () => {
    const network = await client.Network.get();
    hasKeys(
      network,
      ['peer_id', 'eth_addr', 'nat_type', 'nat_enabled', 'addrs', 'groups', 'node'],
      'network',
    );
    assert.ok(network.groups!.some((g) => g.GroupId === groupId));
    const node = await client.Node.get();
    hasKeys(
      node,
      ['node_id', 'node_publickey', 'node_status', 'node_type', 'node_version', 'peers'],
      'node',
    );
    assert.equal(node.node_id, network.peer_id);
    assert.match(node.node_id, /^16Uiu2/);
  });

  it('AppConfig: change, getKeyList, getValueByKey', async () => {
    const changed = await client.AppConfig.change({
      action: 'add',
      group_id: groupId,
      name: 'repoName',
      type: 'string',
      value: 'rum-fullnode-sdk',
      memo: '',
    });
    assert.deepEqual(keysOf(changed), ['group_id', 'signature', 'trx_id']);
    // The SDK types value as unknown: a number for an int item.
    await client.AppConfig.change({
      action: 'add',
      group_id: groupId,
      name: 'maxLength',
      type: 'int',
      value: 42,
      memo: 'limit',
    });
    const keys = await waitFor(async () => {
      const l = await client.AppConfig.getKeyList(groupId);
      return l && l.length === 2 ? l : null;
    }, 'two app config items');
    assert.deepEqual(
      [...keys].sort((a, b) => a.Name.localeCompare(b.Name)),
      [
        { Name: 'maxLength', Type: 'INT' },
        { Name: 'repoName', Type: 'STRING' },
      ],
    );
    const item = await client.AppConfig.getValueByKey(groupId, 'repoName');
    assert.deepEqual(keysOf(item), [
      'Memo',
      'Name',
      'OwnerPubkey',
      'OwnerSign',
      'TimeStamp',
      'Type',
      'Value',
    ]);
    assert.equal(item.Value, 'rum-fullnode-sdk');
    assert.equal(item.OwnerPubkey, owner);
    const int = await client.AppConfig.getValueByKey(groupId, 'maxLength');
    assert.deepEqual([int.Type, int.Value, int.Memo], ['INT', '42', 'limit']);
    await rejectsWith(client.AppConfig.getValueByKey(groupId, 'nothing'), 404, /not found/);
  });

  it('Auth: getAuthRule, updateChainConfig, getAllowList, getDenyList', async () => {
    const g = (await newGroup('auth group')).group_id;
    const owner = (await client.Group.get(g)).owner_pubkey;
    assert.deepEqual(await client.Auth.getAuthRule(g, 'POST'), {
      TrxType: 'POST',
      AuthType: 'FOLLOW_DNY_LIST',
    });
    const CONFIG_KEYS = ['group_id', 'owner_pubkey', 'signature', 'trx_id'];
    const mode = await client.Auth.updateChainConfig({
      group_id: g,
      type: 'set_trx_auth_mode',
      config: { trx_type: 'POST', trx_auth_mode: 'follow_alw_list', memo: '' },
    });
    assert.deepEqual(keysOf(mode), CONFIG_KEYS);
    // As the SDK's own test sends it: lower-case trx types, memo inside config.
    const allow = await client.Auth.updateChainConfig({
      group_id: g,
      type: 'upd_alw_list',
      config: { action: 'add', pubkey: owner, trx_type: ['post'], memo: '' },
    });
    assert.deepEqual(keysOf(allow), CONFIG_KEYS);
    assert.equal(allow.owner_pubkey, owner);
    const deny = await client.Auth.updateChainConfig({
      group_id: g,
      type: 'upd_dny_list',
      config: { action: 'add', pubkey: OTHER_KEY, trx_type: ['post', 'announce'], memo: '' },
    });
    assert.deepEqual(keysOf(deny), CONFIG_KEYS);
    await idle(g);

    assert.deepEqual(await client.Auth.getAuthRule(g, 'POST'), {
      TrxType: 'POST',
      AuthType: 'FOLLOW_ALW_LIST',
    });
    const allowList = (await client.Auth.getAllowList(g)) ?? [];
    assert.equal(allowList.length, 1);
    assert.equal(allowList[0]!.Pubkey, owner);
    assert.deepEqual(allowList[0]!.TrxType, ['POST']);
    hasKeys(
      allowList[0]!,
      ['Pubkey', 'TrxType', 'GroupOwnerPubkey', 'GroupOwnerSign', 'TimeStamp', 'Memo'],
      'allow list item',
    );
    const denyList = (await client.Auth.getDenyList(g)) ?? [];
    assert.equal(denyList.length, 1);
    assert.equal(denyList[0]!.Pubkey, OTHER_KEY);
    assert.deepEqual(denyList[0]!.TrxType, ['POST', 'ANNOUNCE']);
    await rejectsWith(
      client.Auth.updateChainConfig({
        group_id: g,
        type: 'upd_alw_list',
        config: { action: 'add', pubkey: owner, trx_type: ['block_produced'], memo: '' },
      }),
      400,
      /trx_type/,
    );
  });

  it('User: announce, listAnnouncedUsers, getAnnouncedUser, declare', async () => {
    const announced = await client.User.announce({
      group_id: groupId,
      action: 'add',
      type: 'user',
      memo: '',
    });
    assert.deepEqual(keysOf(announced), ANNOUNCE_KEYS);
    assert.equal(announced.sign_pubkey, owner);
    assert.equal(announced.type, 'AS_USER');
    const USER_KEYS = [
      'AnnouncedEncryptPubkey',
      'AnnouncedSignPubkey',
      'AnnouncerSign',
      'Memo',
      'Result',
      'TimeStamp',
    ];
    const users = await waitFor(async () => {
      const u = await client.User.listAnnouncedUsers(groupId);
      return u.length > 0 ? u : null;
    }, 'the announcement');
    assert.deepEqual(keysOf(users[0]!), USER_KEYS);
    assert.equal(users[0]!.AnnouncedSignPubkey, owner);
    const user = await client.User.getAnnouncedUser(groupId, owner);
    assert.deepEqual(keysOf(user), USER_KEYS);
    assert.equal(user.AnnouncedEncryptPubkey, announced.encrypt_pubkey);

    const declared = await client.User.declare({
      group_id: groupId,
      user_pubkey: owner,
      action: 'add',
    });
    assert.deepEqual(keysOf(declared), [
      'action',
      'encrypt_pubkey',
      'group_id',
      'memo',
      'owner_pubkey',
      'sign',
      'trx_id',
      'user_pubkey',
    ]);
    assert.equal(declared.action, 'ADD');
    await rejectsWith(client.User.getAnnouncedUser(groupId, OTHER_KEY), 404, /not announced/);
  });

  it('Producer: announce, listAnnouncedProducers, declare, listApprovedProducers', async () => {
    await client2.Group.join(seed);
    const announced = await client2.Producer.announce({
      group_id: groupId,
      action: 'add',
      type: 'producer',
      memo: '',
    });
    assert.deepEqual(keysOf(announced), ANNOUNCE_KEYS);
    assert.equal(announced.type, 'AS_PRODUCER');
    const producerKey = announced.sign_pubkey;
    assert.notEqual(producerKey, owner);

    // The announcement travels to the owner's node over the network.
    const list = await waitFor(
      async () => {
        const l = await client.Producer.listAnnouncedProducers(groupId);
        return l.some((p) => p.AnnouncedPubkey === producerKey) ? l : null;
      },
      'the owner to see the announcement',
      300,
    );
    assert.deepEqual(keysOf(list[0]!), [
      'Action',
      'AnnouncedPubkey',
      'AnnouncerSign',
      'Memo',
      'Result',
      'TimeStamp',
    ]);

    // The SDK types producer_pubkey as one string; quorum takes a list: both work.
    const declared = (await client.Producer.declare({
      group_id: groupId,
      producer_pubkey: producerKey,
      action: 'add',
    })) as AnyJson;
    assert.equal(declared.group_id, groupId);
    assert.match(declared.trx_id, UUID);
    assert.equal(declared.failable_producers, 0);
    const approved = await waitFor(async () => {
      const l = await client.Producer.listApprovedProducers(groupId);
      return l.length === 2 ? l : null;
    }, 'two producers');
    assert.deepEqual(
      approved.map((p) => p.ProducerPubkey),
      [owner, producerKey],
    );
    hasKeys(
      approved[1]!,
      ['ProducerPubkey', 'OwnerPubkey', 'OwnerSign', 'TimeStamp', 'BlockWithness'],
      'producer',
    );
    await rejectsWith(
      client2.Producer.declare({ group_id: groupId, producer_pubkey: owner, action: 'add' }),
      400,
      /owner/,
    );
  });

  it('Token: create, refresh', async () => {
    const created = await client.Token.create({
      expires_at: new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000).toISOString(),
      name: 'testing-token',
      role: 'chain',
    } as AnyJson);
    assert.match(created.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const refreshed = await client.Token.refresh(created.token);
    assert.match(refreshed.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.notEqual(refreshed.token, created.token);
    await rejectsWith(client.Token.refresh('not-a-token'), 401, /./);
  });

  it('refuses bad input with a 4xx and {message}; PubQueue is not served, as in quorum', async () => {
    await rejectsWith(client.Group.get(crypto.randomUUID()), 404, /not found/);
    await rejectsWith(client.Content.create(groupId, {}), 400, /type/);
    await rejectsWith(
      client.Group.create({
        group_name: 'x',
        consensus_type: 'poa',
        encryption_type: 'public',
        app_key: 'testing',
      }),
      400,
      /group_name/,
    );
    // An empty form is no body (axios sends one with Token.refresh); a form with content is not.
    const form = await fetch(`${n1.url}/api/v1/group/leave`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `group_id=${groupId}`,
    });
    assert.equal(form.status, 415);
    assert.match(((await form.json()) as AnyJson).message, /Unsupported Media Type/);
    await rejectsWith(client.PubQueue.list(groupId), 404, /no route/);
    await rejectsWith(client.PubQueue.acknowledge([trxIds[0]!]), 404, /no route/);
  });
});
