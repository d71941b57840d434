/**
 * Fedify's type declarations name the DOM's Web Crypto types (`CryptoKey`, `CryptoKeyPair`,
 * `JsonWebKey`), which the project's `lib: ["ES2024"]` does not declare: without these globals
 * `ActorKeyPair.privateKey` and friends do not type. Node's own webcrypto types stand in for them.
 */
import type { webcrypto } from 'node:crypto';

declare global {
  interface CryptoKeyPair extends webcrypto.CryptoKeyPair {}
  interface JsonWebKey extends webcrypto.JsonWebKey {}
  interface CryptoKey extends webcrypto.CryptoKey {}
}
