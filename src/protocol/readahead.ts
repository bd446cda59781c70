// Adaptive read-ahead (issue 13.3): which pages an hlrc fetch asks for besides
// the faulting one. Pure bookkeeping (no I/O, no clock, no page memory): the
// engine tells it each remote fault (`plan`), the pages it actually asked for
// (`issued`), and what became of each read-ahead page: touched by a thread
// (`touched`: useful) or invalidated untouched (`invalidated`: wasted).
// Over 600 lines: the policy's three sources of evidence and streaming share
// the streams and the tracked pages; split, each part would reach into the
// other's tables.
//
// Three sources of evidence, each bounded:
// - Streams, per home (least recently used evicted): a fault at the page a
//   stream expects next continues it (stride 1: anywhere within one window
//   past its last page; stride d: exactly the next page of the stride). A
//   continuing stream's window doubles while its last window was mostly
//   touched, stays while about half was, halves otherwise.
// - Strides: a fault d pages (2..strideMax, either direction) after a recent
//   fault that was itself d after another starts a strided stream; a fault
//   one page below a recent one starts a dense stream going down, at the
//   window a stream going up would start with.
// - History: per start page, the extent the last stream starting there used
//   (a program that faults on the same boundary every iteration asks for
//   exactly what it read last time); per region of a home, a window that
//   grows by one per useful page and shrinks by one per wasted or skipped page
//   (a page a stream passed over untouched), used for streams with no history.
//
// Streaming: a continuing stream whose last window was used issues its next
// window (`aheadWindows`) when a thread first touches the first page of its
// current one, without waiting for the fault past its end, so the transfer
// overlaps the sweep (the first page of every window is tracked for this,
// even in a saturated stream's untracked windows). Bounded per stream
// (prefetchAheadWindowCountMax windows issued past the one being read) and
// per node (prefetchAheadFetchCountMax such fetches in flight); a window whose
// predecessor was mostly untouched stops it until the stream's next fault.

import { assert } from '../errors.js';
import { prefetchAheadFetchCountMax, prefetchAheadWindowCountMax, prefetchHistoryCountMax, prefetchPageCountDefault, prefetchPageCountInitial, prefetchPageCountMax, prefetchRegionPagesLog2, prefetchStreamCountMax, prefetchStridePagesMax } from '../constants.js';
import type { EngineCounters } from './types.js';

export interface ReadAheadOptions {
  /** Nodes (homes) of the cluster. */
  homeCount: number;
  /** Pages one fetch may ask for, the faulting one included (1: no read-ahead). */
  windowMax: number;
  /** The window of a new stream in a region with no evidence yet. */
  windowInitial: number;
  /** Streams tracked per home. */
  streamCountMax: number;
  /** Start pages whose extent is remembered. */
  historyCountMax: number;
  /** Largest stride (pages) detected. */
  strideMax: number;
  /** Pages per region: log2. */
  regionShift: number;
  /**
   * Whether the engine reports touches (read-ahead pages installed at no
   * access until first touched). Without it a stream that continues counts
   * its last window as used, and only invalidations teach anything.
   */
  touchesObserved: boolean;
  /** Windows a streaming stream issues past the one being read (0: no streaming). */
  aheadWindowMax: number;
  /** Windows issued ahead and not yet answered, per node. */
  aheadFetchMax: number;
}

/**
 * Pages to ask for besides the faulting one, in order. Not sparse: a run
 * (contiguous or of one stride) that ends at the first page the engine may
 * not ask for. Sparse: a pattern, whose ineligible pages are just left out.
 */
export interface ReadAheadPlan {
  pages: number[];
  sparse: boolean;
  /**
   * Whether the engine should track this fetch's read-ahead pages (install
   * them at no access until touched). A stream at the window limit whose
   * windows were used is tracked only every saturatedTrackInterval-th fetch,
   * and then only a sample of it (`sampled`): its touches would teach
   * nothing and each costs a fault through the manager.
   */
  track: boolean;
  /**
   * With `track`: a saturated stream's tracked window, of which only every
   * saturatedSampleStride-th page (its first included) is tracked; the
   * others are installed readable as an untracked window's are.
   */
  sampled: boolean;
}

