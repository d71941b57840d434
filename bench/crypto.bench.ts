/**
 * core.crypto: raw rates of the signature and cipher primitives on this machine, each candidate
 * beside the pure-JS baseline (noble) in the same process. src/crypto/sign.ts uses the winner.
 */
import { createPublicKey, verify as nodeVerify, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { aesEncrypt } from '../src/crypto/aes.ts';
import { generatePrivateKey, publicKeyOf } from '../src/crypto/keys.ts';
import {
  sha256,
  signatureBackend,
  signDigest,
  signDigestNoble,
  verifyDigest,
  verifyDigestNoble,
} from '../src/crypto/sign.ts';
import { rate, report } from './lib.ts';

const priv = generatePrivateKey();
const pub = publicKeyOf(priv);
const digest = sha256(new Uint8Array(300).fill(7));
const sig = signDigest(digest, priv);

// OpenSSL through node:crypto, verifying the same signature over the same digest.
const raw = secp256k1.Point.fromBytes(pub).toBytes(false);
const key = createPublicKey({
  key: {
    kty: 'EC',
    crv: 'secp256k1',
    x: Buffer.from(raw.subarray(1, 33)).toString('base64url'),
    y: Buffer.from(raw.subarray(33)).toString('base64url'),
  },
  format: 'jwk',
});
const der = secp256k1.Signature.fromBytes(sig.subarray(0, 64), 'compact').toBytes('der');
const verifyOpenssl = () => {
  // node:crypto hashes its input itself, so it verifies over the 300-byte message.
  nodeVerify('sha256', new Uint8Array(300).fill(7), key, der);
};

const nobleSign = rate(() => signDigestNoble(digest, priv));
const nativeSign = rate(() => signDigest(digest, priv));
const nobleVerify = rate(() => verifyDigestNoble(pub, digest, sig));
const opensslVerify = rate(verifyOpenssl);
const nativeVerify = rate(() => verifyDigest(pub, digest, sig));
const cipherKey = new Uint8Array(32).fill(1);
const note = new Uint8Array(200).fill(65);
const aes = rate(() => aesEncrypt(cipherKey, note));
// The same AES-256-GCM in pure JS (@noble/ciphers, with a fresh nonce each time as aesEncrypt).
const aesNoble = rate(() => gcm(cipherKey, randomBytes(12)).encrypt(note));

report({ name: 'crypto.sign-noble', value: nobleSign, unit: 'ops/s', baseline: nobleSign });
report({
  name: `crypto.sign-${signatureBackend}`,
  value: nativeSign,
  unit: 'ops/s',
  baseline: nobleSign,
});
report({ name: 'crypto.verify-noble', value: nobleVerify, unit: 'ops/s', baseline: nobleVerify });
report({
  name: 'crypto.verify-node-crypto',
  value: opensslVerify,
  unit: 'ops/s',
  baseline: nobleVerify,
});
report({
  name: `crypto.verify-${signatureBackend}`,
  value: nativeVerify,
  unit: 'ops/s',
  baseline: nobleVerify,
});
report({ name: 'crypto.aes-gcm-200B-noble', value: aesNoble, unit: 'ops/s', baseline: aesNoble });
report({ name: 'crypto.aes-gcm-200B', value: aes, unit: 'ops/s', baseline: aesNoble });
