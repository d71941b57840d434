/**
 * The node's side of bridges/port.ts: exposed groups, committed content as durable per-consumer
 * streams, and posts from other networks signed by keys the gateway holds for their authors.
 */
import { createHash } from 'node:crypto';
import type {
  BridgeNetwork,
  BridgePort,
  CommittedItem,
  CommittedStream,
  ExposedGroup,
  StreamOptions,
  SubmitInput,
  SubmitResult,
} from '../../bridges/port.ts';
import { BridgeRefusedError } from '../../bridges/port.ts';
import { encodePubkey, publicKeyOf } from '../crypto/keys.ts';
import { RumError } from '../errors.ts';
import type { RumNode } from '../node.ts';
import type { DeliveryQueue } from '../queue/types.ts';
import type { BridgeStore, ChainPlace, StreamRow } from '../storage/bridge-store.ts';
import type { AddressGuard } from './address-guard.ts';
import type { Exposures } from './exposure.ts';

const STREAM_BATCH = 500;
const MAX_EXTERNAL_ID = 2048;

export interface PortComponents {
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

export class NodeBridgePort implements BridgePort {
  readonly queue: DeliveryQueue;
  private readonly c: PortComponents;
  /** Authors whose key is being made, so that two posts at once make one key. */
  private readonly making = new Map<string, Promise<string>>();

  constructor(c: PortComponents) {
    this.c = c;
    this.queue = c.queue;
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
    let closed = false;
    let wake: (() => void) | null = null;
    const onCommit = (e: { groupId: string }) => {
      if (e.groupId === o.groupId) wake?.();
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
            const mine = items.filter((it) => it.origin?.network !== o.network);
            if (mine.length > 0) return mine;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = null;
        }
      },
      ack: (item) => {
        if (closed) throw new Error('stream is closed');
        store.setCursor(o.consumer, o.groupId, { blockId: item.blockId, position: item.position });
      },
      close: () => {
        if (closed) return;
        closed = true;
        node.events.off('committed', onCommit);
        wake?.();
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
  private async authorPriv(network: BridgeNetwork, author: string): Promise<Uint8Array> {
    const { store, node } = this.c;
    const known = store.getIdentity(network, author);
    if (known) return node.keystore.get('sign', known.keyName);
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
    return node.keystore.get('sign', await making);
  }

  async submit(input: SubmitInput): Promise<SubmitResult> {
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
    const priv = await this.authorPriv(network, author);
    const pubkey = encodePubkey(publicKeyOf(priv));
    const seen = store.originOf(network, externalId);
    if (seen) {
      if (seen.groupId !== groupId) {
        throw new BridgeRefusedError(`item ${externalId} was posted to another group`, 409);
      }
      // Kept unless the trx was lost before it was stored (a crash right after the origin was
      // written, or the chain refused it): then it is posted anew.
      if (node.group(groupId).knowsTrx(seen.trxId))
        return { trxId: seen.trxId, pubkey, duplicate: true };
      store.deleteOrigin(network, externalId);
    }
    const trxId = crypto.randomUUID();
    if (!store.addOrigin({ network, externalId, groupId, trxId })) {
      // Another submit of the same item won the race.
      const won = store.originOf(network, externalId)!;
      return { trxId: won.trxId, pubkey, duplicate: true };
    }
    try {
      await node.postAs(groupId, input.object, { priv, trxId });
    } catch (err) {
      store.deleteOrigin(network, externalId);
      if (err instanceof RumError && err.status < 500) {
        throw new BridgeRefusedError(err.message, err.status === 404 ? 404 : 400);
      }
      throw err;
    }
    return { trxId, pubkey, duplicate: false };
  }
}