/** Fetches of a saturated stream (window at its limit, last window used) per tracked one. */
const saturatedTrackInterval = 4;
/**
 * Of a saturated stream's tracked window, the pages tracked: every
 * saturatedSampleStride-th (10 of 64). Whether the stream is still used is
 * read from the sample; each tracked page costs a fault through the manager
 * (a round trip between the app thread and its manager, ~0.1 ms on a loaded
 * 2-core machine) where an untracked one costs nothing on a read and a fast
 * write fault on a store. Not a power of two, so that rows of a power-of-two
 * size do not alias with it.
 */
const saturatedSampleStride = 7;
/**
 * A tracked window of more pages than this is tracked by sample as a
 * saturated one is (session 13): windows past the engine's default limit
 * (64) come only to a stream whose 16-, 32- and 64-page windows were used,
 * and tracking each of their pages cost QuickSort's remote partition 835
 * local faults through the manager for 3,072 pages (331 with 64-page windows).
 */
const fullyTrackedWindowPagesMax = prefetchPageCountDefault;

/** Touched pages a stream remembers for pattern detection. */
const touchHistoryCount = 16;
/** Remote faults per home remembered for stride detection. */
const recentFaultCount = 8;

interface Stream {
  home: number;
  /** The page whose fault started the stream. */
  start: number;
  stride: number;
  /** The page after the last one asked for (stride 1) or the next of the stride. */
  next: number;
  /** The window of the last fetch. */
  window: number;
  /** The stream's last remote fault. */
  lastFault: number;
  /** Read-ahead pages of the last fetch not yet touched (in stride order). */
  outstanding: number[];
  /** Of the last fetch's read-ahead pages: how many were asked for, and touched. */
  asked: number;
  used: number;
  /** Pages from start (in strides) the stream has used so far. */
  extent: number;
  /** The last pages the stream's threads faulted on or touched, in order. */
  touches: number[];
  /** Untracked fetches since the stream saturated (see ReadAheadPlan.track), -1: not saturated. */
  saturatedFetches: number;
  /** A sparse pattern (runs of `width` pages every `step` pages, step fractional) the last fetch followed, or null. */
  pattern: Pattern | null;
  /** Whether the stream issues windows ahead of its threads (a continuing run whose last window was used). */
  streaming: boolean;
  /** The windows issued since the stream's last fault (its fetch's first), oldest first, at most windowsKept. */
  windows: Window[];
}

/** One fetch's read-ahead pages: the first (tracked whenever the stream streams), how many were tracked, and touched. */
interface Window { first: number; asked: number; used: number; reached: boolean }

/** Windows a stream remembers: the one before the window being read, that one, and those issued past it. */
const windowsKept = 2 + prefetchAheadWindowCountMax;

/** Runs of up to `width` pages starting at the pages of lo + m·step .. hi + m·step (lo, hi: the phase as known). */
interface Pattern { step: number; width: number; lo: number; hi: number }

interface Tracked { stream: Stream; window: Window | null; region: number; skipped: boolean }

export interface ReadAheadCounters {
  /** Read-ahead pages asked for. */
  asked: number;
  useful: number;
  wasted: number;
  /** Pages a stream passed over untouched (counted wasted for learning; a later touch undoes it). */
  skipped: number;
  strided: number;
  /** Fetches that followed a sparse pattern (runs of pages at a fractional stride). */
  patterned: number;
  /** Windows a streaming stream issued ahead (aheadWindows). */
  ahead: number;
}

export class ReadAheadPolicy {
  private readonly options: ReadAheadOptions;
  private readonly streams: Stream[][] = [];
  /** Per home, its last remote faults that continued no stream (stride detection). */
  private readonly recent: number[][] = [];
  /** Start page -> extent of the last stream that started there (insertion order = age). */
  private readonly history = new Map<number, number>();
  /** Region key -> learned window for new streams there. */
  private readonly regions = new Map<number, number>();
  /** Read-ahead pages asked for and not yet touched or invalidated. */
  private readonly tracked = new Map<number, Tracked>();
  readonly counters: ReadAheadCounters = { asked: 0, useful: 0, wasted: 0, skipped: 0, strided: 0, patterned: 0, ahead: 0 };
  /** Windows issued ahead and not yet answered: first page -> its stream (at most aheadFetchMax). */
  private readonly aheadInFlight = new Map<number, Stream>();
  /** The stream whose window's first page was just touched (aheadWindows takes it). */
  private wanting: Stream | null = null;

