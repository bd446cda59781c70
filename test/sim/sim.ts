// A seeded simulation of a dsm cluster in one process: per-node simulated
// page memory (protections, twins, fast-write flag, diffs), a simulated
// network and scripted app threads whose loads and stores fault into the
// engines. One PRNG drives every choice, so a seed replays a run exactly.
//
// Network model: each ordered pair of nodes is one FIFO connection (TCP is);
// across connections messages are delivered in any order the seed picks, with
// arbitrary stalls (a connection may not be chosen for many steps).

import { dirtyAheadTag, dirtyAheadZeroTag, pageBytes, writeAheadRunPagesMin } from '../../src/constants.js';
import { createEngine, type Engine, type SyncRequest, type SyncResult } from '../../src/protocol/engine.js';
import { protNone, protRead, protReadWrite, type PageDiffRecord, type PageList, type PageMemory, type PageProt } from '../../src/protocol/memory.js';
import type { ProtocolMessage, ShippedOp } from '../../src/protocol/messages.js';
import { applyDiff, encodeDiff } from '../../src/protocol/diff-codec.js';
import { lineOf, type LineHost, type LineUse } from '../../src/protocol/lines.js';
import { linesSuit } from '../../src/protocol/engine.js';
import { lineQuietBit as quietBit } from '../../src/channel/atomic-lines.js';
import { LockTokenTable, LockTokenView, takeHeldHere, takeTaken } from '../../src/channel/lock-tokens.js';
import { atomicApply } from '../../src/protocol/atomic-ops.js';

/** sfc32: small, fast, seeded; enough for picking schedules. */
export class Prng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9; this.b = 0x243f6a88; this.c = 0xb7e15162; this.d = seed >>> 0;
    for (let k = 0; k < 16; k++) this.next();
  }
  next(): number {
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0;
    let t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    t = (t + this.d) | 0;
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(bound: number): number { return Math.floor(this.next() * bound); }
  chance(p: number): boolean { return this.next() < p; }
}

export class SimMemory implements PageMemory {
  readonly data: Uint8Array;
  readonly prot: Uint8Array;
  readonly fast: Uint8Array;
  readonly twinless: Uint8Array;
  readonly twins = new Map<number, Uint8Array>();
  /** The fast path's twin limit (0: none), as the native addon's. */
  twinLimit = 0;
  /** Stores the fast path refused because the twin limit was reached. */
  twinLimitFaults = 0;
  /** writePages calls (a fetch's run of copies installed in one call). */
  pageRuns = 0;
  /** Stores the fast path took (a write fault served in the signal handler), per page. */
  readonly fastWrites = new Map<number, number>();
  /**
   * The native write-ahead (WriteAhead in native/dsm_mmu.cc; 0: off, as here by
   * default so that pinned counts stay): a fast write that twins a page whose
   * preceding pages are twinned and writable in a row also twins and upgrades
   * up to that many following read-only fast-write pages, at most this many.
   * To the engine they are written pages whose stores left their bytes as
   * they were.
   */
  writeAheadPageCountMax = 0;
  /**
   * The native write-ahead over a node's own pages (WriteAhead in native/dsm_mmu.cc, over own pages): what the engine asked for
   * (setOwnWriteAhead), applied only where the cluster turns it on (`ownWriteAheadOn`, SimOptions.ownWriteAhead;
   * off by default so that pinned counts stay). A fast write to a twinless page whose preceding pages are
   * twinless and writable in a row also upgrades up to that many following read-only fast-write twinless pages
   * and reports them dirty: to the engine, own pages written in the open interval.
   */
  ownWriteAheadOn = false;
  private ownWriteAheadMax = 0;
  /** Pages twinned ahead (no store of their own yet), in all and per page; own pages written ahead count in writeAheadPages only. */
  writeAheadPages = 0;
  readonly writtenAhead = new Map<number, number>();
  /**
   * The native touch fast path (TryFastTouch in native/dsm_mmu.cc; off by default here so that pinned counts
   * stay): a load or store to a page setTouchAhead marked (a tracked read-ahead copy, at no access) makes it
   * read-only with the fast write flag and queues it for drainTouched, with no fault for the engine; for a page
   * marked to wake, `onTouch` then has the engine told later (onTouched), as the fault service's wake-up does.
   */
  touchAheadOn = false;
  readonly touchAheadMarks: Uint8Array;
  /** Touches served that way. */
  fastTouches = 0;
  onTouch: (() => void) | null = null;
  private touchedPages: number[] = [];
  private dirty: number[] = [];
  /**
   * Called at the start of every PageMemory call the engine makes: the
   * concurrent mode runs app-thread steps there, as app threads run while a
   * real node's manager is between two memory operations.
   */
  beforeCall: (() => void) | null = null;
  /** Diffs are made and applied by the engine's codec (src/protocol/diff-codec.ts): the native format, exact to the byte. */
  constructor(readonly pageCount: number) {
    this.data = new Uint8Array(pageCount * pageBytes);
    this.prot = new Uint8Array(pageCount);
    this.fast = new Uint8Array(pageCount);
    this.twinless = new Uint8Array(pageCount);
    this.touchAheadMarks = new Uint8Array(pageCount);
  }
  // Any protection change drops a touch-ahead mark, as the native ProtectRun does.
  protect(pages: PageList, prot: PageProt): void { this.beforeCall?.(); for (const p of pages) { this.prot[p] = prot; this.touchAheadMarks[p] = 0; } }
  protectRange(first: number, count: number, prot: PageProt): void { this.beforeCall?.(); this.prot.fill(prot, first, first + count); this.touchAheadMarks.fill(0, first, first + count); }
  /** Marks: 1 a quiet touch (the engine drains it at its next event), 2 a touch that also wakes the engine. */
  setTouchAhead(pages: PageList, wake: boolean): void {
    if (!this.touchAheadOn) return;
    this.beforeCall?.();
    for (const p of pages) if (this.prot[p] === protNone) this.touchAheadMarks[p] = wake ? 2 : 1;
  }
  drainTouched(): Uint32Array {
    if (!this.touchAheadOn) return new Uint32Array(0);
    this.beforeCall?.();
    const out = Uint32Array.from(this.touchedPages);
    this.touchedPages = [];
    return out;
  }
  /** An app access to a page at no access: served here if it is marked (TryFastTouch). */
  private touch(page: number): void {
    const mark = this.touchAheadMarks[page]!;
    if (this.prot[page] !== protNone || mark === 0) return;
    this.touchAheadMarks[page] = 0;
    this.prot[page] = protRead;
    this.fast[page] = 1;
    this.touchedPages.push(page);
    this.fastTouches++;
    if (mark === 2) this.onTouch?.();
  }
  // The fast path off drops a touch-ahead mark too, as the native SetFastWrite does (the touch would turn it on again).
  setFastWrite(pages: PageList, enabled: boolean): void { this.beforeCall?.(); for (const p of pages) { this.fast[p] = enabled ? 1 : 0; if (!enabled) this.touchAheadMarks[p] = 0; } }
  setTwinless(pages: PageList, enabled: boolean): void { this.beforeCall?.(); for (const p of pages) this.twinless[p] = enabled ? 1 : 0; }
  setFastWriteRange(first: number, count: number, step: number, enabled: boolean): void {
    this.beforeCall?.();
    for (let k = 0; k < count; k++) { this.fast[first + k * step] = enabled ? 1 : 0; if (!enabled) this.touchAheadMarks[first + k * step] = 0; }
  }
  setTwinlessRange(first: number, count: number, step: number, enabled: boolean): void {
    this.beforeCall?.();
    for (let k = 0; k < count; k++) this.twinless[first + k * step] = enabled ? 1 : 0;
  }
  setTwinLimit(pageCount: number): void { this.beforeCall?.(); this.twinLimit = pageCount; }
  setOwnWriteAhead(pageCount: number): void { this.beforeCall?.(); this.ownWriteAheadMax = pageCount; }
  drainDirty(): Uint32Array { this.beforeCall?.(); const out = Uint32Array.from(this.dirty); this.dirty = []; return out; }
  makeTwin(page: number): void {
    this.beforeCall?.();
    if (this.twinless[page] === 1) throw new Error(`sim memory: a twin of twinless page ${page}`);
    // As the native makeTwin: a page with a twin keeps it.
    if (!this.twins.has(page)) this.twin(page);
  }
  private twin(page: number): void {
    if (this.twins.has(page)) throw new Error(`sim memory: page ${page} already has a twin`);
    this.twins.set(page, this.data.slice(page * pageBytes, (page + 1) * pageBytes));
  }
  flush(pages: PageList): PageDiffRecord[] {
    // Atomic per call: the native flush holds each page's busy bit, so a store
    // in between waits in the signal handler.
    this.beforeCall?.();
    const out: PageDiffRecord[] = [];
    for (const page of pages) {
      const twin = this.twins.get(page);
      if (twin === undefined) continue;
      this.prot[page] = protRead;
      out.push({ page, diff: encodeDiff(twin, this.data.subarray(page * pageBytes, (page + 1) * pageBytes)) });
      this.twins.delete(page);
    }
    return out;
  }
  applyDiff(page: number, diff: Uint8Array): void { this.beforeCall?.(); applyDiff(this.data.subarray(page * pageBytes, (page + 1) * pageBytes), diff); }
  readPage(page: number, dst: Uint8Array): void { this.beforeCall?.(); dst.set(this.data.subarray(page * pageBytes, (page + 1) * pageBytes)); }
  isZero(page: number): boolean { this.beforeCall?.(); return this.pageIsZero(page); }
  private pageIsZero(page: number): boolean {
    const bytes = this.data.subarray(page * pageBytes, (page + 1) * pageBytes);
    for (let k = 0; k < bytes.length; k++) if (bytes[k] !== 0) return false;
    return true;
  }
  writePage(page: number, src: Uint8Array): void { this.beforeCall?.(); this.data.set(src, page * pageBytes); }
  writePages(firstPage: number, src: Uint8Array): void {
    this.beforeCall?.();
    if (src.length === 0 || src.length % pageBytes !== 0) throw new Error('writePages writes whole pages');
    this.data.set(src, firstPage * pageBytes);
    this.pageRuns++;
  }
  /** A shipped op through the manager view: one step, so atomic against the node's app threads (whose steps are atomic too). */
  atomic(address: number, width: 1 | 2 | 4 | 8, op: ShippedOp, operands: string[]): { result: bigint; wrote: boolean } {
    this.beforeCall?.();
    this.shippedOps++;
    const old = readLe(this.data, address, width);
    const { result, next } = atomicApply(op, old, operands, width);
    if (next !== null) writeLe(this.data, address, width, next);
    return { result, wrote: next !== null };
  }
  /** Shipped ops run on this node's memory (at a line's directory). */
  shippedOps = 0;

