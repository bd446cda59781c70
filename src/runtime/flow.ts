// Flow control of one node: a full link parks the producers, it never throws.
//
// The transport queues every message it is given (nothing is dropped or
// reordered) and tells how many bytes wait per link. The engine is sans-I/O
// and emits its messages synchronously, so the wait happens here, before the
// engine is asked to produce: work that makes traffic on behalf of app threads
// (their sync requests, releases, posts, remote-worker events) is admitted in
// arrival order, one piece at a time, only while every link holds less than
// the limit. An app thread whose request waits here is parked (its channel
// call is not answered yet). Incoming traffic is never held: reading,
// answering page fetches and applying diffs go on, so two nodes sending to
// each other cannot deadlock.
//
// A release can carry a diff per dirty page, far more than the limit. Before
// admitting the next piece of work, the gate sends the diffs of the dirty
// pages ahead in pieces of earlyFlushPageCount pages (engine.flushDirty),
// waiting for the links to drain between pieces, so the release itself only
// sends what is left (empty diffs for the pages already flushed). With
// deferred diffs (DSM_DEFER_DIFFS=1, off by default: it made QuickSort
// slower; session 11, flush17) the order is reversed: the engine sends a
// large release's write notices with its sync message at once and keeps the
// diffs (and their twins) back, and the gate streams them after it
// (engine.flushDeferred, the same pieces and drains) while later work is
// admitted as usual (homes and acquirers wait for the diffs their write
// notices name). The early flush also runs in the background when dirty
// pages (each with a twin) pile up between releases. Past dirtyPageCountMax
// twins (dirty or deferred) the writers themselves wait: the native
// write fast path is paused, so each first store to a clean page faults to
// the manager, which holds it until the background flush has brought the
// dirty pages below dirtyPageCountFlushMin. Twins stay bounded whatever a
// program writes between two synchronizations.

import { dirtyPageCountFlushMin, dirtyPageCountMax, earlyFlushPageCount, earlyFlushPageCountMin, sendQueueBytesMin } from '../constants.js';
import { assert } from '../errors.js';
import type { Engine } from '../protocol/engine.js';

/** Pieces of work waiting for admission (each is at most a parked app thread's request or a worker event). */
const admissionCountMax = 1 << 16;

/** Pieces one pass of the deferred stream sends before it starts another (a bound on one loop). */
const streamPieceCountMax = Math.ceil(dirtyPageCountMax / earlyFlushPageCount);

/**
 * Lets the event loop run (incoming messages, timers, heartbeats) before the
 * next piece: a link that never fills (the kernel takes everything) must not
 * turn a long flush into one blocking step.
 */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The link limit: DSM_SEND_QUEUE_BYTES (bytes, or with a k/m/g suffix) or sendQueueBytesMax (read in src/env.ts). */
export { sendQueueBytesFromEnvironment } from '../env.js';

export interface FlowLinks {
  /** Bytes queued to a peer and not yet handed to the kernel. */
  queuedBytes(nodeId: number): number;
  /**
   * The peers whose queue may hold bytes: every peer with queued bytes is in it
   * (others may be, until asked). Most of the time it is empty (loopback and
   * LAN writes of small frames go to the kernel at once), so the check at
   * every admission reads one size instead of every link's queue.
   */
  readonly queuingPeerIds: ReadonlySet<number>;
  on(event: 'drain', listener: (nodeId: number) => void): unknown;
}

export class FlowGate {
  readonly queueBytesMax: number;
  private readonly links: FlowLinks;
  private readonly engine: Pick<Engine, 'dirtyPageCount' | 'flushDirty' | 'deferredPageCount' | 'flushDeferred'>;
  /** Whether the engine defers a large release's diffs (EngineOptions.deferDiffPageCountMin): no flush ahead of work then. */
  private readonly defers: boolean;
  private streaming = false;
  /** Test hook DSM_TEST_HOOK_HOLD_DEFERRED: deferred diffs are never sent (their readers wait; a node death must still end the run). */
  private deferredHeld = false;
  private readonly admission: Array<() => void> = [];
  private pumping = false;
  private drainWaiters: Array<() => void> = [];
  private readonly pauseWrites: (paused: boolean) => void;
  /** Write faults held while too many pages are dirty (each a parked writer). */
  private readonly heldWrites: Array<() => void> = [];
  private writesPaused = false;
  /** Counters for tests and diagnostics: work that had to wait, early-flushed pages, deferred diffs streamed, held writers. */
  parkedCount = 0;
  flushedPageCount = 0;
  streamedPageCount = 0;
  heldWriteCount = 0;

  constructor(
    links: FlowLinks, engine: Pick<Engine, 'dirtyPageCount' | 'flushDirty' | 'deferredPageCount' | 'flushDeferred'>, queueBytesMax: number,
    pauseWrites: (paused: boolean) => void, defers = false,
  ) {
    assert(queueBytesMax >= sendQueueBytesMin, 'the link limit is at least sendQueueBytesMin');
    this.links = links;
    this.engine = engine;
    this.defers = defers;
    this.queueBytesMax = queueBytesMax;
    this.pauseWrites = pauseWrites;
    links.on('drain', () => this.wakeIfDrained());
  }

  /** Test only (DSM_TEST_HOOK_HOLD_DEFERRED): deferred diffs stay unsent from now on. */
  holdDeferredForTest(): void { this.deferredHeld = true; }

  /** For failure messages: what waits for a full link, if anything ("" when nothing). */
  describeWaiting(): string {
    const parts: string[] = [];
    if (this.admission.length > 0) parts.push(`${this.admission.length} request(s) waiting for a full link`);
    if (this.heldWrites.length > 0) parts.push(`${this.heldWrites.length} writer(s) held for dirty pages to leave`);
    return parts.length === 0 ? '' : `, ${parts.join(', ')}`;
  }

