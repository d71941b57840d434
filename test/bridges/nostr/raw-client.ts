/**
 * A raw Nostr client for conformance tests: sends frames as given over `ws` and hands back what
 * the relay answers, message by message, with bounded waits. Also a relay started on a temporary
 * node's gateway, and event signing with nostr-tools (an implementation independent of ours).
 */
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { nostrBridge } from '../../../bridges/nostr/index.ts';
import type { NostrEvent, RelayHandle, RelayPolicy } from '../../../bridges/nostr/types.ts';
import type { BridgePort } from '../../../bridges/port.ts';
import type { ConfigInput } from '../../../src/config/schema.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { openTempNode } from '../../helpers/temp-node.ts';

// biome-ignore lint/suspicious/noExplicitAny: relay messages are free-form JSON arrays
export type Msg = any[];

export class RawClient {
  readonly ws: WebSocket;
  private readonly queue: Msg[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The AUTH challenge the relay sent on connect. */
  challenge = '';

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Msg;
      if (m[0] === 'AUTH' && !this.challenge) this.challenge = m[1];
      else this.queue.push(m);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: String(reason) });
        this.wake();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<RawClient> {
    const ws = new WebSocket(url, options);
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await c.waitFor(() => c.challenge !== '', 'the AUTH challenge');
    return c;
  }

  private async waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`closed waiting for ${what}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** The first message (in order) that `pred` takes, removed from the queue; waits for it. */
  async take(pred: (m: Msg) => boolean = () => true, what = 'a message'): Promise<Msg> {
    let found: Msg | undefined;
    await this.waitFor(() => {
      const i = this.queue.findIndex(pred);
      if (i < 0) return false;
      found = this.queue.splice(i, 1)[0];
      return true;
    }, what);
    return found!;
  }

  /** Sends an EVENT and answers its OK: [accepted, message]. */
  async publish(e: NostrEvent | Record<string, unknown>): Promise<[boolean, string]> {
    this.send(['EVENT', e]);
    const ok = await this.take((m) => m[0] === 'OK' && m[1] === e.id, `OK of ${String(e.id)}`);
    return [ok[2], ok[3]];
  }

  /** A REQ's stored events (until EOSE), or the CLOSED that refuses it; then CLOSEs it. */
  async req(
    subId: string,
    ...filters: unknown[]
  ): Promise<{ events: NostrEvent[]; closed?: string }> {
    const r = await this.subscribe(subId, ...filters);
    if (r.closed === undefined) this.send(['CLOSE', subId]);
    return r;
  }

  /** Sends a REQ and collects its stored events until EOSE; the subscription stays open. */
  async subscribe(
    subId: string,
    ...filters: unknown[]
  ): Promise<{ events: NostrEvent[]; closed?: string }> {
    this.send(['REQ', subId, ...filters]);
    const events: NostrEvent[] = [];
    for (;;) {
      const m = await this.take(
        (x) => (x[0] === 'EVENT' || x[0] === 'EOSE' || x[0] === 'CLOSED') && x[1] === subId,
        `EOSE of ${subId}`,
      );
      if (m[0] === 'EVENT') events.push(m[2]);
      else if (m[0] === 'EOSE') return { events };
      else return { events, closed: m[2] };
    }
  }

  async count(subId: string, ...filters: unknown[]): Promise<Msg> {
    this.send(['COUNT', subId, ...filters]);
    return this.take((x) => (x[0] === 'COUNT' || x[0] === 'CLOSED') && x[1] === subId);
  }

  /** Messages received and not taken. */
  pending(): Msg[] {
    return [...this.queue];
  }

  /** Forgets the messages received and not taken. */
  clear(): void {
    this.queue.length = 0;
  }

  close(): void {
    this.ws.close();
  }
}

/** A key pair for tests. */
export function newKey(): { secret: Uint8Array; pubkey: string } {
  const secret = generateSecretKey();
  return { secret, pubkey: getPublicKey(secret) };
}

/** An event signed by nostr-tools. */
export function signed(
  secret: Uint8Array,
  t: { kind: number; content?: string; tags?: string[][]; created_at?: number },
): NostrEvent {
  const e = finalizeEvent(
    {
      kind: t.kind,
      content: t.content ?? '',
      tags: t.tags ?? [],
      created_at: t.created_at ?? Math.floor(Date.now() / 1000),
    },
    secret,
  );
  return {
    id: e.id,
    pubkey: e.pubkey,
    created_at: e.created_at,
    kind: e.kind,
    tags: e.tags,
    content: e.content,
    sig: e.sig,
  };
}

export interface TestRelay {
  node: RumNode;
  gateway: Gateway;
  bridge: ReturnType<typeof nostrBridge>;
  /** ws://127.0.0.1:port/ */
  url: string;
  stop(): Promise<void>;
}

/** A temporary node with its gateway on a port the OS picks, serving the Nostr relay. */
export async function startRelay(
  config: ConfigInput = {},
  policy?: (handle: RelayHandle, port: BridgePort) => RelayPolicy,
): Promise<TestRelay> {
  const { node } = await openTempNode({ gatewayPort: 0, ...config });
  const bridge = nostrBridge({ config: node.config, db: node.store.db, policy });
  const gateway = await startGateway(node, [bridge]);
  return {
    node,
    gateway,
    bridge,
    url: `${gateway.url.replace(/^http/, 'ws')}/`,
    async stop() {
      await gateway.stop();
      await node.stop();
    },
  };
}
