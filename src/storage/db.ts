/** Opens the node's SQLite database and applies the drizzle migrations in migrations/. */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export interface DatabaseOptions {
  /**
   * SQLite's synchronous mode; the journal is WAL either way. 'full' fsyncs the WAL at every
   * commit before the commit returns: a commit survives a killed process and a power loss or
   * kernel crash (on a disk that honours fsync). 'normal' fsyncs only at checkpoints: a killed
   * process loses nothing (the OS holds the written pages), but a power loss or kernel crash may
   * lose the last commits; the database stays consistent.
   */
  sync?: 'full' | 'normal';
}

export function openDatabase(file: string, options: DatabaseOptions = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const sqlite = new Database(file);
  // WAL keeps readers off the writer's back.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${options.sync === 'normal' ? 'NORMAL' : 'FULL'}`);
  syncLevels.set(sqlite, options.sync === 'normal' ? 1 : 2);
  // Checkpoint every 10,000 pages (40 MiB of WAL), not SQLite's 1,000: a page written by many
  // commits in a row (the trx-id index takes random inserts) is copied back to the database
  // once, not at every few commits. A node catching up commits about a third faster.
  sqlite.pragma('wal_autocheckpoint = 10000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = drizzle(sqlite, { schema }) as Db;
  migrate(db, { migrationsFolder: MIGRATIONS_DIR });
  return db;
}

/** The synchronous level each connection was opened with (what unsyncedTransaction restores). */
const syncLevels = new WeakMap<Database.Database, number>();

function syncLevel(client: Database.Database): number {
  let level = syncLevels.get(client);
  if (level === undefined) {
    level = client.pragma('synchronous', { simple: true }) as number;
    syncLevels.set(client, level);
  }
  return level;
}

/**
 * Runs `f` in a transaction whose commit does not wait for an fsync (synchronous = NORMAL for
 * this commit only), for writes that may be lost on a power loss without harm: they can be
 * redone, or they only save work. A killed process loses nothing either way (the OS holds the
 * pages), and the write-ahead log is ordered, so the next synced commit of the database makes
 * these durable too. Inside a transaction already, `f` runs in a savepoint of it (and is synced
 * as that transaction is).
 *
 * The level is set with pragma() each time, never with a prepared PRAGMA statement: SQLite runs
 * a PRAGMA when it is prepared, and a prepared one run again does not reliably set the level
 * again (which once left the whole database at NORMAL after the first unsynced commit).
 */
export function unsyncedTransaction<T>(client: Database.Database, f: () => T): T {
  if (client.inTransaction) return client.transaction(f)();
  const level = syncLevel(client);
  if (level <= 1) return client.transaction(f)();
  client.pragma('synchronous = 1');
  try {
    return client.transaction(f)();
  } finally {
    client.pragma(`synchronous = ${level}`);
  }
}
