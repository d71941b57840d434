/**
 * A small proto3 codec driven by message descriptors. Encoding follows Go's
 * google.golang.org/protobuf Marshal exactly (fields in number order, zero scalars omitted,
 * present sub-messages always written), which is what quorum hashes and signs; the vectors
 * in test/chain/vectors.test.ts pin it byte for byte.
 */

export type ScalarKind =
  | 'string'
  | 'bytes'
  | 'bool'
  | 'enum'
  | 'int32'
  | 'int64'
  | 'uint64'
  | 'uint53';

export interface FieldDesc {
  readonly no: number;
  readonly name: string;
  readonly kind: ScalarKind | 'message';
  readonly repeated?: boolean;
  readonly message?: () => MessageDesc;
}

export interface MessageDesc {
  readonly name: string;
  readonly fields: readonly FieldDesc[];
}

// biome-ignore lint/suspicious/noExplicitAny: decoded messages are plain records typed by callers.
export type Msg = Record<string, any>;

export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

class Writer {
  private buf: Uint8Array;
  pos = 0;
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  varint(v: number): void {
    this.ensure(10);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }
  varintBig(v: bigint): void {
    // Negative int64 values are written as their 64-bit two's complement (10 bytes).
    const u = BigInt.asUintN(64, v);
    if (u <= 0x1fffffffffffffn) {
      this.varint(Number(u));
      return;
    }
    // Above 2^53: seven bits at a time from two 32-bit halves, without BigInt arithmetic.
    let lo = Number(u & 0xffffffffn);
    let hi = Number(u >> 32n);
    this.ensure(10);
    while (hi > 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }
  /** A string as UTF-8 bytes with their length; ASCII is copied without an encoder. */
  string(s: string): void {
    const n = s.length;
    if (n < 128) {
      this.ensure(n + 1);
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        this.buf[start + i] = c;
      }
      if (i === n) {
        this.buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    this.bytes(utf8Encoder.encode(s));
  }
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function isZero(kind: ScalarKind, v: unknown): boolean {
  switch (kind) {
    case 'string':
      return v === '';
    case 'bytes':
      return (v as Uint8Array).length === 0;
    case 'bool':
      return v === false;
    case 'int64':
    case 'uint64':
      return v === 0n;
    default:
      return v === 0;
  }
}

function writeScalar(w: Writer, f: FieldDesc, v: unknown): void {
  const kind = f.kind as ScalarKind;
  switch (kind) {
    case 'string':
      w.varint((f.no << 3) | 2);
      w.string(v as string);
      return;
    case 'bytes':
      w.varint((f.no << 3) | 2);
      w.bytes(v as Uint8Array);
      return;
    case 'bool':
      w.varint(f.no << 3);
      w.varint(v ? 1 : 0);
      return;
    case 'int64':
    case 'uint64':
      w.varint(f.no << 3);
      w.varintBig(v as bigint);
      return;
    default: {
      const n = v as number;
      w.varint(f.no << 3);
      if (n < 0) w.varintBig(BigInt(n));
      else w.varint(n);
    }
  }
}

function writeMessage(w: Writer, desc: MessageDesc, msg: Msg): void {
  for (const f of desc.fields) {
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      for (const item of v as unknown[]) {
        if (f.kind === 'message') {
          w.varint((f.no << 3) | 2);
          // An item may be given already encoded (a stored trx's exact bytes).
          w.bytes(item instanceof Uint8Array ? item : encodeMessage(f.message!(), item as Msg));
        } else if (f.kind === 'string' || f.kind === 'bytes') {
          writeScalar(w, f, item);
        }
      }
      if (f.kind !== 'message' && f.kind !== 'string' && f.kind !== 'bytes' && v.length > 0) {
        // proto3 packs repeated numeric fields: one length-delimited run of varints.
        const inner = new Writer(16);
        for (const item of v as (number | bigint)[]) {
          if (typeof item === 'bigint') inner.varintBig(item);
          else if (item < 0) inner.varintBig(BigInt(item));
          else inner.varint(item);
        }
        w.varint((f.no << 3) | 2);
        w.bytes(inner.finish());
      }
      continue;
    }
    if (f.kind === 'message') {
      w.varint((f.no << 3) | 2);
      w.bytes(encodeMessage(f.message!(), v as Msg));
      continue;
    }
    if (isZero(f.kind, v)) continue;
    writeScalar(w, f, v);
  }
}

export function encodeMessage(desc: MessageDesc, msg: Msg): Uint8Array {
  const w = new Writer();
  writeMessage(w, desc, msg);
  return w.finish();
}

class Reader {
  pos = 0;
  readonly buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result & 0xffffffffffffffffn;
      shift += 7n;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }
  smallVarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) break;
        return result;
      }
      mul *= 128;
    }
    throw new ProtobufError('length or tag out of range');
  }
  lengthDelimited(): Uint8Array {
    const len = this.smallVarint();
    if (this.pos + len > this.buf.length) throw new ProtobufError('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.lengthDelimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtobufError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.buf.length) throw new ProtobufError('truncated field');
  }
}

