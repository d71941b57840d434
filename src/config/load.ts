/** Flags + RUM_* environment + optional JSON config file → one validated Config. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { type Config, ConfigSchema } from './schema.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** quorum's fullnode flags (and a few of this node's own) mapped onto Config keys. */
export const FULLNODE_FLAGS = {
  peername: { type: 'string', key: 'peerName', help: 'name of this peer (default "peer")' },
  configdir: { type: 'string', key: 'configDir', help: 'config directory (default ./config)' },
  datadir: { type: 'string', key: 'dataDir', help: 'data directory (default ./data)' },
  keystoredir: {
    type: 'string',
    key: 'keystoreDir',
    help: 'keystore directory (default ./keystore)',
  },
  keystorepwd: {
    type: 'string',
    key: 'keystorePassword',
    help: 'keystore password (or env RUM_KSPASSWD)',
  },
  apihost: { type: 'string', key: 'apiHost', help: 'API bind address (default 127.0.0.1)' },
  apiport: { type: 'string', key: 'apiPort', help: 'API port (default 8000; 0 = any free port)' },
  gatewayhost: {
    type: 'string',
    key: 'gatewayHost',
    help: 'gateway (bridges) bind address (default 127.0.0.1)',
  },
  gatewayport: {
    type: 'string',
    key: 'gatewayPort',
    help: 'gateway port (default 8080; 0 = any free port)',
  },
  origin: {
    type: 'string',
    key: 'origin',
    help: 'public base URL of the gateway (default http://<gatewayhost>:<gatewayport>)',
  },
  gatewaytrustproxy: {
    type: 'string',
    key: 'gatewayTrustProxy',
    help: 'true|false: a reverse proxy on this host fronts the gateway (default false)',
  },
  allowprivateaddress: {
    type: 'string',
    key: 'allowPrivateAddress',
    help: 'true|false: let bridges reach private and loopback addresses (default false)',
  },
  redisurl: {
    type: 'string',
    key: 'redisUrl',
    help: 'redis:// URL for the delivery queue (or env REDIS_URL; default: embedded queue)',
  },
  rundeliveries: {
    type: 'string',
    key: 'runDeliveries',
    help: 'true|false: with --redisurl, run deliveries here too, not only in rum worker (default true)',
  },
  queuename: {
    type: 'string',
    key: 'queueName',
    help: 'BullMQ queue name shared by a node and its workers (default rum-deliveries)',
  },
  listen: {
    type: 'string',
    multiple: true,
    key: 'listen',
    help: 'libp2p listen multiaddr (repeatable)',
  },
  peer: {
    type: 'string',
    multiple: true,
    key: 'peers',
    help: 'bootstrap peer multiaddr (repeatable)',
  },
  enablenat: {
    type: 'string',
    key: 'enableNat',
    help: 'true|false: ask the router (UPnP) to forward the listen port (default true)',
  },
  autorelay: {
    type: 'string',
    key: 'autoRelay',
    help: 'true|false: keep a relay reservation for when behind a NAT (default true)',
  },
  loglevel: {
    type: 'string',
    key: 'logLevel',
    help: 'fatal|error|warn|info|debug|trace|silent (default info)',
  },
  logfile: { type: 'string', key: 'logFile', help: 'log to this file instead of stdout' },
  dbsync: {
    type: 'string',
    key: 'dbSync',
    help: 'full|normal: fsync each commit (survives power loss) or not (default full)',
  },
  config: { type: 'string', key: null, help: 'JSON config file with any Config keys' },
  help: { type: 'boolean', key: null, help: 'show this help' },
} as const;

type FlagSpec = {
  type: 'string' | 'boolean';
  multiple?: boolean;
  key: keyof Config | null;
  help: string;
};

