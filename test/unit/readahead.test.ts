// The adaptive read-ahead policy of src/protocol/readahead.ts, driven as the
// hlrc engine drives it: plan a fault, issue the pages the plan names, report
// touches (useful) and invalidations (wasted).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadAheadPolicy, type ReadAheadOptions } from '../../src/protocol/readahead.js';

const base: ReadAheadOptions = {
  homeCount: 2, windowMax: 64, windowInitial: 16, streamCountMax: 4, historyCountMax: 1024, strideMax: 128, regionShift: 8, touchesObserved: true,
  aheadWindowMax: 0, aheadFetchMax: 8,
};

/** Plans a fault and issues every page the plan names (as an engine with all of them invalid would). */
function fault(policy: ReadAheadPolicy, home: number, page: number): { plan: { count: number; stride: number; sparse: boolean; track: boolean }; extras: number[] } {
  const plan = policy.plan(home, page);
  const extras = plan.pages;
  policy.issued(home, page, extras, plan.track, plan.sampled);
  return { plan: { count: extras.length + 1, stride: extras.length === 0 ? 1 : extras[0]! - page, sparse: plan.sparse, track: plan.track }, extras };
}

test('a sequential scan whose read-ahead is all touched: the window doubles up to its limit', () => {
  const policy = new ReadAheadPolicy(base);
  const windows: number[] = [];
  const tracked: boolean[] = [];
  let page = 0;
  for (let k = 0; k < 6; k++) {
    const { plan, extras } = fault(policy, 1, page);
    windows.push(plan.count);
    tracked.push(plan.track);
    for (const extra of extras) policy.touched(extra);
    page += plan.count;
  }
  assert.deepEqual(windows, [16, 32, 64, 64, 64, 64]);
  // At the limit and used, a stream is tracked every 4th fetch only (each tracked page costs a local fault).
  assert.deepEqual(tracked, [true, true, false, false, false, true]);
  // ... and then only a sample of its window: pages 0, 7, ..., 56 of the 63 (issue 13, Jacobi's start).
  assert.equal(policy.counters.useful, 15 + 31 + 9);
  assert.equal(policy.counters.wasted + policy.counters.skipped, 0);
  assert.equal(policy.trackedCount(), 0);
});

test('a saturated stream\'s tracked window is a sample: touched, the stream stays at the limit; untouched, it is tracked in full again', () => {
  for (const touchSample of [true, false]) {
    const policy = new ReadAheadPolicy(base);
    let page = 0;
    let sampledWindow: number[] = [];
    for (let k = 0; k < 6; k++) {
      const { plan, extras } = fault(policy, 1, page);
      if (k === 5) {
        assert.equal(plan.track, true);
        sampledWindow = extras.filter((extra) => policy.tracks(extra));
      } else {
        for (const extra of extras) policy.touched(extra);
      }
      page += plan.count;
    }
    // 9 of the 63 read-ahead pages, the first included, one every 7.
    assert.deepEqual(sampledWindow, [241, 248, 255, 262, 269, 276, 283, 290, 297]);
    if (touchSample) for (const extra of sampledWindow) policy.touched(extra);
    const next = fault(policy, 1, page);
    if (touchSample) {
      // Judged on the sample: all used, the window stays at the limit, untracked.
      assert.deepEqual(next.plan, { count: 64, stride: 1, sparse: false, track: false });
    } else {
      // None of the sample used: the stream is no longer saturated and its next window is tracked in full.
      assert.equal(next.plan.track, true);
      assert.ok(next.extras.every((extra) => policy.tracks(extra)), 'every page of an unsaturated window is tracked');
    }
  }
});

test('a boundary read every iteration: after one wasted window the fetch brings exactly the pages read last time', () => {
  const policy = new ReadAheadPolicy(base);
  const first = fault(policy, 0, 100);
  assert.equal(first.plan.count, 16);
  policy.touched(101); // the row spans two pages
  for (const extra of first.extras.slice(1)) policy.invalidated(extra); // the neighbour writes the rest
  assert.equal(policy.counters.wasted, 14);
  for (let iteration = 0; iteration < 3; iteration++) {
    const again = fault(policy, 0, 100);
    assert.deepEqual(again.extras, [101], `iteration ${iteration}`);
    policy.touched(101);
  }
  assert.equal(policy.counters.wasted, 14);
});

