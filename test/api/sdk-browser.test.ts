// rumsystem's rum-sdk-browser, unmodified, against a real `rum fullnode` process that requires a
// token even from loopback: the SDK finds the node and its node-role token in the group's seed
// (cache.Group.add), signs trxs with an ethers key (chain.Trx.create), reads them back
// (chain.Trx.get, chain.Content.list); the light-client routes answer what the full-node routes
// answer, check what they are given, and a node token reaches only its own group.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aesDecrypt } from '../../src/crypto/aes.ts';
import { fromBase64, fromHex } from '../../src/crypto/encoding.ts';
import {
  type BrowserSdk,
  type Ethers,
  loadBrowserSdk,
  MemoryStorage,
} from '../helpers/browser-sdk.ts';
import {
  api,
  dirFlags,
  type NodeProcess,
  RUM_BIN,
  startNodeProcess,
  TEST_PASSWORD,
  tempDir,
  waitFor,
} from '../helpers/node-process.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON responses.
type AnyJson = any;
type Wallet = ReturnType<Ethers['Wallet']['createRandom']>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OTHER_KEY = 'AnRP4sojIvAH-Ugqnd7ZaM1H8j_c1pX6clyeXgAORiGZ';

interface TestGroup {
  id: string;
  seed: string;
  cipherKey: string;
  owner: string;
}

