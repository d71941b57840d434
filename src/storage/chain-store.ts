/**
 * Repository over the node's SQLite database for groups, blocks, trxs, the persistent mempool,
 * the content index and chain/app config. A block, its trxs and every effect of them are
 * written in one transaction: after a crash either all of it is there or none of it.
 */
import { and, asc, desc, eq, gt, inArray, lt, or, sql } from 'drizzle-orm';
import type { ProducerState } from '../chain/poa.ts';
import {
  type Block,
  decodeTrx,
  encodeBlock,
  type Trx,
  type Witness,
  WitnessListDesc,
} from '../chain/pb.ts';
import { decodeMessage, encodeMessage } from '../chain/protobuf.ts';
import { emptyRules, type GroupRules } from '../chain/rules.ts';
import type { ChainStorage, CommittedTrx, GroupRecord, PendingTrx } from '../chain/store.ts';
import { hashPlaintextTokens } from './api-tokens.ts';
import type { Db } from './db.ts';
import {
  announces,
  apiTokens,
  groupUsers,
  producers,
  producerVotes,
  appConfigs,
  blocks,
  contents,
  groups,
  pendingTrxs,
  trxAuthModes,
  trxRules,
  trxs,
} from './schema.ts';

export type GroupRow = typeof groups.$inferSelect;
export type ContentRow = typeof contents.$inferSelect;
export type AppConfigRow = typeof appConfigs.$inferSelect;
export type TrxRuleRow = typeof trxRules.$inferSelect;
export type TokenRow = typeof apiTokens.$inferSelect;
export type NewTokenRow = typeof apiTokens.$inferInsert;
export type AnnounceRow = typeof announces.$inferSelect;
export type UserRow = typeof groupUsers.$inferSelect;
export type ProducerRow = typeof producers.$inferSelect;

/** The chain's GroupRecord (src/chain/store.ts) must be exactly a row of the groups table. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const groupRowIsGroupRecord: Same<GroupRow, GroupRecord> = true;
void groupRowIsGroupRecord;

const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const CHUNK = 500;

function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface ContentQuery {
  groupId: string;
  num: number;
  startTrx?: string | undefined;
  includeStartTrx: boolean;
  reverse: boolean;
  senders: string[];
}

/**
 * A drizzle query (its SQL made from the schema) as a better-sqlite3 statement that takes its
 * placeholders' values by name, for the per-trx statements of committing a block: drizzle's own
 * prepared queries map every call's values through its column types, which costs more there
 * than the insert itself. Values must already be what SQLite stores (text, integers, Buffers).
 */
function direct(db: Db, query: { toSQL(): { sql: string; params: unknown[] } }) {
  const { sql: text, params } = query.toSQL();
  // Each parameter is a placeholder (maybe inside drizzle's Param) or a constant (a default).
  const pick = params.map((p): ((v: Record<string, unknown>) => unknown) => {
    const inner =
      p !== null && typeof p === 'object' && 'encoder' in p
        ? (p as unknown as { value: unknown }).value
        : p;
    if (inner !== null && typeof inner === 'object' && 'name' in inner) {
      const name = (inner as { name: string }).name;
      return (v) => v[name] ?? null;
    }
    if (typeof inner === 'object' && inner !== null)
      throw new Error(`unsupported parameter in ${text}`);
    return () => inner;
  });
  const stmt = db.$client.prepare(text);
  const args = (v: Record<string, unknown>) => pick.map((f) => f(v));
  return {
    run: (v: Record<string, unknown>) => stmt.run(...args(v)),
    get: (v: Record<string, unknown>) => stmt.get(...args(v)),
  };
}

/** A content row of a sender's profile (or of a Delete), as the profile reader takes it. */
export type ProfileRow = Pick<ContentRow, 'seq' | 'trxId' | 'timestamp' | 'data' | 'objectType'>;

/**
 * A sender's rows of some object types in a group after a seq, newest first, skipping deleted
 * ones: a walk down the index contents_group_sender_seq over that sender's rows alone.
 */
function profileQuery(db: Db, types: string[]) {
  const ph = sql.placeholder;
  return db
    .select({
      seq: contents.seq,
      trxId: contents.trxId,
      timestamp: contents.timestamp,
      data: contents.data,
      objectType: contents.objectType,
    })
    .from(contents)
    .where(
      and(
        eq(contents.groupId, ph('g')),
        eq(contents.senderPubkey, ph('s')),
        gt(contents.seq, ph('after')),
        eq(contents.deleted, false),
        inArray(contents.objectType, types),
      ),
    )
    .orderBy(desc(contents.seq))
    .limit(ph('n'))
    .prepare();
}

