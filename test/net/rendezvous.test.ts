// Members of a group announce themselves in the DHT under a key derived from the group id; a
// member that knows only the bootstrap node finds the others there and connects to them.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RumNode } from '../../src/node.ts';
import { groupRendezvous } from '../../src/p2p/group-net.ts';
import { startBootstrap, startMember, until } from '../helpers/net.ts';

describe('group rendezvous in the DHT', () => {
  const nodes: RumNode[] = [];
  let stopBoot: (() => void | Promise<void>) | undefined;
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await stopBoot?.();
  });

  it('lets two members that share only a bootstrap node find each other', async () => {
    const boot = await startBootstrap();
    stopBoot = () => boot.host.stop();
    const a = (await startMember([boot.addr])).node;
    const b = (await startMember([boot.addr])).node;
    nodes.push(a, b);
    const { groupId, seed } = await a.createGroup({
      groupName: 'meet',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    const cid = await groupRendezvous(groupId);
    assert.equal(
      cid.toString(),
      (await groupRendezvous(groupId)).toString(),
      'the key is a function of the group id',
    );

    await until(async () => {
      await a.net.rendezvous(groupId);
      for await (const p of b.p2p.contentRouting.findProviders(cid, {
        signal: AbortSignal.timeout(5000),
      })) {
        if (p.id.equals(a.p2p.peerId)) return true;
      }
      return false;
    }, "A's announcement to be found by B through the DHT");

    for (const conn of b.p2p.getConnections(a.p2p.peerId)) await conn.close();
    // Both sides done with the old connection before B meets A again (gossipsub keeps a stream per
    // peer; a new connection racing the old one's teardown can be left without one).
    await until(
      () =>
        b.p2p.getConnections(a.p2p.peerId).length === 0 &&
        a.p2p.getConnections(b.p2p.peerId).length === 0 &&
        !b.p2p.getPeers().some((p) => p.equals(a.p2p.peerId)),
      'the old connection closed on both sides',
    );
    await b.joinGroup(seed);
    await until(() => b.p2p.getConnections(a.p2p.peerId).length > 0, 'B to connect to A');
    await until(() => b.net.groupPeers(groupId).includes(a.peerId), 'A in B’s group topic');
  });
});
