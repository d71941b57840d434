/**
 * The one typed configuration of a node. Defaults < config file < RUM_* environment < flags;
 * every value is validated here, and every limit carries its unit in its name.
 */
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);

export const ConfigSchema = z
  .object({
    peerName: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .default('peer')
      .describe('name of this peer; data lives under <datadir>/<peername>'),
    configDir: z.string().min(1).default('./config').describe('directory for configuration files'),
    dataDir: z.string().min(1).default('./data').describe('directory for the database'),
    keystoreDir: z
      .string()
      .min(1)
      .default('./keystore')
      .describe('directory of the encrypted keystore'),
    keystorePassword: z.string().optional().describe('keystore password (or RUM_KSPASSWD)'),
    apiHost: z.string().min(1).default('127.0.0.1').describe('address the HTTP API binds to'),
    apiPort: port.default(8000).describe('port of the HTTP API (0 picks a free one)'),
    gatewayHost: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('address the public gateway (bridges) binds to'),
    gatewayPort: port.default(8080).describe('port of the gateway (0 picks a free one)'),
    origin: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'public base URL of the gateway, used in every id and link a bridge makes ' +
          '(default http://<gatewayhost>:<gatewayport>)',
      ),
    gatewayTrustProxy: z
      .boolean()
      .default(false)
      .describe(
        'a reverse proxy on this host (127.0.0.1, ::1) fronts the gateway: take the client ' +
          'address from its X-Forwarded-For',
      ),
    allowPrivateAddress: z
      .boolean()
      .default(false)
      .describe(
        'let bridges fetch from and deliver to loopback, private, link-local and unique-local ' +
          'addresses (tests and private networks only)',
      ),
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe(
        'Redis for the delivery queue (BullMQ); without it the queue is embedded in SQLite',
      ),
    runDeliveries: z
      .boolean()
      .default(true)
      .describe(
        'with --redisurl: whether the node runs deliveries itself, or only queues them for ' +
          '`rum worker` processes (the embedded queue always runs its own)',
      ),
    queueName: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,100}$/)
      .default('rum-deliveries')
      .describe(
        'name of the BullMQ delivery queue: nodes and workers sharing one use the same name',
      ),
    botStreamPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:_.-]{1,100}$/)
      .default('rum:bot')
      .describe(
        "with --redisurl: prefix of the bots' Redis streams (`<prefix>:<bot_id>:updates`, " +
          '`…:requests`, `…:replies`); nodes sharing one Redis each need their own',
      ),
    listen: z.array(z.string()).default([]).describe('libp2p listen multiaddrs'),
    peers: z.array(z.string()).default([]).describe('bootstrap peer multiaddrs'),
    enableNat: z
      .boolean()
      .default(true)
      .describe(
        'ask the home router (UPnP IGD) to forward the listen port; IPv4 LAN listeners only',
      ),
    autoRelay: z
      .boolean()
      .default(true)
      .describe('hold a circuit relay reservation, so peers can reach this node behind a NAT'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    logFile: z.string().optional().describe('write logs to this file instead of stdout'),
    networkName: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .default('staten'),
    dbSync: z
      .enum(['full', 'normal'])
      .default('full')
      .describe(
        'SQLite synchronous mode (WAL either way): full fsyncs every commit before it returns, ' +
          'so it survives power loss; normal survives a killed process but a power loss or ' +
          'kernel crash may lose the last commits',
      ),
    apiRequireTokenOnLoopback: z
      .boolean()
      .default(false)
      .describe('require a token even from loopback callers'),
    limits: z
      .object({
        maxTrxDataBytes: z
          .number()
          .int()
          .positive()
          .max(1 << 20)
          .default(300 * 1024),
        maxContentBytes: z
          .number()
          .int()
          .positive()
          .max(1 << 20)
          .default(200 * 1024),
        maxTrxPerBlock: z.number().int().positive().max(5000).default(500),
        maxBlockBytes: z
          .number()
          .int()
          .positive()
          .max(8 << 20)
          .default(900 * 1024),
        blockIntervalMs: z.number().int().min(10).max(60_000).default(200),
        mempoolMaxTrx: z.number().int().positive().default(100_000),
        trxTtlMs: z
          .number()
          .int()
          .positive()
          .default(24 * 3600 * 1000),
        maxRequestBodyBytes: z
          .number()
          .int()
          .positive()
          .max(16 << 20)
          .default(1 << 20),
        maxContentPageSize: z.number().int().positive().max(10_000).default(1000),
        trxRebroadcastMs: z.number().int().min(100).max(600_000).default(5000),
        resyncIntervalMs: z.number().int().min(100).max(3_600_000).default(20_000),
        syncBatchBlocks: z.number().int().min(1).max(200).default(100),
        producerRoundTimeoutMs: z.number().int().min(100).max(600_000).default(3000),
        gatewayBodyBytes: z
          .number()
          .int()
          .positive()
          .max(16 << 20)
          .default(1 << 20),
        gatewayRateLimitPerMinute: z.number().int().positive().max(1_000_000).default(600),
        gatewayRequestTimeoutMs: z.number().int().min(1000).max(600_000).default(30_000),
        deliveryTimeoutMs: z.number().int().min(100).max(600_000).default(15_000),
        deliveryMaxAttempts: z.number().int().min(1).max(100).default(12),
        deliveryBackoffBaseMs: z.number().int().min(10).max(3_600_000).default(5_000),
        deliveryBackoffMaxMs: z
          .number()
          .int()
          .min(10)
          .max(7 * 24 * 3_600_000)
          .default(6 * 3_600_000),
        deliveryConcurrency: z.number().int().min(1).max(10_000).default(64),
        deliveryPerDestination: z.number().int().min(1).max(1000).default(8),
        // The Nostr relay on the gateway (bridges/nostr/relay.ts); NIP-11 `limitation` says these.
        nostrMaxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .max(16 << 20)
          .default(256 * 1024)
          .describe('largest WebSocket frame a Nostr client may send (larger: closed with 1009)'),
        nostrMaxContentChars: z
          .number()
          .int()
          .min(1)
          .max(16 << 20)
          .default(64 * 1024)
          .describe('largest `content` of a Nostr event, in characters (UTF-16 code units)'),
        nostrMaxEventTags: z.number().int().min(1).max(100_000).default(2000),
        nostrMaxSubscriptions: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(20)
          .describe('open REQ subscriptions per Nostr connection'),
        nostrMaxFilters: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(10)
          .describe('filters in one REQ or COUNT'),
        nostrMaxFilterValues: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(1000)
          .describe('values in one list of a filter (ids, authors, kinds, #x)'),
        nostrMaxLimit: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(500)
          .describe(
            'stored events one filter of a REQ returns at most (a larger limit is clamped)',
          ),
        nostrEventsPerSecond: z
          .number()
          .min(0.1)
          .max(100_000)
          .default(20)
          .describe('EVENTs a Nostr connection may send per second (bursts of as many)'),
        nostrMaxConnections: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(2000)
          .describe('open Nostr connections on the gateway, all clients together'),
        nostrMaxFutureSeconds: z
          .number()
          .int()
          .min(0)
          .max(365 * 24 * 3600)
          .default(900)
          .describe('how far in the future an event created_at may be'),
        // Publishing to outside relays (bridges/nostr/publisher.ts, relay-client.ts); the wait
        // for a relay's OK is deliveryTimeoutMs.
        nostrPublishMaxRelays: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(10)
          .describe('outside relays one group may publish to'),
        nostrPublishMaxAnswerBytes: z
          .number()
          .int()
          .min(1024)
          .max(16 << 20)
          .default(64 * 1024)
          .describe('largest frame read from an outside relay (larger: the connection is closed)'),
        nostrPublishIdleMs: z
          .number()
          .int()
          .min(100)
          .max(3_600_000)
          .default(60_000)
          .describe('a connection to an outside relay with nothing to send is closed after this'),
        // Bot gateway (bridges/bots/).
        botUpdatesRetentionHours: z
          .number()
          .min(1)
          .max(24 * 365)
          .default(168)
          .describe("hours a bot's updates are kept, delivered or not (then pruned)"),
        botRequestsPerMinute: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .default(6000)
          .describe("requests a bot may make to the gateway's Bot API a minute (any method)"),
        botPostsPerSecond: z
          .number()
          .min(0.1)
          .max(100_000)
          .default(30)
          .describe('posts a bot may make per second (bursts of as many)'),
        botGroupPostsPerSecond: z
          .number()
          .min(0.1)
          .max(100_000)
          .default(20)
          .describe('posts all bots together may make in one group per second (bursts of as many)'),
        botMaxDelayMs: z
          .number()
          .int()
          .min(0)
          .max(60_000)
          .default(2_000)
          .describe('a post over the rate waits up to this long; past it, 429 with retry_after'),
        botRetryWindowMs: z
          .number()
          .int()
          .min(0)
          .max(3_600_000)
          .default(10_000)
          .describe('the same Telegram request again within this is a retry: same answer, no post'),
        botStreamMaxLen: z
          .number()
          .int()
          .min(100)
          .max(100_000_000)
          .default(100_000)
          .describe(
            "entries kept in each bot's Redis streams (XADD MAXLEN ~): older ones are trimmed, " +
              'read or not',
          ),
        botSendTimeoutMs: z
          .number()
          .int()
          .min(1000)
          .max(30 * 24 * 3600_000)
          .default(3_600_000)
          .describe(
            "a bot's post expires this long after it is sent (its trx's Expired: producers " +
              'refuse it after); not committed by then, it fails (rum_send_result "failed")',
          ),
        botSendGraceMs: z
          .number()
          .int()
          .min(0)
          .max(3_600_000)
          .default(10_000)
          .describe(
            "how long after a bot's post expired its failure waits for a block made before the " +
              'expiry to arrive',
          ),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
