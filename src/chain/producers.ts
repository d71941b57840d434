/**
 * Who produces a group's blocks and when a block is final.
 *
 * The producer set is the owner plus the producers the owner approved (PRODUCER trxs). With one
 * producer (quorum's only working case) a block is final when its producer signed it. With N
 * producers a block is final when a majority, ⌊N/2⌋ + 1 distinct producers of the set as of its
 * parent, voted for it in one round: the Witnesses (field 11) all carry that round; in round 0 the
 * block's ProducerSign counts as its producer's vote. A vote of round 0 signs the block hash, a
 * vote of a later round signs voteDigest(hash, round). Turns: the proposer for height h in round
 * r is the (h + r)-th producer of the set sorted by key. How rounds keep two final blocks at one
 * height apart is in ./poa.ts.
 */
import { concatBytes, utf8Bytes } from '../crypto/encoding.ts';
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { sha256, verifyDigest } from '../crypto/sign.ts';
import type { Block } from './pb.ts';
import type { Check } from './trx.ts';

export function producerSet(owner: string, approved: Iterable<string>): string[] {
  return [...new Set([owner, ...approved])].sort();
}

export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

export function proposerFor(set: readonly string[], height: number, round: number): string {
  return set[(height + round) % set.length]!;
}

/** What a producer signs to vote for a block in a round: the hash itself in round 0. */
export function voteDigest(blockHash: Uint8Array, round: number): Uint8Array {
  if (round === 0) return blockHash;
  const r = new Uint8Array(4);
  new DataView(r.buffer).setUint32(0, round);
  return sha256(concatBytes(utf8Bytes('rum-block-vote:'), blockHash, r));
}

/** The round a final block's witnesses voted in, or null when they disagree. */
function witnessRound(block: Block): number | null {
  const rounds = new Set((block.Witnesses ?? []).map((w) => w.Round ?? 0));
  if (rounds.size > 1) return null;
  return rounds.size === 0 ? 0 : [...rounds][0]!;
}

/** The distinct producers of the set whose votes for the block, in its witnesses' round, verify. */
export function signersOf(block: Block, set: readonly string[]): Set<string> {
  const members = new Set(set);
  const signers = new Set<string>();
  const round = witnessRound(block);
  if (round === null) return signers;
  // In round 0 the producer's own signature (checked by checkBlockSelf) is its vote.
  if (round === 0 && members.has(block.ProducerPubkey)) signers.add(block.ProducerPubkey);
  const digest = voteDigest(block.BlockHash, round);
  for (const w of block.Witnesses ?? []) {
    if (!members.has(w.Pubkey) || signers.has(w.Pubkey)) continue;
    const pub = pubkeyBytesUnchecked(w.Pubkey);
    if (pub && verifyDigest(pub, digest, w.Sign)) signers.add(w.Pubkey);
  }
  return signers;
}

/** Whether a block (hash and producer signature already checked) is final under a set. */
export function checkFinality(block: Block, set: readonly string[]): Check {
  if (!set.includes(block.ProducerPubkey)) {
    return { ok: false, reason: 'block producer is not a producer of this group' };
  }
  const signers = signersOf(block, set);
  const need = majority(set.length);
  if (signers.size < need) {
    return {
      ok: false,
      reason: `block has ${signers.size} producer signatures, needs ${need} of ${set.length}`,
    };
  }
  return { ok: true };
}
