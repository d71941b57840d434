/**
 * The node's encrypted keystore. One scrypt derivation of the password gives a key-encryption
 * key (KEK); each secret is a file sealed with AES-256-GCM under the KEK, with its kind and name
 * as additional data, so no secret is ever written in plaintext and a renamed file will not open.
 *
 *   <dir>/keystore.json          {version: 1, kdf: "scrypt", kdfparams: {N, r, p, salt}, check}
 *   <dir>/<kind>_<name>.json     {version: 1, kind, name, public, nonce, ciphertext}
 *
 * Byte fields are hex; every ciphertext ends with the 16-byte GCM tag. `check` seals the bytes
 * "rum-keystore-check" with the additional data "rum-keystore:check"; a secret is sealed with
 * "rum-keystore:<kind>:<name>". The `public` text is stored beside the secret, not authenticated.
 * A wrong password fails the `check` value: a clear error, never a new keystore.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
  scrypt,
} from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { encodePubkey, generatePrivateKey, isValidPrivateKey, publicKeyOf } from './keys.ts';

/**
 * 'sign': secp256k1 signing keys (the node key "default", one per group); 'encrypt': encryption
 * keys; 'secret': other node secrets, such as the API token key.
 */
export type SecretKind = 'sign' | 'encrypt' | 'secret';
const KINDS: readonly SecretKind[] = ['sign', 'encrypt', 'secret'];

export class KeystoreError extends Error {
  override name = 'KeystoreError';
}

export interface Keystore {
  readonly dir: string;
  /** Names of stored secrets of a kind, sorted. */
  list(kind: SecretKind): string[];
  has(kind: SecretKind, name: string): boolean;
  /** The secret bytes (a copy); throws KeystoreError when absent or when it does not decrypt. */
  get(kind: SecretKind, name: string): Uint8Array;
  /** The public text stored beside the secret. */
  publicOf(kind: SecretKind, name: string): string;
  /** Stores a new secret; refuses to overwrite one of the same kind and name. */
  put(kind: SecretKind, name: string, secret: Uint8Array, publicText: string): Promise<void>;
  remove(kind: SecretKind, name: string): Promise<void>;
  /** The secp256k1 signing key of this name, created and stored on first use. */
  signKey(name: string): Promise<Uint8Array>;
}

export interface KeystoreOptions {
  /** scrypt cost of a new keystore (a power of two); an existing one keeps its own. */
  scryptN?: number;
}

export const DEFAULT_SCRYPT_N = 2 ** 17;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const MAX_SCRYPT_N = 2 ** 20;
/** Refuse kdf parameters read from disk that would make scrypt use more than this. */
const MAX_SCRYPT_MEMORY = 2 ** 30;
const KEK_BYTES = 32;
const SALT_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_FILE = 'keystore.json';
const CHECK_PLAINTEXT = Buffer.from('rum-keystore-check');
const CHECK_AAD = 'rum-keystore:check';
const NAME_RE = /^[A-Za-z0-9_.-]{1,80}$/;
const SECRET_FILE_RE = /^(sign|encrypt|secret)_(.+)\.json$/;
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

interface Sealed {
  nonce: string;
  ciphertext: string;
}

interface SecretFile extends Sealed {
  version: 1;
  kind: SecretKind;
  name: string;
  public: string;
}

interface Header {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  check: Sealed;
}

/** A secret file as found on disk: readable, or the reason it is not. */
type Entry = { ok: true; file: SecretFile } | { ok: false; reason: string };

function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name) && !name.startsWith('.');
}

function checkName(name: string): void {
  if (!isValidName(name)) throw new KeystoreError(`invalid key name ${JSON.stringify(name)}`);
}

function checkKind(kind: SecretKind): void {
  if (!KINDS.includes(kind)) throw new KeystoreError(`unknown key kind ${JSON.stringify(kind)}`);
}

function aadOf(kind: SecretKind, name: string): string {
  return `rum-keystore:${kind}:${name}`;
}

