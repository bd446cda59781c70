import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arenaChunkBytes, pageBytes } from '../../src/constants.js';
import { blockHomeOf, blockOf, sliceChunksOf } from '../../src/protocol/placement.js';

const chunkPages = arenaChunkBytes / pageBytes;

test('block placement covers every page once, and a node\'s block is its allocator slice on any node count', () => {
  for (const chunkCount of [3, 7, 96, 256, 1024]) {
    for (let nodeCount = 1; nodeCount <= Math.min(16, chunkCount); nodeCount += 1) {
      const pageCount = chunkCount * chunkPages;
      let next = 0;
      for (let node = 0; node < nodeCount; node += 1) {
        const { first, count } = blockOf(node, pageCount, nodeCount);
        assert.equal(first, next, 'blocks are contiguous');
        next = first + count;
        // The allocator's slice (src/runtime/heap-service.ts): node * sliceChunks, the last node the rest.
        const sliceChunks = sliceChunksOf(chunkCount, nodeCount);
        const sliceEnd = node === nodeCount - 1 ? chunkCount : (node + 1) * sliceChunks;
        assert.equal(first, node * sliceChunks * chunkPages, `node ${node} of ${nodeCount}, ${chunkCount} chunks: its block starts with its slice`);
        assert.equal(first + count, sliceEnd * chunkPages);
        for (const page of [first, first + count - 1]) assert.equal(blockHomeOf(page, pageCount, nodeCount), node);
      }
      assert.equal(next, pageCount, 'the blocks cover the region');
    }
  }
});

test('a region smaller than a chunk per node (the simulation\'s) is cut into near-equal blocks', () => {
  assert.deepEqual([0, 1, 2].map((node) => blockOf(node, 101, 3)), [{ first: 0, count: 34 }, { first: 34, count: 34 }, { first: 68, count: 33 }]);
  assert.equal(blockHomeOf(33, 101, 3), 0);
  assert.equal(blockHomeOf(34, 101, 3), 1);
  assert.equal(blockHomeOf(100, 101, 3), 2);
});
