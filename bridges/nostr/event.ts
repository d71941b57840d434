/**
 * Nostr events from outside, checked before anything else touches them (NIP-01): their form
 * (lowercase hex of the right lengths, integer ranges, tags as arrays of strings, size limits),
 * their id (sha256 of the NIP-01 serialization) and their BIP-340 signature. Also the relay's
 * own signing. Used by the relay core (bridges/nostr/relay.ts) and whoever makes events.
 *
 * Signatures are checked with the node's native libsecp256k1 (src/crypto/schnorr.ts builds
 * BIP-340 from the addon's point and scalar operations): measured here at about 9,900
 * verifications/s per core, against about 3,900 for libsecp256k1 compiled to WebAssembly
 * (`nostr-wasm`, the fallback where the addon does not load) and about 700 for @noble/curves
 * (also what nostr-tools' verifyEvent uses; the last fallback). The relay verifies what clients
 * send off its main thread (checkEventAsync: src/crypto/schnorr-pool.ts's worker threads).
 */
import { createHash } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { schnorrPublicKey, schnorrSign, schnorrVerify } from '../../src/crypto/schnorr.ts';
import { SchnorrPool } from '../../src/crypto/schnorr-pool.ts';
import { signatureBackend } from '../../src/crypto/sign.ts';
import type { NostrEvent } from './types.ts';

/** A value, or why there is none (a message with its NIP-01 prefix). */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface EventLimits {
  /** Characters (UTF-16 code units) of `content`. */
  maxContentChars: number;
  maxEventTags: number;
}

/** Strings in one tag, and characters in one tag string: beyond any real use. */
export const MAX_TAG_ITEMS = 100;
export const MAX_TAG_STRING_CHARS = 64 * 1024;

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const FIELDS = ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig'] as const;

export function isHex64(v: unknown): v is string {
  return typeof v === 'string' && v.length === 64 && HEX64.test(v);
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason: `invalid: ${reason}` };
}

/**
 * Checks the form of an event (not its id or signature): answers the event with only its seven
 * fields (anything else the client sent is dropped), or why it is refused (`invalid: …`).
 */
export function parseEvent(raw: unknown, limits: EventLimits): Checked<NostrEvent> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail('an event is a JSON object');
  }
  const o = raw as Record<string, unknown>;
  for (const f of FIELDS) if (!(f in o)) return fail(`the event has no ${f}`);
  const { id, pubkey, created_at, kind, tags, content, sig } = o;
  if (!isHex64(id)) return fail('id must be 64 lowercase hex characters');
  if (!isHex64(pubkey)) return fail('pubkey must be 64 lowercase hex characters');
  if (typeof sig !== 'string' || !HEX128.test(sig)) {
    return fail('sig must be 128 lowercase hex characters');
  }
  if (typeof created_at !== 'number' || !Number.isSafeInteger(created_at) || created_at < 0) {
    return fail('created_at must be a non-negative integer');
  }
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind > 65535) {
    return fail('kind must be an integer from 0 to 65535');
  }
  if (typeof content !== 'string') return fail('content must be a string');
  if (content.length > limits.maxContentChars) {
    return fail(`content is longer than ${limits.maxContentChars} characters`);
  }
  if (!content.isWellFormed()) return fail('content has a lone surrogate');
  if (!Array.isArray(tags)) return fail('tags must be an array');
  if (tags.length > limits.maxEventTags) {
    return fail(`more than ${limits.maxEventTags} tags`);
  }
  for (const tag of tags) {
    if (!Array.isArray(tag) || tag.length === 0) {
      return fail('each tag must be a non-empty array of strings');
    }
    if (tag.length > MAX_TAG_ITEMS) return fail(`a tag has more than ${MAX_TAG_ITEMS} strings`);
    for (const s of tag) {
      if (typeof s !== 'string') return fail('each tag must be a non-empty array of strings');
      if (s.length > MAX_TAG_STRING_CHARS) return fail('a tag string is too long');
      if (!s.isWellFormed()) return fail('a tag string has a lone surrogate');
    }
  }
  return {
    ok: true,
    value: { id, pubkey, created_at, kind, tags: tags as string[][], content, sig },
  };
}

/** The bytes an event id hashes (NIP-01): `[0,pubkey,created_at,kind,tags,content]` as JSON. */
export function serializeForId(e: Omit<NostrEvent, 'id' | 'sig'>): string {
  return JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]);
}

