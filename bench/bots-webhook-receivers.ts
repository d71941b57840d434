/**
 * The webhook receivers of the `bots.webhook` benchmark, in a process of their own: `count`
 * loopback HTTP servers, one per bot (each its own destination). Each verifies every Standard
 * Webhooks request with the `standardwebhooks` npm library and its bot's secret, and counts the
 * distinct `webhook-id`s; a request with `X-Rum-Signature` instead (the baseline's plain `http`
 * jobs) is checked with node:crypto and counted by its `Idempotency-Key`. Anything that does
 * not verify is answered 400 and counted as bad.
 *
 * `node bench/bots-webhook-receivers.ts '{"count":100,"httpSecret":"s"}'` prints
 * `{"urls":[…]}`; then, on stdin, `secrets ["whsec_…",…]` (one per receiver, in order) is
 * answered `{"ok":true}`, and `stats` with `{"distinct","httpDistinct","total","bad"}`. It
 * exits when stdin ends.
 */
import type { ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { startLineProcess } from '../test/helpers/line-process.ts';

export interface WebhookStats {
  /** Distinct webhook-ids received, verified. */
  distinct: number;
  /** Distinct Idempotency-Keys of plain http jobs, verified. */
  httpDistinct: number;
  /** Requests answered 2xx, repeats included. */
  total: number;
  /** Requests that did not verify (answered 400). */
  bad: number;
}

async function serve(count: number, httpSecret: string) {
  const hooks: (Webhook | null)[] = Array.from({ length: count }, () => null);
  const ids = new Set<string>();
  const keys = new Set<string>();
  let total = 0;
  let bad = 0;
  const servers: http.Server[] = [];
  const handler = (i: number) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'];
      let ok = false;
      if (typeof id === 'string') {
        try {
          hooks[i]?.verify(body, req.headers as Record<string, string>);
          ok = hooks[i] !== null;
        } catch {
          ok = false;
        }
        if (ok) ids.add(id);
      } else {
        const key = req.headers['idempotency-key'];
        const want = Buffer.from(
          `sha256=${createHmac('sha256', httpSecret).update(body).digest('hex')}`,
        );
        const got = Buffer.from(String(req.headers['x-rum-signature'] ?? ''));
        ok = typeof key === 'string' && got.length === want.length && timingSafeEqual(got, want);
        if (ok) keys.add(key as string);
      }
      if (!ok) {
        bad++;
        res.writeHead(400).end();
        return;
      }
      total++;
      res.writeHead(200, { 'content-length': '0' }).end();
    });
  };
  for (let i = 0; i < count; i++) {
    const server = http.createServer({ keepAliveTimeout: 30_000 }, handler(i));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  return {
    urls: servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`),
    setSecrets(secrets: string[]) {
      secrets.forEach((s, i) => {
        hooks[i] = new Webhook(s);
      });
    },
    stats: (): WebhookStats => ({ distinct: ids.size, httpDistinct: keys.size, total, bad }),
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

export interface WebhookReceivers {
  urls: string[];
  child: ChildProcess;
  setSecrets(secrets: string[]): Promise<void>;
  stats(): Promise<WebhookStats>;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(import.meta.url);

export async function startWebhookReceivers(opts: {
  count: number;
  httpSecret: string;
}): Promise<WebhookReceivers> {
  const p = await startLineProcess<{ urls: string[] }>(SCRIPT, opts);
  return {
    urls: p.ready.urls,
    child: p.child,
    async setSecrets(secrets) {
      await p.ask(`secrets ${JSON.stringify(secrets)}`);
    },
    stats: async () => (await p.ask('stats')) as WebhookStats,
    stop: () => p.stop(),
  };
}

async function main() {
  const opts = JSON.parse(process.argv[2] ?? '{}') as { count: number; httpSecret: string };
  const r = await serve(opts.count, opts.httpSecret);
  process.stdout.write(`${JSON.stringify({ urls: r.urls })}\n`);
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      const t = line.trim();
      if (t === 'stats') process.stdout.write(`${JSON.stringify(r.stats())}\n`);
      else if (t.startsWith('secrets ')) {
        r.setSecrets(JSON.parse(t.slice(8)) as string[]);
        process.stdout.write('{"ok":true}\n');
      }
    })
    .on('close', () => {
      r.close().then(() => process.exit(0));
    });
}

if (import.meta.main) await main();
