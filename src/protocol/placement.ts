// Block placement: which node is the static home of a page. It must agree
// with the allocator's slices (src/runtime/heap-service.ts), since a buffer is
// allocated from its thread's node's slice and is meant to be homed there. The
// slices are whole allocator chunks: node i takes chunks
// [i * sliceChunks, (i + 1) * sliceChunks), the last node the rest as well.
// A region too small to give every node a chunk (the simulation's) is cut into
// nodeCount near-equal blocks of pages instead.

import { arenaChunkBytes, pageBytes } from '../constants.js';
import { assert } from '../errors.js';

const chunkPages = arenaChunkBytes / pageBytes;

/** Pages of each node's block (the last node's block also holds what the division leaves). */
export function blockPagesOf(pageCount: number, nodeCount: number): number {
  assert(nodeCount >= 1 && pageCount >= 1, 'a cluster and a region');
  const chunkCount = Math.floor(pageCount / chunkPages);
  if (chunkCount >= nodeCount) return Math.floor(chunkCount / nodeCount) * chunkPages;
  return Math.ceil(pageCount / nodeCount);
}

/** Allocator chunks of each node's slice: the region's chunks divided by the node count, rounded down. */
export function sliceChunksOf(chunkCount: number, nodeCount: number): number {
  return Math.floor(chunkCount / nodeCount);
}

/** The block-placement home of `page`. */
export function blockHomeOf(page: number, pageCount: number, nodeCount: number): number {
  return Math.min(nodeCount - 1, Math.floor(page / blockPagesOf(pageCount, nodeCount)));
}

/** The pages whose block-placement home is `node`: [first, first + count). */
export function blockOf(node: number, pageCount: number, nodeCount: number): { first: number; count: number } {
  const blockPages = blockPagesOf(pageCount, nodeCount);
  const first = Math.min(pageCount, node * blockPages);
  const end = node === nodeCount - 1 ? pageCount : Math.min(pageCount, first + blockPages);
  return { first, count: end - first };
}
