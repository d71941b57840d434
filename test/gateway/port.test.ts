// The bridge port (bridges/port.ts) as the gateway gives it to bridges, in process: exposed groups
// and their changes, committed content as durable per-consumer streams in chain order, and posts
// from other networks signed by keys the gateway holds for their authors, idempotent on the
// outside id, never sent back to the network they came from, and refused where the group does
// not take them (not exposed, suspended, the owner's deny list, a Delete of someone else's post).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BridgePort, CommittedItem, ExposedGroup } from '../../bridges/port.ts';
import { BridgeRefusedError } from '../../bridges/port.ts';
import { TrxType } from '../../src/chain/pb.ts';
import { type Gateway, startGateway } from '../../src/gateway/gateway.ts';
import type { RumNode } from '../../src/node.ts';
import { BridgeStore } from '../../src/storage/bridge-store.ts';
import { openTempNode } from '../helpers/temp-node.ts';

let node: RumNode;
let gateway: Gateway;
let port: BridgePort;

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  gateway = await startGateway(node);
  port = gateway.port;
});

after(async () => {
  await gateway.stop();
  await node.stop();
});

let groups = 0;
async function newGroup(encryptionType: 'public' | 'private' = 'public'): Promise<string> {
  const { groupId } = await node.createGroup({
    groupName: `g${++groups}`,
    consensusType: 'poa',
    encryptionType,
    appKey: 'group_bbs',
  });
  return groupId;
}

/** Commits what is pending now in one block. */
async function produce(groupId: string): Promise<void> {
  await node.group(groupId).produce();
}

async function post(groupId: string, content: string): Promise<string> {
  const id = await node.postContent(groupId, { type: 'Note', content });
  await produce(groupId);
  return id;
}

/** Every committed content item of a group, in chain order. */
function chainOrder(groupId: string): string[] {
  return node.store.db.$client
    .prepare('SELECT trx_id FROM contents WHERE group_id = ? ORDER BY block_id, position')
    .all(groupId)
    .map((r) => (r as { trx_id: string }).trx_id);
}

const ids = (items: CommittedItem[]) => items.map((i) => i.trxId);

/** Resolves to what a promise settled to within ms, or 'pending'. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((r) => {
    timer = setTimeout(() => r('pending'), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a stream until it has `n` items (bounded). */
async function take(
  s: ReturnType<BridgePort['stream']>,
  n: number,
  max?: number,
): Promise<CommittedItem[]> {
  const out: CommittedItem[] = [];
  while (out.length < n) {
    const got = await within(s.next(max), 5000);
    assert.notEqual(got, 'pending', `stream stalled after ${out.length} of ${n} items`);
    assert.ok((got as CommittedItem[]).length > 0, 'stream answered [] while open');
    out.push(...(got as CommittedItem[]));
  }
  return out;
}

