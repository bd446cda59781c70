// hlrc coherence: home-based lazy release consistency (Zhou, Iftode & Li
// 1996) over the intervals and write notices of intervals.ts. Owns the page
// table (validity, versions, needs), faults, fetches and their replies, twins
// and diffs (releases close an interval, early flushes at invalidations and
// at the twin limit), invalidation at acquires, the home side (applying
// diffs, serving fetches, pages pushed with a lock grant) and exclusive own
// pages. Read-ahead policy: readahead.ts; home migration: migration.ts.
//
// A page copy is valid when its version vector covers `need`, the latest
// intervals naming it that this node has acquired. The home's copy is the
// master: diffs arrive over FIFO connections, so `applied[n]` at the home is
// a prefix of writer n's history.
//
// Over 600 lines: the writer side (twins, flushes) and the home side (diffs,
// fetches) share the page table and the exclusive/twinned sets in every
// method; split apart they would each need the other's state through a port
// as wide as the class.

import { assert } from '../errors.js';
import type { PushPrediction } from './push-predict.js';
import { diffsMessageBytesMax, grantPagePushCountMax, keptDiffCountMax, ownDiffPageCountMax, barrierPushRenewCount, barrierPushRenewCountMax, pageBytes, prefetchPageCountMax, syncInFlightCountMax, syncQueueCountMax, twinLimitFlushDivisor, writeAheadPageCountMax, dirtyAheadTag, dirtyAheadZeroTag } from '../constants.js';
import type { Coherence, GrantPush, LockReleases } from './coherence.js';
import type { EngineContext } from './context.js';
import type { Intervals } from './intervals.js';
import { protNone, protRead, protReadWrite, type PageMemory } from './memory.js';
import { applyDiff } from './diff-codec.js';
import type { DiffBatch, ProtocolMessage } from './messages.js';
import { HomeMigration, type LendHost } from './migration.js';
import { isCovered, newPageState, noWaiters, zeroVector, type PageState } from './page-state.js';
import { ReadAhead } from './readahead.js';
import { StaleRefresh } from './stale.js';
import { StatelessNeeds } from './stateless-needs.js';
import type { EngineCounters, EngineOptions, FaultResult } from './types.js';

/** The diff of a page with no write since its early flush (never written to: it has no bytes). */
const emptyDiff = new Uint8Array(0);

/** Pages pushed with a lockGrant or a barrier message, as they are collected. */
type PushedCopies = Required<GrantPush>;
/** The extra pages a page reply carries. */
/**
 * A reader's subscription to barrier pushes of one page of ours: `left`
 * pushes before it lapses (0: lapsed, no more copies), out of `pushes`
 * granted at its fetch (barrierPushRenewCount, doubled up to
 * barrierPushRenewCountMax while the reader fetches again at each lapse);
 * `lapsedAt`: the page's version (our interval) whose write first found it
 * lapsed (-1: none yet);
 * `pushedAt`: the version (our interval) of the copy last pushed, so a
 * write is pushed once, not at every barrier until the reader's applied
 * vector shows it (a push the reader already holds spent its subscription).
 */
type Subscription = { left: number; pushes: number; lapsedAt: number; pushedAt: number };
type ServedExtras = { extraPages: number[]; extraVersions: number[][]; extraBytes: Uint8Array[] };
/** A fetched copy to install (onPageReply's installCopies). */
type Install = { page: number; bytes: Uint8Array };

export class HlrcCoherence implements Coherence, LendHost {
  readonly protocol = 'hlrc' as const;

  // -- shared with the other parts (copied from the context for brevity)
  private readonly nodeId: number;
  private readonly nodeCount: number;
  private readonly pageCount: number;
  private readonly memory: PageMemory;
  private readonly stats: EngineCounters;

  // -- the page table
  /**
   * Per page touched by the protocol (absent: valid, zero versions, unless
   * `stateless` holds it). Built at a page's first use, not by the acquire
   * that only invalidates it (see stateless-needs.ts).
   */
  private readonly pages = new Map<number, PageState>();
  /** Pages with no state that an acquire made invalid: their need (pageState builds their state from it). */
  private readonly stateless: StatelessNeeds;
  /** need and applied of every state until raised (frozen: see zeroVector). */
  private readonly zeros: number[];
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
  readonly exclusive: Uint8Array;

  // -- the open interval
  /** Pages written in the open interval. */
  private readonly intervalPages = new Set<number>();
  /** acquire's scratch: 1 for a page already named by the notices being applied (all 0 between calls). */
  private namedMark: Uint8Array | null = null;
  /**
   * Stale copies an acquire left readable because a push that comes with it
   * replaces them (`acquire`'s `pushed`): invalid, fast path off, still
   * read-only in the app view, until the installPushed that follows in the
   * same turn overwrites them in place or, refusing them, takes their access
   * away. Empty between an acquire's caller's steps (asserted).
   */
  private readonly keptReadable = new Set<number>();
  /**
   * Pages with a twin in the open interval (all of them another node's), in
   * the order they were twinned: the oldest are flushed first at the limit.
   */
  readonly twinned = new Set<number>();
  /** The most pages twinned at once (0: no limit); past it the oldest dirty pages are flushed early. */
  private readonly twinPageCountMax: number;
  /** Whether fast writes upgrade this node's own pages ahead of a write stream (EngineOptions.ownWriteAhead). */
  private readonly ownWriteAhead: boolean;
  /** Own pages of the open interval that the fast path reported only as written ahead (drainDirty). */
  private readonly aheadOnly = new Set<number>();
  /**
   * Of those, the ones that held only zeros when they were upgraded (dirtyAheadZeroTag): if one still does when
   * the interval closes, no store changed it, and it is left out of the notice (dropUnchangedAhead).
   */
  private readonly aheadZero = new Set<number>();
  /**
   * Per page of another home: this node's last diffs sent for it (at most
   * keptDiffCountMax), entry `first` first (entries count as sentDiffs does),
   * kept after they went home. A pushed copy that holds this node's diffs up
   * to some entry but not the ones after it (`pushApplied`: a two-node
   * barrier's peer arrival, sent before this node's own diffs reached the
   * home: Water's boundary page; a line's grant sent before a diff this node
   * flushed early since its request arrived) is completed by applying the
   * rest in order, instead of being refused and the page fetched. The home
   * applies the same diffs to the same bytes when they arrive. At most
   * ownDiffPageCountMax pages, the oldest dropped first.
   */
  private readonly keptDiffs = new Map<number, { first: number; diffs: Uint8Array[] }>();
  /**
   * Deferred diffs (session 11, flush17): pages of closed intervals whose
   * diff is not made yet, page -> the interval whose closing named it. A
   * close with at least deferPageCountMin twinned pages keeps their twins,
   * turns their fast path off and protects them read-only, and sends only
   * the write notices with its sync message; the diffs follow
   * (flushDeferred, in pieces, from the runtime's flow control). Homes wait
   * for a page's diffs before they serve it or make their own copy valid
   * (version vectors), so a lock hand-off need not wait for a large
   * release's diffs. A page leaves the map when its diff is made: streamed,
   * or first, before a store to it (its write fault), its invalidation, a
   * twin-limit flush, or a lend to this node.
   */
  private readonly deferred = new Map<number, number>();
  /** Twinned pages from which a close defers their diffs (0: never). */
  private readonly deferPageCountMin: number;

  // -- fetches
  /** Extra pages asked for with each fetch still in flight: faulting page -> the pages after it. */
  private readonly prefetches = new Map<number, number[]>();
  /** At the home: page requests waiting for the page's diffs. */
  private readonly fetchers = new Map<number, Array<{ node: number; need: number[]; extraPages: number[]; extraNeeds: number[][]; ahead: boolean }>>();
  /** Which pages after a faulting one a fetch also asks for. */
  private readonly readAhead: ReadAhead;
  /**
   * Whether the first touch of a tracked read-ahead copy is served by the signal handler (PageMemory.setTouchAhead;
   * not in race mode, whose reads are seen by their faults): the engine learns of it from drainTouched (syncTouched).
   */
  private readonly touchAhead: boolean;

  // -- collaborators
  /** Home migration: the home of each page as this node knows it, and lends. */
  private readonly migration: HomeMigration;
  /** Race detection: told of every closed interval (see EngineOptions.onIntervalClosed). */
  private readonly onIntervalClosed: ((index: number, vc: readonly number[]) => void) | null;
  /** Whether an Atomics.wait is parked at this home on a page (home migration leaves such pages). */
  private readonly atomicWaiterOn: (page: number) => boolean;
  /** Stale copies between synchronizations (stale.ts); null: one node, or race detection. */
  private readonly stale: StaleRefresh | null;
  /**
   * Acquires, releases and faults of this node (stale.ts looks after a while
   * with none: a thread that faults is reading fresh copies, a poller of a
   * valid copy never faults).
   */
  private activity = 0;
  /** Whether the looks run on the tick (EngineOptions.staleRefreshMs), not only at refreshStale. */
  private readonly staleTimed: boolean;

