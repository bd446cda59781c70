// The native MMU, exercised through real faults in child processes (the
// SIGSEGV handler is process-wide, so each scenario gets a process of its own).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const fixtures = 'test/native/fixtures';

function runFixture(name: string, flags: string[] = []) {
  const result = spawnSync(process.execPath, [...flags, `${fixtures}/${name}`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.error, undefined, String(result.error));
  return result;
}

function json(name: string, flags: string[] = []) {
  const result = runFixture(name, flags);
  assert.equal(result.status, 0, `${name} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

test('read fault on an invalid page and write fault on a read-only page are served; fast path twins; flush diffs', () => {
  const r = json('read-write.mjs');
  assert.equal(r.readValue, 42, 'the read sees what the manager wrote');
  assert.deepEqual(r.faults, ['3:r', '3:w'], 'one read fault, then one write fault, through the manager');
  assert.equal(r.afterSlow, 2, 'page 3 read-write after the write fault');
  assert.equal(r.fastWrites, 1, 'three stores to page 4 take one fast-path fault');
  assert.deepEqual(r.dirty, [4], 'the fast path reports page 4 dirty');
  assert.equal(r.stateAfterFast & 0x0f, 0x02 | 0x04 | 0x08, 'page 4: read-write, fast write, twin');
  assert.deepEqual(r.diffPages, [3, 4]);
  assert.equal(r.diff3Length, 4 + 1, 'page 3: one changed byte');
  assert.equal(r.diff4Length, (4 + 2) + (4 + 1), 'page 4: runs exact to the byte (100..101 and 4000)');
  assert.equal(r.stateAfterFlush & 0x0b, 0x01, 'page 4 read-only without a twin after flush');
  assert.deepEqual(r.page5, [1, 2, 3, 0, 0xaa], 'the diff applies the changed bytes and nothing else, not even their word-neighbours');
  assert.equal(r.malformed, 'DSM_ERR_FRAME');
  // A run of consecutive pages (one mprotect for the stretch of written ones).
  assert.deepEqual(r.runDiffPages, [6, 7, 8, 9, 12], 'one diff per twinned page, none for the untouched page 10');
  assert.deepEqual(r.runDiffLengths, [5, 5, 5, 5, 5], 'each page: one changed byte');
  assert.deepEqual(r.runStates, [1, 1, 1, 1, 1, 1], 'read-only without a twin after flush (page 10 as it was)');
  assert.equal(r.runRefaults, 1, 'a store after the flush is detected again');
  assert.deepEqual(r.runDirtyAgain, [7]);
  // The push counter: one per pushed page, read as a word; a drain does not move it.
  assert.equal(r.pushedCounterBytes, 64);
  assert.equal(r.pushedMoved, 1, 'page 4 pushed once');
  assert.equal(r.pushedAfterDrain, 1, 'the drain leaves the counter');
  assert.equal(r.pushedInAll, 1 + 5 + 1, 'page 4, the run 6..9 and 12, then 7 again');
});

test('a real segfault outside dsm memory still kills the process by SIGSEGV', () => {
  const result = runFixture('chain.mjs');
  assert.equal(result.stdout, 'crashing\n');
  assert.equal(result.signal, 'SIGSEGV');
});

test('eight threads faulting concurrently on overlapping pages all get correct data', () => {
  const r = json('concurrent.mjs');
  assert.equal(r.wrong, 0);
  assert.equal(r.missing, 0);
  assert.ok(r.faults >= 32, `at least one fault per page (${r.faults})`);
});

test('a syscall on an invalid dsm page fails with EFAULT; after touching the page it works', () => {
  const r = json('efault.mjs');
  assert.equal(r.untouched, 'EFAULT');
  assert.equal(r.touched, 16);
  assert.equal(r.fileLength, 16);
});

test('one backing store per range; rangeOf; the manager hears when a range is no longer held', () => {
  const r = json('identity.mjs', ['--expose-gc']);
  assert.equal(r.byteLength, 100);
  assert.equal(r.sameMemory, true);
  assert.deepEqual(r.range, { offset: 4096, byteLength: 100 });
  assert.equal(r.foreign, null);
  assert.equal(r.seenByWorker, 9);
  assert.equal(r.freedTemporary, true);
  assert.equal(r.freedLive, false);
  assert.deepEqual(r.madeHere, [true, true, true, false, false], 'a made store\'s buffers and copies are made here; others are not');
  assert.equal(r.madeAgainReceived, false, 'a range whose made store died, mapped again from elsewhere, is not');
});

test('a report of a range\'s last buffer, queued before a new buffer maps the range again, is withdrawn: the manager never takes the range for free under a live buffer', () => {
  // Before: the stale report stayed queued, and a buffer sent home came back reading another allocation's zeros
  // (alloc-escape-churn on 3 nodes, under load).
  const r = json('stale-report.mjs', ['--expose-gc']);
  assert.deepEqual(r.reported, ['16384+64'], 'only the range dropped for good');
  assert.equal(r.againLength, 64);
});

test('a manager-view buffer: the manager\'s Atomics and an app thread\'s on one word are atomic together, whatever the app view\'s protection', () => {
  const r = json('manager-atomics.mjs');
  assert.equal(r.total, r.expected, 'no add lost between the two views');
  assert.equal(r.swapped, 42);
  assert.equal(r.seenByApp, 43);
});

test("Node's WebAssembly trap handler still works behind dsm's handler", () => {
  const r = json('wasm.mjs');
  assert.equal(r.inBounds, 0);
  assert.equal(r.trap, 'RuntimeError', 'an out-of-bounds wasm load throws instead of killing the process');
  assert.ok(r.chainedFaults >= 1, `the trap came through dsm's handler and was chained (${r.chainedFaults})`);
  assert.equal(r.readValue, 77, 'dsm faults are still served afterwards');
  assert.equal(r.faults, 1);
});

test('twinless pages: the fast path upgrades them without a twin and flush leaves them read-write; the twin limit sends stores to the manager', () => {
  const r = json('twinless.mjs');
  assert.equal(r.twinlessFast, 4, 'one fast-path fault per twinless page');
  assert.equal(r.twinlessTwins, 0, 'no twin made');
  assert.deepEqual(r.twinlessDirty, [8, 9, 10, 11], 'still reported dirty');
  assert.equal(r.twinlessState & 0x1f, 0x02 | 0x04 | 0x10, 'read-write, fast write, twinless, no twin');
  assert.equal(r.twinlessFlushed, 0, 'nothing to diff');
  assert.equal(r.twinlessStateAfterFlush & 0x03, 0x02, 'flush leaves a twinless page read-write');
  assert.deepEqual(r.rangeStates, [0, 0x14, 0, 0, 0x14, 0x14, 0x14, 0, 0], 'a strided range flags pages 30, 33, 36, 39 (fast write, twinless), not their neighbours');
  assert.deepEqual(r.rangeStatesCleared, [0x14, 0x04, 0x04, 0x14], 'a range clears as it sets (pages 33 and 36)');
  assert.deepEqual(r.wholeRegion, [0x04, 0x04], 'a range of the whole region reaches its first and last page');
  assert.equal(r.rangeOutside, 'DSM_ERR_INTERNAL', 'a range past the region is refused');
  assert.equal(r.limitFaults, 2, 'past the limit of 2 twins, two stores are refused by the fast path');
  assert.deepEqual(r.managerFaults, ['22:w', '23:w'], 'and served by the manager');
  assert.equal(r.page23, 23, 'the refused store lands after the manager serves it');
  assert.deepEqual(r.flushedLimited, [20, 21, 22, 23]);
  assert.equal(r.twinsAtEnd, 0, 'every twin dropped by flush is counted out');
});

test('write-ahead: a sequential write stream faults on a few pages and twins the next ones with them; an unwritten one flushes empty; twinless pages and setWriteAhead(0) stop it', () => {
  const r = json('write-ahead.mjs');
  // 40 pages written in order (20..59): faults at 20, 21, 22 (two written behind it: writeAheadRunPagesMin),
  // 25, 31, 43, 59; each takes as many pages ahead as the run behind it (2, 5, 11, then 15 =
  // writeAheadPageCountMax), the last one page, 60 (61 has no fast write).
  assert.deepEqual(r.stream, { fast: 7, ahead: 34 }, 'seven faults for forty pages, thirty-four pages twinned ahead');
  assert.deepEqual(r.streamDirty, Array.from({ length: 41 }, (_, k) => 20 + k), 'every page written or twinned ahead is reported dirty (60 included)');
  assert.deepEqual(r.streamDiffs, [...Array.from({ length: 40 }, (_, k) => [20 + k, 5]), [60, 0]], 'exact diffs; page 60, twinned ahead and never written, has an empty one');
  assert.deepEqual(r.streamStates, [1, 1, 1, 1], 'read-only without a twin after flush; page 61 (no fast write) never touched');
  assert.deepEqual(r.stopped, { fast: 3, ahead: 1 }, 'a twinless page ends the write-ahead (100, 101, 102 + 103, not 104)');
  assert.equal(r.twinlessState, 0x01 | 0x10, 'the twinless page stays read-only, untouched');
  assert.deepEqual(r.off, { fast: 20, ahead: 0 }, 'setWriteAhead(0): a fault per page');
});

test('pauseFastWrite sends stores to read-only fast-write pages to the manager until it is lifted', () => {
  const r = json('fast-write-paused.mjs');
  assert.deepEqual(r.faults, ['6:w'], 'the paused store faulted to the manager');
  assert.equal(r.fastWhilePaused, 0);
  assert.deepEqual(r.dirtyWhilePaused, []);
  assert.equal(r.fastAfter, 1, 'after the pause the fast path twins page 7');
  assert.deepEqual(r.dirtyAfter, [7]);
});

test('setTouchAhead: the first touch of a marked read-ahead copy is served in the handler (read-only, fast write on), queued on the touch ring, the manager woken with no fault; a store goes on to the fast path; a protect drops the mark', () => {
  const r = json('touch-ahead.mjs');
  assert.equal(r.stateMarked, 0x20, 'marked at no access');
  assert.equal(r.stateWake, 0x20 | 0x40, 'marked to wake the manager');
  assert.deepEqual([r.read20, r.read21, r.read22], [20, 21, 22], 'each access reads the installed bytes');
  assert.equal(r.state20, 0x01 | 0x04, 'page 20: read-only, fast write, mark gone');
  assert.equal(r.state21, 0x02 | 0x04 | 0x08, 'page 21: the store twinned it on the fast path');
  assert.deepEqual(r.touched, [20, 21], 'both touches queued, in order');
  assert.deepEqual(r.touchedAgain, [], 'a drain takes them once');
  assert.equal(r.pushed, 2);
  assert.equal(r.fastTouches, 2);
  assert.equal(r.fastWrites, 1);
  assert.deepEqual(r.dirty, [21]);
  assert.deepEqual(r.faults, ['22:r'], 'only the page protected after its mark faulted to the manager');
  assert.ok(r.wakesWithoutFaults >= 1, 'the touch of page 21 woke the fault service');
});

test('applyDiff writes a diff of a few plain runs through the memfd for a page\'s first diffs, others through the manager view: the runs land, the bytes around them stay', () => {
  const r = json('diff-pwrite.mjs');
  assert.deepEqual(r.counts, [1, 2, 3, 4, 4, 4], 'the first four diffs of a page by pwrite, then the manager view');
  assert.equal(r.afterMany, 4, 'a diff of six runs goes through the manager view');
  assert.ok(r.runsRight, 'every run reads back through the app view');
  assert.ok(r.keptAround, 'bytes next to the runs are untouched');
  assert.ok(r.many);
});

test('the manager thread faulting in the app view ends the process with one line instead of deadlocking', () => {
  const result = runFixture('manager-view.mjs');
  assert.equal(result.stdout, 'touching\n');
  assert.equal(result.status, 70);
  assert.match(result.stderr, /^dsm: DSM_ERR_INTERNAL: the manager thread touched dsm memory through the app view/);
});

test('on one CPU a faulting thread lets its manager serve it: its spin yields, it does not wait the spin out and sleep', (t) => {
  const taskset = spawnSync('taskset', ['-c', '0', 'true']);
  if (taskset.error !== undefined || taskset.status !== 0) {
    t.skip('taskset is not available');
    return;
  }
  const result = spawnSync('taskset', ['-c', '0', process.execPath, `${fixtures}/one-cpu.mjs`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, `one-cpu.mjs failed: ${result.stderr}`);
  const r = JSON.parse(result.stdout.trim().split('\n').pop()!);
  assert.equal(r.faults, 400, 'one read fault per page');
  // Before the spin yielded, 54 to 260 of the 400 slept (9 runs, load 1-11); since, none (a few may, when another process takes the CPU).
  assert.ok(r.slowWaits <= r.faults / 10, `${r.slowWaits} of ${r.faults} faults slept on their futex`);
});

test('prewake wakes a thread asleep on a fetched page to spin for its resume; a resume after its spin ended still wakes it', () => {
  const r = json('prewake.mjs');
  assert.equal(r.reads, 20, 'one read fault per page');
  assert.equal(r.wrong, 0, 'every read sees the page installed before its resume');
  // Each fault slept (its manager answered 20 ms late) and was prewoken once.
  assert.equal(r.slowWaits, 20);
  assert.equal(r.prewakes, 20);
});

test('keepMallocHeap keeps the C heap for fetch buffers (glibc), and stats say so', () => {
  const result = json('malloc-heap.mjs');
  assert.equal(result.before, 0);
  assert.equal(result.kept, result.glibc);
  assert.equal(result.after, result.glibc ? 1 : 0);
});

test('prefault makes a fetch\'s pages resident in the manager view (the first at once, the rest by a helper thread): installing them then takes no page fault, and a page\'s bytes stay', () => {
  const { fresh, now, helped, expected, prefaulted, kept, dropped } = json('prefault.mjs');
  assert.ok(fresh >= 60, `writing 64 fresh pages took ${fresh} faults`);
  assert.ok(now <= 1, `writing the page prefaulted at once took ${now} faults`);
  assert.equal(helped, expected);
  assert.ok(prefaulted <= 4, `writing 64 prefaulted pages took ${prefaulted} faults`);
  assert.equal(kept, true);
  assert.equal(dropped, 0);
});

test('writePage installs a page\'s first copy through the region\'s memfd (pwrite), a later one or any when told not to through the manager view: the app view and readPage see the bytes either way', () => {
  const { fresh, again, off, pwrites, pwritesOff, prefaulted, twinHidden, twinReadable } = json('write-pwrite.mjs');
  // A run header (4 bytes) and its body: one changed byte, written as a small aligned run, never the whole page.
  assert.ok(twinHidden > 0 && twinHidden <= 12, `a twin taken at no access holds the installed bytes (diff of ${twinHidden} bytes)`);
  assert.ok(twinReadable > 0 && twinReadable <= 12, `a twin taken read-only holds the installed bytes (diff of ${twinReadable} bytes)`);
  assert.equal(prefaulted, 0, 'a prefault populates nothing where installs go through pwrite');
  assert.equal(fresh, true, 'fresh pages installed by pwrite read back');
  assert.equal(again, true, 'pages installed again by pwrite read back their new bytes');
  assert.equal(off, true, 'pages installed through the manager view read back');
  assert.equal(pwrites, 64, 'the 64 first installs went through pwrite, the 64 second installs of the same pages through the manager view');
  assert.equal(pwritesOff, 0, 'none with pwrite installs off');
});

test('writePages installs a run of copies from one buffer: the pages never installed in one pwrite, those installed before through the manager view; the bytes read back either way', () => {
  const { mixed, again, off, partial, pastEnd } = json('write-pages.mjs');
  assert.deepEqual(mixed, { ok: true, pwrites: 24 }, 'the 24 pages not installed before went through pwrite (two runs), the 8 installed before through the manager view');
  assert.deepEqual(again, { ok: true, pwrites: 0 }, 'a run installed again goes through the manager view');
  assert.deepEqual(off, { ok: true, pwrites: 0 }, 'with pwrite installs off, all through the manager view');
  assert.equal(partial, 'DSM_ERR_INTERNAL', 'a buffer that is not whole pages is refused');
  assert.equal(pastEnd, 'DSM_ERR_INTERNAL', 'a run past the region\'s end is refused');
});

test('readPage copies a readable page through the app view and a protected one through the manager view: the bytes written either way', () => {
  const { readable, hidden, throughApp, throughAppHidden } = json('read-app-view.mjs');
  assert.equal(readable, true);
  assert.equal(hidden, true);
  assert.equal(throughApp, 64, 'the 64 readable pages were copied through the app view');
  assert.equal(throughAppHidden, 0, 'no page at no access was copied through the app view');
});
