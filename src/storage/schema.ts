/**
 * The node's SQLite schema (drizzle). Migrations in migrations/ are generated from this file by
 * `npm run db:generate` and applied at start-up. Big integers (ns timestamps) are stored as
 * decimal text so they survive JavaScript's 53-bit numbers.
 */
import { sql } from 'drizzle-orm';
import {
  blob,
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';

const bytes = (name: string) => blob(name, { mode: 'buffer' });

export const groups = sqliteTable('groups', {
  groupId: text('group_id').primaryKey(),
  groupName: text('group_name').notNull(),
  ownerPubkey: text('owner_pubkey').notNull(),
  userPubkey: text('user_pubkey').notNull(),
  userEncryptPubkey: text('user_encrypt_pubkey').notNull().default(''),
  consensusType: integer('consensus_type').notNull(),
  encryptionType: integer('encryption_type').notNull(),
  cipherKey: text('cipher_key').notNull(),
  appKey: text('app_key').notNull(),
  genesis: bytes('genesis').notNull(),
  topBlockId: integer('top_block_id').notNull().default(0),
  topBlockHash: bytes('top_block_hash').notNull(),
  currentEpoch: integer('current_epoch').notNull().default(0),
  lastUpdated: text('last_updated').notNull(),
  joinedAt: text('joined_at').notNull(),
});

export const blocks = sqliteTable(
  'blocks',
  {
    groupId: text('group_id').notNull(),
    blockId: integer('block_id').notNull(),
    epoch: integer('epoch').notNull(),
    prevHash: bytes('prev_hash').notNull(),
    producerPubkey: text('producer_pubkey').notNull(),
    sudo: integer('sudo', { mode: 'boolean' }).notNull(),
    timestamp: text('timestamp').notNull(),
    blockHash: bytes('block_hash').notNull(),
    producerSign: bytes('producer_sign').notNull(),
    trxCount: integer('trx_count').notNull(),
    /** Other producers' signatures (WitnessList protobuf), for multi-producer groups. */
    witnesses: bytes('witnesses'),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.blockId] })],
);

/** Every trx committed in a block, with its exact protobuf bytes (Data still encrypted). */
export const trxs = sqliteTable(
  'trxs',
  {
    groupId: text('group_id').notNull(),
    trxId: text('trx_id').notNull(),
    blockId: integer('block_id').notNull(),
    position: integer('position').notNull(),
    type: integer('type').notNull(),
    senderPubkey: text('sender_pubkey').notNull(),
    timestamp: text('timestamp').notNull(),
    raw: bytes('raw').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.groupId, t.trxId] }),
    uniqueIndex('trxs_block_position').on(t.groupId, t.blockId, t.position),
  ],
);

/** Signed trxs accepted by this node and not yet in a block: the persistent mempool. */
export const pendingTrxs = sqliteTable(
  'pending_trxs',
  {
    groupId: text('group_id').notNull(),
    trxId: text('trx_id').notNull(),
    raw: bytes('raw').notNull(),
    receivedAt: integer('received_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.trxId] })],
);

/** The content index: POST trxs in chain order, decrypted when this node may read them. */
export const contents = sqliteTable(
  'contents',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    groupId: text('group_id').notNull(),
    trxId: text('trx_id').notNull(),
    senderPubkey: text('sender_pubkey').notNull(),
    timestamp: text('timestamp').notNull(),
    blockId: integer('block_id').notNull(),
    /** The trx's place in its block: with block_id, the key to its row in trxs. */
    position: integer('position'),
    data: bytes('data'),
    objectType: text('object_type'),
    inReplyTo: text('in_reply_to'),
    deleted: integer('deleted', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [
    // Found by trx id through trxs (its primary key gives block and position): an index on the
    // random trx ids here too would double the pages a block's commit writes.
    uniqueIndex('contents_group_block_position').on(t.groupId, t.blockId, t.position),
    index('contents_group_seq').on(t.groupId, t.seq),
    index('contents_group_sender_seq').on(t.groupId, t.senderPubkey, t.seq),
  ],
);

/** Chain config (quorum's CHAIN_CONFIG trx): trx auth mode per trx type. */
export const trxAuthModes = sqliteTable(
  'trx_auth_modes',
  {
    groupId: text('group_id').notNull(),
    trxType: integer('trx_type').notNull(),
    mode: integer('mode').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.trxType] })],
);

