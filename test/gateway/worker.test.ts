// A node on BullMQ that leaves http deliveries to workers (--rundeliveries false) and a real
// `rum worker` process on the same Redis and queue name: the worker delivers every http job,
// signed, and leaves the kinds only the node can run (ActivityPub's) to the node. Redis is the shared 127.0.0.1:6379 (or REDIS_URL), with a queue name
// of this run; without Redis the test is skipped, except under CI=true, where it must run.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { buildApi } from '../../src/api/server.ts';
import { TokenService } from '../../src/api/tokens.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { type Gateway, startGateway } from '../../src/gateway/gateway.ts';
import { RumNode } from '../../src/node.ts';
import { dropKeys, REDIS_URL, redisUnreachable } from '../helpers/bullmq-redis.ts';
import { api, RUM_BIN, TEST_PASSWORD, tempDir, waitFor } from '../helpers/node-process.ts';

const unreachable = await redisUnreachable();
if (unreachable && process.env.CI === 'true') {
  throw new Error(`CI=true: the BullMQ tests need Redis at ${REDIS_URL}: ${unreachable}`);
}

describe(
  'rum worker runs the deliveries a node queues on BullMQ',
  {
    skip: unreachable ? `no Redis at ${REDIS_URL}: ${unreachable}` : false,
  },
  () => {
    const queueName = `test-worker-${randomUUID().slice(0, 8)}`;
    const received = new Map<string, number>();
    const badSignatures: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const want = `sha256=${createHmac('sha256', 'secret').update(body).digest('hex')}`;
        if (req.headers['x-rum-signature'] !== want) badSignatures.push(body);
        const key = String(req.headers['idempotency-key']);
        received.set(key, (received.get(key) ?? 0) + 1);
        res.writeHead(200).end();
      });
    });
    let node: RumNode;
    let gateway: Gateway;
    let apiUrl = '';
    let closeApi = async () => {};
    let worker: ChildProcess;
    let workerErr = '';
    let url = '';

    before(async () => {
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const dir = tempDir('rum-worker-');
      const config = {
        configDir: `${dir}/config`,
        dataDir: `${dir}/data`,
        keystoreDir: `${dir}/keystore`,
        gatewayPort: 0,
        redisUrl: REDIS_URL,
        queueName,
        runDeliveries: false,
        allowPrivateAddress: true,
      };
      node = await RumNode.open({
        config: ConfigSchema.parse(config),
        logger: pino({ level: 'silent' }),
        keystorePassword: TEST_PASSWORD,
        keystoreScryptN: 1 << 10,
      });
      gateway = await startGateway(node);
      const app = await buildApi({
        node,
        tokens: await TokenService.open(node.store, node.keystore),
        gateway,
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      apiUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      closeApi = () => app.close();
      const wdir = tempDir('rum-worker-proc-');
      worker = spawn(
        process.execPath,
        [
          RUM_BIN,
          'worker',
          '--redisurl',
          REDIS_URL,
          '--queuename',
          queueName,
          '--allowprivateaddress',
          'true',
          '--configdir',
          `${wdir}/config`,
          '--datadir',
          `${wdir}/data`,
          '--keystoredir',
          `${wdir}/keystore`,
          '--loglevel',
          'warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      worker.stderr!.on('data', (d) => {
        workerErr += d;
      });
    });

    after(async () => {
      worker?.kill('SIGTERM');
      await closeApi();
      await gateway?.stop();
      await node?.stop();
      server.close();
      await dropKeys(`rum:${queueName}:*`);
    });

    it('delivers 200 queued jobs, each once, signed', async () => {
      const info = await api(apiUrl, 'GET', '/api/v1/bridges/deliveries?status=pending');
      assert.equal(info.json.backend, 'bullmq');
      for (let i = 0; i < 200; i++) {
        const body = JSON.stringify({ n: i });
        await gateway.queue.enqueue({
          key: `job-${i}`,
          kind: 'http',
          destination: new URL(url).host,
          payload: { url, body, hmacSecret: 'secret' },
        });
      }
      await waitFor(
        async () => received.size === 200,
        `200 deliveries (stderr: ${workerErr})`,
        300,
      );
      assert.deepEqual(badSignatures, []);
      assert.equal(Math.max(...received.values()), 1, 'each delivered once');
      const done = await api(apiUrl, 'GET', '/api/v1/bridges/deliveries?status=done&limit=1000');
      assert.equal(done.json.deliveries.length, 200);
    });

    it('leaves a kind the worker cannot run to the node, with no attempt spent; stops on SIGTERM', async () => {
      const ran = new Set<string>();
      gateway.queue.handle('nodeonly', async (job) => {
        ran.add(job.key);
      });
      for (let i = 0; i < 20; i++) {
        const job = { key: `own-${i}`, kind: 'nodeonly', destination: 'local', payload: i };
        await gateway.queue.enqueue(job);
      }
      await waitFor(async () => ran.size === 20, 'the node runs its own kind', 300);
      assert.equal((await gateway.queue.counts()).failed, 0);
      worker.kill('SIGTERM');
      const code = await new Promise((r) => worker.once('exit', (c) => r(c)));
      assert.equal(code, 0, workerErr);
    });
  },
);
