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

const pragmas = new WeakMap<
  Database.Database,
  { level: Database.Statement; set: Database.Statement[] }
>();

/**
 * Runs `f` in a transaction whose commit does not wait for an fsync (synchronous = NORMAL for
 * this commit only), for writes that may be lost on a power loss without harm: they can be
 * redone, or they only save work. A killed process loses nothing either way (the OS holds the
 * pages), and the write-ahead log is ordered, so the next synced commit of the database makes
 * these durable too. Inside a transaction already, `f` runs in a savepoint of it (and is synced
 * as that transaction is).
 */
export function unsyncedTransaction<T>(client: Database.Database, f: () => T): T {
  if (client.inTransaction) return client.transaction(f)();
  let p = pragmas.get(client);
  if (!p) {
    p = {
      level: client.prepare('PRAGMA synchronous').pluck(),
      set: [0, 1, 2, 3].map((level) => client.prepare(`PRAGMA synchronous = ${level}`)),
    };
    pragmas.set(client, p);
  }
  const level = p.level.get() as number;
  if (level <= 1) return client.transaction(f)();
  p.set[1]!.run();
  try {
    return client.transaction(f)();
  } finally {
    p.set[level]!.run();
  }
}
