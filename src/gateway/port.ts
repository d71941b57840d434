/**
 * The node's side of bridges/port.ts: exposed groups, committed content as durable per-consumer
 * streams, and posts from other networks signed by keys the gateway holds for their authors.
 */
import { type Db, unsyncedTransaction } from '../storage/db.ts';
import { createHash } from 'node:crypto';
import type {
  AuthorProfile,
  BridgeKv,
  BridgeNetwork,
  BridgeSecrets,
  BridgePort,
  CommittedItem,
  CommittedStream,
  ExposedGroup,
  StreamOptions,
  SubmitInput,
  SubmitResult,
} from '../../bridges/port.ts';
import { BridgeRefusedError } from '../../bridges/port.ts';
import { TrxType } from '../chain/pb.ts';
import { checkTrxAuth } from '../chain/rules.ts';
import { encodePubkey, publicKeyOf } from '../crypto/keys.ts';
import { schnorrSign } from '../crypto/schnorr.ts';
import { NotFoundError, RumError } from '../errors.ts';
import type { RumNode } from '../node.ts';
import type { DeliveryQueue } from '../queue/types.ts';
import { BridgeKvStore } from '../storage/bridge-kv.ts';
import type { BridgeStore, ChainPlace, StreamRow } from '../storage/bridge-store.ts';
import type { AddressGuard } from './address-guard.ts';
import { AuthorProfiles } from './author-profiles.ts';
import type { Exposures } from './exposure.ts';

const STREAM_BATCH = 500;
const MAX_EXTERNAL_ID = 2048;

export interface PortComponents {
  /** Whether bridges may reach loopback and private addresses. */
  allowPrivateAddress: boolean;
  node: RumNode;
  store: BridgeStore;
  exposures: Exposures;
  queue: DeliveryQueue;
  guard: AddressGuard;
  /** The public base URL, without a trailing slash (known once the gateway is bound). */
  origin: () => string;
}

/** The keystore name of an outside author's key: the network and a digest of its id. */
function keyName(network: BridgeNetwork, author: string): string {
  const digest = createHash('sha256').update(`${network}\n${author}`).digest('hex').slice(0, 40);
  return `bridge_${network}_${digest}`;
}

/** Whether a place comes after another in chain order. */
function after(a: ChainPlace, b: ChainPlace): boolean {
  return a.blockId > b.blockId || (a.blockId === b.blockId && a.position > b.position);
}

export class NodeBridgePort implements BridgePort {
  readonly queue: DeliveryQueue;
  private readonly c: PortComponents;
  private readonly kvs = new Map<BridgeNetwork, BridgeKv>();
  /** Authors whose key is being made, so that two posts at once make one key. */
  private readonly making = new Map<string, Promise<string>>();
  /** The last submit of each outside item (network, external id) under way. */
  private readonly submitting = new Map<string, Promise<void>>();
  private readonly profiles: AuthorProfiles;

  constructor(c: PortComponents) {
    this.c = c;
    this.queue = c.queue;
    const chain = c.node.store;
    this.profiles = new AuthorProfiles({
      head: (groupId) => {
        try {
          return c.node.group(groupId).head.blockId;
        } catch (err) {
          if (err instanceof NotFoundError) return undefined;
          throw err;
        }
      },
      lastSeqOfSender: (groupId, sender) => chain.lastSeqOfSender(groupId, sender),
      profileRows: (groupId, sender, o) => chain.profileRows(groupId, sender, o),
    });
  }

  get log() {
    return this.c.node.log;
  }

  get allowPrivateAddress(): boolean {
    return this.c.allowPrivateAddress;
  }

  kv(bridge: BridgeNetwork): BridgeKv {
    let kv = this.kvs.get(bridge);
    if (!kv) {
      kv = new BridgeKvStore(this.c.node.store.db, bridge);
      this.kvs.set(bridge, kv);
    }
    return kv;
  }

  transaction(fn: () => void, options: { sync?: boolean } = {}): void {
    const client = this.c.node.store.db.$client;
    if (options.sync === false) unsyncedTransaction(client, fn);
    else client.transaction(fn)();
  }

  database(): Db {
    return this.c.node.store.db;
  }

