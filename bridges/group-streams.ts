/**
 * What every bridge's outbound side does with the committed streams (bridges/port.ts): one stream
 * per group it serves, opened when the bridge starts or a group becomes served, closed when the
 * group stops being served or the bridge stops, each drained by the bridge's own loop. A
 * subclass says which groups it serves, how it opens a group's stream, and how it drains one.
 */
import type { BridgePort, CommittedStream, ExposedGroup } from './port.ts';

/** How long a stream's loop waits before trying a failed batch again. */
const RETRY_MS = 2000;

export abstract class GroupStreams {
  protected readonly port: BridgePort;
  private readonly streams = new Map<string, { stream: CommittedStream; done: Promise<void> }>();
  private unsubscribe: (() => void) | null = null;
  protected stopped = false;

  constructor(port: BridgePort) {
    this.port = port;
  }

  /** The group, when this bridge serves it now. */
  protected abstract served(group: ExposedGroup | undefined): ExposedGroup | null;

  /** Opens a served group's stream (null, after logging why, when it cannot be). */
  protected abstract openStream(group: ExposedGroup): CommittedStream | null;

  /**
   * Drains a group's stream until it is empty for good or `isOpen()` turns false (the group
   * is no longer served, or the bridge stops).
   */
  protected abstract run(
    groupId: string,
    stream: CommittedStream,
    isOpen: () => boolean,
  ): Promise<void>;

  /**
   * Runs a batch's work (its writes, or its sending) until it succeeds, waiting after each
   * failure (logged as `what`, with `fields`): answers its value, or null once the stream is no
   * longer open.
   */
  protected async retrying<T>(
    fields: Record<string, unknown>,
    what: string,
    isOpen: () => boolean,
    fn: () => T | Promise<T>,
  ): Promise<{ value: T } | null> {
    for (;;) {
      try {
        return { value: await fn() };
      } catch (err) {
        this.port.log.warn({ err, ...fields }, `${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, RETRY_MS));
        if (!isOpen()) return null;
      }
    }
  }

  start(): void {
    this.stopped = false;
    for (const g of this.port.exposures()) {
      const served = this.served(g);
      if (served) this.open(served);
    }
    this.unsubscribe = this.port.onExposureChange((groupId, now) => {
      void this.follow(groupId, now ?? undefined);
    });
  }

  /**
   * Opens or closes a group's stream after something of the bridge's own changed what `served`
   * answers (a setting of the group); resolves once a closed stream's loop has ended.
   */
  refresh(groupId: string): Promise<void> {
    return this.follow(groupId, this.port.exposure(groupId));
  }

  private follow(groupId: string, group: ExposedGroup | undefined): Promise<void> {
    const served = this.served(group);
    if (!served) return this.close(groupId);
    this.open(served);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await Promise.all([...this.streams.keys()].map((id) => this.close(id)));
  }

  private open(group: ExposedGroup): void {
    if (this.stopped || this.streams.has(group.groupId)) return;
    const stream = this.openStream(group);
    if (!stream) return;
    const entry = { stream, done: Promise.resolve() };
    this.streams.set(group.groupId, entry);
    const isOpen = () => !this.stopped && this.streams.get(group.groupId)?.stream === stream;
    entry.done = this.run(group.groupId, stream, isOpen);
  }

  private async close(groupId: string): Promise<void> {
    const entry = this.streams.get(groupId);
    if (!entry) return;
    this.streams.delete(groupId);
    entry.stream.close();
    await entry.done;
  }
}