const ENV: Record<string, keyof Config> = {
  RUM_KSPASSWD: 'keystorePassword',
  RUM_PEERNAME: 'peerName',
  RUM_CONFIGDIR: 'configDir',
  RUM_DATADIR: 'dataDir',
  RUM_KEYSTOREDIR: 'keystoreDir',
  RUM_APIHOST: 'apiHost',
  RUM_APIPORT: 'apiPort',
  RUM_LOGLEVEL: 'logLevel',
  RUM_DBSYNC: 'dbSync',
  RUM_GATEWAYHOST: 'gatewayHost',
  RUM_GATEWAYPORT: 'gatewayPort',
  RUM_ORIGIN: 'origin',
  RUM_GATEWAYTRUSTPROXY: 'gatewayTrustProxy',
  RUM_ALLOWPRIVATEADDRESS: 'allowPrivateAddress',
  // The common REDIS_URL, overridden by RUM_REDISURL when both are set.
  REDIS_URL: 'redisUrl',
  RUM_REDISURL: 'redisUrl',
  RUM_QUEUENAME: 'queueName',
  RUM_RUNDELIVERIES: 'runDeliveries',
};

const PORT_KEYS = new Set<keyof Config>(['apiPort', 'gatewayPort']);
const BOOL_KEYS = new Set<keyof Config>([
  'autoRelay',
  'enableNat',
  'allowPrivateAddress',
  'gatewayTrustProxy',
  'runDeliveries',
]);

export function flagsHelp(flags: Record<string, FlagSpec>): string {
  return Object.entries(flags)
    .map(([name, f]) => `  --${name}${f.type === 'string' ? ' <value>' : ''}`.padEnd(30) + f.help)
    .join('\n');
}

function splitList(values: string[]): string[] {
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function parsePort(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`--${flag}: "${value}" is not a port number`);
  return Number(value);
}

function parseBool(flag: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new ConfigError(`--${flag}: "${value}" is not true or false`);
}

function describeIssues(err: z.ZodError, sourceOf: (path: string) => string): string {
  return err.issues
    .map((i) => {
      const path = i.path.join('.');
      return `${sourceOf(path)}: ${i.message}`;
    })
    .join('; ');
}

/**
 * Reads the flags of a command. Returns the config, or { help: true } when --help was given.
 * Throws ConfigError naming the flag, variable or file key that is wrong.
 */
export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv,
  flags: Record<string, FlagSpec> = FULLNODE_FLAGS,
): { help: true } | { help: false; config: Config } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(flags).map(([n, f]) => [n, { type: f.type, multiple: f.multiple ?? false }]),
      ),
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/\. To specify.*$/s, ''));
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return { help: true };

  const source = new Map<string, string>();
  let input: Record<string, unknown> = {};
  if (typeof values.config === 'string') {
    try {
      input = JSON.parse(readFileSync(values.config, 'utf8'));
    } catch (err) {
      throw new ConfigError(`--config ${values.config}: ${(err as Error).message}`);
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new ConfigError(`--config ${values.config}: must hold a JSON object`);
    }
    for (const k of Object.keys(input)) source.set(k, `config file key "${k}"`);
  }
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    input[key] = PORT_KEYS.has(key)
      ? parsePort(name, v)
      : BOOL_KEYS.has(key)
        ? parseBool(name, v)
        : v;
    source.set(key, `environment variable ${name}`);
  }
  for (const [name, f] of Object.entries(flags)) {
    const v = values[name];
    if (v === undefined || f.key === null) continue;
    let value: unknown = v;
    if (f.multiple) value = splitList(v as string[]);
    if (PORT_KEYS.has(f.key)) value = parsePort(name, v as string);
    if (BOOL_KEYS.has(f.key)) value = parseBool(name, v as string);
    input[f.key] = value;
    source.set(f.key, `--${name}`);
  }
  const result = ConfigSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      describeIssues(result.error, (path) => {
        const top = path.split('.')[0] ?? path;
        return source.get(top) ?? (path || 'config');
      }),
    );
  }
  return { help: false, config: result.data };
}
