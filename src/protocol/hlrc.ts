// Home-based lazy release consistency (Zhou, Iftode & Li 1996) with the
// intervals, vector timestamps and write notices of TreadMarks (Keleher 1992).
//
// Per node: `vc` is what this node has applied (acquired); `known` is how far
// its interval log reaches per writer (known >= vc). A page copy is valid when
// its version vector covers `need`, the latest intervals naming it that this
// node has acquired. The home's copy is the master: diffs arrive over FIFO
// connections, so `applied[n]` at the home is a prefix of writer n's history.
// Sync messages carry the sender's vc plus the intervals the receiver may lack.

import { assert } from '../errors.js';
import { twinLimitFlushDivisor, diffsMessageBytesMax, grantPagePushCountMax, prefetchPageCountInitial, prefetchStreamCountMax, intervalLogCountMax, intervalLogReclaimCount, prefetchPageCountMax, syncInFlightCountMax, syncQueueCountMax, atomicWaiterCountMax, pageBytes, barrierIdCountMax, lockIdCountMax } from '../constants.js';
import type { Engine, EngineCounters, EngineOptions, FaultResult, PlacementName, SyncRequest, SyncResult } from './engine.js';
import { protNone, protRead, protReadWrite, type PageMemory } from './memory.js';
import type { AtomicOp, ConsistencyInfo, DiffBatch, IntervalRecord, ProtocolMessage } from './messages.js';
import { atomicApply } from './atomic-ops.js';

interface PageState {
  /** What the local copy contains, per writer (the home: what it has applied). */
  version: number[];
  /** What this node must see before using the page. */
  need: number[];
  valid: boolean;
  fetching: boolean;
  /**
   * Installed by read-ahead and not touched yet: valid but kept at no access,
   * so the first touch faults locally (no message) and tells the read-ahead
   * the page was useful; an invalidation before that counts it wasted.
   */
  prefetched?: boolean;
  /** When this node last flushed the page early (flushSeq), 0: never. */
  earlyFlushSeq: number;
  /** Fault slots and continuations waiting for the page to become valid. */
  waiters: Array<() => void>;
}

interface LockState {
  holderNode: number; // -1 when free
  /** `vc`: what the requester had applied when it asked (a lower bound). */
  queue: Array<{ node: number; requestId: number; vc: number[] }>;
  vc: number[];
  /** The latest releases, newest last: node and the interval it closed at the release (at most grantPagePushCountMax). */
  releases: Array<{ node: number; index: number }>;
}

interface BarrierState {
  parties: number;
  arrivals: Array<{ node: number; requestId: number; known: number[]; vc: number[] }>;
}

interface AtomicWaiter { node: number; requestId: number; address: number; deadlineMs: number }

export class HlrcEngine implements Engine {
  readonly nodeId: number;
  readonly protocol: 'hlrc' | 'sc' = 'hlrc';
  protected readonly nodeCount: number;
  protected readonly pageCount: number;
  private readonly placement: PlacementName;
  protected readonly memory: PageMemory;
  private readonly sendRaw: EngineOptions['send'];
  protected readonly host: EngineOptions['host'];

  private readonly vc: number[];
  private readonly known: number[];
  /** Intervals above `floor` per writer: log[n][i - floor[n] - 1] is interval i of n. */
  private readonly log: IntervalRecord[][];
  /** Every node has applied at least this (set by all-node barriers); older intervals are reclaimed. */
  private readonly floor: number[];
  private logCount = 0;
  /** What each peer has applied (a lower bound, from vcReport and the vc that sync messages carry). */
  private readonly peerVc: number[][];
  /** vcReport answers still due for this node's vcQuery round (0: none in flight). */
  private vcReportsDue = 0;
  /** The log size at which this node starts its next vcQuery round. */
  private vcQueryLogCount: number;
  private readonly logReclaimCount: number;
  private readonly prefetchPageCount: number;
  private readonly readAheadTracking: boolean;
  /** What each peer's log is known to reach (a lower bound). */
  private readonly peerKnown: number[][];
  private readonly pages = new Map<number, PageState>();
  /** Pages written in the open interval. */
  private readonly intervalPages = new Set<number>();
  /**
   * Per page of this node's own (home), 1 while it is exclusive: read-write
   * here with no write detection, because no other node can hold a copy
   * that a later write of ours must invalidate. A page enters the state when
   * an interval naming it closes: every copy served before or during that
   * interval is older than its write notice, so the acquire that could make
   * our later writes visible to a node also invalidates that node's copy. A
   * page leaves it when a copy leaves this node (readServed): protected
   * read-only first, so every later write faults and is noticed again.
   * Home pages are twinless (their diffs would be discarded: the home copy is
   * the master), so they cost no twin either way.
   */
  private readonly exclusive: Uint8Array;
  /** The most pages twinned at once (0: no limit); past it the oldest dirty pages are flushed early. */
  private readonly twinPageCountMax: number;

  private requestIdNext = 1;
  private readonly pending = new Map<number, {
    threadRef: number; kind: string; lockId?: number; threadId?: number; flushSeq: number;
    /** Atomics: the home the request went to, and whether it is a wait. */
    home?: number; isWait?: boolean;
  }>();
  /** Requests whose thread is gone (cancel): their answers are dropped, a granted lock released. */
  private readonly canceled = new Map<number, { kind: string; lockId?: number }>();
  /** Locks this node holds: lockId -> threadId. */
  private readonly held = new Map<number, { threadId: number }>();
  private readonly locks = new Map<number, LockState>();
  private readonly conds = new Map<number, Array<{ node: number; requestId: number; vc: number[] }>>();
  private readonly barriers = new Map<number, BarrierState>();
  private readonly barrierParties = new Map<number, number>();
  private readonly atomicWaiters: AtomicWaiter[] = [];
  private nowMs = 0;
  private readonly clock: (() => number) | null;
  private readonly pageScratch = new Uint8Array(pageBytes);
  protected readonly stats: EngineCounters = {
    readFaults: 0, writeFaults: 0, pageFetches: 0, diffsSent: 0, diffsApplied: 0,
    intervalsClosed: 0, invalidations: 0, messagesSent: 0,
  };

  constructor(options: EngineOptions) {
    this.nodeId = options.nodeId;
    this.nodeCount = options.nodeCount;
    this.pageCount = options.pageCount;
    this.placement = options.placement ?? 'roundRobin';
    this.memory = options.memory;
    this.sendRaw = options.send;
    this.host = options.host;
    this.clock = options.clock ?? null;
    this.vc = new Array<number>(this.nodeCount).fill(0);
    this.known = new Array<number>(this.nodeCount).fill(0);
    this.floor = new Array<number>(this.nodeCount).fill(0);
    this.log = Array.from({ length: this.nodeCount }, () => []);
    this.peerKnown = Array.from({ length: this.nodeCount }, () => new Array<number>(this.nodeCount).fill(0));
    this.logReclaimCount = options.logReclaimCount ?? intervalLogReclaimCount;
    assert(this.logReclaimCount >= 1 && this.logReclaimCount < intervalLogCountMax / 2, 'log reclaim count within the log limit');
    this.vcQueryLogCount = this.logReclaimCount;
    this.prefetchPageCount = options.prefetchPageCount ?? prefetchPageCountMax;
    this.readAheadTracking = options.readAheadTracking ?? false;
    assert(Number.isInteger(this.prefetchPageCount) && this.prefetchPageCount >= 1 && this.prefetchPageCount <= prefetchPageCountMax, 'prefetch page count within 1..prefetchPageCountMax');
    for (let n = 0; n < this.nodeCount; n++) this.readahead.push([]);
    this.peerVc = Array.from({ length: this.nodeCount }, () => new Array<number>(this.nodeCount).fill(0));
    this.exclusive = new Uint8Array(this.pageCount);
    this.twinPageCountMax = options.twinPageCountMax ?? 0;
    assert(Number.isInteger(this.twinPageCountMax) && this.twinPageCountMax >= 0, 'twin page limit is a page count');
  }

