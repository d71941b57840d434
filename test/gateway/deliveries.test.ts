// The gateway's delivery queue as the operator sees it, over the real admin API: deliveries to
// loopback refused without --allowprivateaddress (the receiver sees nothing), retries and the
// failed list, redelivery by id, Prometheus metrics, and one log line when a destination starts
// failing and one when it recovers.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { buildApi } from '../../src/api/server.ts';
import { TokenService } from '../../src/api/tokens.ts';
import { ConfigSchema, type ConfigInput } from '../../src/config/schema.ts';
import { type Gateway, startGateway } from '../../src/gateway/gateway.ts';
import { RumNode } from '../../src/node.ts';
import { api, TEST_PASSWORD, tempDir, waitFor } from '../helpers/node-process.ts';

interface Receiver {
  url: string;
  /** Idempotency keys received, in order. */
  keys: string[];
  /** Answers the status for the next request. */
  answer: () => number;
  server: Server;
}

async function receiver(answer: () => number = () => 200): Promise<Receiver> {
  const r: Receiver = { url: '', keys: [], answer, server: createServer() };
  r.server.on('request', (req, res) => {
    req.resume();
    req.on('end', () => {
      r.keys.push(String(req.headers['idempotency-key']));
      res.writeHead(r.answer()).end();
    });
  });
  await new Promise<void>((ok) => r.server.listen(0, '127.0.0.1', ok));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  return r;
}

interface Running {
  node: RumNode;
  gateway: Gateway;
  apiUrl: string;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

async function run(config: ConfigInput): Promise<Running> {
  const dir = tempDir('rum-deliveries-');
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const node = await RumNode.open({
    config: ConfigSchema.parse({
      configDir: `${dir}/config`,
      dataDir: `${dir}/data`,
      keystoreDir: `${dir}/keystore`,
      gatewayPort: 0,
      ...config,
    }),
    logger: pino({ level: 'info' }, sink),
    keystorePassword: TEST_PASSWORD,
    keystoreScryptN: 1 << 10,
  });
  const tokens = await TokenService.open(node.store, node.keystore);
  const gateway = await startGateway(node);
  const app = await buildApi({ node, tokens, gateway });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    node,
    gateway,
    apiUrl,
    logs,
    async stop() {
      await app.close();
      await gateway.stop();
      await node.stop();
    },
  };
}

function post(g: Gateway, key: string, url: string) {
  return g.queue.enqueue({
    key,
    kind: 'http',
    destination: new URL(url).host,
    payload: { url, body: JSON.stringify({ key }), hmacSecret: 'secret' },
  });
}

