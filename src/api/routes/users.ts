/**
 * Members: quorum's announce (a node offers its keys to a group) and the owner's approval of
 * users (/api/v1/group/user), with the lists of announced users.
 */
import type { FastifyInstance } from 'fastify';
import { AnnounceType } from '../../chain/pb.ts';
import { BadRequestError, NotFoundError } from '../../errors.ts';
import type { AnnounceRow } from '../../storage/chain-store.ts';
import type { ApiComponents } from '../server.ts';
import { groupParams, memo, sendJson, uuid } from './common.ts';

const RESULT_NAMES = ['ANNOUNCED', 'APPROVED', 'REJECTED'];

function announcedUserJson(a: AnnounceRow) {
  return {
    AnnouncedSignPubkey: a.signPubkey,
    AnnouncedEncryptPubkey: a.encryptPubkey,
    AnnouncerSign: a.announcerSign,
    Result: RESULT_NAMES[a.result] ?? 'ANNOUNCED',
    Memo: a.memo,
    TimeStamp: BigInt(a.timestamp),
  };
}

export function registerUserRoutes(app: FastifyInstance, { node }: ApiComponents): void {
  app.post(
    '/api/v1/group/announce',
    {
      schema: {
        tags: ['Members'],
        summary: "Announce this node's signing and encryption keys to a group",
        body: {
          type: 'object',
          required: ['group_id', 'action', 'type'],
          properties: {
            group_id: uuid,
            action: { type: 'string', enum: ['add', 'remove'] },
            type: { type: 'string', enum: ['user', 'producer'] },
            memo,
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as {
        group_id: string;
        action: 'add' | 'remove';
        type: string;
        memo: string;
      };
      if (b.type !== 'user') throw new BadRequestError('a full node announces itself as a user');
      const res = await node.announce(b.group_id, b.action, b.memo);
      return {
        group_id: b.group_id,
        sign_pubkey: res.signPubkey,
        encrypt_pubkey: res.encryptPubkey,
        type: 'AS_USER',
        action: b.action === 'add' ? 'ADD' : 'REMOVE',
        sign: res.sign,
        trx_id: res.trxId,
      };
    },
  );

  app.post(
    '/api/v1/group/user',
    {
      schema: {
        tags: ['Members'],
        summary: 'Owner: approve or remove an announced user (in a private group, a reader)',
        body: {
          type: 'object',
          required: ['group_id', 'user_pubkey', 'action'],
          properties: {
            group_id: uuid,
            user_pubkey: { type: 'string', minLength: 44, maxLength: 44 },
            action: { type: 'string', enum: ['add', 'remove'] },
            memo,
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as {
        group_id: string;
        user_pubkey: string;
        action: 'add' | 'remove';
        memo: string;
      };
      const res = await node.approveUser(b.group_id, b.user_pubkey, b.action, b.memo);
      return {
        group_id: b.group_id,
        user_pubkey: b.user_pubkey,
        encrypt_pubkey: res.encryptPubkey,
        owner_pubkey: node.group(b.group_id).row.ownerPubkey,
        sign: res.sign,
        trx_id: res.trxId,
        memo: b.memo,
        action: b.action === 'add' ? 'ADD' : 'REMOVE',
      };
    },
  );

  app.get(
    '/api/v1/group/:group_id/announced/users',
    {
      schema: { tags: ['Members'], summary: 'Users who announced themselves', params: groupParams },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      node.group(group_id);
      return sendJson(
        reply,
        node.store.listAnnounces(group_id, AnnounceType.AS_USER).map(announcedUserJson),
      );
    },
  );

  app.get(
    '/api/v1/group/:group_id/announced/user/:sign_pubkey',
    {
      schema: {
        tags: ['Members'],
        summary: 'One announced user',
        params: {
          type: 'object',
          required: ['group_id', 'sign_pubkey'],
          properties: {
            group_id: uuid,
            sign_pubkey: { type: 'string', minLength: 44, maxLength: 44 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id, sign_pubkey } = req.params as { group_id: string; sign_pubkey: string };
      node.group(group_id);
      const a = node.store.getAnnounce(group_id, AnnounceType.AS_USER, sign_pubkey);
      if (!a) throw new NotFoundError(`${sign_pubkey} has not announced itself in this group`);
      return sendJson(reply, announcedUserJson(a));
    },
  );
}
