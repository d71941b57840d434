/**
 * Many small Mastodon-like ActivityPub instances on loopback, for fan-out tests and benchmarks
 * (node:http and node:crypto only, never Fedify, like test/helpers/ap-peer.ts whose parser it
 * reuses): instance i listens on its own 127.0.0.1 port and has `actorsPerInstance` Person
 * actors `u0…`, each with a personal inbox and the instance's shared inbox (`/inbox`).
 *
 * - Every inbox POST is verified as Mastodon does: draft-cavage `rsa-sha256`/`hs2019` over
 *   `(request-target)`, `host`, `date` and `digest` at least, `Digest: SHA-256=` checked against
 *   the raw body, Date within an hour, the signer's key fetched from its actor (once per
 *   instance: each instance keeps its own key cache), and the key's owner must be the activity's
 *   actor. A request signed with RFC 9421 only (`Signature-Input`) is answered 401, as a
 *   Mastodon before 4.5 does, so a sender falls back to draft-cavage (counted in `knocks`).
 *   Anything else wrong is answered 401 and counted in `refused`; a verified POST is answered
 *   202 and recorded per (activity id, inbox URL): a second delivery of the same activity id to
 *   the same inbox is counted in `duplicates` (receivers dedupe on the activity id).
 * - Each actor can send a signed `Follow` (and the `Accept` it gets back is recorded) and signed
 *   `Create(Note)` activities. Keys: one RSA-2048 key for all actors (`keys: 'shared'`, for
 *   thousands of actors: generating one costs ~50 ms) or one per actor (`'per-actor'`). Key ids
 *   are per actor either way (`<actor>#main-key`), and the node fetches each one.
 *
 * In process: `startApReceivers()`. In a process of its own: `startApReceiverProcess()` (the
 * same API over IPC).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign as rsaSign,
  verify as rsaVerify,
} from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  AS_CONTEXT,
  AS_PUBLIC,
  idOf,
  type Json,
  parseCavageSignature,
  SECURITY_CONTEXT,
} from './ap-peer.ts';

export interface ApReceiversOptions {
  instances: number;
  actorsPerInstance: number;
  /** One RSA key for every actor (default), or one per actor. */
  keys?: 'shared' | 'per-actor';
}

export interface ApReceiverStats {
  /** Verified POSTs answered 202, repeats included. */
  accepted: number;
  /** Distinct (activity id, inbox URL) pairs received. */
  distinct: number;
  /** Verified POSTs of an activity id an inbox had already received. */
  duplicates: number;
  /** RFC 9421-only requests answered 401 (the sender then falls back to draft-cavage). */
  knocks: number;
  /** Other refusals (401/400), by reason. */
  refused: Record<string, number>;
  /** Key documents fetched (each instance fetches each key once). */
  keyFetches: number;
  /** Follows of ours that got an Accept. */
  accepted_follows: number;
}

/** One (activity id, inbox) that was received more than once, for a failing assertion. */
export interface DuplicateEntry {
  activity: string;
  inbox: string;
  count: number;
}

interface Actor {
  id: string;
  keyId: string;
  inbox: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

interface Instance {
  index: number;
  origin: string;
  host: string;
  sharedInbox: string;
  server: http.Server;
  actors: Actor[];
  /** keyId → its public key and owner, fetched once per instance. */
  keyCache: Map<string, Promise<{ key: KeyObject; owner: string }>>;
}

interface Watcher {
  ids: string[];
  instances: number;
  resolve: () => void;
}

const AP_TYPE = 'application/activity+json';
const MAX_SKEW_MS = 3_600_000;
const MAX_BODY = 1 << 20;

function sha256b64(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('base64');
}

/** Signs a POST as Mastodon does (draft-cavage rsa-sha256); answers the headers to send. */
export function signPost(
  url: string,
  body: string,
  keyId: string,
  privateKey: KeyObject,
): Record<string, string> {
  const u = new URL(url);
  const date = new Date().toUTCString();
  const digest = `SHA-256=${sha256b64(body)}`;
  const type = AP_TYPE;
  const signed = [
    `(request-target): post ${u.pathname}${u.search}`,
    `host: ${u.host}`,
    `date: ${date}`,
    `digest: ${digest}`,
    `content-type: ${type}`,
  ].join('\n');
  const signature = rsaSign('sha256', Buffer.from(signed), privateKey).toString('base64');
  return {
    host: u.host,
    date,
    digest,
    'content-type': type,
    signature: `keyId="${keyId}",algorithm="rsa-sha256",headers="(request-target) host date digest content-type",signature="${signature}"`,
  };
}

export class ApReceivers {
  readonly instances: Instance[] = [];
  /** activity id → inbox URL → deliveries. */
  readonly received = new Map<string, Map<string, number>>();
  /** activity id → indexes of the instances that received it. */
  private readonly byInstance = new Map<string, Set<number>>();
  private readonly watchers = new Set<Watcher>();
  private readonly followsSent = new Set<string>();
  private readonly followsAccepted = new Set<string>();
  private followWaiter: (() => void) | null = null;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly stats = {
    accepted: 0,
    duplicates: 0,
    knocks: 0,
    keyFetches: 0,
    refused: {} as Record<string, number>,
  };
  private readonly opts: ApReceiversOptions;
  private readonly sharedKey: { privateKey: KeyObject; publicKeyPem: string } | null;

