// The SSRF guard: which addresses a bridge may never fetch from or deliver to, judged without
// connecting to any of them; URLs on loopback (literal, bracketed IPv6, a name resolving to it)
// refused without allowPrivate and accepted with it; and a loopback server that sees no request
// when guardedFetch or a guarded node:http request is refused, even when the name resolved to a
// public address at check time (DNS rebinding). No test sends traffic anywhere but loopback.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlockList } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  AddressGuard,
  BlockedAddressError,
  classifyAddress,
  guardedDispatcher,
  guardedFetch,
  guardedLookup,
  isPrivateAddress,
} from '../../src/gateway/address-guard.ts';

/** [address, the kind it must be classified as (a prefix of classifyAddress's answer)]. */
const BLOCKED: [string, string][] = [
  // IPv4, each range's first and last address (and a few well-known ones inside)
  ['0.0.0.0', 'unspecified'],
  ['0.255.255.255', 'unspecified'],
  ['10.0.0.0', 'private'],
  ['10.255.255.255', 'private'],
  ['100.64.0.0', 'carrier-grade NAT'],
  ['100.127.255.255', 'carrier-grade NAT'],
  ['127.0.0.0', 'loopback'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.255', 'loopback'],
  ['169.254.0.0', 'link-local'],
  ['169.254.169.254', 'link-local'],
  ['169.254.255.255', 'link-local'],
  ['172.16.0.0', 'private'],
  ['172.31.255.255', 'private'],
  ['192.0.0.0', 'IETF protocol assignment'],
  ['192.0.0.255', 'IETF protocol assignment'],
  ['192.0.2.0', 'documentation'],
  ['192.0.2.255', 'documentation'],
  ['192.88.99.0', '6to4 relay anycast'],
  ['192.88.99.255', '6to4 relay anycast'],
  ['192.168.0.0', 'private'],
  ['192.168.1.1', 'private'],
  ['192.168.255.255', 'private'],
  ['198.18.0.0', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['198.51.100.0', 'documentation'],
  ['198.51.100.255', 'documentation'],
  ['203.0.113.0', 'documentation'],
  ['203.0.113.255', 'documentation'],
  ['224.0.0.0', 'multicast'],
  ['239.255.255.255', 'multicast'],
  ['240.0.0.0', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  // IPv6
  ['::', 'unspecified'],
  ['0:0:0:0:0:0:0:0', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['fe80::', 'link-local'],
  ['fe80::1', 'link-local'],
  ['FE80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'link-local'],
  ['fec0::1', 'site-local'],
  ['fc00::', 'unique-local'],
  ['fd12:3456:789a::1', 'unique-local'],
  ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'unique-local'],
  ['ff00::', 'multicast'],
  ['ff02::1', 'multicast'],
  ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'multicast'],
  ['2001:db8::', 'documentation'],
  ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 'documentation'],
  ['3fff::', 'documentation'],
  ['3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', 'documentation'],
  ['2001::1', 'IETF protocol assignment'], // Teredo
  ['2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', 'IETF protocol assignment'],
  ['100::', 'discard-only'],
  ['100::ffff:ffff:ffff:ffff', 'discard-only'],
  ['64:ff9b:1::1', 'NAT64 local-use'],
  ['5f00::1', 'SRv6 SID'],
  ['1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'reserved'],
  ['4000::', 'reserved'],
  ['100:0:0:1::', 'reserved'],
  ['fe00::', 'reserved'],
  ['fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'reserved'],
  // IPv6 forms embedding an IPv4 address, judged by it
  ['::ffff:127.0.0.1', 'loopback (IPv4-mapped 127.0.0.1)'],
  ['::FFFF:127.0.0.1', 'loopback (IPv4-mapped 127.0.0.1)'],
  ['::ffff:7f00:1', 'loopback (IPv4-mapped 127.0.0.1)'],
  ['0:0:0:0:0:ffff:7f00:1', 'loopback (IPv4-mapped 127.0.0.1)'],
  ['::ffff:10.1.2.3', 'private (IPv4-mapped 10.1.2.3)'],
  ['::ffff:169.254.169.254', 'link-local (IPv4-mapped 169.254.169.254)'],
  ['::ffff:0.0.0.0', 'unspecified'],
  ['::ffff:0:127.0.0.1', 'loopback (IPv4-translated 127.0.0.1)'],
  ['::127.0.0.1', 'loopback (IPv4-compatible 127.0.0.1)'],
  ['::2', 'unspecified ("this network") (IPv4-compatible 0.0.0.2)'],
  ['::192.168.0.1', 'private (IPv4-compatible 192.168.0.1)'],
  ['64:ff9b::127.0.0.1', 'loopback (NAT64 127.0.0.1)'],
  ['64:ff9b::a00:1', 'private (NAT64 10.0.0.1)'],
  ['64:ff9b::ffff:ffff', 'broadcast (NAT64 255.255.255.255)'],
  ['2002:7f00:1::', 'loopback (6to4 127.0.0.1)'],
  ['2002:7f00:0001:ffff:ffff:ffff:ffff:ffff', 'loopback (6to4 127.0.0.1)'],
  ['2002:c0a8:101::1', 'private (6to4 192.168.1.1)'],
  ['2002:a9fe:a9fe::', 'link-local (6to4 169.254.169.254)'],
];

/** Public unicast addresses, many of them the neighbours just outside a blocked range. */
const PUBLIC: string[] = [
  '1.0.0.0',
  '1.1.1.1',
  '8.8.8.8',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '191.255.255.255',
  '192.0.1.0',
  '192.0.3.0',
  '192.88.98.255',
  '192.88.100.0',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '198.51.99.255',
  '198.51.101.0',
  '203.0.112.255',
  '203.0.114.0',
  '223.255.255.255',
  '2000::',
  '2001:200::',
  '2001:4860:4860::8888',
  '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff',
  '2001:db9::',
  '2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  '2003::1',
  '2606:4700:4700::1111',
  '2a00:1450:4001::1',
  '3ffe:ffff::1',
  '3fff:1000::',
  '3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  '::ffff:8.8.8.8',
  '::ffff:808:808',
  '::ffff:100.128.0.0',
  '::ffff:0:8.8.8.8',
  '::8.8.8.8',
  '::1.0.0.0',
  '64:ff9b::8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '2002:0b00:0000::',
];

const NOT_IP = ['localhost', 'example.com', '', '[::1]', '127.1', '01.2.3.4', '1.2.3.256', ':::1'];

describe('isPrivateAddress', () => {
  it('refuses every address of the blocked ranges, naming the kind', () => {
    for (const [ip, kind] of BLOCKED) {
      assert.equal(isPrivateAddress(ip), true, ip);
      const got = classifyAddress(ip);
      assert.ok(got?.startsWith(kind), `${ip}: expected ${kind}, got ${got}`);
    }
  });

  it('accepts public unicast addresses, including the neighbours just outside each range', () => {
    for (const ip of PUBLIC) {
      assert.equal(classifyAddress(ip), null, ip);
      assert.equal(isPrivateAddress(ip), false, ip);
    }
  });

  it('throws on what is not an IP address', () => {
    for (const s of NOT_IP) assert.throws(() => isPrivateAddress(s), TypeError, s);
  });

  it("agrees with node:net's BlockList around every range's edges and on random addresses", () => {
    // The same ranges, matched by Node's own code: checks the parsing and prefix matching.
    const v4 = [
      '0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24',
      '192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24',
      '224.0.0.0/4 240.0.0.0/4',
    ]
      .join(' ')
      .split(' ');
    // Inside 2000::/3 (all else in IPv6 is refused whole), leaving 6to4 out: it embeds IPv4.
    const v6 = ['2001::/23', '2001:db8::/32', '3fff::/20'];
    const list = new BlockList();
    for (const c of v4) list.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), 'ipv4');
    for (const c of v6) list.addSubnet(c.split('/')[0]!, Number(c.split('/')[1]), 'ipv6');

    const n2v4 = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
    const v4n = (ip: string) => ip.split('.').reduce((a, o) => (a << 8n) | BigInt(o), 0n);
    const n2v6 = (n: bigint) =>
      Array.from({ length: 8 }, (_, i) =>
        ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
      ).join(':');
    const v6n = (ip: string) => {
      const [h, t = ''] = ip.split('::') as [string, string?];
      const head = h ? h.split(':') : [];
      const tail = t ? t.split(':') : [];
      const words = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
      return words.reduce((a: bigint, w: string) => (a << 16n) | BigInt(`0x${w}`), 0n);
    };
    const rand = (bits: number) => {
      let n = 0n;
      for (let i = 0; i < bits; i += 16) n = (n << 16n) | BigInt(Math.floor(Math.random() * 65536));
      return n & ((1n << BigInt(bits)) - 1n);
    };

    let compared = 0;
    const same4 = (n: bigint) => {
      if (n < 0n || n >= 1n << 32n) return;
      const ip = n2v4(n);
      assert.equal(isPrivateAddress(ip), list.check(ip, 'ipv4'), ip);
      compared++;
    };
    const in2000 = (n: bigint) => n >> 125n === 1n && n >> 112n !== 0x2002n;
    const same6 = (n: bigint) => {
      if (!in2000(n)) return;
      const ip = n2v6(n);
      assert.equal(isPrivateAddress(ip), list.check(ip, 'ipv6'), ip);
      compared++;
    };
    const edges = (cidr: string, bits: number, toN: (ip: string) => bigint, same: typeof same4) => {
      const [ip, len] = cidr.split('/') as [string, string];
      const size = 1n << BigInt(bits - Number(len));
      const first = toN(ip);
      const last = first + size - 1n;
      for (const n of [first - 1n, first, first + 1n, last - 1n, last, last + 1n]) same(n);
      for (let i = 0; i < 50; i++) {
        same(first + (rand(bits) % size)); // inside
        same(first - size + (rand(bits) % (3n * size))); // around
      }
    };
    for (const c of v4) edges(c, 32, v4n, same4);
    for (const c of v6) edges(c, 128, v6n, same6);
    edges('2000::/3', 128, v6n, same6);
    for (let i = 0; i < 5000; i++) {
      same4(rand(32));
      same6((1n << 125n) | rand(125));
    }
    assert.ok(compared > 10_000, `${compared} compared`);
  });
});

const refused = (host: string, address: string) => (err: unknown) => {
  assert.ok(err instanceof BlockedAddressError, String(err));
  assert.equal(err.host, host);
  assert.equal(err.address, address);
  assert.ok(err.message.includes(host), err.message);
  assert.ok(err.message.includes(address), err.message);
  assert.ok(err.message.includes('--allowprivateaddress'), err.message);
  return true;
};

/** A lookup that answers from a table, so that no test asks DNS for a made-up name. */
function table(answers: Record<string, string[]>) {
  return async (host: string) => {
    const addresses = answers[host];
    if (!addresses) throw Object.assign(new Error(`no answer for ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

describe('AddressGuard.check', () => {
  const lookup = table({
    'loop.example': ['127.0.0.1'],
    'loop6.example': ['::1'],
    'mixed.example': ['93.184.216.34', '10.0.0.1'],
    'public.example': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  });
  const strict = new AddressGuard({ allowPrivate: false, lookup });
  const open = new AddressGuard({ allowPrivate: true, lookup });

  it('refuses loopback literals and names resolving to loopback without allowPrivate', async () => {
    await assert.rejects(strict.check('http://127.0.0.1:1/'), refused('127.0.0.1', '127.0.0.1'));
    await assert.rejects(strict.check('http://[::1]:1/'), refused('::1', '::1'));
    await assert.rejects(strict.check(new URL('https://[::1]/x')), refused('::1', '::1'));
    await assert.rejects(
      strict.check('http://loop.example/'),
      refused('loop.example', '127.0.0.1'),
    );
    await assert.rejects(
      strict.check('http://loop6.example:8080/'),
      refused('loop6.example', '::1'),
    );
    // any private address among the answers is enough
    await assert.rejects(
      strict.check('http://mixed.example/'),
      refused('mixed.example', '10.0.0.1'),
    );
    // the URL parser's normal forms of loopback
    await assert.rejects(strict.check('http://0x7f.1/'), BlockedAddressError);
    await assert.rejects(strict.check('http://2130706433/'), BlockedAddressError);
    await assert.rejects(strict.check('http://[::ffff:127.0.0.1]/'), BlockedAddressError);
    await assert.rejects(strict.check('http://[64:ff9b::7f00:1]/'), BlockedAddressError);
  });

  it('refuses localhost through the real resolver', async () => {
    const real = new AddressGuard({ allowPrivate: false });
    await assert.rejects(real.check('http://localhost:1/'), (err: unknown) => {
      assert.ok(err instanceof BlockedAddressError);
      assert.equal(err.host, 'localhost');
      assert.ok(err.address && isPrivateAddress(err.address), err.address);
      assert.match(err.message, /localhost: it resolves to .*, a loopback address/);
      return true;
    });
    await new AddressGuard({ allowPrivate: true }).check('http://localhost:1/');
  });

  it('accepts all of them with allowPrivate', async () => {
    for (const url of [
      'http://127.0.0.1:1/',
      'http://[::1]:1/',
      'http://loop.example/',
      'http://loop6.example/',
      'http://mixed.example/',
    ]) {
      await open.check(url);
    }
  });

  it('accepts a name whose every address is public', async () => {
    await strict.check('https://public.example/inbox');
    await strict.check('http://8.8.8.8/');
  });

  it('refuses what is not an http(s) URL, even with allowPrivate', async () => {
    for (const url of ['ftp://example.com/', 'file:///etc/passwd', 'gopher://x/', 'not a url']) {
      await assert.rejects(strict.check(url), BlockedAddressError, url);
      await assert.rejects(open.check(url), BlockedAddressError, url);
    }
  });
});

describe('guarded connections to a loopback server', () => {
  let server: http.Server;
  let port = 0;
  let seen = 0;
  before(async () => {
    server = http.createServer((_req, res) => {
      seen++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /**
   * DNS rebinding: a public address while the URL is checked, loopback once connecting. The
   * public answer is only ever given during check(), which connects nowhere.
   */
  function rebinding() {
    const state = { checking: true, checkLookups: 0 };
    const lookup = async (_host: string) => {
      if (state.checking) state.checkLookups++;
      return [{ address: state.checking ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    };
    return { state, lookup };
  }

  it('guardedFetch is refused without allowPrivate and the server sees nothing', async () => {
    const before = seen;
    const guard = new AddressGuard({ allowPrivate: false });
    await assert.rejects(
      guardedFetch(guard, `http://127.0.0.1:${port}/`),
      refused('127.0.0.1', '127.0.0.1'),
    );
    await assert.rejects(guardedFetch(guard, `http://localhost:${port}/`), BlockedAddressError);
    await assert.rejects(guardedFetch(guard, 'file:///etc/passwd'), BlockedAddressError);
    // DNS rebinding: public when checked, loopback when connecting
    const { state, lookup } = rebinding();
    const rebind = new AddressGuard({ allowPrivate: false, lookup });
    const url = `http://rebind.example:${port}/`;
    await rebind.check(url);
    state.checking = false;
    assert.equal(state.checkLookups, 1);
    await assert.rejects(guardedFetch(rebind, url), refused('rebind.example', '127.0.0.1'));
    // the dispatcher on its own, with undici's request API
    const agent = guardedDispatcher(guard);
    await assert.rejects(
      agent.request({ origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET' }),
      BlockedAddressError,
    );
    await agent.close();
    assert.equal(seen, before);
  });

  it('guardedFetch reaches the server with allowPrivate', async () => {
    const before = seen;
    const guard = new AddressGuard({ allowPrivate: true });
    const res = await guardedFetch(guard, `http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), 'ok');
    const lookup = table({ 'loop.example': ['127.0.0.1'] });
    const viaName = new AddressGuard({ allowPrivate: true, lookup });
    const res2 = await guardedFetch(viaName, `http://loop.example:${port}/`, { method: 'POST' });
    assert.equal(res2.status, 200);
    await res2.arrayBuffer();
    assert.equal(seen, before + 2);
  });

  function get(guard: AddressGuard, family?: 4): Promise<number> {
    return new Promise((resolve, reject) => {
      const opts = { host: 'loop.example', port, lookup: guardedLookup(guard) };
      const req = http.get(family ? { ...opts, family } : opts, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
  }

  it('node:http with guardedLookup: refused without allowPrivate, served with it', async () => {
    const before = seen;
    const lookup = table({ 'loop.example': ['127.0.0.1'] });
    const strict = new AddressGuard({ allowPrivate: false, lookup });
    // all: true (Node's happy-eyeballs path) and a single answer (family given)
    await assert.rejects(get(strict), refused('loop.example', '127.0.0.1'));
    await assert.rejects(get(strict, 4), refused('loop.example', '127.0.0.1'));
    assert.equal(seen, before);
    const open = new AddressGuard({ allowPrivate: true, lookup });
    assert.equal(await get(open), 200);
    assert.equal(await get(open, 4), 200);
    assert.equal(seen, before + 2);
  });
});