  constructor(private readonly ctx: EngineContext, private readonly intervals: Intervals, options: EngineOptions, atomicWaiterOn: (page: number) => boolean) {
    this.nodeId = ctx.nodeId;
    this.nodeCount = ctx.nodeCount;
    this.pageCount = ctx.pageCount;
    this.memory = ctx.memory;
    this.stats = ctx.stats;
    this.onIntervalClosed = options.onIntervalClosed ?? null;
    this.atomicWaiterOn = atomicWaiterOn;
    this.pushScanned = Array.from({ length: this.nodeCount }, () => new Array<number>(this.nodeCount).fill(0));
    this.readAhead = new ReadAhead(this.pageCount, this.nodeCount, this.stats, options, {
      eligible: (home, next) => this.fetchEligible(home, next),
      fetchAhead: (home, pages) => this.fetchAhead(home, pages),
    });
    this.touchAhead = this.readAhead.tracking && this.onIntervalClosed === null && ctx.memory.setTouchAhead !== undefined && ctx.memory.drainTouched !== undefined;
    this.exclusive = new Uint8Array(this.pageCount);
    this.stateless = new StatelessNeeds(this.pageCount, this.nodeCount);
    this.zeros = zeroVector(this.nodeCount);
    this.migration = new HomeMigration(ctx, this, options.migrateHomes ?? true, options.lendConcurrentWrites ?? false);
    this.twinPageCountMax = options.twinPageCountMax ?? 0;
    this.ownWriteAhead = options.ownWriteAhead ?? true;
    assert(Number.isInteger(this.twinPageCountMax) && this.twinPageCountMax >= 0, 'twin page limit is a page count');
    // Race detection protects every page at each close and names its reads: diffs stay with their release there.
    this.deferPageCountMin = this.onIntervalClosed === null ? options.deferDiffPageCountMin ?? 0 : 0;
    assert(Number.isInteger(this.deferPageCountMin) && this.deferPageCountMin >= 0, 'the deferral threshold is a page count');
    this.stale = this.nodeCount > 1 && this.onIntervalClosed === null ? this.makeStaleRefresh(options.staleRefreshMs ?? 0) : null;
    this.staleTimed = (options.staleRefreshMs ?? 0) > 0;
  }

  start(): void {
    if (this.nodeCount === 1) {
      // A cluster of one: no other node can ever hold a copy, so every page
      // is exclusive from the start: read-write, no fault, and so no twin
      // (a page never protected never reaches the write fast path). One
      // range, no page list: this is the start-up of every one-node run.
      this.memory.protectRange(0, this.pageCount, protReadWrite);
      this.exclusive.fill(1);
      return;
    }
    // Every page starts valid and zero on every node, read-only with the fast
    // write path on, so a first store costs a local twin (none for a page of
    // our own) and no message. This covers the whole region (a 4 GiB region is
    // 2^20 pages) at the start of every node of every run of more than one, so
    // it goes to the memory as ranges, no page list: one protect, one fast
    // write range, and the own pages as one strided range (nothing is lent or
    // borrowed yet, so a page's home is its placement home).
    const own = this.ctx.placementPagesOf(this.nodeId);
    assert(own.count === 0 || this.migration.homeOf(own.first) === this.nodeId, 'own pages are homed here at start');
    if (own.count > 0) this.memory.setTwinlessRange(own.first, own.count, own.step, true);
    this.memory.protectRange(0, this.pageCount, protRead);
    this.memory.setFastWriteRange(0, this.pageCount, 1, true);
    if (this.twinPageCountMax > 0) this.memory.setTwinLimit(this.twinPageCountMax);
    // A thread filling memory its node homes (what it allocated) faults once per writeAheadPageCountMax + 1 pages,
    // not once a page. Not in race mode: there a page's writes are a thread's, seen by their faults.
    if (this.ownWriteAhead && this.onIntervalClosed === null) this.memory.setOwnWriteAhead?.(writeAheadPageCountMax);
  }

  homeOf(page: number): number { return this.migration.homeOf(page); }
  lentTo(page: number): number { return this.migration.lentTo(page); }
  lendees(): Iterable<number> { return this.migration.lendees; }
  afterBarrier(): void { this.migration.lendWritten(); }
  afterLineAcquire(linePage: (page: number) => boolean): void { this.migration.endLineWindow(linePage); }
  hasFetchers(page: number): boolean { return this.fetchers.has(page); }
  intervalHas(page: number): boolean { return this.intervalPages.has(page); }
  hasAtomicWaiter(page: number): boolean { return this.atomicWaiterOn(page); }

  appliedOwnBy(node: number): number { return this.intervals.appliedBy(node, this.nodeId); }

  tableSizes(): Record<string, number> {
    return {
      fetchers: this.fetchers.size, twinned: this.twinned.size, prefetches: this.prefetches.size,
      pages: this.pages.size, statelessNeeds: this.stateless.size, intervalPages: this.intervalPages.size,
    };
  }

  pageState(page: number): PageState {
    let state = this.pages.get(page);
    if (state === undefined) {
      state = newPageState(this.nodeCount, this.zeros);
      const need = this.stateless.take(page);
      if (need !== null) {
        // Made invalid by an acquire while it had no state (version zero).
        state.need = need;
        state.valid = false;
      }
      this.pages.set(page, state);
    }
    return state;
  }

  onMessage(from: number, message: ProtocolMessage): void {
    switch (message.type) {
      case 'pageRequest': return this.onPageRequest(from, message);
      case 'pageReply': return this.onPageReply(message);
      case 'diffs': return this.onDiffs(from, message);
      case 'homeLend':
        // A page lent here becomes our own (twinless): its deferred diff goes to the old home first, as an early flush in flight would.
        this.flushDeferredAll();
        return this.migration.onHomeLend(from, message);
      case 'staleQuery': return this.stale?.onQuery(from, message);
      case 'staleReply': return this.stale?.onReply(from, message);
      default:
        assert(false, `hlrc engine got a message it does not speak: ${message.type}`);
    }
  }

  // ---------------------------------------------------------------- faults

  onFault(threadRef: number, page: number, isWrite: boolean): void {
    assert(page >= 0 && page < this.pageCount, 'fault within the region');
    this.syncTouched();
    if (isWrite) this.stats.writeFaults++; else this.stats.readFaults++;
    this.activity++;
    const touched = this.pages.get(page);
    if (touched !== undefined && touched.valid && touched.prefetched === true) {
      // The first touch of a read-ahead page: it was worth fetching.
      this.readAhead.useful(page);
      if (isWrite) {
        // The store below makes it read-write: one protection call, not a
        // read-only one first (it stays at no access until then, so a
        // thread touching it meanwhile faults and waits here).
        touched.prefetched = false;
        this.readAhead.forget(page);
        this.exclusive[page] = 0;
      } else {
        this.protectValid(page);
      }
    }
    this.whenValid(page, () => {
      if (isWrite) {
        // The fast path did not take it (the page was invalid when stored to):
        // twin here, as the signal handler would have.
        // Another thread may have twinned it through the fast path since the
        // fault was recorded: learn that first, a page has one twin at most.
        // With the fast path off meanwhile, no thread can twin it between the
        // drain and makeTwin (found by the concurrent simulation, seed 17).
        // A deferred diff is made before the store: it holds the closed interval's writes only.
        if (this.deferred.has(page)) this.flushDeferred([page]);
        this.memory.setFastWrite([page], false);
        this.drainDirty();
        // A page of our own needs no twin (its home copy is the master); any
        // other one does, made room for if the twin limit is reached (the
        // fast path sends such faults here).
        // `twinned` may hold the page with no twin behind it: a store twinned
        // it through the fast path during a flush that then took that twin
        // (the dirty ring still names it). makeTwin keeps a twin the page has
        // and makes one otherwise, so the store below is always diffed (seed
        // 4420 at --early-flush 0.3: a store landed twinless, a lost write).
        if (this.homeOf(page) !== this.nodeId) {
          if (!this.twinned.has(page)) {
            this.makeRoomForTwin();
            this.twinned.add(page);
          }
          this.memory.makeTwin(page);
        }
        this.intervalPages.add(page);
        this.aheadOnly.delete(page);
        this.memory.protect([page], protReadWrite);
        this.memory.setFastWrite([page], true);
      } else if (this.onIntervalClosed !== null) {
        // Race detection protects valid pages at every interval's end so
        // that the next read faults and is recorded: let it read now (a
        // page written in the open interval stays writable, with a twin: an
        // early flush took the one it had when another thread of this node
        // acquired mid-interval, and its stores from here on must be diffed;
        // made writable twinless they were lost: a helper's race sweep, session 37).
        this.drainDirty();
        if (this.intervalPages.has(page)) {
          if (this.homeOf(page) !== this.nodeId) {
            if (!this.twinned.has(page)) {
              this.makeRoomForTwin();
              this.twinned.add(page);
            }
            this.memory.makeTwin(page);
          }
          this.memory.protect([page], protReadWrite);
        } else {
          this.memory.protect([page], protRead);
        }
      }
      this.ctx.host.resume(threadRef, { ok: true, value: null } satisfies FaultResult);
    });
  }

  /** Runs `then` once the local copy of the page is valid (fetching it if needed). */
  private whenValid(page: number, then: () => void): void {
    const state = this.pageState(page);
    if (state.valid) { then(); return; }
    assert(state.waiters.length < syncInFlightCountMax, 'page waiters within limit');
    if (state.waiters === noWaiters) state.waiters = [];
    state.waiters.push(then);
    if (this.homeOf(page) === this.nodeId) { this.checkHomePage(page); return; }
    if (!state.fetching) this.fetch(page);
  }

  /**
   * Sends a fetch for an invalid page, with the following pages that share its
   * home and are invalid here and not being fetched, as many as read-ahead
   * picks (a sequential scan then costs one round trip per window, not one
   * per page).
   */
  private fetch(page: number): void {
    const state = this.pageState(page);
    assert(!state.valid && !state.fetching, 'a fetch for an invalid page not being fetched');
    const home = this.homeOf(page);
    state.fetching = true;
    this.stats.pageFetches++;
    const extraPages = this.readAhead.pick(home, page, (next) => this.fetchEligible(home, next));
    const extraNeeds: number[][] = [];
    for (const next of extraPages) {
      const other = this.pageState(next);
      other.fetching = true;
      extraNeeds.push([...other.need]);
    }
    assert(!this.prefetches.has(page), 'one fetch per page in flight');
    if (extraPages.length > 0) this.prefetches.set(page, extraPages);
    this.ctx.send(home, { type: 'pageRequest', page, need: [...state.need], extraPages, extraNeeds });
  }

  /** Whether read-ahead may ask `home` for `page` with a fetch: invalid here, not being fetched, homed there. */
  private fetchEligible(home: number, page: number): boolean {
    if (this.homeOf(page) !== home) return false;
    const other = this.pages.get(page);
    // No state: invalid (not being fetched) only if an acquire left its need in `stateless`.
    return other === undefined ? this.stateless.has(page) : !other.valid && !other.fetching;
  }

