// Sync: a node that joins late catches up over /rum/sync/1.0.0 in several answers, an answer
// that would pass 8 MiB is cut short (the node asks again from there), and the group shows
// SYNCING with progress meanwhile.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { GossipSub } from '@libp2p/gossipsub';
import type { Libp2p } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import type { RumNode } from '../../src/node.ts';
import { createP2PHost } from '../../src/p2p/host.ts';
import { decodeMessage, encodeMessage } from '../../src/chain/protobuf.ts';
import { SYNC_PROTOCOL, SyncHeaderDesc, SyncRequestDesc } from '../../src/p2p/sync.ts';
import { userChannel } from '../../src/p2p/wire.ts';
import { LOOPBACK, NET_TEST_LIMITS, startMember, until } from '../helpers/net.ts';

describe('block sync', () => {
  const nodes: RumNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('catches up more than one answer of big blocks and reports SYNCING on the way', async () => {
    const a = (await startMember([])).node;
    nodes.push(a);
    const { groupId, seed } = await a.createGroup({
      groupName: 'sync',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    const big = 'x'.repeat(100 * 1024);
    for (let i = 0; i < 100; i += 10) {
      await a.postContentBatch(
        groupId,
        Array.from({ length: 10 }, (_, j) => ({ type: 'Note', content: `${i + j} ${big}` })),
      );
    }
    await until(() => a.group(groupId).mempoolSize === 0, 'A to commit ~10 MB of posts');
    const head = a.group(groupId).head;
    assert.ok(head.blockId >= 11, 'more than 8 MiB of blocks');

    // Small batches so that the SYNCING state lasts long enough to be seen.
    const { node: d } = await startMember([a.p2p.getMultiaddrs()[0]!.toString()], undefined, {
      ...NET_TEST_LIMITS,
      syncBatchBlocks: 2,
    });
    nodes.push(d);
    const g = await d.joinGroup(seed);
    const statuses = new Set<string>();
    let sawProgress = false;
    await until(
      () => {
        statuses.add(g.status);
        if (g.status === 'SYNCING' && d.net.bestKnownHeight(groupId) > g.head.blockId)
          sawProgress = true;
        return g.head.blockId === head.blockId;
      },
      'D to reach the head',
      60_000,
      5,
    );
    assert.ok(statuses.has('SYNCING'), 'SYNCING while behind');
    assert.ok(sawProgress, 'progress shows a best known height above the height reached');
    await until(() => g.status === 'IDLE', 'IDLE once caught up');
    assert.equal(Buffer.from(g.head.hash).toString('hex'), Buffer.from(head.hash).toString('hex'));
    assert.equal(
      d.store.queryContent({
        groupId,
        num: 1000,
        reverse: false,
        includeStartTrx: false,
        senders: [],
      }).length,
      100,
    );

    // With the default batch of 100 blocks, the first answer must stop at 8 MiB.
    const e = (await startMember([a.p2p.getMultiaddrs()[0]!.toString()])).node;
    nodes.push(e);
    const ge = await e.joinGroup(seed);
    await until(
      () => ge.head.blockId === head.blockId,
      'E to reach the head through cut answers',
      60_000,
    );
  });
});

describe('sync with a peer that vanishes mid-answer', () => {
  const nodes: RumNode[] = [];
  const hosts: Libp2p[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(hosts.map((h) => h.stop()));
  });

  it('moves on to another peer and still reaches the head', async () => {
    const a = (await startMember([])).node;
    nodes.push(a);
    const aAddr = a.p2p.getMultiaddrs()[0]!.toString();
    const { groupId, seed } = await a.createGroup({
      groupName: 'vanish',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    for (let i = 0; i < 20; i++) {
      await a.postContent(groupId, { type: 'Note', content: `n${i}` });
      await until(() => a.group(groupId).mempoolSize === 0, 'commit');
    }
    const head = a.group(groupId).head.blockId;
    assert.ok(head >= 20);

    // Mallory is in the group's topic and answers sync requests with a header, then drops the stream.
    const mallory = await createP2PHost({
      nodeKey: generatePrivateKey(),
      listen: [LOOPBACK],
      bootstrap: [aAddr],
      networkName: 'staten',
      role: 'full',
    });
    hosts.push(mallory);
    let dropped = 0;
    await mallory.start();
    await mallory.handle(SYNC_PROTOCOL, async (stream) => {
      dropped++;
      const lp = lpStream(stream);
      const req = decodeMessage<{ GroupId: string; FromBlock: number }>(
        SyncRequestDesc,
        (await lp.read()).subarray(),
      );
      // A well-formed header promising five blocks, then nothing: the peer is gone.
      await lp.write(
        encodeMessage(SyncHeaderDesc, {
          GroupId: req.GroupId,
          FromBlock: req.FromBlock,
          Count: 5,
          TopBlock: 1000,
        }),
      );
      stream.abort(new Error('gone'));
    });
    (mallory as unknown as Libp2p<{ pubsub: GossipSub }>).services.pubsub.subscribe(
      userChannel(groupId),
    );

    const { node: d } = await startMember(
      [aAddr, mallory.getMultiaddrs()[0]!.toString()],
      undefined,
      {
        ...NET_TEST_LIMITS,
        syncBatchBlocks: 1,
      },
    );
    nodes.push(d);
    await until(
      () =>
        d.p2p.getConnections(mallory.peerId).length > 0 &&
        d.p2p.getConnections(a.p2p.peerId).length > 0,
      'D connected to both',
    );
    const g = await d.joinGroup(seed);
    await until(() => g.head.blockId === head, 'D to reach the head', 60_000);
    assert.ok(dropped > 0, 'the vanishing peer was asked and failed');
  });
});
