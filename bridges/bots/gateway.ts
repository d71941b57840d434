/**
 * The bot gateway's state and its feed. Every committed item of a group some bot is in becomes
 * an update in the log of each of those bots (bridges/bots/store.ts), in chain order, with a
 * sequence number each (Telegram's update_id); then the bot's long polls wake up and its push
 * channels (webhook, Redis stream) are told. A bot's own posts come back only as the outcome
 * of its send (outcomes.ts). The feed reads the port's committed stream of the
 * group under one consumer (`bots`) whose cursor moves only after the updates it made are
 * stored: after a crash the items come again, and an item already logged for a bot is not
 * logged twice.
 */
import type { Config } from '../../src/config/schema.ts';
import { GroupStreams } from '../group-streams.ts';
import type { BridgePort, CommittedItem, CommittedStream, ExposedGroup } from '../port.ts';
import { SendOutcomes } from './outcomes.ts';
import { TokenBuckets } from './rate.ts';
import { type BotRow, BotStore, type StoredUpdate } from './store.ts';
import {
  DEFAULT_UPDATES,
  type MapContext,
  type TgChat,
  type TgUser,
  toUpdate,
} from './telegram.ts';

export const STREAM_CONSUMER = 'bots';
/** Updates that are not Telegram's: the outcome of a bot's own send (opt-in by allowed_updates). */
export const SEND_RESULT = 'rum_send_result';
/** RUM authors' Telegram user ids start here (bots have their own small ids below it). */
const USER_ID_BASE = 1_000_000_000;
const PRUNE_EVERY_MS = 10 * 60_000;

/** Told of the updates appended to a bot's log (webhook and Redis stream delivery). */
export type UpdateListener = (bot: BotRow, updates: StoredUpdate[]) => void;

/** The external id of a bot's send (the port's origin), which says whose send it is. */
export function sendId(botId: number, key: string): string {
  return `${botId}:${key}`;
}

/** The author name the port keeps a bot's key under. */
export function botAuthor(botId: number): string {
  return `bot:${botId}`;
}

export class BotGateway extends GroupStreams {
  readonly store: BotStore;
  readonly config: Config;
  private readonly waiters = new Map<number, Set<() => void>>();
  private readonly listeners = new Set<UpdateListener>();
  private readonly webhookListeners = new Set<(botId: number) => void>();
  /** The rate limits of bots' posts (bridges/bots/rate.ts). */
  readonly buckets = new TokenBuckets();
  /** The outcome of each send: committed, or failed with the reason (outcomes.ts). */
  readonly outcomes: SendOutcomes;
  private pruneTimer: NodeJS.Timeout | null = null;
  /** Who waits for a trx to be committed (`<group>\n<trx>` → wakers): committedItem. */
  private readonly commitWaiters = new Map<string, Set<() => void>>();

  constructor(port: BridgePort, config: Config) {
    super(port);
    this.store = new BotStore(port.database());
    this.config = config;
    this.outcomes = new SendOutcomes(this);
  }

  get bridgePort(): BridgePort {
    return this.port;
  }

  override start(): void {
    super.start();
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
    this.outcomes.start();
  }

