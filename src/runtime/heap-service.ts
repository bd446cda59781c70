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
// zeros travel as diffs and write notices like any write.
//
// A buffer that crossed nodes is reused once no node holds it, found by
// weighted reference counting (no message when a reference is copied, and no
// ordering needed between nodes): each time the owner (the allocating node)
// sends the buffer away it gives the message a weight and counts it
// outstanding; a node that forwards it gives half of its own weight; a node
// whose last buffer over the range is collected returns its weight to the owner
// with a release (rtRangeRelease), which the owner acquires, so every write
// made there happens before a reuse. The owner reuses the range when its own
// buffers are gone and every weight it gave is back. Returns are lazy: they
// wait at the node that dropped the buffer until the owner runs short and asks
// every node (rtRangeCollect, with its failed allocation's own collection), so
// a run that never runs short sends none (matmul on 16 nodes sent 60 at its
// end when they went at once). A node whose weight is
// down to 1 cannot split it: the range is then kept for good (its release says
// so). A weight travels in the cloned buffer's descriptor (src/channel/clone.ts)
// as a token; the receiving thread makes its buffer, then hands the token to
// its manager (the 'hold' request). A report that no buffer lives over the
// range, made before the buffer, is either withdrawn when the buffer is made
// (still queued) or was taken by the manager before the hold (the manager
// takes a batch of reports in one turn); none can be made while the buffer
// lives. So a report of an older buffer is never taken for the new one's.
// (Session 18: the hold came first, and a report queued between the hold and
// the buffer was taken later as the new buffer's: the owner reused the range
// under a live buffer, alloc-escape-churn under load.) An explicit free of a
// buffer that crossed nodes keeps it for good.
//
// Pending holds (session 39): a message no thread ever reads (its worker was
// terminated with it queued, or before it started with the buffer in its
// workerData, or ended with no listener) made no 'hold', so its weight was
// never held here nor returned, and the owner never reused the range (4 MiB
// buffers handed to such workers filled a 32 MiB region in 7 rounds; plain
// node frees them). The clone lists its weighted descriptors after the value
// (src/channel/clone.ts, heldRangesOf), the manager that hands a message to a
// thread here keeps them as that thread's pending holds (expectHolds), the
// thread's 'hold' takes one (matched by range and token: the same values),
// and what is left when the thread's channel closes (after what it queued was
// served) is given back as if its buffer had been collected at once
// (endpointEnded). A message the manager drops (no thread to take it) gives
// its weights back the same way (abandonHolds). A hold matched to no pending
// one (a path that lists none) is held as before.
//
// Slice borrowing (issue 13): a node whose slice has no room asks the other
// nodes in turn for free chunks of theirs (rtChunkBorrow); the lender marks
// them the borrower's for good. The failed allocation fails as exhausted
// meanwhile and the thread retries (src/threads/setup.ts), by then usually
// from the borrowed chunks. When no node has a run long enough in its own
// table (a buffer larger than a slice, or free chunks scattered over several
// slices), the next retry gathers one: the borrower asks every node for its
// free chunks (rtChunkSurvey, rtChunkFree), picks the run of free chunks, its
// own among them, that borrows the fewest (gatherPlan, src/alloc/heap.ts),
// and asks each lender in turn for exactly its segment (rtChunkBorrow `at`).
// A segment no longer free ends the gather; what it got stays the borrower's.
// A lender gives chunks it never handed out first
// (zero everywhere, no copy of them holds other bytes). When it has none, it
// lends free chunks it used before, and the lend is a synchronization: the
// lender releases to the borrower (releaseFor) and the borrower acquires
// (acquireFrom) before it adopts them, so the lender's writes there happen
// before the borrower's reuse. Without that, a borrower that still held a
// valid copy of such a page from long ago zeroed it against its stale twin:
// bytes that were zero in its old copy but not at the home made no diff, and
// the reused range showed the lender's old bytes (alloc-churn on 4 nodes, about
// one run in three, before used chunks were kept at home). With the acquire,
// the copy is invalidated, the zeroing writes (the allocating thread zeroes
// memory that was used: AllocReplyZeroed) fault in the home's bytes, and their
// diffs hold every byte that changed.

import type { AllocReplyWait, AllocReplyZeroed } from '../channel/wire.js';
import type { ConsistencyInfo } from '../protocol/messages.js';
import { sliceChunksOf } from '../protocol/placement.js';
import type { NativeMmu } from '../memory/native.js';
import { DsmError, assert } from '../errors.js';
import { parseRangeToken, rangeEscapeWeight, rangeOwnerUnknown, rangeToken, rangeTokenOwners } from '../channel/range-tokens.js';
import { ChunkAuthority, NodeHeap } from '../alloc/index.js';
import { allocBatchCountMax, allocCacheBlockBytesMax, allocCollectWaitMsMax, allocSettleMs, arenaChunkBytes, collectAnswerPollMs, chunkBorrowCountMin, chunkGatherSegmentCountMax, chunkSurveyRunCountMax, heapPressureFreeFraction, collectMinorRunMax, collectRequestGapMs, pageBytes, rangeReturnBatchMax, rangeReturnEagerMs } from '../constants.js';

/** Slice borrowing messages between nodes' allocation services. */
export type ChunkMessage =
  /** `at`: exactly chunks [at, at + count), which extend a free run of the borrower's across the lender's edge. */
  | { type: 'rtChunkBorrow'; min: number; count: number; at?: number }
  /**
   * count 0: none free. `used`: the lender handed out memory in them before;
   * then `info` is the lender's release to the borrower, which acquires it
   * before it adopts the chunks.
   */
  | { type: 'rtChunkLend'; firstChunk: number; count: number; used: boolean; info?: ConsistencyInfo }
  /** A borrower that found no run to borrow asks every node for its free chunks (a gather, see the header). */
  | { type: 'rtChunkSurvey' }
  /** The answer: the sender's free chunks as runs, [first, count, first, count, …]. */
  | { type: 'rtChunkFree'; runs: number[] };

/** A node whose last buffer over a range it does not own was collected returns its weight (see the header). */
/** A share of another node's allocation, dropped here. */
export type RangeShare = { offset: number; byteLength: number; weight: number; keep: boolean };
export type RangeMessage =
  /** Shares of the receiver's allocations dropped at the sender, with the sender's release. */
  | { type: 'rtRangeRelease'; ranges: RangeShare[]; info: ConsistencyInfo }
  /**
   * The sender runs short: collect, and return the shares of its allocations
   * dropped here. `ask` (wire version 10): the sender's count of its asks,
   * echoed by the answer.
   */
  | { type: 'rtRangeCollect'; ask?: number }
  /**
   * The answer to rtRangeCollect `ask`: a full collection asked of the
   * sender's threads after that ask came has run in every one of them (or
   * allocCollectWaitMsMax passed) at least allocSettleMs ago, and what it
   * freed was drained and the asker's shares returned (before this, on the
   * same link). See answerCollectAsks.
   */
  | { type: 'rtRangeCollected'; ask: number };