  secrets(bridge: BridgeNetwork): BridgeSecrets {
    const ks = this.c.node.keystore;
    const making = new Map<string, Promise<Uint8Array>>();
    const nameOf = (name: string) => {
      const full = `${bridge}.${name}`;
      if (!/^[A-Za-z0-9_.-]{1,80}$/.test(full)) throw new TypeError(`bad secret name ${name}`);
      return full;
    };
    return {
      get: (name) => {
        const full = nameOf(name);
        return ks.has('secret', full) ? ks.get('secret', full) : undefined;
      },
      getOrCreate: (name, make) => {
        const full = nameOf(name);
        if (ks.has('secret', full)) return Promise.resolve(ks.get('secret', full));
        let p = making.get(full);
        if (!p) {
          p = (async () => {
            const secret = await make();
            await ks.put('secret', full, secret, '');
            return secret;
          })().finally(() => making.delete(full));
          making.set(full, p);
        }
        return p;
      },
    };
  }

  get origin(): string {
    return this.c.origin();
  }

  exposures(): ExposedGroup[] {
    return this.c.exposures.list();
  }

  exposure(groupId: string): ExposedGroup | undefined {
    return this.c.exposures.get(groupId);
  }

  exposureByHandle(handle: string): ExposedGroup | undefined {
    return this.c.exposures.byHandle(handle);
  }

  onExposureChange(listener: (groupId: string, now: ExposedGroup | null) => void): () => void {
    this.c.exposures.on('change', listener);
    return () => this.c.exposures.off('change', listener);
  }

  checkUrl(url: string | URL): Promise<void> {
    return this.c.guard.check(url);
  }

  toItem(row: StreamRow): CommittedItem {
    let object: Record<string, unknown> | null = null;
    if (row.data) {
      try {
        const v = JSON.parse(Buffer.from(row.data).toString('utf8'));
        if (v && typeof v === 'object' && !Array.isArray(v)) object = v;
      } catch {
        object = null;
      }
    }
    const origin = this.c.store.originOfTrx(row.groupId, row.trxId);
    return {
      groupId: row.groupId,
      trxId: row.trxId,
      blockId: row.blockId,
      position: row.position ?? 0,
      senderPubkey: row.senderPubkey,
      timestamp: row.timestamp,
      object,
      type: row.objectType,
      inReplyTo: row.inReplyTo,
      deleted: row.deleted,
      origin: origin
        ? { network: origin.network as BridgeNetwork, externalId: origin.externalId }
        : null,
    };
  }

  item(groupId: string, trxId: string): CommittedItem | undefined {
    const row = this.c.node.store.getContent(groupId, trxId);
    return row && this.toItem(row);
  }

  trxState(groupId: string, trxId: string): 'committed' | 'pending' | 'unknown' {
    let g: ReturnType<RumNode['group']>;
    try {
      g = this.c.node.group(groupId);
    } catch (err) {
      if (err instanceof NotFoundError) return 'unknown';
      throw err;
    }
    if (g.isPending(trxId)) return 'pending';
    return g.knowsTrx(trxId) ? 'committed' : 'unknown';
  }

  history(
    groupId: string,
    o: { before?: Pick<CommittedItem, 'blockId' | 'position'>; limit: number },
  ): CommittedItem[] {
    const limit = Math.max(1, Math.min(o.limit, 1000));
    const before = o.before && { blockId: o.before.blockId, position: o.before.position };
    return this.c.store.contentBefore(groupId, before, limit).map((r) => this.toItem(r));
  }

  replies(groupId: string, trxId: string, limit: number): CommittedItem[] {
    const n = Math.max(1, Math.min(limit, 1000));
    return this.c.store.contentReplyingTo(groupId, trxId, n).map((r) => this.toItem(r));
  }

  mayPost(groupId: string, pubkey: string): { ok: true } | { ok: false; reason: string } {
    const g = this.c.node.group(groupId);
    return checkTrxAuth(g.rules, g.row.ownerPubkey, pubkey, TrxType.POST);
  }

  members(groupId: string): string[] {
    let g: ReturnType<RumNode['group']>;
    try {
      g = this.c.node.group(groupId);
    } catch (err) {
      if (err instanceof NotFoundError) return [];
      throw err;
    }
    const owner = g.row.ownerPubkey;
    const users = this.c.node.store.listUsers(groupId).map((u) => u.userPubkey);
    return [owner, ...users.filter((u) => u !== owner)];
  }

