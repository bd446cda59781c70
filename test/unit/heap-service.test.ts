// The manager's allocation service: which limit an exhausted allocation names.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arenaChunkBytes } from '../../src/constants.js';
import type { NativeMmu } from '../../src/memory/native.js';
import { HeapService } from '../../src/runtime/heap-service.js';

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
