// The Telegram Bot API subset of the bot gateway, on a real `rum fullnode` process over HTTP:
// bots made through the admin API, an unmodified grammY echo bot pointed at the gateway with
// nothing changed but its API root, and raw requests for the shapes and errors Telegram gives.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Bot } from 'grammy';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  waitFor,
} from '../../helpers/node-process.ts';

let n: NodeProcess;
let groupId: string;
let bot: { bot_id: number; token: string; chats: { group_id: string; chat_id: number }[] };

/** A Telegram call on the gateway, as JSON. */
async function tg(token: string, method: string, params?: Record<string, unknown>) {
  return api(n.gatewayUrl, 'POST', `/bot${token}/${method}`, params ?? {});
}

/** The group's committed posts, newest last: [sender, content]. */
async function posts(): Promise<{ content: string; sender: string }[]> {
  const res = await api(n.url, 'GET', `/app/api/v1/group/${groupId}/content?num=100&reverse=false`);
  assert.equal(res.status, 200, res.text);
  return (res.json as { Data: string; SenderPubkey: string }[]).map((t) => ({
    content: (JSON.parse(Buffer.from(t.Data, 'base64').toString('utf8')) as { content: string })
      .content,
    sender: t.SenderPubkey,
  }));
}

before(async () => {
  n = await startNodeProcess({ args: ['--allowprivateaddress', 'true'] });
  groupId = (await createPublicGroup(n.url, 'bots-api')).group_id;
  const put = await api(n.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
    handle: 'botsapi',
    bots: true,
  });
  assert.equal(put.status, 200, put.text);
  const made = await api(n.url, 'POST', '/api/v1/bots', {
    name: 'echo',
    group_ids: [groupId],
    scopes: ['read', 'post'],
  });
  assert.equal(made.status, 201, made.text);
  bot = made.json;
});

after(async () => {
  await n?.stop();
});

describe('bot gateway: Telegram Bot API', () => {
  it('makes a bot: a positive bot id, a token <bot_id>:<secret>, a negative chat id', () => {
    assert.ok(Number.isInteger(bot.bot_id) && bot.bot_id > 0);
    assert.match(bot.token, new RegExp(`^${bot.bot_id}:[A-Za-z0-9_-]+$`));
    assert.equal(bot.chats[0]!.group_id, groupId);
    assert.ok(bot.chats[0]!.chat_id < 0);
  });

  it('getMe answers the bot', async () => {
    const res = await tg(bot.token, 'getMe');
    assert.equal(res.status, 200);
    assert.equal(res.json.ok, true);
    assert.equal(res.json.result.id, bot.bot_id);
    assert.equal(res.json.result.is_bot, true);
    assert.equal(res.json.result.username, 'echo_bot');
  });

  it('a grammY echo bot gets a RUM post and its reply is committed, signed by the bot key', async () => {
    const echo = new Bot(bot.token, { client: { apiRoot: n.gatewayUrl } });
    echo.on('message:text', (ctx) => ctx.reply(`echo: ${ctx.message.text}`));
    const running = echo.start({ timeout: 1 } as never);
    try {
      const posted = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
        data: { type: 'Note', content: 'hello bots' },
      });
      assert.equal(posted.status, 200, posted.text);
      const got = await waitFor(
        async () => {
          const all = await posts();
          return all.find((p) => p.content === 'echo: hello bots');
        },
        'the echo committed',
        200,
      );
      const mine = (await posts()).find((p) => p.content === 'hello bots')!;
      assert.notEqual(got.sender, mine.sender, 'the bot posts with its own key');
    } finally {
      await echo.stop();
      await running.catch(() => {});
    }
  });

  it("errors have Telegram's shape and post nothing", async () => {
    const before = (await posts()).length;
    const cases: [string, string, Record<string, unknown>, number, RegExp][] = [
      [
        'wrong token',
        `${bot.bot_id}:${'x'.repeat(32)}`,
        { chat_id: bot.chats[0]!.chat_id, text: 'a' },
        401,
        /Unauthorized/,
      ],
      ['unknown chat', bot.token, { chat_id: -100123, text: 'a' }, 400, /chat not found/],
      ['empty text', bot.token, { chat_id: bot.chats[0]!.chat_id, text: '' }, 400, /text is empty/],
      [
        'too long',
        bot.token,
        { chat_id: bot.chats[0]!.chat_id, text: 'x'.repeat(4097) },
        400,
        /too long/,
      ],
    ];
    for (const [what, token, params, code, re] of cases) {
      const res = await tg(token, 'sendMessage', params);
      assert.equal(res.status, code, what);
      assert.equal(res.json.ok, false, what);
      assert.equal(res.json.error_code, code, what);
      assert.match(res.json.description, re, what);
    }
    const unknown = await tg(bot.token, 'sendDice', {});
    assert.equal(unknown.status, 404);
    const readOnly = await api(n.url, 'POST', '/api/v1/bots', {
      name: 'reader',
      group_ids: [groupId],
      scopes: ['read'],
    });
    const res = await tg(readOnly.json.token, 'sendMessage', {
      chat_id: bot.chats[0]!.chat_id,
      text: 'not allowed',
    });
    assert.equal(res.status, 403);
    assert.match(res.json.description, /scope/);
    const revoked = await api(n.url, 'DELETE', `/api/v1/bots/${readOnly.json.bot_id}`);
    assert.equal(revoked.status, 200);
    assert.equal((await tg(readOnly.json.token, 'getMe')).status, 401);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await posts()).length, before);
  });
});
