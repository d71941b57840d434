// NAT traversal through real NATs: each node is a real `rum` process in a network namespace of its
// own. R (bootstrap node and relay) and P live on a small internet; A and B each live behind a
// home router that masquerades and drops every unsolicited inbound packet. Checked:
// - AutoNAT: a public node advertises its address only after a peer dialed it back, and a node
//   behind a NAT never claims an address nobody can dial; it is reached through its relay address.
// - Two members behind different NATs share a group through the bootstrap node's relay.
// - DCUtR: a public peer that reaches a NATed node through the relay ends up on a direct
//   connection that the NATed node opened through its router.
// - UPnP (--enablenat): behind routers that forward ports on request, two members advertise
//   their routers' addresses, share a group, and end up connected directly through the routers.
// Needs root, iproute2, iptables and miniupnpd (installed by .ci/run); under CI it must run.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NET_TEST_LIMITS, until } from '../helpers/net.ts';
import { type LabHost, labUnavailable, NetLab } from '../helpers/netns.ts';
import { api, createPublicGroup, type NodeProcess, tempDir } from '../helpers/node-process.ts';

const unavailable = labUnavailable();
const skip = unavailable && process.env.CI !== 'true' ? `${unavailable}; CI runs it` : false;

const R_IP = '11.0.0.1';
const P_IP = '11.0.0.2';
const NAT_A_IP = '11.0.0.11';
const NAT_B_IP = '11.0.0.12';
const UPNP_C_IP = '11.0.0.13';
const UPNP_D_IP = '11.0.0.14';
const UPNP_E_IP = '11.0.0.15';
const PORT = 7002;

interface Peer {
  peer_id: string;
  addr: string;
  direction: string;
}

