/**
 * The profiles authors give themselves in groups, for the bridges (BridgePort.profile): the name
 * and avatar that Mastodon and the gateway's pages show for a RUM key.
 *
 * A RUM app posts a profile as an ordinary POST; rum-app (src/hooks/useSubmitProfile.tsx) and
 * nft-bbs write
 *
 *   {"type":"Create","object":{"type":"Profile","name":"…",
 *     "image":[{"type":"Image","mediaType":"image/png","content":"<base64>"}],
 *     "describes":{"type":"Person","id":"<the author's Ethereum address>"}}}
 *
 * and read back, per group and author, the newest one whose `describes.id` is its sender: nobody
 * names anyone else. Here `describes.id` may also be the sender's RUM key; a profile without
 * `describes` speaks for its sender. The content index files these under object type `Profile`.
 *
 * Reads go down the index contents_group_sender_seq over one author's rows; the answer is kept
 * in memory per (group, author) and looked at again only once the group's head has moved, and
 * then read again only when the author itself has posted since (its newest rows only).
 */
import type { AuthorProfile } from '../../bridges/port.ts';
import { parseJsonPayload } from '../chain/apply.ts';
import { decodePubkey, ethAddress } from '../crypto/keys.ts';
import { fromPubkeyOrNull } from '../crypto/pubkey-format.ts';
import type { ProfileRow } from '../storage/chain-store.ts';

/** The longest name kept (longer ones are cut); the bridges shorten it further to show it. */
export const MAX_PROFILE_NAME_CHARS = 1000;
/** The largest avatar kept; a larger one is left out (the name still counts). */
export const MAX_AVATAR_BYTES = 256 * 1024;
/** Profile rows looked at per read: the newest valid one among them counts. */
const SCAN_ROWS = 20;
const MAX_ENTRIES = 10_000;
/** Names and avatars held in memory at most, roughly. */
const MAX_CACHED_BYTES = 32 * 1024 * 1024;

