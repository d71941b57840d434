// The Nostr bridge as `rum fullnode` wires it (nostrBridge({ config }), no database handed in):
// it uses the node's own connection through the port, so several client events committed in
// one block are all served. With a second connection of its own, the relay's writes inside the
// port's transaction waited on the node's write lock from the same thread: only the first event
// of a block was stored.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { Relay } from 'nostr-tools/relay';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';

let node: RumNode;
let gateway: Gateway;
let relay: Relay;

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0 }));
  await node.start();
  gateway = await startGateway(node, [nostrBridge({ config: node.config })]);
  relay = await Relay.connect(gateway.url.replace(/^http/, 'ws'));
});

after(async () => {
  relay?.close();
  await gateway.stop();
  await node.stop();
});

it('serves every client event of a block, on the node connection the port gives', async () => {
  const { groupId } = await node.createGroup({
    groupName: 'Wiring',
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_timeline',
  });
  gateway.exposures.put(groupId, { handle: 'wiring', nostr: true, activitypub: false });
  const sk = generateSecretKey();
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 5; i++) {
    const e = finalizeEvent(
      { kind: 1, created_at: now - 10 + i, tags: [['h', groupId]], content: `post ${i}` },
      sk,
    );
    await relay.publish(e);
  }
  await node.group(groupId).produce();
  const read = () =>
    new Promise<string[]>((resolve) => {
      const got: string[] = [];
      const sub = relay.subscribe([{ kinds: [1], '#h': [groupId], limit: 20 }], {
        onevent: (e) => got.push(e.content),
        oneose: () => {
          sub.close();
          resolve(got);
        },
      });
    });
  const got = await until(async () => {
    const g = await read();
    return g.length === 5 ? g : undefined;
  }, 'all five events served');
  assert.deepEqual(got, ['post 4', 'post 3', 'post 2', 'post 1', 'post 0']);
});
