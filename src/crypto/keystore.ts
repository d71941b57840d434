/**
 * The node's encrypted keystore. One scrypt derivation of the password gives a key-encryption
 * key (KEK); each secret is a file sealed with AES-256-GCM under the KEK, with its kind and name
 * as additional data, so no secret is ever written in plaintext and a renamed file will not open.
 *
 *   <dir>/keystore.json          {version, kdf: "scrypt", kdfparams: {N, r, p, salt}, check}
 *   <dir>/<kind>_<name>.json     {version, kind, name, public, nonce, ciphertext}
 *
 * A wrong password fails the `check` value: a clear error, never a new keystore.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { encodePubkey, generatePrivateKey, isValidPrivateKey, publicKeyOf } from './keys.ts';

export type SecretKind = 'sign' | 'encrypt' | 'secret';
const KINDS: readonly SecretKind[] = ['sign', 'encrypt', 'secret'];

export class KeystoreError extends Error {
  override name = 'KeystoreError';
}

export interface Keystore {
  readonly dir: string;
  list(kind: SecretKind): string[];
  has(kind: SecretKind, name: string): boolean;
  /** The secret bytes; throws KeystoreError when absent or when it does not decrypt. */
  get(kind: SecretKind, name: string): Uint8Array;
  publicOf(kind: SecretKind, name: string): string;
  /** Stores a new secret; refuses to overwrite one of the same kind and name. */
  put(kind: SecretKind, name: string, secret: Uint8Array, publicText: string): Promise<void>;
  remove(kind: SecretKind, name: string): Promise<void>;
  /** The secp256k1 signing key of this name, created and stored on first use. */
  signKey(name: string): Promise<Uint8Array>;
}

export const DEFAULT_SCRYPT_N = 1 << 16;
const CHECK_PLAINTEXT = Buffer.from('rum-keystore-check');
const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}$/;

interface Sealed {
  nonce: string;
  ciphertext: string;
}

function seal(kek: Uint8Array, plain: Uint8Array, aad: string): Sealed {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  return { nonce: nonce.toString('hex'), ciphertext: body.toString('hex') };
}

function open(kek: Uint8Array, sealed: Sealed, aad: string): Uint8Array | null {
  try {
    const nonce = Buffer.from(sealed.nonce, 'hex');
    const body = Buffer.from(sealed.ciphertext, 'hex');
    if (nonce.length !== 12 || body.length < 16) return null;
    const d = createDecipheriv('aes-256-gcm', kek, nonce);
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(body.subarray(body.length - 16));
    return new Uint8Array(Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]));
  } catch {
    return null;
  }
}

function deriveKek(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N, r, p, maxmem: 256 * N * r + (1 << 20) }, (err, key) =>
      err
        ? reject(new KeystoreError(`scrypt failed: ${err.message}`))
        : resolve(new Uint8Array(key)),
    );
  });
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new KeystoreError(`invalid key name ${JSON.stringify(name)}`);
}

function aadOf(kind: SecretKind, name: string): string {
  return `rum-keystore:${kind}:${name}`;
}

interface SecretFile extends Sealed {
  version: 1;
  kind: SecretKind;
  name: string;
  public: string;
}

function parseHeader(
  text: string,
  dir: string,
): { N: number; r: number; p: number; salt: Buffer; check: Sealed } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new KeystoreError(`${dir}/keystore.json is not JSON`);
  }
  const h = j as {
    version?: unknown;
    kdf?: unknown;
    kdfparams?: Record<string, unknown>;
    check?: Sealed;
  };
  const kp = h.kdfparams;
  if (h.version !== 1 || h.kdf !== 'scrypt' || !kp || !h.check) {
    throw new KeystoreError(`${dir}/keystore.json is not a version 1 scrypt keystore`);
  }
  const N = kp.N;
  const r = kp.r;
  const p = kp.p;
  if (
    typeof N !== 'number' ||
    typeof r !== 'number' ||
    typeof p !== 'number' ||
    !Number.isInteger(Math.log2(N)) ||
    N < 2 ||
    N > 1 << 22 ||
    r < 1 ||
    r > 32 ||
    p < 1 ||
    p > 16 ||
    typeof kp.salt !== 'string' ||
    typeof h.check.nonce !== 'string' ||
    typeof h.check.ciphertext !== 'string'
  ) {
    throw new KeystoreError(`${dir}/keystore.json has invalid kdf parameters`);
  }
  return { N, r, p, salt: Buffer.from(kp.salt, 'hex'), check: h.check };
}

