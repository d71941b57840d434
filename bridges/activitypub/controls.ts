/**
 * The operator's controls of the ActivityPub bridge (issue 9 part 8), on the node's admin API
 * (never on the public gateway; the admin API's own token rules apply):
 *
 * - `GET /api/v1/bridges/activitypub/:handle/followers` lists a group's followers (paged by
 *   follower id); `DELETE` of one (`{"actor": id}`) removes it and sends the follower a signed
 *   `Reject` of its `Follow`: Mastodon answers a Reject of an accepted Follow by dropping the
 *   follow on its side, so the remote timeline stops expecting posts (an `Undo` would be ours to
 *   send only for a Follow we had sent).
 * - `PUT /api/v1/bridges/activitypub/blocks` with `{"actor": id}` or `{"instance": host}` blocks,
 *   `DELETE` with the same unblocks, `GET` lists. A block removes the blocked followers, sends
 *   each a `Reject` of its Follow and a `Block` from the group it followed (an actor that followed
 *   nothing gets the `Block` from the instance actor), and then stops both directions (see
 *   blocks.ts). Unblocking sends `Undo(Block)` for every Block the block sent; a follower that
 *   was removed has to follow again.
 * - `GET /api/v1/bridges/activitypub/deliveries`: the delivery queue's `fedify` jobs summed up
 *   by destination host (done, pending, active, failed, the last error), with each host's
 *   followers and its last permanent failure (a 404/410 Fedify does not retry).
 */
import { Block, Follow, Reject, Undo, isActor, type Recipient } from '@fedify/vocab';
import type { FastifyInstance } from 'fastify';
import type { ExposedGroup, JobStatus } from '../port.ts';
import { type BlockRecord, normalizeHost } from './blocks.ts';
import { type ApState, derivedId, type Follower, goneByHost } from './federation.ts';
import { JOB_KIND } from './mq.ts';
import { groupIdentifier, INSTANCE } from './urls.ts';

/** An error the admin API answers with its status and `{"message": …}`. */
export class ControlError extends Error {
  override name = 'ControlError';
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

/** The most jobs of each status the deliveries summary reads. */
const SUMMARY_JOBS = 10_000;

function httpUrl(s: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ControlError(`${what} is not a URL: ${s}`, 400);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new ControlError(`${what} is not an http(s) URL: ${s}`, 400);
  }
  return u;
}

function hostOf(url: string): string | null {
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}

/** A follower as a recipient of its personal inbox (a Reject or Block is for it alone). */
function personal(f: Pick<Follower, 'id' | 'inbox'>): Recipient {
  return { id: new URL(f.id), inboxId: new URL(f.inbox), endpoints: null };
}

export interface DestinationSummary {
  destination: string;
  followers: number;
  done: number;
  pending: number;
  active: number;
  failed: number;
  last_error: string | null;
  last_error_at: string | null;
  gone: { inbox: string; status: number | null; at: string } | null;
}

export class ApControls {
  private readonly state: ApState;

  constructor(state: ApState) {
    this.state = state;
  }

  private group(handle: string): ExposedGroup {
    const g = this.state.port.exposureByHandle(handle);
    if (!g || !g.activitypub) {
      throw new ControlError(`no group is exposed on ActivityPub as ${handle}`, 404);
    }
    return g;
  }

  followers(handle: string, after: string | null, limit: number) {
    const g = this.group(handle);
    const identifier = groupIdentifier(g.handle);
    const page = this.state.followers.page(identifier, after, limit);
    return {
      handle: g.handle,
      group_id: g.groupId,
      total: this.state.followers.count(identifier),
      followers: page.map((f) => ({
        id: f.id,
        inbox: f.inbox,
        shared_inbox: f.sharedInbox,
        since: new Date(f.since).toISOString(),
      })),
      next: page.length === limit ? page[page.length - 1]!.id : null,
    };
  }

