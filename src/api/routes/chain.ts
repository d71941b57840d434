/**
 * Trx and block lookup; chain config (allow/deny lists, trx auth mode) and app config. The read
 * answers are exported: quorum's light-client routes (./lightnode.ts) give the same ones.
 */
import type { FastifyInstance } from 'fastify';
import { TrxAuthMode, TrxType, trxTypeName } from '../../chain/pb.ts';
import { BadRequestError, NotFoundError } from '../../errors.ts';
import type { RumNode } from '../../node.ts';
import type { TrxRuleRow } from '../../storage/chain-store.ts';
import { blockJson, trxJson } from '../json.ts';
import type { ApiComponents } from '../context.ts';
import { groupParams, memo, sendJson, uuid } from './common.ts';

/** The trx types quorum's chain config API takes by name. */
const CONFIGURABLE = {
  POST: TrxType.POST,
  ANNOUNCE: TrxType.ANNOUNCE,
  REQ_BLOCK: TrxType.REQ_BLOCK,
} as const;
type ConfigurableName = keyof typeof CONFIGURABLE;

/** A trx type by name; like quorum, in either case ("post" or "POST"). */
function trxTypeOf(name: unknown): number {
  const upper = typeof name === 'string' ? name.toUpperCase() : '';
  if (!Object.hasOwn(CONFIGURABLE, upper)) {
    throw new BadRequestError(`trx_type must be one of ${Object.keys(CONFIGURABLE).join(', ')}`);
  }
  return CONFIGURABLE[upper as ConfigurableName];
}

function parseConfig(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v;
  } catch {
    // fall through
  }
  throw new BadRequestError('config must be a JSON object encoded as a string');
}

function ruleJson(r: TrxRuleRow) {
  return {
    Pubkey: r.pubkey,
    TrxType: r.trxTypes.map(trxTypeName),
    GroupOwnerPubkey: r.ownerPubkey,
    GroupOwnerSign: r.ownerSign,
    TimeStamp: BigInt(r.timestamp),
    Memo: r.memo,
  };
}

const appConfigTypeName = ['INT', 'BOOL', 'STRING'];

/** Params {group_id, trx_type}: a trx type whose auth mode can be read. */
export const trxTypeParams = {
  type: 'object',
  required: ['group_id', 'trx_type'],
  properties: {
    group_id: uuid,
    trx_type: { type: 'string', enum: Object.keys(CONFIGURABLE) },
  },
  additionalProperties: false,
} as const;

/** Params {group_id, key}: one app config item. */
export const appConfigKeyParams = {
  type: 'object',
  required: ['group_id', 'key'],
  properties: { group_id: uuid, key: { type: 'string', minLength: 1, maxLength: 128 } },
  additionalProperties: false,
} as const;

/** quorum's TrxAuthItem: the auth mode of a trx type (FOLLOW_DNY_LIST until set). */
export function trxAuthModeJson(node: RumNode, groupId: string, trxType: string) {
  node.group(groupId);
  const mode = node.store.authMode(groupId, trxTypeOf(trxType)) ?? TrxAuthMode.FOLLOW_DNY_LIST;
  return {
    TrxType: trxType,
    AuthType: mode === TrxAuthMode.FOLLOW_ALW_LIST ? 'FOLLOW_ALW_LIST' : 'FOLLOW_DNY_LIST',
  };
}

/** quorum's ChainSendTrxRuleListItem list: the allow list (0) or the deny list (1). */
export function trxRulesJson(node: RumNode, groupId: string, list: 0 | 1) {
  node.group(groupId);
  return node.store.listRules(groupId, list).map(ruleJson);
}

/** quorum's AppConfigKeyListItem list: names and types of the app config items. */
export function appConfigKeysJson(node: RumNode, groupId: string) {
  node.group(groupId);
  return node.store
    .listAppConfig(groupId)
    .map((r) => ({ Name: r.name, Type: appConfigTypeName[r.type] }));
}

/** quorum's AppConfigKeyItem; NotFoundError when the group has no such item. */
export function appConfigItemJson(node: RumNode, groupId: string, key: string) {
  node.group(groupId);
  const r = node.store.getAppConfig(groupId, key);
  if (!r) throw new NotFoundError(`app config ${key} not found`);
  return {
    Name: r.name,
    Type: appConfigTypeName[r.type],
    Value: r.value,
    OwnerPubkey: r.ownerPubkey,
    OwnerSign: r.ownerSign,
    Memo: r.memo,
    TimeStamp: BigInt(r.timestamp),
  };
}

