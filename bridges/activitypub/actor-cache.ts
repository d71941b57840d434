/**
 * What the inbox needs of a remote actor (its name, handle and profile URL, carried into the
 * trxs it posts), remembered for a while: without it every activity fetched its actor again
 * (a signed GET under authorized fetch, then a JSON-LD parse), which was most of the cost of a
 * reply. Mastodon refreshes remote profiles on a schedule too; here an entry lives an hour, an
 * `Update` or `Delete` of the actor drops it at once, and the oldest go first past the bound.
 */
import type { ApActorInfo } from './mapping.ts';

const TTL_MS = 60 * 60 * 1000;
const MAX_ENTRIES = 10_000;

export class ActorInfoCache {
  private readonly entries = new Map<string, { info: ApActorInfo; at: number }>();
  private readonly ttlMs: number;
  private readonly max: number;

  constructor(o: { ttlMs?: number; max?: number } = {}) {
    this.ttlMs = o.ttlMs ?? TTL_MS;
    this.max = o.max ?? MAX_ENTRIES;
  }

  get(actorId: string, now = Date.now()): ApActorInfo | undefined {
    const e = this.entries.get(actorId);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs) {
      this.entries.delete(actorId);
      return undefined;
    }
    return e.info;
  }

  set(actorId: string, info: ApActorInfo, now = Date.now()): void {
    this.entries.delete(actorId);
    this.entries.set(actorId, { info, at: now });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  drop(actorId: string): void {
    this.entries.delete(actorId);
  }

  get size(): number {
    return this.entries.size;
  }
}
