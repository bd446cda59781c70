// hlrc: the need of pages that an acquire made invalid while they had no
// PageState (page-state.ts). A page state is an object and three vectors,
// about 400 bytes; an acquire of a large write notice (a remote worker's
// start acquires its parent's fill: Jacobi's 4,096 pages) built one per page
// only to mark it invalid, and the garbage collection of those objects was
// most of the acquire on a loaded machine (docs/EVALUATION.md, "an acquire
// of a large write notice"). Such a page is invalid with version zero (no
// state: never touched by the protocol) and its need is kept here, in typed
// chunks, until the page is first used (fault, fetch, read-ahead, a diff or
// a lend at its home): HlrcCoherence.pageState then builds its state from it.
//
// Sparse: a dense nodeCount x pageCount table is 4 GiB for the largest
// region (2^24 pages) and 64 nodes; chunks of chunkPageCount pages are
// allocated when a page of theirs is first held and dropped when none is.

import { assert } from '../errors.js';

/** Pages per chunk: 256 pages x 2 nodes x 8 bytes is 4 KiB (64 nodes: 128 KiB). */
const chunkPageCount = 256;

interface Chunk {
  /** need[(page % chunkPageCount) * nodeCount + writer]. */
  readonly need: Float64Array;
  /** 1 for a page held. */
  readonly held: Uint8Array;
  /** Pages held. */
  count: number;
}

export class StatelessNeeds {
  private readonly chunks: Array<Chunk | undefined>;
  private heldCount = 0;

  constructor(pageCount: number, private readonly nodeCount: number) {
    this.chunks = new Array<Chunk | undefined>(Math.ceil(pageCount / chunkPageCount));
  }

  /** Pages held (invalid, with no state). */
  get size(): number { return this.heldCount; }

  has(page: number): boolean {
    const chunk = this.chunks[Math.floor(page / chunkPageCount)];
    return chunk !== undefined && chunk.held[page % chunkPageCount] === 1;
  }

  /**
   * Raises the page's need from `writer` to at least `index` (an interval
   * index, >= 1). Returns whether the page was not held before: a page with
   * no state and not held is valid, so this call made it invalid.
   */
  raise(page: number, writer: number, index: number): boolean {
    assert(index >= 1 && writer >= 0 && writer < this.nodeCount, 'a need is an interval of a node');
    const chunk = this.chunkOf(page);
    const slot = page % chunkPageCount;
    const at = slot * this.nodeCount + writer;
    if (chunk.need[at]! < index) chunk.need[at] = index;
    return this.holdSlot(chunk, slot);
  }

  /**
   * Holds the page (invalid) with the need it has, none if it was not held:
   * a copy the stale refresh drops that this node never touched (valid at
   * zero with no state), whose next use fetches the home's copy, whatever
   * its version. Returns whether the page was not held before.
   */
  hold(page: number): boolean {
    return this.holdSlot(this.chunkOf(page), page % chunkPageCount);
  }

  private chunkOf(page: number): Chunk {
    assert(page >= 0 && page < this.chunks.length * chunkPageCount, 'a page of the region');
    const c = Math.floor(page / chunkPageCount);
    let chunk = this.chunks[c];
    if (chunk === undefined) {
      chunk = { need: new Float64Array(chunkPageCount * this.nodeCount), held: new Uint8Array(chunkPageCount), count: 0 };
      this.chunks[c] = chunk;
    }
    return chunk;
  }

  private holdSlot(chunk: Chunk, slot: number): boolean {
    if (chunk.held[slot] === 1) return false;
    chunk.held[slot] = 1;
    chunk.count++;
    this.heldCount++;
    return true;
  }

  /** The page's need, removed from the table (its state is being built), or null if it is not held. */
  take(page: number): number[] | null {
    const c = Math.floor(page / chunkPageCount);
    const chunk = this.chunks[c];
    const slot = page % chunkPageCount;
    if (chunk === undefined || chunk.held[slot] !== 1) return null;
    const need = new Array<number>(this.nodeCount);
    const base = slot * this.nodeCount;
    for (let n = 0; n < this.nodeCount; n++) {
      need[n] = chunk.need[base + n]!;
      chunk.need[base + n] = 0;
    }
    chunk.held[slot] = 0;
    this.heldCount--;
    if (--chunk.count === 0) this.chunks[c] = undefined;
    return need;
  }
}