  /** Whether a link holds the limit or more (only links named as queuing can). */
  congested(): boolean {
    const queuing = this.links.queuingPeerIds;
    if (queuing.size === 0) return false;
    for (const nodeId of queuing) if (this.links.queuedBytes(nodeId) >= this.queueBytesMax) return true;
    return false;
  }

  /**
   * Whether work would run at once (admit's test): nothing waits, every link
   * is below its limit and no large release is pending. Who runs work itself
   * on this answer calls streamDeferred after it, as admit does.
   */
  admitsNow(): boolean {
    return !this.pumping && this.admission.length === 0 && !this.congested() && (this.defers || this.engine.dirtyPageCount() < earlyFlushPageCountMin);
  }

  /**
   * Runs `work` now if nothing waits, every link is below its limit and no
   * large release is pending; otherwise after the work admitted before it,
   * once that holds. Order of admission is order of arrival.
   */
  admit(work: () => void): void {
    if (this.admitsNow()) {
      work();
      this.streamDeferred();
      return;
    }
    assert(this.admission.length < admissionCountMax, 'work waiting for admission within its limit');
    this.parkedCount++;
    this.admission.push(work);
    this.pump();
  }

  /**
   * A write fault: served now, or held (its thread parked) while writes are
   * paused or a link is full. Serving one may send diffs (the engine's twin
   * limit flushes the oldest dirty pages early to make room for a twin), so a
   * writer faster than the link waits here for it.
   */
  admitWriteFault(serve: () => void): void {
    if (!this.writesPaused && this.heldWrites.length === 0 && !this.congested()) {
      serve();
      return;
    }
    assert(this.heldWrites.length < admissionCountMax, 'held write faults within their limit');
    this.heldWriteCount++;
    this.heldWrites.push(serve);
  }

  /** Called from the runtime's timer: dirty pages piling up between releases are flushed early. */
  tick(): void {
    this.resumeWritesIfFlushed();
    const dirtyPageCount = this.engine.dirtyPageCount();
    if (!this.writesPaused && dirtyPageCount + this.engine.deferredPageCount() >= dirtyPageCountMax) {
      this.writesPaused = true;
      this.pauseWrites(true);
    }
    if (!this.pumping && dirtyPageCount >= dirtyPageCountFlushMin) this.pump();
    this.streamDeferred();
  }

  /** Lets held writers go once the dirty pages are below dirtyPageCountFlushMin and every link below its limit. */
  private resumeWritesIfFlushed(): void {
    if (this.writesPaused) {
      if (this.engine.dirtyPageCount() + this.engine.deferredPageCount() >= dirtyPageCountFlushMin) return;
      this.writesPaused = false;
      this.pauseWrites(false);
    }
    // One at a time: each may send (an early flush at the twin limit) and fill a link again.
    while (this.heldWrites.length > 0 && !this.congested()) this.heldWrites.shift()!();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.run().then(
      () => { this.pumping = false; },
      // A bug (a failed assert) must crash, as it would have synchronously.
      (error: unknown) => process.nextTick(() => { throw error; }),
    );
  }

  private async run(): Promise<void> {
    for (;;) {
      await this.drained();
      // Deferring, only dirty pages piling up between releases are flushed ahead (the twin bound).
      if (!this.defers || this.engine.dirtyPageCount() >= dirtyPageCountFlushMin) await this.flushAhead();
      const work = this.admission.shift();
      if (work === undefined) return;
      work();
      this.streamDeferred();
      await turn();
    }
  }

  /**
   * Streams the deferred diffs of closed intervals, if any and not already
   * streaming: a piece of earlyFlushPageCount pages per turn, each once the
   * links are below their limit. Called after every admitted work, every
   * engine message (a recall closes an interval) and every tick. The first
   * piece waits one turn, so the sync message that closed the interval leaves
   * first. Work is admitted meanwhile.
   */
  streamDeferred(): void {
    if (this.streaming || this.deferredHeld || this.engine.deferredPageCount() === 0) return;
    this.streaming = true;
    this.stream().then(
      // Deferred pages added meanwhile by later closes: another bounded pass.
      () => { this.streaming = false; this.streamDeferred(); },
      (error: unknown) => process.nextTick(() => { throw error; }),
    );
  }

  private async stream(): Promise<void> {
    // Bounded: a pass sends what one writer-pause's worth of twins holds, at most.
    for (let pieces = 0; pieces < streamPieceCountMax && this.engine.deferredPageCount() > 0; pieces++) {
      await turn();
      await this.drained();
      const sent = this.engine.flushDeferred(earlyFlushPageCount);
      this.streamedPageCount += sent;
      this.resumeWritesIfFlushed();
    }
  }

  /**
   * Sends the diffs of the pages dirty now ahead of the next release, a piece
   * at a time within the link limit. One pass: pages dirtied meanwhile by
   * other threads wait for the next (the release sends them).
   */
  private async flushAhead(): Promise<void> {
    let pageCount = this.engine.dirtyPageCount();
    if (pageCount < earlyFlushPageCountMin) return;
    while (pageCount > 0) {
      await this.drained();
      const flushed = this.engine.flushDirty(Math.min(earlyFlushPageCount, pageCount));
      if (flushed === 0) return;
      this.flushedPageCount += flushed;
      pageCount -= flushed;
      this.resumeWritesIfFlushed();
      await turn();
    }
  }

  private drained(): Promise<void> {
    if (!this.congested()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private wakeIfDrained(): void {
    if (this.congested()) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
    this.resumeWritesIfFlushed();
  }
}
