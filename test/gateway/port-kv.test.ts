// The port's key-value state and secrets for bridges: JSON values (null too), expiry, prefix
// listing with a cursor, compare-and-set, one namespace per bridge, and secrets made once and
// kept in the encrypted keystore across a restart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startGateway } from '../../src/gateway/gateway.ts';
import { openTempNode } from '../helpers/temp-node.ts';

describe('bridge port: kv and secrets', () => {
  it('keeps state per bridge, with expiry, listing and compare-and-set', async () => {
    const { node } = await openTempNode({ gatewayPort: 0 });
    const gw = await startGateway(node);
    try {
      const kv = gw.port.kv('activitypub');
      kv.set('a/1', { x: 1 });
      kv.set('a/2', null);
      kv.set('a/3', [1, 'two'], 30);
      kv.set('b/1', true);
      assert.deepEqual(kv.get('a/1'), { x: 1 });
      assert.equal(kv.get('a/2'), null);
      assert.equal(kv.get('missing'), undefined);
      assert.equal(gw.port.kv('nostr').get('a/1'), undefined, 'another bridge sees nothing');
      assert.deepEqual(
        kv.list('a/').map((e) => e.key),
        ['a/1', 'a/2', 'a/3'],
      );
      assert.deepEqual(
        kv.list('a/', { after: 'a/1', limit: 1 }).map((e) => e.key),
        ['a/2'],
      );
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(kv.get('a/3'), undefined, 'expired');
      assert.deepEqual(
        kv.list('a/').map((e) => e.key),
        ['a/1', 'a/2'],
      );
      // The prefix is a key range: the prefix itself is in it, its neighbours in key order
      // ('a.', 'a0', 'a/' followed by anything) are judged right, and an empty prefix or one
      // ending at the top of the BMP lists by the slow path with the same answers.
      kv.set('a/', 'self');
      kv.set('a.', 'before');
      kv.set('a0', 'after');
      kv.set('a/\uffff\uffff', 'top');
      assert.deepEqual(
        kv.list('a/').map((e) => e.key),
        ['a/', 'a/1', 'a/2', 'a/\uffff\uffff'],
      );
      assert.deepEqual(
        kv.list('a/', { after: 'a/2' }).map((e) => e.key),
        ['a/\uffff\uffff'],
      );
      assert.deepEqual(
        kv.list('a/\uffff').map((e) => e.key),
        ['a/\uffff\uffff'],
      );
      assert.deepEqual(
        kv.list('').map((e) => e.key),
        ['a.', 'a/', 'a/1', 'a/2', 'a/\uffff\uffff', 'a0', 'b/1'],
      );
      for (const k of ['a/', 'a.', 'a0', 'a/\uffff\uffff']) kv.delete(k);
      assert.equal(kv.cas('a/1', { x: 2 }, { x: 3 }), false);
      assert.equal(kv.cas('a/1', { x: 1 }, { x: 3 }), true);
      assert.deepEqual(kv.get('a/1'), { x: 3 });
      assert.equal(kv.cas('new', undefined, 'v'), true, 'undefined expects absent');
      assert.equal(kv.cas('new', undefined, 'w'), false);
      assert.equal(kv.cas('new', 'v', undefined), true, 'undefined deletes');
      assert.equal(kv.get('new'), undefined);
      kv.delete('b/1');
      assert.equal(kv.get('b/1'), undefined);
      assert.throws(() => kv.set('', 1), /key/);
      assert.throws(() => kv.set('k', undefined), /JSON/);
    } finally {
      await gw.stop();
      await node.stop();
    }
  });

  it('makes a secret once, keeps it in the keystore, and reads it after a restart', async () => {
    const first = await openTempNode({ gatewayPort: 0 });
    let gw = await startGateway(first.node);
    let made = 0;
    const make = async () => {
      made++;
      return new Uint8Array([1, 2, made]);
    };
    const s = gw.port.secrets('activitypub');
    const [a, b] = await Promise.all([s.getOrCreate('key.g', make), s.getOrCreate('key.g', make)]);
    assert.equal(made, 1);
    assert.deepEqual(a, b);
    assert.equal(gw.port.secrets('nostr').get('key.g'), undefined);
    assert.ok(first.node.keystore.has('secret', 'activitypub.key.g'));
    await gw.stop();
    await first.node.stop();

    const again = await openTempNode({ gatewayPort: 0 }, first.dir);
    gw = await startGateway(again.node);
    try {
      assert.deepEqual(gw.port.secrets('activitypub').get('key.g'), new Uint8Array([1, 2, 1]));
      assert.deepEqual(await gw.port.secrets('activitypub').getOrCreate('key.g', make), a);
      assert.equal(made, 1);
      assert.throws(() => gw.port.secrets('activitypub').get('bad/name'), /secret name/);
    } finally {
      await gw.stop();
      await again.node.stop();
    }
  });
});
