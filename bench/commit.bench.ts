/**
 * core.commit: one node, one public group; N Notes built (ActivityStreams JSON), encrypted,
 * signed, admitted to the persistent mempool, ordered into blocks, validated, committed and
 * indexed, through the node's internal API, timed until the last trx is committed.
 * Run under --dbsync full (the default: `core.commit`) and normal (`core.commit.dbsync-normal`).
 * Baseline, same process: the bare per-trx crypto (encrypt + sign + verify) with no storage.
 */
import { once } from 'node:events';
import { TrxType } from '../src/chain/pb.ts';
import { verifyTrxSignature } from '../src/chain/trx.ts';
import { utf8Bytes } from '../src/crypto/encoding.ts';
import { report, withTempNode } from './lib.ts';

const N = Number(process.env.BENCH_TRX ?? 20_000);
const BATCH = 200;

for (const dbSync of ['full', 'normal'] as const) {
  await withTempNode(
    async (node) => {
      const { groupId } = await node.createGroup({
        groupName: 'bench',
        consensusType: 'poa',
        encryptionType: 'public',
        appKey: 'group_bbs',
      });
      const g = node.group(groupId);

      // Baseline: what the crypto alone costs per trx on this machine.
      const m = Math.min(N, 5000);
      const t0 = performance.now();
      for (let i = 0; i < m; i++) {
        const trx = await g.buildTrx(
          TrxType.POST,
          utf8Bytes(`{"content":"note ${i}","type":"Note"}`),
        );
        verifyTrxSignature(trx);
      }
      const baseline = (m * 1000) / (performance.now() - t0);

      let committed = 0;
      node.events.on('committed', (e) => {
        committed += e.trxs.length;
      });
      const start = performance.now();
      for (let i = 0; i < N; i += BATCH) {
        const batch = [];
        for (let j = i; j < Math.min(N, i + BATCH); j++) {
          batch.push({
            type: 'Note',
            content: `note number ${j} of the commit benchmark`,
            name: `post ${j}`,
          });
        }
        await node.postContentBatch(groupId, batch);
        // Let the producer run between batches, as an API server's event loop would.
        await new Promise((r) => setImmediate(r));
      }
      while (committed < N) await once(node.events, 'committed');
      const seconds = (performance.now() - start) / 1000;
      const rows = node.store.queryContent({
        groupId,
        num: 1,
        reverse: true,
        includeStartTrx: false,
        senders: [],
      });
      if (rows.length !== 1 || g.head.blockId < 1) throw new Error('benchmark did not commit');
      report({
        name: dbSync === 'full' ? 'core.commit' : 'core.commit.dbsync-normal',
        dbsync: dbSync,
        value: N / seconds,
        unit: 'trx/s',
        baseline,
        target: 2000,
        trx: N,
        blocks: g.head.blockId,
      });
    },
    { dbSync },
  );
}
