// Bots on Redis streams (bridges/bots/redis.ts), on a real `rum fullnode` process with
// --redisurl: the shared Redis (127.0.0.1:6379 or REDIS_URL), keys under a prefix of this run.
// A bot consumer that dies after reading and before XACK has its entry taken over (XAUTOCLAIM)
// and handled once; posts through the request stream are committed, signed by the bot's key,
// with replies correlated by ref; a repeated ref posts nothing; a gateway killed with requests
// read and not acked runs them after its restart, and a rewound cursor adds nothing twice.
// Without Redis the test is skipped, except under CI=true, where it must run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import {
  groupPosts,
  replies,
  request,
  streamUpdates,
  toUpdate,
} from '../../helpers/bot-streams.ts';
import { dropKeys, REDIS_URL, redisUnreachable, runPrefix } from '../../helpers/bullmq-redis.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../../helpers/node-process.ts';
import { until } from '../../helpers/until.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const unreachable = await redisUnreachable();
if (unreachable && process.env.CI === 'true') {
  throw new Error(`CI=true: the bot stream tests need Redis at ${REDIS_URL}: ${unreachable}`);
}

interface Bot {
  bot_id: number;
  token: string;
  pubkey?: string | null;
  chats: { group_id: string; chat_id: number }[];
}

describe(
  'bot gateway: Redis streams',
  { skip: unreachable ? `no Redis at ${REDIS_URL}: ${unreachable}` : false },
  () => {
    const run = runPrefix('botstreams');
    const prefix = `${run}:bot`;
    const queueName = `${run}-q`;
    let dir: string;
    let args: string[];
    let n: NodeProcess;
    let redis: Redis;
    let groupId: string;

    const keys = (botId: number) => ({
      updates: `${prefix}:${botId}:updates`,
      requests: `${prefix}:${botId}:requests`,
      replies: `${prefix}:${botId}:replies`,
    });

    /** A bot of the group, on Redis streams. */
    async function makeBot(name: string): Promise<Bot> {
      const made = await api(n.url, 'POST', '/api/v1/bots', { name, group_ids: [groupId] });
      assert.equal(made.status, 201, made.text);
      const bot = made.json as Bot;
      const on = await api(n.url, 'PUT', `/api/v1/bots/${bot.bot_id}/redis`, { enabled: true });
      assert.equal(on.status, 200, on.text);
      assert.equal(on.json.enabled, true);
      assert.deepEqual(
        { updates: on.json.updates, requests: on.json.requests, replies: on.json.replies },
        keys(bot.bot_id),
      );
      assert.equal(on.json.consumer_group, 'bot');
      return bot;
    }

    async function post(content: string): Promise<void> {
      const res = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
        data: { type: 'Note', content },
      });
      assert.equal(res.status, 200, res.text);
    }

    before(async () => {
      redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
      dir = tempDir('rum-botstreams-');
      const config = join(dir, 'test-config.json');
      writeFileSync(config, JSON.stringify({ botStreamPrefix: prefix }));
      args = ['--redisurl', REDIS_URL, '--queuename', queueName, '--config', config];
      n = await startNodeProcess({ dir, args });
      groupId = (await createPublicGroup(n.url, 'bot-streams')).group_id;
      const put = await api(n.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
        handle: 'botstreams',
        bots: true,
      });
      assert.equal(put.status, 200, put.text);
    });

    after(async () => {
      await n?.stop();
      if (redis) {
        await dropKeys(`${run}*`);
        await dropKeys(`rum:${queueName}*`);
        redis.disconnect();
      }
    });

    it('a consumer killed after reading and before XACK: the entry is reclaimed and handled once', async () => {
      const bot = await makeBot('reader');
      const { updates } = keys(bot.bot_id);
      // A bot process that reads one entry in the group `bot` and dies before handling it.
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { Redis } from 'ioredis';
           const r = new Redis(process.env.URL);
           const res = await r.call('XREADGROUP', 'GROUP', 'bot', 'dying', 'COUNT', '1',
             'BLOCK', '30000', 'STREAMS', process.env.KEY, '>');
           // RESP2 [[key, entries]], or RESP3's map as [key, entries].
           const entries = Array.isArray(res[0]) ? res[0][1] : res[1];
           process.stdout.write(JSON.stringify(entries[0]) + '\\n');
           setInterval(() => {}, 1000);`,
        ],
        { cwd: ROOT, env: { ...process.env, URL: REDIS_URL, KEY: updates }, stdio: 'pipe' },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      await post('for the dying consumer');
      const read = await until(
        () => (out.includes('\n') ? (JSON.parse(out) as [string, string[]]) : null),
        `the consumer's read (stderr: ${err})`,
      );
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
      const entry = toUpdate(read);
      assert.equal(entry.id, `${entry.updateId}-0`, 'entry ids are the update ids');
      assert.equal(entry.kind, 'message');
      assert.equal(entry.update.message.text, 'for the dying consumer');
      assert.equal(entry.update.update_id, entry.updateId);
      const pending = (await redis.xpending(updates, 'bot')) as [number, string, string, unknown];
      assert.equal(pending[0], 1, 'read, never acked');

      // Another consumer of the group takes over what stalled, handles it and acks it.
      const handled: number[] = [];
      await until(async () => {
        const [, claimed] = (await redis.xautoclaim(updates, 'bot', 'survivor', 200, '0-0')) as [
          string,
          [string, string[]][],
        ];
        for (const e of claimed) {
          handled.push(toUpdate(e).updateId);
          await redis.xack(updates, 'bot', e[0]);
        }
        return handled.length > 0;
      }, 'the stalled entry reclaimed');
      assert.deepEqual(handled, [entry.updateId]);
      const [, again] = (await redis.xautoclaim(updates, 'bot', 'survivor', 0, '0-0')) as [
        string,
        unknown[],
      ];
      assert.deepEqual(again, [], 'nothing left to reclaim');
      const fresh = await redis.call(
        'XREADGROUP',
        'GROUP',
        'bot',
        'survivor',
        'COUNT',
        '10',
        'STREAMS',
        updates,
        '>',
      );
      assert.equal(fresh, null, 'nothing new to read: the entry came once');
      assert.equal(((await redis.xpending(updates, 'bot')) as [number])[0], 0);
    });

    it('posts through the request stream are committed, signed by the bot, and replies carry the ref', async () => {
      const bot = await makeBot('poster');
      const k = keys(bot.bot_id);
      const chatId = bot.chats[0]!.chat_id;
      await request(redis, k.requests, {
        ref: 'r1',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'from redis' },
      });
      const [reply] = await replies(redis, k.replies, 'r1');
      assert.equal(reply!.ok, 'true', JSON.stringify(reply));
      const result = JSON.parse(reply!.result!);
      assert.equal(result.chat.id, chatId);
      assert.equal(result.from.id, bot.bot_id);
      assert.equal(result.text, 'from redis');
      const posted = await until(
        async () => (await groupPosts(n.url, groupId)).find((p) => p.content === 'from redis'),
        'the post committed',
      );
      // The bot's key (made at its first post) signed it, not the node's.
      const listed = await api(n.url, 'GET', '/api/v1/bots');
      const pubkey = (listed.json.bots as Bot[]).find((b) => b.bot_id === bot.bot_id)!.pubkey;
      assert.ok(pubkey, 'the bot has a key');
      assert.equal(posted.sender, pubkey, "signed by the bot's own key");
      const group = await api(n.url, 'GET', `/api/v1/group/${groupId}`);
      assert.notEqual(posted.sender, group.json.user_pubkey);
      // The send's outcome comes on the updates stream (on by default for Redis bots).
      const outcome = await until(
        async () =>
          (await streamUpdates(redis, k.updates)).find((u) => u.kind === 'rum_send_result'),
        'the outcome on the updates stream',
      );
      assert.equal(outcome.trxId, posted.trxId);
      assert.equal(outcome.update.rum_send_result.status, 'committed');
      assert.equal(outcome.update.rum_send_result.message_id, result.message_id);

      // The same ref again: the first answer, no second post; with other parameters, 422 and
      // no post (a ref is the request's idempotency key).
      await request(redis, k.requests, {
        ref: 'r1',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'from redis' },
      });
      const twice = await replies(redis, k.replies, 'r1', 2);
      assert.deepEqual(JSON.parse(twice[1]!.result!), result);
      await request(redis, k.requests, {
        ref: 'r1',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'from redis, again' },
      });
      const thrice = await replies(redis, k.replies, 'r1', 3);
      assert.equal(thrice[2]!.ok, 'false');
      assert.equal(thrice[2]!.error_code, '422');
      // Requests run in order: once r2 is committed, a second post of r1 would be too.
      await request(redis, k.requests, {
        ref: 'r2',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'second post' },
      });
      assert.equal((await replies(redis, k.replies, 'r2'))[0]!.ok, 'true');
      const all = await until(async () => {
        const p = await groupPosts(n.url, groupId);
        return p.some((x) => x.content === 'second post') && p;
      }, 'r2 committed');
      assert.equal(all.filter((p) => p.content === 'from redis').length, 1);
      assert.ok(!all.some((p) => p.content === 'from redis, again'));

      // Errors are Telegram's, on the reply_to stream the request named.
      const mine = `${k.replies}:mine`;
      await request(redis, k.requests, {
        ref: 'r3',
        method: 'sendMessage',
        params: { chat_id: -42, text: 'nowhere' },
        replyTo: mine,
      });
      const [bad] = await replies(redis, mine, 'r3');
      assert.equal(bad!.ok, 'false');
      assert.equal(bad!.error_code, '400');
      assert.match(bad!.description!, /chat not found/);
      // A reply_to outside the bot's keys is refused (answered on the bot's own replies).
      await request(redis, k.requests, {
        ref: 'r4',
        method: 'getMe',
        replyTo: 'bull:somebody-else',
      });
      const [outside] = await replies(redis, k.replies, 'r4');
      assert.equal(outside!.ok, 'false');
      assert.match(outside!.description!, /reply_to/);
      assert.equal(await redis.exists('bull:somebody-else'), 0);
      // The gateway acks a request after its reply is written: the last ack may follow it.
      await waitFor(
        async () =>
          ((await redis.xpending(k.requests, 'rum-gateway')) as [number])[0] === 0 || undefined,
        'the last request acked',
      );
      assert.equal(
        ((await redis.xpending(k.requests, 'rum-gateway')) as [number])[0],
        0,
        'every request acked',
      );
    });

    it('a gateway killed with requests read and unacked runs them after restart, once; a rewound cursor re-adds nothing', async () => {
      const bot = await makeBot('survivor');
      const k = keys(bot.bot_id);
      const chatId = bot.chats[0]!.chat_id;
      await request(redis, k.requests, {
        ref: 'once',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'before the crash' },
      });
      const [first] = await replies(redis, k.replies, 'once');
      assert.equal(first!.ok, 'true');
      await post('seen before the crash');
      const before = await until(async () => {
        const u = await streamUpdates(redis, k.updates);
        return u.some((x) => x.update.message?.text === 'seen before the crash') && u;
      }, 'the update on the stream');

      assert.equal(await n.stop('SIGKILL'), 'SIGKILL');
      // As the gateway left them when it died: read into its pending list, not acked.
      await request(redis, k.requests, {
        ref: 'once',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'before the crash' },
      });
      await request(redis, k.requests, {
        ref: 'new',
        method: 'sendMessage',
        params: { chat_id: chatId, text: 'after the restart' },
      });
      const taken = await redis.call(
        'XREADGROUP',
        'GROUP',
        'rum-gateway',
        'gateway',
        'COUNT',
        '10',
        'STREAMS',
        k.requests,
        '>',
      );
      assert.ok(taken, 'the gateway consumer holds them');
      assert.equal(((await redis.xpending(k.requests, 'rum-gateway')) as [number])[0], 2);
      // As if it died after adding updates and before recording it: the cursor back to 0.
      const db = new Database(join(dir, 'data', 'peer', 'rum.db'));
      db.prepare('UPDATE bots SET redis_pushed = 0 WHERE bot_id = ?').run(bot.bot_id);
      db.close();

      n = await startNodeProcess({ dir, args });
      const onceAgain = await replies(redis, k.replies, 'once', 2);
      assert.deepEqual(JSON.parse(onceAgain[1]!.result!), JSON.parse(first!.result!));
      const [fresh] = await replies(redis, k.replies, 'new');
      assert.equal(fresh!.ok, 'true', JSON.stringify(fresh));
      await post('seen after the restart');
      const afterRestart = await until(async () => {
        const u = await streamUpdates(redis, k.updates);
        const outcomes = u.filter((x) => x.kind === 'rum_send_result');
        return u.some((x) => x.update.message?.text === 'seen after the restart') &&
          outcomes.length >= 2
          ? u
          : null;
      }, 'the new updates on the stream');
      const posts = await groupPosts(n.url, groupId);
      assert.equal(posts.filter((p) => p.content === 'before the crash').length, 1);
      assert.equal(posts.filter((p) => p.content === 'after the restart').length, 1);
      // Every update once, in order, none lost: the log's ids 1..N, each entry `<id>-0`.
      const ids = afterRestart.map((u) => u.updateId);
      assert.deepEqual(
        ids,
        ids.map((_, i) => i + 1),
      );
      for (const u of afterRestart) assert.equal(u.id, `${u.updateId}-0`);
      assert.deepEqual(
        afterRestart.slice(0, before.length).map((u) => u.id),
        before.map((u) => u.id),
      );
      assert.equal(((await redis.xpending(k.requests, 'rum-gateway')) as [number])[0], 0);
    });
  },
);
