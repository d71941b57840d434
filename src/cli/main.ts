/** The `rum` command line. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, FULLNODE_FLAGS, flagsHelp, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { NODE_VERSION } from '../version.ts';
import { resolveKeystorePassword } from './password.ts';

// Heavy modules (fastify, drizzle, crypto backends) load only for the commands that use them,
// so help and flag errors answer at once.
const loadNode = () => import('../node.ts');
const loadPino = async () => (await import('pino')).default;

const COMMANDS: Record<string, string> = {
  fullnode: 'run a full node: groups, chain, HTTP API',
  bootstrapnode: 'run a bootstrap node: DHT server and relay, no group data',
  reindex: 'rebuild the content index and config state by replaying every stored chain',
  token: 'issue an API token: rum token --role chain|node [--group ID] [--name N] [--days D]',
  bridge: 'expose groups to bridges: rum bridge expose|list|remove (see rum bridge --help)',
  bot: 'bots of the bot gateway: rum bot create|list|revoke|webhook|… (see rum bot --help)',
  worker: 'run delivery workers only, on the Redis of --redisurl (BullMQ)',
  version: 'print the version',
  help: 'show this help',
};

function usage(): string {
  const cmds = Object.entries(COMMANDS)
    .map(([c, h]) => `  ${c.padEnd(12)}${h}`)
    .join('\n');
  return `usage: rum <command> [flags]\n\ncommands:\n${cmds}\n\nflags of fullnode and reindex:\n${flagsHelp(FULLNODE_FLAGS)}\n`;
}

async function makeLogger(config: Config): Promise<Logger> {
  const pino = await loadPino();
  if (config.logFile) {
    mkdirSync(dirname(config.logFile), { recursive: true });
    return pino(
      { level: config.logLevel },
      pino.destination({ dest: config.logFile, sync: false }),
    );
  }
  return pino({ level: config.logLevel });
}

const TOKEN_FLAGS = {
  ...FULLNODE_FLAGS,
  role: { type: 'string', key: null, help: 'chain (all calls) or node (one group)' },
  group: { type: 'string', key: null, help: 'group id of a node token' },
  name: { type: 'string', key: null, help: 'remark stored with the token' },
  days: { type: 'string', key: null, help: 'validity in days (default 365)' },
} as const;

function readConfig(
  args: string[],
  flags: Parameters<typeof loadConfig>[2] = FULLNODE_FLAGS,
): Config | null {
  const res = loadConfig(args, process.env, flags);
  if (res.help) {
    process.stdout.write(usage());
    return null;
  }
  return res.config;
}

function flagValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

/**
 * Catches SIGINT/SIGTERM from the moment a long-running command begins, so a signal that arrives
 * while the node is still starting stops it cleanly once started instead of killing it midway.
 */
