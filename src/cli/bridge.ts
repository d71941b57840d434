/**
 * `rum bridge expose|list|remove`: the operator's exposure of groups, through the running
 * node's admin API (the node applies it at once; nothing is written behind its back).
 * `rum bridge activitypub …`: the ActivityPub bridge's followers, blocks and deliveries.
 * `rum bridge nostr …`: the outside relays a group's posts are published to.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.ts';

export const BRIDGE_USAGE = `usage:
  rum bridge expose GROUP_ID --handle H [--no-activitypub] [--no-nostr] [--no-bots]
  rum bridge list
  rum bridge remove GROUP_ID
  rum bridge activitypub followers HANDLE [--after ACTOR] [--limit N]
  rum bridge activitypub remove-follower HANDLE ACTOR
  rum bridge activitypub block ACTOR_OR_HOST     (an actor URL, or an instance's host)
  rum bridge activitypub unblock ACTOR_OR_HOST
  rum bridge activitypub blocks
  rum bridge activitypub deliveries
  rum bridge nostr relays GROUP_ID                 the outside relays a group publishes to
  rum bridge nostr set-relays GROUP_ID [URL ...]   set them (wss://…; none: stop publishing)
flags of every bridge command:
  --api <url>        the node's admin API (default http://127.0.0.1:8000, or env RUM_API)
  --token <jwt>      a chain token, when the API asks for one (or env RUM_TOKEN)
`;

interface Out {
  stdout: (s: string) => void;
}

/** One call of the node's admin API: its JSON answer, or an error saying what went wrong. */
export async function call(
  api: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, api), {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new Error(
      `cannot reach the node's API at ${api} (is the node running?): ${(err as Error).cause ?? (err as Error).message}`,
    );
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { message: text };
  }
  if (!res.ok) {
    const msg = (json as { message?: string }).message ?? res.statusText;
    throw new Error(`${method} ${path}: ${res.status} ${msg}`);
  }
  return json;
}

export async function runBridgeCommand(args: string[], out: Out): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: {
        handle: { type: 'string' },
        'no-activitypub': { type: 'boolean' },
        'no-nostr': { type: 'boolean' },
        'no-bots': { type: 'boolean' },
        api: { type: 'string' },
        token: { type: 'string' },
        after: { type: 'string' },
        limit: { type: 'string' },
        help: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/\. To specify.*$/s, ''));
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const [sub, groupId, ...rest] = parsed.positionals;
  if (v.help || sub === undefined) {
    out.stdout(BRIDGE_USAGE);
    return sub === undefined && !v.help ? 2 : 0;
  }
  const api = (v.api as string | undefined) ?? process.env.RUM_API ?? 'http://127.0.0.1:8000';
  const token = (v.token as string | undefined) ?? process.env.RUM_TOKEN;
  if (sub === 'activitypub') {
    return runActivityPub(
      parsed.positionals.slice(1),
      v,
      (m, p, b) => call(api, token, m, p, b),
      out,
    );
  }
  if (sub === 'nostr') {
    return runNostr(parsed.positionals.slice(1), (m, p, b) => call(api, token, m, p, b), out);
  }
  if (rest.length > 0) throw new ConfigError(`unexpected argument "${rest[0]}"`);
  const needGroup = () => {
    if (!groupId) throw new ConfigError(`rum bridge ${sub}: GROUP_ID is missing`);
    return encodeURIComponent(groupId);
  };
  switch (sub) {
    case 'expose': {
      const handle = v.handle as string | undefined;
      if (!handle) throw new ConfigError('rum bridge expose: --handle is required');
      const res = await call(api, token, 'PUT', `/api/v1/group/${needGroup()}/bridges`, {
        handle,
        activitypub: !v['no-activitypub'],
        nostr: !v['no-nostr'],
        bots: !v['no-bots'],
      });
      out.stdout(`${JSON.stringify(res, null, 2)}\n`);
      return 0;
    }
    case 'list': {
      if (groupId) throw new ConfigError(`unexpected argument "${groupId}"`);
      const res = (await call(api, token, 'GET', '/api/v1/bridges')) as {
        bridges: {
          group_id: string;
          handle: string;
          activitypub: boolean;
          nostr: boolean;
          bots: boolean;
          suspended: string | null;
        }[];
      };
      if (res.bridges.length === 0) {
        out.stdout('no group is exposed to bridges\n');
        return 0;
      }
      for (const b of res.bridges) {
        const on =
          (['activitypub', 'nostr', 'bots'] as const).filter((n) => b[n]).join(',') || 'none';
        out.stdout(
          `${b.group_id}  ${b.handle.padEnd(30)}  ${on}${b.suspended ? `  SUSPENDED: ${b.suspended}` : ''}\n`,
        );
      }
      return 0;
    }
    case 'remove': {
      await call(api, token, 'DELETE', `/api/v1/group/${needGroup()}/bridges`);
      out.stdout(`group ${groupId} is no longer bridged\n`);
      return 0;
    }
    default:
      throw new ConfigError(`rum bridge: unknown subcommand "${sub}"\n${BRIDGE_USAGE}`);
  }
}