test('wasted pages shrink the window of new streams in their region; useful ones grow it back', () => {
  const policy = new ReadAheadPolicy(base);
  const first = fault(policy, 0, 0);
  for (const extra of first.extras) policy.invalidated(extra);
  const second = fault(policy, 0, 40); // same region (pages 0..255), no history at 40
  assert.equal(second.plan.count, 1);
  const other = fault(policy, 0, 300); // another region: untouched evidence
  assert.equal(other.plan.count, 16);
  for (const extra of other.extras) policy.touched(extra);
  const third = fault(policy, 1, 60); // another home's region
  assert.equal(third.plan.count, 16);
});

test('pages a stream passes over untouched count against the region; a later touch takes it back', () => {
  const policy = new ReadAheadPolicy(base);
  const first = fault(policy, 0, 0); // 1..15 asked
  policy.touched(8); // 1..7 passed over
  assert.equal(policy.counters.skipped, 7);
  policy.touched(3);
  assert.equal(policy.counters.useful, 2);
  assert.equal(first.extras.length, 15);
});

test('a strided scan: the third fault at the same distance turns the stream strided, and it grows while used', () => {
  const policy = new ReadAheadPolicy({ ...base, windowInitial: 1 });
  assert.equal(fault(policy, 0, 0).plan.count, 1);
  assert.equal(fault(policy, 0, 100).plan.count, 1);
  const strided = fault(policy, 0, 200);
  assert.deepEqual(strided.plan, { count: 2, stride: 100, sparse: false, track: true });
  assert.deepEqual(strided.extras, [300]);
  policy.touched(300);
  const next = fault(policy, 0, 400);
  assert.deepEqual(next.plan, { count: 4, stride: 100, sparse: false, track: true });
  assert.deepEqual(next.extras, [500, 600, 700]);
  assert.equal(policy.counters.strided, 1);
});

test('without touch reports, a continuing stream doubles as before and only invalidations teach', () => {
  const policy = new ReadAheadPolicy({ ...base, touchesObserved: false });
  assert.equal(fault(policy, 0, 0).plan.count, 16);
  assert.equal(fault(policy, 0, 16).plan.count, 32);
  assert.equal(fault(policy, 0, 48).plan.count, 64);
  assert.equal(policy.counters.skipped, 0);
});

test('the window never exceeds the configured limit, and a limit of one turns read-ahead off', () => {
  const off = new ReadAheadPolicy({ ...base, windowMax: 1, windowInitial: 1 });
  for (let page = 0; page < 10; page++) assert.equal(fault(off, 0, page).plan.count, 1);
  const small = new ReadAheadPolicy({ ...base, windowMax: 4, windowInitial: 4 });
  let page = 0;
  for (let k = 0; k < 4; k++) {
    const { plan, extras } = fault(small, 0, page);
    assert.ok(plan.count <= 4);
    for (const extra of extras) small.touched(extra);
    page += plan.count;
  }
});

test('history and region tables stay within their limit', () => {
  const policy = new ReadAheadPolicy({ ...base, historyCountMax: 8 });
  for (let page = 0; page < 10_000; page += 300) {
    const { extras } = fault(policy, 0, page);
    for (const extra of extras) policy.invalidated(extra);
  }
  const inner = policy as unknown as { history: Map<number, number>; regions: Map<number, number> };
  assert.ok(inner.history.size <= 8 && inner.regions.size <= 8);
  assert.equal(policy.trackedCount(), 0);
});

