/**
 * One joined group: its head, its rules, its mempool and, when this node is the owner, the
 * POA producer that orders pending trxs into signed blocks. All state changes go through
 * applyBlock(), which validates a block against its parent and commits it in one transaction.
 */
import type { EventEmitter } from 'node:events';
import { aesDecrypt, aesEncrypt } from '../crypto/aes.ts';
import { effectOf } from './apply.ts';
import { checkBlockWithParent, signBlock } from './block.ts';
import { nowNs } from './clock.ts';
import { type Block, encodeTrx, type Trx, TrxType } from './pb.ts';
import { checkFinality, producerSet } from './producers.ts';
import { checkTrxAuth, type GroupRules } from './rules.ts';
import type { ChainStorage, GroupRecord, PendingTrx } from './store.ts';
import { type Check, checkTrx, SignatureCache, signTrx, signTrxWith } from './trx.ts';
import { encodePubkey, publicKeyOf } from '../crypto/keys.ts';

export interface ChainLimits {
  maxTrxDataBytes: number;
  maxTrxPerBlock: number;
  maxBlockBytes: number;
  blockIntervalMs: number;
  mempoolMaxTrx: number;
  trxTtlMs: number;
  /** With several producers: how long a round waits for a final block before the next proposer. */
  producerRoundTimeoutMs: number;
}

export interface GroupChainComponents {
  store: ChainStorage;
  limits: ChainLimits;
  /** This node's signing key for the group. */
  signKey: Uint8Array;
  /** Told of trxs admitted to this node's mempool (to gossip them to the producers). */
  onAdmitted?: (trxs: Trx[]) => void;
  /** Told of a block this node produced and committed (to gossip it to the members). */
  onProduced?: (block: Block) => void;
  /** For a private group: seals POSTs to the approved members and opens them with this node's key. */
  postSealer?: PostSealer;
  events: EventEmitter<GroupEvents>;
  onRejected?: (reason: string) => void;
  /** The node's verified trx signatures (one per node; a chain of its own when not given). */
  signatures?: SignatureCache;
  /** Signs a digest with a key off the main thread, batched (when not given: signed here). */
  signer?: (digest: Uint8Array, priv: Uint8Array) => Promise<Uint8Array>;
}

export interface PostSealer {
  seal(plain: Uint8Array): Promise<Uint8Array>;
  open(data: Uint8Array): Promise<Uint8Array | null>;
}

export interface CommittedEvent {
  groupId: string;
  block: Block;
  trxs: { trx: Trx; plain: Uint8Array | null }[];
}

export interface GroupEvents {
  committed: [CommittedEvent];
}

export class TrxRejectedError extends Error {
  override name = 'TrxRejectedError';
}

export interface Head {
  blockId: number;
  hash: Uint8Array;
  epoch: number;
  timestamp: bigint;
}

export type GroupStatus = 'IDLE' | 'SYNCING' | 'CLOSED';

/** SQLite refused a row whose key is taken (possibly wrapped by drizzle). */
function isDuplicateKey(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE')
      return true;
  }
  return false;
}

function headOf(block: Block): Head {
  return {
    blockId: block.BlockId,
    hash: block.BlockHash,
    epoch: block.Epoch,
    timestamp: block.TimeStamp,
  };
}

/** Who signs a trx built here other than this node's own key (an author a bridge speaks for). */
export interface TrxAuthor {
  priv: Uint8Array;
  /** Its public key as quorum encodes it, when the caller knows it (saves deriving it). */
  pubkey?: string;
  /** The trx id, when the caller chose it (a bridge records it before posting). */
  trxId?: string;
  /** How long the trx lives (its Expired), when not the group's `trxTtlMs`. */
  ttlMs?: number;
}

/** Why a trx was not admitted (`known`: it is pending or committed already), or null. */
type Verdict = { known: boolean; reason: string } | null;

export class GroupChain {
  readonly groupId: string;
  readonly row: GroupRecord;
  readonly cipherKey: Uint8Array;
  readonly isOwner: boolean;
  head: Head;
  rules: GroupRules;
  /** The producers as of the head block, sorted (see ./producers.ts). */
  producers: string[];
  status: GroupStatus = 'IDLE';
  readonly signatures: SignatureCache;
  /** Whether signKey is the key of userPubkey, so that this node's own signatures need no check. */
  private readonly ownKeyMatches: boolean;
  private readonly c: GroupChainComponents;
  private readonly mempool = new Map<string, { trx: Trx; raw: Uint8Array }>();
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private stopped = false;
  private tail: Promise<void> = Promise.resolve();
  private admitting: {
    trx: Trx;
    withIt?: () => void;
    resolve: () => void;
    reject: (err: unknown) => void;
  }[] = [];

