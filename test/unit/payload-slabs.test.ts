// The reused payload buffers (src/transport/payload-slabs.ts): a slab is handed out once until given back, reused
// after, and past the pool's size or a slab's size a payload gets a buffer of its own. (The pool is the thread's:
// files run before this one in the same process may hold slabs, so the counts here are relative.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { payloadSlabBytes, payloadSlabCountMax } from '../../src/constants.js';
import { payloadSlabStats, releasePayloadSlab, takePayloadSlab } from '../../src/transport/payload-slabs.js';

test('a slab is taken once, reused once given back; a full pool or a payload larger than a slab gets a buffer of its own', () => {
  const start = payloadSlabStats();
  const free = payloadSlabCountMax - start.inUse;
  assert.ok(free >= 1, 'a slab is free at the start');
  const taken = Array.from({ length: free }, (_, k) => takePayloadSlab(4096 * (k + 1)));
  assert.equal(new Set(taken.map((view) => view.buffer)).size, free, 'each take while slabs are free gets its own slab');
  taken.forEach((view, k) => {
    assert.equal(view.byteLength, 4096 * (k + 1));
    assert.equal(view.buffer.byteLength, payloadSlabBytes);
  });
  assert.equal(payloadSlabStats().inUse, payloadSlabCountMax);
  const own = takePayloadSlab(4096);
  assert.ok(!taken.some((view) => view.buffer === own.buffer), 'the pool is empty: a buffer of its own');
  assert.equal(payloadSlabStats().misses, start.misses + 1);
  const large = takePayloadSlab(payloadSlabBytes + 1);
  assert.notEqual(large.buffer.byteLength, payloadSlabBytes, 'larger than a slab: a buffer of its own');
  assert.equal(takePayloadSlab(0).byteLength, 0, 'an empty payload takes no slab');
  assert.equal(payloadSlabStats().inUse, payloadSlabCountMax);
  // Given back (twice, or a buffer not from the pool: nothing more), then reused.
  releasePayloadSlab(taken[0]!.buffer);
  releasePayloadSlab(taken[0]!.buffer);
  releasePayloadSlab(own.buffer);
  assert.equal(payloadSlabStats().inUse, payloadSlabCountMax - 1);
  const again = takePayloadSlab(100);
  assert.equal(again.buffer, taken[0]!.buffer, 'the slab given back is reused');
  assert.equal(payloadSlabStats().made, payloadSlabCountMax, 'no slab past the pool\'s size');
  for (const view of [...taken.slice(1), again]) releasePayloadSlab(view.buffer);
  assert.equal(payloadSlabStats().inUse, start.inUse);
});