/** Chain config allow and deny lists (list 0 = allow, 1 = deny, as quorum's AuthListType). */
export const trxRules = sqliteTable(
  'trx_rules',
  {
    groupId: text('group_id').notNull(),
    list: integer('list').notNull(),
    pubkey: text('pubkey').notNull(),
    trxTypes: text('trx_types', { mode: 'json' }).$type<number[]>().notNull(),
    ownerPubkey: text('owner_pubkey').notNull(),
    ownerSign: text('owner_sign').notNull(),
    timestamp: text('timestamp').notNull(),
    memo: text('memo').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.list, t.pubkey] })],
);

export const appConfigs = sqliteTable(
  'app_configs',
  {
    groupId: text('group_id').notNull(),
    name: text('name').notNull(),
    type: integer('type').notNull(),
    value: text('value').notNull(),
    ownerPubkey: text('owner_pubkey').notNull(),
    ownerSign: text('owner_sign').notNull(),
    memo: text('memo').notNull(),
    timestamp: text('timestamp').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.name] })],
);

/**
 * API tokens issued by this node, by the SHA-256 of the token: the token itself is not stored,
 * and the HS256 key lives in the keystore. `id` is what the token list shows and revoke accepts.
 */
export const apiTokens = sqliteTable(
  'api_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    id: text('id').notNull(),
    name: text('name').notNull(),
    role: text('role').notNull(),
    groupId: text('group_id').notNull(),
    expiresAt: integer('expires_at').notNull(),
    revoked: integer('revoked', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [uniqueIndex('api_tokens_id').on(t.id)],
);

/** Peers this node has met, so that it can find the network again without a bootstrap node. */
export const peerCache = sqliteTable(
  'peer_cache',
  {
    peerId: text('peer_id').primaryKey(),
    addrs: text('addrs', { mode: 'json' }).$type<string[]>().notNull(),
    lastSeen: integer('last_seen').notNull(),
  },
  (t) => [index('peer_cache_last_seen').on(t.lastSeen)],
);

/** quorum's announced users and producers (ANNOUNCE trxs), by group and signing key. */
export const announces = sqliteTable(
  'announces',
  {
    groupId: text('group_id').notNull(),
    signPubkey: text('sign_pubkey').notNull(),
    type: integer('type').notNull(),
    encryptPubkey: text('encrypt_pubkey').notNull(),
    announcerSign: text('announcer_sign').notNull(),
    result: integer('result').notNull(),
    memo: text('memo').notNull(),
    timestamp: text('timestamp').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.type, t.signPubkey] })],
);

/** Members approved by the owner (USER trxs): in a private group, the recipients of posts. */
export const groupUsers = sqliteTable(
  'group_users',
  {
    groupId: text('group_id').notNull(),
    userPubkey: text('user_pubkey').notNull(),
    encryptPubkey: text('encrypt_pubkey').notNull(),
    ownerSign: text('owner_sign').notNull(),
    memo: text('memo').notNull(),
    timestamp: text('timestamp').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userPubkey] })],
);

/** Producers approved by the owner (PRODUCER trxs); the owner is always a producer too. */
export const producers = sqliteTable(
  'producers',
  {
    groupId: text('group_id').notNull(),
    producerPubkey: text('producer_pubkey').notNull(),
    ownerSign: text('owner_sign').notNull(),
    memo: text('memo').notNull(),
    timestamp: text('timestamp').notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.producerPubkey] })],
);

/**
 * A producer's promise and lock at each height (src/chain/poa.ts), written before any message that
 * depends on them leaves the node: the block it last voted for (hex, '' for none) and in which
 * round, and the round below which it no longer votes. A producer that restarts keeps to them.
 */
export const producerVotes = sqliteTable(
  'producer_votes',
  {
    groupId: text('group_id').notNull(),
    blockId: integer('block_id').notNull(),
    blockHash: text('block_hash').notNull(),
    lockedRound: integer('locked_round').notNull().default(0),
    promisedRound: integer('promised_round').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.blockId] })],
);

/**
 * Groups this node's operator exposes to bridges (src/gateway/exposure.ts). `handle` is the
 * group's name on every bridge (`@handle@host` on ActivityPub), unique on the node.
 */
