/**
 * Private-group sealing, as quorum does it: a POST's Data is an age file (binary, X25519
 * recipients) readable by the group's approved members only; every other trx type stays under
 * the group cipher key. Each member's age identity is kept in the keystore (kind "encrypt").
 */
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';

export interface AgeKeyPair {
  identity: string;
  recipient: string;
}

export async function generateAgeKeyPair(): Promise<AgeKeyPair> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

export async function sealTo(
  recipients: readonly string[],
  plain: Uint8Array,
): Promise<Uint8Array> {
  if (recipients.length === 0) throw new TypeError('no recipients to seal to');
  const e = new Encrypter();
  for (const r of new Set(recipients)) e.addRecipient(r);
  return e.encrypt(plain);
}

/** null when this identity is not among the recipients, or the data is not an age file. */
export async function openWith(identity: string, data: Uint8Array): Promise<Uint8Array | null> {
  try {
    const d = new Decrypter();
    d.addIdentity(identity);
    return await d.decrypt(data);
  } catch {
    return null;
  }
}
