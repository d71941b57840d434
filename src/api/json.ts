/**
 * JSON as quorum's Go server writes it: protobuf structs through encoding/json (proto field
 * names, zero values omitted, []byte as padded base64, enums as numbers, TimeStamp as a string,
 * other int64 as exact numbers). bigint values are written as exact integer literals.
 */
import type { Block, Trx } from '../chain/pb.ts';
import { toBase64 } from '../crypto/encoding.ts';

export function stringifyJson(value: unknown): string {
  // JSON.stringify cannot write bigint; mark them, then unquote the marks.
  const text = JSON.stringify(value, (_k, v) =>
    typeof v === 'bigint' ? `\u0000big:${v.toString()}` : v,
  );
  return text.replace(/"\\u0000big:(-?\d+)"/g, '$1');
}

type JsonRecord = Record<string, unknown>;

function put(out: JsonRecord, key: string, v: unknown, zero: boolean): void {
  if (!zero) out[key] = v;
}

/** pb.Trx as Go's encoding/json writes it; `data` replaces Data (the decrypted payload). */
export function trxJson(trx: Trx, data?: Uint8Array | null): JsonRecord {
  const out: JsonRecord = {};
  const d = data === undefined ? trx.Data : data;
  put(out, 'TrxId', trx.TrxId, trx.TrxId === '');
  put(out, 'Type', trx.Type, trx.Type === 0);
  put(out, 'GroupId', trx.GroupId, trx.GroupId === '');
  if (d === null) out.Data = null;
  else put(out, 'Data', toBase64(d), d.length === 0);
  put(out, 'TimeStamp', trx.TimeStamp.toString(), trx.TimeStamp === 0n);
  put(out, 'Version', trx.Version, trx.Version === '');
  put(out, 'Expired', trx.Expired, trx.Expired === 0n);
  put(out, 'ResendCount', trx.ResendCount, trx.ResendCount === 0n);
  put(out, 'SenderPubkey', trx.SenderPubkey, trx.SenderPubkey === '');
  put(out, 'SenderSign', toBase64(trx.SenderSign), trx.SenderSign.length === 0);
  put(out, 'StorageType', trx.StorageType, trx.StorageType === 0);
  return out;
}

export function blockJson(block: Block): JsonRecord {
  const out: JsonRecord = {};
  put(out, 'GroupId', block.GroupId, block.GroupId === '');
  put(out, 'BlockId', block.BlockId, block.BlockId === 0);
  put(out, 'Epoch', block.Epoch, block.Epoch === 0);
  put(out, 'PrevHash', toBase64(block.PrevHash), block.PrevHash.length === 0);
  put(out, 'ProducerPubkey', block.ProducerPubkey, block.ProducerPubkey === '');
  put(
    out,
    'Trxs',
    block.Trxs.map((t) => trxJson(t)),
    block.Trxs.length === 0,
  );
  put(out, 'Sudo', block.Sudo, !block.Sudo);
  put(out, 'TimeStamp', block.TimeStamp.toString(), block.TimeStamp === 0n);
  put(out, 'BlockHash', toBase64(block.BlockHash), block.BlockHash.length === 0);
  put(out, 'ProducerSign', toBase64(block.ProducerSign), block.ProducerSign.length === 0);
  return out;
}
