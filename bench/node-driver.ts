/**
 * A node process for benchmarks that post through the node's batch path: it starts exactly as
 * `rum fullnode FLAGS` does (the same config loading and start function, its own process), and
 * takes one command over IPC, {cmd: 'post', groupId, count, batch, tag}: post `count` Notes in
 * batches through RumNode.postContentBatch, answering {posted} when all are admitted.
 */
import pino from 'pino';
import { activityPubBridge } from '../bridges/activitypub/index.ts';
import { startFullnode } from '../src/cli/fullnode.ts';
import { loadConfig } from '../src/config/load.ts';

const loaded = loadConfig(process.argv.slice(3), process.env);
if (loaded.help) process.exit(2);
const { config } = loaded;
const running = await startFullnode(config, pino({ level: config.logLevel }), undefined, [
  activityPubBridge(),
]);
process.stdout.write(
  `rum: API listening on ${running.url}\nrum: gateway listening on ${running.gateway.url}\n`,
);

process.on(
  'message',
  async (m: { cmd: string; groupId: string; count: number; batch: number; tag: string }) => {
    if (m.cmd !== 'post') return;
    for (let i = 0; i < m.count; i += m.batch) {
      const notes = Array.from({ length: Math.min(m.batch, m.count - i) }, (_, j) => ({
        type: 'Note',
        content: `${m.tag} ${i + j}`,
      }));
      await running.node.postContentBatch(m.groupId, notes);
      await new Promise((r) => setImmediate(r));
    }
    process.send?.({ posted: m.count });
  },
);
process.once('SIGTERM', async () => {
  await running.stop();
  process.exit(0);
});
