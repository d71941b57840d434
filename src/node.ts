/**
 * RumNode composes keystore, storage, groups and the API into a running node and owns the
 * start/stop order. Bridges and the HTTP routes use its methods, never the tables directly.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { GossipSub } from '@libp2p/gossipsub';
import type { Libp2p } from '@libp2p/interface';
import type { Logger } from 'pino';
import {
  announceSignedBytes,
  effectOf,
  producerSignedBytes,
  userSignedBytes,
} from './chain/apply.ts';
import { createGenesisBlock } from './chain/block.ts';
import { nowNs } from './chain/clock.ts';
import { checkPostPayload, ContentError, goJsonMarshal, type JsonObject } from './chain/content.ts';
import {
  type CommittedEvent,
  GroupChain,
  type GroupEvents,
  type PostSealer,
  type TrxAuthor,
  TrxRejectedError,
} from './chain/group.ts';
import {
  ActionType,
  AnnounceItemDesc,
  AnnounceType,
  ApproveType,
  AppConfigItemDesc,
  AppConfigType,
  BFTProducerBundleItemDesc,
  ChainConfigItemDesc,
  ChainConfigType,
  ChainSendTrxRuleListItemDesc,
  GroupConsenseType,
  GroupEncryptType,
  SetTrxAuthModeItemDesc,
  encodeBlock,
  type Trx,
  TrxType,
  UserItemDesc,
} from './chain/pb.ts';
import { encodeMessage } from './chain/protobuf.ts';
import { SignatureCache } from './chain/trx.ts';
import { decodeSeedUrl, encodeSeedUrl, type GroupSeed, SeedError } from './chain/seed.ts';
import type { Config } from './config/schema.ts';
import { concatBytes, fromBase64Url, toHex, utf8Bytes } from './crypto/encoding.ts';
import { decodePubkey, encodePubkey, publicKeyOf } from './crypto/keys.ts';
import { type Keystore, openKeystore } from './crypto/keystore.ts';
import { BatchSigner, SignaturePool } from './crypto/signature-pool.ts';
import { sha256, signDigest } from './crypto/sign.ts';
import { BadRequestError, ConflictError, NotFoundError } from './errors.ts';
import { createMetrics, type NodeMetrics, reasonLabel } from './metrics.ts';
import { ChainStore, type GroupRow } from './storage/chain-store.ts';
import { generateAgeKeyPair, openWith, sealTo } from './crypto/sealing.ts';
import { openDatabase } from './storage/db.ts';
import { GroupNetwork } from './p2p/group-net.ts';
import { PeerCache } from './p2p/peer-cache.ts';
import { createP2PHost } from './p2p/host.ts';
import { DirectUpgrader } from './p2p/upgrade.ts';

export { NODE_VERSION } from './version.ts';

/** A trx refused by the chain is the caller's error (HTTP 400). */
/** A stored payload as a JSON object, or null when it is none (or unreadable here). */
function parseObject(data: Uint8Array | null): Record<string, unknown> | null {
  if (!data) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null; // Not JSON: such a payload carries no event.
  }
}

function asBadRequest(err: unknown): unknown {
  return err instanceof TrxRejectedError ? new BadRequestError(err.message) : err;
}

export interface CreateGroupInput {
  groupName: string;
  consensusType: 'poa' | 'pos';
  encryptionType: 'public' | 'private';
  appKey: string;
}

export interface RumNodeInit {
  config: Config;
  logger: Logger;
  keystorePassword: string;
  /** A keystore already being opened with that password (lets start-up overlap scrypt with loading). */
  keystore?: Promise<Keystore>;
  /** scrypt cost of a new keystore; tests lower it. */
  keystoreScryptN?: number;
  /**
   * What the node adds to a public post it makes for its own key, before the trx is built and
   * signed: `rum fullnode` passes the Nostr bridge's author-signed event (bridges/nostr/author.ts
   * `authorSigned`), so every relay of the group serves the post under the author's own key.
   * Answers the payload unchanged (the same object) when it adds nothing. None by default: the
   * node itself knows nothing of bridges.
   */
  postExtension?: PostExtension;
}