export class ChainStore implements ChainStorage {
  readonly db: Db;
  private readonly hasTrxStmt: ReturnType<typeof direct>;
  private readonly stmts;
  /** Reads the bridges make for every item they serve, built once. */
  private readonly reads;

  constructor(db: Db) {
    this.db = db;
    hashPlaintextTokens(db);
    const ph = sql.placeholder;
    this.stmts = {
      insertTrx: direct(
        db,
        db.insert(trxs).values({
          groupId: ph('g'),
          trxId: ph('t'),
          blockId: ph('b'),
          position: ph('p'),
          type: ph('y'),
          senderPubkey: ph('s'),
          timestamp: ph('ts'),
          raw: ph('r'),
        }),
      ),
      insertPending: db
        .insert(pendingTrxs)
        .values({ groupId: ph('g'), trxId: ph('t'), raw: ph('r'), receivedAt: ph('at') })
        .onConflictDoNothing()
        .prepare(),
      deletePending: db
        .delete(pendingTrxs)
        .where(and(eq(pendingTrxs.groupId, ph('g')), eq(pendingTrxs.trxId, ph('t'))))
        .prepare(),
      insertContent: direct(
        db,
        db.insert(contents).values({
          groupId: ph('groupId'),
          trxId: ph('trxId'),
          position: ph('position'),
          senderPubkey: ph('senderPubkey'),
          timestamp: ph('timestamp'),
          blockId: ph('blockId'),
          data: ph('data'),
          objectType: ph('objectType'),
          inReplyTo: ph('inReplyTo'),
        }),
      ),
    };
    this.reads = {
      content: db
        .select({ c: contents })
        .from(trxs)
        .innerJoin(
          contents,
          and(
            eq(contents.groupId, trxs.groupId),
            eq(contents.blockId, trxs.blockId),
            eq(contents.position, trxs.position),
          ),
        )
        .where(and(eq(trxs.groupId, ph('g')), eq(trxs.trxId, ph('t'))))
        .prepare(),
      appConfig: db
        .select()
        .from(appConfigs)
        .where(eq(appConfigs.groupId, ph('g')))
        .orderBy(asc(appConfigs.name))
        .prepare(),
      lastOfSender: db
        .select({ seq: contents.seq })
        .from(contents)
        .where(and(eq(contents.groupId, ph('g')), eq(contents.senderPubkey, ph('s'))))
        .orderBy(desc(contents.seq))
        .limit(1)
        .prepare(),
      profiles: profileQuery(db, ['Profile']),
      profileChanges: profileQuery(db, ['Profile', 'Delete']),
    };
    this.hasTrxStmt = direct(
      db,
      db
        .select({ one: sql<number>`1` })
        .from(trxs)
        .where(and(eq(trxs.groupId, sql.placeholder('g')), eq(trxs.trxId, sql.placeholder('t')))),
    );
  }

  transaction<T>(fn: () => T): T {
    return this.db.$client.transaction(fn)();
  }

  // ---- groups ----
  insertGroup(row: typeof groups.$inferInsert, genesis: Block): void {
    this.transaction(() => {
      this.db.insert(groups).values(row).run();
      this.insertBlockRow(genesis);
    });
  }

  insertGroupRow(row: typeof groups.$inferInsert): void {
    this.db.insert(groups).values(row).run();
  }

  getGroup(groupId: string): GroupRow | undefined {
    return this.db.select().from(groups).where(eq(groups.groupId, groupId)).get();
  }

  listGroups(): GroupRow[] {
    return this.db.select().from(groups).orderBy(asc(groups.groupName)).all();
  }

  /** Leaving keeps blocks and trxs (as quorum does); only the membership goes. */
  deleteGroup(groupId: string): void {
    this.transaction(() => {
      this.db.delete(groups).where(eq(groups.groupId, groupId)).run();
      this.db.delete(pendingTrxs).where(eq(pendingTrxs.groupId, groupId)).run();
    });
  }

