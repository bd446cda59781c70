// The manager's side of allocation: serves `new SharedArrayBuffer(n)` and the
// explicit alloc/free API from this node's heap, zero-fills reused memory,
// and frees a buffer's memory when no thread holds it any more.

import type { NativeMmu } from '../memory/native.js';
import { assert } from '../errors.js';
import { ChunkAuthority, NodeHeap } from '../alloc/index.js';

export class HeapService {
  private readonly native: NativeMmu;
  private readonly heap: NodeHeap;
  /** Live allocations: offset -> byte length asked for. */
  private readonly live = new Map<number, number>();

  constructor(native: NativeMmu, regionBytes: number) {
    this.native = native;
    this.heap = new NodeHeap(0, new ChunkAuthority(regionBytes));
  }

  alloc(byteLength: number): number {
    let allocation;
    try {
      allocation = this.heap.alloc(byteLength);
    } catch (error) {
      if ((error as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw error;
      // Buffers collected a moment ago may not have been reported yet.
      const freed = this.native.drainFreed();
      if (freed.length === 0) throw error;
      for (let index = 0; index < freed.length; index += 2) this.onBufferCollected(freed[index]!, freed[index + 1]!);
      allocation = this.heap.alloc(byteLength);
    }
    const { offset, zeroRanges } = allocation;
    for (const range of zeroRanges) this.native.zero(range.offset, range.byteLength);
    assert(!this.live.has(offset), 'a fresh allocation is not live already');
    this.live.set(offset, byteLength);
    return offset;
  }

  free(offset: number): void {
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