describe('bridge port: exposures', () => {
  it('lists exposed groups, finds them by id and handle, and tells of changes', async () => {
    const a = await newGroup();
    const b = await newGroup();
    const seen: [string, ExposedGroup | null][] = [];
    const off = port.onExposureChange((gid, now) => seen.push([gid, now]));
    try {
      assert.equal(port.exposure(a), undefined);
      const ea = gateway.exposures.put(a, { handle: 'port_a', nostr: false });
      gateway.exposures.put(b, { handle: 'port_b' });
      assert.deepEqual(
        port
          .exposures()
          .filter((e) => e.groupId === a || e.groupId === b)
          .map((e) => e.handle),
        ['port_a', 'port_b'],
      );
      const got = port.exposure(a);
      assert.deepEqual(got, ea);
      assert.equal(got?.handle, 'port_a');
      assert.equal(got?.activitypub, true);
      assert.equal(got?.nostr, false);
      assert.equal(got?.bots, true);
      assert.equal(got?.suspended, null);
      assert.equal(got?.name, node.group(a).row.groupName);
      assert.equal(got?.encryption, 'public');
      assert.equal(got?.ownerPubkey, node.group(a).row.ownerPubkey);
      assert.equal(port.exposureByHandle('port_b')?.groupId, b);
      assert.equal(port.exposureByHandle('nobody'), undefined);

      // A change of setting, then a removal.
      gateway.exposures.put(a, { handle: 'port_a2', bots: false });
      assert.equal(port.exposureByHandle('port_a'), undefined);
      assert.equal(port.exposureByHandle('port_a2')?.bots, false);
      gateway.exposures.remove(b);
      assert.equal(port.exposure(b), undefined);
      assert.equal(port.exposureByHandle('port_b'), undefined);
      assert.ok(!port.exposures().some((e) => e.groupId === b));

      assert.deepEqual(
        seen.map(([gid, now]) => [gid, now?.handle ?? null]),
        [
          [a, 'port_a'],
          [b, 'port_b'],
          [a, 'port_a2'],
          [b, null],
        ],
      );
      assert.deepEqual(seen[2]![1], port.exposure(a));
    } finally {
      off();
    }
    // Unsubscribed: told nothing more.
    gateway.exposures.remove(a);
    assert.equal(seen.length, 4);
  });

  it("is told when the owner's app config suspends bridging, and when it resumes", async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_susp' });
    const seen: (string | null)[] = [];
    const off = port.onExposureChange((gid, now) => {
      if (gid === g) seen.push(now ? (now.suspended ?? 'on') : 'removed');
    });
    try {
      await node.setAppConfig(g, 'add', 'bridging', 'string', 'off', '');
      await produce(g);
      assert.match(port.exposure(g)?.suspended ?? '', /forbids bridging/);
      assert.equal(port.exposure(g)?.appConfig.bridging, 'off');
      await node.setAppConfig(g, 'add', 'bridging', 'string', 'on', '');
      await produce(g);
      assert.equal(port.exposure(g)?.suspended, null);
      assert.equal(seen.length, 2);
      assert.match(seen[0]!, /forbids bridging/);
      assert.equal(seen[1], 'on');
    } finally {
      off();
      gateway.exposures.remove(g);
    }
  });
});

