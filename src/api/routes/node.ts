/** Node and network info, Prometheus metrics and quorum's small tools. */
import type { Libp2p } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { FastifyInstance } from 'fastify';
import { decodeSeedUrl, SeedError } from '../../chain/seed.ts';
import { toHex } from '../../crypto/encoding.ts';
import { ethAddress, libp2pPubkeyString } from '../../crypto/keys.ts';
import { fromPubkeyOrNull } from '../../crypto/pubkey-format.ts';
import { signatureBackend } from '../../crypto/sign.ts';
import { BadRequestError } from '../../errors.ts';
import { dialUpgrading, isPublicDirect, isRelayed } from '../../p2p/upgrade.ts';
import { NODE_VERSION } from '../../node.ts';
import type { ApiComponents } from '../context.ts';

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** quorum's `peers`: connected peer ids under each protocol they speak. */
/** quorum's nat_type: Public with a public address, Private behind a relay, else Unknown. */
export function natType(addrs: string[]): 'Public' | 'Private' | 'Unknown' {
  if (addrs.some(isPublicDirect)) return 'Public';
  if (addrs.some(isRelayed)) return 'Private';
  return 'Unknown';
}

export async function peersByProtocol(p2p: Libp2p): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const peer of p2p.getPeers()) {
    let protocols: string[] = [];
    try {
      protocols = (await p2p.peerStore.get(peer)).protocols;
    } catch {
      // identified later; the peer is listed once its protocols are known
    }
    for (const proto of protocols) {
      out[proto] ??= [];
      out[proto].push(peer.toString());
    }
  }
  return out;
}

export function registerNodeRoutes(app: FastifyInstance, { node, gateway }: ApiComponents): void {
  app.get(
    '/api/v1/node',
    { schema: { tags: ['Node'], summary: 'Node info (quorum fields)' } },
    async () => {
      const mem = process.memoryUsage();
      return {
        node_id: node.peerId,
        node_publickey: libp2pPubkeyString(node.nodePublicKey),
        // As quorum: online when connected to at least one peer.
        node_status: node.p2p.getPeers().length > 0 ? 'NODE_ONLINE' : 'NODE_OFFLINE',
        node_type: 'peer',
        node_version: `${NODE_VERSION} - rum-node (${signatureBackend})`,
        peers: await peersByProtocol(node.p2p),
        // The public listener of the bridges, as bound, and the origin they use in ids.
        gateway_url: gateway?.url ?? '',
        gateway_origin: gateway?.origin ?? '',
        mem: {
          sys: humanBytes(mem.rss),
          heap_sys: humanBytes(mem.heapTotal),
          heap_alloc: humanBytes(mem.heapUsed),
          heap_inuse: humanBytes(mem.heapUsed),
          stack_sys: '0 B',
          stack_inuse: '0 B',
          num_gc: 0,
        },
      };
    },
  );

  app.get('/api/v1/network', { schema: { tags: ['Node'], summary: 'Network info' } }, async () => {
    const addrs = node.p2p.getMultiaddrs().map((a) => a.toString());
    return {
      peer_id: node.peerId,
      eth_addr: ethAddress(node.nodePublicKey),
      nat_type: natType(addrs),
      nat_enabled: true,
      addrs,
      groups: node.groups().map((g) => ({
        GroupId: g.groupId,
        GroupName: g.row.groupName,
        Peers: node.net.groupPeers(g.groupId),
      })),
      peers: node.p2p.getConnections().map((c) => ({
        peer_id: c.remotePeer.toString(),
        addr: c.remoteAddr.toString(),
        direction: c.direction,
        score: node.net.peerScore(c.remotePeer.toString()) ?? 0,
      })),
      node: {},
    };
  });

  app.post(
    '/api/v1/network/peers',
    {
      schema: {
        tags: ['Node'],
        summary: 'Connect to peers (multiaddrs ending in /p2p/<peer id>)',
        body: {
          type: 'array',
          items: { type: 'string', maxLength: 512 },
          minItems: 1,
          maxItems: 100,
        },
      },
    },
    async (req) => {
      const result = { succ_count: 0, err_count: 0, error: {} as Record<string, string> };
      await Promise.all(
        (req.body as string[]).map(async (text) => {
          try {
            const ma = multiaddr(text);
            const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value;
            if (!id) throw new Error('no /p2p/<peer id>');
            await dialUpgrading(node.p2p, peerIdFromString(id), [ma], AbortSignal.timeout(10_000));
            result.succ_count++;
          } catch (err) {
            result.err_count++;
            result.error[text] = (err as Error).message;
          }
        }),
      );
      return result;
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['Node'], summary: 'Prometheus metrics' } },
    async (_req, reply) => {
      const text = await node.metrics.registry.metrics();
      return reply.type(node.metrics.registry.contentType).send(text);
    },
  );

  app.post(
    '/api/v1/tools/pubkeytoaddr',
    {
      schema: {
        tags: ['Tools'],
        summary: 'Ethereum address of a public key',
        body: {
          type: 'object',
          required: ['encoded_pubkey'],
          properties: { encoded_pubkey: { type: 'string', maxLength: 200 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const key = fromPubkeyOrNull((req.body as { encoded_pubkey: string }).encoded_pubkey);
      if (!key) throw new BadRequestError('encoded_pubkey is not a secp256k1 public key');
      return { addr: ethAddress(key) };
    },
  );

  app.post(
    '/api/v1/tools/seedurlextend',
    {
      schema: {
        tags: ['Tools'],
        summary: 'Decode and verify a seed URL',
        body: {
          type: 'object',
          required: ['seed'],
          properties: { seed: { type: 'string', maxLength: 8192 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      try {
        const { seed, urls } = decodeSeedUrl((req.body as { seed: string }).seed);
        return {
          seed: {
            genesis_block: {
              GroupId: seed.groupId,
              ProducerPubkey: seed.ownerPubkey,
              Sudo: true,
              TimeStamp: seed.genesisBlock.TimeStamp.toString(),
              BlockHash: Buffer.from(seed.genesisBlock.BlockHash).toString('base64'),
              ProducerSign: Buffer.from(seed.genesisBlock.ProducerSign).toString('base64'),
            },
            group_id: seed.groupId,
            group_name: seed.groupName,
            owner_pubkey: seed.ownerPubkey,
            consensus_type: seed.consensusType,
            encryption_type: seed.encryptionType,
            cipher_key: toHex(seed.cipherKey),
            app_key: seed.appKey,
            signature: toHex(seed.genesisBlock.ProducerSign),
          },
          urls,
        };
      } catch (err) {
        if (err instanceof SeedError) throw new BadRequestError(`invalid seed: ${err.message}`);
        throw err;
      }
    },
  );
}
