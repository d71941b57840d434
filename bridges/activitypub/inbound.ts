/**
 * What the bridge does with activities delivered to its inboxes (every request's signature is
 * verified by Fedify before a listener runs, and the signer must own the activity's actor):
 *
 * - `Follow` of a group → the follower is kept and a signed `Accept` is sent; `Undo(Follow)`
 *   removes it. The follower's instance software is learnt first (instance-kind.ts: it decides
 *   which form of the group's Announce that instance gets).
 * - `Create(Note|Article)` that replies to a post of a served group, or addresses or mentions the
 *   group → a post in the group, by the gateway-held identity of the remote actor.
 * - `Like` / `Undo(Like)` of a group post → a Like, and the Delete of that Like.
 * - `Delete` / `Update` of the actor's own bridged object → the matching trx (the origin table
 *   says which trx it became; other objects are refused).
 *
 * Everything is idempotent: port.submit is, on the activity or object id it is given. Private
 * and suspended groups take nothing.
 *
 * - A blocked actor or instance is refused (403) before Fedify; a `Follow` from one gets through
 *   to be answered with a `Reject`, and a listener drops anything else that names a blocked actor.
 * - A `Delete` of an object that is not bridged (yet) is held for a day (the object id in the
 *   kv): its `Create`, when it comes later, is dropped.
 * - An object whose id is on this gateway is never posted again (it came from here).
 * - One activity addressed to several local actors takes effect once for each of them
 *   (Fedify 2's per-inbox idempotency: the same activity delivered to two of our personal inboxes
 *   runs the listener twice, once per recipient). What "each" means differs by type: a `Follow`,
 *   `Like` or `Announce` names one object, so it takes effect once, on that object; a top-level
 *   `Create` becomes one post in each served group it addresses, mentions or was delivered to
 *   (the first keeps the object id as its origin, the others `<id>#in-<group id>`, so a retry
 *   or a second delivery finds each again and its `Delete`/`Update` reaches all of them); a reply
 *   goes only to the group of the post it answers (a thread lives on one chain); addressing an
 *   author (a `Person` here) adds nothing: the author reads the post in its group.
 */
import type { InboxContext, InboxListenerSetters } from '@fedify/fedify';
import {
  Accept,
  Activity,
  Reject,
  Announce,
  Article,
  Create,
  Delete,
  Follow,
  isActor,
  Like,
  Mention,
  Note,
  Undo,
  Update,
} from '@fedify/vocab';
import { BridgeRefusedError, type ExposedGroup, type SubmitInput } from '../port.ts';
import type { ApState } from './federation.ts';
import { derivedId } from './federation.ts';
import {
  type ApActorInfo,
  fromApAnnounce,
  fromApDelete,
  fromApLike,
  fromApNote,
  fromApUndo,
  fromApUpdate,
} from './mapping.ts';
import { instanceKinds } from './instance-kind.ts';
import { groupIdentifier } from './urls.ts';

/** How long a Delete of an object not seen yet is remembered (its Create is dropped). */
export const HELD_DELETE_TTL_MS = 24 * 3600_000;
const HELD_DELETE = 'deleted-before-create:';

/** The origin id of the copy of a remote object posted into a second (third…) group. */
export function copyId(objectId: string, groupId: string): string {
  return `${objectId}#in-${groupId}`;
}

/** Every trx a remote object became: in its first group, and its copies in other groups. */
export function originsOf(state: ApState, objectId: string): { groupId: string; trxId: string }[] {
  const out: { groupId: string; trxId: string }[] = [];
  const first = state.port.trxOfOrigin('activitypub', objectId);
  if (first) out.push(first);
  for (const g of state.servedGroups()) {
    const copy = state.port.trxOfOrigin('activitypub', copyId(objectId, g.groupId));
    if (copy) out.push(copy);
  }
  return out;
}

/**
 * The bridged copies of an object that an actor may delete or edit: those posted with the key
 * the gateway holds for that actor, in groups still served. `first` marks the original's copy.
 */
