// hlrc home migration (docs/PROTOCOL.md, "Home migration"): which node is a
// page's home as this node knows it, the writers of each own page per barrier
// window, and lending a page to the node that alone writes it (lender side:
// lendWritten, lend; borrower side: onHomeLend), without the page's bytes
// when the borrower's copy is current (two nodes: currentAt). Only the lender and the
// borrower ever know of a lend; every other node keeps asking the static
// (placement) home, which forwards to the borrower. Owned by the hlrc
// coherence (hlrc.ts), which it reaches through LendHost.

import { assert } from '../errors.js';
import { lendLineAcquiresBeforeWindows, lendPageCountMax, lendSoleWriterLineWindowCount, lendSoleWriterLineWindowCountTwoNodes, lendSoleWriterWindowCount, lendSoleWriterWindowCountTwoNodes, pageBytes } from '../constants.js';
import type { EngineContext } from './context.js';
import { protNone, protRead } from './memory.js';
import type { ProtocolMessage } from './messages.js';
import type { PageState } from './page-state.js';

/** What migration needs of the hlrc coherence that owns it. */
export interface LendHost {
  pageState(page: number): PageState;
  /** Page requests waiting at this home for the page's diffs. */
  hasFetchers(page: number): boolean;
  /** An Atomics.wait parked at this home on the page. */
  hasAtomicWaiter(page: number): boolean;
  /** What `node` is known to have applied of this node's own intervals (a lower bound: intervals.appliedBy). */
  appliedOwnBy(node: number): number;
  /** Collects pages dirtied through the native fast path into the open interval. */
  drainDirty(): void;
  /** Pages with a twin in the open interval. */
  readonly twinned: Set<number>;
  /** Whether the open interval wrote the page (after drainDirty). */
  intervalHas(page: number): boolean;
  /** Per own page, 1 while exclusive (see HlrcCoherence.exclusive). */
  readonly exclusive: Uint8Array;
  /**
   * At a borrower: makes the lent pages valid where every diff they need is
   * in (one protection call per run) and exclusive (read-write, no write
   * detection: see HlrcCoherence.homePagesLent), then runs their waiters and
   * answers the page requests their copies now cover.
   */
  homePagesLent(pages: number[]): void;
}

/** writersSinceBarrier: only this node wrote the page in the window. */
const ownWritesOnly = -3;
/** writersSinceBarrier: two other nodes, this node after another one, or another one concurrently with this node. */
const severalWriters = -2;

export class HomeMigration {
  // -- configuration
  /** Lending on (EngineOptions.migrateHomes, never in race mode). */
  private readonly enabled: boolean;

  // -- lends
  /**
   * Per page of this node's static placement: 1 + the node it was lent to, 0 while it is home itself
   * (0 for none: a fresh typed array is zero without touching its memory, a -1 fill would write 4 MiB
   * per GiB of region at every start, a cluster of one included).
   */
  private readonly lent: Int32Array;
  /** Per page: 1 when another node lent it to this one (this node is its home from then on). */
  private readonly borrowed: Uint8Array;
  /** Nodes this node lent pages to (an unmatched atomicCancel is forwarded to them). */
  readonly lendees = new Set<number>();
  /**
   * Per page of this node's own, on a cluster of two: 1 + the other node
   * while its copy holds every byte of this node's master copy except its
   * own writes (a copy was served to it and installed, and since then only
   * its own diffs changed the master), 0 otherwise. A lend to that node then
   * carries no bytes (see lend).
   */
  private readonly currentAt: Int32Array;

