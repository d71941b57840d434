/**
 * Fedify's KvStore on the bridge's persistent key-value state (port.kv('activitypub'), the
 * node's SQLite): nothing Fedify remembers (public keys, remote documents, idempotence, which
 * signature spec a server takes, circuit state) lives only in memory.
 *
 * A KvKey is stored as its JSON text (`["_fedify","publicKey","https://…"]`), so the entries
 * under a prefix are the exact key and the keys whose text starts with the prefix's text minus
 * its closing bracket plus a comma. Values are JSON, null included (Fedify caches "this key is
 * known missing" as null).
 */
import type { KvKey, KvStore, KvStoreListEntry, KvStoreSetOptions } from '@fedify/fedify';
import type { BridgeKv } from '../port.ts';

/** The key text of this store's entries (every one under one prefix of the bridge's kv). */
const NS = 'fedify:';

export function encodeKey(key: KvKey): string {
  return NS + JSON.stringify(key);
}

function ttlMs(options?: KvStoreSetOptions): number | undefined {
  const ttl = options?.ttl as { total(o: { unit: string }): number } | undefined;
  if (ttl == null) return undefined;
  return Math.max(0, Math.round(ttl.total({ unit: 'milliseconds' })));
}

export class PortKvStore implements KvStore {
  private readonly kv: BridgeKv;

  constructor(kv: BridgeKv) {
    this.kv = kv;
  }

  async get<T = unknown>(key: KvKey): Promise<T | undefined> {
    return this.kv.get<T>(encodeKey(key));
  }

  async set(key: KvKey, value: unknown, options?: KvStoreSetOptions): Promise<void> {
    // undefined is not JSON: Fedify never stores it, but keep it absent if it does.
    if (value === undefined) this.kv.delete(encodeKey(key));
    else this.kv.set(encodeKey(key), value, ttlMs(options));
  }

  async delete(key: KvKey): Promise<void> {
    this.kv.delete(encodeKey(key));
  }

  async cas(
    key: KvKey,
    expectedValue: unknown,
    newValue: unknown,
    options?: KvStoreSetOptions,
  ): Promise<boolean> {
    return this.kv.cas(encodeKey(key), expectedValue, newValue, ttlMs(options));
  }

  async *list(prefix?: KvKey): AsyncIterable<KvStoreListEntry> {
    let textPrefix: string;
    if (prefix == null || prefix.length === 0) {
      textPrefix = `${NS}[`;
    } else {
      const exact = encodeKey(prefix);
      const value = this.kv.get(exact);
      if (value !== undefined) yield { key: prefix, value };
      textPrefix = `${exact.slice(0, -1)},`;
    }
    let after: string | undefined;
    for (;;) {
      const page = this.kv.list(textPrefix, { limit: 500, ...(after ? { after } : {}) });
      for (const e of page) {
        yield { key: JSON.parse(e.key.slice(NS.length)) as KvKey, value: e.value };
      }
      if (page.length < 500) return;
      after = page[page.length - 1]!.key;
    }
  }
}
