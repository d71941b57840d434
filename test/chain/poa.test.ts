// Producer rounds (src/chain/poa.ts) driven by hand against a real group of four producers whose
// other three keys the test holds: one vote a round, kept across a restart; a later round takes
// only the block its ROUND_CHANGEs justify; a promise to a later round ends voting in earlier ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signBlock } from '../../src/chain/block.ts';
import { nowNs } from '../../src/chain/clock.ts';
import { encodeMessage } from '../../src/chain/protobuf.ts';
import { announceSignedBytes } from '../../src/chain/apply.ts';
import { AnnounceItemDesc, type Block, TrxType } from '../../src/chain/pb.ts';
import {
  MultiProducer,
  type Proposal,
  type RoundChange,
  signRoundChange,
  type Vote,
} from '../../src/chain/poa.ts';
import { checkFinality, proposerFor, voteDigest } from '../../src/chain/producers.ts';
import { signTrx } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { toHex } from '../../src/crypto/encoding.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import { sha256, signDigest } from '../../src/crypto/sign.ts';
import { openTempNode } from '../helpers/temp-node.ts';

async function fourProducers() {
  const { node: a } = await openTempNode();
  const { groupId } = await a.createGroup({
    groupName: 'votes',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  });
  const g = a.group(groupId);
  // Three more producers announce themselves (their own signed trxs); the owner adds them.
  // With four producers a block needs three signatures: A's vote alone never makes it final.
  const announceAs = (key: Uint8Array) => {
    const item = {
      GroupId: groupId,
      SignPubkey: encodePubkey(publicKeyOf(key)),
      EncryptPubkey: '',
      AnnouncerSignature: '',
      Type: 1,
      OwnerPubkey: '',
      OwnerSignature: '',
      Result: 0,
      TimeStamp: nowNs(),
      Action: 0,
      Memo: '',
    };
    item.AnnouncerSignature = toHex(signDigest(sha256(announceSignedBytes(item)), key));
    return signTrx(
      {
        TrxId: crypto.randomUUID(),
        Type: TrxType.ANNOUNCE,
        GroupId: groupId,
        Data: aesEncrypt(g.cipherKey, encodeMessage(AnnounceItemDesc, item)),
        TimeStamp: nowNs(),
        Expired: 0n,
        SenderPubkey: item.SignPubkey,
      },
      key,
    );
  };
  const others = [generatePrivateKey(), generatePrivateKey(), generatePrivateKey()];
  for (const k of others) await a.submitTrx(groupId, announceAs(k));
  await g.produce();
  await a.updateProducers(
    groupId,
    others.map((k) => encodePubkey(publicKeyOf(k))),
    'add',
    '',
  );
  await g.produce();
  assert.equal(g.producers.length, 4);
  const keyOf = new Map(others.map((k) => [encodePubkey(publicKeyOf(k)), k]));
  const h = g.head.blockId + 1;
  /** A block at the next height made by the producer `key`. */
  const blockBy = (key: Uint8Array, text: string): Block => {
    const pub = encodePubkey(publicKeyOf(key));
    return signBlock(
      {
        GroupId: groupId,
        BlockId: h,
        Epoch: g.head.epoch + 1,
        PrevHash: g.head.hash,
        ProducerPubkey: pub,
        Trxs: [
          signTrx(
            {
              TrxId: crypto.randomUUID(),
              Type: TrxType.POST,
              GroupId: groupId,
              Data: aesEncrypt(
                g.cipherKey,
                Buffer.from(JSON.stringify({ type: 'Note', content: text })),
              ),
              TimeStamp: nowNs(),
              Expired: 0n,
              SenderPubkey: pub,
            },
            key,
          ),
        ],
        Sudo: false,
        TimeStamp: nowNs(),
      },
      key,
    );
  };
  const vote = (key: Uint8Array, b: Block, round: number): Vote => ({
    GroupId: groupId,
    BlockId: h,
    BlockHash: b.BlockHash,
    Pubkey: encodePubkey(publicKeyOf(key)),
    Sign: signDigest(voteDigest(b.BlockHash, round), key),
    Round: round,
  });
  const roundChange = (key: Uint8Array, round: number, lock?: [Block, number]): RoundChange => {
    const rc = {
      GroupId: groupId,
      BlockId: h,
      Round: round,
      Pubkey: encodePubkey(publicKeyOf(key)),
      LockedHash: lock ? lock[0].BlockHash : new Uint8Array(0),
      LockedRound: lock ? lock[1] : 0,
    };
    return signRoundChange(rc, key);
  };
  /** The first round from `from` whose proposer is one of the test's keys (not A). */
  const roundOfOthers = (from: number): [number, Uint8Array] => {
    for (let r = from; ; r++) {
      const k = keyOf.get(proposerFor(g.producers, h, r));
      if (k) return [r, k];
    }
  };
  const sent: Vote[] = [];
  const roundChanges: RoundChange[] = [];
  const finals: Block[] = [];
  const net = {
    sendProposal: () => {},
    sendVote: (v: Vote) => sent.push(v),
    sendRoundChange: (rc: RoundChange) => roundChanges.push(rc),
    publishFinal: (b: Block) => finals.push(b),
  };
  const record = {
    get: (height: number) => a.store.producerState(groupId, height),
    set: (height: number, st: Parameters<typeof a.store.saveProducerState>[2]) =>
      a.store.saveProducerState(groupId, height, st),
  };
  const opts = { roundTimeoutMs: 60_000, tickMs: 60_000 };
  const producer = () => new MultiProducer(g, net, a.keystore.get('sign', groupId), record, opts);
  /** A proposal of `b` in round r by that round's proposer `key`, justified by `rcs` when r > 0. */
  const proposal = (key: Uint8Array, b: Block, r: number, rcs: RoundChange[]): Proposal => ({
    Block: r === 0 ? b : { ...b, Witnesses: [{ ...vote(key, b, r), Round: r }] },
    Round: r,
    Justification: rcs,
  });
  return {
    a,
    g,
    groupId,
    h,
    others,
    blockBy,
    vote,
    roundChange,
    roundOfOthers,
    proposal,
    producer,
    sent,
    roundChanges,
    finals,
  };
}

