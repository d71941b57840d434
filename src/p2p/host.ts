/**
 * The libp2p host of a node: TCP and WebSockets, Noise, Yamux, identify, ping, a Kademlia DHT in
 * server mode under quorum's protocol prefix (/quorum/<network>/kad/1.0.0), circuit relay v2
 * (client and server: any node can relay), and the bootstrap peers from --peer. The peer id comes from
 * the node's `default` keystore key, so it is stable across restarts.
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
}

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
    autoNAT: autoNAT(),
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
  // Every node can relay for peers behind NAT (circuit relay v2 hop, with libp2p's default
  // reservation and data limits); full nodes also punch holes to upgrade relayed connections.
  services.relay = circuitRelayServer();
  if (!bootstrapRole) services.dcutr = dcutr();
  return createLibp2p({
    privateKey: libp2pPrivateKey(init.nodeKey),
    addresses: { listen: init.listen },
    transports: [tcp(), webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: init.bootstrap.length > 0 ? [bootstrap({ list: init.bootstrap })] : [],
    services: services as never,
    start: false,
  });
}