export async function openKeystore(
  dir: string,
  password: string,
  opts: { scryptN?: number } = {},
): Promise<Keystore> {
  if (!password) throw new KeystoreError('keystore password is empty');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const headerPath = join(dir, 'keystore.json');
  let kek: Uint8Array;
  let headerText: string | null = null;
  try {
    headerText = readFileSync(headerPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (headerText === null) {
    if (readdirSync(dir).some((f) => f.endsWith('.json'))) {
      throw new KeystoreError(`${dir} holds key files but no keystore.json`);
    }
    const N = opts.scryptN ?? DEFAULT_SCRYPT_N;
    const salt = randomBytes(32);
    kek = await deriveKek(password, salt, N, 8, 1);
    const header = {
      version: 1,
      kdf: 'scrypt',
      kdfparams: { N, r: 8, p: 1, salt: salt.toString('hex') },
      check: seal(kek, CHECK_PLAINTEXT, 'rum-keystore:check'),
    };
    writeAtomic(headerPath, `${JSON.stringify(header, null, 2)}\n`);
  } else {
    const h = parseHeader(headerText, dir);
    kek = await deriveKek(password, h.salt, h.N, h.r, h.p);
    const check = open(kek, h.check, 'rum-keystore:check');
    if (!check || !Buffer.from(check).equals(CHECK_PLAINTEXT)) {
      throw new KeystoreError(`wrong keystore password for ${dir}`);
    }
  }
  return new FileKeystore(dir, kek);
}

class FileKeystore implements Keystore {
  readonly dir: string;
  private readonly kek: Uint8Array;
  private readonly files = new Map<string, SecretFile>();
  private readonly cache = new Map<string, Uint8Array>();

  constructor(dir: string, kek: Uint8Array) {
    this.dir = dir;
    this.kek = kek;
    for (const f of readdirSync(dir)) {
      const m = /^(sign|encrypt|secret)_(.+)\.json$/.exec(f);
      if (!m) continue;
      try {
        const j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as SecretFile;
        if (j.kind === m[1] && j.name === m[2]) this.files.set(`${j.kind}_${j.name}`, j);
      } catch {
        // A damaged file is reported when that key is asked for.
      }
    }
  }

  private path(kind: SecretKind, name: string): string {
    return join(this.dir, `${kind}_${name}.json`);
  }

  list(kind: SecretKind): string[] {
    return [...this.files.values()]
      .filter((f) => f.kind === kind)
      .map((f) => f.name)
      .sort();
  }

  has(kind: SecretKind, name: string): boolean {
    return this.files.has(`${kind}_${name}`);
  }

  get(kind: SecretKind, name: string): Uint8Array {
    checkName(name);
    const id = `${kind}_${name}`;
    const cached = this.cache.get(id);
    if (cached) return cached;
    const file = this.files.get(id);
    if (!file) throw new KeystoreError(`no ${kind} key named ${name} in ${this.dir}`);
    const plain = open(this.kek, file, aadOf(kind, name));
    if (!plain)
      throw new KeystoreError(`${kind} key ${name} does not decrypt (damaged or moved file)`);
    this.cache.set(id, plain);
    return plain;
  }

  publicOf(kind: SecretKind, name: string): string {
    const file = this.files.get(`${kind}_${name}`);
    if (!file) throw new KeystoreError(`no ${kind} key named ${name} in ${this.dir}`);
    return file.public;
  }

  async put(kind: SecretKind, name: string, secret: Uint8Array, publicText: string): Promise<void> {
    if (!KINDS.includes(kind)) throw new KeystoreError(`unknown key kind ${kind}`);
    checkName(name);
    const id = `${kind}_${name}`;
    if (this.files.has(id)) throw new KeystoreError(`${kind} key ${name} already exists`);
    const file: SecretFile = {
      version: 1,
      kind,
      name,
      public: publicText,
      ...seal(this.kek, secret, aadOf(kind, name)),
    };
    writeAtomic(this.path(kind, name), `${JSON.stringify(file, null, 2)}\n`);
    this.files.set(id, file);
    this.cache.set(id, secret.slice());
  }

  async remove(kind: SecretKind, name: string): Promise<void> {
    checkName(name);
    const id = `${kind}_${name}`;
    if (!this.files.has(id)) throw new KeystoreError(`no ${kind} key named ${name}`);
    unlinkSync(this.path(kind, name));
    this.files.delete(id);
    this.cache.delete(id);
  }

  async signKey(name: string): Promise<Uint8Array> {
    if (this.has('sign', name)) {
      const key = this.get('sign', name);
      if (!isValidPrivateKey(key))
        throw new KeystoreError(`sign key ${name} is not a secp256k1 key`);
      return key;
    }
    const priv = generatePrivateKey();
    await this.put('sign', name, priv, encodePubkey(publicKeyOf(priv)));
    return priv;
  }
}
