/**
 * NIP-65 relay lists (kind 10002) for the keys whose events this relay serves and whose private
 * keys this node holds, so that a client looking up where such a key writes finds this relay:
 *
 * - the relay's own key (NIP-11 `self`), which signs the groups' metadata and the proxy events;
 * - this node's own author of each served public group (BridgePort.nodeAuthor: the group key
 *   the node posts with, whose x-only form signs its posts' Nostr events), once one of its
 *   events is served here.
 *
 * Each list names the relay's public URL (from the gateway's origin) as a `write` relay: where
 * the key's events are. Not as `read`: the relay takes events that tag such a key only as group
 * posts (with an `h` tag), so it is no inbox for mentions.
 *
 * The author's own word comes first. A list is never published over a 10002 the key published
 * itself (one stored here that this relay did not sign), and once a client sends one (or a
 * deletion) by that key, the relay's list is withdrawn and never made again for it. Other keys
 * (authors of other nodes, Nostr authors) are named with this relay in NIP-05's `relays`
 * (nip05.ts): the relay cannot sign for them.
 *
 * Kept in the bridge kv: `rl:<pubkey>` → the id and URL of the list signed here, or `author`.
 */
import type { BridgeKv, BridgePort } from '../port.ts';
import { nostrPubkeyOf } from './author.ts';
import { eventId } from './event.ts';
import { relayUrl } from './nip05.ts';
import type { NostrEvent, RelayHandle } from './types.ts';

export const RELAY_LIST_KIND = 10002;

type Template = Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>;

/** The list this relay signed for a key, or `author` once the key speaks for itself. */
type Kept = { id: string; url: string } | 'author';

export interface RelayListsComponents {
  port: BridgePort;
  relay: RelayHandle;
  now?: () => number;
}

export class RelayLists {
  private readonly c: RelayListsComponents;
  private readonly kv: BridgeKv;
  /** Keys whose list was checked since start. */
  private readonly checked = new Set<string>();
  /** The Nostr key of this node's own author of each group (null: none). */
  private readonly ownKeys = new Map<string, string | null>();

  constructor(c: RelayListsComponents) {
    this.c = c;
    this.kv = c.port.kv('nostr');
  }

  /**
   * The relay key's list, and those of the node's own authors who posted in a served public
   * group (made again when the gateway's public URL changed).
   */
  start(groups: readonly { groupId: string; encryption: string }[]): void {
    this.ensure(this.c.relay.selfPubkey, (t) => this.c.relay.sign(t));
    for (const g of groups) {
      if (g.encryption !== 'public') continue;
      const own = this.c.port.nodeAuthor(g.groupId);
      if (own && this.c.port.hasAuthor(g.groupId, own.pubkey)) this.ensureOwn(g.groupId);
    }
  }

  /** An event of a group was served here: when the node's own author signed it, its list. */
  served(groupId: string, event: NostrEvent): void {
    if (this.checked.has(event.pubkey) || event.pubkey !== this.ownKey(groupId)) return;
    this.ensureOwn(groupId);
  }

  /**
   * A client's event, before the relay stores it: a relay list by a key this relay made a list
   * for, or its deletion of that list, means the key speaks for itself; the relay's list goes.
   */
  onClientEvent(event: NostrEvent): void {
    if (event.kind !== RELAY_LIST_KIND && event.kind !== 5) return;
    const key = `rl:${event.pubkey}`;
    const kept = this.kv.get<Kept>(key);
    if (kept === undefined || kept === 'author') return;
    if (event.kind === 5) {
      const address = `${RELAY_LIST_KIND}:${event.pubkey}:`;
      const names = event.tags.some(
        (t) => (t[0] === 'e' && t[1] === kept.id) || (t[0] === 'a' && t[1] === address),
      );
      if (!names) return;
    }
    this.c.relay.remove(kept.id);
    this.kv.set(key, 'author');
    this.checked.add(event.pubkey);
  }

  /** The x-only key of the node's own author of a group, or null. */
  private ownKey(groupId: string): string | null {
    let k = this.ownKeys.get(groupId);
    if (k === undefined) {
      const own = this.c.port.nodeAuthor(groupId);
      k = own ? nostrPubkeyOf(own.pubkey) : null;
      this.ownKeys.set(groupId, k);
    }
    return k;
  }

  private ensureOwn(groupId: string): void {
    const own = this.c.port.nodeAuthor(groupId);
    const pubkey = own && nostrPubkeyOf(own.pubkey);
    if (!own || !pubkey) return;
    this.ensure(pubkey, (t) => {
      const unsigned = { ...t, pubkey };
      const id = eventId(unsigned);
      const sig = Buffer.from(own.signSchnorr(Buffer.from(id, 'hex'))).toString('hex');
      return { ...unsigned, id, sig };
    });
  }

  /** Puts a list for `pubkey` unless it has its own, or the one signed here is current. */
  private ensure(pubkey: string, sign: (t: Template) => NostrEvent): void {
    this.checked.add(pubkey);
    const key = `rl:${pubkey}`;
    const kept = this.kv.get<Kept>(key);
    if (kept === 'author') return;
    const url = relayUrl(this.c.port.origin);
    const [current] = this.c.relay.query({ kinds: [RELAY_LIST_KIND], authors: [pubkey] }, 1);
    if (current && current.id !== kept?.id) {
      // The key's own list (published before this relay made one): it stays as it is.
      this.kv.set(key, 'author');
      return;
    }
    if (current && kept?.url === url) return;
    const now = this.c.now?.() ?? Math.floor(Date.now() / 1000);
    const event = sign({
      kind: RELAY_LIST_KIND,
      content: '',
      tags: [['r', url, 'write']],
      created_at: Math.max(now, (current?.created_at ?? 0) + 1),
    });
    const put = this.c.relay.put(event);
    if (!put.stored) {
      this.c.port.log.warn({ pubkey, reason: put.reason }, 'nostr: relay list not stored');
      return;
    }
    this.kv.set(key, { id: event.id, url });
  }
}
