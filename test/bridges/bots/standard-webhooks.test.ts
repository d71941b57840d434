// Issue 11 part 4, Standard Webhooks for service bots, on a real `rum fullnode` process: every
// request is verified by the `standardwebhooks` npm library (the receivers' side, written by
// others). On the embedded queue, on BullMQ with the node running deliveries, and on BullMQ with
// them left to a `rum worker` process (which checks revoked endpoints and reports outcomes
// through Redis). The retry schedule is shortened by config: 5 attempts within about 1 s.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { api } from '../../helpers/node-process.ts';
import { until } from '../../helpers/until.ts';
import {
  backends,
  type BotNode,
  MAX_ATTEMPTS,
  makeBot,
  post,
  type Seen,
  sleep,
  startBotNode,
  startReceiver,
  tg,
} from './webhook-fixtures.ts';

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** What the library makes of a request: its payload, or why it refused it. */
function verify(secret: string, s: Pick<Seen, 'body' | 'headers'>) {
  try {
    return { ok: true as const, payload: new Webhook(secret).verify(s.body, headerMap(s)) };
  } catch (err) {
    return { ok: false as const, error: (err as Error).message };
  }
}

function headerMap(s: Pick<Seen, 'headers'>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.headers)) if (typeof v === 'string') out[k] = v;
  return out;
}

async function setWebhook(node: BotNode, botId: number, url: string): Promise<string> {
  const r = await api(node.n.url, 'PUT', `/api/v1/bots/${botId}/webhook`, { url });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  assert.equal(Buffer.from(r.json.secret.slice(6), 'base64').length, 24);
  return r.json.secret as string;
}

async function failed(node: BotNode, botId: number) {
  const r = await api(node.n.url, 'GET', `/api/v1/bots/${botId}/deliveries?status=failed`);
  assert.equal(r.status, 200, r.text);
  return r.json.deliveries as {
    id: string;
    update_id: number;
    attempts: number;
    last_error: string;
  }[];
}

async function botEntry(node: BotNode, botId: number) {
  const r = await api(node.n.url, 'GET', '/api/v1/bots');
  return (
    r.json.bots as {
      bot_id: number;
      webhook: { disabled?: string } | null;
      pending_updates: number;
    }[]
  ).find((b) => b.bot_id === botId);
}