  constructor(options: ReadAheadOptions) {
    assert(Number.isInteger(options.windowMax) && options.windowMax >= 1, 'read-ahead window limit is a page count');
    assert(options.windowInitial >= 1 && options.windowInitial <= options.windowMax, 'read-ahead window starts within its limit');
    assert(options.streamCountMax >= 1 && options.historyCountMax >= 1 && options.strideMax >= 2, 'read-ahead tables have room');
    assert(options.aheadWindowMax >= 0 && options.aheadWindowMax <= prefetchAheadWindowCountMax && options.aheadFetchMax >= 0 && options.aheadFetchMax <= prefetchAheadFetchCountMax, 'streaming read-ahead within its limits');
    this.options = options;
    for (let home = 0; home < options.homeCount; home++) { this.streams.push([]); this.recent.push([]); }
  }

  /** Pages tracked (bounded by the pages of the region: each page at most once). */
  trackedCount(): number { return this.tracked.size; }

  private regionKey(home: number, page: number): number {
    return (page >> this.options.regionShift) * this.options.homeCount + home;
  }

  private regionWindow(key: number): number {
    return this.regions.get(key) ?? this.options.windowInitial;
  }

  private learn(key: number, delta: number): void {
    const window = Math.min(this.options.windowMax, Math.max(1, this.regionWindow(key) + delta));
    this.regions.delete(key);
    if (this.regions.size >= this.options.historyCountMax) this.regions.delete(this.regions.keys().next().value!);
    this.regions.set(key, window);
  }

  private remember(start: number, extent: number): void {
    this.history.delete(start);
    if (this.history.size >= this.options.historyCountMax) this.history.delete(this.history.keys().next().value!);
    this.history.set(start, extent);
  }

  /** Records that stream `stream` reached `page` (a fault or a touch): its extent grows, earlier untouched pages are skipped. */
  private reach(stream: Stream, page: number): void {
    const steps = Math.floor((page - stream.start) / stream.stride);
    if (steps >= 0 && steps + 1 > stream.extent) {
      stream.extent = steps + 1;
      this.remember(stream.start, stream.extent);
    }
    // Read-ahead pages before `page` in the stream's order that were never touched: passed over.
    while (this.options.touchesObserved && stream.outstanding.length > 0) {
      const first = stream.outstanding[0]!;
      if ((first - page) * Math.sign(stream.stride) >= 0) break;
      stream.outstanding.shift();
      const entry = this.tracked.get(first);
      if (entry !== undefined && entry.stream === stream && !entry.skipped) {
        entry.skipped = true;
        this.counters.skipped++;
        this.learn(entry.region, -1);
      }
    }
  }