test('rows of a matrix read every 6.25 pages, one or two pages each: after a mostly wasted window the fetch follows the pattern', () => {
  const policy = new ReadAheadPolicy(base);
  // Row r starts at byte 25,600·r + 8,000 and is 1,600 bytes long.
  const rowPages = (row: number): number[] => {
    const first = Math.floor((25_600 * row + 8000) / 4096);
    const last = Math.floor((25_600 * row + 8000 + 1599) / 4096);
    return first === last ? [first] : [first, last];
  };
  const first = fault(policy, 0, rowPages(0)[0]!);
  assert.equal(first.plan.count, 16);
  const valid = new Set([rowPages(0)[0]!, ...first.extras]);
  let fetches = 1;
  let asked = first.extras.length + 1;
  for (let row = 0; row < 25; row++) {
    for (const page of rowPages(row)) {
      if (valid.has(page)) { policy.touched(page); continue; }
      const next = fault(policy, 0, page);
      fetches++;
      asked += next.extras.length + 1;
      valid.add(page);
      for (const extra of next.extras) if (!valid.has(extra)) valid.add(extra);
    }
  }
  const needed = new Set(Array.from({ length: 25 }, (_, row) => rowPages(row)).flat()).size;
  assert.ok(policy.counters.patterned >= 1, 'a pattern was followed');
  // A contiguous window doubling to 64 asks for every page up to the last row (about 156).
  assert.ok(fetches <= 5, `${fetches} fetches`);
  assert.ok(asked <= needed * 2, `${asked} pages asked for ${needed} needed`);
});

/**
 * A thread's reads as the engine serves them, over `pageCount` pages of home 0: a read of a page not yet valid
 * faults (a fetch) and asks for the plan's pages up to the first one already valid or past the array (a sparse
 * plan just leaves those out); `tracking` hands the plan's tracking to `issued`, as the engine does.
 */
function engineReads(policy: ReadAheadPolicy, pageCount: number, tracking = false): { read(page: number): void; readonly fetches: number } {
  const valid = new Set<number>();
  let fetches = 0;
  return {
    read(page: number): void {
      if (valid.has(page)) { policy.touched(page); return; }
      const plan = policy.plan(0, page);
      fetches++;
      const extras: number[] = [];
      for (const extra of plan.pages) {
        if (extra < 0 || extra >= pageCount || valid.has(extra)) { if (plan.sparse) continue; break; }
        extras.push(extra);
      }
      if (tracking) policy.issued(0, page, extras, plan.track, plan.sampled); else policy.issued(0, page, extras);
      valid.add(page);
      for (const extra of extras) valid.add(extra);
    },
    get fetches() { return fetches; },
  };
}

test('a descending scan page by page is a stride of -1: from its second fault its window starts and grows as a stream\'s', () => {
  const policy = new ReadAheadPolicy(base);
  const reads = engineReads(policy, 300);
  for (let page = 299; page >= 0; page--) reads.read(page);
  // One single-page fault (the pages above are beyond the array), then windows of 16, 32, 64, 64, 64, 64 (before
  // session 23: three single-page faults, then 2, 4, 8, 16, ...: 11 fetches).
  assert.equal(policy.counters.strided, 1);
  assert.equal(reads.fetches, 7);
});

test('QuickSort\'s partition: a scan going up and one going down on the same home both stream', () => {
  const policy = new ReadAheadPolicy(base);
  const reads = engineReads(policy, 400);
  for (let k = 0; k < 200; k++) { reads.read(k); reads.read(399 - k); }
  // 14 before session 23 (the scan going down took three faults to start, at a window of 2).
  assert.ok(reads.fetches <= 10, `${reads.fetches} fetches for 400 pages`);
});

test('QuickSort\'s partition after its median-of-three reads: the scan going down is not taken for the middle\'s stream going up', () => {
  // A range of 100 pages: reads of its first, middle and last page, then both ends inward. The middle's fault
  // starts a stream going up whose window covers the pages the scan going down reaches; a fault exactly at the
  // page a stream expects next continues that stream (going down), not the one whose window merely covers it.
  const pageCount = 100;
  const policy = new ReadAheadPolicy({ ...base, windowMax: 256, strideMax: 64 });
  const reads = engineReads(policy, pageCount, true);
  const read = reads.read;
  read(0); read(pageCount >> 1); read(pageCount - 1);
  for (let k = 0; k < pageCount / 2; k++) { read(k); read(pageCount - 1 - k); }
  // Before session 23: 11 (the faults going down below the middle's window continued it, asking for nothing).
  assert.ok(reads.fetches <= 7, `${reads.fetches} fetches for ${pageCount} pages`);
  assert.equal(policy.counters.wasted, 0);
});

