// The SSRF guard for everything a bridge fetches or delivers: no request may reach a loopback,
// private, link-local, unique-local or otherwise non-public address unless the operator passed
// --allowprivateaddress. Addresses are judged after DNS resolution, and judged again when the
// socket connects (guardedDispatcher, guardedLookup), so a name that resolves to a public address
// when checked and to loopback when connected (DNS rebinding) is refused too.
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { Agent, buildConnector, fetch } from 'undici';
import type { Dispatcher, RequestInit, Response } from 'undici';
import { RumError } from '../errors.ts';

/** A request refused by the guard: not http(s), or a host that is (or resolves to) a private address. */
export class BlockedAddressError extends RumError {
  override name = 'BlockedAddressError';
  override readonly status: number = 400;
  readonly code = 'ERR_BLOCKED_ADDRESS';
  /** The host as written in the URL (IPv6 without brackets); undefined when the URL was refused for its form. */
  readonly host: string | undefined;
  /** The address that was refused (the host itself when it is an IP literal). */
  readonly address: string | undefined;
  constructor(message: string, host?: string, address?: string) {
    super(message);
    this.host = host;
    this.address = address;
  }
}

// ---- Address classification ----

type Range = readonly [base: bigint, prefix: number, kind: string];

function v4(s: string): bigint {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m || isIP(s) !== 4) throw new TypeError(`not an IPv4 address: ${s}`);
  return m.slice(1).reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

/** An IPv6 address (with an optional dotted IPv4 tail and an optional %zone) as a 128-bit integer. */
function v6(s: string): bigint {
  if (isIP(s) !== 6) throw new TypeError(`not an IPv6 address: ${s}`);
  let str = s;
  const zone = str.indexOf('%');
  if (zone >= 0) str = str.slice(0, zone);
  if (str.includes('.')) {
    const at = str.lastIndexOf(':') + 1;
    const x = Number(v4(str.slice(at)));
    str = `${str.slice(0, at)}${(x >>> 16).toString(16)}:${(x & 0xffff).toString(16)}`;
  }
  const halves = str.split('::');
  if (halves.length > 2) throw new TypeError(`not an IPv6 address: ${s}`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) {
    throw new TypeError(`not an IPv6 address: ${s}`);
  }
  const words = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const w of words) {
    if (!/^[0-9a-f]{1,4}$/i.test(w)) throw new TypeError(`not an IPv6 address: ${s}`);
    n = (n << 16n) | BigInt(Number.parseInt(w, 16));
  }
  return n;
}

function range4(cidr: string, kind: string): Range {
  const [ip, len] = cidr.split('/') as [string, string];
  return [v4(ip), Number(len), kind];
}

function range6(cidr: string, kind: string): Range {
  const [ip, len] = cidr.split('/') as [string, string];
  return [v6(ip), Number(len), kind];
}

function inRange(x: bigint, bits: number, [base, prefix]: Range): boolean {
  const shift = BigInt(bits - prefix);
  return x >> shift === base >> shift;
}

/** IPv4 ranges that are never a delivery target (IANA special-purpose registry, trimmed to those). */
const V4_BLOCKED: readonly Range[] = [
  range4('0.0.0.0/8', 'unspecified ("this network")'),
  range4('10.0.0.0/8', 'private'),
  range4('100.64.0.0/10', 'carrier-grade NAT'),
  range4('127.0.0.0/8', 'loopback'),
  range4('169.254.0.0/16', 'link-local'),
  range4('172.16.0.0/12', 'private'),
  range4('192.0.0.0/24', 'IETF protocol assignment'),
  range4('192.0.2.0/24', 'documentation'),
  range4('192.88.99.0/24', '6to4 relay anycast'),
  range4('192.168.0.0/16', 'private'),
  range4('198.18.0.0/15', 'benchmarking'),
  range4('198.51.100.0/24', 'documentation'),
  range4('203.0.113.0/24', 'documentation'),
  range4('224.0.0.0/4', 'multicast'),
  range4('255.255.255.255/32', 'broadcast'),
  range4('240.0.0.0/4', 'reserved'),
];

/** IPv6 forms that carry an IPv4 address in their low 32 bits: judged by that address. */
const V6_EMBEDDING_LOW32: readonly Range[] = [
  range6('::ffff:0:0/96', 'IPv4-mapped'),
  range6('::ffff:0:0:0/96', 'IPv4-translated'),
  range6('64:ff9b::/96', 'NAT64'),
];
const V6_UNSPECIFIED = range6('::/128', 'unspecified');
const V6_LOOPBACK = range6('::1/128', 'loopback');
const V6_COMPATIBLE = range6('::/96', 'IPv4-compatible');
const V6_6TO4 = range6('2002::/16', '6to4');
const V6_GLOBAL_UNICAST = range6('2000::/3', 'global unicast');

