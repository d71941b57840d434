/**
 * The webhook delivery's tables (src/storage/schema.ts: bot_webhooks, bot_webhook_revoked, and
 * bot_updates.webhook_state), on the node's one database connection. Only
 * bridges/bots/webhooks.ts uses this.
 */
import type Database from 'better-sqlite3';
import type { Db } from '../../src/storage/db.ts';
import { type RawUpdate, type StoredUpdate, toUpdate } from './store.ts';

/** bot_updates.webhook_state. */
export const DELIVERED = 1;
export const FAILED = 2;

export interface EndpointRow {
  botId: number;
  gen: string;
  fingerprint: string;
  /** The highest update id queued for this endpoint. */
  enqueued: number;
}

export class WebhookStore {
  private readonly c: Database.Database;
  private readonly s;

  constructor(db: Db) {
    const c = db.$client;
    this.c = c;
    this.s = {
      endpoint: c.prepare(
        'SELECT bot_id, gen, fingerprint, enqueued FROM bot_webhooks WHERE bot_id = ?',
      ),
      endpoints: c.prepare('SELECT bot_id, gen, fingerprint, enqueued FROM bot_webhooks'),
      putEndpoint: c.prepare(
        'INSERT OR REPLACE INTO bot_webhooks (bot_id, gen, fingerprint, enqueued) VALUES (?, ?, ?, ?)',
      ),
      dropEndpoint: c.prepare('DELETE FROM bot_webhooks WHERE bot_id = ?'),
      setEnqueued: c.prepare(
        'UPDATE bot_webhooks SET enqueued = max(enqueued, ?) WHERE bot_id = ? AND gen = ?',
      ),
      revoke: c.prepare(
        'INSERT OR IGNORE INTO bot_webhook_revoked (gen, bot_id, revoked_at) VALUES (?, ?, ?)',
      ),
      isRevoked: c.prepare('SELECT 1 FROM bot_webhook_revoked WHERE gen = ?'),
      revokedSince: c.prepare('SELECT gen FROM bot_webhook_revoked WHERE revoked_at >= ?'),
      pruneRevoked: c.prepare('DELETE FROM bot_webhook_revoked WHERE revoked_at < ?'),
      // What to queue: after the cursor and the bot's confirmed offset, not delivered or failed.
      toQueue: c.prepare(
        'SELECT update_id, kind, group_id, trx_id, payload, created_at FROM bot_updates ' +
          'WHERE bot_id = ? AND update_id > ? AND webhook_state IS NULL ORDER BY update_id LIMIT ?',
      ),
      inRange: c.prepare(
        'SELECT update_id, kind, group_id, trx_id, payload, created_at, webhook_state FROM bot_updates ' +
          'WHERE bot_id = ? AND update_id BETWEEN ? AND ? ORDER BY update_id LIMIT ?',
      ),
      update: c.prepare(
        'SELECT update_id, kind, group_id, trx_id, payload, created_at, webhook_state FROM bot_updates ' +
          'WHERE bot_id = ? AND update_id = ?',
      ),
      setState: c.prepare(
        'UPDATE bot_updates SET webhook_state = ? WHERE bot_id = ? AND update_id = ? ' +
          'AND webhook_state IS NOT ?',
      ),
      failIfOpen: c.prepare(
        'UPDATE bot_updates SET webhook_state = 2 WHERE bot_id = ? AND update_id = ? ' +
          'AND webhook_state IS NULL',
      ),
      reopen: c.prepare(
        'UPDATE bot_updates SET webhook_state = NULL WHERE bot_id = ? AND update_id = ? ' +
          'AND webhook_state = 2',
      ),
      acked: c.prepare('SELECT acked FROM bots WHERE bot_id = ?'),
      firstUndelivered: c.prepare(
        'SELECT min(update_id) AS m FROM bot_updates WHERE bot_id = ? AND update_id > ? ' +
          'AND webhook_state IS NOT 1',
      ),
      lastUpdate: c.prepare('SELECT max(update_id) AS m FROM bot_updates WHERE bot_id = ?'),
      setAcked: c.prepare('UPDATE bots SET acked = max(acked, ?) WHERE bot_id = ?'),
    };
  }

