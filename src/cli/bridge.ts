/**
 * `rum bridge expose|list|remove`: the operator's exposure of groups, through the running
 * node's admin API (the node applies it at once; nothing is written behind its back).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.ts';

export const BRIDGE_USAGE = `usage:
  rum bridge expose GROUP_ID --handle H [--no-activitypub] [--no-nostr] [--no-bots]
  rum bridge list
  rum bridge remove GROUP_ID
flags of every bridge command:
  --api <url>        the node's admin API (default http://127.0.0.1:8000, or env RUM_API)
  --token <jwt>      a chain token, when the API asks for one (or env RUM_TOKEN)
`;

interface Out {
  stdout: (s: string) => void;
}

async function call(
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
  if (rest.length > 0) throw new ConfigError(`unexpected argument "${rest[0]}"`);
  const api = (v.api as string | undefined) ?? process.env.RUM_API ?? 'http://127.0.0.1:8000';
  const token = (v.token as string | undefined) ?? process.env.RUM_TOKEN;
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
