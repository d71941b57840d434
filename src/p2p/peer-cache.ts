/**
 * A persistent address book: every identified peer is remembered in SQLite with its listen
 * addresses, and a restarted node dials the most recently seen ones, so it finds the network
 * again even when its bootstrap nodes are gone (as Jami does).
 */
import type { Libp2p, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { desc, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../storage/db.ts';
import { peerCache } from '../storage/schema.ts';

export interface PeerCacheInit {
  /** How many cached peers to dial at start. */
  dialAtStart?: number;
  /** How many peers to keep. */
  keep?: number;
}

const MAX_ADDRS = 16;

export class PeerCache {
  private readonly db: Db;
  private readonly p2p: Libp2p;
  private readonly log: Logger;
  private readonly dialAtStart: number;
  private readonly keep: number;

  constructor(db: Db, p2p: Libp2p, log: Logger, init: PeerCacheInit = {}) {
    this.db = db;
    this.p2p = p2p;
    this.log = log;
    this.dialAtStart = init.dialAtStart ?? 30;
    this.keep = init.keep ?? 500;
  }

  start(): void {
    this.p2p.addEventListener('peer:identify', this.onIdentify);
    void this.redial();
  }

  stop(): void {
    this.p2p.removeEventListener('peer:identify', this.onIdentify);
  }

  private readonly onIdentify = (
    evt: CustomEvent<{ peerId: PeerId; listenAddrs: { toString(): string }[] }>,
  ) => {
    const addrs = evt.detail.listenAddrs.map(String).slice(0, MAX_ADDRS);
    if (addrs.length === 0) return;
    this.remember(evt.detail.peerId.toString(), addrs);
  };

  remember(peerId: string, addrs: string[]): void {
    const now = Date.now();
    this.db
      .insert(peerCache)
      .values({ peerId, addrs, lastSeen: now })
      .onConflictDoUpdate({ target: peerCache.peerId, set: { addrs, lastSeen: now } })
      .run();
    this.db
      .delete(peerCache)
      .where(
        sql`${peerCache.peerId} NOT IN (SELECT ${peerCache.peerId} FROM ${peerCache} ORDER BY ${peerCache.lastSeen} DESC LIMIT ${this.keep})`,
      )
      .run();
  }

  list(limit = this.dialAtStart): { peerId: string; addrs: string[]; lastSeen: number }[] {
    return this.db.select().from(peerCache).orderBy(desc(peerCache.lastSeen)).limit(limit).all();
  }

  /** Dials the most recently seen peers; failures are expected (peers come and go). */
  async redial(): Promise<number> {
    let connected = 0;
    await Promise.all(
      this.list().map(async (p) => {
        try {
          const id = peerIdFromString(p.peerId);
          if (id.equals(this.p2p.peerId)) return;
          await this.p2p.peerStore.merge(id, { multiaddrs: p.addrs.map((a) => multiaddr(a)) });
          await this.p2p.dial(id, { signal: AbortSignal.timeout(10_000) });
          connected++;
        } catch (err) {
          this.log.debug(
            { peer: p.peerId, err: (err as Error).message },
            'cached peer not reachable',
          );
        }
      }),
    );
    return connected;
  }
}