/** A committed item as a post extension reads it: its payload and who sent it. */
export interface ExtensionRead {
  payload: Record<string, unknown> | null;
  senderPubkey: string;
}

export type PostExtension = (
  payload: unknown,
  groupId: string,
  priv: Uint8Array,
  read: (trxId: string) => ExtensionRead | undefined,
) => unknown;

export class RumNode {
  readonly config: Config;
  readonly log: Logger;
  readonly store: ChainStore;
  readonly keystore: Keystore;
  readonly metrics: NodeMetrics;
  readonly events = new EventEmitter<GroupEvents>();
  readonly peerId: string;
  readonly nodePublicKey: Uint8Array;
  readonly p2p: Libp2p<{ pubsub: GossipSub }>;
  readonly net: GroupNetwork;
  readonly peers: PeerCache;
  /** Turns relayed connections into direct ones once a direct path is known (src/p2p/upgrade.ts). */
  private readonly upgrader: DirectUpgrader;
  private readonly groupsById = new Map<string, GroupChain>();
  private readonly postExtension: PostExtension | undefined;
  /** Trx signatures this node verified or made, shared by its groups (never by other nodes). */
  private readonly signatures = new SignatureCache();
  /** Worker threads for signatures in bulk (catching up, many posts at once); started on first use. */
  private pool: SignaturePool | null = null;
  private readonly signer = new BatchSigner(() => this.signaturePool());
  private started = false;

  private constructor(
    init: RumNodeInit,
    keystore: Keystore,
    store: ChainStore,
    p2p: Libp2p<{ pubsub: GossipSub }>,
    nodePub: Uint8Array,
  ) {
    this.config = init.config;
    this.log = init.logger;
    this.postExtension = init.postExtension;
    this.keystore = keystore;
    this.store = store;
    this.p2p = p2p;
    this.peerId = p2p.peerId.toString();
    this.peers = new PeerCache(store.db, p2p, init.logger);
    this.upgrader = new DirectUpgrader(p2p);
    this.net = new GroupNetwork(
      {
        p2p,
        store,
        limits: init.config.limits,
        log: init.logger,
        group: (id) => this.groupsById.get(id),
        signKeyOf: (id) => this.keystore.get('sign', id),
        signaturePool: () => this.signaturePool(),
      },
      {
        rebroadcastMs: init.config.limits.trxRebroadcastMs,
        resyncMs: init.config.limits.resyncIntervalMs,
        syncBatch: init.config.limits.syncBatchBlocks,
      },
    );
    this.nodePublicKey = nodePub;
    this.metrics = createMetrics(() => {
      let n = 0;
      for (const g of this.groupsById.values()) n += g.mempoolSize;
      return n;
    });
    this.events.setMaxListeners(100);
    this.events.on('committed', (e) => {
      this.observeCommit(e);
      if (e.trxs.some(({ trx }) => trx.Type === TrxType.PRODUCER)) {
        const g = this.groupsById.get(e.groupId);
        if (g) this.net.refreshProducerRole(g);
      }
    });
  }

  private signaturePool(): SignaturePool {
    this.pool ??= new SignaturePool();
    return this.pool;
  }

  static async open(init: RumNodeInit): Promise<RumNode> {
    const { config } = init;
    const keystore = await (init.keystore ??
      openKeystore(
        config.keystoreDir,
        init.keystorePassword,
        init.keystoreScryptN ? { scryptN: init.keystoreScryptN } : undefined,
      ));
    const nodeKey = await keystore.signKey('default');
    const p2p = await createP2PHost({
      nodeKey,
      listen: config.listen,
      bootstrap: config.peers,
      networkName: config.networkName,
      role: 'full',
      autoRelay: config.autoRelay,
      enableNat: config.enableNat,
    });
    const db = openDatabase(join(config.dataDir, config.peerName, 'rum.db'), {
      sync: config.dbSync,
    });
    const node = new RumNode(
      init,
      keystore,
      new ChainStore(db),
      p2p as Libp2p<{ pubsub: GossipSub }>,
      publicKeyOf(nodeKey),
    );
    for (const row of node.store.listGroups()) node.attach(row.groupId);
    return node;
  }