function ownCopies(
  state: ApState,
  origins: { groupId: string; trxId: string }[],
  actorId: URL,
): { trxId: string; group: ExposedGroup; first: boolean }[] {
  const key = state.port.authorKey('activitypub', actorId.href);
  return origins.flatMap((origin, i) => {
    const sender = state.port.item(origin.groupId, origin.trxId)?.senderPubkey;
    if (!sender || sender !== key) return [];
    const group = state.served(state.port.exposure(origin.groupId));
    return group ? [{ trxId: origin.trxId, group, first: i === 0 }] : [];
  });
}

/**
 * Posts, into each of the actor's own copies of an object ({@link ownCopies}), the trx that
 * `objectFor` makes for it: under the activity's id for the original's copy, under
 * `<id>#in-<group id>` for the others.
 */
async function submitToOwnCopies(
  state: ApState,
  origins: { groupId: string; trxId: string }[],
  actorId: URL,
  externalId: string,
  objectFor: (trxId: string, group: ExposedGroup) => Promise<SubmitInput['object']>,
): Promise<void> {
  for (const { trxId, group, first } of ownCopies(state, origins, actorId)) {
    await submit(state, {
      groupId: group.groupId,
      network: 'activitypub',
      externalId: first ? externalId : copyId(externalId, group.groupId),
      author: actorId.href,
      object: await objectFor(trxId, group),
    });
  }
}

/** A post of a served group, by our post URL or by the remote id it was bridged from. */
function targetOf(state: ApState, id: URL | string | null | undefined) {
  if (!id) return null;
  const href = typeof id === 'string' ? id : id.href;
  const trxId = state.urls.trxOf(href);
  if (trxId) {
    const found = state.findItem(trxId);
    return found && { group: found.group, trxId };
  }
  const origin = state.port.trxOfOrigin('activitypub', href);
  if (!origin) return null;
  const group = state.served(state.port.exposure(origin.groupId));
  return group && { group, trxId: origin.trxId };
}

/** Submits, and logs a refusal instead of failing the delivery (a retry would be refused too). */
async function submit(state: ApState, input: SubmitInput): Promise<void> {
  try {
    const r = await state.port.submit(input);
    state.log.debug({ trx: r.trxId, externalId: input.externalId, dup: r.duplicate }, 'ap inbound');
  } catch (err) {
    if (err instanceof BridgeRefusedError) {
      state.log.info({ externalId: input.externalId, reason: err.message }, 'ap inbound refused');
      return;
    }
    throw err;
  }
}

/**
 * Posts a remote object into one group: under its own id when that is free or already this
 * group's, else (it is in another group) as this group's copy.
 */
async function submitPost(state: ApState, input: SubmitInput): Promise<void> {
  const id = input.externalId;
  const first = state.port.trxOfOrigin('activitypub', id);
  if (first && first.groupId !== input.groupId) {
    await submit(state, { ...input, externalId: copyId(id, input.groupId) });
    return;
  }
  try {
    await state.port.submit(input);
  } catch (err) {
    // Two deliveries at once, for two groups: the other took the object's own id.
    if (err instanceof BridgeRefusedError && err.status === 409) {
      const now = state.port.trxOfOrigin('activitypub', id);
      if (now && now.groupId !== input.groupId) {
        await submit(state, { ...input, externalId: copyId(id, input.groupId) });
        return;
      }
    }
    if (err instanceof BridgeRefusedError) {
      state.log.info({ externalId: id, reason: err.message }, 'ap inbound refused');
      return;
    }
    throw err;
  }
}

/** The served groups an object is addressed to (to, cc, audience) or mentions. */
async function addressedGroups(state: ApState, obj: Note | Article): Promise<ExposedGroup[]> {
  const ids: URL[] = [...obj.toIds, ...obj.ccIds, ...obj.audienceIds];
  try {
    for await (const tag of obj.getTags()) {
      if (tag instanceof Mention && tag.href) ids.push(tag.href);
    }
  } catch {
    // A tag that does not parse is not an address.
  }
  const out = new Map<string, ExposedGroup>();
  const ctx = state.context();
  for (const id of ids) {
    const parsed = ctx.parseUri(id);
    if (parsed?.type !== 'actor') continue;
    const g = state.groupOf(parsed.identifier);
    if (g) out.set(g.groupId, g);
  }
  return [...out.values()];
}

