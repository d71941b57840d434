/**
 * `rum bootstrapnode`: a DHT server and circuit relay that stores no group data; peers use it
 * only as an address book. Its API answers GET /api/v1/node as quorum's bootstrap node does.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Libp2p } from '@libp2p/interface';
import type { Logger } from 'pino';
import { peersByProtocol } from '../api/routes/node.ts';
import type { Config } from '../config/schema.ts';
import { openKeystore } from '../crypto/keystore.ts';
import { createP2PHost } from '../p2p/host.ts';
import { resolveKeystorePassword } from './password.ts';

export interface RunningBootstrap {
  p2p: Libp2p;
  api: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

export async function startBootstrapNode(config: Config, log: Logger): Promise<RunningBootstrap> {
  const pw = resolveKeystorePassword(config);
  const keystore = await openKeystore(config.keystoreDir, pw.password);
  const p2p = await createP2PHost({
    nodeKey: await keystore.signKey('default'),
    listen: config.listen,
    bootstrap: config.peers,
    networkName: config.networkName,
    role: 'bootstrap',
  });
  await p2p.start();
  const api = Fastify({ logger: false });
  api.get('/api/v1/node', async () => ({
    node_id: p2p.peerId.toString(),
    node_status: 'NODE_ONLINE',
    node_type: 'bootstrap',
    addrs: p2p.getMultiaddrs().map((a) => a.toString()),
    peers: await peersByProtocol(p2p),
  }));
  await api.listen({ host: config.apiHost, port: config.apiPort });
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.apiPort;
  const url = `http://${config.apiHost.includes(':') ? `[${config.apiHost}]` : config.apiHost}:${port}`;
  log.info(
    { peerId: p2p.peerId.toString(), addrs: p2p.getMultiaddrs().map(String), url },
    'bootstrap node ready',
  );
  return {
    p2p,
    api,
    url,
    async stop() {
      await api.close();
      await p2p.stop();
    },
  };
}