  /** An app store of one byte: what the MMU and the signal handler would do. Returns false on a fault. */
  storeAllowed(page: number): boolean {
    this.touch(page);
    if (this.prot[page] === protReadWrite) return true;
    if (this.prot[page] === protRead && this.fast[page] === 1) {
      if (this.twinless[page] === 1) {
        // upgraded without a twin: its writes need no diff
      } else if (this.twinLimit > 0 && this.twins.size >= this.twinLimit) {
        this.twinLimitFaults++;
        return false;
      } else {
        this.twin(page);
        this.twinAhead(page);
      }
      this.prot[page] = protReadWrite;
      this.dirty.push(page);
      if (this.twinless[page] === 1) this.ownAhead(page);
      this.fastWrites.set(page, (this.fastWrites.get(page) ?? 0) + 1);
      return true;
    }
    return false;
  }
  loadAllowed(page: number): boolean { this.touch(page); return this.prot[page] !== protNone; }

  /** As the native WriteAhead over own pages: own pages after `page` upgraded and reported dirty with it. */
  private ownAhead(page: number): void {
    if (!this.ownWriteAheadOn) return;
    let behind = 0;
    while (behind < this.ownWriteAheadMax && behind < page && this.prot[page - behind - 1] === protReadWrite && this.twinless[page - behind - 1] === 1) behind++;
    if (behind < writeAheadRunPagesMin) return;
    for (let next = page + 1; next <= page + behind && next < this.pageCount; next++) {
      if (this.prot[next] !== protRead || this.fast[next] !== 1 || this.twinless[next] !== 1 || this.twins.has(next)) break;
      this.prot[next] = protReadWrite;
      // As the native handler: a page that holds only zeros as it is upgraded is tagged so (closeInterval may leave it out).
      this.dirty.push((next | dirtyAheadTag | (this.pageIsZero(next) ? dirtyAheadZeroTag : 0)) >>> 0);
      this.writeAheadPages++;
    }
  }

