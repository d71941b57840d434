/**
 * Which software a follower's instance runs, learnt from its NodeInfo, so that the group sends
 * each instance the form of its Announce that it reads (outbound.ts):
 *
 * - Mastodon and its kin (Misskey, GoToSocial, Pleroma, Friendica…) show a group's
 *   `Announce` of a post as a boost; an `Announce` whose object is an activity shows nothing.
 * - Group software that follows FEP-1b12 (Lemmy, Mbin and kbin, PieFed, NodeBB, lotide,
 *   Discourse's ActivityPub plugin, Sublinks) reads the inverse: the group wraps each activity of
 *   its members in an `Announce` (`Announce(Create(Note))`, `Announce(Like)`, …) and only that
 *   proves the post is in the group. Lemmy refuses an `Announce` of a bare post ("cannot receive
 *   page"); Mbin takes an `Announce` whose object is an id for a boost.
 *
 * The kind is kept per instance (the host of the follower's actor id) in the bridge's kv, learnt
 * when one of its actors follows a group, and looked up again in the background when a send finds
 * it older than a day (an hour after a failed look-up) or missing. Until it is known the instance
 * gets the boost, as before this existed. A look-up is bounded in time and in size, follows at
 * most {@link MAX_REDIRECTS} redirects and checks every URL against the gateway's address guard
 * (`--allowprivateaddress`). Fedify's `getNodeInfo` is not used for the fetch: it always refuses
 * private addresses (whatever the gateway allows) and takes no timeout.
 */
import { parseNodeInfo } from '@fedify/fedify';
import type { BridgeKv } from '../port.ts';
import type { ApState } from './federation.ts';
import { SOFTWARE } from './federation.ts';

/** NodeInfo software names of the servers that read FEP-1b12 group announces. */
export const FEP_1B12_SOFTWARE: ReadonlySet<string> = new Set([
  'lemmy',
  'sublinks',
  'mbin',
  'kbin',
  'piefed',
  'nodebb',
  'lotide',
  'discourse',
]);

/** What a follower's instance is sent: group announces of activities, or boosts. */
export type InstanceKind = 'fep-1b12' | 'boost';

/** What is remembered of an instance. */
export interface InstanceRecord {
  /** Its NodeInfo software name, or null when the look-up failed. */
  software: string | null;
  /** When it was looked up (ms). */
  checked: number;
}

/** A learnt software name is looked up again after this long. */
export const FRESH_MS = 24 * 3600_000;
/** A failed look-up is tried again after this long. */
export const FAILED_FRESH_MS = 3600_000;
/** How long a record outlives its last look-up (then the instance is looked up anew). */
const KEEP_MS = 30 * 24 * 3600_000;
export const LOOKUP_TIMEOUT_MS = 5000;
const MAX_BYTES = 64 * 1024;
const MAX_REDIRECTS = 3;
/** Background look-ups at once (more wait for a later send). */
const MAX_BACKGROUND = 4;
const MEMORY_ENTRIES = 10_000;
const KEY = 'instance:';
const NODEINFO_REL = /^https?:\/\/nodeinfo\.diaspora\.software\/ns\/schema\/2\.(\d+)$/;

/** The kind of an instance from what is remembered of it. */
export function kindOf(record: InstanceRecord | null | undefined): InstanceKind {
  return record?.software && FEP_1B12_SOFTWARE.has(record.software) ? 'fep-1b12' : 'boost';
}

/** The instance an actor belongs to (its host, with the port) and where it is, or null. */
export function instanceOf(actorId: string | URL): { host: string; origin: URL } | null {
  try {
    const u = new URL(actorId);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    return { host: u.host, origin: new URL(u.origin) };
  } catch {
    return null;
  }
}

export interface NodeInfoFetchOptions {
  /** Throws when a URL may not be fetched (the gateway's address guard). */
  checkUrl(url: URL): Promise<void>;
  userAgent: string;
  timeoutMs?: number;
}

async function readBounded(res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new Error(`${res.url}: larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function getJson(url: URL, o: NodeInfoFetchOptions, signal: AbortSignal): Promise<unknown> {
  let current = url;
  for (let hop = 0; ; hop++) {
    await o.checkUrl(current);
    const res = await fetch(current, {
      headers: { accept: 'application/json', 'user-agent': o.userAgent },
      redirect: 'manual',
      signal,
    });
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new Error(`${url}: too many redirects`);
      current = new URL(location, current);
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${current}: ${res.status}`);
    }
    return JSON.parse(await readBounded(res, MAX_BYTES)) as unknown;
  }
}

/**
 * The NodeInfo software name of the server at `origin` (lowercase), through its
 * `/.well-known/nodeinfo` links (the newest 2.x schema linked); throws when it cannot be learnt.
 */