describe('bridge port: committed streams', () => {
  it('from genesis: every committed post in chain order; ack, then a new stream resumes after it', async () => {
    const g = await newGroup();
    const posted: string[] = [];
    for (let i = 0; i < 3; i++) posted.push(await post(g, `one ${i}`));
    // Several in one block.
    posted.push(
      ...(await node.postContentBatch(
        g,
        [0, 1, 2, 3].map((i) => ({ type: 'Note', content: `batch ${i}` })),
      )),
    );
    await produce(g);
    posted.push(await post(g, 'last'));
    const order = chainOrder(g);
    assert.equal(order.length, 8);
    assert.deepEqual(new Set(order), new Set(posted));

    const s = port.stream({ consumer: 'genesis1', groupId: g, network: 'nostr', from: 'genesis' });
    const first = await take(s, 3, 3);
    assert.deepEqual(ids(first), order.slice(0, 3));
    for (const it of first) {
      assert.equal(it.groupId, g);
      assert.equal(it.senderPubkey, node.group(g).userPubkey);
      assert.equal(it.type, 'Note');
      assert.equal(it.deleted, false);
      assert.equal(it.origin, null);
      assert.match(it.timestamp, /^\d+$/);
      assert.equal(typeof it.object?.content, 'string');
    }
    // Blocks and positions go up in chain order.
    const rest = await take(s, 5);
    const all = [...first, ...rest];
    assert.deepEqual(ids(all), order);
    for (let i = 1; i < all.length; i++) {
      const [p, q] = [all[i - 1]!, all[i]!];
      assert.ok(q.blockId > p.blockId || (q.blockId === p.blockId && q.position > p.position));
    }
    // Acks the 5th; the rest were read but not acked.
    s.ack(all[4]!);
    s.close();
    const again = port.stream({
      consumer: 'genesis1',
      groupId: g,
      network: 'nostr',
      from: 'genesis',
    });
    assert.deepEqual(ids(await take(again, 3)), order.slice(5));
    again.close();
    // Another consumer has a cursor of its own.
    const other = port.stream({
      consumer: 'genesis2',
      groupId: g,
      network: 'nostr',
      from: 'genesis',
    });
    assert.deepEqual(ids(await take(other, 8)), order);
    other.close();
  });

  it('from head: starts after what is committed at creation, and that start is durable', async () => {
    const g = await newGroup();
    await post(g, 'old 1');
    await post(g, 'old 2');
    const s = port.stream({ consumer: 'head1', groupId: g, network: 'nostr', from: 'head' });
    const fresh = await post(g, 'new 1');
    assert.deepEqual(ids(await take(s, 1)), [fresh]);
    s.close();
    // Reopened before any ack, after more commits: it starts where it was made, not at the new head.
    const fresher = await post(g, 'new 2');
    const again = port.stream({ consumer: 'head1', groupId: g, network: 'nostr', from: 'head' });
    assert.deepEqual(ids(await take(again, 2)), [fresh, fresher]);
    again.close();
    // `from` only matters for a consumer with no cursor yet.
    const g2 = port.stream({ consumer: 'head1', groupId: g, network: 'nostr', from: 'genesis' });
    assert.deepEqual(ids(await take(g2, 2)), [fresh, fresher]);
    g2.close();
    // An empty group: head is before the first item.
    const empty = await newGroup();
    const e = port.stream({ consumer: 'head2', groupId: empty, network: 'nostr', from: 'head' });
    const firstPost = await post(empty, 'first');
    assert.deepEqual(ids(await take(e, 1)), [firstPost]);
    e.close();
  });

  it('next() waits for a commit; close() makes a waiting next() answer []', async () => {
    const g = await newGroup();
    const s = port.stream({ consumer: 'wait1', groupId: g, network: 'nostr', from: 'genesis' });
    const waiting = s.next();
    assert.equal(await within(waiting, 150), 'pending');
    // Admitted but not committed: still waiting.
    const id = await node.postContent(g, { type: 'Note', content: 'soon' });
    assert.equal(await within(waiting, 100), 'pending');
    await produce(g);
    const got = await within(waiting, 5000);
    assert.notEqual(got, 'pending');
    assert.deepEqual(ids(got as CommittedItem[]), [id]);

    const waiting2 = s.next();
    assert.equal(await within(waiting2, 100), 'pending');
    s.close();
    assert.deepEqual(await within(waiting2, 2000), []);
    assert.deepEqual(await s.next(), []);
  });

  it('two waiting next() calls on one stream are both answered', async () => {
    const g = await newGroup();
    const s = port.stream({ consumer: 'wait2', groupId: g, network: 'nostr', from: 'genesis' });
    const a = s.next(1);
    const b = s.next(1);
    await node.postContentBatch(g, [
      { type: 'Note', content: 'x' },
      { type: 'Note', content: 'y' },
    ]);
    await produce(g);
    const [ra, rb] = await Promise.all([within(a, 5000), within(b, 5000)]);
    assert.notEqual(ra, 'pending');
    assert.notEqual(rb, 'pending');
    assert.deepEqual([...ids(ra as CommittedItem[]), ...ids(rb as CommittedItem[])], chainOrder(g));
    // And close answers every waiter.
    const c = s.next();
    const d = s.next();
    s.close();
    assert.deepEqual(await within(Promise.all([c, d]), 2000), [[], []]);
  });

  it('an ack never moves the cursor back', async () => {
    const g = await newGroup();
    for (let i = 0; i < 4; i++) await post(g, `n${i}`);
    const order = chainOrder(g);
    const s = port.stream({ consumer: 'ackback', groupId: g, network: 'nostr', from: 'genesis' });
    const items = await take(s, 4);
    s.ack(items[2]!);
    s.ack(items[0]!); // late, out of order
    s.close();
    const again = port.stream({
      consumer: 'ackback',
      groupId: g,
      network: 'nostr',
      from: 'genesis',
    });
    assert.deepEqual(ids(await take(again, 1)), order.slice(3));
    again.close();
  });

  it('refuses an unknown group and a bad consumer name', () => {
    assert.throws(
      () =>
        port.stream({
          consumer: 'x',
          groupId: crypto.randomUUID(),
          network: 'nostr',
          from: 'head',
        }),
      /not found/,
    );
    assert.throws(
      () => port.stream({ consumer: 'bad name', groupId: 'x', network: 'nostr', from: 'head' }),
      TypeError,
    );
  });
});

