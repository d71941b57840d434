// The network endpoints over HTTP: AddPeer dials peers and reports failures per address, and
// turns a relayed connection into a direct one when given a direct address; network info lists
// connections with their scores and each group's peers.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.ts';
import { TokenService } from '../../src/api/tokens.ts';
import type { RumNode } from '../../src/node.ts';
import { multiaddr } from '@multiformats/multiaddr';
import { LOOPBACK, startMember, until } from '../helpers/net.ts';
import { openTempNode } from '../helpers/temp-node.ts';

describe('network API', () => {
  const nodes: RumNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('adds peers and shows them', async () => {
    const a = (await startMember([])).node;
    const b = (await startMember([])).node;
    nodes.push(a, b);
    const app = await buildApi({ node: a, tokens: await TokenService.open(a.store, a.keystore) });
    const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
      const r = await app.inject({
        method,
        url,
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      return { status: r.statusCode, json: JSON.parse(r.body) };
    };
    const alone = (await call('GET', '/api/v1/network')).json;
    assert.equal(
      alone.nat_type,
      'Unknown',
      'loopback only, no relay yet: neither public nor relayed',
    );
    const bAddr = b.p2p.getMultiaddrs()[0]!.toString();
    const added = await call('POST', '/api/v1/network/peers', [
      bAddr,
      '/ip4/127.0.0.1/tcp/1',
      'not a multiaddr',
    ]);
    assert.equal(added.status, 200);
    assert.equal(added.json.succ_count, 1);
    assert.equal(added.json.err_count, 2);
    assert.match(added.json.error['/ip4/127.0.0.1/tcp/1'], /p2p/);
    assert.ok(added.json.error['not a multiaddr']);
    assert.equal((await call('POST', '/api/v1/network/peers', [])).status, 400);

    const { groupId, seed } = await a.createGroup({
      groupName: 'net',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    await b.joinGroup(seed);
    const net = await until(async () => {
      const r = (await call('GET', '/api/v1/network')).json;
      return r.groups[0]?.Peers.includes(b.peerId) ? r : null;
    }, 'B in the group topic');
    assert.equal(net.peer_id, a.peerId);
    assert.equal(net.groups[0].GroupId, groupId);
    assert.ok(
      net.peers.some(
        (p: { peer_id: string; score: number }) => p.peer_id === b.peerId && p.score >= 0,
      ),
    );
    // With --autorelay (the default) A holds a reservation on B, its only relay: reachable from
    // outside its network only through it.
    const relayed = await until(async () => {
      const r = (await call('GET', '/api/v1/network')).json;
      return r.addrs.some((x: string) => x.startsWith(`${bAddr}/p2p-circuit/`)) ? r : null;
    }, 'a reservation on B');
    assert.equal(relayed.nat_type, 'Private');
    const info = (await call('GET', `/api/v1/group/${groupId}`)).json;
    assert.deepEqual(info.peers, [b.peerId]);
    await app.close();
  });

  it('replaces a relayed connection with a direct one when given a direct address', async () => {
    const relay = (await startMember([])).node;
    nodes.push(relay);
    const relayAddr = relay.p2p.getMultiaddrs()[0]!.toString();
    const y = (await startMember([relayAddr])).node;
    // x speaks another network name, so it cannot meet y through the DHT or gossip: the relayed
    // connection it opens is the only one between them.
    const x = (await openTempNode({ listen: [LOOPBACK], networkName: 'other' })).node;
    await x.start();
    nodes.push(x, y);
    const relayed = await until(
      () => y.p2p.getMultiaddrs().find((a) => a.toString().startsWith(`${relayAddr}/p2p-circuit`)),
      "y's reservation on the relay",
    );
    await x.p2p.dial(relayed);
    // On loopback neither side has a public address: DCUtR leaves the connection relayed.
    const toY = () => x.p2p.getConnections(y.p2p.peerId).map((c) => c.remoteAddr.toString());
    assert.ok(toY().length > 0 && toY().every((a) => a.includes('/p2p-circuit')), toY().join());
    const app = await buildApi({ node: x, tokens: await TokenService.open(x.store, x.keystore) });
    const direct = y.p2p.getMultiaddrs().find((a) => !a.toString().includes('/p2p-circuit'))!;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/network/peers',
      payload: [direct.toString()],
    });
    assert.equal(JSON.parse(res.body).succ_count, 1, res.body);
    await until(
      () => toY().length === 1 && toY()[0] === direct.toString(),
      'only the direct connection',
    );
    assert.ok(multiaddr(toY()[0]!).equals(direct));
    await app.close();
  });
});
