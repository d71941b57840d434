/**
 * The Nostr bridge: a NIP-01 relay on the gateway's root (ws://host:port/), its events kept in
 * the node's SQLite. The relay core knows nothing of RUM; what it takes and who reads what is
 * a RelayPolicy's to say — the default one keeps profiles and follow lists, the groups layer
 * brings NIP-29 groups on RUM groups. With the groups layer, a public group's posts are also
 * published to the outside relays its operator lists (publisher.ts, relay-client.ts, admin.ts).
 */
import type { FastifyInstance } from 'fastify';
import { type Config, ConfigSchema } from '../../src/config/schema.ts';
import type { Bridge } from '../../src/gateway/gateway.ts';
import type { Db } from '../../src/storage/db.ts';
import { NODE_VERSION } from '../../src/version.ts';
import type { BridgePort } from '../port.ts';
import { defaultPolicy } from './default-policy.ts';
import { registerNostrAdminRoutes } from './admin.ts';
import { registerKeyLinkRoutes } from './key-links-admin.ts';
import { loadEventCrypto } from './event.ts';
import { groupsPolicy, NostrGroups } from './groups.ts';
import { loadRelayKey } from './keys.ts';
import { mountNip05, nostrIdentifiers } from './nip05.ts';
import { PublishConfig } from './publish-config.ts';
import { Publisher } from './publisher.ts';
import { Relay, type RelayLimits, wsUrlOf } from './relay.ts';
import { PUBLISH_KIND, RelayClient } from './relay-client.ts';
import { NostrStore } from './store.ts';
import type { RelayHandle, RelayPolicy } from './types.ts';

export interface NostrBridgeOptions {
  /**
   * Makes the relay's policy, given the relay and the port; default: the NIP-29 groups layer
   * (groups.ts). A policy with start()/stop() is started and stopped with the bridge.
   */
  policy?: (handle: RelayHandle, port: BridgePort) => RelayPolicy;
  /** The node's config: the relay's limits (`limits.nostr*`); default: the schema's defaults. */
  config?: Config;
  /** The node's database (`node.store.db`); by default the port's (BridgePort.database). */
  db?: Db;
}

export function relayLimits(config: Pick<Config, 'limits'>): RelayLimits {
  const l = config.limits;
  return {
    maxMessageBytes: l.nostrMaxMessageBytes,
    maxContentChars: l.nostrMaxContentChars,
    maxEventTags: l.nostrMaxEventTags,
    maxSubscriptions: l.nostrMaxSubscriptions,
    maxFilters: l.nostrMaxFilters,
    maxFilterValues: l.nostrMaxFilterValues,
    maxLimit: l.nostrMaxLimit,
    eventsPerSecond: l.nostrEventsPerSecond,
    maxConnections: l.nostrMaxConnections,
    maxFutureSeconds: l.nostrMaxFutureSeconds,
  };
}

/** What a policy with work of its own (streams, timers) offers. */
interface Lifecycle {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

export function nostrBridge(
  options: NostrBridgeOptions = {},
): Bridge & { relay(): Relay; publisher(): Publisher | null } {
  let relay: Relay | null = null;
  let policy: (RelayPolicy & Partial<Lifecycle>) | null = null;
  let bridgePort: BridgePort | null = null;
  let publishConfig: PublishConfig | null = null;
  let publisher: Publisher | null = null;
  let client: RelayClient | null = null;
  const config = options.config ?? ConfigSchema.parse({});
  const need = (): Relay => {
    if (!relay) throw new Error('the Nostr bridge is not registered');
    return relay;
  };
  return {
    name: 'nostr',
    relay: need,
    publisher: () => publisher,
    async register(app: FastifyInstance, port: BridgePort) {
      const db = options.db ?? port.database();
      const crypto = await loadEventCrypto();
      const key = await loadRelayKey(port.secrets('nostr'), crypto);
      const store = new NostrStore({ db });
      const r = new Relay(
        {
          store,
          crypto,
          key,
          limits: relayLimits(config),
          origin: () => port.origin,
          log: port.log.child({ component: 'nostr' }),
        },
        defaultPolicy(),
        { version: NODE_VERSION },
      );
      relay = r;
      bridgePort = port;
      policy = (options.policy ?? groupsPolicy)(r, port);
      r.setPolicy(policy);
      // Publishing to outside relays sends what the groups layer serves: only with it.
      if (policy instanceof NostrGroups) {
        const groups = policy;
        publishConfig = new PublishConfig(port.kv('nostr'));
        publisher = new Publisher({
          port,
          links: groups.links,
          config: publishConfig,
          lookup: (id) => store.query({ ids: [id] }, 1)[0],
          served: (g) => groups.served(g),
        });
        client = new RelayClient(
          {
            checkUrl: (url) => port.checkUrl(url),
            allowPrivateAddress: port.allowPrivateAddress,
            sign: (template) => key.sign(template),
            log: port.log.child({ component: 'nostr-publish' }),
          },
          {
            timeoutMs: config.limits.deliveryTimeoutMs,
            maxAnswerBytes: config.limits.nostrPublishMaxAnswerBytes,
            idleMs: config.limits.nostrPublishIdleMs,
            userAgent: `rum-node/${NODE_VERSION}`,
          },
        );
        // Registered before the gateway starts the queue.
        port.queue.handle(PUBLISH_KIND, client.handler());
      }
      await r.mount(app);
      mountNip05(app, port, () => r.selfPubkey);
    },
    admin(app: FastifyInstance) {
      registerNostrAdminRoutes(app, () => {
        if (!bridgePort || !publishConfig || !(policy instanceof NostrGroups)) {
          throw Object.assign(new Error('publishing to outside relays needs the groups layer'), {
            statusCode: 404,
          });
        }
        const port = bridgePort;
        const groups = policy;
        return {
          port,
          config: publishConfig,
          served: (g) => groups.served(g),
          selfUrl: () => (port.origin ? wsUrlOf(port.origin) : undefined),
          maxRelays: config.limits.nostrPublishMaxRelays,
          settled: () => publisher?.settled() ?? Promise.resolve(),
        };
      });
      registerKeyLinkRoutes(app, () => {
        if (!bridgePort || !(policy instanceof NostrGroups)) {
          throw Object.assign(new Error('key links need the groups layer'), { statusCode: 404 });
        }
        const groups = policy;
        return { port: bridgePort, links: groups.keyLinks, served: (g) => groups.served(g) };
      });
    },
    identifiers(exposure) {
      if (!relay || !bridgePort) return null;
      return nostrIdentifiers(bridgePort, relay.selfPubkey, exposure);
    },
    async start() {
      need().start();
      await policy?.start?.();
      publisher?.start();
    },
    async stop() {
      await publisher?.stop();
      client?.close();
      await policy?.stop?.();
      relay?.stop();
    },
  };
}