  /**
   * Sealing of a private group's POSTs, as quorum: to this node's own age key and to the keys of
   * every member the owner has approved (the owner approves itself when it creates the group).
   * A member removed by the owner is no longer a recipient of what is posted after that.
   */
  private postSealer(row: GroupRow): PostSealer {
    const identity = Buffer.from(this.keystore.get('encrypt', row.groupId)).toString('utf8');
    const own = row.userEncryptPubkey;
    return {
      seal: (plain) =>
        sealTo([own, ...this.store.listUsers(row.groupId).map((u) => u.encryptPubkey)], plain),
      open: (data) => openWith(identity, data),
    };
  }

  private attach(groupId: string): GroupChain {
    const row = this.store.getGroup(groupId);
    if (!row) throw new NotFoundError(`group ${groupId} not found`);
    const chain = new GroupChain(row, {
      store: this.store,
      limits: this.config.limits,
      signKey: this.keystore.get('sign', groupId),
      signatures: this.signatures,
      signer: (digest, priv) => this.signer.sign(digest, priv),
      ...(row.encryptionType === GroupEncryptType.PRIVATE
        ? { postSealer: this.postSealer(row) }
        : {}),
      events: this.events,
      onAdmitted: (trxs) => {
        // Trxs go to the producers over gossip, unless this node orders them alone.
        if (!chain.isSoleProducer) this.net.publishTrxs(trxs);
      },
      onProduced: (block) => this.net.publishBlock(block),
      onRejected: (reason) => {
        this.metrics.trxRejected.inc({ reason: reasonLabel(reason) });
        this.log.debug({ groupId, reason }, 'trx rejected');
      },
    });
    this.groupsById.set(groupId, chain);
    if (this.started) {
      chain.start();
      this.net.join(chain);
    }
    return chain;
  }

  private observeCommit(e: CommittedEvent): void {
    const g = this.groupsById.get(e.groupId);
    this.metrics.blocks.inc({
      role: g && e.block.ProducerPubkey === g.userPubkey ? 'produced' : 'applied',
    });
    const now = nowNs();
    for (const { trx } of e.trxs) {
      this.metrics.trxCommitted.inc({ type: String(trx.Type) });
      this.metrics.commitLatency.observe(Number(now - trx.TimeStamp) / 1e9);
    }
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.p2p.start();
    this.upgrader.start();
    await this.net.start();
    this.peers.start();
    this.started = true;
    for (const g of this.groupsById.values()) {
      g.start();
      this.net.join(g);
    }
  }

  /** Stops in reverse order: producers, network, then the database (committed data is on disk). */
  async stop(): Promise<void> {
    // A node that was never started still produces the blocks of its groups on a timer.
    for (const g of this.groupsById.values()) g.stop();
    if (this.started) {
      this.started = false;
      this.peers.stop();
      await this.net.stop();
      this.upgrader.stop();
      await this.p2p.stop();
    }
    await this.pool?.close();
    this.pool = null;
    this.store.db.$client.close();
  }

  // ---- groups ----
  group(groupId: string): GroupChain {
    const g = this.groupsById.get(groupId);
    if (!g) throw new NotFoundError(`group ${groupId} not found`);
    return g;
  }

  groups(): GroupChain[] {
    return [...this.groupsById.values()].sort((a, b) =>
      a.row.groupName < b.row.groupName ? -1 : 1,
    );
  }

  /** This node's age key for a group (quorum's encrypt_<group id>), created on first use. */
  private async encryptKey(groupId: string): Promise<string> {
    if (this.keystore.has('encrypt', groupId)) return this.keystore.publicOf('encrypt', groupId);
    const pair = await generateAgeKeyPair();
    await this.keystore.put('encrypt', groupId, utf8Bytes(pair.identity), pair.recipient);
    return pair.recipient;
  }

