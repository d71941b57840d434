// Gossip packages: quorum's TRX package (Data zstd-compressed after signing) and this node's
// TRX_BUNDLE, round trip with signatures intact; producer rounds' proposals and ROUND_CHANGEs
// round trip and keep their signatures; malformed or oversized input is refused.
import assert from 'node:assert/strict';
import { zstdCompressSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { signBlock } from '../../src/chain/block.ts';
import { PackageDesc, PackageType, TrxType } from '../../src/chain/pb.ts';
import {
  ProposalDesc,
  type RoundChange,
  signRoundChange,
  verifyRoundChange,
} from '../../src/chain/poa.ts';
import { encodeMessage } from '../../src/chain/protobuf.ts';
import { signTrx, verifyTrxSignature } from '../../src/chain/trx.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import {
  decodePackage,
  encodeProposalPackage,
  encodeRoundChangePackage,
  encodeTrxPackages,
  MAX_BUNDLE_TRXS,
  MAX_JUSTIFICATION,
  WireError,
} from '../../src/p2p/wire.ts';

const limits = { maxTrxDataBytes: 300 * 1024, maxBlockBytes: 900 * 1024 };
const priv = generatePrivateKey();
const trx = (i: number) =>
  signTrx(
    {
      TrxId: crypto.randomUUID(),
      Type: TrxType.POST,
      GroupId: '6f1d2c3b-4a59-4e68-8f7a-1b2c3d4e5f60',
      Data: new Uint8Array(100).fill(i),
      TimeStamp: 1n + BigInt(i),
      Expired: 0n,
      SenderPubkey: encodePubkey(publicKeyOf(priv)),
    },
    priv,
  );

describe('gossip packages', () => {
  it('sends one trx as a quorum TRX package and many as bundles', () => {
    const one = encodeTrxPackages([trx(1)]);
    assert.equal(one.length, 1);
    const env = decodePackage(one[0]!, limits);
    assert.equal(env.kind, 'trxs');
    assert.ok(
      env.kind === 'trxs' && verifyTrxSignature(env.trxs[0]!),
      'signature survives compression',
    );

    const many = Array.from({ length: MAX_BUNDLE_TRXS + 5 }, (_, i) => trx(i));
    const pkgs = encodeTrxPackages(many);
    assert.equal(pkgs.length, 2);
    const back = pkgs.flatMap((p) => {
      const e = decodePackage(p, limits);
      return e.kind === 'trxs' ? e.trxs : [];
    });
    assert.deepEqual(
      back.map((t) => t.TrxId),
      many.map((t) => t.TrxId),
    );
    assert.ok(back.every((t) => verifyTrxSignature(t)));
  });

  it('refuses garbage, unknown types and decompression bombs', () => {
    assert.throws(() => decodePackage(new Uint8Array([0xff, 0xff, 0xff]), limits), WireError);
    assert.throws(
      () => decodePackage(encodeMessage(PackageDesc, { Type: 9, Data: new Uint8Array(1) }), limits),
      /type 9/,
    );
    const bomb = encodeMessage(PackageDesc, {
      Type: 3,
      Data: new Uint8Array(zstdCompressSync(Buffer.alloc(50 << 20))),
    });
    assert.throws(() => decodePackage(bomb, limits), /bundle/);
    assert.throws(() => decodePackage(new Uint8Array(2 << 20), limits), /too large/);
  });

  it('carries proposals with their round and justification, and signed ROUND_CHANGEs', () => {
    const rc: RoundChange = signRoundChange(
      {
        GroupId: 'g',
        BlockId: 7,
        Round: 2,
        Pubkey: encodePubkey(publicKeyOf(priv)),
        LockedHash: new Uint8Array(32).fill(9),
        LockedRound: 1,
      },
      priv,
    );
    const back = decodePackage(encodeRoundChangePackage(rc), limits);
    assert.equal(back.kind, 'roundChange');
    if (back.kind !== 'roundChange') return;
    assert.deepEqual(back.roundChange, rc);
    assert.ok(verifyRoundChange(back.roundChange));
    assert.ok(!verifyRoundChange({ ...rc, LockedRound: 0 }), 'the lock is signed');

    const block = signBlock(
      {
        GroupId: 'g',
        BlockId: 7,
        Epoch: 7,
        PrevHash: new Uint8Array(32),
        ProducerPubkey: encodePubkey(publicKeyOf(priv)),
        Trxs: [trx(1)],
        Sudo: false,
        TimeStamp: 5n,
      },
      priv,
    );
    const witness = { Pubkey: 'p', Sign: new Uint8Array(65).fill(1), Round: 2 };
    const p = decodePackage(
      encodeProposalPackage({
        Block: { ...block, Witnesses: [witness] },
        Round: 2,
        Justification: [rc],
      }),
      limits,
    );
    assert.equal(p.kind, 'proposal');
    if (p.kind !== 'proposal') return;
    assert.equal(p.proposal.Round, 2);
    assert.deepEqual(p.proposal.Block.Witnesses, [witness]);
    assert.deepEqual(p.proposal.Justification, [rc]);
    assert.deepEqual(p.proposal.Block.BlockHash, block.BlockHash);

    const tooLong = encodeMessage(PackageDesc, {
      Type: PackageType.BLOCK_PROPOSAL,
      Data: encodeMessage(ProposalDesc, {
        Block: block,
        Round: 1,
        Justification: Array.from({ length: MAX_JUSTIFICATION + 1 }, () => rc),
      }),
    });
    assert.throws(() => decodePackage(tooLong, limits), /justification too long/);
    const noBlock = encodeMessage(PackageDesc, {
      Type: PackageType.BLOCK_PROPOSAL,
      Data: encodeMessage(ProposalDesc, { Round: 1 }),
    });
    assert.throws(() => decodePackage(noBlock, limits), WireError);
  });
});
