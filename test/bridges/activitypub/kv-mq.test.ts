// Fedify's KvStore on the bridge's kv (the node's SQLite) and its MessageQueue on the delivery
// queue: the KvStore contract as Fedify uses it (null stored, TTL, prefix listing without false
// matches, compare-and-set), and how Fedify's queue messages become delivery jobs (idempotency
// keys, destinations, delays, no private keys in payloads, refused inboxes, permanent 4xx).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KvKey } from '@fedify/fedify';
import { Temporal } from '@js-temporal/polyfill';
import { PortKvStore } from '../../../bridges/activitypub/kv.ts';
import { DeliveryMessageQueue, fedifyJobHandler, jobOf } from '../../../bridges/activitypub/mq.ts';
import { type EnqueueInput, PermanentDeliveryError } from '../../../bridges/port.ts';
import type { DeliveryQueue } from '../../../src/queue/types.ts';
import type { RumNode } from '../../../src/node.ts';
import { BridgeKvStore } from '../../../src/storage/bridge-kv.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

let node: RumNode;
let kv: PortKvStore;

before(async () => {
  ({ node } = await openTempNode());
  kv = new PortKvStore(new BridgeKvStore(node.store.db, 'activitypub'));
});

after(async () => {
  await node.stop();
});

async function listed(prefix?: KvKey) {
  const out: [KvKey, unknown][] = [];
  for await (const e of kv.list(prefix)) out.push([e.key, e.value]);
  return out;
}

describe('KvStore', () => {
  it('gets what was set, JSON values and null included; absent is undefined', async () => {
    await kv.set(['a', 'obj'], { x: [1, 'two', { three: true }] });
    await kv.set(['a', 'null'], null);
    await kv.set(['a', 'str'], 'text');
    assert.deepEqual(await kv.get(['a', 'obj']), { x: [1, 'two', { three: true }] });
    assert.equal(await kv.get(['a', 'null']), null);
    assert.equal(await kv.get(['a', 'str']), 'text');
    assert.equal(await kv.get(['a', 'missing']), undefined);
    await kv.delete(['a', 'str']);
    assert.equal(await kv.get(['a', 'str']), undefined);
  });

  it('forgets an entry after its TTL', async () => {
    await kv.set(['ttl', 'short'], 1, {
      ttl: Temporal.Duration.from({ milliseconds: 50 }) as never,
    });
    await kv.set(['ttl', 'long'], 2, { ttl: Temporal.Duration.from({ days: 1 }) as never });
    assert.equal(await kv.get(['ttl', 'short']), 1);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(await kv.get(['ttl', 'short']), undefined);
    assert.equal(await kv.get(['ttl', 'long']), 2);
  });

  it('lists a prefix: the exact key and the keys under it, nothing that only looks alike', async () => {
    await kv.set(['_fedify', 'k'], 0);
    await kv.set(['_fedify', 'k', 'x'], 1);
    await kv.set(['_fedify', 'k', 'y', 'z'], 2);
    await kv.set(['_fedify', 'kk'], 3);
    await kv.set(['_fedifyX', 'k'], 4);
    await kv.set(['_fedify', 'k%'], 5);
    const under = await listed(['_fedify', 'k']);
    assert.deepEqual(under.map(([k]) => JSON.stringify(k)).sort(), [
      '["_fedify","k","x"]',
      '["_fedify","k","y","z"]',
      '["_fedify","k"]',
    ]);
    const fedify = await listed(['_fedify']);
    assert.equal(fedify.length, 5);
    const all = await listed();
    assert.ok(all.some(([k]) => JSON.stringify(k) === '["_fedifyX","k"]'));
    assert.ok(all.some(([k]) => JSON.stringify(k) === '["a","null"]'));
  });

  it('lists more than one page', async () => {
    for (let i = 0; i < 1200; i++) await kv.set(['many', String(i).padStart(4, '0')], i);
    const all = await listed(['many']);
    assert.equal(all.length, 1200);
  });

  it('compare-and-set: absent, equal (deep), different, delete', async () => {
    assert.equal(await kv.cas(['cas'], undefined, { n: 1 }), true);
    assert.equal(await kv.cas(['cas'], undefined, { n: 2 }), false);
    assert.equal(await kv.cas(['cas'], { n: 1 }, { n: 2 }), true);
    assert.equal(await kv.cas(['cas'], { n: 1 }, { n: 3 }), false);
    assert.deepEqual(await kv.get(['cas']), { n: 2 });
    assert.equal(await kv.cas(['cas'], { n: 2 }, undefined), true);
    assert.equal(await kv.get(['cas']), undefined);
  });
});