  /** Sends a Reject of a follower's Follow from a group (when the group is served). */
  private async reject(group: ExposedGroup, f: Follower): Promise<void> {
    if (!this.state.served(group)) return;
    const ctx = this.state.context();
    const identifier = groupIdentifier(group.handle);
    const actor = ctx.getActorUri(identifier);
    const follow = new Follow({ id: new URL(f.follow), actor: new URL(f.id), object: actor });
    await ctx.sendActivity(
      { identifier },
      personal(f),
      new Reject({
        id: derivedId(actor, 'reject', `${f.follow}\n${Date.now()}`),
        actor,
        object: follow,
      }),
    );
  }

  /** Sends a Block from one of our actors; answers what was sent, for the Undo. */
  private async sendBlock(
    identifier: string,
    to: { id: string; inbox: string },
    record: BlockRecord,
  ): Promise<void> {
    const ctx = this.state.context();
    const actor = ctx.getActorUri(identifier);
    const id = derivedId(actor, 'block', `${to.id}\n${record.since}`);
    await ctx.sendActivity(
      { identifier },
      personal(to),
      new Block({ id, actor, object: new URL(to.id) }),
    );
    record.sent.push({ by: identifier, to: to.id, inbox: to.inbox, id: id.href });
  }

  async removeFollower(handle: string, actorId: string) {
    const g = this.group(handle);
    const identifier = groupIdentifier(g.handle);
    const f = this.state.followers.get(identifier, actorId);
    if (!f) throw new ControlError(`${actorId} does not follow ${g.handle}`, 404);
    this.state.followers.remove(identifier, actorId);
    await this.reject(g, f);
    this.state.log.info({ follower: actorId, group: g.handle }, 'ap: follower removed');
    return { handle: g.handle, actor: actorId, removed: true, rejected: !!this.state.served(g) };
  }

  /** Removes the followers a block covers, with a Reject and a Block from each group. */
  private async dropBlocked(
    record: BlockRecord,
    covers: (f: Follower) => boolean,
  ): Promise<number> {
    let n = 0;
    for (const g of this.state.port.exposures()) {
      const identifier = groupIdentifier(g.handle);
      for (const f of this.state.followers.all(identifier)) {
        if (!covers(f)) continue;
        this.state.followers.remove(identifier, f.id);
        n++;
        if (!this.state.served(g)) continue;
        await this.reject(g, f);
        await this.sendBlock(identifier, f, record);
      }
    }
    return n;
  }

  async blockActor(actorId: string) {
    const u = httpUrl(actorId, 'actor');
    if (u.origin === new URL(this.state.urls.origin).origin) {
      throw new ControlError('that actor is one of this gateway', 400);
    }
    const known = this.state.blocks.get('actor', u.href);
    if (known) return { block: blockJson(known), created: false, removed_followers: 0 };
    let inbox: string | null = null;
    for (const g of this.state.port.exposures()) {
      const f = this.state.followers.get(groupIdentifier(g.handle), u.href);
      if (f) inbox = f.inbox;
    }
    const record: BlockRecord = {
      kind: 'actor',
      target: u.href,
      since: Date.now(),
      inbox,
      sent: [],
    };
    // Kept first: from now on nothing else goes to it and nothing of it comes in.
    this.state.blocks.put(record);
    const removed = await this.dropBlocked(record, (f) => f.id === u.href);
    if (record.sent.length === 0) {
      // It followed nothing: the instance actor tells it (when it can be found).
      const to = await this.lookupInbox(u.href);
      if (to) {
        record.inbox ??= to.inbox;
        await this.sendBlock(INSTANCE, to, record);
      }
    }
    this.state.blocks.put(record);
    this.state.log.info({ actor: u.href, removed }, 'ap: actor blocked');
    return { block: blockJson(record), created: true, removed_followers: removed };
  }