  /** As the native WriteAhead over other homes' pages: pages after `page` twinned, upgraded and reported dirty with it. */
  private twinAhead(page: number): void {
    let behind = 0;
    while (behind < this.writeAheadPageCountMax && behind < page && this.prot[page - behind - 1] === protReadWrite && this.twins.has(page - behind - 1)) behind++;
    if (behind < writeAheadRunPagesMin) return;
    for (let next = page + 1; next <= page + behind && next < this.pageCount; next++) {
      if (this.prot[next] !== protRead || this.fast[next] !== 1 || this.twinless[next] === 1 || this.twins.has(next)) break;
      if (this.twinLimit > 0 && this.twins.size >= this.twinLimit) break;
      this.twin(next);
      this.prot[next] = protReadWrite;
      this.dirty.push(next);
      this.writeAheadPages++;
      this.writtenAhead.set(next, (this.writtenAhead.get(next) ?? 0) + 1);
    }
  }
}

// ------------------------------------------------------------ app threads

export type ThreadOp =
  | { op: 'load'; address: number }
  | { op: 'store'; address: number; value: number }
  | { op: 'sync'; request: SyncRequest };

/** A thread program: yields operations, receives load values and sync results. */
export type ThreadProgram = Generator<ThreadOp, void, number | SyncResult | undefined>;

interface SimThread {
  index: number;
  node: number;
  program: ThreadProgram;
  current: ThreadOp | null;
  input: number | SyncResult | undefined;
  blocked: boolean;
  done: boolean;
  /** Blocked for a line or a page fault inside an atomic op: the op runs again when resumed. */
  retry?: boolean;
  /** Blocked in a lineOp: resumed with null the op runs again (natively), with a result it is done (shipped). */
  shipping?: boolean;
  /** The line of the thread's last op when the layer shipped it and the thread ran no sync op since (src/threads/atomics.ts: the state word sAfterShip). */
  afterShipLine?: number;
  /** The ref of the thread's last sync request (answered or not): one per request, as the runtime's (syncRefBase). */
  syncRef?: number;
}

/**
 * Sync requests get refs from here up, one per request, as in the runtime
 * (src/runtime/engine-host.ts: fault slots below, a new ref for each sync
 * request), with the thread's index as Engine.onSync's `thread`. Faults keep
 * the thread's index as their ref. (With the index as every request's ref, a
 * layer that kept per-thread state by ref passed here and failed in real runs:
 * the line layer's quiet answers, session 12.)
 */
const syncRefBase = 1 << 20;

/**
 * A node's line ownership table as app threads see it (src/channel/atomic-lines.ts
 * in production). A thread step is atomic here, so a thread is inside an
 * op only while its lineWait is on its way to the engine (pinned); besides,
 * a revoke is refused at random with `refuseChance`, as when a real thread is
 * in the middle of an op, and the layer must ask again later.
 */
export class SimLineTable implements LineHost {
  readonly held = new Set<number>();
  /** Lines with a read copy here (session 34): loads run natively, as on a held line. */
  readonly readable = new Set<number>();
  readonly used = new Map<number, LineUse>();
  readonly pins = new Map<number, number>();
  revokes = 0;
  refusals = 0;
  pinChecks = 0;
  shares = 0;
  /**
   * `registry`: every node's table, to check the lines' one-writer rule at each grant: a node gets a line only
   * while no other node holds it or has a read copy, and a read copy only while no other node holds the line
   * (a line a node stops using counts as used there until its revoke succeeded).
   */
  constructor(private readonly prng: Prng, private readonly refuseChance: number, private readonly node = 0, private readonly registry: SimLineTable[] = [], private readonly slotCount = 0) {}
  /** With a slot count (the real table's size, atomicLineSlotCount): its room, and a full table throws as the real one does. */
  get lineRoom(): (() => { free: number; slots: number }) | undefined {
    return this.slotCount === 0 ? undefined : () => ({ free: this.slotCount - this.inUse.size, slots: this.slotCount });
  }
  private checkRoom(line: number): void {
    if (this.slotCount > 0 && !this.inUse.has(line) && this.inUse.size >= this.slotCount) throw new Error(`sim lines: a table of ${this.slotCount} lines is full`);
  }
  /** Lines this node may still touch (held, or readable, or revoked with a thread still inside: not settled). */
  private readonly inUse = new Map<number, 'write' | 'read'>();
  private checkAlone(line: number, mode: 'write' | 'read'): void {
    for (const other of this.registry) {
      if (other === this) continue;
      const theirs = other.inUse.get(line);
      if (theirs === 'write' || (theirs === 'read' && mode === 'write')) {
        throw new Error(`sim lines: line ${line} ${mode === 'write' ? 'granted' : 'shared'} to node ${this.node} while node ${other.node} ${theirs === 'write' ? 'holds it' : 'has a read copy'}`);
      }
    }
  }
  /** Per held line, its quiet mask (LineHost.lineGranted): a notify on a word whose bit is set is answered 0 by the thread. */
  readonly quiet = new Map<number, number>();
  /** Per line, its waiters between their check and their registration (the real table's count in the quiet word). */
  readonly checks = new Map<number, number>();
  lineGranted(line: number, quietMask?: number): void {
    if (this.held.has(line)) throw new Error(`sim lines: line ${line} granted twice`);
    this.checkAlone(line, 'write');
    this.checkRoom(line);
    // None: the tenure goes on after a refused revoke, its mask and checks too.
    if (quietMask !== undefined) {
      if ((this.checks.get(line) ?? 0) !== 0) throw new Error(`sim lines: line ${line} granted anew with a waiter in its check`);
      this.quiet.set(line, quietMask);
    }
    this.held.add(line);
    this.readable.add(line);
    this.inUse.set(line, 'write');
  }
  lineQuietClear(line: number, address: number): void {
    const mask = this.quiet.get(line);
    if (mask !== undefined) this.quiet.set(line, mask & ~quietBit(address));
  }
  lineCheckDone(line: number): void {
    const checks = this.checks.get(line) ?? 0;
    if (checks <= 0) throw new Error(`sim lines: a wait registered on line ${line} with no check counted`);
    if (checks === 1) this.checks.delete(line); else this.checks.set(line, checks - 1);
  }
  lineRequiet(line: number, bits: number): boolean {
    if ((this.checks.get(line) ?? 0) > 0) return false;
    this.quiet.set(line, (this.quiet.get(line) ?? 0) | bits);
    return true;
  }
  /** Whether a notify at `address` on the held `line` is answered in the thread (its word's quiet bit is set). */
  quietHere(line: number, address: number): boolean {
    return this.held.has(line) && ((this.quiet.get(line) ?? 0) & quietBit(address)) !== 0;
  }
  lineShared(line: number): void {
    if (this.held.has(line) || this.readable.has(line)) throw new Error(`sim lines: line ${line} shared while here`);
    this.checkAlone(line, 'read');
    this.checkRoom(line);
    this.readable.add(line);
    this.inUse.set(line, 'read');
    this.shares++;
  }
  lineRevoke(line: number): boolean {
    this.held.delete(line);
    this.readable.delete(line);
    if ((this.pins.get(line) ?? 0) > 0 || (this.refuseChance > 0 && this.prng.chance(this.refuseChance))) { this.refusals++; return false; }
    this.revokes++;
    this.inUse.delete(line);
    return true;
  }
  lineDowngrade(line: number): boolean {
    this.held.delete(line);
    if ((this.pins.get(line) ?? 0) > 0 || (this.refuseChance > 0 && this.prng.chance(this.refuseChance))) { this.refusals++; return false; }
    this.revokes++;
    this.inUse.set(line, 'read');
    return true;
  }
  lineUnshare(line: number): boolean {
    if (this.held.has(line)) throw new Error(`sim lines: line ${line} unshared while held`);
    this.readable.delete(line);
    if ((this.pins.get(line) ?? 0) > 0 || (this.refuseChance > 0 && this.prng.chance(this.refuseChance))) { this.refusals++; return false; }
    this.inUse.delete(line);
    return true;
  }
  lineUsed(line: number): LineUse {
    const used = this.used.get(line) ?? 0;
    this.used.delete(line);
    return used;
  }
  linePinned(line: number): boolean {
    // Each check is a process-wide membarrier in a real node: counted, so tests can see which paths pay one.
    this.pinChecks++;
    return (this.pins.get(line) ?? 0) > 0;
  }
  /** A read marks the line read (1); each write counts (2 after one write, 3 after two, ...), as the real table does. */
  use(line: number, use: 1 | 2): void {
    const current = this.used.get(line) ?? 0;
    this.used.set(line, use === 2 ? Math.max(2, current + 1) : Math.max(1, current));
  }
  pin(line: number, delta: 1 | -1): void {
    const count = (this.pins.get(line) ?? 0) + delta;
    if (count < 0) throw new Error('sim lines: unpin without a pin');
    if (count === 0) this.pins.delete(line); else this.pins.set(line, count);
  }
}

