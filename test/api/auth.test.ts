// API authorization: a non-loopback bind requires a token even from loopback; tokens are issued
// by `rum token`, scoped by role and group, revocable; the token list never shows the key.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server.ts';
import { TokenService } from '../../src/api/tokens.ts';
import {
  dirFlags,
  RUM_BIN,
  startNodeProcess,
  TEST_PASSWORD,
  tempDir,
} from '../helpers/node-process.ts';
import { openTempNode } from '../helpers/temp-node.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON responses.
type AnyJson = any;
type Caller = (
  method: string,
  path: string,
  token?: string,
  body?: unknown,
) => Promise<{ status: number; json: AnyJson }>;

describe('API authorization on a non-loopback bind', () => {
  // The API is built for apiHost 0.0.0.0 but driven with inject() from 127.0.0.1, so no socket
  // is opened beyond loopback while the non-loopback rules are exercised.
  let app: FastifyInstance;
  let close: () => Promise<void>;
  let call: Caller;
  let chainToken = '';
  let dir = '';

  before(async () => {
    dir = tempDir('rum-auth-');
    const dirs = dirFlags(dir);
    chainToken = execFileSync(
      process.execPath,
      [
        RUM_BIN,
        'token',
        '--role',
        'chain',
        '--name',
        'admin',
        '--keystorepwd',
        TEST_PASSWORD,
        ...dirs,
      ],
      {
        encoding: 'utf8',
      },
    ).trim();
    const { node } = await openTempNode({ apiHost: '0.0.0.0' }, dir);
    const tokens = await TokenService.open(node.store, node.keystore);
    app = await buildApi({ node, tokens });
    await node.start();
    close = async () => {
      await app.close();
      await node.stop();
    };
    call = async (method, path, token, body) => {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await app.inject({
        method: method as 'GET',
        url: path,
        headers,
        ...(body === undefined ? {} : { payload: body as object }),
      });
      return { status: res.statusCode, json: res.body ? JSON.parse(res.body) : undefined };
    };
  });
  after(async () => {
    await close();
  });

  it('requires a token even from loopback', async () => {
    const res = await call('GET', '/api/v1/groups');
    assert.equal(res.status, 401);
    assert.match(res.json.message, /Bearer/);
    assert.equal((await call('GET', '/api/v1/groups', 'not.a.token')).status, 401);
    assert.equal((await call('GET', '/api/v1/groups', chainToken)).status, 200);
  });

  it('scopes node tokens to their group, refreshes and revokes tokens, never lists the key', async () => {
    const g = await call('POST', '/api/v1/group', chainToken, {
      group_name: 'authgroup',
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'group_bbs',
    });
    assert.equal(g.status, 200);
    const gid = g.json.group_id;
    const exp = new Date(Date.now() + 3600_000).toISOString();
    const nodeTok = (
      await call('POST', '/app/api/v1/token', chainToken, {
        name: 'reader',
        role: 'node',
        group_id: gid,
        expires_at: exp,
      })
    ).json.token;
    assert.equal(
      (await call('GET', `/api/v1/trx/${gid}/00000000-0000-4000-8000-000000000000`, nodeTok))
        .status,
      200,
    );
    assert.equal((await call('GET', '/api/v1/groups', nodeTok)).status, 403);
    const other = '00000000-0000-4000-8000-000000000001';
    assert.equal(
      (await call('GET', `/api/v1/trx/${other}/00000000-0000-4000-8000-000000000000`, nodeTok))
        .status,
      403,
    );

    const refreshed = await call('POST', '/app/api/v1/token/refresh', nodeTok);
    assert.equal(refreshed.status, 200);
    assert.notEqual(refreshed.json.token, nodeTok);

    const list = await call('GET', '/app/api/v1/token/list', chainToken);
    assert.equal(list.status, 200);
    const text = JSON.stringify(list.json);
    assert.equal('key' in list.json, false);
    assert.ok(text.includes(nodeTok));
    // The HS256 key is in the keystore, sealed; nothing the API returns contains it.
    const sealed = readdirSync(join(dir, 'keystore')).filter((f) => f.startsWith('secret_'));
    assert.equal(sealed.length, 1);
    assert.equal(
      text.includes(JSON.parse(readFileSync(join(dir, 'keystore', sealed[0]!), 'utf8')).ciphertext),
      false,
    );

    assert.equal(
      (await call('POST', '/app/api/v1/token/revoke', chainToken, { token: nodeTok })).status,
      200,
    );
    const revoked = await call(
      'GET',
      `/api/v1/trx/${gid}/00000000-0000-4000-8000-000000000000`,
      nodeTok,
    );
    assert.equal(revoked.status, 401);
    assert.match(revoked.json.message, /revoked/);
  });
});

describe('API on a loopback bind', () => {
  it('serves loopback callers without a token and ignores a forged Host header', async () => {
    const n = await startNodeProcess();
    try {
      const res = await fetch(`${n.url}/api/v1/groups`, { headers: { host: 'evil.example.com' } });
      assert.equal(res.status, 200);
    } finally {
      await n.stop();
    }
  });
});
