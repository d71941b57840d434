/**
 * Live updates, quorum's GET /api/v1/ws/trx: a WebSocket that pushes every committed trx (as
 * stored, Data encrypted, in quorum's JSON) of the groups the client asks for, with
 * `?group_id=` (repeatable; none means all joined groups) or later with a message
 * {"group_ids": [...]}. A client that does not keep up is disconnected rather than buffered
 * without bound.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CommittedEvent } from '../../chain/group.ts';
import { stringifyJson, trxJson } from '../json.ts';
import type { ApiComponents } from '../context.ts';
import { uuid } from './common.ts';

const MAX_BUFFERED_BYTES = 4 << 20;
const MAX_CONTROL_MESSAGE = 64 * 1024;

export function registerLiveRoutes(app: FastifyInstance, { node }: ApiComponents): void {
  app.get(
    '/api/v1/ws/trx',
    {
      websocket: true,
      schema: {
        tags: ['Live'],
        summary: 'WebSocket: committed trxs of the chosen groups, as they are committed',
        querystring: {
          type: 'object',
          properties: { group_id: { type: 'array', items: uuid, maxItems: 100 } },
          additionalProperties: false,
        },
      },
    },
    (socket, req) => {
      let groups = new Set((req.query as { group_id?: string[] }).group_id ?? []);
      const onCommitted = (e: CommittedEvent) => {
        if (groups.size > 0 && !groups.has(e.groupId)) return;
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
          socket.close(1013, 'client too slow');
          return;
        }
        // One write for the whole block, not one system call per trx.
        const raw = (socket as unknown as { _socket?: Socket })._socket;
        raw?.cork();
        for (const { trx } of e.trxs) socket.send(stringifyJson(trxJson(trx)));
        raw?.uncork();
      };
      node.events.on('committed', onCommitted);
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        const text = isBinary ? '' : data.toString();
        if (text.length === 0 || text.length > MAX_CONTROL_MESSAGE)
          return socket.close(1009, 'bad message');
        try {
          const msg = JSON.parse(text) as { group_ids?: unknown };
          if (!Array.isArray(msg.group_ids) || !msg.group_ids.every((g) => typeof g === 'string')) {
            throw new Error('group_ids must be a list of group ids');
          }
          groups = new Set(msg.group_ids as string[]);
          socket.send(JSON.stringify({ subscribed: [...groups] }));
        } catch (err) {
          socket.send(JSON.stringify({ message: (err as Error).message }));
        }
      });
      socket.on('close', () => node.events.off('committed', onCommitted));
    },
  );
}