  async blockInstance(input: string) {
    const host = normalizeHost(input);
    if (!host) throw new ControlError(`not a host: ${input}`, 400);
    if (host === new URL(this.state.urls.origin).host) {
      throw new ControlError('that is this gateway', 400);
    }
    const known = this.state.blocks.get('instance', host);
    if (known) return { block: blockJson(known), created: false, removed_followers: 0 };
    const record: BlockRecord = { kind: 'instance', target: host, since: Date.now(), sent: [] };
    this.state.blocks.put(record);
    const removed = await this.dropBlocked(
      record,
      (f) => this.state.blocks.instanceOf(f.id) !== null,
    );
    this.state.blocks.put(record);
    this.state.log.info({ instance: host, removed }, 'ap: instance blocked');
    return { block: blockJson(record), created: true, removed_followers: removed };
  }

  async unblock(kind: 'actor' | 'instance', input: string) {
    const target = kind === 'actor' ? httpUrl(input, 'actor').href : normalizeHost(input);
    if (!target) throw new ControlError(`not a host: ${input}`, 400);
    const record = this.state.blocks.remove(kind, target);
    if (!record) throw new ControlError(`${target} is not blocked`, 404);
    const ctx = this.state.context();
    for (const s of record.sent) {
      const actor = ctx.getActorUri(s.by);
      const block = new Block({ id: new URL(s.id), actor, object: new URL(s.to) });
      try {
        await ctx.sendActivity(
          { identifier: s.by },
          personal({ id: s.to, inbox: s.inbox }),
          new Undo({ id: derivedId(actor, 'undo', s.id), actor, object: block }),
        );
      } catch (err) {
        this.state.log.warn({ err, to: s.to }, 'ap: cannot send Undo(Block)');
      }
    }
    this.state.log.info({ kind, target }, 'ap: unblocked');
    return { kind, target, removed: true, undone: record.sent.length };
  }

  blocks() {
    return { blocks: this.state.blocks.list().map(blockJson) };
  }

  /** The personal inbox of a remote actor, fetched with the instance actor's signature. */
  private async lookupInbox(actorId: string): Promise<{ id: string; inbox: string } | null> {
    try {
      const ctx = this.state.context();
      const documentLoader = await ctx.getDocumentLoader({ identifier: INSTANCE });
      const actor = await ctx.lookupObject(actorId, { documentLoader });
      if (!actor || !isActor(actor) || actor.id?.href !== actorId || !actor.inboxId) return null;
      return { id: actorId, inbox: actor.inboxId.href };
    } catch (err) {
      this.state.log.info({ err, actor: actorId }, 'ap: blocked actor not reachable');
      return null;
    }
  }

  async deliveries() {
    const queue = this.state.port.queue;
    const statuses: JobStatus[] = ['pending', 'active', 'done', 'failed'];
    const lists = await Promise.all(statuses.map((s) => queue.list(s, SUMMARY_JOBS)));
    const by = new Map<string, DestinationSummary>();
    const at = (destination: string): DestinationSummary => {
      let d = by.get(destination);
      if (!d) {
        d = {
          destination,
          followers: 0,
          done: 0,
          pending: 0,
          active: 0,
          failed: 0,
          last_error: null,
          last_error_at: null,
          gone: null,
        };
        by.set(destination, d);
      }
      return d;
    };
    const internal: Record<string, Record<JobStatus, number>> = {};
    let lastErrorAt = new Map<string, number>();
    for (const [i, jobs] of lists.entries()) {
      const status = statuses[i]!;
      for (const j of jobs) {
        if (j.kind !== JOB_KIND) continue;
        if (j.destination.startsWith('fedify-')) {
          internal[j.destination] ??= { pending: 0, active: 0, done: 0, failed: 0 };
          internal[j.destination]![status]++;
          continue;
        }
        const d = at(j.destination);
        d[status]++;
        if (j.lastError && (status === 'failed' || status === 'pending')) {
          const when = j.at;
          if (when >= (lastErrorAt.get(j.destination) ?? -1)) {
            lastErrorAt.set(j.destination, when);
            d.last_error = j.lastError;
            d.last_error_at = new Date(when).toISOString();
          }
        }
      }
    }
    lastErrorAt = new Map();
    for (const g of this.state.port.exposures()) {
      for (const f of this.state.followers.all(groupIdentifier(g.handle))) {
        for (const h of new Set([hostOf(f.inbox), hostOf(f.sharedInbox ?? '')])) {
          if (h) at(h).followers++;
        }
      }
    }
    for (const [host, gone] of goneByHost(this.state.kv)) {
      at(host).gone = {
        inbox: gone.inbox,
        status: gone.status,
        at: new Date(gone.at).toISOString(),
      };
    }
    return {
      backend: queue.backend,
      truncated: lists.some((l) => l.length >= SUMMARY_JOBS),
      destinations: [...by.values()].sort((a, b) => a.destination.localeCompare(b.destination)),
      internal,
    };
  }
}

