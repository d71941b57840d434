/**
 * A small internet of the test's own hosts, each in a network namespace of its own (iproute2),
 * with home routers that masquerade and drop unsolicited inbound packets as NAT boxes do
 * (iptables). Nothing is attached to the root namespace: packets stay between the lab's
 * namespaces, and the test reaches each node's API through a forwarder (ns-forward.ts) whose
 * listening socket lives on the root namespace's loopback.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), `ip`, `iptables` and, for routers that forward
 * ports on request, Debian's miniupnpd-iptables; .ci/run installs them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NodeProcess, startNodeProcess } from './node-process.ts';

const FORWARD = fileURLToPath(new URL('./ns-forward.ts', import.meta.url));
/** Debian's miniupnpd-iptables, for routers that forward ports on request (UPnP, NAT-PMP). */
export const MINIUPNPD = '/usr/sbin/miniupnpd';
const PREFIX = 'rumlab';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why the lab cannot run here, or null when it can. */
export function labUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const [cmd, args] of [
    ['ip', ['-V']],
    ['iptables', ['--version']],
    ['iptables-legacy', ['--version']],
    [MINIUPNPD, ['--version']],
  ] as const) {
    try {
      run(cmd, [...args]);
    } catch {
      return `${cmd} is not installed`;
    }
  }
  const probe = `${PREFIX}probe${process.pid}`;
  try {
    run('ip', ['netns', 'add', probe]);
    run('ip', ['netns', 'exec', probe, 'iptables', '-t', 'nat', '-L', '-n']);
  } catch (err) {
    return `cannot make a network namespace with NAT: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    try {
      run('ip', ['netns', 'del', probe]);
    } catch {
      // it was never made
    }
  }
  return null;
}

/** Removes namespaces left by lab runs whose process is gone (a test killed mid-run). */
function removeStale(): void {
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive || pid === process.pid) deleteNamespace(name);
  }
}

/** Kills what still runs in a namespace (`ip netns del` leaves it running), then deletes it. */
function deleteNamespace(ns: string): void {
  try {
    for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    run('ip', ['netns', 'del', ns]);
  } catch {
    // already gone
  }
}

export interface LabHost {
  /** Namespace name. */
  ns: string;
  /** The host's own address. */
  ip: string;
  /** The address the internet sees it from: its own, or its router's behind a NAT. */
  publicIp: string;
}

export class NetLab {
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly nodes: NodeProcess[] = [];
  private readonly wan: string;
  private lans = 0;
  private ports = 0;

  private constructor() {
    this.wan = this.addNamespace('wan');
    this.ipIn(this.wan, 'link', 'add', 'br0', 'type', 'bridge');
    this.ipIn(this.wan, 'link', 'set', 'br0', 'up');
  }

  /** A lab with an empty internet: a bridge that public hosts and routers plug into. */
  static create(): NetLab {
    removeStale();
    return new NetLab();
  }

  private addNamespace(name: string): string {
    const ns = `${PREFIX}${process.pid}-${name}`;
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.ipIn(ns, 'link', 'set', 'lo', 'up');
    return ns;
  }

  private ipIn(ns: string, ...args: string[]): void {
    run('ip', ['-n', ns, ...args]);
  }

  private execIn(ns: string, cmd: string, ...args: string[]): void {
    run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Plugs `dev` of namespace `ns` into the internet's bridge with the address `cidr`. */
  private plugIntoWan(ns: string, dev: string, cidr: string): void {
    const port = `p${this.ports++}`;
    this.ipIn(this.wan, 'link', 'add', port, 'type', 'veth', 'peer', 'name', dev, 'netns', ns);
    this.ipIn(this.wan, 'link', 'set', port, 'master', 'br0', 'up');
    this.ipIn(ns, 'addr', 'add', cidr, 'dev', dev);
    this.ipIn(ns, 'link', 'set', dev, 'up');
  }

  /** A host with a public address on the internet's /24. */
  addPublicHost(name: string, ip: string): LabHost {
    const ns = this.addNamespace(name);
    this.plugIntoWan(ns, 'eth0', `${ip}/24`);
    return { ns, ip, publicIp: ip };
  }

  /**
   * A host on a home network of its own, behind a router whose WAN address is `routerIp`. The
   * router masquerades what goes out and drops every unsolicited packet that comes in, as a home
   * router does: no port is forwarded, so nothing on the internet can dial the host. With `upnp`
   * the router also runs miniupnpd (UPnP IGD and NAT-PMP) for its home network, so a host can
   * ask it to forward a port.
   */
  addHostBehindNat(name: string, routerIp: string, opts: { upnp?: boolean } = {}): LabHost {
    const lan = ++this.lans;
    const gw = this.addNamespace(`${name}-gw`);
    this.plugIntoWan(gw, 'wan0', `${routerIp}/24`);
    const ns = this.addNamespace(name);
    this.ipIn(gw, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    this.ipIn(gw, 'addr', 'add', `10.0.${lan}.1/24`, 'dev', 'lan0');
    this.ipIn(gw, 'link', 'set', 'lan0', 'up');
    const ip = `10.0.${lan}.2`;
    this.ipIn(ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    this.ipIn(ns, 'link', 'set', 'eth0', 'up');
    this.ipIn(ns, 'route', 'add', 'default', 'via', `10.0.${lan}.1`);
    this.execIn(gw, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    // Debian's miniupnpd-iptables writes its rules through libiptc, the legacy backend: a router
    // that runs it keeps all its rules there, so that they form one ruleset.
    const iptables = opts.upnp ? 'iptables-legacy' : 'iptables';
    const ipt = (...args: string[]) => this.execIn(gw, iptables, ...args);
    if (opts.upnp) {
      // The chains miniupnpd fills with its forwarding rules, hooked in before the drops.
      ipt('-t', 'nat', '-N', 'MINIUPNPD');
      ipt('-t', 'nat', '-A', 'PREROUTING', '-i', 'wan0', '-j', 'MINIUPNPD');
      ipt('-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING');
      ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MINIUPNPD-POSTROUTING');
      ipt('-t', 'mangle', '-N', 'MINIUPNPD');
      ipt('-t', 'mangle', '-A', 'PREROUTING', '-i', 'wan0', '-j', 'MINIUPNPD');
      ipt('-N', 'MINIUPNPD');
      ipt('-A', 'FORWARD', '-i', 'wan0', '!', '-o', 'wan0', '-j', 'MINIUPNPD');
    }
    ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MASQUERADE');
    for (const chain of ['FORWARD', 'INPUT']) {
      ipt(
        '-A',
        chain,
        '-i',
        'wan0',
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'ACCEPT',
      );
      ipt('-A', chain, '-i', 'wan0', '-j', 'DROP');
    }
    if (opts.upnp) this.startMiniupnpd(gw, lan);
    return { ns, ip, publicIp: routerIp };
  }

  private startMiniupnpd(gw: string, lan: number): void {
    const dir = mkdtempSync(join(tmpdir(), 'rum-upnp-'));
    const conf = join(dir, 'miniupnpd.conf');
    writeFileSync(
      conf,
      [
        'ext_ifname=wan0',
        'listening_ip=lan0',
        'enable_upnp=yes',
        'enable_natpmp=yes',
        'secure_mode=yes',
        'system_uptime=yes',
        `uuid=00000000-0000-4000-8000-00000000000${lan}`,
        `allow 1024-65535 10.0.${lan}.0/24 1024-65535`,
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    const child = spawn(
      'ip',
      ['netns', 'exec', gw, MINIUPNPD, '-d', '-f', conf, '-P', join(dir, 'miniupnpd.pid')],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr!.on('data', (d) => {
      log = (log + d).slice(-4000);
    });
    child.once('exit', (code) => {
      if (code !== null && code !== 0)
        process.stderr.write(`miniupnpd in ${gw} exited ${code}:\n${log}\n`);
    });
    this.children.push(child);
  }

  /**
   * Starts `rum fullnode` (or bootstrapnode) in the host's namespace. The returned url reaches its
   * API from the test's namespace.
   */
  async startNode(
    host: LabHost,
    opts: Parameters<typeof startNodeProcess>[0] = {},
  ): Promise<NodeProcess> {
    const proc = await startNodeProcess({
      ...opts,
      wrap: ['ip', 'netns', 'exec', host.ns],
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
    this.nodes.push(proc);
    const port = Number(new URL(proc.url).port);
    return { ...proc, url: await this.forward(host, port) };
  }

  /** A loopback URL in the test's namespace that leads to 127.0.0.1:<port> in the host's. */
  private async forward(host: LabHost, port: number): Promise<string> {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const local = (server.address() as net.AddressInfo).port;
    const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, FORWARD, String(port)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.children.push(child);
    child.send('listen', server);
    const [msg] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(() => {
        throw new Error(`the forwarder in ${host.ns} exited`);
      }),
    ])) as [unknown];
    if (msg !== 'ready') throw new Error(`the forwarder in ${host.ns} said ${String(msg)}`);
    // The forwarder accepts on its copy of the socket; this process keeps none.
    server.close();
    return `http://127.0.0.1:${local}`;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    for (const c of this.children) if (c.exitCode === null) c.kill();
    await Promise.all(
      this.children.map((c) =>
        c.exitCode === null && c.signalCode === null ? once(c, 'exit') : null,
      ),
    );
    for (const ns of this.namespaces.reverse()) deleteNamespace(ns);
  }
}