  /**
   * A remote fault on `page` of `home`: the pages to ask for. The engine then
   * asks for the ones it may (invalid here, not in flight, same home), in
   * order, stopping at the first it may not, and reports them with `issued`.
   */
  plan(home: number, page: number): ReadAheadPlan {
    assert(home >= 0 && home < this.options.homeCount, 'read-ahead for a node of the cluster');
    const streams = this.streams[home]!;
    const { windowMax } = this.options;
    // A stream that expects exactly this page first: a scan going down whose next page lies in the window
    // of a stream going up (QuickSort's partition below its median-of-three read) continues going down.
    let stream = streams.find((s) => s.pattern === null && page === s.next)
      ?? streams.find((s) => (s.pattern !== null ? page > s.lastFault && page < s.next + 2 * s.pattern.step
        : s.stride === 1 ? page >= s.next && page < s.next + s.window : page === s.next));
    let count: number;
    let pattern: Pattern | null = null;
    const continued = stream !== undefined;
    let lastUsed = 0;
    if (stream !== undefined) {
      // Continues: grow while the last window was mostly used.
      const used = stream.asked === 0 || !this.options.touchesObserved ? 1 : stream.used / stream.asked;
      lastUsed = used;
      // (A pattern's runs cover the pages where its rows may start: about half of them are read.)
      count = used >= (stream.pattern === null ? 0.75 : 0.5) ? stream.window * 2 : stream.window;
      this.reach(stream, page);
      this.touch(stream, page);
      // Mostly unused: a sparse pattern in what was touched replaces the run.
      if (this.options.touchesObserved && stream.stride === 1 && (stream.pattern !== null || (stream.asked >= 4 && used < 0.5))) {
        pattern = this.patternOf(stream.touches);
      }
    } else {
      if (streams.length >= this.options.streamCountMax) streams.shift();
      stream = this.strideOf(home, page);
      if (stream !== undefined) {
        // A dense scan going down starts as a new stream going up does (its region's window), at most at the
        // initial window: two faults are little evidence (a thread reading two small objects on adjacent pages,
        // e.g. QuickSort's stack and count, top page first, wasted a window below them). Other strides at 2.
        count = stream.stride === -1 ? Math.min(this.options.windowInitial, this.regionWindow(this.regionKey(home, page))) : 2;
        this.counters.strided++;
      } else {
        const history = this.history.get(page);
        count = history ?? this.regionWindow(this.regionKey(home, page));
        stream = {
          home, start: page, stride: 1, next: page + 1, window: count, lastFault: page,
          outstanding: [], asked: 0, used: 0, extent: 1, touches: [page], pattern: null, saturatedFetches: -1, streaming: false, windows: [],
        };
        this.remember(page, 1);
      }
    }
    // Most recently used last.
    const at = streams.indexOf(stream);
    if (at >= 0) streams.splice(at, 1);
    streams.push(stream);
    stream.lastFault = page;
    stream.window = Math.min(windowMax, Math.max(1, count));
    stream.pattern = pattern;
    // A fault starts the stream's windows afresh; it streams once a continuing run's last window was used.
    stream.windows = [];
    stream.streaming = this.options.aheadWindowMax > 0 && this.options.touchesObserved && continued && pattern === null && lastUsed >= 0.75;
    // Saturated: a continuing run at the limit whose last window was used (or untracked).
    let track = true;
    let sampled = false;
    if (continued && pattern === null && stream.window === windowMax && lastUsed >= 0.75) {
      stream.saturatedFetches = stream.saturatedFetches < 0 ? 1 : stream.saturatedFetches + 1;
      track = stream.saturatedFetches % saturatedTrackInterval === 0;
      sampled = track;
    } else {
      stream.saturatedFetches = -1;
    }
    if (track && pattern === null && stream.window > fullyTrackedWindowPagesMax) sampled = true;
    const pages: number[] = [];
    if (pattern !== null) {
      this.counters.patterned++;
      // The rest of the faulting page's run, then the runs that follow.
      const add = (candidate: number): void => { if (candidate > page && !pages.includes(candidate) && pages.length < stream!.window - 1) pages.push(candidate); };
      for (let k = 1; k < pattern.width; k++) add(page + k);
      const first = Math.ceil((page + 1 - pattern.hi) / pattern.step);
      for (let m = Math.max(0, first); pages.length < stream.window - 1 && m < first + windowMax; m++) {
        const from = Math.floor(pattern.lo + m * pattern.step);
        const to = Math.floor(pattern.hi + m * pattern.step - 1e-9) + pattern.width - 1;
        for (let candidate = from; candidate <= to; candidate++) add(candidate);
      }
    } else {
      for (let k = 1; k < stream.window; k++) pages.push(page + k * stream.stride);
    }
    return { pages, sparse: pattern !== null, track, sampled };
  }

  private touch(stream: Stream, page: number): void {
    stream.touches.push(page);
    if (stream.touches.length > touchHistoryCount) stream.touches.shift();
  }