  // -- writers per barrier window
  /**
   * Per page of this node's own (not lent), its writers since the last
   * barrier departure here, in the order their writes reached this node:
   * another node's id while it alone wrote the page after this node's own
   * writes (if any), ownWritesOnly while only this node did, severalWriters
   * once two other nodes did or this node wrote after another one. Own
   * writes that all came before another node's count as handed over (the
   * main thread filling a grid before the workers start: Jacobi's bands then
   * move after the first window that wrote them) only if that node had
   * applied them when it wrote (after the first departure; before it, always):
   * writes it made concurrently with this
   * node's (Water's boundary page, written by both workers between the same
   * two barriers) make the page severalWriters, whichever reached this node
   * first. Such a page stays at its static home; lent, its other writer would
   * pay a fetch after every barrier (it cannot be pushed with its own writes
   * missing).
   */
  private readonly writersSinceBarrier = new Map<number, number>();
  /** Per page in writersSinceBarrier as ownWritesOnly: this node's last interval that wrote it in the window. */
  private readonly ownWriteIndex = new Map<number, number>();
  /** Windows ended here (barrier departures, or acquires through atomic lines): 0 during the program's initialization. */
  private windowsEnded = 0;
  /** Barrier departures seen here: once there is one, only barriers end windows (see endLineWindow). */
  private barrierWindowsEnded = 0;
  /** Acquires through atomic lines seen here (the first lendLineAcquiresBeforeWindows end no window). */
  private lineAcquires = 0;
  /** Test hook (EngineOptions.lendConcurrentWrites): concurrent own writes count as handed over too, the rule before session 13. */
  private readonly lendConcurrentWrites: boolean;
  /**
   * Per page of this node's own, the other node that alone wrote it in the
   * last windows that wrote it, and how many such windows in a row (windows
   * without writes do not count): a page moves after
   * lendSoleWriterWindowCount of them (two nodes: lendSoleWriterWindowCountTwoNodes).
   */
  private readonly soleWriters = new Map<number, { node: number; windows: number }>();
  /**
   * Windows at atomic lines on 3 or more nodes (see endLineWindow): per page of this node's own, the last node that
   * wrote it in such a window (this node's own id for its own writes), and the pages that two nodes wrote in turn
   * (`lineShared`, for the run: they are not lent at line windows). At most one entry per page of the region.
   */
  private readonly lineWriter = new Map<number, number>();
  private readonly lineShared = new Set<number>();

  constructor(private readonly ctx: EngineContext, private readonly host: LendHost, migrateHomes: boolean, lendConcurrentWrites = false) {
    // Race mode keeps every page at its one home node (so every write is diffed): no page moves.
    this.enabled = migrateHomes && ctx.homeNode < 0;
    this.lendConcurrentWrites = lendConcurrentWrites;
    this.lent = new Int32Array(ctx.pageCount);
    this.borrowed = new Uint8Array(ctx.pageCount);
    this.currentAt = new Int32Array(ctx.pageCount);
  }

  /**
   * A copy of a page of this node's own was served to `node` as a page reply
   * (the faulting page or an extra one). On two nodes the requester always
   * installs it: the only needs it can have come from this node's own
   * intervals, and the home's version of its own writes is never behind.
   * Pushed copies do not count (a receiver may ignore them).
   */
  noteServed(page: number, node: number): void {
    if (this.ctx.nodeCount === 2 && this.enabled) this.currentAt[page] = node + 1;
  }

  /** The master copy of a page of this node's own changed by `writer`'s writes (this node's own included). */
  private noteChanged(page: number, writer: number): void {
    if (this.currentAt[page] !== writer + 1) this.currentAt[page] = 0;
  }

  /**
   * The home as this node knows it: a page lent to this node is its own; a
   * page this node lent is the borrower's; any other page is at its static
   * (placement) home, which forwards to a borrower.
   */
  homeOf(page: number): number {
    assert(page >= 0 && page < this.ctx.pageCount, 'page within the region');
    if (this.ctx.homeNode >= 0) return this.ctx.homeNode;
    if (this.borrowed[page] === 1) return this.ctx.nodeId;
    const home = this.ctx.placementHomeOf(page);
    if (home === this.ctx.nodeId && this.lent[page]! > 0) return this.lent[page]! - 1;
    return home;
  }

  /** The node this node lent the page to, -1 if none. */
  lentTo(page: number): number { return this.lent[page]! - 1; }

  isBorrowed(page: number): boolean { return this.borrowed[page] === 1; }

