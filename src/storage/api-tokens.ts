/**
 * How API tokens are kept: by the SHA-256 of the token, so the database (or a copy of it) holds
 * nothing a caller could present. Databases from before migration 0006 held the tokens
 * themselves; that migration sets their rows aside in `api_tokens_plaintext`, and
 * hashPlaintextTokens moves them into `api_tokens` when the database is opened.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Db } from './db.ts';
import { apiTokens } from './schema.ts';

const PLAINTEXT_TABLE = 'api_tokens_plaintext';

/** The key a token is stored and found under: SHA-256 of its text, in hex. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new id for a token row (what the token list shows and revoke accepts). */
export function newTokenId(): string {
  return randomUUID();
}

interface PlaintextRow {
  token: string;
  name: string;
  role: string;
  group_id: string;
  expires_at: number;
  revoked: number;
  created_at: number;
}

/**
 * Moves the rows of `api_tokens_plaintext` into `api_tokens`, hashed and with new ids, then drops
 * the old table, in one transaction; a no-op once done. Freed pages are zeroed (secure_delete)
 * and the WAL is checkpointed and truncated, so the old tokens do not linger in the files.
 * Returns how many rows were moved.
 */
export function hashPlaintextTokens(db: Db): number {
  const sqlite = db.$client;
  const pending = sqlite
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
    .get(PLAINTEXT_TABLE);
  if (!pending) return 0;
  const secureDelete = sqlite.pragma('secure_delete', { simple: true }) as number;
  sqlite.pragma('secure_delete = ON');
  try {
    const moved = db.transaction((tx) => {
      const rows = sqlite
        .prepare(
          `SELECT token, name, role, group_id, expires_at, revoked, created_at FROM ${PLAINTEXT_TABLE}`,
        )
        .all() as PlaintextRow[];
      for (const r of rows) {
        tx.insert(apiTokens)
          .values({
            tokenHash: hashToken(r.token),
            id: newTokenId(),
            name: r.name,
            role: r.role,
            groupId: r.group_id,
            expiresAt: r.expires_at,
            revoked: r.revoked !== 0,
            createdAt: r.created_at,
          })
          .onConflictDoNothing()
          .run();
      }
      sqlite.exec(`DROP TABLE ${PLAINTEXT_TABLE}`);
      return rows.length;
    });
    sqlite.pragma('wal_checkpoint(TRUNCATE)');
    return moved;
  } finally {
    sqlite.pragma(`secure_delete = ${secureDelete}`);
  }
}
