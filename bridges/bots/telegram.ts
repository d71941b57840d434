/**
 * RUM ⇄ Telegram Bot API shapes. A group is a `supergroup` chat; a committed post is a
 * `message` (a reply carries `reply_to_message`), an edit an `edited_message`, a like or dislike
 * a `message_reaction` (👍 / 👎), a deletion a `deleted_business_messages` (Telegram's only
 * update that names deleted messages). Text a bot sends with `parse_mode` HTML or MarkdownV2
 * becomes sanitized HTML content (`mediaType: text/html`); without one, plain text.
 */
import sanitizeHtml from 'sanitize-html';
import type { CommittedItem } from '../port.ts';
import { rumPost, rumReplyTarget } from '../rum-content.ts';
import { postText } from '../nostr/mapping.ts';

type Rec = Record<string, unknown>;

/** Telegram's limit on a message's text, after entities are parsed. */
export const MAX_TEXT_CHARS = 4096;

export interface TgUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  username?: string;
}

export interface TgChat {
  id: number;
  type: 'supergroup';
  title: string;
}

export interface TgMessage {
  message_id: number;
  from: TgUser;
  chat: TgChat;
  date: number;
  text?: string;
  edit_date?: number;
  reply_to_message?: TgMessage;
}

export const UPDATE_KINDS = [
  'message',
  'edited_message',
  'message_reaction',
  'deleted_business_messages',
] as const;
export type UpdateKind = (typeof UPDATE_KINDS)[number];

/** What Telegram sends when allowed_updates is empty: every kind but the reactions. */
export const DEFAULT_UPDATES: readonly string[] = [
  'message',
  'edited_message',
  'deleted_business_messages',
];

/** What the mapping needs to know of the gateway. */
export interface MapContext {
  chat: TgChat;
  /** The Telegram user of a RUM key (a bot's own key answers the bot). */
  user(pubkey: string): TgUser;
  /** The message id of a trx in this chat (made on first use). */
  messageOf(trxId: string): number;
  /** The committed item of a trx of this group, for a reply's `reply_to_message`. */
  item(trxId: string): CommittedItem | undefined;
}

export function secondsOf(timestampNs: string): number {
  return /^\d{1,30}$/.test(timestampNs) ? Number(BigInt(timestampNs) / 1_000_000_000n) : 0;
}

/** The message a committed post is (without its reply), or null when it is not a post. */
function messageOf(item: CommittedItem, ctx: MapContext): TgMessage | null {
  const post = rumPost(item.object);
  if (!post || item.object?.type === 'Update') return null;
  return {
    message_id: ctx.messageOf(item.trxId),
    from: ctx.user(item.senderPubkey),
    chat: ctx.chat,
    date: secondsOf(item.timestamp),
    text: postText(post),
  };
}

/** The update a committed item is for a bot, or null when bots see nothing of it. */
export function toUpdate(
  item: CommittedItem,
  ctx: MapContext,
): { kind: UpdateKind; payload: Rec } | null {
  const o = item.object;
  if (!o) return null;
  const type = o.type;
  const target = (o.object as Rec | undefined)?.id;
  if (type === 'Update' && typeof target === 'string') {
    const post = rumPost(o.object as Rec);
    const original = ctx.item(target);
    if (!post || !original) return null;
    return {
      kind: 'edited_message',
      payload: {
        edited_message: {
          message_id: ctx.messageOf(target),
          from: ctx.user(original.senderPubkey),
          chat: ctx.chat,
          date: secondsOf(original.timestamp),
          edit_date: secondsOf(item.timestamp),
          text: postText(post),
        },
      },
    };
  }
  if ((type === 'Like' || type === 'Dislike') && typeof target === 'string') {
    if (!ctx.item(target)) return null;
    return {
      kind: 'message_reaction',
      payload: {
        message_reaction: {
          chat: ctx.chat,
          message_id: ctx.messageOf(target),
          user: ctx.user(item.senderPubkey),
          date: secondsOf(item.timestamp),
          old_reaction: [],
          new_reaction: [{ type: 'emoji', emoji: type === 'Like' ? '👍' : '👎' }],
        },
      },
    };
  }
  if (type === 'Delete' && typeof target === 'string') {
    if (!ctx.item(target)) return null;
    return {
      kind: 'deleted_business_messages',
      payload: {
        deleted_business_messages: {
          business_connection_id: 'rum',
          chat: ctx.chat,
          message_ids: [ctx.messageOf(target)],
        },
      },
    };
  }
  const message = messageOf(item, ctx);
  if (!message) return null;
  const replyTo = rumReplyTarget(rumPost(o)!);
  if (replyTo) {
    const parent = ctx.item(replyTo);
    const reply = parent ? messageOf(parent, ctx) : null;
    if (reply) message.reply_to_message = reply;
  }
  return { kind: 'message', payload: { message } };
}

