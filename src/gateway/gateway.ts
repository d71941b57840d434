/**
 * The gateway composed: the public listener, the exposures, the delivery queue with its watch,
 * and the bridge port every bridge is given. `rum fullnode` starts it after the node and stops
 * it before the node.
 */
import type { FastifyInstance } from 'fastify';
import type { BridgePort, ExposedGroup } from '../../bridges/port.ts';
import type { RumNode } from '../node.ts';
import { createDeliveryQueue } from '../queue/create.ts';
import { httpDeliveryHandler } from '../queue/http-delivery.ts';
import type { DeliveryQueue } from '../queue/types.ts';
import { BridgeStore } from '../storage/bridge-store.ts';
import { AddressGuard, guardedLookup } from './address-guard.ts';
import { DeliveryWatch } from './delivery-watch.ts';
import { Exposures } from './exposure.ts';
import { NodeBridgePort } from './port.ts';
import { boundUrl, buildGateway } from './server.ts';

/** A bridge: given the port, it registers its routes on the gateway and starts its work. */
export interface Bridge {
  readonly name: string;
  register(app: FastifyInstance, port: BridgePort): Promise<void> | void;
  /** Called once the gateway listens (start consuming streams here). */
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
  /** Registers the bridge's operator routes on the node's admin API (never on the gateway). */
  admin?(app: FastifyInstance): Promise<void> | void;
  /**
   * How the bridge's network addresses an exposed group (the admin API shows it under
   * `identifiers.<bridge name>`), or null when the bridge does not serve it.
   */
  identifiers?(exposure: ExposedGroup): Record<string, string> | null;
}

export interface Gateway {
  app: FastifyInstance;
  /** The URL the listener is bound to. */
  url: string;
  /** The public base URL bridges use in ids and links (`--origin`, or the bound URL). */
  origin: string;
  exposures: Exposures;
  queue: DeliveryQueue;
  watch: DeliveryWatch;
  port: BridgePort;
  guard: AddressGuard;
  /** The bridges the gateway runs (the admin API asks each for its operator routes). */
  bridges: readonly Bridge[];
  stop(): Promise<void>;
}

export async function startGateway(node: RumNode, bridges: Bridge[] = []): Promise<Gateway> {
  const config = node.config;
  const log = node.log.child({ component: 'gateway' });
  const store = new BridgeStore(node.store.db);
  const exposures = new Exposures(node, store);
  const guard = new AddressGuard({ allowPrivate: config.allowPrivateAddress });
  const queue = await createDeliveryQueue(config, node.store.db, log);
  // With BullMQ and --rundeliveries false, plain http deliveries are left to `rum worker`
  // processes; the bridges' own kinds (ActivityPub needs the node's keys) still run here.
  const runsHttp = queue.backend === 'embedded' || config.runDeliveries;
  if (runsHttp)
    queue.handle(
      'http',
      httpDeliveryHandler({
        timeoutMs: config.limits.deliveryTimeoutMs,
        guard: (url: string) => guard.check(url),
        // The address is judged again when connecting: a name cannot rebind to a private one.
        lookup: guardedLookup(guard),
      }),
    );
  const watch = new DeliveryWatch(queue, node.metrics.registry, log);
  const origin = { value: config.origin?.replace(/\/+$/, '') ?? '' };
  // When --origin is not set, the origin is the bound URL, known once the listener is bound
  // (port 0 picks one); bridges read port.origin when they serve, never at registration.
  const port = new NodeBridgePort({
    node,
    store,
    exposures,
    queue,
    guard,
    origin: () => origin.value,
    allowPrivateAddress: config.allowPrivateAddress,
  });
  const app = await buildGateway({
    config,
    log,
    healthy: () => node.store.db.$client.open,
  });
  let url: string;
  try {
    for (const b of bridges) await b.register(app, port);
    await app.listen({ host: config.gatewayHost, port: config.gatewayPort });
    url = boundUrl(app, config.gatewayHost, config.gatewayPort);
    origin.value ||= url;
    await queue.start();
    for (const b of bridges) await b.start?.();
  } catch (err) {
    await app.close();
    watch.close();
    await queue.close();
    exposures.close();
    throw err;
  }
  log.info({ url, origin: origin.value, queue: queue.backend }, 'gateway listening');
  let stopping: Promise<void> | null = null;
  return {
    app,
    url,
    origin: origin.value,
    exposures,
    queue,
    watch,
    port,
    guard,
    bridges,
    stop() {
      stopping ??= (async () => {
        for (const b of [...bridges].reverse()) await b.stop?.();
        await app.close();
        watch.close();
        await queue.close();
        exposures.close();
      })();
      return stopping;
    },
  };
}