/** IPv6 ranges that are never a delivery target; anything outside 2000::/3 is refused as well. */
const V6_BLOCKED: readonly Range[] = [
  range6('64:ff9b:1::/48', 'NAT64 local-use'),
  range6('100::/64', 'discard-only'),
  range6('2001::/23', 'IETF protocol assignment'),
  range6('2001:db8::/32', 'documentation'),
  range6('3fff::/20', 'documentation'),
  range6('5f00::/16', 'SRv6 SID'),
  range6('fc00::/7', 'unique-local'),
  range6('fe80::/10', 'link-local'),
  range6('fec0::/10', 'site-local'),
  range6('ff00::/8', 'multicast'),
];

function formatV4(x: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((x >> s) & 0xffn)).join('.');
}

function classify4(x: bigint): string | null {
  for (const r of V4_BLOCKED) if (inRange(x, 32, r)) return r[2];
  return null;
}

function embedded(kind: string, x: bigint): string | null {
  const inner = classify4(x);
  return inner && `${inner} (${kind} ${formatV4(x)})`;
}

function classify6(x: bigint): string | null {
  if (x === V6_UNSPECIFIED[0]) return V6_UNSPECIFIED[2];
  if (x === V6_LOOPBACK[0]) return V6_LOOPBACK[2];
  for (const r of V6_EMBEDDING_LOW32)
    if (inRange(x, 128, r)) return embedded(r[2], x & 0xffffffffn);
  if (inRange(x, 128, V6_COMPATIBLE)) return embedded(V6_COMPATIBLE[2], x & 0xffffffffn);
  if (inRange(x, 128, V6_6TO4)) return embedded(V6_6TO4[2], (x >> 80n) & 0xffffffffn);
  for (const r of V6_BLOCKED) if (inRange(x, 128, r)) return r[2];
  if (!inRange(x, 128, V6_GLOBAL_UNICAST)) return 'reserved (outside 2000::/3)';
  return null;
}

/**
 * What kind of non-public address `ip` is ('loopback', 'private', 'link-local', …), or null when
 * it is a public unicast address. IPv6 forms that embed an IPv4 address (IPv4-mapped
 * ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by
 * the embedded address. Throws a TypeError when `ip` is not an IP address (a host name, brackets).
 */
export function classifyAddress(ip: string): string | null {
  switch (isIP(ip)) {
    case 4:
      return classify4(v4(ip));
    case 6:
      return classify6(v6(ip));
    default:
      throw new TypeError(`not an IP address: ${ip}`);
  }
}

/** True when `ip` must not be fetched from or delivered to (see classifyAddress). */
export function isPrivateAddress(ip: string): boolean {
  return classifyAddress(ip) !== null;
}

// ---- The guard ----

export type HostLookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface AddressGuardOptions {
  /** --allowprivateaddress: let requests reach private addresses (tests on loopback set it). */
  allowPrivate: boolean;
  /** Resolves a host name to all its addresses; node:dns/promises lookup (all: true) by default. */
  lookup?: HostLookup;
}

const defaultLookup: HostLookup = (host) => dnsLookup(host, { all: true, order: 'verbatim' });

