/** Several real nodes in one process, each with its own libp2p host on loopback. */
import pino from 'pino';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createP2PHost } from '../../src/p2p/host.ts';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import type { RumNode } from '../../src/node.ts';
import { openTempNode } from './temp-node.ts';

export const LOOPBACK = '/ip4/127.0.0.1/tcp/0';

/** Fast network timers for tests (the defaults are tuned for real networks). */
export const NET_TEST_LIMITS = {
  trxRebroadcastMs: 500,
  resyncIntervalMs: 1000,
  blockIntervalMs: 50,
};

export async function startBootstrap() {
  const host = await createP2PHost({
    nodeKey: generatePrivateKey(),
    listen: [LOOPBACK],
    bootstrap: [],
    networkName: 'staten',
    role: 'bootstrap',
  });
  await host.start();
  return { host, addr: host.getMultiaddrs()[0]!.toString() };
}

/** A started node listening on loopback; `limits` default to the fast test timers ({} = defaults). */
export async function startMember(
  bootstrap: string[],
  dir?: string,
  limits: ConfigInput['limits'] = NET_TEST_LIMITS,
): Promise<{ node: RumNode; dir: string }> {
  const opened = await openTempNode({ listen: [LOOPBACK], peers: bootstrap, limits }, dir);
  await opened.node.start();
  return opened;
}

export async function until<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 30_000,
  stepMs = 50,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const quiet = pino({ level: 'silent' });
