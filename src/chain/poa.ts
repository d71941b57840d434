/**
 * Several producers in turn (see ./producers.ts for the set and the finality rule): one instance
 * per group on each producer node. Each height is decided by single-decree Paxos among the
 * producers, with round 0 as the fast path:
 *
 * - Round 0: the round's proposer builds a block and signs it (its vote); every producer that
 *   has not voted at that height yet checks it against its head and votes for it.
 * - A block with a majority of votes of one round is final: committed and gossiped to members
 *   with those votes as its Witnesses.
 * - When nothing is final before the round timeout (which grows with the round), a producer
 *   moves to the next round and says so in a signed ROUND_CHANGE, which reports the block it last
 *   voted for and the round of that vote (its lock), and promises never to vote in an earlier
 *   round again. A producer that hears of a later round moves to it too.
 * - The proposer of round r > 0 proposes once it holds ROUND_CHANGEs for r from a majority: the
 *   block locked in the latest round among them, or a new one when none is locked; the proposal
 *   carries those ROUND_CHANGEs, and a producer votes for it only if they justify it.
 *
 * Why two blocks at one height are never both final: if B is final in round r, a majority voted
 * for it in r; any later proposal is justified by a majority of ROUND_CHANGEs, which includes one
 * of those voters, whose lock is B from round r or later; by induction every block voted for in
 * rounds after r is B. A producer votes at most once a round and persists its promise and lock
 * before a message leaves the node, so this holds across restarts. Why a height does not stall:
 * votes split between blocks are released by the next round's justification, which names one
 * of them (or frees the choice), instead of binding each producer to its first vote forever.
 */
import { bytesEqual, fromHex, toHex } from '../crypto/encoding.ts';
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { sha256, signDigest, verifyDigest } from '../crypto/sign.ts';
import type { GroupChain } from './group.ts';
import { type Block, BlockDesc } from './pb.ts';
import { encodeMessage, type MessageDesc } from './protobuf.ts';
import { majority, proposerFor, voteDigest } from './producers.ts';

export interface Vote {
  GroupId: string;
  BlockId: number;
  BlockHash: Uint8Array;
  Pubkey: string;
  Sign: Uint8Array;
  /** 0 (omitted on the wire) for round 0, whose votes sign the block hash itself. */
  Round?: number;
}

export const VoteDesc: MessageDesc = {
  name: 'BlockVote',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'BlockId', kind: 'uint53' },
    { no: 3, name: 'BlockHash', kind: 'bytes' },
    { no: 4, name: 'Pubkey', kind: 'string' },
    { no: 5, name: 'Sign', kind: 'bytes' },
    { no: 6, name: 'Round', kind: 'uint53' },
  ],
};

/** A producer moving to `Round` at height `BlockId`, with its lock (empty hash: none). */
export interface RoundChange {
  GroupId: string;
  BlockId: number;
  Round: number;
  Pubkey: string;
  LockedHash: Uint8Array;
  LockedRound: number;
  Sign: Uint8Array;
}

const ROUND_CHANGE_FIELDS = [
  { no: 1, name: 'GroupId', kind: 'string' },
  { no: 2, name: 'BlockId', kind: 'uint53' },
  { no: 3, name: 'Round', kind: 'uint53' },
  { no: 4, name: 'Pubkey', kind: 'string' },
  { no: 5, name: 'LockedHash', kind: 'bytes' },
  { no: 6, name: 'LockedRound', kind: 'uint53' },
] as const;

const RoundChangeSigningDesc: MessageDesc = {
  name: 'RoundChange(signing)',
  fields: [...ROUND_CHANGE_FIELDS],
};

export const RoundChangeDesc: MessageDesc = {
  name: 'RoundChange',
  fields: [...ROUND_CHANGE_FIELDS, { no: 7, name: 'Sign', kind: 'bytes' }],
};