  constructor(opts: ApReceiversOptions) {
    this.opts = opts;
    this.sharedKey = opts.keys === 'per-actor' ? null : newKey();
  }

  /** Every actor, instance by instance. */
  get actors(): Actor[] {
    return this.instances.flatMap((i) => i.actors);
  }

  async listen(): Promise<void> {
    for (let index = 0; index < this.opts.instances; index++) {
      const server = http.createServer({ keepAliveTimeout: 60_000 });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const origin = `http://${host}`;
      const actors: Actor[] = [];
      for (let a = 0; a < this.opts.actorsPerInstance; a++) {
        const key = this.sharedKey ?? newKey();
        const id = `${origin}/users/u${a}`;
        actors.push({ id, keyId: `${id}#main-key`, inbox: `${id}/inbox`, ...key });
      }
      const inst: Instance = {
        index,
        origin,
        host,
        sharedInbox: `${origin}/inbox`,
        server,
        actors,
        keyCache: new Map(),
      };
      server.on('request', (req, res) => {
        this.handle(inst, req, res).catch(() => {
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
      });
      this.instances.push(inst);
    }
  }

  private actorDoc(actor: Actor, inst: Instance): Json {
    return {
      '@context': [AS_CONTEXT, SECURITY_CONTEXT],
      id: actor.id,
      type: 'Person',
      preferredUsername: actor.id.split('/').pop(),
      inbox: actor.inbox,
      outbox: `${actor.id}/outbox`,
      followers: `${actor.id}/followers`,
      following: `${actor.id}/following`,
      endpoints: { sharedInbox: inst.sharedInbox },
      publicKey: { id: actor.keyId, owner: actor.id, publicKeyPem: actor.publicKeyPem },
    };
  }

  private async handle(inst: Instance, req: http.IncomingMessage, res: http.ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET') {
      const m = /^\/users\/u(\d+)$/.exec(path);
      const actor = m ? inst.actors[Number(m[1])] : undefined;
      if (!actor) return void res.writeHead(404).end();
      const body = JSON.stringify(this.actorDoc(actor, inst));
      res.writeHead(200, { 'content-type': AP_TYPE, 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const inboxActor = /^\/users\/u(\d+)\/inbox$/.exec(path);
    if (path !== '/inbox' && !(inboxActor && inst.actors[Number(inboxActor[1])])) {
      return void res.writeHead(404).end();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY) return void res.writeHead(413).end();
      chunks.push(c);
    }
    const body = Buffer.concat(chunks);
    const refuse = (reason: string, status = 401) => {
      this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
      res.writeHead(status).end();
    };
    if (req.headers['signature-input'] !== undefined) {
      this.stats.knocks++;
      return void res.writeHead(401).end();
    }
    const sigHeader = req.headers.signature;
    if (typeof sigHeader !== 'string') return refuse('unsigned');
    const sig = parseCavageSignature(sigHeader);
    if (!sig?.keyId || !sig.signature) return refuse('bad signature header');
    const algorithm = (sig.algorithm ?? 'hs2019').toLowerCase();
    if (algorithm !== 'rsa-sha256' && algorithm !== 'hs2019') return refuse('algorithm');
    const names = (sig.headers ?? 'date').toLowerCase().split(/\s+/).filter(Boolean);
    for (const n of ['(request-target)', 'host', 'date', 'digest']) {
      if (!names.includes(n)) return refuse(`${n} not signed`);
    }
    const digest = String(req.headers.digest ?? '');
    if (
      !digest
        .split(',')
        .some((d) => d.trim().replace(/^sha-256=/i, 'SHA-256=') === `SHA-256=${sha256b64(body)}`)
    ) {
      return refuse('digest');
    }
    const date = Date.parse(String(req.headers.date ?? ''));
    if (!Number.isFinite(date) || Math.abs(Date.now() - date) > MAX_SKEW_MS) return refuse('date');
    const lines: string[] = [];
    for (const n of names) {
      if (n === '(request-target)') lines.push(`(request-target): post ${req.url}`);
      else {
        const v = req.headers[n];
        if (v === undefined) return refuse(`missing ${n}`);
        lines.push(`${n}: ${Array.isArray(v) ? v.join(', ') : v}`);
      }
    }
    let activity: Json;
    try {
      activity = JSON.parse(body.toString('utf8'));
    } catch {
      return refuse('not json', 400);
    }
    let key: { key: KeyObject; owner: string };
    try {
      key = await this.keyOf(inst, sig.keyId);
    } catch {
      return refuse('key fetch');
    }
    const ok = rsaVerify(
      'sha256',
      Buffer.from(lines.join('\n')),
      key.key,
      Buffer.from(sig.signature, 'base64'),
    );
    if (!ok) return refuse('signature');
    if (key.owner !== idOf(activity.actor)) return refuse('signer is not the actor');
    const id = idOf(activity.id);
    if (!id) return refuse('no id', 400);
    this.stats.accepted++;
    res.writeHead(202, { 'content-length': '0' }).end();
    this.record(inst, id, `${inst.origin}${path}`, activity);
  }

  private record(inst: Instance, id: string, inbox: string, activity: Json) {
    let per = this.received.get(id);
    if (!per) {
      per = new Map();
      this.received.set(id, per);
    }
    const n = (per.get(inbox) ?? 0) + 1;
    per.set(inbox, n);
    if (n > 1) this.stats.duplicates++;
    let insts = this.byInstance.get(id);
    if (!insts) {
      insts = new Set();
      this.byInstance.set(id, insts);
    }
    insts.add(inst.index);
    if (activity.type === 'Accept') {
      const follow = idOf(activity.object);
      if (follow && this.followsSent.has(follow)) {
        this.followsAccepted.add(follow);
        if (this.followsAccepted.size >= this.followsSent.size) this.followWaiter?.();
      }
    }
    for (const w of this.watchers) {
      if (w.ids.includes(id) && this.reached(w.ids, w.instances)) {
        this.watchers.delete(w);
        w.resolve();
      }
    }
  }

  private reached(ids: string[], instances: number): boolean {
    return ids.every((x) => (this.byInstance.get(x)?.size ?? 0) >= instances);
  }

  /** The public key of a key id, fetched from its actor once per instance. */
  private keyOf(inst: Instance, keyId: string) {
    let p = inst.keyCache.get(keyId);
    if (!p) {
      p = (async () => {
        this.stats.keyFetches++;
        const url = keyId.replace(/#.*$/, '');
        const doc = JSON.parse(await this.get(url)) as Json;
        const keys = Array.isArray(doc.publicKey) ? doc.publicKey : [doc.publicKey];
        const k = keys.find((x: Json) => x && (x.id === keyId || url === keyId));
        if (!k?.publicKeyPem) throw new Error(`no key ${keyId}`);
        const owner = idOf(k.owner) ?? idOf(doc.id);
        if (!owner) throw new Error(`no owner of ${keyId}`);
        return { key: createPublicKey(k.publicKeyPem), owner };
      })();
      inst.keyCache.set(keyId, p);
      p.catch(() => inst.keyCache.delete(keyId));
    }
    return p;
  }

  private get(url: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.get(url, { agent: this.agent, headers: { accept: AP_TYPE } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
          else resolve(text);
        });
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url}: timeout`)));
      req.on('error', reject);
    });
  }

  /** POSTs a body with headers; answers the status. */
  post(url: string, body: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.setTimeout(60_000, () => req.destroy(new Error(`POST ${url}: timeout`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Clears every instance's key cache (the next POST to each fetches the keys again). */
  forgetKeys(): void {
    for (const i of this.instances) i.keyCache.clear();
  }

  /**
   * Every actor (of the first `instances`) sends a signed Follow of `target` to `inbox`, `concurrency` at a time; resolves
   * when every Follow was answered 2xx and accepted, or throws after timeoutMs.
   */
  async followAll(
    target: string,
    inbox: string,
    concurrency = 32,
    timeoutMs = 300_000,
    /** Only the actors of the first this many instances follow (default all). */
    instances = this.instances.length,
  ) {
    const actors = this.instances.slice(0, instances).flatMap((i) => i.actors);
    const accepted = new Promise<void>((resolve) => {
      this.followWaiter = resolve;
    });
    let next = 0;
    const failures: string[] = [];
    const ids: string[] = [];
    for (const actor of actors) {
      const id = `${actor.id}/follows/${randomUUID()}`;
      ids.push(id);
      this.followsSent.add(id);
    }
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const i = next++;
          if (i >= actors.length) return;
          const actor = actors[i]!;
          const body = JSON.stringify({
            '@context': AS_CONTEXT,
            id: ids[i],
            type: 'Follow',
            actor: actor.id,
            object: target,
          });
          const status = await this.post(
            inbox,
            body,
            signPost(inbox, body, actor.keyId, actor.privateKey),
          );
          if (status < 200 || status >= 300) failures.push(`${actor.id}: ${status}`);
        }
      }),
    );
    if (failures.length > 0) {
      throw new Error(`${failures.length} Follows refused, e.g. ${failures.slice(0, 3)}`);
    }
    if (this.followsAccepted.size < this.followsSent.size) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        accepted,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `${this.followsAccepted.size} of ${this.followsSent.size} Follows accepted in time`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return { follows: ids.length };
  }

  /**
   * Signs `count` Create(Note) replies to `inReplyTo` (addressed to the public and cc `cc`), by
   * the actors in turn, ready to POST to `inbox`; the signing is done here, before the clock.
   */
  prepareNotes(opts: { inbox: string; inReplyTo: string; cc: string; count: number; tag: string }) {
    const actors = this.actors;
    const out: { body: string; headers: Record<string, string> }[] = [];
    for (let i = 0; i < opts.count; i++) {
      const actor = actors[i % actors.length]!;
      const note = `${actor.id}/statuses/${opts.tag}-${i}`;
      const body = JSON.stringify({
        '@context': AS_CONTEXT,
        id: `${note}/activity`,
        type: 'Create',
        actor: actor.id,
        published: new Date().toISOString(),
        to: [AS_PUBLIC],
        cc: [opts.cc],
        object: {
          id: note,
          type: 'Note',
          attributedTo: actor.id,
          inReplyTo: opts.inReplyTo,
          published: new Date().toISOString(),
          to: [AS_PUBLIC],
          cc: [opts.cc],
          content: `<p>reply ${opts.tag} ${i} from ${actor.id}</p>`,
        },
      });
      out.push({ body, headers: signPost(opts.inbox, body, actor.keyId, actor.privateKey) });
    }
    this.prepared = { inbox: opts.inbox, requests: out };
    return { count: out.length };
  }

  private prepared: {
    inbox: string;
    requests: { body: string; headers: Record<string, string> }[];
  } = { inbox: '', requests: [] };

  /** POSTs what prepareNotes signed, `concurrency` at a time; answers the statuses seen. */
  async firePrepared(concurrency: number): Promise<Record<string, number>> {
    const { inbox, requests } = this.prepared;
    const statuses: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const i = next++;
          if (i >= requests.length) return;
          const r = requests[i]!;
          const s = String(await this.post(inbox, r.body, r.headers));
          statuses[s] = (statuses[s] ?? 0) + 1;
        }
      }),
    );
    this.prepared = { inbox: '', requests: [] };
    return statuses;
  }

  /** Resolves when each of `ids` was received by at least `instances` instances. */
  waitFor(ids: string[], instances: number): Promise<void> {
    if (this.reached(ids, instances)) return Promise.resolve();
    return new Promise((resolve) => this.watchers.add({ ids, instances, resolve }));
  }

  /** How many instances received each of `ids`. */
  reach(ids: string[]): number[] {
    return ids.map((x) => this.byInstance.get(x)?.size ?? 0);
  }

  /** The (activity, inbox) pairs received more than once. */
  duplicateList(): DuplicateEntry[] {
    const out: DuplicateEntry[] = [];
    for (const [activity, per] of this.received) {
      for (const [inbox, count] of per) if (count > 1) out.push({ activity, inbox, count });
    }
    return out;
  }

  getStats(): ApReceiverStats {
    let distinct = 0;
    for (const per of this.received.values()) distinct += per.size;
    return {
      ...this.stats,
      refused: { ...this.stats.refused },
      distinct,
      accepted_follows: this.followsAccepted.size,
    };
  }

  /** Instance origins, shared inboxes and actor ids (for the test's expectations). */
  describe() {
    return this.instances.map((i) => ({
      origin: i.origin,
      sharedInbox: i.sharedInbox,
      actors: i.actors.map((a) => a.id),
    }));
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await Promise.all(
      this.instances.map(
        (i) =>
          new Promise<void>((resolve) => {
            i.server.close(() => resolve());
            i.server.closeAllConnections();
          }),
      ),
    );
  }
}

function newKey() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export async function startApReceivers(opts: ApReceiversOptions): Promise<ApReceivers> {
  const r = new ApReceivers(opts);
  await r.listen();
  return r;
}

// ---- in a process of its own, over IPC ----

export const AP_RECEIVERS_SCRIPT = fileURLToPath(import.meta.url);

/** The methods callable over IPC (each answers JSON). */
type Remote = Pick<
  ApReceivers,
  | 'followAll'
  | 'prepareNotes'
  | 'firePrepared'
  | 'waitFor'
  | 'reach'
  | 'duplicateList'
  | 'getStats'
  | 'describe'
  | 'forgetKeys'
>;
type Promisified<T> = {
  [K in keyof T]: T[K] extends (...a: infer A) => infer R
    ? (...a: A) => Promise<Awaited<R>>
    : never;
};

export type ApReceiverProcess = Promisified<Remote> & {
  child: ChildProcess;
  stop(): Promise<void>;
};

export async function startApReceiverProcess(
  opts: ApReceiversOptions,
  timeoutMs = 120_000,
): Promise<ApReceiverProcess> {
  const child = spawn(process.execPath, [AP_RECEIVERS_SCRIPT, JSON.stringify(opts)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let ready: (() => void) | null = null;
  child.on('message', (m: { id?: number; ok?: boolean; value?: unknown; error?: string }) => {
    if (m.id === 0) return ready?.();
    const p = pending.get(m.id!);
    if (!p) return;
    pending.delete(m.id!);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  });
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error('ap receiver process exited'));
    pending.clear();
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => {
      ready = resolve;
    }),
    exited.then(() => {
      throw new Error('ap receiver process exited before it was ready');
    }),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('ap receiver process not ready')), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  const call =
    (method: string) =>
    (...args: unknown[]) =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        pending.set(id, { resolve, reject });
        child.send({ id, method, args });
      });
  const methods = [
    'followAll',
    'prepareNotes',
    'firePrepared',
    'waitFor',
    'reach',
    'duplicateList',
    'getStats',
    'describe',
    'forgetKeys',
  ];
  const remote = Object.fromEntries(methods.map((m) => [m, call(m)])) as Promisified<Remote>;
  return {
    ...remote,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function main() {
  const r = await startApReceivers(JSON.parse(process.argv[2] ?? '{}') as ApReceiversOptions);
  process.on('message', (m: { id: number; method: string; args: unknown[] }) => {
    const fn = (r as unknown as Record<string, (...a: unknown[]) => unknown>)[m.method];
    Promise.resolve()
      .then(() => fn!.apply(r, m.args))
      .then(
        (value) => process.send!({ id: m.id, ok: true, value: value ?? null }),
        (err: Error) => process.send!({ id: m.id, ok: false, error: String(err?.stack ?? err) }),
      );
  });
  process.on('SIGTERM', () => {
    r.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => {
    r.close().then(() => process.exit(0));
  });
  process.send!({ id: 0 });
}

if (import.meta.main) await main();
