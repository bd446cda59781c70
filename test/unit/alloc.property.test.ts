// The heap under random alloc/free sequences (fast-check).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ChunkAuthority, NodeHeap } from '../../src/alloc/index.js';
import { arenaChunkBytes, pageBytes, smallBlockBytesMax } from '../../src/constants.js';

const regionBytes = 64 * arenaChunkBytes;

type Op = { kind: 'alloc'; byteLength: number } | { kind: 'free'; pick: number };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('alloc' as const), byteLength: fc.oneof(fc.integer({ min: 1, max: smallBlockBytesMax }), fc.integer({ min: 1, max: 3 * arenaChunkBytes })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
);

test('no overlap, in the region, aligned, stats consistent, everything returns on free', () => {
  fc.assert(fc.property(fc.array(opArbitrary, { maxLength: 300 }), (ops) => {
    const authority = new ChunkAuthority(regionBytes);
    const heap = new NodeHeap(0, authority);
    const live = new Map<number, number>(); // offset -> usable size
    for (const op of ops) {
      if (op.kind === 'alloc') {
        const { offset } = heap.alloc(op.byteLength);
        const size = heap.sizeOf(offset);
        assert.ok(size >= op.byteLength, 'usable size covers the request');
        assert.ok(offset >= 0 && offset + size <= regionBytes, 'block inside the region');
        assert.equal(offset % (op.byteLength > smallBlockBytesMax ? pageBytes : 16), 0, 'aligned');
        for (const [other, otherSize] of live) {
          assert.ok(offset + size <= other || other + otherSize <= offset, `blocks [${offset}, +${size}) and [${other}, +${otherSize}) overlap`);
        }
        live.set(offset, size);
      } else if (live.size > 0) {
        const offsets = [...live.keys()];
        const offset = offsets[op.pick % offsets.length]!;
        heap.free(offset);
        live.delete(offset);
      }
      const inUse = [...live.values()].reduce((a, b) => a + b, 0);
      assert.equal(heap.stats().bytesInUse, inUse, 'bytesInUse matches the live blocks');
    }
    for (const offset of live.keys()) heap.free(offset);
    assert.equal(heap.stats().bytesInUse, 0);
    assert.equal(authority.chunksInUse, 0, 'every chunk went back to the authority');
  }), { numRuns: 150, seed: 42 });
});

test('freed memory is reused, and a reused small slot is reported for zeroing', () => {
  const heap = new NodeHeap(0, new ChunkAuthority(regionBytes));
  const a = heap.alloc(100);
  assert.deepEqual(a.zeroRanges, []);
  heap.alloc(100);
  heap.free(a.offset);
  const c = heap.alloc(120);
  assert.equal(c.offset, a.offset, 'the freed slot is reused');
  assert.deepEqual(c.zeroRanges, [{ offset: a.offset, byteLength: 128 }]);
  const big = heap.alloc(10 * pageBytes);
  heap.free(big.offset);
  const released = heap.takeReleasablePages();
  assert.ok(released.some((r) => r.firstPage * pageBytes === big.offset && r.pageCount === 10), 'a freed large block is released to the OS');
  const again = heap.alloc(10 * pageBytes);
  assert.equal(again.offset, big.offset);
  assert.deepEqual(again.zeroRanges, [], 'released pages read as zero, so no zeroing');
});

test('fragmentation stays bounded: after churn, a full chunk of small blocks fits in few chunks', () => {
  const authority = new ChunkAuthority(regionBytes);
  const heap = new NodeHeap(0, authority);
  const offsets: number[] = [];
  for (let i = 0; i < 4000; i += 1) offsets.push(heap.alloc(16 + (i % 8) * 100).offset);
  for (let i = 0; i < offsets.length; i += 2) heap.free(offsets[i]!);
  const { bytesInUse, bytesReserved } = heap.stats();
  // Half the blocks live: reserved memory stays within 4x of what is in use (slab pages half full, plus one chunk of slack).
  assert.ok(bytesReserved <= 4 * bytesInUse + arenaChunkBytes, `reserved ${bytesReserved} for ${bytesInUse} in use`);
});

