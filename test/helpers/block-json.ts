/** Parses the Go-style JSON of a block or trx (as the API returns it) back into protobuf types. */
import type { Block, Trx } from '../../src/chain/pb.ts';

type J = Record<string, unknown>;
const b64 = (v: unknown) => new Uint8Array(typeof v === 'string' ? Buffer.from(v, 'base64') : []);
const big = (v: unknown) => BigInt((v as string | number | undefined) ?? 0);

export function trxFromJson(j: J): Trx {
  return {
    TrxId: (j.TrxId as string) ?? '',
    Type: (j.Type as number) ?? 0,
    GroupId: (j.GroupId as string) ?? '',
    Data: b64(j.Data),
    TimeStamp: big(j.TimeStamp),
    Version: (j.Version as string) ?? '',
    Expired: big(j.Expired),
    ResendCount: big(j.ResendCount),
    SenderPubkey: (j.SenderPubkey as string) ?? '',
    SenderSign: b64(j.SenderSign),
    StorageType: (j.StorageType as number) ?? 0,
  };
}

export function blockFromJson(j: J): Block {
  return {
    GroupId: (j.GroupId as string) ?? '',
    BlockId: (j.BlockId as number) ?? 0,
    Epoch: (j.Epoch as number) ?? 0,
    PrevHash: b64(j.PrevHash),
    ProducerPubkey: (j.ProducerPubkey as string) ?? '',
    Trxs: ((j.Trxs as J[]) ?? []).map(trxFromJson),
    Sudo: (j.Sudo as boolean) ?? false,
    TimeStamp: big(j.TimeStamp),
    BlockHash: b64(j.BlockHash),
    ProducerSign: b64(j.ProducerSign),
  };
}
