// A bot's Redis streams through a Redis outage: a redis-server of the test's own (AOF, fsync
// always) is killed with SIGKILL while posts keep being committed, then started again. Every
// update reaches the bot's stream once, in order, and the gateway reads requests again.
// Without /usr/bin/redis-server the test is skipped, except under CI=true, where it must run.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { groupPosts, replies, request, streamUpdates } from '../../helpers/bot-streams.ts';
import { hasRedisServer, type OwnRedis, startOwnRedis } from '../../helpers/bullmq-redis.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  tempDir,
} from '../../helpers/node-process.ts';
import { until } from '../../helpers/until.ts';

const skip =
  !hasRedisServer() && process.env.CI !== 'true'
    ? 'no /usr/bin/redis-server (install redis-server; under CI=true this fails instead)'
    : false;

describe("a bot's Redis streams through a Redis outage", { skip }, () => {
  let own: OwnRedis;
  let redis: Redis;
  let n: NodeProcess;
  let groupId: string;
  let bot: { bot_id: number; chats: { chat_id: number }[] };
  const key = (what: string) => `rum:bot:${bot.bot_id}:${what}`;

  async function post(content: string): Promise<void> {
    const res = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
      data: { type: 'Note', content },
    });
    assert.equal(res.status, 200, res.text);
  }

  const texts = async () =>
    (await streamUpdates(redis, key('updates')))
      .filter((u) => u.kind === 'message')
      .map((u) => u.update.message.text as string);

  before(async () => {
    own = await startOwnRedis({ appendfsync: 'always' });
    // The test's own client gives up at once while Redis is down (the node's waits).
    redis = new Redis(own.url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    const dir = tempDir('rum-bot-outage-');
    const config = join(dir, 'test-config.json');
    writeFileSync(config, JSON.stringify({ limits: { deliveryBackoffBaseMs: 200 } }));
    n = await startNodeProcess({
      dir,
      args: ['--redisurl', own.url, '--loglevel', 'debug', '--logfile', '/tmp/outage-node.log'],
    });
    groupId = (await createPublicGroup(n.url, 'bot-outage')).group_id;
    const put = await api(n.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
      handle: 'botoutage',
      bots: true,
    });
    assert.equal(put.status, 200, put.text);
    const made = await api(n.url, 'POST', '/api/v1/bots', { name: 'steady', group_ids: [groupId] });
    assert.equal(made.status, 201, made.text);
    bot = made.json;
    const on = await api(n.url, 'PUT', `/api/v1/bots/${bot.bot_id}/redis`, { enabled: true });
    assert.equal(on.status, 200, on.text);
  });

  after(async () => {
    if (n) {
      // SIGTERM, then SIGKILL: a node stopped within moments of its Redis coming back waits
      // on BullMQ's worker close, which does not end (src/queue/bullmq.ts; not the bot
      // streams, which stop at once). The streams' own guarantees hold across a kill -9.
      const stopped = n.stop();
      const timer = setTimeout(() => n.child.kill('SIGKILL'), 5000);
      await stopped;
      clearTimeout(timer);
    }
    redis?.disconnect();
    await own?.cleanup();
  });

  it('loses no update and adds none twice, and serves requests again', async () => {
    const before = ['before 1', 'before 2', 'before 3'];
    for (const t of before) await post(t);
    await until(async () => (await texts()).length === 3, 'the first updates on the stream');

    await own.kill();
    const during = ['during 1', 'during 2', 'during 3'];
    for (const t of during) await post(t);
    // Committed (and logged for the bot) while Redis is down.
    await until(async () => {
      const p = (await groupPosts(n.url, groupId)).map((x) => x.content);
      return during.every((t) => p.includes(t));
    }, 'the posts made during the outage committed');

    await own.restart();
    const all = await until(async () => {
      try {
        const t = await texts();
        return t.length >= 6 && t;
      } catch {
        return null; // the test's client reconnecting
      }
    }, 'every update on the stream after the outage');
    assert.deepEqual(all, [...before, ...during]);
    const updates = await streamUpdates(redis, key('updates'));
    const ids = updates.map((u) => u.updateId);
    assert.deepEqual(
      ids,
      ids.map((_, i) => i + 1),
      'the log in order, each update once',
    );
    for (const u of updates) assert.equal(u.id, `${u.updateId}-0`);
    // The bot's consumer group (kept in the AOF) reads them all.
    const read = (await redis.call(
      'XREADGROUP',
      'GROUP',
      'bot',
      'c1',
      'COUNT',
      '100',
      'STREAMS',
      key('updates'),
      '>',
    )) as unknown[];
    const entries = (Array.isArray(read[0]) ? (read[0] as unknown[])[1] : read[1]) as unknown[];
    assert.equal(entries.length, updates.length);

    // The gateway reads requests again.
    await request(redis, key('requests'), {
      ref: 'after the outage',
      method: 'sendMessage',
      params: { chat_id: bot.chats[0]!.chat_id, text: 'back' },
    });
    const [reply] = await replies(redis, key('replies'), 'after the outage');
    assert.equal(reply!.ok, 'true', JSON.stringify(reply));
  });
});
