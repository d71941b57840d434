// The Telegram Bot API subset of the bot gateway at its edges, over HTTP on a real `rum fullnode`
// process: getUpdates (offset, limit, negative offset, allowed_updates, 409 between two pollers,
// a long poll woken by a commit), how RUM edits, likes, deletions and replies reach a bot, what a
// bot may not change, reactions, parse modes and what never reaches the chain, idempotent and
// retried sends, rate limits (on a second node with small ones), the encodings of parameters, a
// revoked token during a long poll, and a bot the group's owner put on the deny list.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../../helpers/node-process.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers.
type AnyJson = any;

interface MadeBot {
  bot_id: number;
  token: string;
  chat: number;
}

/** One node with an exposed group, and what the tests do with it. */
class Node {
  n!: NodeProcess;
  groupId = '';
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }

  async start(args: string[] = []) {
    this.n = await startNodeProcess({ args });
    this.groupId = (await createPublicGroup(this.n.url, this.name)).group_id;
    const put = await api(this.n.url, 'PUT', `/api/v1/group/${this.groupId}/bridges`, {
      handle: this.name.replaceAll('-', '_'),
      bots: true,
    });
    assert.equal(put.status, 200, put.text);
  }

  async bot(name: string, scopes = ['read', 'post']): Promise<MadeBot> {
    const made = await api(this.n.url, 'POST', '/api/v1/bots', {
      name,
      group_ids: [this.groupId],
      scopes,
    });
    assert.equal(made.status, 201, made.text);
    return { bot_id: made.json.bot_id, token: made.json.token, chat: made.json.chats[0].chat_id };
  }

  /** A Telegram call on the gateway, as JSON. */
  tg(token: string, method: string, params: Record<string, unknown> = {}, headers = {}) {
    return api(this.n.gatewayUrl, 'POST', `/bot${token}/${method}`, params, headers);
  }

  /** A post of the node's own user; answers its trx id. */
  async post(data: Record<string, unknown>): Promise<string> {
    const res = await api(this.n.url, 'POST', `/api/v1/group/${this.groupId}/content`, { data });
    assert.equal(res.status, 200, res.text);
    return res.json.trx_id;
  }

  note(content: string, inReplyTo?: string): Promise<string> {
    return this.post({
      type: 'Create',
      object: {
        type: 'Note',
        content,
        ...(inReplyTo ? { inReplyTo: { type: 'Note', id: inReplyTo } } : {}),
      },
    });
  }

  /** The group's committed posts, oldest first: trx id, sender and payload. */
  async committed(): Promise<{ trxId: string; sender: string; data: AnyJson }[]> {
    const res = await api(
      this.n.url,
      'GET',
      `/app/api/v1/group/${this.groupId}/content?num=1000&reverse=false`,
    );
    assert.equal(res.status, 200, res.text);
    return (res.json as { TrxId: string; Data: string; SenderPubkey: string }[]).map((t) => ({
      trxId: t.TrxId,
      sender: t.SenderPubkey,
      data: JSON.parse(Buffer.from(t.Data, 'base64').toString('utf8')),
    }));
  }

  async waitCommitted(trxId: string) {
    return waitFor(
      async () => (await this.committed()).find((p) => p.trxId === trxId),
      `trx ${trxId} to be committed`,
    );
  }

  /**
   * Everything admitted before now is committed: a post made now is, and trxs are put in blocks
   * in the order they were admitted. Answers the group's committed posts then.
   */
  async settled() {
    await this.waitCommitted(await this.note(`marker ${Math.random()}`));
    return this.committed();
  }

  /** The bot's RUM key, as the admin API tells it. */
  async botKey(botId: number): Promise<string | null> {
    const bots = (await api(this.n.url, 'GET', '/api/v1/bots')).json.bots as AnyJson[];
    return bots.find((b) => b.bot_id === botId)?.pubkey ?? null;
  }
}

/** A long-polling client that keeps its offset, as the libraries do. */
class Poller {
  offset = 0;
  readonly node: Node;
  readonly token: string;
  constructor(node: Node, token: string) {
    this.node = node;
    this.token = token;
  }