describe('rum-sdk-browser against a real node', () => {
  let n: NodeProcess;
  let chainToken = '';
  let SDK: BrowserSdk;
  let ethers: Ethers;
  const storage = new MemoryStorage();
  let A: TestGroup;
  let B: TestGroup;
  let tokenA = '';
  let tokenB = '';
  const posted: { trxId: string; data: AnyJson; sender: string }[] = [];

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const admin = (method: string, path: string, body?: unknown) =>
    api(n.url, method, path, body, bearer(chainToken));
  const as = (token: string) => (method: string, path: string, body?: unknown) =>
    api(n.url, method, path, body, bearer(token));

  /** The SDK's sender_pubkey for a wallet: the compressed key, base64url. */
  const pubkeyOf = (w: Wallet) =>
    Buffer.from(ethers.utils.computePublicKey(w.publicKey, true).slice(2), 'hex').toString(
      'base64url',
    );

  async function newGroup(name: string): Promise<TestGroup> {
    const created = await admin('POST', '/api/v1/group', {
      group_name: name,
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'group_bbs',
    });
    assert.equal(created.status, 200, created.text);
    const id = created.json.group_id;
    const seed = await admin('GET', `/api/v1/group/${id}/seed?include_chain_url=true`);
    assert.equal(seed.status, 200, seed.text);
    const info = await admin('GET', `/api/v1/group/${id}`);
    return {
      id,
      seed: seed.json.seed,
      cipherKey: info.json.cipher_key,
      owner: info.json.owner_pubkey,
    };
  }

  async function committed(groupId: string) {
    return waitFor(async () => {
      const g = await admin('GET', `/api/v1/group/${groupId}`);
      return g.json.mempool_size === 0 ? g.json : null;
    }, 'the mempool to drain');
  }

  /** Posts with the SDK and waits until chain.Trx.get finds the trx committed. */
  async function sdkPost(w: Wallet, data: AnyJson, groupId = A.id) {
    const res = await SDK.chain.Trx.create({ data, groupId, privateKey: w.privateKey });
    assert.match(res.trx_id, UUID);
    const trx = await waitFor(async () => {
      const t = await SDK.chain.Trx.get(groupId, res.trx_id);
      return t.TrxId ? t : null;
    }, `trx ${res.trx_id} to be committed`);
    posted.push({ trxId: res.trx_id, data, sender: pubkeyOf(w) });
    return trx;
  }

  before(async () => {
    const dir = tempDir('rum-sdk-browser-node-');
    chainToken = execFileSync(
      process.execPath,
      [
        RUM_BIN,
        'token',
        '--role',
        'chain',
        '--name',
        'admin',
        '--keystorepwd',
        TEST_PASSWORD,
      ].concat(dirFlags(dir)),
      { encoding: 'utf8' },
    ).trim();
    const cfg = join(dir, 'rum.json');
    writeFileSync(cfg, JSON.stringify({ apiRequireTokenOnLoopback: true }));
    n = await startNodeProcess({ dir, args: ['--config', cfg] });
    ({ SDK, ethers } = await loadBrowserSdk(storage));
    A = await newGroup('light-a');
    B = await newGroup('light-b');
  });
  after(async () => {
    assert.equal(await n.stop(), 0, 'node exits cleanly on SIGTERM');
  });

  it('finds the node and a node token for the group in the seed (cache.Group.add)', async () => {
    assert.deepEqual(SDK.cache.Group.add(A.seed), { groupId: A.id });
    const g = SDK.cache.Group.get(A.id)!;
    assert.equal(g.groupName, 'light-a');
    assert.equal(g.cipherKey, A.cipherKey);
    assert.equal(g.ownerPubKey, A.owner);
    assert.equal(g.appKey, 'group_bbs');
    assert.equal(g.encryptionType, 'public');
    assert.equal(g.consensusType, 'poa');
    assert.equal(g.chainAPIs.length, 1);
    const url = new URL(g.chainAPIs[0]!);
    assert.equal(url.origin, n.url, 'the seed names the port the API listens on');
    tokenA = url.searchParams.get('jwt') ?? '';
    assert.match(tokenA, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    SDK.cache.Group.add(B.seed);
    tokenB = new URL(SDK.cache.Group.get(B.id)!.chainAPIs[0]!).searchParams.get('jwt') ?? '';
    assert.notEqual(tokenB, tokenA);
    assert.deepEqual(
      SDK.cache.Group.list()
        .map((x) => x.groupId)
        .sort(),
      [A.id, B.id].sort(),
    );
    assert.ok(storage.getItem('lightNodeGroupMap')?.includes(A.id), 'kept in localStorage');

    // Without the token the node refuses: the SDK really authenticates with the seed's token.
    const anon = await api(n.url, 'GET', `/api/v1/node/${A.id}/groupctn`);
    assert.equal(anon.status, 401);
  });

  it('commits a trx the SDK signed with an ethers key (chain.Trx.create, chain.Trx.get)', async () => {
    const wallet = ethers.Wallet.createRandom();
    const note = { type: 'Create', object: { type: 'Note', id: '1', content: 'hello world' } };
    const trx = await sdkPost(wallet, note);
    assert.equal(trx.GroupId, A.id);
    assert.equal(trx.SenderPubkey, pubkeyOf(wallet));
    assert.equal(trx.Version, '2.0.0');
    assert.equal(trx.Type, undefined, 'a POST trx, Type 0 omitted as quorum does');
    const plain = aesDecrypt(fromHex(A.cipherKey), fromBase64(trx.Data));
    assert.ok(plain, 'Data is encrypted with the group key');
    assert.deepEqual(JSON.parse(Buffer.from(plain).toString()), note);

    // The node's own API reads the same post.
    const g = await committed(A.id);
    assert.ok(g.highest_height >= 1);
    const content = await admin('GET', `/app/api/v1/group/${A.id}/content?num=20`);
    assert.equal(content.status, 200, content.text);
    const item = content.json.find((c: AnyJson) => c.TrxId === trx.TrxId);
    assert.equal(item.SenderPubkey, pubkeyOf(wallet));
    assert.deepEqual(JSON.parse(Buffer.from(item.Data, 'base64').toString()), note);
    const older = await admin('POST', `/app/api/v1/group/${A.id}/content`, {
      senders: [pubkeyOf(wallet)],
    });
    assert.equal(older.json.length, 1);
    assert.equal(older.json[0].Publisher, pubkeyOf(wallet));
    assert.deepEqual(older.json[0].Content, note);
  });

  it('lists and pages the group content, decrypted (chain.Content.list)', async () => {
    const other = ethers.Wallet.createRandom();
    await sdkPost(other, { type: 'Note', content: 'second' });
    await sdkPost(other, { type: 'Note', content: 'third' });
    const ids = posted.map((p) => p.trxId);

    const all = await SDK.chain.Content.list({ groupId: A.id });
    assert.deepEqual(
      all.map((c) => c!.TrxId),
      ids,
    );
    all.forEach((c, i) => {
      assert.deepEqual(c!.Data, posted[i]!.data);
      assert.equal(c!.SenderPubkey, posted[i]!.sender);
    });
    const full = await admin('GET', `/app/api/v1/group/${A.id}/content?num=20`);
    assert.deepEqual(
      full.json.map((c: AnyJson) => c.TrxId),
      ids,
      'the same order as the content API',
    );

    const last = await SDK.chain.Content.list({ groupId: A.id, count: 1, reverse: true });
    assert.deepEqual(
      last.map((c) => c!.TrxId),
      [ids[2]],
    );
    const after1 = await SDK.chain.Content.list({ groupId: A.id, startTrx: ids[0] });
    assert.deepEqual(
      after1.map((c) => c!.TrxId),
      [ids[1], ids[2]],
    );
    const before3 = await SDK.chain.Content.list({
      groupId: A.id,
      startTrx: ids[2],
      reverse: true,
    });
    assert.deepEqual(
      before3.map((c) => c!.TrxId),
      [ids[1], ids[0]],
    );
  });

  it('groupctn answers committed trxs as stored, paged and filtered like the content API', async () => {
    const a = as(tokenA);
    const ids = posted.map((p) => p.trxId);
    const raw = await a('GET', `/api/v1/node/${A.id}/groupctn?group_id=${A.id}&num=20`);
    assert.equal(raw.status, 200, raw.text);
    assert.deepEqual(
      raw.json.map((t: AnyJson) => t.TrxId),
      ids,
    );
    const decrypted = await admin('GET', `/app/api/v1/group/${A.id}/content?num=20`);
    for (const [i, t] of raw.json.entries()) {
      const stored = await admin('GET', `/api/v1/trx/${A.id}/${t.TrxId}`);
      assert.deepEqual(t, stored.json, 'quorum.pb.Trx as stored');
      assert.notEqual(t.Data, decrypted.json[i].Data, 'Data stays encrypted');
    }

    const sender = posted[1]!.sender;
    const bySender = await a('GET', `/api/v1/node/${A.id}/groupctn?senders=${sender}`);
    assert.deepEqual(
      bySender.json.map((t: AnyJson) => t.TrxId),
      [ids[1], ids[2]],
    );
    const two = await a('GET', `/api/v1/node/${A.id}/groupctn?num=2`);
    assert.deepEqual(
      two.json.map((t: AnyJson) => t.TrxId),
      ids.slice(0, 2),
    );
    const incl = await a(
      'GET',
      `/api/v1/node/${A.id}/groupctn?start_trx=${ids[1]}&include_start_trx=true`,
    );
    assert.deepEqual(
      incl.json.map((t: AnyJson) => t.TrxId),
      ids.slice(1),
    );
    const rev = await a('GET', `/api/v1/node/${A.id}/groupctn?reverse=true&num=1`);
    assert.deepEqual(
      rev.json.map((t: AnyJson) => t.TrxId),
      [ids[2]],
    );
  });

  it("takes the SDK's trx body, group_id included, and refuses anything else with a 4xx", async () => {
    const a = as(tokenA);
    const wallet = ethers.Wallet.createRandom();
    const path = `/api/v1/node/${A.id}/trx`;
    const body = await SDK.utils.signTrx({
      groupId: A.id,
      data: { type: 'Note', content: 'checked' },
      aesKey: A.cipherKey,
      privateKey: wallet.privateKey,
    });
    assert.equal(body.group_id, A.id, 'the SDK sends group_id in the body');

    const refused = async (b: unknown, message: RegExp, p = path, call = a) => {
      const res = await call('POST', p, b);
      assert.equal(res.status, 400, res.text);
      assert.match(res.json.message, message);
    };
    await refused({ ...body, group_id: B.id }, /group_id in the body must be the group/);
    await refused({ ...body, group_id: 'not-a-uuid' }, /group_id/);
    await refused({ ...body, nonce: 1 }, /must NOT have additional properties/);
    await refused({ ...body, timestamp: '12a' }, /timestamp/);
    await refused({ ...body, sender_sign: 'A'.repeat(101) }, /sender_sign/);
    await refused({ ...body, version: '1.0.0' }, /version/);
    const { trx_id: _id, ...noId } = body;
    await refused(noId, /trx_id/);
    const tampered = await SDK.utils.signTrx({
      groupId: A.id,
      data: { type: 'Note', content: 'other' },
      aesKey: A.cipherKey,
      privateKey: wallet.privateKey,
    });
    await refused({ ...body, data: tampered.data }, /signature/);
    // Signed for A: not accepted on B's path, with or without group_id in the body.
    const { group_id: _g, ...noGroup } = body;
    await refused(body, /group_id in the body/, `/api/v1/node/${B.id}/trx`, as(tokenB));
    await refused(noGroup, /./, `/api/v1/node/${B.id}/trx`, as(tokenB));

    const ok = await a('POST', path, body);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, { trx_id: body.trx_id });
    const replay = await a('POST', path, noGroup);
    assert.equal(replay.status, 400, 'the same trx twice');
    await committed(A.id);
    posted.push({
      trxId: body.trx_id,
      data: { type: 'Note', content: 'checked' },
      sender: pubkeyOf(wallet),
    });

    const unknown = crypto.randomUUID();
    const missing = await admin('POST', `/api/v1/node/${unknown}/trx`, {
      ...body,
      group_id: unknown,
    });
    assert.equal(missing.status, 404, missing.text);
    assert.match(missing.json.message, /not found/);
  });

  it('refuses bad light-client queries with a 4xx and a message', async () => {
    const a = as(tokenA);
    const cases: [string, number, RegExp][] = [
      [`/api/v1/node/${A.id}/groupctn?num=-1`, 400, /num/],
      [`/api/v1/node/${A.id}/groupctn?num=abc`, 400, /num/],
      [`/api/v1/node/${A.id}/groupctn?start_trx=abc`, 400, /start_trx/],
      [`/api/v1/node/${A.id}/groupctn?reverse=maybe`, 400, /reverse/],
      [`/api/v1/node/${A.id}/groupctn?group_id=${B.id}`, 400, /group_id in the query/],
      [`/api/v1/node/${A.id}/groupctn?foo=1`, 400, /additional properties/],
      [`/api/v1/node/${A.id}/groupctn?senders=${'x'.repeat(201)}`, 400, /senders/],
      [`/api/v1/node/${A.id}/auth/by/EVERYTHING`, 400, /trx_type/],
      [`/api/v1/node/${A.id}/appconfig/by/${'k'.repeat(129)}`, 400, /key/],
      [`/api/v1/node/${A.id}/appconfig/by/nothing`, 404, /nothing not found/],
      [`/api/v1/node/${A.id}/announced/user?pubkey=short`, 400, /pubkey/],
      [`/api/v1/node/${A.id}/announced/user?pubkey=${OTHER_KEY}`, 404, /not announced/],
    ];
    for (const [path, status, message] of cases) {
      const res = await a('GET', path);
      assert.equal(res.status, status, `${path}: ${res.text}`);
      assert.match(res.json.message, message, path);
    }
    const unknown = await admin('GET', `/api/v1/node/${crypto.randomUUID()}/info`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.message, /not found/);
    const badId = await admin('GET', '/api/v1/node/not-a-group/info');
    assert.equal(badId.status, 400);
  });

  it('answers the light-client reads as the full-node routes do', async () => {
    const wallet = ethers.Wallet.createRandom();
    const setup: [string, AnyJson][] = [
      [
        '/api/v1/group/appconfig',
        { action: 'add', group_id: A.id, name: 'theme', type: 'string', value: 'dark', memo: 'm' },
      ],
      [
        '/api/v1/group/chainconfig',
        {
          group_id: A.id,
          type: 'upd_dny_list',
          config: JSON.stringify({ action: 'add', pubkey: OTHER_KEY, trx_type: ['POST'] }),
        },
      ],
      [
        '/api/v1/group/chainconfig',
        {
          group_id: A.id,
          type: 'upd_alw_list',
          config: JSON.stringify({ action: 'add', pubkey: pubkeyOf(wallet), trx_type: ['post'] }),
        },
      ],
      [
        '/api/v1/group/chainconfig',
        {
          group_id: A.id,
          type: 'set_trx_auth_mode',
          config: JSON.stringify({ trx_type: 'POST', trx_auth_mode: 'follow_alw_list' }),
        },
      ],
      ['/api/v1/group/announce', { group_id: A.id, action: 'add', type: 'user', memo: 'hi' }],
    ];
    for (const [path, body] of setup) {
      const res = await admin('POST', path, body);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
    }
    await committed(A.id);

    const a = as(tokenA);
    const base = `/api/v1/group/${A.id}`;
    const light = `/api/v1/node/${A.id}`;
    const pairs: [string, string, boolean][] = [
      [`${light}/auth/by/POST`, `${base}/trx/auth/POST`, false],
      [`${light}/auth/by/ANNOUNCE`, `${base}/trx/auth/ANNOUNCE`, false],
      [`${light}/auth/alwlist`, `${base}/trx/allowlist`, true],
      [`${light}/auth/denylist`, `${base}/trx/denylist`, true],
      [`${light}/appconfig/keylist`, `${base}/appconfig/keylist`, true],
      [`${light}/appconfig/by/theme`, `${base}/appconfig/theme`, false],
      [`${light}/producers`, `${base}/producers`, true],
      [`${light}/announced/producer`, `${base}/announced/producers`, false],
      [`${light}/announced/user`, `${base}/announced/users`, true],
    ];
    for (const [lightPath, fullPath, nonEmpty] of pairs) {
      const l = await a('GET', lightPath);
      const f = await admin('GET', fullPath);
      assert.equal(l.status, 200, `${lightPath}: ${l.text}`);
      assert.equal(f.status, 200, `${fullPath}: ${f.text}`);
      assert.equal(l.text, f.text, `${lightPath} answers as ${fullPath}`);
      if (nonEmpty) assert.ok(l.json.length > 0, `${lightPath} is not empty`);
    }
    assert.deepEqual((await a('GET', `${light}/auth/by/POST`)).json, {
      TrxType: 'POST',
      AuthType: 'FOLLOW_ALW_LIST',
    });
    assert.equal((await a('GET', `${light}/appconfig/by/theme`)).json.Value, 'dark');
    const allow = (await a('GET', `${light}/auth/alwlist`)).json;
    assert.equal(allow[0].Pubkey, pubkeyOf(wallet));
    assert.deepEqual(allow[0].TrxType, ['POST']);

    const users = (await admin('GET', `${base}/announced/users`)).json;
    const one = await a('GET', `${light}/announced/user?pubkey=${users[0].AnnouncedSignPubkey}`);
    assert.equal(one.status, 200, one.text);
    const full = await admin('GET', `${base}/announced/user/${users[0].AnnouncedSignPubkey}`);
    assert.equal(one.text, `[${full.text}]`);

    const info = await a('GET', `${light}/info`);
    const group = await admin('GET', base);
    assert.equal(info.status, 200, info.text);
    assert.deepEqual(info.json, {
      group_id: A.id,
      owner: group.json.owner_pubkey,
      latest_update: group.json.last_updated,
      provider: group.json.user_pubkey,
      singature: '',
    });

    // The allow list now decides who may post through the light-client route.
    const allowed = await sdkPost(wallet, { type: 'Note', content: 'allowed' });
    assert.equal(allowed.SenderPubkey, pubkeyOf(wallet));
    const stranger = ethers.Wallet.createRandom();
    await assert.rejects(
      SDK.chain.Trx.create({
        data: { type: 'Note', content: 'not allowed' },
        groupId: A.id,
        privateKey: stranger.privateKey,
      }),
      (err: AnyJson) => {
        assert.equal(err.response?.status, 400);
        assert.match(err.response.data.message, /allow list/);
        return true;
      },
    );
  });

  it("reads another group through that group's own seed token", async () => {
    const wallet = ethers.Wallet.createRandom();
    await sdkPost(wallet, { type: 'Note', content: 'in B' }, B.id);
    const list = await SDK.chain.Content.list({ groupId: B.id });
    assert.deepEqual(
      list.map((c) => c!.Data),
      [{ type: 'Note', content: 'in B' }],
    );
  });

  it("lets a node token reach only its own group's light-client routes and trxs", async () => {
    const spec = await api(n.url, 'GET', '/swagger/json');
    assert.equal(spec.status, 200);
    const trxId = posted[0]!.trxId;
    const fill = (path: string, groupId: string) =>
      path
        .replace('{group_id}', groupId)
        .replace('{trx_id}', trxId)
        .replace('{block_id}', '1')
        .replace('{trx_type}', 'POST')
        .replace('{key}', 'theme')
        .replace('{sign_pubkey}', OTHER_KEY);
    const routes = Object.entries(spec.json.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => [m.toUpperCase(), path] as const))
      .filter(([, path]) => !path.startsWith('/swagger') && path !== '/app/api/v1/token/refresh');
    const lightRoutes = routes.filter(([, p]) => p.startsWith('/api/v1/node/{group_id}/'));
    assert.deepEqual(lightRoutes.map(([m, p]) => `${m} ${p}`).sort(), [
      'GET /api/v1/node/{group_id}/announced/producer',
      'GET /api/v1/node/{group_id}/announced/user',
      'GET /api/v1/node/{group_id}/appconfig/by/{key}',
      'GET /api/v1/node/{group_id}/appconfig/keylist',
      'GET /api/v1/node/{group_id}/auth/alwlist',
      'GET /api/v1/node/{group_id}/auth/by/{trx_type}',
      'GET /api/v1/node/{group_id}/auth/denylist',
      'GET /api/v1/node/{group_id}/groupctn',
      'GET /api/v1/node/{group_id}/info',
      'GET /api/v1/node/{group_id}/producers',
      'POST /api/v1/node/{group_id}/trx',
    ]);
    const a = as(tokenA);
    const allowedForA = (p: string) =>
      p.startsWith('/api/v1/node/{group_id}/') || p === '/api/v1/trx/{group_id}/{trx_id}';
    for (const [method, path] of routes) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : {};
      const own = await a(method, fill(path, A.id), body);
      if (allowedForA(path)) {
        assert.notEqual(own.status, 403, `${method} ${path} for its own group`);
        assert.notEqual(own.status, 401, `${method} ${path} for its own group`);
        // The same route for group B is refused.
        const other = await a(method, fill(path, B.id), body);
        assert.equal(other.status, 403, `${method} ${path} for another group: ${other.text}`);
        assert.match(other.json.message, /token does not allow/);
      } else {
        assert.equal(own.status, 403, `${method} ${path} is a full-node route: ${own.text}`);
        assert.match(own.json.message, /token does not allow/);
      }
    }
    // What the node token is for works: its own group's reads and trx lookups.
    const ctn = await a('GET', `/api/v1/node/${A.id}/groupctn`);
    assert.equal(ctn.status, 200);
    assert.ok(ctn.json.length >= 3);
    const trx = await a('GET', `/api/v1/trx/${A.id}/${trxId}`);
    assert.equal(trx.json.TrxId, trxId);
    assert.equal((await as(tokenB)('GET', `/api/v1/node/${B.id}/info`)).status, 200);
    assert.equal((await as('not.a.token')('GET', `/api/v1/node/${A.id}/info`)).status, 401);
  });
});
