// Bad input over real HTTP: each gets a clear 4xx with {"message"}, and the node keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TrxType } from '../../src/chain/pb.ts';
import { signTrx } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { fromHex, toBase64 } from '../../src/crypto/encoding.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  waitFor,
} from '../helpers/node-process.ts';

describe('bad input over HTTP', () => {
  let n: NodeProcess;
  let groupId = '';
  let cipherKey: Uint8Array;
  before(async () => {
    n = await startNodeProcess();
    groupId = (await createPublicGroup(n.url, 'badinput')).group_id;
    cipherKey = fromHex((await api(n.url, 'GET', `/api/v1/group/${groupId}`)).json.cipher_key);
  });
  after(async () => {
    assert.equal(await n.stop(), 0);
  });

  async function expect4xx(
    method: string,
    path: string,
    body: unknown,
    status: number,
    message: RegExp,
  ) {
    const res = await api(n.url, method, path, body);
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
    assert.equal(typeof res.json?.message, 'string', res.text);
    assert.match(res.json.message, message);
  }

  it('rejects malformed JSON', async () => {
    await expect4xx('POST', '/api/v1/group', '{"group_name": "x",', 400, /JSON/i);
  });

  it('rejects unknown fields and missing fields', async () => {
    await expect4xx(
      'POST',
      '/api/v1/group',
      {
        group_name: 'abc',
        consensus_type: 'poa',
        encryption_type: 'public',
        app_key: 'group_bbs',
        evil: 1,
      },
      400,
      /additional properties/,
    );
    await expect4xx('POST', '/api/v1/group', { group_name: 'abc' }, 400, /required property/);
    await expect4xx(
      'POST',
      `/api/v1/group/${groupId}/content`,
      { data: { type: 'Note', content: 'x' }, x: 1 },
      400,
      /additional/,
    );
  });

  it('rejects content that is not meaningful ActivityStreams', async () => {
    await expect4xx(
      'POST',
      `/api/v1/group/${groupId}/content`,
      { data: { content: 'no type' } },
      400,
      /type/,
    );
    await expect4xx(
      'POST',
      `/api/v1/group/${groupId}/content`,
      { data: { type: 'Note' } },
      400,
      /content/,
    );
    await expect4xx(
      'POST',
      `/api/v1/group/${groupId}/content`,
      { data: { type: 'Like', object: {} } },
      400,
      /object.id/,
    );
  });

  it('rejects oversized content and oversized bodies', async () => {
    const big = 'x'.repeat(250 * 1024);
    await expect4xx(
      'POST',
      `/api/v1/group/${groupId}/content`,
      { data: { type: 'Note', content: big } },
      400,
      /limit/,
    );
    const huge = 'x'.repeat(2 * 1024 * 1024);
    await expect4xx(
      'POST',
      `/api/v1/group/${groupId}/content`,
      { data: { type: 'Note', content: huge } },
      413,
      /too large/i,
    );
  });

  it('rejects invalid and tampered seeds, saying why', async () => {
    await expect4xx(
      'POST',
      '/api/v2/group/join',
      { seed: 'https://example.com' },
      400,
      /rum:\/\/seed/,
    );
    const { json } = await api(n.url, 'GET', `/api/v1/group/${groupId}/seed`);
    const seed: string = json.seed;
    await expect4xx(
      'POST',
      '/api/v2/group/join',
      { seed: seed.replace('v=1', 'v=2') },
      400,
      /unsupported seed version/,
    );
    const badSig = seed.replace(/&s=([A-Za-z0-9_-])/, (_m, c) => `&s=${c === 'A' ? 'B' : 'A'}`);
    await expect4xx('POST', '/api/v2/group/join', { seed: badSig }, 400, /genesis|signature/);
    const shortKey = seed.replace(/&c=[A-Za-z0-9_-]+/, '&c=AAAA');
    await expect4xx(
      'POST',
      '/api/v2/group/join',
      { seed: shortKey },
      400,
      /cipher key.*3 bytes, expected 32/,
    );
    const renamed = seed.replace(/&t=([A-Za-z0-9_-]+)/, '&t=AQ');
    await expect4xx('POST', '/api/v2/group/join', { seed: renamed }, 400, /genesis/);
    await expect4xx('POST', '/api/v2/group/join', { seed }, 409, /already joined/);
  });

  it('answers 404 for an unknown group and 400 for a malformed id', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    await expect4xx('GET', `/api/v1/group/${unknown}`, undefined, 404, /not found/);
    await expect4xx(
      'POST',
      `/api/v1/group/${unknown}/content`,
      { data: { type: 'Note', content: 'x' } },
      404,
      /not found/,
    );
    await expect4xx('GET', '/api/v1/group/not-a-uuid', undefined, 400, /group_id/);
    await expect4xx('GET', '/api/v1/nothing-here', undefined, 404, /no route/);
  });

  function lightTrx(priv: Uint8Array, content: string) {
    const trx = signTrx(
      {
        TrxId: crypto.randomUUID(),
        Type: TrxType.POST,
        GroupId: groupId,
        Data: aesEncrypt(cipherKey, Buffer.from(JSON.stringify({ type: 'Note', content }))),
        TimeStamp: BigInt(Date.now()) * 1_000_000n,
        Expired: 0n,
        SenderPubkey: encodePubkey(publicKeyOf(priv)),
      },
      priv,
    );
    return {
      trx_id: trx.TrxId,
      data: toBase64(trx.Data),
      version: trx.Version,
      sender_pubkey: trx.SenderPubkey,
      sender_sign: toBase64(trx.SenderSign),
      timestamp: trx.TimeStamp.toString(),
    };
  }

  it('accepts a trx signed by a light client and rejects a forged one', async () => {
    const priv = generatePrivateKey();
    const ok = await api(
      n.url,
      'POST',
      `/api/v1/node/${groupId}/trx`,
      lightTrx(priv, 'from a light client'),
    );
    assert.equal(ok.status, 200, ok.text);
    const forged = lightTrx(priv, 'forged');
    forged.data = toBase64(
      aesEncrypt(cipherKey, Buffer.from('{"type":"Note","content":"changed"}')),
    );
    await expect4xx(
      'POST',
      `/api/v1/node/${groupId}/trx`,
      forged,
      400,
      /signature does not verify/,
    );
    const replay = lightTrx(priv, 'again');
    replay.trx_id = ok.json.trx_id;
    const rr = await api(n.url, 'POST', `/api/v1/node/${groupId}/trx`, replay);
    assert.equal(rr.status, 400);
  });

  it('rejects a deny-listed sender once the deny list is committed', async () => {
    const priv = generatePrivateKey();
    const pubkey = encodePubkey(publicKeyOf(priv));
    const cfg = await api(n.url, 'POST', '/api/v1/group/chainconfig', {
      group_id: groupId,
      type: 'upd_dny_list',
      config: JSON.stringify({ action: 'add', pubkey, trx_type: ['POST'] }),
      memo: 'spam',
    });
    assert.equal(cfg.status, 200, cfg.text);
    await waitFor(
      async () =>
        (await api(n.url, 'GET', `/api/v1/group/${groupId}/trx/denylist`)).json.length === 1,
      'deny list',
    );
    const list = await api(n.url, 'GET', `/api/v1/group/${groupId}/trx/denylist`);
    assert.equal(list.json[0].Pubkey, pubkey);
    assert.deepEqual(list.json[0].TrxType, ['POST']);
    await expect4xx(
      'POST',
      `/api/v1/node/${groupId}/trx`,
      lightTrx(priv, 'spam'),
      400,
      /deny list/,
    );
    // Another key is still welcome.
    const other = await api(
      n.url,
      'POST',
      `/api/v1/node/${groupId}/trx`,
      lightTrx(generatePrivateKey(), 'hi'),
    );
    assert.equal(other.status, 200);
  });

  it('keeps serving after all of that', async () => {
    const res = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
      data: { type: 'Note', content: 'still here' },
    });
    assert.equal(res.status, 200);
    assert.equal((await api(n.url, 'GET', '/api/v1/node')).status, 200);
  });
});