  start(): void {
    const all = new Uint32Array(this.pageCount);
    for (let page = 0; page < this.pageCount; page++) all[page] = page;
    if (this.nodeCount === 1) {
      // A cluster of one: no other node can ever hold a copy, so every page
      // is exclusive from the start: read-write, no twin, no fault.
      this.memory.setTwinless(all, true);
      this.memory.protect(all, protReadWrite);
      this.exclusive.fill(1);
      return;
    }
    // Every page starts valid and zero on every node, read-only with the fast
    // write path on, so a first store costs a local twin (none for a page of
    // our own) and no message.
    const own = all.filter((page) => this.homeOf(page) === this.nodeId);
    this.memory.setTwinless(own, true);
    this.memory.protect(all, protRead);
    this.memory.setFastWrite(all, true);
    if (this.twinPageCountMax > 0) this.memory.setTwinLimit(this.twinPageCountMax);
  }

  homeOf(page: number): number {
    assert(page >= 0 && page < this.pageCount, 'page within the region');
    if (this.placement === 'block') {
      const blockPages = Math.ceil(this.pageCount / this.nodeCount);
      return Math.floor(page / blockPages);
    }
    return page % this.nodeCount;
  }

  counters(): EngineCounters { return { ...this.stats }; }

  tableSizes(): Record<string, number> {
    return {
      log: this.logCount, canceled: this.canceled.size, vcReportsDue: this.vcReportsDue, fetchers: this.fetchers.size, held: this.held.size,
      conds: this.conds.size, twinned: this.twinned.size, prefetches: this.prefetches.size, pages: this.pages.size, pending: this.pending.size, locks: this.locks.size,
      barriers: this.barriers.size, atomicWaiters: this.atomicWaiters.length, intervalPages: this.intervalPages.size,
    };
  }

  protected send(toNode: number, message: ProtocolMessage): void {
    assert(toNode !== this.nodeId && toNode >= 0 && toNode < this.nodeCount, 'send to another node of the cluster');
    this.stats.messagesSent++;
    this.sendRaw(toNode, message);
  }

  private pageState(page: number): PageState {
    let state = this.pages.get(page);
    if (state === undefined) {
      state = {
        version: new Array<number>(this.nodeCount).fill(0), need: new Array<number>(this.nodeCount).fill(0),
        valid: true, fetching: false, earlyFlushSeq: 0, waiters: [],
      };
      this.pages.set(page, state);
    }
    return state;
  }

  // ---------------------------------------------------------------- faults

  onFault(threadRef: number, page: number, isWrite: boolean): void {
    assert(page >= 0 && page < this.pageCount, 'fault within the region');
    if (isWrite) this.stats.writeFaults++; else this.stats.readFaults++;
    const touched = this.pages.get(page);
    if (touched !== undefined && touched.valid && touched.prefetched === true) {
      // The first touch of a read-ahead page: it was worth fetching.
      this.stats.prefetchUsefulPages = (this.stats.prefetchUsefulPages ?? 0) + 1;
      this.protectValid(page);
    }
    this.whenValid(page, () => {
      if (isWrite) {
        // The fast path did not take it (the page was invalid when stored to):
        // twin here, as the signal handler would have.
        // Another thread may have twinned it through the fast path since the
        // fault was recorded: learn that first, a page has one twin at most.
        // With the fast path off meanwhile, no thread can twin it between the
        // drain and makeTwin (found by the concurrent simulation, seed 17).
        this.memory.setFastWrite([page], false);
        this.drainDirty();
        // A page of our own needs no twin (its home copy is the master); any
        // other one does, made room for if the twin limit is reached (the
        // fast path sends such faults here).
        if (this.homeOf(page) !== this.nodeId && !this.hasTwin(page)) {
          this.makeRoomForTwin();
          this.memory.makeTwin(page);
          this.twinned.add(page);
        }
        this.intervalPages.add(page);
        this.memory.protect([page], protReadWrite);
        this.memory.setFastWrite([page], true);
      }
      this.host.resume(threadRef, { ok: true, value: null } satisfies FaultResult);
    });
  }

  /**
   * Pages with a twin in the open interval (all of them another node's), in
   * the order they were twinned: the oldest are flushed first at the limit.
   */
  private readonly twinned = new Set<number>();
  private hasTwin(page: number): boolean { return this.twinned.has(page); }

  private isCovered(version: number[], need: number[]): boolean {
    for (let n = 0; n < this.nodeCount; n++) if ((version[n] ?? 0) < (need[n] ?? 0)) return false;
    return true;
  }

  /** Runs `then` once the local copy of the page is valid (fetching it if needed). */
  private whenValid(page: number, then: () => void): void {
    const state = this.pageState(page);
    if (state.valid) { then(); return; }
    assert(state.waiters.length < syncInFlightCountMax, 'page waiters within limit');
    state.waiters.push(then);
    if (this.homeOf(page) === this.nodeId) { this.checkHomePage(page); return; }
    if (!state.fetching) this.fetch(page);
  }

  /** Per home, its read-ahead streams (least recently used first): the page after a fetch's pages, and its window. */
  private readonly readahead: Array<Array<{ end: number; window: number }>> = [];

  /** Extra pages asked for with each fetch still in flight: faulting page -> the pages after it. */
  private readonly prefetches = new Map<number, number[]>();

  /**
   * Sends a fetch for an invalid page, with the following pages that share its
   * home and are invalid here and not being fetched (a sequential scan then
   * costs one round trip per prefetchPageCountMax pages, not one per page).
   */
  private fetch(page: number): void {
    const state = this.pageState(page);
    assert(!state.valid && !state.fetching, 'a fetch for an invalid page not being fetched');
    const home = this.homeOf(page);
    state.fetching = true;
    this.stats.pageFetches++;
    // Read-ahead per home: a fault just past the previous window (within one
    // more window) doubles it; any other fault starts small again.
    const streams = this.readahead[home]!;
    let readahead = streams.find((stream) => page >= stream.end && page < stream.end + stream.window);
    const forward = readahead !== undefined;
    if (readahead === undefined) {
      // A new stream replaces the least recently used one.
      if (streams.length >= prefetchStreamCountMax) streams.shift();
      readahead = { end: -1, window: 0 };
    } else {
      streams.splice(streams.indexOf(readahead), 1);
    }
    streams.push(readahead);
    const window = Math.min(forward ? readahead.window * 2 : prefetchPageCountInitial, this.prefetchPageCount);
    const extraPages: number[] = [];
    const extraNeeds: number[][] = [];
    for (let next = page + 1; next < this.pageCount && extraPages.length < window - 1; next++) {
      const other = this.pages.get(next);
      if (other === undefined || other.valid || other.fetching || this.homeOf(next) !== home) break;
      other.fetching = true;
      extraPages.push(next);
      extraNeeds.push([...other.need]);
    }
    readahead.end = page + 1 + extraPages.length;
    readahead.window = window;
    assert(!this.prefetches.has(page), 'one fetch per page in flight');
    if (extraPages.length > 0) this.prefetches.set(page, extraPages);
    this.send(home, { type: 'pageRequest', page, need: [...state.need], extraPages, extraNeeds });
  }

  /** At the home: a page becomes valid once every diff it needs has been applied. */
  private checkHomePage(page: number): void {
    const state = this.pageState(page);
    if (state.valid || !this.isCovered(state.version, state.need)) return;
    state.valid = true;
    this.protectValid(page);
    this.runWaiters(state);
  }

  private runWaiters(state: PageState): void {
    const waiters = state.waiters.splice(0);
    for (const waiter of waiters) waiter();
  }

  // ------------------------------------------------------------- intervals

