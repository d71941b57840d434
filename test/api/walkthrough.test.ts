// quorum's README flow, against a real `rum fullnode` process over HTTP: create a group, read
// its seed, post a Note (older and newer forms), list groups (highest_height grows), read back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeSeedUrl } from '../../src/chain/seed.ts';
import { api, type NodeProcess, startNodeProcess, waitFor } from '../helpers/node-process.ts';

describe('quorum README walkthrough over HTTP', () => {
  let n: NodeProcess;
  let groupId = '';
  before(async () => {
    n = await startNodeProcess();
  });
  after(async () => {
    assert.equal(await n.stop(), 0, 'node exits cleanly on SIGTERM');
  });

  it('creates a group and returns a verifiable seed', async () => {
    const res = await api(n.url, 'POST', '/api/v1/group', {
      group_name: 'ourforum',
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'group_bbs',
    });
    assert.equal(res.status, 200, res.text);
    groupId = res.json.group_id;
    const { seed } = decodeSeedUrl(res.json.seed);
    assert.equal(seed.groupId, groupId);
    assert.equal(seed.groupName, 'ourforum');
    assert.equal(seed.appKey, 'group_bbs');

    const again = await api(n.url, 'GET', `/api/v1/group/${groupId}/seed`);
    assert.equal(again.status, 200);
    assert.equal(again.json.seed, res.json.seed);
  });

  it('lists the group at height 0, IDLE', async () => {
    const res = await api(n.url, 'GET', '/api/v1/groups');
    assert.equal(res.status, 200);
    const g = res.json.groups.find((x: { group_id: string }) => x.group_id === groupId);
    assert.equal(g.group_name, 'ourforum');
    assert.equal(g.highest_height, 0);
    assert.equal(g.group_status, 'IDLE');
    assert.equal(g.consensus_type, 'POA');
    assert.equal(g.encryption_type, 'PUBLIC');
    assert.equal(g.owner_pubkey, g.user_pubkey);
    assert.match(g.cipher_key, /^[0-9a-f]{64}$/);
    assert.equal(typeof g.last_updated, 'bigint', 'ns timestamps are exact integers');
  });

  it('posts with the older Activity form and the newer data form, and reads both back', async () => {
    const legacy = await api(n.url, 'POST', '/api/v1/group/content', {
      type: 'Add',
      object: { type: 'Note', content: 'The Future Will Be Decentralized', name: 'My First Post!' },
      target: { id: groupId, type: 'Group' },
    });
    assert.equal(legacy.status, 200, legacy.text);
    assert.match(legacy.json.trx_id, /^[0-9a-f-]{36}$/);

    const modern = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
      data: { type: 'Create', object: { type: 'Note', content: 'hello world', id: 'n1' } },
    });
    assert.equal(modern.status, 200, modern.text);

    const g = await waitFor(async () => {
      const r = await api(n.url, 'GET', `/api/v1/group/${groupId}`);
      return r.json.highest_height >= 1 && r.json.mempool_size === 0 ? r.json : null;
    }, 'height to grow');
    assert.ok(g.highest_height >= 1);
    assert.match(g.highest_block_id, /^[0-9a-f]{64}$/);

    const old = await api(
      n.url,
      'POST',
      `/app/api/v1/group/${groupId}/content?num=20&reverse=false`,
      { senders: [] },
    );
    assert.equal(old.status, 200, old.text);
    assert.equal(old.json.length, 2);
    assert.equal(old.json[0].TrxId, legacy.json.trx_id);
    // A public post also carries its author's signed Nostr event (bridges/nostr/SPEC.md).
    const withoutNostr = ({ nostr: _, ...rest }: Record<string, unknown>) => rest;
    assert.deepEqual(withoutNostr(old.json[0].Content), {
      type: 'Note',
      content: 'The Future Will Be Decentralized',
      name: 'My First Post!',
    });
    assert.equal(old.json[0].TypeUrl, 'quorum.pb.Object');
    assert.equal(old.json[0].Publisher, g.user_pubkey);

    const now = await api(n.url, 'GET', `/app/api/v1/group/${groupId}/content?num=1&reverse=true`);
    assert.equal(now.status, 200);
    assert.equal(now.json.length, 1);
    const trx = now.json[0];
    assert.equal(trx.TrxId, modern.json.trx_id);
    assert.equal(typeof trx.TimeStamp, 'string');
    assert.equal(trx.Version, '2.0.0');
    assert.equal(trx.Type, undefined, 'POST (0) is omitted as Go does');
    assert.deepEqual(withoutNostr(JSON.parse(Buffer.from(trx.Data, 'base64').toString())), {
      object: { content: 'hello world', id: 'n1', type: 'Note' },
      type: 'Create',
    });

    const stored = await api(n.url, 'GET', `/api/v1/trx/${groupId}/${modern.json.trx_id}`);
    assert.equal(stored.json.TrxId, modern.json.trx_id);
    assert.notEqual(stored.json.Data, trx.Data, 'the stored trx keeps its encrypted Data');
    const block = await api(n.url, 'GET', `/api/v1/block/${groupId}/1`);
    assert.equal(block.json.BlockId, 1);
    assert.ok(block.json.Trxs.length >= 1);
    const missing = await api(n.url, 'GET', `/api/v1/block/${groupId}/999`);
    assert.deepEqual(missing.json, {});
  });

  it('pages with start_trx and include_start_trx, and filters by sender', async () => {
    const all = await api(n.url, 'GET', `/app/api/v1/group/${groupId}/content?num=20`);
    const first = all.json[0].TrxId;
    const after1 = await api(
      n.url,
      'GET',
      `/app/api/v1/group/${groupId}/content?num=20&start_trx=${first}`,
    );
    assert.equal(after1.json.length, all.json.length - 1);
    const incl = await api(
      n.url,
      'GET',
      `/app/api/v1/group/${groupId}/content?num=20&start_trx=${first}&include_start_trx=true`,
    );
    assert.equal(incl.json.length, all.json.length);
    const nobody = await api(
      n.url,
      'GET',
      `/app/api/v1/group/${groupId}/content?senders=AnRP4sojIvAH-Ugqnd7ZaM1H8j_c1pX6clyeXgAORiGZ`,
    );
    assert.deepEqual(nobody.json, []);
  });

  it('answers node info with quorum fields', async () => {
    const res = await api(n.url, 'GET', '/api/v1/node');
    assert.equal(res.status, 200);
    assert.match(res.json.node_id, /^16Uiu2/);
    assert.match(res.json.node_publickey, /^CAISI/);
    assert.equal(res.json.node_type, 'peer');
    assert.equal(
      res.json.node_status,
      'NODE_OFFLINE',
      'a node with no peers is offline, as in quorum',
    );
    const metrics = await fetch(`${n.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /rum_trx_committed_total\{type="0"\} 2/);
    assert.match(metrics, /rum_blocks_total/);
  });
});