export const bridgeExposures = sqliteTable(
  'bridge_exposures',
  {
    groupId: text('group_id').primaryKey(),
    handle: text('handle').notNull(),
    activitypub: integer('activitypub', { mode: 'boolean' }).notNull(),
    nostr: integer('nostr', { mode: 'boolean' }).notNull(),
    bots: integer('bots', { mode: 'boolean' }).notNull(),
    /** Why bridging stopped on its own (the owner's app config `bridging` = `off`), or null. */
    suspended: text('suspended'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('bridge_exposures_handle').on(t.handle)],
);

/**
 * Where each consumer of the bridge port's committed stream is, per group: the last item it
 * acknowledged, by its place in the chain (block, position), which a reindex does not change.
 */
export const bridgeCursors = sqliteTable(
  'bridge_cursors',
  {
    consumer: text('consumer').notNull(),
    groupId: text('group_id').notNull(),
    blockId: integer('block_id').notNull(),
    position: integer('position').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.consumer, t.groupId] })],
);

/**
 * Items that came from another network, both ways unique: an item retried by its network never
 * makes a second trx, and a trx is never sent back to the network it came from.
 */
export const bridgeOrigins = sqliteTable(
  'bridge_origins',
  {
    network: text('network').notNull(),
    externalId: text('external_id').notNull(),
    groupId: text('group_id').notNull(),
    trxId: text('trx_id').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.network, t.externalId] }),
    uniqueIndex('bridge_origins_trx').on(t.groupId, t.trxId),
  ],
);

/**
 * Outside identities (an ActivityPub actor, a Nostr key, a bot) that post through the gateway:
 * each has its own secp256k1 key, kept in the keystore under `key_name`.
 */
export const bridgeIdentities = sqliteTable(
  'bridge_identities',
  {
    network: text('network').notNull(),
    externalId: text('external_id').notNull(),
    keyName: text('key_name').notNull(),
    pubkey: text('pubkey').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.network, t.externalId] }),
    uniqueIndex('bridge_identities_pubkey').on(t.pubkey),
  ],
);

/**
 * The embedded delivery queue (src/queue/embedded.ts). `key` is the job's idempotency key;
 * `status` is pending (waiting for run_at), active (leased until lease_until), done or failed
 * (the dead-letter list). Payloads are JSON.
 */
export const deliveryJobs = sqliteTable(
  'delivery_jobs',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    key: text('key').notNull(),
    kind: text('kind').notNull(),
    destination: text('destination').notNull(),
    payload: text('payload').notNull(),
    status: text('status').notNull(),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    runAt: integer('run_at').notNull(),
    leaseUntil: integer('lease_until'),
    lastError: text('last_error'),
    createdAt: integer('created_at').notNull(),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    uniqueIndex('delivery_jobs_key').on(t.key),
    index('delivery_jobs_status_run_at').on(t.status, t.runAt),
    index('delivery_jobs_destination_status').on(t.destination, t.status),
  ],
);

/**
 * A bridge's own small state (followers, remembered server preferences, caches), by bridge and
 * key (JSON text), with an optional expiry in ms since the epoch. Bridges reach it through the
 * port's kv(); nothing else reads it.
 */
export const bridgeKv = sqliteTable(
  'bridge_kv',
  {
    bridge: text('bridge').notNull(),
    key: text('key').notNull(),
    value: text('value').notNull(),
    expiresAt: integer('expires_at'),
  },
  (t) => [primaryKey({ columns: [t.bridge, t.key] }), index('bridge_kv_expires').on(t.expiresAt)],
);

// ---------------------------------------------------------------------------------------------
// Nostr relay (bridges/nostr/store.ts). Only that module reads or writes these tables; its
// full-text index (nostr_search, FTS5) and the triggers that keep it are in a custom migration.
// ---------------------------------------------------------------------------------------------

/**
 * The Nostr events the relay keeps, one row each, as received (validated; `tags` is their JSON
 * text). `seq` is the row's number (the full-text index and nostr_tags point at it). `d_tag` is
 * set for replaceable events ('') and addressable ones (their `d`), so that one version of each
 * is kept; `expires_at` is NIP-40's expiration, in seconds.
 */
