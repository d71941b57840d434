/**
 * The relay's events in the node's SQLite (tables nostr_events, nostr_tags, nostr_tombstones and
 * the FTS5 index nostr_search; src/storage/schema.ts, migrations 0010 and 0011), with NIP-01's
 * storage rules: replaceable (0, 3, 10000–19999) and addressable (30000–39999, by `d`) events
 * keep one version, the newest by created_at, the lowest id on a tie; ephemeral ones
 * (20000–29999) are never stored; NIP-09 deletions remove their author's events and leave
 * tombstones so they cannot come back; NIP-40 expired events are refused, not served, and
 * pruned. Queries answer NIP-01 filters newest first (lowest id first on a tie), NIP-50 search
 * through FTS5 and NIP-45 counts. Raw prepared statements: this is the relay's hot path.
 *
 * Only the relay core (bridges/nostr/relay.ts) uses it; it knows nothing of RUM.
 */
import type Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../src/storage/db.ts';
import {
  expirationOf,
  isAddressable,
  isEphemeral,
  isReplaceable,
  isHex64,
  replaceKey,
} from './event.ts';
import { MAX_TAG_FILTER_CHARS, searchTerms, tagFilters } from './filter.ts';
import type { NostrEvent, NostrFilter } from './types.ts';

/** What became of an event given to the store. */
export type PutOutcome =
  /** Kept (a replaced version and the events it deletes are gone). */
  | 'stored'
  /** The same event is kept already. */
  | 'duplicate'
  /** A replaceable or addressable event older than the version kept (or equal, higher id). */
  | 'older'
  /** Its author deleted it (NIP-09): it cannot be added again. */
  | 'deleted'
  /** Its NIP-40 expiration has passed. */
  | 'expired'
  /** Ephemeral: relayed, never kept. */
  | 'ephemeral';

export interface StoreComponents {
  db: Db;
  /** Now, in seconds since the epoch (tests move it). */
  now?: () => number;
}

interface Row {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string;
  content: string;
  sig: string;
}

const COLUMNS = 'e.id, e.pubkey, e.created_at, e.kind, e.tags, e.content, e.sig';
/** Prepared queries kept by shape (the lists are bound as JSON, so shapes are few). */
const MAX_CACHED_STATEMENTS = 256;
/** Expired events pruned per transaction. */
const PRUNE_BATCH = 1000;

function toEvent(r: Row): NostrEvent {
  return {
    id: r.id,
    pubkey: r.pubkey,
    created_at: r.created_at,
    kind: r.kind,
    tags: JSON.parse(r.tags) as string[][],
    content: r.content,
    sig: r.sig,
  };
}

