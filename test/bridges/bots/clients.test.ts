// Issue 11's client conformance: echo bots written with grammY, Telegraf, node-telegram-bot-api
// and python-telegram-bot, unmodified but for their API root, long-poll node A's gateway. A RUM
// post made on node B reaches them, and their answers are committed in the group on both A and
// B (two `rum fullnode` processes, libp2p on loopback), signed by each bot's own key: the same
// sender on both nodes, neither node's own key.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Bot } from 'grammy';
import { Telegraf } from 'telegraf';
import { LOOPBACK, NET_TEST_LIMITS } from '../../helpers/net.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../../helpers/node-process.ts';

/** node-telegram-bot-api (CommonJS, no types of its own): the little the test uses of it. */
interface TelegramBotApi {
  on(event: 'message', fn: (msg: TgMessage) => void): void;
  on(event: 'polling_error', fn: (err: Error) => void): void;
  sendMessage(chatId: number, text: string, options?: Record<string, unknown>): Promise<unknown>;
  stopPolling(): Promise<void>;
}
interface TgMessage {
  message_id: number;
  chat: { id: number };
  from?: { is_bot: boolean };
  text?: string;
}
const TelegramBot = createRequire(import.meta.url)('node-telegram-bot-api') as new (
  token: string,
  options: Record<string, unknown>,
) => TelegramBotApi;

const PTB_SCRIPT = fileURLToPath(new URL('./ptb_echo.py', import.meta.url));
/** Debian's python (python3-python-telegram-bot installs there), else the one on PATH. */
const PYTHON =
  spawnSync('/usr/bin/python3', ['-c', 'import telegram'], { stdio: 'ignore' }).status === 0
    ? '/usr/bin/python3'
    : 'python3';
const hasPtb = spawnSync(PYTHON, ['-c', 'import telegram.ext'], { stdio: 'ignore' }).status === 0;
const underCi = process.env.CI === 'true';

interface MadeBot {
  bot_id: number;
  token: string;
  chats: { group_id: string; chat_id: number }[];
}

let a: NodeProcess;
let b: NodeProcess;
let groupId: string;
let keys: { a: string; b: string };
const cfgDir = tempDir('rum-bots-cfg-');

/** A node's own key in the group. */
async function ownKey(n: NodeProcess): Promise<string> {
  const g = (await api(n.url, 'GET', `/api/v1/group/${groupId}`)).json as { user_pubkey: string };
  return g.user_pubkey;
}

interface Post {
  trxId: string;
  content: string;
  sender: string;
  /** The trx it answers, if it is a reply. */
  inReplyTo: string | undefined;
}

/** The group's committed posts on a node, oldest first. */
async function posts(n: NodeProcess): Promise<Post[]> {
  const res = await api(n.url, 'GET', `/app/api/v1/group/${groupId}/content?num=200&reverse=false`);
  assert.equal(res.status, 200, res.text);
  return (res.json as { TrxId: string; Data: string; SenderPubkey: string }[]).map((t) => {
    type Obj = { content?: string; inReplyTo?: { id?: string }; object?: Obj };
    const o = JSON.parse(Buffer.from(t.Data, 'base64').toString('utf8')) as Obj;
    const post = o.object ?? o;
    return {
      trxId: t.TrxId,
      content: post.content ?? '',
      sender: t.SenderPubkey,
      inReplyTo: post.inReplyTo?.id,
    };
  });
}

async function makeBot(name: string): Promise<MadeBot> {
  const made = await api(a.url, 'POST', '/api/v1/bots', { name, group_ids: [groupId] });
  assert.equal(made.status, 201, made.text);
  return made.json;
}

/**
 * Posts a Note on B; waits until both nodes committed an answer `<prefix>: <text>` from each
 * bot (those in `replies` as a reply to the Note); answers their senders.
 */
async function expectAnswers(text: string, prefixes: string[], replies: string[] = []) {
  const posted = await api(b.url, 'POST', `/api/v1/group/${groupId}/content`, {
    data: { type: 'Create', object: { type: 'Note', content: text } },
  });
  assert.equal(posted.status, 200, posted.text);
  const noteTrx = posted.json.trx_id as string;
  const want = prefixes.map((p) => `${p}: ${text}`);
  const answers = async (n: NodeProcess) => {
    const all = await posts(n);
    const got = want.map((w) => all.filter((p) => p.content === w));
    return got.every((g) => g.length > 0) ? got : undefined;
  };
  const onA = await waitFor(() => answers(a), `answers to "${text}" on A`, 400);
  const onB = await waitFor(() => answers(b), `answers to "${text}" on B`, 400);
  const senders = new Set<string>();
  want.forEach((w, i) => {
    assert.equal(onA[i]!.length, 1, `one "${w}" on A`);
    assert.equal(onB[i]!.length, 1, `one "${w}" on B`);
    const sender = onA[i]![0]!.sender;
    assert.equal(onB[i]![0]!.sender, sender, `"${w}" has the same sender on A and B`);
    assert.notEqual(sender, keys.a, `"${w}" is not signed by A's own key`);
    assert.notEqual(sender, keys.b, `"${w}" is not signed by B's own key`);
    if (replies.includes(prefixes[i]!)) {
      assert.equal(onA[i]![0]!.inReplyTo, noteTrx, `"${w}" answers the Note on A`);
      assert.equal(onB[i]![0]!.inReplyTo, noteTrx, `"${w}" answers the Note on B`);
    }
    senders.add(sender);
  });
  assert.equal(senders.size, want.length, 'each bot signs with its own key');
  return want.map((_, i) => onA[i]![0]!.sender);
}