  /**
   * A window streaming read-ahead issues ahead of a stream's threads
   * (readahead.ts): fetched as a fault's window is, with no thread waiting;
   * its first page is installed as read-ahead too (onPageReply asks `replied`).
   */
  private fetchAhead(home: number, pages: number[]): void {
    const [page, ...extraPages] = pages;
    const needs = pages.map((next) => {
      const other = this.pageState(next);
      assert(!other.valid && !other.fetching, 'a window issued ahead asks for invalid pages not being fetched');
      other.fetching = true;
      return [...other.need];
    });
    this.stats.pageFetches++;
    assert(!this.prefetches.has(page!), 'one fetch per page in flight');
    if (extraPages.length > 0) this.prefetches.set(page!, extraPages);
    this.ctx.send(home, { type: 'pageRequest', page: page!, need: needs[0]!, extraPages, extraNeeds: needs.slice(1), ahead: true });
  }

  /** At the home: a page becomes valid once every diff it needs has been applied. */
  checkHomePage(page: number): void {
    const state = this.pageState(page);
    if (!this.homeCopyCompleted(page, state)) return;
    this.protectValid(page);
    this.runWaiters(state);
  }

  /**
   * checkHomePage without the protection and the waiters: whether the home
   * copy just became valid (the caller protects it, with the other pages of
   * its batch in one call, and then runs its waiters).
   */
  private homeCopyCompleted(page: number, state: PageState): boolean {
    if (state.valid) return false;
    // A borrowed page: this node's own diffs to the old home come first.
    if (state.applied[this.nodeId]! < state.sentDiffs) return false;
    if (state.ownPending !== null) {
      this.memory.applyDiff(page, state.ownPending);
      state.ownPending = null;
    }
    if (!isCovered(state.version, state.need, this.nodeCount)) return false;
    state.valid = true;
    return true;
  }

  /**
   * LendHost, at the borrower (HomeMigration.onHomeLend): lent pages whose
   * copies are complete become valid and exclusive at once, so this node's
   * next writes take no fault (Jacobi: one per page of the band after each
   * lend). Other nodes may still hold copies (the lender's own, ones it
   * served), so the pages join the open interval as if written: its notice
   * reaches every node whose acquire could make a later write of ours
   * visible, and invalidates its copy, exactly as for a page of ours made
   * exclusive at closeInterval (docs/PROTOCOL.md, "Exclusive pages").
   */
  homePagesLent(pages: number[]): void {
    const completed: number[] = [];
    for (const page of pages) if (this.homeCopyCompleted(page, this.pageState(page))) completed.push(page);
    if (completed.length > 0) {
      this.protectValidMany(completed);
      this.drainDirty();
      this.memory.protect(completed, protReadWrite);
      for (const page of completed) {
        this.exclusive[page] = 1;
        this.intervalPages.add(page);
      }
      for (const page of completed) this.runWaiters(this.pageState(page));
    }
    for (const page of pages) this.serveFetchers(page);
  }

  /** Home copies completed together (homeCopyCompleted): made valid in one protection call per run, then their waiters run. */
  private homeCopiesValid(pages: number[]): void {
    if (pages.length === 0) return;
    this.protectValidMany(pages);
    for (const page of pages) this.runWaiters(this.pageState(page));
  }

  private runWaiters(state: PageState): void {
    const waiters = state.waiters;
    if (waiters.length === 0) return;
    state.waiters = noWaiters;
    for (const waiter of waiters) waiter();
  }

  // ------------------------------------------------------------- intervals