export function eventId(e: Omit<NostrEvent, 'id' | 'sig'>): string {
  return createHash('sha256').update(serializeForId(e), 'utf8').digest('hex');
}

/** An event as JSON, fields in NIP-01's order (what the relay sends). */
export function eventJson(e: NostrEvent): string {
  return (
    `{"id":"${e.id}","pubkey":"${e.pubkey}","created_at":${e.created_at},"kind":${e.kind},` +
    `"tags":${JSON.stringify(e.tags)},"content":${JSON.stringify(e.content)},"sig":"${e.sig}"}`
  );
}

/** Checks and makes BIP-340 signatures of events. */
export interface EventCrypto {
  /** Which implementation is in use (`libsecp256k1`, `nostr-wasm` or `noble`). */
  readonly backend: string;
  /** Whether the signature is the pubkey's over the id (the id itself is not checked). */
  verifySig(e: NostrEvent): boolean;
  /**
   * The same verdict as verifySig, reached off the main thread where the implementation can
   * (the native one: a pool of worker threads); otherwise verifySig's, as a promise.
   */
  verifySigAsync(e: NostrEvent): Promise<boolean>;
  /** The x-only public key of a secret key, hex. */
  publicKey(secret: Uint8Array): string;
  sign(template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>, secret: Uint8Array): NostrEvent;
}

const hexBytes = (s: string) => Buffer.from(s, 'hex');
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

function nobleVerify(e: NostrEvent): boolean {
  try {
    return schnorr.verify(hexBytes(e.sig), hexBytes(e.id), hexBytes(e.pubkey));
  } catch {
    return false; // An x that is not on the curve, r or s out of range.
  }
}

function nobleCrypto(): EventCrypto {
  return {
    backend: 'noble',
    verifySig: nobleVerify,
    verifySigAsync: async (e) => nobleVerify(e),
    publicKey: (secret) => hexOf(schnorr.getPublicKey(secret)),
    sign(template, secret) {
      const pubkey = hexOf(schnorr.getPublicKey(secret));
      const unsigned = { ...template, tags: template.tags.map((t) => [...t]), pubkey };
      const id = eventId(unsigned);
      return { ...unsigned, id, sig: hexOf(schnorr.sign(hexBytes(id), secret)) };
    },
  };
}

interface WasmNostr {
  getPublicKey(secret: Uint8Array): Uint8Array;
  finalizeEvent(event: Record<string, unknown>, secret: Uint8Array): void;
  verifyEvent(event: Record<string, unknown>): void;
}

async function wasmCrypto(): Promise<EventCrypto> {
  const { initNostrWasm } = await import('nostr-wasm');
  const nw = (await initNostrWasm()) as unknown as WasmNostr;
  function verifySig(e: NostrEvent): boolean {
    // nostr-wasm checks the id too (it hashes the event again): the caller checked it already.
    try {
      nw.verifyEvent(e as unknown as Record<string, unknown>);
      return true;
    } catch {
      return false; // Its only way of saying no: "signature is invalid", "pubkey is invalid".
    }
  }
  return {
    backend: 'nostr-wasm',
    verifySig,
    verifySigAsync: async (e) => verifySig(e),
    publicKey: (secret) => hexOf(nw.getPublicKey(secret)),
    sign(template, secret) {
      const e: Record<string, unknown> = {
        kind: template.kind,
        created_at: template.created_at,
        tags: template.tags.map((t) => [...t]),
        content: template.content,
      };
      nw.finalizeEvent(e, secret);
      return e as unknown as NostrEvent;
    },
  };
}

/** The worker threads of the native implementation, started on the first verifySigAsync. */
let pool: SchnorrPool | null = null;

function nativeCrypto(): EventCrypto | null {
  if (signatureBackend !== 'libsecp256k1') return null;
  return {
    backend: 'libsecp256k1',
    verifySig: (e) => schnorrVerify(hexBytes(e.sig), hexBytes(e.id), hexBytes(e.pubkey)),
    verifySigAsync(e) {
      pool ??= new SchnorrPool();
      return pool.verify(hexBytes(e.sig), hexBytes(e.id), hexBytes(e.pubkey));
    },
    publicKey: (secret) => hexOf(schnorrPublicKey(secret)),
    sign(template, secret) {
      const pubkey = hexOf(schnorrPublicKey(secret));
      const unsigned = { ...template, tags: template.tags.map((t) => [...t]), pubkey };
      const id = eventId(unsigned);
      return { ...unsigned, id, sig: hexOf(schnorrSign(hexBytes(id), secret)) };
    },
  };
}

