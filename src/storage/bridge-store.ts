/**
 * The gateway's tables (src/storage/schema.ts): which groups are exposed to bridges, where each
 * consumer of the committed stream stands, which trxs came from another network, and the keys
 * of outside identities. Only src/gateway uses this; bridges go through bridges/port.ts.
 */
import { and, asc, eq, gt, or, sql } from 'drizzle-orm';
import { type Db, unsyncedTransaction } from './db.ts';
import {
  bridgeCursors,
  bridgeExposures,
  bridgeIdentities,
  bridgeOrigins,
  contents,
} from './schema.ts';

export type ExposureRow = typeof bridgeExposures.$inferSelect;
export type IdentityRow = typeof bridgeIdentities.$inferSelect;
export type OriginRow = typeof bridgeOrigins.$inferSelect;
export type StreamRow = typeof contents.$inferSelect;

export interface ChainPlace {
  blockId: number;
  position: number;
}

/** Outside identities remembered by a BridgeStore before its memory is cleared. */
const MAX_CACHED_IDENTITIES = 10_000;

/** The reads every bridged item and inbox request makes, built once (drizzle builds SQL per call). */
function prepared(db: Db) {
  const ph = sql.placeholder;
  return {
    listExposures: db.select().from(bridgeExposures).orderBy(asc(bridgeExposures.handle)).prepare(),
    exposure: db
      .select()
      .from(bridgeExposures)
      .where(eq(bridgeExposures.groupId, ph('g')))
      .prepare(),
    exposureByHandle: db
      .select()
      .from(bridgeExposures)
      .where(eq(bridgeExposures.handle, ph('h')))
      .prepare(),
    originOf: db
      .select()
      .from(bridgeOrigins)
      .where(and(eq(bridgeOrigins.network, ph('n')), eq(bridgeOrigins.externalId, ph('x'))))
      .prepare(),
    originOfTrx: db
      .select()
      .from(bridgeOrigins)
      .where(and(eq(bridgeOrigins.groupId, ph('g')), eq(bridgeOrigins.trxId, ph('t'))))
      .prepare(),
    identity: db
      .select()
      .from(bridgeIdentities)
      .where(and(eq(bridgeIdentities.network, ph('n')), eq(bridgeIdentities.externalId, ph('x'))))
      .prepare(),
    addOrigin: db
      .insert(bridgeOrigins)
      .values({
        network: ph('n'),
        externalId: ph('x'),
        groupId: ph('g'),
        trxId: ph('t'),
        createdAt: ph('at'),
      })
      .onConflictDoNothing()
      .prepare(),
    setCursor: db
      .insert(bridgeCursors)
      .values({
        consumer: ph('c'),
        groupId: ph('g'),
        blockId: ph('b'),
        position: ph('p'),
        updatedAt: ph('at'),
      })
      .onConflictDoUpdate({
        target: [bridgeCursors.consumer, bridgeCursors.groupId],
        set: {
          blockId: sql`excluded.block_id`,
          position: sql`excluded.position`,
          updatedAt: sql`excluded.updated_at`,
        },
      })
      .prepare(),
    contentAfter: db
      .select()
      .from(contents)
      .where(
        and(
          eq(contents.groupId, ph('g')),
          or(
            gt(contents.blockId, ph('b')),
            and(eq(contents.blockId, ph('b')), gt(contents.position, ph('p'))),
          ),
        ),
      )
      .orderBy(asc(contents.blockId), asc(contents.position))
      .limit(ph('n'))
      .prepare(),
    identityByPubkey: db
      .select()
      .from(bridgeIdentities)
      .where(eq(bridgeIdentities.pubkey, ph('p')))
      .prepare(),
  };
}

export class BridgeStore {
  readonly db: Db;
  private readonly q: ReturnType<typeof prepared>;
  private readonly identities = new Map<string, IdentityRow>();

  constructor(db: Db) {
    this.db = db;
    this.q = prepared(db);
  }

  // ---- exposures ----
  listExposures(): ExposureRow[] {
    return this.q.listExposures.all();
  }

  getExposure(groupId: string): ExposureRow | undefined {
    return this.q.exposure.get({ g: groupId });
  }

  exposureByHandle(handle: string): ExposureRow | undefined {
    return this.q.exposureByHandle.get({ h: handle });
  }

  putExposure(row: ExposureRow): void {
    this.db
      .insert(bridgeExposures)
      .values(row)
      .onConflictDoUpdate({
        target: bridgeExposures.groupId,
        set: {
          handle: row.handle,
          activitypub: row.activitypub,
          nostr: row.nostr,
          bots: row.bots,
          suspended: row.suspended,
          updatedAt: row.updatedAt,
        },
      })
      .run();
  }

  setSuspended(groupId: string, reason: string | null, at: number): void {
    this.db
      .update(bridgeExposures)
      .set({ suspended: reason, updatedAt: at })
      .where(eq(bridgeExposures.groupId, groupId))
      .run();
  }

  deleteExposure(groupId: string): boolean {
    return (
      this.db.delete(bridgeExposures).where(eq(bridgeExposures.groupId, groupId)).run().changes > 0
    );
  }