export async function fetchSoftwareName(origin: URL, o: NodeInfoFetchOptions): Promise<string> {
  const controller = new AbortController();
  const ms = o.timeoutMs ?? LOOKUP_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`${origin.host}: NodeInfo took longer than ${ms} ms`));
    }, ms);
  });
  const work = (async () => {
    const wellKnown = new URL('/.well-known/nodeinfo', origin);
    const jrd = await getJson(wellKnown, o, controller.signal);
    const links = (jrd as { links?: unknown } | null)?.links;
    let best: { href: string; minor: number } | null = null;
    for (const l of Array.isArray(links) ? links : []) {
      const rel = typeof l?.rel === 'string' ? NODEINFO_REL.exec(l.rel) : null;
      if (!rel || typeof l.href !== 'string') continue;
      const minor = Number(rel[1]);
      if (!best || minor > best.minor) best = { href: l.href, minor };
    }
    if (!best) throw new Error(`${wellKnown}: no NodeInfo 2.x link`);
    const doc = await getJson(new URL(best.href, wellKnown), o, controller.signal);
    const name = parseNodeInfo(doc, { tryBestEffort: true })?.software.name;
    if (!name) throw new Error(`${origin.host}: NodeInfo names no software`);
    return name;
  })();
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
  }
}

/** The instances' kinds, remembered in the bridge's kv (and in memory, read through). */
export class InstanceKinds {
  private readonly kv: BridgeKv;
  private readonly fetchOptions: NodeInfoFetchOptions;
  private readonly log: ApState['log'] | null;
  private readonly now: () => number;
  /** host → record (null: none in the kv), most recently used last. */
  private readonly memory = new Map<string, InstanceRecord | null>();
  private readonly running = new Map<string, Promise<InstanceRecord>>();
  private background = 0;

  constructor(
    kv: BridgeKv,
    fetchOptions: NodeInfoFetchOptions,
    o: { log?: ApState['log']; now?: () => number } = {},
  ) {
    this.kv = kv;
    this.fetchOptions = fetchOptions;
    this.log = o.log ?? null;
    this.now = o.now ?? Date.now;
  }

  /** What is remembered of an instance, if anything. */
  record(host: string): InstanceRecord | null {
    let r = this.memory.get(host);
    if (r === undefined) {
      r = this.kv.get<InstanceRecord>(KEY + host) ?? null;
      this.remember(host, r);
    }
    return r;
  }

  private remember(host: string, r: InstanceRecord | null): void {
    this.memory.delete(host);
    this.memory.set(host, r);
    while (this.memory.size > MEMORY_ENTRIES) {
      this.memory.delete(this.memory.keys().next().value as string);
    }
  }

  private fresh(r: InstanceRecord | null): boolean {
    if (!r) return false;
    return this.now() - r.checked < (r.software ? FRESH_MS : FAILED_FRESH_MS);
  }

  /**
   * The kind an actor's instance is sent now ('boost' until known). A missing or stale record is
   * looked up in the background (the send does not wait).
   */
  kind(actorId: string | URL): InstanceKind {
    const at = instanceOf(actorId);
    if (!at) return 'boost';
    const r = this.record(at.host);
    if (!this.fresh(r) && !this.running.has(at.host) && this.background < MAX_BACKGROUND) {
      this.background++;
      void this.learnHost(at.host, at.origin).finally(() => this.background--);
    }
    return kindOf(r);
  }

  /**
   * Learns an actor's instance unless what is remembered is fresh; never throws (a failure is
   * remembered as such, and the instance gets boosts meanwhile).
   */
  async learn(actorId: string | URL): Promise<InstanceRecord | null> {
    const at = instanceOf(actorId);
    if (!at) return null;
    const r = this.record(at.host);
    return this.fresh(r) ? r : this.learnHost(at.host, at.origin);
  }

  private learnHost(host: string, origin: URL): Promise<InstanceRecord> {
    let p = this.running.get(host);
    if (p) return p;
    p = (async () => {
      const before = this.record(host);
      let software: string | null = null;
      try {
        software = await fetchSoftwareName(origin, this.fetchOptions);
      } catch (err) {
        this.log?.info({ instance: host, err: String(err) }, 'ap: instance software not learnt');
      }
      // A failure keeps what was learnt before (an outage does not turn Lemmy into Mastodon).
      const r: InstanceRecord = {
        software: software ?? before?.software ?? null,
        checked: this.now(),
      };
      try {
        this.kv.set(KEY + host, r, KEEP_MS);
      } catch (err) {
        this.log?.warn({ err, instance: host }, 'ap: cannot remember instance software');
      }
      this.remember(host, r);
      if (software && software !== before?.software) {
        this.log?.info({ instance: host, software, kind: kindOf(r) }, 'ap: instance software');
      }
      return r;
    })().finally(() => this.running.delete(host));
    this.running.set(host, p);
    return p;
  }
}

const byState = new WeakMap<ApState, InstanceKinds>();

/** The instance kinds of a bridge (one per ApState, shared by its inbox and its sends). */
export function instanceKinds(state: ApState): InstanceKinds {
  let k = byState.get(state);
  if (!k) {
    k = new InstanceKinds(
      state.kv,
      {
        checkUrl: (url) => state.port.checkUrl(url),
        userAgent: `${SOFTWARE.name}/${SOFTWARE.version} (+${state.urls.origin})`,
      },
      { log: state.log },
    );
    byState.set(state, k);
  }
  return k;
}
