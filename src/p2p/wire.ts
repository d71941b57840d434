/**
 * What travels on a group's gossip topics, as quorum sends it: a protobuf Package{Type, Data}
 * on `user_channel_<group id>`; a TRX package carries a Trx whose Data is zstd-compressed after
 * signing (receivers decompress before verifying), a BLOCK package a Block as is.
 */
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import {
  type Block,
  decodeBlock,
  decodeTrx,
  encodeBlock,
  encodeTrx,
  HBTrxBundleDesc,
  PackageDesc,
  PackageType,
  type Trx,
} from '../chain/pb.ts';
import {
  type Proposal,
  ProposalDesc,
  type RoundChange,
  RoundChangeDesc,
  type Vote,
  VoteDesc,
} from '../chain/poa.ts';
import { decodeMessage, encodeMessage } from '../chain/protobuf.ts';

export const userChannel = (groupId: string): string => `user_channel_${groupId}`;
export const prodChannel = (groupId: string): string => `prod_channel_${groupId}`;

export function groupOfTopic(topic: string): string | null {
  const m = /^(?:user|prod)_channel_([0-9a-f-]{36})$/.exec(topic);
  return m ? m[1]! : null;
}

export class WireError extends Error {
  override name = 'WireError';
}

export type Envelope =
  | { kind: 'trxs'; trxs: Trx[] }
  | { kind: 'block'; block: Block }
  | { kind: 'proposal'; proposal: Proposal }
  | { kind: 'vote'; vote: Vote }
  | { kind: 'roundChange'; roundChange: RoundChange };

/** ROUND_CHANGEs in one proposal's justification: a majority of at most this many producers. */
export const MAX_JUSTIFICATION = 256;

/** Trxs per bundle and bundle size: well under gossipsub's message limit. */
export const MAX_BUNDLE_TRXS = 200;
export const MAX_BUNDLE_BYTES = 512 * 1024;

export function encodeTrxPackage(trx: Trx): Uint8Array {
  const wire = { ...trx, Data: new Uint8Array(zstdCompressSync(trx.Data)) };
  return encodeMessage(PackageDesc, { Type: PackageType.TRX, Data: encodeTrx(wire) });
}

/** One package for one trx (quorum's form); bundles of up to 200 trxs / 512 KiB for more. */
export function encodeTrxPackages(trxs: Trx[]): Uint8Array[] {
  if (trxs.length === 1) return [encodeTrxPackage(trxs[0]!)];
  const out: Uint8Array[] = [];
  let part: Trx[] = [];
  let bytes = 0;
  const flush = () => {
    if (part.length === 0) return;
    const bundle = encodeMessage(HBTrxBundleDesc, { Trxs: part });
    const data = new Uint8Array(zstdCompressSync(bundle));
    out.push(encodeMessage(PackageDesc, { Type: PackageType.TRX_BUNDLE, Data: data }));
    part = [];
    bytes = 0;
  };
  for (const t of trxs) {
    const size = t.Data.length + 300;
    if (part.length >= MAX_BUNDLE_TRXS || (part.length > 0 && bytes + size > MAX_BUNDLE_BYTES))
      flush();
    part.push(t);
    bytes += size;
  }
  flush();
  return out;
}

export function encodeProposalPackage(proposal: Proposal): Uint8Array {
  return encodeMessage(PackageDesc, {
    Type: PackageType.BLOCK_PROPOSAL,
    Data: encodeMessage(ProposalDesc, proposal),
  });
}

export function encodeRoundChangePackage(rc: RoundChange): Uint8Array {
  return encodeMessage(PackageDesc, {
    Type: PackageType.ROUND_CHANGE,
    Data: encodeMessage(RoundChangeDesc, rc),
  });
}

export function encodeVotePackage(vote: Vote): Uint8Array {
  return encodeMessage(PackageDesc, {
    Type: PackageType.BLOCK_VOTE,
    Data: encodeMessage(VoteDesc, vote),
  });
}

export function encodeBlockPackage(block: Block): Uint8Array {
  return encodeMessage(PackageDesc, { Type: PackageType.BLOCK, Data: encodeBlock(block) });
}

/** Decodes a gossip message; throws WireError when it is not a well-formed package within limits. */
export function decodePackage(
  data: Uint8Array,
  limits: { maxTrxDataBytes: number; maxBlockBytes: number },
): Envelope {
  if (data.length > limits.maxBlockBytes + 4096) throw new WireError('package too large');
  let pkg: { Type: number; Data: Uint8Array };
  try {
    pkg = decodeMessage(PackageDesc, data);
  } catch (err) {
    throw new WireError(`malformed package: ${(err as Error).message}`);
  }
  if (pkg.Type === PackageType.TRX) {
    let trx: Trx;
    try {
      trx = decodeTrx(pkg.Data);
    } catch (err) {
      throw new WireError(`malformed trx: ${(err as Error).message}`);
    }
    try {
      trx.Data = new Uint8Array(
        zstdDecompressSync(trx.Data, { maxOutputLength: limits.maxTrxDataBytes }),
      );
    } catch {
      throw new WireError('trx data is not zstd within the size limit');
    }
    return { kind: 'trxs', trxs: [trx] };
  }
  if (pkg.Type === PackageType.TRX_BUNDLE) {
    let bundle: { Trxs: Trx[] };
    try {
      const raw = zstdDecompressSync(pkg.Data, { maxOutputLength: MAX_BUNDLE_BYTES + 64 * 1024 });
      bundle = decodeMessage(HBTrxBundleDesc, new Uint8Array(raw));
    } catch (err) {
      throw new WireError(`malformed trx bundle: ${(err as Error).message}`);
    }
    if (bundle.Trxs.length === 0 || bundle.Trxs.length > MAX_BUNDLE_TRXS) {
      throw new WireError('bad trx bundle size');
    }
    return { kind: 'trxs', trxs: bundle.Trxs };
  }
  if (pkg.Type === PackageType.BLOCK_VOTE) {
    try {
      return { kind: 'vote', vote: decodeMessage<Vote>(VoteDesc, pkg.Data) };
    } catch (err) {
      throw new WireError(`malformed vote: ${(err as Error).message}`);
    }
  }
  if (pkg.Type === PackageType.ROUND_CHANGE) {
    try {
      return {
        kind: 'roundChange',
        roundChange: decodeMessage<RoundChange>(RoundChangeDesc, pkg.Data),
      };
    } catch (err) {
      throw new WireError(`malformed round change: ${(err as Error).message}`);
    }
  }
  if (pkg.Type === PackageType.BLOCK_PROPOSAL) {
    let proposal: Proposal;
    try {
      proposal = decodeMessage<Proposal>(ProposalDesc, pkg.Data);
    } catch (err) {
      throw new WireError(`malformed proposal: ${(err as Error).message}`);
    }
    if (!proposal.Block) throw new WireError('proposal without a block');
    proposal.Justification ??= [];
    if (proposal.Justification.length > MAX_JUSTIFICATION) {
      throw new WireError('proposal justification too long');
    }
    return { kind: 'proposal', proposal };
  }
  if (pkg.Type === PackageType.BLOCK) {
    try {
      return { kind: 'block', block: decodeBlock(pkg.Data) };
    } catch (err) {
      throw new WireError(`malformed block: ${(err as Error).message}`);
    }
  }
  throw new WireError(`package type ${pkg.Type} is not handled on this topic`);
}
