/**
 * The gateway's tables (src/storage/schema.ts): which groups are exposed to bridges, where each
 * consumer of the committed stream stands, which trxs came from another network, and the keys
 * of outside identities. Only src/gateway uses this; bridges go through bridges/port.ts.
 */
import { and, asc, eq, gt, or, sql } from 'drizzle-orm';
import type { Db } from './db.ts';
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

export class BridgeStore {
  readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  // ---- exposures ----
  listExposures(): ExposureRow[] {
    return this.db.select().from(bridgeExposures).orderBy(asc(bridgeExposures.handle)).all();
  }

  getExposure(groupId: string): ExposureRow | undefined {
    return this.db.select().from(bridgeExposures).where(eq(bridgeExposures.groupId, groupId)).get();
  }

  exposureByHandle(handle: string): ExposureRow | undefined {
    return this.db.select().from(bridgeExposures).where(eq(bridgeExposures.handle, handle)).get();
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

  setCursor(consumer: string, groupId: string, at: ChainPlace): void {
    const row = { consumer, groupId, ...at, updatedAt: Date.now() };
    this.db
      .insert(bridgeCursors)
      .values(row)
      .onConflictDoUpdate({
        target: [bridgeCursors.consumer, bridgeCursors.groupId],
        set: { blockId: at.blockId, position: at.position, updatedAt: row.updatedAt },
      })
      .run();
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
    return this.db
      .select()
      .from(contents)
      .where(
        and(
          eq(contents.groupId, groupId),
          or(
            gt(contents.blockId, after.blockId),
            and(eq(contents.blockId, after.blockId), gt(contents.position, after.position)),
          ),
        ),
      )
      .orderBy(asc(contents.blockId), asc(contents.position))
      .limit(limit)
      .all();
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
    return this.db
      .select()
      .from(bridgeOrigins)
      .where(and(eq(bridgeOrigins.network, network), eq(bridgeOrigins.externalId, externalId)))
      .get();
  }

  originOfTrx(groupId: string, trxId: string): OriginRow | undefined {
    return this.db
      .select()
      .from(bridgeOrigins)
      .where(and(eq(bridgeOrigins.groupId, groupId), eq(bridgeOrigins.trxId, trxId)))
      .get();
  }

  /** Records an origin; false when the outside id is recorded already. */
  addOrigin(row: Omit<OriginRow, 'createdAt'>): boolean {
    const res = this.db
      .insert(bridgeOrigins)
      .values({ ...row, createdAt: Date.now() })
      .onConflictDoNothing()
      .run();
    return res.changes > 0;
  }

  deleteOrigin(network: string, externalId: string): void {
    this.db
      .delete(bridgeOrigins)
      .where(and(eq(bridgeOrigins.network, network), eq(bridgeOrigins.externalId, externalId)))
      .run();
  }

  // ---- identities ----
  getIdentity(network: string, externalId: string): IdentityRow | undefined {
    return this.db
      .select()
      .from(bridgeIdentities)
      .where(
        and(eq(bridgeIdentities.network, network), eq(bridgeIdentities.externalId, externalId)),
      )
      .get();
  }

  identityByPubkey(pubkey: string): IdentityRow | undefined {
    return this.db.select().from(bridgeIdentities).where(eq(bridgeIdentities.pubkey, pubkey)).get();
  }

  addIdentity(row: IdentityRow): void {
    this.db.insert(bridgeIdentities).values(row).onConflictDoNothing().run();
  }
}