export function readLe(bytes: Uint8Array, address: number, width: number): bigint {
  let value = 0n;
  for (let k = width - 1; k >= 0; k--) value = (value << 8n) | BigInt(bytes[address + k]!);
  return value;
}

export function writeLe(bytes: Uint8Array, address: number, width: number, value: bigint): void {
  let rest = value;
  for (let k = 0; k < width; k++) { bytes[address + k] = Number(rest & 0xffn); rest >>= 8n; }
}

/**
 * A simulated thread runs one op per step and 16 steps make a millisecond, so
 * ops are slow against messages: a line written once per transfer time is hot here.
 */
export const simLineHotWritesPerTransfer = 1;

export interface ClusterOptions {
  seed: number;
  nodeCount: number;
  pageCount: number;
  protocol?: string;
  placement?: 'roundRobin' | 'block';
  stepCountMax?: number;
  /** Probability a step delivers a message rather than running a thread. */
  deliverBias?: number;
  /** hlrc: log size that starts a vcQuery round (tiny values exercise reclamation). */
  logReclaimCount?: number;
  prefetchPageCount?: number;
  /** hlrc: read-ahead pages stay at no access until touched, counted useful or wasted. */
  readAheadTracking?: boolean;
  /** hlrc: streaming read-ahead (engine default: on). */
  readAheadStreaming?: boolean;
  /** hlrc: twin limit in pages (--twin-bytes); tiny values make the oldest dirty pages flush early all the time. */
  twinPageCountMax?: number;
  /** The fast path's write-ahead (SimMemory.writeAheadPageCountMax; default 0: off). */
  writeAheadPageCountMax?: number;
  /** The fast path's write-ahead over a node's own pages, as far as the engine asks (SimMemory.ownWriteAheadOn; default off). */
  ownWriteAhead?: boolean;
  /** Read-ahead copies' first touches served by the "signal handler" (SimMemory.touchAheadOn; default off). */
  touchAhead?: boolean;
  /**
   * Concurrent app threads: at every PageMemory call an engine makes, up to
   * this many steps of that node's runnable threads run first (loads and
   * stores against the current protections; a fault or a sync request is
   * queued and reaches the engine later, as on a real node). 0: threads run
   * only between engine events.
   */
  concurrentStepsMax?: number;
  /** Invariant check run after every step (throws on a violation). */
  afterStep?: (cluster: SimCluster) => void;
  /** The engine's test hook: an Atomics.wait joined a waiter list at `node` (EngineHost.waitRegistered). */
  onWaitRegistered?: (node: number, address: number) => void;
  /**
   * Probability that a step is an early flush of a few dirty pages on a random
   * node (engine.flushDirty), as the runtime's flow control does ahead of a
   * large release and in the background. 0 (default): no flush and no draw,
   * so seeds keep their schedules.
   */
  earlyFlushChance?: number;
  /**
   * hlrc: probability that a step is a look for stale copies on a random node
   * (engine.refreshStale, src/protocol/stale.ts), as a node does after a while
   * with no synchronization: dirty pages' diffs go home, and copies their
   * homes find out of date are dropped when the answers come. 0 (default): no
   * look and no draw, so seeds keep their schedules.
   */
  staleRefreshChance?: number;
  /** hlrc: the engines' own looks for stale copies after this many (simulated) ms with no synchronization (EngineOptions.staleRefreshMs; default 0: none). */
  staleRefreshMs?: number;
  /**
   * hlrc: a close with at least this many twinned pages defers their diffs
   * (EngineOptions.deferDiffPageCountMin). The cluster then streams them as
   * the runtime's flow control does: a step with probability
   * deferredFlushChance sends a few of one node's, and every deferred diff is
   * sent before the cluster would stand still (nothing else can move) or end.
   */
  deferDiffPageCountMin?: number;
  /** With deferDiffPageCountMin: the probability of a streaming step (default 0.1). */
  deferredFlushChance?: number;
  /** hlrc: home migration (engine default: on). */
  migrateHomes?: boolean;
  /** hlrc: lend pages their home wrote concurrently too (EngineOptions.lendConcurrentWrites; tests of the lend itself). */
  lendConcurrentWrites?: boolean;
  /**
   * hlrc, several nodes: Atomics by line ownership (src/protocol/lines.ts).
   * 'atomic' sync requests of thread programs then run as app threads run
   * them: natively on the node's memory while its line table holds the line.
   */
  atomicLines?: boolean;
  /** With atomicLines: writes per transfer time that keep a wanted line (default simLineHotWritesPerTransfer). */
  lineHotWritesPerTransfer?: number;
  /** With atomicLines: probability that a revoke finds a thread inside an op (asked again at a later tick). */
  lineRefuseChance?: number;
  /** With atomicLines: whether nodes ship ops on lines they gave up idle (default true), and the sample that moves them again. */
  lineShipOps?: boolean;
  /** Whether loads take read copies of lines (default true). */
  lineShareLoads?: boolean;
  /** Whether a load in a scan asks for copies of its page's next lines too (default true). */
  lineShareAhead?: boolean;
  /** With atomicLines: whether grants hand threads quiet masks (default true). */
  lineNotifyInThread?: boolean;
  /** A node's line table's slots (default: unbounded): with it, the layer makes room (src/protocol/lines.ts makeRoom). */
  lineSlotCount?: number;
  /** With atomicLines: whether line messages push pages (a grant its line's page, a release the pages its receiver is subscribed to; default true). */
  linePagePush?: boolean;
  lineShipSampleOps?: number;
  /** With atomicLines: idle give-ups that keep a line moving after it was used while shipped (default atomicLineShipBackoffMax). */
  lineShipBackoffMax?: number;
  /** With atomicLines: whether a node that ships ops on a line ships its waits on it too (default true). */
  lineShipWaits?: boolean;
  /**
   * With atomicLines: the `workMs` every shipped op says its thread ran since its previous one on the line
   * (as the runtime's threads report it; default none: the layer measures the sample's span itself).
   */
  lineShipWorkMs?: number;
  /** With atomicLines: whether a holder's notify gives the line back with it (default true). */
  lineNotifyRelease?: boolean;
  /** With atomicLines: whether a parking wait gives the line back with its lineWait (default true). */
  lineWaitRelease?: boolean;
  /** With atomicLines: whether grants list the line's waiters for the holder to count its notifies (default true). */
  lineCountedNotify?: boolean;
  /**
   * Lock tokens at their node (issue 12.3): each node has a real lock token
   * table (src/channel/lock-tokens.ts) of this many slots, and threads lock and
   * unlock in it as app threads do, asking their engine only when it says so.
   * Small tables make slots re-keyed and locks find no room.
   */
  lockTokenSlots?: number;
  /** The keep window of contended lock tokens (EngineOptions.lockKeep). */
  lockKeep?: boolean;
  /** Two-node barrier rounds peer to peer (EngineOptions.peerBarriers, default on). */
  peerBarriers?: boolean;
  /** Token pushes ahead of a request (EngineOptions.lockPush, default on). */
  lockPush?: boolean;
}