  constructor(row: GroupRecord, components: GroupChainComponents) {
    this.c = components;
    this.row = row;
    this.groupId = row.groupId;
    this.cipherKey = Uint8Array.from(Buffer.from(row.cipherKey, 'hex'));
    this.isOwner = row.ownerPubkey === row.userPubkey;
    this.signatures = components.signatures ?? new SignatureCache();
    this.ownKeyMatches = encodePubkey(publicKeyOf(components.signKey)) === row.userPubkey;
    const top = components.store.getBlock(row.groupId, row.topBlockId);
    if (!top) throw new Error(`group ${row.groupId}: head block ${row.topBlockId} is missing`);
    this.head = {
      blockId: top.BlockId,
      hash: top.BlockHash,
      epoch: top.Epoch,
      timestamp: top.TimeStamp,
    };
    this.rules = components.store.loadRules(row.groupId);
    this.producers = this.loadProducers();
    for (const trx of components.store.listPending(row.groupId)) {
      this.mempool.set(trx.TrxId, { trx, raw: encodeTrx(trx) });
    }
  }

  private loadProducers(): string[] {
    return producerSet(
      this.row.ownerPubkey,
      this.c.store.listProducers(this.groupId).map((p) => p.producerPubkey),
    );
  }

  /** The owner alone produces (quorum's case): it orders and commits blocks by itself. */
  get isSoleProducer(): boolean {
    return this.producers.length === 1 && this.isOwner;
  }

  /** Whether this node's key is one of the group's producers. */
  get isProducer(): boolean {
    return this.producers.includes(this.userPubkey);
  }

  get userPubkey(): string {
    return this.row.userPubkey;
  }

  get mempoolSize(): number {
    return this.mempool.size;
  }

  /** Whether a trx id is pending here or already committed. */
  knowsTrx(trxId: string): boolean {
    return this.mempool.has(trxId) || this.c.store.committedTrxIds(this.groupId, [trxId]).size > 0;
  }

  /** Whether a trx waits in this node's mempool for a block. */
  isPending(trxId: string): boolean {
    return this.mempool.has(trxId);
  }