/** What is known of an activity's actor (fetched or cached), at least its id. */
/** A Like or Announce of one of our posts → the matching trx in that post's group. */
async function submitReaction<A extends Like | Announce>(
  state: ApState,
  ctx: InboxContext<void>,
  activity: A,
  map: (
    a: A,
    actor: ApActorInfo,
    resolve: (u: URL) => string | null,
  ) => Record<string, unknown> | null,
): Promise<void> {
  if (!activity.id || !activity.actorId) return;
  const target = targetOf(state, activity.objectId);
  if (!target) return;
  const object = map(activity, await actorInfo(state, ctx, activity), (u) =>
    state.resolveTrx(target.group, u),
  );
  if (!object) return;
  await submit(state, {
    groupId: target.group.groupId,
    network: 'activitypub',
    externalId: activity.id.href,
    author: activity.actorId.href,
    object,
  });
}

async function actorInfo(
  state: ApState,
  ctx: InboxContext<void>,
  activity: Activity,
): Promise<ApActorInfo> {
  const id = activity.actorId!;
  const known = state.actorInfos.get(id.href);
  if (known) return known;
  try {
    const actor = await activity.getActor(ctx);
    if (actor && isActor(actor) && actor.id?.href === id.href) {
      const url = actor.url;
      const info = {
        id,
        name: actor.name?.toString() ?? null,
        preferredUsername: actor.preferredUsername?.toString() ?? null,
        url: url instanceof URL ? url : (url?.href ?? null),
      };
      state.actorInfos.set(id.href, info);
      return info;
    }
  } catch {
    // Only the id, then (and the next activity tries again).
  }
  return { id };
}

function ours(state: ApState, id: URL | null | undefined): boolean {
  return !!id && id.origin === new URL(state.urls.origin).origin;
}

