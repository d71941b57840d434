// `rum bot …` against a running node: create, list, webhook, deliveries, redeliver, revoke, each
// through the admin API; and `rum bot list` as its own process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { runBotCommand } from '../../../src/cli/bot.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  RUM_BIN,
  startNodeProcess,
} from '../../helpers/node-process.ts';

let n: NodeProcess;
let groupId: string;

async function rumBot(...args: string[]): Promise<string> {
  let out = '';
  const code = await runBotCommand([...args, '--api', n.url], {
    stdout: (s) => {
      out += s;
    },
  });
  assert.equal(code, 0);
  return out;
}

before(async () => {
  n = await startNodeProcess({ args: ['--allowprivateaddress', 'true'] });
  groupId = (await createPublicGroup(n.url, 'bot-cli')).group_id;
  const put = await api(n.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
    handle: 'botcli',
    bots: true,
  });
  assert.equal(put.status, 200, put.text);
});

after(async () => {
  await n?.stop();
});

describe('rum bot', () => {
  it('creates, lists, sets a webhook, lists deliveries and revokes', async () => {
    const made = await rumBot('create', 'cli_bot', '--group', groupId, '--scopes', 'read');
    const id = /^bot (\d+) \(cli_bot\), scopes read$/m.exec(made)?.[1];
    assert.ok(id, made);
    const token = /^token: (\S+)/m.exec(made)?.[1];
    assert.match(token ?? '', new RegExp(`^${id}:`));
    assert.match(made, new RegExp(`^chat -\\d+  group ${groupId}$`, 'm'));
    assert.match(
      await rumBot('list'),
      new RegExp(`^${id}\\s+cli_bot\\s+read\\s+1 chat\\(s\\)`, 'm'),
    );
    const hook = await rumBot('webhook', id!, 'http://127.0.0.1:9/hook');
    assert.match(hook, /^secret: whsec_[A-Za-z0-9+/]+=*/m);
    assert.match(await rumBot('list'), /webhook standard http:\/\/127\.0\.0\.1:9\/hook/);
    const failed = JSON.parse(await rumBot('deliveries', id!));
    assert.deepEqual(failed.deliveries, []);
    const again = JSON.parse(await rumBot('redeliver', id!, '--from', '1'));
    assert.deepEqual(again.redelivered, []);
    assert.deepEqual(JSON.parse(await rumBot('webhook-delete', id!)).webhook, null);
    const listed = spawnSync(process.execPath, [RUM_BIN, 'bot', 'list', '--api', n.url], {
      encoding: 'utf8',
    });
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /cli_bot/);
    assert.doesNotMatch(listed.stdout, /webhook/);
    assert.equal(JSON.parse(await rumBot('revoke', id!)).revoked, true);
    assert.equal((await api(n.gatewayUrl, 'POST', `/bot${token}/getMe`, {})).status, 401);
    assert.equal(await rumBot('list'), 'no bots\n');
  });

  it('says what is missing', async () => {
    await assert.rejects(
      runBotCommand(['create', 'x', '--api', n.url], { stdout: () => {} }),
      /--group/,
    );
    await assert.rejects(runBotCommand(['revoke', 'abc'], { stdout: () => {} }), /BOT_ID/);
    await assert.rejects(
      runBotCommand(['redeliver', '1', '--api', n.url], { stdout: () => {} }),
      /ids, or --from/,
    );
  });
});