type Caller = (method: string, path: string, body?: unknown) => Promise<unknown>;

/** An actor is named by its URL; anything else is an instance's host. */
function actorOrInstance(target: string): { actor: string } | { instance: string } {
  return /^https?:\/\//i.test(target) ? { actor: target } : { instance: target };
}

async function runActivityPub(
  args: string[],
  v: Record<string, string | boolean | undefined>,
  call: Caller,
  out: Out,
): Promise<number> {
  const [action, first, second, ...rest] = args;
  const base = '/api/v1/bridges/activitypub';
  const print = (res: unknown) => out.stdout(`${JSON.stringify(res, null, 2)}\n`);
  const need = (x: string | undefined, what: string): string => {
    if (!x) throw new ConfigError(`rum bridge activitypub ${action}: ${what} is missing`);
    return x;
  };
  const extra = (x: string | undefined) => {
    if (x !== undefined) throw new ConfigError(`unexpected argument "${x}"`);
  };
  extra(rest[0]);
  switch (action) {
    case 'followers': {
      extra(second);
      const q = new URLSearchParams();
      if (typeof v.after === 'string') q.set('after', v.after);
      if (typeof v.limit === 'string') q.set('limit', v.limit);
      const qs = q.size > 0 ? `?${q}` : '';
      const handle = encodeURIComponent(need(first, 'HANDLE'));
      const res = (await call('GET', `${base}/${handle}/followers${qs}`)) as {
        handle: string;
        total: number;
        followers: { id: string; since: string }[];
        next: string | null;
      };
      out.stdout(`${res.total} follower(s) of ${res.handle}\n`);
      for (const f of res.followers) out.stdout(`${f.since}  ${f.id}\n`);
      if (res.next) out.stdout(`more: --after ${res.next}\n`);
      return 0;
    }
    case 'remove-follower': {
      const handle = encodeURIComponent(need(first, 'HANDLE'));
      print(await call('DELETE', `${base}/${handle}/followers`, { actor: need(second, 'ACTOR') }));
      return 0;
    }
    case 'block':
    case 'unblock': {
      extra(second);
      const body = actorOrInstance(need(first, 'ACTOR_OR_HOST'));
      print(await call(action === 'block' ? 'PUT' : 'DELETE', `${base}/blocks`, body));
      return 0;
    }
    case 'blocks':
      extra(first);
      print(await call('GET', `${base}/blocks`));
      return 0;
    case 'deliveries':
      extra(first);
      print(await call('GET', `${base}/deliveries`));
      return 0;
    default:
      throw new ConfigError(
        `rum bridge activitypub: unknown action "${action ?? ''}"\n${BRIDGE_USAGE}`,
      );
  }
}

async function runNostr(args: string[], call: Caller, out: Out): Promise<number> {
  const [action, groupId, ...urls] = args;
  if (action !== 'relays' && action !== 'set-relays') {
    throw new ConfigError(`rum bridge nostr: unknown action "${action ?? ''}"\n${BRIDGE_USAGE}`);
  }
  if (!groupId) throw new ConfigError(`rum bridge nostr ${action}: GROUP_ID is missing`);
  const path = `/api/v1/bridges/nostr/groups/${encodeURIComponent(groupId)}/relays`;
  if (action === 'relays' && urls.length > 0) {
    throw new ConfigError(`unexpected argument "${urls[0]}"`);
  }
  const res = (await (action === 'relays'
    ? call('GET', path)
    : call('PUT', path, { relays: urls }))) as {
    relays: string[];
    since: Record<string, string>;
    publishing: boolean;
    suspended?: string;
  };
  if (res.relays.length === 0) {
    out.stdout(`group ${groupId} publishes to no outside relay\n`);
    return 0;
  }
  for (const url of res.relays) out.stdout(`${url}  since ${res.since[url] ?? '?'}\n`);
  if (!res.publishing) {
    out.stdout(
      `not publishing now${res.suspended ? `: the group is suspended: ${res.suspended}` : ''}\n`,
    );
  }
  return 0;
}