export const nostrEvents = sqliteTable(
  'nostr_events',
  {
    seq: integer('seq').primaryKey(),
    id: text('id').notNull(),
    pubkey: text('pubkey').notNull(),
    createdAt: integer('created_at').notNull(),
    kind: integer('kind').notNull(),
    tags: text('tags').notNull(),
    content: text('content').notNull(),
    sig: text('sig').notNull(),
    dTag: text('d_tag'),
    expiresAt: integer('expires_at'),
  },
  (t) => [
    uniqueIndex('nostr_events_id').on(t.id),
    index('nostr_events_created').on(t.createdAt),
    index('nostr_events_kind').on(t.kind, t.createdAt),
    index('nostr_events_pubkey').on(t.pubkey, t.createdAt),
    index('nostr_events_pubkey_kind').on(t.pubkey, t.kind, t.createdAt),
    uniqueIndex('nostr_events_replace')
      .on(t.pubkey, t.kind, t.dTag)
      .where(sql`${t.dTag} IS NOT NULL`),
    index('nostr_events_expires').on(t.expiresAt).where(sql`${t.expiresAt} IS NOT NULL`),
  ],
);

/**
 * The single-letter tags of stored events (first value only, as NIP-01 filters them), with the
 * event's created_at copied so that a `#x` filter reads newest first from the key alone.
 */
export const nostrTags = sqliteTable(
  'nostr_tags',
  {
    eventSeq: integer('event_seq')
      .notNull()
      .references(() => nostrEvents.seq, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    value: text('value').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.name, t.value, t.createdAt, t.eventSeq] }),
    index('nostr_tags_event').on(t.eventSeq),
  ],
);

/**
 * NIP-09 tombstones: what a deletion by `pubkey` removed, so it cannot be added again. `target`
 * is an event id (`e` tag) or an address `kind:pubkey:d` (`a` tag); for an address, versions
 * created at or before `until` (the deletion's created_at) stay deleted.
 */
export const nostrTombstones = sqliteTable(
  'nostr_tombstones',
  {
    target: text('target').notNull(),
    pubkey: text('pubkey').notNull(),
    until: integer('until').notNull(),
  },
  (t) => [primaryKey({ columns: [t.target, t.pubkey] })],
);

// ---------------------------------------------------------------------------------------------
// Bot gateway (bridges/bots/). Only bridges/bots/store.ts reads or writes these tables.
// ---------------------------------------------------------------------------------------------

/**
 * Bots the operator made (`POST /api/v1/bots`). `token_hash` is the SHA-256 of the token's
 * secret part (the token itself is shown once); `scopes` a JSON array (`read`, `post`);
 * `acked` the highest update id the bot confirmed (getUpdates with a higher offset). The webhook
 * columns hold what setWebhook set (`webhook_kind` `telegram` or `standard`).
 */
export const bots = sqliteTable('bots', {
  botId: integer('bot_id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull(),
  scopes: text('scopes').notNull(),
  createdAt: integer('created_at').notNull(),
  revokedAt: integer('revoked_at'),
  acked: integer('acked').notNull().default(0),
  webhookUrl: text('webhook_url'),
  webhookKind: text('webhook_kind'),
  webhookSecret: text('webhook_secret'),
  webhookMaxConnections: integer('webhook_max_connections'),
  allowedUpdates: text('allowed_updates'),
  webhookDisabled: text('webhook_disabled'),
  lastErrorAt: integer('last_error_at'),
  lastErrorMessage: text('last_error_message'),
  /** Whether the bot's updates go to its Redis streams (bridges/bots/redis.ts). */
  redisStreams: integer('redis_streams', { mode: 'boolean' }).notNull().default(false),
  /** The highest update id added to the bot's Redis updates stream (its durable cursor). */
  redisPushed: integer('redis_pushed').notNull().default(0),
});

/** The groups a bot reads and posts in, each a chat of the bot. */
export const botGroups = sqliteTable(
  'bot_groups',
  {
    botId: integer('bot_id').notNull(),
    groupId: text('group_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.botId, t.groupId] }), index('bot_groups_group').on(t.groupId)],
);

/** A group's Telegram chat id (negative, as a supergroup's), the same for every bot. */
export const botChats = sqliteTable('bot_chats', {
  chatId: integer('chat_id').primaryKey(),
  groupId: text('group_id').notNull().unique(),
});

/** Telegram user ids (positive) of the RUM keys bots see as authors. */
export const botUsers = sqliteTable('bot_users', {
  userId: integer('user_id').primaryKey({ autoIncrement: true }),
  pubkey: text('pubkey').notNull().unique(),
});

/** Message ids: per chat, in the order the gateway first saw each trx (committed or sent). */
export const botMessages = sqliteTable(
  'bot_messages',
  {
    chatId: integer('chat_id').notNull(),
    messageId: integer('message_id').notNull(),
    trxId: text('trx_id').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.chatId, t.messageId] }),
    uniqueIndex('bot_messages_trx').on(t.chatId, t.trxId),
  ],
);

