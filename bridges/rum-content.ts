/**
 * Reading the RUM payloads of committed items, the same way for every bridge: which payload is
 * a post, and which trx a post replies to (as the node's content index reads it).
 */
import { type JsonObject, replyTarget } from '../src/chain/content.ts';

type Rec = Record<string, unknown>;

const POST_TYPES = new Set(['Note', 'Article', 'Image']);

/** Whether an object type is one of a RUM post's. */
export function isRumPostType(type: unknown): boolean {
  return typeof type === 'string' && POST_TYPES.has(type);
}

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The RUM post of a payload: the payload itself for Note/Article/Image, or the object of a
 * `Create`/`Add` of one; null for anything else.
 */
export function rumPost(payload: Rec | null): Rec | null {
  if (!payload) return null;
  const type = payload.type;
  if (isRumPostType(type)) return payload;
  if ((type === 'Create' || type === 'Add') && isRec(payload.object)) {
    const inner = payload.object;
    return isRumPostType(inner.type) ? inner : null;
  }
  return null;
}

/** The trx id a RUM post replies to, read as the content index reads it. */
export function rumReplyTarget(post: Rec): string | null {
  return replyTarget(post as JsonObject);
}
