// API authorization over real HTTP: a non-loopback bind requires a token even from loopback;
// locality comes from the socket, never from a forged Host header; tokens are issued by
// `rum token`, scoped by role and group, refreshed (revoking the old one) and revoked by token or
// id; the token list shows ids, never tokens or the signing key; the database keeps only hashes,
// and a database from before hashing migrates with its tokens still valid.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { FastifyInstance } from 'fastify';
import { signJwt } from '../../src/api/jwt.ts';
import { buildApi, isLoopbackAddress } from '../../src/api/server.ts';
import { JWT_KEY_NAME, TokenService } from '../../src/api/tokens.ts';
import { MIGRATIONS_DIR } from '../../src/storage/db.ts';
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
type Reply = { status: number; json: AnyJson; bytes: Buffer };

const ZERO_TRX = '00000000-0000-4000-8000-000000000000';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

async function call(
  base: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: res.status, json: text ? JSON.parse(text) : undefined, bytes };
}

/** `rum token` against the node directory `dir`, as an operator issues the first token. */
function cliToken(dir: string, role: string, name: string): string {
  return execFileSync(
    process.execPath,
    [
      RUM_BIN,
      'token',
      '--role',
      role,
      '--name',
      name,
      '--keystorepwd',
      TEST_PASSWORD,
      ...dirFlags(dir),
    ],
    { encoding: 'utf8' },
  ).trim();
}

/** Every string in a JSON value, keys included. */
function jsonStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) jsonStrings(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      jsonStrings(x, out);
    }
  }
  return out;
}

/** Fails when `bytes` (a JSON answer) contains the key raw or as hex, base64(url) or latin1. */
function assertNoKey(bytes: Buffer, key: Uint8Array): void {
  const k = Buffer.from(key);
  assert.equal(bytes.indexOf(k), -1, 'the answer contains the raw key bytes');
  const forms = [
    k.toString('hex'),
    k.toString('hex').toUpperCase(),
    k.toString('base64'),
    k.toString('base64').replace(/=+$/, ''),
    k.toString('base64url'),
    k.toString('latin1'),
  ];
  const text = bytes.toString('utf8');
  // The parsed strings catch a key whose latin1 form was \u-escaped by JSON.
  const haystacks = [text, bytes.toString('latin1'), ...jsonStrings(JSON.parse(text))];
  for (const form of forms) {
    for (const h of haystacks) assert.equal(h.includes(form), false, 'the answer contains the key');
  }
}

/** Fails when `bytes` contains any of the tokens (or the MAC that is their secret part). */
function assertNoTokens(bytes: Buffer, tokens: string[]): void {
  const text = bytes.toString('latin1');
  for (const t of tokens) {
    assert.equal(text.includes(t), false, 'a token is in there');
    assert.equal(text.includes(t.split('.')[2]!), false, "a token's signature is in there");
  }
}