  override async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.pruneTimer = null;
    this.outcomes.stop();
    for (const set of this.waiters.values()) for (const wake of set) wake();
    for (const set of [...this.commitWaiters.values()]) for (const wake of [...set]) wake();
    await super.stop();
  }

  private prune(): void {
    const hours = this.config.limits.botUpdatesRetentionHours;
    try {
      this.store.prune(hours * 3600_000, Math.max(hours * 3600_000, 24 * 3600_000));
    } catch (err) {
      this.port.log.warn({ err }, 'bots: pruning the update logs failed');
    }
  }

  onUpdates(listener: UpdateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Told when a bot's webhook is set, changed or deleted. */
  onWebhookChange(listener: (botId: number) => void): () => void {
    this.webhookListeners.add(listener);
    return () => this.webhookListeners.delete(listener);
  }

  /** A revoked bot's long polls end now. */
  revoked(botId: number): void {
    for (const wake of this.waiters.get(botId) ?? []) wake();
    this.webhookChanged(botId);
  }

  webhookChanged(botId: number): void {
    for (const l of this.webhookListeners) l(botId);
  }

  /** Resolves when the bot's log grows, or after `ms`; answers false on timeout. */
  waitForUpdates(botId: number, ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.waiters.get(botId);
      if (!set) {
        set = new Set();
        this.waiters.set(botId, set);
      }
      const done = (woken: boolean) => {
        clearTimeout(timer);
        set.delete(wake);
        signal?.removeEventListener('abort', abort);
        resolve(woken);
      };
      const wake = () => done(true);
      const abort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      set.add(wake);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * The committed item of a trx of a group the feed serves; when it is not committed yet, waits
   * up to `ms` for the feed to see it committed. Undefined when it is not by then.
   */
  async committedItem(
    groupId: string,
    trxId: string,
    ms: number,
  ): Promise<CommittedItem | undefined> {
    const now = this.port.item(groupId, trxId);
    if (now || ms <= 0) return now;
    const key = `${groupId}\n${trxId}`;
    let set = this.commitWaiters.get(key);
    if (!set) {
      set = new Set();
      this.commitWaiters.set(key, set);
    }
    const waiters = set;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.commitWaiters.get(key) === waiters) {
          this.commitWaiters.delete(key);
        }
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
    return this.port.item(groupId, trxId);
  }

  /** A bot's group, as the feed serves it: exposed to bots and not suspended. */
  exposed(groupId: string): ExposedGroup | null {
    const g = this.port.exposure(groupId);
    return g?.bots && !g.suspended ? g : null;
  }

  chat(groupId: string): TgChat {
    const g = this.port.exposure(groupId);
    return { id: this.store.chatOf(groupId), type: 'supergroup', title: g?.name || groupId };
  }

  botUser(bot: Pick<BotRow, 'botId' | 'name'>): TgUser {
    return { id: bot.botId, is_bot: true, first_name: bot.name, username: usernameOf(bot.name) };
  }

  /** The Telegram user a RUM key is in a group. */
  user(groupId: string, pubkey: string): TgUser {
    const outside = this.port.authorOf(pubkey);
    if (outside?.network === 'bots' && outside.author.startsWith('bot:')) {
      const bot = this.store.bot(Number(outside.author.slice(4)));
      if (bot) return this.botUser(bot);
    }
    const name = this.port.profile(groupId, pubkey)?.name;
    return {
      id: USER_ID_BASE + this.store.userOf(pubkey),
      is_bot: false,
      first_name: name || (outside ? outside.author.slice(0, 64) : `${pubkey.slice(0, 10)}…`),
    };
  }

  mapContext(groupId: string): MapContext {
    const chat = this.chat(groupId);
    return {
      chat,
      user: (pubkey) => this.user(groupId, pubkey),
      messageOf: (trxId) => this.store.messageOf(chat.id, trxId),
      item: (trxId) => this.port.item(groupId, trxId),
    };
  }

  // ---- the feed ----

  protected served(group: ExposedGroup | undefined): ExposedGroup | null {
    if (!group || !group.bots || group.suspended) return null;
    return this.store.botsOf(group.groupId).length > 0 ? group : null;
  }

  protected openStream(group: ExposedGroup): CommittedStream | null {
    try {
      return this.port.stream({ consumer: STREAM_CONSUMER, groupId: group.groupId, from: 'head' });
    } catch (err) {
      this.port.log.warn({ err, groupId: group.groupId }, 'bots: cannot stream group');
      return null;
    }
  }

  protected async run(
    groupId: string,
    stream: CommittedStream,
    isOpen: () => boolean,
  ): Promise<void> {
    while (isOpen()) {
      const items = await stream.next(200);
      if (items.length === 0 || !isOpen()) return;
      const done = await this.retrying({ groupId }, 'bots: logging updates', isOpen, () =>
        this.store.transaction(() => this.append(groupId, items)),
      );
      if (!done) return;
      const appended = done.value;
      stream.ack(items[items.length - 1]!);
      for (const { bot, updates } of appended.values()) this.notify(bot, updates);
      if (this.commitWaiters.size > 0) {
        for (const item of items) {
          const set = this.commitWaiters.get(`${groupId}\n${item.trxId}`);
          if (set) for (const wake of [...set]) wake();
        }
      }
    }
  }

  /** Logs a batch of items for the group's bots; answers what each bot got. */
  private append(groupId: string, items: CommittedItem[]) {
    const out = new Map<number, { bot: BotRow; updates: StoredUpdate[] }>();
    const bots = this.store
      .botsOf(groupId)
      .map((id) => this.store.bot(id)!)
      .filter((b) => b.scopes.includes('read'));
    if (bots.length === 0) return out;
    const ctx = this.mapContext(groupId);
    for (const item of items) {
      const own =
        item.origin?.network === 'bots' ? Number(item.origin.externalId.split(':')[0]) : null;
      const update = own === null || bots.some((b) => b.botId !== own) ? toUpdate(item, ctx) : null;
      for (const bot of bots) {
        // A bot never receives its own posts; it may ask for their outcome (outcomes.ts).
        const entry =
          bot.botId === own ? this.outcomes.committed(bot, groupId, item.trxId) : update;
        if (!entry || !allows(bot, entry.kind)) continue;
        if (this.store.hasUpdateFor(bot.botId, item.trxId)) continue; // logged before a crash
        let e = out.get(bot.botId);
        if (!e) {
          e = { bot, updates: [] };
          out.set(bot.botId, e);
        }
        e.updates.push(this.log(bot.botId, groupId, item.trxId, entry));
      }
    }
    return out;
  }

  /** Appends an update to a bot's log (inside the caller's transaction); answers it. */
  log(
    botId: number,
    groupId: string,
    trxId: string,
    entry: { kind: string; payload: Record<string, unknown> },
  ): StoredUpdate {
    const { kind, payload } = entry;
    const updateId = this.store.appendUpdate(botId, { kind, groupId, trxId, payload });
    return { updateId, kind, groupId, trxId, payload, createdAt: Date.now() };
  }

  /** Wakes a bot's long polls and tells its push channels of updates it got. */
  notify(bot: BotRow, updates: StoredUpdate[]): void {
    for (const wake of this.waiters.get(bot.botId) ?? []) wake();
    for (const l of this.listeners) {
      try {
        l(bot, updates);
      } catch (err) {
        this.port.log.warn({ err, bot: bot.botId }, 'bots: an update listener failed');
      }
    }
  }
}

/**
 * Whether a bot takes updates of a kind: its allowed_updates, or else Telegram's default, plus
 * the outcomes of its sends for a bot on Redis streams (its requests' replies say only that a
 * send was admitted).
 */
export function allows(
  bot: Pick<BotRow, 'allowedUpdates' | 'redisStreams'>,
  kind: string,
): boolean {
  const list = bot.allowedUpdates;
  if (list && list.length > 0) return list.includes(kind);
  return DEFAULT_UPDATES.includes(kind) || (kind === SEND_RESULT && bot.redisStreams);
}

/** A bot's Telegram username: its name, ending in `bot` as Telegram's do. */
export function usernameOf(name: string): string {
  return /bot$/i.test(name) ? name : `${name}_bot`;
}
