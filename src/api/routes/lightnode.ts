/**
 * quorum's light-client entry point (POST /api/v1/node/{group_id}/trx): a client that keeps its
 * own key signs a POST trx and hands it to this node, which checks it like any other trx.
 */
import type { FastifyInstance } from 'fastify';
import type { Trx } from '../../chain/pb.ts';
import { TRX_VERSION } from '../../chain/trx.ts';
import { fromBase64 } from '../../crypto/encoding.ts';
import { BadRequestError } from '../../errors.ts';
import type { ApiComponents } from '../server.ts';
import { groupParams, uuid } from './common.ts';

export function registerLightNodeRoutes(app: FastifyInstance, { node }: ApiComponents): void {
  app.post(
    '/api/v1/node/:group_id/trx',
    {
      schema: {
        tags: ['Light node'],
        summary:
          'Submit a POST trx signed by the client (Data already encrypted with the group key)',
        params: groupParams,
        body: {
          type: 'object',
          required: ['trx_id', 'data', 'version', 'sender_pubkey', 'sender_sign', 'timestamp'],
          properties: {
            trx_id: uuid,
            data: { type: 'string', maxLength: 600_000 },
            version: { type: 'string', maxLength: 16 },
            sender_pubkey: { type: 'string', minLength: 44, maxLength: 44 },
            sender_sign: { type: 'string', maxLength: 100 },
            timestamp: { type: 'string', pattern: '^[0-9]{1,19}$' },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { group_id } = req.params as { group_id: string };
      const b = req.body as Record<string, string>;
      let data: Uint8Array;
      let sign: Uint8Array;
      try {
        data = fromBase64(b.data!);
        sign = fromBase64(b.sender_sign!);
      } catch {
        throw new BadRequestError('data and sender_sign must be base64');
      }
      if (b.version !== TRX_VERSION) throw new BadRequestError(`version must be ${TRX_VERSION}`);
      const trx: Trx = {
        TrxId: b.trx_id!,
        Type: 0,
        GroupId: group_id,
        Data: data,
        TimeStamp: BigInt(b.timestamp!),
        Version: b.version,
        Expired: 0n,
        ResendCount: 0n,
        SenderPubkey: b.sender_pubkey!,
        SenderSign: sign,
        StorageType: 0,
      };
      return { trx_id: node.submitTrx(group_id, trx) };
    },
  );
}