  /** Collects pages dirtied through the native fast path into the open interval. */
  private drainDirty(): void {
    const dirty = this.memory.drainDirty();
    for (const page of dirty) {
      this.intervalPages.add(page);
      // Our own pages are twinless: the fast path upgraded them without a twin.
      if (this.homeOf(page) !== this.nodeId) this.twinned.add(page);
    }
  }

  /**
   * At the twin limit: the oldest twinned pages (a quarter of the limit, so
   * the next stores take the fast path again) send their diffs home now,
   * labelled with the last closed interval as any early flush; they stay in
   * the open interval, whose closing names them (with an empty diff if not
   * written again). Their copies go back to read-only with the fast path on.
   */
  private makeRoomForTwin(): void {
    if (this.twinPageCountMax === 0 || this.twinned.size < this.twinPageCountMax) return;
    const count = Math.max(1, Math.floor(this.twinPageCountMax / twinLimitFlushDivisor));
    const pages: number[] = [];
    for (const page of this.twinned) {
      pages.push(page);
      if (pages.length === count) break;
    }
    this.flushEarlyMany(pages);
    this.stats.twinLimitFlushes = (this.stats.twinLimitFlushes ?? 0) + pages.length;
  }

  /**
   * Copies a page of our own for another node (a fetch, a prefetch, a push).
   * An exclusive page becomes shared first: protected read-only (with the
   * twinless fast path on) before it is read, so every store after the copy
   * faults and lands in the open interval's write notice, and none can slip
   * in between the read and the protection.
   */
  private readServed(page: number, bytes: Uint8Array): void {
    assert(this.homeOf(page) === this.nodeId, 'copies of a page leave from its home');
    if (this.exclusive[page] === 1) {
      this.exclusive[page] = 0;
      this.memory.protect([page], protRead);
      this.memory.setFastWrite([page], true);
      this.stats.exclusiveShared = (this.stats.exclusiveShared ?? 0) + 1;
    }
    this.memory.readPage(page, bytes);
  }

  /** Diffs held back by closeInterval(bundleTo) for the sync message that follows it. */
  private bundle: { toNode: number; batch: DiffBatch } | null = null;