  /** Deletes every row of a group that is no longer joined. Returns whether anything was there. */
  clearGroupData(groupId: string): boolean {
    return this.transaction(() => {
      let changes = 0;
      for (const table of [
        blocks,
        trxs,
        contents,
        pendingTrxs,
        trxAuthModes,
        trxRules,
        appConfigs,
        announces,
        groupUsers,
        producers,
      ]) {
        changes += this.db.delete(table).where(eq(table.groupId, groupId)).run().changes;
      }
      return changes > 0;
    });
  }

  // ---- blocks and trxs ----
  private insertBlockRow(block: Block): void {
    this.db
      .insert(blocks)
      .values({
        groupId: block.GroupId,
        blockId: block.BlockId,
        epoch: block.Epoch,
        prevHash: buf(block.PrevHash),
        producerPubkey: block.ProducerPubkey,
        sudo: block.Sudo,
        timestamp: block.TimeStamp.toString(),
        blockHash: buf(block.BlockHash),
        producerSign: buf(block.ProducerSign),
        trxCount: block.Trxs.length,
        witnesses: block.Witnesses?.length
          ? buf(encodeMessage(WitnessListDesc, { Witnesses: block.Witnesses }))
          : null,
      })
      .run();
  }

  /**
   * Stores validated consecutive blocks with their trxs, applies their effects and moves the group
   * head, in one transaction (a node catching up writes fewer pages than with one a block).
   */
  commitBlocks(list: { block: Block; committed: CommittedTrx[] }[], nowNs: bigint): void {
    this.transaction(() => {
      for (const { block, committed } of list) this.storeBlock(block, committed, nowNs);
    });
  }

  private storeBlock(block: Block, committed: CommittedTrx[], nowNs: bigint): void {
    this.insertBlockRow(block);
    const gid = block.GroupId;
    // Prepared statements, one run per row: building a 500-row insert costs more than running it.
    committed.forEach((c, i) => {
      this.stmts.insertTrx.run({
        g: gid,
        t: c.trx.TrxId,
        b: block.BlockId,
        p: i,
        y: c.trx.Type,
        s: c.trx.SenderPubkey,
        ts: c.trx.TimeStamp.toString(),
        r: buf(c.raw),
      });
      if (c.pending !== false) this.stmts.deletePending.run({ g: gid, t: c.trx.TrxId });
    });
    this.applyEffects(block, committed);
    this.db
      .update(groups)
      .set({
        topBlockId: block.BlockId,
        topBlockHash: buf(block.BlockHash),
        currentEpoch: block.Epoch,
        lastUpdated: nowNs.toString(),
      })
      .where(eq(groups.groupId, gid))
      .run();
  }

