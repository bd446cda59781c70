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
import { atomicClockCountMax, twinLimitFlushDivisor, diffsMessageBytesMax, grantPagePushCountMax, barrierPushRenewCount, lendPageCountMax, prefetchPageCountInitial, prefetchStreamCountMax, prefetchHistoryCountMax, prefetchStridePagesMax, prefetchRegionPagesLog2, intervalLogCountMax, intervalLogReclaimCount, prefetchPageCountMax, syncInFlightCountMax, syncQueueCountMax, atomicWaiterCountMax, pageBytes, barrierIdCountMax, lockIdCountMax, lockRestProbeGrantInterval } from '../constants.js';
import type { Engine, EngineCounters, EngineOptions, FaultResult, PlacementName, SyncRequest, SyncResult } from './engine.js';
import { protNone, protRead, protReadWrite, type PageMemory } from './memory.js';
import type { AtomicOp, ConsistencyInfo, DiffBatch, IntervalRecord, ProtocolMessage } from './messages.js';
import { atomicApply } from './atomic-ops.js';
import { ReadAheadPolicy } from './readahead.js';

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
  /** Diff entries this node sent for the page to its home (empty ones too). */
  sentDiffs: number;
  /** At the home: diff entries applied per writer (a lent page's count travels with it). */
  applied: number[];
  /**
   * A borrowed page's diff of this node's own writes made before the lend
   * arrived: applied once every diff this node sent the old home is in (they
   * come forwarded), so a writer's diffs apply in the order it wrote them.
   */
  ownPending: Uint8Array | null;
}

interface LockState {
  /** The node the token is at (held by a thread there, or resting unused): -1 when it is here at the manager. */
  holderNode: number;
  /** `vc`: what the requester had applied when it asked (a lower bound). `tryOnly`: waits only for the holder's answer to a recall. */
  queue: Array<{ node: number; requestId: number; vc: number[]; tryOnly: boolean }>;
  /** A recall (plain, not tryOnly) went to the holder since its grant: it gives the token back at its unlock. */
  recalled: boolean;
  /**
   * The last token left to rest was not re-acquired at its node before it was
   * recalled: grants carry the recall flag (the token goes back at the unlock,
   * no lockRecall needed), all but every lockRestProbeGrantInterval-th.
   */
  eager: boolean;
  eagerGrantCount: number;
  vc: number[];
  /** The latest releases, newest last: node and the interval it closed at the release (at most grantPagePushCountMax). */
  releases: Array<{ node: number; index: number }>;
}

/** Page copies pushed with a sync message (lockGrant, barrierArrive, barrierDepart). */
interface PushedPages { pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[] }

interface BarrierState {
  parties: number;
  arrivals: Array<{ node: number; requestId: number; known: number[]; vc: number[]; push: PushedPages | null }>;
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
  /** Home migration on (hlrc only): see lendWritten. */
  private readonly migrateHomes: boolean;
  /** Per page of this node's static placement: the node it was lent to, -1 while it is home itself. */
  private readonly lentTo: Int32Array;
  /** Per page: 1 when another node lent it to this one (this node is its home from then on). */
  private readonly borrowed: Uint8Array;
  /** Nodes this node lent pages to (an unmatched atomicCancel is forwarded to them). */
  private readonly lendees = new Set<number>();
  /**
   * Per page of this node's own (not lent), its writers since the last
   * barrier departure here: a writer's node, or -2 for several (this node's
   * own noticed writes count as a writer).
   */
  private readonly writersSinceBarrier = new Map<number, number>();
  /**
   * Per page of this node's own, the other node that alone wrote it in the
   * last window that wrote it: a page moves after two such windows (windows
   * without writes do not count).
   */
  private readonly soleWriters = new Map<number, number>();
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
  /**
   * Lock tokens at this node (issue 12): a lock stays with the node of its last
   * holder until its manager recalls it, so a re-acquire here costs no message
   * (TreadMarks' locks stay with their last owner likewise). `recalled`: another
   * node waits, so the token goes back at the next unlock. Every held lock has its token here.
   * `waiters`: threads of this node waiting for a held token nobody recalled;
   * the unlock hands it to the first (no message).
   */
  private readonly tokens = new Map<number, {
    recalled: boolean; waiters: Array<{ threadRef: number; threadId: number }>;
    /** Granted to rest (no recall flag), and the re-acquires at this node since, reported with its release. */
    resting: boolean; reuses: number;
  }>();
  private readonly locks = new Map<number, LockState>();
  private readonly conds = new Map<number, Array<{ node: number; requestId: number; vc: number[] }>>();
  private readonly barriers = new Map<number, BarrierState>();
  private readonly barrierParties = new Map<number, number>();
  private readonly atomicWaiters: AtomicWaiter[] = [];
  private nowMs = 0;
  private readonly clock: (() => number) | null;
  /** Race mode at the race home: per Atomics location (byte address), the join of the vcs released there. */
  private readonly atomicClocks = new Map<number, number[]>();
  /** Race detection: the one home of every page, or -1 (placement decides). */
  private readonly homeNode: number;
  private readonly onIntervalClosed: ((index: number, vc: readonly number[]) => void) | null;
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
    this.homeNode = options.homeNode ?? -1;
    assert(this.homeNode >= -1 && this.homeNode < this.nodeCount, 'the race home is a node of the cluster');
    this.onIntervalClosed = options.onIntervalClosed ?? null;
    this.vc = new Array<number>(this.nodeCount).fill(0);
    this.known = new Array<number>(this.nodeCount).fill(0);
    this.floor = new Array<number>(this.nodeCount).fill(0);
    this.log = Array.from({ length: this.nodeCount }, () => []);
    this.peerKnown = Array.from({ length: this.nodeCount }, () => new Array<number>(this.nodeCount).fill(0));
    this.logReclaimCount = options.logReclaimCount ?? intervalLogReclaimCount;
    assert(this.logReclaimCount >= 1 && this.logReclaimCount < intervalLogCountMax / 2, 'log reclaim count within the log limit');
    this.vcQueryLogCount = this.logReclaimCount;
    this.prefetchPageCount = options.prefetchPageCount ?? prefetchPageCountMax;
    this.readAheadTracking = options.readAheadTracking ?? true;
    assert(Number.isInteger(this.prefetchPageCount) && this.prefetchPageCount >= 1 && this.prefetchPageCount <= prefetchPageCountMax, 'prefetch page count within 1..prefetchPageCountMax');
    this.readAhead = new ReadAheadPolicy({
      homeCount: this.nodeCount, windowMax: this.prefetchPageCount, windowInitial: Math.min(prefetchPageCountInitial, this.prefetchPageCount),
      streamCountMax: prefetchStreamCountMax, historyCountMax: prefetchHistoryCountMax, strideMax: prefetchStridePagesMax,
      regionShift: prefetchRegionPagesLog2, touchesObserved: this.readAheadTracking,
    });
    this.peerVc = Array.from({ length: this.nodeCount }, () => new Array<number>(this.nodeCount).fill(0));
    this.exclusive = new Uint8Array(this.pageCount);
    // Race mode keeps every page at its one home node (so every write is diffed): no page moves.
    this.migrateHomes = (options.migrateHomes ?? true) && this.homeNode < 0;
    this.lentTo = new Int32Array(this.pageCount).fill(-1);
    this.borrowed = new Uint8Array(this.pageCount);
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

