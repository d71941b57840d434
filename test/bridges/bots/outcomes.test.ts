// The outcome of a bot's send (bridges/bots/outcomes.ts): exactly one rum_send_result per send,
// committed or failed with the reason. Below the HTTP layer: a BotGateway on a real database with
// a port whose answers (where a trx stands, whether the bot may post) the test sets; then one
// real node whose blocks come slower than a bot's trx lives, so its sends expire unseen.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { BotGateway, SEND_RESULT } from '../../../bridges/bots/gateway.ts';
import type { BotRow } from '../../../bridges/bots/store.ts';
import type { BridgePort } from '../../../bridges/port.ts';
import { ConfigSchema } from '../../../src/config/schema.ts';
import { openDatabase } from '../../../src/storage/db.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../../helpers/node-process.ts';
import { writeFileSync } from 'node:fs';

const GROUP = 'g-outcomes';
const TIMEOUT_MS = 1000;
const GRACE_MS = 500;

/** A gateway on a fresh database, with a port that answers what the test says. */
function setup() {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'rum-outcomes-')), 'rum.db'));
  const states = new Map<string, 'committed' | 'pending' | 'unknown'>();
  let may: { ok: true } | { ok: false; reason: string } = { ok: true };
  const warnings: string[] = [];
  const log = pino({ level: 'silent' });
  log.warn = ((_o: unknown, msg: string) => {
    warnings.push(msg);
  }) as typeof log.warn;
  const port = {
    database: () => db,
    log,
    trxState: (_g: string, trx: string) => states.get(trx) ?? 'pending',
    mayPost: () => may,
    authorKey: () => 'the-bot-key',
    exposure: () => undefined,
  } as unknown as BridgePort;
  const gw = new BotGateway(
    port,
    ConfigSchema.parse({
      limits: { botSendTimeoutMs: TIMEOUT_MS, botSendGraceMs: GRACE_MS },
    }),
  );
  const { bot } = gw.store.createBot('b', ['read', 'post'], [GROUP]);
  gw.store.setAllowedUpdates(bot.botId, [SEND_RESULT]);
  const results = (botId = bot.botId) =>
    gw.store
      .updatesAfter(botId, 0, 100)
      .filter((u) => u.kind === SEND_RESULT)
      .map((u) => ({
        trx: u.trxId,
        ...(u.payload[SEND_RESULT] as { status: string; reason?: string; message_id?: number }),
      }));
  const fresh = (): BotRow => gw.store.bot(bot.botId)!;
  return {
    gw,
    bot,
    fresh,
    results,
    warnings,
    states,
    setMay: (m: typeof may) => {
      may = m;
    },
  };
}

describe('bot send outcomes', () => {
  it('a send not committed by its expiry (and grace) fails once, and a late commit adds nothing', () => {
    const t = setup();
    const t0 = 1_000_000;
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-1', t0);
    t.gw.outcomes.check(t0 + TIMEOUT_MS + GRACE_MS);
    assert.deepEqual(t.results(), [], 'pending and within the grace: no outcome yet');
    t.gw.outcomes.check(t0 + TIMEOUT_MS + GRACE_MS + 1);
    t.gw.outcomes.check(t0 + TIMEOUT_MS + GRACE_MS + 2);
    const r = t.results();
    assert.equal(r.length, 1, JSON.stringify(r));
    assert.equal(r[0]!.trx, 'trx-1');
    assert.equal(r[0]!.status, 'failed');
    assert.match(String(r[0]!.reason), /^expired: not committed within 1 s$/);
    // A block made before the expiry that arrives late: no second outcome, a warning.
    assert.equal(t.gw.outcomes.committed(t.fresh(), GROUP, 'trx-1'), null);
    assert.equal(t.results().length, 1);
    assert.ok(t.warnings.some((w) => /reported failed was committed/.test(w)));
  });

  it("a send the group's rules now refuse fails at once, with the rules' reason", () => {
    const t = setup();
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-2', Date.now());
    t.gw.outcomes.check();
    assert.equal(t.results().length, 0);
    t.setMay({ ok: false, reason: 'sender is in the deny list' });
    t.gw.outcomes.check();
    t.gw.outcomes.check();
    const r = t.results();
    assert.equal(r.length, 1);
    assert.equal(r[0]!.status, 'failed');
    assert.equal(r[0]!.reason, "refused by the group's rules: sender is in the deny list");
  });

  it('a trx a producer here dropped before its expiry fails as refused', () => {
    const t = setup();
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-3', Date.now());
    t.states.set('trx-3', 'unknown');
    t.gw.outcomes.check();
    const r = t.results();
    assert.equal(r.length, 1);
    assert.equal(r[0]!.reason, 'refused: a producer dropped the trx');
  });

  it('a committed send has one committed outcome, whether the feed or the watch logs it', () => {
    const t = setup();
    const t0 = Date.now();
    // The feed logs it.
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-4', t0);
    const entry = t.gw.outcomes.committed(t.fresh(), GROUP, 'trx-4');
    assert.ok(entry);
    t.gw.store.transaction(() => t.gw.log(t.bot.botId, GROUP, 'trx-4', entry));
    assert.equal(t.gw.outcomes.committed(t.fresh(), GROUP, 'trx-4'), null, 'settled once');
    t.states.set('trx-4', 'committed');
    t.gw.outcomes.check(t0 + 10 * TIMEOUT_MS);
    // The feed never gets it (the group is no longer served): the watch logs it, late.
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-5', t0);
    t.states.set('trx-5', 'committed');
    t.gw.outcomes.check(t0 + TIMEOUT_MS);
    assert.equal(t.results().length, 1, 'committed but the feed may still come: wait');
    t.gw.outcomes.check(t0 + 10 * TIMEOUT_MS);
    t.gw.outcomes.check(t0 + 11 * TIMEOUT_MS);
    assert.deepEqual(
      t.results().map((r) => [r.trx, r.status]),
      [
        ['trx-4', 'committed'],
        ['trx-5', 'committed'],
      ],
    );
  });

  it("a post-only bot (the feed passes it over) has its committed sends' outcomes at once", () => {
    const t = setup();
    const { bot } = t.gw.store.createBot('poster', ['post'], [GROUP]);
    t.gw.store.setAllowedUpdates(bot.botId, [SEND_RESULT]);
    t.gw.outcomes.opened(bot.botId, GROUP, 'trx-8', Date.now());
    t.states.set('trx-8', 'committed');
    t.gw.outcomes.check();
    assert.deepEqual(
      t.results(bot.botId).map((r) => [r.trx, r.status]),
      [['trx-8', 'committed']],
    );
  });

  it('a bot that did not ask for outcomes gets none, and its outcomes still close', () => {
    const t = setup();
    t.gw.store.setAllowedUpdates(t.bot.botId, null); // Telegram's default: no rum_send_result
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-6', 0);
    t.gw.outcomes.check(10 * TIMEOUT_MS);
    assert.equal(t.results().length, 0);
    assert.equal(t.gw.store.outcome(t.bot.botId, 'trx-6')?.status, 'failed');
    assert.equal(t.gw.store.openOutcomes(10).length, 0);
    // On Redis streams, the default includes them.
    t.gw.store.setRedis(t.bot.botId, true);
    t.gw.outcomes.opened(t.bot.botId, GROUP, 'trx-7', 0);
    t.gw.outcomes.check(10 * TIMEOUT_MS);
    assert.deepEqual(
      t.results().map((r) => r.trx),
      ['trx-7'],
    );
  });
});

