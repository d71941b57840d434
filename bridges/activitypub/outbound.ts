/**
 * What the bridge sends: for each group served on ActivityPub, the committed stream (consumer
 * `activitypub`, durable cursor; items that came from ActivityPub are not sent back), and for
 * each item, to the group's followers through their shared inboxes, in the form each follower's
 * instance reads (instance-kind.ts):
 *
 * - Mastodon and its kin get the author's activity (Create of a post, Like, Delete, Update) and,
 *   for the posts the group boosts (public, top-level ones by default; app config `announce`
 *   `all` adds replies), the group's `Announce` of the post, which they show as a boost.
 * - FEP-1b12 group software (Lemmy, Mbin, PieFed, NodeBB…) gets the group's `Announce` of every
 *   activity, the author's activity embedded (`Announce(Create(Note))`, `Announce(Like)`,
 *   `Announce(Delete)`, `Announce(Update)`), replies included: that is how it learns a post or
 *   a vote is in the group, and it shows comments only through it. It does not get the author's
 *   activity directly as well (the same activity twice), nor the boost (Lemmy refuses it).
 *
 * One inbox never gets both forms: a shared inbox one FEP-1b12 follower is reached through
 * carries the announces of activities for every follower behind it. Fedify puts the deliveries
 * on the delivery queue; the item is acknowledged once they are queued, so a crash before that
 * sends it again under the same activity ids (receivers dedupe by id, and the queue by
 * (activity, inbox)). Blocked actors and instances get nothing (blocks.ts).
 */
import { PUBLIC_COLLECTION, Update } from '@fedify/vocab';
import type { CommittedItem, CommittedStream, ExposedGroup } from '../port.ts';
import { GroupStreams } from '../group-streams.ts';
import type { ApState, Follower } from './federation.ts';
import { recipientOf } from './federation.ts';
import { instanceKinds } from './instance-kind.ts';
import { shouldAnnounce, toAnnounce, toAnnounceOfActivity, toApActivity } from './mapping.ts';
import { authorIdentifier, groupIdentifier } from './urls.ts';

export class Outbound extends GroupStreams {
  private readonly state: ApState;

  constructor(state: ApState) {
    super(state.port);
    this.state = state;
  }

  protected served(group: ExposedGroup | undefined): ExposedGroup | null {
    return this.state.served(group);
  }

  protected openStream(group: ExposedGroup): CommittedStream | null {
    try {
      return this.state.port.stream({
        consumer: 'activitypub',
        groupId: group.groupId,
        network: 'activitypub',
        // On first exposure the outbox serves the history; the stream starts with what comes.
        from: 'head',
      });
    } catch (err) {
      this.state.log.warn({ err, groupId: group.groupId }, 'ap: cannot stream group');
      return null;
    }
  }

  protected async run(
    _groupId: string,
    stream: CommittedStream,
    isOpen: () => boolean,
  ): Promise<void> {
    while (isOpen()) {
      const items = await stream.next(100);
      if (items.length === 0 || !isOpen()) return;
      for (const item of items) {
        const sent = await this.retrying({ trx: item.trxId }, 'ap: sending', isOpen, () =>
          this.send(item),
        );
        if (!sent) return;
        if (!isOpen()) return;
        stream.ack(item);
      }
    }
  }

  /** Sends one committed item to the followers of its group. */
  async send(item: CommittedItem): Promise<void> {
    const group = this.state.served(this.state.port.exposure(item.groupId));
    if (!group || item.object === null) return;
    const groupActor = groupIdentifier(group.handle);
    // A blocked follower is removed when blocked; one left behind still gets nothing.
    const followers = this.state.followers
      .all(groupActor)
      .filter((f) => !this.state.blocks.blocks(f.id));
    if (followers.length === 0) return;
    const { announced, boosted } = splitByKind(followers, (id) =>
      instanceKinds(this.state).kind(id),
    );
    const m = this.state.mapping(group);
    const ctx = this.state.context();
    const fromGroup = { identifier: groupActor };
    const options = { preferSharedInbox: true };
    if (item.type === 'Profile') {
      await this.sendProfile(item, followers);
      return;
    }
    const activity = item.deleted && item.type !== 'Delete' ? null : toApActivity(item, m);
    if (activity && boosted.length > 0) {
      await ctx.sendActivity(
        { identifier: authorIdentifier(item.senderPubkey) },
        boosted.map(recipientOf),
        activity,
        options,
      );
    }
    const relay = activity && announced.length > 0 ? toAnnounceOfActivity(item, m) : null;
    if (relay) await ctx.sendActivity(fromGroup, announced.map(recipientOf), relay, options);
    const boost =
      boosted.length > 0 &&
      shouldAnnounce(item, this.state.announceSetting(group), group.encryption === 'public') &&
      toAnnounce(item, m);
    if (boost) await ctx.sendActivity(fromGroup, boosted.map(recipientOf), boost, options);
  }

  /**
   * An author's new profile (the one the port now answers for them): the followers' instances
   * hear an `Update` of the author's Person, as Mastodon sends when a user edits theirs, so the
   * new name and avatar show without waiting for a refetch. An older profile committed late, or
   * a deleted one, changes nothing.
   */
  private async sendProfile(item: CommittedItem, followers: Follower[]): Promise<void> {
    if (item.deleted) return;
    if (this.state.port.profile(item.groupId, item.senderPubkey)?.trxId !== item.trxId) return;
    const identifier = authorIdentifier(item.senderPubkey);
    const actor = await this.state.actor(identifier);
    if (!actor?.id) return;
    const update = new Update({
      id: new URL(`${actor.id.href}#profile-${encodeURIComponent(item.trxId)}`),
      actor: actor.id,
      object: actor,
      to: PUBLIC_COLLECTION,
    });
    await this.state.context().sendActivity({ identifier }, followers.map(recipientOf), update, {
      preferSharedInbox: true,
    });
  }
}

/**
 * The followers whose instances read FEP-1b12 announces of activities, and the others (boosts).
 * A follower whose delivery inbox (its shared inbox, else its own) is also an announced
 * follower's goes with the announced ones: no inbox gets both forms.
 */
export function splitByKind(
  followers: Follower[],
  kind: (actorId: string) => 'fep-1b12' | 'boost',
): { announced: Follower[]; boosted: Follower[] } {
  const inboxOf = (f: Follower) => f.sharedInbox ?? f.inbox;
  const announcedInboxes = new Set<string>();
  for (const f of followers) if (kind(f.id) === 'fep-1b12') announcedInboxes.add(inboxOf(f));
  const announced: Follower[] = [];
  const boosted: Follower[] = [];
  for (const f of followers) (announcedInboxes.has(inboxOf(f)) ? announced : boosted).push(f);
  return { announced, boosted };
}