  /**
   * The home as this node knows it: a page lent to this node is its own; a
   * page this node lent is the borrower's; any other page is at its static
   * (placement) home, which forwards to a borrower: only the lender and the
   * borrower ever know of a lend (see lendWritten).
   */
  homeOf(page: number): number {
    assert(page >= 0 && page < this.pageCount, 'page within the region');
    if (this.homeNode >= 0) return this.homeNode;
    if (this.borrowed[page] === 1) return this.nodeId;
    const home = this.placementHomeOf(page);
    if (home === this.nodeId && this.lentTo[page]! >= 0) return this.lentTo[page]!;
    return home;
  }

  /** The home by placement alone: where a page starts, and the manager of sync ids on it (never moves). */
  private placementHomeOf(page: number): number {
    if (this.homeNode >= 0) return this.homeNode;
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
      conds: this.conds.size, twinned: this.twinned.size, prefetches: this.prefetches.size, pages: this.pages.size, pending: this.pending.size, locks: this.locks.size, tokens: this.tokens.size, tokenWaiters: [...this.tokens.values()].reduce((sum, token) => sum + token.waiters.length, 0),
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
        sentDiffs: 0, applied: new Array<number>(this.nodeCount).fill(0), ownPending: null,
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
      this.readAhead.touched(page);
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
      } else if (this.onIntervalClosed !== null) {
        // Race detection protects valid pages at every interval's end so
        // that the next read faults and is recorded: let it read now (a
        // page written in the open interval stays writable).
        this.drainDirty();
        this.memory.protect([page], this.intervalPages.has(page) ? protReadWrite : protRead);
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

  /** Which pages a fetch asks for besides the faulting one (adaptive read-ahead). */
  private readonly readAhead: ReadAheadPolicy;
  /** Read-ahead pages asked for untracked (a saturated stream's): installed readable, counted apart. */
  private readonly untrackedReadAhead = new Set<number>();

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
    // Read-ahead (src/protocol/readahead.ts): the policy names the pages,
    // asked for while invalid here, not in flight and of the same home (a
    // run stops at the first page that is not, a sparse pattern skips it).
    const plan = this.readAhead.plan(home, page);
    const extraPages: number[] = [];
    const extraNeeds: number[][] = [];
    for (const next of plan.pages) {
      if (extraPages.length >= this.prefetchPageCount - 1) break;
      const other = next >= 0 && next < this.pageCount ? this.pages.get(next) : undefined;
      if (other === undefined || other.valid || other.fetching || this.homeOf(next) !== home) {
        if (plan.sparse) continue;
        break;
      }
      other.fetching = true;
      extraPages.push(next);
      extraNeeds.push([...other.need]);
    }
    this.readAhead.issued(home, page, extraPages, plan.track);
    if (!plan.track) for (const extra of extraPages) this.untrackedReadAhead.add(extra);
    assert(!this.prefetches.has(page), 'one fetch per page in flight');
    if (extraPages.length > 0) this.prefetches.set(page, extraPages);
    this.send(home, { type: 'pageRequest', page, need: [...state.need], extraPages, extraNeeds });
  }

