/**
 * Several producers in turn (see ./producers.ts for the rules). One instance per group on each
 * producer node. A round at height h: the round's proposer builds a block from its mempool and
 * signs it; every producer that has not yet signed a block at h checks the proposal against its
 * head and signs its hash (a vote); a proposal with a majority of signatures is final: it is
 * committed and gossiped to all members with the votes as Witnesses. If nothing is final before
 * the round timeout, the next producer proposes; a producer that already signed a block at h
 * proposes that same block again, so that the votes already cast count.
 */
import { bytesEqual, toHex } from '../crypto/encoding.ts';
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { signDigest, verifyDigest } from '../crypto/sign.ts';
import type { GroupChain } from './group.ts';
import type { Block } from './pb.ts';
import type { MessageDesc } from './protobuf.ts';
import { majority, proposerFor } from './producers.ts';

export interface Vote {
  GroupId: string;
  BlockId: number;
  BlockHash: Uint8Array;
  Pubkey: string;
  Sign: Uint8Array;
}

export const VoteDesc: MessageDesc = {
  name: 'BlockVote',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'BlockId', kind: 'uint53' },
    { no: 3, name: 'BlockHash', kind: 'bytes' },
    { no: 4, name: 'Pubkey', kind: 'string' },
    { no: 5, name: 'Sign', kind: 'bytes' },
  ],
};

export interface ProducerNet {
  sendProposal(block: Block): void;
  sendVote(vote: Vote): void;
  publishFinal(block: Block): void;
}

/** Where a producer's signatures per height are kept, so they survive a restart. */
export interface VoteRecord {
  /** Binds this producer to `hash` at `height` unless bound before; returns the bound hash. */
  bind(height: number, hash: string): string;
  at(height: number): string | undefined;
}

export interface MultiProducerInit {
  roundTimeoutMs: number;
  tickMs: number;
  onError?: (message: string) => void;
}

interface Candidate {
  block: Block;
  signers: Map<string, Uint8Array>;
}

export function verifyVote(v: Vote): boolean {
  const pub = pubkeyBytesUnchecked(v.Pubkey);
  return pub !== null && verifyDigest(pub, v.BlockHash, v.Sign);
}

