// /rum/sync/1.0.0 between two real libp2p hosts: an answer is cut at 8 MiB of encoded blocks even
// when the block source offers more, the requester takes the prefix, and a malformed request
// gets no blocks.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Libp2p } from '@libp2p/interface';
import type { Block } from '../../src/chain/pb.ts';
import { generatePrivateKey } from '../../src/crypto/keys.ts';
import { createP2PHost } from '../../src/p2p/host.ts';
import {
  handleSyncStream,
  MAX_SYNC_RESPONSE_BYTES,
  requestBlocks,
  SYNC_PROTOCOL,
} from '../../src/p2p/sync.ts';
import { LOOPBACK } from '../helpers/net.ts';

const GROUP = '6f1d2c3b-4a59-4e68-8f7a-1b2c3d4e5f60';

function fatBlock(id: number): Block {
  return {
    GroupId: GROUP,
    BlockId: id,
    Epoch: id,
    PrevHash: new Uint8Array(32),
    ProducerPubkey: 'x',
    Trxs: [
      {
        TrxId: crypto.randomUUID(),
        Type: 0,
        GroupId: GROUP,
        Data: new Uint8Array(200 * 1024).fill(id),
        TimeStamp: 1n,
        Version: '2.0.0',
        Expired: 0n,
        ResendCount: 0n,
        SenderPubkey: 'y',
        SenderSign: new Uint8Array(65),
        StorageType: 0,
      },
    ],
    Sudo: false,
    TimeStamp: 1n,
    BlockHash: new Uint8Array(32),
    ProducerSign: new Uint8Array(65),
  };
}

describe('sync protocol', () => {
  const hosts: Libp2p[] = [];
  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
  });

  it('cuts answers at 8 MiB and the requester continues from there', async () => {
    const make = async () => {
      const h = await createP2PHost({
        nodeKey: generatePrivateKey(),
        listen: [LOOPBACK],
        bootstrap: [],
        networkName: 'staten',
        role: 'full',
      });
      await h.start();
      hosts.push(h);
      return h;
    };
    const server = await make();
    const client = await make();
    // A source that ignores the byte budget: the protocol layer must still bound the answer.
    await server.handle(SYNC_PROTOCOL, (stream) =>
      handleSyncStream(stream, {
        blocksFor: (g, from, count) =>
          g === GROUP
            ? { blocks: Array.from({ length: count }, (_, i) => fatBlock(from + i)), top: 500 }
            : null,
      }),
    );
    await client.dial(server.getMultiaddrs()[0]!);
    const first = await requestBlocks(client, server.peerId, GROUP, 1, 100);
    assert.equal(first.top, 500);
    assert.ok(
      first.blocks.length > 1 && first.blocks.length < 100,
      `cut short: ${first.blocks.length} blocks`,
    );
    const size = first.blocks.reduce((n, b) => n + b.Trxs[0]!.Data.length, 0);
    assert.ok(size <= MAX_SYNC_RESPONSE_BYTES);
    assert.deepEqual(
      first.blocks.map((b) => b.BlockId),
      Array.from({ length: first.blocks.length }, (_, i) => 1 + i),
    );
    const next = await requestBlocks(client, server.peerId, GROUP, 1 + first.blocks.length, 100);
    assert.equal(next.blocks[0]!.BlockId, 1 + first.blocks.length);
    const none = await requestBlocks(
      client,
      server.peerId,
      '00000000-0000-4000-8000-000000000000',
      1,
      100,
    );
    assert.deepEqual(none, { blocks: [], top: 0 });
  });
});