/**
 * The simulated network: one FIFO queue per ordered pair of nodes (a
 * connection); across queues the caller's seed picks what is delivered next.
 * Messages are copied (structuredClone stands in for encoding: no object is
 * shared between nodes). Used by SimCluster and by host-sim.ts's hosts.
 */
export class SimLinks<Message> {
  private readonly queues: Message[][];

  constructor(readonly nodeCount: number) {
    this.queues = Array.from({ length: nodeCount * nodeCount }, () => []);
  }

  push(from: number, to: number, message: Message): void {
    this.queues[from * this.nodeCount + to]!.push(structuredClone(message));
  }

  /** The links with a message queued, in link order (link = from * nodeCount + to). */
  busy(): number[] {
    const busy: number[] = [];
    for (let k = 0; k < this.queues.length; k++) if (this.queues[k]!.length > 0) busy.push(k);
    return busy;
  }

  /** The oldest message of a busy link. */
  take(link: number): { from: number; to: number; message: Message } {
    return { from: Math.floor(link / this.nodeCount), to: link % this.nodeCount, message: this.queues[link]!.shift()! };
  }
}

export class SimCluster {
  readonly prng: Prng;
  readonly memories: SimMemory[] = [];
  readonly engines: Engine[] = [];
  /** Per node, with atomicLines: its line table. */
  readonly lineTables: SimLineTable[] = [];
  /** Atomics ops whose thread got a shipped op's result. */
  shippedResults = 0;
  /** Notifies a thread made right after an op the layer shipped on the same line (afterOp). */
  notifiesAfterShip = 0;
  /** Notifies answered in the thread (a quiet word of a held line: session 36). */
  notifiesInThread = 0;
  /** Atomics run natively on held lines. */
  nativeAtomics = 0;
  /** Per node, with lockTokenSlots: its lock token table. */
  readonly lockTokenTables: LockTokenTable[] = [];
  /** Lock and unlock operations done in a table with no request to the engine. */
  tokenFastOps = 0;
  private readonly tokenViews = new Map<number, LockTokenView>();
  readonly threads: SimThread[] = [];
  /** Sync request refs not answered yet -> their thread (see syncRefBase). */
  private readonly syncRefThreads = new Map<number, number>();
  private nextSyncRef = syncRefBase;
  private readonly links: SimLinks<ProtocolMessage>;
  /** Faults and sync requests made by threads running inside an engine call, not yet handed to the engine. */
  private readonly deferred: Array<() => void> = [];
  private nested = false;
  readonly messageCounts = new Map<string, number>();
  /** Every message sent, in order (for tests that inspect single operations). */
  readonly sent: Array<{ from: number; to: number; message: ProtocolMessage }> = [];
  messageCount = 0;
  /** Pages carried by pageReply messages (the faulting page and read-ahead pages). */
  pagesMoved = 0;
  nowMs = 0;
  stepCount = 0;

  /** Whether Atomics run by line ownership: asked for, and a run of this protocol and size would use them (sc never does). */
  private readonly linesOn: boolean;

