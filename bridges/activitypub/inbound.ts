/**
 * What the bridge does with activities delivered to its inboxes (every request's signature is
 * verified by Fedify before a listener runs, and the signer must own the activity's actor):
 *
 * - `Follow` of a group → the follower is kept and a signed `Accept` is sent; `Undo(Follow)`
 *   removes it.
 * - `Create(Note|Article)` that replies to a post of a served group, or addresses or mentions the
 *   group → a post in the group, by the gateway-held identity of the remote actor.
 * - `Like` / `Undo(Like)` of a group post → a Like, and the Delete of that Like.
 * - `Delete` / `Update` of the actor's own bridged object → the matching trx (the origin table
 *   says which trx it became; other objects are refused).
 *
 * Everything is idempotent: port.submit is, on the activity or object id it is given. Private
 * and suspended groups take nothing.
 */
import type { InboxContext, InboxListenerSetters } from '@fedify/fedify';
import {
  Accept,
  Activity,
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
import { BridgeRefusedError, type ExposedGroup } from '../port.ts';
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
import { groupIdentifier } from './urls.ts';

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
async function submit(
  state: ApState,
  input: Parameters<ApState['port']['submit']>[0],
): Promise<void> {
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
async function actorInfo(ctx: InboxContext<void>, activity: Activity): Promise<ApActorInfo> {
  const id = activity.actorId!;
  try {
    const actor = await activity.getActor(ctx);
    if (actor && isActor(actor) && actor.id?.href === id.href) {
      const url = actor.url;
      return {
        id,
        name: actor.name?.toString() ?? null,
        preferredUsername: actor.preferredUsername?.toString() ?? null,
        url: url instanceof URL ? url : (url?.href ?? null),
      };
    }
  } catch {
    // Only the id, then.
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
      state.followers.add(identifier, {
        id: follower.id.href,
        inbox: follower.inboxId.href,
        sharedInbox: follower.endpoints?.sharedInbox?.href ?? null,
        follow: follow.id.href,
        since: Date.now(),
      });
      const actor = ctx.getActorUri(identifier);
      await ctx.sendActivity(
        { identifier },
        follower,
        new Accept({ id: derivedId(actor, 'accept', follow.id.href), actor, object: follow }),
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
      const obj = await create.getObject(ctx);
      if (!(obj instanceof Note || obj instanceof Article) || !obj.id) return;
      // What came from this gateway is not posted again; the author must be the sender.
      if (ours(state, obj.id)) return;
      if (obj.attributionId && obj.attributionId.href !== create.actorId.href) return;
      const reply = targetOf(state, obj.replyTargetId);
      const groups = reply ? [reply.group] : await addressedGroups(state, obj);
      const recipient = ctx.recipient && state.groupOf(ctx.recipient);
      if (!reply && recipient && !groups.some((g) => g.groupId === recipient.groupId)) {
        groups.push(recipient);
      }
      const group = groups[0];
      if (!group) return;
      await submit(state, {
        groupId: group.groupId,
        network: 'activitypub',
        externalId: obj.id.href,
        author: create.actorId.href,
        object: await fromApNote(obj, await actorInfo(ctx, create), (u) =>
          state.resolveTrx(group, u),
        ),
      });
    })
    .on(Like, async (ctx, like) => {
      if (!like.id || !like.actorId) return;
      const target = targetOf(state, like.objectId);
      if (!target) return;
      const object = fromApLike(like, await actorInfo(ctx, like), (u) =>
        state.resolveTrx(target.group, u),
      );
      if (!object) return;
      await submit(state, {
        groupId: target.group.groupId,
        network: 'activitypub',
        externalId: like.id.href,
        author: like.actorId.href,
        object,
      });
    })
    .on(Announce, async (ctx, announce) => {
      if (!announce.id || !announce.actorId || ours(state, announce.id)) return;
      const target = targetOf(state, announce.objectId);
      if (!target) return;
      const object = fromApAnnounce(announce, await actorInfo(ctx, announce), (u) =>
        state.resolveTrx(target.group, u),
      );
      if (!object) return;
      await submit(state, {
        groupId: target.group.groupId,
        network: 'activitypub',
        externalId: announce.id.href,
        author: announce.actorId.href,
        object,
      });
    })
    .on(Delete, async (_ctx, del) => {
      if (!del.actorId || !del.objectId) return;
      const origin = state.port.trxOfOrigin('activitypub', del.objectId.href);
      if (!origin) return;
      // Only the actor's own bridged object: the key that posted it must be the actor's.
      const sender = state.port.item(origin.groupId, origin.trxId)?.senderPubkey;
      if (!sender || sender !== state.port.authorKey('activitypub', del.actorId.href)) return;
      const group = state.served(state.port.exposure(origin.groupId));
      if (!group) return;
      await submit(state, {
        groupId: group.groupId,
        network: 'activitypub',
        externalId: del.id?.href ?? `${del.objectId.href}#delete`,
        author: del.actorId.href,
        object: fromApDelete(origin.trxId, del.id),
      });
    })
    .on(Update, async (ctx, update) => {
      if (!update.actorId || !update.objectId) return;
      const obj = await update.getObject(ctx);
      if (!(obj instanceof Note || obj instanceof Article) || !obj.id) return;
      const origin = state.port.trxOfOrigin('activitypub', obj.id.href);
      if (!origin) return;
      const sender = state.port.item(origin.groupId, origin.trxId)?.senderPubkey;
      if (!sender || sender !== state.port.authorKey('activitypub', update.actorId.href)) return;
      const group = state.served(state.port.exposure(origin.groupId));
      if (!group) return;
      const version = obj.updated?.toString() ?? update.id?.href ?? '';
      await submit(state, {
        groupId: group.groupId,
        network: 'activitypub',
        externalId: update.id?.href ?? `${obj.id.href}#update-${version}`,
        author: update.actorId.href,
        object: await fromApUpdate(
          obj,
          await actorInfo(ctx, update),
          (u) => state.resolveTrx(group, u),
          origin.trxId,
        ),
      });
    })
    .onError((_ctx, error) => {
      state.log.warn({ err: error }, 'ap inbox listener failed');
    });
}