/** A block proposed in a round; for round > 0 with the ROUND_CHANGEs that justify it. */
export interface Proposal {
  Block: Block;
  Round: number;
  Justification: RoundChange[];
}

export const ProposalDesc: MessageDesc = {
  name: 'BlockProposal',
  fields: [
    { no: 1, name: 'Block', kind: 'message', message: () => BlockDesc },
    { no: 2, name: 'Round', kind: 'uint53' },
    {
      no: 3,
      name: 'Justification',
      kind: 'message',
      repeated: true,
      message: () => RoundChangeDesc,
    },
  ],
};

function roundChangeDigest(rc: Omit<RoundChange, 'Sign'>): Uint8Array {
  return sha256(encodeMessage(RoundChangeSigningDesc, rc));
}

export function verifyVote(v: Vote): boolean {
  const pub = pubkeyBytesUnchecked(v.Pubkey);
  return pub !== null && verifyDigest(pub, voteDigest(v.BlockHash, v.Round ?? 0), v.Sign);
}

export function signRoundChange(rc: Omit<RoundChange, 'Sign'>, key: Uint8Array): RoundChange {
  return { ...rc, Sign: signDigest(roundChangeDigest(rc), key) };
}

export function verifyRoundChange(rc: RoundChange): boolean {
  const pub = pubkeyBytesUnchecked(rc.Pubkey);
  return pub !== null && verifyDigest(pub, roundChangeDigest(rc), rc.Sign);
}

/**
 * What a majority of ROUND_CHANGEs for (height, round) allows the round's proposer to propose:
 * the block locked in the latest round among them, or any block (`hash: null`) when none is
 * locked. Null when they do not make a valid justification.
 */
export function justifiedHash(
  rcs: readonly RoundChange[],
  groupId: string,
  height: number,
  round: number,
  set: readonly string[],
): { hash: string | null } | null {
  const seen = new Set<string>();
  let best: RoundChange | undefined;
  for (const rc of rcs) {
    if (rc.GroupId !== groupId || rc.BlockId !== height || rc.Round !== round) return null;
    if (!set.includes(rc.Pubkey) || seen.has(rc.Pubkey) || !verifyRoundChange(rc)) return null;
    seen.add(rc.Pubkey);
    if (rc.LockedHash.length === 0) continue;
    if (rc.LockedRound >= round) return null; // a lock can only come from an earlier round
    if (!best || rc.LockedRound > best.LockedRound) best = rc;
    else if (rc.LockedRound === best.LockedRound && !bytesEqual(rc.LockedHash, best.LockedHash)) {
      return null; // one proposer, one block a round: two locks of one round cannot differ
    }
  }
  if (seen.size < majority(set.length)) return null;
  return { hash: best ? toHex(best.LockedHash) : null };
}

export interface ProducerNet {
  sendProposal(proposal: Proposal): void;
  sendVote(vote: Vote): void;
  sendRoundChange(rc: RoundChange): void;
  publishFinal(block: Block): void;
}

/**
 * A producer's promise and lock at a height: it votes in no round below `promised`, and its last
 * vote was for `lockedHash` (hex; '' for none) in `lockedRound`.
 */
export interface ProducerState {
  promised: number;
  lockedRound: number;
  lockedHash: string;
}

/** Where a producer's state per height is kept, so that it survives a restart. */
export interface VoteRecord {
  get(height: number): ProducerState | undefined;
  /** Written before anything that depends on it leaves the node. */
  set(height: number, state: ProducerState): void;
}

export interface MultiProducerInit {
  roundTimeoutMs: number;
  tickMs: number;
  onError?: (message: string) => void;
}

/**
 * Round r lasts roundTimeoutMs × min(r + 1, 8): when messages take longer than a round (a loaded
 * machine, a slow link), later rounds grow until one outlasts them, instead of every round
 * timing out before its votes arrive.
 */
const MAX_ROUND_STRETCH = 8;

/** Votes kept per height for blocks or rounds not seen yet. */
const MAX_VOTE_KEYS = 256;

