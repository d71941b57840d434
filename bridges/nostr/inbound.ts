/**
 * A Nostr client's event for a group (its `h` tag names a group served on Nostr here; the relay
 * has checked its form, id and signature) → a trx, through port.submit: network `nostr`, the
 * event id as external id, the event pubkey as author, and the RUM payload of mapping.ts, which
 * carries the whole signed event so that every RUM node can check its author itself.
 *
 * Checked first, in order: the group takes posts from Nostr (public, served, not suspended);
 * the event is not already in the group (`duplicate:`); it is not a late publication; its
 * NIP-29 `previous` references name recent events of the group here; the owner's chain rules
 * (allow and deny lists) let its author post, judged as the RUM key it is linked to as well
 * (key-links.ts). The answer is the relay's verdict: `taken` once the node accepted the trx
 * (OK true), or a refusal with the standard prefix. NIP-39 lists that link or unlink keys are
 * posted here too (postStatements).
 */
import { BridgeRefusedError, type BridgePort, type ExposedGroup } from '../port.ts';
import { rumPubkeysOf } from './author.ts';
import type { ListStatement } from './key-links.ts';
import type { Links } from './links.ts';
import { fromNostr, GROUP_CONTENT_KINDS } from './mapping.ts';
import type { EventVerdict, NostrEvent } from './types.ts';

/** How old (seconds) a group event may be when published (NIP-29 "late publication"). */
export const LATE_PUBLICATION_S = 3600;

export interface InboundComponents {
  port: BridgePort;
  links: Links;
  /** Told when a Nostr author's post was taken (it becomes a member). */
  onTaken?: (groupId: string, pubkey: string) => void;
  /** The RUM key a Nostr key is linked to in a group (key-links.ts), if any. */
  linkedRum?: (groupId: string, nostrPubkey: string) => string | undefined;
  now?: () => number;
}

/** The refusal of a submit, with the NIP-01 prefix its status calls for. */
function refusal(err: BridgeRefusedError): string {
  if (err.status === 409) return `duplicate: ${err.message}`;
  if (err.status === 403) return `blocked: ${err.message}`;
  return `invalid: ${err.message}`;
}

/**
 * Whether the group's owner lets a Nostr author post: the key the gateway holds for it, the RUM
 * forms of the Nostr key itself (an owner may list that) and the RUM key it is linked to in the
 * group (key-links.ts: one author, so a denied RUM user cannot post from its Nostr key) are
 * judged by the chain rules. Denied if any is denied; allowed if any is allowed.
 */
export function postRefusal(
  port: BridgePort,
  groupId: string,
  pubkey: string,
  linked?: string,
): string | null {
  const held = port.authorKey('nostr', pubkey);
  const keys = [...(held ? [held] : []), ...rumPubkeysOf(pubkey), ...(linked ? [linked] : [])];
  const results = keys.map((key) => port.mayPost(groupId, key));
  if (results.some((r) => !r.ok && r.reason.includes('deny list'))) {
    return "blocked: the group's owner denies this author";
  }
  if (results.some((r) => r.ok)) return null;
  return "restricted: only authors the group's owner allowed may post here";
}

export class Inbound {
  private readonly c: InboundComponents;

  constructor(c: InboundComponents) {
    this.c = c;
  }

  /** A content event (kinds 1, 5, 6, 7, 9, 11, 16, 1111) of a group served here. */
  async post(event: NostrEvent, group: ExposedGroup): Promise<EventVerdict> {
    const { port, links } = this.c;
    const groupId = group.groupId;
    if (!GROUP_CONTENT_KINDS.includes(event.kind)) {
      return { action: 'refuse', message: `invalid: kind ${event.kind} is not taken in groups` };
    }
    if (group.encryption !== 'public') {
      return {
        action: 'refuse',
        message: 'restricted: a private group takes posts only from its members on RUM',
      };
    }
    const known = port.trxOfOrigin('nostr', event.id);
    if (known) {
      if (known.groupId !== groupId) {
        return { action: 'refuse', message: 'invalid: the event is in another group' };
      }
      return { action: 'taken', message: 'duplicate: the event is in the group' };
    }
    if (links.trxOf(groupId, event.id)) {
      return { action: 'taken', message: 'duplicate: the event is in the group' };
    }
    const now = this.c.now?.() ?? Math.floor(Date.now() / 1000);
    if (event.created_at < now - LATE_PUBLICATION_S) {
      return {
        action: 'refuse',
        message: `invalid: late publication (more than ${LATE_PUBLICATION_S / 60} minutes old)`,
      };
    }
    const unknown = links.unknownPrevious(groupId, event);
    if (unknown.length > 0) {
      return {
        action: 'refuse',
        message: `invalid: previous event ${unknown[0]} is not one of the group's recent events here`,
      };
    }
    const denied = postRefusal(
      port,
      groupId,
      event.pubkey,
      this.c.linkedRum?.(groupId, event.pubkey),
    );
    if (denied) return { action: 'refuse', message: denied };
    const mapped = fromNostr(event, (id) => this.trxOf(groupId, id));
    if (!mapped.ok) return { action: 'refuse', message: mapped.reason };
    try {
      const r = await port.submit({
        groupId,
        network: 'nostr',
        externalId: event.id,
        author: event.pubkey,
        object: mapped.payload,
      });
      this.c.onTaken?.(groupId, event.pubkey);
      if (r.duplicate) return { action: 'taken', message: 'duplicate: the event is in the group' };
      return { action: 'taken' };
    } catch (err) {
      if (err instanceof BridgeRefusedError) return { action: 'refuse', message: refusal(err) };
      port.log.warn({ err, event: event.id }, 'nostr: submit failed');
      return { action: 'refuse', message: 'error: the node could not post the event' };
    }
  }

  /**
   * Posts the key link statements of a NIP-39 list (key-links.ts), each into its group for the
   * list's Nostr key: null once all are accepted, else the refusal of the first refused.
   */
  async postStatements(event: NostrEvent, statements: ListStatement[]): Promise<string | null> {
    const { port } = this.c;
    for (const s of statements) {
      const denied = postRefusal(port, s.groupId, event.pubkey);
      if (denied) return denied;
    }
    for (const s of statements) {
      try {
        await port.submit({
          groupId: s.groupId,
          network: 'nostr',
          externalId: `${event.id}:${s.groupId}`,
          author: event.pubkey,
          object: s.payload,
        });
      } catch (err) {
        if (err instanceof BridgeRefusedError) return refusal(err);
        port.log.warn({ err, event: event.id }, 'nostr: statement submit failed');
        return 'error: the node could not post the statement';
      }
    }
    return null;
  }

  /** The trx of the group an event stands for: served here, or submitted from Nostr. */
  private trxOf(groupId: string, eventId: string) {
    const linked = this.c.links.trxOf(groupId, eventId);
    if (linked) return linked;
    const origin = this.c.port.trxOfOrigin('nostr', eventId);
    if (!origin || origin.groupId !== groupId) return null;
    const item = this.c.port.item(groupId, origin.trxId);
    const author = item && this.c.port.authorOf(item.senderPubkey);
    return {
      trxId: origin.trxId,
      type: item?.type ?? null,
      pubkey: author?.network === 'nostr' ? author.author : null,
    };
  }
}