describe('NAT traversal across network namespaces', { skip }, () => {
  let lab: NetLab;
  let rAddr = '';
  let rId = '';
  let r: NodeProcess;
  let a: NodeProcess;
  let b: NodeProcess;
  let hostA: LabHost;
  let hostB: LabHost;
  let upnpC: NodeProcess | undefined;
  const config = join(tempDir('rum-nat-'), 'rum.json');
  // Another network name: a node on it cannot find the others through the DHT or gossip, so the
  // connections it has are the ones a test makes.
  const otherNetwork = join(tempDir('rum-nat-other-'), 'rum.json');

  const network = async (n: NodeProcess) => (await api(n.url, 'GET', '/api/v1/network')).json;
  const fullnode = (host: LabHost, extra: string[] = []) =>
    lab.startNode(host, {
      args: ['--listen', `/ip4/${host.ip}/tcp/${PORT}`, '--config', config, ...extra],
    });

  before(async () => {
    if (unavailable) throw new Error(`CI=true, yet the NAT lab cannot run: ${unavailable}`);
    writeFileSync(config, JSON.stringify({ limits: NET_TEST_LIMITS }));
    writeFileSync(otherNetwork, JSON.stringify({ limits: NET_TEST_LIMITS, networkName: 'natlab' }));
    lab = NetLab.create();
    const hostR = lab.addPublicHost('r', R_IP);
    hostA = lab.addHostBehindNat('a', NAT_A_IP);
    hostB = lab.addHostBehindNat('b', NAT_B_IP);
    r = await lab.startNode(hostR, {
      command: 'bootstrapnode',
      args: ['--listen', `/ip4/${R_IP}/tcp/4001`],
    });
    rId = (await api(r.url, 'GET', '/api/v1/node')).json.node_id;
    rAddr = `/ip4/${R_IP}/tcp/4001/p2p/${rId}`;
    [a, b] = await Promise.all([
      fullnode(hostA, ['--peer', rAddr]),
      fullnode(hostB, ['--peer', rAddr]),
    ]);
  });
  after(async () => {
    await lab?.close();
  });

  it('AutoNAT: the public relay is verified by dial-back; NATed nodes advertise only relayed addresses', async () => {
    // Nobody vouches for R's public address until a peer has dialed it back (AutoNAT), through
    // the NATs of A and B in this lab.
    const rAddrs = await until(async () => {
      const addrs: string[] = (await api(r.url, 'GET', '/api/v1/node')).json.addrs;
      return addrs.includes(rAddr) ? addrs : null;
    }, "R's public address to be verified");
    assert.deepEqual(rAddrs, [rAddr]);

    for (const [n, host, nat] of [
      [a, hostA, NAT_A_IP],
      [b, hostB, NAT_B_IP],
    ] as const) {
      const info = await until(async () => {
        const net = await network(n);
        return net.addrs.some((x: string) => x.includes('/p2p-circuit')) ? net : null;
      }, `${host.ns} to hold a reservation on R`);
      assert.equal(info.nat_type, 'Private');
      const relayed = `${rAddr}/p2p-circuit/p2p/${info.peer_id}`;
      assert.ok(info.addrs.includes(relayed), `relayed address in ${info.addrs.join(' ')}`);
      // Only its LAN address besides: neither its router's address nor any other public one.
      for (const x of info.addrs as string[]) {
        assert.ok(
          x === relayed || x.startsWith(`/ip4/${host.ip}/tcp/${PORT}/`),
          `unexpected address ${x}`,
        );
        assert.ok(!x.startsWith(`/ip4/${nat}/`), `${x} claims the router's address`);
      }
      const toR: Peer | undefined = info.peers.find((p: Peer) => p.peer_id === rId);
      assert.ok(toR, 'connected to R');
      assert.equal(toR.direction, 'outbound');
    }
  });

  it('two members behind different NATs share a group through the relay', async () => {
    const created = await createPublicGroup(a.url, 'behind-nat');
    const groupId = created.group_id;
    const joined = await api(b.url, 'POST', '/api/v2/group/join', { seed: created.seed });
    assert.equal(joined.status, 200, joined.text);
    const post = async (n: NodeProcess, content: string) => {
      const res = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
        data: { type: 'Create', object: { type: 'Note', content } },
      });
      assert.equal(res.status, 200, res.text);
    };
    await post(a, 'from A, behind NAT A');
    await post(b, 'from B, behind NAT B');
    const notes = async (n: NodeProcess) => {
      const res = await api(n.url, 'POST', `/app/api/v1/group/${groupId}/content?num=100`, {
        senders: [],
      });
      const trxs = res.json as { Content: { object: { content: string } } }[];
      return trxs.map((t) => t.Content.object.content).sort();
    };
    const want = ['from A, behind NAT A', 'from B, behind NAT B'];
    for (const n of [a, b]) {
      await until(
        async () => JSON.stringify(await notes(n)) === JSON.stringify(want),
        'both posts on both members',
        60_000,
        200,
      );
    }
    const heads = await Promise.all(
      [a, b].map(async (n) => {
        const g = (await api(n.url, 'GET', `/api/v1/group/${groupId}`)).json;
        return `${g.highest_height}:${g.highest_block_id}`;
      }),
    );
    assert.equal(heads[0], heads[1]);
    // Neither NAT lets the other in, and Node's TCP cannot punch a hole (no SO_REUSEPORT, see
    // docs/protocol.md): what they share goes through R's relay.
    const bId = (await network(b)).peer_id;
    const toB: Peer[] = (await network(a)).peers.filter((p: Peer) => p.peer_id === bId);
    assert.ok(toB.length > 0, 'A is connected to B');
    for (const p of toB) assert.match(p.addr, new RegExp(`^${rAddr}/p2p-circuit`));
  });

  it('DCUtR: a relayed connection from a public peer becomes a direct one through the NAT', async () => {
    // P speaks another network name, so A cannot learn of it through the DHT or gossip: the
    // relayed connection P opens is the only way A hears of P, the case DCUtR is for.
    const hostP = lab.addPublicHost('p', P_IP);
    const p = await lab.startNode(hostP, {
      args: ['--listen', `/ip4/${P_IP}/tcp/${PORT}`, '--config', otherNetwork],
    });
    const pAddr = `/ip4/${P_IP}/tcp/${PORT}/p2p/`;
    const toR = await api(p.url, 'POST', '/api/v1/network/peers', [rAddr]);
    assert.equal(toR.json.succ_count, 1, toR.text);
    await until(async () => {
      const net = await network(p);
      return net.nat_type === 'Public' && net.addrs.some((x: string) => x.startsWith(pAddr));
    }, "R to verify P's public address (AutoNAT)");

    const aInfo = await network(a);
    const aRelayed = `${rAddr}/p2p-circuit/p2p/${aInfo.peer_id}`;
    assert.ok(
      !(await network(p)).peers.some((x: Peer) => x.peer_id === aInfo.peer_id),
      'P has no connection to A yet',
    );
    const dialed = await api(p.url, 'POST', '/api/v1/network/peers', [aRelayed]);
    assert.equal(dialed.json.succ_count, 1, dialed.text);
    const direct = await until(async () => {
      const toA = (await network(p)).peers.filter((x: Peer) => x.peer_id === aInfo.peer_id);
      return toA.length === 1 && !toA[0].addr.includes('/p2p-circuit') ? toA[0] : null;
    }, 'the relayed connection to be replaced by a direct one');
    // A dialed out through its router: P sees the router's address, and the connection is P's
    // inbound one although P dialed the relayed one.
    assert.match(direct.addr, new RegExp(`^/ip4/${NAT_A_IP.replaceAll('.', '\\.')}/tcp/\\d+`));
    assert.equal(direct.direction, 'inbound');
  });

  it('UPnP: members behind routers that forward ports on request connect directly', async () => {
    const routers = { c: UPNP_C_IP, d: UPNP_D_IP };
    const members: Record<string, { node: NodeProcess; id: string }> = {};
    for (const [name, routerIp] of Object.entries(routers)) {
      const host = lab.addHostBehindNat(name, routerIp, { upnp: true });
      const node = await fullnode(host, ['--peer', rAddr]);
      const mapped = `/ip4/${routerIp}/tcp/${PORT}/p2p/`;
      const info = await until(async () => {
        const net = await network(node);
        return net.addrs.some((x: string) => x.startsWith(mapped)) ? net : null;
      }, `${name}'s router to forward its port`);
      assert.equal(info.nat_type, 'Public');
      members[name] = { node, id: info.peer_id };
    }
    const { c, d } = members as Record<'c' | 'd', { node: NodeProcess; id: string }>;
    upnpC = c.node;
    const created = await createPublicGroup(c.node.url, 'upnp');
    const joined = await api(d.node.url, 'POST', '/api/v2/group/join', { seed: created.seed });
    assert.equal(joined.status, 200, joined.text);
    const posted = await api(d.node.url, 'POST', `/api/v1/group/${created.group_id}/content`, {
      data: { type: 'Create', object: { type: 'Note', content: 'from D, port forwarded' } },
    });
    assert.equal(posted.status, 200, posted.text);
    await until(
      async () =>
        (await api(c.node.url, 'GET', `/api/v1/group/${created.group_id}`)).json.highest_height >=
        1,
      "D's post in a block on C",
      60_000,
      200,
    );
    // Whichever way they met (through the relay before a port was forwarded, or directly), they
    // end up on direct connections through the routers.
    const toD = await until(async () => {
      const conns: Peer[] = (await network(c.node)).peers.filter((x: Peer) => x.peer_id === d.id);
      return conns.length > 0 && conns.every((x) => !x.addr.includes('/p2p-circuit'))
        ? conns
        : null;
    }, 'only direct connections between C and D');
    for (const p of toD) {
      // Out to D's forwarded port, or in from D's router.
      const want =
        p.direction === 'outbound' ? `/ip4/${UPNP_D_IP}/tcp/${PORT}/` : `/ip4/${UPNP_D_IP}/tcp/`;
      assert.ok(p.addr.startsWith(want), `through D's router: ${p.direction} ${p.addr}`);
    }
  });

  it("a relayed connection becomes direct when the peer's router forwards its port later", async () => {
    // C's port is forwarded already. E dials C through the relay within its first seconds,
    // before its own router forwards its port: C takes the relayed connection with no direct
    // address of E to dial, and DCUtR, which runs only then, leaves it relayed. When E's router
    // forwards the port, identify tells C, and C (or E) replaces the relayed connection.
    const cInfo = (await network(upnpC!)).peer_id as string;
    const hostE = lab.addHostBehindNat('e', UPNP_E_IP, { upnp: true });
    const e = await lab.startNode(hostE, {
      args: ['--listen', `/ip4/${hostE.ip}/tcp/${PORT}`, '--config', otherNetwork, '--peer', rAddr],
    });
    const relayed = await api(e.url, 'POST', '/api/v1/network/peers', [
      `${rAddr}/p2p-circuit/p2p/${cInfo}`,
    ]);
    assert.equal(relayed.json.succ_count, 1, relayed.text);
    const eId = (await network(e)).peer_id as string;
    const early: Peer[] = (await network(upnpC!)).peers.filter((x: Peer) => x.peer_id === eId);
    assert.ok(
      early.length > 0 && early.every((x) => x.addr.includes('/p2p-circuit')),
      JSON.stringify(early),
    );
    await until(async () => {
      const conns: Peer[] = (await network(upnpC!)).peers.filter((x: Peer) => x.peer_id === eId);
      return conns.length > 0 && conns.every((x) => x.addr.startsWith(`/ip4/${UPNP_E_IP}/tcp/`));
    }, "only direct connections between C and E, through E's router");
  });
});
