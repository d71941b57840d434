// The gateway as a node process runs it: its own listener with /healthz and no admin route, its
// bound URL in the start-up line and in GET /api/v1/node, a per-address rate limit, and the
// operator's exposure of groups through the admin API and `rum bridge`, where every bad input
// gets a 4xx with a message and changes nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  RUM_BIN,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../helpers/node-process.ts';

const ADMIN_PATHS = [
  ['GET', '/api/v1/node'],
  ['GET', '/api/v1/groups'],
  ['POST', '/api/v1/group'],
  ['GET', '/api/v1/bridges'],
  ['GET', '/api/v1/bridges/deliveries'],
  ['GET', '/metrics'],
  ['GET', '/swagger/json'],
  ['POST', '/app/api/v1/token'],
  ['GET', '/api/v1/network'],
] as const;

describe('gateway listener and exposure', () => {
  let n: NodeProcess;
  let pub = '';
  let other = '';
  let priv = '';
  const dir = tempDir('rum-gw-');

  before(async () => {
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ limits: { gatewayRateLimitPerMinute: 40 } }));
    n = await startNodeProcess({ dir, args: ['--config', cfg] });
    pub = (await createPublicGroup(n.url, 'forum')).group_id;
    other = (await createPublicGroup(n.url, 'other')).group_id;
    const p = await api(n.url, 'POST', '/api/v1/group', {
      group_name: 'secret',
      consensus_type: 'poa',
      encryption_type: 'private',
      app_key: 'group_bbs',
    });
    assert.equal(p.status, 200, p.text);
    priv = p.json.group_id;
  });
  after(async () => {
    await n.stop();
  });

  it('listens on its own port, says where, and answers /healthz', async () => {
    assert.match(n.gatewayUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(n.gatewayUrl, n.url);
    const info = await api(n.url, 'GET', '/api/v1/node');
    assert.equal(info.json.gateway_url, n.gatewayUrl);
    const h = await api(n.gatewayUrl, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok' });
  });

  it('serves no admin route', async () => {
    for (const [method, path] of ADMIN_PATHS) {
      const res = await api(n.gatewayUrl, method, path, method === 'POST' ? {} : undefined);
      assert.equal(res.status, 404, `${method} ${path} on the gateway`);
      assert.match(res.json.message, /no route/);
      // …while the admin API does have it (a 404 here is not just a wrong path).
      const admin = await api(n.url, method, path, method === 'POST' ? {} : undefined);
      assert.notEqual(admin.status, 404, `${method} ${path} on the admin API`);
    }
  });

  it('exposes a group and reads it back', async () => {
    const put = await api(n.url, 'PUT', `/api/v1/group/${pub}/bridges`, {
      handle: 'ourforum',
      activitypub: true,
      nostr: true,
      bots: false,
    });
    assert.equal(put.status, 200, put.text);
    const { identifiers, ...exposure } = put.json;
    assert.deepEqual(exposure, {
      group_id: pub,
      group_name: 'forum',
      handle: 'ourforum',
      activitypub: true,
      nostr: true,
      bots: false,
      encryption: 'public',
      suspended: null,
    });
    // The Nostr bridge names the group on its network (NIP-29 id, NIP-19, NIP-05).
    assert.match(identifiers.nostr.group, new RegExp(`'${pub}$`));
    assert.match(identifiers.nostr.nip05, /^ourforum@/);
    const get = await api(n.url, 'GET', `/api/v1/group/${pub}/bridges`);
    assert.deepEqual(get.json, put.json);
    const list = await api(n.url, 'GET', '/api/v1/bridges');
    assert.deepEqual(list.json.bridges, [put.json]);
  });

  it('refuses bad input with a 4xx and a message, and changes nothing', async () => {
    const before = (await api(n.url, 'GET', '/api/v1/bridges')).json;
    const cases: [string, string, unknown, number, RegExp][] = [
      ['PUT', `/api/v1/group/${other}/bridges`, { handle: 'ourforum' }, 409, /taken/],
      ['PUT', `/api/v1/group/${other}/bridges`, { handle: 'Our-Forum' }, 400, /handle/],
      ['PUT', `/api/v1/group/${other}/bridges`, { handle: '' }, 400, /handle/],
      ['PUT', `/api/v1/group/${other}/bridges`, { handle: 'a'.repeat(31) }, 400, /handle/],
      [
        'PUT',
        `/api/v1/group/${other}/bridges`,
        { handle: 'ok', bogus: 1 },
        400,
        /bogus|additional/,
      ],
      ['PUT', `/api/v1/group/${other}/bridges`, { nostr: true }, 400, /handle/],
      [
        'PUT',
        '/api/v1/group/00000000-0000-4000-8000-000000000000/bridges',
        { handle: 'nobody' },
        404,
        /not found/,
      ],
      ['PUT', '/api/v1/group/not-a-uuid/bridges', { handle: 'x' }, 400, /group_id/],
      ['PUT', `/api/v1/group/${priv}/bridges`, { handle: 'secret' }, 409, /private group/],
      ['DELETE', `/api/v1/group/${other}/bridges`, undefined, 404, /not exposed/],
      ['GET', `/api/v1/group/${other}/bridges`, undefined, 404, /not exposed/],
    ];
    for (const [method, path, body, status, msg] of cases) {
      const res = await api(n.url, method, path, body);
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.json.message, msg);
    }
    assert.deepEqual((await api(n.url, 'GET', '/api/v1/bridges')).json, before);
  });

  it('serves a private group only on nostr and bots', async () => {
    const res = await api(n.url, 'PUT', `/api/v1/group/${priv}/bridges`, {
      handle: 'secret',
      activitypub: false,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.activitypub, false);
    assert.equal(res.json.encryption, 'private');
    const del = await api(n.url, 'DELETE', `/api/v1/group/${priv}/bridges`);
    assert.equal(del.status, 200);
  });

  it("follows the owner's app config: bridging off suspends and refuses, on resumes", async () => {
    const setBridging = async (value: string) => {
      const res = await api(n.url, 'POST', '/api/v1/group/appconfig', {
        action: 'add',
        group_id: pub,
        name: 'bridging',
        type: 'string',
        value,
        memo: '',
      });
      assert.equal(res.status, 200, res.text);
    };
    await setBridging('off');
    const suspended = await waitFor(async () => {
      const e = (await api(n.url, 'GET', `/api/v1/group/${pub}/bridges`)).json;
      return e.suspended ? e : null;
    }, 'suspension');
    assert.match(suspended.suspended, /owner forbids bridging/);
    const again = await api(n.url, 'PUT', `/api/v1/group/${pub}/bridges`, { handle: 'ourforum' });
    assert.equal(again.status, 409);
    assert.match(again.json.message, /forbids bridging/);
    await setBridging('on');
    await waitFor(
      async () => (await api(n.url, 'GET', `/api/v1/group/${pub}/bridges`)).json.suspended === null,
      'resumption',
    );
  });

  it('rum bridge expose, list and remove drive the running node', () => {
    const rum = (...args: string[]) =>
      spawnSync(process.execPath, [RUM_BIN, 'bridge', ...args, '--api', n.url], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    let r = rum('expose', other, '--handle', 'other_group', '--no-nostr');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).nostr, false);
    r = rum('list');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${other}\\s+other_group\\s+activitypub,bots`));
    r = rum('expose', other, '--handle', 'ourforum');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /409 handle "ourforum" is taken/);
    r = rum('remove', other);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(rum('list').stdout, /other_group/);
    r = spawnSync(process.execPath, [RUM_BIN, 'bridge', 'list', '--api', 'http://127.0.0.1:1'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is the node running/);
  });

  it('limits requests per address', async () => {
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 60 && !limited; i++) {
      const res = await api(n.gatewayUrl, 'GET', '/nothing-here');
      if (res.status === 429) limited = res;
      else assert.equal(res.status, 404);
    }
    assert.ok(limited, 'the 41st request in a minute is refused');
    assert.match(limited.json.message, /rate limit: 40 requests a minute/);
  });
});
