// libp2p's secp256k1 keys, once routed through libsecp256k1, still make and accept exactly the
// signatures noble does (DER over sha256), and reject tampered ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '../../src/crypto/sign.ts';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import { installFastLibp2pSecp256k1 } from '../../src/p2p/fast-secp256k1.ts';

describe('fast libp2p secp256k1', () => {
  it('interoperates with noble in both directions', () => {
    assert.equal(installFastLibp2pSecp256k1(), true, 'libsecp256k1 loads on this platform');
    const raw = generatePrivateKey();
    const key = privateKeyFromProtobuf(Uint8Array.of(0x08, 0x02, 0x12, 0x20, ...raw));
    const msg = new TextEncoder().encode('libp2p-pubsub:a gossip message');
    const sig = key.sign(msg) as Uint8Array;
    // what libp2p produced verifies under noble, over sha256(msg), as DER
    assert.ok(
      secp256k1.verify(sig, sha256(msg), key.publicKey.raw, { prehash: false, format: 'der' }),
    );
    // what noble produces verifies under the libp2p key
    const nobleSig = secp256k1.sign(sha256(msg), raw, { prehash: false, format: 'der' });
    assert.equal(key.publicKey.verify(msg, nobleSig), true);
    // and tampering is caught
    assert.equal(key.publicKey.verify(new TextEncoder().encode('another message'), sig), false);
    const bad = sig.slice();
    bad[bad.length - 1]! ^= 1;
    assert.equal(key.publicKey.verify(msg, bad), false);
    assert.equal(key.publicKey.verify(msg, new Uint8Array([1, 2, 3])), false);
  });
});
