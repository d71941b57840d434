// Byte vectors made by quorum's own Go encoding (test/vectors/quorum-chain.json, copied from
// shared/vectors): every byte of signing input, signature, trx, block, ciphertext and seed URL.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  checkBlockWithParent,
  checkGenesisBlock,
  computeBlockHash,
  signBlock,
} from '../../src/chain/block.ts';
import {
  type Block,
  decodeBlock,
  decodeTrx,
  encodeBlock,
  encodeTrx,
  type Trx,
} from '../../src/chain/pb.ts';
import { decodeSeedUrl, encodeSeedUrl } from '../../src/chain/seed.ts';
import { signTrx, trxSigningBytes, verifyTrxSignature } from '../../src/chain/trx.ts';
import { aesDecrypt, aesEncrypt } from '../../src/crypto/aes.ts';
import { fromHex, toHex } from '../../src/crypto/encoding.ts';
import { encodePubkey, publicKeyOf } from '../../src/crypto/keys.ts';
import { sha256, signDigestNoble, verifyDigestNoble } from '../../src/crypto/sign.ts';

const V = JSON.parse(
  readFileSync(new URL('../vectors/quorum-chain.json', import.meta.url), 'utf8'),
);
const priv = fromHex(V.private_key_hex);
const cipherKey = fromHex(V.cipher_key_hex);

function unsignedFrom(v: { fields: Record<string, string | number> }, data: Uint8Array) {
  const f = v.fields;
  return {
    TrxId: f.TrxId as string,
    Type: f.Type as number,
    GroupId: f.GroupId as string,
    Data: data,
    TimeStamp: BigInt(f.TimeStamp as string),
    Expired: BigInt(f.Expired as string),
    SenderPubkey: f.SenderPubkey as string,
  };
}

function genesis(): Block {
  const g = V.genesis.fields;
  return signBlock(
    {
      GroupId: g.GroupId,
      BlockId: 0,
      Epoch: 0,
      PrevHash: new Uint8Array(0),
      ProducerPubkey: g.ProducerPubkey,
      Trxs: [],
      Sudo: true,
      TimeStamp: BigInt(g.TimeStamp),
    },
    priv,
  );
}

function postTrx(): Trx {
  const data = aesEncrypt(
    cipherKey,
    Buffer.from(V.post_trx.content_plaintext),
    fromHex(V.post_trx.aes_nonce_hex),
  );
  return signTrx(unsignedFrom(V.post_trx, data), priv);
}

function appConfigTrx(): Trx {
  return signTrx(unsignedFrom(V.app_config_trx, fromHex(V.app_config_trx.fields.Data_hex)), priv);
}