// ---- text a bot sends ----

/** Tags Telegram's HTML parse mode knows, and what each is kept as. */
const TG_TAGS = [
  'b',
  'strong',
  'i',
  'em',
  'u',
  'ins',
  's',
  'strike',
  'del',
  'a',
  'code',
  'pre',
  'blockquote',
  'tg-spoiler',
  'span',
  'br',
];

function sanitize(html: string): string {
  return sanitizeHtml(html, {
    allowedTags: TG_TAGS,
    allowedAttributes: { a: ['href'], code: ['class'], span: ['class'] },
    allowedClasses: { span: ['tg-spoiler'], code: ['language-*'] },
    allowedSchemes: ['http', 'https', 'mailto', 'tg'],
    transformTags: {
      'tg-spoiler': sanitizeHtml.simpleTransform('span', { class: 'tg-spoiler' }),
      a: (tagName, attribs) => ({ tagName, attribs: { ...attribs, rel: 'nofollow noopener' } }),
    },
    allowedSchemesAppliedToAttributes: ['href'],
  }).trim();
}

/** The visible text of HTML (what Telegram counts against the 4096 characters). */
function visibleText(html: string): string {
  return sanitizeHtml(html, { allowedTags: [], allowedAttributes: {} })
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&amp;', '&');
}

function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** MarkdownV2's special characters, which must be escaped with `\` where they are text. */
const MD_SPECIAL = '_*[]()~`>#+-=|{}.!\\';

/**
 * Telegram MarkdownV2 → HTML: *bold*, _italic_, __underline__, ~strike~, ||spoiler||, `code`,
 * ```pre```, [text](url), `>` quotes; `\` escapes any character from code 1 to 126 (the special
 * ones must be). Answers the reason (Telegram's words) when the text is not valid MarkdownV2.
 */
