/**
 * Members: quorum's announce (a node offers its keys to a group) and the owner's approval of
 * users (/api/v1/group/user), with the lists of announced users.
 */
import type { FastifyInstance } from 'fastify';
import { AnnounceType } from '../../chain/pb.ts';
import { NotFoundError } from '../../errors.ts';
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
        type: 'user' | 'producer';
        memo: string;
      };
      const res = await node.announce(b.group_id, b.action, b.memo, b.type);
      return {
        group_id: b.group_id,
        sign_pubkey: res.signPubkey,
        encrypt_pubkey: res.encryptPubkey,
        type: b.type === 'producer' ? 'AS_PRODUCER' : 'AS_USER',
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

  app.post(
    '/api/v1/group/producer',
    {
      schema: {
        tags: ['Producers'],
        summary:
          'Owner: add or remove producers (they must have announced themselves as producers)',
        body: {
          type: 'object',
          required: ['group_id', 'producer_pubkey'],
          properties: {
            group_id: uuid,
            producer_pubkey: {
              type: 'array',
              items: { type: 'string', minLength: 44, maxLength: 44 },
              minItems: 1,
              maxItems: 32,
            },
            action: { type: 'string', enum: ['add', 'remove'], default: 'add' },
            memo,
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as {
        group_id: string;
        producer_pubkey: string[];
        action: 'add' | 'remove';
        memo: string;
      };
      const res = await node.updateProducers(b.group_id, b.producer_pubkey, b.action, b.memo);
      return {
        trx_id: res.trxId,
        group_id: b.group_id,
        Producers: res.producers,
        failable_producers: Math.floor((res.producers.length - 1) / 2),
        memo: b.memo,
      };
    },
  );

  app.get(
    '/api/v1/group/:group_id/producers',
    {
      schema: {
        tags: ['Producers'],
        summary: 'The producers of a group (the owner first)',
        params: groupParams,
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      const g = node.group(group_id);
      const rows = new Map(node.store.listProducers(group_id).map((p) => [p.producerPubkey, p]));
      return sendJson(
        reply,
        [g.row.ownerPubkey, ...[...rows.keys()].filter((k) => k !== g.row.ownerPubkey)].map(
          (pk) => ({
            ProducerPubkey: pk,
            OwnerPubkey: g.row.ownerPubkey,
            OwnerSign: rows.get(pk)?.ownerSign ?? '',
            TimeStamp: BigInt(rows.get(pk)?.timestamp ?? g.row.joinedAt),
            BlockWithness: 0,
          }),
        ),
      );
    },
  );

  app.get(
    '/api/v1/group/:group_id/announced/producers',
    {
      schema: {
        tags: ['Producers'],
        summary: 'Producers who announced themselves',
        params: groupParams,
      },
    },
    async (req, reply) => {
      const { group_id } = req.params as { group_id: string };
      node.group(group_id);
      return sendJson(
        reply,
        node.store.listAnnounces(group_id, AnnounceType.AS_PRODUCER).map((a) => ({
          AnnouncedPubkey: a.signPubkey,
          AnnouncerSign: a.announcerSign,
          Result: RESULT_NAMES[a.result] ?? 'ANNOUNCED',
          Action: 'ADD',
          Memo: a.memo,
          TimeStamp: BigInt(a.timestamp),
        })),
      );
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
