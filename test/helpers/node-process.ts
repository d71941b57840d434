/** Starts a real `rum fullnode` process on a free loopback port, for tests that talk HTTP to it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RUM_BIN = fileURLToPath(new URL('../../bin/rum.js', import.meta.url));

export interface NodeProcess {
  url: string;
  /** The gateway's URL (a full node's public listener for bridges); '' for a bootstrap node. */
  gatewayUrl: string;
  /** Everything the process printed on stdout up to readiness. */
  stdout: string;
  dir: string;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

export const TEST_PASSWORD = 'test-password';

/** The --configdir/--datadir/--keystoredir flags of a node living under `dir`. */
export function dirFlags(dir: string): string[] {
  return [
    '--configdir',
    join(dir, 'config'),
    '--datadir',
    join(dir, 'data'),
    '--keystoredir',
    join(dir, 'keystore'),
  ];
}

export function tempDir(prefix = 'rum-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startNodeProcess(
  opts: {
    dir?: string;
    args?: string[];
    timeoutMs?: number;
    command?: 'fullnode' | 'bootstrapnode';
    /** Flags for node itself, before the script (e.g. V8 options). */
    nodeArgs?: string[];
    /** A command that runs node, e.g. ['ip', 'netns', 'exec', ns]; it must exec, not fork. */
    wrap?: string[];
    /** The script to run instead of bin/rum.js (a benchmark's node driver); it gets the same flags. */
    script?: string;
    /** Environment of the process (default: this process's). */
    env?: NodeJS.ProcessEnv;
    /** Open an IPC channel to the process (child.send / process.on('message')). */
    ipc?: boolean;
  } = {},
): Promise<NodeProcess> {
  const dir = opts.dir ?? tempDir();
  const args = [
    opts.script ?? RUM_BIN,
    opts.command ?? 'fullnode',
    '--apihost',
    '127.0.0.1',
    '--apiport',
    '0',
    '--gatewayport',
    '0',
    ...dirFlags(dir),
    '--keystorepwd',
    TEST_PASSWORD,
    '--loglevel',
    'warn',
    ...(opts.args ?? []),
  ];
  const [cmd, ...cmdArgs] = [...(opts.wrap ?? []), process.execPath];
  const child = spawn(cmd!, [...cmdArgs, ...(opts.nodeArgs ?? []), ...args], {
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: opts.env } : {}),
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`node did not start in time:\n${err}`)),
      opts.timeoutMs ?? 20_000,
    );
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /API listening on (http:\/\/\S+)/.exec(out);
      const gateway = /gateway listening on (http:\/\/\S+)/.test(out);
      if (m && (gateway || opts.command === 'bootstrapnode')) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before it was ready:\n${err}`));
    });
  });
  // The exit code, or the name of the signal that ended the process.
  const exited = new Promise<number | string | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code, signal) => resolve(code ?? signal));
  });
  return {
    url,
    gatewayUrl: /gateway listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '',
    stdout: out,
    dir,
    child,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON responses.
type AnyJson = any;

export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: AnyJson; text: string }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    // Go writes int64 (Expired, last_updated) as exact numbers: keep them exact as bigint.
    json = JSON.parse(text, (_k, v, ctx?: { source?: string }) =>
      typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && ctx?.source
        ? BigInt(ctx.source)
        : v,
    );
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** Creates a public POA group over HTTP; answers quorum's {group_id, seed, ...}. */
export async function createPublicGroup(
  base: string,
  groupName: string,
): Promise<{ group_id: string; seed: string }> {
  const res = await api(base, 'POST', '/api/v1/group', {
    group_name: groupName,
    consensus_type: 'poa',
    encryption_type: 'public',
    app_key: 'group_bbs',
  });
  if (res.status !== 200) throw new Error(`creating group ${groupName}: ${res.status} ${res.text}`);
  return res.json;
}

/** Polls fn until it returns a truthy value; bounded by attempts. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false>,
  what: string,
  attempts = 100,
  delayMs = 100,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}
