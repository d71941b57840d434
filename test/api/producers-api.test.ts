// The producer endpoints over HTTP (inject): announce as producer on a member, the owner adds it,
// both list the producers and the announcement; bad requests get 4xx with a message.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server.ts';
import { TokenService } from '../../src/api/tokens.ts';
import type { RumNode } from '../../src/node.ts';
import { startMember, until } from '../helpers/net.ts';

describe('producer endpoints', () => {
  const nodes: RumNode[] = [];
  const apps: FastifyInstance[] = [];
  after(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('announces, approves and lists producers', async () => {
    const owner = (await startMember([])).node;
    const member = (await startMember([owner.p2p.getMultiaddrs()[0]!.toString()])).node;
    nodes.push(owner, member);
    const api = async (n: RumNode) => {
      const app = await buildApi({ node: n, tokens: await TokenService.open(n.store, n.keystore) });
      apps.push(app);
      return async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
        const r = await app.inject({
          method,
          url,
          ...(payload === undefined ? {} : { payload: payload as object }),
        });
        return { status: r.statusCode, json: JSON.parse(r.body) };
      };
    };
    const o = await api(owner);
    const m = await api(member);
    const created = await o('POST', '/api/v1/group', {
      group_name: 'prod',
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'group_bbs',
    });
    const gid = created.json.group_id;
    assert.equal((await m('POST', '/api/v2/group/join', { seed: created.json.seed })).status, 200);

    const ann = await m('POST', '/api/v1/group/announce', {
      group_id: gid,
      action: 'add',
      type: 'producer',
      memo: 'me',
    });
    assert.equal(ann.status, 200);
    assert.equal(ann.json.type, 'AS_PRODUCER');
    const key = ann.json.sign_pubkey;
    const tooEarly = await o('POST', '/api/v1/group/producer', {
      group_id: gid,
      producer_pubkey: ['AnRP4sojIvAH-Ugqnd7ZaM1H8j_c1pX6clyeXgAORiGZ'],
    });
    assert.equal(tooEarly.status, 400);
    assert.match(tooEarly.json.message, /not announced/);
    await until(
      async () => (await o('GET', `/api/v1/group/${gid}/announced/producers`)).json.length === 1,
      'the announcement on the owner',
    );
    const notOwner = await m('POST', '/api/v1/group/producer', {
      group_id: gid,
      producer_pubkey: [key],
    });
    assert.equal(notOwner.status, 400);
    assert.match(notOwner.json.message, /owner/);

    const added = await o('POST', '/api/v1/group/producer', {
      group_id: gid,
      producer_pubkey: [key],
      action: 'add',
      memo: 'welcome',
    });
    assert.equal(added.status, 200);
    assert.equal(added.json.Producers.length, 2);
    assert.equal(added.json.failable_producers, 0);
    await until(
      async () => (await m('GET', `/api/v1/group/${gid}/producers`)).json.length === 2,
      'two producers on the member',
    );
    const list = (await o('GET', `/api/v1/group/${gid}/producers`)).json;
    assert.equal(list[0].ProducerPubkey, owner.group(gid).userPubkey, 'the owner first');
    assert.equal(list[1].ProducerPubkey, key);
    assert.match(list[1].OwnerSign, /^[0-9a-f]{130}$/);
    const announced = (await o('GET', `/api/v1/group/${gid}/announced/producers`)).json;
    assert.equal(announced[0].AnnouncedPubkey, key);
  });
});
