/**
 * API tokens (quorum's /app/api/v1/token*). Unlike quorum, the list returns neither the signing
 * key nor the tokens: each entry's `token` is the token's id (its jti), which revoke accepts as
 * well as the token itself. Revocation is a flag in the database checked on every call, and a
 * refresh revokes the token it replaces.
 */
import type { FastifyInstance } from 'fastify';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../../errors.ts';
import { parseBearer } from '../jwt.ts';
import type { ApiComponents } from '../context.ts';
import { uuid } from './common.ts';

const revokeShape = {
  type: 'object',
  required: ['token'],
  properties: {
    role: { type: 'string', enum: ['node', 'chain'] },
    group_id: { anyOf: [uuid, { type: 'string', maxLength: 0 }] },
    token: {
      type: 'string',
      minLength: 1,
      maxLength: 8192,
      description: 'the token, or its id from the token list',
    },
  },
  additionalProperties: false,
} as const;

export function registerTokenRoutes(app: FastifyInstance, { node, tokens }: ApiComponents): void {
  app.post(
    '/app/api/v1/token',
    {
      schema: {
        tags: ['Tokens'],
        summary: 'Create a token (role chain: everything; role node: one group)',
        body: {
          type: 'object',
          required: ['name', 'role', 'expires_at'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 100 },
            role: { type: 'string', enum: ['node', 'chain'] },
            group_id: uuid,
            expires_at: { type: 'string', format: 'date-time' },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body as {
        name: string;
        role: 'node' | 'chain';
        group_id?: string;
        expires_at: string;
      };
      if (b.role === 'node' && !b.group_id)
        throw new BadRequestError('a node token needs group_id');
      if (b.group_id) node.group(b.group_id);
      const exp = Math.floor(Date.parse(b.expires_at) / 1000);
      if (!(exp > Date.now() / 1000)) throw new BadRequestError('expires_at must be in the future');
      return {
        token: tokens.create({ name: b.name, role: b.role, allowGroup: b.group_id ?? '', exp }),
      };
    },
  );

  app.get(
    '/app/api/v1/token/list',
    {
      schema: {
        tags: ['Tokens'],
        summary: "Issued tokens by id, name, role, group and expiry (quorum's shape, no secrets)",
      },
    },
    async () => {
      const rows = tokens.list();
      const entry = (r: (typeof rows)[number]) => ({
        remark: r.name,
        // quorum lists the token here; this node lists its id, which revoke accepts too.
        token: r.id,
        id: r.id,
        name: r.name,
        role: r.role,
        group_id: r.groupId,
        expires_at: new Date(r.expiresAt * 1000).toISOString(),
        revoked: r.revoked,
      });
      const chain = rows.filter((r) => r.role === 'chain');
      const nodeRows = rows.filter((r) => r.role === 'node');
      const byGroup: Record<string, { normal: unknown[]; revoke: unknown[] }> = {};
      for (const r of nodeRows) {
        byGroup[r.groupId] ??= { normal: [], revoke: [] };
        byGroup[r.groupId]![r.revoked ? 'revoke' : 'normal'].push(entry(r));
      }
      return {
        chain: {
          normal: chain.filter((r) => !r.revoked).map(entry),
          revoke: chain.filter((r) => r.revoked).map(entry),
        },
        node: byGroup,
      };
    },
  );

  app.post(
    '/app/api/v1/token/refresh',
    {
      schema: {
        tags: ['Tokens'],
        summary: 'Exchange the bearer token for a new one (30 days); the old one is revoked',
      },
    },
    async (req) => {
      const token = parseBearer(req.headers.authorization);
      if (!token) throw new UnauthorizedError('missing Authorization: Bearer <token>');
      try {
        return { token: tokens.refresh(token) };
      } catch (err) {
        throw new UnauthorizedError(`invalid token: ${(err as Error).message}`);
      }
    },
  );

  const revoke = (token: string) => {
    if (!tokens.revoke(token)) throw new NotFoundError('no such token');
    return { success: true };
  };
  app.post(
    '/app/api/v1/token/revoke',
    { schema: { tags: ['Tokens'], body: revokeShape } },
    async (req) => revoke((req.body as { token: string }).token),
  );
  app.delete(
    '/app/api/v1/token',
    { schema: { tags: ['Tokens'], querystring: revokeShape } },
    async (req) => revoke((req.query as { token: string }).token),
  );
}