  constructor(readonly options: ClusterOptions) {
    this.prng = new Prng(options.seed);
    const n = options.nodeCount;
    this.linesOn = options.atomicLines === true && linesSuit({ protocol: options.protocol ?? 'hlrc', nodeCount: n });
    this.links = new SimLinks<ProtocolMessage>(n);
    for (let node = 0; node < n; node++) {
      const memory = new SimMemory(options.pageCount);
      memory.writeAheadPageCountMax = options.writeAheadPageCountMax ?? 0;
      memory.ownWriteAheadOn = options.ownWriteAhead === true;
      memory.touchAheadOn = options.touchAhead === true;
      // The wake-up: the engine hears of the touches at some later step.
      memory.onTouch = () => { this.deferred.push(() => this.engines[node]!.onTouched()); };
      this.memories.push(memory);
      const lines = new SimLineTable(this.prng, options.lineRefuseChance ?? 0, node, this.lineTables, options.lineSlotCount ?? 0);
      this.lineTables.push(lines);
      // Thread ids of the simulation start at 0: the owner field is the id + 1 (node base -1).
      const lockTokens = options.lockTokenSlots === undefined ? null : new LockTokenTable(-1, options.lockTokenSlots);
      if (lockTokens !== null) this.lockTokenTables.push(lockTokens);
      this.engines.push(createEngine({
        nodeId: node, nodeCount: n, pageCount: options.pageCount, protocol: options.protocol ?? 'hlrc',
        placement: options.placement ?? 'roundRobin', memory,
        ...(options.logReclaimCount === undefined ? {} : { logReclaimCount: options.logReclaimCount }),
        ...(options.prefetchPageCount === undefined ? {} : { prefetchPageCount: options.prefetchPageCount }),
        ...(options.readAheadTracking === undefined ? {} : { readAheadTracking: options.readAheadTracking }),
        ...(options.readAheadStreaming === undefined ? {} : { readAheadStreaming: options.readAheadStreaming }),
        ...(options.twinPageCountMax === undefined ? {} : { twinPageCountMax: options.twinPageCountMax }),
        ...(options.migrateHomes === undefined ? {} : { migrateHomes: options.migrateHomes }),
        ...(options.lendConcurrentWrites === undefined ? {} : { lendConcurrentWrites: options.lendConcurrentWrites }),
        ...(options.deferDiffPageCountMin === undefined ? {} : { deferDiffPageCountMin: options.deferDiffPageCountMin }),
        ...(options.staleRefreshMs === undefined ? {} : { staleRefreshMs: options.staleRefreshMs }),
        send: (to, message) => this.send(node, to, message),
        host: {
          resume: (ref, result) => this.resume(ref, result),
          ...(options.onWaitRegistered === undefined ? {} : { waitRegistered: (address: number) => options.onWaitRegistered!(node, address) }),
        },
        clock: () => this.nowMs,
        ...(this.linesOn ? {
          lines, lineHotWritesPerTransfer: options.lineHotWritesPerTransfer ?? simLineHotWritesPerTransfer,
          ...(options.lineShipOps === undefined ? {} : { lineShipOps: options.lineShipOps }),
          ...(options.lineShareLoads === undefined ? {} : { lineShareLoads: options.lineShareLoads }),
          ...(options.lineShareAhead === undefined ? {} : { lineShareAhead: options.lineShareAhead }),
          ...(options.lineNotifyInThread === undefined ? {} : { lineNotifyInThread: options.lineNotifyInThread }),
          ...(options.linePagePush === undefined ? {} : { linePagePush: options.linePagePush }),
          ...(options.lineShipSampleOps === undefined ? {} : { lineShipSampleOps: options.lineShipSampleOps }),
          ...(options.lineShipBackoffMax === undefined ? {} : { lineShipBackoffMax: options.lineShipBackoffMax }),
          ...(options.lineShipWaits === undefined ? {} : { lineShipWaits: options.lineShipWaits }),
          ...(options.lineNotifyRelease === undefined ? {} : { lineNotifyRelease: options.lineNotifyRelease }),
          ...(options.lineWaitRelease === undefined ? {} : { lineWaitRelease: options.lineWaitRelease }),
          ...(options.lineCountedNotify === undefined ? {} : { lineCountedNotify: options.lineCountedNotify }),
        } : {}),
        ...(lockTokens === null ? {} : { lockTokens }),
        ...(options.lockKeep === undefined ? {} : { lockKeep: options.lockKeep }),
        ...(options.peerBarriers === undefined ? {} : { peerBarriers: options.peerBarriers }),
        ...(options.lockPush === undefined ? {} : { lockPush: options.lockPush }),
      }));
    }
    for (const engine of this.engines) engine.start();
    if ((options.concurrentStepsMax ?? 0) > 0) {
      this.memories.forEach((memory, node) => { memory.beforeCall = () => this.interleave(node); });
    }
  }

  /** Runs a few steps of this node's threads inside an engine call. */
  private interleave(node: number): void {
    if (this.nested) return;
    this.nested = true;
    try {
      const steps = this.prng.int((this.options.concurrentStepsMax ?? 0) + 1);
      for (let k = 0; k < steps; k++) {
        const runnable = this.threads.filter((t) => t.node === node && !t.done && !t.blocked);
        if (runnable.length === 0) return;
        this.stepThread(runnable[this.prng.int(runnable.length)]!);
      }
    } finally {
      this.nested = false;
    }
  }

  /** Hands a fault or sync request to the engine now, or queues it when a thread runs inside an engine call. */
  private toEngine(call: () => void): void {
    if (this.nested) this.deferred.push(call); else call();
  }

  addThread(node: number, make: (threadIndex: number) => ThreadProgram): number {
    const index = this.threads.length;
    this.threads.push({ index, node, program: make(index), current: null, input: undefined, blocked: false, done: false });
    return index;
  }

  /** The thread's worker is terminated while parked in a sync request: it never runs again. */
  kill(threadIndex: number): boolean {
    const thread = this.threads[threadIndex]!;
    thread.done = true;
    // Parked in a sync request: that request's ref; else (a fault) the thread's index.
    const parkedRef = thread.syncRef !== undefined && this.syncRefThreads.has(thread.syncRef) ? thread.syncRef : threadIndex;
    return this.engines[thread.node]!.cancel(parkedRef);
  }

  private send(from: number, to: number, message: ProtocolMessage): void {
    this.links.push(from, to, message);
    this.messageCount++;
    if (this.sent.length < 100_000) this.sent.push({ from, to, message });
    this.messageCounts.set(message.type, (this.messageCounts.get(message.type) ?? 0) + 1);
    if (message.type === 'pageReply') this.pagesMoved += 1 + message.extraPages.length;
  }

  /** A new ref for a sync request of `thread` (see syncRefBase). */
  private newSyncRef(thread: SimThread): number {
    const ref = this.nextSyncRef++;
    this.syncRefThreads.set(ref, thread.index);
    thread.syncRef = ref;
    return ref;
  }

