/**
 * Where everything of the ActivityPub bridge lives on the gateway, and how its actors are named.
 * Every id is under the gateway's public origin (`--origin`), so ids stay stable behind a proxy.
 *
 * - A group exposed on ActivityPub is the `Group` actor `g.<handle>` (`@<handle>@<host>`).
 * - Each RUM author is the `Person` actor `u_<hex of its 33-byte key>`: lowercase, because
 *   Mastodon matches handles without case, and reversible to the RUM key.
 * - The instance actor (`__instance__`, at /ap/actor) signs the gateway's own fetches.
 * - Each trx has one URL, /ap/posts/<trx id>: its Note or Article, or the activity (Like, Delete,
 *   Update) it is; a post's Create is at /ap/posts/<trx id>/create, the group's Announce of it at
 *   /ap/actors/g.<handle>/announces/<trx id> (the boost Mastodon shows), and the group's FEP-1b12
 *   Announce of the trx's activity (the Create, Like, Delete or Update embedded, what Lemmy and
 *   its kin read) at /ap/actors/g.<handle>/announces/<trx id>/activity.
 */

export const INSTANCE = '__instance__';
export const ACTOR_PATH = '/ap/actors/{identifier}';
export const INSTANCE_PATH = '/ap/actor';
export const INBOX_PATH = '/ap/actors/{identifier}/inbox';
export const SHARED_INBOX_PATH = '/ap/inbox';
export const OUTBOX_PATH = '/ap/actors/{identifier}/outbox';
export const FOLLOWERS_PATH = '/ap/actors/{identifier}/followers';
export const POST_PATH = '/ap/posts/{id}';
export const CREATE_PATH = '/ap/posts/{id}/create';
export const ANNOUNCE_PATH = '/ap/actors/{identifier}/announces/{id}';
export const ANNOUNCE_ACTIVITY_PATH = '/ap/actors/{identifier}/announces/{id}/activity';

const GROUP_PREFIX = 'g.';
const AUTHOR_PREFIX = 'u_';

export function groupIdentifier(handle: string): string {
  return GROUP_PREFIX + handle;
}

/** The handle of a group identifier, or null. */
export function handleOf(identifier: string): string | null {
  return identifier.startsWith(GROUP_PREFIX) ? identifier.slice(GROUP_PREFIX.length) : null;
}

/** A RUM key (quorum's base64url of the 33-byte compressed key) → its Person identifier. */
export function authorIdentifier(pubkey: string): string {
  return AUTHOR_PREFIX + Buffer.from(pubkey, 'base64url').toString('hex');
}

/** The RUM key of a Person identifier, or null when it is not one. */
export function pubkeyOf(identifier: string): string | null {
  if (!identifier.startsWith(AUTHOR_PREFIX)) return null;
  const hex = identifier.slice(AUTHOR_PREFIX.length);
  if (!/^0[23][0-9a-f]{64}$/.test(hex)) return null;
  return Buffer.from(hex, 'hex').toString('base64url');
}

/** The URLs of one gateway, from its public origin. */
export class ApUrls {
  readonly origin: string;

  constructor(origin: string) {
    this.origin = origin.replace(/\/+$/, '');
  }

  private url(path: string): URL {
    return new URL(path, `${this.origin}/`);
  }

  actor(identifier: string): URL {
    return identifier === INSTANCE
      ? this.url(INSTANCE_PATH)
      : this.url(ACTOR_PATH.replace('{identifier}', encodeURIComponent(identifier)));
  }

  group(handle: string): URL {
    return this.actor(groupIdentifier(handle));
  }

  author(pubkey: string): URL {
    return this.actor(authorIdentifier(pubkey));
  }

  followers(identifier: string): URL {
    return this.url(FOLLOWERS_PATH.replace('{identifier}', encodeURIComponent(identifier)));
  }

  post(trxId: string): URL {
    return this.url(POST_PATH.replace('{id}', encodeURIComponent(trxId)));
  }

  create(trxId: string): URL {
    return this.url(CREATE_PATH.replace('{id}', encodeURIComponent(trxId)));
  }

  /** The group's boost of a post (Announce of the Note by id). */
  announce(handle: string, trxId: string): URL {
    return this.url(
      ANNOUNCE_PATH.replace('{identifier}', encodeURIComponent(groupIdentifier(handle))).replace(
        '{id}',
        encodeURIComponent(trxId),
      ),
    );
  }

  /** The group's FEP-1b12 Announce of a trx's activity (a different activity from the boost). */
  announceActivity(handle: string, trxId: string): URL {
    return this.url(
      ANNOUNCE_ACTIVITY_PATH.replace(
        '{identifier}',
        encodeURIComponent(groupIdentifier(handle)),
      ).replace('{id}', encodeURIComponent(trxId)),
    );
  }

  /** The trx id of one of this gateway's post URLs, or null. */
  trxOf(url: string | URL): string | null {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return null;
    }
    if (u.origin !== new URL(this.origin).origin) return null;
    const m = /^\/ap\/posts\/([^/]+)$/.exec(u.pathname);
    return m ? decodeURIComponent(m[1]!) : null;
  }

  /** The human page of a group (what Mastodon links to). */
  groupPage(handle: string): URL {
    return this.url(`/@${encodeURIComponent(handle)}`);
  }

  /** The human page of a post. */
  postPage(trxId: string): URL {
    return this.url(`/p/${encodeURIComponent(trxId)}`);
  }
}
