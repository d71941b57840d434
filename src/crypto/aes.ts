/**
 * The group cipher of public groups, as quorum's AesEncrypt: AES-256-GCM, a random 12-byte
 * nonce prefixed, then ciphertext ‖ 16-byte tag, no additional data.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { randomNonce } from './random.ts';

export const AES_KEY_BYTES = 32;
export const AES_NONCE_BYTES = 12;
export const AES_TAG_BYTES = 16;

// Building a KeyObject from raw bytes on every call costs more than the cipher itself on short
// payloads; a group uses one key for all its trxs.
const keyObjects = new Map<string, KeyObject>();
function keyObject(key: Uint8Array): KeyObject {
  const id = Buffer.from(key).toString('base64');
  let k = keyObjects.get(id);
  if (!k) {
    if (keyObjects.size >= 1024) keyObjects.delete(keyObjects.keys().next().value!);
    k = createSecretKey(key);
    keyObjects.set(id, k);
  }
  return k;
}

export function aesEncrypt(key: Uint8Array, plaintext: Uint8Array, nonce?: Uint8Array): Uint8Array {
  if (key.length !== AES_KEY_BYTES) throw new TypeError('cipher key must be 32 bytes');
  const iv = nonce ?? randomNonce(AES_NONCE_BYTES);
  if (iv.length !== AES_NONCE_BYTES) throw new TypeError('nonce must be 12 bytes');
  const cipher = createCipheriv('aes-256-gcm', keyObject(key), iv);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  const tag = cipher.getAuthTag();
  return new Uint8Array(Buffer.concat([iv, body, final, tag]));
}

/** Returns null when the data is too short or does not authenticate under the key. */
export function aesDecrypt(key: Uint8Array, data: Uint8Array): Uint8Array | null {
  if (key.length !== AES_KEY_BYTES) throw new TypeError('cipher key must be 32 bytes');
  if (data.length < AES_NONCE_BYTES + AES_TAG_BYTES) return null;
  const iv = data.subarray(0, AES_NONCE_BYTES);
  const tag = data.subarray(data.length - AES_TAG_BYTES);
  const body = data.subarray(AES_NONCE_BYTES, data.length - AES_TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyObject(key), iv);
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    return null;
  }
}
