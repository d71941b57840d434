// Over HTTP against a real node: app config and chain config reads, ActivityStreams variety
// (Image, Like, reply), leave / clear / rejoin by seed, the OpenAPI document, and `rum reindex`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  RUM_BIN,
  startNodeProcess,
  tempDir,
  waitFor,
  dirFlags,
  TEST_PASSWORD,
} from '../helpers/node-process.ts';

describe('groups and config over HTTP', () => {
  let n: NodeProcess;
  let gid = '';
  const dir = tempDir('rum-cfg-');
  const idle = async () =>
    waitFor(
      async () => (await api(n.url, 'GET', `/api/v1/group/${gid}`)).json.mempool_size === 0,
      'commit',
    );

  before(async () => {
    n = await startNodeProcess({ dir });
    gid = (await createPublicGroup(n.url, 'config')).group_id;
  });
  after(async () => {
    await n.stop();
  });

  it('sets, reads and deletes app config items with type checks', async () => {
    const add = await api(n.url, 'POST', '/api/v1/group/appconfig', {
      action: 'add',
      group_id: gid,
      name: 'group_icon',
      type: 'string',
      value: 'https://example.org/icon.png',
      memo: 'icon',
    });
    assert.equal(add.status, 200, add.text);
    assert.match(add.json.signature, /^[0-9a-f]{130}$/);
    const bad = await api(n.url, 'POST', '/api/v1/group/appconfig', {
      action: 'add',
      group_id: gid,
      name: 'max',
      type: 'int',
      value: 'ten',
    });
    assert.equal(bad.status, 400);
    await api(n.url, 'POST', '/api/v1/group/appconfig', {
      action: 'add',
      group_id: gid,
      name: 'open',
      type: 'bool',
      value: 'true',
    });
    await idle();
    assert.deepEqual((await api(n.url, 'GET', `/api/v1/group/${gid}/appconfig/keylist`)).json, [
      { Name: 'group_icon', Type: 'STRING' },
      { Name: 'open', Type: 'BOOL' },
    ]);
    const item = (await api(n.url, 'GET', `/api/v1/group/${gid}/appconfig/group_icon`)).json;
    assert.equal(item.Value, 'https://example.org/icon.png');
    assert.equal(item.Memo, 'icon');
    await api(n.url, 'POST', '/api/v1/group/appconfig', {
      action: 'del',
      group_id: gid,
      name: 'open',
      type: 'bool',
      value: 'true',
    });
    await idle();
    assert.equal(
      (await api(n.url, 'GET', `/api/v1/group/${gid}/appconfig/keylist`)).json.length,
      1,
    );
    assert.equal((await api(n.url, 'GET', `/api/v1/group/${gid}/appconfig/open`)).status, 404);
  });

  it('sets the trx auth mode and reads allow list and mode back', async () => {
    const key = 'AnRP4sojIvAH-Ugqnd7ZaM1H8j_c1pX6clyeXgAORiGZ';
    assert.deepEqual((await api(n.url, 'GET', `/api/v1/group/${gid}/trx/auth/POST`)).json, {
      TrxType: 'POST',
      AuthType: 'FOLLOW_DNY_LIST',
    });
    const mode = await api(n.url, 'POST', '/api/v1/group/chainconfig', {
      group_id: gid,
      type: 'set_trx_auth_mode',
      config: JSON.stringify({ trx_type: 'POST', trx_auth_mode: 'follow_alw_list' }),
    });
    assert.equal(mode.status, 200, mode.text);
    await api(n.url, 'POST', '/api/v1/group/chainconfig', {
      group_id: gid,
      type: 'upd_alw_list',
      config: JSON.stringify({ action: 'add', pubkey: key, trx_type: ['POST', 'ANNOUNCE'] }),
    });
    await idle();
    assert.equal(
      (await api(n.url, 'GET', `/api/v1/group/${gid}/trx/auth/POST`)).json.AuthType,
      'FOLLOW_ALW_LIST',
    );
    const allow = (await api(n.url, 'GET', `/api/v1/group/${gid}/trx/allowlist`)).json;
    assert.equal(allow[0].Pubkey, key);
    assert.deepEqual(allow[0].TrxType, ['POST', 'ANNOUNCE']);
    // The owner still posts under an allow-list mode.
    const post = await api(n.url, 'POST', `/api/v1/group/${gid}/content`, {
      data: { type: 'Note', content: 'owner' },
    });
    assert.equal(post.status, 200);
    const badType = await api(n.url, 'POST', '/api/v1/group/chainconfig', {
      group_id: gid,
      type: 'set_trx_auth_mode',
      config: JSON.stringify({ trx_type: 'USER', trx_auth_mode: 'follow_alw_list' }),
    });
    assert.equal(badType.status, 400);
    assert.match(badType.json.message, /trx_type/);
  });

  it('posts images, likes and replies, and indexes the reply target', async () => {
    const note = await api(n.url, 'POST', `/api/v1/group/${gid}/content`, {
      data: { type: 'Create', object: { type: 'Note', content: 'a note to answer' } },
    });
    const image = await api(n.url, 'POST', `/api/v1/group/${gid}/content`, {
      data: {
        type: 'Create',
        object: { type: 'Image', url: 'https://example.org/a.png', mediaType: 'image/png' },
      },
    });
    assert.equal(image.status, 200, image.text);
    const reply = await api(n.url, 'POST', `/api/v1/group/${gid}/content`, {
      data: {
        type: 'Create',
        object: {
          type: 'Note',
          content: 'a reply',
          inReplyTo: { type: 'Note', id: note.json.trx_id },
        },
      },
    });
    const like = await api(n.url, 'POST', '/api/v1/group/content', {
      type: 'Like',
      object: { id: note.json.trx_id },
      target: { id: gid, type: 'Group' },
    });
    assert.equal(like.status, 200, like.text);
    await idle();
    const rows = (
      await api(n.url, 'POST', `/app/api/v1/group/${gid}/content?num=50&reverse=true`, {})
    ).json;
    const byId = new Map(rows.map((r: { TrxId: string }) => [r.TrxId, r]));
    assert.deepEqual((byId.get(like.json.trx_id) as { Content: unknown }).Content, {
      type: 'Like',
      object: { type: 'Note', id: note.json.trx_id },
    });
    assert.equal(
      (byId.get(reply.json.trx_id) as { Content: { object: { inReplyTo: { id: string } } } })
        .Content.object.inReplyTo.id,
      note.json.trx_id,
    );
  });

  it('serves the OpenAPI document', async () => {
    const doc = await api(n.url, 'GET', '/swagger/json');
    assert.equal(doc.status, 200);
    assert.match(doc.json.openapi, /^3\./);
    assert.ok(doc.json.paths['/api/v1/group'].post);
    assert.ok(doc.json.paths['/app/api/v1/group/{group_id}/content'].get);
  });

  it('leaves, refuses to clear a joined group, clears, and rejoins by seed', async () => {
    const seed = (await api(n.url, 'GET', `/api/v1/group/${gid}/seed`)).json.seed;
    assert.equal((await api(n.url, 'POST', '/api/v1/group/clear', { group_id: gid })).status, 400);
    assert.equal((await api(n.url, 'POST', '/api/v1/group/leave', { group_id: gid })).status, 200);
    assert.equal((await api(n.url, 'GET', `/api/v1/group/${gid}`)).status, 404);
    // Rejoining keeps the stored chain: the head is where it was.
    const rejoin = await api(n.url, 'POST', '/api/v2/group/join', { seed });
    assert.equal(rejoin.status, 200, rejoin.text);
    assert.equal(rejoin.json.group_id, gid);
    assert.ok((await api(n.url, 'GET', `/api/v1/group/${gid}`)).json.highest_height > 0);
    await api(n.url, 'POST', '/api/v1/group/leave', { group_id: gid });
    assert.equal((await api(n.url, 'POST', '/api/v1/group/clear', { group_id: gid })).status, 200);
    assert.equal((await api(n.url, 'POST', '/api/v1/group/clear', { group_id: gid })).status, 404);
    // After a clear the group starts again from its genesis.
    const fresh = await api(n.url, 'POST', '/api/v2/group/join', { seed });
    assert.equal(fresh.status, 200);
    assert.equal((await api(n.url, 'GET', `/api/v1/group/${gid}`)).json.highest_height, 0);
  });

  it('rum reindex rebuilds the index of a stopped node', async () => {
    const g2 = (await createPublicGroup(n.url, 'reidx')).group_id;
    await api(n.url, 'POST', `/api/v1/group/${g2}/content`, {
      data: { type: 'Note', content: 'x' },
    });
    await waitFor(
      async () => (await api(n.url, 'GET', `/api/v1/group/${g2}`)).json.highest_height === 1,
      'block',
    );
    assert.equal(await n.stop(), 0);
    const r = spawnSync(
      process.execPath,
      [RUM_BIN, 'reindex', ...dirFlags(dir), '--keystorepwd', TEST_PASSWORD, '--loglevel', 'warn'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reindexed 2 groups, \d+ blocks, \d+ trxs/);
    n = await startNodeProcess({ dir });
    assert.equal((await api(n.url, 'GET', `/app/api/v1/group/${g2}/content`)).json.length, 1);
  });
});
