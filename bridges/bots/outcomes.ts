/**
 * The outcome of each trx a bot sends (issue 11, part 6). A send the port admitted (its trx is in
 * the mempool) may still never be committed: a producer refuses it when the group's rules change
 * (the owner denies the bot), or it is not taken before it expires. Every admitted send gets
 * exactly one outcome in the bot's log, a `rum_send_result` update (opt-in by allowed_updates
 * for Telegram-mode bots; on by default for Redis-stream bots):
 *
 * - `status: "committed"` when its trx is committed (the feed, gateway.ts);
 * - `status: "failed"` with a `reason`, when this node can tell it will not be: the trx is
 *   neither pending nor committed here (a producer on this node dropped it), the bot may no
 *   longer post in the group (the owner's rules), or the trx expired unseen. A bot's trx lives
 *   `botSendTimeoutMs` (its Expired), after which producers refuse it; the failure waits
 *   `botSendGraceMs` more for a block made before the expiry to arrive.
 *
 * The outcome is a row of bot_outcomes, settled once (a conditional update) in the transaction
 * that logs its update, so a crash or a race between the feed and this watch cannot log two.
 * A trx committed after its failure was logged (a block made before the expiry that reached
 * this node after the grace) is logged no more; the node warns of it.
 */
import type { BotGateway } from './gateway.ts';
import { SEND_RESULT, allows } from './gateway.ts';
import type { BotRow, Outcome, StoredUpdate } from './store.ts';

/** How often open outcomes are checked. */
const CHECK_EVERY_MS = 1000;
/** At most this many open outcomes are checked a pass (the oldest first). */
const CHECK_BATCH = 1000;

type Entry = { kind: string; payload: Record<string, unknown> };

export class SendOutcomes {
  private readonly gw: BotGateway;
  private timer: NodeJS.Timeout | null = null;

  constructor(gw: BotGateway) {
    this.gw = gw;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Opens the outcome of an admitted send (a repeat of the same trx changes nothing). */
  opened(botId: number, groupId: string, trxId: string, sentAt = Date.now()): void {
    const ttl = this.gw.config.limits.botSendTimeoutMs;
    this.gw.store.addOutcome(botId, trxId, groupId, sentAt, sentAt + ttl);
  }

  /**
   * The update a bot's own committed trx makes in its log, settling its outcome; null when
   * there is none to log (the bot did not ask for outcomes, or the send's failure was logged).
   * Runs inside the feed's transaction.
   */
  committed(bot: BotRow, groupId: string, trxId: string): Entry | null {
    const store = this.gw.store;
    const open = store.outcome(bot.botId, trxId);
    if (open) {
      if (!store.settleOutcome(bot.botId, trxId, 'committed', null)) {
        if (open.status === 'failed') {
          this.gw.bridgePort.log.warn(
            { bot: bot.botId, groupId, trxId, reason: open.reason },
            'bots: a send reported failed was committed after all',
          );
        }
        return null;
      }
    }
    // Without an outcome row (a send cut off by a crash before it was opened), the log's own
    // check (one update per trx and bot) keeps it to one.
    return allows(bot, SEND_RESULT) ? this.entry(groupId, trxId, 'committed', null) : null;
  }

  /** One pass over the open outcomes: fails those this node can tell will not be committed. */
  check(now = Date.now()): void {
    let open: Outcome[];
    try {
      open = this.gw.store.openOutcomes(CHECK_BATCH);
    } catch (err) {
      this.gw.bridgePort.log.warn({ err }, 'bots: reading open send outcomes failed');
      return;
    }
    for (const o of open) {
      try {
        this.checkOne(o, now);
      } catch (err) {
        this.gw.bridgePort.log.warn({ err, bot: o.botId, trx: o.trxId }, 'bots: outcome check');
      }
    }
  }

  private checkOne(o: Outcome, now: number): void {
    const { store, bridgePort: port, config } = this.gw;
    const bot = store.bot(o.botId);
    if (!bot || bot.revokedAt !== null) {
      // Nobody to tell: closed without an update.
      store.settleOutcome(o.botId, o.trxId, 'failed', 'the bot was revoked');
      return;
    }
    const state = port.trxState(o.groupId, o.trxId);
    const late = now > o.expiresAt + config.limits.botSendGraceMs;
    let reason: string | null = null;
    if (state === 'committed') {
      // The feed settles it when it logs the item; a group the feed no longer serves (the bot
      // left it, bridging stopped) is settled here once the feed had its time, and a bot the
      // feed passes over (no `read` scope) at once.
      if (late || !bot.scopes.includes('read')) this.settle(bot, o, 'committed', null);
      return;
    }
    const expired = `expired: not committed within ${Math.round((o.expiresAt - o.sentAt) / 1000)} s`;
    const key = port.authorKey('bots', `bot:${o.botId}`);
    const may = key ? port.mayPost(o.groupId, key) : { ok: true as const };
    if (!may.ok) reason = `refused by the group's rules: ${may.reason}`;
    else if (state === 'unknown') {
      reason = now > o.expiresAt ? expired : 'refused: a producer dropped the trx';
    } else if (late) reason = expired;
    if (reason) this.settle(bot, o, 'failed', reason);
  }

  private settle(
    bot: BotRow,
    o: Outcome,
    status: 'committed' | 'failed',
    reason: string | null,
  ): void {
    const store = this.gw.store;
    const logged = store.transaction((): StoredUpdate | null => {
      if (!store.settleOutcome(o.botId, o.trxId, status, reason)) return null;
      if (!allows(bot, SEND_RESULT) || store.hasUpdateFor(o.botId, o.trxId)) return null;
      const entry = this.entry(o.groupId, o.trxId, status, reason);
      return this.gw.log(bot.botId, o.groupId, o.trxId, entry);
    });
    if (status === 'failed') {
      this.gw.bridgePort.log.info(
        { bot: o.botId, groupId: o.groupId, trx: o.trxId, reason },
        'bots: a send failed',
      );
    }
    if (logged) this.gw.notify(bot, [logged]);
  }

  private entry(
    groupId: string,
    trxId: string,
    status: 'committed' | 'failed',
    reason: string | null,
  ): Entry {
    const chat = this.gw.chat(groupId);
    const messageId =
      status === 'committed'
        ? this.gw.store.messageOf(chat.id, trxId)
        : this.gw.store.knownMessage(chat.id, trxId);
    return {
      kind: SEND_RESULT,
      payload: {
        [SEND_RESULT]: {
          chat,
          ...(messageId !== undefined ? { message_id: messageId } : {}),
          trx_id: trxId,
          status,
          ...(reason ? { reason } : {}),
        },
      },
    };
  }
}