  /**
   * This node closed its interval `index`, which wrote a page it is home of (`stored` false: the page was only
   * upgraded ahead of a write stream; its master may have changed, but this node is no writer of it for the lend).
   */
  noteOwnWrite(page: number, index: number, stored = true): void {
    this.noteChanged(page, this.ctx.nodeId);
    if (stored && this.lent[page] === 0 && this.borrowed[page] === 0) {
      const seen = this.writersSinceBarrier.get(page);
      const own = seen === undefined || seen === ownWritesOnly;
      this.writersSinceBarrier.set(page, own ? ownWritesOnly : severalWriters);
      if (own) this.ownWriteIndex.set(page, index);
    }
  }

  /**
   * A copy of a page of this node's own left while the page was exclusive
   * (read-write here with no write detection): this node may have written it
   * in the open interval, `openIndex`, unseen. After the first barrier
   * departure such writes count as this node's own, concurrent with any
   * other node's in the window (none can have applied an interval not yet
   * closed): Water's velocity page at the boundary, exclusive here since the
   * main thread filled it, is written by both workers between the same two
   * barriers, and its first such window named only the other worker's
   * writes. Before the first departure a home's writes are the program's
   * initialization, which the workers applied at their start (Jacobi's
   * grids): they do not count, and such pages may move after one window.
   */
  noteExclusiveShared(page: number, openIndex: number): void {
    if (!this.enabled || this.windowsEnded === 0 || this.lent[page] !== 0 || this.borrowed[page] !== 0) return;
    const seen = this.writersSinceBarrier.get(page);
    if (seen === undefined || seen === ownWritesOnly) {
      this.writersSinceBarrier.set(page, ownWritesOnly);
      this.ownWriteIndex.set(page, openIndex);
    }
  }

  /**
   * A copy of a page of this node's own went with a lock grant (this node
   * manages the lock), or this node's own critical sections wrote it before
   * a grant to another node: the page is data the lock's critical sections
   * pass from node to node (Water's energy total), which grants carry from
   * here. Lent, this node's own next section would fetch it instead. It is
   * not lent after this window, as if several nodes wrote it.
   */
  notePushedWithGrant(page: number): void {
    if (!this.enabled || this.lent[page] !== 0 || this.borrowed[page] !== 0) return;
    this.writersSinceBarrier.set(page, severalWriters);
    this.ownWriteIndex.delete(page);
  }

  /** A non-empty diff of `writer` was applied here, the page's home. */
  noteWrite(page: number, writer: number): void {
    this.noteChanged(page, writer);
    if (this.lent[page] === 0 && this.borrowed[page] === 0) {
      const seen = this.writersSinceBarrier.get(page);
      let next = seen === undefined || seen === ownWritesOnly || seen === writer ? writer : severalWriters;
      if (seen === ownWritesOnly && this.windowsEnded > 0) {
        // Handed over only if the writer had applied this node's writes of the
        // window (happened-before), not concurrent with them. Before the first
        // departure they are the program's initialization, which a worker
        // sees by fetching copies, with no acquire of the interval (Jacobi's
        // fill): handed over.
        const own = this.ownWriteIndex.get(page);
        assert(own !== undefined, 'own writes of the window have their interval');
        if (!this.lendConcurrentWrites && this.host.appliedOwnBy(writer) < own) next = severalWriters;
      }
      this.writersSinceBarrier.set(page, next);
    }
  }

  /**
   * At a barrier's departure: pages of this node's static placement whose
   * only writer since the last departure here was one other node (after
   * this node's own writes, if any: see writersSinceBarrier), in the last
   * lendSoleWriterWindowCount windows that wrote them (on two nodes
   * lendSoleWriterWindowCountTwoNodes), are lent to it.
   * Only pages at rest move: a valid copy, no fault, fetch or Atomics.wait
   * pending on them. A lent page stays lent (it is never lent on, nor given
   * back).
   */
  lendWritten(): void {
    this.barrierWindowsEnded++;
    this.endWindow(this.ctx.nodeCount === 2 ? lendSoleWriterWindowCountTwoNodes : lendSoleWriterWindowCount);
  }

