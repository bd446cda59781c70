// The typed face of the native MMU addon (native/dsm_mmu.cc).
//
// Process-wide state (the mapping, page states, fault slots) lives in the
// addon; every thread that loads it sees the same region. Manager-side calls
// (protections, twins, diffs, the fault service) belong to a node's main
// thread; app threads use only `init` and `sharedArrayBuffer`.

import type { PageProt } from '../constants.js';
import { DsmError } from '../errors.js';
import { loadAddon } from '../util/addon.js';

// Protections (protNone, protRead, protReadWrite) and the page state bits `pageState` reports
// (pageStateProtMask ...) are in src/constants.ts, the addon's source for them too.
export { protNone, protRead, protReadWrite } from '../constants.js';
export type Prot = PageProt;

export interface PageDiff {
  page: number;
  /** Exact and masked runs of the changed bytes, little-endian (src/protocol/diff-codec.ts, EncodeDiff). */
  diff: Uint8Array;
}

export interface NativeStats {
  readFaults: number;
  writeFaults: number;
  fastWriteFaults: number;
  /** First touches of tracked read-ahead copies served in the signal handler (setTouchAhead), without the manager. */
  fastTouches: number;
  /** Diffs applyDiff wrote through the region's memfd (pwrite, one a run) rather than the manager view. */
  diffPwrites: number;
  /** Slow-path faults that parked on their futex (did not finish within the brief spin). */
  slowWaits: number;
  /** SIGSEGVs outside the app view passed on to the previous handler (e.g. V8's wasm traps). */
  chainedFaults: number;
  /** Twins alive now. */
  twins: number;
  /** Fast-path write faults handed to the manager because the twin limit was reached. */
  twinLimitFaults: number;
  /** Pages a fast write twinned and upgraded ahead of a sequential write stream (no fault of their own). */
  writeAheadPages: number;
  /** 1 once keepMallocHeap told the C allocator (glibc) to keep its heap for fetch buffers, else 0. */
  mallocHeapKept: number;
  /** Pages prefault made resident, and runs it dropped on a full queue (prefaultQueueRunCountMax). */
  prefaultedPages: number;
  prefaultDroppedRuns: number;
  /** Threads asleep on a page whose reply arrived, woken to spin while it is installed (prewake). */
  prewakes: number;
  /** Pages readPage copied through the app view (readable there), not the manager view. */
  appViewCopies: number;
  /** Pages writePage installed through the region's memfd (pwrite), not the manager view. */
  pwriteInstalls: number;
  /** The manager's polls that saw an event come, those that ended without one, and those skipped, every CPU busy (setManagerPoll). */
  managerPollHits: number;
  managerPollMisses: number;
  managerPollSkips: number;
  /** 1 while init's helper thread makes the twin pool's first slots resident (its page faults are the process's), else 0. */
  twinPoolPretouching: number;
}

export interface NativeMmu {
  /**
   * Maps the region (first call in the process); later calls with the same size do nothing.
   * `anonymous` (one node only): private anonymous memory, read-write, with the manager view
   * the app view itself; nothing may protect it (every view would lose access).
   */
  init(regionBytes: number, anonymous?: boolean): void;
  isInitialized(): boolean;
  regionBytes(): number;
  /**
   * A SharedArrayBuffer over [offset, offset + byteLength) of the app view, in the calling thread.
   * One backing store per range process-wide; object identity per thread is cached by the caller
   * (src/threads/setup.ts, WeakRef). A syscall handed such memory on a page the thread may not
   * access (e.g. `fs.writeSync(fd, view)` on an invalid page) fails with EFAULT: the kernel does
   * not raise SIGSEGV for it. Touch the pages from JS first (one access per page) to prefault.
   */
  /** `made`: the range was just allocated by this node (isMadeHere answers true for buffers over its store). */
  sharedArrayBuffer(offset: number, byteLength: number, made?: boolean): SharedArrayBuffer;
  /** Whether `buffer` is over the live store of a range this node allocated (sharedArrayBuffer `made`): this node owns the range, live while the buffer lives. */
  isMadeHere(buffer: SharedArrayBuffer): boolean;
  /** Manager thread only: a SharedArrayBuffer over a range of the manager view (read-write whatever the app view's protection), for a line's shipped Atomics ops. */
  managerBuffer(offset: number, byteLength: number): SharedArrayBuffer;
  /** Where a SharedArrayBuffer lies in the region, or null if it is not dsm memory. */
  rangeOf(buffer: unknown): { offset: number; byteLength: number } | null;
  /** Whether the page holds only zeros (read through the app view where readable, else the manager view). */
  isZeroPage(page: number): boolean;

