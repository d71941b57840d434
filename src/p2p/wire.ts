/**
 * What travels on a group's gossip topics, as quorum sends it: a protobuf Package{Type, Data}
 * on `user_channel_<group id>`; a TRX package carries a Trx whose Data is zstd-compressed after
 * signing (receivers decompress before verifying), a BLOCK package a Block as is.
 */
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import {
  type Block,
  decodeBlock,
  decodeTrx,
  encodeBlock,
  encodeTrx,
  PackageDesc,
  PackageType,
  type Trx,
} from '../chain/pb.ts';
import { decodeMessage, encodeMessage } from '../chain/protobuf.ts';

export const userChannel = (groupId: string): string => `user_channel_${groupId}`;
export const prodChannel = (groupId: string): string => `prod_channel_${groupId}`;

export function groupOfTopic(topic: string): string | null {
  const m = /^(?:user|prod)_channel_([0-9a-f-]{36})$/.exec(topic);
  return m ? m[1]! : null;
}

export class WireError extends Error {
  override name = 'WireError';
}

export type Envelope = { kind: 'trx'; trx: Trx } | { kind: 'block'; block: Block };

export function encodeTrxPackage(trx: Trx): Uint8Array {
  const wire = { ...trx, Data: new Uint8Array(zstdCompressSync(trx.Data)) };
  return encodeMessage(PackageDesc, { Type: PackageType.TRX, Data: encodeTrx(wire) });
}

export function encodeBlockPackage(block: Block): Uint8Array {
  return encodeMessage(PackageDesc, { Type: PackageType.BLOCK, Data: encodeBlock(block) });
}

/** Decodes a gossip message; throws WireError when it is not a well-formed package within limits. */
export function decodePackage(
  data: Uint8Array,
  limits: { maxTrxDataBytes: number; maxBlockBytes: number },
): Envelope {
  if (data.length > limits.maxBlockBytes + 4096) throw new WireError('package too large');
  let pkg: { Type: number; Data: Uint8Array };
  try {
    pkg = decodeMessage(PackageDesc, data);
  } catch (err) {
    throw new WireError(`malformed package: ${(err as Error).message}`);
  }
  if (pkg.Type === PackageType.TRX) {
    let trx: Trx;
    try {
      trx = decodeTrx(pkg.Data);
    } catch (err) {
      throw new WireError(`malformed trx: ${(err as Error).message}`);
    }
    try {
      trx.Data = new Uint8Array(
        zstdDecompressSync(trx.Data, { maxOutputLength: limits.maxTrxDataBytes }),
      );
    } catch {
      throw new WireError('trx data is not zstd within the size limit');
    }
    return { kind: 'trx', trx };
  }
  if (pkg.Type === PackageType.BLOCK) {
    try {
      return { kind: 'block', block: decodeBlock(pkg.Data) };
    } catch (err) {
      throw new WireError(`malformed block: ${(err as Error).message}`);
    }
  }
  throw new WireError(`package type ${pkg.Type} is not handled on this topic`);
}