  async createGroup(input: CreateGroupInput): Promise<{ groupId: string; seed: string }> {
    if (input.consensusType !== 'poa')
      throw new BadRequestError('only consensus_type "poa" is supported');
    const groupId = crypto.randomUUID();
    const priv = await this.keystore.signKey(groupId);
    const encryptPub = await this.encryptKey(groupId);
    const pubkey = encodePubkey(publicKeyOf(priv));
    const cipherKey = new Uint8Array(randomBytes(32));
    const genesis = createGenesisBlock(groupId, pubkey, nowNs(), priv);
    this.store.insertGroup(
      {
        groupId,
        groupName: input.groupName,
        ownerPubkey: pubkey,
        userPubkey: pubkey,
        userEncryptPubkey: encryptPub,
        consensusType: GroupConsenseType.POA,
        encryptionType:
          input.encryptionType === 'private' ? GroupEncryptType.PRIVATE : GroupEncryptType.PUBLIC,
        cipherKey: toHex(cipherKey),
        appKey: input.appKey,
        genesis: Buffer.from(encodeBlock(genesis)),
        topBlockId: 0,
        topBlockHash: Buffer.from(genesis.BlockHash),
        currentEpoch: 0,
        lastUpdated: genesis.TimeStamp.toString(),
        joinedAt: nowNs().toString(),
      },
      genesis,
    );
    this.attach(groupId);
    if (input.encryptionType === 'private') {
      // The owner's own key goes on chain first, so that members seal their posts to it too.
      const g = this.group(groupId);
      await this.submitUserItem(g, pubkey, encryptPub, 'add', 'owner');
    }
    this.log.info({ groupId, groupName: input.groupName }, 'group created');
    return { groupId, seed: this.seedUrl(groupId, []) };
  }

  seedOf(groupId: string): GroupSeed {
    const g = this.group(groupId);
    const genesis = this.store.getBlock(groupId, 0);
    if (!genesis) throw new NotFoundError(`genesis block of ${groupId} is missing`);
    return {
      genesisBlock: genesis,
      groupId,
      groupName: g.row.groupName,
      ownerPubkey: g.row.ownerPubkey,
      consensusType: g.row.consensusType === GroupConsenseType.POS ? 'pos' : 'poa',
      encryptionType: g.row.encryptionType === GroupEncryptType.PRIVATE ? 'private' : 'public',
      cipherKey: g.cipherKey,
      appKey: g.row.appKey,
    };
  }

  seedUrl(groupId: string, urls: string[]): string {
    return encodeSeedUrl(this.seedOf(groupId), urls);
  }

  async joinGroup(seedUrl: string): Promise<GroupChain> {
    let seed: GroupSeed;
    try {
      seed = decodeSeedUrl(seedUrl).seed;
    } catch (err) {
      if (err instanceof SeedError) throw new BadRequestError(`invalid seed: ${err.message}`);
      throw err;
    }
    if (!decodePubkey(seed.ownerPubkey).ok)
      throw new BadRequestError('invalid seed: owner key is not a secp256k1 key');
    if (this.groupsById.has(seed.groupId))
      throw new ConflictError(`group ${seed.groupId} is already joined`);
    if (seed.consensusType !== 'poa') throw new BadRequestError('only poa groups are supported');
    const priv = await this.keystore.signKey(seed.groupId);
    const encryptPub = await this.encryptKey(seed.groupId);
    const pubkey = encodePubkey(publicKeyOf(priv));
    const existing = this.store.getBlock(seed.groupId, 0);
    if (existing && toHex(existing.BlockHash) !== toHex(seed.genesisBlock.BlockHash)) {
      throw new ConflictError('stored data of this group id has another genesis; clear it first');
    }
    const row = {
      groupId: seed.groupId,
      groupName: seed.groupName,
      ownerPubkey: seed.ownerPubkey,
      userPubkey: pubkey,
      userEncryptPubkey: encryptPub,
      consensusType: GroupConsenseType.POA,
      encryptionType:
        seed.encryptionType === 'private' ? GroupEncryptType.PRIVATE : GroupEncryptType.PUBLIC,
      cipherKey: toHex(seed.cipherKey),
      appKey: seed.appKey,
      genesis: Buffer.from(encodeBlock(seed.genesisBlock)),
      topBlockId: 0,
      topBlockHash: Buffer.from(seed.genesisBlock.BlockHash),
      currentEpoch: 0,
      lastUpdated: seed.genesisBlock.TimeStamp.toString(),
      joinedAt: nowNs().toString(),
    };
    if (existing) {
      // Rejoining after a leave: the blocks are still there; resume from the stored head.
      const top = this.store.getBlock(seed.groupId, this.store.topBlockId(seed.groupId))!;
      this.store.insertGroupRow({
        ...row,
        topBlockId: top.BlockId,
        topBlockHash: Buffer.from(top.BlockHash),
        currentEpoch: top.Epoch,
      });
    } else {
      this.store.insertGroup(row, seed.genesisBlock);
    }
    const chain = this.attach(seed.groupId);
    this.log.info({ groupId: seed.groupId }, 'group joined');
    return chain;
  }