  protect(firstPage: number, pageCount: number, prot: Prot): void;
  protectPages(pages: Uint32Array, prot: Prot): void;
  /** Lets the SIGSEGV handler twin and upgrade these pages on a write, without the manager. */
  setFastWrite(pages: Uint32Array, enabled: boolean): void;
  /** On these pages the fast path makes no twin (their writes never need a diff). */
  setTwinless(pages: Uint32Array, enabled: boolean): void;
  /** setFastWrite on pages first, first + step, ... (count pages); throws for a range past the region. */
  setFastWriteRange(first: number, count: number, step: number, enabled: boolean): void;
  /** setTwinless on pages first, first + step, ... (count pages); throws for a range past the region. */
  setTwinlessRange(first: number, count: number, step: number, enabled: boolean): void;
  /** The most twins the fast path makes (pages); past it write faults go to the manager. 0: no limit. */
  setTwinLimit(pageCount: number): void;
  /**
   * While paused, no store takes the fast path (whatever the pages' flags):
   * each first store to a read-only page faults to the manager, which may
   * hold the writer (flow control, src/runtime/flow.ts).
   */
  pauseFastWrite(paused: boolean): void;
  /** The most pages one fast write twins ahead of a sequential write stream (capped at writeAheadPageCountMax; 0, the default: off). */
  setWriteAhead(pageCount: number): void;
  /** The most of this node's own (twinless) pages one fast write upgrades ahead of a sequential write stream (capped at writeAheadPageCountMax; 0, the default: off). */
  setOwnWriteAhead(pageCount: number): void;
  /** A memory barrier on every running thread of this process (Linux membarrier, private expedited); false where unavailable. */
  membarrier(): boolean;
  /** Starts the process's membarrier registration on a native thread (it waits out a kernel grace period), so that the first membarrier() need not. */
  prepareMembarrier(): void;
  pageState(page: number): number;
  makeTwin(page: number): void;
  /** Per page with a twin: protect read-only, diff against the twin, drop the twin. */
  flush(pages: Uint32Array): PageDiff[];
  applyDiff(page: number, diff: Uint8Array): void;
  /** Pages the fast path made dirty since the last call. */
  drainDirty(): Uint32Array;
  /**
   * 64 bytes whose first 32-bit word counts the pages the fast path pushed (mod 2^32, counted after each is
   * stored): unchanged since a read taken before a drain, there is nothing to drain.
   */
  dirtyPushCounter(): SharedArrayBuffer;
  /** Marks tracked read-ahead copies just installed (valid, at no access): the handler serves their first touch. */
  setTouchAhead(pages: Uint32Array, wake: boolean): void;
  /** Pages whose read-ahead copy the handler made readable on a touch since the last call, in touch order. */
  drainTouched(): Uint32Array;
  /** As dirtyPushCounter, for the touch ring. */
  touchPushCounter(): SharedArrayBuffer;
  readPage(page: number, into: Uint8Array): void;
  writePage(page: number, from: Uint8Array): void;
  /** Installs the pages from `firstPage` whose copies `from` holds one after another (whole pages), as writePage installs each: a run of first installs is one pwrite. */
  writePages(firstPage: number, from: Uint8Array): void;
  zero(offset: number, byteLength: number): void;
  /** src/runtime/page-pack.ts's packWords natively (the same bytes; no region needed): the packed end in `out`, or -1. */
  packWords(src: Uint8Array, out: Uint8Array, outAt: number): number;
  /** page-pack.ts's unpackWords natively: false (and `out` garbage) where `packed` is malformed for out's length. */
  unpackWords(packed: Uint8Array, out: Uint8Array, zeroed: boolean): boolean;
  /**
   * Tells the C allocator (glibc) to keep buffers of up to a fetch's reply in its heap (mallocMmapThresholdBytes,
   * mallocTrimThresholdBytes); false where it does not take it. A node's manager calls it when there are several nodes.
   */
  keepMallocHeap(): boolean;
  /**
   * Makes pages resident in the manager view (contents unchanged), so that writing them later takes no page
   * fault: called while a fetch's request is out (several nodes only; best effort). `page` now, `rest` (ascending)
   * by a helper thread. The threads parked on `page` also learn that its fetch went to the network: they end
   * their pause spin and sleep (its answer is a round trip away), leaving the CPU to the managers.
   */
  prefault(page: number, rest: Uint32Array): void;
  /**
   * The reply for `page` reached the manager, which installs it and then resumes the threads parked on it: those
   * asleep on their futex are woken now and spin meanwhile, so their wake-up (~15-20 µs on the 2-vCPU VM) overlaps
   * the install instead of following the resume. Threads still spinning are left alone.
   */
  prewake(page: number): void;
  /** Whether writePage installs through the region's memfd (pwrite; several nodes) rather than the manager view (default on). */
  setPwriteInstalls(on: boolean): void;
  /** Gives the pages' memory back to the OS; they read as zero afterwards. */
  release(firstPage: number, pageCount: number): void;