/** Signatures verified lately, remembered: at most this many. */
const MAX_VERIFIED = 50_000;

/**
 * An implementation that remembers the signatures it found valid (the event id, pubkey and
 * signature together), so an event is verified once per process: the relay checks a client's
 * event when it arrives, and the groups layer checks the event its trx carries when it commits.
 * Only a valid signature is remembered, and only for that very (id, pubkey, sig).
 */
function remembering(c: EventCrypto): EventCrypto {
  const verified = new Set<string>();
  return {
    backend: c.backend,
    publicKey: (secret) => c.publicKey(secret),
    sign: (template, secret) => c.sign(template, secret),
    verifySig(e) {
      const key = e.id + e.pubkey + e.sig;
      if (verified.has(key)) return true;
      if (!c.verifySig(e)) return false;
      remember(key);
      return true;
    },
    async verifySigAsync(e) {
      const key = e.id + e.pubkey + e.sig;
      if (verified.has(key)) return true;
      if (!(await c.verifySigAsync(e))) return false;
      remember(key);
      return true;
    },
  };
  function remember(key: string): void {
    if (verified.size >= MAX_VERIFIED) verified.clear();
    verified.add(key);
  }
}

let loading: Promise<EventCrypto> | null = null;

/** The fastest implementation that loads here (made once; it holds no key). */
export function loadEventCrypto(): Promise<EventCrypto> {
  loading ??= Promise.resolve(nativeCrypto())
    .then((c) => c ?? wasmCrypto())
    .catch(() => nobleCrypto())
    .then(remembering);
  return loading;
}

/** The pure-JS implementation (tests compare the three). */
export function nobleEventCrypto(): EventCrypto {
  return nobleCrypto();
}

/** libsecp256k1 compiled to WebAssembly, the fallback where the native addon does not load. */
export function wasmEventCrypto(): Promise<EventCrypto> {
  return wasmCrypto();
}

/**
 * Checks an event from outside completely: form, id, signature. The reason starts with
 * `invalid:`.
 */
export function checkEvent(
  raw: unknown,
  limits: EventLimits,
  crypto: EventCrypto,
): Checked<NostrEvent> {
  const parsed = parseEvent(raw, limits);
  if (!parsed.ok) return parsed;
  const e = parsed.value;
  if (eventId(e) !== e.id) return fail('the id is not the hash of the event');
  if (!crypto.verifySig(e)) return fail('bad signature');
  return parsed;
}

/** checkEvent, with the signature verified off the main thread where the crypto can. */
export async function checkEventAsync(
  raw: unknown,
  limits: EventLimits,
  crypto: EventCrypto,
): Promise<Checked<NostrEvent>> {
  const parsed = parseEvent(raw, limits);
  if (!parsed.ok) return parsed;
  const e = parsed.value;
  if (eventId(e) !== e.id) return fail('the id is not the hash of the event');
  if (!(await crypto.verifySigAsync(e))) return fail('bad signature');
  return parsed;
}

/** NIP-01 kind ranges. */
export function isReplaceable(kind: number): boolean {
  return kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000);
}
export function isEphemeral(kind: number): boolean {
  return kind >= 20000 && kind < 30000;
}
export function isAddressable(kind: number): boolean {
  return kind >= 30000 && kind < 40000;
}

/** The first value of the first tag named `name`, if any. */
export function tagValue(e: Pick<NostrEvent, 'tags'>, name: string): string | undefined {
  for (const t of e.tags) if (t[0] === name && t.length > 1) return t[1];
  return undefined;
}

/** The `d` of an addressable event ('' when it has none), '' for a replaceable one, else null. */
export function replaceKey(e: Pick<NostrEvent, 'kind' | 'tags'>): string | null {
  if (isReplaceable(e.kind)) return '';
  if (isAddressable(e.kind)) return tagValue(e, 'd') ?? '';
  return null;
}

/** NIP-40: the event's expiration (seconds), or null when it has none (or an unreadable one). */
export function expirationOf(e: Pick<NostrEvent, 'tags'>): number | null {
  const v = tagValue(e, 'expiration');
  if (v === undefined || !/^\d{1,15}$/.test(v)) return null;
  return Number(v);
}

/** NIP-70: whether the event carries the `["-"]` tag. */
export function isProtected(e: Pick<NostrEvent, 'tags'>): boolean {
  return e.tags.some((t) => t.length === 1 && t[0] === '-');
}