export function markdownV2ToHtml(md: string): { html: string } | { error: string } {
  const out: string[] = [];
  const open: string[] = [];
  let i = 0;
  let inQuote = false;
  let lineStart = true;
  while (i < md.length) {
    if (lineStart) {
      const quoted = md[i] === '>';
      if (quoted && !inQuote) out.push('<blockquote>');
      if (!quoted && inQuote) out.push('</blockquote>');
      inQuote = quoted;
      if (quoted) i++;
      lineStart = false;
      continue;
    }
    const ch = md[i]!;
    if (ch === '\n') {
      out.push('\n');
      i++;
      lineStart = true;
      continue;
    }
    if (ch === '\\') {
      // Telegram: any character with a code from 1 to 126 may be escaped, anywhere.
      const next = md[i + 1];
      const code = next === undefined ? 0 : next.charCodeAt(0);
      if (code < 1 || code > 126) return { error: "can't parse entities: bad escape" };
      out.push(escapeText(next!));
      i += 2;
      continue;
    }
    if (md.startsWith('```', i)) {
      const close = md.indexOf('```', i + 3);
      if (close < 0) return { error: "can't parse entities: unclosed pre" };
      let body = md.slice(i + 3, close);
      let lang = '';
      const nl = body.indexOf('\n');
      if (nl >= 0 && /^[A-Za-z0-9_+-]{1,30}$/.test(body.slice(0, nl))) {
        lang = body.slice(0, nl);
        body = body.slice(nl + 1);
      }
      const code = escapeText(unescapeCode(body));
      out.push(
        lang ? `<pre><code class="language-${lang}">${code}</code></pre>` : `<pre>${code}</pre>`,
      );
      i = close + 3;
      continue;
    }
    if (ch === '`') {
      let end = i + 1;
      while (end < md.length && md[end] !== '`') end += md[end] === '\\' ? 2 : 1;
      if (end >= md.length) return { error: "can't parse entities: unclosed code" };
      out.push(`<code>${escapeText(unescapeCode(md.slice(i + 1, end)))}</code>`);
      i = end + 1;
      continue;
    }
    if (ch === '[') {
      const m = /^\[((?:\\.|[^\]\\\n])*)\]\(((?:\\.|[^)\\\n])*)\)/.exec(md.slice(i, i + 10_000));
      if (!m) return { error: "can't parse entities: bad link" };
      const inner = markdownV2ToHtml(m[1]!);
      if ('error' in inner) return inner;
      const href = m[2]!.replace(/\\(.)/g, '$1');
      out.push(`<a href="${escapeText(href).replaceAll('"', '&quot;')}">${inner.html}</a>`);
      i += m[0].length;
      continue;
    }
    const mark = MARKS.find(([m]) => md.startsWith(m, i));
    if (mark) {
      const [m, tag] = mark;
      if (open[open.length - 1] === m) {
        open.pop();
        out.push(`</${tag}>`);
      } else if (open.includes(m)) {
        return { error: "can't parse entities: can't find end of the entity" };
      } else {
        open.push(m);
        out.push(`<${tag}>`);
      }
      i += m.length;
      continue;
    }
    if (MD_SPECIAL.includes(ch)) {
      return {
        error: `can't parse entities: Character '${ch}' is reserved and must be escaped with the preceding '\\'`,
      };
    }
    out.push(escapeText(ch));
    i++;
  }
  if (inQuote) out.push('</blockquote>');
  if (open.length > 0) return { error: "can't parse entities: can't find end of the entity" };
  return { html: out.join('') };
}

/** MarkdownV2's emphasis marks, longest first, and the tag each opens. */
const MARKS: readonly [string, string][] = [
  ['||', 'tg-spoiler'],
  ['__', 'u'],
  ['*', 'b'],
  ['_', 'i'],
  ['~', 's'],
];

function unescapeCode(s: string): string {
  return s.replace(/\\([`\\])/g, '$1');
}

/**
 * The RUM payload of a bot's text: plain text as is; HTML or MarkdownV2 as sanitized HTML.
 * Answers Telegram's reason when the text is empty, too long or does not parse.
 */
export function textPayload(
  text: string,
  parseMode: string | undefined,
): { content: string; html: boolean } | { error: string } {
  let content = text;
  let html = false;
  if (parseMode !== undefined && parseMode !== '') {
    const mode = parseMode.toLowerCase();
    if (mode === 'html') {
      content = sanitize(text.replaceAll('\n', '<br>'));
      html = true;
    } else if (mode === 'markdownv2' || mode === 'markdown') {
      const r = markdownV2ToHtml(text);
      if ('error' in r) return r;
      content = sanitize(r.html.replaceAll('\n', '<br>'));
      html = true;
    } else {
      return { error: `unsupported parse_mode ${JSON.stringify(parseMode.slice(0, 30))}` };
    }
  }
  const visible = html ? visibleText(content.replaceAll('<br />', '\n')) : content;
  if (visible.trim().length === 0) return { error: 'message text is empty' };
  if (visible.length > MAX_TEXT_CHARS) return { error: 'message is too long' };
  return { content, html };
}
