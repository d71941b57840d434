/** Schema pieces and helpers shared by the route modules. */
import type { FastifyReply } from 'fastify';
import { stringifyJson } from '../json.ts';

export const uuid = {
  type: 'string',
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
} as const;
export const groupParams = {
  type: 'object',
  required: ['group_id'],
  properties: { group_id: uuid },
  additionalProperties: false,
} as const;
/** The same object, as a request body ({"group_id": …}). */
export const groupIdBody = groupParams;
export const memo = { type: 'string', maxLength: 1024, default: '' } as const;

/** Sends JSON that may hold bigint values (written as exact integers, as Go does). */
export function sendJson(reply: FastifyReply, value: unknown): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(stringifyJson(value));
}