/** Each bot's key, as the admin API tells it. */
async function botKeys(): Promise<Map<number, string>> {
  const list = (await api(a.url, 'GET', '/api/v1/bots')).json.bots as {
    bot_id: number;
    pubkey: string | null;
  }[];
  return new Map(list.map((x) => [x.bot_id, x.pubkey ?? '']));
}

before(async () => {
  const cfg = join(cfgDir, 'rum.json');
  writeFileSync(cfg, JSON.stringify({ limits: NET_TEST_LIMITS }));
  a = await startNodeProcess({ args: ['--listen', LOOPBACK, '--config', cfg] });
  const addr = ((await api(a.url, 'GET', '/api/v1/network')).json as { addrs: string[] }).addrs[0]!;
  b = await startNodeProcess({ args: ['--listen', LOOPBACK, '--peer', addr, '--config', cfg] });
  const created = await createPublicGroup(a.url, 'bot-clients');
  groupId = created.group_id;
  const put = await api(a.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
    handle: 'botclients',
    bots: true,
  });
  assert.equal(put.status, 200, put.text);
  const joined = await api(b.url, 'POST', '/api/v2/group/join', { seed: created.seed });
  assert.equal(joined.status, 200, joined.text);
  await waitFor(
    async () => {
      const net = (await api(b.url, 'GET', '/api/v1/network')).json as {
        groups: { GroupId: string; Peers: string[] }[];
      };
      return net.groups.find((g) => g.GroupId === groupId)?.Peers.length;
    },
    "B to see A in the group's topic",
    300,
  );
  keys = { a: await ownKey(a), b: await ownKey(b) };
  assert.notEqual(keys.a, keys.b);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  for (const n of [a, b]) if (n) rmSync(n.dir, { recursive: true, force: true });
  rmSync(cfgDir, { recursive: true, force: true });
});

describe('bot gateway: unmodified Telegram bot libraries on a two-node group', () => {
  it('grammY, Telegraf and node-telegram-bot-api answer a post made on B; the answers are committed on A and B, each signed by its bot', async () => {
    const bots = {
      grammy: await makeBot('grammy_echo'),
      telegraf: await makeBot('telegraf_echo'),
      ntba: await makeBot('ntba_echo'),
    };

    // grammY: only its API root changed.
    const grammy = new Bot(bots.grammy.token, { client: { apiRoot: a.gatewayUrl } });
    grammy.on('message:text', async (ctx) => {
      if (!ctx.from?.is_bot) await ctx.reply(`grammy: ${ctx.message.text}`);
    });
    const grammyRunning = grammy.start({ timeout: 1 });

    // Telegraf: only its API root changed.
    const telegraf = new Telegraf(bots.telegraf.token, { telegram: { apiRoot: a.gatewayUrl } });
    telegraf.on('text', async (ctx) => {
      if (!ctx.from.is_bot) await ctx.reply(`telegraf: ${ctx.message.text}`);
    });
    const telegrafRunning = telegraf.launch();

    // node-telegram-bot-api: only its API root changed (its requests are form-urlencoded).
    const ntba = new TelegramBot(bots.ntba.token, {
      baseApiUrl: a.gatewayUrl,
      polling: { interval: 0, params: { timeout: 1 } },
    });
    const ntbaErrors: Error[] = [];
    ntba.on('polling_error', (err) => ntbaErrors.push(err));
    ntba.on('message', (msg) => {
      if (msg.text && !msg.from?.is_bot) {
        ntba
          .sendMessage(msg.chat.id, `ntba: ${msg.text}`, { reply_to_message_id: msg.message_id })
          .catch((err: Error) => ntbaErrors.push(err));
      }
    });

    try {
      const senders = await expectAnswers('hello from B', ['grammy', 'telegraf', 'ntba'], ['ntba']);
      const known = await botKeys();
      assert.deepEqual(senders, [
        known.get(bots.grammy.bot_id),
        known.get(bots.telegraf.bot_id),
        known.get(bots.ntba.bot_id),
      ]);
      // The bots go on answering: a second post, also from B.
      await expectAnswers('and again', ['grammy', 'telegraf', 'ntba']);
      assert.deepEqual(ntbaErrors, []);
    } finally {
      await grammy.stop();
      telegraf.stop('test over');
      // Without `cancel`: a cancelled poll schedules the next one (0.67.0), forever.
      await ntba.stopPolling();
      await Promise.all([grammyRunning, telegrafRunning].map((p) => p.catch(() => {})));
    }
  });

  it(
    'python-telegram-bot answers a post made on B; its answer is committed on A and B',
    {
      skip:
        !hasPtb && !underCi
          ? 'python-telegram-bot is not installed (apt-get install python3-python-telegram-bot)'
          : false,
    },
    async () => {
      assert.ok(hasPtb, 'python-telegram-bot must be installed under CI (.ci/run installs it)');
      const made = await makeBot('ptb_echo');
      const child: ChildProcess = spawn(PYTHON, [PTB_SCRIPT, made.token, a.gatewayUrl], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
      });
      child.stderr!.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await waitFor(async () => out.includes('ready'), `the Python bot to start:\n${out}`, 200);
        const [sender] = await expectAnswers('hello, python', ['ptb'], ['ptb']);
        assert.equal(sender, (await botKeys()).get(made.bot_id));
      } catch (err) {
        throw new Error(`${(err as Error).message}\nthe Python bot said:\n${out}`);
      } finally {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
    },
  );
});