  leaveGroup(groupId: string): void {
    const g = this.group(groupId);
    g.stop();
    this.net.leave(groupId);
    this.groupsById.delete(groupId);
    this.store.deleteGroup(groupId);
    this.log.info({ groupId }, 'group left');
  }

  clearGroup(groupId: string): void {
    if (this.groupsById.has(groupId))
      throw new BadRequestError('leave the group before clearing its data');
    if (!this.store.clearGroupData(groupId))
      throw new NotFoundError(`no data stored for group ${groupId}`);
  }

  // ---- trxs ----
  /**
   * Admits a trx together with the others submitted in the same turn of the event loop (one
   * SQLite transaction for all); resolves to its id once it is stored.
   */
  private async submitOwn(g: GroupChain, trx: Trx, withIt?: () => void): Promise<string> {
    try {
      await g.admit(trx, withIt);
    } catch (err) {
      throw asBadRequest(err);
    }
    this.countAccepted([trx]);
    return trx.TrxId;
  }

  /** Admits trxs built here in one mempool transaction: all of them, or none (BadRequestError). */
  private submitOwnMany(g: GroupChain, list: Trx[]): void {
    try {
      g.submitMany(list);
    } catch (err) {
      throw asBadRequest(err);
    }
    this.countAccepted(list);
  }

  private countAccepted(list: Trx[]): void {
    const perType = new Map<number, number>();
    for (const trx of list) perType.set(trx.Type, (perType.get(trx.Type) ?? 0) + 1);
    for (const [type, n] of perType) this.metrics.trxAccepted.inc({ type: String(type) }, n);
  }

  /** Admits a trx signed elsewhere (a light client); it is checked like a trx from a peer. */
  submitTrx(groupId: string, trx: Trx): Promise<string> {
    return this.submitOwn(this.group(groupId), trx);
  }

  /** Posts an ActivityStreams object or activity from this node's key for the group. */
  async postContent(groupId: string, payload: unknown): Promise<string> {
    return (await this.post(groupId, [payload], false))[0]!;
  }

  /**
   * Many posts at once from this node's key (one mempool transaction; used by the benchmarks).
   * They pass the same checks as postContent; one that fails refuses the whole batch, with its
   * index in the message, and nothing of the batch is admitted.
   */
  postContentBatch(groupId: string, payloads: readonly unknown[]): Promise<string[]> {
    return this.post(groupId, payloads, true);
  }

  /**
   * Posts for an author whose key this node holds other than its own (an outside author a bridge
   * speaks for): the same checks as postContent, for that author. Resolves once admitted.
   * `withIt` runs in the transaction that stores the admitted trx (not when it is refused).
   */
  async postAs(
    groupId: string,
    payload: unknown,
    author: TrxAuthor,
    withIt?: () => void,
  ): Promise<string> {
    const g = this.group(groupId);
    const pubkey = author.pubkey ?? encodePubkey(publicKeyOf(author.priv));
    const [plain] = this.checkPosts(g, [payload], false, pubkey);
    const trx = await g.buildTrx(TrxType.POST, plain!, { ...author, pubkey });
    return this.submitOwn(g, trx, withIt);
  }

  private async post(groupId: string, payloads: readonly unknown[], batch: boolean) {
    const g = this.group(groupId);
    let plains = this.checkPosts(g, payloads, batch);
    if (!batch && !g.isPrivate) plains = this.withAuthorEvent(g, payloads[0], plains);
    const list = await Promise.all(plains.map((plain) => g.buildTrx(TrxType.POST, plain)));
    if (!batch) return [await this.submitOwn(g, list[0]!)];
    this.submitOwnMany(g, list);
    return list.map((t) => t.TrxId);
  }