  private applyEffects(block: Block, committed: CommittedTrx[]): void {
    const gid = block.GroupId;
    const contentRows: (typeof contents.$inferInsert)[] = [];
    const deletes: { target: string; sender: string }[] = [];
    for (const [i, { trx, effect }] of committed.entries()) {
      switch (effect.kind) {
        case 'content':
          contentRows.push({
            groupId: gid,
            trxId: trx.TrxId,
            position: i,
            senderPubkey: trx.SenderPubkey,
            timestamp: trx.TimeStamp.toString(),
            blockId: block.BlockId,
            data: effect.data ? buf(effect.data) : null,
            objectType: effect.facts.objectType,
            inReplyTo: effect.facts.inReplyTo,
          });
          if (effect.facts.deletes)
            deletes.push({ target: effect.facts.deletes, sender: trx.SenderPubkey });
          break;
        case 'authMode':
          this.db
            .insert(trxAuthModes)
            .values({ groupId: gid, trxType: effect.trxType, mode: effect.mode })
            .onConflictDoUpdate({
              target: [trxAuthModes.groupId, trxAuthModes.trxType],
              set: { mode: effect.mode },
            })
            .run();
          break;
        case 'rule': {
          const where = and(
            eq(trxRules.groupId, gid),
            eq(trxRules.list, effect.list),
            eq(trxRules.pubkey, effect.pubkey),
          );
          if (effect.action === 1) {
            this.db.delete(trxRules).where(where).run();
          } else {
            const row = {
              groupId: gid,
              list: effect.list,
              pubkey: effect.pubkey,
              trxTypes: effect.trxTypes,
              ownerPubkey: effect.item.OwnerPubkey,
              ownerSign: effect.item.OwnerSignature,
              timestamp: trx.TimeStamp.toString(),
              memo: effect.item.Memo,
            };
            this.db
              .insert(trxRules)
              .values(row)
              .onConflictDoUpdate({
                target: [trxRules.groupId, trxRules.list, trxRules.pubkey],
                set: row,
              })
              .run();
          }
          break;
        }
        case 'appConfig': {
          const it = effect.item;
          if (effect.action === 1) {
            this.db
              .delete(appConfigs)
              .where(and(eq(appConfigs.groupId, gid), eq(appConfigs.name, it.Name)))
              .run();
          } else {
            const row = {
              groupId: gid,
              name: it.Name,
              type: it.Type,
              value: it.Value,
              ownerPubkey: it.OwnerPubkey,
              ownerSign: it.OwnerSign,
              memo: it.Memo,
              timestamp: trx.TimeStamp.toString(),
            };
            this.db
              .insert(appConfigs)
              .values(row)
              .onConflictDoUpdate({ target: [appConfigs.groupId, appConfigs.name], set: row })
              .run();
          }
          break;
        }
        case 'announce': {
          const it = effect.item;
          const key = and(
            eq(announces.groupId, gid),
            eq(announces.type, it.Type),
            eq(announces.signPubkey, it.SignPubkey),
          );
          if (it.Action === 1) {
            this.db.delete(announces).where(key).run();
            break;
          }
          const approved = it.Type === 0 && this.isApprovedUser(gid, it.SignPubkey);
          const row = {
            groupId: gid,
            signPubkey: it.SignPubkey,
            type: it.Type,
            encryptPubkey: it.EncryptPubkey,
            announcerSign: it.AnnouncerSignature,
            result: approved ? 1 : 0,
            memo: it.Memo,
            timestamp: trx.TimeStamp.toString(),
          };
          this.db
            .insert(announces)
            .values(row)
            .onConflictDoUpdate({
              target: [announces.groupId, announces.type, announces.signPubkey],
              set: row,
            })
            .run();
          break;
        }
        case 'producers': {
          // quorum's PRODUCER trx carries the whole set of non-owner producers.
          this.db.delete(producers).where(eq(producers.groupId, gid)).run();
          for (const p of effect.items) {
            this.db
              .insert(producers)
              .values({
                groupId: gid,
                producerPubkey: p.ProducerPubkey,
                ownerSign: p.GroupOwnerSign,
                memo: p.Memo,
                timestamp: trx.TimeStamp.toString(),
              })
              .onConflictDoNothing()
              .run();
          }
          break;
        }
        case 'user': {
          const it = effect.item;
          const key = and(eq(groupUsers.groupId, gid), eq(groupUsers.userPubkey, it.UserPubkey));
          if (it.Action === 1) {
            this.db.delete(groupUsers).where(key).run();
          } else {
            const row = {
              groupId: gid,
              userPubkey: it.UserPubkey,
              encryptPubkey: it.EncryptPubkey,
              ownerSign: it.GroupOwnerSign,
              memo: it.Memo,
              timestamp: trx.TimeStamp.toString(),
            };
            this.db
              .insert(groupUsers)
              .values(row)
              .onConflictDoUpdate({ target: [groupUsers.groupId, groupUsers.userPubkey], set: row })
              .run();
          }
          this.db
            .update(announces)
            .set({ result: it.Action === 1 ? 0 : 1 })
            .where(
              and(
                eq(announces.groupId, gid),
                eq(announces.type, 0),
                eq(announces.signPubkey, it.UserPubkey),
              ),
            )
            .run();
          break;
        }
        default:
          break;
      }
    }
    for (const row of contentRows) this.stmts.insertContent.run(row as Record<string, unknown>);
    for (const d of deletes) {
      // Only the author of a post can delete it.
      const target = this.getContent(gid, d.target);
      if (!target || target.senderPubkey !== d.sender) continue;
      this.db.update(contents).set({ deleted: true }).where(eq(contents.seq, target.seq)).run();
    }
  }

  getBlock(groupId: string, blockId: number): Block | undefined {
    const found = this.blockRows(groupId, blockId);
    return found && { ...found.block, Trxs: found.raws.map((raw) => decodeTrx(raw)) };
  }

  /**
   * A stored block as its protobuf bytes, built from the trxs' stored bytes without decoding
   * them (what a node serves to peers catching up): the same bytes as encodeBlock(getBlock()).
   */
  getBlockFrame(groupId: string, blockId: number): Uint8Array | undefined {
    const found = this.blockRows(groupId, blockId);
    // encodeMessage writes a repeated message item given as bytes as it is.
    return found && encodeBlock({ ...found.block, Trxs: found.raws as unknown as Trx[] });
  }