/** `url` as a URL, or BlockedAddressError when it is not a valid http or https URL. */
function httpUrl(url: string | URL): URL {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    throw new BlockedAddressError(`refused ${JSON.stringify(String(url))}: not a valid URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new BlockedAddressError(
      `refused ${u.href}: only http and https URLs are allowed, not ${u.protocol}`,
      u.hostname,
    );
  }
  return u;
}

const ALLOW_HINT = '(--allowprivateaddress allows it)';

export class AddressGuard {
  readonly allowPrivate: boolean;
  readonly #lookup: HostLookup;

  constructor(opts: AddressGuardOptions) {
    this.allowPrivate = opts.allowPrivate;
    this.#lookup = opts.lookup ?? defaultLookup;
  }

  /**
   * Throws BlockedAddressError unless `url` is http(s) and its host is not, and does not resolve
   * to, any private address (or allowPrivate is set). This alone cannot stop DNS rebinding: send
   * the request through guardedFetch / guardedDispatcher / guardedLookup, which judge the
   * addresses again when they connect.
   */
  async check(url: string | URL): Promise<void> {
    const u = httpUrl(url);
    if (this.allowPrivate) return;
    await this.resolve(u.hostname);
  }

  /**
   * The addresses of `host` (an IP literal, bracketed or not, is its own address; a name is
   * looked up), after refusing with BlockedAddressError if any of them is private and
   * allowPrivate is off. Refusing on any, not only the first, so that no address family or
   * retry order can reach the private one.
   */
  async resolve(host: string): Promise<{ address: string; family: number }[]> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    const family = isIP(bare);
    const addresses = family ? [{ address: bare, family }] : await this.#lookup(bare);
    if (addresses.length === 0) {
      throw Object.assign(new Error(`${bare} resolves to no address`), { code: 'ENOTFOUND' });
    }
    if (!this.allowPrivate) {
      for (const { address } of addresses) {
        const kind = classifyAddress(address);
        if (kind === null) continue;
        throw new BlockedAddressError(
          family
            ? `refused ${bare}: a ${kind} address ${ALLOW_HINT}`
            : `refused ${bare}: it resolves to ${address}, a ${kind} address ${ALLOW_HINT}`,
          bare,
          address,
        );
      }
    }
    return addresses;
  }
}

// ---- Connect-time enforcement ----

/**
 * A node:net / node:http `lookup` (as in `http.request({ lookup })`) that resolves through the
 * guard and fails with BlockedAddressError on a private address, at connect time. Node skips
 * `lookup` for an IP-literal host, so also `await guard.check(url)` before the request: a literal
 * cannot be rebound, so checking it beforehand is enough.
 */
export function guardedLookup(guard: AddressGuard): LookupFunction {
  return (hostname, options, callback) => {
    const opts: LookupOptions = typeof options === 'object' && options !== null ? options : {};
    guard.resolve(hostname).then(
      (all) => {
        const wanted =
          opts.family === 4 || opts.family === 6
            ? all.filter((a) => a.family === opts.family)
            : all;
        if (wanted.length === 0) {
          const err = Object.assign(new Error(`${hostname} has no IPv${opts.family} address`), {
            code: 'ENOTFOUND',
            hostname,
          });
          callback(err, opts.all ? [] : '', undefined);
        } else if (opts.all) {
          callback(null, wanted as LookupAddress[]);
        } else {
          callback(null, wanted[0]!.address, wanted[0]!.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, opts.all ? [] : '', undefined),
    );
  };
}

export type GuardedAgentOptions = Omit<Agent.Options, 'connect'> & {
  connect?: Omit<buildConnector.BuildOptions, 'lookup'>;
};

/**
 * An undici Agent that judges every address when it connects: a host name is resolved through the
 * guard (guardedLookup) and an IP-literal host is judged as it is, so redirects and rebinding
 * cannot reach a private address.
 */
export function guardedDispatcher(guard: AddressGuard, options: GuardedAgentOptions = {}): Agent {
  const { connect: connectOptions, ...agentOptions } = options;
  const connector = buildConnector({ ...connectOptions, lookup: guardedLookup(guard) });
  const connect: buildConnector.connector = (opts, callback) => {
    if (guard.allowPrivate || !isIP(opts.hostname)) return connector(opts, callback);
    guard.resolve(opts.hostname).then(
      () => connector(opts, callback),
      (err: Error) => callback(err, null),
    );
  };
  return new Agent({ ...agentOptions, connect });
}

const dispatchers = new WeakMap<AddressGuard, Dispatcher>();

/**
 * fetch (undici's) through the guard: a URL that is not http(s) is refused at once, and the
 * addresses of every connection, the first and any redirect's, are judged by guardedDispatcher
 * when it connects: one DNS lookup per new connection, none per request on a kept-alive one. A
 * refusal rejects with the BlockedAddressError itself rather than fetch's generic "fetch failed".
 */
export async function guardedFetch(
  guard: AddressGuard,
  url: string | URL,
  init: Omit<RequestInit, 'dispatcher'> = {},
): Promise<Response> {
  httpUrl(url);
  let dispatcher = dispatchers.get(guard);
  if (!dispatcher) {
    dispatcher = guardedDispatcher(guard);
    dispatchers.set(guard, dispatcher);
  }
  try {
    return await fetch(url, { ...init, dispatcher });
  } catch (err) {
    if (err instanceof Error && err.cause instanceof BlockedAddressError) throw err.cause;
    throw err;
  }
}
