/**
 * Who produces a group's blocks and when a block is final.
 *
 * The producer set is the owner plus the producers the owner approved (PRODUCER trxs). With one
 * producer (quorum's only working case) a block is final when its producer signed it. With N
 * producers a block is final when a majority, ⌊N/2⌋ + 1 distinct producers of the set as of its
 * parent, signed its hash: the proposer in ProducerSign, the others as Witnesses (field 11).
 * Each producer signs at most one block per height, so two different blocks at one height can
 * never both gather a majority. Turns: the proposer for height h in round r is the (h + r)-th
 * producer of the set sorted by key; a round ends when no block became final in time.
 */
import { pubkeyBytesUnchecked } from '../crypto/keys.ts';
import { verifyDigest } from '../crypto/sign.ts';
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

/** The distinct producers of the set whose signatures of the block hash verify. */
export function signersOf(block: Block, set: readonly string[]): Set<string> {
  const members = new Set(set);
  const signers = new Set<string>();
  if (members.has(block.ProducerPubkey)) signers.add(block.ProducerPubkey); // checked by checkBlockSelf
  for (const w of block.Witnesses ?? []) {
    if (!members.has(w.Pubkey) || signers.has(w.Pubkey)) continue;
    const pub = pubkeyBytesUnchecked(w.Pubkey);
    if (pub && verifyDigest(pub, block.BlockHash, w.Sign)) signers.add(w.Pubkey);
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
