/**
 * The two NIP-19 forms the node shows its operator: `npub` (a key) and `naddr` (an addressable
 * event: kind, author, `d` identifier, relay hints), in bech32 (BIP-173) with NIP-19's TLV for
 * naddr. Written here rather than taken from nostr-tools, which is a test dependency only.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATORS[i] as number;
  }
  return chk >>> 0;
}

/** 8-bit bytes → 5-bit groups, the last one padded with zero bits. */
function toWords(bytes: Uint8Array): number[] {
  const words: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      words.push((acc >>> bits) & 31);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) words.push((acc << (5 - bits)) & 31);
  return words;
}

/** Bech32 (not bech32m) of `data` under `prefix`, without BIP-173's 90-character limit. */
export function bech32(prefix: string, data: Uint8Array): string {
  const words = toWords(data);
  const expanded = [
    ...[...prefix].map((c) => c.charCodeAt(0) >> 5),
    0,
    ...[...prefix].map((c) => c.charCodeAt(0) & 31),
  ];
  const mod = polymod([...expanded, ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return `${prefix}1${[...words, ...checksum].map((w) => CHARSET[w]).join('')}`;
}

function hexBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new TypeError('a Nostr key is 64 lowercase hex digits');
  return Buffer.from(hex, 'hex');
}

/** The `npub` of a hex Nostr pubkey. */
export function npubEncode(pubkey: string): string {
  return bech32('npub', hexBytes(pubkey));
}

/** The `naddr` of an addressable event: TLV 0 the `d` identifier, 1 relays, 2 author, 3 kind. */
export function naddrEncode(a: {
  identifier: string;
  pubkey: string;
  kind: number;
  relays?: string[];
}): string {
  const tlv: Uint8Array[] = [];
  const put = (type: number, value: Uint8Array) => {
    if (value.length > 255) throw new RangeError('a NIP-19 TLV value has at most 255 bytes');
    tlv.push(Uint8Array.of(type, value.length), value);
  };
  put(0, Buffer.from(a.identifier, 'utf8'));
  for (const r of a.relays ?? []) put(1, Buffer.from(r, 'utf8'));
  put(2, hexBytes(a.pubkey));
  const kind = Buffer.alloc(4);
  kind.writeUInt32BE(a.kind);
  put(3, kind);
  return bech32('naddr', Buffer.concat(tlv));
}