export function registerInbox(inbox: InboxListenerSetters<void>, state: ApState): void {
  inbox
    .setSharedKeyDispatcher(() => ({ identifier: '__instance__' }))
    .on(Follow, async (ctx, follow) => {
      if (!follow.id || !follow.actorId || !follow.objectId) return;
      const target = ctx.parseUri(follow.objectId);
      if (target?.type !== 'actor') return;
      const group = state.groupOf(target.identifier);
      if (!group) return;
      const follower = await follow.getActor(ctx);
      if (!isActor(follower) || follower.id?.href !== follow.actorId.href || !follower.inboxId) {
        return;
      }
      const identifier = groupIdentifier(group.handle);
      const actor = ctx.getActorUri(identifier);
      // The Follow answered, as its id, actor and object only: Lemmy reads `actor` and `object`
      // as bare ids and refuses an Accept whose Follow carries the fetched actor inline.
      const answered = new Follow({
        id: follow.id,
        actor: follow.actorId,
        object: follow.objectId,
      });
      if (state.blocks.blocks(follower.id)) {
        await ctx.sendActivity(
          { identifier },
          follower,
          new Reject({ id: derivedId(actor, 'reject', follow.id.href), actor, object: answered }),
        );
        return;
      }
      // Which Announce its instance reads (a boost, or FEP-1b12 announces of activities): known
      // before the Accept, so the first post after it goes out in the right form. Once per
      // instance a day, bounded in time; a failure leaves the instance on boosts.
      await instanceKinds(state).learn(follower.id);
      state.followers.add(identifier, {
        id: follower.id.href,
        inbox: follower.inboxId.href,
        sharedInbox: follower.endpoints?.sharedInbox?.href ?? null,
        follow: follow.id.href,
        since: Date.now(),
      });
      await ctx.sendActivity(
        { identifier },
        follower,
        new Accept({ id: derivedId(actor, 'accept', follow.id.href), actor, object: answered }),
      );
    })
    .on(Undo, async (ctx, undo) => {
      if (!undo.actorId) return;
      const object = await undo.getObject({
        documentLoader: ctx.documentLoader,
        contextLoader: ctx.contextLoader,
        crossOrigin: 'trust',
      });
      if (!(object instanceof Activity) || object.actorId?.href !== undo.actorId.href) return;
      if (object instanceof Follow) {
        const target = object.objectId && ctx.parseUri(object.objectId);
        if (target && target.type === 'actor') {
          state.followers.remove(target.identifier, undo.actorId.href);
        }
        return;
      }
      const kind = object instanceof Like ? 'Like' : object instanceof Announce ? 'Announce' : null;
      if (kind && object.id) {
        const done = state.port.trxOfOrigin('activitypub', object.id.href);
        if (!done) return;
        const group = state.served(state.port.exposure(done.groupId));
        if (!group) return;
        await submit(state, {
          groupId: group.groupId,
          network: 'activitypub',
          externalId: undo.id?.href ?? `${object.id.href}#undo`,
          author: undo.actorId.href,
          object: fromApUndo(done.trxId, kind, undo.id),
        });
      }
    })
    .on(Create, async (ctx, create) => {
      if (!create.actorId) return;
      // What came from this gateway is not posted again (not even fetched: it is ours).
      if (ours(state, create.objectId)) return;
      const obj = await create.getObject(ctx);
      if (!(obj instanceof Note || obj instanceof Article) || !obj.id) return;
      // What came from this gateway is not posted again; the author must be the sender.
      if (ours(state, obj.id)) return;
      if (obj.attributionId && obj.attributionId.href !== create.actorId.href) return;
      if (state.blocks.blocks(create.actorId)) return;
      // Its Delete came first: the Create is dropped.
      if (state.kv.get<string>(HELD_DELETE + obj.id.href) === create.actorId.href) {
        state.log.info({ object: obj.id.href }, 'ap: Create of an object deleted before; dropped');
        return;
      }
      const reply = targetOf(state, obj.replyTargetId);
      const groups = reply ? [reply.group] : await addressedGroups(state, obj);
      const recipient = ctx.recipient && state.groupOf(ctx.recipient);
      if (!reply && recipient && !groups.some((g) => g.groupId === recipient.groupId)) {
        groups.push(recipient);
      }
      if (groups.length === 0) return;
      const info = await actorInfo(state, ctx, create);
      for (const group of groups) {
        await submitPost(state, {
          groupId: group.groupId,
          network: 'activitypub',
          externalId: obj.id.href,
          author: create.actorId.href,
          object: await fromApNote(obj, info, (u) => state.resolveTrx(group, u)),
        });
      }
    })
    .on(Like, async (ctx, like) => {
      await submitReaction(state, ctx, like, fromApLike);
    })
    .on(Announce, async (ctx, announce) => {
      if (announce.id && ours(state, announce.id)) return;
      await submitReaction(state, ctx, announce, fromApAnnounce);
    })
    .on(Delete, async (_ctx, del) => {
      if (!del.actorId || !del.objectId) return;
      if (del.objectId.href === del.actorId.href) state.actorInfos.drop(del.actorId.href);
      const origins = originsOf(state, del.objectId.href);
      if (origins.length === 0) {
        // Not seen (yet): held, so that a Create that comes later is dropped. Only an object of
        // the actor's own server can be the actor's.
        if (del.objectId.origin === del.actorId.origin && !ours(state, del.objectId)) {
          state.kv.set(HELD_DELETE + del.objectId.href, del.actorId.href, HELD_DELETE_TTL_MS);
        }
        return;
      }
      const externalId = del.id?.href ?? `${del.objectId.href}#delete`;
      await submitToOwnCopies(state, origins, del.actorId, externalId, async (trxId) =>
        fromApDelete(trxId, del.id),
      );
    })
    .on(Update, async (ctx, update) => {
      if (!update.actorId || !update.objectId) return;
      // A profile changed: its next activity fetches it again.
      if (update.objectId.href === update.actorId.href) state.actorInfos.drop(update.actorId.href);
      const obj = await update.getObject(ctx);
      if (!(obj instanceof Note || obj instanceof Article) || !obj.id) return;
      const version = obj.updated?.toString() ?? update.id?.href ?? '';
      const externalId = update.id?.href ?? `${obj.id.href}#update-${version}`;
      const origins = originsOf(state, obj.id.href);
      await submitToOwnCopies(state, origins, update.actorId, externalId, async (trxId, group) =>
        fromApUpdate(
          obj,
          await actorInfo(state, ctx, update),
          (u) => state.resolveTrx(group, u),
          trxId,
        ),
      );
    })
    .onError((_ctx, error) => {
      state.log.warn({ err: error }, 'ap inbox listener failed');
    });
}