export class MultiProducer {
  private readonly g: GroupChain;
  private readonly net: ProducerNet;
  private readonly signKey: Uint8Array;
  private readonly opts: MultiProducerInit;
  /** The hash this producer signed at each height (persisted): never two blocks at one height. */
  private readonly votes: VoteRecord;
  private readonly candidates = new Map<string, Candidate>();
  private readonly earlyVotes = new Map<string, Vote[]>();
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
    votes: VoteRecord,
    opts: MultiProducerInit,
  ) {
    this.g = g;
    this.votes = votes;
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

  private me(): string {
    return this.g.userPubkey;
  }

  /** Moves to the next height when the head moved; forgets what belonged to earlier heights. */
  private syncHeight(): number {
    const h = this.g.head.blockId + 1;
    if (h !== this.height) {
      this.height = h;
      this.round = 0;
      this.roundStarted = Date.now();
      this.proposedInRound = -1;
      this.candidates.clear();
      for (const [k, votes] of this.earlyVotes)
        if (votes.every((v) => v.BlockId < h)) this.earlyVotes.delete(k);
    }
    return h;
  }

  private hasWork(): boolean {
    return this.g.mempoolSize > 0 || this.candidates.size > 0;
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
      if (Date.now() - this.roundStarted > this.opts.roundTimeoutMs) {
        this.round++;
        this.roundStarted = Date.now();
      }
      if (
        this.proposedInRound !== this.round &&
        proposerFor(this.g.producers, h, this.round) === this.me()
      ) {
        this.proposedInRound = this.round;
        await this.propose(h);
      }
    } catch (err) {
      this.opts.onError?.(`producer round failed: ${(err as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  private async propose(h: number): Promise<void> {
    const locked = this.votes.at(h);
    let c = locked ? this.candidates.get(locked) : undefined;
    if (!c) {
      if (locked) return; // signed a block we no longer hold; wait for it to become final elsewhere
      const block = await this.g.buildCandidate();
      if (!block) return;
      const key = toHex(block.BlockHash);
      if (this.votes.bind(h, key) !== key) return; // bound at this height meanwhile
      c = { block, signers: new Map([[this.me(), block.ProducerSign]]) };
      this.candidates.set(key, c);
      this.absorbEarlyVotes(key, c);
    }
    this.net.sendProposal(this.withWitnesses(c));
    await this.maybeFinal(c);
  }

  private withWitnesses(c: Candidate): Block {
    const witnesses = [...c.signers]
      .filter(([pk]) => pk !== c.block.ProducerPubkey)
      .map(([Pubkey, Sign]) => ({ Pubkey, Sign }));
    return { ...c.block, Witnesses: witnesses };
  }

  /** A proposal from another producer (already checked: hash, signature, proposer in the set). */
  async onProposal(block: Block): Promise<void> {
    const h = this.syncHeight();
    if (block.BlockId !== h || !this.g.isProducer) return;
    const key = toHex(block.BlockHash);
    let c = this.candidates.get(key);
    if (!c) {
      const check = this.g.validateCandidate(block);
      if (!check.ok) {
        this.opts.onError?.(`proposal rejected: ${check.reason}`);
        return;
      }
      c = {
        block: { ...block, Witnesses: [] },
        signers: new Map([[block.ProducerPubkey, block.ProducerSign]]),
      };
      this.candidates.set(key, c);
      this.absorbEarlyVotes(key, c);
    }
    for (const w of block.Witnesses ?? []) {
      this.addSigner(c, {
        GroupId: block.GroupId,
        BlockId: block.BlockId,
        BlockHash: block.BlockHash,
        Pubkey: w.Pubkey,
        Sign: w.Sign,
      });
    }
    if (!c.signers.has(this.me()) && this.votes.bind(h, key) === key) {
      const vote: Vote = {
        GroupId: block.GroupId,
        BlockId: h,
        BlockHash: block.BlockHash,
        Pubkey: this.me(),
        Sign: signDigest(block.BlockHash, this.signKey),
      };
      c.signers.set(vote.Pubkey, vote.Sign);
      this.net.sendVote(vote);
    }
    await this.maybeFinal(c);
  }

  async onVote(vote: Vote): Promise<void> {
    const h = this.syncHeight();
    if (vote.BlockId !== h) return;
    const key = toHex(vote.BlockHash);
    const c = this.candidates.get(key);
    if (!c) {
      const list = this.earlyVotes.get(key) ?? [];
      if (list.length < 64) list.push(vote);
      this.earlyVotes.set(key, list);
      return;
    }
    this.addSigner(c, vote);
    await this.maybeFinal(c);
  }

  private absorbEarlyVotes(key: string, c: Candidate): void {
    for (const v of this.earlyVotes.get(key) ?? []) this.addSigner(c, v);
    this.earlyVotes.delete(key);
  }

  private addSigner(c: Candidate, v: Vote): void {
    if (!this.g.producers.includes(v.Pubkey) || c.signers.has(v.Pubkey)) return;
    if (!bytesEqual(v.BlockHash, c.block.BlockHash) || !verifyVote(v)) return;
    c.signers.set(v.Pubkey, v.Sign);
  }

  private async maybeFinal(c: Candidate): Promise<void> {
    if (c.signers.size < majority(this.g.producers.length)) return;
    if (c.block.BlockId !== this.g.head.blockId + 1) return;
    const final = this.withWitnesses(c);
    const r = await this.g.applyBlock(final);
    if (r.ok) this.net.publishFinal(final);
    else if (final.BlockId > this.g.head.blockId)
      this.opts.onError?.(`final block not applied: ${r.reason}`);
    this.syncHeight();
  }
}