function blockJson(r: BlockRecord) {
  return {
    kind: r.kind,
    [r.kind]: r.target,
    since: new Date(r.since).toISOString(),
    sent: r.sent.map((s) => ({ type: 'Block', by: s.by, to: s.to, id: s.id })),
  };
}

const actorOrInstance = {
  type: 'object',
  properties: {
    actor: { type: 'string', minLength: 1, maxLength: 2048 },
    instance: { type: 'string', minLength: 1, maxLength: 300 },
  },
  additionalProperties: false,
} as const;

function oneOf(body: { actor?: string; instance?: string }): ['actor' | 'instance', string] {
  if (body.actor !== undefined && body.instance === undefined) return ['actor', body.actor];
  if (body.instance !== undefined && body.actor === undefined) return ['instance', body.instance];
  throw new ControlError('give exactly one of "actor" and "instance"', 400);
}

/** The admin API's ActivityPub routes (registered by the bridge's `admin` hook). */
export function registerApAdminRoutes(app: FastifyInstance, controls: () => ApControls): void {
  const tags = ['Bridges'];
  const handleParams = {
    type: 'object',
    required: ['handle'],
    properties: { handle: { type: 'string', minLength: 1, maxLength: 100 } },
  } as const;

  app.get(
    '/api/v1/bridges/activitypub/:handle/followers',
    {
      schema: {
        tags,
        summary: "A group's ActivityPub followers, paged by follower id",
        params: handleParams,
        querystring: {
          type: 'object',
          properties: {
            after: { type: 'string', maxLength: 2048 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { handle } = req.params as { handle: string };
      const q = req.query as { after?: string; limit: number };
      return controls().followers(handle, q.after ?? null, q.limit);
    },
  );

  app.delete(
    '/api/v1/bridges/activitypub/:handle/followers',
    {
      schema: {
        tags,
        summary: 'Remove a follower (it is sent a Reject of its Follow)',
        params: handleParams,
        body: {
          type: 'object',
          required: ['actor'],
          properties: { actor: { type: 'string', minLength: 1, maxLength: 2048 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { handle } = req.params as { handle: string };
      const { actor } = req.body as { actor: string };
      return controls().removeFollower(handle, actor);
    },
  );

  app.get(
    '/api/v1/bridges/activitypub/blocks',
    { schema: { tags, summary: 'Blocked ActivityPub actors and instances' } },
    async () => controls().blocks(),
  );

  app.put(
    '/api/v1/bridges/activitypub/blocks',
    {
      schema: {
        tags,
        summary: 'Block a remote actor or a whole instance (both directions)',
        body: actorOrInstance,
      },
    },
    async (req) => {
      const [kind, target] = oneOf(req.body as { actor?: string; instance?: string });
      const c = controls();
      return kind === 'actor' ? c.blockActor(target) : c.blockInstance(target);
    },
  );

  app.delete(
    '/api/v1/bridges/activitypub/blocks',
    { schema: { tags, summary: 'Unblock a remote actor or instance', body: actorOrInstance } },
    async (req) => {
      const [kind, target] = oneOf(req.body as { actor?: string; instance?: string });
      return controls().unblock(kind, target);
    },
  );

  app.get(
    '/api/v1/bridges/activitypub/deliveries',
    {
      schema: {
        tags,
        summary: 'ActivityPub deliveries per destination host, and their failures',
      },
    },
    async () => controls().deliveries(),
  );
}
