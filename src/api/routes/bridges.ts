/**
 * The operator's control of bridges (admin API only, never on the gateway): which groups each
 * bridge exposes, under which handle, and the delivery queue's jobs.
 */
import type { FastifyInstance } from 'fastify';
import type { ExposedGroup } from '../../../bridges/port.ts';
import { RumError } from '../../errors.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import type { JobInfo } from '../../queue/types.ts';
import type { ApiComponents } from '../context.ts';
import { groupParams } from './common.ts';

class GatewayDownError extends RumError {
  override name = 'GatewayDownError';
  override readonly status = 503;
}

/** What each bridge that serves the group calls it on its network (NIP-19 ids for Nostr). */
function identifiersJson(g: Gateway, e: ExposedGroup): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const b of g.bridges) {
    const ids = b.identifiers?.(e);
    if (ids) out[b.name] = ids;
  }
  return out;
}

function exposureJson(e: ExposedGroup, g?: Gateway) {
  return {
    group_id: e.groupId,
    group_name: e.name,
    handle: e.handle,
    activitypub: e.activitypub,
    nostr: e.nostr,
    bots: e.bots,
    encryption: e.encryption,
    suspended: e.suspended,
    ...(g ? { identifiers: identifiersJson(g, e) } : {}),
  };
}

function jobJson(j: JobInfo) {
  return {
    id: j.id,
    key: j.key,
    kind: j.kind,
    destination: j.destination,
    status: j.status,
    attempts: j.attempts,
    at: new Date(j.at).toISOString(),
    last_error: j.lastError,
    created_at: new Date(j.createdAt).toISOString(),
  };
}

const exposureBody = {
  type: 'object',
  required: ['handle'],
  properties: {
    handle: { type: 'string', maxLength: 100, description: '[a-z0-9_]{1,30}, unique on the node' },
    activitypub: { type: 'boolean', default: true },
    nostr: { type: 'boolean', default: true },
    bots: { type: 'boolean', default: true },
  },
  additionalProperties: false,
} as const;

export function registerBridgeRoutes(app: FastifyInstance, c: ApiComponents): void {
  const gateway = (): Gateway => {
    if (!c.gateway) throw new GatewayDownError('the gateway is not running on this node');
    return c.gateway;
  };

  app.put(
    '/api/v1/group/:group_id/bridges',
    {
      schema: {
        tags: ['Bridges'],
        summary: 'Expose a group to bridges (or change how)',
        params: groupParams,
        body: exposureBody,
      },
    },
    async (req) => {
      const { group_id } = req.params as { group_id: string };
      const b = req.body as { handle: string; activitypub: boolean; nostr: boolean; bots: boolean };
      const g = gateway();
      return exposureJson(g.exposures.put(group_id, b), g);
    },
  );

  app.get(
    '/api/v1/group/:group_id/bridges',
    { schema: { tags: ['Bridges'], summary: "A group's exposure", params: groupParams } },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      c.node.group(group_id);
      const g = gateway();
      const e = g.exposures.get(group_id);
      if (!e)
        return reply.code(404).send({ message: `group ${group_id} is not exposed to bridges` });
      return exposureJson(e, g);
    },
  );

  app.delete(
    '/api/v1/group/:group_id/bridges',
    { schema: { tags: ['Bridges'], summary: 'Stop all bridging of a group', params: groupParams } },
    async (req) => {
      const { group_id } = req.params as { group_id: string };
      gateway().exposures.remove(group_id);
      return { group_id, removed: true };
    },
  );

  app.get(
    '/api/v1/bridges',
    { schema: { tags: ['Bridges'], summary: 'Every exposed group' } },
    async () => {
      const g = gateway();
      return { bridges: g.exposures.list().map((e) => exposureJson(e, g)) };
    },
  );

  app.get(
    '/api/v1/bridges/deliveries',
    {
      schema: {
        tags: ['Bridges'],
        summary: "The delivery queue's jobs by status (failed is the dead-letter list)",
        querystring: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: ['failed', 'pending', 'done'], default: 'failed' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const q = req.query as { status: 'failed' | 'pending' | 'done'; limit: number };
      const g = gateway();
      const [jobs, counts] = await Promise.all([g.queue.list(q.status, q.limit), g.queue.counts()]);
      return {
        backend: g.queue.backend,
        counts,
        failing_destinations: g.watch.failingDestinations().map((f) => ({
          destination: f.destination,
          since: new Date(f.since).toISOString(),
          failed_attempts: f.attempts,
        })),
        deliveries: jobs.map(jobJson),
      };
    },
  );

  app.post(
    '/api/v1/bridges/deliveries/redeliver',
    {
      schema: {
        tags: ['Bridges'],
        summary: 'Run failed (or done) deliveries again, by id',
        body: {
          type: 'object',
          required: ['ids'],
          properties: {
            ids: {
              type: 'array',
              minItems: 1,
              maxItems: 10_000,
              items: { type: 'string', minLength: 1, maxLength: 200 },
            },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { ids } = req.body as { ids: string[] };
      return { redelivered: await gateway().queue.redeliver(ids) };
    },
  );
}