  hasAuthor(groupId: string, pubkey: string): boolean {
    return this.c.store.hasSender(groupId, pubkey);
  }

  profile(groupId: string, pubkey: string): AuthorProfile | undefined {
    return this.profiles.get(groupId, pubkey);
  }

  trxOfOrigin(
    network: BridgeNetwork,
    externalId: string,
  ): { groupId: string; trxId: string } | undefined {
    const row = this.c.store.originOf(network, externalId);
    return row && { groupId: row.groupId, trxId: row.trxId };
  }

  stream(o: StreamOptions): CommittedStream {
    const { store, node } = this.c;
    if (!/^[A-Za-z0-9_.:@-]{1,100}$/.test(o.consumer)) {
      throw new TypeError(`invalid consumer name ${JSON.stringify(o.consumer)}`);
    }
    node.group(o.groupId); // throws NotFoundError for a group this node does not have
    let at: ChainPlace | undefined = store.getCursor(o.consumer, o.groupId);
    if (!at) {
      at = o.from === 'head' ? store.lastContentPlace(o.groupId) : { blockId: 0, position: -1 };
      // Kept at once, so that a restart before the first ack starts at the same place.
      store.setCursor(o.consumer, o.groupId, at);
    }
    let read = at;
    /** The last place acknowledged: an ack never moves the cursor back. */
    let acked = at;
    let closed = false;
    // Every next() that waits for a commit (a consumer may call it again before one answers).
    const waiting = new Set<() => void>();
    const wakeAll = () => {
      for (const wake of [...waiting]) wake();
      waiting.clear();
    };
    const onCommit = (e: { groupId: string }) => {
      if (e.groupId === o.groupId) wakeAll();
    };
    node.events.on('committed', onCommit);
    return {
      next: async (max = STREAM_BATCH) => {
        const limit = Math.max(1, Math.min(max, 10_000));
        for (;;) {
          if (closed) return [];
          const rows = store.contentAfter(o.groupId, read, limit);
          if (rows.length > 0) {
            const last = rows[rows.length - 1]!;
            read = { blockId: last.blockId, position: last.position ?? 0 };
            const items = rows.map((r) => this.toItem(r));
            // Never sent back to the network it came from; the rest are the consumer's.
            const mine =
              o.network === undefined
                ? items
                : items.filter((it) => it.origin?.network !== o.network);
            if (mine.length > 0) return mine;
            continue;
          }
          await new Promise<void>((resolve) => {
            waiting.add(resolve);
          });
        }
      },
      ack: (item) => {
        if (closed) throw new Error('stream is closed');
        const place = { blockId: item.blockId, position: item.position };
        // A late ack of an earlier item is already covered: moving back would repeat items.
        if (!after(place, acked)) return;
        store.setCursor(o.consumer, o.groupId, place);
        acked = place;
      },
      close: () => {
        if (closed) return;
        closed = true;
        node.events.off('committed', onCommit);
        wakeAll();
      },
    };
  }