function seal(kek: KeyObject, plain: Uint8Array, aad: string): Sealed {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  return { nonce: nonce.toString('hex'), ciphertext: body.toString('hex') };
}

/** The plaintext, or null when the sealed value does not authenticate under the KEK and aad. */
function unseal(kek: KeyObject, sealed: Sealed, aad: string): Uint8Array | null {
  const nonce = Buffer.from(sealed.nonce, 'hex');
  const body = Buffer.from(sealed.ciphertext, 'hex');
  if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', kek, nonce);
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const plain = Buffer.concat([d.update(body.subarray(0, body.length - TAG_BYTES)), d.final()]);
    return new Uint8Array(plain);
  } catch {
    return null;
  }
}

/** Why a sealed value's fields are malformed, or null when they are well formed. */
function sealedProblem(v: Record<string, unknown>): string | null {
  if (typeof v.nonce !== 'string' || v.nonce.length !== NONCE_BYTES * 2 || !HEX_RE.test(v.nonce)) {
    return `nonce must be ${NONCE_BYTES * 2} hex characters`;
  }
  if (
    typeof v.ciphertext !== 'string' ||
    v.ciphertext.length < TAG_BYTES * 2 ||
    !HEX_RE.test(v.ciphertext)
  ) {
    return `ciphertext must be hex of at least ${TAG_BYTES} bytes`;
  }
  return null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPowerOfTwo(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 2 && Number.isInteger(Math.log2(n as number));
}

function scryptMaxmem(N: number, r: number): number {
  // scrypt needs about 128·N·r bytes; leave twice that plus slack for the limit.
  return 256 * N * r + (1 << 20);
}

function deriveKek(password: string, h: Omit<Header, 'check'>): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    scrypt(
      password,
      h.salt,
      KEK_BYTES,
      { N: h.N, r: h.r, p: h.p, maxmem: scryptMaxmem(h.N, h.r) },
      (err, key) => {
        if (err) reject(new KeystoreError(`scrypt failed: ${err.message}`));
        else resolve(createSecretKey(key));
      },
    );
  });
}

/** Parses keystore.json; throws KeystoreError naming what is wrong. */
function parseHeader(text: string, path: string): Header {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new KeystoreError(`${path} is not JSON`);
  }
  const bad = (what: string) => new KeystoreError(`${path}: ${what}`);
  if (!isRecord(j)) throw bad('not a JSON object');
  if (j.version !== 1) throw bad(`unsupported version ${JSON.stringify(j.version)}`);
  if (j.kdf !== 'scrypt') throw bad(`unsupported kdf ${JSON.stringify(j.kdf)}`);
  const kp = j.kdfparams;
  if (!isRecord(kp)) throw bad('kdfparams missing');
  const { N, r, p, salt } = kp;
  if (!isPowerOfTwo(N) || N > MAX_SCRYPT_N) {
    throw bad(`kdfparams.N must be a power of two up to ${MAX_SCRYPT_N}`);
  }
  if (!Number.isSafeInteger(r) || (r as number) < 1 || (r as number) > 32) {
    throw bad('kdfparams.r must be an integer from 1 to 32');
  }
  if (!Number.isSafeInteger(p) || (p as number) < 1 || (p as number) > 16) {
    throw bad('kdfparams.p must be an integer from 1 to 16');
  }
  if (128 * N * (r as number) > MAX_SCRYPT_MEMORY) throw bad('kdfparams ask for too much memory');
  if (typeof salt !== 'string' || salt.length < 32 || !HEX_RE.test(salt)) {
    throw bad('kdfparams.salt must be hex of at least 16 bytes');
  }
  if (!isRecord(j.check)) throw bad('check missing');
  const problem = sealedProblem(j.check);
  if (problem) throw bad(`check ${problem}`);
  return {
    N,
    r: r as number,
    p: p as number,
    salt: Buffer.from(salt, 'hex'),
    check: { nonce: j.check.nonce as string, ciphertext: j.check.ciphertext as string },
  };
}