describe('deliveries', () => {
  describe('without --allowprivateaddress', () => {
    let r: Running;
    let rec: Receiver;
    before(async () => {
      rec = await receiver();
      r = await run({ limits: { deliveryBackoffBaseMs: 20, deliveryBackoffMaxMs: 50 } });
    });
    after(async () => {
      await r.stop();
      rec.server.close();
    });

    it('refuses loopback, by address and by name, and the receiver sees nothing', async () => {
      const port = new URL(rec.url).port;
      const targets = [rec.url, `http://localhost:${port}/`, `http://[::1]:${port}/`];
      for (const [i, url] of targets.entries()) await post(r.gateway, `blocked-${i}`, url);
      const failed = await waitFor(async () => {
        const res = await api(r.apiUrl, 'GET', '/api/v1/bridges/deliveries?status=failed');
        return res.json.deliveries.length === targets.length ? res.json.deliveries : null;
      }, 'refusals');
      for (const d of failed) {
        assert.equal(d.attempts, 1, 'a refused address is not retried');
        assert.match(d.last_error, /loopback/);
      }
      assert.deepEqual(rec.keys, []);
    });
  });

  describe('with --allowprivateaddress', () => {
    let r: Running;
    let flaky: Receiver;
    let down: Receiver;
    let downAnswer = 503;
    before(async () => {
      let n = 0;
      flaky = await receiver(() => (++n <= 2 ? 500 : 200));
      down = await receiver(() => downAnswer);
      r = await run({
        allowPrivateAddress: true,
        limits: { deliveryBackoffBaseMs: 20, deliveryBackoffMaxMs: 50, deliveryMaxAttempts: 3 },
      });
    });
    after(async () => {
      await r.stop();
      flaky.server.close();
      down.server.close();
    });

    it('retries a failing destination and logs once when it fails and once when it recovers', async () => {
      await post(r.gateway, 'flaky-1', flaky.url);
      await waitFor(async () => (await r.gateway.queue.counts()).done === 1, 'delivery');
      assert.deepEqual(flaky.keys, ['flaky-1', 'flaky-1', 'flaky-1'], 'the same key each time');
      const host = new URL(flaky.url).host;
      const lines = r.logs.filter((l) => l.destination === host).map((l) => l.msg);
      assert.deepEqual(lines, ['delivery destination failing', 'delivery destination recovered']);
    });

    it('keeps exhausted jobs in the failed list, redelivers them by id, and counts it all', async () => {
      await post(r.gateway, 'down-1', down.url);
      const [failed] = await waitFor(async () => {
        const res = await api(r.apiUrl, 'GET', '/api/v1/bridges/deliveries?status=failed');
        return res.json.deliveries.length === 1 ? res.json.deliveries : null;
      }, 'the failed list');
      assert.equal(failed.key, 'down-1');
      assert.equal(failed.attempts, 3);
      assert.match(failed.last_error, /503/);
      assert.equal(down.keys.length, 3);
      const listed = await api(r.apiUrl, 'GET', '/api/v1/bridges/deliveries?status=failed');
      assert.equal(listed.json.backend, 'embedded');
      assert.equal(listed.json.counts.failed, 1);
      assert.deepEqual(
        listed.json.failing_destinations.map((f: { destination: string }) => f.destination),
        [new URL(down.url).host],
      );

      downAnswer = 200;
      const re = await api(r.apiUrl, 'POST', '/api/v1/bridges/deliveries/redeliver', {
        ids: [failed.id],
      });
      assert.equal(re.status, 200, re.text);
      assert.deepEqual(re.json, { redelivered: 1 });
      await waitFor(async () => (await r.gateway.queue.counts()).done === 2, 'redelivery');
      assert.equal(down.keys.at(-1), 'down-1');
      const done = await api(r.apiUrl, 'GET', '/api/v1/bridges/deliveries?status=done');
      assert.deepEqual(done.json.deliveries.map((d: { key: string }) => d.key).sort(), [
        'down-1',
        'flaky-1',
      ]);

      const metrics = (await api(r.apiUrl, 'GET', '/metrics')).text;
      const host = new URL(down.url).host;
      assert.match(metrics, /rum_delivery_queue_depth\{status="done"\} 2/);
      assert.match(metrics, /rum_delivery_queue_depth\{status="failed"\} 0/);
      assert.match(metrics, /rum_delivery_in_flight 0/);
      assert.match(
        metrics,
        new RegExp(`rum_delivery_attempts_total\\{destination="${host}",outcome="retry"\\} 2`),
      );
      assert.match(
        metrics,
        new RegExp(`rum_delivery_attempts_total\\{destination="${host}",outcome="failed"\\} 1`),
      );
      assert.match(
        metrics,
        new RegExp(`rum_delivery_attempts_total\\{destination="${host}",outcome="done"\\} 1`),
      );
    });

    it('refuses bad redelivery and listing requests', async () => {
      for (const [method, path, body] of [
        ['POST', '/api/v1/bridges/deliveries/redeliver', { ids: [] }],
        ['POST', '/api/v1/bridges/deliveries/redeliver', { ids: [{}] }],
        ['POST', '/api/v1/bridges/deliveries/redeliver', { ids: ['1'], more: true }],
        ['GET', '/api/v1/bridges/deliveries?status=lost', undefined],
        ['GET', '/api/v1/bridges/deliveries?limit=0', undefined],
        ['GET', '/api/v1/bridges/deliveries?limit=100000', undefined],
      ] as const) {
        const res = await api(r.apiUrl, method, path, body);
        assert.equal(res.status, 400, `${method} ${path}: ${res.text}`);
        assert.ok(res.json.message);
      }
      const none = await api(r.apiUrl, 'POST', '/api/v1/bridges/deliveries/redeliver', {
        ids: ['999999'],
      });
      assert.deepEqual(none.json, { redelivered: 0 });
    });
  });
});
