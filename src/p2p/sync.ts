/**
 * Block sync, `/rum/sync/1.0.0`: one request per stream, length-prefixed protobuf frames.
 *   request  SyncRequest  { string GroupId = 1; uint64 FromBlock = 2; int32 Count = 3; }
 *   response SyncHeader   { string GroupId = 1; uint64 FromBlock = 2; int32 Count = 3;
 *                           uint64 TopBlock = 4; }
 *            then Count frames, each a quorum Block.
 * Any node that stores a group's blocks serves them; the requester verifies every block.
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { type Block, decodeBlock, encodeBlock } from '../chain/pb.ts';
import { decodeMessage, encodeMessage, type MessageDesc } from '../chain/protobuf.ts';

export const SYNC_PROTOCOL = '/rum/sync/1.0.0';
export const MAX_SYNC_COUNT = 200;
export const MAX_SYNC_RESPONSE_BYTES = 8 << 20;
const MAX_FRAME_BYTES = 8 << 20;

export const SyncRequestDesc: MessageDesc = {
  name: 'SyncRequest',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'FromBlock', kind: 'uint53' },
    { no: 3, name: 'Count', kind: 'int32' },
  ],
};
export const SyncHeaderDesc: MessageDesc = {
  name: 'SyncHeader',
  fields: [
    { no: 1, name: 'GroupId', kind: 'string' },
    { no: 2, name: 'FromBlock', kind: 'uint53' },
    { no: 3, name: 'Count', kind: 'int32' },
    { no: 4, name: 'TopBlock', kind: 'uint53' },
  ],
};

interface SyncRequest {
  GroupId: string;
  FromBlock: number;
  Count: number;
}
interface SyncHeader extends SyncRequest {
  TopBlock: number;
}

export interface BlockSource {
  /**
   * Blocks from..from+count-1 that this node stores (each a Block, or its protobuf bytes), and its
   * top height; null for an unknown group.
   */
  blocksFor(
    groupId: string,
    from: number,
    count: number,
    maxBytes: number,
  ): { blocks: (Block | Uint8Array)[]; top: number } | null;
}

export class SyncError extends Error {
  override name = 'SyncError';
}

export async function handleSyncStream(
  stream: Stream,
  source: BlockSource,
  timeoutMs = 10_000,
): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs);
  const lp = lpStream(stream, { maxDataLength: 1024 });
  try {
    const req = decodeMessage<SyncRequest>(SyncRequestDesc, (await lp.read({ signal })).subarray());
    const count = Math.max(0, Math.min(req.Count, MAX_SYNC_COUNT));
    const found = source.blocksFor(req.GroupId, req.FromBlock, count, MAX_SYNC_RESPONSE_BYTES);
    // Bound the answer by its encoded size (at least one block, however large).
    const frames: Uint8Array[] = [];
    let bytes = 0;
    for (const b of found?.blocks ?? []) {
      const frame = b instanceof Uint8Array ? b : encodeBlock(b);
      if (frames.length > 0 && bytes + frame.length > MAX_SYNC_RESPONSE_BYTES) break;
      frames.push(frame);
      bytes += frame.length;
    }
    const header: SyncHeader = {
      GroupId: req.GroupId,
      FromBlock: req.FromBlock,
      Count: frames.length,
      TopBlock: found?.top ?? 0,
    };
    await lp.write(encodeMessage(SyncHeaderDesc, header), { signal });
    for (const f of frames) await lp.write(f, { signal });
    await stream.close({ signal });
  } catch (err) {
    stream.abort(err as Error);
  }
}

/** Asks one peer for blocks; the blocks are decoded, not yet verified. */
export async function requestBlocks(
  p2p: Libp2p,
  peer: PeerId,
  groupId: string,
  from: number,
  count: number,
  timeoutMs = 15_000,
): Promise<{ blocks: Block[]; top: number }> {
  const signal = AbortSignal.timeout(timeoutMs);
  const stream = await p2p.dialProtocol(peer, SYNC_PROTOCOL, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    await lp.write(
      encodeMessage(SyncRequestDesc, { GroupId: groupId, FromBlock: from, Count: count }),
      { signal },
    );
    const header = decodeMessage<SyncHeader>(
      SyncHeaderDesc,
      (await lp.read({ signal })).subarray(),
    );
    if (header.GroupId !== groupId || header.FromBlock !== from)
      throw new SyncError('answer is for another request');
    if (header.Count < 0 || header.Count > Math.min(count, MAX_SYNC_COUNT))
      throw new SyncError('peer sent too many blocks');
    const blocks: Block[] = [];
    let bytes = 0;
    for (let i = 0; i < header.Count; i++) {
      const frame = (await lp.read({ signal })).subarray();
      bytes += frame.length;
      if (i > 0 && bytes > MAX_SYNC_RESPONSE_BYTES)
        throw new SyncError('response larger than the limit');
      const block = decodeBlock(frame);
      if (block.GroupId !== groupId || block.BlockId !== from + i)
        throw new SyncError('peer sent an unexpected block');
      blocks.push(block);
    }
    await stream.close({ signal });
    return { blocks, top: header.TopBlock };
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}
