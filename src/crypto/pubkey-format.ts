/** Public keys in the forms quorum's API accepts: base64url compressed, or libp2p "CAISIQ…". */
import { fromBase64 } from './encoding.ts';
import { decodePubkey, ethAddress } from './keys.ts';

export function fromPubkeyOrNull(text: string): Uint8Array | null {
  const r = decodePubkey(text);
  if (r.ok) return r.value;
  if (text.startsWith('CAISI') && text.length === 52) {
    try {
      const b = fromBase64(text);
      if (b.length === 37 && b[0] === 8 && b[1] === 2 && b[2] === 0x12 && b[3] === 0x21) {
        const inner = decodePubkey(Buffer.from(b.subarray(4)).toString('base64url'));
        return inner.ok ? inner.value : null;
      }
    } catch {
      return null;
    }
  }
  return null;
}

export { ethAddress };
