/** `rum fullnode`: open the node, serve the API, stop cleanly on SIGINT/SIGTERM. */
import { authorSigned } from '../../bridges/nostr/author.ts';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApi } from '../api/server.ts';
import { TokenService } from '../api/tokens.ts';
import type { Config } from '../config/schema.ts';
import type { Keystore } from '../crypto/keystore.ts';
import { type Bridge, type Gateway, startGateway } from '../gateway/gateway.ts';
import { RumNode } from '../node.ts';
import { resolveKeystorePassword } from './password.ts';

export interface RunningNode {
  node: RumNode;
  api: FastifyInstance;
  url: string;
  gateway: Gateway;
  stop(): Promise<void>;
}

export async function startFullnode(
  config: Config,
  log: Logger,
  keystore?: Promise<Keystore>,
  bridges: Bridge[] = [],
): Promise<RunningNode> {
  // A password generated on first start was announced by the caller (src/cli/main.ts).
  const pw = resolveKeystorePassword(config);
  const node = await RumNode.open({
    config,
    logger: log,
    keystorePassword: pw.password,
    ...(keystore ? { keystore } : {}),
    // Every public post this node makes carries its author's own Nostr event (issue 10), whether
    // or not this node serves the group on Nostr: other nodes' relays serve it too.
    postExtension: authorSigned,
  });
  const tokens = await TokenService.open(node.store, node.keystore);
  await node.start();
  let gateway: Gateway;
  try {
    gateway = await startGateway(node, bridges);
  } catch (err) {
    await node.stop();
    throw err;
  }
  const api = await buildApi({ node, tokens, gateway });
  try {
    await api.listen({ host: config.apiHost, port: config.apiPort });
  } catch (err) {
    await gateway.stop();
    await node.stop();
    throw err;
  }
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.apiPort;
  const host = config.apiHost.includes(':') ? `[${config.apiHost}]` : config.apiHost;
  const url = `http://${host}:${port}`;
  let stopping: Promise<void> | null = null;
  return {
    node,
    api,
    url,
    gateway,
    stop() {
      stopping ??= (async () => {
        await api.close();
        await gateway.stop();
        await node.stop();
      })();
      return stopping;
    },
  };
}