  /**
   * A sparse pattern in touched pages: runs (pages touched with their
   * predecessor untouched start one) of at most `width` pages whose starts
   * are a regular `step` apart (each gap within one page of the mean, the
   * mean at least twice the width): e.g. rows of a matrix a thread reads
   * every 16th of, 6.25 pages apart and 1-2 pages long.
   */
  private patternOf(touches: readonly number[]): Pattern | null {
    const pages = [...new Set(touches)].sort((a, b) => a - b);
    const set = new Set(pages);
    const starts = pages.filter((page) => !set.has(page - 1));
    if (starts.length < 3) return null;
    let width = 1;
    for (const start of starts) {
      let run = 1;
      while (set.has(start + run)) run++;
      width = Math.max(width, run);
    }
    const mean = (starts[starts.length - 1]! - starts[0]!) / (starts.length - 1);
    if (mean < 2 * width || mean > this.options.strideMax) return null;
    for (let k = 1; k < starts.length; k++) if (Math.abs(starts[k]! - starts[k - 1]! - mean) > 1) return null;
    // Each start is floor(origin + m·step): the steps every pair of starts allows, then the origins.
    const index = starts.map((start) => Math.round((start - starts[0]!) / mean));
    let stepLo = 0;
    let stepHi = Infinity;
    for (let i = 0; i < starts.length; i++) {
      for (let j = i + 1; j < starts.length; j++) {
        const gap = starts[j]! - starts[i]!;
        const rows = index[j]! - index[i]!;
        if (rows <= 0) return null;
        stepLo = Math.max(stepLo, (gap - 1) / rows);
        stepHi = Math.min(stepHi, (gap + 1) / rows);
      }
    }
    if (stepLo >= stepHi) return null;
    const step = (stepLo + stepHi) / 2;
    let lo = -Infinity;
    let hi = Infinity;
    starts.forEach((start, k) => {
      lo = Math.max(lo, start - index[k]! * step);
      hi = Math.min(hi, start + 1 - index[k]! * step);
    });
    if (lo >= hi) return null;
    return { step, width, lo, hi };
  }

  /**
   * A fault that is the third of a stride: `page`, `page - d`, `page - 2d`
   * among the home's recent faults that continued no stream, with no other
   * recent fault between them (2 <= |d| <= strideMax); or the second of a
   * dense scan going down (d = -1: `page + 1` among them), e.g. QuickSort's
   * partition from the top of its range: its first fault (the range's last
   * page) asks for the pages above, which are not the home's or are valid
   * already, and its second is the page below. Waiting for a third fault
   * cost every range popped on a remote node a round trip of one page more.
   * Returns a new strided stream, or undefined.
   */
  private strideOf(home: number, page: number): Stream | undefined {
    const recent = this.recent[home]!;
    let found: Stream | undefined;
    for (const before of recent) {
      const delta = page - before;
      if ((Math.abs(delta) < 2 && delta !== -1) || Math.abs(delta) > this.options.strideMax || (delta !== -1 && !recent.includes(before - delta))) continue;
      // Not a stride if other recent faults fall between (a dense scan going up is a stream of stride 1 already).
      const low = Math.min(page, before - delta);
      const high = Math.max(page, before - delta);
      if (recent.some((other) => other > low && other < high && other !== before)) continue;
      found = {
        home, start: page, stride: delta, next: page + delta, window: 1, lastFault: page,
        outstanding: [], asked: 0, used: 0, extent: 1, touches: [page], pattern: null, saturatedFetches: -1, streaming: false, windows: [],
      };
      break;
    }
    recent.push(page);
    if (recent.length > recentFaultCount) recent.shift();
    return found;
  }

  /** The fetch for `page` went out asking for `extraPages` too (a prefix of the plan's pages). */
  issued(home: number, page: number, extraPages: readonly number[], track = true, sampled = false): void {
    // `plan` made the fetch's stream the most recently used one of its home.
    const streams = this.streams[home]!;
    const stream = streams[streams.length - 1];
    assert(stream !== undefined && stream.lastFault === page, 'a fetch is issued for the page just planned');
    stream.outstanding = [];
    this.record(stream, extraPages, track, sampled);
    if (extraPages.length === 0) stream.next = page + stream.stride;
  }

