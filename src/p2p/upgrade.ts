/**
 * Relayed connections become direct ones when a direct path is known. DCUtR (libp2p) tries once,
 * when a relayed connection opens; a peer whose router forwards its port a moment later (UPnP), or
 * whose public address is learned afterwards, would otherwise stay on the relay for good. So the
 * node also tries when the peer store learns a peer's addresses (identify and its pushes), a few
 * seconds later so that DCUtR goes first, and every minute for the peers it reaches only through
 * a relay; a peer is tried at most once a minute.
 */
import type { Connection, Libp2p, Peer, PeerId } from '@libp2p/interface';
import { isPrivateIp } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';

const RETRY_MS = 60_000;
const AFTER_DCUTR_MS = 3_000;

export const isRelayed = (a: { toString(): string }): boolean =>
  a.toString().includes('/p2p-circuit');

/** A direct TCP or WebSocket address on a public IP. */
export function isPublicDirect(ma: { toString(): string }): boolean {
  const m = /^\/ip[46]\/([^/]+)\/tcp\/\d+/.exec(ma.toString());
  return m !== null && !isRelayed(ma) && isPrivateIp(m[1]!) === false;
}

/**
 * Dials a peer at the given addresses. When the peer is reached only through a relay and an
 * address is direct, it opens a direct connection (libp2p would hand back the relayed one) and
 * then closes the relayed ones, as DCUtR does.
 */
export async function dialUpgrading(
  p2p: Libp2p,
  peer: PeerId,
  addrs: Multiaddr[],
  signal: AbortSignal,
): Promise<Connection> {
  // A copy: libp2p hands out its live list, which the dial below extends.
  const existing = [...p2p.getConnections(peer)];
  const upgrade =
    addrs.some((a) => !isRelayed(a)) &&
    existing.length > 0 &&
    existing.every((c) => isRelayed(c.remoteAddr));
  const target = upgrade ? addrs.filter((a) => !isRelayed(a)) : addrs;
  const conn = await p2p.dial(target, { signal, ...(upgrade ? { force: true } : {}) });
  if (upgrade && !isRelayed(conn.remoteAddr)) {
    await Promise.all(
      existing.map((c) => c.close({ signal }).catch(() => c.abort(new Error('upgraded')))),
    );
  }
  return conn;
}

export class DirectUpgrader {
  private readonly p2p: Libp2p;
  private readonly tried = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(p2p: Libp2p) {
    this.p2p = p2p;
  }

  private readonly pending = new Set<NodeJS.Timeout>();

  start(): void {
    this.p2p.addEventListener('peer:update', this.onUpdate);
    this.timer ??= setInterval(() => this.sweep(), RETRY_MS);
  }

  stop(): void {
    this.p2p.removeEventListener('peer:update', this.onUpdate);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }

  private readonly onUpdate = (evt: CustomEvent<{ peer: Peer }>) => {
    const { peer } = evt.detail;
    if (!peer.addresses.some((a) => isPublicDirect(a.multiaddr))) return;
    const t = setTimeout(() => {
      this.pending.delete(t);
      void this.tryPeer(
        peer.id,
        peer.addresses.map((a) => a.multiaddr),
      );
    }, AFTER_DCUTR_MS);
    this.pending.add(t);
  };

  private sweep(): void {
    for (const peer of this.p2p.getPeers()) {
      void this.p2p.peerStore
        .get(peer)
        .then((p) =>
          this.tryPeer(
            peer,
            p.addresses.map((a) => a.multiaddr),
          ),
        )
        .catch(() => {});
    }
  }

  private async tryPeer(peer: PeerId, addrs: Multiaddr[]): Promise<void> {
    const conns = this.p2p.getConnections(peer);
    if (conns.length === 0 || !conns.every((c) => isRelayed(c.remoteAddr))) return;
    const direct = addrs.filter(isPublicDirect);
    if (direct.length === 0) return;
    const key = peer.toString();
    const now = Date.now();
    if (now - (this.tried.get(key) ?? 0) < RETRY_MS) return;
    this.tried.set(key, now);
    if (this.tried.size > 10_000) this.tried.clear();
    try {
      await dialUpgrading(this.p2p, peer, direct, AbortSignal.timeout(10_000));
    } catch {
      // not reachable directly after all: the relayed connection stays
    }
  }
}
