/**
 * The relay's names and identifiers for the outside:
 *
 * - NIP-05 on the gateway, `GET /.well-known/nostr.json?name=<name>`: a group exposed on Nostr
 *   answers by its exposure handle, and `_` (the root identifier) by itself, both with the
 *   relay's own key (NIP-11 `self`; NIP-29 relays speak for their groups with it). An author of
 *   a served public group answers by `u_<hex of its 33-byte RUM key>`, the same name the
 *   ActivityPub bridge gives it, with its Nostr pubkey (the key's x coordinate; for an author
 *   who posted from Nostr, its own key; none for one bridged from elsewhere; for a RUM key
 *   linked to a Nostr key in a served public group (key-links.ts), that key). Every name
 *   comes with the relay's URL. An unknown or malformed name answers 200 `{"names":{}}`, as
 *   static nostr.json files do; without a name, the groups and `_` (at most 1000), never the
 *   authors.
 * - NIP-19 identifiers of a group for the admin API: the relay URL, the NIP-29 `host'id`, the
 *   `naddr` of its 39000 metadata event and the relay key's `npub`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BridgePort, ExposedGroup } from '../port.ts';
import { nostrPubkeyOf } from './author.ts';
import { KeyLinks } from './key-links.ts';
import { naddrEncode, npubEncode } from './nip19.ts';

export const NIP05_PATH = '/.well-known/nostr.json';
/** Group names listed when no name is asked. */
export const MAX_LISTED_NAMES = 1000;
/** The longest name served is an author's, `u_` and 66 hex digits. */
const NAME = /^[a-z0-9._-]{1,100}$/;
const AUTHOR = /^u_(0[23][0-9a-f]{64})$/;

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, OPTIONS',
  'access-control-allow-headers': '*',
};

export interface Nip05Answer {
  names: Record<string, string>;
  relays?: Record<string, string[]>;
}

/** The relay's WebSocket URL from the gateway's public origin (`https:` → `wss:`). */
export function relayUrl(origin: string): string {
  const u = new URL(origin.endsWith('/') ? origin : `${origin}/`);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

const served = (e: ExposedGroup | undefined): e is ExposedGroup =>
  !!e && e.nostr && e.suspended === null;

/** The NIP-05 document for a name (already lowercased), or for all group names. */
export function nip05Names(port: BridgePort, relayKey: string, name?: string): Nip05Answer {
  const relays = [relayUrl(port.origin)];
  const answer = (entries: [string, string][]): Nip05Answer => ({
    names: Object.fromEntries(entries),
    relays: Object.fromEntries([...new Set(entries.map(([, k]) => k))].map((k) => [k, relays])),
  });
  if (name === undefined) {
    const groups = port
      .exposures()
      .filter(served)
      .slice(0, MAX_LISTED_NAMES - 1)
      .map((e): [string, string] => [e.handle, relayKey]);
    return answer([['_', relayKey], ...groups]);
  }
  if (!NAME.test(name)) return { names: {} };
  if (name === '_') return answer([[name, relayKey]]);
  const author = AUTHOR.exec(name);
  if (author) {
    const rumKey = Buffer.from(author[1] as string, 'hex').toString('base64url');
    // A Nostr author's posts keep its own key; an author bridged from elsewhere has no Nostr key
    // (its posts are served signed by the relay); a RUM author's is its group key's x.
    const outside = port.authorOf(rumKey);
    const open = (groupId: string) => {
      const e = port.exposure(groupId);
      return served(e) && e.encryption === 'public';
    };
    // One author: a RUM key linked to a Nostr key goes by that key.
    const linked = new KeyLinks(port.kv('nostr')).groupsOfRum(rumKey).find((l) => open(l.groupId));
    const pubkey = linked
      ? linked.nostr
      : !outside
        ? nostrPubkeyOf(rumKey)
        : outside.network === 'nostr'
          ? outside.author
          : null;
    const known =
      linked !== undefined ||
      port.exposures().some((e) => open(e.groupId) && port.hasAuthor(e.groupId, rumKey));
    return pubkey && known ? answer([[name, pubkey]]) : { names: {} };
  }
  return served(port.exposureByHandle(name)) ? answer([[name, relayKey]]) : { names: {} };
}

/** Registers NIP-05 (and its CORS preflight) on the gateway. */
export function mountNip05(app: FastifyInstance, port: BridgePort, relayKey: () => string): void {
  const cors = (reply: FastifyReply) => reply.headers(CORS);
  app.options(NIP05_PATH, async (_req, reply) => cors(reply).code(204).send());
  app.get(NIP05_PATH, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const raw = q.name;
    cors(reply).header('cache-control', 'public, max-age=300');
    if (raw === undefined) return nip05Names(port, relayKey());
    if (typeof raw !== 'string') return { names: {} };
    return nip05Names(port, relayKey(), raw.toLowerCase());
  });
}

/** What the admin API shows of a group on Nostr (null when it is not served there). */
export function nostrIdentifiers(
  port: BridgePort,
  relayKey: string,
  e: ExposedGroup,
): Record<string, string> | null {
  if (!served(e)) return null;
  const relay = relayUrl(port.origin);
  return {
    relay,
    group: `${new URL(relay).host}'${e.groupId}`,
    naddr: naddrEncode({ identifier: e.groupId, pubkey: relayKey, kind: 39000, relays: [relay] }),
    npub: npubEncode(relayKey),
    nip05: `${e.handle}@${new URL(relay).host}`,
  };
}
