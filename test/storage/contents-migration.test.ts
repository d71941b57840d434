// Migration 0007 moves the content index off the random trx ids: a content row is found through
// its trx (block and position). A database written before it must keep every post readable by
// trx id, and deletes must go on working, on old rows and new ones.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { RumNode } from '../../src/node.ts';
import { MIGRATIONS_DIR } from '../../src/storage/db.ts';
import { openTempNode } from '../helpers/temp-node.ts';

async function post(node: RumNode, groupId: string, payload: unknown): Promise<string> {
  const id = await node.postContent(groupId, payload);
  await node.group(groupId).produce();
  return id;
}

/** The Notes a reader sees (the Delete activities are content rows of their own). */
function visible(node: RumNode, groupId: string): string[] {
  return node.store
    .queryContent({ groupId, num: 100, reverse: false, includeStartTrx: false, senders: [] })
    .filter((r) => r.objectType === 'Note')
    .map((r) => r.trxId);
}

describe('contents found through their trx (migration 0007)', () => {
  it('backfills positions of a database from before it; lookups and deletes work on old and new rows', async () => {
    const first = await openTempNode();
    const dir = first.dir;
    const { groupId } = await first.node.createGroup({
      groupName: 'migrated',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    const a = await post(first.node, groupId, { type: 'Note', content: 'a' });
    const b = await post(first.node, groupId, { type: 'Note', content: 'b' });
    const c = await post(first.node, groupId, { type: 'Note', content: 'c' });
    await post(first.node, groupId, { type: 'Delete', object: { type: 'Note', id: a } });
    assert.deepEqual(visible(first.node, groupId), [b, c]);
    await first.node.stop();

    // Back to the schema of migration 0006: no position column, the old index on trx ids, and
    // none of the tables that later migrations create.
    const file = join(dir, 'data', 'peer', 'rum.db');
    const raw = new Database(file);
    const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'));
    const later = (journal.entries as { idx: number; when: number; tag: string }[]).filter(
      (e) => e.idx >= 7,
    );
    for (const e of later.filter((x) => x.idx > 7)) {
      const sql = readFileSync(join(MIGRATIONS_DIR, `${e.tag}.sql`), 'utf8');
      for (const m of sql.matchAll(/CREATE TABLE `(\w+)`/g)) raw.exec(`DROP TABLE ${m[1]}`);
    }
    raw.exec(`
      DROP INDEX contents_group_block_position;
      ALTER TABLE contents DROP COLUMN position;
      CREATE UNIQUE INDEX contents_group_trx ON contents (group_id, trx_id);
      DELETE FROM __drizzle_migrations WHERE created_at >= ${later[0]!.when};
    `);
    raw.close();

    const again = await openTempNode({}, dir);
    const node = again.node;
    try {
      const db = node.store.db.$client;
      const missing = db.prepare('SELECT count(*) AS n FROM contents WHERE position IS NULL').get();
      assert.deepEqual(missing, { n: 0 });
      const mismatched = db
        .prepare(
          `SELECT count(*) AS n FROM contents c JOIN trxs t
             ON t.group_id = c.group_id AND t.trx_id = c.trx_id
           WHERE t.block_id != c.block_id OR t.position != c.position`,
        )
        .get();
      assert.deepEqual(mismatched, { n: 0 });
      const indexes = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'contents'")
        .all()
        .map((r) => (r as { name: string }).name);
      assert.ok(indexes.includes('contents_group_block_position'));
      assert.ok(!indexes.includes('contents_group_trx'));

      // Old rows: found by trx id, the deleted one stays deleted.
      assert.equal(node.store.getContent(groupId, b)?.trxId, b);
      assert.equal(node.store.getContent(groupId, a)?.deleted, true);
      assert.equal(
        node.store.getContent(groupId, '00000000-0000-4000-8000-000000000000'),
        undefined,
      );
      await node.start();
      // A delete of an old row and a new post and its delete, after the migration.
      await post(node, groupId, { type: 'Delete', object: { type: 'Note', id: b } });
      const d = await post(node, groupId, { type: 'Note', content: 'd' });
      assert.deepEqual(visible(node, groupId), [c, d]);
      await post(node, groupId, { type: 'Delete', object: { type: 'Note', id: d } });
      assert.deepEqual(visible(node, groupId), [c]);
      // Paging from a trx id goes through the same lookup.
      const page = node.store.queryContent({
        groupId,
        num: 10,
        startTrx: c,
        reverse: true,
        includeStartTrx: true,
        senders: [],
      });
      assert.deepEqual(
        page.map((r) => r.trxId),
        [c],
      );
    } finally {
      await node.stop();
    }
  });
});