  /**
   * A public post from this node also carries what the post extension adds (the Nostr event that
   * stands for it, signed with the same group key), unless that makes it larger than the content
   * limit.
   */
  private withAuthorEvent(g: GroupChain, payload: unknown, plains: Uint8Array[]): Uint8Array[] {
    const extend = this.postExtension;
    if (!extend) return plains;
    const priv = this.keystore.get('sign', g.groupId);
    const signed = extend(payload, g.groupId, priv, (trxId) => {
      const row = this.store.getContent(g.groupId, trxId);
      return row && { payload: parseObject(row.data), senderPubkey: row.senderPubkey };
    });
    if (signed === payload) return plains;
    try {
      return this.checkPosts(g, [signed], false);
    } catch (err) {
      if (err instanceof BadRequestError) return plains;
      throw err;
    }
  }

  /**
   * The checks of a post from this node, for both postContent and postContentBatch: membership of
   * a private group (once), then each payload's form, size and, for a Delete, that it deletes one
   * of this node's own committed posts (the only per-item query). Returns the bytes to post;
   * throws BadRequestError, naming the item of a batch that fails.
   */
  private checkPosts(
    g: GroupChain,
    payloads: readonly unknown[],
    batch: boolean,
    author = g.userPubkey,
  ): Uint8Array[] {
    const own = author === g.userPubkey;
    if (g.isPrivate && !(own && g.isOwner) && !this.store.isApprovedUser(g.groupId, author)) {
      throw new BadRequestError(
        own
          ? 'this node is not an approved member of the private group: announce, then ask the owner to approve'
          : 'the author is not an approved member of the private group',
      );
    }
    const limit = this.config.limits.maxContentBytes;
    return payloads.map((payload, i) => {
      const refuse = (message: string): never => {
        throw new BadRequestError(batch ? `item ${i}: ${message}` : message);
      };
      let obj: JsonObject;
      let bytes: Uint8Array;
      try {
        obj = checkPostPayload(payload);
        bytes = utf8Bytes(goJsonMarshal(obj));
      } catch (err) {
        if (err instanceof ContentError) return refuse(err.message);
        throw err;
      }
      if (bytes.length > limit) return refuse(`content is ${bytes.length} bytes, limit ${limit}`);
      if (obj.type === 'Delete') {
        const target = (obj.object as JsonObject).id as string;
        const row = this.store.getContent(g.groupId, target);
        if (!row) return refuse(`trx ${target} is not a post in this group`);
        if (row.senderPubkey !== author) return refuse('you can only delete your own posts');
      }
      return bytes;
    });
  }

  private ownerGroup(groupId: string): GroupChain {
    const g = this.group(groupId);
    if (!g.isOwner) throw new BadRequestError('only the group owner can do this');
    return g;
  }

  private groupKeySign(g: GroupChain, parts: Uint8Array[]): string {
    return toHex(signDigest(sha256(concatBytes(...parts)), this.keystore.get('sign', g.groupId)));
  }

  async setTrxAuthMode(
    groupId: string,
    trxType: number,
    mode: number,
    memo: string,
  ): Promise<{ trxId: string; sign: string }> {
    const g = this.ownerGroup(groupId);
    const data = encodeMessage(SetTrxAuthModeItemDesc, { Type: trxType, Mode: mode });
    return this.sendChainConfig(g, ChainConfigType.SET_TRX_AUTH_MODE, data, memo);
  }

  async updateTrxList(
    groupId: string,
    list: 'allow' | 'deny',
    action: 'add' | 'remove',
    pubkey: string,
    trxTypes: number[],
    memo: string,
  ): Promise<{ trxId: string; sign: string }> {
    const g = this.ownerGroup(groupId);
    if (!decodePubkey(pubkey).ok)
      throw new BadRequestError(`pubkey ${pubkey} is not a group public key`);
    const data = encodeMessage(ChainSendTrxRuleListItemDesc, {
      Action: action === 'add' ? ActionType.ADD : ActionType.REMOVE,
      Pubkey: pubkey,
      Type: trxTypes,
    });
    const type = list === 'allow' ? ChainConfigType.UPD_ALW_LIST : ChainConfigType.UPD_DNY_LIST;
    return this.sendChainConfig(g, type, data, memo);
  }

