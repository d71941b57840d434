/**
 * Redis for the BullMQ tests: the shared one (REDIS_URL, default 127.0.0.1:6379) with a key
 * prefix per test run, removed afterwards; or a `redis-server` a test starts on its own port
 * (with an AOF, so it can be killed -9 and restarted with what it had acknowledged).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Key prefix of this test run: every queue a test makes lives under it. */
export function runPrefix(tag: string): string {
  return `rumtest-${tag}-${process.pid}-${Date.now().toString(36)}`;
}

/** null when Redis answers PING, or why not. */
export async function redisUnreachable(url = REDIS_URL, timeoutMs = 2000): Promise<string | null> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let cause = '';
  r.on('error', (e: Error) => {
    cause ||= e.message;
  });
  try {
    await r.connect();
    await r.ping();
    return null;
  } catch (e) {
    return `Redis at ${url} unreachable: ${cause || (e as Error).message}`;
  } finally {
    r.disconnect();
  }
}

/** Deletes every key matching `pattern` (SCAN, not KEYS). */
export async function dropKeys(pattern: string, url = REDIS_URL): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

export const REDIS_SERVER = '/usr/bin/redis-server';

export function hasRedisServer(): boolean {
  return existsSync(REDIS_SERVER);
}

/** A port the OS says is free now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface OwnRedis {
  url: string;
  port: number;
  dir: string;
  child: ChildProcess;
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (it loads its AOF). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  cleanup(): Promise<void>;
}

/**
 * A redis-server of its own on a free loopback port: AOF on, by default fsync on every write
 * (so a kill -9 loses nothing it acknowledged), no RDB snapshots.
 */
export async function startOwnRedis(
  opts: { appendfsync?: 'always' | 'everysec' | 'no' } = {},
): Promise<OwnRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'rum-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    opts.appendfsync ?? 'always',
    '--save',
    '',
    '--protected-mode',
    'yes',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  let child: ChildProcess;
  let log = '';
  const launch = async () => {
    child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => {
      log += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      log += c.toString();
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
      if ((await redisUnreachable(`redis://127.0.0.1:${port}`, 500)) === null) return;
      if (Date.now() > deadline) throw new Error(`redis-server not answering: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  const stop = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await gone;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get child() {
      return child;
    },
    kill: () => stop('SIGKILL'),
    restart: launch,
    async cleanup() {
      await stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
