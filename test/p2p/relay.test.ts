// Circuit relay v2: a full node relays for a peer that listens through it, and a third peer
// reaches that peer by the relayed address alone.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Libp2p } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import { createP2PHost } from '../../src/p2p/host.ts';
import { LOOPBACK, until } from '../helpers/net.ts';

describe('circuit relay', () => {
  const hosts: Libp2p[] = [];
  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
  });

  it('connects two peers through a full node acting as relay', async () => {
    const make = async (listen: string[], bootstrap: string[]) => {
      const h = await createP2PHost({
        nodeKey: generatePrivateKey(),
        listen,
        bootstrap,
        networkName: 'staten',
        role: 'full',
      });
      await h.start();
      hosts.push(h);
      return h;
    };
    const relay = await make([LOOPBACK], []);
    const relayAddr = relay.getMultiaddrs()[0]!.toString();
    // Behind a NAT in spirit: it is reachable only through its reservation on the relay.
    const hidden = await make([`${relayAddr}/p2p-circuit`], [relayAddr]);
    const circuit = await until(
      () => hidden.getMultiaddrs().find((a) => a.toString().includes('/p2p-circuit')),
      'a relayed address',
    );
    assert.ok(circuit.toString().startsWith(relayAddr));
    const outside = await make([LOOPBACK], []);
    const conn = await outside.dial(multiaddr(circuit.toString()));
    assert.ok(conn.remotePeer.equals(hidden.peerId));
    assert.ok(conn.remoteAddr.toString().includes('/p2p-circuit'), 'the connection is relayed');
    const rtt = await (
      outside as Libp2p<{ ping: { ping(p: unknown): Promise<number> } }>
    ).services.ping.ping(hidden.peerId);
    assert.ok(rtt >= 0, 'a protocol runs over the relayed connection');
    // The relayed peer offers hole punching and NAT detection to upgrade such connections.
    const protocols = await until(async () => {
      const p = (await outside.peerStore.get(hidden.peerId)).protocols;
      return p.length > 0 ? p : null;
    }, 'the relayed peer to be identified');
    assert.ok(protocols.includes('/libp2p/dcutr'), `DCUtR offered: ${protocols.join(' ')}`);
    assert.ok(protocols.includes('/libp2p/autonat/1.0.0'), 'AutoNAT offered');
    assert.ok(protocols.includes('/libp2p/circuit/relay/0.2.0/hop'), 'every node can relay');
  });

  it('holds a reservation on a relay among its peers when autoRelay is on, and none when off', async () => {
    const start = async (bootstrap: string[], autoRelay: boolean) => {
      const h = await createP2PHost({
        nodeKey: generatePrivateKey(),
        listen: [LOOPBACK],
        bootstrap,
        networkName: 'staten',
        role: 'full',
        autoRelay,
      });
      await h.start();
      hosts.push(h);
      return h;
    };
    const relay = await start([], false);
    const relayAddr = relay.getMultiaddrs()[0]!.toString();
    const [auto, plain] = await Promise.all([start([relayAddr], true), start([relayAddr], false)]);
    const relayed = (h: Libp2p) =>
      h.getMultiaddrs().find((a) => a.toString().startsWith(`${relayAddr}/p2p-circuit/p2p/`));
    await until(() => relayed(auto), 'a reservation on the relay');
    assert.ok(plain.getConnections(relay.peerId).length > 0, 'the other node is connected too');
    assert.equal(relayed(plain), undefined, 'no reservation without autoRelay');
    assert.ok(
      !relay.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit')),
      'the relay holds none itself',
    );
  });

  it('connects over WebSockets when a node listens with /ws', async () => {
    const server = await createP2PHost({
      nodeKey: generatePrivateKey(),
      listen: ['/ip4/127.0.0.1/tcp/0/ws'],
      bootstrap: [],
      networkName: 'staten',
      role: 'full',
    });
    await server.start();
    hosts.push(server);
    const wsAddr = server.getMultiaddrs().find((a) => a.toString().includes('/ws'));
    assert.ok(wsAddr, 'a WebSocket listen address');
    const client = await createP2PHost({
      nodeKey: generatePrivateKey(),
      listen: [],
      bootstrap: [],
      networkName: 'staten',
      role: 'full',
    });
    await client.start();
    hosts.push(client);
    const conn = await client.dial(wsAddr);
    assert.ok(conn.remotePeer.equals(server.peerId));
    assert.match(conn.remoteAddr.toString(), /\/ws/);
  });
});
