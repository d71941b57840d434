/**
 * libp2p signs and verifies every gossipsub message with the node's secp256k1 key (quorum's
 * peers require signed messages), and @libp2p/crypto does it in pure JS: about 1,700 signatures
 * and 600 verifications a second here, which caps a node at a few hundred gossip messages a
 * second. This routes those two methods of @libp2p/crypto's secp256k1 key classes through
 * libsecp256k1 when its addon loads (same DER signatures, same verdicts), and leaves them alone
 * otherwise. test/p2p/fast-secp256k1.test.ts checks both directions against noble.
 */
import { createHash } from 'node:crypto';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { nativeSecp256k1 } from '../crypto/sign.ts';

type Bytes = Uint8Array | Iterable<Uint8Array>;

function digestOf(data: Bytes): Uint8Array {
  const h = createHash('sha256');
  if (data instanceof Uint8Array) h.update(data);
  else for (const part of data) h.update(part);
  return new Uint8Array(h.digest());
}

let installed = false;

export function installFastLibp2pSecp256k1(): boolean {
  const lib = nativeSecp256k1;
  if (installed || !lib) return installed;
  const probe = privateKeyFromProtobuf(
    Uint8Array.of(0x08, 0x02, 0x12, 0x20, ...new Uint8Array(31), 1),
  );
  const privProto = Object.getPrototypeOf(probe) as { sign: unknown; raw?: Uint8Array };
  const pubProto = Object.getPrototypeOf(probe.publicKey) as { verify: unknown };
  if (typeof privProto.sign !== 'function' || typeof pubProto.verify !== 'function') return false;
  privProto.sign = function sign(this: { raw: Uint8Array }, data: Bytes): Uint8Array {
    const { signature } = lib.ecdsaSign(digestOf(data), this.raw);
    return lib.signatureExport(signature);
  };
  pubProto.verify = function verify(
    this: { raw: Uint8Array },
    data: Bytes,
    sig: Uint8Array,
  ): boolean {
    try {
      const compact = lib.signatureNormalize(lib.signatureImport(sig));
      return lib.ecdsaVerify(compact, digestOf(data), this.raw);
    } catch {
      return false;
    }
  };
  installed = true;
  return true;
}