  /** A block's header (Trxs empty) and its trxs' stored bytes in order. */
  private blockRows(
    groupId: string,
    blockId: number,
  ): { block: Block; raws: Uint8Array[] } | undefined {
    const row = this.db
      .select()
      .from(blocks)
      .where(and(eq(blocks.groupId, groupId), eq(blocks.blockId, blockId)))
      .get();
    if (!row) return undefined;
    const trxRows = this.db
      .select({ raw: trxs.raw })
      .from(trxs)
      .where(and(eq(trxs.groupId, groupId), eq(trxs.blockId, blockId)))
      .orderBy(asc(trxs.position))
      .all();
    const block: Block = {
      GroupId: row.groupId,
      BlockId: row.blockId,
      Epoch: row.epoch,
      PrevHash: new Uint8Array(row.prevHash),
      ProducerPubkey: row.producerPubkey,
      Trxs: [],
      Sudo: row.sudo,
      TimeStamp: BigInt(row.timestamp),
      BlockHash: new Uint8Array(row.blockHash),
      ProducerSign: new Uint8Array(row.producerSign),
      Witnesses: row.witnesses
        ? decodeMessage<{ Witnesses: Witness[] }>(WitnessListDesc, new Uint8Array(row.witnesses))
            .Witnesses
        : [],
    };
    return { block, raws: trxRows.map((r) => new Uint8Array(r.raw)) };
  }

  /** Frames of stored blocks from..from+count-1 (see getBlockFrame), at most maxBytes in all. */
  blockFramesRange(groupId: string, from: number, count: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    for (let id = from; id < from + count; id++) {
      const frame = this.getBlockFrame(groupId, id);
      if (!frame) break;
      bytes += frame.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(frame);
    }
    return out;
  }

  getTrx(groupId: string, trxId: string): { trx: Trx; blockId: number } | undefined {
    const row = this.db
      .select({ raw: trxs.raw, blockId: trxs.blockId })
      .from(trxs)
      .where(and(eq(trxs.groupId, groupId), eq(trxs.trxId, trxId)))
      .get();
    return row ? { trx: decodeTrx(row.raw), blockId: row.blockId } : undefined;
  }

  /** Which of these trx ids are already in the chain (one prepared lookup each: hot on gossip). */
  committedTrxIds(groupId: string, trxIds: string[]): Set<string> {
    const found = new Set<string>();
    for (const trxId of trxIds) if (this.hasTrxStmt.get({ g: groupId, t: trxId })) found.add(trxId);
    return found;
  }

  topBlockId(groupId: string): number {
    const row = this.db
      .select({ top: sql<number | null>`max(${blocks.blockId})` })
      .from(blocks)
      .where(eq(blocks.groupId, groupId))
      .get();
    return row?.top ?? 0;
  }

  /** Streams committed blocks of a group in order (for replay). */
  *iterateBlocks(groupId: string, fromBlockId = 0): Generator<Block> {
    let next = fromBlockId;
    for (;;) {
      const ids = this.db
        .select({ blockId: blocks.blockId })
        .from(blocks)
        .where(and(eq(blocks.groupId, groupId), gt(blocks.blockId, next - 1)))
        .orderBy(asc(blocks.blockId))
        .limit(256)
        .all();
      if (ids.length === 0) return;
      for (const { blockId } of ids) {
        const b = this.getBlock(groupId, blockId);
        if (b) yield b;
        next = blockId + 1;
      }
    }
  }

  // ---- mempool ----
  addPending(groupId: string, trx: Trx, raw: Uint8Array, nowMs: number): boolean {
    const res = this.db
      .insert(pendingTrxs)
      .values({ groupId, trxId: trx.TrxId, raw: buf(raw), receivedAt: nowMs })
      .onConflictDoNothing()
      .run();
    return res.changes > 0;
  }

  /** Stores admitted trxs in one transaction, with the writes `also` makes in it. */
  addPendingMany(items: PendingTrx[], nowMs: number, also: readonly (() => void)[] = []): void {
    const insert = this.stmts.insertPending;
    this.transaction(() => {
      for (const i of items) insert.run({ g: i.groupId, t: i.trx.TrxId, r: buf(i.raw), at: nowMs });
      for (const f of also) f();
    });
  }