  /** A window of read-ahead pages went out for `stream` (a fault's fetch or one issued ahead). */
  private record(stream: Stream, pages: readonly number[], track: boolean, sampled = false): void {
    // Unobserved touches: nothing would ever resolve a tracked page. A streaming stream's untracked
    // window still tracks its first page: its first touch issues the next window. A sampled window
    // tracks every saturatedSampleStride-th page, its first included.
    const observed = !this.options.touchesObserved ? [] : !track ? (stream.streaming ? pages.slice(0, 1) : [])
      : sampled ? pages.filter((_, k) => k % saturatedSampleStride === 0) : pages;
    // Untracked (unobserved, or a saturated stream's): counts as used when the stream continues.
    // Sampled: used is judged on the sample.
    stream.asked = track ? (sampled ? observed.length : pages.length) : 0;
    stream.used = 0;
    let window: Window | null = null;
    if (pages.length > 0) {
      window = { first: pages[0]!, asked: stream.asked, used: 0, reached: false };
      stream.windows.push(window);
      if (stream.windows.length > windowsKept) stream.windows.shift();
    }
    for (const extra of observed) {
      // A page still tracked from an earlier stream goes to the new one.
      this.tracked.set(extra, { stream, window, region: this.regionKey(stream.home, extra), skipped: false });
      stream.outstanding.push(extra);
    }
    this.counters.asked += pages.length;
    if (pages.length > 0) stream.next = pages[pages.length - 1]! + stream.stride;
  }

  /** Whether a read-ahead page is tracked (installed at no access until a thread touches it). */
  tracks(page: number): boolean { return this.tracked.has(page); }

  /**
   * Whether the first touch of tracked page `page` may issue windows at once (the first page of its window, not
   * reached yet): the engine hears of such a touch right away; of the others at its next event.
   */
  triggers(page: number): boolean {
    const entry = this.tracked.get(page);
    return entry !== undefined && entry.window !== null && entry.window.first === page && !entry.window.reached;
  }

  /**
   * After a touch (`touched`) of the first page of a streaming stream's
   * window: the windows it issues now, each a run from the page after its last
   * window (those at its start not `eligible` passed over), stopping at the next page not `eligible`, and whether each is
   * tracked. The window before the touched one must have been mostly used
   * (else the stream stops streaming until its next fault); each window
   * doubles up to the limit while it is, as a fault's would.
   */
  aheadWindows(eligible: (home: number, page: number) => boolean): Array<{ home: number; pages: number[]; track: boolean; sampled: boolean }> {
    const stream = this.wanting;
    this.wanting = null;
    const windows: Array<{ home: number; pages: number[]; track: boolean; sampled: boolean }> = [];
    if (stream === null || !stream.streaming || !this.streams[stream.home]!.includes(stream)) return windows;
    let reached = -1;
    stream.windows.forEach((window, k) => { if (window.reached) reached = k; });
    const before = reached >= 1 ? stream.windows[reached - 1]! : null;
    if (before !== null && before.asked > 0 && before.used < 0.75 * before.asked) {
      stream.streaming = false;
      return windows;
    }
    const { windowMax } = this.options;
    for (let round = 0; round < this.options.aheadWindowMax; round++) {
      const ahead = stream.windows.length - 1 - reached;
      if (ahead >= this.options.aheadWindowMax || this.aheadInFlight.size >= this.options.aheadFetchMax) break;
      const size = Math.min(windowMax, stream.window * 2);
      // Pages already here (e.g. pushed at a barrier) at the start are passed over; the run stops at the next one.
      const pages: number[] = [];
      for (let k = 0; k < size; k++) {
        const next = stream.next + k * stream.stride;
        if (eligible(stream.home, next)) pages.push(next);
        else if (pages.length > 0) break;
      }
      if (pages.length === 0) break;
      stream.window = size;
      // Saturated as a fault's fetch would be (see plan): tracked every saturatedTrackInterval-th window.
      let track = true;
      let sampled = false;
      if (size === windowMax) {
        stream.saturatedFetches = stream.saturatedFetches < 0 ? 1 : stream.saturatedFetches + 1;
        track = stream.saturatedFetches % saturatedTrackInterval === 0;
        sampled = track;
      }
      if (track && size > fullyTrackedWindowPagesMax) sampled = true;
      this.record(stream, pages, track, sampled);
      this.aheadInFlight.set(pages[0]!, stream);
      this.counters.ahead++;
      windows.push({ home: stream.home, pages, track, sampled });
    }
    return windows;
  }

