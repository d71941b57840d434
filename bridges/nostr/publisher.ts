/**
 * Publishing a group's posts to outside relays (optional per group; the operator lists the relays
 * on the admin API, publish-config.ts). For each (group, relay), a committed stream of its own
 * (consumer `nostr-pub:<hash of relay URL and its generation>`, durable cursor, from the head when
 * the relay was added: a relay is not flooded with the group's history) turns each item into a
 * delivery job of kind `nostr-event` (relay-client.ts) to that relay, key
 * `nostr:<relay URL>:<event id>`; the item is acknowledged once its job is queued. After a
 * restart each stream resumes after its last acknowledged item; an item queued again after a
 * crash adds nothing (the queue's idempotency key).
 *
 * What is sent is exactly the event this node's relay serves for the item (outbound.ts): the
 * author's own signed event when the item carries a valid one, else the proxy event signed by the
 * relay key, a RUM Delete as its kind 5. The same id everywhere, so a client that reads both
 * relays sees one event, and a reply made on the outside relay names an event this relay knows.
 * Each item therefore waits until the relay has served it (Links.passed); an item the relay
 * served nothing for (no Nostr form, deleted before it was served, removed since) is skipped.
 *
 * Never sent: anything of a group that is not public, not served on Nostr, or suspended (its
 * streams are closed); NIP-70 protected events (a `["-"]` tag: only their author may publish
 * them). Events that came from the outside relay itself: this node never reads from outside
 * relays, so every Nostr event it has came from a client of its own relay; if that client (or
 * anyone) gave the outside relay the event too, the relay answers `duplicate:`, which counts as
 * delivered. Nothing is asked of a relay before sending (a REQ per event would cost more than
 * the EVENT it saves).
 */
import type { BridgePort, CommittedItem, CommittedStream, ExposedGroup } from '../port.ts';
import { GroupStreams } from '../group-streams.ts';
import { isProtected } from './event.ts';
import type { Links } from './links.ts';
import { consumerOf, type PublishConfig } from './publish-config.ts';
import { PUBLISH_KIND, type PublishPayload } from './relay-client.ts';
import type { NostrEvent } from './types.ts';

const BATCH = 100;

export interface PublisherComponents {
  port: BridgePort;
  links: Links;
  config: PublishConfig;
  /** A stored event of this node's relay, by id. */
  lookup: (id: string) => NostrEvent | undefined;
  /** Whether a group is served on Nostr now (the groups layer's rule). */
  served: (group: ExposedGroup | undefined) => ExposedGroup | null;
}

/** The job key of an event sent to a relay. */
export function publishKey(relay: string, eventId: string): string {
  return `nostr:${relay}:${eventId}`;
}

/** The streams of every group that publishes to one relay. */
class RelayFeed extends GroupStreams {
  readonly url: string;
  private readonly c: PublisherComponents;
  /** Aborted when its stream closes: wakes the stream's wait for the relay's serving. */
  private readonly closing = new WeakMap<CommittedStream, AbortSignal>();

  constructor(url: string, c: PublisherComponents) {
    super(c.port);
    this.url = url;
    this.c = c;
  }

  /** Whether any group publishes to this relay. */
  wanted(): boolean {
    return this.c.config
      .groups()
      .some((g) => this.c.config.targets(g).some((t) => t.url === this.url));
  }

  protected served(group: ExposedGroup | undefined): ExposedGroup | null {
    const g = this.c.served(group);
    if (!g || g.encryption !== 'public') return null;
    return this.c.config.targets(g.groupId).some((t) => t.url === this.url) ? g : null;
  }

