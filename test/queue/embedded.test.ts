// The embedded delivery queue: the shared conformance suite, then what only this backend
// promises (leases taken back from a dead process, done jobs pruned, jobs another connection
// added, fairness over a deep backlog).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EmbeddedQueue, type EmbeddedQueueInit } from '../../src/queue/embedded.ts';
import { RetryAfterError } from '../../src/queue/types.ts';
import { type Db, openDatabase } from '../../src/storage/db.ts';
import { queueConformance, sleep, waitFor } from './conformance.ts';

interface Store {
  file: string;
  open(init: EmbeddedQueueInit): { db: Db; queue: EmbeddedQueue };
  cleanup(): Promise<void>;
}

/** A temporary database file; every queue and connection opened on it is closed by cleanup. */
function tempStore(): Store {
  const dir = mkdtempSync(join(tmpdir(), 'rum-queue-'));
  const file = join(dir, 'node.db');
  const opened: { db: Db; queue: EmbeddedQueue }[] = [];
  return {
    file,
    open(init) {
      const db = openDatabase(file);
      const queue = new EmbeddedQueue(db, init);
      opened.push({ db, queue });
      return { db, queue };
    },
    async cleanup() {
      for (const { queue } of opened) await queue.close();
      for (const { db } of opened) db.$client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

queueConformance('embedded', async (options) => {
  const store = tempStore();
  const { queue } = store.open(options);
  return {
    queue,
    reopen: async () => store.open(options).queue,
    cleanup: () => store.cleanup(),
  };
});

describe('embedded delivery queue', () => {
  it('takes back a job whose lease ran out (its process died) and runs it again', async () => {
    const store = tempStore();
    try {
      const { db, queue } = store.open({ leaseMs: 300, pollMs: 50 });
      const seen: { key: string; attempt: number; at: number }[] = [];
      queue.handle('t', async (job) => {
        seen.push({ key: job.key, attempt: job.attempt, at: Date.now() });
      });
      const gone = await queue.enqueue({ key: 'gone', kind: 't', destination: 'd', payload: null });
      const live = await queue.enqueue({ key: 'live', kind: 't', destination: 'd', payload: null });
      // As a process killed in the middle of two attempts leaves them: active, one lease over.
      const now = Date.now();
      const lease = db.$client.prepare(
        "UPDATE delivery_jobs SET status = 'active', attempts = 1, lease_until = ? WHERE id = ?",
      );
      lease.run(now - 1, Number(gone.id));
      lease.run(now + 400, Number(live.id));
      await queue.start();
      await waitFor('both', () => seen.length === 2);
      const byKey = new Map(seen.map((s) => [s.key, s]));
      assert.ok(byKey.get('live')!.at >= now + 400, 'a job was taken while its lease held');
      assert.deepEqual(
        seen.map((s) => s.attempt),
        [2, 2],
      );
      await waitFor('both done', async () => (await queue.counts()).done === 2);
    } finally {
      await store.cleanup();
    }
  });

  it('renews the lease of a long attempt so it is not taken back', async () => {
    const store = tempStore();
    try {
      const { queue } = store.open({ leaseMs: 150, pollMs: 30 });
      let runs = 0;
      queue.handle('t', async () => {
        runs++;
        await sleep(600);
      });
      await queue.start();
      await queue.enqueue({ key: 'long', kind: 't', destination: 'd', payload: null });
      await waitFor('done', async () => (await queue.counts()).done === 1);
      assert.equal(runs, 1);
    } finally {
      await store.cleanup();
    }
  });

  it('prunes done jobs after their retention, which frees their key', async () => {
    const store = tempStore();
    try {
      const { queue } = store.open({ doneRetentionMs: 100, pollMs: 30 });
      let runs = 0;
      queue.handle('t', async () => {
        runs++;
      });
      await queue.start();
      const first = await queue.enqueue({ key: 'k', kind: 't', destination: 'd', payload: null });
      await waitFor('done', async () => (await queue.counts()).done === 1);
      await waitFor('pruned', async () => (await queue.counts()).done === 0);
      const again = await queue.enqueue({ key: 'k', kind: 't', destination: 'd', payload: null });
      assert.equal(again.added, true);
      assert.notEqual(again.id, first.id);
      await waitFor('run again', () => runs === 2);
    } finally {
      await store.cleanup();
    }
  });

  it('runs jobs another connection added', async () => {
    const store = tempStore();
    try {
      const { queue } = store.open({ pollMs: 50 });
      const other = store.open({}).queue;
      const keys: string[] = [];
      queue.handle('t', async (job) => {
        keys.push(job.key);
      });
      await queue.start();
      await other.enqueue({ key: 'elsewhere', kind: 't', destination: 'd', payload: null });
      await waitFor('the job', () => keys.length === 1);
    } finally {
      await store.cleanup();
    }
  });

  it('fails a job of a kind nobody handles, after its attempts, saying why', async () => {
    const store = tempStore();
    try {
      const { queue } = store.open({ maxAttempts: 2, backoffBaseMs: 5, backoffMaxMs: 10 });
      await queue.start();
      await queue.enqueue({ key: 'k', kind: 'nobody', destination: 'd', payload: null });
      await waitFor('failed', async () => (await queue.counts()).failed === 1);
      const [job] = await queue.list('failed', 1);
      assert.match(job!.lastError ?? '', /no handler for deliveries of kind nobody/);
    } finally {
      await store.cleanup();
    }
  });

  it('refuses a bad job alone, not the others added in the same tick', async () => {
    const store = tempStore();
    try {
      const { queue } = store.open({});
      const ok = { key: 'ok', kind: 't', destination: 'd', payload: 1 };
      const results = await Promise.allSettled([
        queue.enqueue(ok),
        queue.enqueue({ ...ok, key: 'big', payload: 1n }),
        queue.enqueue({ ...ok, key: 'fn', payload: () => {} }),
        queue.enqueue({ ...ok, key: '' }),
        queue.enqueue({ ...ok, key: 'nan', delayMs: Number.NaN }),
        queue.enqueue({ ...ok, key: 'ok2' }),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'rejected', 'rejected', 'rejected', 'fulfilled'],
      );
      assert.equal((await queue.counts()).pending, 2);
    } finally {
      await store.cleanup();
    }
  });

  it('keeps a long error message short, and a bad Retry-After falls back to the backoff', async () => {
    const store = tempStore();
    try {
      const { queue } = store.open({ maxAttempts: 2, backoffBaseMs: 5, backoffMaxMs: 10 });
      queue.handle('t', async (job) => {
        if (job.attempt === 1) throw new RetryAfterError('later', Number.NaN);
        throw new Error('x'.repeat(100_000));
      });
      await queue.start();
      await queue.enqueue({ key: 'k', kind: 't', destination: 'd', payload: null });
      await waitFor('failed', async () => (await queue.counts()).failed === 1);
      const [job] = await queue.list('failed', 1);
      assert.ok(job!.lastError!.length <= 2001);
    } finally {
      await store.cleanup();
    }
  });
});