describe('MessageQueue on the delivery queue', () => {
  const key = { kty: 'RSA', d: 'secret', n: 'n', e: 'AQAB' };
  const outbox = {
    type: 'outbox',
    id: 'm1',
    baseUrl: 'https://rum.example',
    keys: [{ keyId: 'https://rum.example/ap/actors/g.x#main-key', privateKey: key }],
    activityId: 'https://rum.example/ap/posts/t1/create',
    inbox: 'https://mastodon.example/inbox',
    attempt: 0,
  };

  it('an outbox message: keyed by activity, inbox and attempt; to the inbox host; no private key', () => {
    const job = jobOf(outbox);
    assert.equal(job.kind, 'fedify');
    assert.equal(job.destination, 'mastodon.example');
    assert.doesNotMatch(JSON.stringify(job.payload), /secret/);
    // A fan-out that runs again makes a new message id: the same job key.
    assert.equal(jobOf({ ...outbox, id: 'm2' }).key, job.key);
    assert.notEqual(jobOf({ ...outbox, attempt: 1 }).key, job.key);
    assert.notEqual(jobOf({ ...outbox, inbox: 'https://other.example/inbox' }).key, job.key);
  });

  it('fan-out and inbox messages, and delays', () => {
    const fanout = jobOf(
      { type: 'fanout', id: 'f1', keys: outbox.keys },
      { delay: Temporal.Duration.from({ seconds: 2 }) as never },
    );
    assert.equal(fanout.destination, 'fedify-fanout');
    assert.equal(fanout.key, 'fedify:fanout:f1');
    assert.equal(fanout.delayMs, 2000);
    assert.doesNotMatch(JSON.stringify(fanout.payload), /secret/);
    const inbox = jobOf({ type: 'inbox', id: 'i1', attempt: 2 });
    assert.equal(inbox.destination, 'fedify-inbox');
    assert.equal(inbox.key, 'fedify:inbox:i1:2');
  });

  it('enqueues on the delivery queue; enqueueMany adds each once', async () => {
    const added: EnqueueInput[] = [];
    const keys = new Set<string>();
    const queue = {
      enqueue: async (j: EnqueueInput) => {
        const fresh = !keys.has(j.key);
        keys.add(j.key);
        if (fresh) added.push(j);
        return { id: j.key, added: fresh };
      },
    } as unknown as DeliveryQueue;
    const mq = new DeliveryMessageQueue(queue);
    assert.equal(mq.nativeRetrial, true);
    await mq.enqueue(outbox);
    await mq.enqueueMany([outbox, { ...outbox, inbox: 'https://b.example/inbox' }]);
    assert.deepEqual(
      added.map((j) => j.destination),
      ['mastodon.example', 'b.example'],
    );
  });

  it('the handler puts the keys back, refuses a barred inbox, and makes a 4xx permanent', async () => {
    const processed: unknown[] = [];
    let status: number | null = null;
    const handler = fedifyJobHandler({
      privateJwk: async () => key,
      checkUrl: async (url) => {
        if (url.includes('10.0.0.1')) throw new Error('private address');
      },
      process: async (m) => {
        if (status !== null)
          throw Object.assign(new Error(`HTTP ${status}`), { statusCode: status });
        processed.push(m);
      },
    });
    const job = (payload: unknown) => ({
      id: '1',
      key: 'k',
      kind: 'fedify',
      destination: 'd',
      payload,
      attempt: 1,
    });
    await handler(job(jobOf(outbox).payload));
    assert.deepEqual((processed[0] as typeof outbox).keys[0]!.privateKey, key);
    await assert.rejects(
      handler(job(jobOf({ ...outbox, inbox: 'http://10.0.0.1/inbox' }).payload)),
      PermanentDeliveryError,
    );
    status = 401;
    await assert.rejects(handler(job(jobOf(outbox).payload)), PermanentDeliveryError);
    status = 500;
    await assert.rejects(
      handler(job(jobOf(outbox).payload)),
      (e: Error) => !(e instanceof PermanentDeliveryError),
    );
  });
});
