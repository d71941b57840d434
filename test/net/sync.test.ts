// Sync: a node that joins late catches up over /rum/sync/1.0.0 in several answers, an answer
// that would pass 8 MiB is cut short (the node asks again from there), and the group shows
// SYNCING with progress meanwhile.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RumNode } from '../../src/node.ts';
import { LOOPBACK, NET_TEST_LIMITS, startMember, until } from '../helpers/net.ts';
import { openTempNode } from '../helpers/temp-node.ts';

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
    const { node: d } = await openTempNode({
      listen: [LOOPBACK],
      peers: [a.p2p.getMultiaddrs()[0]!.toString()],
      limits: { ...NET_TEST_LIMITS, syncBatchBlocks: 2 },
    });
    nodes.push(d);
    await d.start();
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