  private resume(ref: number, result: unknown): void {
    const threadIndex = ref >= syncRefBase ? this.syncRefThreads.get(ref) : ref;
    if (ref >= syncRefBase) this.syncRefThreads.delete(ref);
    const thread = threadIndex === undefined ? undefined : this.threads[threadIndex];
    if (thread === undefined || !thread.blocked) throw new Error(`resume of thread ${ref}, which is not blocked`);
    if (thread.done) throw new Error(`resume of thread ${ref}, which was killed`);
    thread.blocked = false;
    if (thread.shipping === true) {
      thread.shipping = false;
      const value = (result as SyncResult).ok ? (result as { value: string | null }).value : null;
      if (value === null) return; // the line is here now: the op runs again natively
      this.shippedResults++;
      const shipped = thread.current;
      // (Not after a shipped wait: the app side marks only a shipped read-modify-write, store or load.)
      if (shipped?.op === 'sync' && shipped.request.kind === 'atomic' && shipped.request.op !== 'wait') thread.afterShipLine = lineOf(shipped.request.address);
      thread.input = { ok: true, value };
      thread.current = null;
      return;
    }
    if (thread.retry === true) { thread.retry = false; return; }
    if (thread.current?.op === 'sync') { thread.input = result as SyncResult; thread.current = null; }
    // A load or store that faulted retries its access when it runs again.
  }

  /** Runs one operation of a thread. */
  private stepThread(thread: SimThread): void {
    if (thread.current === null) {
      const next = thread.program.next(thread.input);
      thread.input = undefined;
      if (next.done === true) { thread.done = true; return; }
      thread.current = next.value;
    }
    const op = thread.current;
    const memory = this.memories[thread.node]!;
    const engine = this.engines[thread.node]!;
    switch (op.op) {
      case 'load': {
        const page = Math.floor(op.address / pageBytes);
        if (!memory.loadAllowed(page)) { thread.blocked = true; this.toEngine(() => engine.onFault(thread.index, page, false)); return; }
        thread.input = readU32(memory.data, op.address);
        thread.current = null;
        return;
      }
      case 'store': {
        const page = Math.floor(op.address / pageBytes);
        if (!memory.storeAllowed(page)) { thread.blocked = true; this.toEngine(() => engine.onFault(thread.index, page, true)); return; }
        writeU32(memory.data, op.address, op.value);
        thread.current = null;
        return;
      }
      case 'sync': {
        // As the app side does: any op but the shipped one clears it (the notify right after reads it first).
        const afterShipLine = thread.afterShipLine ?? -1;
        thread.afterShipLine = -1;
        if (op.request.kind === 'atomic' && this.linesOn) {
          this.nativeAtomic(thread, op.request, afterShipLine);
          return;
        }
        if ((op.request.kind === 'lock' || op.request.kind === 'unlock') && this.options.lockTokenSlots !== undefined && this.tokenOp(thread, op.request)) return;
        thread.blocked = true;
        this.toEngine(() => engine.onSync(this.newSyncRef(thread), op.request, thread.index));
        return;
      }
    }
  }

  /** A lock or unlock as src/sync/mutex.ts makes it with a lock token table: true if done in the table. */
  private tokenOp(thread: SimThread, request: Extract<SyncRequest, { kind: 'lock' | 'unlock' }>): boolean {
    const viewKey = thread.node * 1_000_000 + request.threadId;
    let view = this.tokenViews.get(viewKey);
    if (view === undefined) {
      view = new LockTokenView(this.lockTokenTables[thread.node]!.buffer, request.threadId + 1);
      this.tokenViews.set(viewKey, view);
    }
    if (request.kind === 'unlock') {
      if (!view.give(request.lockId)) return false;
    } else {
      // A thread step is atomic here: no re-key can come between its key check and its compareExchange.
      const taken = view.take(request.lockId, () => { throw new Error('sim lock tokens: a slot re-keyed inside a step'); });
      if (taken === takeHeldHere && request.tryOnly === true) {
        thread.input = { ok: true, value: 'busy' };
        thread.current = null;
        return true;
      }
      if (taken !== takeTaken) return false;
    }
    this.tokenFastOps++;
    thread.input = { ok: true, value: null };
    thread.current = null;
    return true;
  }

  /** An Atomics op as an app thread runs it with atomic lines: natively while the node holds the line. */
  private nativeAtomic(thread: SimThread, request: Extract<SyncRequest, { kind: 'atomic' }>, afterShipLine: number): void {
    const engine = this.engines[thread.node]!;
    const memory = this.memories[thread.node]!;
    const table = this.lineTables[thread.node]!;
    const { address, width, op } = request;
    const line = lineOf(address);
    if (op === 'notify') {
      if (table.quietHere(line, address)) {
        // As the app side does (src/threads/atomics.ts): a quiet word wakes nobody, answered with no call.
        this.notifiesInThread++;
        thread.input = { ok: true, value: '0' };
        thread.current = null;
        return;
      }
      thread.blocked = true;
      const count = Number(request.operands[0] ?? '-1');
      const afterOp = afterShipLine === line;
      if (afterOp) this.notifiesAfterShip++;
      this.toEngine(() => engine.onSync(this.newSyncRef(thread), { kind: 'lineNotify', address, count, ...(afterOp ? { afterOp } : {}) }, thread.index));
      return;
    }
    if (!(op === 'load' ? table.readable.has(line) : table.held.has(line))) {
      thread.blocked = true;
      if (op === 'wait') {
        // As the app side does: the wait itself, which the layer may ship to the directory; else
        // (null) the line is here and the wait runs again, checking the value with the line held here.
        thread.shipping = true;
        const expected = BigInt.asUintN(width * 8, BigInt(request.operands[0] ?? '0')).toString();
        if (width !== 4 && width !== 8) throw new Error('a wait is on an Int32Array or a BigInt64Array');
        this.toEngine(() => engine.onSync(this.newSyncRef(thread), { kind: 'lineWaitShip', address, width, expected, timeoutMs: request.timeoutMs }, thread.index));
      } else {
        // As the app side does: the op itself, which the layer may ship to the directory.
        thread.shipping = true;
        const workMs = this.options.lineShipWorkMs;
        this.toEngine(() => engine.onSync(this.newSyncRef(thread), { kind: 'lineOp', op, address, width, operands: request.operands, ...(workMs === undefined ? {} : { workMs }) }, thread.index));
      }
      return;
    }
    const page = Math.floor(address / pageBytes);
    const writes = op !== 'load' && op !== 'wait';
    if (!(writes ? memory.storeAllowed(page) : memory.loadAllowed(page))) {
      thread.blocked = true;
      thread.retry = true;
      this.toEngine(() => engine.onFault(thread.index, page, writes));
      return;
    }
    this.nativeAtomics++;
    const old = readLe(memory.data, address, width);
    table.use(line, op === 'load' || op === 'wait' || (op === 'compareExchange' && old !== BigInt.asUintN(width * 8, BigInt(request.operands[0] ?? '0'))) ? 1 : 2);
    if (op === 'wait') {
      // As the app side does: the word's quiet bit cleared before the check (the same atomic step here).
      table.lineQuietClear(line, address);
      const expected = BigInt.asUintN(width * 8, BigInt(request.operands[0] ?? '0'));
      if (old !== expected || request.timeoutMs === 0) {
        thread.input = { ok: true, value: old !== expected ? 'not-equal' : 'timed-out' };
        thread.current = null;
        return;
      }
      // Pinned from the check until the engine has the wait: the line cannot go meanwhile; counted in its check
      // (the quiet word) until the engine has it too.
      table.pin(line, 1);
      table.checks.set(line, (table.checks.get(line) ?? 0) + 1);
      thread.blocked = true;
      this.toEngine(() => {
        // The wait parks its thread: its pin goes before the engine has it, as the runtime clears it (the lineWait leaves inside the call).
        table.pin(line, -1);
        engine.onSync(this.newSyncRef(thread), { kind: 'lineWait', address, timeoutMs: request.timeoutMs, parks: true }, thread.index);
      });
      return;
    }
    const { result, next } = atomicApply(op, old, request.operands, width);
    if (next !== null) writeLe(memory.data, address, width, next);
    thread.input = { ok: true, value: result.toString() };
    thread.current = null;
  }