  /**
   * Closes the open interval: diffs of dirty pages go to their homes, a write
   * notice is logged. The batch for `bundleTo` (the manager the release's sync
   * message goes to next) is held back to travel inside that message.
   */
  protected closeInterval(bundleTo = -1): void {
    this.drainDirty();
    if (this.intervalPages.size === 0) return;
    const pages = [...this.intervalPages].sort((a, b) => a - b);
    const index = this.vc[this.nodeId]! + 1;
    const diffs = new Map<number, Uint8Array>();
    for (const record of this.memory.flush(pages)) diffs.set(record.page, record.diff);
    const byHome = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (const page of pages) {
      const home = this.homeOf(page);
      const state = this.pageState(page);
      state.version[this.nodeId] = index;
      if (home === this.nodeId) continue; // the home's own writes are already in its master copy
      let batch = byHome.get(home);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byHome.set(home, batch); }
      batch.pages.push(page);
      // A page flushed early (before an invalidation) still sends an empty
      // diff so the home's applied vector reaches this interval.
      batch.diffs.push(diffs.get(page) ?? new Uint8Array(0));
    }
    assert(this.bundle === null, 'a held-back diff batch was sent with its sync message');
    for (const [home, batch] of byHome) {
      this.stats.diffsSent += batch.pages.length;
      const bytes = batch.diffs.reduce((sum, diff) => sum + diff.length, 0);
      if (home === bundleTo && bytes <= diffsMessageBytesMax) {
        this.bundle = { toNode: home, batch: { interval: index, pages: batch.pages, diffs: batch.diffs } };
        continue;
      }
      this.send(home, { type: 'diffs', interval: index, pages: batch.pages, diffs: batch.diffs });
    }
    // Pages of our own named by this interval become exclusive (see
    // `exclusive`): read-write with no write detection until a copy leaves.
    const own = pages.filter((page) => this.homeOf(page) === this.nodeId && this.pageState(page).valid && this.exclusive[page] === 0);
    if (own.length > 0) {
      this.memory.protect(own, protReadWrite);
      for (const page of own) this.exclusive[page] = 1;
    }
    this.intervalPages.clear();
    this.twinned.clear();
    this.vc[this.nodeId] = index;
    this.appendInterval({ node: this.nodeId, index, pages });
    this.stats.intervalsClosed++;
  }

  private appendInterval(record: IntervalRecord): void {
    const n = record.node;
    if (record.index <= this.known[n]!) return; // already known
    assert(record.index === this.known[n]! + 1, `intervals of node ${n} arrive in order`);
    assert(this.logCount < intervalLogCountMax, 'interval log within limit (barriers and vcQuery rounds reclaim it)');
    if (record.index > this.floor[n]!) {
      assert(record.index === this.floor[n]! + 1 + this.log[n]!.length, 'interval log stays contiguous');
      this.log[n]!.push(record);
      this.logCount++;
    }
    this.known[n] = record.index;
  }

  private onDiffs(from: number, message: Extract<ProtocolMessage, { type: 'diffs' }>): void {
    assert(message.pages.length === message.diffs.length, 'one diff per page');
    for (let k = 0; k < message.pages.length; k++) {
      const page = message.pages[k]!;
      assert(this.homeOf(page) === this.nodeId, 'diffs go to the home');
      const state = this.pageState(page);
      assert(state.version[from]! <= message.interval, 'diff versions never go back per writer (early flushes repeat the last closed interval)');
      if (message.diffs[k]!.length > 0) { this.memory.applyDiff(page, message.diffs[k]!); this.stats.diffsApplied++; }
      state.version[from] = message.interval;
      this.checkHomePage(page);
      this.serveFetchers(page);
    }
  }

  // ------------------------------------------------- consistency info

  private infoFor(toNode: number): ConsistencyInfo {
    const intervals: IntervalRecord[] = [];
    const peer = this.peerKnown[toNode]!;
    for (let n = 0; n < this.nodeCount; n++) {
      if (n === toNode) continue;
      const from = Math.max(peer[n]!, this.floor[n]!);
      const log = this.log[n]!;
      for (let k = from - this.floor[n]!; k < log.length; k++) intervals.push(log[k]!);
      peer[n] = Math.max(peer[n]!, this.known[n]!);
    }
    return { vc: [...this.vc], known: [...this.known], intervals };
  }

  private learn(from: number, info: ConsistencyInfo): void {
    const sorted = [...info.intervals].sort((a, b) => a.index - b.index);
    for (const record of sorted) this.appendInterval(record);
    const peer = this.peerKnown[from]!;
    for (let n = 0; n < this.nodeCount; n++) peer[n] = Math.max(peer[n]!, info.known[n] ?? 0);
  }

  /**
   * Applies write notices up to `target`: pages named by newer intervals are
   * invalidated, all of them in one batch (a release of a large written set
   * names hundreds of thousands of pages; one native call per page and step
   * kept a manager busy for seconds).
   */
  protected acquire(target: number[]): void {
    this.drainDirty();
    const named = new Set<number>();
    for (let n = 0; n < this.nodeCount; n++) {
      if (n === this.nodeId) continue;
      const upTo = target[n] ?? 0;
      if (upTo <= this.vc[n]!) continue;
      assert(this.known[n]! >= upTo, `log of node ${n} reaches what must be acquired`);
      // The log is contiguous: log[n][k] is interval floor[n] + 1 + k, and floor <= vc.
      const log = this.log[n]!;
      for (let k = this.vc[n]! - this.floor[n]!; k < upTo - this.floor[n]!; k++) {
        const record = log[k]!;
        assert(record.index === this.floor[n]! + 1 + k, 'interval log is contiguous above the floor');
        for (const page of record.pages) {
          const state = this.pageState(page);
          if (state.need[n]! < record.index) state.need[n] = record.index;
          named.add(page);
        }
      }
      this.vc[n] = upTo;
    }
    const stale: number[] = [];
    for (const page of named) {
      const state = this.pageState(page);
      if (state.valid && !this.isCovered(state.version, state.need)) stale.push(page);
    }
    this.invalidate(stale.sort((a, b) => a - b));
  }

  /** Valid copies that a write notice made stale: dirty ones flush home first, then all go to no access. */
  private invalidate(pages: number[]): void {
    if (pages.length === 0) return;
    this.flushEarlyMany(pages.filter((page) => this.intervalPages.has(page)));
    for (const page of pages) {
      const state = this.pageState(page);
      if (state.prefetched === true) {
        state.prefetched = false;
        this.stats.prefetchWastedPages = (this.stats.prefetchWastedPages ?? 0) + 1;
      }
      state.valid = false;
      this.exclusive[page] = 0;
    }
    this.stats.invalidations += pages.length;
    // App threads of this node run concurrently with the engine. With the
    // fast path off, a store to the (read-only) page faults into the engine
    // instead of twinning it, so no new twin can appear from here on.
    this.memory.setFastWrite(pages, false);
    this.memory.protect(pages, protNone);
    // One may have stored to a page (twinning it through the fast path)
    // between the flush and the protect. After protect returns no thread can
    // store, so learn such twins now and send their diff home before the copy
    // is replaced. That flush leaves the page read-only: protect it again
    // (found by the concurrent simulation, seed 1: a stale copy stayed
    // readable and writable after a late flush, and a counter lost updates).
    this.drainDirty();
    const late = pages.filter((page) => this.twinned.has(page));
    if (late.length > 0) {
      this.flushEarlyMany(late);
      this.memory.protect(late, protNone);
    }
    for (const page of pages) if (this.homeOf(page) === this.nodeId) this.checkHomePage(page);
  }

  /** A copy that became valid: read-only, with the native write fast path on again. */
  private protectValid(page: number): void {
    const state = this.pages.get(page);
    if (state !== undefined) state.prefetched = false;
    this.exclusive[page] = 0;
    this.memory.protect([page], protRead);
    this.memory.setFastWrite([page], true);
  }

  /** Counts early flushes, so a pushed page can tell whether it may predate one. */
  private flushSeq = 0;

  /**
   * Locally dirty pages whose diffs go home now (about to be invalidated, or
   * the oldest at the twin limit), one message per home. Labelled with the
   * last closed interval: they complete nothing new, the closing of the open
   * interval sends the rest (maybe an empty diff).
   */
  private flushEarlyMany(pages: number[]): void {
    if (pages.length === 0) return;
    for (const page of pages) {
      this.pageState(page).earlyFlushSeq = ++this.flushSeq;
      this.twinned.delete(page);
    }
    const byHome = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (const record of this.memory.flush(pages)) {
      const home = this.homeOf(record.page);
      if (home === this.nodeId || record.diff.length === 0) continue;
      let batch = byHome.get(home);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byHome.set(home, batch); }
      batch.pages.push(record.page);
      batch.diffs.push(record.diff);
    }
    for (const [home, batch] of byHome) {
      this.stats.diffsSent += batch.pages.length;
      this.send(home, { type: 'diffs', interval: this.vc[this.nodeId]!, pages: batch.pages, diffs: batch.diffs });
    }
  }

  dirtyPageCount(): number {
    this.drainDirty();
    return this.twinned.size;
  }

  flushDirty(pageCountMax: number): number {
    assert(Number.isInteger(pageCountMax) && pageCountMax >= 1, 'an early flush takes at least one page');
    assert(this.bundle === null, 'no held-back diffs between events');
    this.drainDirty();
    const pages: number[] = [];
    for (const page of this.twinned) {
      if (pages.length === pageCountMax) break;
      pages.push(page);
    }
    pages.sort((a, b) => a - b);
    const diffs = new Map<number, Uint8Array>();
    for (const record of this.memory.flush(pages)) diffs.set(record.page, record.diff);
    const byHome = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (const page of pages) {
      assert(this.intervalPages.has(page), 'a twinned page belongs to the open interval');
      this.twinned.delete(page);
      this.pageState(page).earlyFlushSeq = ++this.flushSeq;
      const home = this.homeOf(page);
      const diff = diffs.get(page);
      if (home === this.nodeId || diff === undefined || diff.length === 0) continue;
      let batch = byHome.get(home);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byHome.set(home, batch); }
      batch.pages.push(page);
      batch.diffs.push(diff);
    }
    // Labelled with the last closed interval, as flushEarly's: the release sends the rest.
    for (const [home, batch] of byHome) {
      this.stats.diffsSent += batch.pages.length;
      this.send(home, { type: 'diffs', interval: this.vc[this.nodeId]!, pages: batch.pages, diffs: batch.diffs });
    }
    return pages.length;
  }

  // ------------------------------------------------------------ fetches

  private readonly fetchers = new Map<number, Array<{ node: number; need: number[]; extraPages: number[]; extraNeeds: number[][] }>>();

  private onPageRequest(from: number, message: Extract<ProtocolMessage, { type: 'pageRequest' }>): void {
    const { page } = message;
    assert(this.homeOf(page) === this.nodeId, 'page requests go to the home');
    assert(message.extraPages.length === message.extraNeeds.length && message.extraPages.length < prefetchPageCountMax, 'extra pages within limit, one need each');
    for (const extra of message.extraPages) assert(this.homeOf(extra) === this.nodeId, 'extra pages share the home');
    let list = this.fetchers.get(page);
    if (list === undefined) { list = []; this.fetchers.set(page, list); }
    assert(list.length < syncQueueCountMax, 'fetchers within limit');
    list.push({ node: from, need: message.need, extraPages: message.extraPages, extraNeeds: message.extraNeeds });
    this.serveFetchers(page);
  }

  private serveFetchers(page: number): void {
    const list = this.fetchers.get(page);
    if (list === undefined) return;
    const state = this.pageState(page);
    const rest = list.filter((f) => {
      // The faulting page waits for its diffs, exactly as a single fetch.
      if (!this.isCovered(state.version, f.need)) return true;
      const bytes = new Uint8Array(pageBytes);
      this.readServed(page, bytes);
      // Extra pages go along only if this copy already covers their need: a
      // prefetch never delays the faulting page. The requester fetches a left-out page when it faults on it.
      const extraPages: number[] = [];
      const extraVersions: number[][] = [];
      const extraBytes: Uint8Array[] = [];
      f.extraPages.forEach((extra, k) => {
        const other = this.pageState(extra);
        if (!this.isCovered(other.version, f.extraNeeds[k]!)) return;
        const copy = new Uint8Array(pageBytes);
        this.readServed(extra, copy);
        extraPages.push(extra);
        extraVersions.push([...other.version]);
        extraBytes.push(copy);
      });
      this.send(f.node, { type: 'pageReply', page, version: [...state.version], bytes, extraPages, extraVersions, extraBytes });
      return false;
    });
    if (rest.length === 0) this.fetchers.delete(page); else this.fetchers.set(page, rest);
  }

  private onPageReply(message: Extract<ProtocolMessage, { type: 'pageReply' }>): void {
    const asked = this.prefetches.get(message.page) ?? [];
    this.prefetches.delete(message.page);
    const served = new Map<number, number>();
    message.extraPages.forEach((extra, k) => served.set(extra, k));
    assert(message.extraPages.every((extra) => asked.includes(extra)), 'a reply carries only extra pages asked for');
    this.installFetched(message.page, message.version, message.bytes, true);
    for (const extra of asked) {
      const k = served.get(extra);
      if (k === undefined) {
        // Left out by the home: fetch it only if a thread waits for it.
        const state = this.pageState(extra);
        assert(state.fetching && !state.valid, 'a prefetched page was being fetched');
        state.fetching = false;
        if (state.waiters.length > 0) this.fetch(extra);
        continue;
      }
      this.installFetched(extra, message.extraVersions[k]!, message.extraBytes[k]!, false);
    }
  }

  /** A fetched copy: installed read-only if it covers the need, else fetched again (if wanted). */
  private installFetched(page: number, version: number[], bytes: Uint8Array, wanted: boolean): void {
    const state = this.pageState(page);
    assert(state.fetching && !state.valid, 'a page reply answers a fetch');
    assert(bytes.length === pageBytes, 'a page reply carries a whole page');
    state.fetching = false;
    for (let n = 0; n < this.nodeCount; n++) state.version[n] = Math.max(state.version[n]!, version[n] ?? 0);
    if (!this.isCovered(state.version, state.need)) {
      // An acquire raised the need while the fetch was in flight: fetch again
      // (a prefetched page only if a thread waits for it).
      if (wanted || state.waiters.length > 0) this.fetch(page);
      return;
    }
    this.memory.writePage(page, bytes);
    state.valid = true;
    if (this.readAheadTracking && !wanted && state.waiters.length === 0) {
      // Read-ahead: stays at no access (as it was while invalid, fast write
      // path off) until a thread touches it, so its use can be counted.
      state.prefetched = true;
      this.stats.prefetchedPages = (this.stats.prefetchedPages ?? 0) + 1;
      return;
    }
    this.protectValid(page);
    this.runWaiters(state);
  }

  // ---------------------------------------------------------------- sync

  private newRequest(threadRef: number, kind: string, extra?: { lockId?: number; threadId?: number; home?: number; isWait?: boolean }): number {
    assert(this.pending.size < syncInFlightCountMax, 'sync requests in flight within limit');
    const requestId = this.requestIdNext++;
    this.pending.set(requestId, { threadRef, kind, ...extra, flushSeq: this.flushSeq });
    return requestId;
  }

  cancel(threadRef: number): boolean {
    for (const [requestId, entry] of this.pending) {
      if (entry.threadRef !== threadRef) continue;
      this.pending.delete(requestId);
      // Exactly one answer still comes (the result, or 'canceled' for a wait
      // removed at its home): it finds the request here and is dropped.
      assert(this.canceled.size < syncInFlightCountMax, 'canceled requests within limit');
      this.canceled.set(requestId, { kind: entry.kind, ...(entry.lockId === undefined ? {} : { lockId: entry.lockId }) });
      if (entry.kind === 'atomic' && entry.isWait === true && entry.home !== undefined) {
        this.deliver(entry.home, () => ({ type: 'atomicCancel', requestId }));
      }
      return true;
    }
    return false;
  }

  private onAtomicCancel(from: number, requestId: number): void {
    const k = this.atomicWaiters.findIndex((w) => w.node === from && w.requestId === requestId);
    if (k >= 0) {
      this.atomicWaiters.splice(k, 1);
      // Nobody will answer it now: the requester forgets the request.
      this.replyCanceled(from, requestId);
    }
  }

  /** Tells the requester of a canceled wait that no answer will come. */
  private replyCanceled(node: number, requestId: number): void {
    if (node === this.nodeId) { this.canceled.delete(requestId); return; }
    this.send(node, { type: 'atomicReply', requestId, result: 'canceled', info: this.infoFor(node) });
  }

  private finish(requestId: number, result: SyncResult): void {
    const gone = this.canceled.get(requestId);
    if (gone !== undefined) {
      this.canceled.delete(requestId);
      // A lock granted to a thread that is gone is released at once.
      if (gone.kind === 'lock' && result.ok && result.value === null) {
        this.closeInterval();
        const manager = this.managerOf(gone.lockId!);
        this.deliver(manager, () => ({ type: 'lockRelease', lockId: gone.lockId!, info: this.infoTo(manager) }));
      }
      return;
    }
    const entry = this.pending.get(requestId);
    assert(entry !== undefined, 'a reply answers a pending request');
    this.pending.delete(requestId);
    if (entry.kind === 'lock' && result.ok && result.value === null) this.held.set(entry.lockId!, { threadId: entry.threadId! });
    this.host.resume(entry.threadRef, result);
  }

  /**
   * The manager of a mutex, condition or barrier id. The runtime's ids are a
   * global byte address / 16: the manager is the home of that address (its
   * synchronization home, as for Atomics), so a lock guarding data homed with
   * it carries the holder's diffs in its release message. Ids beyond the
   * region fall back to id % nodeCount.
   */
  private managerOf(id: number): number {
    const page = Math.floor((id * 16) / pageBytes);
    if (id >= 0 && page < this.pageCount) return this.homeOf(page);
    return ((id % this.nodeCount) + this.nodeCount) % this.nodeCount;
  }

  /** Delivers a message to self without the network (the manager is local). */
  protected deliver(toNode: number, make: () => ProtocolMessage): void {
    if (toNode === this.nodeId) { this.dispatch(this.nodeId, make()); return; }
    const message = make();
    if (this.bundle !== null) {
      assert(this.bundle.toNode === toNode && 'info' in message && message.type !== 'lockGrant' && message.type !== 'barrierDepart' && message.type !== 'atomicReply', 'held-back diffs go with the sync message to their home');
      (message as { bundled?: DiffBatch }).bundled = this.bundle.batch;
      this.bundle = null;
    }
    this.send(toNode, message);
  }

  private localInfo(): ConsistencyInfo { return { vc: [...this.vc], known: [...this.known], intervals: [] }; }

  private infoTo(toNode: number): ConsistencyInfo {
    return toNode === this.nodeId ? this.localInfo() : this.infoFor(toNode);
  }

  onSync(threadRef: number, request: SyncRequest): void {
    this.syncStep(threadRef, request);
    this.maybeReclaim();
  }

  private syncStep(threadRef: number, request: SyncRequest): void {
    switch (request.kind) {
      case 'release':
        this.closeInterval();
        this.host.resume(threadRef, { ok: true, value: null });
        return;
      case 'acquire':
        // A node-local acquire: what this node's log holds is all it can know.
        this.acquire(this.known);
        this.host.resume(threadRef, { ok: true, value: null });
        return;
      case 'lock': {
        const manager = this.managerOf(request.lockId);
        this.closeInterval(manager);
        const requestId = this.newRequest(threadRef, 'lock', { lockId: request.lockId, threadId: request.threadId });
        const tryOnly = request.tryOnly === true;
        this.deliver(manager, () => ({ type: 'lockRequest', lockId: request.lockId, requestId, tryOnly, info: this.infoTo(manager) }));
        return;
      }
      case 'unlock': {
        const held = this.held.get(request.lockId);
        if (held === undefined || held.threadId !== request.threadId) {
          this.host.resume(threadRef, {
            ok: false, code: 'DSM_ERR_NOT_OWNER',
            message: `mutex ${request.lockId} unlocked by thread ${request.threadId}, which does not hold it`,
          });
          return;
        }
        this.held.delete(request.lockId);
        const manager = this.managerOf(request.lockId);
        this.closeInterval(manager);
        this.deliver(manager, () => ({ type: 'lockRelease', lockId: request.lockId, info: this.infoTo(manager) }));
        this.host.resume(threadRef, { ok: true, value: null });
        return;
      }
      case 'condWait': {
        const held = this.held.get(request.lockId);
        if (held === undefined || held.threadId !== request.threadId) {
          this.host.resume(threadRef, {
            ok: false, code: 'DSM_ERR_NOT_OWNER',
            message: `condition ${request.condId} waited on with mutex ${request.lockId} not held by thread ${request.threadId}`,
          });
          return;
        }
        this.held.delete(request.lockId);
        const manager = this.managerOf(request.lockId);
        this.closeInterval(manager);
        const requestId = this.newRequest(threadRef, 'lock', { lockId: request.lockId, threadId: request.threadId });
        this.deliver(manager, () => ({ type: 'condWait', condId: request.condId, lockId: request.lockId, requestId, info: this.infoTo(manager) }));
        return;
      }
      case 'condSignal': {
        const manager = this.managerOf(request.lockId);
        this.closeInterval(manager);
        this.deliver(manager, () => ({ type: 'condSignal', condId: request.condId, all: request.all, info: this.infoTo(manager) }));
        this.host.resume(threadRef, { ok: true, value: null });
        return;
      }
      case 'barrier': {
        const manager = this.managerOf(request.barrierId);
        this.closeInterval(manager);
        const requestId = this.newRequest(threadRef, 'barrier');
        this.deliver(manager, () => ({
          type: 'barrierArrive', barrierId: request.barrierId, parties: request.parties, requestId, info: this.infoTo(manager),
        }));
        return;
      }
      case 'atomic': {
        assert([1, 2, 4, 8].includes(request.width) && request.address % request.width === 0, 'atomic access is aligned');
        const home = this.homeOf(Math.floor(request.address / pageBytes));
        this.closeInterval(home);
        const requestId = this.newRequest(threadRef, 'atomic', { home, isWait: request.op === 'wait' });
        this.deliver(home, () => ({
          type: 'atomicRequest', requestId, op: request.op, address: request.address, width: request.width,
          operands: request.operands, timeoutMs: request.timeoutMs, info: this.infoTo(home),
        }));
        return;
      }
    }
  }

  releaseFor(toNode: number): ConsistencyInfo {
    assert(toNode >= 0 && toNode < this.nodeCount, 'release for a node of the cluster');
    this.closeInterval();
    const info = this.infoTo(toNode);
    this.maybeReclaim();
    return info;
  }

  acquireFrom(fromNode: number, info: ConsistencyInfo): void {
    assert(fromNode >= 0 && fromNode < this.nodeCount && info.vc.length === this.nodeCount, 'acquire from a node of the cluster');
    if (fromNode !== this.nodeId) this.learn(fromNode, info);
    this.acquire(info.vc);
    this.maybeReclaim();
  }

  onMessage(fromNode: number, message: ProtocolMessage): void {
    assert(fromNode !== this.nodeId && fromNode >= 0 && fromNode < this.nodeCount, 'message from another node');
    this.dispatch(fromNode, message);
    // Messages whose info.vc is the sender's own applied vc tell us a lower bound of it, free.
    switch (message.type) {
      case 'lockRequest': case 'lockRelease': case 'barrierArrive': case 'condWait': case 'condSignal':
      case 'atomicRequest': case 'atomicReply':
        this.hearVc(fromNode, message.info.vc);
        break;
      default:
        break;
    }
    this.maybeReclaim();
  }

  protected dispatch(from: number, message: ProtocolMessage): void {
    if ('bundled' in message && message.bundled !== undefined) {
      const { interval, pages, diffs } = message.bundled;
      this.onDiffs(from, { type: 'diffs', interval, pages, diffs });
    }
    switch (message.type) {
      case 'pageRequest': return this.onPageRequest(from, message);
      case 'pageReply': return this.onPageReply(message);
      case 'diffs': return this.onDiffs(from, message);
      case 'lockRequest': return this.onLockRequest(from, message.lockId, message.requestId, message.tryOnly, message.info);
      case 'lockRelease': return this.onLockRelease(from, message.lockId, message.info);
      case 'lockGrant':
        this.learn(from, message.info);
        if (!message.granted) return this.finish(message.requestId, { ok: true, value: 'busy' });
        this.acquire(message.info.vc);
        this.installPushed(message, this.pending.get(message.requestId)?.flushSeq ?? 0);
        return this.finish(message.requestId, { ok: true, value: null });
      case 'condWait': return this.onCondWait(from, message);
      case 'condSignal': return this.onCondSignal(from, message);
      case 'barrierArrive': return this.onBarrierArrive(from, message);
      case 'barrierDepart': return this.onBarrierDepart(from, message);
      case 'atomicRequest': return this.onAtomicRequest(from, message);
      case 'atomicCancel': return this.onAtomicCancel(from, message.requestId);
      case 'vcQuery': return this.onVcQuery(from, message.info);
      case 'vcReport': return this.onVcReport(from, message.vc);
      case 'atomicReply':
        this.learn(from, message.info);
        this.acquire(message.info.vc);
        return this.finish(message.requestId, { ok: true, value: message.result });
      default:
        return this.dispatchPages(from, message);
    }
  }

  /** Page-protocol messages of a subclass (sc). */
  protected dispatchPages(_from: number, message: ProtocolMessage): void {
    assert(false, `hlrc engine got a message it does not speak: ${message.type}`);
  }

  /** Runs `then` when the page may be read and written here by the manager (atomics at the home). */
  protected atomicAccess(page: number, then: () => void): void {
    this.whenValid(page, then);
  }

  /** An atomic store at the home: the write becomes this node's, in an interval closed at once. */
  protected atomicStore(page: number, diff: Uint8Array): void {
    this.drainDirty();
    this.intervalPages.add(page);
    this.memory.applyDiff(page, diff);
    this.closeInterval();
  }

  private lock(lockId: number): LockState {
    let lock = this.locks.get(lockId);
    if (lock === undefined) {
      assert(this.locks.size < lockIdCountMax, 'lock ids within limit');
      lock = { holderNode: -1, queue: [], vc: new Array<number>(this.nodeCount).fill(0), releases: [] };
      this.locks.set(lockId, lock);
    }
    return lock;
  }

  private onLockRequest(from: number, lockId: number, requestId: number, tryOnly: boolean, info: ConsistencyInfo): void {
    assert(this.managerOf(lockId) === this.nodeId, 'lock requests go to the manager');
    if (from !== this.nodeId) this.learn(from, info);
    const lock = this.lock(lockId);
    if (tryOnly && (lock.holderNode !== -1 || lock.queue.length > 0)) {
      if (from === this.nodeId) { this.finish(requestId, { ok: true, value: 'busy' }); return; }
      this.send(from, { type: 'lockGrant', lockId, requestId, granted: false, info: this.infoFor(from) });
      return;
    }
    assert(lock.queue.length < syncQueueCountMax, 'lock queue within limit');
    lock.queue.push({ node: from, requestId, vc: [...info.vc] });
    this.grantNext(lockId);
  }

  private onLockRelease(from: number, lockId: number, info: ConsistencyInfo): void {
    if (from !== this.nodeId) this.learn(from, info);
    const lock = this.lock(lockId);
    assert(lock.holderNode === from, 'the lock is released by its holder node');
    lock.holderNode = -1;
    for (let n = 0; n < this.nodeCount; n++) lock.vc[n] = Math.max(lock.vc[n]!, info.vc[n] ?? 0);
    if ((info.vc[from] ?? 0) > 0) {
      lock.releases.push({ node: from, index: info.vc[from]! });
      if (lock.releases.length > grantPagePushCountMax) lock.releases.shift();
    }
    this.grantNext(lockId);
  }

  private grantNext(lockId: number): void {
    const lock = this.lock(lockId);
    if (lock.holderNode !== -1) return;
    const next = lock.queue.shift();
    if (next === undefined) { this.locks.delete(lockId); this.retainLockVc(lockId, lock); return; }
    lock.holderNode = next.node;
    this.grant(next.node, lockId, next.requestId, lock, next.vc);
  }

  /** A free lock with no queue still carries its release vector; keep it unless it is all zero. */
  private retainLockVc(lockId: number, lock: LockState): void {
    if (lock.vc.some((v) => v > 0)) this.locks.set(lockId, lock);
  }

  private grant(node: number, lockId: number, requestId: number, lock: LockState, requesterVc: number[]): void {
    const vc = lock.vc;
    if (node === this.nodeId) {
      this.acquire(vc);
      this.finish(requestId, { ok: true, value: null });
      return;
    }
    const info = this.infoFor(node);
    const push = this.pushFor(lock, requesterVc);
    this.send(node, { type: 'lockGrant', lockId, requestId, granted: true, info: { ...info, vc: [...vc] }, ...push });
  }

  /**
   * Migratory data: the pages the previous holder wrote in its critical
   * section (its interval closed at the release), if this manager is their
   * home and already holds that interval's diffs (a diff bundled with the
   * lockRelease has been applied), travel with the grant. The acquirer would
   * otherwise fault and fetch them right away. At most grantPagePushCountMax.
   */
  private pushFor(lock: LockState, requesterVc: number[]): { pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[] } {
    const pushPages: number[] = [];
    const pushVersions: number[][] = [];
    const pushBytes: Uint8Array[] = [];
    for (let r = lock.releases.length - 1; r >= 0 && pushPages.length < grantPagePushCountMax; r--) {
      const { node: writer, index } = lock.releases[r]!;
      if (writer === this.nodeId || index <= (requesterVc[writer] ?? 0) || index <= this.floor[writer]! || index > this.known[writer]!) continue;
      const record = this.log[writer]![index - this.floor[writer]! - 1]!;
      assert(record.index === index && record.node === writer, 'the log holds a release\'s interval');
      for (const page of record.pages) {
        if (pushPages.length >= grantPagePushCountMax) break;
        if (this.homeOf(page) !== this.nodeId || pushPages.includes(page)) continue;
        const state = this.pageState(page);
        if (state.version[writer]! < index) continue;
        const bytes = new Uint8Array(pageBytes);
        this.readServed(page, bytes);
        pushPages.push(page);
        pushVersions.push([...state.version]);
        pushBytes.push(bytes);
      }
    }
    return pushPages.length === 0 ? {} : { pushPages, pushVersions, pushBytes };
  }

  /** Pages pushed with a grant, after its acquire: installed where they make an invalid copy valid. */
  private installPushed(message: Extract<ProtocolMessage, { type: 'lockGrant' }>, requestFlushSeq: number): void {
    const pages = message.pushPages ?? [];
    assert(pages.length <= grantPagePushCountMax && pages.length === (message.pushBytes ?? []).length, 'pushed pages within limit');
    pages.forEach((page, k) => {
      const state = this.pageState(page);
      if (state.valid || state.fetching || this.homeOf(page) === this.nodeId) return;
      const version = message.pushVersions![k]!;
      // The copy must hold this node's own writes. Closed intervals' diffs went
      // home before the lockRequest (FIFO) or show in version[self]; a diff
      // flushed early after the request may have reached the home after the
      // grant left (found by the simulation, seed 220: a store reverted).
      if (state.earlyFlushSeq > requestFlushSeq || (version[this.nodeId] ?? 0) < state.version[this.nodeId]!) return;
      const bytes = message.pushBytes![k]!;
      assert(bytes.length === pageBytes, 'a pushed page is a whole page');
      const merged = state.version.map((v, n) => Math.max(v, version[n] ?? 0));
      if (!this.isCovered(merged, state.need)) return;
      state.version = merged;
      this.memory.writePage(page, bytes);
      state.valid = true;
      this.protectValid(page);
      this.stats.pagesPushed = (this.stats.pagesPushed ?? 0) + 1;
      this.runWaiters(state);
    });
  }

  private onCondWait(from: number, message: Extract<ProtocolMessage, { type: 'condWait' }>): void {
    if (from !== this.nodeId) this.learn(from, message.info);
    let waiters = this.conds.get(message.condId);
    if (waiters === undefined) { waiters = []; this.conds.set(message.condId, waiters); }
    assert(waiters.length < syncQueueCountMax, 'condition waiters within limit');
    waiters.push({ node: from, requestId: message.requestId, vc: [...message.info.vc] });
    this.condLock.set(message.condId, message.lockId);
    this.onLockRelease(from, message.lockId, message.info);
  }

  private readonly condLock = new Map<number, number>();

  private onCondSignal(from: number, message: Extract<ProtocolMessage, { type: 'condSignal' }>): void {
    if (from !== this.nodeId) this.learn(from, message.info);
    const waiters = this.conds.get(message.condId);
    if (waiters === undefined) return;
    const lockId = this.condLock.get(message.condId)!;
    const lock = this.lock(lockId);
    for (let n = 0; n < this.nodeCount; n++) lock.vc[n] = Math.max(lock.vc[n]!, message.info.vc[n] ?? 0);
    const woken = message.all ? waiters.splice(0) : waiters.splice(0, 1);
    if (waiters.length === 0) { this.conds.delete(message.condId); this.condLock.delete(message.condId); }
    for (const waiter of woken) lock.queue.push(waiter);
    this.grantNext(lockId);
  }

  private onBarrierArrive(from: number, message: Extract<ProtocolMessage, { type: 'barrierArrive' }>): void {
    if (from !== this.nodeId) this.learn(from, message.info);
    let barrier = this.barriers.get(message.barrierId);
    if (barrier === undefined) {
      // A reusable barrier keeps its party count for life: the first use fixes it.
      const parties = this.barrierParties.get(message.barrierId) ?? message.parties;
      assert(this.barrierParties.size < barrierIdCountMax, 'barrier ids within limit');
      this.barrierParties.set(message.barrierId, parties);
      barrier = { parties, arrivals: [] };
      this.barriers.set(message.barrierId, barrier);
    }
    if (barrier.parties !== message.parties || message.parties < 1) {
      if (barrier.arrivals.length === 0) this.barriers.delete(message.barrierId);
      const error = `barrier ${message.barrierId} has ${barrier.parties} parties, a thread waited with ${message.parties}`;
      this.depart(from, message.barrierId, message.requestId, error, false, this.vc, this.floor);
      return;
    }
    assert(barrier.arrivals.length < syncQueueCountMax, 'barrier arrivals within limit');
    barrier.arrivals.push({ node: from, requestId: message.requestId, known: message.info.known, vc: message.info.vc });
    if (barrier.arrivals.length < barrier.parties) return;
    this.barriers.delete(message.barrierId);
    // Merge everyone's knowledge: the manager acquires it all, then hands it back.
    const merged = [...this.vc];
    for (const arrival of barrier.arrivals) for (let n = 0; n < this.nodeCount; n++) merged[n] = Math.max(merged[n]!, arrival.vc[n]!);
    this.acquire(merged);
    // When every node took part, everything up to the smallest arrival vector
    // is applied everywhere: intervals up to it can be reclaimed.
    const nodes = new Set(barrier.arrivals.map((a) => a.node));
    let floor = [...this.floor];
    if (nodes.size === this.nodeCount) {
      floor = new Array<number>(this.nodeCount).fill(Infinity);
      for (const arrival of barrier.arrivals) for (let n = 0; n < this.nodeCount; n++) floor[n] = Math.min(floor[n]!, arrival.vc[n]!);
      for (let n = 0; n < this.nodeCount; n++) floor[n] = Math.max(floor[n]!, this.floor[n]!);
    }
    const last = barrier.arrivals.length - 1;
    barrier.arrivals.forEach((arrival, index) => this.depart(arrival.node, message.barrierId, arrival.requestId, '', index === last, merged, floor));
  }

  private depart(node: number, barrierId: number, requestId: number, error: string, serial: boolean, vc: number[], floor: number[]): void {
    if (node === this.nodeId) {
      this.onBarrierDepart(node, { type: 'barrierDepart', barrierId, requestId, error, serial, floor: [...floor], info: { ...this.localInfo(), vc: [...vc] } });
      return;
    }
    const info = this.infoFor(node);
    this.send(node, { type: 'barrierDepart', barrierId, requestId, error, serial, floor: [...floor], info: { ...info, vc: [...vc] } });
  }

  private onBarrierDepart(from: number, message: Extract<ProtocolMessage, { type: 'barrierDepart' }>): void {
    if (from !== this.nodeId) this.learn(from, message.info);
    if (message.error !== '') {
      this.finish(message.requestId, { ok: false, code: 'DSM_ERR_BARRIER_PARTIES', message: message.error });
      return;
    }
    this.acquire(message.info.vc);
    this.raiseFloor(message.floor);
    this.finish(message.requestId, { ok: true, value: message.serial ? 'serial' : null });
  }

  // ------------------------------------------------ log reclamation

  /** `vc` is what `node` had applied when it sent it: a lower bound of its applied vc from now on. */
  private hearVc(node: number, vc: number[]): void {
    if (node === this.nodeId) return;
    const row = this.peerVc[node]!;
    for (let n = 0; n < this.nodeCount; n++) row[n] = Math.max(row[n]!, vc[n] ?? 0);
  }

  /**
   * Raises the floor to the element-wise minimum of every node's applied vc
   * (this node's own included): every node has applied those intervals, so no
   * future acquire anywhere asks for their write notices. No barrier needed.
   */
  private reclaim(): void {
    const floor = [...this.vc];
    for (let m = 0; m < this.nodeCount; m++) {
      if (m === this.nodeId) continue;
      for (let n = 0; n < this.nodeCount; n++) floor[n] = Math.min(floor[n]!, this.peerVc[m]![n]!);
    }
    this.raiseFloor(floor);
  }

  /**
   * Called after every event: a log past its threshold starts a vcQuery round.
   * This node first applies every interval it knows, and the query carries
   * them, so each answering node applies at least as much: once all answers
   * are in, the floor reaches what this node knew when it asked.
   */
  private maybeReclaim(): void {
    if (this.logCount < this.vcQueryLogCount || this.vcReportsDue > 0 || this.nodeCount === 1) return;
    this.acquire(this.known);
    this.reclaim();
    this.vcReportsDue = this.nodeCount - 1;
    for (let m = 0; m < this.nodeCount; m++) if (m !== this.nodeId) this.send(m, { type: 'vcQuery', info: this.infoFor(m) });
  }

  private onVcQuery(from: number, info: ConsistencyInfo): void {
    this.learn(from, info);
    this.hearVc(from, info.vc);
    // An extra acquire is always allowed under release consistency (it only
    // shows newer writes); it lets the querier's floor rise past old records.
    this.acquire(this.known);
    this.send(from, { type: 'vcReport', vc: [...this.vc] });
    this.reclaim();
  }

  private onVcReport(from: number, vc: number[]): void {
    assert(this.vcReportsDue > 0, 'a vcReport answers this node\'s vcQuery');
    this.hearVc(from, vc);
    this.vcReportsDue--;
    this.reclaim();
    if (this.vcReportsDue === 0) this.vcQueryLogCount = this.logCount + this.logReclaimCount;
  }

  private raiseFloor(floor: number[]): void {
    for (let n = 0; n < this.nodeCount; n++) {
      const upTo = Math.min(floor[n] ?? 0, this.vc[n]!);
      if (upTo <= this.floor[n]!) continue;
      const log = this.log[n]!;
      let drop = 0;
      while (drop < log.length && log[drop]!.index <= upTo) drop++;
      log.splice(0, drop);
      this.logCount -= drop;
      this.floor[n] = upTo;
    }
  }

  // -------------------------------------------------------------- atomics

  private onAtomicRequest(from: number, message: Extract<ProtocolMessage, { type: 'atomicRequest' }>): void {
    if (from !== this.nodeId) this.learn(from, message.info);
    // The requester released before asking; acquiring its knowledge here
    // orders this operation after everything it saw.
    this.acquire(message.info.vc);
    const page = Math.floor(message.address / pageBytes);
    assert(this.homeOf(page) === this.nodeId, 'atomics run at the home of their page');
    this.atomicAccess(page, () => this.performAtomic(from, message, page));
  }

  private performAtomic(from: number, message: Extract<ProtocolMessage, { type: 'atomicRequest' }>, page: number): void {
    const offset = message.address - page * pageBytes;
    assert(offset + message.width <= pageBytes, 'atomic access within one page');
    this.memory.readPage(page, this.pageScratch);
    const old = readLe(this.pageScratch, offset, message.width);
    const op: AtomicOp = message.op;
    if (op === 'notify') {
      // The count is ToIntegerOrInfinity's, not reduced modulo 2^32; -1 stands for +Infinity (all).
      const operand = BigInt(message.operands[0] ?? '-1');
      const count = operand < 0n ? Infinity : Number(operand);
      assert(count >= 0, 'a notify count is never negative');
      let woken = 0;
      for (let k = 0; k < this.atomicWaiters.length && woken < count;) {
        const waiter = this.atomicWaiters[k]!;
        if (waiter.address !== message.address) { k++; continue; }
        this.atomicWaiters.splice(k, 1);
        woken++;
        this.atomicReply(waiter.node, waiter.requestId, 'ok');
      }
      this.atomicReply(from, message.requestId, String(woken));
      return;
    }
    if (op === 'wait') {
      const expected = BigInt.asUintN(message.width * 8, BigInt(message.operands[0] ?? '0'));
      if (old !== expected) { this.atomicReply(from, message.requestId, 'not-equal'); return; }
      if (message.timeoutMs === 0) { this.atomicReply(from, message.requestId, 'timed-out'); return; }
      assert(this.atomicWaiters.length < atomicWaiterCountMax, 'atomic waiters within limit');
      const deadlineMs = message.timeoutMs < 0 ? Infinity : this.timeNowMs() + message.timeoutMs;
      this.atomicWaiters.push({ node: from, requestId: message.requestId, address: message.address, deadlineMs });
      return;
    }
    const { result, next } = atomicApply(op, old, message.operands, message.width);
    if (next !== null && next !== old) {
      writeLe(this.pageScratch, offset, message.width, next);
      // A store by the home through the manager view: make it this node's
      // write in its own interval, closed at once so the reply carries it.
      const diff = encodeRun(offset, this.pageScratch.subarray(offset, offset + message.width));
      this.atomicStore(page, diff);
    }
    this.atomicReply(from, message.requestId, result.toString());
  }

  private atomicReply(node: number, requestId: number, result: string): void {
    if (node === this.nodeId) {
      this.finish(requestId, { ok: true, value: result });
      return;
    }
    this.send(node, { type: 'atomicReply', requestId, result, info: this.infoFor(node) });
  }

  /** The current time: the clock handed in, read fresh, or else the last tick's. */
  private timeNowMs(): number {
    if (this.clock === null) return this.nowMs;
    const nowMs = this.clock();
    assert(nowMs >= this.nowMs, 'the clock does not go backwards');
    this.nowMs = nowMs;
    return nowMs;
  }

  onTick(nowMs: number): void {
    assert(nowMs >= this.nowMs, 'time does not go backwards');
    this.nowMs = nowMs;
    for (let k = 0; k < this.atomicWaiters.length;) {
      const waiter = this.atomicWaiters[k]!;
      if (waiter.deadlineMs > nowMs) { k++; continue; }
      this.atomicWaiters.splice(k, 1);
      this.atomicReply(waiter.node, waiter.requestId, 'timed-out');
    }
  }
}

function readLe(bytes: Uint8Array, offset: number, width: number): bigint {
  let value = 0n;
  for (let k = width - 1; k >= 0; k--) value = (value << 8n) | BigInt(bytes[offset + k]!);
  return value;
}

function writeLe(bytes: Uint8Array, offset: number, width: number, value: bigint): void {
  let rest = value;
  for (let k = 0; k < width; k++) { bytes[offset + k] = Number(rest & 0xffn); rest >>= 8n; }
}

/** One run in the diff format the memory implementations share: [u16 offset][u16 length][bytes]. */
export function encodeRun(offset: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  out[0] = offset & 0xff; out[1] = offset >> 8; out[2] = bytes.length & 0xff; out[3] = bytes.length >> 8;
  out.set(bytes, 4);
  return out;
}