function catchStopSignals(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

async function stopOnSignal(signalled: Promise<string>, log: Logger, stop: () => Promise<void>) {
  const signal = await signalled;
  log.info({ signal }, 'stopping');
  try {
    await stop();
  } catch (err) {
    log.error({ err }, 'stop failed');
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage());
      return command === undefined ? 2 : 0;
    case 'version':
    case '--version':
      process.stdout.write(`rum ${NODE_VERSION}\n`);
      return 0;
    case 'fullnode': {
      const config = readConfig(args);
      if (!config) return 0;
      const signalled = catchStopSignals();
      // The keystore's scrypt runs on the thread pool while the node's modules load.
      const { openKeystore } = await import('../crypto/keystore.ts');
      const pw = resolveKeystorePassword(config);
      const keystore = openKeystore(config.keystoreDir, pw.password);
      keystore.catch(() => {}); // awaited (and reported) by startFullnode
      const log = await makeLogger(config);
      if (pw.source === 'generated') {
        log.warn(
          { file: pw.file },
          'no keystore password given: generated one and saved it in this file',
        );
      }
      const { startFullnode } = await import('./fullnode.ts');
      const { activityPubBridge } = await import('../../bridges/activitypub/index.ts');
      const { nostrBridge } = await import('../../bridges/nostr/index.ts');
      const { botBridge } = await import('../../bridges/bots/index.ts');
      const running = await startFullnode(config, log, keystore, [
        activityPubBridge(),
        nostrBridge({ config }),
        botBridge({ config }),
      ]);
      log.info({ url: running.url, peerId: running.node.peerId }, 'API ready');
      process.stdout.write(
        `rum: API listening on ${running.url}\nrum: gateway listening on ${running.gateway.url}\n`,
      );
      await stopOnSignal(signalled, log, running.stop);
      return 0;
    }
    case 'bootstrapnode': {
      const config = readConfig(args);
      if (!config) return 0;
      const signalled = catchStopSignals();
      const log = await makeLogger(config);
      const { startBootstrapNode } = await import('./bootstrapnode.ts');
      const running = await startBootstrapNode(config, log);
      const addrs = running.p2p.getMultiaddrs().map(String).join(' ');
      process.stdout.write(
        `rum: bootstrap node ${running.p2p.peerId} listening on ${addrs}\nrum: API listening on ${running.url}\n`,
      );
      await stopOnSignal(signalled, log, running.stop);
      return 0;
    }
    case 'reindex': {
      const config = readConfig(args);
      if (!config) return 0;
      const log = await makeLogger(config);
      const { RumNode } = await loadNode();
      const node = await RumNode.open({
        config,
        logger: log,
        keystorePassword: resolveKeystorePassword(config).password,
      });
      const res = await node.reindex();
      await node.stop();
      process.stdout.write(
        `reindexed ${res.groups} groups, ${res.blocks} blocks, ${res.trxs} trxs\n`,
      );
      return 0;
    }
    case 'bridge': {
      const { runBridgeCommand } = await import('./bridge.ts');
      return runBridgeCommand(args, { stdout: (s) => process.stdout.write(s) });
    }
    case 'bot': {
      const { runBotCommand } = await import('./bot.ts');
      return runBotCommand(args, { stdout: (s) => process.stdout.write(s) });
    }
    case 'worker': {
      const config = readConfig(args);
      if (!config) return 0;
      if (!config.redisUrl) {
        throw new ConfigError(
          'rum worker needs --redisurl (or REDIS_URL): it runs BullMQ deliveries',
        );
      }
      const signalled = catchStopSignals();
      const log = await makeLogger(config);
      const { runWorker } = await import('./worker.ts');
      const stop = new AbortController();
      signalled.then((signal) => {
        log.info({ signal }, 'stopping');
        stop.abort();
      });
      await runWorker(config, log, stop.signal);
      return 0;
    }
    case 'token': {
      const config = readConfig(args, TOKEN_FLAGS);
      if (!config) return 0;
      const role = flagValue(args, 'role');
      if (role !== 'chain' && role !== 'node')
        throw new ConfigError('--role must be chain or node');
      const group = flagValue(args, 'group') ?? '';
      if (role === 'node' && !group) throw new ConfigError('--group is required for a node token');
      const days = Number(flagValue(args, 'days') ?? '365');
      if (!Number.isFinite(days) || days <= 0 || days > 3650)
        throw new ConfigError('--days must be 1..3650');
      const log = (await loadPino())({ level: 'warn' });
      const { RumNode } = await loadNode();
      const { TokenService } = await import('../api/tokens.ts');
      const node = await RumNode.open({
        config,
        logger: log,
        keystorePassword: resolveKeystorePassword(config).password,
      });
      const tokens = await TokenService.open(node.store, node.keystore);
      const token = tokens.create({
        name: flagValue(args, 'name') ?? `${role}-token`,
        role,
        allowGroup: group,
        exp: Math.floor(Date.now() / 1000 + days * 86400),
      });
      await node.stop();
      process.stdout.write(`${token}\n`);
      return 0;
    }
    default:
      process.stderr.write(`rum: unknown command "${command}"\n\n${usage()}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError || (err as Error).name === 'P2PConfigError') {
      process.stderr.write(`rum: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`rum: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