/** The image types an avatar may have, with the first bytes each must start with. */
const IMAGE_MAGIC: Record<string, (b: Uint8Array) => boolean> = {
  'image/png': (b) =>
    b.length > 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47,
  'image/jpeg': (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  'image/gif': (b) => b.length > 6 && Buffer.from(b.subarray(0, 4)).toString('latin1') === 'GIF8',
  'image/webp': (b) =>
    b.length > 12 &&
    Buffer.from(b.subarray(0, 4)).toString('latin1') === 'RIFF' &&
    Buffer.from(b.subarray(8, 12)).toString('latin1') === 'WEBP',
};

type Rec = Record<string, unknown>;

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a `describes.id` names the sender: its RUM key (either encoding) or its address. */
function namesSender(id: string, sender: Uint8Array): boolean {
  if (/^0x[0-9a-fA-F]{40}$/.test(id)) return id.toLowerCase() === ethAddress(sender).toLowerCase();
  const key = fromPubkeyOrNull(id);
  return key !== null && Buffer.from(key).equals(Buffer.from(sender));
}

function avatarOf(image: unknown): AuthorProfile['image'] {
  const first = Array.isArray(image) ? image[0] : image;
  if (!isRec(first) || typeof first.mediaType !== 'string' || typeof first.content !== 'string') {
    return null;
  }
  const mediaType = first.mediaType.trim().toLowerCase();
  const looksRight = IMAGE_MAGIC[mediaType];
  // base64 of MAX_AVATAR_BYTES is 4/3 as long; anything longer is too big before decoding.
  if (!looksRight || first.content.length > Math.ceil(MAX_AVATAR_BYTES / 3) * 4 + 64) return null;
  const text = first.content.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const content = new Uint8Array(Buffer.from(text, 'base64'));
  if (content.length > MAX_AVATAR_BYTES || !looksRight(content)) return null;
  return { mediaType, content };
}

/**
 * The profile a POST's payload gives its sender, or null when it is no profile of the sender
 * (not a Profile, one that describes someone else, or one with neither a name nor an avatar).
 */
export function profileOf(
  payload: unknown,
  senderPubkey: string,
): Pick<AuthorProfile, 'name' | 'image'> | null {
  if (!isRec(payload)) return null;
  const obj = payload.type === 'Profile' ? payload : payload.object;
  if (!isRec(obj) || obj.type !== 'Profile') return null;
  if (obj.describes !== undefined && obj.describes !== null) {
    const id = isRec(obj.describes) ? obj.describes.id : undefined;
    const sender = decodePubkey(senderPubkey);
    if (typeof id !== 'string' || !sender.ok || !namesSender(id, sender.value)) return null;
  }
  let name: string | null = null;
  if (typeof obj.name === 'string') {
    const trimmed = obj.name.trim();
    name = trimmed === '' ? null : trimmed.slice(0, MAX_PROFILE_NAME_CHARS);
  }
  const image = avatarOf(obj.image);
  return name === null && image === null ? null : { name, image };
}

export interface AuthorProfilesComponents {
  /** The block id of a group's head, or undefined when the node does not have the group. */
  head(groupId: string): number | undefined;
  lastSeqOfSender(groupId: string, senderPubkey: string): number;
  profileRows(
    groupId: string,
    senderPubkey: string,
    o: { afterSeq: number; limit: number; deletes: boolean },
  ): ProfileRow[];
}

interface Entry {
  /** The group's head when the entry was last known to be current. */
  head: number;
  /** The author's newest content row then. */
  seq: number;
  value: AuthorProfile | null;
  bytes: number;
}

/** Each author's current profile per group, read from the content index and kept in memory. */
export class AuthorProfiles {
  private readonly c: AuthorProfilesComponents;
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(c: AuthorProfilesComponents) {
    this.c = c;
  }

  get(groupId: string, pubkey: string): AuthorProfile | undefined {
    const head = this.c.head(groupId);
    if (head === undefined) return undefined;
    const key = `${groupId}\n${pubkey}`;
    const known = this.entries.get(key);
    if (known) this.drop(key, known);
    let entry = known;
    if (!entry || entry.head !== head) {
      const seq = this.c.lastSeqOfSender(groupId, pubkey);
      const value =
        entry && entry.seq === seq ? entry.value : this.read(groupId, pubkey, entry, seq);
      entry = { head, seq, value, bytes: 64 + (value?.name?.length ?? 0) * 2 };
      entry.bytes += value?.image?.content.length ?? 0;
    }
    this.keep(key, entry);
    return entry.value ?? undefined;
  }

  /** The newest valid profile among rows (newest first), or undefined. */
  private newest(rows: ProfileRow[], pubkey: string): AuthorProfile | undefined {
    for (const row of rows) {
      if (row.objectType !== 'Profile' || !row.data) continue;
      const p = profileOf(parseJsonPayload(row.data), pubkey);
      if (p) return { ...p, trxId: row.trxId, timestamp: row.timestamp };
    }
    return undefined;
  }

  /** The profile now: from the author's rows since the entry was read, or from all of them. */
  private read(
    groupId: string,
    pubkey: string,
    entry: Entry | undefined,
    seq: number,
  ): AuthorProfile | null {
    if (seq === 0) return null;
    if (entry) {
      const rows = this.c.profileRows(groupId, pubkey, {
        afterSeq: entry.seq,
        limit: SCAN_ROWS,
        deletes: true,
      });
      // A Delete may have taken the profile away: then everything is read again.
      if (!rows.some((r) => r.objectType === 'Delete')) {
        const found = this.newest(rows, pubkey);
        if (found) return found;
        if (rows.length < SCAN_ROWS) return entry.value;
      }
    }
    const rows = this.c.profileRows(groupId, pubkey, {
      afterSeq: 0,
      limit: SCAN_ROWS,
      deletes: false,
    });
    return this.newest(rows, pubkey) ?? null;
  }

  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  /** Kept as the most recently used; the least recently used go beyond the limits. */
  private keep(key: string, entry: Entry): void {
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    while (this.entries.size > MAX_ENTRIES || this.bytes > MAX_CACHED_BYTES) {
      const [oldKey, old] = this.entries.entries().next().value!;
      this.drop(oldKey, old);
    }
  }
}
