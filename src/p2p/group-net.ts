/**
 * The network side of groups: one gossip topic per group (quorum's user_channel_<id>) carrying
 * trxs and blocks, validated before they are forwarded (invalid ones are rejected and lower
 * the sender's peer score), and block sync over /rum/sync/1.0.0 when a node is behind.
 */
import { type GossipSub, type Message, TopicValidatorResult } from '@libp2p/gossipsub';
import { createTopicScoreParams } from '@libp2p/gossipsub/score';
import type { Connection, Libp2p, PeerId } from '@libp2p/interface';
import { CID } from 'multiformats/cid';
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2';
import type { Logger } from 'pino';
import { checkBlockSelf } from '../chain/block.ts';
import { MultiProducer, verifyRoundChange, verifyVote } from '../chain/poa.ts';
import { checkFinality } from '../chain/producers.ts';
import { nowNs } from '../chain/clock.ts';
import type { GroupChain } from '../chain/group.ts';
import type { Block, Trx } from '../chain/pb.ts';
import { checkTrx } from '../chain/trx.ts';
import type { ChainLimits } from '../chain/group.ts';
import type { ChainStore } from '../storage/chain-store.ts';
import { MIN_VERIFY, type SignaturePool } from '../crypto/signature-pool.ts';
import { type SyncProgress, syncProgress } from './progress.ts';
import { handleSyncStream, requestBlocks, SYNC_PROTOCOL } from './sync.ts';
import {
  decodePackage,
  type Envelope,
  encodeBlockPackage,
  encodeProposalPackage,
  encodeRoundChangePackage,
  encodeTrxPackages,
  encodeVotePackage,
  groupOfTopic,
  prodChannel,
  userChannel,
} from './wire.ts';

export interface GroupNetworkComponents {
  p2p: Libp2p<{ pubsub: GossipSub }>;
  store: ChainStore;
  limits: ChainLimits;
  log: Logger;
  group(groupId: string): GroupChain | undefined;
  /** This node's signing key for a group (producers sign votes with it). */
  signKeyOf(groupId: string): Uint8Array;
  /** Worker threads that check signatures in bulk (created on first use). */
  signaturePool(): SignaturePool;
}

export interface GroupNetworkInit {
  /** How often a member re-sends its trxs that are not yet in a block. */
  rebroadcastMs?: number;
  /** How often every group asks its peers whether it is behind. */
  resyncMs?: number;
  syncBatch?: number;
}

const MAX_FUTURE_BLOCKS = 1024;
/** While catching up, consecutive blocks are committed together, up to this many trxs at once. */
const SYNC_COMMIT_TRXS = 2000;
/** Below this many peers in a group's topic, a node looks for more through the DHT. */
const WANT_GROUP_PEERS = 4;

/** The DHT key under which a group's members announce themselves: sha256("rum-group:" + id). */
export async function groupRendezvous(groupId: string): Promise<CID> {
  const digest = await sha256Hasher.digest(new TextEncoder().encode(`rum-group:${groupId}`));
  return CID.createV1(0x55, digest);
}

/** The two members of @libp2p/gossipsub (17.1.1, pinned) that its own registrar hook uses. */
interface GossipStreams {
  streamsOutbound: Map<string, unknown>;
  onPeerConnected(peer: PeerId, connection: Connection): void;
}

export class GroupNetwork {
  private readonly c: GroupNetworkComponents;
  private readonly rebroadcastMs: number;
  private readonly resyncMs: number;
  private readonly syncBatch: number;
  private readonly joined = new Set<string>();
  private readonly syncing = new Map<string, Promise<void>>();
  private readonly syncAgain = new Set<string>();
  /** Blocks seen on gossip ahead of the head, waiting for their parents. */
  private readonly future = new Map<string, Map<number, Block>>();
  private readonly bestSeen = new Map<string, number>();
  private readonly producersOf = new Map<string, MultiProducer>();
  /** Packages decoded by the validator, by message data, for the message handler. */
  private readonly validated = new WeakMap<Uint8Array, Envelope>();
  private timers: NodeJS.Timeout[] = [];
  private running = false;