  /** The reply to a fetch of `page` came: whether it was a window issued ahead (its first page is read-ahead too). */
  replied(page: number): boolean {
    return this.aheadInFlight.delete(page);
  }

  /** A thread touched read-ahead page `page` (it was installed and not touched before): useful. */
  touched(page: number): void {
    const entry = this.tracked.get(page);
    if (entry === undefined) return;
    this.tracked.delete(page);
    this.counters.useful++;
    this.learn(entry.region, entry.skipped ? 2 : 1);
    const { stream, window } = entry;
    stream.used++;
    const k = stream.outstanding.indexOf(page);
    if (k >= 0) stream.outstanding.splice(k, 1);
    this.touch(stream, page);
    this.reach(stream, page);
    if (window !== null) {
      window.used++;
      if (page === window.first && !window.reached) {
        window.reached = true;
        if (stream.streaming) this.wanting = stream;
      }
    }
  }

  /** Read-ahead page `page` was invalidated, or left out by its home, before any thread touched it: wasted. */
  invalidated(page: number): void {
    const entry = this.tracked.get(page);
    if (entry === undefined) return;
    this.tracked.delete(page);
    const k = entry.stream.outstanding.indexOf(page);
    if (k >= 0) entry.stream.outstanding.splice(k, 1);
    this.counters.wasted++;
    if (!entry.skipped) this.learn(entry.region, -1);
  }

  /** Forgets a tracked page without judging it (e.g. it became this node's own). */
  forget(page: number): void {
    const entry = this.tracked.get(page);
    if (entry === undefined) return;
    this.tracked.delete(page);
    const k = entry.stream.outstanding.indexOf(page);
    if (k >= 0) entry.stream.outstanding.splice(k, 1);
  }
}

/** What streaming read-ahead needs from the engine: which pages it may ask for, and a way to ask. */
export interface ReadAheadHost {
  /** Whether `page` may be asked for from `home` now (invalid here, not being fetched, homed there). */
  eligible(home: number, page: number): boolean;
  /** Fetches `pages` (a window issued ahead, no thread waiting) from `home`; `replied` tells the reply apart. */
  fetchAhead(home: number, pages: number[]): void;
}

/**
 * The engine's read-ahead unit: the policy above, with the counters
 * (EngineCounters) and the engine's call sites in hlrc.ts: `pick` at
 * the fetch, `arrived` when a read-ahead page is installed, `useful` /
 * `wasted` / `forget` for what became of it, `replied` at a page reply
 * (streaming fetches its windows through the host).
 */
export class ReadAhead {
  /** Whether read-ahead pages stay at no access until first touched (EngineOptions.readAheadTracking, default on). */
  readonly tracking: boolean;
  private readonly policy: ReadAheadPolicy;
  /** The most pages one fetch brings (EngineOptions.prefetchPageCount, default prefetchPageCountDefault). */
  private readonly windowMax: number;
  /** Read-ahead pages asked for untracked (a saturated stream's): installed readable, counted apart. */
  private readonly untracked = new Set<number>();