  /** At the home: a page becomes valid once every diff it needs has been applied. */
  private checkHomePage(page: number): void {
    const state = this.pageState(page);
    if (state.valid) return;
    // A borrowed page: this node's own diffs to the old home come first.
    if (state.applied[this.nodeId]! < state.sentDiffs) return;
    if (state.ownPending !== null) {
      this.memory.applyDiff(page, state.ownPending);
      state.ownPending = null;
    }
    if (!this.isCovered(state.version, state.need)) return;
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
    // Race detection closes empty intervals too: a thread that only read
    // between two synchronizations must have an interval for its reads, and
    // whoever acquires from it must be seen to be ordered after them.
    if (this.intervalPages.size === 0 && this.onIntervalClosed === null) return;
    const pages = [...this.intervalPages].sort((a, b) => a - b);
    const index = this.vc[this.nodeId]! + 1;
    const diffs = new Map<number, Uint8Array>();
    for (const record of this.memory.flush(pages)) diffs.set(record.page, record.diff);
    const byHome = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (const page of pages) {
      const home = this.homeOf(page);
      const state = this.pageState(page);
      state.version[this.nodeId] = index;
      if (home === this.nodeId) {
        // The home's own writes are already in its master copy.
        if (this.lentTo[page] === -1 && this.borrowed[page] === 0) this.writersSinceBarrier.set(page, -2);
        continue;
      }
      state.sentDiffs++;
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
    this.onIntervalClosed?.(index, this.vc);
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
    const writer = message.origin ?? from;
    // Diffs for pages lent away go on to the borrower, in arrival order: a
    // writer's diffs reach it through this node, after the lend (FIFO links).
    const forward = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (let k = 0; k < message.pages.length; k++) {
      const page = message.pages[k]!;
      const home = this.homeOf(page);
      if (home !== this.nodeId) {
        assert(this.lentTo[page] === home, 'diffs go to the home, or to the static home of a lent page');
        let batch = forward.get(home);
        if (batch === undefined) { batch = { pages: [], diffs: [] }; forward.set(home, batch); }
        batch.pages.push(page);
        batch.diffs.push(message.diffs[k]!);
        continue;
      }
      const state = this.pageState(page);
      // A borrower's own diffs made before the lend come back forwarded after
      // its later intervals were closed here: only they may go back.
      assert(state.version[writer]! <= message.interval || (writer === this.nodeId && this.borrowed[page] === 1), 'diff versions never go back per writer (early flushes repeat the last closed interval)');
      if (message.diffs[k]!.length > 0) {
        this.memory.applyDiff(page, message.diffs[k]!);
        this.stats.diffsApplied++;
        if (this.lentTo[page] === -1 && this.borrowed[page] === 0) {
          const seen = this.writersSinceBarrier.get(page);
          this.writersSinceBarrier.set(page, seen === undefined || seen === writer ? writer : -2);
        }
      }
      state.version[writer] = Math.max(state.version[writer]!, message.interval);
      state.applied[writer]!++;
      this.checkHomePage(page);
      this.serveFetchers(page);
    }
    for (const [home, batch] of forward) {
      this.stats.lendForwards = (this.stats.lendForwards ?? 0) + 1;
      this.send(home, { type: 'diffs', interval: message.interval, pages: batch.pages, diffs: batch.diffs, origin: writer });
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
        this.readAhead.invalidated(page);
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
    if (state !== undefined && state.prefetched === true) {
      state.prefetched = false;
      this.readAhead.forget(page);
    }
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
      this.pageState(record.page).sentDiffs++;
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
      this.pageState(page).sentDiffs++;
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
    const requester = message.origin ?? from;
    assert(message.extraPages.length === message.extraNeeds.length && message.extraPages.length < prefetchPageCountMax, 'extra pages within limit, one need each');
    const home = this.homeOf(page);
    if (home !== this.nodeId) {
      assert(this.lentTo[page] === home, 'page requests go to the home, or to the static home of a lent page');
      if (home !== requester) {
        // Forwarded after every diff of the requester that came here before it (FIFO).
        this.stats.lendForwards = (this.stats.lendForwards ?? 0) + 1;
        this.send(home, { ...message, origin: requester });
        return;
      }
      // The borrower asked before the lend reached it: it is the home now.
      // Its extra pages still homed here are served as any prefetch.
      const extras = this.servedExtras(message.extraPages, message.extraNeeds);
      this.send(requester, { type: 'pageReply', page, version: [], bytes: new Uint8Array(0), ...extras });
      return;
    }
    let list = this.fetchers.get(page);
    if (list === undefined) { list = []; this.fetchers.set(page, list); }
    assert(list.length < syncQueueCountMax, 'fetchers within limit');
    list.push({ node: requester, need: message.need, extraPages: message.extraPages, extraNeeds: message.extraNeeds });
    this.serveFetchers(page);
  }

  /**
   * Whether a home copy holds everything its versions claim: a borrowed page
   * waits for this node's own diffs sent to the old home (they come
   * forwarded) and then its own writes of before the lend.
   */
  private masterReady(state: PageState): boolean {
    return state.applied[this.nodeId]! >= state.sentDiffs && state.ownPending === null;
  }

  /** Extra pages homed here whose copy covers their need (a prefetch never waits). */
  private servedExtras(pages: number[], needs: number[][]): { extraPages: number[]; extraVersions: number[][]; extraBytes: Uint8Array[] } {
    const extraPages: number[] = [];
    const extraVersions: number[][] = [];
    const extraBytes: Uint8Array[] = [];
    pages.forEach((extra, k) => {
      // A page lent away since the requester asked is left out.
      if (this.homeOf(extra) !== this.nodeId) return;
      const other = this.pageState(extra);
      if (!this.isCovered(other.version, needs[k]!) || !this.masterReady(other)) return;
      const copy = new Uint8Array(pageBytes);
      this.readServed(extra, copy);
      extraPages.push(extra);
      extraVersions.push([...other.version]);
      extraBytes.push(copy);
    });
    return { extraPages, extraVersions, extraBytes };
  }

  private serveFetchers(page: number): void {
    const list = this.fetchers.get(page);
    if (list === undefined) return;
    const state = this.pageState(page);
    const rest = list.filter((f) => {
      // The faulting page waits for its diffs, exactly as a single fetch.
      if (!this.isCovered(state.version, f.need) || !this.masterReady(state)) return true;
      const bytes = new Uint8Array(pageBytes);
      this.readServed(page, bytes);
      this.subscribe(page, f.node);
      // Extra pages go along only if this copy already covers their need: a
      // prefetch never delays the faulting page. The requester fetches a left-out page when it faults on it.
      const extras = this.servedExtras(f.extraPages, f.extraNeeds);
      this.send(f.node, { type: 'pageReply', page, version: [...state.version], bytes, ...extras });
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
    if (message.bytes.length === 0) {
      // Lent to this node while the request was on its way (see onPageRequest).
      assert(this.borrowed[message.page] === 1, 'a page reply without bytes answers the borrower of a lent page');
    } else {
      this.installFetched(message.page, message.version, message.bytes, true);
    }
    for (const extra of asked) {
      const k = served.get(extra);
      // Lent to this node meanwhile: the lend ended the fetch.
      if (this.borrowed[extra] === 1) { assert(k === undefined, 'a lent page is not served as an extra to its borrower'); continue; }
      if (k === undefined) {
        // Left out by the home: fetch it only if a thread waits for it.
        const state = this.pageState(extra);
        assert(state.fetching && !state.valid, 'a prefetched page was being fetched');
        state.fetching = false;
        this.readAhead.forget(extra);
        this.untrackedReadAhead.delete(extra);
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
      if (!wanted) this.readAhead.forget(page);
      if (wanted || state.waiters.length > 0) this.fetch(page);
      return;
    }
    this.memory.writePage(page, bytes);
    state.valid = true;
    // A read-ahead page a thread already waits for was worth asking for.
    if (!wanted && state.waiters.length > 0) this.readAhead.touched(page);
    const untracked = this.untrackedReadAhead.delete(page);
    if (untracked && !wanted) this.stats.prefetchUntrackedPages = (this.stats.prefetchUntrackedPages ?? 0) + 1;
    if (this.readAheadTracking && !untracked && !wanted && state.waiters.length === 0) {
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
    // A thread waiting here for a token held on this node: nothing was sent for it.
    for (const token of this.tokens.values()) {
      const k = token.waiters.findIndex((waiter) => waiter.threadRef === threadRef);
      if (k >= 0) { token.waiters.splice(k, 1); return true; }
    }
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
    if (k < 0) {
      // The wait may have been forwarded to a borrower of its page.
      for (const node of this.lendees) if (node !== from) this.send(node, { type: 'atomicCancel', requestId, origin: from });
      return;
    }
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

  /** `recalled`: for a granted lock, whether another node already waits for it. */
  private finish(requestId: number, result: SyncResult, recalled = false): void {
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
    if (entry.kind === 'lock' && result.ok && result.value === null) {
      assert(!this.tokens.has(entry.lockId!), 'a lock is granted to a node that does not have its token');
      this.held.set(entry.lockId!, { threadId: entry.threadId! });
      this.tokens.set(entry.lockId!, { recalled, waiters: [], resting: !recalled, reuses: 0 });
    }
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
    if (id >= 0 && page < this.pageCount) return this.placementHomeOf(page);
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
        const token = this.tokens.get(request.lockId);
        if (token !== undefined && !this.held.has(request.lockId)) {
          // The token rests here from this node's last holder: no message, and
          // nothing to acquire (every write under the lock was made on this node).
          assert(!token.recalled && token.waiters.length === 0, 'a recalled or awaited token goes on at its unlock, it never rests');
          this.held.set(request.lockId, { threadId: request.threadId });
          this.stats.lockTokenReuses = (this.stats.lockTokenReuses ?? 0) + 1;
          token.reuses++;
          this.host.resume(threadRef, { ok: true, value: null });
          return;
        }
        if (token !== undefined && request.tryOnly === true) {
          this.host.resume(threadRef, { ok: true, value: 'busy' });
          return;
        }
        if (token !== undefined && !token.recalled) {
          // Held by another thread of this node, nobody else asked: wait here for its unlock.
          assert(token.waiters.length < syncQueueCountMax, 'lock waiters within limit');
          token.waiters.push({ threadRef, threadId: request.threadId });
          return;
        }
        this.requestLock(threadRef, request.lockId, request.threadId, request.tryOnly === true);
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
        const token = this.tokens.get(request.lockId);
        assert(token !== undefined, 'a held lock has its token here');
        this.host.resume(threadRef, { ok: true, value: null });
        if (token.recalled) {
          this.releaseToken(request.lockId);
          // This node's waiters queue at the manager behind the node that asked.
          for (const waiter of token.waiters) this.requestLock(waiter.threadRef, request.lockId, waiter.threadId, false);
          return;
        }
        const next = token.waiters.shift();
        // Nobody else asked: the next thread of this node takes it, or it rests here until someone does (no message).
        if (next !== undefined) {
          this.held.set(request.lockId, { threadId: next.threadId });
          this.stats.lockTokenReuses = (this.stats.lockTokenReuses ?? 0) + 1;
          token.reuses++;
          this.host.resume(next.threadRef, { ok: true, value: null });
        }
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
        // The condWait message releases the lock at its manager: the token goes with it.
        const token = this.tokens.get(request.lockId);
        assert(token !== undefined, 'a held lock has its token here');
        this.tokens.delete(request.lockId);
        const manager = this.managerOf(request.lockId);
        this.closeInterval(manager);
        const requestId = this.newRequest(threadRef, 'lock', { lockId: request.lockId, threadId: request.threadId });
        this.deliver(manager, () => ({ type: 'condWait', condId: request.condId, lockId: request.lockId, requestId, info: this.infoTo(manager) }));
        for (const waiter of token.waiters) this.requestLock(waiter.threadRef, request.lockId, waiter.threadId, false);
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
          ...this.pushForBarrier(manager),
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

  private requestLock(threadRef: number, lockId: number, threadId: number, tryOnly: boolean): void {
    const manager = this.managerOf(lockId);
    this.closeInterval(manager);
    const requestId = this.newRequest(threadRef, 'lock', { lockId, threadId });
    this.deliver(manager, () => ({ type: 'lockRequest', lockId, requestId, tryOnly, info: this.infoTo(manager) }));
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
    // Race detection: writes before this acquire must not take its timestamp.
    if (this.onIntervalClosed !== null) this.closeInterval();
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
      case 'lockRelease': return this.onLockRelease(from, message.lockId, message.info, message.reuses);
      case 'lockGrant':
        this.learn(from, message.info);
        if (!message.granted) return this.finish(message.requestId, { ok: true, value: 'busy' });
        this.acquire(message.info.vc);
        this.installPushed(message, this.pending.get(message.requestId)?.flushSeq ?? 0);
        return this.finish(message.requestId, { ok: true, value: null }, message.recall === true);
      case 'lockRecall': return this.onLockRecall(message.lockId, message.tryOnly);
      case 'lockBusy': return this.onLockBusy(from, message.lockId);
      case 'condWait': return this.onCondWait(from, message);
      case 'condSignal': return this.onCondSignal(from, message);
      case 'barrierArrive': return this.onBarrierArrive(from, message);
      case 'barrierDepart': return this.onBarrierDepart(from, message);
      case 'atomicRequest': return this.onAtomicRequest(from, message);
      case 'atomicCancel': return this.onAtomicCancel(message.origin ?? from, message.requestId);
      case 'homeLend': return this.onHomeLend(from, message);
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
      lock = { holderNode: -1, queue: [], recalled: false, eager: false, eagerGrantCount: 0, vc: new Array<number>(this.nodeCount).fill(0), releases: [] };
      this.locks.set(lockId, lock);
    }
    return lock;
  }

  private onLockRequest(from: number, lockId: number, requestId: number, tryOnly: boolean, info: ConsistencyInfo): void {
    assert(this.managerOf(lockId) === this.nodeId, 'lock requests go to the manager');
    if (from !== this.nodeId) this.learn(from, info);
    const lock = this.lock(lockId);
    if (tryOnly && (lock.holderNode === from || lock.queue.length > 0)) {
      this.answerBusy(from, lockId, requestId);
      return;
    }
    assert(lock.queue.length < syncQueueCountMax, 'lock queue within limit');
    if (tryOnly && lock.holderNode !== -1) {
      // The token may rest unused at its holder's node: ask. Its answer is a
      // lockRelease (granted to this request) or a lockBusy (answered 'busy').
      lock.queue.push({ node: from, requestId, vc: [...info.vc], tryOnly: true });
      this.deliver(lock.holderNode, () => ({ type: 'lockRecall', lockId, tryOnly: true }));
      return;
    }
    lock.queue.push({ node: from, requestId, vc: [...info.vc], tryOnly: false });
    if (lock.holderNode !== -1 && !lock.recalled) {
      lock.recalled = true;
      this.deliver(lock.holderNode, () => ({ type: 'lockRecall', lockId, tryOnly: false }));
    }
    this.grantNext(lockId);
  }

  private answerBusy(node: number, lockId: number, requestId: number): void {
    if (node === this.nodeId) { this.finish(requestId, { ok: true, value: 'busy' }); return; }
    this.send(node, { type: 'lockGrant', lockId, requestId, granted: false, info: this.infoFor(node) });
  }

  /** At the node holding a lock's token: the manager wants it back. */
  private onLockRecall(lockId: number, tryOnly: boolean): void {
    const token = this.tokens.get(lockId);
    // Gone already (condWait, or a canceled grant): that release answers the recall.
    if (token === undefined) return;
    if (!this.held.has(lockId)) {
      assert(token.waiters.length === 0, 'a free token has no waiters here');
      this.releaseToken(lockId);
      return;
    }
    if (!tryOnly) { token.recalled = true; return; }
    const manager = this.managerOf(lockId);
    this.deliver(manager, () => ({ type: 'lockBusy', lockId }));
  }

  /** Gives a lock's token back to its manager: the release of release consistency happens here, not at every unlock. */
  private releaseToken(lockId: number): void {
    const token = this.tokens.get(lockId);
    assert(token !== undefined, 'a token is released by the node it is at');
    this.tokens.delete(lockId);
    const manager = this.managerOf(lockId);
    this.closeInterval(manager);
    this.deliver(manager, () => ({ type: 'lockRelease', lockId, info: this.infoTo(manager), ...(token.resting ? { reuses: token.reuses } : {}) }));
  }

  /** The holder kept the token from a tryOnly recall: the oldest tryOnly request is answered 'busy'. */
  private onLockBusy(from: number, lockId: number): void {
    const lock = this.locks.get(lockId);
    assert(lock !== undefined && lock.holderNode === from, 'lockBusy comes from the holder, before any release of it');
    const k = lock.queue.findIndex((entry) => entry.tryOnly);
    assert(k >= 0, 'a lockBusy answers a waiting tryOnly request (recalls and answers keep their order)');
    const [entry] = lock.queue.splice(k, 1);
    this.answerBusy(entry!.node, lockId, entry!.requestId);
  }

  private onLockRelease(from: number, lockId: number, info: ConsistencyInfo, reuses?: number): void {
    if (from !== this.nodeId) this.learn(from, info);
    const lock = this.lock(lockId);
    assert(lock.holderNode === from, 'the lock is released by its holder node');
    lock.holderNode = -1;
    // Only a token left to rest tells whether resting paid (its node re-acquired it).
    if (reuses !== undefined) lock.eager = reuses === 0;
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
    // tryOnly requests behind the new holder find the lock held.
    const busy = lock.queue.filter((entry) => entry.tryOnly);
    lock.queue = lock.queue.filter((entry) => !entry.tryOnly);
    // Race mode: every lock is an acquire and a release (each bounds an interval
    // the race report names), so a token never rests.
    lock.recalled = lock.queue.length > 0 || this.homeNode >= 0
      || (lock.eager && ++lock.eagerGrantCount % lockRestProbeGrantInterval !== 0);
    this.grant(next.node, lockId, next.requestId, lock, next.vc, lock.recalled);
    for (const entry of busy) this.answerBusy(entry.node, lockId, entry.requestId);
  }

  /** A free lock with no queue still carries its release vector (and whether its token rests); keep it unless that is all default. */
  private retainLockVc(lockId: number, lock: LockState): void {
    if (lock.vc.some((v) => v > 0) || lock.eager) this.locks.set(lockId, lock);
  }

  private grant(node: number, lockId: number, requestId: number, lock: LockState, requesterVc: number[], recall: boolean): void {
    const vc = lock.vc;
    if (node === this.nodeId) {
      this.acquire(vc);
      this.finish(requestId, { ok: true, value: null }, recall);
      return;
    }
    const info = this.infoFor(node);
    const push = this.pushFor(lock, requesterVc);
    this.send(node, { type: 'lockGrant', lockId, requestId, granted: true, info: { ...info, vc: [...vc] }, ...push, ...(recall ? { recall } : {}) });
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
        if (state.version[writer]! < index || !this.masterReady(state)) continue;
        const bytes = new Uint8Array(pageBytes);
        this.readServed(page, bytes);
        pushPages.push(page);
        pushVersions.push([...state.version]);
        pushBytes.push(bytes);
      }
    }
    return pushPages.length === 0 ? {} : { pushPages, pushVersions, pushBytes };
  }

  /**
   * Per page of this node's own: the nodes that fetched it (the faulting
   * page of a fetch), each with the barrier pushes left before it must fetch
   * again to stay subscribed (a node that stops reading the page stops
   * receiving it after barrierPushRenewCount barriers).
   */
  private readonly subscribers = new Map<number, Map<number, number>>();

  private subscribe(page: number, node: number): void {
    let nodes = this.subscribers.get(page);
    if (nodes === undefined) { nodes = new Map(); this.subscribers.set(page, nodes); }
    nodes.set(node, barrierPushRenewCount);
  }

  /**
   * Barrier pushes (issue 13.2): pages of this node's own that `toNode`
   * fetched before and that this node wrote in intervals `toNode` may not
   * have applied travel with the barrier message to it, so a boundary read
   * every iteration (Jacobi) costs no fetch after the barrier. The receiver
   * installs a copy only where it covers the need its acquire set (as for
   * lockGrant pushes). At most grantPagePushCountMax pages.
   */
  private pushForBarrier(toNode: number): PushedPages {
    if (toNode === this.nodeId || this.subscribers.size === 0 || this.protocol !== 'hlrc') return {};
    const self = this.nodeId;
    const pushPages: number[] = [];
    const pushVersions: number[][] = [];
    const pushBytes: Uint8Array[] = [];
    const from = Math.max(this.peerVc[toNode]![self]!, this.floor[self]!);
    for (let index = this.vc[self]!; index > from && pushPages.length < grantPagePushCountMax; index--) {
      const record = this.log[self]![index - this.floor[self]! - 1];
      if (record === undefined) break;
      for (const page of record.pages) {
        if (pushPages.length >= grantPagePushCountMax) break;
        const nodes = this.subscribers.get(page);
        const left = nodes?.get(toNode);
        if (left === undefined || this.homeOf(page) !== self || pushPages.includes(page)) continue;
        const state = this.pageState(page);
        if (!state.valid || !this.masterReady(state)) continue;
        if (left <= 1) nodes!.delete(toNode); else nodes!.set(toNode, left - 1);
        if (nodes!.size === 0) this.subscribers.delete(page);
        const bytes = new Uint8Array(pageBytes);
        this.readServed(page, bytes);
        pushPages.push(page);
        pushVersions.push([...state.version]);
        pushBytes.push(bytes);
      }
    }
    return pushPages.length === 0 ? {} : { pushPages, pushVersions, pushBytes };
  }

  /** Pages pushed with a grant or a barrier message, after its acquire: installed where they make an invalid copy valid. */
  private installPushed(message: PushedPages, requestFlushSeq: number): void {
    const pages = message.pushPages ?? [];
    assert(pages.length <= grantPagePushCountMax && pages.length === (message.pushBytes ?? []).length && pages.length === (message.pushVersions ?? []).length, 'pushed pages within limit');
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
    for (const waiter of woken) lock.queue.push({ ...waiter, tryOnly: false });
    if (woken.length > 0 && lock.holderNode !== -1 && !lock.recalled) {
      lock.recalled = true;
      this.deliver(lock.holderNode, () => ({ type: 'lockRecall', lockId, tryOnly: false }));
    }
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
    barrier.arrivals.push({ node: from, requestId: message.requestId, known: message.info.known, vc: message.info.vc, push: message.pushPages === undefined ? null : message });
    if (barrier.arrivals.length < barrier.parties) return;
    this.barriers.delete(message.barrierId);
    // Merge everyone's knowledge: the manager acquires it all, then hands it back.
    const merged = [...this.vc];
    for (const arrival of barrier.arrivals) for (let n = 0; n < this.nodeCount; n++) merged[n] = Math.max(merged[n]!, arrival.vc[n]!);
    this.acquire(merged);
    // Pages pushed to this (the manager's) node, if one of its threads waits here (its request bounds early flushes).
    const own = barrier.arrivals.find((arrival) => arrival.node === this.nodeId);
    const ownRequest = own === undefined ? undefined : this.pending.get(own.requestId);
    for (const arrival of barrier.arrivals) {
      if (arrival.push !== null && ownRequest !== undefined) this.installPushed(arrival.push, ownRequest.flushSeq);
    }
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
    this.send(node, { type: 'barrierDepart', barrierId, requestId, error, serial, floor: [...floor], info: { ...info, vc: [...vc] }, ...(error === '' ? this.pushForBarrier(node) : {}) });
  }

  private onBarrierDepart(from: number, message: Extract<ProtocolMessage, { type: 'barrierDepart' }>): void {
    if (from !== this.nodeId) this.learn(from, message.info);
    if (message.error !== '') {
      this.finish(message.requestId, { ok: false, code: 'DSM_ERR_BARRIER_PARTIES', message: message.error });
      return;
    }
    this.acquire(message.info.vc);
    if (from !== this.nodeId && message.pushPages !== undefined) this.installPushed(message, this.pending.get(message.requestId)?.flushSeq ?? 0);
    this.raiseFloor(message.floor);
    this.lendWritten();
    this.finish(message.requestId, { ok: true, value: message.serial ? 'serial' : null });
  }

  // ------------------------------------------------------ home migration

  /**
   * At a barrier's departure: pages of this node's static placement whose
   * only writer since the last departure here was one other node, the same
   * as in the last earlier window that wrote them, are lent to it
   * (docs/PROTOCOL.md, "Home migration"); data written once does not move. Only pages at rest move: a
   * valid copy, no fault, fetch or Atomics.wait pending on them. A lent page
   * stays lent (it is never lent on, nor given back).
   */
  private lendWritten(): void {
    const writers = [...this.writersSinceBarrier];
    this.writersSinceBarrier.clear();
    if (!this.migrateHomes || this.protocol !== 'hlrc' || this.nodeCount === 1) return;
    const byNode = new Map<number, number[]>();
    for (const [page, writer] of writers) {
      const before = this.soleWriters.get(page);
      if (writer < 0 || writer === this.nodeId) { this.soleWriters.delete(page); continue; }
      this.soleWriters.set(page, writer);
      if (before !== writer) continue;
      if (this.placementHomeOf(page) !== this.nodeId || this.lentTo[page] !== -1 || this.borrowed[page] === 1) continue;
      const state = this.pageState(page);
      if (!state.valid || state.fetching || state.waiters.length > 0 || this.fetchers.has(page) || state.ownPending !== null) continue;
      if (this.atomicWaiters.some((waiter) => Math.floor(waiter.address / pageBytes) === page)) continue;
      let pages = byNode.get(writer);
      if (pages === undefined) { pages = []; byNode.set(writer, pages); }
      pages.push(page);
    }
    for (const [node, pages] of byNode) {
      pages.sort((a, b) => a - b);
      for (let k = 0; k < pages.length; k += lendPageCountMax) this.lend(node, pages.slice(k, k + lendPageCountMax));
    }
  }

  /**
   * Hands pages over to `node`. Stores here are stopped first (read-only,
   * fast path off), so the copy sent holds every write this node made,
   * exclusive ones included; from then on this node's stores twin and diff
   * like any non-home writer's, and go to the borrower after this message.
   */
  private lend(node: number, pages: number[]): void {
    this.memory.setFastWrite(pages, false);
    this.memory.protect(pages, protRead);
    // Pages the fast path made dirty stay in the open interval: its closing
    // sends the borrower an empty diff, so its version reaches that interval.
    this.drainDirty();
    this.memory.setTwinless(pages, false);
    const versions: number[][] = [];
    const applied: number[][] = [];
    const bytes: Uint8Array[] = [];
    for (const page of pages) {
      const state = this.pageState(page);
      const copy = new Uint8Array(pageBytes);
      this.memory.readPage(page, copy);
      versions.push([...state.version]);
      applied.push([...state.applied]);
      bytes.push(copy);
      this.exclusive[page] = 0;
      this.lentTo[page] = node;
      this.soleWriters.delete(page);
    }
    this.memory.setFastWrite(pages, true);
    this.lendees.add(node);
    this.stats.pagesLent = (this.stats.pagesLent ?? 0) + pages.length;
    this.send(node, { type: 'homeLend', pages, versions, applied, bytes });
  }

  /**
   * The borrower becomes the pages' home. Its stores are stopped; its own
   * dirty writes (diffed against their twins) wait in ownPending until its
   * earlier diffs, sent to the lender, come back forwarded, so one writer's
   * diffs apply in order. The copy is unusable until then (checkHomePage).
   */
  private onHomeLend(from: number, message: Extract<ProtocolMessage, { type: 'homeLend' }>): void {
    const { pages } = message;
    assert(pages.length <= lendPageCountMax && pages.length === message.bytes.length && pages.length === message.versions.length && pages.length === message.applied.length, 'a lend carries one copy, version and count per page, within its limit');
    for (const page of pages) assert(this.placementHomeOf(page) === from && this.borrowed[page] === 0, 'pages are lent by their static home, once');
    this.memory.setFastWrite(pages, false);
    this.drainDirty();
    const dirty = pages.filter((page) => this.twinned.has(page));
    const own = new Map<number, Uint8Array>();
    for (const record of this.memory.flush(dirty)) own.set(record.page, record.diff);
    for (const page of dirty) this.twinned.delete(page);
    this.memory.protect(pages, protNone);
    this.memory.setTwinless(pages, true);
    pages.forEach((page, k) => {
      const state = this.pageState(page);
      assert(message.bytes[k]!.length === pageBytes, 'a lent page is a whole page');
      this.borrowed[page] = 1;
      this.exclusive[page] = 0;
      // A fetch in flight ends here: the lender answers it without the page.
      state.fetching = false;
      state.valid = false;
      state.version = [...message.versions[k]!];
      state.applied = [...message.applied[k]!];
      const diff = own.get(page);
      state.ownPending = diff !== undefined && diff.length > 0 ? diff : null;
      this.memory.writePage(page, message.bytes[k]!);
    });
    for (const page of pages) {
      this.checkHomePage(page);
      this.serveFetchers(page);
    }
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
    if (this.homeNode === this.nodeId) this.joinAtomicClock(message.address, message.info.vc);
    const page = Math.floor(message.address / pageBytes);
    const requester = message.origin ?? from;
    const home = this.homeOf(page);
    if (home !== this.nodeId) {
      // A page lent away: the borrower runs it, after the requester's diffs
      // forwarded before (this node acquired the requester's vc, so its own info covers it).
      assert(this.lentTo[page] === home && home !== requester, 'atomics run at the home of their page, or are forwarded by its static home');
      const { bundled: _bundled, ...rest } = message;
      this.stats.lendForwards = (this.stats.lendForwards ?? 0) + 1;
      this.send(home, { ...rest, origin: requester, info: this.infoFor(home) });
      return;
    }
    this.atomicAccess(page, () => this.performAtomic(requester, message, page));
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
        this.atomicReply(waiter.node, waiter.requestId, 'ok', waiter.address);
      }
      this.atomicReply(from, message.requestId, String(woken), message.address);
      return;
    }
    if (op === 'wait') {
      const expected = BigInt.asUintN(message.width * 8, BigInt(message.operands[0] ?? '0'));
      if (old !== expected) { this.atomicReply(from, message.requestId, 'not-equal', message.address); return; }
      if (message.timeoutMs === 0) { this.atomicReply(from, message.requestId, 'timed-out', message.address); return; }
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
      // Race mode: this location's clock now includes the store's interval.
      const clock = this.atomicClocks.get(message.address);
      if (clock !== undefined) clock[this.nodeId] = this.vc[this.nodeId]!;
    }
    this.atomicReply(from, message.requestId, result.toString(), message.address);
  }

  /**
   * Race mode, at the race home: every Atomics operation releases what its
   * thread did into its location's clock (past atomicClockCountMax
   * locations, new ones are not tracked and their replies carry this node's
   * whole vc: more ordering, races missed rather than invented).
   */
  private joinAtomicClock(address: number, vc: number[]): void {
    let clock = this.atomicClocks.get(address);
    if (clock === undefined) {
      if (this.atomicClocks.size >= atomicClockCountMax) return;
      clock = new Array<number>(this.nodeCount).fill(0);
      this.atomicClocks.set(address, clock);
    }
    for (let n = 0; n < this.nodeCount; n++) clock[n] = Math.max(clock[n]!, vc[n] ?? 0);
  }

  private atomicReply(node: number, requestId: number, result: string, address = -1): void {
    if (node === this.nodeId) {
      this.finish(requestId, { ok: true, value: result });
      return;
    }
    const info = this.infoFor(node);
    // Race mode: the acquire carries what was released at this location only
    // (a lower bound of this node's vc, as hearVc expects), so Atomics order
    // threads per location as the JavaScript memory model does, not through
    // everything the atomic home has seen.
    const clock = this.atomicClocks.get(address);
    if (clock !== undefined) info.vc = [...clock];
    this.send(node, { type: 'atomicReply', requestId, result, info });
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
      this.atomicReply(waiter.node, waiter.requestId, 'timed-out', waiter.address);
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