  /**
   * After this node acquired another node's release through an atomic line
   * (docs/PROTOCOL.md "Windows at atomic lines"): in a program that has had
   * no barrier departure here, which synchronizes with Atomics (a barrier
   * or a lock written with them, a counter of work), the window ends here,
   * and a page needs lendSoleWriterLineWindowCount such windows with one sole
   * writer to move. Once a barrier has departed here, barriers alone end
   * windows (the Atomics between them are within one), and the first
   * lendLineAcquiresBeforeWindows acquires end none (a program's start,
   * before a barrier it may yet reach). Pages that hold
   * lines this node directs (`linePage`) stay: a shipped op runs at the
   * directory only while it is the page's home.
   */
  endLineWindow(linePage: (page: number) => boolean): void {
    if (this.barrierWindowsEnded > 0 || ++this.lineAcquires <= lendLineAcquiresBeforeWindows) return;
    if (this.writersSinceBarrier.size === 0) { this.windowsEnded++; return; }
    if (this.ctx.nodeCount >= 3) this.noteLineWriters();
    this.endWindow(this.ctx.nodeCount === 2 ? lendSoleWriterLineWindowCountTwoNodes : lendSoleWriterLineWindowCount, (page) => linePage(page) || this.lineShared.has(page));
  }

  /**
   * Session 20, 3 or more nodes: a page that two nodes write in turn across line windows (this one among them) is
   * data passed from node to node under a lock, not a page one node took over. A line window is as short as one
   * acquire (a shipped op at the directory), so three windows alike are one critical section of a node's, and
   * such a page was lent to whichever node's turn made three: users2/ring-buffer's slots page, spawn-tree-lock's
   * log pages. Lent, the others fetched it from the borrower in every critical section (two hops through this
   * home, the lock held meanwhile) instead of receiving it with this directory's answers (pushSubscribed).
   * On two nodes the borrower's only other reader is this node, and the rule is unchanged.
   */
  private noteLineWriters(): void {
    // The first window holds the program's initialization (the main thread's fill, handed over): not a turn.
    if (this.windowsEnded === 0) return;
    for (const [page, writer] of this.writersSinceBarrier) {
      if (this.lineShared.has(page)) continue;
      // This node wrote it in the window and then another node (its writes handed over), or two other nodes did.
      if (writer === severalWriters || (writer >= 0 && writer !== this.ctx.nodeId && this.ownWriteIndex.has(page))) {
        this.lineShared.add(page);
        this.lineWriter.delete(page);
        continue;
      }
      const identity = writer === ownWritesOnly ? this.ctx.nodeId : writer;
      if (identity < 0) continue;
      const before = this.lineWriter.get(page);
      if (before !== undefined && before !== identity) {
        this.lineShared.add(page);
        this.lineWriter.delete(page);
      } else {
        this.lineWriter.set(page, identity);
      }
    }
  }