/** The tags the index keeps: single-letter names, the first value, once per (name, value). */
function indexedTags(e: NostrEvent): [string, string][] {
  const seen = new Set<string>();
  const out: [string, string][] = [];
  for (const t of e.tags) {
    const name = t[0]!;
    const value = t[1];
    if (name.length !== 1 || value === undefined || value.length > MAX_TAG_FILTER_CHARS) continue;
    const c = name.charCodeAt(0);
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) continue;
    const key = `${name}\n${value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push([name, value]);
  }
  return out;
}

/** A NIP-09 `a` target `kind:pubkey:d` of a replaceable or addressable kind, parsed. */
function parseAddress(a: string): { kind: number; pubkey: string; d: string } | null {
  const m = /^(\d{1,5}):([0-9a-f]{64}):(.*)$/s.exec(a);
  if (!m) return null;
  const kind = Number(m[1]);
  if (!isReplaceable(kind) && !isAddressable(kind)) return null;
  return { kind, pubkey: m[2]!, d: isReplaceable(kind) ? '' : m[3]! };
}

/** A LIKE pattern matching `term` anywhere, with LIKE's wildcards escaped by backslash. */
function likeAnywhere(term: string): string {
  return `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** An FTS5 phrase: the term quoted (a quote doubled), so it is matched as a substring. */
function ftsPhrase(term: string): string {
  return `"${term.replaceAll('"', '""')}"`;
}

interface Built {
  sql: string;
  params: unknown[];
  /** NIP-01's order, on the driving index's created_at when it has one. */
  order: string;
}

export class NostrStore {
  private readonly c: Database.Database;
  private readonly now: () => number;
  private readonly s: Record<
    | 'byId'
    | 'insert'
    | 'insertTag'
    | 'tomb'
    | 'tombAddr'
    | 'addTomb'
    | 'current'
    | 'deleteSeq'
    | 'deleteById'
    | 'deleteOwn'
    | 'deleteAddr'
    | 'prune',
    Statement
  >;
  private readonly cache = new Map<string, Statement>();
  private readonly putTx: (e: NostrEvent) => PutOutcome;

  constructor({ db, now = () => Math.floor(Date.now() / 1000) }: StoreComponents) {
    const c = db.$client;
    this.c = c;
    this.now = now;
    this.s = {
      byId: c.prepare('SELECT seq FROM nostr_events WHERE id = ?'),
      insert: c.prepare(
        'INSERT INTO nostr_events (id, pubkey, created_at, kind, tags, content, sig, d_tag, expires_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertTag: c.prepare(
        'INSERT OR IGNORE INTO nostr_tags (event_seq, name, value, created_at) VALUES (?, ?, ?, ?)',
      ),
      tomb: c.prepare('SELECT 1 FROM nostr_tombstones WHERE target = ? AND pubkey = ?'),
      tombAddr: c.prepare(
        'SELECT 1 FROM nostr_tombstones WHERE target = ? AND pubkey = ? AND until >= ?',
      ),
      addTomb: c.prepare(
        'INSERT INTO nostr_tombstones (target, pubkey, until) VALUES (?, ?, ?) ' +
          'ON CONFLICT (target, pubkey) DO UPDATE SET until = max(until, excluded.until)',
      ),
      current: c.prepare(
        'SELECT seq, id, created_at FROM nostr_events WHERE pubkey = ? AND kind = ? AND d_tag = ?',
      ),
      deleteSeq: c.prepare('DELETE FROM nostr_events WHERE seq = ?'),
      deleteById: c.prepare('DELETE FROM nostr_events WHERE id = ?'),
      deleteOwn: c.prepare('DELETE FROM nostr_events WHERE id = ? AND pubkey = ? AND kind != 5'),
      deleteAddr: c.prepare(
        'DELETE FROM nostr_events WHERE pubkey = ? AND kind = ? AND d_tag = ? AND created_at <= ?',
      ),
      prune: c.prepare(
        'DELETE FROM nostr_events WHERE seq IN (SELECT seq FROM nostr_events ' +
          'WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)',
      ),
    };
    this.putTx = c.transaction((e: NostrEvent) => this.putIn(e));
  }

  /**
   * Stores an event under NIP-01, 09 and 40's rules (its form, id and signature checked). In a
   * transaction of the caller's (the groups layer stores a batch of committed items in one),
   * that transaction is the unit: on an error the caller rolls all of it back, so no savepoint
   * of its own is paid per event.
   */
  put(e: NostrEvent): PutOutcome {
    if (isEphemeral(e.kind)) return 'ephemeral';
    const expires = expirationOf(e);
    if (expires !== null && expires <= this.now()) return 'expired';
    return this.c.inTransaction ? this.putIn(e) : this.putTx(e);
  }

  private putIn(e: NostrEvent): PutOutcome {
    const s = this.s;
    if (s.byId.get(e.id)) return 'duplicate';
    if (s.tomb.get(e.id, e.pubkey)) return 'deleted';
    const d = replaceKey(e);
    if (d !== null) {
      if (s.tombAddr.get(`${e.kind}:${e.pubkey}:${d}`, e.pubkey, e.created_at)) return 'deleted';
      const cur = s.current.get(e.pubkey, e.kind, d) as
        | { seq: number; id: string; created_at: number }
        | undefined;
      if (cur) {
        const newer =
          e.created_at > cur.created_at || (e.created_at === cur.created_at && e.id < cur.id);
        if (!newer) return 'older';
        s.deleteSeq.run(cur.seq);
      }
    }
    const info = s.insert.run(
      e.id,
      e.pubkey,
      e.created_at,
      e.kind,
      JSON.stringify(e.tags),
      e.content,
      e.sig,
      d,
      expirationOf(e),
    );
    const seq = info.lastInsertRowid;
    for (const [name, value] of indexedTags(e)) s.insertTag.run(seq, name, value, e.created_at);
    if (e.kind === 5) this.applyDeletion(e);
    return 'stored';
  }

  /** NIP-09: removes what the deletion's `e` and `a` tags name, of its own author only. */
  private applyDeletion(del: NostrEvent): void {
    const s = this.s;
    for (const t of del.tags) {
      const v = t[1];
      if (v === undefined) continue;
      if (t[0] === 'e' && isHex64(v)) {
        s.addTomb.run(v, del.pubkey, del.created_at);
        s.deleteOwn.run(v, del.pubkey);
      } else if (t[0] === 'a') {
        const a = parseAddress(v);
        if (!a || a.pubkey !== del.pubkey) continue;
        s.addTomb.run(`${a.kind}:${a.pubkey}:${a.d}`, del.pubkey, del.created_at);
        s.deleteAddr.run(a.pubkey, a.kind, a.d, del.created_at);
      }
    }
  }

  /** Whether an event is kept (expired ones included until they are pruned). */
  has(id: string): boolean {
    return this.s.byId.get(id) !== undefined;
  }

  /** Removes an event by id, without a tombstone. Answers whether it was kept. */
  remove(id: string): boolean {
    return this.s.deleteById.run(id).changes > 0;
  }

  /** Deletes the events whose expiration has passed; answers how many. */
  pruneExpired(): number {
    const now = this.now();
    let total = 0;
    for (;;) {
      const n = this.s.prune.run(now, PRUNE_BATCH).changes;
      total += n;
      if (n < PRUNE_BATCH) return total;
    }
  }

  /**
   * The stored events that match a filter, newest first (lowest id first on a tie), at most
   * its limit (or `defaultLimit`), expired ones left out.
   */
  query(f: NostrFilter, defaultLimit: number): NostrEvent[] {
    const limit = f.limit ?? defaultLimit;
    if (limit === 0 || isEmpty(f)) return [];
    const b = this.build(f, 'rows');
    b.sql += ` ORDER BY ${b.order} LIMIT ?`;
    b.params.push(limit);
    return (this.prepared(b.sql).all(...b.params) as Row[]).map(toEvent);
  }

  /** The stored events matching any of the filters, each filter with its own limit. */
  queryAll(filters: NostrFilter[], defaultLimit: number): NostrEvent[] {
    if (filters.length === 1) return this.query(filters[0]!, defaultLimit);
    const byId = new Map<string, NostrEvent>();
    for (const f of filters) for (const e of this.query(f, defaultLimit)) byId.set(e.id, e);
    return [...byId.values()].sort(newestFirst);
  }

  /** NIP-45: how many stored events match any of the filters (limits ignored). */
  count(filters: NostrFilter[]): number {
    const parts: Built[] = [];
    for (const f of filters) if (!isEmpty(f)) parts.push(this.build(f, 'seq'));
    if (parts.length === 0) return 0;
    const sql =
      parts.length === 1
        ? `SELECT count(*) AS n FROM (${parts[0]!.sql})`
        : `SELECT count(*) AS n FROM (${parts.map((p) => p.sql).join(' UNION ')})`;
    const row = this.prepared(sql).get(...parts.flatMap((p) => p.params)) as { n: number };
    return row.n;
  }

  /**
   * Every stored event matching any of the filters (limits ignored), in no set order, until
   * `fn` answers false: for counting what a connection may read.
   */
  each(filters: NostrFilter[], fn: (e: NostrEvent) => boolean): void {
    const parts: Built[] = [];
    for (const f of filters) if (!isEmpty(f)) parts.push(this.build(f, 'rows'));
    if (parts.length === 0) return;
    const sql = parts.map((p) => p.sql).join(' UNION ');
    for (const r of this.prepared(sql).iterate(
      ...parts.flatMap((p) => p.params),
    ) as Iterable<Row>) {
      if (!fn(toEvent(r))) return;
    }
  }

  /** Query plans, for tests and benchmarks. */
  explain(f: NostrFilter): string[] {
    const b = this.build(f, 'rows');
    b.sql += ` ORDER BY ${b.order} LIMIT ?`;
    b.params.push(1);
    return (
      this.c.prepare(`EXPLAIN QUERY PLAN ${b.sql}`).all(...b.params) as { detail: string }[]
    ).map((r) => r.detail);
  }

  private prepared(sql: string): Statement {
    let st = this.cache.get(sql);
    if (st) {
      // Most recently used last.
      this.cache.delete(sql);
      this.cache.set(sql, st);
      return st;
    }
    st = this.c.prepare(sql);
    if (this.cache.size >= MAX_CACHED_STATEMENTS) {
      this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(sql, st);
    return st;
  }

  /**
   * The SELECT of one filter (without ORDER BY): from a tag filter's index when it has one (the
   * one with fewest values), else from the index of nostr_events that fits best — ids, then
   * authors (with kinds), kinds, time — named, since SQLite cannot guess how long a list bound
   * as JSON is. Lists are bound as one JSON parameter, so the statement's text depends only on
   * which fields the filter has.
   */
  private build(f: NostrFilter, what: 'rows' | 'seq'): Built {
    const where: string[] = [];
    const params: unknown[] = [];
    const list = (column: string, values: readonly (string | number)[]) => {
      if (values.length === 1) {
        where.push(`${column} = ?`);
        params.push(values[0]);
      } else {
        where.push(`${column} IN (SELECT value FROM json_each(?))`);
        params.push(JSON.stringify(values));
      }
    };
    const tags = tagFilters(f).sort((a, b) => a[1].length - b[1].length);
    // Ids are the most selective of all; otherwise a tag's index leads.
    const driver = f.ids ? undefined : tags.shift();
    let from: string;
    let distinct = '';
    let order = 'e.created_at DESC, e.id ASC';
    if (driver) {
      // From the tag index, newest first: (name, value, created_at) is its key.
      from = 'nostr_tags t CROSS JOIN nostr_events e ON e.seq = t.event_seq';
      where.push('t.name = ?');
      params.push(driver[0]);
      list('t.value', driver[1]);
      if (f.since !== undefined) {
        where.push('t.created_at >= ?');
        params.push(f.since);
      }
      if (f.until !== undefined) {
        where.push('t.created_at <= ?');
        params.push(f.until);
      }
      // One event may carry two of the values; with one, the tag index gives the order.
      if (driver[1].length > 1) distinct = 'DISTINCT ';
      else order = 't.created_at DESC, e.id ASC';
    } else {
      let index: string | null;
      if (f.ids) index = 'nostr_events_id';
      else if (f.authors) index = f.kinds ? 'nostr_events_pubkey_kind' : 'nostr_events_pubkey';
      else if (f.kinds) index = 'nostr_events_kind';
      // A search alone is read from the full-text index: SQLite picks.
      else if (f.search !== undefined && searchTerms(f.search).length > 0) index = null;
      else index = 'nostr_events_created';
      from = index ? `nostr_events e INDEXED BY ${index}` : 'nostr_events e';
    }
    if (f.ids) list('e.id', f.ids);
    if (f.authors) list('e.pubkey', f.authors);
    if (f.kinds) list('e.kind', f.kinds);
    if (f.since !== undefined) {
      where.push('e.created_at >= ?');
      params.push(f.since);
    }
    if (f.until !== undefined) {
      where.push('e.created_at <= ?');
      params.push(f.until);
    }
    for (const [name, values] of tags) {
      where.push(
        values.length === 1
          ? 'EXISTS (SELECT 1 FROM nostr_tags x WHERE x.name = ? AND x.value = ? AND x.created_at = e.created_at AND x.event_seq = e.seq)'
          : 'EXISTS (SELECT 1 FROM nostr_tags x WHERE x.name = ? AND x.value IN (SELECT value FROM json_each(?)) AND x.created_at = e.created_at AND x.event_seq = e.seq)',
      );
      params.push(name, values.length === 1 ? values[0] : JSON.stringify(values));
    }
    if (f.search !== undefined) {
      const terms = searchTerms(f.search);
      const long = terms.filter((t) => [...t].length >= 3);
      if (long.length > 0) {
        where.push('e.seq IN (SELECT rowid FROM nostr_search WHERE nostr_search MATCH ?)');
        params.push(long.map(ftsPhrase).join(' '));
      }
      // The trigram index cannot look up terms of one or two characters.
      for (const t of terms) {
        if ([...t].length >= 3) continue;
        where.push("e.content LIKE ? ESCAPE '\\'");
        params.push(likeAnywhere(t));
      }
    }
    where.push('(e.expires_at IS NULL OR e.expires_at > ?)');
    params.push(this.now());
    const cols = what === 'seq' ? 'e.seq' : COLUMNS;
    return {
      sql: `SELECT ${distinct}${cols} FROM ${from} WHERE ${where.join(' AND ')}`,
      params,
      order,
    };
  }
}

/** Whether a filter can match nothing (an empty list). */
function isEmpty(f: NostrFilter): boolean {
  if (f.ids?.length === 0 || f.authors?.length === 0 || f.kinds?.length === 0) return true;
  if (f.since !== undefined && f.until !== undefined && f.since > f.until) return true;
  for (const [, values] of tagFilters(f)) if (values.length === 0) return true;
  return false;
}

/** NIP-01's order: newest first, the lowest id first on a tie. */
export function newestFirst(a: NostrEvent, b: NostrEvent): number {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
