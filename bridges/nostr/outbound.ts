/**
 * What the relay serves of each group exposed on Nostr: its committed stream (consumer `nostr`,
 * durable cursor, from genesis: the history is served with its original timestamps), each item
 * as one event put into the relay's store (RelayHandle.put), which also sends it to the live
 * subscriptions that match:
 *
 * - an item that carries a signed event (bridges/nostr/author.ts: its author's own, or the Nostr
 *   author's for a post that came from Nostr) is served as that exact event, once its form,
 *   signature, signer and content are checked here;
 * - any other item that has a Nostr form (mapping.ts) is served as an event signed by the relay
 *   key, with the trx's time as created_at, a NIP-48 `["proxy", <trx id>, "rum"]` tag and
 *   NIP-29 `previous` references to the group's recent events;
 * - a RUM Delete (or Undo) removes the event of the trx it deletes (RelayHandle.remove); a post
 *   deleted before it was served is not served.
 *
 * Items from every network are served (a Nostr post reaches the store once committed, like any
 * other). The item is acknowledged once put: after a crash it is put again, and the store keeps
 * one copy of an event id. How far each group was served is noted in the links (Links.passed):
 * the publisher to outside relays (publisher.ts) sends the events served here, once served.
 */
import type { BridgePort, CommittedItem, CommittedStream, ExposedGroup } from '../port.ts';
import { checkCarried } from './author.ts';
import { type Links, RECENT_EVENTS } from './links.ts';
import { rumPost } from '../rum-content.ts';
import { toNostr, withoutEvent } from './mapping.ts';
import { GroupStreams } from '../group-streams.ts';
import type { NostrEvent, RelayHandle } from './types.ts';

export const STREAM_CONSUMER = 'nostr';

export interface OutboundComponents {
  port: BridgePort;
  relay: RelayHandle;
  links: Links;
  verify: (e: NostrEvent) => boolean;
  /** Whether a group is served on Nostr now. */
  served: (group: ExposedGroup | undefined) => ExposedGroup | null;
  /** Told of each event put for a group (its pubkey becomes a known member). */
  onServed?: (groupId: string, event: NostrEvent) => void;
  /**
   * Told of every committed item, in chain order, in the transaction that serves it (the key
   * links read their statements from it).
   */
  onItem?: (item: CommittedItem) => void;
}

/** Seconds since the epoch of a trx timestamp (ns, decimal text). */
export function secondsOf(timestamp: string): number {
  if (!/^\d{1,30}$/.test(timestamp)) return 0;
  return Number(BigInt(timestamp) / 1_000_000_000n);
}

export class Outbound extends GroupStreams {
  private readonly c: OutboundComponents;

  constructor(c: OutboundComponents) {
    super(c.port);
    this.c = c;
  }

  protected served(group: ExposedGroup | undefined): ExposedGroup | null {
    return this.c.served(group);
  }

  protected openStream(group: ExposedGroup): CommittedStream | null {
    let stream: CommittedStream;
    try {
      stream = this.c.port.stream({
        consumer: STREAM_CONSUMER,
        groupId: group.groupId,
        from: 'genesis',
      });
    } catch (err) {
      this.c.port.log.warn({ err, groupId: group.groupId }, 'nostr: cannot stream group');
      return null;
    }
    // The recent events `previous` references may name, as they were before a restart.
    const recent = this.c.port.history(group.groupId, { limit: RECENT_EVENTS });
    for (const item of recent.reverse()) {
      const ref = this.c.links.eventOf(group.groupId, item.trxId);
      if (ref) this.c.links.seen(group.groupId, ref.id);
    }
    return stream;
  }

  protected async run(
    groupId: string,
    stream: CommittedStream,
    isOpen: () => boolean,
  ): Promise<void> {
    while (isOpen()) {
      const items = await stream.next(200);
      if (items.length === 0 || !isOpen()) return;
      // One transaction for the links and events of a batch, without waiting for an fsync: all
      // of it is derived from the committed items, written before the cursor that passes them
      // (a power loss loses both, and the items are served again).
      const done = await this.retrying({ groupId }, 'nostr: serving', isOpen, () =>
        this.c.port.transaction(
          () => {
            for (const item of items) this.serve(item);
            this.c.links.passed(groupId, items[items.length - 1]!);
          },
          { sync: false },
        ),
      );
      if (!done) return;
      if (!isOpen()) return;
      stream.ack(items[items.length - 1]!);
    }
  }

  /** Serves one committed item: puts its event, or removes the one it deletes. */
  serve(item: CommittedItem): NostrEvent | null {
    const { relay, links } = this.c;
    this.c.onItem?.(item);
    const payload = item.object;
    if (payload === null) return null;
    if (item.type === 'Delete' || item.type === 'Undo') {
      const target = (payload.object as { id?: unknown } | undefined)?.id;
      const ref = typeof target === 'string' ? links.eventOf(item.groupId, target) : null;
      if (ref) relay.remove(ref.id);
    }
    // A post deleted before it was served stays unserved; a deletion itself is served.
    if (item.deleted && item.type !== 'Delete' && item.type !== 'Undo') return null;
    const event = this.eventFor(item);
    if (!event) return null;
    const put = relay.put(event);
    if (!put.stored && put.reason && !put.reason.startsWith('duplicate')) {
      this.c.port.log.debug({ trx: item.trxId, reason: put.reason }, 'nostr: event not stored');
    }
    links.link(item.groupId, item.trxId, item.type, event);
    this.c.onServed?.(item.groupId, event);
    return event;
  }

  /** The event that stands for a committed item: its carried event, else a proxy event. */
  eventFor(item: CommittedItem): NostrEvent | null {
    const payload = item.object;
    if (payload === null) return null;
    const carried = checkCarried(payload, item.groupId, item.senderPubkey, this.c.verify);
    if (carried.ok) return carried.event;
    if ('nostr' in payload) {
      this.c.port.log.info(
        { trx: item.trxId, reason: carried.reason },
        'nostr: carried event refused; serving a proxy event',
      );
    }
    const body = withoutEvent(payload);
    const view = toNostr(body, item.groupId, (t) => this.c.links.eventOf(item.groupId, t));
    if (!view.ok) return null;
    const created = secondsOf(item.timestamp);
    const tags = [
      ...view.event.tags,
      ['proxy', item.trxId, 'rum'],
      ...(rumPost(body) ? this.c.links.previousTags(item.groupId) : []),
    ];
    return this.c.relay.sign({ ...view.event, tags, created_at: created });
  }
}
