// Issue 9, "Must hold": delivery survives Redis being stopped for several seconds in the middle of
// a fan-out (a redis-server this test starts on its own port): nothing lost, nothing delivered
// twice.
//
// A `rum fullnode` process with --redisurl to the test's own redis-server (AOF, fsync always), a
// group exposed on ActivityPub with 50 followers over 10 loopback instances (ap-receivers.ts:
// node:http + node:crypto, every POST's signature verified, every (activity id, inbox) counted),
// followed through signed Follows. Posts go in one after another; once the first 15 of the 200
// deliveries have arrived, the redis-server is killed (SIGKILL), more posts are made while it
// is down, and it is started again 5 s later on the same port and AOF.
//
// What is asserted, per post: its Create (the author's) and its Announce (the group's) reached
// the shared inbox of each of the 10 instances, and each (activity id, inbox) pair was received
// exactly once, raw, before any dedupe (receivers dedupe on the activity id, but here a second
// delivery fails the test). Also: the outage really fell in the middle (some of the expected
// deliveries had arrived before the kill, not all), no request was refused, and the node's queue
// holds no failed job.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ApReceivers, startApReceivers } from '../../helpers/ap-receivers.ts';
import {
  freePort,
  hasRedisServer,
  type OwnRedis,
  startOwnRedis,
} from '../../helpers/bullmq-redis.ts';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
  tempDir,
} from '../../helpers/node-process.ts';
import { until } from '../../helpers/until.ts';

const INSTANCES = 10;
const PER_INSTANCE = 5;
const POSTS_BEFORE = 6;
const POSTS_DURING = 4;
const OUTAGE_MS = 5000;
const HANDLE = 'outage';

const skip =
  !hasRedisServer() && process.env.CI !== 'true'
    ? 'no /usr/bin/redis-server (install redis-server; under CI=true this fails instead)'
    : false;

describe('ActivityPub fan-out through a Redis outage', { skip }, () => {
  let redis: OwnRedis;
  let receivers: ApReceivers;
  let node: NodeProcess;
  let dir: string;
  let groupId: string;
  let actor: string;

  before(async () => {
    redis = await startOwnRedis({ appendfsync: 'always' });
    receivers = await startApReceivers({ instances: INSTANCES, actorsPerInstance: PER_INSTANCE });
    dir = tempDir('rum-ap-outage-');
    const config = join(dir, 'test-config.json');
    // Retries come back quickly (a failed attempt during the outage waits 0.2–1 s, not minutes).
    writeFileSync(
      config,
      JSON.stringify({
        limits: {
          gatewayRateLimitPerMinute: 1_000_000,
          deliveryBackoffBaseMs: 200,
          deliveryBackoffMaxMs: 1000,
          deliveryMaxAttempts: 100,
        },
      }),
    );
    node = await startNodeProcess({
      dir,
      timeoutMs: 60_000,
      args: [
        '--config',
        config,
        '--allowprivateaddress',
        'true',
        '--redisurl',
        redis.url,
        '--gatewayport',
        String(await freePort()),
      ],
    });
    ({ group_id: groupId } = await createPublicGroup(node.url, 'outage'));
    const r = await api(node.url, 'PUT', `/api/v1/group/${groupId}/bridges`, { handle: HANDLE });
    assert.equal(r.status, 200, r.text);
    actor = `${node.gatewayUrl}/ap/actors/g.${HANDLE}`;
  });

  after(async () => {
    await node?.stop();
    await receivers?.close();
    await redis?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('50 followers over 10 instances follow the group (signed Follow, signed Accept)', async () => {
    await receivers.followAll(actor, `${actor}/inbox`, 16, 60_000);
    const followers = (await (
      await fetch(`${actor}/followers`, { headers: { accept: 'application/activity+json' } })
    ).json()) as { totalItems: number };
    assert.equal(followers.totalItems, INSTANCES * PER_INSTANCE);
  });

  it(
    'every Create and Announce reaches every instance exactly once across the outage',
    {
      timeout: 180_000,
    },
    async () => {
      const post = async (i: number) => {
        const r = await api(node.url, 'POST', `/api/v1/group/${groupId}/content`, {
          data: { type: 'Create', object: { type: 'Note', content: `post ${i}` } },
        });
        assert.equal(r.status, 200, r.text);
        return r.json.trx_id as string;
      };
      const idsOf = (trx: string) => [
        `${node.gatewayUrl}/ap/posts/${trx}/create`,
        `${actor}/announces/${trx}`,
      ];
      const inboxes = receivers.describe().map((i) => i.sharedInbox);
      const trxs: string[] = [];
      for (let i = 0; i < POSTS_BEFORE; i++) trxs.push(await post(i));
      const delivered = () =>
        trxs.flatMap(idsOf).reduce((a, id) => a + (receivers.received.get(id)?.size ?? 0), 0);
      // The outage starts once the first 15 deliveries (of 200) are in.
      await until(() => delivered() >= 15, 'the first deliveries', 30_000);
      await redis.kill();
      const atKill = delivered();
      for (let i = 0; i < POSTS_DURING; i++) trxs.push(await post(POSTS_BEFORE + i));
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      const duringOutage = delivered() - atKill;
      await redis.restart();
      const expected = trxs.length * 2 * inboxes.length;
      assert.ok(atKill > 0 && atKill < expected, `${atKill} of ${expected} delivered at the kill`);

      await until(() => delivered() >= expected, `${expected} deliveries`, 120_000).catch((err) => {
        throw new Error(`${(err as Error).message}: ${delivered()} arrived`);
      });
      // Anything still in flight would show up as a duplicate: give it a moment.
      await new Promise((r) => setTimeout(r, 2000));
      for (const trx of trxs) {
        for (const id of idsOf(trx)) {
          const per = receivers.received.get(id);
          for (const inbox of inboxes) {
            assert.equal(per?.get(inbox), 1, `${id} to ${inbox}: ${per?.get(inbox) ?? 0} times`);
          }
          // Nowhere else (the personal inboxes of followers with a shared inbox get nothing).
          assert.equal(per?.size, inboxes.length, `${id} went to ${[...(per?.keys() ?? [])]}`);
        }
      }
      const stats = receivers.getStats();
      assert.deepEqual(stats.refused, {});
      assert.equal(stats.duplicates, 0, JSON.stringify(receivers.duplicateList()));
      const q = await api(node.url, 'GET', '/api/v1/bridges/deliveries?status=failed');
      assert.equal(q.status, 200, q.text);
      assert.equal(q.json.backend, 'bullmq');
      assert.equal(q.json.counts.failed, 0, JSON.stringify(q.json.deliveries));
      process.stderr.write(
        `# ${expected} deliveries: ${atKill} before the kill, ${duringOutage} while Redis was ` +
          `down, the rest after its restart\n`,
      );
    },
  );
});
