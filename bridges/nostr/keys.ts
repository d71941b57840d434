/**
 * The relay's own Nostr key (NIP-11 `self`): it signs what the relay itself says (NIP-29 group
 * metadata, proxy events). Made once, kept in the node's encrypted keystore through the bridge's
 * secrets (port.secrets('nostr')), never shown.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import type { BridgeSecrets } from '../port.ts';
import type { EventCrypto } from './event.ts';
import type { NostrEvent } from './types.ts';

export const RELAY_KEY_SECRET = 'relay.key';

export interface RelayKey {
  /** The x-only public key, hex. */
  readonly pubkey: string;
  sign(template: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>): NostrEvent;
}

/** The relay's key: the one in the keystore, or a new one kept there. */
export async function loadRelayKey(secrets: BridgeSecrets, crypto: EventCrypto): Promise<RelayKey> {
  // A random valid secp256k1 scalar (noble's generator rejects zero and values ≥ n).
  const secret = await secrets.getOrCreate(RELAY_KEY_SECRET, async () =>
    schnorr.utils.randomSecretKey(),
  );
  if (secret.length !== 32) throw new Error('the stored Nostr relay key is not 32 bytes');
  const pubkey = crypto.publicKey(secret);
  return {
    pubkey,
    sign: (template) => crypto.sign(template, secret),
  };
}