  constructor(
    private readonly pageCount: number, nodeCount: number, private readonly stats: EngineCounters,
    options: { prefetchPageCount?: number; readAheadTracking?: boolean; readAheadStreaming?: boolean }, private readonly host: ReadAheadHost | null = null,
  ) {
    const windowMax = options.prefetchPageCount ?? prefetchPageCountDefault;
    this.windowMax = windowMax;
    assert(Number.isInteger(windowMax) && windowMax >= 1 && windowMax <= prefetchPageCountMax, 'prefetch page count within 1..prefetchPageCountMax');
    this.tracking = options.readAheadTracking ?? true;
    this.policy = new ReadAheadPolicy({
      homeCount: nodeCount, windowMax, windowInitial: Math.min(prefetchPageCountInitial, windowMax),
      streamCountMax: prefetchStreamCountMax, historyCountMax: prefetchHistoryCountMax, strideMax: prefetchStridePagesMax,
      regionShift: prefetchRegionPagesLog2, touchesObserved: this.tracking,
      aheadWindowMax: host === null || windowMax === 1 || options.readAheadStreaming === false ? 0 : prefetchAheadWindowCountMax,
      aheadFetchMax: prefetchAheadFetchCountMax,
    });
  }

  /** The policy's counters (tests). */
  get counters(): ReadAheadCounters { return this.policy.counters; }

  /**
   * A fetch of `page` from `home`: the other pages to ask for, each one
   * `eligible` (invalid here, not being fetched, same home); a run stops at
   * the first that is not, a sparse pattern skips it.
   */
  pick(home: number, page: number, eligible: (next: number) => boolean): number[] {
    const plan = this.policy.plan(home, page);
    const extra: number[] = [];
    for (const next of plan.pages) {
      if (extra.length >= this.windowMax - 1) break;
      if (next < 0 || next >= this.pageCount || !eligible(next)) {
        if (plan.sparse) continue;
        break;
      }
      extra.push(next);
    }
    this.policy.issued(home, page, extra, plan.track, plan.sampled);
    if (!plan.track || plan.sampled) for (const next of extra) if (!this.policy.tracks(next)) this.untracked.add(next);
    return extra;
  }

  /** After a touch: the windows a streaming stream issues now, fetched through the host. */
  private streamAhead(): void {
    const host = this.host;
    if (host === null) return;
    const windows = this.policy.aheadWindows((home, page) => page >= 0 && page < this.pageCount && host.eligible(home, page));
    for (const { home, pages, track, sampled } of windows) {
      if (!track || sampled) for (const next of pages) if (!this.policy.tracks(next)) this.untracked.add(next);
      this.stats.prefetchAheadFetches = (this.stats.prefetchAheadFetches ?? 0) + 1;
      host.fetchAhead(home, pages);
    }
  }

  /** A page reply came for `page`: whether it answers a window issued ahead (install its first page as read-ahead). */
  replied(page: number): boolean {
    return this.policy.replied(page);
  }

  /**
   * A read-ahead page was installed (`waited`: a thread already waits for
   * it). Returns whether it stays at no access until touched (tracked).
   */
  arrived(page: number, waited: boolean): boolean {
    const untracked = this.untracked.delete(page);
    if (waited) { this.policy.touched(page); this.streamAhead(); return false; }
    if (untracked) { this.stats.prefetchUntrackedPages = (this.stats.prefetchUntrackedPages ?? 0) + 1; return false; }
    if (!this.tracking) return false;
    this.stats.prefetchedPages = (this.stats.prefetchedPages ?? 0) + 1;
    return true;
  }

  /** Whether a touch of tracked page `page` may issue windows at once (ReadAheadPolicy.triggers). */
  triggers(page: number): boolean {
    return this.policy.triggers(page);
  }

  /** The first touch of a tracked read-ahead page: it was worth fetching (`stream`: issue the windows it calls for now). */
  useful(page: number, stream = true): void {
    this.stats.prefetchUsefulPages = (this.stats.prefetchUsefulPages ?? 0) + 1;
    this.policy.touched(page);
    if (stream) this.streamAhead();
  }

  /** A tracked read-ahead page was invalidated before any thread touched it. */
  wasted(page: number): void {
    this.stats.prefetchWastedPages = (this.stats.prefetchWastedPages ?? 0) + 1;
    this.policy.invalidated(page);
  }

  /** A read-ahead page not installed as one (left out by its home, refetched, or made valid otherwise). */
  forget(page: number): void {
    this.untracked.delete(page);
    this.policy.forget(page);
  }
}
