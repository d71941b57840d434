// Which NAT services a host mounts: UPnP port mapping only where a router could forward a port,
// so a node on loopback (every test and benchmark node) never sends an SSDP search. The hosts
// here are created but never started: nothing goes on the network.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import { createP2PHost, mappableListenAddr } from '../../src/p2p/host.ts';

describe('NAT services of a host', () => {
  it('knows which listen addresses a router could forward', () => {
    for (const a of [
      '/ip4/0.0.0.0/tcp/7002',
      '/ip4/192.168.1.20/tcp/7002',
      '/ip4/10.0.0.2/tcp/1/ws',
    ]) {
      assert.equal(mappableListenAddr(a), true, a);
    }
    for (const a of [
      '/ip4/127.0.0.1/tcp/0',
      '/ip4/169.254.3.4/tcp/7002',
      '/ip6/::/tcp/7002',
      '/p2p-circuit',
      '/ip4/0.0.0.0/udp/7002/quic-v1',
    ]) {
      assert.equal(mappableListenAddr(a), false, a);
    }
  });

  it('mounts UPnP for a full node on a LAN address with --enablenat, and only then', async () => {
    const upnp = async (listen: string, enableNat: boolean, role: 'full' | 'bootstrap') => {
      const host = await createP2PHost({
        nodeKey: generatePrivateKey(),
        listen: [listen],
        bootstrap: [],
        networkName: 'staten',
        role,
        enableNat,
      });
      return (host.services as Record<string, unknown>).upnpNAT !== undefined;
    };
    assert.equal(await upnp('/ip4/0.0.0.0/tcp/7002', true, 'full'), true);
    assert.equal(await upnp('/ip4/0.0.0.0/tcp/7002', false, 'full'), false);
    assert.equal(await upnp('/ip4/127.0.0.1/tcp/0', true, 'full'), false);
    assert.equal(await upnp('/ip4/0.0.0.0/tcp/7002', true, 'bootstrap'), false);
  });
});
