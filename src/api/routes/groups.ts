/** Groups: create, join by seed, list, seed, leave, clear (quorum's paths and fields). */
import type { FastifyInstance } from 'fastify';
import type { GroupChain } from '../../chain/group.ts';
import { toHex } from '../../crypto/encoding.ts';
import { ethAddress, fromPubkeyOrNull } from '../../crypto/pubkey-format.ts';
import type { ApiComponents } from '../context.ts';
import { groupIdBody, groupParams, sendJson } from './common.ts';

/** quorum's GroupInfo plus the fields its README shows (highest_height, highest_block_id, group_status). */
export function groupInfo(
  g: GroupChain,
  peers: string[] = [],
  bestKnown = 0,
): Record<string, unknown> {
  const row = g.row;
  const userKey = fromPubkeyOrNull(row.userPubkey);
  return {
    group_id: row.groupId,
    group_name: row.groupName,
    owner_pubkey: row.ownerPubkey,
    user_pubkey: row.userPubkey,
    user_eth_addr: userKey ? ethAddress(userKey) : '',
    consensus_type: row.consensusType === 1 ? 'POS' : 'POA',
    encryption_type: row.encryptionType === 1 ? 'PRIVATE' : 'PUBLIC',
    cipher_key: row.cipherKey,
    app_key: row.appKey,
    currt_epoch: g.head.epoch,
    currt_top_block: g.head.blockId,
    last_updated: g.head.timestamp,
    highest_height: g.head.blockId,
    highest_block_id: toHex(g.head.hash),
    group_status: g.status,
    rex_syncer_status: g.status,
    rex_Syncer_result: null,
    mempool_size: g.mempoolSize,
    // Sync progress: the height reached of the best height known from peers.
    sync_progress: {
      height: g.head.blockId,
      best_known_height: Math.max(bestKnown, g.head.blockId),
    },
    peers,
  };
}

export function registerGroupRoutes(app: FastifyInstance, { node, tokens }: ApiComponents): void {
  const infoOf = (groupId: string) => {
    const g = node.group(groupId);
    return groupInfo(g, node.net.groupPeers(groupId), node.net.bestKnownHeight(groupId));
  };
  const chainUrls = (groupId: string): string[] => {
    const exp = Math.floor(Date.now() / 1000) + 5 * 365 * 24 * 3600;
    const jwt = tokens.create({ name: `allow-${groupId}`, role: 'node', allowGroup: groupId, exp });
    // The port the API listens on (with --apiport 0 the configured one is 0).
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : node.config.apiPort;
    return [`http://${node.config.apiHost}:${port}?jwt=${jwt}`];
  };

  app.post(
    '/api/v1/group',
    {
      schema: {
        tags: ['Groups'],
        summary: 'Create a group; the caller becomes its owner',
        body: {
          type: 'object',
          required: ['group_name', 'consensus_type', 'encryption_type', 'app_key'],
          properties: {
            group_name: { type: 'string', minLength: 2, maxLength: 100 },
            consensus_type: { type: 'string', enum: ['poa', 'pos'] },
            encryption_type: { type: 'string', enum: ['public', 'private'] },
            app_key: { type: 'string', minLength: 4, maxLength: 20, pattern: '^[A-Za-z0-9_.-]+$' },
            include_chain_url: { type: 'boolean', default: false },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as {
        group_name: string;
        consensus_type: 'poa' | 'pos';
        encryption_type: 'public' | 'private';
        app_key: string;
        include_chain_url: boolean;
      };
      const { groupId } = await node.createGroup({
        groupName: b.group_name,
        consensusType: b.consensus_type,
        encryptionType: b.encryption_type,
        appKey: b.app_key,
      });
      const seed = node.seedUrl(groupId, b.include_chain_url ? chainUrls(groupId) : []);
      return { seed, group_id: groupId };
    },
  );

  app.post(
    '/api/v2/group/join',
    {
      schema: {
        tags: ['Groups'],
        summary: 'Join a group by its seed URL',
        body: {
          type: 'object',
          required: ['seed'],
          properties: { seed: { type: 'string', minLength: 11, maxLength: 8192 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const g = await node.joinGroup((req.body as { seed: string }).seed);
      const seed = node.seedOf(g.groupId);
      return {
        group_id: g.groupId,
        group_name: g.row.groupName,
        owner_pubkey: g.row.ownerPubkey,
        user_pubkey: g.userPubkey,
        user_encryptpubkey: g.row.userEncryptPubkey,
        consensus_type: seed.consensusType,
        encryption_type: seed.encryptionType,
        cipher_key: g.row.cipherKey,
        app_key: g.row.appKey,
        signature: toHex(seed.genesisBlock.ProducerSign),
      };
    },
  );

  app.post(
    '/api/v1/group/leave',
    {
      schema: {
        tags: ['Groups'],
        summary: 'Leave a group (its blocks stay stored)',
        body: groupIdBody,
      },
    },
    async (req) => {
      const { group_id } = req.body as { group_id: string };
      node.leaveGroup(group_id);
      return { group_id };
    },
  );

  app.post(
    '/api/v1/group/clear',
    {
      schema: {
        tags: ['Groups'],
        summary: 'Delete the stored data of a group that was left',
        body: groupIdBody,
      },
    },
    async (req) => {
      const { group_id } = req.body as { group_id: string };
      node.clearGroup(group_id);
      return { group_id };
    },
  );

  app.get(
    '/api/v1/groups',
    { schema: { tags: ['Groups'], summary: 'List joined groups' } },
    async (_req, reply) => sendJson(reply, { groups: node.groups().map((g) => infoOf(g.groupId)) }),
  );

  app.get(
    '/api/v1/group/:group_id',
    { schema: { tags: ['Groups'], summary: 'One joined group', params: groupParams } },
    async (req, reply) => sendJson(reply, infoOf((req.params as { group_id: string }).group_id)),
  );

  app.get(
    '/api/v1/group/:group_id/seed',
    {
      schema: {
        tags: ['Groups'],
        summary: 'The seed URL of a group',
        params: groupParams,
        querystring: {
          type: 'object',
          properties: { include_chain_url: { type: 'boolean', default: false } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { group_id } = req.params as { group_id: string };
      const { include_chain_url } = req.query as { include_chain_url: boolean };
      node.group(group_id);
      return { seed: node.seedUrl(group_id, include_chain_url ? chainUrls(group_id) : []) };
    },
  );
}