/** Parses a secret file found as `<kind>_<name>.json`; a problem is returned as a reason. */
function parseSecretFile(text: string, kind: SecretKind, name: string): Entry {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isRecord(j)) return { ok: false, reason: 'not a JSON object' };
  if (j.version !== 1) return { ok: false, reason: `unsupported version ${j.version}` };
  if (j.kind !== kind || j.name !== name) {
    return { ok: false, reason: `file holds ${j.kind} key ${JSON.stringify(j.name)}` };
  }
  if (typeof j.public !== 'string') return { ok: false, reason: 'public must be a string' };
  const problem = sealedProblem(j);
  if (problem) return { ok: false, reason: problem };
  return {
    ok: true,
    file: {
      version: 1,
      kind,
      name,
      public: j.public,
      nonce: j.nonce as string,
      ciphertext: j.ciphertext as string,
    },
  };
}

/** fsync a directory so a rename or unlink in it is durable; not every platform allows it. */
function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort.
  }
}

/** Writes `path` whole or not at all: a private temp file, fsync, rename, fsync the directory. */
function writeAtomic(dir: string, path: string, text: string): void {
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true }); // a leftover of a crash, maybe with other permissions
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/**
 * Opens the keystore in `dir` with `password`, creating the directory (mode 0700) and a new
 * keystore when there is none. Throws KeystoreError for an empty or wrong password, a malformed
 * keystore.json, or key files without a keystore.json.
 */