/**
 * Each bot's event log: every committed item of its groups, as the Telegram update (without
 * its `update_id`, which is `update_id` here) in `payload`. Every delivery mode reads it.
 */
export const botUpdates = sqliteTable(
  'bot_updates',
  {
    botId: integer('bot_id').notNull(),
    updateId: integer('update_id').notNull(),
    kind: text('kind').notNull(),
    groupId: text('group_id').notNull(),
    trxId: text('trx_id').notNull(),
    payload: text('payload').notNull(),
    createdAt: integer('created_at').notNull(),
    /**
     * Its webhook delivery (bridges/bots/webhooks.ts): null while not delivered, 1 delivered
     * (a 2xx), 2 failed for good (the queue's failed list holds the job).
     */
    webhookState: integer('webhook_state'),
  },
  (t) => [
    primaryKey({ columns: [t.botId, t.updateId] }),
    index('bot_updates_trx').on(t.botId, t.trxId),
    index('bot_updates_created').on(t.createdAt),
  ],
);

/**
 * Idempotent sends: a bot's request key (its Idempotency-Key, or the hash of a retried
 * Telegram request) → the answer it got, and the trx it made. `request` is the hash of the
 * method and parameters the key was first used with (null on rows from before it was kept).
 */
export const botSends = sqliteTable(
  'bot_sends',
  {
    botId: integer('bot_id').notNull(),
    key: text('key').notNull(),
    trxId: text('trx_id'),
    response: text('response').notNull(),
    request: text('request'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.botId, t.key] }), index('bot_sends_created').on(t.createdAt)],
);

/**
 * The outcome of each trx a bot sent (bridges/bots/outcomes.ts): open (`settled_at` null) from
 * its admission until it is committed or failed, then `status` `committed` or `failed` with the
 * `reason`. `expires_at` (ms) is when producers stop taking the trx (its Expired).
 */
export const botOutcomes = sqliteTable(
  'bot_outcomes',
  {
    botId: integer('bot_id').notNull(),
    trxId: text('trx_id').notNull(),
    groupId: text('group_id').notNull(),
    sentAt: integer('sent_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    settledAt: integer('settled_at'),
    status: text('status'),
    reason: text('reason'),
  },
  (t) => [primaryKey({ columns: [t.botId, t.trxId] }), index('bot_outcomes_open').on(t.settledAt)],
);

/**
 * A bot's webhook endpoint as its delivery knows it (bridges/bots/webhooks.ts): `gen` names the
 * endpoint, new each time its kind, URL or secret changes (every queued job carries it);
 * `fingerprint` is what it was made from; `enqueued` the highest update id queued for it.
 */
export const botWebhooks = sqliteTable('bot_webhooks', {
  botId: integer('bot_id').primaryKey(),
  gen: text('gen').notNull(),
  fingerprint: text('fingerprint').notNull(),
  enqueued: integer('enqueued').notNull().default(0),
});

/**
 * Endpoints replaced, deleted or disabled (a 410): their queued jobs must not deliver. Kept 30
 * days (longer than any retry schedule); mirrored into Redis for `rum worker` processes.
 */
export const botWebhookRevoked = sqliteTable(
  'bot_webhook_revoked',
  {
    gen: text('gen').primaryKey(),
    botId: integer('bot_id').notNull(),
    revokedAt: integer('revoked_at').notNull(),
  },
  (t) => [index('bot_webhook_revoked_at').on(t.revokedAt)],
);
