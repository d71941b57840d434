/**
 * The key pairs of the bridge's actors: for each actor an RSA key (draft-cavage and RFC 9421
 * HTTP Signatures, which Mastodon needs; 2048 bits, because Fedify's 4096-bit default signs four
 * times slower) and an Ed25519 key (Object Integrity Proofs). Made once per actor, kept as JWK
 * JSON in the node's encrypted keystore (port.secrets('activitypub')), never shared between
 * actors; the imported CryptoKeys are cached in memory. RSA comes first, so its id is
 * `<actor>#main-key` and the Ed25519 key's `<actor>#key-2`.
 */
import { createHash, webcrypto } from 'node:crypto';
import { exportJwk, importJwk } from '@fedify/fedify';
import type { BridgeSecrets } from '../port.ts';

interface StoredPair {
  publicKey: webcrypto.JsonWebKey;
  privateKey: webcrypto.JsonWebKey;
}

async function makePairs(): Promise<StoredPair[]> {
  const rsa = await webcrypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    true,
    ['sign', 'verify'],
  );
  const ed = (await webcrypto.subtle.generateKey('Ed25519', true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const pairs: StoredPair[] = [];
  for (const kp of [rsa, ed]) {
    pairs.push({
      publicKey: await exportJwk(kp.publicKey),
      privateKey: await exportJwk(kp.privateKey),
    });
  }
  return pairs;
}

/**
 * The secret's name of an actor: `key.<identifier>`, or `key.h<digest>` for an identifier that
 * does not fit the keystore's names (`[A-Za-z0-9_.-]`, 80 characters with the bridge's prefix;
 * an author's `u_<66 hex>` does not).
 */
function secretName(identifier: string): string {
  if (/^[A-Za-z0-9_.-]{1,60}$/.test(identifier)) return `key.${identifier}`;
  return `key.h${createHash('sha256').update(identifier).digest('hex').slice(0, 56)}`;
}

export class ActorKeys {
  private readonly secrets: BridgeSecrets;
  private readonly cache = new Map<string, Promise<CryptoKeyPair[]>>();

  constructor(secrets: BridgeSecrets) {
    this.secrets = secrets;
  }

  /** The actor's key pairs, RSA first; made and stored on first use. */
  pairs(identifier: string): Promise<CryptoKeyPair[]> {
    let p = this.cache.get(identifier);
    if (!p) {
      p = this.load(identifier);
      this.cache.set(identifier, p);
      p.catch(() => this.cache.delete(identifier));
    }
    return p;
  }

  private async load(identifier: string): Promise<CryptoKeyPair[]> {
    const bytes = await this.secrets.getOrCreate(secretName(identifier), async () =>
      new TextEncoder().encode(JSON.stringify(await makePairs())),
    );
    const stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredPair[];
    return Promise.all(
      stored.map(async (s) => ({
        publicKey: await importJwk(s.publicKey, 'public'),
        privateKey: await importJwk(s.privateKey, 'private'),
      })),
    );
  }
}
