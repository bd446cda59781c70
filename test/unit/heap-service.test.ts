// The manager's allocation service: which limit an exhausted allocation names.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arenaChunkBytes } from '../../src/constants.js';
import type { NativeMmu } from '../../src/memory/native.js';
import { HeapService, type ChunkMessage } from '../../src/runtime/heap-service.js';

const fakeNative = {
  collectEverywhere: () => 0,
  drainFreed: () => new Float64Array(0),
  zero: () => {},
  release: () => {},
} as unknown as NativeMmu;

test('a full slice on a cluster node is named as the node slice, with what to raise', () => {
  const regionBytes = 8 * arenaChunkBytes;
  const service = new HeapService(fakeNative, regionBytes, 1, 4);
  service.alloc(2 * arenaChunkBytes - 4096);
  assert.throws(() => service.alloc(arenaChunkBytes), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /node 1's slice/.test(error.message) && /1\/4 of --region-bytes/.test(error.message)
    && /larger --region-bytes/.test(error.message));
});

test('a full region on one node names the region', () => {
  const regionBytes = 2 * arenaChunkBytes;
  const service = new HeapService(fakeNative, regionBytes, 0, 1);
  service.alloc(2 * arenaChunkBytes);
  assert.throws(() => service.alloc(4096), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /global region/.test(error.message) && !/slice/.test(error.message));
});

/** Services of a cluster wired together; messages are delivered when `deliver` is called. */
function cluster(nodeCount: number, regionBytes: number): { services: HeapService[]; deliver: () => number } {
  const queue: Array<{ from: number; to: number; message: ChunkMessage }> = [];
  const services = Array.from({ length: nodeCount }, (_, node) => new HeapService(fakeNative, regionBytes, node, nodeCount));
  services.forEach((service, node) => service.borrowThrough((to, message) => queue.push({ from: node, to, message })));
  const deliver = () => {
    let count = 0;
    while (queue.length > 0) {
      const { from, to, message } = queue.shift()!;
      services[to]!.onChunkMessage(from, message);
      count += 1;
    }
    return count;
  };
  return { services, deliver };
}

const offsetOf = (reply: number | { offset: number }) => (typeof reply === 'number' ? reply : reply.offset);

test('a node whose slice is full borrows free chunks of another node\'s slice, never one the lender used', () => {
  const { services, deliver } = cluster(4, 32 * arenaChunkBytes);
  const [node0, node1] = services as [HeapService, HeapService];
  // Node 1 used and freed a chunk of its own (8): it may hold old bytes, so it is not lent.
  node1.free(offsetOf(node1.alloc(arenaChunkBytes)));
  for (let k = 0; k < 8; k++) node0.alloc(arenaChunkBytes);
  assert.throws(() => node0.alloc(arenaChunkBytes), /slice of the global region is full/);
  assert.ok(deliver() >= 2);
  assert.equal(node0.chunksBorrowed, 4);
  assert.equal(node1.chunksLent, 4);
  const borrowed = node0.alloc(arenaChunkBytes);
  assert.equal(typeof borrowed, 'number', 'a never-used chunk needs no zeroing');
  const offset = offsetOf(borrowed);
  assert.ok(offset >= 9 * arenaChunkBytes && offset < 13 * arenaChunkBytes, `from node 1's unused chunks 9..12 (${offset / arenaChunkBytes})`);
  // Node 1 keeps its used chunk and the rest of its slice.
  const own = offsetOf(node1.alloc(arenaChunkBytes));
  assert.ok(own === 8 * arenaChunkBytes || (own >= 13 * arenaChunkBytes && own < 16 * arenaChunkBytes), `${own / arenaChunkBytes}`);
});

test('when no node has a free chunk, the error names the region as full and what to raise', () => {
  const { services, deliver } = cluster(2, 4 * arenaChunkBytes);
  const [node0, node1] = services as [HeapService, HeapService];
  node0.alloc(2 * arenaChunkBytes);
  node1.alloc(2 * arenaChunkBytes);
  assert.throws(() => node0.alloc(4096));
  deliver();
  assert.throws(() => node0.alloc(4096), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /the global region is full/.test(error.message) && /larger --region-bytes/.test(error.message));
});