const voteKey = (hash: string, round: number) => `${hash}/${round}`;

export class MultiProducer {
  private readonly g: GroupChain;
  private readonly net: ProducerNet;
  private readonly signKey: Uint8Array;
  private readonly opts: MultiProducerInit;
  private readonly record: VoteRecord;
  /** Blocks proposed at this height, by hash (without witnesses). */
  private readonly blocks = new Map<string, Block>();
  /** Verified votes at this height: hash/round → producer → signature. */
  private readonly votes = new Map<string, Map<string, Uint8Array>>();
  /** Verified ROUND_CHANGEs at this height: round → producer → message. */
  private readonly roundChanges = new Map<number, Map<string, RoundChange>>();
  private state: ProducerState = { promised: 0, lockedRound: 0, lockedHash: '' };
  private height = -1;
  private round = 0;
  private roundStarted = 0;
  private proposedInRound = -1;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    g: GroupChain,
    net: ProducerNet,
    signKey: Uint8Array,
    record: VoteRecord,
    opts: MultiProducerInit,
  ) {
    this.g = g;
    this.record = record;
    this.net = net;
    this.signKey = signKey;
    this.opts = opts;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.opts.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The round this producer is in at the current height (for tests and diagnostics). */
  get currentRound(): number {
    return this.round;
  }

  private me(): string {
    return this.g.userPubkey;
  }

  /** Moves to the next height when the head moved; forgets what belonged to earlier heights. */
  private syncHeight(): number {
    const h = this.g.head.blockId + 1;
    if (h !== this.height) {
      this.height = h;
      this.state = this.record.get(h) ?? { promised: 0, lockedRound: 0, lockedHash: '' };
      // A producer that restarts resumes in the round it promised.
      this.round = this.state.promised;
      this.roundStarted = Date.now();
      this.proposedInRound = -1;
      this.blocks.clear();
      this.votes.clear();
      this.roundChanges.clear();
    }
    return h;
  }

  private save(state: ProducerState): void {
    this.record.set(this.height, state);
    this.state = state;
  }

  private hasWork(): boolean {
    return this.g.mempoolSize > 0 || this.blocks.size > 0 || this.roundChanges.size > 0;
  }

  async tick(): Promise<void> {
    if (this.busy || this.g.producers.length < 2 || !this.g.isProducer) return;
    this.busy = true;
    try {
      const h = this.syncHeight();
      if (!this.hasWork()) {
        this.roundStarted = Date.now();
        return;
      }
      const stretch = Math.min(this.round + 1, MAX_ROUND_STRETCH);
      if (Date.now() - this.roundStarted > this.opts.roundTimeoutMs * stretch) {
        this.enterRound(this.round + 1);
      }
      if (
        this.proposedInRound !== this.round &&
        proposerFor(this.g.producers, h, this.round) === this.me()
      ) {
        await this.propose(h, this.round);
      }
    } catch (err) {
      this.opts.onError?.(`producer round failed: ${(err as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  /** Moves to round r: promises it (persisted) and says so with a ROUND_CHANGE. */
  private enterRound(r: number): void {
    if (r <= this.round && r <= this.state.promised) return;
    this.round = r;
    this.roundStarted = Date.now();
    if (r > this.state.promised) this.save({ ...this.state, promised: r });
    const rc = signRoundChange(
      {
        GroupId: this.g.groupId,
        BlockId: this.height,
        Round: r,
        Pubkey: this.me(),
        LockedHash: this.state.lockedHash ? fromHex(this.state.lockedHash) : new Uint8Array(0),
        LockedRound: this.state.lockedHash ? this.state.lockedRound : 0,
      },
      this.signKey,
    );
    this.keepRoundChange(rc);
    this.net.sendRoundChange(rc);
  }

  private keepRoundChange(rc: RoundChange): void {
    let byProducer = this.roundChanges.get(rc.Round);
    if (!byProducer) {
      if (this.roundChanges.size >= MAX_VOTE_KEYS) return;
      byProducer = new Map();
      this.roundChanges.set(rc.Round, byProducer);
    }
    byProducer.set(rc.Pubkey, rc);
  }

  /** Whether this producer may vote for `hash` in round r now (promise and one vote a round). */
  private mayVote(hash: string, r: number): boolean {
    if (r < this.state.promised) return false;
    if (!this.state.lockedHash) return true;
    if (r > this.state.lockedRound) return true;
    return r === this.state.lockedRound && this.state.lockedHash === hash;
  }

  /** Votes for a block in round r: the lock is written before the vote is used or sent. */
  private castVote(block: Block, r: number): Uint8Array {
    const hash = toHex(block.BlockHash);
    this.save({ promised: Math.max(this.state.promised, r), lockedRound: r, lockedHash: hash });
    const sign =
      r === 0 && block.ProducerPubkey === this.me()
        ? block.ProducerSign
        : signDigest(voteDigest(block.BlockHash, r), this.signKey);
    this.addVote(hash, r, this.me(), sign);
    return sign;
  }

  private async propose(h: number, r: number): Promise<void> {
    let block: Block | undefined;
    let justification: RoundChange[] = [];
    if (r === 0) {
      if (this.state.lockedHash) block = this.blocks.get(this.state.lockedHash);
      else block = (await this.g.buildCandidate()) ?? undefined;
      if (!block) return;
    } else {
      justification = [...(this.roundChanges.get(r)?.values() ?? [])];
      const allowed = justifiedHash(justification, this.g.groupId, h, r, this.g.producers);
      if (!allowed) return; // not yet a majority of ROUND_CHANGEs for this round
      if (allowed.hash) block = this.blocks.get(allowed.hash);
      else block = (await this.g.buildCandidate()) ?? undefined;
      if (!block) return; // the justified block is not here: the next round's proposer may have it
    }
    if (this.syncHeight() !== h || this.round !== r) return; // moved on while building
    const hash = toHex(block.BlockHash);
    if (!this.mayVote(hash, r)) return;
    this.blocks.set(hash, { ...block, Witnesses: [] });
    if (r === 0 && block.ProducerPubkey !== this.me()) return; // round 0 proposes own blocks only
    this.castVote(block, r);
    this.proposedInRound = r;
    this.net.sendProposal({
      Block: this.withWitnesses(block, r),
      Round: r,
      Justification: justification,
    });
    await this.maybeFinal(hash, r);
  }

  private withWitnesses(block: Block, r: number): Block {
    const signers = this.votes.get(voteKey(toHex(block.BlockHash), r)) ?? new Map();
    const witnesses = [...signers]
      .filter(([pk]) => !(r === 0 && pk === block.ProducerPubkey))
      .map(([Pubkey, Sign]) => (r === 0 ? { Pubkey, Sign } : { Pubkey, Sign, Round: r }));
    return { ...block, Witnesses: witnesses };
  }

  /**
   * A proposal from another producer (its block already checked: hash, signature, producer in
   * the set). Round 0 takes only the round's proposer's own block; a later round takes the block
   * its ROUND_CHANGEs justify, carrying the vote of that round's proposer.
   */
  async onProposal(p: Proposal): Promise<void> {
    const h = this.syncHeight();
    const block = p.Block;
    const r = p.Round;
    if (block.BlockId !== h || !this.g.isProducer) return;
    const hash = toHex(block.BlockHash);
    const proposer = proposerFor(this.g.producers, h, r);
    const votes: Vote[] = (block.Witnesses ?? [])
      .filter((w) => (w.Round ?? 0) === r)
      .map((w) => ({
        GroupId: block.GroupId,
        BlockId: h,
        BlockHash: block.BlockHash,
        Pubkey: w.Pubkey,
        Sign: w.Sign,
        Round: r,
      }));
    let proposerVote: Vote | undefined;
    if (r === 0) {
      if (block.ProducerPubkey !== proposer) return;
    } else {
      const justified = justifiedHash(p.Justification, this.g.groupId, h, r, this.g.producers);
      if (!justified || (justified.hash !== null && justified.hash !== hash)) {
        this.opts.onError?.(`round ${r} proposal at ${h} is not justified`);
        return;
      }
      // The round's proposer votes for what it proposes: one block a round.
      proposerVote = votes.find((v) => v.Pubkey === proposer);
      if (!proposerVote || !verifyVote(proposerVote)) return;
    }
    if (!this.blocks.has(hash)) {
      const check = this.g.validateCandidate(block);
      if (!check.ok) {
        this.opts.onError?.(`proposal rejected: ${check.reason}`);
        return;
      }
      this.blocks.set(hash, { ...block, Witnesses: [] });
      // In round 0 the producer's own signature is its vote.
      this.addVote(hash, 0, block.ProducerPubkey, block.ProducerSign);
    }
    if (proposerVote) this.addVote(hash, r, proposerVote.Pubkey, proposerVote.Sign);
    for (const v of votes) this.acceptVote(v);
    // A justified proposal of a later round moves this producer there.
    if (r > this.round) {
      this.round = r;
      this.roundStarted = Date.now();
    }
    const mine = this.votes.get(voteKey(hash, r))?.has(this.me());
    if (!mine && this.mayVote(hash, r)) {
      const sign = this.castVote(block, r);
      this.net.sendVote({
        GroupId: block.GroupId,
        BlockId: h,
        BlockHash: block.BlockHash,
        Pubkey: this.me(),
        Sign: sign,
        ...(r === 0 ? {} : { Round: r }),
      });
    }
    await this.maybeFinal(hash, r);
  }

  /** A vote (its signature already verified by the topic validator). */
  async onVote(vote: Vote): Promise<void> {
    if (vote.BlockId !== this.syncHeight()) return;
    this.acceptVote(vote);
    await this.maybeFinal(toHex(vote.BlockHash), vote.Round ?? 0);
  }

  /** A ROUND_CHANGE (signature already verified): kept, and followed if it is for a later round. */
  onRoundChange(rc: RoundChange): void {
    if (rc.BlockId !== this.syncHeight() || rc.GroupId !== this.g.groupId) return;
    if (!this.g.producers.includes(rc.Pubkey)) return;
    this.keepRoundChange(rc);
    if (rc.Round > this.round && this.g.isProducer) this.enterRound(rc.Round);
  }

  private acceptVote(v: Vote): void {
    if (!this.g.producers.includes(v.Pubkey)) return;
    const hash = toHex(v.BlockHash);
    const r = v.Round ?? 0;
    if (this.votes.get(voteKey(hash, r))?.has(v.Pubkey)) return;
    if (!verifyVote(v)) return;
    this.addVote(hash, r, v.Pubkey, v.Sign);
  }

  private addVote(hash: string, r: number, pubkey: string, sign: Uint8Array): void {
    const key = voteKey(hash, r);
    let signers = this.votes.get(key);
    if (!signers) {
      if (this.votes.size >= MAX_VOTE_KEYS) return;
      signers = new Map();
      this.votes.set(key, signers);
    }
    signers.set(pubkey, sign);
  }

  private async maybeFinal(hash: string, r: number): Promise<void> {
    const block = this.blocks.get(hash);
    const signers = this.votes.get(voteKey(hash, r));
    if (!block || !signers || signers.size < majority(this.g.producers.length)) return;
    if (block.BlockId !== this.g.head.blockId + 1) return;
    const final = this.withWitnesses(block, r);
    const res = await this.g.applyBlock(final);
    if (res.ok) this.net.publishFinal(final);
    else if (final.BlockId > this.g.head.blockId)
      this.opts.onError?.(`final block not applied: ${res.reason}`);
    this.syncHeight();
  }
}