  /** Trxs waiting for a block, oldest first. */
  pendingTrxs(): Trx[] {
    return [...this.mempool.values()].map((e) => e.trx);
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.status = 'CLOSED';
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  // ---- building trxs ----
  get isPrivate(): boolean {
    return this.c.postSealer !== undefined;
  }

  /** POSTs of a private group are sealed to its members; everything else uses the cipher key. */
  async encrypt(type: number, plain: Uint8Array): Promise<Uint8Array> {
    if (type === TrxType.POST && this.c.postSealer) return this.c.postSealer.seal(plain);
    return aesEncrypt(this.cipherKey, plain);
  }

  /** The plaintext of a trx's Data, or null when this node may not read it. */
  async decrypt(trx: Trx): Promise<Uint8Array | null> {
    if (trx.Type === TrxType.POST && this.c.postSealer) return this.c.postSealer.open(trx.Data);
    return aesDecrypt(this.cipherKey, trx.Data);
  }

  /** Builds, encrypts and signs a trx from this node's group key. */
  async buildTrx(type: number, plain: Uint8Array, as?: TrxAuthor): Promise<Trx> {
    const data = await this.encrypt(type, plain);
    const ts = nowNs();
    const unsigned = {
      TrxId: as?.trxId ?? crypto.randomUUID(),
      Type: type,
      GroupId: this.groupId,
      Data: data,
      TimeStamp: ts,
      Expired: ts + BigInt(as?.ttlMs ?? this.c.limits.trxTtlMs) * 1_000_000n,
      SenderPubkey: as ? (as.pubkey ?? encodePubkey(publicKeyOf(as.priv))) : this.userPubkey,
    };
    // The signature of a key held here needs no check when the trx comes back.
    const cache = this.ownKeyMatches || as ? this.signatures : undefined;
    const { signer } = this.c;
    const signKey = as?.priv ?? this.c.signKey;
    if (!signer) return signTrx(unsigned, signKey, cache);
    return signTrxWith(unsigned, (digest) => signer(digest, signKey), cache);
  }

  // ---- admission ----
  /** Checks a trx against this group's state as of the head block. */
  checkAdmission(trx: Trx, atNs: bigint): Check {
    const base = checkTrx(trx, {
      groupId: this.groupId,
      maxTrxDataBytes: this.c.limits.maxTrxDataBytes,
      nowNs: atNs,
      signatures: this.signatures,
    });
    if (!base.ok) return base;
    return checkTrxAuth(this.rules, this.row.ownerPubkey, trx.SenderPubkey, trx.Type);
  }

  /**
   * Validates a trx and stores it in the persistent mempool; once this returns, the trx survives
   * a crash and will be put in a block. Throws TrxRejectedError with the reason otherwise.
   */
  submit(trx: Trx): void {
    this.submitMany([trx]);
  }

  /** All or nothing: every trx of the list passes and is stored, or none is (the first reason). */
  submitMany(list: Trx[], announce = true): void {
    const { accepted, verdicts } = this.screen(list);
    const bad = verdicts.find((v) => v !== null);
    if (bad) this.reject(bad.reason);
    this.keep(accepted, announce);
  }

  /**
   * Admits one trx together with the others submitted in the same turn of the event loop: one
   * SQLite transaction (one fsync under --dbsync full) and one gossip bundle for all of them.
   * Resolves once the trx is stored (it then survives a crash); rejects with TrxRejectedError.
   * `withIt` runs inside that SQLite transaction when the trx is admitted (never when refused),
   * for a record that must be stored with the trx or not at all (a bridge's origin row).
   */
  admit(trx: Trx, withIt?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.admitting.push({ trx, withIt, resolve, reject }) === 1) {
        setImmediate(() => this.admitPending());
      }
    });
  }

  private admitPending(): void {
    const queue = this.admitting;
    this.admitting = [];
    let verdicts: Verdict[];
    try {
      const screened = this.screen(queue.map((q) => q.trx));
      const also = queue.flatMap((q, i) => (q.withIt && !screened.verdicts[i] ? [q.withIt] : []));
      this.keep(screened.accepted, true, also);
      verdicts = screened.verdicts;
    } catch (err) {
      for (const q of queue) q.reject(err);
      return;
    }
    queue.forEach((q, i) => {
      const v = verdicts[i];
      if (!v) {
        q.resolve();
        return;
      }
      this.c.onRejected?.(v.reason);
      q.reject(new TrxRejectedError(v.reason));
    });
  }

  /**
   * Admits each trx of a list that passes on its own (trxs gossiped in a bundle): the valid
   * ones go to the mempool together, the others are counted as rejected with their reasons.
   */
  admitEach(list: Trx[]): { admitted: number; rejected: string[] } {
    const { accepted, verdicts } = this.screen(list);
    const rejected: string[] = [];
    for (const v of verdicts) {
      if (!v || v.known) continue;
      rejected.push(v.reason);
      this.c.onRejected?.(v.reason);
    }
    // Received from the network: already gossiped, so not announced again.
    if (accepted.length > 0) this.keep(accepted, false);
    return { admitted: accepted.length, rejected };
  }

  /**
   * The admission checks of a list of trxs, against the head's rules and the mempool's room:
   * the trxs that pass, and for each trx null or why not (`known`: pending or committed already).
   */
  private screen(list: Trx[]): { accepted: PendingTrx[]; verdicts: Verdict[] } {
    const at = nowNs();
    const verdicts: Verdict[] = list.map(() => null);
    const seen = new Set<string>();
    list.forEach((trx, i) => {
      if (this.mempool.has(trx.TrxId) || seen.has(trx.TrxId)) {
        verdicts[i] = { known: true, reason: 'duplicate trx id (pending)' };
      }
      seen.add(trx.TrxId);
    });
    const committed = this.c.store.committedTrxIds(
      this.groupId,
      list.filter((_, i) => verdicts[i] === null).map((t) => t.TrxId),
    );
    let room = this.c.limits.mempoolMaxTrx - this.mempool.size;
    const accepted: PendingTrx[] = [];
    list.forEach((trx, i) => {
      if (verdicts[i] !== null) return;
      if (committed.has(trx.TrxId)) {
        verdicts[i] = { known: true, reason: 'duplicate trx id (committed)' };
        return;
      }
      const check = this.checkAdmission(trx, at);
      if (!check.ok) verdicts[i] = { known: false, reason: check.reason };
      else if (room <= 0) verdicts[i] = { known: false, reason: 'mempool is full' };
      else {
        room--;
        accepted.push({ groupId: this.groupId, trx, raw: encodeTrx(trx) });
      }
    });
    return { accepted, verdicts };
  }

  /** Stores admitted trxs in the persistent mempool (one transaction), then schedules a block. */
  private keep(accepted: PendingTrx[], announce: boolean, also: (() => void)[] = []): void {
    if (accepted.length === 0) return;
    this.c.store.addPendingMany(accepted, Date.now(), also);
    for (const a of accepted) this.mempool.set(a.trx.TrxId, { trx: a.trx, raw: a.raw });
    if (announce) this.c.onAdmitted?.(accepted.map((a) => a.trx));
    this.schedule();
  }

  private reject(reason: string): never {
    this.c.onRejected?.(reason);
    throw new TrxRejectedError(reason);
  }

  // ---- production (owner) ----
  private schedule(): void {
    if (this.stopped || !this.isSoleProducer || this.mempool.size === 0) return;
    if (this.mempool.size >= this.c.limits.maxTrxPerBlock) {
      if (!this.immediate) {
        this.immediate = setImmediate(() => {
          this.immediate = null;
          this.produceSafely();
        });
      }
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.produceSafely();
      }, this.c.limits.blockIntervalMs);
    }
  }

  private produceSafely(): void {
    this.produce()
      .catch((err) => {
        this.c.onRejected?.(`block production failed: ${(err as Error).message}`);
      })
      .finally(() => this.schedule());
  }

  /**
   * Runs chain changes one at a time: decrypting a private group's posts is asynchronous, and a
   * block must be committed before the next one is built on it.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Orders pending trxs into one block, signs and commits it. Returns the block or null. */
  produce(): Promise<Block | null> {
    return this.serial(() => this.produceNow());
  }

  /** Takes pending trxs that still pass, and signs the next block over them (not committed). */
  private pickAndSign(): { block: Block; picked: { trx: Trx; raw: Uint8Array }[] } | null {
    const ts = nowNs();
    const picked: { trx: Trx; raw: Uint8Array }[] = [];
    const dropped: string[] = [];
    let bytes = 0;
    for (const [id, entry] of this.mempool) {
      if (picked.length >= this.c.limits.maxTrxPerBlock) break;
      if (bytes + entry.raw.length > this.c.limits.maxBlockBytes && picked.length > 0) break;
      // Rules may have changed since admission (a deny-list update): check again.
      const auth = checkTrxAuth(
        this.rules,
        this.row.ownerPubkey,
        entry.trx.SenderPubkey,
        entry.trx.Type,
      );
      const expired = entry.trx.Expired !== 0n && entry.trx.Expired < ts;
      if (!auth.ok || expired) {
        dropped.push(id);
        this.c.onRejected?.(auth.ok ? 'trx expired' : auth.reason);
        continue;
      }
      picked.push(entry);
      bytes += entry.raw.length;
    }
    if (dropped.length > 0) {
      for (const id of dropped) this.mempool.delete(id);
      this.c.store.removePending(this.groupId, dropped);
    }
    if (picked.length === 0) return null;
    const block = signBlock(
      {
        GroupId: this.groupId,
        BlockId: this.head.blockId + 1,
        Epoch: this.head.epoch + 1,
        PrevHash: this.head.hash,
        ProducerPubkey: this.userPubkey,
        Trxs: picked.map((p) => p.trx),
        Sudo: false,
        TimeStamp: ts,
      },
      this.c.signKey,
    );
    return { block, picked };
  }

  /** A proposal for a multi-producer round: the next block over this node's mempool. */
  async buildCandidate(): Promise<Block | null> {
    if (this.stopped || this.mempool.size === 0) return null;
    return this.pickAndSign()?.block ?? null;
  }

  private async produceNow(): Promise<Block | null> {
    if (!this.isSoleProducer || this.mempool.size === 0 || this.stopped) return null;
    const built = this.pickAndSign();
    if (!built) return null;
    const { block, picked } = built;
    await this.commit([block], [picked.map((p) => p.raw)]);
    this.c.onProduced?.(block);
    return block;
  }

  // ---- application ----
  /**
   * Validates a block from any producer against the head and commits it. Blocks this node
   * produced itself skip the per-trx signature checks already made at admission.
   */
  applyBlock(block: Block): Promise<Check> {
    return this.applyBlocks([block]).then((r) => r.check);
  }

  /**
   * Validates and commits consecutive blocks (a node catching up), as many as possible to one
   * SQLite transaction: a run of blocks ends after one that changes the group's rules or
   * producers, since the blocks after it are validated against the new ones. Stops at the first
   * invalid block; the blocks before it stay committed.
   */
  applyBlocks(blocks: Block[]): Promise<{ applied: number; check: Check }> {
    return this.serial(async () => {
      let applied = 0;
      // Whether a trx was committed before is left to the trxs table's primary key (one lookup
      // fewer per trx); when the key refuses a run, the run is validated again with lookups.
      let lookups = false;
      while (applied < blocks.length) {
        const run: Block[] = [];
        let failure: Check | null = null;
        const head = this.head;
        const inRun = new Set<string>();
        try {
          for (const block of blocks.slice(applied)) {
            const check = this.validateBlock(block, true, inRun, lookups);
            if (!check.ok) {
              failure = check;
              break;
            }
            run.push(block);
            for (const trx of block.Trxs) inRun.add(trx.TrxId);
            // The next block of the run is validated against this one, not yet committed.
            this.head = headOf(block);
            if (
              block.Trxs.some((t) => t.Type === TrxType.CHAIN_CONFIG || t.Type === TrxType.PRODUCER)
            )
              break;
          }
        } finally {
          this.head = head;
        }
        if (run.length > 0) {
          try {
            await this.commit(
              run,
              run.map((b) => b.Trxs.map((t) => encodeTrx(t))),
            );
          } catch (err) {
            if (lookups || !isDuplicateKey(err)) throw err;
            lookups = true;
            continue;
          }
          applied += run.length;
        }
        if (failure) return { applied, check: failure };
      }
      return { applied, check: { ok: true } };
    });
  }

  /** A proposal: everything a final block must pass except the producer majority. */
  validateCandidate(block: Block): Check {
    if (!this.producers.includes(block.ProducerPubkey)) {
      return { ok: false, reason: 'proposer is not a producer of this group' };
    }
    return this.validateBlock(block, false);
  }

  /**
   * `pending`: trx ids of blocks validated before this one but not committed yet. Without
   * `lookups`, whether a trx is committed already is left to the caller (see applyBlocks).
   */
  validateBlock(block: Block, requireFinal = true, pending?: Set<string>, lookups = true): Check {
    const parent: Block = {
      GroupId: this.groupId,
      BlockId: this.head.blockId,
      Epoch: this.head.epoch,
      PrevHash: new Uint8Array(0),
      ProducerPubkey: '',
      Trxs: [],
      Sudo: false,
      TimeStamp: this.head.timestamp,
      BlockHash: this.head.hash,
      ProducerSign: new Uint8Array(0),
    };
    const link = checkBlockWithParent(block, parent);
    if (!link.ok) return link;
    if (requireFinal) {
      const final = checkFinality(block, this.producers);
      if (!final.ok) return final;
    }
    if (block.Trxs.length > this.c.limits.maxTrxPerBlock)
      return { ok: false, reason: 'block has too many trxs' };
    const seen = new Set<string>();
    for (const trx of block.Trxs) {
      const c = this.checkAdmission(trx, block.TimeStamp);
      if (!c.ok) return { ok: false, reason: `trx ${trx.TrxId}: ${c.reason}` };
      if (seen.has(trx.TrxId)) return { ok: false, reason: `trx ${trx.TrxId} appears twice` };
      if (pending?.has(trx.TrxId)) return { ok: false, reason: 'block repeats a committed trx' };
      seen.add(trx.TrxId);
    }
    if (lookups && this.c.store.committedTrxIds(this.groupId, [...seen]).size > 0)
      return { ok: false, reason: 'block repeats a committed trx' };
    return { ok: true };
  }

  /** Commits validated consecutive blocks in one SQLite transaction, then tells the listeners. */
  private async commit(blocks: Block[], raws: Uint8Array[][]): Promise<void> {
    const plains = await Promise.all(
      blocks.map((b) => Promise.all(b.Trxs.map((trx) => this.decrypt(trx)))),
    );
    this.c.store.commitBlocks(
      blocks.map((block, k) => ({
        block,
        committed: block.Trxs.map((trx, i) => ({
          trx,
          raw: raws[k]![i]!,
          effect: effectOf(trx, plains[k]![i]!),
          // The in-memory mempool mirrors the stored one: a trx not in it has no row to delete.
          pending: this.mempool.has(trx.TrxId),
        })),
      })),
      nowNs(),
    );
    const last = blocks[blocks.length - 1]!;
    this.head = headOf(last);
    let configChanged = false;
    let producersChanged = false;
    for (const block of blocks) {
      for (const trx of block.Trxs) {
        this.mempool.delete(trx.TrxId);
        if (trx.Type === TrxType.CHAIN_CONFIG) configChanged = true;
        if (trx.Type === TrxType.PRODUCER) producersChanged = true;
      }
    }
    if (configChanged) this.rules = this.c.store.loadRules(this.groupId);
    if (producersChanged) this.producers = this.loadProducers();
    blocks.forEach((block, k) => {
      this.c.events.emit('committed', {
        groupId: this.groupId,
        block,
        trxs: block.Trxs.map((trx, i) => ({ trx, plain: plains[k]![i]! })),
      });
    });
  }
}