describe('bridge port: submit', () => {
  it('signs with one key per (network, author), held in the keystore', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_keys' });
    const note = (content: string) => ({ type: 'Note', content });
    const a1 = await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'ev-a1',
      author: 'alice',
      object: note('a1'),
    });
    const b1 = await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'ev-b1',
      author: 'bob',
      object: note('b1'),
    });
    const a2 = await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'ev-a2',
      author: 'alice',
      object: note('a2'),
    });
    // The same author id on another network is another identity.
    const a3 = await port.submit({
      groupId: g,
      network: 'bots',
      externalId: 'ev-a1',
      author: 'alice',
      object: note('a3'),
    });
    assert.equal(a1.duplicate, false);
    assert.notEqual(a1.pubkey, b1.pubkey);
    assert.equal(a1.pubkey, a2.pubkey);
    assert.notEqual(a3.pubkey, a1.pubkey);
    assert.notEqual(a1.pubkey, node.group(g).userPubkey);
    assert.equal(new Set([a1.trxId, b1.trxId, a2.trxId, a3.trxId]).size, 4);

    // Held in the node's keystore.
    const held = new Set(node.keystore.list('sign').map((n) => node.keystore.publicOf('sign', n)));
    for (const k of [a1.pubkey, b1.pubkey, a3.pubkey]) assert.ok(held.has(k), `${k} in keystore`);

    assert.equal(port.authorKey('nostr', 'alice'), a1.pubkey);
    assert.equal(port.authorKey('bots', 'alice'), a3.pubkey);
    assert.equal(port.authorKey('nostr', 'carol'), undefined);
    assert.deepEqual(port.authorOf(b1.pubkey), { network: 'nostr', author: 'bob' });
    assert.equal(port.authorOf(node.group(g).userPubkey), undefined);

    await produce(g);
    for (const r of [a1, b1, a2, a3]) {
      const it = port.item(g, r.trxId);
      assert.ok(it, `item ${r.trxId}`);
      assert.equal(it.senderPubkey, r.pubkey);
      assert.equal(it.trxId, r.trxId);
    }
    const it = port.item(g, a3.trxId)!;
    assert.equal(it.object?.content, 'a3');
    assert.deepEqual(it.origin, { network: 'bots', externalId: 'ev-a1' });
    assert.equal(port.item(g, crypto.randomUUID()), undefined);
    assert.equal(port.item(crypto.randomUUID(), a1.trxId), undefined);
  });

  it('is idempotent on (network, external id): a retry answers duplicate, one trx is committed', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_idem' });
    const input = {
      groupId: g,
      network: 'activitypub' as const,
      externalId: 'https://remote.example/notes/1',
      author: 'https://remote.example/users/ann',
      object: { type: 'Note', content: 'hello' },
    };
    const first = await port.submit(input);
    assert.equal(first.duplicate, false);
    // Retried while pending…
    const pending = await port.submit(input);
    assert.deepEqual(pending, { ...first, duplicate: true });
    await produce(g);
    // …and once committed.
    const committed = await port.submit(input);
    assert.deepEqual(committed, { ...first, duplicate: true });
    await produce(g);
    assert.deepEqual(chainOrder(g), [first.trxId]);
    // The same id claimed by another author: refused, and no key is made for it.
    await assert.rejects(
      port.submit({ ...input, author: 'https://remote.example/users/eve' }),
      (err: unknown) => {
        assert.ok(err instanceof BridgeRefusedError);
        assert.equal(err.status, 409);
        return true;
      },
    );
    assert.equal(port.authorKey('activitypub', 'https://remote.example/users/eve'), undefined);
    // The same id on another network is another item.
    const elsewhere = await port.submit({ ...input, network: 'bots' });
    assert.equal(elsewhere.duplicate, false);
    assert.notEqual(elsewhere.trxId, first.trxId);
  });

  it('concurrent identical submits make one trx', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_race' });
    // A new author (its key is being made) and a known one.
    for (const author of ['racer', 'racer']) {
      const input = {
        groupId: g,
        network: 'nostr' as const,
        externalId: `race-${crypto.randomUUID()}`,
        author,
        object: { type: 'Note', content: 'at once' },
      };
      const results = await Promise.all(Array.from({ length: 5 }, () => port.submit(input)));
      assert.equal(new Set(results.map((r) => r.trxId)).size, 1, 'one trx id for all');
      assert.equal(results.filter((r) => !r.duplicate).length, 1, 'one of them posted');
      assert.equal(new Set(results.map((r) => r.pubkey)).size, 1);
    }
    await produce(g);
    assert.equal(chainOrder(g).length, 2);
    assert.equal(node.group(g).mempoolSize, 0);
  });

  it('a new author posting several items at once gets one key', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_newauthor' });
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        port.submit({
          groupId: g,
          network: 'bots',
          externalId: `bot-msg-${i}`,
          author: 'bot:fresh',
          object: { type: 'Note', content: `m${i}` },
        }),
      ),
    );
    assert.equal(new Set(results.map((r) => r.pubkey)).size, 1);
    assert.equal(new Set(results.map((r) => r.trxId)).size, 5);
    assert.equal(port.authorKey('bots', 'bot:fresh'), results[0]!.pubkey);
    await produce(g);
    assert.equal(chainOrder(g).length, 5);
  });

  it('an item whose trx was lost after its origin was recorded is posted anew', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_lost' });
    // As a crash between recording the origin and storing the trx leaves it.
    const lost = crypto.randomUUID();
    new BridgeStore(node.store.db).addOrigin({
      network: 'nostr',
      externalId: 'lost-1',
      groupId: g,
      trxId: lost,
    });
    const r = await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'lost-1',
      author: 'npub-lost',
      object: { type: 'Note', content: 'again' },
    });
    assert.equal(r.duplicate, false);
    assert.notEqual(r.trxId, lost);
    await produce(g);
    assert.deepEqual(chainOrder(g), [r.trxId]);
    assert.deepEqual(port.item(g, r.trxId)?.origin, { network: 'nostr', externalId: 'lost-1' });
  });

  it('the origin is stored in the transaction that admits its trx: a failed admission keeps neither', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_atomic' });
    const store = node.store as unknown as {
      addPendingMany: (items: unknown[], now: number, also?: (() => void)[]) => void;
      transaction: (f: () => void) => void;
    };
    const real = store.addPendingMany;
    // As a disk error at the commit of the admission leaves it: the writes made, then a throw.
    store.addPendingMany = function (items, now, also) {
      store.transaction(() => {
        real.call(this, items, now, also);
        throw new Error('disk I/O error');
      });
    };
    const input = {
      groupId: g,
      network: 'nostr' as const,
      externalId: 'atomic-1',
      author: 'npub-atomic',
      object: { type: 'Note', content: 'once' },
    };
    try {
      await assert.rejects(port.submit(input), /disk I\/O error/);
    } finally {
      store.addPendingMany = real;
    }
    assert.equal(port.trxOfOrigin('nostr', 'atomic-1'), undefined);
    const r = await port.submit(input);
    assert.equal(r.duplicate, false);
    assert.deepEqual(port.trxOfOrigin('nostr', 'atomic-1'), { groupId: g, trxId: r.trxId });
  });

  it('a private group: never on ActivityPub, and an outside author who is no member is refused', async () => {
    const g = await newGroup('private');
    assert.throws(() => gateway.exposures.put(g, { handle: 'port_priv' }), /private group/);
    const e = gateway.exposures.put(g, { handle: 'port_priv', activitypub: false });
    assert.equal(e.encryption, 'private');
    await assert.rejects(
      port.submit({
        groupId: g,
        network: 'nostr',
        externalId: 'priv-1',
        author: 'npub-outsider',
        object: { type: 'Note', content: 'let me in' },
      }),
      (err: unknown) => {
        assert.ok(err instanceof BridgeRefusedError);
        assert.match(err.message, /not an approved member/);
        return true;
      },
    );
    // The owner's own posts stream, decrypted.
    const id = await post(g, 'secret');
    const s = port.stream({ consumer: 'priv', groupId: g, network: 'nostr', from: 'genesis' });
    const [it] = await take(s, 1);
    assert.equal(it?.trxId, id);
    assert.equal(it?.object?.content, 'secret');
    s.close();
  });

  it('never streams an item back to the network it came from', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_origin' });
    const own = await post(g, 'from a member');
    const fromNostr = await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'nostr-ev-1',
      author: 'npub1x',
      object: { type: 'Note', content: 'from nostr' },
    });
    const fromAp = await port.submit({
      groupId: g,
      network: 'activitypub',
      externalId: 'https://ap.example/n/1',
      author: 'https://ap.example/u/1',
      object: { type: 'Note', content: 'from ap' },
    });
    await produce(g);
    const last = await post(g, 'another member post');
    const order = chainOrder(g);
    assert.equal(order.length, 4);

    const nostr = port.stream({
      consumer: 'orig-n',
      groupId: g,
      network: 'nostr',
      from: 'genesis',
    });
    const gotN = await take(nostr, 3);
    assert.deepEqual(
      ids(gotN),
      order.filter((id) => id !== fromNostr.trxId),
    );
    assert.deepEqual(gotN.find((i) => i.trxId === fromAp.trxId)?.origin, {
      network: 'activitypub',
      externalId: 'https://ap.example/n/1',
    });
    nostr.close();

    const ap = port.stream({
      consumer: 'orig-a',
      groupId: g,
      network: 'activitypub',
      from: 'genesis',
    });
    const gotA = await take(ap, 3);
    assert.deepEqual(
      ids(gotA),
      order.filter((id) => id !== fromAp.trxId),
    );
    assert.ok(ids(gotA).includes(own) && ids(gotA).includes(last));
    ap.close();

    const bots = port.stream({ consumer: 'orig-b', groupId: g, network: 'bots', from: 'genesis' });
    assert.deepEqual(ids(await take(bots, 4)), order);
    bots.close();

    // A stream whose only new items came from its own network keeps waiting.
    const n2 = port.stream({ consumer: 'orig-n2', groupId: g, network: 'nostr', from: 'head' });
    await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'nostr-ev-2',
      author: 'npub1x',
      object: { type: 'Note', content: 'again from nostr' },
    });
    await produce(g);
    const waiting = n2.next();
    assert.equal(await within(waiting, 150), 'pending');
    const next = await post(g, 'member again');
    assert.deepEqual(ids((await within(waiting, 5000)) as CommittedItem[]), [next]);
    n2.close();
  });

  it('is refused where the group does not take it', async () => {
    const g = await newGroup();
    const input = {
      groupId: g,
      network: 'nostr' as const,
      externalId: 'refused-1',
      author: 'npub1r',
      object: { type: 'Note', content: 'hi' },
    };
    // Not exposed at all; an unknown group.
    await assert.rejects(port.submit(input), BridgeRefusedError);
    await assert.rejects(
      port.submit({ ...input, groupId: crypto.randomUUID() }),
      BridgeRefusedError,
    );
    // Exposed, but not on this network.
    gateway.exposures.put(g, { handle: 'port_refuse', nostr: false });
    await assert.rejects(port.submit(input), (err: unknown) => {
      assert.ok(err instanceof BridgeRefusedError);
      assert.match(err.message, /not open to nostr/);
      return true;
    });
    const okBots = await port.submit({ ...input, network: 'bots' });
    assert.equal(okBots.duplicate, false);
    // Suspended by the owner.
    gateway.exposures.put(g, { handle: 'port_refuse' });
    await node.setAppConfig(g, 'add', 'bridging', 'string', 'off', '');
    await produce(g);
    assert.ok(port.exposure(g)?.suspended);
    await assert.rejects(port.submit(input), BridgeRefusedError);
    await assert.rejects(
      port.submit({ ...input, network: 'bots', externalId: 'x2' }),
      BridgeRefusedError,
    );
    await node.setAppConfig(g, 'add', 'bridging', 'string', 'on', '');
    await produce(g);
    const ok = await port.submit(input);
    assert.equal(ok.duplicate, false);
    // Bad ids.
    await assert.rejects(port.submit({ ...input, externalId: '' }), BridgeRefusedError);
    await assert.rejects(port.submit({ ...input, author: '' }), BridgeRefusedError);
    // Bad content: refused, and nothing is recorded for it.
    await assert.rejects(
      port.submit({ ...input, externalId: 'bad-content', object: { type: 'Note' } }),
      BridgeRefusedError,
    );
    await produce(g);
    const before = chainOrder(g);
    assert.equal(before.length, 2);
    const retried = await port.submit({
      ...input,
      externalId: 'bad-content',
      object: { type: 'Note', content: 'fixed' },
    });
    assert.equal(retried.duplicate, false);
    // The same outside id in another group.
    const other = await newGroup();
    gateway.exposures.put(other, { handle: 'port_refuse2' });
    await assert.rejects(port.submit({ ...input, groupId: other }), BridgeRefusedError);
  });

  it("the owner's deny list refuses the author's next post", async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_deny' });
    const input = (externalId: string, author: string) => ({
      groupId: g,
      network: 'activitypub' as const,
      externalId,
      author,
      object: { type: 'Note', content: externalId },
    });
    const spam = await port.submit(input('https://spam.example/1', 'https://spam.example/u'));
    const fine = await port.submit(input('https://ok.example/1', 'https://ok.example/u'));
    await produce(g);
    await node.updateTrxList(g, 'deny', 'add', spam.pubkey, [TrxType.POST], 'spam');
    await produce(g);
    await assert.rejects(
      port.submit(input('https://spam.example/2', 'https://spam.example/u')),
      (err: unknown) => {
        assert.ok(err instanceof BridgeRefusedError);
        assert.match(err.message, /deny list/);
        return true;
      },
    );
    // Others still post.
    const fine2 = await port.submit(input('https://ok.example/2', 'https://ok.example/u'));
    assert.equal(fine2.pubkey, fine.pubkey);
    await produce(g);
    assert.deepEqual(chainOrder(g), [spam.trxId, fine.trxId, fine2.trxId]);
    // The refused item left no origin behind: once allowed again, it posts.
    await node.updateTrxList(g, 'deny', 'remove', spam.pubkey, [TrxType.POST], '');
    await produce(g);
    const later = await port.submit(input('https://spam.example/2', 'https://spam.example/u'));
    assert.equal(later.duplicate, false);
    assert.equal(later.pubkey, spam.pubkey);
  });

  it('a Delete from an outside author: of its own post accepted, of another one refused', async () => {
    const g = await newGroup();
    gateway.exposures.put(g, { handle: 'port_delete' });
    const a = await port.submit({
      groupId: g,
      network: 'nostr',
      externalId: 'del-a',
      author: 'author-a',
      object: { type: 'Note', content: 'mine' },
    });
    const member = await post(g, 'a member post');
    await produce(g);
    const del = (externalId: string, author: string, id: string) =>
      port.submit({
        groupId: g,
        network: 'nostr',
        externalId,
        author,
        object: { type: 'Delete', object: { type: 'Note', id } },
      });
    await assert.rejects(del('del-b', 'author-b', a.trxId), BridgeRefusedError);
    await assert.rejects(del('del-m', 'author-b', member), BridgeRefusedError);
    const ok = await del('del-a2', 'author-a', a.trxId);
    assert.equal(ok.pubkey, a.pubkey);
    await produce(g);
    assert.equal(port.item(g, a.trxId)?.deleted, true);
    assert.equal(port.item(g, member)?.deleted, false);
    assert.equal(port.item(g, ok.trxId)?.type, 'Delete');
  });
});
