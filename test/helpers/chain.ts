/** Trxs, keys and groups for tests below the network: built and signed as an outside member would. */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { nowNs } from '../../src/chain/clock.ts';
import { signBlock } from '../../src/chain/block.ts';
import { type Block, type Trx, TrxType } from '../../src/chain/pb.ts';
import { signTrx, type UnsignedTrx } from '../../src/chain/trx.ts';
import { aesEncrypt } from '../../src/crypto/aes.ts';
import { encodePubkey, publicKeyOf } from '../../src/crypto/keys.ts';
import { openTempNode } from './temp-node.ts';

export const pubOf = (priv: Uint8Array) => encodePubkey(publicKeyOf(priv));

/** An owner's node with a new public group, and a second node that joined it by seed. */
export async function ownerAndMember(groupName = 'blocks') {
  const owner = await openTempNode();
  const member = await openTempNode();
  const { groupId, seed } = await owner.node.createGroup({
    groupName,
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  });
  await member.node.joinGroup(seed);
  const ownerKey = owner.node.keystore.get('sign', groupId);
  return { owner: owner.node, member: member.node, groupId, ownerKey };
}

/** A Note POST, encrypted with the group's cipher key, not yet signed. */
export function unsignedPost(
  groupId: string,
  cipherKey: Uint8Array,
  senderPubkey: string,
  text: string,
  trxId: string = crypto.randomUUID(),
): UnsignedTrx {
  const ts = nowNs();
  return {
    TrxId: trxId,
    Type: TrxType.POST,
    GroupId: groupId,
    Data: aesEncrypt(cipherKey, Buffer.from(JSON.stringify({ type: 'Note', content: text }))),
    TimeStamp: ts,
    Expired: ts + 60_000_000_000n,
    SenderPubkey: senderPubkey,
  };
}

/** A Note POST signed by `priv`. */
export function postBy(
  groupId: string,
  cipherKey: Uint8Array,
  priv: Uint8Array,
  text: string,
): Trx {
  return signTrx(unsignedPost(groupId, cipherKey, pubOf(priv), text), priv);
}

const N = secp256k1.Point.CURVE().n;

/** The same (r, s) with s replaced by n - s: a valid but non-canonical (high-S) ECDSA signature. */
export function highS(sig: Uint8Array): Uint8Array {
  let s = 0n;
  for (let i = 32; i < 64; i++) s = (s << 8n) | BigInt(sig[i]!);
  let t = N - s;
  const out = Uint8Array.from(sig);
  for (let i = 63; i >= 32; i--) {
    out[i] = Number(t & 0xffn);
    t >>= 8n;
  }
  out[64] = sig[64]! ^ 1;
  return out;
}

/** The block after `head`, produced and signed by `priv`. */
export function nextBlock(
  head: { blockId: number; hash: Uint8Array; epoch: number },
  groupId: string,
  trxs: Trx[],
  priv: Uint8Array,
): Block {
  return signBlock(
    {
      GroupId: groupId,
      BlockId: head.blockId + 1,
      Epoch: head.epoch + 1,
      PrevHash: head.hash,
      ProducerPubkey: pubOf(priv),
      Trxs: trxs,
      Sudo: false,
      TimeStamp: nowNs(),
    },
    priv,
  );
}