  async poll(params: Record<string, unknown> = {}): Promise<AnyJson[]> {
    const res = await this.node.tg(this.token, 'getUpdates', {
      offset: this.offset,
      timeout: 2,
      ...params,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.ok, true);
    for (const u of res.json.result) this.offset = u.update_id + 1;
    return res.json.result;
  }

  /** Updates polled but not looked at yet (after the one `until` answered). */
  private unread: AnyJson[] = [];

  /** Polls until an update matches; answers it, and every update seen on the way. */
  async until(pred: (u: AnyJson) => boolean, what: string) {
    const seen: AnyJson[] = [];
    for (let i = 0; i < 30; i++) {
      const batch = this.unread.length > 0 ? this.unread : await this.poll();
      this.unread = [];
      for (const [j, u] of batch.entries()) {
        seen.push(u);
        if (pred(u)) {
          this.unread = batch.slice(j + 1);
          return { update: u, seen };
        }
      }
    }
    throw new Error(`no update ${what}; saw ${JSON.stringify(seen)}`);
  }

  /** The message update of a RUM post, by its text. */
  async message(text: string) {
    return (await this.until((u) => u.message?.text === text, `with the message "${text}"`)).update
      .message;
  }

  /** Acknowledges everything logged so far. */
  async drain() {
    while ((await this.poll({ timeout: 0 })).length > 0) {}
  }
}

const main = new Node('bot-edges');
const cfgDir = tempDir('rum-bots-cfg-');

before(async () => {
  await main.start(['--allowprivateaddress', 'true']);
});

after(async () => {
  await main.n?.stop();
  if (main.n) rmSync(main.n.dir, { recursive: true, force: true });
  rmSync(cfgDir, { recursive: true, force: true });
});

describe('bot gateway: getUpdates', () => {
  it('offset acknowledges, limit caps, a negative offset keeps the last ones', async () => {
    const bot = await main.bot('offsets');
    const p = new Poller(main, bot.token);
    for (const t of ['one', 'two', 'three']) await main.note(t);
    // Without an offset nothing is acknowledged: the three come again until they are.
    const three = await waitFor(async () => {
      const r = await main.tg(bot.token, 'getUpdates', { timeout: 1 });
      return r.json.result.length >= 3 && r.json.result;
    }, 'three updates');
    assert.deepEqual(
      three.map((u: AnyJson) => u.message.text),
      ['one', 'two', 'three'],
    );
    const [u1, u2, u3] = three.map((u: AnyJson) => u.update_id as number);
    assert.equal(u2, u1! + 1);
    assert.equal(u3, u2! + 1);

    const limited = await main.tg(bot.token, 'getUpdates', { limit: 2 });
    assert.deepEqual(
      limited.json.result.map((u: AnyJson) => u.update_id),
      [u1, u2],
    );
    // An offset above an update's id confirms it, for good: a lower offset later brings it
    // back no more.
    const after1 = await main.tg(bot.token, 'getUpdates', { offset: u2 });
    assert.deepEqual(
      after1.json.result.map((u: AnyJson) => u.update_id),
      [u2, u3],
    );
    const again = await main.tg(bot.token, 'getUpdates', { offset: u1 });
    assert.deepEqual(
      again.json.result.map((u: AnyJson) => u.update_id),
      [u2, u3],
    );
    // -1: only the last one; the ones before it are forgotten.
    const last = await main.tg(bot.token, 'getUpdates', { offset: -1 });
    assert.deepEqual(
      last.json.result.map((u: AnyJson) => u.update_id),
      [u3],
    );
    assert.deepEqual((await main.tg(bot.token, 'getUpdates')).json.result.length, 1);
    const done = await main.tg(bot.token, 'getUpdates', { offset: u3! + 1 });
    assert.deepEqual(done.json.result, []);
    const info = await main.tg(bot.token, 'getWebhookInfo');
    assert.equal(info.json.result.pending_update_count, 0);
    p.offset = u3! + 1;
    await p.drain();
  });

  it('message_reaction only when allowed_updates asks for it', async () => {
    const bot = await main.bot('reactions');
    const p = new Poller(main, bot.token);
    const liked = await main.note('like me');
    await main.post({ type: 'Like', object: { type: 'Note', id: liked } });
    await main.note('after the like');
    const { seen } = await p.until((u) => u.message?.text === 'after the like', 'after a like');
    assert.ok(
      seen.every((u) => !('message_reaction' in u)),
      'no reaction by default (Telegram leaves message_reaction out)',
    );
    const likedMessage = seen.find((u) => u.message?.text === 'like me').message;

    await p.poll({
      timeout: 0,
      allowed_updates: JSON.stringify(['message', 'message_reaction']),
    });
    await main.post({ type: 'Like', object: { type: 'Note', id: liked } });
    const disliked = await main.note('dislike me');
    await main.post({ type: 'Dislike', object: { type: 'Note', id: disliked } });
    const { seen: later } = await p.until(
      (u) => u.message_reaction?.new_reaction?.[0]?.emoji === '👎',
      'with a 👎',
    );
    const reactions = later.filter((u) => u.message_reaction).map((u) => u.message_reaction);
    assert.equal(reactions.length, 2);
    assert.equal(reactions[0].message_id, likedMessage.message_id);
    assert.equal(reactions[0].chat.id, bot.chat);
    assert.deepEqual(reactions[0].new_reaction, [{ type: 'emoji', emoji: '👍' }]);
    assert.equal(reactions[0].user.is_bot, false);
    const dislikedMessage = later.find((u) => u.message?.text === 'dislike me').message;
    assert.equal(reactions[1].message_id, dislikedMessage.message_id);
    const info = await main.tg(bot.token, 'getWebhookInfo');
    assert.deepEqual(info.json.result.allowed_updates, ['message', 'message_reaction']);
  });

  it('a second poller ends the first with 409', async () => {
    const bot = await main.bot('twice');
    await new Poller(main, bot.token).drain();
    const first = main.tg(bot.token, 'getUpdates', { timeout: 20 });
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    const second = main.tg(bot.token, 'getUpdates', { timeout: 1 });
    const one = await first;
    assert.ok(Date.now() - t < 1000, 'the first answers at once');
    assert.equal(one.status, 409, one.text);
    assert.equal(one.json.ok, false);
    assert.equal(one.json.error_code, 409);
    assert.match(one.json.description, /terminated by other getUpdates request/);
    const two = await second;
    assert.equal(two.status, 200, two.text);
    assert.deepEqual(two.json.result, []);
  });

  it('a long poll wakes when a post is committed', async () => {
    const bot = await main.bot('waker');
    const p = new Poller(main, bot.token);
    await p.drain();
    const t = Date.now();
    const polling = p.poll({ timeout: 20 });
    await new Promise((r) => setTimeout(r, 200));
    await main.note('wake up');
    const got = await polling;
    assert.ok(Date.now() - t < 5000, `answered in ${Date.now() - t} ms`);
    assert.deepEqual(
      got.map((u) => u.message?.text),
      ['wake up'],
    );
  });
});

describe('bot gateway: RUM activity as Telegram updates', () => {
  it('an edit is an edited_message, a deletion a deleted_business_messages, a reply has reply_to_message', async () => {
    const bot = await main.bot('shapes');
    const p = new Poller(main, bot.token);
    const first = await main.note('first version');
    const m = await p.message('first version');
    assert.equal(m.chat.id, bot.chat);
    assert.equal(m.chat.type, 'supergroup');
    assert.equal(m.from.is_bot, false);

    await main.post({ type: 'Update', object: { type: 'Note', id: first, content: 'second' } });
    const edit = (await p.until((u) => u.edited_message, 'edited_message')).update.edited_message;
    assert.equal(edit.message_id, m.message_id);
    assert.equal(edit.text, 'second');
    assert.equal(edit.from.id, m.from.id);
    assert.ok(edit.edit_date >= edit.date);

    await main.note('a reply', first);
    const reply = await p.message('a reply');
    assert.equal(reply.reply_to_message.message_id, m.message_id);

    await main.post({ type: 'Delete', object: { type: 'Note', id: first } });
    const del = (await p.until((u) => u.deleted_business_messages, 'deleted_business_messages'))
      .update.deleted_business_messages;
    assert.deepEqual(del.message_ids, [m.message_id]);
    assert.equal(del.chat.id, bot.chat);
  });
});

describe('bot gateway: what a bot sends', () => {
  it("editMessageText and deleteMessage of another author's message are refused", async () => {
    const bot = await main.bot('meddler');
    const other = await main.bot('other');
    const p = new Poller(main, bot.token);
    await main.note('not yours');
    const m = await p.message('not yours');
    const sent = await main.tg(other.token, 'sendMessage', { chat_id: other.chat, text: 'mine' });
    assert.equal(sent.status, 200, sent.text);
    const before = (await main.settled()).length;
    for (const id of [m.message_id, sent.json.result.message_id]) {
      const edit = await main.tg(bot.token, 'editMessageText', {
        chat_id: bot.chat,
        message_id: id,
        text: 'changed',
      });
      assert.equal(edit.status, 400, edit.text);
      assert.match(edit.json.description, /message to edit can't be changed/);
      const del = await main.tg(bot.token, 'deleteMessage', { chat_id: bot.chat, message_id: id });
      assert.equal(del.status, 400, del.text);
      assert.match(del.json.description, /message to delete can't be changed/);
    }
    const unknown = await main.tg(bot.token, 'editMessageText', {
      chat_id: bot.chat,
      message_id: 999_999,
      text: 'x',
    });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.description, /message to edit not found/);
    assert.equal((await main.settled()).length, before + 1, 'only the marker was posted');

    // Its own message: edited and deleted on chain.
    const own = await main.tg(bot.token, 'sendMessage', { chat_id: bot.chat, text: 'draft' });
    const ownId = own.json.result.message_id;
    const edited = await main.tg(bot.token, 'editMessageText', {
      chat_id: bot.chat,
      message_id: ownId,
      text: 'final',
    });
    assert.equal(edited.status, 200, edited.text);
    assert.equal(edited.json.result.text, 'final');
    const deleted = await main.tg(bot.token, 'deleteMessage', {
      chat_id: bot.chat,
      message_id: ownId,
    });
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal(deleted.json.result, true);
    // The Note, its Update and its Delete, all by the bot's key, on the one trx.
    const key = await main.botKey(bot.bot_id);
    const mine = (await main.settled()).filter((x) => x.sender === key);
    const update = mine.find((x) => x.data.type === 'Update');
    const removal = mine.find((x) => x.data.type === 'Delete');
    assert.equal(update?.data.object.content, 'final');
    assert.ok(removal);
    assert.equal(removal.data.object.id, update.data.object.id);
  });

  it('setMessageReaction commits a Like (👎 a Dislike, none an Undo), signed by the bot', async () => {
    const bot = await main.bot('reactor');
    const p = new Poller(main, bot.token);
    const trx = await main.note('react to me');
    const m = await p.message('react to me');
    const like = await main.tg(bot.token, 'setMessageReaction', {
      chat_id: bot.chat,
      message_id: m.message_id,
      reaction: [{ type: 'emoji', emoji: '👍' }],
    });
    assert.equal(like.status, 200, like.text);
    assert.equal(like.json.result, true);
    let all = await main.settled();
    const liked = all.find((x) => x.data.type === 'Like' && x.data.object.id === trx);
    assert.ok(liked, 'a Like of the post is committed');
    assert.equal(liked.sender, await main.botKey(bot.bot_id));

    await main.tg(bot.token, 'setMessageReaction', {
      chat_id: bot.chat,
      message_id: m.message_id,
      reaction: JSON.stringify([{ type: 'emoji', emoji: '👎' }]),
    });
    await main.tg(bot.token, 'setMessageReaction', {
      chat_id: bot.chat,
      message_id: m.message_id,
      reaction: [],
    });
    all = await main.settled();
    const disliked = all.find((x) => x.data.type === 'Dislike' && x.data.object.id === trx);
    assert.ok(disliked, 'a Dislike of the post is committed');
    assert.ok(
      all.some((x) => x.data.type === 'Undo' && x.data.object.id === disliked.trxId),
      'an empty reaction takes back the last one',
    );
    const bad = await main.tg(bot.token, 'setMessageReaction', {
      chat_id: bot.chat,
      message_id: m.message_id,
      reaction: [{ type: 'custom_emoji', custom_emoji_id: '1' }],
    });
    assert.equal(bad.status, 400);
  });

  it('parse_mode HTML and MarkdownV2 commit sanitized HTML; a script never reaches the chain', async () => {
    const bot = await main.bot('styled');
    const html = await main.tg(bot.token, 'sendMessage', {
      chat_id: bot.chat,
      text: '<b>bold</b> <i>it</i> <script>alert(1)</script><a href="javascript:alert(2)">x</a> <a href="https://rum.example/">ok</a> <img src=x onerror=alert(3)>',
      parse_mode: 'HTML',
    });
    assert.equal(html.status, 200, html.text);
    const md = await main.tg(bot.token, 'sendMessage', {
      chat_id: bot.chat,
      text: '*bold* _it_ __under__ ~gone~ ||secret|| `<script>alert(4)</script>` [link](https://rum.example/a) \\<script\\>',
      parse_mode: 'MarkdownV2',
    });
    assert.equal(md.status, 200, md.text);
    const badMd = await main.tg(bot.token, 'sendMessage', {
      chat_id: bot.chat,
      text: 'unescaped.dot',
      parse_mode: 'MarkdownV2',
    });
    assert.equal(badMd.status, 400);
    assert.match(badMd.json.description, /can't parse entities/);

    const all = await main.settled();
    const key = await main.botKey(bot.bot_id);
    const mine = all.filter((x) => x.sender === key).map((x) => x.data.object ?? x.data);
    assert.equal(mine.length, 2);
    for (const o of mine) {
      assert.equal(o.mediaType, 'text/html');
      assert.doesNotMatch(o.content, /<script|javascript:|onerror|<img/i);
    }
    const [h, m] = mine.map((o) => o.content as string);
    assert.match(h!, /<b>bold<\/b>/);
    assert.match(h!, /<i>it<\/i>/);
    assert.match(h!, /<a href="https:\/\/rum\.example\/"[^>]*>ok<\/a>/);
    assert.match(m!, /<b>bold<\/b>/);
    assert.match(m!, /<i>it<\/i>/);
    assert.match(m!, /<u>under<\/u>/);
    assert.match(m!, /<s>gone<\/s>/);
    assert.match(m!, /<span class="tg-spoiler">secret<\/span>/);
    assert.match(m!, /<code>&lt;script&gt;alert\(4\)&lt;\/script&gt;<\/code>/);
    assert.match(m!, /<a href="https:\/\/rum\.example\/a"[^>]*>link<\/a>/);
    assert.match(m!, /&lt;script&gt;$/);
  });

  it('the same Idempotency-Key twice answers the same message and posts once', async () => {
    const bot = await main.bot('idem');
    const send = (text: string, key: string) =>
      main.tg(bot.token, 'sendMessage', { chat_id: bot.chat, text }, { 'idempotency-key': key });
    const [a, b] = await Promise.all([send('only once', 'k-1'), send('only once', 'k-1')]);
    const c = await send('only once', 'k-1');
    for (const r of [a, b, c]) assert.equal(r.status, 200, r.text);
    assert.deepEqual(b.json.result, a.json.result);
    assert.deepEqual(c.json.result, a.json.result);
    // Another key is another message, even with the same text.
    const d = await send('only once', 'k-2');
    assert.notEqual(d.json.result.message_id, a.json.result.message_id);
    // A key used again for another request is refused, not answered with the first message
    // (the IETF Idempotency-Key draft's 422), and posts nothing; the first request still works.
    const other = await send('something else', 'k-1');
    assert.equal(other.status, 422, other.text);
    assert.equal(other.json.ok, false);
    assert.equal(other.json.error_code, 422);
    assert.match(other.json.description, /Idempotency-Key was used for another request/);
    const again = await send('only once', 'k-1');
    assert.deepEqual(again.json.result, a.json.result);
    const all = await main.settled();
    const key = await main.botKey(bot.bot_id);
    const sent = all.filter((x) => x.sender === key);
    assert.equal(sent.length, 2, 'one trx per key');
  });

  it('an identical request within the retry window is a retry: same message, one trx', async () => {
    const bot = await main.bot('retrier');
    const p = new Poller(main, bot.token);
    await main.note('first question');
    await main.note('second question');
    const q1 = await p.message('first question');
    const q2 = await p.message('second question');
    const send = (params: Record<string, unknown>) =>
      main.tg(bot.token, 'sendMessage', { chat_id: bot.chat, ...params });
    const a = await send({ text: 'same' });
    const b = await send({ text: 'same' });
    assert.deepEqual(b.json.result, a.json.result);
    // The same text answering two messages is two messages (reply_parameters is an object).
    const r1 = await send({ text: 'yes', reply_parameters: { message_id: q1.message_id } });
    const r2 = await send({ text: 'yes', reply_parameters: { message_id: q2.message_id } });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r2.status, 200, r2.text);
    assert.notEqual(r2.json.result.message_id, r1.json.result.message_id);
    assert.equal(r1.json.result.reply_to_message.message_id, q1.message_id);
    assert.equal(r2.json.result.reply_to_message.message_id, q2.message_id);
    const all = await main.settled();
    const key = await main.botKey(bot.bot_id);
    const sent = all.filter((x) => x.sender === key).map((x) => x.data.object ?? x.data);
    assert.equal(sent.filter((o) => o.content === 'same').length, 1);
    assert.equal(sent.filter((o) => o.content === 'yes').length, 2);
  });

  it('takes parameters as form-urlencoded, multipart and query string', async () => {
    const bot = await main.bot('encodings');
    const p = new Poller(main, bot.token);
    await main.note('answer me');
    const q = await p.message('answer me');
    const url = `${main.n.gatewayUrl}/bot${bot.token}/sendMessage`;
    const form = await fetch(url, {
      method: 'POST',
      body: new URLSearchParams({
        chat_id: String(bot.chat),
        text: 'by form',
        reply_parameters: JSON.stringify({ message_id: q.message_id }),
      }),
    });
    const formJson = (await form.json()) as AnyJson;
    assert.equal(form.status, 200, JSON.stringify(formJson));
    assert.equal(formJson.result.reply_to_message.message_id, q.message_id);
    const fd = new FormData();
    fd.set('chat_id', String(bot.chat));
    fd.set('text', '<b>by multipart</b>');
    fd.set('parse_mode', 'HTML');
    const multi = await fetch(url, { method: 'POST', body: fd });
    assert.equal(multi.status, 200, await multi.clone().text());
    const query = await fetch(`${url}?chat_id=${bot.chat}&text=${encodeURIComponent('by query')}`);
    assert.equal(query.status, 200, await query.clone().text());
    const file = new FormData();
    file.set('chat_id', String(bot.chat));
    file.set('document', new Blob(['x']), 'x.txt');
    file.set('text', 'with a file');
    const refused = await fetch(url, { method: 'POST', body: file });
    assert.equal(refused.status, 400);
    const all = await main.settled();
    const key = await main.botKey(bot.bot_id);
    const sent = all.filter((x) => x.sender === key).map((x) => x.data.object ?? x.data);
    assert.deepEqual(
      sent.map((o) => o.content),
      ['by form', '<b>by multipart</b>', 'by query'],
    );
    assert.equal(
      sent[0].inReplyTo.id,
      (await main.committed()).find((x) => (x.data.object ?? x.data).content === 'answer me')
        ?.trxId,
    );
  });
});

describe('bot gateway: revoked and banned bots', () => {
  it('a revoked token fails on its next call, and a long poll in progress ends', async () => {
    const bot = await main.bot('revokee');
    await new Poller(main, bot.token).drain();
    const t = Date.now();
    const polling = main.tg(bot.token, 'getUpdates', { timeout: 20 });
    await new Promise((r) => setTimeout(r, 300));
    const del = await api(main.n.url, 'DELETE', `/api/v1/bots/${bot.bot_id}`);
    assert.equal(del.status, 200, del.text);
    const ended = await polling;
    assert.ok(Date.now() - t < 5000, `the poll ended in ${Date.now() - t} ms`);
    assert.equal(ended.status, 401, ended.text);
    assert.equal(ended.json.ok, false);
    const next = await main.tg(bot.token, 'sendMessage', { chat_id: bot.chat, text: 'late' });
    assert.equal(next.status, 401);
    assert.equal(next.json.description, 'Unauthorized');
  });

  it("a bot on the owner's deny list is refused, and nothing is posted", async () => {
    const bot = await main.bot('banned');
    const first = await main.tg(bot.token, 'sendMessage', { chat_id: bot.chat, text: 'allowed' });
    assert.equal(first.status, 200, first.text);
    const key = await main.botKey(bot.bot_id);
    assert.ok(key, 'the bot has a key once it posted');
    await main.settled();
    const deny = await api(main.n.url, 'POST', '/api/v1/group/chainconfig', {
      group_id: main.groupId,
      type: 'upd_dny_list',
      config: JSON.stringify({ action: 'add', pubkey: key, trx_type: ['POST'] }),
    });
    assert.equal(deny.status, 200, deny.text);
    await waitFor(async () => {
      const list = (await api(main.n.url, 'GET', `/api/v1/group/${main.groupId}/trx/denylist`))
        .json as { Pubkey: string }[];
      return list.some((x) => x.Pubkey === key);
    }, 'the deny list to hold the bot');
    const before = (await main.settled()).filter((x) => x.sender === key).length;
    const refused = await main.tg(bot.token, 'sendMessage', {
      chat_id: bot.chat,
      text: 'not allowed',
    });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.ok, false);
    assert.match(refused.json.description, /^Forbidden/);
    const reaction = await main.tg(bot.token, 'setMessageReaction', {
      chat_id: bot.chat,
      message_id: first.json.result.message_id,
      reaction: [{ type: 'emoji', emoji: '👍' }],
    });
    assert.equal(reaction.status, 403, reaction.text);
    const after = (await main.settled()).filter((x) => x.sender === key).length;
    assert.equal(after, before, 'nothing more from the bot');
    // Still a reader.
    assert.equal((await main.tg(bot.token, 'getUpdates')).status, 200);
  });
});

describe('bot gateway: rate limits', () => {
  const slow = new Node('bot-rates');
  before(async () => {
    const cfg = join(cfgDir, 'rates.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        limits: {
          botPostsPerSecond: 2,
          botGroupPostsPerSecond: 100,
          botMaxDelayMs: 1000,
          botRetryWindowMs: 1000,
        },
      }),
    );
    await slow.start(['--config', cfg]);
  });
  after(async () => {
    await slow.n?.stop();
    if (slow.n) rmSync(slow.n.dir, { recursive: true, force: true });
  });

  it('within the burst and the delay a post waits; past them 429 with retry_after, and nothing posted', async () => {
    const bot = await slow.bot('flood');
    // 2 a second, bursts of 2, waiting up to 1 s: of 6 at once, 2 go now, 2 wait (0.5 s and
    // 1 s) and 2 are refused.
    const t = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        slow
          .tg(bot.token, 'sendMessage', { chat_id: bot.chat, text: `flood ${i}` })
          .then((r) => ({ ...r, ms: Date.now() - t })),
      ),
    );
    const ok = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status === 429);
    assert.equal(ok.length, 4, JSON.stringify(answers.map((r) => r.status)));
    assert.equal(refused.length, 2);
    for (const r of refused) {
      assert.equal(r.json.ok, false);
      assert.equal(r.json.error_code, 429);
      assert.ok(Number.isInteger(r.json.parameters.retry_after));
      assert.ok(r.json.parameters.retry_after >= 1);
      assert.match(r.json.description, /^Too Many Requests: retry after \d+/);
    }
    const slowest = Math.max(...ok.map((r) => r.ms));
    assert.ok(slowest >= 900, `the last one waited (${slowest} ms)`);
    const all = await slow.settled();
    const key = await slow.botKey(bot.bot_id);
    const posted = all.filter((x) => x.sender === key).map((x) => x.data.content);
    assert.equal(posted.length, 4, 'the delayed posts are posted, the refused ones are not');
    assert.deepEqual(
      new Set(posted),
      new Set(ok.map((r) => r.json.result.text)),
      'exactly the answered ones',
    );
    // After retry_after, it goes through.
    await new Promise((r) => setTimeout(r, refused[0]!.json.parameters.retry_after * 1000));
    const later = await slow.tg(bot.token, 'sendMessage', { chat_id: bot.chat, text: 'later' });
    assert.equal(later.status, 200, later.text);
  });

  it('past the retry window the same request is a new message', async () => {
    const bot = await slow.bot('patient');
    const send = () => slow.tg(bot.token, 'sendMessage', { chat_id: bot.chat, text: 'tick' });
    const a = await send();
    const b = await send();
    assert.deepEqual(b.json.result, a.json.result, 'within 1 s: a retry');
    await new Promise((r) => setTimeout(r, 1200));
    const c = await send();
    assert.equal(c.status, 200, c.text);
    assert.notEqual(c.json.result.message_id, a.json.result.message_id);
    const all = await slow.settled();
    const key = await slow.botKey(bot.bot_id);
    assert.equal(all.filter((x) => x.sender === key).length, 2);
  });
});