  /** Collects pages dirtied through the native fast path into the open interval. */
  drainDirty(): void {
    const dirty = this.memory.drainDirty();
    for (const entry of dirty) {
      // Tagged: an own page the fast path upgraded ahead of a write stream (PageMemory.setOwnWriteAhead), not yet
      // seen stored to: named in the notice, but not this node's write for home migration (closeInterval).
      const page = entry & ~(dirtyAheadTag | dirtyAheadZeroTag);
      if (page !== entry) {
        if (!this.intervalPages.has(page)) {
          this.aheadOnly.add(page);
          if ((entry & dirtyAheadZeroTag) !== 0) this.aheadZero.add(page);
        }
      } else {
        this.aheadOnly.delete(page);
        this.aheadZero.delete(page);
      }
      // A deferred page's fast path is off: its entry is a store that twinned
      // it while a close deferred it (the page had no twin then: a stale entry
      // of an earlier flush, see onFault), and its deferred diff holds that
      // store. Named here too it was deferred again at the next close (seed
      // 5007 at --early-flush 0.3 --lines always).
      if (this.deferred.has(page)) continue;
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
    if (this.twinPageCountMax === 0 || this.twinned.size + this.deferred.size < this.twinPageCountMax) return;
    const count = Math.max(1, Math.floor(this.twinPageCountMax / twinLimitFlushDivisor));
    // Deferred diffs hold twins too: they go first (they are due anyway).
    if (this.deferred.size > 0) {
      this.flushDeferredCount(count);
      return;
    }
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
  private readServed(page: number, bytes: Uint8Array, toNode: number): void {
    assert(this.homeOf(page) === this.nodeId, 'copies of a page leave from its home');
    if (this.exclusive[page] === 1) this.shareForCopies([page]);
    this.memory.readPage(page, bytes);
    if (toNode >= 0) this.migration.noteServed(page, toNode);
  }

  /** The writes of nodes other than `toNode` in `state`'s page (what a copy sent to `toNode` now brings it). */
  private othersSum(state: PageState, toNode: number): number {
    let sum = 0;
    for (let n = 0; n < this.nodeCount; n++) if (n !== toNode) sum += state.version[n]!;
    return sum;
  }

  /** A copy of the page leaves for `toNode`: noted where the page is a line's (PageState.servedSum). */
  private noteCopySent(state: PageState, toNode: number): void {
    if (state.servedSum !== undefined) state.servedSum[toNode] = this.othersSum(state, toNode);
  }

  /**
   * The exclusive pages among `pages` (all of our own, about to be copied
   * for another node) become shared in one protection call, before any of
   * them is read (see readServed). A reply or a push of many pages then
   * costs one mprotect per run of pages, not one per page: an mprotect that
   * takes rights away from a multi-threaded process costs tens of µs on a
   * virtual machine (its TLB shootdown), a 64-page read-ahead reply paid it
   * 64 times.
   */
  private shareForCopies(pages: readonly number[]): void {
    const leaving: number[] = [];
    for (const page of pages) {
      if (this.exclusive[page] !== 1) continue;
      this.exclusive[page] = 0;
      leaving.push(page);
    }
    if (leaving.length === 0) return;
    // Stores of the open interval to these pages went unseen: home migration counts them as possible (migration.ts).
    const openIndex = this.intervals.vc[this.nodeId]! + 1;
    for (const page of leaving) this.migration.noteExclusiveShared(page, openIndex);
    leaving.sort((a, b) => a - b);
    this.memory.protect(leaving, protRead);
    this.memory.setFastWrite(leaving, true);
    this.stats.exclusiveShared = (this.stats.exclusiveShared ?? 0) + leaving.length;
  }

  /**
   * Closes the open interval: diffs of dirty pages go to their homes, a write
   * notice is logged. The batch for `bundleTo` (the manager the release's sync
   * message goes to next) is held back to travel inside that message.
   */
  closeInterval(bundleTo = -1, pushTo = -1): void {
    this.activity++;
    this.drainDirty();
    // Race detection closes empty intervals too: a thread that only read
    // between two synchronizations must have an interval for its reads, and
    // whoever acquires from it must be seen to be ordered after them.
    if (this.intervalPages.size === 0 && this.onIntervalClosed === null) return;
    if (this.aheadZero.size > 0) this.dropUnchangedAhead();
    if (this.intervalPages.size === 0 && this.onIntervalClosed === null) return;
    const pages = [...this.intervalPages].sort((a, b) => a - b);
    const index = this.intervals.vc[this.nodeId]! + 1;
    // A large release defers its diffs (see `deferred`): fast path off before
    // read-only, so a store after the protect faults to the engine (which
    // makes this diff first) and never re-twins over the twin it needs.
    const defer = this.deferPageCountMin > 0 && this.twinned.size >= this.deferPageCountMin;
    const deferring = defer ? pages.filter((page) => this.twinned.has(page)) : [];
    if (deferring.length > 0) {
      this.memory.setFastWrite(deferring, false);
      this.memory.protect(deferring, protRead);
      for (const page of deferring) {
        // A deferred page is read-only with its fast path off until its diff is made: no store can twin it into a later interval first.
        assert(!this.deferred.has(page), 'a page has one deferred diff at most');
        this.deferred.set(page, index);
      }
      this.stats.diffsDeferred = (this.stats.diffsDeferred ?? 0) + deferring.length;
    }
    const diffs = new Map<number, Uint8Array>();
    for (const record of this.memory.flush(defer ? pages.filter((page) => !this.twinned.has(page)) : pages)) diffs.set(record.page, record.diff);
    const byHome = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (const page of pages) {
      const home = this.homeOf(page);
      const state = this.pageState(page);
      state.version[this.nodeId] = index;
      if (home === this.nodeId) {
        // The home's own writes are already in its master copy. A page only written ahead may hold no store of
        // ours: its master may have changed (a lend then carries its bytes), but it does not make us a writer of
        // the page that another node writes alone (the end of our write stream ran into its pages).
        this.migration.noteOwnWrite(page, index, !this.aheadOnly.delete(page));
        continue;
      }
      // Its diff, labelled with this interval, follows the sync message.
      if (defer && this.twinned.has(page)) continue;
      let batch = byHome.get(home);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byHome.set(home, batch); }
      batch.pages.push(page);
      // A page flushed early (before an invalidation) still sends an empty
      // diff so the home's applied vector reaches this interval. One shared
      // empty array for all of them: a release after a large early-flushed
      // write names every page (1 GiB: 262,144 of them), and an array and a
      // buffer each cost ~50 MiB at once.
      const diff = diffs.get(page) ?? emptyDiff;
      batch.diffs.push(diff);
      this.sentDiff(page, state, diff);
    }
    assert(this.ctx.bundle === null, 'a held-back diff batch was sent with its sync message');
    for (const [home, batch] of byHome) {
      this.stats.diffsSent += batch.pages.length;
      const bytes = batch.diffs.reduce((sum, diff) => sum + diff.length, 0);
      if (home === bundleTo && bytes <= diffsMessageBytesMax) {
        this.ctx.bundle = { toNode: home, batch: { interval: index, pages: batch.pages, diffs: batch.diffs } satisfies DiffBatch };
        continue;
      }
      this.ctx.send(home, { type: 'diffs', interval: index, pages: batch.pages, diffs: batch.diffs });
    }
    // Pages of our own named by this interval become exclusive (see
    // `exclusive`): read-write with no write detection until a copy leaves.
    // Those the barrier message that follows will push (`pushTo` is subscribed
    // to them) would leave at once: they stay shared, read-only (the fast path
    // made them read-write without a twin), so their next write is seen. One
    // protection call a round for Jacobi's boundary rows, not two (read-write
    // here, read-only again in the push's shareForCopies).
    const own = pages.filter((page) => this.homeOf(page) === this.nodeId && this.pageState(page).valid && this.exclusive[page] === 0);
    const leaving = pushTo >= 0 && pushTo !== this.nodeId ? own.filter((page) => this.pushExpected(page, pushTo)) : [];
    const leavingSet = new Set(leaving);
    const staying = leaving.length === 0 ? own : own.filter((page) => !leavingSet.has(page));
    if (staying.length > 0) {
      this.memory.protect(staying, protReadWrite);
      for (const page of staying) this.exclusive[page] = 1;
    }
    if (leaving.length > 0) {
      this.memory.protect(leaving, protRead);
      this.memory.setFastWrite(leaving, true);
      // As when an exclusive page is shared (shareForCopies): a store since the
      // drain above landed unseen, in the interval now open; home migration
      // counts it as possible there.
      for (const page of leaving) this.migration.noteExclusiveShared(page, index + 1);
    }
    this.intervalPages.clear();
    this.aheadOnly.clear();
    this.aheadZero.clear();
    this.twinned.clear();
    this.intervals.closeOwn(index, pages);
    this.stats.intervalsClosed++;
    this.onIntervalClosed?.(index, this.intervals.vc);
  }

  /**
   * At a close: the own pages the fast path upgraded ahead of a write stream while they held only zeros, with no
   * store of ours seen on them, that still hold only zeros were not changed in the interval: they go back to what
   * they were before the upgrade (read-only, fast write: the next store is seen) and out of the interval, so its
   * notice does not make other nodes refetch them, or fetch before they write them (a row-counter render's rows
   * that the other node's stream ran into). Protected first, then read: a store that lands before the protect is
   * in the bytes read, one after it faults and joins the next interval. Not in race mode (every page of an
   * interval is its own there).
   */
  private dropUnchangedAhead(): void {
    const candidates: number[] = [];
    if (this.memory.isZero !== undefined && this.onIntervalClosed === null) {
      for (const page of this.aheadZero) {
        if (!this.aheadOnly.has(page) || !this.intervalPages.has(page) || this.deferred.has(page)) continue;
        if (this.homeOf(page) !== this.nodeId || !this.pageState(page).valid || this.exclusive[page] !== 0) continue;
        candidates.push(page);
      }
    }
    this.aheadZero.clear();
    if (candidates.length === 0) return;
    this.memory.protect(candidates, protRead);
    this.memory.setFastWrite(candidates, true);
    let dropped = 0;
    for (const page of candidates) {
      if (!this.memory.isZero!(page)) continue;
      this.intervalPages.delete(page);
      this.aheadOnly.delete(page);
      dropped += 1;
    }
    this.stats.aheadUnchanged = (this.stats.aheadUnchanged ?? 0) + dropped;
  }

  /** At the home (or a lender, which forwards): a writer's diffs for its interval. */
  private onDiffs(from: number, message: Extract<ProtocolMessage, { type: 'diffs' }>): void {
    assert(message.pages.length === message.diffs.length, 'one diff per page');
    const writer = message.origin ?? from;
    // Diffs for pages lent away go on to the borrower, in arrival order: a
    // writer's diffs reach it through this node, after the lend (FIFO links).
    const forward = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    // Home copies these diffs complete become valid in one protection call
    // per run after the loop (a large release's diffs completed them one
    // mprotect each), and only then are their waiters and fetchers served.
    const completed: number[] = [];
    const applied: number[] = [];
    for (let k = 0; k < message.pages.length; k++) {
      const page = message.pages[k]!;
      const home = this.homeOf(page);
      if (home !== this.nodeId) {
        assert(this.migration.lentTo(page) === home, 'diffs go to the home, or to the static home of a lent page');
        let batch = forward.get(home);
        if (batch === undefined) { batch = { pages: [], diffs: [] }; forward.set(home, batch); }
        batch.pages.push(page);
        batch.diffs.push(message.diffs[k]!);
        continue;
      }
      const state = this.pageState(page);
      // A borrower's own diffs made before the lend come back forwarded after
      // its later intervals were closed here: only they may go back.
      assert(state.version[writer]! <= message.interval || (writer === this.nodeId && this.migration.isBorrowed(page)), 'diff versions never go back per writer (early flushes repeat the last closed interval)');
      if (message.diffs[k]!.length > 0) {
        this.memory.applyDiff(page, message.diffs[k]!);
        this.stats.diffsApplied++;
        this.migration.noteWrite(page, writer);
      }
      state.version[writer] = Math.max(state.version[writer]!, message.interval);
      if (state.applied === this.zeros) state.applied = new Array<number>(this.nodeCount).fill(0);
      state.applied[writer]!++;
      if (this.homeCopyCompleted(page, state)) completed.push(page);
      applied.push(page);
    }
    this.homeCopiesValid(completed);
    for (const page of applied) this.serveFetchers(page);
    for (const [home, batch] of forward) {
      this.stats.lendForwards = (this.stats.lendForwards ?? 0) + 1;
      this.ctx.send(home, { type: 'diffs', interval: message.interval, pages: batch.pages, diffs: batch.diffs, origin: writer });
    }
  }

  /**
   * Applies write notices up to `target`: pages named by newer intervals are
   * invalidated, all of them in one batch (a release of a large written set
   * names hundreds of thousands of pages; one native call per page and step
   * kept a manager busy for seconds).
   */
  acquire(target: number[], pushed?: readonly number[]): void {
    assert(this.keptReadable.size === 0, 'pages kept readable for a push were installed or protected by its installPushed');
    this.activity++;
    this.drainDirty();
    // Hot at a large notice (a remote worker's start acquires its parent's
    // fill of every page it wrote): a byte per page marks the pages named, no
    // Set, and the stale ones go to the memory as one sorted Uint32Array. A
    // page with no state gets none: its need goes to `stateless` (it was
    // valid at version zero, so it is stale now; mark 2), or is raised there
    // (already invalid; mark 1).
    const named: number[] = [];
    const mark = this.namedMark ??= new Uint8Array(this.pageCount);
    this.intervals.advance(target, (record) => {
      const pages = record.pages;
      const writer = record.node;
      const index = record.index;
      for (let k = 0; k < pages.length; k++) {
        const page = pages[k]!;
        const state = this.pages.get(page);
        let fresh = false;
        if (state === undefined) fresh = this.stateless.raise(page, writer, index);
        else if (state.need[writer]! < index) {
          if (state.need === this.zeros) state.need = new Array<number>(this.nodeCount).fill(0);
          state.need[writer] = index;
        }
        if (mark[page] === 0) { mark[page] = fresh ? 2 : 1; named.push(page); }
      }
    });
    const stale = new Uint32Array(named.length);
    let staleCount = 0;
    for (let k = 0; k < named.length; k++) {
      const page = named[k]!;
      const state = this.pages.get(page);
      if (state === undefined ? mark[page] === 2 : state.valid && !isCovered(state.version, state.need, this.nodeCount)) stale[staleCount++] = page;
      mark[page] = 0;
    }
    this.invalidate(stale.subarray(0, staleCount).sort(), pushed);
  }

  /**
   * Valid copies that a write notice made stale (sorted): dirty ones flush
   * home first, then all go to no access — except clean copies of other
   * homes' pages in `pushed` (a push that arrived with this acquire will
   * replace them): those stay read-only, with their fast path off, in
   * `keptReadable`, for installPushed to overwrite in place (session 25). A
   * barrier's boundary page so costs no protection call at all where it cost
   * two (no access here, read-only at the install), each a TLB shootdown of
   * tens of µs on a virtual machine. A thread of this node that reads such a
   * page meanwhile is not ordered after the writes that made it stale (the
   * acquire is what orders this node after them, and no thread here waits on
   * it yet), so the old bytes are what it may read; a store faults to the
   * engine, which serves it after the install.
   */
  private invalidate(pages: Uint32Array, pushed?: readonly number[]): void {
    // A copy touched in the handler was used, not wasted (no windows issued from within an acquire).
    this.syncTouched(false);
    if (pages.length === 0) return;
    const dirty: number[] = [];
    const deferred: number[] = [];
    for (let k = 0; k < pages.length; k++) {
      if (this.intervalPages.has(pages[k]!)) dirty.push(pages[k]!);
      if (this.deferred.has(pages[k]!)) deferred.push(pages[k]!);
    }
    // Race detection sees reads by their faults: every stale page goes to no access there.
    let keep: Set<number> | null = null;
    if (pushed !== undefined && pushed.length > 0 && this.onIntervalClosed === null) {
      const candidates = new Set(pushed);
      for (let k = 0; k < pages.length; k++) {
        const page = pages[k]!;
        if (!candidates.has(page) || this.homeOf(page) === this.nodeId || this.intervalPages.has(page) || this.deferred.has(page)) continue;
        // A read-ahead copy not touched yet is valid at no access (see onFault): it has nothing readable to keep.
        const state = this.pages.get(page);
        if (state === undefined || !state.valid || state.prefetched === true) continue;
        keep ??= new Set<number>();
        keep.add(page);
      }
    }
    // A deferred diff goes before the page's early flush (per page, diffs reach the home in interval order).
    this.flushDeferred(deferred);
    this.flushEarlyMany(dirty);
    for (let k = 0; k < pages.length; k++) {
      const page = pages[k]!;
      // No state (`stateless` holds it): invalid already, never read ahead.
      const state = this.pages.get(page);
      if (state !== undefined) {
        if (state.prefetched === true) {
          state.prefetched = false;
          this.readAhead.wasted(page);
        }
        state.valid = false;
      }
      this.exclusive[page] = 0;
    }
    this.stats.invalidations += pages.length;
    // App threads of this node run concurrently with the engine. With the
    // fast path off, a store to the (read-only) page faults into the engine
    // instead of twinning it, so no new twin can appear from here on.
    this.memory.setFastWrite(pages, false);
    if (keep !== null) {
      const gone = new Uint32Array(pages.length);
      let goneCount = 0;
      for (let k = 0; k < pages.length; k++) if (!keep.has(pages[k]!)) gone[goneCount++] = pages[k]!;
      if (goneCount > 0) this.memory.protect(gone.subarray(0, goneCount), protNone);
    } else {
      this.memory.protect(pages, protNone);
    }
    // One may have stored to a page (twinning it through the fast path)
    // between the flush and the protect. After protect returns no thread can
    // store, so learn such twins now and send their diff home before the copy
    // is replaced. That flush leaves the page read-only: protect it again
    // (found by the concurrent simulation, seed 1: a stale copy stayed
    // readable and writable after a late flush, and a counter lost updates).
    // A kept page's fast path went off under its page lock, so a twin of it
    // made before that is on the dirty ring now, and none can be made after.
    this.drainDirty();
    const late: number[] = [];
    for (let k = 0; k < pages.length; k++) if (this.twinned.has(pages[k]!)) late.push(pages[k]!);
    if (late.length > 0) {
      this.flushEarlyMany(late);
      this.memory.protect(late, protNone);
      if (keep !== null) for (const page of late) keep.delete(page);
    }
    if (keep !== null) for (const page of keep) this.keptReadable.add(page);
    const completed: number[] = [];
    for (let k = 0; k < pages.length; k++) {
      const page = pages[k]!;
      // A page with no state has version zero under a need: never complete.
      const state = this.pages.get(page);
      if (state !== undefined && this.homeOf(page) === this.nodeId && this.homeCopyCompleted(page, state)) completed.push(page);
    }
    this.homeCopiesValid(completed);
  }

  /** A copy that became valid: read-only, with the native write fast path on again. */
  private protectValid(page: number): void {
    this.protectValidMany([page]);
  }

  /**
   * protectValid of several pages, in one protection call per run of pages;
   * `inPlace`: they are read-only in the app view already (installed over a
   * copy the acquire kept readable), so no protection call at all.
   */
  private protectValidMany(pages: number[], inPlace = false): void {
    if (pages.length === 0) return;
    this.syncTouched(false);
    for (const page of pages) {
      const state = this.pages.get(page);
      if (state !== undefined && state.prefetched === true) {
        state.prefetched = false;
        this.readAhead.forget(page);
      }
      this.exclusive[page] = 0;
    }
    if (pages.length > 1) pages.sort((a, b) => a - b);
    if (!inPlace) this.memory.protect(pages, protRead);
    this.memory.setFastWrite(pages, true);
  }

  /**
   * Locally dirty pages whose diffs go home now (about to be invalidated, or
   * the oldest at the twin limit), one message per home. Labelled with the
   * last closed interval: they complete nothing new, the closing of the open
   * interval sends the rest (maybe an empty diff).
   */
  private flushEarlyMany(pages: number[]): void {
    if (pages.length === 0) return;
    for (const page of pages) this.twinned.delete(page);
    const byHome = new Map<number, { pages: number[]; diffs: Uint8Array[] }>();
    for (const record of this.memory.flush(pages)) {
      const home = this.homeOf(record.page);
      if (home === this.nodeId || record.diff.length === 0) continue;
      let batch = byHome.get(home);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byHome.set(home, batch); }
      this.sentDiff(record.page, this.pageState(record.page), record.diff);
      batch.pages.push(record.page);
      batch.diffs.push(record.diff);
    }
    for (const [home, batch] of byHome) {
      this.stats.diffsSent += batch.pages.length;
      this.ctx.send(home, { type: 'diffs', interval: this.intervals.vc[this.nodeId]!, pages: batch.pages, diffs: batch.diffs });
    }
  }

