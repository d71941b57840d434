/**
 * NIP-01 filters of REQ and COUNT (with NIP-50 `search`): checked against limits before they run,
 * and matched in memory against live events. The store (bridges/nostr/store.ts) answers the same
 * filters from SQLite with the same meaning: lists match any of their values, fields all hold,
 * since and until are inclusive, a `#x` filter looks at the first value of the tags named x, and
 * a search term is a case-insensitive substring of the content.
 */
import { type Checked, isHex64 } from './event.ts';
import type { NostrEvent, NostrFilter } from './types.ts';

export interface FilterLimits {
  /** Values in one list (ids, authors, kinds, #x). */
  maxFilterValues: number;
  /** The largest `limit`: a larger one is clamped to it. */
  maxLimit: number;
}

/** The longest `search`, and the longest value a `#x` filter may hold (tags are indexed so far). */
export const MAX_SEARCH_CHARS = 256;
export const MAX_TAG_FILTER_CHARS = 1024;

const TAG_KEY = /^#[A-Za-z]$/;
/** NIP-50 extensions (`key:value`) this relay ignores rather than search for. */
const SEARCH_EXTENSIONS = /^(include|domain|language|sentiment|nsfw):/;

function bad(reason: string): { ok: false; reason: string } {
  return { ok: false, reason: `invalid: ${reason}` };
}

function isTimestamp(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Checks one filter; `limit` comes back clamped to the relay's largest. */
export function parseFilter(raw: unknown, limits: FilterLimits): Checked<NostrFilter> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return bad('a filter is a JSON object');
  }
  const out: NostrFilter = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case 'ids':
      case 'authors': {
        if (!Array.isArray(v) || !v.every(isHex64)) {
          return bad(`${key} must be a list of 64 lowercase hex characters each`);
        }
        if (v.length > limits.maxFilterValues) {
          return bad(`${key} has more than ${limits.maxFilterValues} values`);
        }
        out[key] = v;
        break;
      }
      case 'kinds': {
        if (
          !Array.isArray(v) ||
          !v.every((k) => typeof k === 'number' && Number.isInteger(k) && k >= 0 && k <= 65535)
        ) {
          return bad('kinds must be a list of integers from 0 to 65535');
        }
        if (v.length > limits.maxFilterValues) {
          return bad(`kinds has more than ${limits.maxFilterValues} values`);
        }
        out.kinds = v;
        break;
      }
      case 'since':
      case 'until':
        if (!isTimestamp(v)) return bad(`${key} must be a non-negative integer`);
        out[key] = v;
        break;
      case 'limit':
        if (!isTimestamp(v)) return bad('limit must be a non-negative integer');
        out.limit = Math.min(v, limits.maxLimit);
        break;
      case 'search':
        if (typeof v !== 'string') return bad('search must be a string');
        if (v.length > MAX_SEARCH_CHARS) return bad(`search is longer than ${MAX_SEARCH_CHARS}`);
        out.search = v;
        break;
      default: {
        if (!TAG_KEY.test(key)) {
          return { ok: false, reason: `unsupported: filter field ${JSON.stringify(key)}` };
        }
        if (
          !Array.isArray(v) ||
          !v.every((s) => typeof s === 'string' && s.length <= MAX_TAG_FILTER_CHARS)
        ) {
          return bad(`${key} must be a list of strings of at most ${MAX_TAG_FILTER_CHARS}`);
        }
        if (v.length > limits.maxFilterValues) {
          return bad(`${key} has more than ${limits.maxFilterValues} values`);
        }
        out[key as `#${string}`] = v;
      }
    }
  }
  return { ok: true, value: out };
}

/**
 * The words of a NIP-50 search, lowercased, without the `key:value` extensions (ignored):
 * an event matches when its content holds each of them.
 */
export function searchTerms(search: string): string[] {
  const terms: string[] = [];
  for (const w of search.toLowerCase().split(/\s+/)) {
    if (w.length === 0 || SEARCH_EXTENSIONS.test(w)) continue;
    if (!terms.includes(w)) terms.push(w);
  }
  return terms;
}

/** The tag filters of a filter, as [letter, values]. */
export function tagFilters(f: NostrFilter): [string, string[]][] {
  const out: [string, string[]][] = [];
  for (const key in f) {
    if (key.charCodeAt(0) === 35 /* # */) {
      const values = f[key as `#${string}`];
      if (values) out.push([key.slice(1), values]);
    }
  }
  return out;
}

/** A filter made ready to match many live events quickly. */
export type Matcher = (e: NostrEvent) => boolean;

export function compileFilter(f: NostrFilter): Matcher {
  const ids = f.ids ? new Set(f.ids) : null;
  const authors = f.authors ? new Set(f.authors) : null;
  const kinds = f.kinds ? new Set(f.kinds) : null;
  const since = f.since ?? -1;
  const until = f.until ?? Number.MAX_SAFE_INTEGER;
  const tags = tagFilters(f).map(([name, values]) => [name, new Set(values)] as const);
  const terms = f.search === undefined ? [] : searchTerms(f.search);
  return (e) => {
    if (ids && !ids.has(e.id)) return false;
    if (authors && !authors.has(e.pubkey)) return false;
    if (kinds && !kinds.has(e.kind)) return false;
    if (e.created_at < since || e.created_at > until) return false;
    for (const [name, values] of tags) {
      let found = false;
      for (const t of e.tags) {
        if (t[0] === name && t.length > 1 && values.has(t[1]!)) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    if (terms.length > 0) {
      const text = e.content.toLowerCase();
      for (const term of terms) if (!text.includes(term)) return false;
    }
    return true;
  };
}

/** Whether an event matches a filter (compile once with compileFilter to match many). */
export function matchFilter(f: NostrFilter, e: NostrEvent): boolean {
  return compileFilter(f)(e);
}
