/**
 * quorum's light-client routes (/api/v1/node/{group_id}/…), for clients that keep their own keys
 * (rum-sdk-browser, quorum's nodesdk): such a client signs a POST trx and hands it to this node,
 * which checks it like any other trx, and reads the group through the same answers the full-node
 * routes give (trxs as stored, with Data still encrypted for the group). A `node`-role token
 * reaches these routes for its own group only (see nodeTokenAllows in ../server.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Trx } from '../../chain/pb.ts';
import { TRX_VERSION } from '../../chain/trx.ts';
import { fromBase64 } from '../../crypto/encoding.ts';
import { BadRequestError } from '../../errors.ts';
import type { ApiComponents } from '../context.ts';
import {
  appConfigItemJson,
  appConfigKeyParams,
  appConfigKeysJson,
  trxAuthModeJson,
  trxRulesJson,
  trxTypeParams,
} from './chain.ts';
import { groupParams, sendJson, uuid } from './common.ts';
import { contentTrxsJson, readQuery } from './content.ts';
import { groupInfo } from './groups.ts';
import {
  announcedProducersJson,
  announcedUserOneJson,
  announcedUsersJson,
  producersJson,
  signPubkeyText,
} from './users.ts';

const TAGS = ['Light node'];

/** A group_id repeated in a body or query (rum-sdk-browser sends it) must name the path's group. */
function checkSameGroup(pathGroup: string, other: string | undefined, where: string): void {
  if (other !== undefined && other !== pathGroup) {
    throw new BadRequestError(`group_id in the ${where} must be the group of the path`);
  }
}

export function registerLightNodeRoutes(app: FastifyInstance, { node }: ApiComponents): void {
  app.post(
    '/api/v1/node/:group_id/trx',
    {
      schema: {
        tags: TAGS,
        summary:
          'Submit a POST trx signed by the client (Data already encrypted with the group key)',
        params: groupParams,
        body: {
          type: 'object',
          required: ['trx_id', 'data', 'version', 'sender_pubkey', 'sender_sign', 'timestamp'],
          properties: {
            trx_id: uuid,
            group_id: uuid,
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
      checkSameGroup(group_id, b.group_id, 'body');
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
      return { trx_id: await node.submitTrx(group_id, trx) };
    },
  );

  app.get(
    '/api/v1/node/:group_id/groupctn',
    {
      schema: {
        tags: TAGS,
        summary: 'Read content: committed trxs as stored (Data encrypted), in chain order',
        params: groupParams,
        querystring: {
          ...readQuery,
          properties: { ...readQuery.properties, group_id: uuid },
        },
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      const q = req.query as Record<string, unknown>;
      checkSameGroup(group_id, q.group_id as string | undefined, 'query');
      const senders = (q.senders as string[] | undefined) ?? [];
      return sendJson(reply, contentTrxsJson(node, group_id, q, senders, false));
    },
  );

  app.get(
    '/api/v1/node/:group_id/auth/by/:trx_type',
    { schema: { tags: TAGS, summary: 'The auth mode of a trx type', params: trxTypeParams } },
    async (req) => {
      const { group_id, trx_type } = req.params as { group_id: string; trx_type: string };
      return trxAuthModeJson(node, group_id, trx_type);
    },
  );

  for (const [path, list] of [
    ['alwlist', 0],
    ['denylist', 1],
  ] as const) {
    app.get(
      `/api/v1/node/:group_id/auth/${path}`,
      {
        schema: {
          tags: TAGS,
          summary: `The ${list === 0 ? 'allow' : 'deny'} list of a group`,
          params: groupParams,
        },
      },
      async (req, reply) =>
        sendJson(reply, trxRulesJson(node, (req.params as { group_id: string }).group_id, list)),
    );
  }

  app.get(
    '/api/v1/node/:group_id/appconfig/keylist',
    {
      schema: { tags: TAGS, summary: 'Names and types of app config items', params: groupParams },
    },
    async (req) => appConfigKeysJson(node, (req.params as { group_id: string }).group_id),
  );

  app.get(
    '/api/v1/node/:group_id/appconfig/by/:key',
    { schema: { tags: TAGS, summary: 'One app config item', params: appConfigKeyParams } },
    async (req, reply) => {
      const { group_id, key } = req.params as { group_id: string; key: string };
      return sendJson(reply, appConfigItemJson(node, group_id, key));
    },
  );

  app.get(
    '/api/v1/node/:group_id/announced/producer',
    {
      schema: { tags: TAGS, summary: 'Producers who announced themselves', params: groupParams },
    },
    async (req, reply) =>
      sendJson(reply, announcedProducersJson(node, (req.params as { group_id: string }).group_id)),
  );

  app.get(
    '/api/v1/node/:group_id/announced/user',
    {
      schema: {
        tags: TAGS,
        summary: 'Users who announced themselves, or only the one with ?pubkey=',
        params: groupParams,
        querystring: {
          type: 'object',
          properties: { pubkey: { anyOf: [signPubkeyText, { type: 'string', maxLength: 0 }] } },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      const { pubkey } = req.query as { pubkey?: string };
      return sendJson(
        reply,
        pubkey
          ? [announcedUserOneJson(node, group_id, pubkey)]
          : announcedUsersJson(node, group_id),
      );
    },
  );

  app.get(
    '/api/v1/node/:group_id/producers',
    {
      schema: {
        tags: TAGS,
        summary: 'The producers of a group (the owner first)',
        params: groupParams,
      },
    },
    async (req, reply) =>
      sendJson(reply, producersJson(node, (req.params as { group_id: string }).group_id)),
  );

  app.get(
    '/api/v1/node/:group_id/info',
    {
      schema: {
        tags: TAGS,
        summary: 'The group as a light client sees it: owner, this node (provider), last update',
        params: groupParams,
      },
    },
    async (req, reply) => {
      const info = groupInfo(node.group((req.params as { group_id: string }).group_id));
      // quorum's GrpInfoNodeSDK, whose "singature" (sic) quorum never fills.
      return sendJson(reply, {
        group_id: info.group_id,
        owner: info.owner_pubkey,
        latest_update: info.last_updated,
        provider: info.user_pubkey,
        singature: '',
      });
    },
  );
}