  /**
   * Counts a diff entry this node sends for `page` (of another home) in its
   * sentDiffs, and keeps it (keptDiffs). An empty diff starts no record.
   */
  private sentDiff(page: number, state: PageState, diff: Uint8Array): void {
    state.sentDiffs++;
    let kept = this.keptDiffs.get(page);
    if (kept === undefined) {
      if (diff.length === 0) return;
      if (this.keptDiffs.size >= ownDiffPageCountMax) this.keptDiffs.delete(this.keptDiffs.keys().next().value!);
      kept = { first: state.sentDiffs, diffs: [] };
      this.keptDiffs.set(page, kept);
    }
    assert(kept.first + kept.diffs.length === state.sentDiffs, 'a page\'s kept diffs are its last ones, in order');
    kept.diffs.push(diff);
    if (kept.diffs.length > keptDiffCountMax) {
      kept.diffs.shift();
      kept.first++;
    }
  }

  /**
   * This node's diffs for `page` after its entry `applied` (all of them up to
   * sentDiffs, in order), or null where one of them is not kept.
   */
  private diffsAfter(page: number, state: PageState, applied: number): Uint8Array[] | null {
    if (applied >= state.sentDiffs) return [];
    const kept = this.keptDiffs.get(page);
    if (kept === undefined || applied + 1 < kept.first) return null;
    return kept.diffs.slice(applied + 1 - kept.first);
  }

  dirtyPageCount(): number {
    this.drainDirty();
    return this.twinned.size;
  }

  deferredPageCount(): number { return this.deferred.size; }

  flushDeferredCount(pageCountMax: number): number {
    assert(Number.isInteger(pageCountMax) && pageCountMax >= 1, 'a deferred flush takes at least one page');
    const pages: number[] = [];
    // Oldest first (Map order is insertion order: intervals close in order).
    for (const page of this.deferred.keys()) {
      if (pages.length === pageCountMax) break;
      pages.push(page);
    }
    this.flushDeferred(pages);
    return pages.length;
  }

  private flushDeferredAll(): void {
    if (this.deferred.size > 0) this.flushDeferred([...this.deferred.keys()]);
  }

