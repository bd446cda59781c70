// The page operations the protocol engine needs from its node's copy of the
// global region. The native MMU addon implements them in production
// (src/memory/native.ts); the simulator's SimMemory (test/sim/sim.ts)
// implements the same semantics in memory.
//
// Diffs are in the format of src/protocol/diff-codec.ts (runs of the bytes
// that changed since the twin was made, exact to the byte), so diffs of
// disjoint writes commute. The engine makes one itself only for an atomic
// store at its home (encodeRun); every other diff comes from flush().

export { protNone, protRead, protReadWrite, type PageProt } from '../constants.js';
import type { PageProt } from '../constants.js';
import type { ShippedOp } from './messages.js';

export type PageList = Uint32Array | number[];

export interface PageDiffRecord {
  page: number;
  diff: Uint8Array;
}

export interface PageMemory {
  /** Sets the app view's protection of each page. */
  protect(pages: PageList, prot: PageProt): void;
  /** Sets the protection of pages [first, first + count) (a cluster of one's whole region at start: no page list). */
  protectRange(first: number, count: number, prot: PageProt): void;
  /**
   * Allows the native write-fault fast path on these pages: a store to a
   * read-only page with this flag twins it and upgrades it to read-write in
   * the signal handler, without asking the engine. The engine learns such
   * pages from drainDirty().
   */
  setFastWrite(pages: PageList, enabled: boolean): void;
  /**
   * Marks pages whose writes never need a diff (hlrc: this node's own pages):
   * the fast path upgrades them and reports them dirty without a twin.
   */
  setTwinless(pages: PageList, enabled: boolean): void;
  /**
   * setFastWrite on the pages first, first + step, ... (count pages), with no
   * page list: an engine's start sets the whole region's flags this way (a
   * 4 GiB region is 2^20 pages; as lists they cost ~50 ms of CPU a node).
   */
  setFastWriteRange(first: number, count: number, step: number, enabled: boolean): void;
  /** setTwinless on the pages first, first + step, ... (count pages): a node's own pages at start. */
  setTwinlessRange(first: number, count: number, step: number, enabled: boolean): void;
  /**
   * The most twins the fast path makes (pages; 0: no limit). Past it a store
   * to a read-only page faults into the engine, which makes room (flushes the
   * oldest dirty pages early). makeTwin itself is not limited.
   */
  setTwinLimit(pageCount: number): void;
  /**
   * Optional: the most of this node's own (twinless) pages a fast write upgrades ahead of a sequential write
   * stream, reported dirty with it (0: none). Such a page joins the open interval as if written: its write notice
   * costs other nodes a refetch of the same bytes at most, and no twin or diff is made.
   */
  setOwnWriteAhead?(pageCount: number): void;
  /**
   * Pages the fast path made dirty since the last call (each at most once per call); an own page upgraded ahead
   * of a write stream (setOwnWriteAhead) comes as its number with dirtyAheadTag set, and dirtyAheadZeroTag too
   * when it held only zeros as it was upgraded.
   */
  drainDirty(): Uint32Array;
  /** Optional: whether the page holds only zeros (any protection). Without it, pages written ahead are always named. */
  isZero?(page: number): boolean;
  /**
   * Optional: marks tracked read-ahead copies just installed (valid, kept at no access so that their first touch
   * is seen). The first touch of one then makes it read-only with the fast write flag (as protect and setFastWrite
   * would) without a fault reaching the engine, which learns of it from drainTouched(); `wake`: the touch also
   * wakes the manager (else the engine learns of it at its next event). Any protect of the page, and turning its
   * fast write path off, drops the mark.
   */
  setTouchAhead?(pages: PageList, wake: boolean): void;
  /** Optional, with setTouchAhead: pages touched that way since the last call (each once per mark). */
  drainTouched?(): Uint32Array;
  /** Copies the page into its twin, unless it has one already (then nothing: the twin it has holds the interval's base). */
  makeTwin(page: number): void;
  /**
   * Per page that has a twin, in this order: protect read-only (so no store
   * can slip in), diff against the twin, drop the twin. Pages without a twin
   * are skipped (no record, protection unchanged: a twinless page written
   * read-write stays read-write).
   */
  flush(pages: PageList): PageDiffRecord[];
  /** Writes a diff's runs into the page through the manager view (any protection). */
  applyDiff(page: number, diff: Uint8Array): void;
  /** Copies the page's bytes out through the manager view (any protection). */
  readPage(page: number, dst: Uint8Array): void;
  /** Overwrites the page's bytes through the manager view (any protection). */
  writePage(page: number, src: Uint8Array): void;
  /**
   * Optional: a buffer of `bytes` bytes for the copies of a page reply this node serves (its contents
   * unspecified): the runtime's reused slabs (src/transport/payload-slabs.ts), given back once the reply has
   * gone. Without it, a new Uint8Array.
   */
  copyBuffer?(bytes: number): Uint8Array;
  /** Optional: overwrites the pages from `firstPage` with `src`, their copies one after another (whole pages), as writePage does each (one call for a reply's run). */
  writePages?(firstPage: number, src: Uint8Array): void;
  /**
   * Optional (atomic lines, issue 12 session 9): runs one Atomics op on the
   * global byte `address` through the manager view (any protection) as a real
   * atomic instruction, so that it is atomic against app threads' native ops
   * on the same bytes. Operands and the result are raw unsigned bits (the
   * result as atomicApply's: the old value, or the stored value for a store);
   * `wrote` says whether the op stored.
   */
  atomic?(address: number, width: 1 | 2 | 4 | 8, op: ShippedOp, operands: string[]): { result: bigint; wrote: boolean };
}