test('errors name what was wrong', () => {
  const heap = new NodeHeap(0, new ChunkAuthority(4 * arenaChunkBytes));
  assert.throws(() => heap.alloc(0), { code: 'DSM_ERR_ALLOC' });
  assert.throws(() => heap.alloc(1.5), { code: 'DSM_ERR_ALLOC' });
  assert.throws(() => heap.alloc(5 * arenaChunkBytes), { code: 'DSM_ERR_ALLOC' });
  assert.throws(() => heap.alloc(4 * arenaChunkBytes + 1), { code: 'DSM_ERR_ALLOC' });
  heap.alloc(3 * arenaChunkBytes);
  assert.throws(() => heap.alloc(2 * arenaChunkBytes), (error: Error & { code?: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /--region-bytes/.test(error.message));
  const { offset } = heap.alloc(64);
  heap.free(offset);
  assert.throws(() => heap.free(offset), { code: 'DSM_ERR_FREE' });
  assert.throws(() => heap.free(offset + 3), { code: 'DSM_ERR_FREE' });
});

test('a gather\'s plan is a run of free chunks (own or reported), the fewest borrowed, then the fewest segments, then the lowest; null when none', () => {
  const chunkCount = 24;
  fc.assert(fc.property(fc.array(fc.integer({ min: -1, max: 3 }), { minLength: chunkCount, maxLength: chunkCount }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 4 }), (freeAt, min, segmentsMax) => {
    // freeAt[chunk]: -1 taken everywhere, else the node whose table has it free; node 0 gathers.
    const authority = new ChunkAuthority(chunkCount * arenaChunkBytes);
    for (let chunk = 0; chunk < chunkCount; chunk++) authority.take(freeAt[chunk] === 0 ? 0 : 9, 1);
    for (let chunk = 0; chunk < chunkCount; chunk++) if (freeAt[chunk] === 0) authority.give(0, chunk, 1);
    const reported = new Map<number, number[]>();
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const node = freeAt[chunk]!;
      if (node <= 0) continue;
      const runs = reported.get(node) ?? [];
      reported.set(node, runs);
      if (runs.length > 0 && runs[runs.length - 2]! + runs[runs.length - 1]! === chunk) runs[runs.length - 1]! += 1;
      else runs.push(chunk, 1);
    }
    // The reference: every window, by brute force.
    let expected: { start: number; borrowed: number; segments: number } | null = null;
    for (let start = 0; start + min <= chunkCount; start++) {
      const window = freeAt.slice(start, start + min);
      if (window.includes(-1)) continue;
      const borrowed = window.filter((node) => node !== 0).length;
      const segments = window.filter((node, index) => node !== 0 && (index === 0 || window[index - 1] !== node)).length;
      if (segments > segmentsMax) continue;
      if (expected === null || borrowed < expected.borrowed || (borrowed === expected.borrowed && segments < expected.segments)) expected = { start, borrowed, segments };
    }
    const plan = authority.gatherPlan(0, reported, min, segmentsMax);
    if (expected === null) {
      assert.equal(plan, null);
      return;
    }
    assert.ok(plan !== null);
    assert.equal(plan.length, expected.segments);
    assert.equal(plan.reduce((sum, segment) => sum + segment.count, 0), expected.borrowed);
    for (const segment of plan) {
      assert.ok(segment.firstChunk >= expected.start && segment.firstChunk + segment.count <= expected.start + min, 'inside the chosen window');
      for (let chunk = segment.firstChunk; chunk < segment.firstChunk + segment.count; chunk++) assert.equal(freeAt[chunk], segment.lender);
    }
  }), { numRuns: 500, seed: 18 });
});

test('a block over a chunk takes whole pages, not whole chunks: the rest of its last chunk serves other blocks, and runs span chunks', () => {
  const pagesPerChunk = arenaChunkBytes / pageBytes;
  const authority = new ChunkAuthority(4 * arenaChunkBytes);
  const heap = new NodeHeap(0, authority);
  // 1 MiB + 1 page: two chunks taken, the second's other 255 pages stay free here.
  const big = heap.alloc(arenaChunkBytes + pageBytes);
  assert.equal(heap.sizeOf(big.offset), arenaChunkBytes + pageBytes);
  assert.equal(authority.chunksInUse, 2);
  const rest = heap.alloc((pagesPerChunk - 1) * pageBytes);
  assert.equal(rest.offset, big.offset + arenaChunkBytes + pageBytes, 'the rest of the second chunk');
  assert.equal(authority.chunksInUse, 2);
  // Freed, the two blocks' pages coalesce across the chunks' edge and both chunks go back.
  heap.free(big.offset);
  assert.equal(authority.chunksInUse, 1, 'the first chunk, wholly free, went back');
  heap.free(rest.offset);
  assert.equal(authority.chunksInUse, 0);
  // Two blocks of 1.5 MiB take 3 MiB (whole chunks took all 4): a third fails, its error with the figures.
  const blocks = [0, 1].map(() => heap.alloc(1.5 * arenaChunkBytes));
  assert.equal(blocks[1]!.offset, blocks[0]!.offset + 1.5 * arenaChunkBytes, 'packed one after the other');
  assert.throws(() => heap.alloc(1.5 * arenaChunkBytes), (error: Error & { code?: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /1572864 bytes asked, 3145728 bytes in blocks not freed yet/.test(error.message)
    && /the longest free run 1048576 bytes/.test(error.message));
  // Freeing the first leaves a 1.5 MiB run (half a chunk and a whole chunk) before the second: best fit takes it.
  heap.free(blocks[0]!.offset);
  assert.equal(heap.alloc(1.5 * arenaChunkBytes).offset, blocks[0]!.offset);
});
