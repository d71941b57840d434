/**
 * The benchmark's peer relay: `@nostr-relay/core` with its SQLite repository
 * (`@nostr-relay/event-repository-sqlite`) and `@nostr-relay/validator`, on a `ws` server on
 * loopback, in a process of its own, as its README wires them. Prints `port <n>` when it listens.
 *
 *   node bench/nostr-peer-relay.ts <sqlite file>
 */
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';

// The @nostr-relay packages are CommonJS without named exports for ESM.
const require = createRequire(import.meta.url);
const { NostrRelay } = require('@nostr-relay/core');
const { createOutgoingNoticeMessage } = require('@nostr-relay/common');
const { EventRepositorySqlite } = require('@nostr-relay/event-repository-sqlite');
const { Validator } = require('@nostr-relay/validator');

const file = process.argv[2];
if (!file) throw new Error('usage: nostr-peer-relay.ts <sqlite file>');
const repo = new EventRepositorySqlite(file);
await repo.init?.();
const relay = new NostrRelay(repo);
const validator = new Validator();
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 1 << 20 });
wss.on('listening', () => {
  const addr = wss.address();
  process.stdout.write(`port ${addr && typeof addr === 'object' ? addr.port : addr}\n`);
});
wss.on('connection', (ws) => {
  relay.handleConnection(ws);
  ws.on('message', async (data) => {
    try {
      const message = await validator.validateIncomingMessage(data);
      await relay.handleMessage(ws, message);
    } catch (e) {
      ws.send(JSON.stringify(createOutgoingNoticeMessage((e as Error).message)));
    }
  });
  ws.on('close', () => relay.handleDisconnect(ws));
});
process.on('SIGTERM', () => {
  wss.close();
  process.exit(0);
});
