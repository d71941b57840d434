// Crash safety: kill -9 a node while it is taking 1,000 posts. After a restart, every trx whose
// POST returned a trx_id is committed (or pending, then committed), and the chain validates
// from genesis, block by block.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBlockWithParent, checkGenesisBlock } from '../../src/chain/block.ts';
import { type Block, decodeBlock, encodeBlock } from '../../src/chain/pb.ts';
import type { Check } from '../../src/chain/trx.ts';
import {
  api,
  createPublicGroup,
  startNodeProcess,
  tempDir,
  waitFor,
} from '../helpers/node-process.ts';
import { blockFromJson } from '../helpers/block-json.ts';

describe('crash safety', () => {
  it('keeps every acknowledged trx across kill -9', async () => {
    const dir = tempDir('rum-crash-');
    const first = await startNodeProcess({ dir });
    const groupId = (await createPublicGroup(first.url, 'crashtest')).group_id;
    const acked: string[] = [];
    let sent = 0;
    let killed = false;
    const worker = async () => {
      while (sent < 1000 && !killed) {
        const i = sent++;
        try {
          const res = await api(first.url, 'POST', `/api/v1/group/${groupId}/content`, {
            data: { type: 'Note', content: `post ${i}` },
          });
          if (res.status === 200) acked.push(res.json.trx_id);
        } catch {
          // the connection died with the process: this post was never acknowledged
        }
        if (!killed && acked.length >= 400) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await first.stop();
    assert.ok(killed, 'the node was killed mid-run');
    assert.ok(acked.length >= 400);

    const second = await startNodeProcess({ dir });
    try {
      await waitFor(
        async () => {
          const g = await api(second.url, 'GET', `/api/v1/group/${groupId}`);
          return g.json.mempool_size === 0 ? g : null;
        },
        'mempool to drain after restart',
        300,
      );
      for (const id of acked) {
        const t = await api(second.url, 'GET', `/api/v1/trx/${groupId}/${id}`);
        assert.equal(t.json.TrxId, id, `acknowledged trx ${id} is committed`);
      }
      const top = (await api(second.url, 'GET', `/api/v1/group/${groupId}`)).json
        .highest_height as number;
      let parent: Block | null = null;
      let trxCount = 0;
      for (let h = 0; h <= top; h++) {
        const json = (await api(second.url, 'GET', `/api/v1/block/${groupId}/${h}`)).json;
        const block = decodeBlock(encodeBlock(blockFromJson(json)));
        const check: Check = parent
          ? checkBlockWithParent(block, parent)
          : checkGenesisBlock(block);
        assert.deepEqual(check, { ok: true }, `block ${h}`);
        trxCount += block.Trxs.length;
        parent = block;
      }
      assert.ok(trxCount >= acked.length);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });
});
