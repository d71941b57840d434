// A producer signs at most one block per height, and keeps to it across a restart: its choice is
// written to the database before its signature leaves the node.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signBlock } from '../../src/chain/block.ts';
import { nowNs } from '../../src/chain/clock.ts';
import { encodeMessage } from '../../src/chain/protobuf.ts';
import { announceSignedBytes } from '../../src/chain/apply.ts';
import { AnnounceItemDesc, type Block, TrxType } from '../../src/chain/pb.ts';
import { MultiProducer, type Vote } from '../../src/chain/poa.ts';
import { signTrx } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { toHex } from '../../src/crypto/encoding.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import { sha256, signDigest } from '../../src/crypto/sign.ts';
import { openTempNode } from '../helpers/temp-node.ts';

describe('producer votes', () => {
  it('never signs two blocks at one height, even after a restart', async () => {
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
    const p = others[0]!;
    const pPub = encodePubkey(publicKeyOf(p));
    for (const k of others) a.submitTrx(groupId, announceAs(k));
    await g.produce();
    await a.updateProducers(
      groupId,
      others.map((k) => encodePubkey(publicKeyOf(k))),
      'add',
      '',
    );
    await g.produce();
    assert.equal(g.producers.length, 4);

    const proposal = (text: string): Block =>
      signBlock(
        {
          GroupId: groupId,
          BlockId: g.head.blockId + 1,
          Epoch: g.head.epoch + 1,
          PrevHash: g.head.hash,
          ProducerPubkey: pPub,
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
                SenderPubkey: pPub,
              },
              p,
            ),
          ],
          Sudo: false,
          TimeStamp: nowNs(),
        },
        p,
      );
    const votes = {
      bind: (h: number, hash: string) => a.store.bindVote(groupId, h, hash),
      at: (h: number) => a.store.voteAt(groupId, h),
    };
    const sent: Vote[] = [];
    const finals: Block[] = [];
    const net = {
      sendProposal: () => {},
      sendVote: (v: Vote) => sent.push(v),
      publishFinal: (b: Block) => finals.push(b),
    };
    const opts = { roundTimeoutMs: 60_000, tickMs: 60_000 };

    const x = proposal('x');
    const x2 = proposal('x2');
    const first = new MultiProducer(g, net, a.keystore.get('sign', groupId), votes, opts);
    await first.onProposal(x);
    assert.equal(sent.length, 1, 'A signs the first proposal at this height');
    assert.equal(toHex(sent[0]!.BlockHash), toHex(x.BlockHash));
    await first.onProposal(x2);
    assert.equal(sent.length, 1, 'not a second block at the same height');
    assert.equal(finals.length, 0, 'two signatures of four are not final');

    // A restarts: a new instance over the same database, a third block at the same height.
    const restarted = new MultiProducer(g, net, a.keystore.get('sign', groupId), votes, opts);
    await restarted.onProposal(proposal('z'));
    assert.equal(sent.length, 1, 'after the restart, still not');
    assert.equal(a.store.voteAt(groupId, x.BlockId), toHex(x.BlockHash));
    // The block A signed can still gather its majority: its votes are taken after the restart.
    for (const k of others.slice(1)) {
      await restarted.onVote({
        GroupId: groupId,
        BlockId: x.BlockId,
        BlockHash: x.BlockHash,
        Pubkey: encodePubkey(publicKeyOf(k)),
        Sign: signDigest(x.BlockHash, k),
      });
    }
    assert.equal(g.head.blockId, 2, 'votes wait for the block they are for');
    await restarted.onProposal(x);
    assert.equal(
      g.head.blockId,
      3,
      'seen again, the block A signed becomes final with the waiting votes',
    );
    assert.equal(toHex(g.head.hash), toHex(x.BlockHash));
    assert.equal(finals.length, 1);
    await a.stop();
  });
});
