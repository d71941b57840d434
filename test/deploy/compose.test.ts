// docker-compose.yml and the Dockerfile must match the real CLI: every command a service runs
// exists and its flags parse into a valid config; data lives in the mounted volumes.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { FULLNODE_FLAGS, loadConfig } from '../../src/config/load.ts';

const root = new URL('../../', import.meta.url);
const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8'), { merge: true });
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
const COMMANDS = ['fullnode', 'bootstrapnode', 'worker'];

/** Compose's ${VAR:-default} and ${VAR:?message} interpolation, with VAR unset. */
function interpolate(text: string): string {
  return text.replace(/\$\{[A-Z0-9_]+(?::-([^}]*)|:\?[^}]*)?\}/g, (_m, def) => def ?? 'x');
}

function checkCommand(where: string, args: string[]) {
  const [command, ...flags] = args.map(interpolate);
  assert.ok(COMMANDS.includes(command!), `${where}: unknown command ${command}`);
  const res = loadConfig(flags, {}, FULLNODE_FLAGS);
  assert.equal(res.help, false);
  return res.help ? null : res.config;
}

describe('deployment files', () => {
  it('every rum service runs a real command with flags that parse', () => {
    const services = compose.services as Record<string, Record<string, unknown>>;
    const rum = Object.entries(services).filter(([, s]) => s.image === 'rum-node:latest');
    assert.deepEqual(rum.map(([n]) => n).sort(), ['bootstrap', 'node1', 'node2', 'worker']);
    for (const [name, svc] of rum.filter(([n]) => n !== 'worker')) {
      const config = checkCommand(name, svc.command as string[])!;
      const volumes = (svc.volumes as string[]).map((v) => v.split(':')[1]);
      for (const dir of [config.dataDir, config.configDir, config.keystoreDir]) {
        assert.ok(
          volumes.some((v) => dir.startsWith(v!)),
          `${name}: ${dir} is inside a volume`,
        );
      }
      assert.ok(config.listen.length > 0, `${name} listens for peers`);
      const env = svc.environment as Record<string, string>;
      assert.ok(env.RUM_KSPASSWD, `${name} gets the keystore password from the environment`);
    }
    for (const name of ['node1', 'node2']) {
      const cfg = checkCommand(name, services[name]!.command as string[])!;
      assert.equal(cfg.peers.length, 1, `${name} dials the bootstrap node`);
      assert.match(cfg.peers[0]!, /^\/dns4\/bootstrap\/tcp\/7000\/p2p\//);
    }
    const redisCmd = (services.redis!.command as string[]).join(' ');
    assert.match(redisCmd, /--appendonly yes/, 'Redis keeps the queue in its append-only file');
    for (const name of ['node1', 'node2']) {
      const cfg = checkCommand(name, services[name]!.command as string[])!;
      assert.equal(cfg.gatewayHost, '0.0.0.0', `${name}'s gateway listens outside its container`);
      const ports = services[name]!.ports as string[];
      assert.ok(
        ports.some((p) => p.endsWith(`:${cfg.gatewayPort}`) && !p.startsWith('127.0.0.1:')),
        `${name} publishes its gateway port`,
      );
      assert.match(cfg.origin ?? '', /^https?:\/\//, `${name} has a public origin`);
      const env = services[name]!.environment as Record<string, string>;
      assert.equal(env.REDIS_URL, 'redis://redis:6379', `${name} queues deliveries on Redis`);
    }
    const worker = checkCommand('worker', services.worker!.command as string[])!;
    assert.equal(worker.redisUrl, 'redis://redis:6379', 'the worker runs the shared queue');
    for (const v of ['bootstrap-data', 'node1-data', 'node2-data', 'worker-data', 'redis-data'])
      assert.ok(v in compose.volumes, v);
  });

  it('the image runs bin/rum.js with a default command that parses', () => {
    const entry = /ENTRYPOINT \[(.*)\]/.exec(dockerfile)![1]!;
    assert.match(entry, /"\/app\/bin\/rum.js"/);
    const cmd = JSON.parse(`[${/CMD \[(.*)\]/.exec(dockerfile)![1]}]`) as string[];
    checkCommand('Dockerfile CMD', cmd);
    for (const m of dockerfile.matchAll(/^COPY (\S+)/gm)) {
      for (const path of m[1]!.split(' '))
        assert.ok(existsSync(new URL(path, root)), `COPY ${path} exists`);
    }
  });
});