describe('quorum byte vectors', () => {
  it('derives the public key in quorum encoding', () => {
    assert.equal(encodePubkey(publicKeyOf(priv)), V.public_key_b64url);
  });

  it('encrypts the post payload exactly as quorum AesEncrypt with the given nonce', () => {
    const data = aesEncrypt(
      cipherKey,
      Buffer.from(V.post_trx.content_plaintext),
      fromHex(V.post_trx.aes_nonce_hex),
    );
    assert.equal(toHex(data), V.post_trx.data_hex);
    assert.equal(
      Buffer.from(aesDecrypt(cipherKey, data)!).toString(),
      V.post_trx.content_plaintext,
    );
    const tampered = data.slice();
    tampered[20]! ^= 1;
    assert.equal(aesDecrypt(cipherKey, tampered), null);
  });

  it('reproduces trx signing bytes, signature, hash and full encoding', () => {
    const trx = postTrx();
    assert.equal(toHex(trxSigningBytes(trx)), V.post_trx.signing_bytes_hex);
    assert.equal(toHex(sha256(trxSigningBytes(trx))), V.post_trx.hash_hex);
    assert.equal(toHex(trx.SenderSign), V.post_trx.sender_sign_hex);
    assert.equal(toHex(encodeTrx(trx)), V.post_trx.full_marshal_hex);
    assert.ok(verifyTrxSignature(trx));
    // The pure-JS path signs identically (RFC 6979) and verifies the same signature.
    const digest = sha256(trxSigningBytes(trx));
    assert.equal(toHex(signDigestNoble(digest, priv)), V.post_trx.sender_sign_hex);
    assert.ok(verifyDigestNoble(publicKeyOf(priv), digest, trx.SenderSign));

    const cfg = appConfigTrx();
    assert.equal(toHex(trxSigningBytes(cfg)), V.app_config_trx.signing_bytes_hex);
    assert.equal(toHex(cfg.SenderSign), V.app_config_trx.sender_sign_hex);
  });

  it('decodes quorum trx bytes back to the same fields', () => {
    const trx = decodeTrx(fromHex(V.post_trx.full_marshal_hex));
    assert.equal(trx.TrxId, V.post_trx.fields.TrxId);
    assert.equal(trx.TimeStamp, BigInt(V.post_trx.fields.TimeStamp));
    assert.equal(trx.Expired, BigInt(V.post_trx.fields.Expired));
    assert.equal(toHex(encodeTrx(trx)), V.post_trx.full_marshal_hex);
    assert.ok(verifyTrxSignature(trx));
    const forged = { ...trx, Data: trx.Data.slice() };
    forged.Data[0]! ^= 1;
    assert.equal(verifyTrxSignature(forged), false);
  });

  it('reproduces the genesis block and block 1', () => {
    const g = genesis();
    assert.equal(toHex(encodeBlock(g).subarray(0, 0)), '');
    assert.equal(toHex(computeBlockHash(g)), V.genesis.hash_hex);
    assert.equal(toHex(g.ProducerSign), V.genesis.producer_sign_hex);
    assert.ok(checkGenesisBlock(g).ok);

    const f = V.block_1.fields;
    const b1 = signBlock(
      {
        GroupId: f.GroupId,
        BlockId: f.BlockId,
        Epoch: f.Epoch,
        PrevHash: fromHex(f.PrevHash_hex),
        ProducerPubkey: f.ProducerPubkey,
        Trxs: [postTrx(), appConfigTrx()],
        Sudo: false,
        TimeStamp: BigInt(f.TimeStamp),
      },
      priv,
    );
    assert.equal(toHex(b1.BlockHash), V.block_1.hash_hex);
    assert.equal(toHex(b1.ProducerSign), V.block_1.producer_sign_hex);
    // marshal_hex is the block as hashed (fields 1..8); the full block adds hash and signature.
    const full = encodeBlock(b1);
    assert.ok(toHex(full).startsWith(V.block_1.marshal_hex));
    const back = decodeBlock(full);
    assert.equal(back.Trxs.length, 2);
    assert.deepEqual(checkBlockWithParent(back, g), { ok: true });
  });

  it('builds the seed URL byte for byte and decodes it back, verifying the genesis', () => {
    const g = genesis();
    const s = V.seed_fields;
    const url = encodeSeedUrl(
      {
        genesisBlock: g,
        groupId: V.group_id,
        groupName: s.group_name,
        ownerPubkey: V.public_key_b64url,
        consensusType: s.consensus_type,
        encryptionType: s.encryption_type,
        cipherKey,
        appKey: s.app_key,
      },
      s.urls,
    );
    assert.equal(url, V.seed_url);

    const { seed, urls } = decodeSeedUrl(V.seed_url);
    assert.equal(seed.groupId, V.group_id);
    assert.equal(seed.groupName, 'vector forum');
    assert.equal(seed.appKey, 'group_bbs');
    assert.equal(toHex(seed.cipherKey), V.cipher_key_hex);
    assert.equal(seed.ownerPubkey, V.public_key_b64url);
    assert.equal(seed.consensusType, 'poa');
    assert.equal(seed.encryptionType, 'public');
    assert.equal(toHex(seed.genesisBlock.BlockHash), V.genesis.hash_hex);
    assert.deepEqual(urls, s.urls);
  });
});