  nodeAuthor(
    groupId: string,
  ): { pubkey: string; signSchnorr(message: Uint8Array): Uint8Array } | undefined {
    const { node } = this.c;
    let pubkey: string;
    try {
      pubkey = node.group(groupId).userPubkey;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    return {
      pubkey,
      signSchnorr: (message) => {
        if (message.length !== 32) throw new TypeError('a BIP-340 message has 32 bytes');
        return schnorrSign(message, node.keystore.get('sign', groupId));
      },
    };
  }

  authorKey(network: BridgeNetwork, author: string): string | undefined {
    return this.c.store.getIdentity(network, author)?.pubkey;
  }

  authorOf(pubkey: string): { network: BridgeNetwork; author: string } | undefined {
    const row = this.c.store.identityByPubkey(pubkey);
    return row && { network: row.network as BridgeNetwork, author: row.externalId };
  }

  /** The key that signs an outside author's posts: made on first use, kept in the keystore. */
  private async authorPriv(
    network: BridgeNetwork,
    author: string,
  ): Promise<{ priv: Uint8Array; pubkey: string }> {
    const { store, node } = this.c;
    const known = store.getIdentity(network, author);
    if (known) return { priv: node.keystore.get('sign', known.keyName), pubkey: known.pubkey };
    const name = keyName(network, author);
    let making = this.making.get(name);
    if (!making) {
      making = (async () => {
        const priv = await node.keystore.signKey(name);
        const pubkey = encodePubkey(publicKeyOf(priv));
        store.addIdentity({
          network,
          externalId: author,
          keyName: name,
          pubkey,
          createdAt: Date.now(),
        });
        return name;
      })().finally(() => this.making.delete(name));
      this.making.set(name, making);
    }
    await making;
    const made = store.getIdentity(network, author)!;
    return { priv: node.keystore.get('sign', made.keyName), pubkey: made.pubkey };
  }

  /**
   * Submits of one outside item run one after the other: a retry that comes while the first is
   * still being signed and admitted waits for it, and then finds its trx (a duplicate) instead of
   * taking the trx for lost and posting it a second time.
   */
  submit(input: SubmitInput): Promise<SubmitResult> {
    const key = `${input.network}\n${input.externalId}`;
    const before = this.submitting.get(key);
    const run = before
      ? before.then(() => this.submitNow(input))
      : Promise.resolve().then(() => this.submitNow(input));
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.submitting.set(key, settled);
    void settled.then(() => {
      if (this.submitting.get(key) === settled) this.submitting.delete(key);
    });
    return run;
  }

  /** The sender of a trx committed or pending in a group, or undefined when it is neither. */
  private senderOf(groupId: string, trxId: string): string | undefined {
    const g = this.c.node.group(groupId);
    if (!g.knowsTrx(trxId)) return undefined;
    return (
      this.c.node.store.getTrx(groupId, trxId)?.trx.SenderPubkey ??
      g.pendingTrxs().find((t) => t.TrxId === trxId)?.SenderPubkey
    );
  }

  private async submitNow(input: SubmitInput): Promise<SubmitResult> {
    const { store, node } = this.c;
    const { network, externalId, author, groupId } = input;
    if (
      typeof externalId !== 'string' ||
      externalId.length === 0 ||
      externalId.length > MAX_EXTERNAL_ID
    ) {
      throw new BridgeRefusedError('the item has no usable id', 400);
    }
    if (typeof author !== 'string' || author.length === 0 || author.length > MAX_EXTERNAL_ID) {
      throw new BridgeRefusedError('the item has no usable author', 400);
    }
    const exposed = this.c.exposures.serves(groupId, network);
    if (!exposed) throw new BridgeRefusedError(`group ${groupId} is not open to ${network}`, 404);
    const seen = store.originOf(network, externalId);
    if (seen) {
      if (seen.groupId !== groupId) {
        throw new BridgeRefusedError(`item ${externalId} was posted to another group`, 409);
      }
      // Kept unless the trx was lost before it was stored (a crash right after the origin was
      // written, or the chain refused it): then it is posted anew.
      const sender = this.senderOf(groupId, seen.trxId);
      if (sender !== undefined) {
        // Answered with the key that signed it; no key is made for an author who claims it.
        if (sender !== this.authorKey(network, author)) {
          throw new BridgeRefusedError(`item ${externalId} was posted by another author`, 409);
        }
        return { trxId: seen.trxId, pubkey: sender, duplicate: true };
      }
      store.deleteOrigin(network, externalId);
    }
    const { priv, pubkey } = await this.authorPriv(network, author);
    const trxId = crypto.randomUUID();
    try {
      // The origin is stored in the transaction that admits the trx: both or neither. Submits
      // of one item run one after the other (submit), and the one before found no origin.
      const author = { priv, pubkey, trxId, ...(input.ttlMs ? { ttlMs: input.ttlMs } : {}) };
      await node.postAs(groupId, input.object, author, () => {
        if (!store.addOrigin({ network, externalId, groupId, trxId })) {
          this.c.node.log.warn({ network, externalId }, 'bridge: origin recorded twice');
        }
      });
    } catch (err) {
      if (err instanceof RumError && err.status < 500) {
        throw new BridgeRefusedError(err.message, err.status === 404 ? 404 : 400);
      }
      throw err;
    }
    return { trxId, pubkey, duplicate: false };
  }
}
