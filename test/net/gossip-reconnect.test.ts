// A peer whose connection is replaced (a second one opened, the first closed, as DCUtR and the
// relay upgrade do) still gets gossip: the node hands gossipsub the remaining connection, on which
// gossipsub would otherwise never open a stream again.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { GossipSub } from '@libp2p/gossipsub';
import type { RumNode } from '../../src/node.ts';
import { startMember, until } from '../helpers/net.ts';

describe('gossip across a replaced connection', () => {
  const nodes: RumNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('delivers what is published after the first connection closed', async () => {
    const x = (await startMember([])).node;
    const y = (await startMember([])).node;
    nodes.push(x, y);
    const gx = x.p2p.services.pubsub as GossipSub;
    const gy = y.p2p.services.pubsub as GossipSub;
    const topic = 'probe';
    gx.subscribe(topic);
    gy.subscribe(topic);
    const yAddr = y.p2p.getMultiaddrs()[0]!;
    const first = await x.p2p.dial(yAddr);
    await until(
      () => gx.getSubscribers(topic).some((p) => p.equals(y.p2p.peerId)),
      'y subscribed, as x sees it',
    );
    // A second connection, then the first goes away with the streams gossipsub opened on it.
    const second = await x.p2p.dial(yAddr, { force: true });
    assert.notEqual(second.id, first.id);
    // Let libp2p identify the second connection and tell gossipsub about it (which then opens no
    // stream, having one on the first) before the first closes.
    await new Promise((r) => setTimeout(r, 1000));
    await first.close();
    assert.equal(x.p2p.getConnections(y.p2p.peerId).length, 1);

    const got: string[] = [];
    gy.addEventListener('message', (evt) => {
      if (evt.detail.topic === topic) got.push(Buffer.from(evt.detail.data).toString());
    });
    let n = 0;
    await until(
      async () => {
        await gx.publish(topic, Buffer.from(`after ${n++}`));
        return got.length > 0;
      },
      'a message from x to reach y over the second connection',
      10_000,
      200,
    );
    assert.match(got[0]!, /^after \d+$/);
  });
});
