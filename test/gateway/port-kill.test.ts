// A port consumer is killed -9 during a stream of 5,000 commits: on restart it resumes after the
// last item it acknowledged, with no gap. The consumer (test/helpers/port-consumer.ts) records
// every item it is given and every ack in a file, fsynced, so what it saw survives the kill.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/node-process.ts';

const CONSUMER = fileURLToPath(new URL('../helpers/port-consumer.ts', import.meta.url));
const TOTAL = 5000;

interface Child {
  child: ChildProcess;
  /** Resolves to the first stdout line matching re (bounded). */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited: Promise<number | string | null>;
  stderr: () => string;
}

function run(args: string[]): Child {
  const child = spawn(process.execPath, [CONSUMER, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal);
      for (const w of waiters.splice(0)) w();
    });
  });
  return {
    child,
    exited,
    stderr: () => err,
    async line(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`consumer exited before printing ${re}:\n${err}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${re}:\n${err}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 1000));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}

interface Record {
  /** Trx ids in the order the consumer was given them. */
  ids: string[];
  /** Acknowledged trx ids, in order. */
  acks: string[];
  /** The last trx id the consumer was about to acknowledge (`ACKING`), if any. */
  acking: string | undefined;
}

/** Reads a record file; a last line cut by the kill (no newline) is not counted. */
function readRecord(file: string): Record {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const lines = text.split('\n').slice(0, -1);
  const rec: Record = { ids: [], acks: [], acking: undefined };
  for (const l of lines) {
    if (l.startsWith('ACK ')) rec.acks.push(l.slice(4));
    else if (l.startsWith('ACKING ')) rec.acking = l.slice(7);
    else rec.ids.push(l);
  }
  return rec;
}

async function until(fn: () => boolean, what: string, timeoutMs: number, stepMs = 10) {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

function readDb<T>(dir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dir, 'data', 'peer', 'rum.db'), { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe('bridge port: a consumer killed -9', () => {
  it(`resumes after its last ack with no gap (stream of ${TOTAL} commits)`, async (t) => {
    const dir = tempDir('rum-port-kill-');
    const rec1 = join(dir, 'run1.log');
    const rec2 = join(dir, 'run2.log');

    // Run 1: creates the group, posts and consumes; killed when about a third is recorded.
    const one = run([dir, 'post', rec1]);
    let groupId: string;
    try {
      groupId = (await one.line(/^GROUP (\S+)$/m))[1]!;
      await until(() => readRecord(rec1).ids.length >= TOTAL / 3, 'a third of the items', 120_000);
    } finally {
      one.child.kill('SIGKILL');
    }
    assert.equal(await one.exited, 'SIGKILL');
    const first = readRecord(rec1);
    assert.ok(first.acks.length > 0, 'run 1 acknowledged something');
    assert.ok(
      first.ids.length < TOTAL,
      `killed during the stream (run 1 recorded ${first.ids.length} of ${TOTAL})`,
    );

    // The cursor as the kill left it: the last ACK line, or (killed between ACKING and ACK) the
    // item it was acknowledging, never an item it was given and had not acknowledged.
    const cursor = readDb(dir, (db) =>
      db
        .prepare(
          `SELECT c.trx_id AS trxId FROM bridge_cursors k JOIN contents c
             ON c.group_id = k.group_id AND c.block_id = k.block_id AND c.position = k.position
           WHERE k.consumer = 'killtest' AND k.group_id = ?`,
        )
        .get(groupId),
    ) as { trxId: string } | undefined;
    assert.ok(cursor, 'the cursor is stored');
    const lastAckLine = first.acks[first.acks.length - 1]!;
    const ackedAt = first.ids.indexOf(cursor.trxId);
    assert.ok(
      cursor.trxId === lastAckLine || cursor.trxId === first.acking,
      `the stored cursor is the last acknowledged item (${cursor.trxId} at ${ackedAt})`,
    );

    // Run 2: posts nothing more, commits what was pending, and consumes to the end.
    const two = run([dir, 'resume', rec2, groupId]);
    let committed: number;
    try {
      committed = Number((await two.line(/^COMMITTED (\d+)$/m))[1]);
      const expected = committed - (ackedAt + 1);
      await until(
        () => readRecord(rec2).ids.length >= expected,
        `run 2 to consume ${expected} items`,
        120_000,
      );
      two.child.kill('SIGTERM');
      assert.equal(await two.exited, 0, two.stderr());
    } finally {
      two.child.kill('SIGKILL');
    }
    const second = readRecord(rec2);

    const chain = readDb(dir, (db) =>
      db
        .prepare('SELECT trx_id FROM contents WHERE group_id = ? ORDER BY block_id, position')
        .all(groupId)
        .map((r) => (r as { trx_id: string }).trx_id),
    );
    assert.equal(chain.length, committed);
    assert.ok(chain.length > first.ids.length, 'more was committed than run 1 consumed');
    t.diagnostic(
      `committed ${chain.length}; run 1 recorded ${first.ids.length}, acked ${ackedAt + 1}; run 2 recorded ${second.ids.length}`,
    );

    // Run 1 saw a prefix of the chain; run 2 starts right after the last ack, and together they
    // are the whole chain, each item once.
    assert.deepEqual(first.ids, chain.slice(0, first.ids.length), 'run 1: chain order, no gap');
    const acked = first.ids.slice(0, ackedAt + 1);
    assert.equal(second.ids[0], chain[ackedAt + 1], 'run 2 starts right after the last ack');
    assert.deepEqual([...acked, ...second.ids], chain, 'acked in run 1 + run 2 = the chain');
    const ackedSet = new Set(acked);
    assert.deepEqual(
      second.ids.filter((id) => ackedSet.has(id)),
      [],
      'nothing acknowledged in run 1 comes again',
    );
    // Its own acks went on to the end.
    assert.equal(second.acks[second.acks.length - 1], chain[chain.length - 1]);
  });
});