  // ---- the committed stream ----
  getCursor(consumer: string, groupId: string): ChainPlace | undefined {
    return this.db
      .select({ blockId: bridgeCursors.blockId, position: bridgeCursors.position })
      .from(bridgeCursors)
      .where(and(eq(bridgeCursors.consumer, consumer), eq(bridgeCursors.groupId, groupId)))
      .get();
  }

  /**
   * Moves a consumer's cursor, without waiting for an fsync: a cursor lost to a power loss
   * only hands the consumer some items again, which it takes as duplicates (the queue's
   * idempotency keys, the origin table).
   */
  setCursor(consumer: string, groupId: string, at: ChainPlace): void {
    unsyncedTransaction(this.db.$client, () =>
      this.q.setCursor.run({
        c: consumer,
        g: groupId,
        b: at.blockId,
        p: at.position,
        at: Date.now(),
      }),
    );
  }

  deleteCursors(consumer: string): void {
    this.db.delete(bridgeCursors).where(eq(bridgeCursors.consumer, consumer)).run();
  }

  /** The place of the last content item of a group, or the place before the first. */
  lastContentPlace(groupId: string): ChainPlace {
    const row = this.db
      .select({ blockId: contents.blockId, position: contents.position })
      .from(contents)
      .where(eq(contents.groupId, groupId))
      .orderBy(sql`${contents.blockId} desc, ${contents.position} desc`)
      .limit(1)
      .get();
    return row
      ? { blockId: row.blockId, position: row.position ?? 0 }
      : { blockId: 0, position: -1 };
  }

  /** Content items of a group after a place, in chain order. */
  contentAfter(groupId: string, after: ChainPlace, limit: number): StreamRow[] {
    return this.q.contentAfter.all({ g: groupId, b: after.blockId, p: after.position, n: limit });
  }

  /** Content items of a group before a place (or the newest), newest first. */
  contentBefore(groupId: string, before: ChainPlace | undefined, limit: number): StreamRow[] {
    const where = before
      ? and(
          eq(contents.groupId, groupId),
          or(
            sql`${contents.blockId} < ${before.blockId}`,
            and(
              eq(contents.blockId, before.blockId),
              sql`${contents.position} < ${before.position}`,
            ),
          ),
        )
      : eq(contents.groupId, groupId);
    return this.db
      .select()
      .from(contents)
      .where(where)
      .orderBy(sql`${contents.blockId} desc, ${contents.position} desc`)
      .limit(limit)
      .all();
  }

  /**
   * Content items of a group whose in_reply_to is a trx (replies, likes), in chain order. Read
   * through the group's rows (there is no index on in_reply_to): for a page, not a hot path.
   */
  contentReplyingTo(groupId: string, trxId: string, limit: number): StreamRow[] {
    return this.db
      .select()
      .from(contents)
      .where(and(eq(contents.groupId, groupId), eq(contents.inReplyTo, trxId)))
      .orderBy(asc(contents.blockId), asc(contents.position))
      .limit(limit)
      .all();
  }

  /** Whether a key has a content item in a group. */
  hasSender(groupId: string, senderPubkey: string): boolean {
    return (
      this.db
        .select({ one: sql`1` })
        .from(contents)
        .where(and(eq(contents.groupId, groupId), eq(contents.senderPubkey, senderPubkey)))
        .limit(1)
        .get() !== undefined
    );
  }

  // ---- origins ----
  originOf(network: string, externalId: string): OriginRow | undefined {
    return this.q.originOf.get({ n: network, x: externalId });
  }

  originOfTrx(groupId: string, trxId: string): OriginRow | undefined {
    return this.q.originOfTrx.get({ g: groupId, t: trxId });
  }

  /**
   * Records an origin; false when the outside id is recorded already. Opens no transaction of
   * its own: the port runs it inside the one that admits the trx it names
   * (RumNode.postAs's `withIt`), so the two are stored together or not at all.
   */
  addOrigin(row: Omit<OriginRow, 'createdAt'>): boolean {
    const res = this.q.addOrigin.run({
      n: row.network,
      x: row.externalId,
      g: row.groupId,
      t: row.trxId,
      at: Date.now(),
    });
    return res.changes > 0;
  }

  deleteOrigin(network: string, externalId: string): void {
    this.db
      .delete(bridgeOrigins)
      .where(and(eq(bridgeOrigins.network, network), eq(bridgeOrigins.externalId, externalId)))
      .run();
  }

  // ---- identities ----
  /**
   * An outside identity's key. A row is never changed or removed once written, so the rows found
   * are remembered (up to MAX_CACHED_IDENTITIES): each item a bridge posts asks twice.
   */
  getIdentity(network: string, externalId: string): IdentityRow | undefined {
    const id = `${network}\n${externalId}`;
    const known = this.identities.get(id);
    if (known) return known;
    const row = this.q.identity.get({ n: network, x: externalId });
    // Not remembered from inside a transaction, which may yet roll back.
    if (row && !this.db.$client.inTransaction) {
      if (this.identities.size >= MAX_CACHED_IDENTITIES) this.identities.clear();
      this.identities.set(id, row);
    }
    return row;
  }

  identityByPubkey(pubkey: string): IdentityRow | undefined {
    return this.q.identityByPubkey.get({ p: pubkey });
  }

  addIdentity(row: IdentityRow): void {
    this.db.insert(bridgeIdentities).values(row).onConflictDoNothing().run();
  }
}