  protected openStream(group: ExposedGroup): CommittedStream | null {
    const target = this.c.config.targets(group.groupId).find((t) => t.url === this.url);
    if (!target) return null;
    let stream: CommittedStream;
    try {
      stream = this.c.port.stream({
        consumer: consumerOf(target),
        groupId: group.groupId,
        from: 'head',
      });
    } catch (err) {
      this.c.port.log.warn(
        { err, groupId: group.groupId, relay: this.url },
        'nostr: cannot stream group for publishing',
      );
      return null;
    }
    const ac = new AbortController();
    const wrapped: CommittedStream = {
      next: (max) => stream.next(max),
      ack: (item) => stream.ack(item),
      close: () => {
        ac.abort();
        stream.close();
      },
    };
    this.closing.set(wrapped, ac.signal);
    return wrapped;
  }

  protected async run(
    groupId: string,
    stream: CommittedStream,
    isOpen: () => boolean,
  ): Promise<void> {
    const signal = this.closing.get(stream) ?? AbortSignal.abort();
    while (isOpen()) {
      const items = await stream.next(BATCH);
      if (items.length === 0 || !isOpen()) return;
      const last = items[items.length - 1]!;
      // The relay serves the batch first: what is sent is the event it serves.
      while (!this.c.links.hasPassed(groupId, last)) {
        await this.c.links.nextPassed(groupId, signal);
        if (!isOpen()) return;
      }
      const jobs = items.flatMap((item) => this.jobOf(item));
      const queued = await this.retrying(
        { groupId, relay: this.url },
        'nostr: queueing',
        isOpen,
        () => Promise.all(jobs.map((j) => this.c.port.queue.enqueue(j))),
      );
      if (!queued) return;
      if (!isOpen()) return;
      stream.ack(last);
    }
  }

  /** The delivery of an item to this relay, or nothing. */
  private jobOf(item: CommittedItem) {
    const ref = this.c.links.eventOf(item.groupId, item.trxId);
    if (!ref) return [];
    const event = this.c.lookup(ref.id);
    if (!event) return [];
    if (isProtected(event)) {
      this.c.port.log.debug(
        { trx: item.trxId, event: event.id },
        'nostr: a NIP-70 protected event is not published',
      );
      return [];
    }
    const payload: PublishPayload = { relay: this.url, event };
    return [
      {
        key: publishKey(this.url, event.id),
        kind: PUBLISH_KIND,
        destination: this.url,
        payload,
      },
    ];
  }
}

/** Every (group, relay) stream, opened and closed as exposures and relay lists change. */
export class Publisher {
  private readonly c: PublisherComponents;
  private readonly feeds = new Map<string, RelayFeed>();
  private unsubscribe: (() => void) | null = null;
  private stopped = true;
  /** Changes applied in order (a feed stops before a later change starts it again). */
  private chain: Promise<void> = Promise.resolve();

  constructor(c: PublisherComponents) {
    this.c = c;
  }

  start(): void {
    this.stopped = false;
    const urls = new Set<string>();
    for (const g of this.c.config.groups())
      for (const t of this.c.config.targets(g)) urls.add(t.url);
    for (const url of urls) this.feed(url);
    this.unsubscribe = this.c.config.onChange((groupId, before) => {
      const urls = new Set([...before, ...this.c.config.targets(groupId)].map((t) => t.url));
      this.chain = this.chain
        .then(() => this.changed(groupId, urls))
        .catch((err: unknown) =>
          this.c.port.log.warn({ err, groupId }, 'nostr: applying a relay list failed'),
        );
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.chain;
    await Promise.all([...this.feeds.values()].map((f) => f.stop()));
    this.feeds.clear();
  }

  /** Waits until the changes of relay lists made so far took effect. */
  settled(): Promise<void> {
    return this.chain;
  }

  private feed(url: string): RelayFeed {
    let f = this.feeds.get(url);
    if (!f) {
      f = new RelayFeed(url, this.c);
      this.feeds.set(url, f);
      f.start();
    }
    return f;
  }

  private async changed(groupId: string, urls: Set<string>): Promise<void> {
    if (this.stopped) return;
    for (const url of urls) {
      const f = this.feed(url);
      await f.refresh(groupId);
      if (!f.wanted()) {
        this.feeds.delete(url);
        await f.stop();
      }
    }
  }
}