/** An engine's view for streaming: which pages are invalid and not being fetched; windows issued ahead are answered when `answer` is true. */
function streamer(policy: ReadAheadPolicy, pageCount: number, answer = true) {
  const fetching = new Set<number>();
  const here = new Set<number>();
  const aheadWindows: number[][] = [];
  const faults: number[] = [];
  const eligible = (_home: number, page: number): boolean => page >= 0 && page < pageCount && !fetching.has(page) && !here.has(page);
  return {
    aheadWindows, faults,
    /** A thread reads `page`: a fault (planned fetch), or the first touch of a tracked read-ahead page. */
    read(home: number, page: number): void {
      if (!fetching.has(page) && !here.has(page)) {
        faults.push(page);
        const { extras } = fault(policy, home, page);
        for (const next of [page, ...extras]) fetching.add(next);
      } else if (policy.tracks(page)) {
        policy.touched(page);
        for (const window of policy.aheadWindows(eligible)) {
          aheadWindows.push(window.pages);
          for (const next of window.pages) fetching.add(next);
          if (answer) assert.equal(policy.replied(window.pages[0]!), true);
        }
      }
      fetching.delete(page);
      here.add(page);
    },
  };
}

const streaming: ReadAheadOptions = { ...base, aheadWindowMax: 1, aheadFetchMax: 8 };

test('streaming: once a stream continues with its window used, each first touch of a window issues the next one, doubling to the limit', () => {
  const policy = new ReadAheadPolicy(streaming);
  const engine = streamer(policy, 400);
  for (let page = 0; page < 400; page++) engine.read(1, page);
  // Two faults (the stream's start, its continuation), then windows ahead of the sweep.
  assert.deepEqual(engine.faults, [0, 16]);
  assert.deepEqual(engine.aheadWindows.map((pages) => [pages[0], pages.length]), [[48, 64], [112, 64], [176, 64], [240, 64], [304, 64], [368, 32]]);
  assert.equal(policy.counters.ahead, 6);
  assert.equal(policy.counters.wasted + policy.counters.skipped, 0);
  assert.equal(policy.trackedCount(), 0, 'every tracked page was touched');
});

test('streaming: a window whose predecessor was mostly untouched stops it until the next fault', () => {
  // Small windows, so the windows issued ahead are tracked (below the limit).
  const policy = new ReadAheadPolicy({ ...streaming, windowInitial: 4 });
  const engine = streamer(policy, 400);
  for (let page = 0; page < 13; page++) engine.read(0, page);
  assert.deepEqual(engine.faults, [0, 4]);
  assert.deepEqual(engine.aheadWindows.map((pages) => [pages[0], pages.length]), [[12, 16], [28, 32]]);
  // The thread skips most of 12..27, then touches 28: the window 28..59 goes on, no further one.
  for (const page of [26, 27, 28, 29]) engine.read(0, page);
  assert.equal(engine.aheadWindows.length, 2);
  assert.ok(policy.counters.skipped >= 10, `${policy.counters.skipped} pages passed over`);
});

test('streaming: a stream issues at most aheadWindowMax windows past the one being read, a node at most aheadFetchMax unanswered', () => {
  // Windows never answered: the per-node limit stops streams of 4 homes at 2 windows in flight.
  const policy = new ReadAheadPolicy({ ...streaming, homeCount: 4, aheadFetchMax: 2 });
  const engine = streamer(policy, 4000, false);
  for (let home = 0; home < 4; home++) for (let page = 0; page < 20; page++) engine.read(home, home * 1000 + page);
  assert.equal(engine.aheadWindows.length, 2, 'two streams issued ahead, the others waited for room');
  // One window past the one being read: touching a window's first page again issues nothing.
  const single = new ReadAheadPolicy(streaming);
  const again = streamer(single, 400);
  for (let page = 0; page < 20; page++) again.read(0, page);
  assert.equal(again.aheadWindows.length, 1);
  single.touched(17);
  assert.deepEqual(single.aheadWindows(() => true), []);
});

