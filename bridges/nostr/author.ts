/**
 * Authors' own Nostr signatures (DESIGN "Identity across networks"): a RUM group key is a
 * secp256k1 key, so the author's node signs the Nostr event that stands for a post (BIP-340,
 * the same private key; pubkey = the x-only form of the group key) and carries it, whole, in the
 * payload's `nostr` field. The trx is signed as quorum signs it: a node that ignores the field
 * still verifies it (the field is more JSON inside the encrypted Data).
 *
 * Used by the node's post path (src/node.ts) and by the groups layer, which checks a carried
 * event ({@link checkCarried}) before serving it.
 */
import { schnorrPublicKey, schnorrSign, schnorrVerify } from '../../src/crypto/schnorr.ts';
import {
  carriedEvent,
  type EventRef,
  matchesPayload,
  NOSTR_FIELD,
  toNostr,
  withoutEvent,
} from './mapping.ts';
import { eventId } from './event.ts';
import type { NostrEvent } from './types.ts';

type Rec = Record<string, unknown>;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** The Nostr pubkey of a RUM group key (33-byte compressed): its x coordinate, hex. */
export function xOnly(compressed: Uint8Array): string {
  if (compressed.length !== 33) throw new TypeError('a compressed key has 33 bytes');
  return hex(compressed.subarray(1));
}

/** The Nostr pubkey of a group key in quorum's base64url encoding, or null if it is not one. */
export function nostrPubkeyOf(rumPubkey: string): string | null {
  if (typeof rumPubkey !== 'string' || !/^[A-Za-z0-9_-]{44}$/.test(rumPubkey)) return null;
  const bytes = Buffer.from(rumPubkey, 'base64url');
  if (bytes.length !== 33 || (bytes[0] !== 2 && bytes[0] !== 3)) return null;
  return hex(bytes.subarray(1));
}

/** The two RUM encodings of a Nostr pubkey (even and odd Y: BIP-340 keys have no parity). */
export function rumPubkeysOf(nostrPubkey: string): string[] {
  const x = Buffer.from(nostrPubkey, 'hex');
  return [2, 3].map((p) => Buffer.concat([Buffer.of(p), x]).toString('base64url'));
}

/** Signs an event with a secp256k1 private key (BIP-340). */
export function signEvent(
  template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>,
  priv: Uint8Array,
): NostrEvent {
  const pubkey = hex(schnorrPublicKey(priv));
  const unsigned = { ...template, pubkey };
  const id = eventId(unsigned);
  const sig = hex(schnorrSign(Buffer.from(id, 'hex'), priv));
  return { ...unsigned, id, sig };
}

/** Whether an event's id is its hash and its signature verifies (BIP-340). */
export function verifyEvent(e: NostrEvent): boolean {
  if (eventId(e) !== e.id) return false;
  return schnorrVerify(
    Buffer.from(e.sig, 'hex'),
    Buffer.from(e.id, 'hex'),
    Buffer.from(e.pubkey, 'hex'),
  );
}

/**
 * The payload with the author's signed event added, or null when the payload has no Nostr form
 * here (a profile, an edit), a trx it refers to has no author-signed event (then every relay
 * serves the post as its own proxy event, whose references resolve on that relay), or the
 * payload already carries one.
 */
export function withAuthorEvent(
  payload: Rec,
  groupId: string,
  priv: Uint8Array,
  eventOf: (trxId: string) => EventRef | null,
  nowSeconds = Math.floor(Date.now() / 1000),
): Rec | null {
  if (NOSTR_FIELD in payload) return null;
  const view = toNostr(payload, groupId, eventOf);
  if (!view.ok) return null;
  const event = signEvent({ ...view.event, created_at: nowSeconds }, priv);
  return { ...payload, [NOSTR_FIELD]: event };
}

/** The author-signed event a committed payload carries, as a reference for replies to it. */
export function eventRefOf(payload: Rec | null): EventRef | null {
  const e = carriedEvent(payload);
  return e && { id: e.id, pubkey: e.pubkey, kind: e.kind, tags: e.tags };
}

export type CarriedCheck = { ok: true; event: NostrEvent } | { ok: false; reason: string };

/**
 * The event a committed payload carries, if it may be served as is: its form, id and signature
 * are valid, it says what the payload says in this group, and it is the trx sender's own (its
 * pubkey is the sender's key) or, for a post that came from Nostr (`origin.network` `nostr`,
 * `origin.id` its id), the Nostr author's, which its signature proves.
 */
export function checkCarried(
  payload: Rec | null,
  groupId: string,
  senderPubkey: string,
  verify: (e: NostrEvent) => boolean = verifyEvent,
): CarriedCheck {
  const event = carriedEvent(payload);
  if (!event || !payload) return { ok: false, reason: 'no carried event' };
  const fromNostr =
    typeof payload.origin === 'object' &&
    payload.origin !== null &&
    (payload.origin as Rec).network === 'nostr' &&
    (payload.origin as Rec).id === event.id;
  if (!fromNostr && nostrPubkeyOf(senderPubkey) !== event.pubkey) {
    return { ok: false, reason: 'the event is not signed by the trx sender' };
  }
  if (!matchesPayload(event, withoutEvent(payload), groupId)) {
    return { ok: false, reason: 'the event does not match the post' };
  }
  if (!verify(event)) return { ok: false, reason: 'the event signature does not verify' };
  return { ok: true, event };
}

/** A committed item as the author-signing needs it: its payload and who sent it. */
export interface CommittedPayload {
  payload: Rec | null;
  senderPubkey: string;
}

/**
 * What the node posts for its own key in a public group: the payload with the author's signed
 * event when it has a Nostr form whose references are author-signed events too (each checked as
 * every relay checks it), else the payload as it is. `read` gives a committed trx of the group.
 */
export function authorSigned(
  payload: unknown,
  groupId: string,
  priv: Uint8Array,
  read: (trxId: string) => CommittedPayload | undefined,
): unknown {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return payload;
  const eventOf = (trxId: string): EventRef | null => {
    const item = read(trxId);
    if (!item) return null;
    const checked = checkCarried(item.payload, groupId, item.senderPubkey);
    return checked.ok ? eventRefOf(item.payload) : null;
  };
  return withAuthorEvent(payload as Rec, groupId, priv, eventOf) ?? payload;
}
