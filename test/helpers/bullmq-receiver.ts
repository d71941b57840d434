/**
 * Loopback HTTP receivers of deliveries, for tests and benchmarks: each answers 200 to a POST,
 * counts the distinct `Idempotency-Key`s it has seen (a repeat counts once) and, given the
 * secret, checks `X-Rum-Signature`. In process: `startReceivers()`. As its own process:
 * `node test/helpers/bullmq-receiver.ts '{"count":10,"secret":"s"}'` prints `{"urls":[…]}`,
 * then answers each `stats` line on stdin with a `ReceiverStats` JSON line; it exits when stdin
 * ends.
 */
import type { ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startLineProcess } from './line-process.ts';

export interface ReceiverStats {
  /** Distinct idempotency keys received. */
  distinct: number;
  /** Requests answered 2xx, repeats included. */
  total: number;
  /** Requests without a key, or with a bad signature (answered 400). */
  bad: number;
}

export interface Receivers {
  urls: string[];
  keys: Set<string>;
  stats(): ReceiverStats;
  close(): Promise<void>;
}

export async function startReceivers(opts: { count: number; secret?: string }): Promise<Receivers> {
  const keys = new Set<string>();
  let total = 0;
  let bad = 0;
  const servers: http.Server[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = req.headers['idempotency-key'];
      let ok = typeof key === 'string' && key.length > 0;
      if (ok && opts.secret !== undefined) {
        const want = Buffer.from(
          `sha256=${createHmac('sha256', opts.secret).update(Buffer.concat(chunks)).digest('hex')}`,
        );
        const got = Buffer.from(String(req.headers['x-rum-signature'] ?? ''));
        ok = got.length === want.length && timingSafeEqual(got, want);
      }
      if (!ok) {
        bad++;
        res.writeHead(400).end();
        return;
      }
      keys.add(key as string);
      total++;
      res.writeHead(200, { 'content-length': '0' }).end();
    });
  };
  for (let i = 0; i < opts.count; i++) {
    const server = http.createServer({ keepAliveTimeout: 30_000 }, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  return {
    urls: servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`),
    keys,
    stats: () => ({ distinct: keys.size, total, bad }),
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

export const RECEIVER_SCRIPT = fileURLToPath(import.meta.url);

export interface ReceiverProcess {
  urls: string[];
  child: ChildProcess;
  stats(): Promise<ReceiverStats>;
  stop(): Promise<void>;
}

/** Receivers in a process of their own. */
export async function startReceiverProcess(opts: {
  count: number;
  secret?: string;
}): Promise<ReceiverProcess> {
  const p = await startLineProcess<{ urls: string[] }>(RECEIVER_SCRIPT, opts);
  return {
    urls: p.ready.urls,
    child: p.child,
    stats: async () => (await p.ask('stats')) as ReceiverStats,
    stop: () => p.stop(),
  };
}

async function main() {
  const opts = JSON.parse(process.argv[2] ?? '{}') as { count: number; secret?: string };
  const r = await startReceivers(opts);
  process.stdout.write(`${JSON.stringify({ urls: r.urls })}\n`);
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      if (line.trim() === 'stats') process.stdout.write(`${JSON.stringify(r.stats())}\n`);
    })
    .on('close', () => {
      r.close().then(() => process.exit(0));
    });
}

if (import.meta.main) await main();
