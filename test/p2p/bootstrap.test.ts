// A bootstrap node and a full node as real processes over libp2p on loopback: the full node
// dials the bootstrap peer given by --peer, both keep stable peer ids across restarts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { api, startNodeProcess, tempDir, waitFor } from '../helpers/node-process.ts';

describe('bootstrap node', () => {
  it('accepts a full node given by --peer and keeps its peer id across restarts', async () => {
    const bdir = tempDir('rum-boot-');
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0'];
    let boot = await startNodeProcess({ dir: bdir, command: 'bootstrapnode', args: listen });
    const m = /bootstrap node (\S+) listening on (\S+)/.exec(boot.stdout);
    assert.ok(m, boot.stdout);
    const bootId = m[1]!;
    const bootAddr = m[2]!;
    assert.ok(bootAddr.endsWith(`/p2p/${bootId}`));
    const info = await api(boot.url, 'GET', '/api/v1/node');
    assert.equal(info.json.node_type, 'bootstrap');
    assert.equal(info.json.node_id, bootId);

    const full = await startNodeProcess({ args: [...listen, '--peer', bootAddr] });
    try {
      const node = await waitFor(async () => {
        const r = await api(full.url, 'GET', '/api/v1/node');
        const dht =
          ((r.json.peers ?? {}) as Record<string, string[]>)['/quorum/staten/kad/1.0.0'] ?? [];
        return r.json.node_status === 'NODE_ONLINE' && dht.includes(bootId) ? r.json : null;
      }, 'full node to reach the bootstrap node and identify it');
      assert.ok(
        node.peers['/ipfs/id/1.0.0'].includes(bootId),
        'bootstrap peer listed under identify too',
      );
      const net = await api(full.url, 'GET', '/api/v1/network');
      assert.ok(net.json.addrs.some((a: string) => a.startsWith('/ip4/127.0.0.1/tcp/')));
    } finally {
      assert.equal(await full.stop(), 0);
      assert.equal(await boot.stop(), 0);
    }
    boot = await startNodeProcess({ dir: bdir, command: 'bootstrapnode', args: listen });
    try {
      assert.equal((await api(boot.url, 'GET', '/api/v1/node')).json.node_id, bootId);
    } finally {
      await boot.stop();
    }
  });

  it('names a malformed --peer address', async () => {
    await assert.rejects(
      startNodeProcess({ args: ['--peer', '/ip4/127.0.0.1/tcp/1'] }),
      /--peer .*p2p/,
    );
  });
});
