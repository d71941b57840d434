/**
 * A bridge port consumer in a process of its own, for test/gateway/port-kill.test.ts: opens the
 * node under DIR (as openTempNode does), starts the gateway and consumes the committed stream of
 * consumer `killtest` (from genesis, network nostr). For each batch of items it appends their trx
 * ids to RECORD (one a line, fsynced), then `ACKING <trx id>` of the last, acknowledges it, then
 * appends `ACK <trx id>` (each line fsynced).
 *
 *   port-consumer.ts DIR post RECORD            creates a group, prints `GROUP <id>`, then posts
 *                                               POSTS (default 5,000) Notes in batches of 100,
 *                                               and pauses CONSUME_PAUSE_MS (default 100) between
 *                                               recording a batch and acknowledging it
 *   port-consumer.ts DIR resume RECORD GROUP    posts nothing: commits what is still pending, then
 *                                               prints `COMMITTED <n>` (content rows of the group)
 *
 * SIGTERM closes the stream, the gateway and the node, and exits 0.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { startGateway } from '../../src/gateway/gateway.ts';
import { openTempNode } from './temp-node.ts';

const [dir, mode, record, given] = process.argv.slice(2);
if (!dir || (mode !== 'post' && mode !== 'resume') || !record || (mode === 'resume' && !given)) {
  process.stderr.write('usage: port-consumer.ts DIR post|resume RECORD [GROUP]\n');
  process.exit(2);
}
const POSTS = Number(process.env.POSTS ?? 5000);
const BATCH = 100;
/** A pause before each ack while posting (run 1), so that commits run ahead of the consumer. */
const PAUSE_MS = mode === 'post' ? Number(process.env.CONSUME_PAUSE_MS ?? 100) : 0;

const { node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }, dir);
const gateway = await startGateway(node);
const groupId =
  given ??
  (
    await node.createGroup({
      groupName: 'killtest',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    })
  ).groupId;
process.stdout.write(`GROUP ${groupId}\n`);

const stream = gateway.port.stream({
  consumer: 'killtest',
  groupId,
  network: 'nostr',
  from: 'genesis',
});
const fd = openSync(record, 'a');
const append = (text: string) => {
  writeSync(fd, text);
  fsyncSync(fd);
};

const consuming = (async () => {
  for (;;) {
    const items = await stream.next(50);
    if (items.length === 0) return;
    append(items.map((it) => `${it.trxId}\n`).join(''));
    // The work of a batch (deliveries) between receiving it and acknowledging it: the commits
    // run ahead of the consumer, and a kill mostly finds a batch received but not acknowledged.
    if (PAUSE_MS > 0) await new Promise((r) => setTimeout(r, PAUSE_MS));
    const last = items[items.length - 1]!;
    // Said before and after: a kill between the two leaves the cursor at either ack.
    append(`ACKING ${last.trxId}\n`);
    stream.ack(last);
    append(`ACK ${last.trxId}\n`);
  }
})();

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  stream.close();
  void (async () => {
    await consuming;
    closeSync(fd);
    await gateway.stop();
    await node.stop();
    process.exit(0);
  })();
});

const g = node.group(groupId);
if (mode === 'post') {
  for (let sent = 0; sent < POSTS && !stopping; sent += BATCH) {
    const n = Math.min(BATCH, POSTS - sent);
    await node.postContentBatch(
      groupId,
      Array.from({ length: n }, (_, i) => ({ type: 'Note', content: `note ${sent + i}` })),
    );
    await g.produce();
  }
  process.stdout.write('POSTED\n');
} else {
  // What the killed run had admitted but not committed is in the persistent mempool.
  while (g.mempoolSize > 0 && (await g.produce())) {}
  const { n } = node.store.db.$client
    .prepare('SELECT count(*) AS n FROM contents WHERE group_id = ?')
    .get(groupId) as { n: number };
  process.stdout.write(`COMMITTED ${n}\n`);
}
