/**
 * POST payloads: ActivityStreams JSON, stored as Go's json.Marshal writes a map (keys sorted at
 * every level, <, > and & escaped), so a payload posted here has the bytes quorum would sign.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const MAX_JSON_DEPTH = 32;

export class ContentError extends Error {
  override name = 'ContentError';
}

function escapeString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** Go's encoding/json Marshal of a map[string]interface{} tree. */
export function goJsonMarshal(value: Json, depth = 0): string {
  if (depth > MAX_JSON_DEPTH) throw new ContentError('content is nested too deeply');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new ContentError('content has a non-finite number');
      return JSON.stringify(value);
    case 'string':
      return escapeString(value);
    default:
      break;
  }
  if (Array.isArray(value)) return `[${value.map((v) => goJsonMarshal(v, depth + 1)).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${escapeString(k)}:${goJsonMarshal(value[k] as Json, depth + 1)}`).join(',')}}`;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const ACTIVITY_TYPES = new Set([
  'Create',
  'Add',
  'Update',
  'Delete',
  'Like',
  'Dislike',
  'Announce',
  'Undo',
]);

/** What the content index records about a payload. */
export interface ContentFacts {
  objectType: string | null;
  inReplyTo: string | null;
  /** For a Delete: the trx id of the deleted post. */
  deletes: string | null;
}

function str(v: Json | undefined): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

/**
 * The trx id a post replies to (`inReplyTo`, or quorum's `inreplyto`: a string, or an object with
 * `trxid` or `id`), as the content index records it. Bridges read replies with it too, so what
 * they render agrees with the index.
 */
export function replyTarget(obj: JsonObject): string | null {
  const r = obj.inReplyTo ?? obj.inreplyto;
  if (typeof r === 'string') return str(r);
  if (isJsonObject(r)) return str(r.trxid) ?? str(r.id);
  return null;
}

export function contentFacts(payload: JsonObject): ContentFacts {
  const type = str(payload.type);
  const object = isJsonObject(payload.object) ? payload.object : null;
  if (type && ACTIVITY_TYPES.has(type) && object) {
    if (type === 'Delete')
      return { objectType: 'Delete', inReplyTo: null, deletes: str(object.id) };
    if (type === 'Create' || type === 'Add' || type === 'Update') {
      return { objectType: str(object.type), inReplyTo: replyTarget(object), deletes: null };
    }
    return { objectType: type, inReplyTo: str(object.id), deletes: null };
  }
  return { objectType: type, inReplyTo: replyTarget(payload), deletes: null };
}

/**
 * Checks an ActivityStreams payload a user posts: a JSON object with a string `type`; the common
 * objects and activities must carry the fields that make them meaningful.
 */
export function checkPostPayload(payload: unknown): JsonObject {
  if (!isJsonObject(payload)) throw new ContentError('content must be a JSON object');
  const type = payload.type;
  if (typeof type !== 'string' || type.length === 0 || type.length > 64) {
    throw new ContentError('content must have a string "type"');
  }
  const object = payload.object;
  const needsObject = ['Create', 'Add', 'Update', 'Delete', 'Like', 'Dislike', 'Announce', 'Undo'];
  if (needsObject.includes(type) && !isJsonObject(object)) {
    throw new ContentError(`a ${type} activity needs an "object"`);
  }
  const note =
    type === 'Create' || type === 'Add' || type === 'Update' ? (object as JsonObject) : payload;
  if (note.type === 'Note' || note.type === 'Article') {
    if (typeof note.content !== 'string' && typeof note.name !== 'string') {
      throw new ContentError(`a ${String(note.type)} needs "content" or "name"`);
    }
  }
  if (
    note.type === 'Image' &&
    note.url === undefined &&
    note.content === undefined &&
    note.image === undefined
  ) {
    throw new ContentError('an Image needs "url", "content" or "image"');
  }
  if (['Delete', 'Like', 'Dislike', 'Announce', 'Undo'].includes(type)) {
    if (typeof (object as JsonObject).id !== 'string') {
      throw new ContentError(`a ${type} activity needs "object.id" (the trx id it refers to)`);
    }
  }
  return payload;
}
