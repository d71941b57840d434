// A peer that gossips malformed packages, forged trxs and blocks signed by a stranger is
// rejected and scored down; the honest nodes' chains are unaffected and keep working.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { GossipSub } from '@libp2p/gossipsub';
import type { Libp2p } from '@libp2p/interface';
import { signBlock } from '../../src/chain/block.ts';
import { nowNs } from '../../src/chain/clock.ts';
import { TrxType } from '../../src/chain/pb.ts';
import { signTrx } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { encodePubkey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.ts';
import type { RumNode } from '../../src/node.ts';
import { createP2PHost } from '../../src/p2p/host.ts';
import { encodeBlockPackage, encodeTrxPackage, userChannel } from '../../src/p2p/wire.ts';
import { LOOPBACK, startMember, until } from '../helpers/net.ts';

describe('a hostile peer', () => {
  const nodes: RumNode[] = [];
  let mallory: Libp2p<{ pubsub: GossipSub }> | undefined;
  after(async () => {
    await mallory?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('is rejected and scored down while honest nodes go on', async () => {
    const a = (await startMember([])).node;
    nodes.push(a);
    const aAddr = a.p2p.getMultiaddrs()[0]!.toString();
    const b = (await startMember([aAddr])).node;
    nodes.push(b);
    const { groupId, seed } = await a.createGroup({
      groupName: 'hostile',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    await b.joinGroup(seed);
    const g = a.group(groupId);

    mallory = (await createP2PHost({
      nodeKey: generatePrivateKey(),
      listen: [LOOPBACK],
      bootstrap: [],
      networkName: 'staten',
      role: 'full',
    })) as unknown as Libp2p<{ pubsub: GossipSub }>;
    await mallory.start();
    await mallory.dial(a.p2p.getMultiaddrs()[0]!);
    const topic = userChannel(groupId);
    mallory.services.pubsub.subscribe(topic);
    await until(
      () => a.p2p.services.pubsub.getSubscribers(topic).some((p) => p.equals(mallory!.peerId)),
      'A to see Mallory in the topic',
    );
    // Mallory must also know that A is in the topic, or its messages go nowhere.
    await until(
      () => mallory!.services.pubsub.getSubscribers(topic).some((p) => p.equals(a.p2p.peerId)),
      'Mallory to see A in the topic',
    );

    const key = generatePrivateKey();
    const forged = signTrx(
      {
        TrxId: crypto.randomUUID(),
        Type: TrxType.POST,
        GroupId: groupId,
        Data: aesEncrypt(g.cipherKey, Buffer.from('{"type":"Note","content":"real"}')),
        TimeStamp: nowNs(),
        Expired: 0n,
        SenderPubkey: encodePubkey(publicKeyOf(key)),
      },
      key,
    );
    forged.Data = aesEncrypt(g.cipherKey, Buffer.from('{"type":"Note","content":"forged"}'));
    const fakeBlock = signBlock(
      {
        GroupId: groupId,
        BlockId: g.head.blockId + 1,
        Epoch: 1,
        PrevHash: g.head.hash,
        ProducerPubkey: encodePubkey(publicKeyOf(key)),
        Trxs: [],
        Sudo: false,
        TimeStamp: nowNs(),
      },
      key,
    );
    let round = 0;
    const misbehave = async () => {
      const i = round++;
      await mallory!.services.pubsub.publish(topic, new Uint8Array([0xff, 0x01, 0x02, i & 0xff]));
      await mallory!.services.pubsub.publish(
        topic,
        encodeTrxPackage({ ...forged, TrxId: crypto.randomUUID() }),
      );
      await mallory!.services.pubsub.publish(
        topic,
        encodeBlockPackage({ ...fakeBlock, TimeStamp: fakeBlock.TimeStamp + BigInt(i) }),
      );
    };
    for (let i = 0; i < 5; i++) await misbehave();
    await until(async () => {
      if ((a.net.peerScore(mallory!.peerId.toString()) ?? 0) < 0) return true;
      await misbehave();
      return false;
    }, "Mallory's score to fall");
    assert.ok((a.net.peerScore(b.peerId) ?? 0) >= 0, "an honest peer's score is not negative");
    assert.equal(g.head.blockId, 0, 'no forged block was applied');
    assert.equal(g.mempoolSize, 0, 'no forged trx was admitted');

    const id = await b.postContent(groupId, { type: 'Note', content: 'honest' });
    await until(
      () => b.store.getTrx(groupId, id) !== undefined && a.store.getTrx(groupId, id) !== undefined,
      'an honest post to commit on both',
    );
  });
});