export function registerChainRoutes(app: FastifyInstance, { node }: ApiComponents): void {
  app.get(
    '/api/v1/trx/:group_id/:trx_id',
    {
      schema: {
        tags: ['Chain'],
        summary: 'A committed trx as stored (Data encrypted); {} when unknown',
        params: {
          type: 'object',
          required: ['group_id', 'trx_id'],
          properties: { group_id: uuid, trx_id: uuid },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id, trx_id } = req.params as { group_id: string; trx_id: string };
      node.group(group_id);
      const found = node.store.getTrx(group_id, trx_id);
      return sendJson(reply, found ? trxJson(found.trx) : {});
    },
  );

  app.get(
    '/api/v1/block/:group_id/:block_id',
    {
      schema: {
        tags: ['Chain'],
        summary: 'A block by height; {} when unknown',
        params: {
          type: 'object',
          required: ['group_id', 'block_id'],
          properties: {
            group_id: uuid,
            block_id: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { group_id, block_id } = req.params as { group_id: string; block_id: number };
      node.group(group_id);
      const block = node.store.getBlock(group_id, block_id);
      return sendJson(reply, block ? blockJson(block) : {});
    },
  );

  app.post(
    '/api/v1/group/chainconfig',
    {
      schema: {
        tags: ['Chain config'],
        summary: 'Owner: set a trx auth mode or update the allow/deny list',
        body: {
          type: 'object',
          required: ['group_id', 'type', 'config'],
          properties: {
            group_id: uuid,
            type: { type: 'string', enum: ['set_trx_auth_mode', 'upd_alw_list', 'upd_dny_list'] },
            config: { type: 'string', maxLength: 4096 },
            memo,
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as { group_id: string; type: string; config: string; memo: string };
      const cfg = parseConfig(b.config);
      let res: { trxId: string; sign: string };
      if (b.type === 'set_trx_auth_mode') {
        const mode = String(cfg.trx_auth_mode ?? '').toLowerCase();
        if (mode !== 'follow_alw_list' && mode !== 'follow_dny_list') {
          throw new BadRequestError('trx_auth_mode must be follow_alw_list or follow_dny_list');
        }
        const modeNum =
          mode === 'follow_alw_list' ? TrxAuthMode.FOLLOW_ALW_LIST : TrxAuthMode.FOLLOW_DNY_LIST;
        res = await node.setTrxAuthMode(b.group_id, trxTypeOf(cfg.trx_type), modeNum, b.memo);
      } else {
        const action = cfg.action;
        if (action !== 'add' && action !== 'remove')
          throw new BadRequestError('action must be add or remove');
        if (typeof cfg.pubkey !== 'string') throw new BadRequestError('pubkey is required');
        if (!Array.isArray(cfg.trx_type) || cfg.trx_type.length === 0 || cfg.trx_type.length > 8) {
          throw new BadRequestError('trx_type must be a non-empty list of trx type names');
        }
        const types = [...new Set(cfg.trx_type.map(trxTypeOf))];
        const list = b.type === 'upd_alw_list' ? 'allow' : 'deny';
        res = await node.updateTrxList(b.group_id, list, action, cfg.pubkey, types, b.memo);
      }
      return {
        group_id: b.group_id,
        owner_pubkey: node.group(b.group_id).row.ownerPubkey,
        signature: res.sign,
        trx_id: res.trxId,
      };
    },
  );

  for (const [path, list] of [
    ['allowlist', 0],
    ['denylist', 1],
  ] as const) {
    app.get(
      `/api/v1/group/:group_id/trx/${path}`,
      {
        schema: { tags: ['Chain config'], summary: `The ${path} of a group`, params: groupParams },
      },
      async (req, reply) => {
        const { group_id } = req.params as { group_id: string };
        return sendJson(reply, trxRulesJson(node, group_id, list));
      },
    );
  }

  app.get(
    '/api/v1/group/:group_id/trx/auth/:trx_type',
    {
      schema: {
        tags: ['Chain config'],
        summary: 'The auth mode of a trx type',
        params: trxTypeParams,
      },
    },
    async (req) => {
      const { group_id, trx_type } = req.params as { group_id: string; trx_type: string };
      return trxAuthModeJson(node, group_id, trx_type);
    },
  );

  app.post(
    '/api/v1/group/appconfig',
    {
      schema: {
        tags: ['App config'],
        summary: 'Owner: add or delete an app config item',
        body: {
          type: 'object',
          required: ['action', 'group_id', 'name', 'type', 'value'],
          properties: {
            action: { type: 'string', enum: ['add', 'del'] },
            group_id: uuid,
            name: { type: 'string', minLength: 1, maxLength: 128 },
            type: { type: 'string', enum: ['int', 'bool', 'string'] },
            value: { type: 'string', maxLength: 65536 },
            memo,
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as {
        action: 'add' | 'del';
        group_id: string;
        name: string;
        type: 'int' | 'bool' | 'string';
        value: string;
        memo: string;
      };
      const res = await node.setAppConfig(b.group_id, b.action, b.name, b.type, b.value, b.memo);
      return { group_id: b.group_id, signature: res.sign, trx_id: res.trxId };
    },
  );

  app.get(
    '/api/v1/group/:group_id/appconfig/keylist',
    {
      schema: {
        tags: ['App config'],
        summary: 'Names and types of app config items',
        params: groupParams,
      },
    },
    async (req) => appConfigKeysJson(node, (req.params as { group_id: string }).group_id),
  );

  app.get(
    '/api/v1/group/:group_id/appconfig/:key',
    {
      schema: {
        tags: ['App config'],
        summary: 'One app config item',
        params: appConfigKeyParams,
      },
    },
    async (req, reply) => {
      const { group_id, key } = req.params as { group_id: string; key: string };
      return sendJson(reply, appConfigItemJson(node, group_id, key));
    },
  );
}