  endpoint(botId: number): EndpointRow | undefined {
    const r = this.s.endpoint.get(botId) as RawEndpoint | undefined;
    return r ? toEndpoint(r) : undefined;
  }

  endpoints(): EndpointRow[] {
    return (this.s.endpoints.all() as RawEndpoint[]).map(toEndpoint);
  }

  /** A new endpoint of the bot (its queue cursor at `from`), the old one revoked. */
  replaceEndpoint(botId: number, next: Omit<EndpointRow, 'botId'> | null, now = Date.now()) {
    const old = this.endpoint(botId);
    if (old) this.s.revoke.run(old.gen, botId, now);
    if (next) this.s.putEndpoint.run(botId, next.gen, next.fingerprint, next.enqueued);
    else this.s.dropEndpoint.run(botId);
    return old;
  }

  setEnqueued(botId: number, gen: string, upTo: number): void {
    this.s.setEnqueued.run(upTo, botId, gen);
  }

  isRevoked(gen: string): boolean {
    return this.s.isRevoked.get(gen) !== undefined;
  }

  revokedSince(since: number): string[] {
    return (this.s.revokedSince.all(since) as { gen: string }[]).map((r) => r.gen);
  }

  pruneRevoked(before: number): number {
    return this.s.pruneRevoked.run(before).changes;
  }

  /** Updates to queue after `after`: not delivered and not failed, oldest first. */
  toQueue(botId: number, after: number, limit: number): StoredUpdate[] {
    return (this.s.toQueue.all(botId, after, limit) as RawUpdate[]).map(toUpdate);
  }

  /** Updates with ids in [from, to], with their delivery state. */
  inRange(
    botId: number,
    from: number,
    to: number,
    limit: number,
  ): (StoredUpdate & { state: number | null })[] {
    return (
      this.s.inRange.all(botId, from, to, limit) as (RawUpdate & { webhook_state: number | null })[]
    ).map((r) => ({ ...toUpdate(r), state: r.webhook_state }));
  }

  update(botId: number, updateId: number): (StoredUpdate & { state: number | null }) | undefined {
    const r = this.s.update.get(botId, updateId) as
      | (RawUpdate & { webhook_state: number | null })
      | undefined;
    return r ? { ...toUpdate(r), state: r.webhook_state } : undefined;
  }

  delivered(botId: number, updateId: number): void {
    this.s.setState.run(DELIVERED, botId, updateId, DELIVERED);
  }

  /** Marks an update failed for good, unless it was delivered meanwhile. */
  failed(botId: number, updateId: number): void {
    this.s.failIfOpen.run(botId, updateId);
  }

  /** A failed update is pending again (it is being redelivered). */
  reopen(botId: number, updateId: number): void {
    this.s.reopen.run(botId, updateId);
  }

  acked(botId: number): number {
    return (this.s.acked.get(botId) as { acked: number } | undefined)?.acked ?? 0;
  }

  /**
   * Moves the bot's confirmed offset over the updates delivered right after it: a webhook
   * delivery confirms an update, as Telegram's does (a later getUpdates does not serve it).
   */
  advanceAcked(botId: number): void {
    const acked = this.acked(botId);
    const first = (this.s.firstUndelivered.get(botId, acked) as { m: number | null }).m;
    const upTo =
      first === null ? ((this.s.lastUpdate.get(botId) as { m: number | null }).m ?? 0) : first - 1;
    if (upTo > acked) this.s.setAcked.run(upTo, botId);
  }

  transaction<T>(fn: () => T): T {
    return this.c.transaction(fn)();
  }
}

interface RawEndpoint {
  bot_id: number;
  gen: string;
  fingerprint: string;
  enqueued: number;
}

function toEndpoint(r: RawEndpoint): EndpointRow {
  return { botId: r.bot_id, gen: r.gen, fingerprint: r.fingerprint, enqueued: r.enqueued };
}