  private async sendChainConfig(
    g: GroupChain,
    type: number,
    data: Uint8Array,
    memo: string,
  ): Promise<{ trxId: string; sign: string }> {
    const typeName = Object.keys(ChainConfigType)[type]!;
    // quorum hashes with TimeStamp 0 and no memo, then fills them in (handlers/mgrchainconfig.go).
    const sign = this.groupKeySign(g, [
      utf8Bytes(g.groupId),
      utf8Bytes(typeName),
      data,
      fromBase64Url(g.userPubkey),
      new Uint8Array(8),
    ]);
    const item = {
      GroupId: g.groupId,
      Type: type,
      Data: data,
      OwnerPubkey: g.userPubkey,
      OwnerSignature: sign,
      TimeStamp: nowNs(),
      Memo: memo,
    };
    const trx = await g.buildTrx(TrxType.CHAIN_CONFIG, encodeMessage(ChainConfigItemDesc, item));
    return { trxId: await this.submitOwn(g, trx), sign };
  }

  async setAppConfig(
    groupId: string,
    action: 'add' | 'del',
    name: string,
    type: 'int' | 'bool' | 'string',
    value: string,
    memo: string,
  ): Promise<{ trxId: string; sign: string }> {
    const g = this.ownerGroup(groupId);
    const typeNum = {
      int: AppConfigType.INT,
      bool: AppConfigType.BOOL,
      string: AppConfigType.STRING,
    }[type];
    if (type === 'int' && !/^-?\d{1,18}$/.test(value))
      throw new BadRequestError('value is not an int');
    if (type === 'bool' && value !== 'true' && value !== 'false')
      throw new BadRequestError('value is not a bool');
    const actionNum = action === 'add' ? ActionType.ADD : ActionType.REMOVE;
    const sign = this.groupKeySign(g, [
      utf8Bytes(g.groupId),
      utf8Bytes(action === 'add' ? 'ADD' : 'REMOVE'),
      utf8Bytes(name),
      utf8Bytes(type.toUpperCase()),
      utf8Bytes(value),
      utf8Bytes(memo),
      fromBase64Url(g.userPubkey),
    ]);
    const item = {
      GroupId: g.groupId,
      Action: actionNum,
      Name: name,
      Type: typeNum,
      Value: value,
      OwnerPubkey: g.userPubkey,
      OwnerSign: sign,
      Memo: memo,
      TimeStamp: nowNs(),
    };
    const trx = await g.buildTrx(TrxType.APP_CONFIG, encodeMessage(AppConfigItemDesc, item));
    return { trxId: await this.submitOwn(g, trx), sign };
  }

  /** Announces this node's key for the group (quorum's ANNOUNCE, as a user or a producer). */
  async announce(
    groupId: string,
    action: 'add' | 'remove',
    memo: string,
    as: 'user' | 'producer' = 'user',
  ): Promise<{ trxId: string; sign: string; signPubkey: string; encryptPubkey: string }> {
    const g = this.group(groupId);
    const item = {
      GroupId: groupId,
      SignPubkey: g.userPubkey,
      EncryptPubkey: g.row.userEncryptPubkey,
      AnnouncerSignature: '',
      Type: as === 'producer' ? AnnounceType.AS_PRODUCER : AnnounceType.AS_USER,
      OwnerPubkey: '',
      OwnerSignature: '',
      Result: ApproveType.ANNOUNCED,
      TimeStamp: nowNs(),
      Action: action === 'add' ? ActionType.ADD : ActionType.REMOVE,
      Memo: memo,
    };
    item.AnnouncerSignature = this.groupKeySign(g, [announceSignedBytes(item)]);
    const trx = await g.buildTrx(TrxType.ANNOUNCE, encodeMessage(AnnounceItemDesc, item));
    return {
      trxId: await this.submitOwn(g, trx),
      sign: item.AnnouncerSignature,
      signPubkey: item.SignPubkey,
      encryptPubkey: item.EncryptPubkey,
    };
  }