// Range tokens live in src/channel/range-tokens.ts (an app thread makes the owner's for a buffer it made).
export { parseRangeToken, rangeEscapeWeight, rangeToken, rangeTokenOwners };

/** Messages between the nodes' allocation services (the heap lane). */
export type HeapMessage = ChunkMessage | RangeMessage;

/** A lend of used chunks is a release by the lender and an acquire by the borrower (the cluster node's engine). */
export interface LendBounds {
  release(toNode: number): ConsistencyInfo;
  acquire(fromNode: number, info: ConsistencyInfo): void;
}


export class HeapService {
  private readonly native: NativeMmu;
  private readonly heap: NodeHeap;
  /** Live allocations: offset -> byte length asked for. */
  private readonly live = new Map<number, number>();

  /** One node: reused memory is zeroed or released through the manager's view (no other copies exist). */
  private readonly reuse: boolean;
  /** Cluster, the owner's side: allocations whose buffer was sent to another node (see the header). */
  private readonly escaped = new Map<number, { outstanding: number; keep: boolean; localAlive: boolean }>();
  /** Weights given for ranges no longer live here (onEscapeGiven), by offset: a return takes from them first. */
  private readonly strayGiven = new Map<number, number>();
  /** Cluster, other nodes' allocations held here: offset -> owner, byte length, weight, kept for good. */
  private readonly held = new Map<number, { owner: number; byteLength: number; weight: number; keep: boolean }>();
  /** Shares of other nodes' allocations dropped here, by owner, until the owner asks (or too many wait). */
  private readonly dropped = new Map<number, RangeShare[]>();
  /**
   * Weighted descriptors of messages handed to a thread here and not yet held
   * by it, by thread ([offset, byteLength, token, share, …]; see the header):
   * the thread's hold names the token the message carries and takes `share`,
   * the token itself but for a BroadcastChannel message handed to several
   * threads, whose weight they share (expectSharedHolds).
   */
  private readonly pending = new Map<object, number[]>();
  /**
   * Blocks handed to threads' allocation caches (allocBatch), by thread: offset
   * -> byte length, until this process reports no buffer over the block lives
   * (its collection) or the thread ends, when the blocks it never made buffers
   * of go back (endpointEnded).
   */
  private readonly cached = new Map<object, Map<number, number>>();
  /** The thread whose cache each of those blocks went to. */
  private readonly cachedBy = new Map<number, object>();
  /** Threads whose channel closed: what comes for them is given back at once. */
  private readonly ended = new WeakSet<object>();
  /** Weights given back for messages no thread here read (pending at a thread's end, or dropped by the manager). */
  holdsAbandoned = 0;
  /** Until when shares dropped here go back to their owner at once (it asked), by owner. */
  private readonly returnEagerUntilMs = new Map<number, number>();
  private holdersAskedAtMs = -Infinity;
  /** This node's asks of the other nodes to collect (rtRangeCollect's `ask`), and per node the last one it answered. */
  private holdersAskCount = 0;
  private readonly collectAnswered: number[];
  /** The least of collectAnswered over the other nodes when a borrow round last found no lender (-1: none yet). */
  private lendRefusedAsk = -1;
  /** Other nodes' asks to collect not answered yet: node -> its last ask, and when its first unanswered ask came. */
  private readonly collectAsksOwed = new Map<number, { ask: number; sinceMs: number }>();
  /** The first full collection asked of this node's threads while asks were owed, and whether all of them have run it since. */
  private fullForAsks: { atMs: number; ran: boolean } | null = null;
  private collectAnswerTimer: ReturnType<typeof setTimeout> | null = null;
  /** Ranges of other nodes given back to their owners, and ranges of this node reused after crossing nodes. */
  rangesReturned = 0;
  rangesReclaimed = 0;
  /** Cluster: one bit per page handed out at least once (such a page may hold old bytes). */
  private readonly pagesUsed: Uint8Array;
  private readonly regionBytes: number;
  private readonly nodeId: number;
  private readonly nodeCount: number;
  private readonly sliceBytes: number;
  private collectAskedAtMs = -Infinity;
  /** Bytes of buffers collected since the last collection request, and the minor requests made in a row (see askCollect). */
  private freedSinceAsk = 0;
  private minorAsksInRow = 0;
  /** Free memory here under which threads are asked to collect (see checkPressure). */
  private readonly pressureBytes: number;
  private allocatedSinceCheck = 0;
  private underPressure = false;
  /** Times this node found itself under pressure and asked for collections. */
  pressureCollects = 0;
  /** Times a failed allocation asked every app thread to collect. */
  collectRequestCount = 0;
  private readonly authority: ChunkAuthority;
  /** Sends a chunk message to another node (set by the cluster node; null: no borrowing). */
  private sendChunks: ((toNode: number, message: HeapMessage) => void) | null = null;
  /** How a lend of used chunks synchronizes (null: only never-used chunks are lent). */
  private lendBounds: LendBounds | null = null;
  /** The borrow in flight: whom it asked, how many lenders it asked in this round, and what it asked for. */
  private borrowing: { lender: number; asked: number; min: number; count: number; at?: number } | null = null;
  private lenderNext: number;
  /** The last borrow round found no lender with room (the region, not the slice, is full). */
  private borrowRoundFailed = false;
  /** After a failed round, one gather: a survey of every node's free chunks, then asks for exactly the chunks of a run (`at`). */
  private gatherTried = false;
  /** The survey in flight: the runs reported so far, by node, and the chunk count it looks for. */
  private survey: { min: number; reported: Map<number, number[]> } | null = null;
  /** The gather's segments still to ask for, after the one in flight. */
  private gatherRest: Array<{ lender: number; firstChunk: number; count: number }> = [];
  /** Chunks borrowed from other nodes, and lent to them. */
  chunksBorrowed = 0;
  chunksLent = 0;
  /** Bytes freed, ranges reclaimed and chunks borrowed here, ever: a failed allocation waits while this grows (allocOrWait). */
  private progress = 0;
  /** When this node last asked its threads for a full collection, and last found that no node would lend. */
  private fullCollectAskedAtMs = -Infinity;
  private lendRefusedAtMs = -Infinity;
  /** Allocations fail here: the progress counter when the current round of asks began, and when. */
  private exhaustion: { progress: number; sinceMs: number; fullAskMs: number | null; holdersAskMs: number | null; holdersAsk: number | null } | null = null;

