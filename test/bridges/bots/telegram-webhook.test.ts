// Issue 11 part 4, Telegram-mode webhooks (setWebhook) on a real `rum fullnode` process: an
// unmodified Telegraf bot in webhook mode (its own webhookCallback on a loopback server, with a
// secret token, and its API root pointed at the gateway) gets a RUM post and replies (Telegraf
// answers the push with the method call, which the node runs as the bot); a push with the wrong
// secret is refused by Telegraf. Then what getWebhookInfo says, deleteWebhook stopping queued
// retries, and what was pending when the webhook was set. On the embedded queue and on BullMQ.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Telegraf } from 'telegraf';
import { api } from '../../helpers/node-process.ts';
import { until } from '../../helpers/until.ts';
import {
  backends,
  type BotNode,
  makeBot,
  post,
  posts,
  sleep,
  startBotNode,
  startReceiver,
  tg,
} from './webhook-fixtures.ts';

/** A Telegraf echo bot serving its webhook on a loopback server; answers its URL. */
async function telegrafBot(node: BotNode, token: string, secretToken: string) {
  const bot = new Telegraf(token, { telegram: { apiRoot: node.n.gatewayUrl } });
  bot.on('text', (ctx) => ctx.reply(`echo: ${ctx.message.text}`));
  const server = http.createServer(bot.webhookCallback('/telegraf', { secretToken }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/telegraf`;
  return {
    bot,
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

for (const { backend, skip } of backends(['embedded', 'bullmq'])) {
  describe(`Telegram-mode webhooks (${backend})`, { skip }, () => {
    let node: BotNode;
    let rx: Awaited<ReturnType<typeof startReceiver>>;

    before(async () => {
      node = await startBotNode(backend);
      rx = await startReceiver();
    });

    after(async () => {
      await node?.stop();
      await rx?.close();
    });

    it('an unmodified Telegraf bot in webhook mode gets a RUM post and replies', async () => {
      const made = await makeBot(node, 'telegraf_echo');
      const t = await telegrafBot(node, made.token, 'right-secret_1');
      try {
        // Telegraf's own call, through the gateway.
        assert.equal(
          await t.bot.telegram.setWebhook(t.url, { secret_token: 'right-secret_1' }),
          true,
        );
        const info = await t.bot.telegram.getWebhookInfo();
        assert.equal(info.url, t.url);
        assert.equal((await tg(node, made.token, 'getUpdates')).status, 409);
        await post(node, 'hello telegraf');
        const echo = await until(
          async () => (await posts(node)).find((p) => p.content === 'echo: hello telegraf'),
          'the echo committed',
          30_000,
        );
        const mine = (await posts(node)).find((p) => p.content === 'hello telegraf')!;
        assert.notEqual(echo.sender, mine.sender, 'the bot posts with its own key');
        await until(
          async () => (await t.bot.telegram.getWebhookInfo()).pending_update_count === 0,
          'nothing pending',
        );
        assert.equal((await t.bot.telegram.getWebhookInfo()).last_error_message, undefined);
        // Its own post comes back to nobody: the echo is not pushed to the bot.
        await sleep(500);
        assert.equal(
          (await posts(node)).filter((p) => p.content.startsWith('echo: echo')).length,
          0,
        );
      } finally {
        await t.bot.telegram.deleteWebhook().catch(() => {});
        await t.close();
        await api(node.n.url, 'DELETE', `/api/v1/bots/${made.bot_id}`);
      }
    });

    it('a push with the wrong secret token is refused by Telegraf, and said so', async () => {
      const made = await makeBot(node, 'telegraf_wrong');
      const t = await telegrafBot(node, made.token, 'right-secret_2');
      try {
        const set = await tg(node, made.token, 'setWebhook', {
          url: t.url,
          secret_token: 'wrong-secret',
        });
        assert.equal(set.status, 200, set.text);
        await post(node, 'with a wrong secret');
        const info = await until(async () => {
          const r = (await tg(node, made.token, 'getWebhookInfo')).json.result;
          return r.last_error_message ? r : null;
        }, 'the error recorded');
        assert.match(info.last_error_message, /403/);
        assert.equal(typeof info.last_error_date, 'number');
        // A 403 is final: not pending, in the failed list, and nothing was posted.
        assert.equal(info.pending_update_count, 0);
        const f = await api(node.n.url, 'GET', `/api/v1/bots/${made.bot_id}/deliveries`);
        assert.equal(f.json.deliveries.length, 1);
        assert.equal(f.json.deliveries[0].kind, 'telegram');
        await sleep(500);
        assert.equal(
          (await posts(node)).filter((p) => p.content === 'echo: with a wrong secret').length,
          0,
        );
        // Fixed, and redelivered: Telegraf now takes it and replies.
        await tg(node, made.token, 'setWebhook', { url: t.url, secret_token: 'right-secret_2' });
        const r = await api(
          node.n.url,
          'POST',
          `/api/v1/bots/${made.bot_id}/deliveries/redeliver`,
          { ids: [f.json.deliveries[0].id] },
        );
        assert.equal(r.status, 200, r.text);
        await until(
          async () => (await posts(node)).some((p) => p.content === 'echo: with a wrong secret'),
          'the echo after redelivery',
          30_000,
        );
      } finally {
        await tg(node, made.token, 'deleteWebhook');
        await t.close();
        await api(node.n.url, 'DELETE', `/api/v1/bots/${made.bot_id}`);
      }
    });

    it('deleteWebhook stops the pushes: a queued retry is not sent; getUpdates serves it', async () => {
      const made = await makeBot(node, 'tg_deleted', ['read']);
      const url = rx.answer('/tg-deleted', () => ({
        status: 503,
        headers: { 'retry-after': '1' },
      }));
      await tg(node, made.token, 'setWebhook', { url, secret_token: 's3cret' });
      await post(node, 'pushed then deleted');
      await until(() => rx.at('/tg-deleted').length === 1, 'the first push');
      const first = rx.at('/tg-deleted')[0]!;
      assert.equal(first.headers['x-telegram-bot-api-secret-token'], 's3cret');
      const update = JSON.parse(first.body) as { update_id: number; message: { text: string } };
      assert.equal(update.message.text, 'pushed then deleted');
      const info = (await tg(node, made.token, 'getWebhookInfo')).json.result;
      assert.equal(info.pending_update_count, 1);
      assert.match(info.last_error_message, /503/);
      assert.equal((await tg(node, made.token, 'deleteWebhook')).status, 200);
      await sleep(2500);
      assert.equal(rx.at('/tg-deleted').length, 1, 'no push after deleteWebhook');
      const got = await tg(node, made.token, 'getUpdates');
      assert.deepEqual(
        got.json.result.map((u: { update_id: number }) => u.update_id),
        [update.update_id],
      );
      await api(node.n.url, 'DELETE', `/api/v1/bots/${made.bot_id}`);
    });

    it('max_connections bounds the pushes running at once', async () => {
      const made = await makeBot(node, 'tg_maxconn', ['read']);
      let running = 0;
      let most = 0;
      let done = 0;
      const slow = http.createServer((req, res) => {
        running++;
        most = Math.max(most, running);
        req.resume();
        setTimeout(() => {
          running--;
          done++;
          res.writeHead(200).end();
        }, 150);
      });
      await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
      try {
        const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
        await tg(node, made.token, 'setWebhook', { url, max_connections: 1 });
        for (let i = 0; i < 4; i++) await post(node, `slow ${i}`);
        await until(() => done === 4, 'four pushes', 30_000);
        assert.equal(most, 1, 'one at a time');
      } finally {
        slow.closeAllConnections();
        await new Promise<void>((r) => slow.close(() => r()));
        await api(node.n.url, 'DELETE', `/api/v1/bots/${made.bot_id}`);
      }
    });

    it('what was pending when the webhook is set is pushed; drop_pending_updates drops it', async () => {
      const made = await makeBot(node, 'tg_pending', ['read']);
      await post(node, 'pending one');
      await until(
        async () =>
          (await tg(node, made.token, 'getWebhookInfo')).json.result.pending_update_count === 1,
        'logged',
      );
      const url = rx.answer('/tg-pending', () => ({ status: 200 }));
      await tg(node, made.token, 'setWebhook', { url });
      await until(() => rx.at('/tg-pending').length === 1, 'the pending update pushed');
      assert.equal(rx.at('/tg-pending')[0]!.headers['x-telegram-bot-api-secret-token'], undefined);
      await tg(node, made.token, 'deleteWebhook');
      await post(node, 'dropped one');
      await until(
        async () =>
          (await tg(node, made.token, 'getWebhookInfo')).json.result.pending_update_count === 1,
        'logged again',
      );
      await tg(node, made.token, 'setWebhook', { url, drop_pending_updates: true });
      await sleep(1000);
      assert.equal(rx.at('/tg-pending').length, 1, 'a dropped update is not pushed');
      await api(node.n.url, 'DELETE', `/api/v1/bots/${made.bot_id}`);
    });
  });
}
