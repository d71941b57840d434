/**
 * A scripted outside Nostr relay for tests of publishing (a `ws` server on loopback, port picked
 * by the OS): it records every EVENT and AUTH it receives, answers each EVENT as the test says
 * (accepted, a prefixed refusal, or nothing at all), can ask for NIP-42 AUTH, and can be "down"
 * (the WebSocket upgrade answered 503, open connections dropped).
 */
import type { AddressInfo } from 'node:net';
import { verifyEvent } from 'nostr-tools/pure';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import type { NostrEvent } from '../../../bridges/nostr/types.ts';

export interface ScriptedRelay {
  /** ws://127.0.0.1:port */
  readonly url: string;
  /** Every EVENT received, in order (an event sent twice is here twice). */
  readonly events: NostrEvent[];
  /** Every AUTH event received that was valid for this relay's challenge. */
  readonly auths: NostrEvent[];
  /** How an EVENT is answered: `[accepted, message]`, or null for no answer at all. */
  answer: (e: NostrEvent, authed: boolean) => [boolean, string] | null;
  /** Whether the upgrade is refused (503): setDown. */
  readonly down: boolean;
  /** When true, each connection is sent an AUTH challenge as it opens. */
  challenge: boolean;
  /** WebSocket connections accepted so far. */
  readonly connections: () => number;
  /** How many times an event id was received. */
  received(id: string): number;
  /** Sends a raw frame to every open connection. */
  broadcast(frame: string): void;
  /** Down: the upgrade is refused (503) and open connections are dropped; or up again. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startScriptedRelay(): Promise<ScriptedRelay> {
  let accepted = 0;
  const state = {
    down: false,
  };
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, cb) => (state.down ? cb(false, 503, 'down for the test') : cb(true)),
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const relay: ScriptedRelay = {
    url,
    events: [],
    auths: [],
    answer: () => [true, ''],
    get down() {
      return state.down;
    },
    challenge: false,
    connections: () => accepted,
    received: (id) => relay.events.filter((e) => e.id === id).length,
    broadcast(frame) {
      for (const c of wss.clients) c.send(frame);
    },
    setDown(v) {
      state.down = v;
      if (v) for (const c of wss.clients) c.terminate();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (ws: WebSocket) => {
    accepted++;
    const challenge = `challenge-${accepted}-${Math.random().toString(36).slice(2)}`;
    let authed = false;
    if (relay.challenge) ws.send(JSON.stringify(['AUTH', challenge]));
    ws.on('message', (data) => {
      let m: unknown[];
      try {
        m = JSON.parse(String(data)) as unknown[];
      } catch {
        return;
      }
      if (m[0] === 'EVENT') {
        const e = m[1] as NostrEvent;
        relay.events.push(e);
        const a = relay.answer(e, authed);
        if (a) ws.send(JSON.stringify(['OK', e.id, a[0], a[1]]));
      } else if (m[0] === 'AUTH') {
        const e = m[1] as NostrEvent;
        const ok =
          verifyEvent(e) &&
          e.kind === 22242 &&
          e.tags.some((t) => t[0] === 'challenge' && t[1] === challenge) &&
          e.tags.some((t) => t[0] === 'relay' && t[1] === url);
        if (ok) {
          authed = true;
          relay.auths.push(e);
        }
        ws.send(JSON.stringify(['OK', e.id, ok, ok ? '' : 'invalid: bad AUTH']));
      }
    });
  });
  return relay;
}