  constructor(native: NativeMmu, regionBytes: number, nodeId = 0, nodeCount = 1) {
    this.native = native;
    this.regionBytes = regionBytes;
    this.nodeId = nodeId;
    this.nodeCount = nodeCount;
    this.collectAnswered = new Array<number>(nodeCount).fill(0);
    this.sliceBytes = regionBytes;
    const authority = new ChunkAuthority(regionBytes);
    this.authority = authority;
    this.lenderNext = (nodeId + 1) % nodeCount;
    if (nodeCount > 1) {
      // Each node allocates from its own slice of the region, so no node asks
      // another before it allocates (the chunk authority is not networked yet).
      // The last node's slice also holds the chunks the division leaves over: a
      // chunk in no slice would be free in every node's table, and two nodes
      // could take it at once (or lend it to a node that thinks it free).
      // The same division as block placement's (src/protocol/placement.ts): a node's slice is homed at it.
      const sliceChunks = sliceChunksOf(authority.chunkCount, nodeCount);
      const chunksOf = (node: number): number => (node === nodeCount - 1 ? authority.chunkCount - node * sliceChunks : sliceChunks);
      for (let node = 0; node < nodeCount; node += 1) authority.take(node, chunksOf(node));
      authority.give(nodeId, nodeId * sliceChunks, chunksOf(nodeId));
      assert(authority.chunksFree === chunksOf(nodeId), 'every chunk is in exactly one slice');
      this.sliceBytes = chunksOf(nodeId) * arenaChunkBytes;
    }
    this.heap = new NodeHeap(nodeId, authority);
    this.pressureBytes = Math.max(2 * arenaChunkBytes, Math.floor(regionBytes / nodeCount * heapPressureFreeFraction));
    this.reuse = nodeCount === 1;
    this.pagesUsed = new Uint8Array(nodeCount === 1 ? 0 : Math.ceil(regionBytes / pageBytes / 8));
  }