  installHandler(): void;
  /** `records` holds (slot, page, flags) triples; flags: faultFlagWrite, and from faultFlagOffsetShift up the faulting byte's offset in the page. */
  startFaultService(onFaults: (records: Uint32Array) => void): void;
  stopFaultService(): void;
  onBackingStoreFreed(callback: (offset: number, byteLength: number) => void): void;
  /** The freed ranges queued but not yet delivered: flat [offset, byteLength, ...]. */
  drainFreed(): Float64Array;
  /** Called once by each app thread: V8 is told of its dsm buffers' memory, and it collects when asked. */
  registerCollector(): void;
  /** Asks every registered app thread of this process to run a collection soon (minor: a scavenge, else a full one); returns how many were asked. */
  collectEverywhere(minor?: boolean): number;
  /** How many app threads of this process have a collection asked (collectEverywhere) but not run yet. */
  collectsPending(): number;
  /** A collection in the calling thread now (minor: a scavenge, else a full one), without exposing `gc` to any context. */
  collectHere(minor: boolean): void;
  /** Whether a buffer over exactly [offset, +byteLength) lives in this process, or its end is reported and not drained yet. */
  storeOrReport(offset: number, byteLength: number): boolean;
  /** A full collection of the calling (manager) thread's heap, with no flag set (LowMemoryNotification). */
  collectManager(): void;
  /** Whether the program's node options expose `gc` (read at the process's first registerCollector). */
  userExposesGc(): boolean;
  resume(slot: number): void;
  resumeMany(slots: Uint32Array): void;
  /** Microseconds a faulting thread polls its slot (yielding) after its spin, before it sleeps (process-wide; default parkYieldUs). */
  setParkYield(micros: number): void;
  /**
   * The manager's poll before its loop sleeps: µs while an app thread waits for it, µs after a turn with activity
   * (0, 0: never); `gate` is src/util/manager-poll.ts's (threads parked in a doorbell call, activity). Manager only.
   */
  setManagerPoll(pollUs: number, lingerUs: number, gate: SharedArrayBuffer): void;
  stats(): NativeStats;

  /** Nanoseconds per bare fault: signal, mprotect in the handler, return. */
  benchFloor(iterations: number): Float64Array;
  /** Test only: a genuine invalid access outside the region. */
  crashForTest(): never;
}

let loaded: NativeMmu | null = null;

export function loadNativeMmu(): NativeMmu {
  if (loaded !== null) return loaded;
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    throw new DsmError('DSM_ERR_PLATFORM', `dsm needs Linux on x64 or arm64; this is ${process.platform}/${process.arch}`);
  }
  const addon = loadAddon<NativeMmu>('dsm_mmu.node', 'the native addon');
  loaded = addon;
  return addon;
}
