/**
 * HTML of posts crossing the ActivityPub bridge, in both directions: what comes from the
 * fediverse is cleaned by sanitize-html (a maintained sanitizer) with a strict allow-list before
 * it reaches the chain, and RUM's plain text becomes the small HTML Mastodon expects.
 *
 * Kept: paragraphs and line breaks, links (http, https, mailto only; `rel="nofollow noopener"`
 * forced, `tag` kept for hashtags), Mastodon's mention and hashtag markup
 * (`<span class="h-card"><a class="u-url mention">@<span>bob</span></a></span>`), inline
 * emphasis, code, quotes and lists. Dropped: scripts, styles, event handlers, every other
 * attribute and class, images (they travel as attachments), `javascript:` and other schemes.
 */
import sanitizeHtmlLib from 'sanitize-html';

/** Classes that carry meaning in fediverse HTML (microformats and Mastodon's link shortening). */
const A_CLASSES = ['mention', 'hashtag', 'u-url', 'status-link', 'unhandled-link'];
const SPAN_CLASSES = ['h-card', 'invisible', 'ellipsis', 'quote-inline'];

const HEADINGS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];

const OPTIONS: sanitizeHtmlLib.IOptions = {
  allowedTags: [
    'p',
    'br',
    'a',
    'span',
    'strong',
    'em',
    'b',
    'i',
    'u',
    's',
    'code',
    'pre',
    'blockquote',
    'ul',
    'ol',
    'li',
  ],
  allowedAttributes: { a: ['href', 'rel', 'class'], span: ['class'] },
  allowedClasses: { a: A_CLASSES, span: SPAN_CLASSES },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesAppliedToAttributes: ['href'],
  allowProtocolRelative: false,
  // The text of a dropped element is kept, except in these, whose text is not content.
  nonTextTags: [
    'script',
    'style',
    'textarea',
    'option',
    'noscript',
    'template',
    'title',
    'iframe',
    'object',
    'noembed',
    'noframes',
  ],
  disallowedTagsMode: 'discard',
  transformTags: {
    // Headings (Misskey, Pleroma, long-form software) keep their block break as a paragraph.
    ...Object.fromEntries(HEADINGS.map((h) => [h, 'p'])),
    a: (tagName, attribs) => {
      const rel = new Set((attribs.rel ?? '').toLowerCase().split(/\s+/));
      const out: Record<string, string> = { ...attribs };
      out.rel = rel.has('tag') ? 'tag nofollow noopener' : 'nofollow noopener';
      return { tagName, attribs: out };
    },
  },
};

/** Fediverse HTML → the HTML kept on the chain (and sent out): the strict allow-list above. */
export function sanitizeContent(html: string): string {
  return sanitizeHtmlLib(html, OPTIONS).trim();
}

/** The text of some HTML, without any markup (entities stay escaped: safe to put in HTML). */
export function htmlToText(html: string): string {
  return sanitizeHtmlLib(html, { allowedTags: [], allowedAttributes: {} });
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * Whether RUM content is HTML already. RUM apps post plain text (sometimes Markdown); a post
 * holding one of the tags a renderer would show is taken as HTML.
 */
export function looksLikeHtml(text: string): boolean {
  return /<\s*\/?\s*(p|br|a|div|span|strong|em|b|i|u|s|code|pre|blockquote|ul|ol|li|h[1-6]|img)(\s[^>]*)?\/?\s*>/i.test(
    text,
  );
}

const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/g;

/** One line of plain text → escaped HTML with its http(s) URLs as links. */
function linkifyLine(line: string): string {
  let out = '';
  let last = 0;
  for (const m of line.matchAll(URL_IN_TEXT)) {
    const at = m.index;
    out += escapeHtml(line.slice(last, at));
    let ok = true;
    try {
      new URL(m[0]);
    } catch {
      ok = false;
    }
    const text = escapeHtml(m[0]);
    out += ok ? `<a href="${text}" rel="nofollow noopener">${text}</a>` : text;
    last = at + m[0].length;
  }
  return out + escapeHtml(line.slice(last));
}

/**
 * Plain text → HTML: escaped, blank lines separate paragraphs (`<p>`), single newlines become
 * `<br />` (as the sanitizer writes it), and http(s) URLs become links.
 */
export function plainTextToHtml(text: string): string {
  const paragraphs = text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n+/)
    .map((p) => p.replace(/^\n+|\n+$/g, ''))
    .filter((p) => p.trim().length > 0);
  return paragraphs.map((p) => `<p>${p.split('\n').map(linkifyLine).join('<br />')}</p>`).join('');
}
