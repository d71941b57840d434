/**
 * Members: quorum's announce (a node offers its keys to a group) and the owner's approval of
 * users (/api/v1/group/user), with the lists of announced users. The read answers are exported:
 * quorum's light-client routes (./lightnode.ts) give the same ones.
 */
import type { FastifyInstance } from 'fastify';
import { AnnounceType } from '../../chain/pb.ts';
import { NotFoundError } from '../../errors.ts';
import type { RumNode } from '../../node.ts';
import type { AnnounceRow } from '../../storage/chain-store.ts';
import type { ApiComponents } from '../context.ts';
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

/** quorum's ProducerListItem list: the producers of a group, the owner first. */
export function producersJson(node: RumNode, groupId: string) {
  const g = node.group(groupId);
  const rows = new Map(node.store.listProducers(groupId).map((p) => [p.producerPubkey, p]));
  const owner = g.row.ownerPubkey;
  return [owner, ...[...rows.keys()].filter((k) => k !== owner)].map((pk) => ({
    ProducerPubkey: pk,
    OwnerPubkey: owner,
    OwnerSign: rows.get(pk)?.ownerSign ?? '',
    TimeStamp: BigInt(rows.get(pk)?.timestamp ?? g.row.joinedAt),
    BlockWithness: 0,
  }));
}

/** The producers who announced themselves (quorum's AnnouncedProducerListItem list). */
export function announcedProducersJson(node: RumNode, groupId: string) {
  node.group(groupId);
  return node.store.listAnnounces(groupId, AnnounceType.AS_PRODUCER).map((a) => ({
    AnnouncedPubkey: a.signPubkey,
    AnnouncerSign: a.announcerSign,
    Result: RESULT_NAMES[a.result] ?? 'ANNOUNCED',
    Action: 'ADD',
    Memo: a.memo,
    TimeStamp: BigInt(a.timestamp),
  }));
}

/** The users who announced themselves (quorum's AnnouncedUserListItem list). */
export function announcedUsersJson(node: RumNode, groupId: string) {
  node.group(groupId);
  return node.store.listAnnounces(groupId, AnnounceType.AS_USER).map(announcedUserJson);
}

/** One announced user; NotFoundError when that key has not announced itself. */
export function announcedUserOneJson(node: RumNode, groupId: string, signPubkey: string) {
  node.group(groupId);
  const a = node.store.getAnnounce(groupId, AnnounceType.AS_USER, signPubkey);
  if (!a) throw new NotFoundError(`${signPubkey} has not announced itself in this group`);
  return announcedUserJson(a);
}

export const signPubkeyText = { type: 'string', minLength: 44, maxLength: 44 } as const;

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
    async (req, reply) =>
      sendJson(reply, producersJson(node, (req.params as { group_id: string }).group_id)),
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
    async (req, reply) =>
      sendJson(reply, announcedProducersJson(node, (req.params as { group_id: string }).group_id)),
  );

  app.get(
    '/api/v1/group/:group_id/announced/users',
    {
      schema: { tags: ['Members'], summary: 'Users who announced themselves', params: groupParams },
    },
    async (req, reply) =>
      sendJson(reply, announcedUsersJson(node, (req.params as { group_id: string }).group_id)),
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
          properties: { group_id: uuid, sign_pubkey: signPubkeyText },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id, sign_pubkey } = req.params as { group_id: string; sign_pubkey: string };
      return sendJson(reply, announcedUserOneJson(node, group_id, sign_pubkey));
    },
  );
}