function defaultValue(f: FieldDesc): unknown {
  if (f.repeated) return [];
  switch (f.kind) {
    case 'string':
      return '';
    case 'bytes':
      return new Uint8Array(0);
    case 'bool':
      return false;
    case 'int64':
    case 'uint64':
      return 0n;
    case 'message':
      return undefined;
    default:
      return 0;
  }
}

const fieldIndexCache = new WeakMap<MessageDesc, Map<number, FieldDesc>>();
function fieldIndex(desc: MessageDesc): Map<number, FieldDesc> {
  let idx = fieldIndexCache.get(desc);
  if (!idx) {
    idx = new Map(desc.fields.map((f) => [f.no, f]));
    fieldIndexCache.set(desc, idx);
  }
  return idx;
}

function readScalar(r: Reader, f: FieldDesc, wireType: number): unknown {
  const kind = f.kind as ScalarKind;
  const expected = kind === 'string' || kind === 'bytes' ? 2 : 0;
  if (wireType !== expected) {
    throw new ProtobufError(`field ${f.name} has wire type ${wireType}, expected ${expected}`);
  }
  switch (kind) {
    case 'string':
      try {
        return utf8Decoder.decode(r.lengthDelimited());
      } catch (err) {
        if (err instanceof ProtobufError) throw err;
        throw new ProtobufError(`field ${f.name} is not valid UTF-8`);
      }
    case 'bytes':
      return r.lengthDelimited().slice();
    case 'bool':
      return r.varint() !== 0n;
    case 'int64':
      return BigInt.asIntN(64, r.varint());
    case 'uint64':
      return r.varint();
    case 'uint53': {
      const v = r.varint();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtobufError(`field ${f.name} too large`);
      return Number(v);
    }
    default:
      // enum and int32: protobuf sign-extends negative int32 to 64 bits.
      return Number(BigInt.asIntN(32, r.varint()));
  }
}

const MAX_DEPTH = 16;

function readMessage(desc: MessageDesc, buf: Uint8Array, depth: number): Msg {
  if (depth > MAX_DEPTH) throw new ProtobufError('message nested too deeply');
  const idx = fieldIndex(desc);
  const out: Msg = {};
  for (const f of desc.fields) out[f.name] = defaultValue(f);
  const r = new Reader(buf);
  while (r.pos < buf.length) {
    const tag = r.smallVarint();
    const no = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (no === 0) throw new ProtobufError('field number 0');
    const f = idx.get(no);
    if (!f) {
      r.skip(wireType);
      continue;
    }
    if (f.kind === 'message') {
      if (wireType !== 2) throw new ProtobufError(`field ${f.name} is not length-delimited`);
      const value = readMessage(f.message!(), r.lengthDelimited(), depth + 1);
      if (f.repeated) out[f.name].push(value);
      else out[f.name] = value;
      continue;
    }
    if (f.repeated && wireType === 2 && f.kind !== 'string' && f.kind !== 'bytes') {
      // packed repeated scalars
      const inner = new Reader(r.lengthDelimited());
      while (inner.pos < inner.buf.length) out[f.name].push(readScalar(inner, f, 0));
      continue;
    }
    const value = readScalar(r, f, wireType);
    if (f.repeated) out[f.name].push(value);
    else out[f.name] = value;
  }
  return out;
}

export function decodeMessage<T = Msg>(desc: MessageDesc, buf: Uint8Array): T {
  return readMessage(desc, buf, 0) as T;
}