/** The node's database files (rum.db and its WAL, when there is one), concatenated. */
function dbFiles(dbPath: string): Buffer {
  return Buffer.concat(
    [dbPath, `${dbPath}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)),
  );
}

describe('the key and token checks of these tests', () => {
  it('find the key in every encoding, and a token or its signature', () => {
    const key = new Uint8Array(32).map((_, i) => (i * 37 + 200) & 0xff);
    const k = Buffer.from(key);
    const bodies = [
      Buffer.concat([Buffer.from('{"a":"'), k, Buffer.from('"}')]),
      Buffer.from(JSON.stringify({ a: k.toString('hex') })),
      Buffer.from(JSON.stringify({ a: [k.toString('hex').toUpperCase()] })),
      Buffer.from(JSON.stringify({ a: { b: k.toString('base64') } })),
      Buffer.from(JSON.stringify({ [k.toString('base64url')]: 1 })),
      Buffer.from(JSON.stringify({ a: `x${k.toString('latin1')}y` })),
    ];
    for (const b of bodies) assert.throws(() => assertNoKey(b, key), assert.AssertionError);
    assert.doesNotThrow(() => assertNoKey(Buffer.from('{"a":"b"}'), key));
    const tok = 'aaaa.bbbb.cccc';
    assert.throws(() => assertNoTokens(Buffer.from(`x${tok}y`), [tok]), assert.AssertionError);
    assert.throws(() => assertNoTokens(Buffer.from('"cccc"'), [tok]), assert.AssertionError);
  });
});

describe('API authorization on a non-loopback bind', () => {
  // The API is built for apiHost 0.0.0.0 but listens on 127.0.0.1 only: the non-loopback rules
  // apply, over real HTTP, without opening a socket beyond loopback.
  let app: FastifyInstance;
  let close: () => Promise<void>;
  let base = '';
  let chainToken = '';
  let key: Uint8Array = new Uint8Array();
  let dbPath = '';
  let dir = '';

  before(async () => {
    dir = tempDir('rum-auth-');
    chainToken = cliToken(dir, 'chain', 'admin');
    const { node } = await openTempNode({ apiHost: '0.0.0.0' }, dir);
    const tokens = await TokenService.open(node.store, node.keystore);
    key = node.keystore.get('secret', JWT_KEY_NAME);
    dbPath = join(node.config.dataDir, node.config.peerName, 'rum.db');
    app = await buildApi({ node, tokens });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await node.start();
    close = async () => {
      await app.close();
      await node.stop();
    };
  });
  after(async () => {
    await close();
  });

  it('requires a token even from loopback', async () => {
    const res = await call(base, 'GET', '/api/v1/groups');
    assert.equal(res.status, 401);
    assert.match(res.json.message, /Bearer/);
    assert.equal((await call(base, 'GET', '/api/v1/groups', 'not.a.token')).status, 401);
    assert.equal((await call(base, 'GET', '/api/v1/groups', chainToken)).status, 200);
  });

  it('scopes node tokens to their group; refresh revokes the old token; revokes by token or id', async () => {
    const g = await call(base, 'POST', '/api/v1/group', chainToken, {
      group_name: 'authgroup',
      consensus_type: 'poa',
      encryption_type: 'public',
      app_key: 'group_bbs',
    });
    assert.equal(g.status, 200);
    const gid = g.json.group_id;
    const exp = new Date(Date.now() + 3600_000).toISOString();
    const issue = async (name: string) => {
      const res = await call(base, 'POST', '/app/api/v1/token', chainToken, {
        name,
        role: 'node',
        group_id: gid,
        expires_at: exp,
      });
      assert.equal(res.status, 200);
      return res.json.token as string;
    };
    const trx = (tok: string, group = gid) =>
      call(base, 'GET', `/api/v1/trx/${group}/${ZERO_TRX}`, tok);

    const nodeTok = await issue('reader');
    assert.equal((await trx(nodeTok)).status, 200);
    assert.equal((await call(base, 'GET', '/api/v1/groups', nodeTok)).status, 403);
    assert.equal((await trx(nodeTok, '00000000-0000-4000-8000-000000000001')).status, 403);

    // Refresh: the new token works, the one it replaces is revoked and cannot be refreshed again.
    const refreshed = await call(base, 'POST', '/app/api/v1/token/refresh', nodeTok);
    assert.equal(refreshed.status, 200);
    const newTok = refreshed.json.token as string;
    assert.notEqual(newTok, nodeTok);
    assert.equal((await trx(newTok)).status, 200);
    const old = await trx(nodeTok);
    assert.equal(old.status, 401);
    assert.match(old.json.message, /revoked/);
    assert.equal((await call(base, 'POST', '/app/api/v1/token/refresh', nodeTok)).status, 401);

    // Revoke by the token itself (quorum's way), then by the id the list shows, then via DELETE.
    const byToken = await issue('by-token');
    const byId = await issue('by-id');
    const byDelete = await issue('by-delete');
    const revoke = (token: string) =>
      call(base, 'POST', '/app/api/v1/token/revoke', chainToken, {
        role: 'node',
        group_id: gid,
        token,
      });
    assert.equal((await revoke(byToken)).status, 200);
    assert.equal((await trx(byToken)).status, 401);

    const list = await call(base, 'GET', '/app/api/v1/token/list', chainToken);
    assert.equal(list.status, 200);
    const entries = list.json.node[gid];
    const find = (name: string, state: 'normal' | 'revoke') => {
      const e = entries[state].find((x: AnyJson) => x.remark === name);
      assert.ok(e, `${name} in ${state}`);
      return e;
    };
    const byIdEntry = find('by-id', 'normal');
    assert.match(byIdEntry.id, UUID);
    assert.equal(byIdEntry.token, byIdEntry.id);
    assert.equal(
      (
        await call(base, 'POST', '/app/api/v1/token/revoke', chainToken, {
          role: 'node',
          group_id: gid,
          token: byIdEntry.id,
        })
      ).status,
      200,
    );
    assert.equal((await trx(byId)).status, 401);
    assert.equal((await trx(byDelete)).status, 200);
    const del = await call(
      base,
      'DELETE',
      `/app/api/v1/token?role=node&group_id=${gid}&token=${encodeURIComponent(byDelete)}`,
      chainToken,
    );
    assert.equal(del.status, 200);
    assert.equal((await trx(byDelete)).status, 401);
    assert.equal((await revoke('no-such-token-or-id')).status, 404);
    assert.equal((await trx(newTok)).status, 200, 'revoking others leaves the refreshed token');
  });

  it('lists tokens by id, name, role, group and expiry; never a token or the key', async () => {
    const list = await call(base, 'GET', '/app/api/v1/token/list', chainToken);
    assert.equal(list.status, 200);
    const { chain, node } = list.json;
    assert.deepEqual(Object.keys(list.json).sort(), ['chain', 'node']);
    const admin = chain.normal.find((e: AnyJson) => e.remark === 'admin');
    assert.ok(admin);
    assert.match(admin.id, UUID);
    assert.equal(admin.token, admin.id);
    assert.equal(admin.name, 'admin');
    assert.equal(admin.role, 'chain');
    assert.equal(admin.group_id, '');
    assert.equal(admin.revoked, false);
    assert.ok(Date.parse(admin.expires_at) > Date.now() + 300 * 86400_000);
    // The id is the token's jti.
    const payload = JSON.parse(Buffer.from(chainToken.split('.')[1]!, 'base64url').toString());
    assert.equal(payload.jti, admin.id);

    const [gid] = Object.keys(node);
    const group = node[gid!];
    assert.deepEqual(group.normal.map((e: AnyJson) => e.remark).sort(), ['reader']);
    assert.deepEqual(group.revoke.map((e: AnyJson) => e.remark).sort(), [
      'by-delete',
      'by-id',
      'by-token',
      'reader',
    ]);
    for (const e of [...group.normal, ...group.revoke]) {
      assert.match(e.token, UUID);
      assert.equal(e.role, 'node');
      assert.equal(e.group_id, gid);
      assert.equal(e.revoked, group.revoke.includes(e));
    }
    assert.equal(new Set([...group.normal, ...group.revoke].map((e: AnyJson) => e.id)).size, 5);

    assertNoKey(list.bytes, key);
    assert.equal(list.bytes.includes(chainToken.split('.')[2]!), false);
    // The key is in the keystore, sealed; its ciphertext is not in the answer either.
    const sealed = readdirSync(join(dir, 'keystore')).filter((f) => f.startsWith('secret_'));
    assert.equal(sealed.length, 1);
    const { ciphertext } = JSON.parse(readFileSync(join(dir, 'keystore', sealed[0]!), 'utf8'));
    assert.equal(list.bytes.toString('utf8').includes(ciphertext), false);
  });

  it('stores tokens by their SHA-256, never the tokens themselves', async () => {
    const exp = new Date(Date.now() + 3600_000).toISOString();
    const tok = (
      await call(base, 'POST', '/app/api/v1/token', chainToken, {
        name: 'stored',
        role: 'chain',
        expires_at: exp,
      })
    ).json.token as string;
    const db = new Database(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT * FROM api_tokens').all() as Record<string, unknown>[];
      const hashes = rows.map((r) => r.token_hash);
      assert.ok(hashes.includes(sha256(tok)));
      assert.ok(hashes.includes(sha256(chainToken)));
      for (const r of rows) {
        for (const v of Object.values(r)) {
          assert.equal(String(v).includes(tok.split('.')[2]!), false, 'a token column');
        }
      }
    } finally {
      db.close();
    }
    assertNoTokens(dbFiles(dbPath), [tok, chainToken]);
  });
});

/** A non-loopback IPv4 address of this machine, from which to call a loopback-bound API. */
function nonLoopbackAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal && !isLoopbackAddress(a.address))?.address;
}

/** GET with an explicit Host header (fetch would replace it), optionally from `localAddress`. */
function rawGet(
  port: number,
  path: string,
  opts: { host: string; localAddress?: string; token?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: opts.host };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        headers,
        localAddress: opts.localAddress,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('API on a loopback bind', () => {
  it('decides locality from the socket: a forged Host header does not let a remote caller in', async (t) => {
    const from = nonLoopbackAddress();
    if (!from) {
      t.skip('this machine has no non-loopback IPv4 address to call from');
      return;
    }
    const dir = tempDir('rum-host-');
    const token = cliToken(dir, 'chain', 'admin');
    const n = await startNodeProcess({ dir });
    try {
      const port = Number(new URL(n.url).port);
      // A caller whose socket is not loopback (connected from this machine's non-loopback
      // address to the loopback bind) needs a token, even when Host names loopback.
      for (const host of [
        '127.0.0.1:8000',
        `127.0.0.1:${port}`,
        'localhost',
        'localhost:8000',
        '[::1]:8000',
      ]) {
        const res = await rawGet(port, '/api/v1/groups', { host, localAddress: from });
        assert.equal(res.status, 401, `Host: ${host} from ${from}: ${res.body}`);
        assert.match(res.body, /Bearer/);
      }
      const withToken = await rawGet(port, '/api/v1/groups', {
        host: 'localhost',
        localAddress: from,
        token,
      });
      assert.equal(withToken.status, 200, withToken.body);
      // A loopback caller needs no token, whatever Host it sends.
      const local = await rawGet(port, '/api/v1/groups', { host: 'evil.example.com' });
      assert.equal(local.status, 200);
    } finally {
      await n.stop();
    }
  });
});

/** A copy of the migrations that stops before 0006 (tokens hashed): the schema of older nodes. */
function migrationsBeforeHashing(): string {
  const dir = join(tempDir('rum-old-migrations-'), 'migrations');
  mkdirSync(join(dir, 'meta'), { recursive: true });
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'));
  const last = journal.entries.findIndex(
    (e: { tag: string }) => e.tag === '0006_hashed_api_tokens',
  );
  assert.ok(last > 0, 'migration 0006_hashed_api_tokens exists');
  journal.entries = journal.entries.slice(0, last);
  writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify(journal));
  for (const e of journal.entries) {
    cpSync(join(MIGRATIONS_DIR, `${e.tag}.sql`), join(dir, `${e.tag}.sql`));
  }
  return dir;
}

describe('a database whose tokens are in plaintext (before migration 0006)', () => {
  it('migrates to hashes at start; the old tokens keep working, revoked ones stay revoked', async () => {
    const dir = tempDir('rum-oldtokens-');
    // The node's keystore and JWT key, as an older version of the node left them.
    const { node } = await openTempNode({}, dir);
    await TokenService.open(node.store, node.keystore);
    const key = node.keystore.get('secret', JWT_KEY_NAME);
    const dbPath = join(node.config.dataDir, node.config.peerName, 'rum.db');
    await node.stop();
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      rmSync(f, { force: true });
    }

    // The old schema, with plaintext tokens as the old code stored them (no jti).
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const live = signJwt({ name: 'old-admin', role: 'chain', allowGroup: '', exp, iat: 1 }, key);
    const gone = signJwt({ name: 'old-gone', role: 'chain', allowGroup: '', exp, iat: 2 }, key);
    mkdirSync(dirname(dbPath), { recursive: true });
    const old = new Database(dbPath);
    migrate(drizzle(old), { migrationsFolder: migrationsBeforeHashing() });
    const insert = old.prepare(
      'INSERT INTO api_tokens (token, name, role, group_id, expires_at, revoked, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    insert.run(live, 'old-admin', 'chain', '', exp, 0, 1);
    insert.run(gone, 'old-gone', 'chain', '', exp, 1, 2);
    old.close();
    // The check below would see them: before the migration the file holds the tokens.
    assert.throws(() => assertNoTokens(dbFiles(dbPath), [live]), assert.AssertionError);

    const configFile = join(dir, 'strict.json');
    writeFileSync(configFile, JSON.stringify({ apiRequireTokenOnLoopback: true }));
    const n = await startNodeProcess({ dir, args: ['--config', configFile] });
    let refreshed = '';
    try {
      assert.equal((await call(n.url, 'GET', '/api/v1/groups')).status, 401);
      assert.equal((await call(n.url, 'GET', '/api/v1/groups', live)).status, 200);
      const revoked = await call(n.url, 'GET', '/api/v1/groups', gone);
      assert.equal(revoked.status, 401);
      assert.match(revoked.json.message, /revoked/);

      const list = await call(n.url, 'GET', '/app/api/v1/token/list', live);
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.json.chain.normal.map((e: AnyJson) => [e.remark, e.expires_at]),
        [['old-admin', new Date(exp * 1000).toISOString()]],
      );
      assert.deepEqual(
        list.json.chain.revoke.map((e: AnyJson) => e.remark),
        ['old-gone'],
      );
      for (const e of [...list.json.chain.normal, ...list.json.chain.revoke]) {
        assert.match(e.id, UUID);
      }
      assertNoTokens(list.bytes, [live, gone]);
      assertNoKey(list.bytes, key);

      // A migrated token refreshes like any other, and is revoked by it.
      const r = await call(n.url, 'POST', '/app/api/v1/token/refresh', live);
      assert.equal(r.status, 200);
      refreshed = r.json.token;
      assert.equal((await call(n.url, 'GET', '/api/v1/groups', refreshed)).status, 200);
      assert.equal((await call(n.url, 'GET', '/api/v1/groups', live)).status, 401);
    } finally {
      assert.equal(await n.stop(), 0);
    }

    const db = new Database(dbPath, { readonly: true });
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'api_tokens%'")
        .all();
      assert.deepEqual(tables, [{ name: 'api_tokens' }]);
      const hashes = (db.prepare('SELECT token_hash FROM api_tokens').all() as AnyJson[]).map(
        (r) => r.token_hash,
      );
      assert.deepEqual(hashes.sort(), [sha256(live), sha256(gone), sha256(refreshed)].sort());
    } finally {
      db.close();
    }
    assertNoTokens(dbFiles(dbPath), [live, gone, refreshed]);
  });
});
