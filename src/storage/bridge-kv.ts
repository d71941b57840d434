/**
 * The bridges' key-value state (table bridge_kv): one namespace per bridge, JSON values, optional
 * expiry. Expired entries read as absent and are deleted on the way.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Statement } from 'better-sqlite3';
import type { BridgeKv } from '../../bridges/port.ts';
import { type Db, unsyncedTransaction } from './db.ts';

const MAX_KEY = 4096;
const MAX_VALUE = 1 << 20;

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY) {
    throw new TypeError('a bridge kv key is 1 to 4,096 characters');
  }
}

function encode(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('a bridge kv value must be JSON');
  if (text.length > MAX_VALUE) throw new TypeError('a bridge kv value is at most 1 MiB of JSON');
  return text;
}

/**
 * The least string above every string that starts with `prefix`, in SQLite's order for text
 * (UTF-8 bytes, which is code point order), or undefined when there is no simple one (an empty
 * prefix, or one ending in a surrogate or a character at the top of the BMP).
 */
function upperBound(prefix: string): string | undefined {
  if (prefix.length === 0) return undefined;
  const last = prefix.charCodeAt(prefix.length - 1);
  if (last >= 0xd7ff) return undefined;
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

interface Row {
  key: string;
  value: string;
  expires_at: number | null;
}

export class BridgeKvStore implements BridgeKv {
  private readonly bridge: string;
  private readonly db: Db;
  private readonly s: Record<'get' | 'set' | 'keep' | 'del', Statement>;
  private readonly lists: Record<'from' | 'after' | 'fromOpen' | 'afterOpen', Statement>;

  constructor(db: Db, bridge: string) {
    this.db = db;
    this.bridge = bridge;
    const c = db.$client;
    this.s = {
      get: c.prepare('SELECT key, value, expires_at FROM bridge_kv WHERE bridge = ? AND key = ?'),
      set: c.prepare(
        'INSERT INTO bridge_kv (bridge, key, value, expires_at) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (bridge, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
      ),
      // A value written again unchanged, with no expiry (Fedify remembers a server's signature
      // scheme after every delivery), changes no row: no page is written, so no fsync.
      keep: c.prepare(
        'INSERT INTO bridge_kv (bridge, key, value, expires_at) VALUES (?, ?, ?, NULL) ' +
          'ON CONFLICT (bridge, key) DO UPDATE SET value = excluded.value, expires_at = NULL ' +
          'WHERE value IS NOT excluded.value OR expires_at IS NOT NULL',
      ),
      del: c.prepare('DELETE FROM bridge_kv WHERE bridge = ? AND key = ?'),
    };
    // A prefix is a range of the primary key (bridge, key): from the prefix (or just after the
    // cursor) up to the prefix with its last character raised by one, so a page reads only its
    // own rows however many other keys the bridge keeps (Fedify's caches fill the same table).
    const list = (lower: '>=' | '>', upper: boolean) =>
      c.prepare(
        `SELECT key, value, expires_at FROM bridge_kv WHERE bridge = ? AND key ${lower} ? ` +
          `${upper ? 'AND key < ? ' : ''}AND substr(key, 1, ?) = ? ` +
          'AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?',
      );
    this.lists = {
      from: list('>=', true),
      after: list('>', true),
      fromOpen: list('>=', false),
      afterOpen: list('>', false),
    };
  }

  private live(key: string): Row | undefined {
    const row = this.s.get.get(this.bridge, key) as Row | undefined;
    if (row && row.expires_at !== null && row.expires_at <= Date.now()) {
      this.s.del.run(this.bridge, key);
      return undefined;
    }
    return row;
  }

  get<T = unknown>(key: string): T | undefined {
    checkKey(key);
    const row = this.live(key);
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  set(key: string, value: unknown, ttlMs?: number): void {
    checkKey(key);
    const text = encode(value);
    if (ttlMs === undefined) {
      this.s.keep.run(this.bridge, key, text);
      return;
    }
    const expires = Date.now() + Math.max(0, ttlMs);
    unsyncedTransaction(this.db.$client, () => this.s.set.run(this.bridge, key, text, expires));
  }

  delete(key: string): void {
    checkKey(key);
    this.s.del.run(this.bridge, key);
  }

  list(prefix: string, o: { after?: string; limit?: number } = {}) {
    const limit = Math.max(1, Math.min(o.limit ?? 1000, 100_000));
    const cursor = o.after !== undefined && o.after >= prefix ? o.after : undefined;
    const lower = cursor ?? prefix;
    const upper = upperBound(prefix);
    const stmt =
      upper === undefined
        ? cursor === undefined
          ? this.lists.fromOpen
          : this.lists.afterOpen
        : cursor === undefined
          ? this.lists.from
          : this.lists.after;
    const bounds = upper === undefined ? [lower] : [lower, upper];
    const rows = stmt.all(
      this.bridge,
      ...bounds,
      prefix.length,
      prefix,
      Date.now(),
      limit,
    ) as Row[];
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as unknown }));
  }

  cas(key: string, expected: unknown, next: unknown, ttlMs?: number): boolean {
    checkKey(key);
    const swap = () => {
      const row = this.live(key);
      const current = row ? (JSON.parse(row.value) as unknown) : undefined;
      if (!isDeepStrictEqual(current, expected)) return false;
      if (next === undefined) this.s.del.run(this.bridge, key);
      else this.set(key, next, ttlMs);
      return true;
    };
    const c = this.db.$client;
    return ttlMs === undefined ? c.transaction(swap)() : unsyncedTransaction(c, swap);
  }

  /** Deletes expired entries of every bridge; answers how many. */
  static prune(db: Db, now = Date.now()): number {
    return db.$client.prepare('DELETE FROM bridge_kv WHERE expires_at <= ?').run(now).changes;
  }
}
