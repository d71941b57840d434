// NIP-05 names on the gateway and the NIP-19 identifiers the admin API shows for a group.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as nip19 from 'nostr-tools/nip19';
import { nostrPubkeyOf } from '../../../bridges/nostr/author.ts';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import { buildApi } from '../../../src/api/server.ts';
import { TokenService } from '../../../src/api/tokens.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';

let node: RumNode;
let gateway: Gateway;
let adminApp: FastifyInstance;
let relayKey: string;
let relayUrl: string;
let groupId: string;
let hiddenId: string;

async function group(name: string): Promise<string> {
  const { groupId: id } = await node.createGroup({
    groupName: name,
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_timeline',
  });
  return id;
}

interface Nip05 {
  names: Record<string, string>;
  relays?: Record<string, string[]>;
}

async function names(query: string) {
  const res = await fetch(`${gateway.url}/.well-known/nostr.json${query}`, { redirect: 'manual' });
  return {
    status: res.status,
    cors: res.headers.get('access-control-allow-origin'),
    body: (await res.json()) as Nip05,
  };
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0 }));
  await node.start();
  gateway = await startGateway(node, [nostrBridge({ config: node.config })]);
  const info = await fetch(`${gateway.url}/`, { headers: { accept: 'application/nostr+json' } });
  relayKey = ((await info.json()) as { self: string }).self;
  relayUrl = `${gateway.url.replace(/^http/, 'ws')}/`;
  groupId = await group('Named');
  gateway.exposures.put(groupId, { handle: 'named', nostr: true, activitypub: false });
  hiddenId = await group('Hidden');
  gateway.exposures.put(hiddenId, { handle: 'hidden', nostr: false, activitypub: true });
  const tokens = await TokenService.open(node.store, node.keystore);
  adminApp = await buildApi({ node, tokens, gateway });
});

after(async () => {
  await adminApp?.close();
  await gateway.stop();
  await node.stop();
});

it("a group's handle (any case) and _ resolve to the relay key, with the relay's URL and CORS", async () => {
  for (const name of ['named', 'NaMed', '_']) {
    const r = await names(`?name=${name}`);
    assert.equal(r.status, 200);
    assert.equal(r.cors, '*');
    assert.deepEqual(r.body, {
      names: { [name.toLowerCase()]: relayKey },
      relays: { [relayKey]: [relayUrl] },
    });
  }
  const pre = await fetch(`${gateway.url}/.well-known/nostr.json?name=named`, {
    method: 'OPTIONS',
    headers: { origin: 'https://client.example', 'access-control-request-method': 'GET' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
});

it('unknown, malformed, unexposed and suspended names answer no names', async () => {
  for (const q of [
    '?name=nobody',
    '?name=bad%20name',
    `?name=${'a'.repeat(101)}`,
    '?name=hidden',
    '?name=a&name=b',
  ]) {
    const r = await names(q);
    assert.equal(r.status, 200, q);
    assert.equal(r.cors, '*');
    assert.deepEqual(r.body.names, {}, q);
  }
  const other = await group('Suspended');
  gateway.exposures.put(other, { handle: 'paused', nostr: true });
  assert.deepEqual((await names('?name=paused')).body.names, { paused: relayKey });
  await node.setAppConfig(other, 'add', 'bridging', 'string', 'off', '');
  await node.group(other).produce();
  await until(() => gateway.port.exposure(other)?.suspended ?? undefined, 'suspended');
  const paused = await names('?name=paused');
  assert.deepEqual(paused.body.names, {});
});

it('without a name, lists the served groups and _, not the unexposed ones', async () => {
  const r = await names('');
  assert.equal(r.cors, '*');
  assert.equal(r.body.names.named, relayKey);
  assert.equal(r.body.names._, relayKey);
  assert.equal(r.body.names.hidden, undefined);
  assert.deepEqual(r.body.relays, { [relayKey]: [relayUrl] });
});

it('an author of a served group resolves by u_<hex key> to its Nostr key; a stranger does not', async () => {
  const rumKey = node.group(groupId).userPubkey;
  const name = `u_${Buffer.from(rumKey, 'base64url').toString('hex')}`;
  assert.deepEqual((await names(`?name=${name}`)).body.names, {});
  await node.postContent(groupId, { type: 'Note', content: 'hello' });
  await node.group(groupId).produce();
  const r = await names(`?name=${name.toUpperCase()}`);
  const pubkey = nostrPubkeyOf(rumKey) as string;
  assert.deepEqual(r.body, { names: { [name]: pubkey }, relays: { [pubkey]: [relayUrl] } });
  const stranger = `u_02${'ab'.repeat(32)}`;
  assert.deepEqual((await names(`?name=${stranger}`)).body.names, {});
});

it("the admin API shows the group's Nostr identifiers: relay, NIP-29 id, naddr, npub", async () => {
  const res = await adminApp.inject({ method: 'GET', url: `/api/v1/group/${groupId}/bridges` });
  assert.equal(res.statusCode, 200, res.body);
  const ids = res.json().identifiers.nostr;
  const host = new URL(gateway.url).host;
  assert.equal(ids.relay, relayUrl);
  assert.equal(ids.group, `${host}'${groupId}`);
  assert.equal(ids.nip05, `named@${host}`);
  const a = nip19.decode(ids.naddr);
  assert.equal(a.type, 'naddr');
  assert.deepEqual(a.data, {
    kind: 39000,
    pubkey: relayKey,
    identifier: groupId,
    relays: [relayUrl],
  });
  assert.deepEqual(nip19.decode(ids.npub), { type: 'npub', data: relayKey });
  const hidden = await adminApp.inject({ method: 'GET', url: `/api/v1/group/${hiddenId}/bridges` });
  assert.equal(hidden.json().identifiers.nostr, undefined);
});