describe('producer rounds', () => {
  it('votes once a round, and keeps to it after a restart', async () => {
    const t = await fourProducers();
    const { a, g, groupId, h, others, sent, finals } = t;
    // The round's proposer is one of the test's keys; a later round is justified by the others.
    const [r, pk] = t.roundOfOthers(0);
    const rest = others.filter((k) => k !== pk);
    const just = r === 0 ? [] : others.map((k) => t.roundChange(k, r));
    const x = t.blockBy(pk, 'x');
    const first = t.producer();
    await first.onProposal(t.proposal(pk, x, r, just));
    assert.equal(sent.length, 1, 'A votes for the first proposal of the round');
    assert.equal(toHex(sent[0]!.BlockHash), toHex(x.BlockHash));
    assert.equal(sent[0]!.Round ?? 0, r);
    await first.onProposal(t.proposal(pk, t.blockBy(pk, 'x2'), r, just));
    assert.equal(sent.length, 1, 'not for a second block in the same round');
    assert.equal(finals.length, 0, 'two votes of four are not final');

    // A restarts: a new instance over the same database, a third block in the same round.
    const restarted = t.producer();
    await restarted.onProposal(t.proposal(pk, t.blockBy(pk, 'z'), r, just));
    assert.equal(sent.length, 1, 'after the restart, still not');
    assert.equal(a.store.producerState(groupId, h)?.lockedHash, toHex(x.BlockHash));
    // The block A voted for can still gather its majority: votes wait for the block they are for.
    await restarted.onVote(t.vote(rest[0]!, x, r));
    await restarted.onVote(t.vote(rest[1]!, x, r));
    assert.equal(g.head.blockId, h - 1, 'votes wait for the block they are for');
    await restarted.onProposal(t.proposal(pk, x, r, just));
    assert.equal(g.head.blockId, h, 'seen again, X becomes final with the waiting votes');
    assert.ok(
      sent.every((v) => toHex(v.BlockHash) === toHex(x.BlockHash)),
      'only ever X',
    );
    assert.equal(toHex(g.head.hash), toHex(x.BlockHash));
    assert.equal(finals.length, 1);
    assert.deepEqual(checkFinality(finals[0]!, g.producers), { ok: true });
    await a.stop();
  });

  it('takes in a later round only the block its ROUND_CHANGEs justify, and finalizes it there', async () => {
    const t = await fourProducers();
    const { a, g, h, others, sent, finals } = t;
    // Round r1: X is proposed and A votes for it; nobody else does: not final.
    const [r1, p1] = t.roundOfOthers(0);
    const j1 = r1 === 0 ? [] : others.map((k) => t.roundChange(k, r1));
    const x = t.blockBy(p1, 'x');
    const mp = t.producer();
    await mp.onProposal(t.proposal(p1, x, r1, j1));
    assert.equal(sent.length, 1);
    // Round r2: its ROUND_CHANGEs come from the three others; X's proposer reports its lock.
    const [r2, p2] = t.roundOfOthers(r1 + 1);
    const j2 = others.map((k) => t.roundChange(k, r2, k === p1 ? [x, r1] : undefined));
    const y = t.blockBy(p2, 'y');
    await mp.onProposal(t.proposal(p2, y, r2, j2));
    assert.equal(sent.length, 1, 'a block other than the justified one gets no vote');
    await mp.onProposal(t.proposal(p2, x, r2, j2.slice(0, 2)));
    assert.equal(sent.length, 1, 'two ROUND_CHANGEs of four do not justify anything');
    const forged = j2.map((rc, i) => (i === 0 ? { ...rc, Round: rc.Round + 1 } : rc));
    await mp.onProposal(t.proposal(p2, x, r2, forged));
    assert.equal(sent.length, 1, 'a ROUND_CHANGE whose signature does not match is refused');
    await mp.onProposal(t.proposal(p2, x, r2, j2));
    assert.equal(sent.length, 2, 'the justified block gets a vote in the later round');
    assert.equal(sent[1]!.Round, r2);
    const third = others.find((k) => k !== p2)!;
    await mp.onVote(t.vote(third, x, r2));
    assert.equal(g.head.blockId, h, 'three votes of round r2 make X final');
    assert.equal(toHex(g.head.hash), toHex(x.BlockHash));
    const final = finals[0]!;
    assert.ok(
      final.Witnesses!.every((w) => w.Round === r2),
      'witnesses of one round',
    );
    assert.deepEqual(checkFinality(final, g.producers), { ok: true });
    const mixed = {
      ...final,
      Witnesses: [...final.Witnesses!, { ...final.Witnesses![0]!, Round: r1 }],
    };
    assert.equal(checkFinality(mixed, g.producers).ok, false, 'votes of two rounds do not add up');
    await a.stop();
  });

  it('moves to a later round it hears of, and then votes in no earlier one', async () => {
    const t = await fourProducers();
    const { a, h, others, sent, roundChanges } = t;
    const mp = t.producer();
    const [r, pk] = t.roundOfOthers(1);
    mp.onRoundChange(t.roundChange(others[0]!, r + 5));
    assert.equal(mp.currentRound, r + 5);
    assert.equal(roundChanges.length, 1, 'A says it moved, with a ROUND_CHANGE of its own');
    assert.equal(roundChanges[0]!.Round, r + 5);
    assert.equal(roundChanges[0]!.LockedHash.length, 0, 'with no lock yet');
    assert.equal(a.store.producerState(t.groupId, h)?.promised, r + 5, 'the promise is stored');
    const just = others.map((k) => t.roundChange(k, r));
    await mp.onProposal(t.proposal(pk, t.blockBy(pk, 'late'), r, just));
    assert.equal(sent.length, 0, 'no vote in a round below the promise');
    // After a restart the promise still holds.
    const restarted = t.producer();
    await restarted.onProposal(t.proposal(pk, t.blockBy(pk, 'late again'), r, just));
    assert.equal(sent.length, 0);
    await a.stop();
  });
});
