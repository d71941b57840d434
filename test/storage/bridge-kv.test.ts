// The bridges' key-value store: an unchanged value written again writes nothing (no WAL frame,
// so no fsync), a changed one is written, and a plain set clears an earlier expiry.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { BridgeKvStore } from '../../src/storage/bridge-kv.ts';
import { openDatabase } from '../../src/storage/db.ts';

it('bridge kv: writing a value again unchanged writes no page; a change and an expiry do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rum-kv-'));
  const file = join(dir, 'node.db');
  const db = openDatabase(file);
  try {
    const kv = new BridgeKvStore(db, 'test');
    const wal = () => statSync(`${file}-wal`).size;
    kv.set('a', { v: 1 });
    const after = wal();
    for (let i = 0; i < 20; i++) kv.set('a', { v: 1 });
    assert.equal(wal(), after, 'an unchanged value was written again');
    kv.set('a', { v: 2 });
    assert.ok(wal() > after, 'a changed value was not written');
    assert.deepEqual(kv.get('a'), { v: 2 });

    kv.set('b', 'x', 20);
    kv.set('b', 'x');
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(kv.get('b'), 'x', 'a plain set keeps the value for good');
    kv.set('c', 'y', 20);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(kv.get('c'), undefined);
  } finally {
    db.$client.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
