/**
 * Which outside relays each group publishes to (the operator's choice, on the admin API), kept in
 * the bridge's kv (port.kv('nostr')) under `pub:<group id>`. Each relay of a group carries a
 * generation, made when the operator added it: the publisher's stream cursor is named after
 * (relay, generation), so a relay removed and added again starts at the head again rather than
 * resuming from where it stopped. Used by the admin routes (admin.ts) and the publisher.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BridgeKv } from '../port.ts';

/** The longest relay URL taken. */
export const MAX_RELAY_URL_CHARS = 512;

/** One outside relay of a group. */
export interface PublishTarget {
  /** The normalized ws(s) URL. */
  url: string;
  /** Made when the relay was added: names its cursor. */
  gen: string;
  /** When it was added, ms since the epoch. */
  since: number;
}

/** Why a relay list was refused: the message is for the operator. */
export class RelayListError extends Error {
  override name = 'RelayListError';
}

/**
 * A relay URL in its one written form: ws or wss, no credentials or fragment, lowercase scheme
 * and host, no default port, and no trailing `/` when the path is only `/` (`wss://relay.example`).
 */
export function normalizeRelayUrl(input: unknown): string {
  if (typeof input !== 'string')
    throw new RelayListError('a relay is a ws:// or wss:// URL string');
  const s = input.trim();
  if (s.length === 0) throw new RelayListError('a relay URL is empty');
  if (s.length > MAX_RELAY_URL_CHARS) {
    throw new RelayListError(`a relay URL is longer than ${MAX_RELAY_URL_CHARS} characters`);
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new RelayListError(`not a URL: ${JSON.stringify(s)}`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new RelayListError(`${JSON.stringify(s)} is not a ws:// or wss:// URL`);
  }
  if (u.username || u.password) {
    throw new RelayListError(`${JSON.stringify(s)} carries credentials; give the relay's URL only`);
  }
  if (!u.hostname) throw new RelayListError(`${JSON.stringify(s)} names no host`);
  u.hash = '';
  const href = u.href;
  return u.pathname === '/' && !u.search ? href.replace(/\/$/, '') : href;
}

/**
 * The relay list an operator gave, normalized and deduplicated in its order; throws
 * RelayListError when it is not a list of at most `max` relay URLs, or names `self`.
 */
export function parseRelayList(input: unknown, max: number, self?: string): string[] {
  if (!Array.isArray(input)) throw new RelayListError('"relays" is a list of ws:// or wss:// URLs');
  if (input.length > max) {
    throw new RelayListError(`at most ${max} relays per group (limits.nostrPublishMaxRelays)`);
  }
  const out: string[] = [];
  const selfUrl = self === undefined ? undefined : normalizeRelayUrl(self);
  for (const x of input) {
    const url = normalizeRelayUrl(x);
    if (url === selfUrl) {
      throw new RelayListError(`${url} is this node's own relay: it serves the group already`);
    }
    if (!out.includes(url)) out.push(url);
  }
  return out;
}

/** The stream consumer of a group's relay (port.stream's names are `[A-Za-z0-9_.:@-]{1,100}`). */
export function consumerOf(target: Pick<PublishTarget, 'url' | 'gen'>): string {
  const h = createHash('sha256').update(`${target.url} ${target.gen}`).digest('hex');
  return `nostr-pub:${h.slice(0, 40)}`;
}

const PREFIX = 'pub:';

export class PublishConfig {
  private readonly kv: BridgeKv;
  private readonly listeners = new Set<(groupId: string, before: PublishTarget[]) => void>();

  constructor(kv: BridgeKv) {
    this.kv = kv;
  }

  /** The relays a group publishes to, in the operator's order. */
  targets(groupId: string): PublishTarget[] {
    return this.kv.get<{ relays: PublishTarget[] }>(`${PREFIX}${groupId}`)?.relays ?? [];
  }

  /** Every group with relays configured. */
  groups(): string[] {
    return this.kv.list(PREFIX).map((e) => e.key.slice(PREFIX.length));
  }

  /**
   * Sets a group's relays (already normalized): a relay kept keeps its generation (and so its
   * cursor); a new one gets a new generation. Answers the new list.
   */
  set(groupId: string, urls: readonly string[], now = Date.now()): PublishTarget[] {
    const before = this.targets(groupId);
    const next = urls.map(
      (url) =>
        before.find((t) => t.url === url) ?? {
          url,
          gen: randomBytes(6).toString('hex'),
          since: now,
        },
    );
    if (next.length === 0) this.kv.delete(`${PREFIX}${groupId}`);
    else this.kv.set(`${PREFIX}${groupId}`, { relays: next });
    for (const l of [...this.listeners]) l(groupId, before);
    return next;
  }

  /** Told after a group's relays changed, with the list before; returns unsubscribe. */
  onChange(listener: (groupId: string, before: PublishTarget[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
