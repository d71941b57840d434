// C is killed (-9); A and B post 500 trxs; the bootstrap node goes away; C restarts, finds A and
// B again from its peer cache, syncs, and converges on the same head.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { toHex } from '../../src/crypto/encoding.ts';
import type { RumNode } from '../../src/node.ts';
import { LOOPBACK, NET_TEST_LIMITS, startBootstrap, startMember, until } from '../helpers/net.ts';
import { api, type NodeProcess, startNodeProcess, tempDir } from '../helpers/node-process.ts';

describe('restart from the peer cache', () => {
  const nodes: RumNode[] = [];
  let c: NodeProcess | undefined;
  after(async () => {
    await c?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('reconnects without the bootstrap node and catches up', async () => {
    const boot = await startBootstrap();
    const a = (await startMember([boot.addr])).node;
    const b = (await startMember([boot.addr])).node;
    nodes.push(a, b);
    const { groupId, seed } = await a.createGroup({
      groupName: 'cache',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    await b.joinGroup(seed);

    const cdir = tempDir('rum-c-');
    const cfg = join(cdir, 'rum.json');
    writeFileSync(cfg, JSON.stringify({ limits: NET_TEST_LIMITS }));
    const cArgs = ['--listen', LOOPBACK, '--peer', boot.addr, '--config', cfg];
    c = await startNodeProcess({ dir: cdir, args: cArgs });
    const joined = await api(c.url, 'POST', '/api/v2/group/join', { seed });
    assert.equal(joined.status, 200, joined.text);
    await a.postContent(groupId, { type: 'Note', content: 'before the crash' });
    await until(
      async () => (await api(c!.url, 'GET', `/api/v1/group/${groupId}`)).json.highest_height >= 1,
      'C to sync block 1',
    );
    await until(async () => {
      const peers = (await api(c!.url, 'GET', '/api/v1/node')).json.peers as Record<
        string,
        string[]
      >;
      const ids = new Set(Object.values(peers).flat());
      return ids.has(a.peerId) && ids.has(b.peerId);
    }, 'C to know A and B');

    assert.equal(await c.stop('SIGKILL'), 'SIGKILL');
    await a.postContentBatch(
      groupId,
      Array.from({ length: 250 }, (_, i) => ({ type: 'Note', content: `A ${i}` })),
    );
    for (let i = 0; i < 250; i += 50) {
      await b.postContentBatch(
        groupId,
        Array.from({ length: 50 }, (_, j) => ({ type: 'Note', content: `B ${i + j}` })),
      );
    }
    await until(
      () => b.group(groupId).mempoolSize === 0 && a.group(groupId).mempoolSize === 0,
      'A and B to commit 500 trxs',
      60_000,
    );
    await boot.host.stop();

    c = await startNodeProcess({ dir: cdir, args: cArgs });
    const head = a.group(groupId).head;
    await until(
      async () => {
        const g = (await api(c!.url, 'GET', `/api/v1/group/${groupId}`)).json;
        return g.highest_height === head.blockId && g.highest_block_id === toHex(head.hash);
      },
      'C to converge on the head',
      60_000,
    );
    assert.equal(toHex(b.group(groupId).head.hash), toHex(head.hash));
    const posts = (await api(c.url, 'GET', `/app/api/v1/group/${groupId}/content?num=1000`)).json;
    assert.equal(posts.length, 501);
  });
});