describe('bot send outcomes on a node whose blocks come after the bot trx expired', () => {
  let n: NodeProcess;
  let groupId: string;
  let bot: { bot_id: number; token: string; chats: { chat_id: number }[] };
  const tg = (method: string, params: Record<string, unknown>) =>
    api(n.gatewayUrl, 'POST', `/bot${bot.token}/${method}`, params);

  before(async () => {
    const dir = tempDir();
    const config = join(dir, 'limits.json');
    writeFileSync(
      config,
      JSON.stringify({
        limits: { blockIntervalMs: 3000, botSendTimeoutMs: 1000, botSendGraceMs: 0 },
      }),
    );
    n = await startNodeProcess({ dir, args: ['--config', config] });
    groupId = (await createPublicGroup(n.url, 'outcomes')).group_id;
    const put = await api(n.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
      handle: 'outcomes',
      bots: true,
    });
    assert.equal(put.status, 200, put.text);
    const made = await api(n.url, 'POST', '/api/v1/bots', { name: 'late', group_ids: [groupId] });
    assert.equal(made.status, 201, made.text);
    bot = made.json;
  });

  after(async () => {
    await n?.stop();
  });

  it('the send is admitted, fails as expired once, and never appears in the group', async () => {
    // Telegram-mode bots ask for outcomes by allowed_updates.
    const first = await tg('getUpdates', { allowed_updates: JSON.stringify([SEND_RESULT]) });
    assert.equal(first.status, 200, first.text);
    const sent = await tg('sendMessage', { chat_id: bot.chats[0]!.chat_id, text: 'too late' });
    assert.equal(sent.status, 200, sent.text);
    const messageId = sent.json.result.message_id;
    const got = await tg('getUpdates', { timeout: 10 });
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.result.length, 1, got.text);
    const outcome = got.json.result[0][SEND_RESULT];
    assert.equal(outcome.status, 'failed');
    assert.equal(outcome.message_id, messageId);
    assert.match(outcome.reason, /^expired/);
    // The node's own post goes in the next block; the bot's expired trx is not taken with it.
    const own = await api(n.url, 'POST', `/api/v1/group/${groupId}/content`, {
      data: { type: 'Note', content: 'after the expiry' },
    });
    assert.equal(own.status, 200, own.text);
    const contents = await waitFor(
      async () => {
        const res = await api(n.url, 'GET', `/app/api/v1/group/${groupId}/content?num=100`);
        const all = (res.json as { Data: string }[]).map(
          (t) => JSON.parse(Buffer.from(t.Data, 'base64').toString('utf8')).content as string,
        );
        return all.includes('after the expiry') && all;
      },
      'the node post committed',
      100,
    );
    assert.ok(!contents.includes('too late'), 'the expired send was not committed');
    const rest = await tg('getUpdates', { offset: got.json.result[0].update_id + 1 });
    assert.deepEqual(rest.json.result, [], 'one outcome for the send');
  });
});