for (const { backend, skip } of backends(['embedded', 'bullmq', 'bullmq+worker'])) {
  describe(`Standard Webhooks (${backend})`, { skip }, () => {
    let node: BotNode;
    let rx: Receiver;

    before(async () => {
      node = await startBotNode(backend);
      rx = await startReceiver();
    });

    after(async () => {
      await node?.stop();
      await rx?.close();
    });

    it('500 three times then 200: processed once, every attempt signed, one webhook-id', async () => {
      const bot = await makeBot(node, 'flaky', ['read']);
      let calls = 0;
      const url = rx.answer('/flaky', () => ({ status: ++calls <= 3 ? 500 : 200 }));
      const secret = await setWebhook(node, bot.bot_id, url);
      // The receiver as a service writes it: verify, then process each webhook-id once.
      const processed = new Map<string, unknown>();
      const trx = await post(node, 'hello service bots');
      await until(() => rx.at('/flaky').some((s) => s.status === 200), 'a 200', 30_000);
      for (const s of rx.at('/flaky')) {
        const v = verify(secret, s);
        assert.ok(v.ok, `every attempt verifies: ${JSON.stringify(v)}`);
        if (s.status === 200 && !processed.has(s.headers['webhook-id'] as string)) {
          processed.set(s.headers['webhook-id'] as string, v.payload);
        }
      }
      await sleep(1500); // more than the whole schedule: no attempt after the 200
      const attempts = rx.at('/flaky');
      assert.equal(attempts.length, 4, 'three failures, then the delivery');
      assert.deepEqual(
        attempts.map((s) => s.status),
        [500, 500, 500, 200],
      );
      assert.equal(new Set(attempts.map((s) => s.headers['webhook-id'])).size, 1, 'one webhook-id');
      assert.equal(processed.size, 1, 'processed exactly once');
      const event = [...processed.values()][0] as {
        type: string;
        timestamp: string;
        data: { update_id: number; group_id: string; trx_id: string; message: { text: string } };
      };
      assert.equal(event.type, 'rum.message');
      assert.ok(!Number.isNaN(Date.parse(event.timestamp)));
      assert.equal(event.data.group_id, node.groupId);
      assert.equal(event.data.trx_id, trx);
      assert.equal(event.data.message.text, 'hello service bots');
      assert.equal(
        attempts[0]!.headers['webhook-id'],
        `msg_${bot.bot_id}_${Date.parse(bot.created_at).toString(36)}_${event.data.update_id}`,
      );
      // A retry is a new attempt, signed anew: its timestamp is its own, never before the last.
      const ts = attempts.map((s) => Number(s.headers['webhook-timestamp']));
      assert.deepEqual(
        [...ts].sort((a, b) => a - b),
        ts,
      );
      // Delivered: nothing pending; getUpdates refuses while the webhook is set.
      await until(
        async () => (await botEntry(node, bot.bot_id))?.pending_updates === 0,
        'none pending',
      );
      const info = await tg(node, bot.token, 'getWebhookInfo');
      assert.equal(info.json.result.pending_update_count, 0);
      assert.match(info.json.result.last_error_message, /500/);
      assert.equal((await tg(node, bot.token, 'getUpdates')).status, 409);
      // The check is real: a wrong secret, a changed body or a changed timestamp are refused.
      const s = attempts[3]!;
      const other = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;
      assert.equal(verify(other, s).ok, false);
      assert.equal(verify(secret, { ...s, body: s.body.replace('hello', 'hellO') }).ok, false);
      const later = String(Number(s.headers['webhook-timestamp']) + 1);
      assert.equal(
        verify(secret, { ...s, headers: { ...s.headers, 'webhook-timestamp': later } }).ok,
        false,
      );
      await api(node.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}`);
    });

    it('a receiver down past the schedule leaves the item failed; redelivery succeeds', async () => {
      const bot = await makeBot(node, 'down', ['read']);
      let up = false;
      const url = rx.answer('/down', () => ({ status: up ? 200 : 503 }));
      const secret = await setWebhook(node, bot.bot_id, url);
      await post(node, 'while it is down');
      const [item] = await until(async () => {
        const f = await failed(node, bot.bot_id);
        return f.length > 0 ? f : null;
      }, 'the failed list');
      assert.equal(item!.attempts, MAX_ATTEMPTS);
      assert.match(item!.last_error, /503/);
      assert.equal(rx.at('/down').length, MAX_ATTEMPTS);
      // Failed for good is not pending; the error is the bot's last one.
      await until(async () => {
        const info = (await tg(node, bot.token, 'getWebhookInfo')).json.result;
        return info.pending_update_count === 0 && /503/.test(info.last_error_message ?? '');
      }, 'getWebhookInfo after the failure');
      up = true;
      const r = await api(node.n.url, 'POST', `/api/v1/bots/${bot.bot_id}/deliveries/redeliver`, {
        ids: [item!.id],
      });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.redelivered, [item!.update_id]);
      await until(() => rx.at('/down').some((s) => s.status === 200), 'the redelivery');
      const ok = rx.at('/down').find((s) => s.status === 200)!;
      assert.ok(verify(secret, ok).ok);
      assert.equal(ok.headers['webhook-id'], rx.at('/down')[0]!.headers['webhook-id']);
      await until(async () => (await failed(node, bot.bot_id)).length === 0, 'no longer failed');

      // Two more fail; a range redelivers both, and only those not delivered.
      up = false;
      await post(node, 'range one');
      await post(node, 'range two');
      const two = await until(async () => {
        const f = await failed(node, bot.bot_id);
        return f.length === 2 ? f : null;
      }, 'two failed');
      const ids = two.map((f) => f.update_id).sort((a, b) => a - b);
      up = true;
      const before = rx.at('/down').filter((s) => s.status === 200).length;
      const range = await api(
        node.n.url,
        'POST',
        `/api/v1/bots/${bot.bot_id}/deliveries/redeliver`,
        { from_update_id: item!.update_id, to_update_id: ids[1]! },
      );
      assert.equal(range.status, 200, range.text);
      assert.deepEqual(range.json.redelivered, ids);
      assert.deepEqual(
        range.json.skipped.map((s: { update_id: number }) => s.update_id),
        [item!.update_id],
        'the one delivered before is not sent again',
      );
      await until(
        () => rx.at('/down').filter((s) => s.status === 200).length === before + 2,
        'the range',
      );
      await until(
        async () => (await botEntry(node, bot.bot_id))?.pending_updates === 0,
        'none pending',
      );
      await api(node.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}`);
    });

    it('410 disables the endpoint: shown in GET /api/v1/bots, nothing more is pushed', async () => {
      const bot = await makeBot(node, 'gone', ['read']);
      const url = rx.answer('/gone', () => ({ status: 410 }));
      await setWebhook(node, bot.bot_id, url);
      await post(node, 'to a gone endpoint');
      const entry = await until(async () => {
        const b = await botEntry(node, bot.bot_id);
        return b?.webhook?.disabled ? b : null;
      }, 'the webhook disabled');
      assert.match(entry.webhook!.disabled!, /410/);
      assert.equal(rx.at('/gone').length, 1, 'a 410 is not retried');
      await post(node, 'after it is gone');
      await sleep(1000);
      assert.equal(rx.at('/gone').length, 1, 'nothing is pushed to a disabled endpoint');
      // Its updates wait in the log: getUpdates serves them now.
      const got = await tg(node, bot.token, 'getUpdates');
      assert.equal(got.status, 200, got.text);
      assert.equal(got.json.result.length, 2);
      await api(node.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}`);
    });

    it('DELETE stops the pushes: a queued retry is not sent', async () => {
      const bot = await makeBot(node, 'deleted', ['read']);
      const url = rx.answer('/deleted', () => ({ status: 503, headers: { 'retry-after': '1' } }));
      await setWebhook(node, bot.bot_id, url);
      await post(node, 'then deleted');
      await until(() => rx.at('/deleted').length === 1, 'the first attempt');
      const del = await api(node.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}/webhook`);
      assert.equal(del.status, 200, del.text);
      await sleep(2500); // past the Retry-After
      assert.equal(rx.at('/deleted').length, 1, 'no attempt after the delete');
      const got = await tg(node, bot.token, 'getUpdates');
      assert.equal(got.json.result.length, 1, 'the update is still the bot’s');
      await api(node.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}`);
    });

    it('what is pending when the webhook is set, and across a kill -9, is delivered once', async () => {
      const bot = await makeBot(node, 'later', ['read']);
      await post(node, 'before the webhook');
      await until(
        async () => (await botEntry(node, bot.bot_id))?.pending_updates === 1,
        'the update logged',
      );
      const url = rx.answer('/later', () => ({ status: 200 }));
      const secret = await setWebhook(node, bot.bot_id, url);
      await until(() => rx.at('/later').length === 1, 'the pending update pushed');
      await post(node, 'just before the kill');
      await node.restart('SIGKILL');
      await post(node, 'after the restart');
      await until(
        () => new Set(rx.at('/later').map((s) => s.headers['webhook-id'])).size === 3,
        'all three',
      );
      await sleep(1000);
      const texts = rx
        .at('/later')
        .map((s) => verify(secret, s))
        .map((v) =>
          v.ok ? (v.payload as { data: { message: { text: string } } }).data.message.text : v.error,
        );
      assert.deepEqual([...new Set(texts)].sort(), [
        'after the restart',
        'before the webhook',
        'just before the kill',
      ]);
      await api(node.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}`);
    });
  });
}