  private deliverOne(linkIndex: number): void {
    const { from, to, message } = this.links.take(linkIndex);
    this.engines[to]!.onMessage(from, message);
  }

  /** Runs until every thread is done. Throws on a stuck cluster or the step limit. */
  run(): void {
    const stepCountMax = this.options.stepCountMax ?? 2_000_000;
    const deliverBias = this.options.deliverBias ?? 0.5;
    let idleSteps = 0;
    const defers = (this.options.deferDiffPageCountMin ?? 0) > 0;
    const deferredFlushChance = this.options.deferredFlushChance ?? 0.1;
    // A node with deferred diffs not sent yet, or -1 (only looked at when deferring: other seeds keep their schedules).
    const deferring = (): number => defers ? this.engines.findIndex((engine) => engine.deferredPageCount() > 0) : -1;
    while (!this.threads.every((t) => t.done) || this.deferred.length > 0 || deferring() >= 0) {
      this.stepCount++;
      if (this.stepCount > stepCountMax) throw new Error(`step limit ${stepCountMax} reached`);
      if (this.stepCount % 16 === 0) {
        this.nowMs += 1;
        for (const engine of this.engines) engine.onTick(this.nowMs);
      }
      const runnable = this.threads.filter((t) => !t.done && !t.blocked);
      const links = this.links.busy();
      if (defers) {
        // Streaming deferred diffs: at random steps, and always before the cluster would stand still.
        const node = deferring();
        const idle = runnable.length === 0 && links.length === 0 && this.deferred.length === 0;
        if (node >= 0 && (idle || this.prng.chance(deferredFlushChance))) {
          this.engines[node]!.flushDeferred(1 + this.prng.int(4));
          this.options.afterStep?.(this);
          continue;
        }
      }
      if (this.deferred.length > 0 && (this.prng.chance(0.5) || (runnable.length === 0 && links.length === 0))) {
        this.deferred.shift()!();
        this.options.afterStep?.(this);
        continue;
      }
      if (runnable.length === 0 && links.length === 0) {
        // Only timeouts can make progress now.
        idleSteps++;
        if (idleSteps > 100_000) throw new Error('cluster is stuck: every thread blocked, no message in flight');
        continue;
      }
      idleSteps = 0;
      const earlyFlushChance = this.options.earlyFlushChance ?? 0;
      if (earlyFlushChance > 0 && this.prng.chance(earlyFlushChance)) {
        this.engines[this.prng.int(this.engines.length)]!.flushDirty(1 + this.prng.int(4));
        this.options.afterStep?.(this);
        continue;
      }
      const staleRefreshChance = this.options.staleRefreshChance ?? 0;
      if (staleRefreshChance > 0 && this.prng.chance(staleRefreshChance)) {
        this.engines[this.prng.int(this.engines.length)]!.refreshStale?.();
        this.options.afterStep?.(this);
        continue;
      }
      const deliver = links.length > 0 && (runnable.length === 0 || this.prng.chance(deliverBias));
      if (deliver) this.deliverOne(links[this.prng.int(links.length)]!);
      else this.stepThread(runnable[this.prng.int(runnable.length)]!);
      this.options.afterStep?.(this);
    }
  }

  /** Delivers every queued message (threads untouched). */
  drain(): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const busy = this.links.busy();
      if (busy.length === 0) return;
      this.deliverOne(busy[0]!);
    }
    throw new Error('drain did not settle');
  }
}

export function readU32(bytes: Uint8Array, address: number): number {
  return (bytes[address]! | (bytes[address + 1]! << 8) | (bytes[address + 2]! << 16) | (bytes[address + 3]! << 24)) >>> 0;
}

export function writeU32(bytes: Uint8Array, address: number, value: number): void {
  bytes[address] = value & 0xff; bytes[address + 1] = (value >>> 8) & 0xff;
  bytes[address + 2] = (value >>> 16) & 0xff; bytes[address + 3] = (value >>> 24) & 0xff;
}

/** sc: at any instant a page is writable on at most one node, and then readable nowhere else. */
export function checkSingleWriter(cluster: SimCluster): void {
  const pageCount = cluster.options.pageCount;
  for (let page = 0; page < pageCount; page++) {
    let writers = 0;
    let readers = 0;
    for (const memory of cluster.memories) {
      if (memory.prot[page] === protReadWrite) writers++;
      else if (memory.prot[page] === protRead) readers++;
    }
    if (writers > 1 || (writers === 1 && readers > 0)) {
      throw new Error(`sc invariant: page ${page} has ${writers} writers and ${readers} readers at step ${cluster.stepCount}`);
    }
  }
}