  /**
   * The manager's allocation: alloc, or, when it found no room, either the
   * region is really full (DSM_ERR_REGION_EXHAUSTED) or the thread waits and
   * asks again (AllocReplyWait). Really full: since nothing was last freed or
   * borrowed here (a round of asks), this node asked its threads for a full
   * collection and every other node to collect, its threads ran it (at most
   * allocCollectWaitMsMax is waited for one that does not), and allocSettleMs
   * after each ask still nothing came back here and no node lent. A thread that retries
   * while progress goes on waits at most allocWaitMsMax (src/threads/setup.ts).
   */
  allocOrWait(byteLength: number): number | AllocReplyZeroed | AllocReplyWait {
    const startMs = performance.now();
    try {
      const reply = this.alloc(byteLength);
      this.exhaustion = null;
      return reply;
    } catch (error) {
      if ((error as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw error;
      const now = performance.now();
      if (this.exhaustion === null || this.exhaustion.progress !== this.progress) {
        this.exhaustion = { progress: this.progress, sinceMs: startMs, fullAskMs: null, holdersAskMs: null, holdersAsk: null };
      }
      const round = this.exhaustion;
      // The first asks of this round (each is repeated at most every collectRequestGapMs while threads retry).
      if (round.fullAskMs === null && this.fullCollectAskedAtMs >= round.sinceMs) round.fullAskMs = this.fullCollectAskedAtMs;
      if (round.holdersAskMs === null && this.holdersAskedAtMs >= round.sinceMs) {
        round.holdersAskMs = this.holdersAskedAtMs;
        round.holdersAsk = this.holdersAskCount;
      }
      // Every thread of this node ran the collection (or one that has not yet is given allocCollectWaitMsMax).
      const sinceFull = round.fullAskMs === null ? -1 : now - round.fullAskMs;
      const collected = sinceFull >= allocCollectWaitMsMax || (sinceFull >= allocSettleMs && this.native.collectsPending() === 0);
      // Every other node answered an ask of this round once a full collection had run in its threads (what it
      // freed drained, its shares back here), and a borrow round found no lender after those answers. (Before
      // session 26 this was a time: a refusal allocSettleMs after the ask. Under CI load another node's threads
      // took longer to collect, and a 4-node run was told the region was full while their dead buffers held it.)
      // Should a node not answer, the ask's time decides, at the longest wait for a thread's collection.
      const nobodyLends = this.nodeCount === 1 || this.sendChunks === null
        || (round.holdersAsk !== null && this.lendRefusedAsk >= round.holdersAsk)
        || (round.holdersAskMs !== null && this.lendRefusedAtMs - round.holdersAskMs >= allocCollectWaitMsMax + allocSettleMs);
      if (collected && nobodyLends) throw error;
      return { wait: true };
    }
  }

  /**
   * Up to `count` blocks of `byteLength` bytes for `thread`'s allocation cache
   * (src/threads/setup.ts): [offset, zero, …], at least one (or the first
   * allocation's wait, or its error). One only under memory pressure. Each is
   * the thread's until this process reports no buffer over it lives; at the
   * thread's end, the ones it never made buffers of go back.
   */
  allocBatch(byteLength: number, count: number, thread: object): number[] | AllocReplyWait {
    assert(Number.isInteger(count) && count >= 1 && count <= allocBatchCountMax, 'a batch within allocBatchCountMax');
    assert(byteLength > 0 && byteLength <= allocCacheBlockBytesMax, 'batched blocks are small');
    const first = this.allocOrWait(byteLength);
    if (typeof first === 'object' && 'wait' in first) return first;
    const blocks: number[] = [];
    const add = (reply: number | AllocReplyZeroed): void => {
      const offset = typeof reply === 'number' ? reply : reply.offset;
      blocks.push(offset, typeof reply === 'number' ? 0 : 1);
      let mine = this.cached.get(thread);
      if (mine === undefined) {
        mine = new Map();
        this.cached.set(thread, mine);
      }
      mine.set(offset, byteLength);
      this.cachedBy.set(offset, thread);
    };
    add(first);
    for (let k = 1; k < count && !this.underPressure; k += 1) {
      try {
        add(this.alloc(byteLength));
      } catch (error) {
        if ((error as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw error;
        break;
      }
    }
    // A thread that ended meanwhile takes none of them.
    if (this.ended.has(thread)) this.cachedGone(thread);
    return blocks;
  }

  /** A block of a thread's cache is no longer its to give back: made into a buffer and reported collected, or freed. */
  private uncache(offset: number): void {
    const thread = this.cachedBy.get(offset);
    if (thread === undefined) return;
    this.cachedBy.delete(offset);
    const mine = this.cached.get(thread)!;
    mine.delete(offset);
    if (mine.size === 0) this.cached.delete(thread);
  }

  /** `thread` ended: the blocks of its cache it never made buffers of go back (a buffer made, alive or reported, is left to its collection). */
  private cachedGone(thread: object): void {
    const mine = this.cached.get(thread);
    if (mine === undefined) return;
    this.cached.delete(thread);
    for (const [offset, byteLength] of mine) {
      this.cachedBy.delete(offset);
      if (this.live.get(offset) !== byteLength || this.native.storeOrReport(offset, byteLength)) continue;
      this.cachedReturned += 1;
      this.onBufferCollected(offset, byteLength);
    }
  }

  /** Blocks of ended threads' caches given back unused (for tests and stats). */
  cachedReturned = 0;

  alloc(byteLength: number): number | AllocReplyZeroed {
    // Under pressure, buffers collected since the last look come back first.
    if (this.underPressure) this.drainCollected();
    let allocation;
    try {
      allocation = this.heap.alloc(byteLength);
    } catch (error) {
      if ((error as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw error;
      // Buffers collected a moment ago may not have been reported yet.
      if (!this.drainCollected()) {
        // Dead buffers may sit in any thread's heap (V8 counts none of their
        // memory as its own): ask every app thread to collect. The asking
        // thread retries (src/threads/setup.ts) while they do.
        this.askCollect();
        this.askHolders();
        this.borrow(byteLength);
        throw this.exhausted(byteLength, error as DsmError);
      }
      try {
        allocation = this.heap.alloc(byteLength);
      } catch (retryError) {
        if ((retryError as { code?: string }).code !== 'DSM_ERR_REGION_EXHAUSTED') throw retryError;
        this.askHolders();
        this.borrow(byteLength);
        throw this.exhausted(byteLength, retryError as DsmError);
      }
    }
    const { offset, zeroRanges } = allocation;
    assert(!this.live.has(offset), 'a fresh allocation is not live already');
    this.live.set(offset, byteLength);
    this.allocatedSinceCheck += byteLength;
    if (this.allocatedSinceCheck >= this.pressureBytes / 8) this.checkPressure();
    if (this.reuse) {
      for (const range of zeroRanges) this.native.zero(range.offset, range.byteLength);
      return offset;
    }
    return this.markPagesUsed(offset, byteLength) ? { offset, zero: true } : offset;
  }

  /**
   * V8 collects a thread's dead SharedArrayBuffers when its external memory
   * grows by tens of MiB, which a region of that size (or a node's slice of
   * it) never reaches: a program whose threads drop buffers fast filled the
   * region with garbage and its allocations waited for collections (on
   * several nodes, for other nodes' too). So when this node's free memory
   * falls under heapPressureFreeFraction of its share of the region
   * (`pressureBytes`), its threads, and in a cluster every node's, are asked
   * to collect (at most once per collectRequestGapMs), and allocations drain
   * what they freed.
   */
  private checkPressure(): void {
    this.allocatedSinceCheck = 0;
    const { bytesInUse, bytesReserved } = this.heap.stats();
    const free = this.authority.chunksFree * arenaChunkBytes + bytesReserved - bytesInUse;
    this.underPressure = free < this.pressureBytes;
    if (!this.underPressure) return;
    this.pressureCollects += 1;
    this.askCollect();
    this.askHolders();
  }

  /** Frees the buffers collected since the last look; true when there were any. */
  private drainCollected(): boolean {
    const freed = this.native.drainFreed();
    for (let index = 0; index < freed.length; index += 2) this.onBufferCollected(freed[index]!, freed[index + 1]!);
    return freed.length > 0;
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

  /**
   * A buffer over the range at `offset` is being sent to other nodes: the
   * token (rangeToken) its descriptor carries. `copies` is how many nodes the
   * message goes to with that same token (a BroadcastChannel message goes to
   * every other node: session 40; before, its buffers were kept for good), so
   * the weight given is the token's times `copies`. Without lend bounds (race
   * mode, a unit test) a range that crossed nodes is kept for good.
   */
  onEscape(offset: number, copies = 1): number {
    assert(Number.isInteger(copies) && copies >= 1 && copies <= Math.max(1, this.nodeCount - 1), 'a message goes to at least one other node, at most every other');
    const live = this.live.has(offset);
    if (live) {
      const entry = this.escapedEntry(offset);
      if (entry.keep) return rangeToken(0, rangeOwnerUnknown);
      entry.outstanding += rangeEscapeWeight * copies;
      return rangeToken(rangeEscapeWeight, this.nodeId);
    }
    const held = this.held.get(offset);
    if (held === undefined) return rangeToken(0, rangeOwnerUnknown);
    // Half to a single copy (this node keeps the rest); a broadcast's copies and this node share it evenly. At most
    // an owner's weight a copy: a node that received a buffer many times holds their sum, more than a token carries
    // (users15 views-back: 33 views of one buffer held, then one posted on, failed the token's assertion).
    const given = Math.min(rangeEscapeWeight, Math.floor(held.weight / (copies + 1)));
    if (given === 0) {
      // Nothing left to split: kept for good, which this node's release will tell the owner.
      held.keep = true;
      return rangeToken(0, held.owner);
    }
    held.weight -= given * copies;
    return rangeToken(given, held.owner);
  }

  /**
   * A thread here gave a buffer it made the owner's weight itself ('escape'
   * `given`: src/threads/setup.ts): counted outstanding as onEscape counts
   * the weight it gives. A range that is not live here any more (the program
   * freed it with dsm's free while a thread still posted a buffer over it)
   * keeps the weight in `strayGiven`, which its returns take first.
   */
  onEscapeGiven(offset: number): void {
    if (!this.live.has(offset)) {
      this.strayGiven.set(offset, (this.strayGiven.get(offset) ?? 0) + rangeEscapeWeight);
      return;
    }
    this.escapedEntry(offset).outstanding += rangeEscapeWeight;
  }

  /** The owner's record of a live range sent away (made at its first escape; kept for good without lend bounds). */
  private escapedEntry(offset: number): { outstanding: number; keep: boolean; localAlive: boolean } {
    let entry = this.escaped.get(offset);
    if (entry === undefined) {
      entry = { outstanding: 0, keep: this.lendBounds === null, localAlive: true };
      this.escaped.set(offset, entry);
    }
    return entry;
  }

  /** What of a weight coming back for the range at `offset` is not a stray one's (strayGiven takes its part first). */
  private takeStray(offset: number, weight: number): number {
    const stray = this.strayGiven.get(offset);
    if (stray === undefined || !Number.isSafeInteger(weight) || weight <= 0) return weight;
    const taken = Math.min(stray, weight);
    if (taken === stray) this.strayGiven.delete(offset);
    else this.strayGiven.set(offset, stray - taken);
    return weight - taken;
  }

  /** Set by the manager: counts the given escapes its threads posted and it has not served yet (see onBufferCollected). */
  beforeCollected: (() => void) | null = null;

  /** A buffer in a BroadcastChannel message, which goes to every other node with one token (remote-workers 'bc-post'). */
  onBroadcastEscape(offset: number): number {
    return this.onEscape(offset, Math.max(1, this.nodeCount - 1));
  }

  /**
   * A thread here has made its buffer over a range it received from another
   * node, with the descriptor's token. Collections reported so far are taken
   * first (see the header).
   */
  onHold(offset: number, byteLength: number, token: number, thread?: object): void {
    let parsed = this.checkedToken(offset, token);
    if (parsed.owner === rangeOwnerUnknown) return;
    if (thread !== undefined && parsed.weight > 0) {
      // A thread whose channel closed holds nothing (its buffers went with it; what was pending went back).
      if (this.ended.has(thread)) return;
      const share = this.takePending(thread, offset, byteLength, token);
      if (share !== null) parsed = parseRangeToken(share)!;
    }
    this.drainCollected();
    if (parsed.owner === this.nodeId) {
      // Back home: the weight returns with it, and a buffer lives here again.
      const weight = this.takeStray(offset, parsed.weight);
      const entry = this.escaped.get(offset);
      if (entry === undefined) return;
      entry.outstanding -= weight;
      assert(entry.outstanding >= 0, 'a range\'s weight comes back at most once');
      if (parsed.weight === 0) entry.keep = true;
      entry.localAlive = true;
      return;
    }
    const held = this.held.get(offset);
    if (held === undefined) {
      this.held.set(offset, { owner: parsed.owner, byteLength, weight: parsed.weight, keep: parsed.weight === 0 });
      return;
    }
    assert(held.owner === parsed.owner && held.byteLength === byteLength, 'one owner and length per range');
    held.weight += parsed.weight;
    if (parsed.weight === 0) held.keep = true;
  }

  private checkedToken(offset: number, token: number): { weight: number; owner: number } {
    const parsed = parseRangeToken(token);
    if (parsed === null || (parsed.owner !== rangeOwnerUnknown && parsed.owner >= this.nodeCount)) {
      throw new DsmError('DSM_ERR_FRAME', `a received buffer at offset ${offset} carries a malformed range token ${token}`);
    }
    return parsed;
  }

  /**
   * A message with these weighted descriptors ([offset, byteLength, token, …],
   * heldRangesOf) is handed to `thread` here: its holds are pending until the
   * thread makes the buffers (see the header). A thread that ended already
   * gives them back at once.
   */
  expectHolds(thread: object, held: readonly number[]): void {
    this.expectSharedHolds([thread], held);
  }

  /**
   * Takes `thread`'s pending hold of (offset, byteLength, token): the token
   * it takes (the same, or its share of a message handed to several threads),
   * or null when none is pending (a path that lists none: held as it comes).
   */
  private takePending(thread: object, offset: number, byteLength: number, token: number): number | null {
    const list = this.pending.get(thread);
    if (list === undefined) return null;
    for (let index = 0; index < list.length; index += 4) {
      if (list[index] === offset && list[index + 1] === byteLength && list[index + 2] === token) {
        const share = list[index + 3]!;
        list.splice(index, 4);
        if (list.length === 0) this.pending.delete(thread);
        return share;
      }
    }
    return null;
  }

  /**
   * A BroadcastChannel message with these weighted descriptors is handed to
   * each of `threads` here: each token's weight (this node's, given once) is
   * split among them, each thread's share pending until it holds the buffer
   * (every thread makes its own) or gives it back ('holds-unread', its end).
   * A share of 0 (a weight smaller than the threads) keeps the range for good.
   * One thread takes the token's whole weight (expectHolds); none: it goes back.
   */
  expectSharedHolds(threads: readonly object[], held: readonly number[]): void {
    if (held.length === 0) return;
    if (threads.length === 0) {
      this.abandonHolds(held);
      return;
    }
    this.checkHeld(held);
    if (threads.some((thread) => this.ended.has(thread))) this.drainCollected();
    for (let index = 0; index < held.length; index += 3) {
      const offset = held[index]!, byteLength = held[index + 1]!, token = held[index + 2]!;
      const { weight, owner } = parseRangeToken(token)!;
      const each = Math.floor(weight / threads.length);
      threads.forEach((thread, position) => {
        const share = rangeToken(each + (position === 0 ? weight - each * threads.length : 0), owner);
        if (this.ended.has(thread)) {
          this.giveBack(offset, byteLength, share);
          return;
        }
        let list = this.pending.get(thread);
        if (list === undefined) {
          list = [];
          this.pending.set(thread, list);
        }
        list.push(offset, byteLength, token, share);
      });
    }
  }

  /** `thread` read a message with these weighted descriptors and made none of its buffers (no instance open): they go back. */
  holdsUnread(thread: object, held: readonly number[]): void {
    if (held.length === 0 || this.ended.has(thread)) return;
    this.checkHeld(held);
    this.drainCollected();
    for (let index = 0; index < held.length; index += 3) {
      const offset = held[index]!, byteLength = held[index + 1]!, token = held[index + 2]!;
      const taken = this.takePending(thread, offset, byteLength, token);
      if (taken !== null) this.giveBack(offset, byteLength, taken);
    }
  }

  /** A message with these weighted descriptors that no thread here will read: their weights go back to their owners. */
  abandonHolds(held: readonly number[]): void {
    if (held.length === 0) return;
    this.checkHeld(held);
    this.drainCollected();
    for (let index = 0; index < held.length; index += 3) this.giveBack(held[index]!, held[index + 1]!, held[index + 2]!);
  }

  /** `thread`'s channel closed (what it queued was served first): what it never held goes back. */
  endpointEnded(thread: object): void {
    this.ended.add(thread);
    this.cachedGone(thread);
    const list = this.pending.get(thread);
    if (list === undefined) return;
    this.pending.delete(thread);
    this.drainCollected();
    for (let index = 0; index < list.length; index += 4) this.giveBack(list[index]!, list[index + 1]!, list[index + 3]!);
  }

  /** Pending holds here (messages handed to threads and not read yet), for tests and stats. */
  get pendingHolds(): number {
    let count = 0;
    for (const list of this.pending.values()) count += list.length / 4;
    return count;
  }

  private checkHeld(held: readonly number[]): void {
    if (held.length % 3 !== 0) throw new DsmError('DSM_ERR_FRAME', `a message's list of held ranges has ${held.length} numbers, not triples`);
    for (let index = 0; index < held.length; index += 3) {
      const offset = held[index]!, byteLength = held[index + 1]!;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(byteLength) || offset < 0 || byteLength <= 0 || offset + byteLength > this.regionBytes) {
        throw new DsmError('DSM_ERR_FRAME', `a message lists a held range [${offset}, +${byteLength}) outside the ${this.regionBytes}-byte region`);
      }
      this.checkedToken(offset, held[index + 2]!);
    }
  }

  /** The weight a descriptor carried, never held here: back to its owner, as the weight of a buffer collected at once. */
  private giveBack(offset: number, byteLength: number, token: number): void {
    const { weight, owner } = parseRangeToken(token)!;
    if (owner === rangeOwnerUnknown || weight === 0) return;
    this.holdsAbandoned += 1;
    if (owner === this.nodeId) {
      const entry = this.escaped.get(offset);
      if (entry === undefined || weight > entry.outstanding) throw new DsmError('DSM_ERR_FRAME', `a message gave back a weight of ${weight} for the range at offset ${offset}, more than this node gave out`);
      entry.outstanding -= weight;
      this.reclaimIfFree(offset);
      return;
    }
    const held = this.held.get(offset);
    if (held !== undefined) {
      // A buffer over it lives here: the weight goes back with the node's own when that is collected.
      assert(held.owner === owner && held.byteLength === byteLength, 'one owner and length per range');
      held.weight += weight;
      return;
    }
    this.dropShare(owner, { offset, byteLength, weight, keep: false });
  }

  /** A share of `owner`'s range dropped here: waits for the owner's ask, or goes now (a full batch, or the owner asked lately). */
  private dropShare(owner: number, share: RangeShare): void {
    let shares = this.dropped.get(owner);
    if (shares === undefined) {
      shares = [];
      this.dropped.set(owner, shares);
    }
    shares.push(share);
    if (shares.length >= rangeReturnBatchMax || performance.now() < (this.returnEagerUntilMs.get(owner) ?? -Infinity)) this.returnShares(owner);
  }

  /** The owner: another node gave its shares of ranges back (with its release). */
  private onRangeRelease(from: number, message: Extract<RangeMessage, { type: 'rtRangeRelease' }>): void {
    if (this.lendBounds === null) throw new DsmError('DSM_ERR_FRAME', `node ${from} returned ranges where none were lent`);
    this.lendBounds.acquire(from, message.info);
    for (const share of message.ranges) {
      const weight = this.takeStray(share.offset, share.weight);
      if (weight === 0 && share.weight > 0) continue;
      const entry = this.escaped.get(share.offset);
      const length = this.live.get(share.offset);
      if (entry === undefined || (length !== undefined && length !== share.byteLength) || !Number.isSafeInteger(weight) || weight < 0 || weight > entry.outstanding) {
        throw new DsmError('DSM_ERR_FRAME', `node ${from} returned a weight of ${share.weight} for the range at offset ${share.offset}, which this node did not send it`);
      }
      entry.outstanding -= weight;
      if (share.keep) entry.keep = true;
      this.reclaimIfFree(share.offset);
    }
  }

  /**
   * Runs short: asks every other node to collect and return its shares of
   * this node's ranges (at most once per collectRequestGapMs). Also when no
   * range of this node's crossed: dead buffers in other nodes' threads hold
   * chunks this node could then borrow (V8 counts no dsm memory as its own, and
   * a region of tens of MiB never reaches its external-memory trigger).
   */
  private askHolders(): void {
    if (this.sendChunks === null) return;
    const now = performance.now();
    if (now - this.holdersAskedAtMs < collectRequestGapMs) return;
    this.holdersAskedAtMs = now;
    this.holdersAskCount += 1;
    for (let node = 0; node < this.nodeCount; node += 1) if (node !== this.nodeId) this.sendChunks(node, { type: 'rtRangeCollect', ask: this.holdersAskCount });
  }

  /** Sends the shares of `owner`'s ranges dropped here back to it, in one message with this node's release. */
  private returnShares(owner: number): void {
    const shares = this.dropped.get(owner);
    if (shares === undefined || shares.length === 0 || this.sendChunks === null || this.lendBounds === null) return;
    this.dropped.delete(owner);
    this.rangesReturned += shares.length;
    this.sendChunks(owner, { type: 'rtRangeRelease', ranges: shares, info: this.lendBounds.release(owner) });
  }

  /** The owner reuses a range that crossed nodes once no buffer over it is alive anywhere. */
  private reclaimIfFree(offset: number): void {
    const entry = this.escaped.get(offset);
    if (entry === undefined || entry.localAlive || entry.outstanding !== 0 || entry.keep) return;
    this.escaped.delete(offset);
    this.progress += 1;
    this.rangesReclaimed += 1;
    this.release(offset);
  }

  /**
   * Asks every app thread to collect, at most once per collectRequestGapMs. A
   * minor collection first: it frees the buffers a thread dropped since its
   * last one (most of them) for a fraction of a full one's cost, which is tens
   * of milliseconds a thread when several run at once on a loaded machine (a
   * small region nearly full asked for one every 50 ms: issue 13). A full one
   * when the last minor one freed nothing here, and after collectMinorRunMax
   * minor ones in a row (buffers that outlived a minor collection need one).
   * A full one runs in the manager's own heap too: Node routes a
   * postMessageToThread between threads of one node through the process's
   * main thread, which deserializes the value there, and the buffers it made
   * stayed until the manager happened to collect (session 40: 4 MiB posts
   * through a 32 MiB region ran out after ~7; users13/ptt-reclaim.mjs).
   */
  private askCollect(): void {
    const now = performance.now();
    if (now - this.collectAskedAtMs < collectRequestGapMs) return;
    this.collectAskedAtMs = now;
    this.collectRequestCount += 1;
    const minor = this.minorAsksInRow < collectMinorRunMax && (this.minorAsksInRow === 0 || this.freedSinceAsk > 0);
    this.minorAsksInRow = minor ? this.minorAsksInRow + 1 : 0;
    this.freedSinceAsk = 0;
    if (!minor) {
      this.fullCollectAskedAtMs = now;
      if (this.collectAsksOwed.size > 0 && this.fullForAsks === null) this.fullForAsks = { atMs: now, ran: false };
    }
    this.native.collectEverywhere(minor);
    if (!minor) this.native.collectManager();
    if (!minor) this.answerCollectAsks();
  }

  /** Wires slice borrowing: how to reach other nodes' allocation services, and how a lend of used chunks synchronizes. */
  borrowThrough(send: (toNode: number, message: HeapMessage) => void, bounds: LendBounds | null = null): void {
    this.sendChunks = send;
    this.lendBounds = bounds;
  }

  /** Chunks lent that this node had handed out before (each such lend carried a release). */
  usedChunksLent = 0;

  /** Asks the next lender for chunks enough for `byteLength` (one borrow in flight at a time). */
  private borrow(byteLength: number): void {
    if (this.sendChunks === null || this.nodeCount === 1 || this.borrowing !== null || this.survey !== null) return;
    const min = Math.max(1, Math.ceil(byteLength / arenaChunkBytes));
    if ((this.borrowRoundFailed || this.authority.chunksFree >= min) && !this.gatherTried) {
      // No node had a run of `min` free in its own table, or this node has
      // `min` free chunks but apart (after much borrowing and lending, a
      // small region's chunks are scattered among the nodes): the free chunks
      // of several tables (this node's among them) may make one. Ask every node.
      this.gatherTried = true;
      this.survey = { min, reported: new Map() };
      for (let node = 0; node < this.nodeCount; node += 1) if (node !== this.nodeId) this.sendChunks(node, { type: 'rtChunkSurvey' });
      return;
    }
    this.gatherTried = false;
    this.borrowing = { lender: this.lenderNext, asked: 1, min, count: Math.max(min, chunkBorrowCountMin) };
    this.sendChunks(this.lenderNext, { type: 'rtChunkBorrow', min, count: this.borrowing.count });
  }

  /** A chunk message from another node. */
  onChunkMessage(from: number, message: HeapMessage): void {
    assert(from !== this.nodeId && from >= 0 && from < this.nodeCount, 'chunk messages come from other nodes');
    if (message.type === 'rtRangeRelease') {
      this.onRangeRelease(from, message);
      return;
    }
    if (message.type === 'rtRangeCollect') {
      // The owner runs short: this node's threads collect, and its shares go back now and for a while; the ask is
      // answered once a full collection asked after it has run here (answerCollectAsks).
      if (message.ask !== undefined) {
        if (!Number.isSafeInteger(message.ask) || message.ask < 1) {
          throw new DsmError('DSM_ERR_FRAME', `node ${from} asked for a collection with ask number ${String(message.ask)}, not a positive integer: a node of another dsm version?`);
        }
        this.collectAsksOwed.set(from, { ask: message.ask, sinceMs: this.collectAsksOwed.get(from)?.sinceMs ?? performance.now() });
      }
      this.askCollect();
      this.drainCollected();
      this.returnEagerUntilMs.set(from, performance.now() + rangeReturnEagerMs);
      this.returnShares(from);
      return;
    }
    if (message.type === 'rtRangeCollected') {
      const { ask } = message;
      if (!Number.isSafeInteger(ask) || ask < 1 || ask > this.holdersAskCount) {
        throw new DsmError('DSM_ERR_FRAME', `node ${from} answered collection ask ${String(ask)}, which this node did not make (it made ${this.holdersAskCount}): a node of another dsm version?`);
      }
      this.collectAnswered[from] = Math.max(this.collectAnswered[from]!, ask);
      return;
    }
    if (message.type === 'rtChunkSurvey') {
      this.drainCollected();
      let runs = this.authority.freeRuns();
      if (runs.length > 2 * chunkSurveyRunCountMax) {
        // The longest runs, in address order: a gather's window is made of long ones.
        const pairs: Array<[number, number]> = [];
        for (let index = 0; index < runs.length; index += 2) pairs.push([runs[index]!, runs[index + 1]!]);
        pairs.sort((a, b) => b[1] - a[1]);
        runs = pairs.slice(0, chunkSurveyRunCountMax).sort((a, b) => a[0] - b[0]).flat();
      }
      // A node gathers when the region is nearly full: dead buffers in this
      // node's threads may hold chunks that would make its run (V8 counts no
      // dsm memory as its own). They free them for the gather's next try.
      this.askCollect();
      this.sendChunks?.(from, { type: 'rtChunkFree', runs });
      return;
    }
    if (message.type === 'rtChunkFree') {
      this.onSurveyReply(from, message.runs);
      return;
    }
    if (message.type === 'rtChunkBorrow') {
      // Buffers collected here since the last look free their chunks first.
      this.drainCollected();
      // Chunks no allocation here ever used first; then, when the lend can
      // synchronize, free chunks that were used (see the header).
      const pagesPerChunk = arenaChunkBytes / pageBytes;
      const unused = (chunk: number): boolean => {
        for (let page = chunk * pagesPerChunk; page < (chunk + 1) * pagesPerChunk; page += 8) if (this.pagesUsed[page >> 3] !== 0) return false;
        return true;
      };
      const lendSome = (lendable?: (chunk: number) => boolean) => (message.at === undefined
        ? this.authority.lend(from, message.min, message.count, lendable)
        : this.authority.lendAt(from, message.at, message.count, lendable));
      let lent = lendSome(unused);
      let used = false;
      if (lent === null && this.lendBounds !== null) {
        lent = lendSome();
        if (lent !== null) {
          for (let chunk = lent.firstChunk; chunk < lent.firstChunk + lent.count && !used; chunk += 1) used = !unused(chunk);
          if (used) this.usedChunksLent += lent.count;
        }
      }
      if (lent !== null) this.chunksLent += lent.count;
      // None to lend: dead buffers in this node's threads may hold chunks (V8
      // counts no dsm memory as its own, so an idle thread may never collect).
      // Ask them to collect; the borrower's next round (its thread retries) finds what they free.
      else this.askCollect();
      const reply: ChunkMessage = { type: 'rtChunkLend', firstChunk: lent?.firstChunk ?? 0, count: lent?.count ?? 0, used };
      // The release comes after the chunks left this node's table: nothing here can write them after it.
      if (used) reply.info = this.lendBounds!.release(from);
      this.sendChunks?.(from, reply);
      return;
    }
    const borrowing = this.borrowing;
    if (borrowing === null || borrowing.lender !== from || (message.count > 0 && borrowing.at !== undefined && (message.firstChunk !== borrowing.at || message.count !== borrowing.count))) {
      throw new DsmError('DSM_ERR_FRAME', `node ${from} lent ${message.count} chunk(s) at chunk ${message.firstChunk}, which this node did not ask it for: a node of another dsm version?`);
    }
    this.lenderNext = (this.lenderNext + 1) % this.nodeCount;
    if (this.lenderNext === this.nodeId) this.lenderNext = (this.lenderNext + 1) % this.nodeCount;
    if (message.count > 0) {
      if (message.used) {
        // The lender's writes there happen before any allocation here reuses them (see the header).
        if (message.info === undefined || this.lendBounds === null) {
          throw new DsmError('DSM_ERR_FRAME', `node ${from} lent ${message.count} used chunk(s) at chunk ${message.firstChunk} without its release: a node of another dsm version?`);
        }
        this.lendBounds.acquire(from, message.info);
      }
      this.authority.adopt(this.nodeId, message.firstChunk, message.count);
      this.chunksBorrowed += message.count;
      this.progress += message.count;
      this.borrowing = null;
      if (message.used) {
        // Old bytes may be there (at their homes, in copies): allocations here are zeroed by their threads.
        const pagesPerChunk = arenaChunkBytes / pageBytes;
        this.markPagesUsed(message.firstChunk * arenaChunkBytes, message.count * pagesPerChunk * pageBytes);
      }
      // A gather asks for its segments one at a time.
      const next = this.gatherRest.shift();
      if (next !== undefined) {
        this.askAt(next);
        return;
      }
      this.borrowRoundFailed = false;
      return;
    }
    if (borrowing.asked >= this.nodeCount - 1) {
      // Every other node said no (or a gather's lender no longer has its chunks
      // free): the region itself is full (for now). Chunks a gather already
      // got stay here, free for this node's allocations and lends.
      this.borrowing = null;
      this.gatherRest = [];
      this.borrowRoundFailed = true;
      this.noteLendRefused();
      return;
    }
    borrowing.lender = this.lenderNext;
    borrowing.asked += 1;
    this.sendChunks?.(this.lenderNext, { type: 'rtChunkBorrow', min: borrowing.min, count: borrowing.count });
  }

  /** No node would lend: when, and the asks to collect every other node had answered after a full collection by then. */
  private noteLendRefused(): void {
    this.lendRefusedAtMs = performance.now();
    let answered = Infinity;
    for (let node = 0; node < this.nodeCount; node += 1) if (node !== this.nodeId) answered = Math.min(answered, this.collectAnswered[node]!);
    this.lendRefusedAsk = answered === Infinity ? -1 : answered;
  }

  /**
   * Answers other nodes' asks to collect (rtRangeCollected): an ask is
   * answered once a full collection asked of this node's threads after it
   * came (askCollect asks minor ones first, while they free memory; the
   * asker's retries escalate) has run in all of them (collectsPending seen at
   * zero since; or allocCollectWaitMsMax passed: a thread blocked in a system
   * call) and allocSettleMs passed since it was asked (V8 frees backing
   * stores on a background sweeper, a moment after its collection); what it
   * freed is drained and the asker's shares go back first. Else it looks
   * again in collectAnswerPollMs. Public for tests, which run it on a fake clock.
   */
  answerCollectAsks(): void {
    if (this.collectAnswerTimer !== null) clearTimeout(this.collectAnswerTimer);
    this.collectAnswerTimer = null;
    if (this.collectAsksOwed.size === 0 || this.sendChunks === null) {
      this.fullForAsks = null;
      return;
    }
    const full = this.fullForAsks;
    const now = performance.now();
    if (full !== null && !full.ran && this.native.collectsPending() === 0) full.ran = true;
    const sinceFull = full === null ? -1 : now - full.atMs;
    if (full !== null && (sinceFull >= allocCollectWaitMsMax || (full.ran && sinceFull >= allocSettleMs))) {
      this.drainCollected();
      for (const [owner, owed] of this.collectAsksOwed) {
        if (owed.sinceMs > full.atMs) continue;
        this.collectAsksOwed.delete(owner);
        this.returnShares(owner);
        this.sendChunks(owner, { type: 'rtRangeCollected', ask: owed.ask });
      }
      // Asks that came after it wait for the next full collection (askCollect calls here again).
      this.fullForAsks = null;
      return;
    }
    if (full === null) return;
    this.collectAnswerTimer = setTimeout(() => { this.answerCollectAsks(); }, collectAnswerPollMs);
    this.collectAnswerTimer.unref?.();
  }

  /** Asks a gather's lender for exactly the chunks of its segment; a refusal ends the gather. */
  private askAt(segment: { lender: number; firstChunk: number; count: number }): void {
    this.borrowing = { lender: segment.lender, asked: this.nodeCount - 1, min: segment.count, count: segment.count, at: segment.firstChunk };
    this.sendChunks?.(segment.lender, { type: 'rtChunkBorrow', min: segment.count, count: segment.count, at: segment.firstChunk });
  }

  /** A node's free chunks for this node's survey; when every node has answered, the gather's plan. */
  private onSurveyReply(from: number, runs: unknown): void {
    const survey = this.survey;
    const chunkCount = this.authority.chunkCount;
    const valid = Array.isArray(runs) && runs.length % 2 === 0 && runs.length <= chunkCount
      && runs.every((value, index) => Number.isSafeInteger(value) && (index % 2 === 0 ? value >= 0 : value >= 1 && runs[index - 1] + value <= chunkCount));
    if (survey === null || survey.reported.has(from) || !valid) {
      throw new DsmError('DSM_ERR_FRAME', `node ${from} reported free chunks ${survey === null || survey.reported.has(from) ? 'this node did not ask for' : 'outside the region or malformed'}: a node of another dsm version?`);
    }
    survey.reported.set(from, runs as number[]);
    if (survey.reported.size < this.nodeCount - 1) return;
    this.survey = null;
    const plan = this.authority.gatherPlan(this.nodeId, survey.reported, survey.min, chunkGatherSegmentCountMax);
    if (plan === null || plan.length === 0) {
      // No run anywhere (the region is full), or one here already (freed meanwhile): the thread's retry finds out.
      this.borrowRoundFailed = plan === null;
      if (plan === null) this.noteLendRefused();
      return;
    }
    this.gatherRest = plan.slice(1);
    this.askAt(plan[0]!);
  }

  /**
   * The error for an allocation that found no room, naming the limit hit: a
   * node's slice fills first; then it borrows free chunks of other nodes'
   * slices; the region is full when none has any.
   */
  exhausted(byteLength: number, cause: DsmError): DsmError {
    if (this.nodeCount === 1) return cause;
    const { bytesInUse } = this.heap.stats();
    const where = this.borrowRoundFailed
      ? `the global region is full: node ${this.nodeId}'s slice has no room for ${byteLength} bytes (${bytesInUse} bytes in use there, ${this.chunksBorrowed} chunks borrowed) and the free chunks of all the nodes hold no run of ${Math.ceil(byteLength / arenaChunkBytes)} chunk(s)`
      : `node ${this.nodeId}'s slice of the global region is full: ${byteLength} bytes asked, ${bytesInUse} of its ${this.sliceBytes} bytes in use (${this.chunksBorrowed} chunks borrowed from other nodes; a borrow ${this.sendChunks === null ? 'is not possible here' : 'is under way or found no room'})`;
    return new DsmError('DSM_ERR_REGION_EXHAUSTED',
      `${where}; each of the ${this.nodeCount} nodes allocates from 1/${this.nodeCount} of --region-bytes ${this.regionBytes} and borrows free chunks of the others' ` +
      `(memory sent to another node is reused once no node holds it); run with a larger --region-bytes`);
  }

  /** The program's explicit free. A buffer that crossed nodes is kept for good (other nodes may still use it). */
  free(offset: number): void {
    this.uncache(offset);
    const entry = this.escaped.get(offset);
    if (entry !== undefined) {
      entry.keep = true;
      this.live.delete(offset);
      return;
    }
    this.release(offset);
  }

  /** The range's memory goes back to this node's heap. */
  private release(offset: number): void {
    if (!this.reuse) {
      if (!this.live.has(offset)) return;
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
    // Escapes a thread posted while it held the buffer count before its collection does.
    this.beforeCollected?.();
    if (this.live.get(offset) === byteLength) this.uncache(offset);
    this.freedSinceAsk += byteLength;
    this.progress += byteLength;
    const held = this.held.get(offset);
    if (held !== undefined && held.byteLength === byteLength && this.live.get(offset) !== byteLength) {
      // Another node's range: its share waits here for its owner (see the header).
      this.held.delete(offset);
      this.dropShare(held.owner, { offset, byteLength, weight: held.weight, keep: held.keep });
      return;
    }
    if (this.live.get(offset) !== byteLength) return;
    const entry = this.escaped.get(offset);
    if (entry === undefined) {
      this.release(offset);
      return;
    }
    entry.localAlive = false;
    this.reclaimIfFree(offset);
  }

  private releaseFreePages(): void {
    for (const range of this.heap.takeReleasablePages()) this.native.release(range.firstPage, range.pageCount);
  }

  get liveCount(): number {
    return this.live.size;
  }
}