  listPending(groupId: string): Trx[] {
    return this.db
      .select({ raw: pendingTrxs.raw })
      .from(pendingTrxs)
      .where(eq(pendingTrxs.groupId, groupId))
      .orderBy(asc(pendingTrxs.receivedAt))
      .all()
      .map((r) => decodeTrx(r.raw));
  }

  removePending(groupId: string, trxIds: string[]): void {
    for (const part of chunks(trxIds)) {
      this.db
        .delete(pendingTrxs)
        .where(and(eq(pendingTrxs.groupId, groupId), inArray(pendingTrxs.trxId, part)))
        .run();
    }
  }

  // ---- content index ----
  /** A trx's content row, found through the trx's block and position (see the schema). */
  getContent(groupId: string, trxId: string): ContentRow | undefined {
    return this.reads.content.get({ g: groupId, t: trxId })?.c;
  }

  /** The seq of a sender's newest content row in a group (0 when it has none). */
  lastSeqOfSender(groupId: string, senderPubkey: string): number {
    return this.reads.lastOfSender.get({ g: groupId, s: senderPubkey })?.seq ?? 0;
  }

  /**
   * A sender's newest rows whose object is a `Profile` in a group, after a seq (0: all), at most
   * `limit`, newest first; with `deletes`, its Deletes among them too (a Delete may have removed
   * a profile). Rows a Delete removed are left out.
   */
  profileRows(
    groupId: string,
    senderPubkey: string,
    o: { afterSeq: number; limit: number; deletes: boolean },
  ): ProfileRow[] {
    const q = o.deletes ? this.reads.profileChanges : this.reads.profiles;
    return q.all({ g: groupId, s: senderPubkey, after: o.afterSeq, n: o.limit });
  }

  queryContent(q: ContentQuery): ContentRow[] {
    const conds = [eq(contents.groupId, q.groupId), eq(contents.deleted, false)];
    if (q.senders.length > 0) conds.push(inArray(contents.senderPubkey, q.senders));
    if (q.startTrx) {
      const start = this.getContent(q.groupId, q.startTrx);
      if (!start) return [];
      const op = q.reverse
        ? q.includeStartTrx
          ? sql`<=`
          : sql`<`
        : q.includeStartTrx
          ? sql`>=`
          : sql`>`;
      conds.push(sql`${contents.seq} ${op} ${start.seq}`);
    }
    return this.db
      .select()
      .from(contents)
      .where(and(...conds))
      .orderBy(q.reverse ? desc(contents.seq) : asc(contents.seq))
      .limit(q.num)
      .all();
  }

  /** Drops the content index and chain/app config state of a group (before a replay). */
  resetDerivedState(groupId: string): void {
    this.transaction(() => {
      for (const table of [
        contents,
        trxAuthModes,
        trxRules,
        appConfigs,
        announces,
        groupUsers,
        producers,
      ]) {
        this.db.delete(table).where(eq(table.groupId, groupId)).run();
      }
    });
  }

  applyReplayed(block: Block, committed: CommittedTrx[]): void {
    this.transaction(() => this.applyEffects(block, committed));
  }

  // ---- chain config / app config ----
  loadRules(groupId: string): GroupRules {
    const rules = emptyRules();
    for (const m of this.db
      .select()
      .from(trxAuthModes)
      .where(eq(trxAuthModes.groupId, groupId))
      .all()) {
      rules.modes.set(m.trxType, m.mode);
    }
    for (const r of this.db.select().from(trxRules).where(eq(trxRules.groupId, groupId)).all()) {
      (r.list === 0 ? rules.allow : rules.deny).set(r.pubkey, new Set(r.trxTypes));
    }
    return rules;
  }

  listRules(groupId: string, list: 0 | 1): TrxRuleRow[] {
    return this.db
      .select()
      .from(trxRules)
      .where(and(eq(trxRules.groupId, groupId), eq(trxRules.list, list)))
      .orderBy(asc(trxRules.pubkey))
      .all();
  }

  authMode(groupId: string, trxType: number): number | undefined {
    return this.db
      .select()
      .from(trxAuthModes)
      .where(and(eq(trxAuthModes.groupId, groupId), eq(trxAuthModes.trxType, trxType)))
      .get()?.mode;
  }

