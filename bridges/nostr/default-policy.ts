/**
 * The relay's policy until the groups layer plugs in its own: it keeps what a Nostr user's
 * profile needs on any relay (kind 0 metadata, 3 follows, 10002 relay list, 10009 group list)
 * and the NIP-09 deletions of those, refuses every other kind with `restricted:`, and lets
 * everyone read everything.
 */
import type { RelayPolicy } from './types.ts';

export const DEFAULT_KINDS: readonly number[] = [0, 3, 10002, 10009];

export function defaultPolicy(kinds: readonly number[] = DEFAULT_KINDS): RelayPolicy {
  const taken = new Set(kinds);
  const refuse = (message: string) => ({ action: 'refuse', message }) as const;
  return {
    readsAll: true,
    kinds: [...kinds, 5],
    async onEvent(event) {
      if (taken.has(event.kind)) return { action: 'store' };
      if (event.kind !== 5)
        return refuse(`restricted: this relay does not take kind ${event.kind}`);
      // A deletion removes only its author's events, which are of these kinds; one that names
      // other kinds (k tags, a addresses) is not this relay's business.
      for (const t of event.tags) {
        const v = t[1];
        if (v === undefined) continue;
        const kind = t[0] === 'k' ? Number(v) : t[0] === 'a' ? Number(v.split(':')[0]) : null;
        if (kind !== null && !taken.has(kind)) {
          return refuse(`restricted: this relay does not take kind ${v.split(':')[0]}`);
        }
      }
      return { action: 'store' };
    },
    canRead: () => true,
  };
}
