/**
 * The operator's controls of the Nostr bridge, on the node's admin API (never on the public
 * gateway; the admin API's own token rules apply):
 *
 * - `GET /api/v1/bridges/nostr/groups/:group_id/relays`: the outside relays a group publishes
 *   to, each with when it was added, and whether the group publishes now.
 * - `PUT /api/v1/bridges/nostr/groups/:group_id/relays` with `{"relays": ["wss://…", …]}`:
 *   sets them (normalized, deduplicated; `[]` stops publishing). A relay added starts with the
 *   group's next post; one kept keeps its place. Only a public group exposed on Nostr may
 *   publish: a private group is refused (409), an unknown or unexposed one is 404.
 */
import type { FastifyInstance } from 'fastify';
import type { BridgePort, ExposedGroup } from '../port.ts';
import {
  MAX_RELAY_URL_CHARS,
  type PublishConfig,
  type PublishTarget,
  parseRelayList,
  RelayListError,
} from './publish-config.ts';

/** An error the admin API answers with its status and `{"message": …}`. */
class NostrControlError extends Error {
  override name = 'NostrControlError';
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

export interface NostrAdminComponents {
  port: BridgePort;
  config: PublishConfig;
  /** Whether a group is served on Nostr now. */
  served: (group: ExposedGroup | undefined) => ExposedGroup | null;
  /** The URL of this node's own relay (refused as an outside relay). */
  selfUrl: () => string | undefined;
  /** Most relays per group (limits.nostrPublishMaxRelays). */
  maxRelays: number;
  /** Resolves once a change of relays took effect (the publisher's streams opened or closed). */
  settled?: () => Promise<void>;
}

function exposedOnNostr(c: NostrAdminComponents, groupId: string): ExposedGroup {
  const g = c.port.exposure(groupId);
  if (!g) throw new NostrControlError(`group ${groupId} is not exposed to bridges`, 404);
  if (!g.nostr) throw new NostrControlError(`group ${groupId} is not exposed on Nostr`, 404);
  return g;
}

function answer(c: NostrAdminComponents, g: ExposedGroup, targets: PublishTarget[]) {
  const publishing = targets.length > 0 && c.served(g) !== null && g.encryption === 'public';
  return {
    group_id: g.groupId,
    relays: targets.map((t) => t.url),
    since: Object.fromEntries(targets.map((t) => [t.url, new Date(t.since).toISOString()])),
    publishing,
    ...(g.suspended ? { suspended: g.suspended } : {}),
  };
}

/** The admin API's Nostr routes (registered by the bridge's `admin` hook). */
export function registerNostrAdminRoutes(
  app: FastifyInstance,
  components: () => NostrAdminComponents,
): void {
  const tags = ['Bridges'];
  const params = {
    type: 'object',
    required: ['group_id'],
    properties: { group_id: { type: 'string', minLength: 1, maxLength: 100 } },
  } as const;
  const path = '/api/v1/bridges/nostr/groups/:group_id/relays';

  app.get(
    path,
    { schema: { tags, summary: 'The outside Nostr relays a group publishes to', params } },
    async (req) => {
      const c = components();
      const g = exposedOnNostr(c, (req.params as { group_id: string }).group_id);
      return answer(c, g, c.config.targets(g.groupId));
    },
  );

  app.put(
    path,
    {
      schema: {
        tags,
        summary: "Set the outside Nostr relays a public group's posts are published to",
        params,
        body: {
          type: 'object',
          required: ['relays'],
          properties: {
            relays: {
              type: 'array',
              maxItems: 100,
              items: { type: 'string', maxLength: MAX_RELAY_URL_CHARS * 2 },
            },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const c = components();
      const g = exposedOnNostr(c, (req.params as { group_id: string }).group_id);
      const { relays } = req.body as { relays: unknown[] };
      if (g.encryption !== 'public' && relays.length > 0) {
        throw new NostrControlError(
          `group ${g.groupId} is private: its posts are sealed to its members and are never published to outside relays`,
          409,
        );
      }
      let urls: string[];
      try {
        urls = parseRelayList(relays, c.maxRelays, c.selfUrl());
      } catch (err) {
        if (err instanceof RelayListError) throw new NostrControlError(err.message, 400);
        throw err;
      }
      const targets = c.config.set(g.groupId, urls);
      await c.settled?.();
      return answer(c, g, targets);
    },
  );
}