  /** Ends the window: lends what `windowsNeeded` windows in a row had one other node alone write (but pages `stays` names). */
  private endWindow(windowsNeeded: number, stays: (page: number) => boolean = () => false): void {
    const writers = [...this.writersSinceBarrier];
    this.writersSinceBarrier.clear();
    this.ownWriteIndex.clear();
    this.windowsEnded++;
    if (!this.enabled || this.ctx.nodeCount === 1) return;
    const byNode = new Map<number, number[]>();
    for (const [page, writer] of writers) {
      const before = this.soleWriters.get(page);
      if (writer < 0 || writer === this.ctx.nodeId) { this.soleWriters.delete(page); continue; }
      const windows = before !== undefined && before.node === writer ? before.windows + 1 : 1;
      this.soleWriters.set(page, { node: writer, windows });
      if (windows < windowsNeeded) continue;
      if (this.ctx.placementHomeOf(page) !== this.ctx.nodeId || this.lent[page] !== 0 || this.borrowed[page] === 1 || stays(page)) continue;
      const state = this.host.pageState(page);
      if (!state.valid || state.fetching || state.waiters.length > 0 || this.host.hasFetchers(page) || state.ownPending !== null) continue;
      if (this.host.hasAtomicWaiter(page)) continue;
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
   * A page whose borrower holds a current copy (currentAt) goes without its
   * bytes (an empty copy), with its versions and applied counts as any.
   */
  private lend(node: number, pages: number[]): void {
    const memory = this.ctx.memory;
    memory.setFastWrite(pages, false);
    memory.protect(pages, protRead);
    // Pages the fast path made dirty stay in the open interval: its closing
    // sends the borrower an empty diff, so its version reaches that interval.
    this.host.drainDirty();
    memory.setTwinless(pages, false);
    const versions: number[][] = [];
    const applied: number[][] = [];
    const bytes: Uint8Array[] = [];
    let omitted = 0;
    for (const page of pages) {
      const state = this.host.pageState(page);
      // The borrower's copy already holds every byte (see currentAt): unless
      // this node wrote the page since in ways its versions do not show yet
      // (in the open interval, or exclusive: stores with no detection).
      const current = this.currentAt[page] === node + 1 && !this.host.intervalHas(page) && this.host.exclusive[page] === 0;
      const copy = new Uint8Array(current ? 0 : pageBytes);
      if (current) omitted++; else memory.readPage(page, copy);
      this.currentAt[page] = 0;
      versions.push([...state.version]);
      applied.push([...state.applied]);
      bytes.push(copy);
      this.host.exclusive[page] = 0;
      this.lent[page] = node + 1;
      this.soleWriters.delete(page);
    }
    memory.setFastWrite(pages, true);
    this.lendees.add(node);
    this.ctx.stats.pagesLent = (this.ctx.stats.pagesLent ?? 0) + pages.length;
    if (omitted > 0) this.ctx.stats.pagesLentWithoutBytes = (this.ctx.stats.pagesLentWithoutBytes ?? 0) + omitted;
    this.ctx.send(node, { type: 'homeLend', pages, versions, applied, bytes });
  }

  /**
   * The borrower becomes the pages' home. Its stores are stopped; its own
   * dirty writes (diffed against their twins) wait in ownPending until its
   * earlier diffs, sent to the lender, come back forwarded, so one writer's
   * diffs apply in order. The copy is unusable until then (homePagesLent).
   */
  onHomeLend(from: number, message: Extract<ProtocolMessage, { type: 'homeLend' }>): void {
    const { pages } = message;
    const memory = this.ctx.memory;
    assert(pages.length <= lendPageCountMax && pages.length === message.bytes.length && pages.length === message.versions.length && pages.length === message.applied.length, 'a lend carries one copy, version and count per page, within its limit');
    for (const page of pages) assert(this.ctx.placementHomeOf(page) === from && this.borrowed[page] === 0, 'pages are lent by their static home, once');
    memory.setFastWrite(pages, false);
    this.host.drainDirty();
    const dirty = pages.filter((page) => this.host.twinned.has(page));
    const own = new Map<number, Uint8Array>();
    for (const record of memory.flush(dirty)) own.set(record.page, record.diff);
    for (const page of dirty) this.host.twinned.delete(page);
    memory.protect(pages, protNone);
    memory.setTwinless(pages, true);
    pages.forEach((page, k) => {
      const state = this.host.pageState(page);
      const bytes = message.bytes[k]!;
      assert(bytes.length === pageBytes || bytes.length === 0, 'a lent page is a whole page, or none when this copy is current');
      // Without bytes: this copy holds the lender's (it was served from there
      // and since then only this node's diffs changed the master), so it covers
      // the lender's versions of every other writer.
      assert(bytes.length > 0 || message.versions[k]!.every((v, n) => n === this.ctx.nodeId || state.version[n]! >= v), 'a lend without bytes goes to a current copy');
      this.borrowed[page] = 1;
      this.host.exclusive[page] = 0;
      // A fetch in flight ends here: the lender answers it without the page.
      state.fetching = false;
      state.valid = false;
      state.version = [...message.versions[k]!];
      state.applied = [...message.applied[k]!];
      const diff = own.get(page);
      state.ownPending = diff !== undefined && diff.length > 0 ? diff : null;
      if (bytes.length > 0) memory.writePage(page, bytes);
    });
    this.host.homePagesLent(pages);
  }
}
