/**
 * The operator's view of a group's Nostr ↔ RUM key links (key-links.ts), on the node's admin API
 * (never on the gateway): `GET /api/v1/bridges/nostr/groups/:group_id/links?limit=N` answers
 * each linked pair as the one author it is, with its NIP-19 and NIP-05 identifiers:
 *
 * ```json
 * {"group_id": "…", "links": [{"rum_pubkey": "…", "nostr_pubkey": "<hex>", "npub": "npub1…",
 *   "nip05": "u_<hex of the RUM key>@host", "trx_id": "<the statement that linked them>"}]}
 * ```
 *
 * The NIP-05 name is given only while the group is served on Nostr and public (the names the
 * gateway answers). An unknown or unexposed group is 404.
 */
import type { FastifyInstance } from 'fastify';
import type { BridgePort, ExposedGroup } from '../port.ts';
import type { KeyLinks } from './key-links.ts';
import { relayUrl } from './nip05.ts';
import { npubEncode } from './nip19.ts';

/** Links listed when no limit is asked, and the most that may be. */
export const DEFAULT_LINKS = 100;
export const MAX_LINKS = 1000;

export interface KeyLinkAdminComponents {
  port: BridgePort;
  links: KeyLinks;
  /** Whether a group is served on Nostr now. */
  served: (group: ExposedGroup | undefined) => ExposedGroup | null;
}

/** Registers the links route (by the bridge's `admin` hook). */
export function registerKeyLinkRoutes(
  app: FastifyInstance,
  components: () => KeyLinkAdminComponents,
): void {
  app.get(
    '/api/v1/bridges/nostr/groups/:group_id/links',
    {
      schema: {
        tags: ['Bridges'],
        summary: "A group's linked Nostr and RUM keys, one author each",
        params: {
          type: 'object',
          required: ['group_id'],
          properties: { group_id: { type: 'string', minLength: 1, maxLength: 100 } },
        },
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: MAX_LINKS, default: DEFAULT_LINKS },
          },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      const { limit } = req.query as { limit: number };
      const c = components();
      const g = c.port.exposure(group_id);
      if (!g?.nostr) {
        return reply.code(404).send({ message: `group ${group_id} is not exposed on Nostr` });
      }
      const named = c.served(g)?.encryption === 'public';
      const host = new URL(relayUrl(c.port.origin)).host;
      return {
        group_id,
        links: c.links.linksOf(group_id, limit).map((l) => ({
          rum_pubkey: l.rum,
          nostr_pubkey: l.nostr,
          npub: npubEncode(l.nostr),
          ...(named
            ? { nip05: `u_${Buffer.from(l.rum, 'base64url').toString('hex')}@${host}` }
            : {}),
          trx_id: l.trxId,
        })),
      };
    },
  );
}
