/**
 * `rum bot …`: the operator's bots (bridges/bots/admin.ts, webhook-admin.ts), through the running
 * node's admin API, as `rum bridge` does: make, list and revoke bots, set or delete a bot's
 * Standard Webhooks endpoint, list its deliveries and redeliver failed ones.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.ts';
import { call } from './bridge.ts';

export const BOT_USAGE = `usage:
  rum bot create NAME --group GROUP_ID [--group GROUP_ID ...] [--scopes read,post]
  rum bot list
  rum bot revoke BOT_ID
  rum bot webhook BOT_ID URL          set its Standard Webhooks endpoint (prints the secret once)
  rum bot webhook-delete BOT_ID       no more pushes
  rum bot deliveries BOT_ID [--status failed|pending|active|done] [--limit N]
  rum bot redeliver BOT_ID ID [ID ...]             failed deliveries, by id
  rum bot redeliver BOT_ID --from UPDATE_ID [--to UPDATE_ID]   every update not delivered
flags of every bot command:
  --api <url>        the node's admin API (default http://127.0.0.1:8000, or env RUM_API)
  --token <jwt>      a chain token, when the API asks for one (or env RUM_TOKEN)
`;

interface Out {
  stdout: (s: string) => void;
}

interface BotView {
  bot_id: number;
  name: string;
  scopes: string[];
  chats: { group_id: string; chat_id: number }[];
  webhook: { url: string; kind: string; disabled?: string } | null;
  pending_updates: number;
  token?: string;
}

function botId(v: string | undefined, sub: string): number {
  if (!v) throw new ConfigError(`rum bot ${sub}: BOT_ID is missing`);
  if (!/^\d{1,15}$/.test(v)) throw new ConfigError(`rum bot ${sub}: BOT_ID must be a number`);
  return Number(v);
}

function updateId(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new ConfigError(`--${flag} must be an update id`);
  return Number(v);
}

export async function runBotCommand(args: string[], out: Out): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: {
        group: { type: 'string', multiple: true },
        scopes: { type: 'string' },
        status: { type: 'string' },
        limit: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
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
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const [sub, first, ...rest] = parsed.positionals;
  if (v.help || sub === undefined) {
    out.stdout(BOT_USAGE);
    return sub === undefined && !v.help ? 2 : 0;
  }
  const api = (v.api as string | undefined) ?? process.env.RUM_API ?? 'http://127.0.0.1:8000';
  const token = (v.token as string | undefined) ?? process.env.RUM_TOKEN;
  const req = (method: string, path: string, body?: unknown) =>
    call(api, token, method, path, body);
  const print = (res: unknown) => out.stdout(`${JSON.stringify(res, null, 2)}\n`);
  const extra = (x: string | undefined) => {
    if (x !== undefined) throw new ConfigError(`unexpected argument "${x}"`);
  };
  switch (sub) {
    case 'create': {
      extra(rest[0]);
      if (!first) throw new ConfigError('rum bot create: NAME is missing');
      const groups = (v.group as string[] | undefined) ?? [];
      if (groups.length === 0) throw new ConfigError('rum bot create: --group is required');
      const scopes = typeof v.scopes === 'string' ? v.scopes.split(',').filter(Boolean) : undefined;
      const bot = (await req('POST', '/api/v1/bots', {
        name: first,
        group_ids: groups,
        ...(scopes ? { scopes } : {}),
      })) as BotView;
      out.stdout(`bot ${bot.bot_id} (${bot.name}), scopes ${bot.scopes.join(',')}\n`);
      out.stdout(`token: ${bot.token}   (shown this once)\n`);
      for (const c of bot.chats) out.stdout(`chat ${c.chat_id}  group ${c.group_id}\n`);
      return 0;
    }
    case 'list': {
      extra(first);
      const res = (await req('GET', '/api/v1/bots')) as { bots: BotView[] };
      if (res.bots.length === 0) {
        out.stdout('no bots\n');
        return 0;
      }
      for (const b of res.bots) {
        const hook = b.webhook
          ? `  webhook ${b.webhook.kind} ${b.webhook.url}${b.webhook.disabled ? ` DISABLED: ${b.webhook.disabled}` : ''}`
          : '';
        out.stdout(
          `${String(b.bot_id).padEnd(6)} ${b.name.padEnd(24)} ${b.scopes.join(',').padEnd(10)} ` +
            `${b.chats.length} chat(s)  ${b.pending_updates} pending${hook}\n`,
        );
      }
      return 0;
    }
    case 'revoke': {
      extra(rest[0]);
      print(await req('DELETE', `/api/v1/bots/${botId(first, sub)}`));
      return 0;
    }
    case 'webhook': {
      const id = botId(first, sub);
      const [url, more] = rest;
      extra(more);
      if (!url) throw new ConfigError('rum bot webhook: URL is missing');
      const res = (await req('PUT', `/api/v1/bots/${id}/webhook`, { url })) as {
        url: string;
        secret: string;
      };
      out.stdout(`bot ${id} pushes to ${res.url}\nsecret: ${res.secret}   (shown this once)\n`);
      return 0;
    }
    case 'webhook-delete': {
      extra(rest[0]);
      print(await req('DELETE', `/api/v1/bots/${botId(first, sub)}/webhook`));
      return 0;
    }
    case 'deliveries': {
      extra(rest[0]);
      const q = new URLSearchParams();
      if (typeof v.status === 'string') q.set('status', v.status);
      if (typeof v.limit === 'string') q.set('limit', v.limit);
      const qs = q.size > 0 ? `?${q}` : '';
      print(await req('GET', `/api/v1/bots/${botId(first, sub)}/deliveries${qs}`));
      return 0;
    }
    case 'redeliver': {
      const id = botId(first, sub);
      const from = updateId(v.from as string | undefined, 'from');
      const to = updateId(v.to as string | undefined, 'to');
      if ((from !== undefined || to !== undefined) === rest.length > 0) {
        throw new ConfigError('rum bot redeliver: give delivery ids, or --from [--to]');
      }
      const body =
        rest.length > 0
          ? { ids: rest }
          : { from_update_id: from ?? 1, ...(to !== undefined ? { to_update_id: to } : {}) };
      print(await req('POST', `/api/v1/bots/${id}/deliveries/redeliver`, body));
      return 0;
    }
    default:
      throw new ConfigError(`rum bot: unknown subcommand "${sub}"\n${BOT_USAGE}`);
  }
}
