// The manager's side of allocation: serves `new SharedArrayBuffer(n)` and the
// explicit alloc/free API from this node's heap, zero-fills reused memory,
// and frees a buffer's memory when no thread holds it any more.
//
// In a cluster (issue 13): a buffer that never left its node (never serialized
// to cross nodes, see 'escape') is reused once this node's threads drop it;
// no other node can hold a reference to it, so no other node can read it
// until it is handed out again. Reused memory is not zeroed through the
// manager's view nor released to the OS (either would bypass the coherence
// protocol: the home's copy would keep the old bytes); the allocating thread
// zeroes it through the ordinary write path instead (AllocReplyZeroed), so the
// zeros travel as diffs and write notices like any write. A buffer that
// crossed nodes is never reused: its references on other nodes are not counted.

import type { AllocReplyZeroed } from '../channel/wire.js';
import type { NativeMmu } from '../memory/native.js';
import { DsmError, assert } from '../errors.js';
import { ChunkAuthority, NodeHeap } from '../alloc/index.js';
import { arenaChunkBytes, collectRequestGapMs, pageBytes } from '../constants.js';


export class HeapService {
  private readonly native: NativeMmu;
  private readonly heap: NodeHeap;
  /** Live allocations: offset -> byte length asked for. */
  private readonly live = new Map<number, number>();

  /** One node: reused memory is zeroed or released through the manager's view (no other copies exist). */
  private readonly reuse: boolean;
  /** Cluster: allocations whose buffer was sent to another node; never reused. */
  private readonly escaped = new Set<number>();
  /** Cluster: one bit per page handed out at least once (such a page may hold old bytes). */
  private readonly pagesUsed: Uint8Array;
  private readonly regionBytes: number;
  private readonly nodeId: number;
  private readonly nodeCount: number;
  private readonly sliceBytes: number;
  private collectAskedAtMs = -Infinity;
  /** Times a failed allocation asked every app thread to collect. */
  collectRequestCount = 0;

  constructor(native: NativeMmu, regionBytes: number, nodeId = 0, nodeCount = 1) {
    this.native = native;
    this.regionBytes = regionBytes;
    this.nodeId = nodeId;
    this.nodeCount = nodeCount;
    this.sliceBytes = regionBytes;
    const authority = new ChunkAuthority(regionBytes);
    if (nodeCount > 1) {
      // Each node allocates from its own slice of the region, so no node asks
      // another before it allocates (the chunk authority is not networked yet).
      const sliceChunks = Math.floor(authority.chunkCount / nodeCount);
      for (let node = 0; node < nodeCount; node += 1) authority.take(node, sliceChunks);
      authority.give(nodeId, nodeId * sliceChunks, sliceChunks);
      this.sliceBytes = sliceChunks * arenaChunkBytes;
    }
    this.heap = new NodeHeap(nodeId, authority);
    this.reuse = nodeCount === 1;
    this.pagesUsed = new Uint8Array(nodeCount === 1 ? 0 : Math.ceil(regionBytes / pageBytes / 8));
  }

  alloc(byteLength: number): number | AllocReplyZeroed {
    let allocation;
    try {
      allocation = this.heap.alloc(byteLength);
    } catch (error) {
      if ((error as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw error;
      // Buffers collected a moment ago may not have been reported yet.
      const freed = this.native.drainFreed();
      if (freed.length === 0) {
        // Dead buffers may sit in any thread's heap (V8 counts none of their
        // memory as its own): ask every app thread to collect. The asking
        // thread retries (src/threads/setup.ts) while they do.
        this.askCollect();
        throw this.exhausted(byteLength, error as DsmError);
      }
      for (let index = 0; index < freed.length; index += 2) this.onBufferCollected(freed[index]!, freed[index + 1]!);
      try {
        allocation = this.heap.alloc(byteLength);
      } catch (retryError) {
        if ((retryError as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw retryError;
        throw this.exhausted(byteLength, retryError as DsmError);
      }
    }
    const { offset, zeroRanges } = allocation;
    assert(!this.live.has(offset), 'a fresh allocation is not live already');
    this.live.set(offset, byteLength);
    if (this.reuse) {
      for (const range of zeroRanges) this.native.zero(range.offset, range.byteLength);
      return offset;
    }
    return this.markPagesUsed(offset, byteLength) ? { offset, zero: true } : offset;
  }

  /** Marks the pages of [offset, +byteLength) used; true when any was used before. */
  private markPagesUsed(offset: number, byteLength: number): boolean {
    let usedBefore = false;
    const lastPage = Math.floor((offset + byteLength - 1) / pageBytes);
    for (let page = Math.floor(offset / pageBytes); page <= lastPage; page += 1) {
      const bit = 1 << (page & 7);
      if ((this.pagesUsed[page >> 3]! & bit) !== 0) usedBefore = true;
      this.pagesUsed[page >> 3]! |= bit;
    }
    return usedBefore;
  }

  /** A buffer over this allocation is being sent to another node: it is never reused. */
  onEscape(offset: number): void {
    if (this.live.has(offset)) this.escaped.add(offset);
  }

  /** Asks every app thread to collect, at most once per collectRequestGapMs: a full collection is not free. */
  private askCollect(): void {
    const now = performance.now();
    if (now - this.collectAskedAtMs < collectRequestGapMs) return;
    this.collectAskedAtMs = now;
    this.collectRequestCount += 1;
    this.native.collectEverywhere();
  }

  /**
   * The error for an allocation that found no room, naming the limit hit: in
   * a cluster each node allocates from its own slice of the region and freed
   * memory is not reused yet, so the slice fills long before the region does.
   */
  exhausted(byteLength: number, cause: DsmError): DsmError {
    if (this.nodeCount === 1) return cause;
    const { bytesInUse } = this.heap.stats();
    return new DsmError('DSM_ERR_REGION_EXHAUSTED',
      `node ${this.nodeId}'s slice of the global region is full: ${byteLength} bytes asked, ${bytesInUse} of its ${this.sliceBytes} bytes in use ` +
      `(each of the ${this.nodeCount} nodes allocates from 1/${this.nodeCount} of --region-bytes ${this.regionBytes}, and memory sent to another node is not reused); ` +
      `run with a larger --region-bytes (at least ${this.nodeCount}× what one node allocates over the run)`);
  }

  free(offset: number): void {
    if (!this.reuse) {
      if (!this.live.has(offset) || this.escaped.delete(offset)) {
        // Sent to another node (or not this node's): other nodes may still use it.
        this.live.delete(offset);
        return;
      }
      this.heap.free(offset);
      this.live.delete(offset);
      // Not released to the OS: the pages' homes keep their bytes, so a
      // release here would make this node's copy differ from the home's.
      this.heap.takeReleasablePages();
      return;
    }
    this.heap.free(offset);
    this.live.delete(offset);
    this.releaseFreePages();
  }

  /** No SharedArrayBuffer over [offset, +byteLength) is alive in this process any more. */
  onBufferCollected(offset: number, byteLength: number): void {
    if (this.live.get(offset) !== byteLength) return;
    this.free(offset);
  }

  private releaseFreePages(): void {
    for (const range of this.heap.takeReleasablePages()) this.native.release(range.firstPage, range.pageCount);
  }

  get liveCount(): number {
    return this.live.size;
  }
}
