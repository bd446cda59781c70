// The global heap: offsets in [0, regionBytes), identical on every node.
//
// Two levels, after Hoard: a ChunkAuthority owns the region's chunk map (in a
// cluster it lives on node 0) and hands whole chunks to node heaps; a NodeHeap
// serves allocations from its own chunks without asking anyone:
//   - large blocks (> smallBlockBytesMax) are runs of whole pages, best fit
//     over the node's free page runs, which may span its chunks, coalesced on
//     free; when none fits, the shortest span of its free pages and the
//     authority's free chunks together that holds the block (it takes the
//     chunks the block covers; the rest of the last one stays free here);
//   - small blocks come from size classes (16 … 2048 bytes, powers of two);
//     each class fills slab pages, a bitmap per slab records which slots live.
// Whole chunks inside a freed run go back to the authority at once.
// Memory returns: freed page runs and emptied slabs are reported by
// takeReleasablePages() so the runtime punches holes (the OS reclaims the
// memory and the pages read as zero again). A reused small slot is reported in
// `zeroRanges`, because `new SharedArrayBuffer(n)` must read as zero.
// Metadata is bounded: per chunk one entry, per slab one bitmap of at most 256
// bits, per live large block one entry, per free run one entry.

import { arenaChunkBytes, pageBytes, smallBlockBytesMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';

export interface Allocation {
  offset: number;
  /** Ranges inside the block that held data before and must be zeroed before use. */
  zeroRanges: Array<{ offset: number; byteLength: number }>;
}

export interface PageRange {
  firstPage: number;
  pageCount: number;
}

export const smallBlockBytesMin = 16;

function regionFull(regionBytes: number, detail = ''): DsmError {
  return new DsmError('DSM_ERR_REGION_EXHAUSTED',
    `the global region (${regionBytes} bytes) is full${detail}; run with a larger --region-bytes (now ${regionBytes})`);
}

export class ChunkAuthority {
  readonly regionBytes: number;
  readonly chunkCount: number;
  /** owner[chunk] = node id + 1, or 0 when free. */
  private readonly owner: Uint16Array;

  constructor(regionBytes: number) {
    assert(regionBytes % arenaChunkBytes === 0, 'region is whole chunks');
    this.regionBytes = regionBytes;
    this.chunkCount = regionBytes / arenaChunkBytes;
    this.owner = new Uint16Array(this.chunkCount);
  }

  /**
   * Takes `count` contiguous free chunks for `nodeId`; returns the first chunk
   * index. Best fit (the shortest free run that holds them, the lowest of
   * equals): a one-chunk take for small blocks does not cut into the long run
   * a large allocation, or a borrow or gather, made room for.
   */
  take(nodeId: number, count: number): number {
    assert(count >= 1, 'take at least one chunk');
    let bestStart = -1;
    let bestLength = Infinity;
    let runStart = 0;
    for (let chunk = 0; chunk <= this.chunkCount; chunk += 1) {
      if (chunk < this.chunkCount && this.owner[chunk] === 0) continue;
      const runLength = chunk - runStart;
      if (runLength >= count && runLength < bestLength) {
        bestStart = runStart;
        bestLength = runLength;
        if (runLength === count) break;
      }
      runStart = chunk + 1;
    }
    if (bestStart < 0) throw regionFull(this.regionBytes);
    this.owner.fill(nodeId + 1, bestStart, bestStart + count);
    return bestStart;
  }

  /**
   * Lends contiguous free chunks to another node (slice borrowing, issue 13):
   * up to `count`, at least `min`, marked as that node's from then on.
   * Returns the first chunk and the count, or null when no run of `min` is free.
   */
  lend(toNode: number, min: number, count: number, lendable: (chunk: number) => boolean = () => true): { firstChunk: number; count: number } | null {
    assert(min >= 1 && count >= min, 'lend at least one chunk');
    let runStart = 0;
    let runLength = 0;
    let best: { firstChunk: number; count: number } | null = null;
    for (let chunk = 0; chunk <= this.chunkCount; chunk += 1) {
      if (chunk < this.chunkCount && this.owner[chunk] === 0 && lendable(chunk)) {
        if (runLength === 0) runStart = chunk;
        runLength += 1;
        if (runLength === count) { best = { firstChunk: runStart, count }; break; }
        continue;
      }
      if (runLength >= min && (best === null || runLength > best.count)) best = { firstChunk: runStart, count: runLength };
      runLength = 0;
    }
    if (best === null) return null;
    this.owner.fill(toNode + 1, best.firstChunk, best.firstChunk + best.count);
    return best;
  }

  /**
   * Lends exactly chunks [firstChunk, firstChunk + count) to `toNode` if all
   * are free here and `lendable` (a segment of a borrower's gather: see
   * gatherPlan); null otherwise.
   */
  lendAt(toNode: number, firstChunk: number, count: number, lendable: (chunk: number) => boolean = () => true): { firstChunk: number; count: number } | null {
    if (!Number.isSafeInteger(firstChunk) || !Number.isSafeInteger(count) || count < 1 || firstChunk < 0 || firstChunk + count > this.chunkCount) {
      throw new DsmError('DSM_ERR_FRAME', `a chunk borrow asked for chunks ${firstChunk} + ${count}, outside the region's ${this.chunkCount} chunks: a node of another dsm version?`);
    }
    for (let chunk = firstChunk; chunk < firstChunk + count; chunk += 1) if (this.owner[chunk] !== 0 || !lendable(chunk)) return null;
    this.owner.fill(toNode + 1, firstChunk, firstChunk + count);
    return { firstChunk, count };
  }

  /** Whether `chunk` is free in this table. */
  isFree(chunk: number): boolean {
    return this.owner[chunk] === 0;
  }

  /** Takes exactly chunks [firstChunk, firstChunk + count), all free here, for `nodeId`. */
  takeAt(nodeId: number, firstChunk: number, count: number): void {
    for (let chunk = firstChunk; chunk < firstChunk + count; chunk += 1) assert(this.owner[chunk] === 0, 'a chunk taken is free');
    this.owner.fill(nodeId + 1, firstChunk, firstChunk + count);
  }

  /** This table's free chunks (this node's own, free) as runs: [first, count, first, count, …]. */
  freeRuns(): number[] {
    const runs: number[] = [];
    let runStart = -1;
    for (let chunk = 0; chunk <= this.chunkCount; chunk += 1) {
      const free = chunk < this.chunkCount && this.owner[chunk] === 0;
      if (free && runStart < 0) runStart = chunk;
      if (!free && runStart >= 0) {
        runs.push(runStart, chunk - runStart);
        runStart = -1;
      }
    }
    return runs;
  }

  /**
   * For `nodeId`, whose free chunks hold no run of `min`: a run of `min`
   * chunks each free either here or in the table of the node that reported
   * it (`reported`: node -> its freeRuns()), as the segments to borrow from
   * other nodes, in address order. Chosen: the fewest chunks borrowed, then
   * the fewest segments (each is one ask), then the lowest address; at most
   * `segmentsMax` segments; null when the free chunks of all the tables hold
   * no such run. Each lender decides from its own table whether its chunks are
   * still free when asked.
   */
  gatherPlan(nodeId: number, reported: ReadonlyMap<number, readonly number[]>, min: number, segmentsMax: number): Array<{ lender: number; firstChunk: number; count: number }> | null {
    assert(min >= 1 && segmentsMax >= 1, 'a gather asks for at least one chunk in at least one segment');
    if (min > this.chunkCount) return null;
    // freeAt[chunk]: the node whose table has the chunk free (-1: none).
    const freeAt = new Int32Array(this.chunkCount).fill(-1);
    for (let chunk = 0; chunk < this.chunkCount; chunk += 1) if (this.owner[chunk] === 0) freeAt[chunk] = nodeId;
    for (const [node, runs] of reported) {
      for (let index = 0; index + 1 < runs.length; index += 2) {
        // A chunk free here is never free in another table too; if a report says so, trust this table.
        for (let chunk = runs[index]!; chunk < runs[index]! + runs[index + 1]!; chunk += 1) if (freeAt[chunk] === -1) freeAt[chunk] = node;
      }
    }
    // Prefix sums over the region: holes, borrowed chunks, and chunks where a segment of another node's starts.
    const holes = new Int32Array(this.chunkCount + 1);
    const borrowed = new Int32Array(this.chunkCount + 1);
    const opens = new Int32Array(this.chunkCount + 1);
    for (let chunk = 0; chunk < this.chunkCount; chunk += 1) {
      const at = freeAt[chunk]!;
      const lent = at !== -1 && at !== nodeId;
      holes[chunk + 1] = holes[chunk]! + (at === -1 ? 1 : 0);
      borrowed[chunk + 1] = borrowed[chunk]! + (lent ? 1 : 0);
      opens[chunk + 1] = opens[chunk]! + (lent && (chunk === 0 || freeAt[chunk - 1] !== at) ? 1 : 0);
    }
    let best: { start: number; borrowed: number; segments: number } | null = null;
    for (let start = 0; start + min <= this.chunkCount; start += 1) {
      const end = start + min;
      if (holes[end] !== holes[start]) continue;
      const borrowedHere = borrowed[end]! - borrowed[start]!;
      // A segment that began before `start` opens again at `start`.
      const segments = opens[end]! - opens[start + 1]! + (freeAt[start] !== nodeId ? 1 : 0);
      if (segments > segmentsMax) continue;
      if (best === null || borrowedHere < best.borrowed || (borrowedHere === best.borrowed && segments < best.segments)) best = { start, borrowed: borrowedHere, segments };
    }
    if (best === null) return null;
    const plan: Array<{ lender: number; firstChunk: number; count: number }> = [];
    for (let chunk = best.start; chunk < best.start + min; chunk += 1) {
      const lender = freeAt[chunk]!;
      if (lender === nodeId) continue;
      const last = plan[plan.length - 1];
      if (last !== undefined && last.lender === lender && last.firstChunk + last.count === chunk) last.count += 1;
      else plan.push({ lender, firstChunk: chunk, count: 1 });
    }
    assert(plan.length === best.segments && plan.reduce((sum, segment) => sum + segment.count, 0) === best.borrowed, 'the plan is the window chosen');
    return plan;
  }

  /**
   * Chunks another node lent to `nodeId`: free here from now on, for
   * `nodeId`'s heap to take. Here they may still show as their first owner's
   * (a lender may lend on chunks it borrowed): only the lender and the
   * borrower learn of a lend, and only the borrower sees them free.
   */
  adopt(nodeId: number, firstChunk: number, count: number): void {
    for (let chunk = firstChunk; chunk < firstChunk + count; chunk += 1) {
      assert(this.owner[chunk] !== 0 && this.owner[chunk] !== nodeId + 1, 'a lent chunk was another node\'s');
      this.owner[chunk] = 0;
    }
  }

  /** Free chunks (not taken by any node as this authority knows it). */
  get chunksFree(): number {
    return this.chunkCount - this.chunksInUse;
  }

  give(nodeId: number, firstChunk: number, count: number): void {
    for (let chunk = firstChunk; chunk < firstChunk + count; chunk += 1) {
      assert(this.owner[chunk] === nodeId + 1, 'a node gives back only its own chunks');
      this.owner[chunk] = 0;
    }
  }

  get chunksInUse(): number {
    return this.owner.reduce((sum, owner) => sum + (owner === 0 ? 0 : 1), 0);
  }
}

interface Slab {
  page: number;
  classBytes: number;
  slotCount: number;
  liveCount: number;
  live: Uint8Array;
  /** Slots that held a block before and so must be zeroed before reuse. */
  used: Uint8Array;
}

export class NodeHeap {
  readonly nodeId: number;
  private readonly authority: ChunkAuthority;
  private readonly pagesPerChunk = arenaChunkBytes / pageBytes;
  /**
   * Free page runs inside this node's chunks: first page -> page count. A run
   * may span several chunks (all this node's); whole chunks inside a freed run
   * go back to the authority at once, so a run holds less than a chunk at
   * each of its ends.
   */
  private readonly freeRuns = new Map<number, number>();
  /** The same runs by their end (one past their last page) -> first page, to coalesce in constant time. */
  private readonly runEnds = new Map<number, number>();
  /** Live large blocks: first page -> page count. */
  private readonly large = new Map<number, number>();
  private readonly slabs = new Map<number, Slab>();
  private readonly partialSlabs = new Map<number, Set<Slab>>();
  private readonly releasable: PageRange[] = [];
  private bytesInUse = 0;
  /** Chunks taken from the authority and not given back. */
  private chunkCount = 0;

  constructor(nodeId: number, authority: ChunkAuthority) {
    this.nodeId = nodeId;
    this.authority = authority;
  }

  alloc(byteLength: number): Allocation {
    if (!Number.isSafeInteger(byteLength) || byteLength <= 0 || byteLength > this.authority.regionBytes) {
      throw new DsmError('DSM_ERR_ALLOC', `alloc: the size must be an integer from 1 to ${this.authority.regionBytes} bytes; got ${byteLength}`);
    }
    return byteLength <= smallBlockBytesMax ? this.allocSmall(byteLength) : this.allocLarge(byteLength);
  }

  free(offset: number): void {
    const firstPage = offset / pageBytes;
    const pageCount = Number.isSafeInteger(firstPage) ? this.large.get(firstPage) : undefined;
    if (pageCount !== undefined) {
      this.large.delete(firstPage);
      this.bytesInUse -= pageCount * pageBytes;
      this.releasable.push({ firstPage, pageCount });
      this.freePages(firstPage, pageCount);
      return;
    }
    const slab = Number.isSafeInteger(offset) ? this.slabs.get(Math.floor(offset / pageBytes)) : undefined;
    const within = offset - (slab?.page ?? 0) * pageBytes;
    if (slab === undefined || within % slab.classBytes !== 0 || slab.live[within / slab.classBytes] !== 1) {
      throw new DsmError('DSM_ERR_FREE', `free: offset ${offset} is not the start of a live allocation (double free, or not from this heap)`);
    }
    const slot = within / slab.classBytes;
    slab.live[slot] = 0;
    slab.liveCount -= 1;
    this.bytesInUse -= slab.classBytes;
    const partial = this.partialSet(slab.classBytes);
    if (slab.liveCount === 0) {
      partial.delete(slab);
      this.slabs.delete(slab.page);
      this.releasable.push({ firstPage: slab.page, pageCount: 1 });
      this.freePages(slab.page, 1);
    } else {
      partial.add(slab);
    }
  }

  /** The usable size of a live allocation. */
  sizeOf(offset: number): number {
    const pageCount = this.large.get(offset / pageBytes);
    if (pageCount !== undefined) return pageCount * pageBytes;
    const slab = this.slabs.get(Math.floor(offset / pageBytes));
    if (slab === undefined) throw new DsmError('DSM_ERR_FREE', `sizeOf: offset ${offset} is not a live allocation`);
    return slab.classBytes;
  }

  /** Page runs that became free since the last call: give their memory back to the OS. */
  takeReleasablePages(): PageRange[] {
    return this.releasable.splice(0);
  }

  stats(): { bytesInUse: number; bytesReserved: number; chunkCount: number; freeRunCount: number; slabCount: number } {
    return {
      bytesInUse: this.bytesInUse,
      bytesReserved: this.chunkCount * arenaChunkBytes,
      chunkCount: this.chunkCount,
      freeRunCount: this.freeRuns.size,
      slabCount: this.slabs.size,
    };
  }

  private partialSet(classBytes: number): Set<Slab> {
    let set = this.partialSlabs.get(classBytes);
    if (set === undefined) {
      set = new Set();
      this.partialSlabs.set(classBytes, set);
    }
    return set;
  }

  private allocSmall(byteLength: number): Allocation {
    let classBytes = smallBlockBytesMin;
    while (classBytes < byteLength) classBytes *= 2;
    const partial = this.partialSet(classBytes);
    let slab: Slab | undefined = partial.values().next().value;
    if (slab === undefined) {
      const page = this.takePages(1);
      const slotCount = pageBytes / classBytes;
      slab = { page, classBytes, slotCount, liveCount: 0, live: new Uint8Array(slotCount), used: new Uint8Array(slotCount) };
      this.slabs.set(page, slab);
      partial.add(slab);
    }
    const slot = slab.live.indexOf(0);
    assert(slot >= 0, 'a partial slab has a free slot');
    slab.live[slot] = 1;
    slab.liveCount += 1;
    if (slab.liveCount === slab.slotCount) partial.delete(slab);
    this.bytesInUse += classBytes;
    const offset = slab.page * pageBytes + slot * classBytes;
    const zeroRanges = slab.used[slot] === 1 ? [{ offset, byteLength: classBytes }] : [];
    slab.used[slot] = 1;
    return { offset, zeroRanges };
  }

  /**
   * Whole pages, first of all best fit over this node's free runs, which may
   * span chunks: a block is not rounded up to whole chunks, and a block larger
   * than a chunk leaves the rest of its last chunk to other blocks (issue 13:
   * in a small region, 1 MiB chunks per block of 1 to 3 MiB wasted a third of
   * it and cut it into pieces no block fitted).
   */
  private allocLarge(byteLength: number): Allocation {
    const pageCount = Math.ceil(byteLength / pageBytes);
    const firstPage = this.takePages(pageCount);
    this.large.set(firstPage, pageCount);
    this.bytesInUse += pageCount * pageBytes;
    return { offset: firstPage * pageBytes, zeroRanges: [] };
  }

  /** Best fit over free runs (the shortest that holds the pages, the lowest of equals); grows when none fits. */
  private takePages(pageCount: number): number {
    let best = -1;
    let bestCount = Infinity;
    for (const [first, count] of this.freeRuns) {
      if (count >= pageCount && (count < bestCount || (count === bestCount && first < best))) {
        best = first;
        bestCount = count;
      }
    }
    if (best < 0) best = this.grow(pageCount);
    const count = this.freeRuns.get(best);
    assert(count !== undefined && count >= pageCount, 'the chosen run holds the pages');
    this.deleteRun(best);
    if (count > pageCount) this.setRun(best + pageCount, count - pageCount);
    return best;
  }

  /**
   * No free run here holds `pageCount` pages: the shortest span of this
   * node's free pages and the authority's free chunks together that does
   * (the lowest of equals). Takes the chunks the block covers in it; returns
   * the span's first page, where a free run now holds the block.
   */
  private grow(pageCount: number): number {
    const ppc = this.pagesPerChunk;
    const spans: Array<[number, number]> = [...this.freeRuns];
    const chunkRuns = this.authority.freeRuns();
    for (let index = 0; index + 1 < chunkRuns.length; index += 2) spans.push([chunkRuns[index]! * ppc, chunkRuns[index + 1]! * ppc]);
    spans.sort((a, b) => a[0] - b[0]);
    let bestStart = -1;
    let bestLength = Infinity;
    let longest = 0;
    for (let index = 0; index < spans.length;) {
      const start = spans[index]![0];
      let end = start + spans[index]![1];
      index += 1;
      while (index < spans.length && spans[index]![0] === end) {
        end += spans[index]![1];
        index += 1;
      }
      longest = Math.max(longest, end - start);
      if (end - start >= pageCount && end - start < bestLength) {
        bestStart = start;
        bestLength = end - start;
      }
    }
    if (bestStart < 0) {
      // Buffers dropped but not yet collected by their thread count as in use.
      throw regionFull(this.authority.regionBytes, `: ${pageCount * pageBytes} bytes asked, ${this.bytesInUse} bytes in blocks not freed yet ` +
        `(a dropped buffer is freed when its thread collects it), the longest free run ${longest * pageBytes} bytes`);
    }
    const end = bestStart + pageCount;
    for (let chunk = Math.floor(bestStart / ppc); chunk < Math.ceil(end / ppc); chunk += 1) {
      if (!this.authority.isFree(chunk)) continue;
      this.authority.takeAt(this.nodeId, chunk, 1);
      this.chunkCount += 1;
      this.addFreeRun(chunk * ppc, ppc);
    }
    return bestStart;
  }

  /** Pages of this node's that became free: coalesced with their neighbours; whole chunks go back to the authority. */
  private freePages(firstPage: number, pageCount: number): void {
    const [first, count] = this.addFreeRun(firstPage, pageCount);
    const ppc = this.pagesPerChunk;
    const firstWhole = Math.ceil(first / ppc);
    const endWhole = Math.floor((first + count) / ppc);
    if (endWhole <= firstWhole) return;
    this.deleteRun(first);
    this.authority.give(this.nodeId, firstWhole, endWhole - firstWhole);
    this.chunkCount -= endWhole - firstWhole;
    if (firstWhole * ppc > first) this.setRun(first, firstWhole * ppc - first);
    if (first + count > endWhole * ppc) this.setRun(endWhole * ppc, first + count - endWhole * ppc);
  }

  /** Adds a free run, coalesced with the runs just before and just after it; returns the run it is now part of. */
  private addFreeRun(firstPage: number, pageCount: number): [number, number] {
    let first = firstPage;
    let count = pageCount;
    const before = this.runEnds.get(first);
    if (before !== undefined) {
      count += this.freeRuns.get(before)!;
      this.deleteRun(before);
      first = before;
    }
    const after = this.freeRuns.get(first + count);
    if (after !== undefined) {
      this.deleteRun(first + count);
      count += after;
    }
    this.setRun(first, count);
    return [first, count];
  }

  private setRun(first: number, count: number): void {
    this.freeRuns.set(first, count);
    this.runEnds.set(first + count, first);
  }

  private deleteRun(first: number): void {
    const count = this.freeRuns.get(first);
    assert(count !== undefined, 'the run exists');
    this.freeRuns.delete(first);
    this.runEnds.delete(first + count);
  }
}