  /**
   * Makes and sends the deferred diffs of `pages` (each in `deferred`),
   * labelled with the interval that named each page: one message per home and
   * interval. The pages stay read-only and valid, twinless now, with the fast
   * path on again (a store twins them for the open interval). A diff found
   * empty still goes: it raises the home's version to its interval.
   */
  private flushDeferred(pages: number[]): void {
    if (pages.length === 0) return;
    pages.sort((a, b) => a - b);
    const diffs = new Map<number, Uint8Array>();
    for (const record of this.memory.flush(pages)) diffs.set(record.page, record.diff);
    const batches = new Map<number, Map<number, { pages: number[]; diffs: Uint8Array[] }>>();
    for (const page of pages) {
      const interval = this.deferred.get(page);
      assert(interval !== undefined, 'only deferred pages have deferred diffs');
      this.deferred.delete(page);
      const state = this.pageState(page);
      const home = this.homeOf(page);
      assert(home !== this.nodeId, 'a deferred page is another node\'s (a lend here flushes them first)');
      let byInterval = batches.get(home);
      if (byInterval === undefined) { byInterval = new Map(); batches.set(home, byInterval); }
      let batch = byInterval.get(interval);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byInterval.set(interval, batch); }
      batch.pages.push(page);
      // No twin: a stale dirty-ring entry (a store twinned the page during an
      // earlier flush, which took it). Its writes went with that flush: an
      // empty diff, which still raises the home's version to this interval.
      const diff = diffs.get(page) ?? emptyDiff;
      batch.diffs.push(diff);
      this.sentDiff(page, state, diff);
    }
    this.memory.setFastWrite(pages, true);
    for (const [home, byInterval] of batches) {
      for (const [interval, batch] of [...byInterval].sort((a, b) => a[0] - b[0])) {
        this.stats.diffsSent += batch.pages.length;
        this.ctx.send(home, { type: 'diffs', interval, pages: batch.pages, diffs: batch.diffs });
      }
    }
  }

  flushDirty(pageCountMax: number): number {
    assert(Number.isInteger(pageCountMax) && pageCountMax >= 1, 'an early flush takes at least one page');
    assert(this.ctx.bundle === null, 'no held-back diffs between events');
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
      const home = this.homeOf(page);
      const diff = diffs.get(page);
      if (home === this.nodeId || diff === undefined || diff.length === 0) continue;
      let batch = byHome.get(home);
      if (batch === undefined) { batch = { pages: [], diffs: [] }; byHome.set(home, batch); }
      this.sentDiff(page, this.pageState(page), diff);
      batch.pages.push(page);
      batch.diffs.push(diff);
    }
    // Labelled with the last closed interval, as flushEarlyMany's: the release sends the rest.
    for (const [home, batch] of byHome) {
      this.stats.diffsSent += batch.pages.length;
      this.ctx.send(home, { type: 'diffs', interval: this.intervals.vc[this.nodeId]!, pages: batch.pages, diffs: batch.diffs });
    }
    return pages.length;
  }

  // ------------------------------------------------------------ fetches

  private onPageRequest(from: number, message: Extract<ProtocolMessage, { type: 'pageRequest' }>): void {
    const { page } = message;
    const requester = message.origin ?? from;
    assert(message.extraPages.length === message.extraNeeds.length && message.extraPages.length < prefetchPageCountMax, 'extra pages within limit, one need each');
    const home = this.homeOf(page);
    if (home !== this.nodeId) {
      assert(this.migration.lentTo(page) === home, 'page requests go to the home, or to the static home of a lent page');
      if (home !== requester) {
        // Forwarded after every diff of the requester that came here before it (FIFO).
        this.stats.lendForwards = (this.stats.lendForwards ?? 0) + 1;
        this.ctx.send(home, { ...message, origin: requester });
        return;
      }
      // The borrower asked before the lend reached it: it is the home now.
      // Its extra pages still homed here are served as any prefetch.
      const [extras] = this.servedExtras(requester, message.extraPages, message.extraNeeds);
      this.ctx.send(requester, { type: 'pageReply', page, version: [], bytes: new Uint8Array(0), ...extras });
      return;
    }
    let list = this.fetchers.get(page);
    if (list === undefined) { list = []; this.fetchers.set(page, list); }
    assert(list.length < syncQueueCountMax, 'fetchers within limit');
    list.push({ node: requester, need: message.need, extraPages: message.extraPages, extraNeeds: message.extraNeeds, ahead: message.ahead === true });
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

  /**
   * Extra pages homed here whose copy covers their need (a prefetch never
   * waits), copied after one protection call for all of them (and for
   * `alsoShared`, the faulting page of the same reply, if given), and the
   * room for `alsoShared`'s copy (empty without it) in their buffer.
   */
  private servedExtras(requester: number, pages: number[], needs: number[][], alsoShared = -1): [ServedExtras, Uint8Array] {
    const extraPages: number[] = [];
    const extraVersions: number[][] = [];
    const extraBytes: Uint8Array[] = [];
    pages.forEach((extra, k) => {
      // A page lent away since the requester asked is left out.
      if (this.homeOf(extra) !== this.nodeId) return;
      const other = this.pageState(extra);
      if (!isCovered(other.version, needs[k]!, this.nodeCount) || !this.masterReady(other)) return;
      extraPages.push(extra);
      extraVersions.push([...other.version]);
    });
    this.shareForCopies(alsoShared >= 0 ? [alsoShared, ...extraPages] : extraPages);
    // All copies of one reply in one buffer (the faulting page first, if any): it goes to the socket as it is (see toWire).
    const lead = alsoShared >= 0 ? 1 : 0;
    const copyBytes = (lead + extraPages.length) * pageBytes;
    // Every byte is written below (readServed, and the caller's for the faulting page), so a reused buffer will do.
    const copies = (copyBytes > 0 ? this.memory.copyBuffer?.(copyBytes) : undefined) ?? new Uint8Array(copyBytes);
    extraPages.forEach((extra, k) => {
      const copy = copies.subarray((lead + k) * pageBytes, (lead + k + 1) * pageBytes);
      this.readServed(extra, copy, requester);
      this.noteCopySent(this.pageState(extra), requester);
      extraBytes.push(copy);
    });
    return [{ extraPages, extraVersions, extraBytes }, copies.subarray(0, lead * pageBytes)];
  }

  serveFetchers(page: number): void {
    const list = this.fetchers.get(page);
    if (list === undefined) return;
    const state = this.pageState(page);
    const rest = list.filter((f) => {
      // The faulting page waits for its diffs, exactly as a single fetch.
      if (!isCovered(state.version, f.need, this.nodeCount) || !this.masterReady(state)) return true;
      // Extra pages go along only if this copy already covers their need: a
      // prefetch never delays the faulting page. The requester fetches a left-out page when it faults on it.
      // The faulting page is shared (if exclusive) in the extras' one protection call.
      const [extras, bytes] = this.servedExtras(f.node, f.extraPages, f.extraNeeds, page);
      this.readServed(page, bytes, f.node);
      this.noteCopySent(state, f.node);
      // Barrier pushes follow pages a thread faulted on, not a streamed window's first page.
      if (!f.ahead) this.subscribe(page, f.node);
      this.ctx.send(f.node, { type: 'pageReply', page, version: [...state.version], bytes, ...extras });
      return false;
    });
    if (rest.length === 0) this.fetchers.delete(page); else this.fetchers.set(page, rest);
  }

  /**
   * Tracked read-ahead copies whose first touch the signal handler served (PageMemory.setTouchAhead): used, as
   * onFault counts a touch, and already read-only with the fast write path on (as protectValid leaves them). A
   * page invalidated or made valid otherwise since its touch is not counted. Called where the engine reads a
   * page's `prefetched` mark (a copy marked again is always synced first: onPageReply) and when the host says
   * the handler queued touches (onTouched). `stream`: let the read-ahead issue the windows the touches call for
   * now (at the top of an event); else at its next touch.
   */
  syncTouched(stream = true): void {
    if (!this.touchAhead) return;
    const pages = this.memory.drainTouched!();
    for (let k = 0; k < pages.length; k++) {
      const page = pages[k]!;
      const state = this.pages.get(page);
      if (state === undefined || !state.valid || state.prefetched !== true) continue;
      state.prefetched = false;
      this.readAhead.useful(page, stream);
      this.readAhead.forget(page);
      this.exclusive[page] = 0;
    }
  }

  private onPageReply(message: Extract<ProtocolMessage, { type: 'pageReply' }>): void {
    // No touch queued before this reply may be taken for one of the copies it installs.
    this.syncTouched();
    const asked = this.prefetches.get(message.page) ?? [];
    this.prefetches.delete(message.page);
    // A window issued ahead: its first page is read-ahead as the others are.
    const ahead = this.readAhead.replied(message.page);
    const served = new Map<number, number>();
    message.extraPages.forEach((extra, k) => served.set(extra, k));
    assert(message.extraPages.every((extra) => asked.includes(extra)), 'a reply carries only extra pages asked for');
    // Copies made valid here: read-only in one protection call at the end, then their waiters run.
    const validated: number[] = [];
    // Copies to install, written together before that call (nothing reads them before it: see installCopies).
    const installs: Install[] = [];
    if (message.bytes.length === 0) {
      // Lent to this node while the request was on its way (see onPageRequest).
      assert(this.migration.isBorrowed(message.page), 'a page reply without bytes answers the borrower of a lent page');
      if (ahead) this.readAhead.forget(message.page);
    } else {
      this.installFetched(message.page, message.version, message.bytes, !ahead, validated, installs);
    }
    for (const extra of asked) {
      const k = served.get(extra);
      // Lent to this node meanwhile: the lend ended the fetch.
      if (this.migration.isBorrowed(extra)) { assert(k === undefined, 'a lent page is not served as an extra to its borrower'); continue; }
      if (k === undefined) {
        // Left out by the home: fetch it only if a thread waits for it.
        const state = this.pageState(extra);
        assert(state.fetching && !state.valid, 'a prefetched page was being fetched');
        state.fetching = false;
        this.readAhead.forget(extra);
        if (state.waiters.length > 0) this.fetch(extra);
        continue;
      }
      this.installFetched(extra, message.extraVersions[k]!, message.extraBytes[k]!, false, validated, installs);
    }
    this.installCopies(installs);
    if (this.touchAhead) this.markTouchAhead(installs);
    this.protectValidMany(validated);
    for (const page of validated) this.runWaiters(this.pageState(page));
  }

  /**
   * The tracked read-ahead copies among a reply's installs, once installed: their first touch is the handler's.
   * Only a touch that may issue windows at once (the first page of its window) wakes the manager; the others are
   * drained at its next event (a wake-up a page cost CPU the other threads of a 2-vCPU machine needed).
   */
  private markTouchAhead(installs: readonly Install[]): void {
    let quiet: number[] | null = null;
    let waking: number[] | null = null;
    for (let k = 0; k < installs.length; k++) {
      const page = installs[k]!.page;
      if (this.pages.get(page)?.prefetched !== true) continue;
      if (this.readAhead.triggers(page)) (waking ??= []).push(page);
      else (quiet ??= []).push(page);
    }
    if (quiet !== null) this.memory.setTouchAhead!(quiet, false);
    if (waking !== null) this.memory.setTouchAhead!(waking, true);
  }

  /**
   * A fetched copy: installed if it covers the need, else fetched again (if
   * wanted). A copy to be made read-only now (not kept back as read-ahead)
   * goes on `validated`, for the caller to protect and run its waiters.
   */
  private installFetched(page: number, version: number[], bytes: Uint8Array, wanted: boolean, validated: number[], installs: Install[]): void {
    const state = this.pageState(page);
    assert(state.fetching && !state.valid, 'a page reply answers a fetch');
    assert(bytes.length === pageBytes, 'a page reply carries a whole page');
    state.fetching = false;
    for (let n = 0; n < this.nodeCount; n++) state.version[n] = Math.max(state.version[n]!, version[n] ?? 0);
    if (!isCovered(state.version, state.need, this.nodeCount)) {
      // An acquire raised the need while the fetch was in flight: fetch again
      // (a prefetched page only if a thread waits for it).
      if (!wanted) this.readAhead.forget(page);
      if (wanted || state.waiters.length > 0) this.fetch(page);
      return;
    }
    installs.push({ page, bytes });
    state.valid = true;
    if (!wanted && this.readAhead.arrived(page, state.waiters.length > 0)) {
      // Read-ahead: stays at no access (as it was while invalid, fast write
      // path off) until a thread touches it, so its use can be counted.
      state.prefetched = true;
      return;
    }
    validated.push(page);
  }

  /**
   * A reply's copies, installed after its pages' states are updated and before
   * any of them is made accessible (protectValidMany; a read-ahead copy stays
   * at no access until a thread touches it, which the engine handles after
   * this reply): no app thread reads them in between. Pages in a row whose
   * copies lie one after another in one buffer (a window's copies, as the
   * envelope leaves them) go in one writePages call: the native install makes
   * a run of first installs one pwrite (session 27).
   */
  private installCopies(installs: readonly Install[]): void {
    const batched = this.memory.writePages !== undefined;
    for (let k = 0; k < installs.length;) {
      const { page, bytes } = installs[k]!;
      let run = 1;
      if (batched) {
        while (k + run < installs.length) {
          const next = installs[k + run]!;
          if (next.page !== page + run || next.bytes.buffer !== bytes.buffer || next.bytes.byteOffset !== bytes.byteOffset + run * pageBytes) break;
          run++;
        }
      }
      if (run === 1) this.memory.writePage(page, bytes);
      else this.memory.writePages!(page, new Uint8Array(bytes.buffer, bytes.byteOffset, run * pageBytes));
      k += run;
    }
  }

  // ------------------------------------------------------- lock grants

  /**
   * A grant's push: pages of this manager's own, with writes the acquirer
   * has not applied, that the acquirer is predicted to write next
   * (push-predict.ts: where its own critical sections under this lock wrote,
   * relative to the last one), most likely first, at most prediction.pushMax.
   * The acquirer would otherwise fault and fetch each right away. With no
   * prediction yet (the acquirer's first two releases under the lock):
   * migratory data, the pages the lock's last holders wrote in their critical
   * sections (their intervals closed at the releases), newest first, where
   * this manager already holds that interval's diffs (a diff bundled with the
   * lockRelease has been applied). At most grantPagePushCountMax either way.
   * (Only the last section's pages, with no prediction: 24 more messages in
   * test/sim/matmul.test.ts's block run, 1,464 -> 1,484; these: 1,442.)
   */
  pushFor(releases: LockReleases, requesterVc: number[], requester: number, prediction: PushPrediction | null): GrantPush {
    const push: PushedCopies = { pushPages: [], pushVersions: [], pushBytes: [], pushApplied: [] };
    const pushPages = push.pushPages;
    if (prediction !== null) {
      const pushMax = Math.min(prediction.pushMax, grantPagePushCountMax);
      for (const page of prediction.pages) {
        if (pushPages.length >= pushMax) break;
        if (page >= this.pageCount || this.homeOf(page) !== this.nodeId || pushPages.includes(page)) continue;
        const state = this.pages.get(page);
        if (state === undefined || !state.valid || !this.masterReady(state)) continue;
        let stale = false;
        for (let n = 0; n < this.nodeCount && !stale; n++) if (n !== requester && state.version[n]! > (requesterVc[n] ?? 0)) stale = true;
        if (stale) this.pushCopy(push, page, state, requester);
      }
      return this.readGrantPush(push);
    }
    for (let r = releases.length - 1; r >= 0 && pushPages.length < grantPagePushCountMax; r--) {
      const { node: writer, index } = releases[r]!;
      if (writer === this.nodeId) {
        // This node's own sections are not pushed here (the requester fetches what it reads, if it has not applied them yet), but their pages are the lock's data all the same.
        const record = this.intervals.record(writer, index);
        for (const page of record?.pages ?? []) if (this.homeOf(page) === this.nodeId) this.migration.notePushedWithGrant(page);
      }
      if (writer === this.nodeId || index <= (requesterVc[writer] ?? 0)) continue;
      const record = this.intervals.record(writer, index);
      if (record === null) continue;
      for (const page of record.pages) {
        if (pushPages.length >= grantPagePushCountMax) break;
        if (this.homeOf(page) !== this.nodeId || pushPages.includes(page)) continue;
        const state = this.pageState(page);
        if (state.version[writer]! < index || !this.masterReady(state)) continue;
        this.pushCopy(push, page, state, requester);
      }
    }
    return this.readGrantPush(push);
  }

  /** A grant's copies: read as any push; their pages stay at this home (migration.notePushedWithGrant). */
  private readGrantPush(push: PushedCopies): GrantPush {
    for (const page of push.pushPages) this.migration.notePushedWithGrant(page);
    return this.readPushed(push);
  }

  /**
   * Per page of this node's own: the nodes that fetched it (the faulting
   * page of a fetch), each with its subscription (see Subscription): a node
   * that stops reading the page stops receiving it.
   */
  private readonly subscribers = new Map<number, Map<number, Subscription>>();
  /**
   * pushWritesOf's scan marks, per reader node and writer: the writer's
   * intervals up to the mark were scanned for that reader to the end, with
   * no page left for a later call (a diff not yet here, a copy not ready, the
   * push full), so a later call scans only the intervals past it. Without
   * the marks every grant rescanned the writer's intervals back to what the
   * reader was known to have applied, which lags on a node that acquires
   * through a line's directory: users2/spawn-tree-lock on 3 nodes, 7,200
   * lock hand-offs, scanned 5.1 million intervals at the directory (~200 a
   * call) to push what the first scan of each had pushed already.
   */
  private readonly pushScanned: number[][];

  private subscribe(page: number, node: number): void {
    let nodes = this.subscribers.get(page);
    if (nodes === undefined) { nodes = new Map(); this.subscribers.set(page, nodes); }
    const before = nodes.get(node);
    // Fetched again while its lapse is pending: it reads the page steadily (Jacobi's boundary row), so it is kept twice as long.
    const pushes = before === undefined ? barrierPushRenewCount
      : before.left === 0 ? Math.min(2 * before.pushes, barrierPushRenewCountMax) : before.pushes;
    nodes.set(node, { left: pushes, pushes, lapsedAt: -1, pushedAt: this.pageState(page).version[this.nodeId]! });
  }

  /**
   * Barrier pushes (issue 13.2): pages of this node's own that `toNode`
   * fetched before and that this node wrote in intervals `toNode` may not
   * have applied travel with the barrier message to it (barrierArrive to the
   * manager, barrierDepart from it), so a boundary read every iteration
   * (Jacobi) costs no fetch after the barrier. The receiver installs a copy
   * only where it covers the need its acquire set (installPushed, as for
   * lockGrant pushes). At most `pageCountMax` pages (grantPagePushCountMax).
   * `anyWriter` (with a line's release, session 20): pages of this node's own
   * written by any node but `toNode` (their diffs applied here), not only by
   * this node: data a lock's critical sections on three nodes pass around
   * (users2/ring-buffer's slots, spawn-tree-lock's log) reached a node only
   * by a fetch inside its critical section when a third node wrote it last.
   */
  pushForBarrier(toNode: number, pageCountMax = grantPagePushCountMax, anyWriter = false): GrantPush {
    assert(pageCountMax >= 0 && pageCountMax <= grantPagePushCountMax, 'barrier pushes within their limit');
    if (toNode === this.nodeId || this.subscribers.size === 0 || pageCountMax === 0) return {};
    const self = this.nodeId;
    const push: PushedCopies = { pushPages: [], pushVersions: [], pushBytes: [], pushApplied: [] };
    const pushPages = push.pushPages;
    for (let writer = 0; writer < this.nodeCount && pushPages.length < pageCountMax; writer++) {
      if (writer === toNode || (writer !== self && !anyWriter)) continue;
      this.pushWritesOf(writer, toNode, pageCountMax, push, anyWriter);
    }
    return this.readPushed(push);
  }

  /** pushForBarrier's copies of subscribed pages `writer` wrote in intervals `toNode` may not have applied (its `written` mark: this node's version of the page, or for another writer the sum of its versions). */
  private pushWritesOf(writer: number, toNode: number, pageCountMax: number, push: PushedCopies, anyWriter: boolean): void {
    const self = this.nodeId;
    const pushPages = push.pushPages;
    const newest = this.intervals.vc[writer]!;
    const scanned = this.pushScanned[toNode]!;
    const from = Math.max(this.intervals.appliedBy(toNode, writer), scanned[writer]!);
    // Whether every interval in (from, newest] is done with for toNode (see pushScanned).
    let complete = true;
    let index = newest;
    for (; index > from; index--) {
      if (pushPages.length >= pageCountMax) { complete = false; break; }
      const record = this.intervals.record(writer, index);
      if (record === null) break;
      for (const page of record.pages) {
        if (pushPages.length >= pageCountMax) { complete = false; break; }
        const nodes = this.subscribers.get(page);
        const subscription = nodes?.get(toNode);
        if (nodes === undefined || subscription === undefined || this.homeOf(page) !== self || pushPages.includes(page)) continue;
        const state = this.pageState(page);
        // Another writer's interval whose diff has not reached this home yet: its copy would not cover it.
        if (writer !== self && state.version[writer]! < index) { complete = false; continue; }
        // (This node's own writes keep the barrier pushes' mark, its own version: the sum of the versions there
        // pushed a copy again whenever another node had written since, and the simulation stuck, seed 238 of
        // --lines always --early-flush 0.3 --concurrent always.)
        const written = writer !== self ? state.version.reduce((total, v) => total + v, 0) : state.version[self]!;
        // This write was pushed already (a record the reader's applied vector does not show yet).
        if (written <= subscription.pushedAt) continue;
        if (subscription.left === 0) {
          // Lapsed: no copy. The write that found it lapsed invalidates the
          // reader's copy; a reader that did not fetch again before a later
          // write is dropped.
          if (subscription.lapsedAt < 0) subscription.lapsedAt = written;
          else if (subscription.lapsedAt < written) { nodes.delete(toNode); if (nodes.size === 0) this.subscribers.delete(page); }
          continue;
        }
        if (!state.valid || !this.masterReady(state)) { complete = false; continue; }
        subscription.left--;
        subscription.pushedAt = written;
        this.pushCopy(push, page, state, toNode);
      }
    }
    if (complete) scanned[writer] = newest;
  }

  /** Whether `node` holds a live subscription to barrier pushes of our page (pushForBarrier would push a new write of it). */
  private pushExpected(page: number, node: number): boolean {
    const subscription = this.subscribers.get(page)?.get(node);
    return subscription !== undefined && subscription.left > 0;
  }

  /**
   * A line grant's push (issue 12): the page of the line, from its home, when
   * the taker may lack a write the home holds (else its first op faults and
   * fetches while the line is pinned, and a recall waits for that fetch). The
   * taker installs it after the grant's acquire where it covers the need
   * (installPushed, as for lockGrant pushes).
   */
  pushForLine(page: number, toNode: number): GrantPush {
    if (toNode === this.nodeId || this.homeOf(page) !== this.nodeId) return {};
    const state = this.pageState(page);
    if (!state.valid || !this.masterReady(state)) return {};
    // Pushed when the taker's copy lacks a write of another node that ours holds. Its copy came from here (a
    // fetch, a read-ahead page, a push), so the last one sent says what it holds (versions only grow: a larger
    // sum is a newer write); a copy it dropped since is fetched again. Before session 43 the test was the
    // write notices the taker had applied: it pushed copies the taker held (users2/radix-lsd: 7 of 10 found
    // the page valid), and, once line messages told what the taker applied, missed copies a notice it had
    // applied long before invalidated (users16/bloom-filter: three times the fetches).
    if (this.othersSum(state, toNode) <= (state.servedSum?.[toNode] ?? 0)) return {};
    state.servedSum ??= new Array<number>(this.nodeCount).fill(0);
    const push: PushedCopies = { pushPages: [], pushVersions: [], pushBytes: [], pushApplied: [] };
    this.pushCopy(push, page, state, toNode);
    return this.readPushed(push);
  }

  /** Adds a page of our own, with its version, to pages pushed with a grant or a barrier message (copied by readPushed). */
  private pushCopy(push: PushedCopies, page: number, state: PageState, toNode: number): void {
    this.noteCopySent(state, toNode);
    push.pushPages.push(page);
    push.pushVersions.push([...state.version]);
    push.pushApplied.push(state.applied[toNode]!);
  }

  /** The copies of the pages pushCopy collected, after one protection call for all of them. */
  private readPushed(push: PushedCopies): GrantPush {
    if (push.pushPages.length === 0) return {};
    this.shareForCopies(push.pushPages);
    // One buffer for all copies (see servedExtras).
    const copies = new Uint8Array(push.pushPages.length * pageBytes);
    for (const [k, page] of push.pushPages.entries()) {
      const bytes = copies.subarray(k * pageBytes, (k + 1) * pageBytes);
      // A receiver may ignore a pushed copy: it does not make it current (migration.noteServed).
      this.readServed(page, bytes, -1);
      push.pushBytes.push(bytes);
    }
    return push;
  }

  /** Pages pushed with a grant or a barrier message, after its acquire: installed where they make an invalid copy valid. */
  installPushed(push: GrantPush): void {
    const pages = push.pushPages ?? [];
    assert(pages.length <= grantPagePushCountMax && pages.length === (push.pushBytes ?? []).length && pages.length === (push.pushVersions ?? []).length && pages.length === (push.pushApplied ?? []).length, 'pushed pages within limit');
    const installed: number[] = [];
    pages.forEach((page, k) => {
      if (this.homeOf(page) === this.nodeId) return;
      // Counted back when installed: a push is refused unless it makes an invalid copy valid.
      this.stats.pushesRefused = (this.stats.pushesRefused ?? 0) + 1;
      const state = this.pageState(page);
      if (state.valid || state.fetching) return;
      const version = push.pushVersions![k]!;
      // The copy must hold this node's own writes: the home counted the diffs
      // of ours it applied to it (pushApplied); those after it, on their way
      // there (a diff flushed early after the request may reach the home after
      // the grant left: found by the simulation, seed 220, a store reverted),
      // are applied here from keptDiffs, or the copy is refused. (Session 41:
      // before, any page flushed early since the request was refused, and a
      // line's page, written through its lines by two nodes, was fetched after
      // every grant: users15/scatter-min.mjs 'pre', 2,832 read faults of 0.8 ms.)
      const own = this.diffsAfter(page, state, push.pushApplied![k]!);
      if (own === null) return;
      const bytes = push.pushBytes![k]!;
      assert(bytes.length === pageBytes, 'a pushed page is a whole page');
      // No older than the copy this node held for any other writer (a push sent long before it arrived): the
      // merged version below then claims no write its bytes lack. (The version of this node's own writes may
      // lag: its diffs made up for them above. Before session 41, a copy lacking this node's own last interval
      // was refused, and that refused these too; the simulation found a counter's increment lost without it,
      // seed 6137 of --concurrent always --early-flush 0.3 --lines seeded --defer always.)
      for (let n = 0; n < this.nodeCount; n++) if (n !== this.nodeId && (version[n] ?? 0) < state.version[n]!) return;
      const merged = state.version.map((v, n) => Math.max(v, version[n] ?? 0));
      if (!isCovered(merged, state.need, this.nodeCount)) return;
      state.version = merged;
      // Completed before it is written: a copy kept readable for this push (an install in place) is read by
      // this node's threads meanwhile, and must never show a value older than their own writes (the
      // simulation, seed 10172 of --lines always --defer always --atomic-barrier always: a lost increment).
      let copy = bytes;
      if (own.length > 0) {
        copy = bytes.slice();
        for (const diff of own) applyDiff(copy, diff);
        this.stats.pushesCompleted = (this.stats.pushesCompleted ?? 0) + 1;
      }
      this.memory.writePage(page, copy);
      state.valid = true;
      installed.push(page);
      this.stats.pagesPushed = (this.stats.pagesPushed ?? 0) + 1;
      this.stats.pushesRefused = this.stats.pushesRefused! - 1;
    });
    // Read-only in one protection call (those kept readable by the acquire need none), then their waiters run.
    const inPlace = this.keptReadable.size === 0 ? [] : installed.filter((page) => this.keptReadable.delete(page));
    this.protectValidMany(inPlace.length === 0 ? installed : installed.filter((page) => !inPlace.includes(page)));
    this.protectValidMany(inPlace, true);
    this.stats.pushesInPlace = (this.stats.pushesInPlace ?? 0) + inPlace.length;
    // Kept readable for this push but refused by it: no access now, as the acquire would have left them.
    if (this.keptReadable.size > 0) {
      const refused = pages.filter((page) => this.keptReadable.delete(page)).sort((a, b) => a - b);
      if (refused.length > 0) this.memory.protect(refused, protNone);
    }
    for (const page of installed) this.runWaiters(this.pageState(page));
  }


  // -------------------------------------------------------------- atomics

  atomicAccess(page: number, then: () => void): void {
    this.whenValid(page, then);
  }

  noteHomeWrite(page: number): void {
    assert(this.homeOf(page) === this.nodeId && this.pageState(page).valid, 'a write in place is to a valid page of our own');
    this.drainDirty();
    this.intervalPages.add(page);
    this.aheadOnly.delete(page);
  }

  atomicStore(page: number, diff: Uint8Array): void {
    this.drainDirty();
    this.intervalPages.add(page);
    this.aheadOnly.delete(page);
    this.memory.applyDiff(page, diff);
    this.closeInterval();
  }

  // ------------------------------------------- stale copies (stale.ts)

  refreshStale(): void { this.stale?.refresh(); }

  onTick(nowMs: number): void {
    if (this.stale === null || !this.staleTimed) return;
    // New pages written since the last tick count as activity too (a writer, not a poller): mutexes taken in the
    // node's lock token table never reach the engine (matmul looked during its rows).
    const written = this.intervalPages.size;
    this.drainDirty();
    if (this.intervalPages.size !== written) this.activity++;
    this.stale.tick(nowMs, this.activity);
  }

  private makeStaleRefresh(delayMs: number): StaleRefresh {
    return new StaleRefresh({
      nodeId: this.nodeId, nodeCount: this.nodeCount, pageCount: this.pageCount,
      flushAllDirty: () => {
        this.stats.staleLooks = (this.stats.staleLooks ?? 0) + 1;
        const dirty = this.dirtyPageCount();
        if (dirty > 0) this.flushDirty(dirty);
      },
      forEachCleanCopy: (visit) => {
        for (const [page, state] of this.pages) {
          // A page written in the open interval counts once its diff went home (flushAllDirty): no twin left.
          if (!state.valid || state.fetching || this.twinned.has(page) || this.deferred.has(page)) continue;
          const home = this.homeOf(page);
          if (home !== this.nodeId) visit(page, home);
        }
      },
      forEachOwnTouched: (visit, logged) => {
        this.drainDirty();
        // Written: a diff applied, an interval of ours closed on it (a lend brings both), or written in the open one
        // (a copy only served, version zero, is left out: not read again at every query). Pages logged already are
        // passed over first: a home of many written pages scans its states at every query.
        for (const [page, state] of this.pages) {
          if (logged[page] === 1 || this.homeOf(page) !== this.nodeId) continue;
          if (state.applied !== this.zeros || state.version.some((v) => v > 0)) visit(page);
        }
        for (const page of this.intervalPages) if (logged[page] !== 1 && this.homeOf(page) === this.nodeId) visit(page);
      },
      homeOf: (page) => this.homeOf(page),
      readPage: (page, dst) => this.memory.readPage(page, dst),
      drop: (changed, written, home) => this.dropStale(changed, written, home),
      send: (toNode, message) => this.ctx.send(toNode, message),
    }, delayMs);
  }

  /**
   * Copies a home found out of date (`changed`, with state here) or written
   * since start (`written`: implicit copies, valid at zero with no state):
   * those still valid, with no twin (a page of the open interval whose diff
   * went home counts) and homed at `home` are invalidated as an acquire would
   * (keeping their need), so the next read fetches the home's copy.
   */
  private dropStale(changed: readonly number[], written: readonly number[], home: number): number {
    this.drainDirty();
    const drop = new Set<number>();
    const clean = (page: number): boolean => page >= 0 && page < this.pageCount && home !== this.nodeId && this.homeOf(page) === home
      && !this.twinned.has(page) && !this.deferred.has(page);
    for (const page of changed) {
      const state = this.pages.get(page);
      if (state !== undefined && state.valid && !state.fetching && clean(page)) drop.add(page);
    }
    // A copy never touched gets no state (stateless-needs.ts): a home that wrote a large range names every page of it,
    // and users2/alloc-pingpong on 3 nodes built 165,000 states this way, most for pages the asker never read.
    for (const page of written) {
      if (this.pages.has(page) || this.stateless.has(page) || !clean(page)) continue;
      this.stateless.hold(page);
      drop.add(page);
    }
    if (drop.size === 0) return 0;
    this.invalidate(Uint32Array.from(drop).sort());
    this.stats.staleDropped = (this.stats.staleDropped ?? 0) + drop.size;
    return drop.size;
  }

}
