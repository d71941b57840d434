/**
 * The libp2p host of a node: TCP and WebSockets, Noise, Yamux, identify, ping, a Kademlia DHT in
 * server mode under quorum's protocol prefix (/quorum/<network>/kad/1.0.0), circuit relay v2
 * (client and server: any node can relay), AutoNAT, DCUtR, and the bootstrap peers from --peer.
 * The peer id comes from the node's `default` keystore key, so it is stable across restarts.
 *
 * Behind a NAT (docs/protocol.md, "NAT traversal"): AutoNAT asks peers to dial an address back
 * before the node advertises it, so a node behind a NAT never advertises an address nobody can
 * reach; with `autoRelay` a full node holds a reservation on a relay and advertises the relayed
 * address; a peer that reaches it through the relay is then upgraded to a direct connection by
 * DCUtR when either side has a public address.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { autoNAT } from '@libp2p/autonat';
import { bootstrap } from '@libp2p/bootstrap';
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { dcutr } from '@libp2p/dcutr';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Libp2p } from '@libp2p/interface';
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { uPnPNAT } from '@libp2p/upnp-nat';
import { webSockets } from '@libp2p/websockets';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { concatBytes } from '../crypto/encoding.ts';
import { installFastLibp2pSecp256k1 } from './fast-secp256k1.ts';

export interface P2PHostInit {
  /** The 32-byte secp256k1 node key. */
  nodeKey: Uint8Array;
  listen: string[];
  bootstrap: string[];
  networkName: string;
  role: 'full' | 'bootstrap';
  /** Listen on /p2p-circuit: hold a reservation on a relay among the connected peers. */
  autoRelay?: boolean;
  /** Ask the home router to forward the listen port (UPnP IGD), as quorum's --enablenat. */
  enableNat?: boolean;
}

/**
 * Whether a listen address is one a home router could forward a port to: TCP on IPv4, neither
 * loopback nor link-local (0.0.0.0 counts: it includes the LAN address). A node listening on
 * loopback only never searches for a router, so it sends no SSDP multicast at all.
 */
export function mappableListenAddr(addr: string): boolean {
  const m = /^\/ip4\/([0-9.]+)\/tcp\/\d+(\/|$)/.exec(addr);
  if (!m) return false;
  const ip = m[1]!;
  return !ip.startsWith('127.') && !ip.startsWith('169.254.');
}

/** Reservations a bootstrap node keeps for peers behind NAT (libp2p's default is 15). */
const BOOTSTRAP_MAX_RESERVATIONS = 256;

export class P2PConfigError extends Error {
  override name = 'P2PConfigError';
}

/** Validates multiaddrs from flags before libp2p sees them, naming the one that is wrong. */
export function checkMultiaddrs(flag: string, addrs: string[], needPeerId: boolean): void {
  for (const a of addrs) {
    let ma: ReturnType<typeof multiaddr>;
    try {
      ma = multiaddr(a);
    } catch (err) {
      throw new P2PConfigError(`--${flag} ${a}: ${(err as Error).message}`);
    }
    if (needPeerId && !ma.getComponents().some((c) => c.name === 'p2p')) {
      throw new P2PConfigError(`--${flag} ${a}: must end with /p2p/<peer id>`);
    }
  }
}

type AutoNATComponents = Parameters<ReturnType<typeof autoNAT>>[0];

/**
 * AutoNAT v1 (the version quorum's peers speak) from @libp2p/autonat, with its dial-back forced
 * onto a new connection. The library asks the connection manager for a connection to the address
 * it is to test, and closes whatever it gets. When the asking peer is already connected at that
 * address, as a public node is to every peer behind a NAT that dialed it, the manager hands back
 * that connection: the test proves nothing and closing it cuts the peer off. Forcing the dial
 * makes the test real, and what is closed is the connection the test opened.
 */
function autoNATWithFreshDials(): (components: AutoNATComponents) => unknown {
  const factory = autoNAT();
  return (components) => {
    const manager = components.connectionManager;
    const freshDials = new Proxy(manager, {
      get(target, key) {
        if (key === 'openConnection') {
          return (peer: Parameters<typeof manager.openConnection>[0], options = {}) =>
            target.openConnection(peer, { ...options, force: true });
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return factory(
      new Proxy(components, {
        get: (target, key) => (key === 'connectionManager' ? freshDials : Reflect.get(target, key)),
      }),
    );
  };
}

export function libp2pPrivateKey(nodeKey: Uint8Array) {
  return privateKeyFromProtobuf(concatBytes(Uint8Array.of(0x08, 0x02, 0x12, 0x20), nodeKey));
}

export async function createP2PHost(init: P2PHostInit): Promise<Libp2p> {
  installFastLibp2pSecp256k1();
  checkMultiaddrs('listen', init.listen, false);
  checkMultiaddrs('peer', init.bootstrap, true);
  const prefix = `/quorum/${init.networkName}`;
  const services: Record<string, unknown> = {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: `${prefix}/kad/1.0.0`,
      clientMode: false,
      peerInfoMapper: passthroughMapper,
    }),
    autoNAT: autoNATWithFreshDials(),
  };
  // quorum offers gossipsub only under its own protocol id; a bootstrap node keeps no mesh and
  // serves peer exchange, so members of a group that meet only through it still find each other.
  const bootstrapRole = init.role === 'bootstrap';
  services.pubsub = gossipsub({
    protocols: [`${prefix}/meshsub/1.1.0`],
    doPX: true,
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    emitSelf: false,
    ...(bootstrapRole
      ? { D: 0, Dlo: 0, Dhi: 0, Dout: 0, Dscore: 0, Dlazy: 1024, gossipFactor: 0.5 }
      : {}),
    scoreParams: { topics: {} },
    scoreThresholds: { gossipThreshold: -500, publishThreshold: -1000, graylistThreshold: -2500 },
  });
  // Every node can relay for peers behind NAT. A full node relays with libp2p's limits (2 minutes,
  // 128 KiB a connection): enough for DCUtR to upgrade the connection, not for group traffic. A
  // bootstrap node is the relay of last resort, as quorum's relaynode (whose limits are nil): it
  // relays whole connections, so two members behind NATs that cannot punch through still share
  // their group over it.
  services.relay = circuitRelayServer(
    bootstrapRole
      ? { reservations: { applyDefaultLimit: false, maxReservations: BOOTSTRAP_MAX_RESERVATIONS } }
      : {},
  );
  if (!bootstrapRole) services.dcutr = dcutr();
  // UPnP port mapping (quorum's --enablenat). The router reports the external address and the
  // mapping itself, and @libp2p/upnp-nat refuses a private external address (double NAT), so the
  // mapped address is advertised at once: AutoNAT v1 would only test it when a new peer connects.
  if (!bootstrapRole && init.enableNat && init.listen.some(mappableListenAddr)) {
    services.upnpNAT = uPnPNAT({ autoConfirmAddress: true });
  }
  const listen = [...init.listen];
  if (init.autoRelay && !bootstrapRole && !listen.some((a) => a.endsWith('/p2p-circuit'))) {
    listen.push('/p2p-circuit');
  }
  return createLibp2p({
    privateKey: libp2pPrivateKey(init.nodeKey),
    addresses: { listen },
    transports: [tcp(), webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: init.bootstrap.length > 0 ? [bootstrap({ list: init.bootstrap })] : [],
    services: services as never,
    start: false,
  });
}
