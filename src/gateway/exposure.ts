/**
 * Which groups this node exposes to bridges, as its operator decides (admin API
 * `PUT /api/v1/group/{group_id}/bridges`, `rum bridge expose`), and as the group's owner allows:
 * app config `bridging` = `off` makes every node refuse to expose the group and suspend bridging
 * where it was exposed. Turning it on again resumes what the operator had chosen.
 */
import { EventEmitter } from 'node:events';
import type { BridgeNetwork, ExposedGroup } from '../../bridges/port.ts';
import { GroupEncryptType, TrxType } from '../chain/pb.ts';
import { BadRequestError, ConflictError, NotFoundError } from '../errors.ts';
import type { RumNode } from '../node.ts';
import type { BridgeStore, ExposureRow } from '../storage/bridge-store.ts';

export const HANDLE_RE = /^[a-z0-9_]{1,30}$/;

/** The owner's app config key that forbids bridging the group on every node. */
export const BRIDGING_CONFIG_KEY = 'bridging';

export interface ExposureInput {
  handle: string;
  activitypub?: boolean;
  nostr?: boolean;
  bots?: boolean;
}

export type ExposureEvents = { change: [groupId: string, now: ExposedGroup | null] };

export class Exposures extends EventEmitter<ExposureEvents> {
  private readonly node: RumNode;
  private readonly store: BridgeStore;
  private readonly onCommitted: (e: { groupId: string; trxs: { trx: { Type: number } }[] }) => void;
  /**
   * What every bridged item and inbox request reads, kept in memory: the exposure rows (written
   * only through this class) and each exposed group's app config (dropped when an app config
   * trx of the group is committed, or when the group is found left).
   */
  private rows: {
    list: ExposureRow[];
    byId: Map<string, ExposureRow>;
    byHandle: Map<string, ExposureRow>;
  } | null = null;
  private readonly appConfigs = new Map<string, Record<string, string>>();

  constructor(node: RumNode, store: BridgeStore) {
    super();
    this.setMaxListeners(100);
    this.node = node;
    this.store = store;
    // The owner may forbid (or allow again) bridging at any time: follow its app config.
    this.onCommitted = (e) => {
      if (e.trxs.some(({ trx }) => trx.Type === TrxType.APP_CONFIG)) {
        this.appConfigs.delete(e.groupId);
        this.recheck(e.groupId);
      }
    };
    node.events.on('committed', this.onCommitted);
    for (const row of store.listExposures()) this.recheck(row.groupId);
  }

  close(): void {
    this.node.events.off('committed', this.onCommitted);
    this.removeAllListeners();
  }

  /** Why the owner forbids bridging the group, or null. */
  private forbidden(groupId: string): string | null {
    const cfg = this.node.store.getAppConfig(groupId, BRIDGING_CONFIG_KEY);
    if (!cfg) return null;
    const v = cfg.value.trim().toLowerCase();
    return v === 'off' || v === 'false'
      ? `the group's owner forbids bridging (app config "${BRIDGING_CONFIG_KEY}" is "${cfg.value}")`
      : null;
  }

  private recheck(groupId: string): void {
    const row = this.store.getExposure(groupId);
    if (!row) return;
    const reason = this.forbidden(groupId);
    if (reason === row.suspended) return;
    this.store.setSuspended(groupId, reason, Date.now());
    this.rows = null;
    this.node.log.warn(
      { groupId, handle: row.handle, reason },
      reason ? 'bridging of the group suspended' : 'bridging of the group resumed',
    );
    this.emit('change', groupId, this.get(groupId) ?? null);
  }

  private view(row: ExposureRow): ExposedGroup | undefined {
    let g: ReturnType<RumNode['group']>;
    try {
      g = this.node.group(row.groupId);
    } catch {
      this.appConfigs.delete(row.groupId);
      return undefined; // the group was left: nothing of it is served
    }
    let appConfig = this.appConfigs.get(row.groupId);
    if (!appConfig) {
      appConfig = {};
      for (const c of this.node.store.listAppConfig(row.groupId)) appConfig[c.name] = c.value;
      this.appConfigs.set(row.groupId, appConfig);
    }
    return {
      groupId: row.groupId,
      handle: row.handle,
      activitypub: row.activitypub,
      nostr: row.nostr,
      bots: row.bots,
      suspended: row.suspended,
      name: g.row.groupName,
      encryption: g.row.encryptionType === GroupEncryptType.PRIVATE ? 'private' : 'public',
      ownerPubkey: g.row.ownerPubkey,
      appConfig: { ...appConfig },
    };
  }

  /** The exposure rows (the list in handle order). */
  private allRows() {
    if (!this.rows) {
      const list = this.store.listExposures();
      this.rows = {
        list,
        byId: new Map(list.map((r) => [r.groupId, r])),
        byHandle: new Map(list.map((r) => [r.handle, r])),
      };
    }
    return this.rows;
  }

  list(): ExposedGroup[] {
    return this.allRows().list.flatMap((r) => this.view(r) ?? []);
  }

  get(groupId: string): ExposedGroup | undefined {
    const row = this.allRows().byId.get(groupId);
    return row && this.view(row);
  }

  byHandle(handle: string): ExposedGroup | undefined {
    const row = this.allRows().byHandle.get(handle);
    return row && this.view(row);
  }

  /** Whether a group is served on a network now. */
  serves(groupId: string, network: BridgeNetwork): ExposedGroup | undefined {
    const e = this.get(groupId);
    return e && !e.suspended && e[network] ? e : undefined;
  }

  /**
   * Exposes a group (or changes how): checks everything first and changes nothing on a 4xx.
   * Networks left out of the input are on.
   */
  put(groupId: string, input: ExposureInput): ExposedGroup {
    const g = this.node.groups().find((x) => x.groupId === groupId);
    if (!g) throw new NotFoundError(`group ${groupId} not found`);
    if (typeof input.handle !== 'string' || !HANDLE_RE.test(input.handle)) {
      throw new BadRequestError(
        `handle ${JSON.stringify(input.handle)} is not 1 to 30 of a-z, 0-9 and _`,
      );
    }
    const clash = this.store.exposureByHandle(input.handle);
    if (clash && clash.groupId !== groupId) {
      throw new ConflictError(`handle "${input.handle}" is taken by group ${clash.groupId}`);
    }
    const activitypub = input.activitypub ?? true;
    if (activitypub && g.row.encryptionType === GroupEncryptType.PRIVATE) {
      throw new ConflictError(
        'a private group is never exposed on ActivityPub: its posts are for its members only',
      );
    }
    const reason = this.forbidden(groupId);
    if (reason) throw new ConflictError(reason);
    const now = Date.now();
    const before = this.store.getExposure(groupId);
    this.store.putExposure({
      groupId,
      handle: input.handle,
      activitypub,
      nostr: input.nostr ?? true,
      bots: input.bots ?? true,
      suspended: null,
      createdAt: before?.createdAt ?? now,
      updatedAt: now,
    });
    this.rows = null;
    const view = this.get(groupId)!;
    this.node.log.info({ groupId, handle: view.handle }, 'group exposed to bridges');
    this.emit('change', groupId, view);
    return view;
  }

  remove(groupId: string): void {
    this.rows = null;
    if (!this.store.deleteExposure(groupId)) {
      throw new NotFoundError(`group ${groupId} is not exposed to bridges`);
    }
    this.node.log.info({ groupId }, 'group no longer exposed to bridges');
    this.emit('change', groupId, null);
  }
}
