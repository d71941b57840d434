/**
 * Posting and reading content: quorum's current forms (POST /api/v1/group/{id}/content with
 * {"data": …}, GET /app/api/v1/group/{id}/content) and the older ones its README teaches
 * (POST /api/v1/group/content with an Activity, POST /app/api/v1/group/{id}/content). The paged
 * read is exported for the light-client route GET /api/v1/node/{id}/groupctn (./lightnode.ts).
 */
import type { FastifyInstance } from 'fastify';
import { parseJsonPayload } from '../../chain/apply.ts';
import type { JsonObject } from '../../chain/content.ts';
import type { RumNode } from '../../node.ts';
import type { ContentRow } from '../../storage/chain-store.ts';
import { trxJson } from '../json.ts';
import type { ApiComponents } from '../context.ts';
import { groupParams, sendJson, uuid } from './common.ts';

const pubkeyText = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** The Activity quorum's older API took; becomes the JSON payload stored in the trx. */
export function legacyActivityToPayload(activity: JsonObject): JsonObject {
  const type = activity.type as string;
  const object = activity.object as JsonObject;
  if (type === 'Add') return object;
  const ref: JsonObject = {
    type: typeof object.type === 'string' ? object.type : 'Note',
    id: object.id as string,
  };
  return { type, object: ref };
}

function contentRows(
  node: RumNode,
  groupId: string,
  q: Record<string, unknown>,
  senders: string[],
): ContentRow[] {
  node.group(groupId);
  const max = node.config.limits.maxContentPageSize;
  const num = typeof q.num === 'number' && q.num > 0 ? Math.min(q.num, max) : 20;
  const start = (q.start_trx ?? q.starttrx) as string | undefined;
  return node.store.queryContent({
    groupId,
    num,
    startTrx: start === '' ? undefined : start,
    includeStartTrx: Boolean(q.include_start_trx ?? q.includestarttrx ?? false),
    reverse: Boolean(q.reverse ?? false),
    senders,
  });
}

/** The paging query of a content read: num, start_trx, include_start_trx, reverse, senders. */
export const readQuery = {
  type: 'object',
  properties: {
    num: { type: 'integer', minimum: 0, maximum: 100000 },
    start_trx: { anyOf: [uuid, { type: 'string', maxLength: 0 }] },
    starttrx: { anyOf: [uuid, { type: 'string', maxLength: 0 }] },
    reverse: { type: 'boolean' },
    include_start_trx: { type: 'boolean' },
    includestarttrx: { type: 'boolean' },
    senders: { type: 'array', items: pubkeyText, maxItems: 100 },
    nonce: { type: 'string', maxLength: 64 },
  },
  additionalProperties: false,
} as const;

/**
 * A page of a group's content as trxs in chain order: with Data decrypted (base64; null when
 * this node cannot read it), or as stored (encrypted) when `decrypted` is false.
 */
export function contentTrxsJson(
  node: RumNode,
  groupId: string,
  q: Record<string, unknown>,
  senders: string[],
  decrypted: boolean,
): Record<string, unknown>[] {
  const out = [];
  for (const row of contentRows(node, groupId, q, senders)) {
    const t = node.store.getTrx(groupId, row.trxId);
    if (!t) continue;
    if (!decrypted) out.push(trxJson(t.trx));
    else out.push(trxJson(t.trx, row.data ? new Uint8Array(row.data) : null));
  }
  return out;
}

export function registerContentRoutes(app: FastifyInstance, { node }: ApiComponents): void {
  app.post(
    '/api/v1/group/:group_id/content',
    {
      schema: {
        tags: ['Content'],
        summary: 'Post an ActivityStreams object to a group',
        params: groupParams,
        body: {
          type: 'object',
          required: ['data'],
          properties: { data: { type: 'object' } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { group_id } = req.params as { group_id: string };
      return { trx_id: await node.postContent(group_id, (req.body as { data: unknown }).data) };
    },
  );

  app.post(
    '/api/v1/group/content',
    {
      schema: {
        tags: ['Content'],
        summary:
          "Post with quorum's older Activity form (type Add/Like/Dislike/Delete, target.id = group)",
        body: {
          type: 'object',
          required: ['type', 'object', 'target'],
          properties: {
            type: { type: 'string', enum: ['Add', 'Like', 'Dislike', 'Delete'] },
            object: { type: 'object' },
            target: {
              type: 'object',
              required: ['id'],
              properties: { id: uuid, type: { type: 'string', enum: ['Group'] } },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const body = req.body as JsonObject & { target: { id: string } };
      return { trx_id: await node.postContent(body.target.id, legacyActivityToPayload(body)) };
    },
  );

  app.get(
    '/app/api/v1/group/:group_id/content',
    {
      schema: {
        tags: ['Content'],
        summary: 'Read content: trxs with decrypted Data, in chain order',
        params: groupParams,
        querystring: readQuery,
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      const q = req.query as Record<string, unknown>;
      const senders = (q.senders as string[] | undefined) ?? [];
      return sendJson(reply, contentTrxsJson(node, group_id, q, senders, true));
    },
  );

  app.post(
    '/app/api/v1/group/:group_id/content',
    {
      schema: {
        tags: ['Content'],
        summary:
          "Read content in quorum's older form: [{TrxId, Publisher, Content, TypeUrl, TimeStamp}]",
        params: groupParams,
        querystring: readQuery,
        body: {
          type: 'object',
          properties: { senders: { type: 'array', items: pubkeyText, maxItems: 100 } },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      const body = (req.body ?? {}) as { senders?: string[] };
      const rows = contentRows(
        node,
        group_id,
        req.query as Record<string, unknown>,
        body.senders ?? [],
      );
      return sendJson(
        reply,
        rows.map((row) => {
          const payload = row.data ? parseJsonPayload(new Uint8Array(row.data)) : null;
          return {
            TrxId: row.trxId,
            Publisher: row.senderPubkey,
            Content: payload ?? null,
            TypeUrl: 'quorum.pb.Object',
            TimeStamp: BigInt(row.timestamp),
          };
        }),
      );
    },
  );
}
