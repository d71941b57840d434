/**
 * The keystore password: --keystorepwd, RUM_KSPASSWD, or a password file in the config
 * directory. When none is given on first start, a random password is generated into that file
 * (mode 0600) so `npm start` needs no flag; the log says so, since the keystore is then only as
 * safe as that file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';

export interface PasswordSource {
  password: string;
  source: 'flag-or-env' | 'file' | 'generated';
  file?: string;
}

export function resolveKeystorePassword(config: Config): PasswordSource {
  if (config.keystorePassword) return { password: config.keystorePassword, source: 'flag-or-env' };
  const file = join(config.configDir, `${config.peerName}_keystore_password`);
  if (existsSync(file)) {
    const password = readFileSync(file, 'utf8').trim();
    if (password.length === 0) throw new Error(`${file} is empty`);
    return { password, source: 'file', file };
  }
  if (existsSync(join(config.keystoreDir, 'keystore.json'))) {
    throw new Error(
      `the keystore in ${config.keystoreDir} exists but no password was given: use --keystorepwd or RUM_KSPASSWD`,
    );
  }
  mkdirSync(config.configDir, { recursive: true, mode: 0o700 });
  const password = randomBytes(24).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return { password, source: 'generated', file };
}