test('streaming off (aheadWindowMax 0): nothing is issued ahead', () => {
  const policy = new ReadAheadPolicy(base);
  const engine = streamer(policy, 400);
  for (let page = 0; page < 400; page++) engine.read(1, page);
  assert.equal(engine.aheadWindows.length, 0);
  assert.ok(engine.faults.length > 3);
});

test('the engine\'s read-ahead unit: 64-page windows by default, up to 256 when the runtime asks (QuickSort\'s remote partition, session 13)', async () => {
  const { ReadAhead } = await import('../../src/protocol/readahead.js');
  const { prefetchPageCountDefault, prefetchPageCountMax, prefetchPageCountRuntime } = await import('../../src/constants.js');
  assert.equal(prefetchPageCountDefault, 64);
  assert.equal(prefetchPageCountRuntime, 256);
  assert.ok(prefetchPageCountRuntime <= prefetchPageCountMax);
  /** A sequential scan of `pages` pages, every read-ahead page touched: the size of each fetch. */
  const scan = (options: { prefetchPageCount?: number }, pages: number): number[] => {
    const unit = new ReadAhead(4096, 2, { readFaults: 0, writeFaults: 0, pageFetches: 0, diffsSent: 0, diffsApplied: 0, invalidations: 0 } as never, { ...options, readAheadTracking: true });
    const sizes: number[] = [];
    for (let page = 0; page < pages;) {
      const extras = unit.pick(1, page, () => true);
      sizes.push(extras.length + 1);
      for (const extra of extras) if (unit.arrived(extra, false)) unit.useful(extra);
      page += extras.length + 1;
    }
    return sizes;
  };
  assert.deepEqual(scan({}, 16 + 32 + 3 * 64), [16, 32, 64, 64, 64]);
  assert.deepEqual(scan({ prefetchPageCount: prefetchPageCountRuntime }, 16 + 32 + 64 + 128 + 2 * 256), [16, 32, 64, 128, 256, 256]);
  assert.throws(() => scan({ prefetchPageCount: prefetchPageCountMax + 1 }, 1), /prefetch page count/);
});

test('windows past 64 pages are tracked by sample (every 7th page): a long remote scan pays a local fault for 1 page in 7 of them, not each (session 13)', () => {
  const policy = new ReadAheadPolicy({ ...base, windowMax: 256 });
  const windows: number[] = [];
  const trackedPerWindow: number[] = [];
  let page = 0;
  for (let k = 0; k < 5; k++) {
    const { plan, extras } = fault(policy, 1, page);
    windows.push(plan.count);
    trackedPerWindow.push(policy.trackedCount());
    for (const extra of extras) if (policy.tracks(extra)) policy.touched(extra);
    assert.equal(policy.trackedCount(), 0);
    page += plan.count;
  }
  // The stream still doubles on its sample, up to the limit.
  assert.deepEqual(windows, [16, 32, 64, 128, 256]);
  // 15, 31 and 63 read-ahead pages tracked in full; the 127 of the fourth window by sample; the fifth is saturated (untracked).
  assert.deepEqual(trackedPerWindow, [15, 31, 63, Math.ceil(127 / 7), 0]);
});

test('two faults on adjacent pages, the upper first, start a scan going down at the initial window, not at a window the region learned', () => {
  const policy = new ReadAheadPolicy(base);
  // A scan going up (pages 0-175) whose windows are all used: region 0 learns a window above the initial 16.
  let page = 0;
  for (let k = 0; k < 4; k++) {
    const { plan, extras } = fault(policy, 0, page);
    for (const extra of extras) policy.touched(extra);
    page += plan.count;
  }
  const learned = (policy as unknown as { regions: Map<number, number> }).regions.get(0) ?? 0;
  assert.ok(learned > 16, `the region's window grew (${learned})`);
  // Two small objects on adjacent pages read top first (QuickSort's stack and count), past the scan's window: the
  // upper one's stream going up asks for nothing (the page above is not eligible), the lower one starts a stream
  // going down of 16 pages at most.
  assert.ok(policy.plan(0, 251).pages.length > 0);
  policy.issued(0, 251, []);
  const down = policy.plan(0, 250);
  assert.equal(down.pages[0], 249);
  assert.equal(down.pages.length, 15);
  assert.equal(policy.counters.strided, 1);
});