export async function openKeystore(
  dir: string,
  password: string,
  opts: KeystoreOptions = {},
): Promise<Keystore> {
  if (typeof password !== 'string' || password.length === 0) {
    throw new KeystoreError('keystore password is empty');
  }
  const N = opts.scryptN ?? DEFAULT_SCRYPT_N;
  if (!isPowerOfTwo(N) || N > MAX_SCRYPT_N) {
    throw new KeystoreError(`scryptN must be a power of two up to ${MAX_SCRYPT_N}`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!statSync(dir).isDirectory()) throw new KeystoreError(`${dir} is not a directory`);
  const headerPath = join(dir, HEADER_FILE);
  let headerText: string | null = null;
  try {
    headerText = readFileSync(headerPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let kek: KeyObject;
  if (headerText === null) {
    if (readdirSync(dir).some((f) => f.endsWith('.json'))) {
      throw new KeystoreError(`${dir} holds key files but no ${HEADER_FILE}`);
    }
    const salt = randomBytes(SALT_BYTES);
    kek = await deriveKek(password, { N, r: SCRYPT_R, p: SCRYPT_P, salt });
    const header = {
      version: 1,
      kdf: 'scrypt',
      kdfparams: { N, r: SCRYPT_R, p: SCRYPT_P, salt: salt.toString('hex') },
      check: seal(kek, CHECK_PLAINTEXT, CHECK_AAD),
    };
    // Another opener may have created it while scrypt ran: never write over a keystore.
    if (existsSync(headerPath)) throw new KeystoreError(`${headerPath} appeared while opening`);
    writeAtomic(dir, headerPath, `${JSON.stringify(header, null, 2)}\n`);
  } else {
    const h = parseHeader(headerText, headerPath);
    kek = await deriveKek(password, h);
    const check = unseal(kek, h.check, CHECK_AAD);
    if (!check || !CHECK_PLAINTEXT.equals(check)) {
      throw new KeystoreError(`wrong keystore password for ${dir}`);
    }
  }
  return new FileKeystore(dir, kek);
}

class FileKeystore implements Keystore {
  readonly dir: string;
  readonly #kek: KeyObject;
  readonly #entries = new Map<SecretKind, Map<string, Entry>>(KINDS.map((k) => [k, new Map()]));
  /** Decrypted secrets, by kind and name. */
  readonly #cache = new Map<SecretKind, Map<string, Uint8Array>>(KINDS.map((k) => [k, new Map()]));

  constructor(dir: string, kek: KeyObject) {
    this.dir = dir;
    this.#kek = kek;
    for (const f of readdirSync(dir)) {
      const m = SECRET_FILE_RE.exec(f);
      if (!m || !isValidName(m[2])) continue;
      const kind = m[1] as SecretKind;
      const name = m[2];
      let entry: Entry;
      try {
        entry = parseSecretFile(readFileSync(join(dir, f), 'utf8'), kind, name);
      } catch (err) {
        entry = { ok: false, reason: (err as Error).message };
      }
      this.#entries.get(kind)!.set(name, entry);
    }
  }

  #path(kind: SecretKind, name: string): string {
    return join(this.dir, `${kind}_${name}.json`);
  }

  /** The readable file of a key; throws KeystoreError when it is absent or unreadable. */
  #file(kind: SecretKind, name: string): SecretFile {
    checkKind(kind);
    checkName(name);
    const entry = this.#entries.get(kind)!.get(name);
    if (!entry) throw new KeystoreError(`no ${kind} key named ${name} in ${this.dir}`);
    if (!entry.ok) {
      throw new KeystoreError(`${kind} key ${name} in ${this.dir} is unreadable: ${entry.reason}`);
    }
    return entry.file;
  }

  list(kind: SecretKind): string[] {
    checkKind(kind);
    return [...this.#entries.get(kind)!.keys()].sort();
  }

  has(kind: SecretKind, name: string): boolean {
    return this.#entries.get(kind)?.has(name) ?? false;
  }

  get(kind: SecretKind, name: string): Uint8Array {
    const cached = this.#cache.get(kind)?.get(name);
    if (cached) return cached.slice();
    const file = this.#file(kind, name);
    const plain = unseal(this.#kek, file, aadOf(kind, name));
    if (!plain) {
      throw new KeystoreError(
        `${kind} key ${name} in ${this.dir} does not decrypt (damaged or moved file)`,
      );
    }
    this.#cache.get(kind)!.set(name, plain);
    return plain.slice();
  }

  publicOf(kind: SecretKind, name: string): string {
    return this.#file(kind, name).public;
  }

  async put(kind: SecretKind, name: string, secret: Uint8Array, publicText: string): Promise<void> {
    checkKind(kind);
    checkName(name);
    if (!(secret instanceof Uint8Array) || secret.length === 0) {
      throw new KeystoreError('secret must be non-empty bytes');
    }
    if (typeof publicText !== 'string') throw new KeystoreError('public text must be a string');
    if (kind === 'sign' && !isValidPrivateKey(secret)) {
      throw new KeystoreError('a sign key must be a secp256k1 private key');
    }
    const path = this.#path(kind, name);
    if (this.has(kind, name) || existsSync(path)) {
      throw new KeystoreError(`${kind} key ${name} already exists in ${this.dir}`);
    }
    const file: SecretFile = {
      version: 1,
      kind,
      name,
      public: publicText,
      ...seal(this.#kek, secret, aadOf(kind, name)),
    };
    writeAtomic(this.dir, path, `${JSON.stringify(file, null, 2)}\n`);
    this.#entries.get(kind)!.set(name, { ok: true, file });
    this.#cache.get(kind)!.set(name, secret.slice());
  }

  async remove(kind: SecretKind, name: string): Promise<void> {
    checkKind(kind);
    checkName(name);
    if (!this.has(kind, name)) {
      throw new KeystoreError(`no ${kind} key named ${name} in ${this.dir}`);
    }
    try {
      unlinkSync(this.#path(kind, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    fsyncDir(this.dir);
    this.#entries.get(kind)!.delete(name);
    this.#cache.get(kind)!.delete(name);
  }

  async signKey(name: string): Promise<Uint8Array> {
    if (this.has('sign', name)) {
      const key = this.get('sign', name);
      if (!isValidPrivateKey(key)) {
        throw new KeystoreError(`sign key ${name} in ${this.dir} is not a secp256k1 key`);
      }
      return key;
    }
    const priv = generatePrivateKey();
    await this.put('sign', name, priv, encodePubkey(publicKeyOf(priv)));
    return priv;
  }
}
