/**
 * The ActivityPub bridge: a RUM group exposed on ActivityPub can be followed from Mastodon and
 * its kin; its posts go out under their authors and are boosted by the group, and replies and
 * likes come back into the chain. Built on Fedify, mounted on the gateway's fastify.
 */
import type { FastifyInstance } from 'fastify';
import type { Bridge } from '../../src/gateway/gateway.ts';
import type { BridgePort } from '../port.ts';
import { mountFedify } from './adapter.ts';
import { inboxRefusal } from './blocks.ts';
import { ApControls, registerApAdminRoutes } from './controls.ts';
import { ApState, SIGNATURE_WINDOW_MS } from './federation.ts';
import { fedifyJobHandler, JOB_KIND, SENT_WHEN_BLOCKED } from './mq.ts';
import { Outbound } from './outbound.ts';
import { Pages } from './pages.ts';

/** The largest activity the inboxes take. */
export const AP_BODY_LIMIT = 512 * 1024;

export function activityPubBridge(): Bridge & { state(): ApState; controls(): ApControls } {
  let state: ApState | null = null;
  let controls: ApControls | null = null;
  const getControls = (): ApControls => {
    controls ??= new ApControls(need());
    return controls;
  };
  let outbound: Outbound | null = null;
  let unwatch: (() => void) | null = null;
  const need = (): ApState => {
    if (!state) throw new Error('the ActivityPub bridge is not registered');
    return state;
  };
  return {
    name: 'activitypub',
    state: need,
    controls: getControls,
    admin(app: FastifyInstance) {
      registerApAdminRoutes(app, getControls);
    },
    async register(app: FastifyInstance, port: BridgePort) {
      const s = new ApState(port);
      state = s;
      // Registered before the gateway starts the queue; the federation is made on first use,
      // once the public origin is known.
      port.queue.handle(
        JOB_KIND,
        fedifyJobHandler({
          privateJwk: (keyId) => s.privateJwk(keyId),
          checkUrl: (url) => port.checkUrl(url),
          blocked: (inbox, type, actorIds) => {
            if (type && SENT_WHEN_BLOCKED.has(type)) return false;
            if (s.blocks.blocksInbox(inbox)) return true;
            return actorIds.length > 0 && actorIds.every((a) => s.blocks.blocks(a));
          },
          process: (message) => s.federation.processQueuedTask(undefined, message as never),
        }),
      );
      // Pages for people (/@handle, /p/trx), and the delivery outcomes a post's page shows.
      const pages = new Pages(s);
      pages.mount(app);
      unwatch = pages.deliveries.watch(port.queue);
      await mountFedify(app, {
        fetch: (request, handlers) =>
          s.federation.fetch(request, { contextData: undefined, ...handlers }),
        origin: () => port.origin,
        kv: s.kv,
        signatureWindowMs: SIGNATURE_WINDOW_MS,
        bodyLimit: AP_BODY_LIMIT,
        browserPage: (request) => pages.notAcceptable(request),
        refusePost: (headers, body) => inboxRefusal(s.blocks, headers, body),
      });
    },
    start() {
      outbound = new Outbound(need());
      outbound.start();
    },
    async stop() {
      await outbound?.stop();
      outbound = null;
      unwatch?.();
      unwatch = null;
    },
  };
}