  constructor(components: GroupNetworkComponents, init: GroupNetworkInit = {}) {
    this.c = components;
    this.rebroadcastMs = init.rebroadcastMs ?? 5_000;
    this.resyncMs = init.resyncMs ?? 20_000;
    this.syncBatch = init.syncBatch ?? 100;
  }

  private get pubsub(): GossipSub {
    return this.c.p2p.services.pubsub;
  }

  async start(): Promise<void> {
    this.running = true;
    await this.c.p2p.handle(SYNC_PROTOCOL, (stream) => handleSyncStream(stream, this), {
      maxInboundStreams: 32,
      maxOutboundStreams: 32,
    });
    this.pubsub.addEventListener('message', this.onMessage);
    this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange);
    this.c.p2p.addEventListener('connection:close', this.onConnectionClose);
    this.timers.push(setInterval(() => this.rebroadcast(), this.rebroadcastMs).unref());
    this.timers.push(setInterval(() => this.resyncAll(), this.resyncMs).unref());
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const mp of this.producersOf.values()) mp.stop();
    this.producersOf.clear();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.pubsub.removeEventListener('message', this.onMessage);
    this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange);
    this.c.p2p.removeEventListener('connection:close', this.onConnectionClose);
    await Promise.allSettled([...this.syncing.values()]);
    await this.c.p2p.unhandle(SYNC_PROTOCOL).catch(() => {});
  }

  /**
   * gossipsub keeps one outbound stream per peer, opened when libp2p reports a connection, and
   * skips opening one while another exists. When a peer's connection is replaced (DCUtR or an
   * upgrade closes the relayed one, or a reconnect races the old connection's teardown), the
   * stream dies with the old connection and none is opened again: the peer stays subscribed
   * but is sent nothing. So when a connection closes and the peer has another open, unlimited
   * one, gossipsub is handed that connection, as libp2p's registrar would do.
   */
  private readonly onConnectionClose = (evt: CustomEvent<Connection>): void => {
    const peer = evt.detail.remotePeer;
    setTimeout(() => {
      if (!this.running) return;
      const open = this.c.p2p
        .getConnections(peer)
        .find((c) => c.status === 'open' && c.limits === undefined);
      const gossip = this.pubsub as unknown as GossipStreams;
      if (open && !gossip.streamsOutbound.has(peer.toString())) gossip.onPeerConnected(peer, open);
    }, 100).unref();
  };

  // ---- membership ----
  join(g: GroupChain): void {
    const topic = userChannel(g.groupId);
    if (this.joined.has(g.groupId)) return;
    this.joined.add(g.groupId);
    // Per-topic scoring, so that a peer whose messages we reject loses standing in the mesh.
    const params = (
      this.pubsub as unknown as { score?: { params: { topics: Record<string, unknown> } } }
    ).score?.params;
    if (params) {
      params.topics[topic] = createTopicScoreParams({
        topicWeight: 1,
        invalidMessageDeliveriesWeight: -100,
        invalidMessageDeliveriesDecay: 0.9,
        firstMessageDeliveriesWeight: 1,
        firstMessageDeliveriesDecay: 0.9,
        firstMessageDeliveriesCap: 100,
        timeInMeshWeight: 0.01,
        timeInMeshQuantum: 1000,
        timeInMeshCap: 100,
        meshMessageDeliveriesWeight: 0,
        meshFailurePenaltyWeight: 0,
      });
    }
    this.pubsub.topicValidators.set(topic, (peer, msg) => this.validate(peer, msg));
    this.pubsub.subscribe(topic);
    this.refreshProducerRole(g);
    void this.sync(g.groupId);
    void this.rendezvous(g.groupId);
  }

  /**
   * Announces this node as a member of the group in the DHT and, while the group has few
   * peers, dials other announced members: two members that share only a bootstrap node meet.
   */
  async rendezvous(groupId: string): Promise<number> {
    if (!this.running || !this.joined.has(groupId)) return 0;
    const cid = await groupRendezvous(groupId);
    const signal = AbortSignal.timeout(30_000);
    this.c.p2p.contentRouting.provide(cid, { signal }).catch((err: Error) => {
      this.c.log.debug(
        { groupId, err: err.message },
        'could not announce group membership in the DHT',
      );
    });
    if (this.groupPeers(groupId).length >= WANT_GROUP_PEERS) return 0;
    let dialed = 0;
    try {
      for await (const provider of this.c.p2p.contentRouting.findProviders(cid, { signal })) {
        if (provider.id.equals(this.c.p2p.peerId)) continue;
        if (this.c.p2p.getConnections(provider.id).length > 0) continue;
        try {
          if (provider.multiaddrs.length > 0) {
            await this.c.p2p.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs });
          }
          await this.c.p2p.dial(provider.id, { signal });
          dialed++;
        } catch {
          // an announced member that is gone or unreachable
        }
        if (this.groupPeers(groupId).length + dialed >= WANT_GROUP_PEERS) break;
      }
    } catch (err) {
      this.c.log.debug(
        { groupId, err: (err as Error).message },
        'DHT lookup for group members failed',
      );
    }
    return dialed;
  }

  leave(groupId: string): void {
    const topic = userChannel(groupId);
    this.joined.delete(groupId);
    this.future.delete(groupId);
    this.producersOf.get(groupId)?.stop();
    this.producersOf.delete(groupId);
    this.pubsub.unsubscribe(prodChannel(groupId));
    this.pubsub.topicValidators.delete(prodChannel(groupId));
    this.pubsub.unsubscribe(topic);
    this.pubsub.topicValidators.delete(topic);
  }

  /** Peers known to be in a group's topic. */
  groupPeers(groupId: string): string[] {
    return this.pubsub.getSubscribers(userChannel(groupId)).map(String);
  }

  /** The gossipsub score this node gives a peer (negative after invalid messages). */
  peerScore(peerId: string): number | undefined {
    const ps = this.pubsub as unknown as { getScore?: (id: string) => number };
    return ps.getScore?.(peerId);
  }

  bestKnownHeight(groupId: string): number {
    return this.bestSeen.get(groupId) ?? 0;
  }

  // ---- publishing ----
  /** All trxs of one group: one quorum TRX package for one trx, bundles for more. */
  publishTrxs(trxs: Trx[]): void {
    if (trxs.length === 0) return;
    const topic = userChannel(trxs[0]!.GroupId);
    for (const pkg of encodeTrxPackages(trxs)) this.publish(topic, pkg);
  }

  publishBlock(block: Block): void {
    this.publish(userChannel(block.GroupId), encodeBlockPackage(block));
  }

  private publish(topic: string, data: Uint8Array): void {
    if (!this.running) return;
    this.pubsub.publish(topic, data).catch((err: Error) => {
      this.c.log.debug({ topic, err: err.message }, 'publish failed');
    });
  }

  private rebroadcast(): void {
    for (const gid of this.joined) {
      const g = this.c.group(gid);
      if (!g || g.isSoleProducer) continue;
      // Only this node's own trxs: others' reached the producers from their authors.
      const pending = g.pendingTrxs().filter((t) => t.SenderPubkey === g.userPubkey);
      if (pending.length > 0) this.publishTrxs(pending);
    }
  }

  // ---- receiving ----
  /** Gossip validation: runs before a message is forwarded; Reject lowers the sender's score. */
  private async validate(_peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    const gid = groupOfTopic(msg.topic);
    const g = gid ? this.c.group(gid) : undefined;
    if (!g) return TopicValidatorResult.Ignore;
    let env: Envelope;
    try {
      env = decodePackage(msg.data, this.c.limits);
    } catch {
      return TopicValidatorResult.Reject;
    }
    this.validated.set(msg.data, env);
    if (env.kind === 'trxs') {
      const now = nowNs();
      let fresh = 0;
      for (const trx of env.trxs) {
        const check = checkTrx(trx, {
          groupId: g.groupId,
          maxTrxDataBytes: this.c.limits.maxTrxDataBytes,
          nowNs: now,
          signatures: g.signatures,
        });
        if (!check.ok) {
          if (check.reason === 'trx expired') continue;
          return TopicValidatorResult.Reject;
        }
        if (!g.knowsTrx(trx.TrxId)) fresh++;
      }
      return fresh > 0 ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
    }
    if (env.kind === 'vote') {
      const v = env.vote;
      if (v.GroupId !== g.groupId || !g.producers.includes(v.Pubkey) || !verifyVote(v)) {
        return TopicValidatorResult.Reject;
      }
      return v.BlockId <= g.head.blockId
        ? TopicValidatorResult.Ignore
        : TopicValidatorResult.Accept;
    }
    if (env.kind === 'roundChange') {
      const rc = env.roundChange;
      if (
        rc.GroupId !== g.groupId ||
        !g.producers.includes(rc.Pubkey) ||
        rc.LockedHash.length > 32 ||
        !verifyRoundChange(rc)
      ) {
        return TopicValidatorResult.Reject;
      }
      return rc.BlockId <= g.head.blockId
        ? TopicValidatorResult.Ignore
        : TopicValidatorResult.Accept;
    }
    const block = env.kind === 'block' ? env.block : env.proposal.Block;
    if (block.GroupId !== g.groupId) return TopicValidatorResult.Reject;
    if (!g.producers.includes(block.ProducerPubkey)) return TopicValidatorResult.Reject;
    if (!checkBlockSelf(block).ok) return TopicValidatorResult.Reject;
    // A final block at the next height must carry a producer majority now; for blocks further
    // ahead the producer set may still change, so that is checked when they are applied.
    if (
      env.kind === 'block' &&
      block.BlockId === g.head.blockId + 1 &&
      !checkFinality(block, g.producers).ok
    ) {
      return TopicValidatorResult.Reject;
    }
    if (block.Trxs.length > this.c.limits.maxTrxPerBlock) return TopicValidatorResult.Reject;
    for (const trx of block.Trxs) {
      if (trx.GroupId !== g.groupId || !g.signatures.verify(trx))
        return TopicValidatorResult.Reject;
    }
    return block.BlockId <= g.head.blockId
      ? TopicValidatorResult.Ignore
      : TopicValidatorResult.Accept;
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail;
    const gid = groupOfTopic(msg.topic);
    const g = gid ? this.c.group(gid) : undefined;
    if (!g) return;
    // gossipsub hands the handler the message it validated: reuse what the validator decoded.
    let env = this.validated.get(msg.data);
    if (!env) {
      try {
        env = decodePackage(msg.data, this.c.limits);
      } catch {
        return;
      }
    }
    if (env.kind === 'trxs') {
      if (!g.isProducer) return;
      const res = g.admitEach(env.trxs);
      if (res.rejected.length > 0) {
        this.c.log.debug(
          { groupId: g.groupId, reasons: res.rejected.slice(0, 5) },
          'gossiped trxs not admitted',
        );
      }
      return;
    }
    if (env.kind === 'block') {
      void this.onBlock(g, env.block);
      return;
    }
    const mp = this.producersOf.get(g.groupId);
    if (!mp) return;
    if (env.kind === 'proposal') void mp.onProposal(env.proposal);
    else if (env.kind === 'vote') void mp.onVote(env.vote);
    else mp.onRoundChange(env.roundChange);
  };

  /** Starts or stops this node's part in a group's producer rounds, as the producer set says. */
  refreshProducerRole(g: GroupChain): void {
    const topic = prodChannel(g.groupId);
    const wanted =
      this.running && this.joined.has(g.groupId) && g.isProducer && g.producers.length > 1;
    const current = this.producersOf.get(g.groupId);
    if (wanted && !current) {
      const mp = new MultiProducer(
        g,
        {
          sendProposal: (p) => this.publish(topic, encodeProposalPackage(p)),
          sendVote: (v) => this.publish(topic, encodeVotePackage(v)),
          sendRoundChange: (rc) => this.publish(topic, encodeRoundChangePackage(rc)),
          publishFinal: (b) => this.publishBlock(b),
        },
        this.c.signKeyOf(g.groupId),
        {
          get: (h) => this.c.store.producerState(g.groupId, h),
          set: (h, state) => this.c.store.saveProducerState(g.groupId, h, state),
        },
        {
          roundTimeoutMs: this.c.limits.producerRoundTimeoutMs,
          tickMs: Math.max(20, this.c.limits.blockIntervalMs),
          onError: (m) => this.c.log.debug({ groupId: g.groupId }, m),
        },
      );
      this.producersOf.set(g.groupId, mp);
      this.pubsub.topicValidators.set(topic, (peer, msg) => this.validate(peer, msg));
      this.pubsub.subscribe(topic);
      mp.start();
    } else if (!wanted && current) {
      current.stop();
      this.producersOf.delete(g.groupId);
      this.pubsub.unsubscribe(topic);
      this.pubsub.topicValidators.delete(topic);
    }
  }

  private async onBlock(g: GroupChain, block: Block): Promise<void> {
    this.noteHeight(g.groupId, block.BlockId);
    if (block.BlockId <= g.head.blockId) return;
    if (block.BlockId > g.head.blockId + 1) {
      let pending = this.future.get(g.groupId);
      if (!pending) {
        pending = new Map();
        this.future.set(g.groupId, pending);
      }
      if (pending.size < MAX_FUTURE_BLOCKS) pending.set(block.BlockId, block);
      void this.sync(g.groupId);
      return;
    }
    const r = await g.applyBlock(block);
    if (!r.ok) {
      this.c.log.warn(
        { groupId: g.groupId, blockId: block.BlockId, reason: r.reason },
        'gossiped block rejected',
      );
      return;
    }
    await this.applyFuture(g);
  }

  /** Applies blocks that arrived early once their parents are in. */
  private async applyFuture(g: GroupChain): Promise<void> {
    const pending = this.future.get(g.groupId);
    if (!pending) return;
    for (;;) {
      const next = pending.get(g.head.blockId + 1);
      if (!next) break;
      pending.delete(next.BlockId);
      if (!(await g.applyBlock(next)).ok) break;
    }
    for (const id of pending.keys()) if (id <= g.head.blockId) pending.delete(id);
  }

  private readonly onSubscriptionChange = (
    evt: CustomEvent<{ subscriptions: { topic: string; subscribe: boolean }[] }>,
  ) => {
    for (const s of evt.detail.subscriptions) {
      const gid = groupOfTopic(s.topic);
      if (s.subscribe && gid && this.joined.has(gid)) void this.sync(gid);
    }
  };

  private noteHeight(groupId: string, height: number): void {
    if (height > (this.bestSeen.get(groupId) ?? 0)) this.bestSeen.set(groupId, height);
  }

  // ---- sync ----
  /** BlockSource for peers: the blocks this node stores, as stored (never decoded and re-encoded). */
  blocksFor(
    groupId: string,
    from: number,
    count: number,
    maxBytes: number,
  ): { blocks: Uint8Array[]; top: number } | null {
    const g = this.c.group(groupId);
    if (!g || from < 0) return null;
    const top = g.head.blockId;
    const blocks = this.c.store.blockFramesRange(
      groupId,
      from,
      Math.min(count, top - from + 1),
      maxBytes,
    );
    return { blocks, top };
  }

  private resyncAll(): void {
    for (const gid of this.joined) {
      void this.sync(gid);
      if (this.groupPeers(gid).length < WANT_GROUP_PEERS) void this.rendezvous(gid);
    }
  }

  /** Catches a group up with its peers; one run per group at a time, rerun if asked meanwhile. */
  sync(groupId: string): Promise<void> {
    const running = this.syncing.get(groupId);
    if (running) {
      this.syncAgain.add(groupId);
      return running;
    }
    const run = this.runSync(groupId).finally(() => {
      this.syncing.delete(groupId);
      if (this.syncAgain.delete(groupId) && this.running) void this.sync(groupId);
    });
    this.syncing.set(groupId, run);
    return run;
  }

  private candidates(groupId: string): PeerId[] {
    const members = this.pubsub.getSubscribers(userChannel(groupId));
    // Shuffle so that successive batches spread over the peers that have the group.
    return members
      .map((p) => ({ p, k: Math.random() }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.p);
  }

  /** One sync request; null when the peer did not answer (logged). */
  private async fetchBlocks(
    peer: PeerId,
    groupId: string,
    from: number,
  ): Promise<{ blocks: Block[]; top: number } | null> {
    try {
      const res = await requestBlocks(this.c.p2p, peer, groupId, from, this.syncBatch);
      this.noteHeight(groupId, res.top);
      return res;
    } catch (err) {
      this.c.log.debug(
        { groupId, peer: peer.toString(), err: (err as Error).message },
        'sync request failed',
      );
      return null;
    }
  }

  /**
   * Catches a group up from its peers. From one peer at a time, batch after batch: while the
   * main thread validates and commits a batch, the next one is already being fetched, and its trx
   * signatures are checked on worker threads (src/crypto/signature-pool.ts) before it is applied.
   * A peer that fails or sends an invalid block is left for the next one.
   */
  private async runSync(groupId: string): Promise<void> {
    const g = this.c.group(groupId);
    if (!g || !this.running) return;
    let progress: SyncProgress | null = null;
    try {
      for (;;) {
        if (!this.running || !this.joined.has(groupId)) return;
        let progressed = false;
        for (const peer of this.candidates(groupId)) {
          // Each block's signatures go to the workers as soon as its batch arrives, so that they
          // are checked while the blocks before them are applied.
          const request = async (from: number) => {
            const res = await this.fetchBlocks(peer, groupId, from);
            if (!res || res.blocks.length === 0) return null;
            // Small blocks are checked on this thread as they are validated (no workers started).
            const big = res.blocks.some((b) => b.Trxs.length >= MIN_VERIFY);
            const pool = big ? this.c.signaturePool() : null;
            const checked = res.blocks.map((b) =>
              pool ? g.signatures.preverify(b.Trxs, pool) : Promise.resolve(),
            );
            return { ...res, checked };
          };
          let answer = request(g.head.blockId + 1);
          for (;;) {
            const res = await answer;
            if (!res) break;
            // Blocks that gossip committed meanwhile are skipped; a gap means asking again.
            const first = res.blocks.findIndex((b) => b.BlockId > g.head.blockId);
            if (first < 0 || res.blocks[first]!.BlockId !== g.head.blockId + 1) break;
            if (!this.running || !this.joined.has(groupId)) return;
            g.status = 'SYNCING';
            const last = res.blocks[res.blocks.length - 1]!.BlockId;
            answer = last < res.top ? request(last + 1) : Promise.resolve(null);
            let bad = false;
            // Runs of blocks up to SYNC_COMMIT_TRXS trxs each: one SQLite transaction a run.
            for (let i = first; i < res.blocks.length && !bad; ) {
              let j = i + 1;
              let n = res.blocks[i]!.Trxs.length;
              while (j < res.blocks.length && n + res.blocks[j]!.Trxs.length <= SYNC_COMMIT_TRXS)
                n += res.blocks[j++]!.Trxs.length;
              await Promise.all(res.checked.slice(i, j));
              const r = await g.applyBlocks(res.blocks.slice(i, j));
              if (!r.check.ok) {
                this.c.log.warn(
                  { groupId, peer: peer.toString(), reason: r.check.reason },
                  'peer sent an invalid block',
                );
                bad = true;
              }
              i = j;
            }
            if (bad) break;
            progressed = true;
            await this.applyFuture(g);
            progress ??= syncProgress(this.c.log, groupId, g.row.groupName);
            progress.update(g.head.blockId, this.bestKnownHeight(groupId));
          }
          // A request still under way for a peer given up on: wait, so none outlives the sync.
          await answer;
          if (progressed) break;
        }
        if (!progressed) return;
      }
    } finally {
      g.status = 'IDLE';
      progress?.done(g.head.blockId);
    }
  }
}