  listAppConfig(groupId: string): AppConfigRow[] {
    return this.reads.appConfig.all({ g: groupId });
  }

  getAppConfig(groupId: string, name: string): AppConfigRow | undefined {
    return this.db
      .select()
      .from(appConfigs)
      .where(and(eq(appConfigs.groupId, groupId), eq(appConfigs.name, name)))
      .get();
  }

  // ---- producers ----
  listProducers(groupId: string): ProducerRow[] {
    return this.db
      .select()
      .from(producers)
      .where(eq(producers.groupId, groupId))
      .orderBy(asc(producers.producerPubkey))
      .all();
  }

  /** This node's promise and lock as a producer at a height (src/chain/poa.ts). */
  producerState(groupId: string, blockId: number): ProducerState | undefined {
    const row = this.db
      .select()
      .from(producerVotes)
      .where(and(eq(producerVotes.groupId, groupId), eq(producerVotes.blockId, blockId)))
      .get();
    return row
      ? { promised: row.promisedRound, lockedRound: row.lockedRound, lockedHash: row.blockHash }
      : undefined;
  }

  /** Writes the promise and lock at a height (synchronously, before the caller sends anything). */
  saveProducerState(groupId: string, blockId: number, s: ProducerState): void {
    const values = {
      blockHash: s.lockedHash,
      lockedRound: s.lockedRound,
      promisedRound: s.promised,
    };
    this.db
      .insert(producerVotes)
      .values({ groupId, blockId, ...values })
      .onConflictDoUpdate({ target: [producerVotes.groupId, producerVotes.blockId], set: values })
      .run();
    this.db
      .delete(producerVotes)
      .where(and(eq(producerVotes.groupId, groupId), lt(producerVotes.blockId, blockId - 1000)))
      .run();
  }

  // ---- announced and approved users ----
  listAnnounces(groupId: string, type: number): AnnounceRow[] {
    return this.db
      .select()
      .from(announces)
      .where(and(eq(announces.groupId, groupId), eq(announces.type, type)))
      .orderBy(asc(announces.timestamp))
      .all();
  }

  getAnnounce(groupId: string, type: number, signPubkey: string): AnnounceRow | undefined {
    return this.db
      .select()
      .from(announces)
      .where(
        and(
          eq(announces.groupId, groupId),
          eq(announces.type, type),
          eq(announces.signPubkey, signPubkey),
        ),
      )
      .get();
  }

  listUsers(groupId: string): UserRow[] {
    return this.db
      .select()
      .from(groupUsers)
      .where(eq(groupUsers.groupId, groupId))
      .orderBy(asc(groupUsers.userPubkey))
      .all();
  }

  isApprovedUser(groupId: string, userPubkey: string): boolean {
    return (
      this.db
        .select({ u: groupUsers.userPubkey })
        .from(groupUsers)
        .where(and(eq(groupUsers.groupId, groupId), eq(groupUsers.userPubkey, userPubkey)))
        .get() !== undefined
    );
  }

  // ---- API tokens ----
  insertToken(row: NewTokenRow): void {
    this.db.insert(apiTokens).values(row).run();
  }
  getTokenByHash(tokenHash: string): TokenRow | undefined {
    return this.db.select().from(apiTokens).where(eq(apiTokens.tokenHash, tokenHash)).get();
  }
  listTokens(): TokenRow[] {
    return this.db.select().from(apiTokens).orderBy(asc(apiTokens.createdAt)).all();
  }
  /** Revokes the token stored under tokenHash, or the one whose id is `id`. */
  revokeToken(tokenHash: string, id?: string): boolean {
    const match =
      id === undefined
        ? eq(apiTokens.tokenHash, tokenHash)
        : or(eq(apiTokens.tokenHash, tokenHash), eq(apiTokens.id, id));
    return this.db.update(apiTokens).set({ revoked: true }).where(match).run().changes > 0;
  }
  /** Revokes the unrevoked token under oldHash and stores its replacement, or neither. */
  replaceToken(oldHash: string, row: NewTokenRow): boolean {
    return this.db.transaction((tx) => {
      const revoked = tx
        .update(apiTokens)
        .set({ revoked: true })
        .where(and(eq(apiTokens.tokenHash, oldHash), eq(apiTokens.revoked, false)))
        .run();
      if (revoked.changes === 0) return false;
      tx.insert(apiTokens).values(row).run();
      return true;
    });
  }
}