  /** Owner: approves (or removes) an announced user; in a private group it becomes a recipient. */
  async approveUser(
    groupId: string,
    userPubkey: string,
    action: 'add' | 'remove',
    memo: string,
  ): Promise<{ trxId: string; sign: string; encryptPubkey: string }> {
    const g = this.ownerGroup(groupId);
    const announced = this.store.getAnnounce(groupId, AnnounceType.AS_USER, userPubkey);
    if (!announced)
      throw new BadRequestError(`user ${userPubkey} has not announced itself in this group`);
    return this.submitUserItem(g, userPubkey, announced.encryptPubkey, action, memo);
  }

  /**
   * Owner: adds or removes producers (each must have announced itself as one). The PRODUCER trx
   * carries the whole resulting set of non-owner producers, as quorum's bundle does.
   */
  async updateProducers(
    groupId: string,
    pubkeys: string[],
    action: 'add' | 'remove',
    memo: string,
  ): Promise<{ trxId: string; producers: string[] }> {
    const g = this.ownerGroup(groupId);
    const current = new Set(this.store.listProducers(groupId).map((p) => p.producerPubkey));
    for (const pk of pubkeys) {
      if (pk === g.row.ownerPubkey) throw new BadRequestError('the owner is always a producer');
      if (action === 'add') {
        if (!this.store.getAnnounce(groupId, AnnounceType.AS_PRODUCER, pk)) {
          throw new BadRequestError(`${pk} has not announced itself as a producer of this group`);
        }
        current.add(pk);
      } else {
        current.delete(pk);
      }
    }
    const items = [...current].sort().map((pk) => {
      const item = {
        GroupId: groupId,
        ProducerPubkey: pk,
        GroupOwnerPubkey: g.userPubkey,
        GroupOwnerSign: '',
        Action: ActionType.ADD,
        WithnessBlocks: 0n,
        TimeStamp: nowNs(),
        Memo: memo,
      };
      item.GroupOwnerSign = this.groupKeySign(g, [producerSignedBytes(item)]);
      return item;
    });
    const trx = await g.buildTrx(
      TrxType.PRODUCER,
      encodeMessage(BFTProducerBundleItemDesc, { Producers: items }),
    );
    return {
      trxId: await this.submitOwn(g, trx),
      producers: [g.row.ownerPubkey, ...items.map((i) => i.ProducerPubkey)],
    };
  }

  private async submitUserItem(
    g: GroupChain,
    userPubkey: string,
    encryptPubkey: string,
    action: 'add' | 'remove',
    memo: string,
  ): Promise<{ trxId: string; sign: string; encryptPubkey: string }> {
    const item = {
      GroupId: g.groupId,
      UserPubkey: userPubkey,
      EncryptPubkey: encryptPubkey,
      GroupOwnerPubkey: g.userPubkey,
      GroupOwnerSign: '',
      TimeStamp: nowNs(),
      Action: action === 'add' ? ActionType.ADD : ActionType.REMOVE,
      Memo: memo,
    };
    item.GroupOwnerSign = this.groupKeySign(g, [userSignedBytes(item)]);
    const trx = await g.buildTrx(TrxType.USER, encodeMessage(UserItemDesc, item));
    return { trxId: await this.submitOwn(g, trx), sign: item.GroupOwnerSign, encryptPubkey };
  }

  /** Rebuilds the content index and config state of every stored group by replaying its chain. */
  async reindex(): Promise<{ groups: number; blocks: number; trxs: number }> {
    let blocks = 0;
    let trxs = 0;
    for (const row of this.store.listGroups()) {
      const g = this.group(row.groupId);
      this.store.resetDerivedState(row.groupId);
      for (const block of this.store.iterateBlocks(row.groupId, 1)) {
        const plains = await Promise.all(block.Trxs.map((trx) => g.decrypt(trx)));
        this.store.applyReplayed(
          block,
          block.Trxs.map((trx, i) => ({
            trx,
            raw: new Uint8Array(0),
            effect: effectOf(trx, plains[i]!),
          })),
        );
        blocks += 1;
        trxs += block.Trxs.length;
      }
      g.rules = this.store.loadRules(row.groupId);
    }
    return { groups: this.groupsById.size, blocks, trxs };
  }
}
