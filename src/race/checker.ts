// The race checker: fed every node's closed intervals (vector timestamp,
// exact written bytes, pages read), it reports each pair of concurrent
// intervals of different threads that wrote the same bytes (write-write,
// byte-precise) or where one read a page the other wrote (read-write, page
// precision). Perković & Keleher's on-line detection over lazy release
// consistency (OSDI '96), fed by dsm's diffs. Pure: no I/O, no clock.
//
// Interval (n, i) happens before (m, j) iff vc(m, j)[n] >= i: node m had
// acquired interval i of n when interval j began (race mode closes an
// interval at every acquire, so a timestamp holds for all of its writes).

import { assert } from '../errors.js';
import { pageBytes, raceReportCountMax, raceThreadPairCountMax, raceWindowRecordCountMax } from '../constants.js';
import { overlapRuns } from './diff.js';
import type { AllocationRecord, IntervalWrites, RaceEntry, RaceKind, RaceSide, SyncPoint } from './record.js';

/** An interval's identity and bounds: its record without the pages and bytes it wrote. */
type Meta = Omit<IntervalWrites, 'pages' | 'runs' | 'reads' | 'readOffsets'>;

/** A write (runs: the bytes) or a read (runs null; readOffset: the byte whose read faulted). */
interface Access { meta: Meta; runs: number[] | null; readOffset: number; seq?: number }

export interface RaceCheckerOptions {
  /** Distinct races kept (default raceReportCountMax); past it they are counted only. */
  reportCountMax?: number;
  /** Per-page records kept for comparison (default raceWindowRecordCountMax). */
  windowRecordCountMax?: number;
  /** List page-precision read-write overlaps (read-write-page) as races too; else only count them. */
  pageReads?: boolean;
}

export interface RaceSummary {
  /** Every racing pair of accesses found (each distinct race counts all of its occurrences). */
  raceCount: number;
  /** Distinct races (listed or not); a lower bound when distinctCountExact is false (past 16 times the listing limit they are not told apart). */
  distinctCount: number;
  distinctCountExact: boolean;
  /** Distinct races beyond the report's limit: counted, not listed. */
  unlistedCount: number;
  intervalCount: number;
  /** Records dropped from the comparison window at its limit (races with them went unseen). */
  droppedRecordCount: number;
  /** Page-precision read-write overlaps (read-write-page) found: listed as races only with pageReads. */
  pageOverlapCount: number;
  /** Nodes that ran more than one thread: races between those threads are not seen. */
  sharedNodes: Array<{ node: number; threads: number[] }>;
  races: RaceEntry[];
  allocations: AllocationRecord[];
}

export class RaceChecker {
  private readonly reportCountMax: number;
  private readonly windowRecordCountMax: number;
  private readonly pageReads: boolean;
  private pageOverlapCount = 0;
  /** Per page: intervals that wrote it (with their runs) and that read it (runs null), oldest first. */
  private readonly writes = new Map<number, Access[]>();
  private readonly reads = new Map<number, Access[]>();
  private recordCount = 0;
  /** Insertion order of kept accesses (the window drops the oldest first). */
  private seqNext = 0;
  private droppedRecordCount = 0;
  private intervalCount = 0;
  private raceCount = 0;
  private distinctCount = 0;
  private unlistedCount = 0;
  private distinctCountExact = true;
  private readonly races = new Map<string, RaceEntry>();
  /** Distinct race keys past the listing limit (so they are counted as distinct once): bounded by the same limit times 16. */
  private readonly unlistedKeys = new Set<string>();
  private readonly allocations: AllocationRecord[] = [];
  /** The latest timestamp of each node: a lower bound of its later intervals' (pruning). */
  private readonly latestVc = new Map<number, number[]>();
  private readonly nodes = new Set<number>();
  /** Per node, the threads seen in its records: more than one means races between them go unseen. */
  private readonly threadsByNode = new Map<number, Set<number>>();

  constructor(options: RaceCheckerOptions = {}) {
    this.reportCountMax = options.reportCountMax ?? raceReportCountMax;
    this.windowRecordCountMax = options.windowRecordCountMax ?? raceWindowRecordCountMax;
    this.pageReads = options.pageReads ?? false;
    assert(this.reportCountMax >= 1 && this.windowRecordCountMax >= 16, 'race checker limits are positive');
  }

  /** Declares the nodes that run app threads (their later intervals must be compared with what is kept). */
  expectNodes(nodes: Iterable<number>): void {
    for (const node of nodes) this.nodes.add(node);
  }

  addAllocation(record: AllocationRecord): void {
    this.allocations.push(record);
  }

  addInterval(record: IntervalWrites): void {
    assert(record.pages.length === record.runs.length, 'one run list per written page');
    assert(record.vc[record.node] === record.index, 'an interval\'s timestamp names itself');
    this.intervalCount++;
    this.nodes.add(record.node);
    this.latestVc.set(record.node, record.vc);
    let threads = this.threadsByNode.get(record.node);
    if (threads === undefined) { threads = new Set(); this.threadsByNode.set(record.node, threads); }
    for (const thread of record.threads) if (threads.size < 64) threads.add(thread);
    const meta: Meta = { node: record.node, index: record.index, vc: record.vc, threads: record.threads, begin: record.begin, end: record.end };
    for (let k = 0; k < record.pages.length; k++) {
      const page = record.pages[k]!;
      const runs = record.runs[k]!;
      if (runs.length === 0) continue;
      for (const other of this.writes.get(page) ?? []) {
        if (!this.concurrent(other.meta, meta)) continue;
        const overlap = overlapRuns(other.runs!, runs);
        for (let r = 0; r < overlap.length; r += 2) {
          this.found('write-write', page * pageBytes + overlap[r]!, overlap[r + 1]!, other.meta, meta);
        }
      }
      for (const other of this.reads.get(page) ?? []) {
        if (this.concurrent(other.meta, meta)) this.readWrite(page, other.readOffset, runs, other.meta, meta);
      }
      this.keep(this.writes, page, { meta, runs, readOffset: -1 });
    }
    const written = new Set(record.pages);
    for (let k = 0; k < record.reads.length; k++) {
      const page = record.reads[k]!;
      const readOffset = record.readOffsets[k]!;
      // A page this interval also wrote: its own write-write check covers the bytes it changed.
      if (written.has(page)) continue;
      for (const other of this.writes.get(page) ?? []) {
        if (this.concurrent(other.meta, meta)) this.readWrite(page, readOffset, other.runs!, meta, other.meta);
      }
      this.keep(this.reads, page, { meta, runs: null, readOffset });
    }
    if (this.intervalCount % 256 === 0) this.prune();
    if (this.recordCount > this.windowRecordCountMax) {
      this.prune();
      if (this.recordCount > this.windowRecordCountMax) this.dropOldest();
    }
  }

  /**
   * A read of `page` (whose first read faulted at `readOffset`) in an
   * interval concurrent with a write of `runs` to it: a certain race when
   * the writer wrote that byte, else an overlap at page precision.
   */
  private readWrite(page: number, readOffset: number, runs: number[], reader: Meta, writer: Meta): void {
    for (let r = 0; r < runs.length; r += 2) {
      if (readOffset >= runs[r]! && readOffset < runs[r]! + runs[r + 1]!) {
        this.found('read-write', page * pageBytes + readOffset, 1, reader, writer);
        return;
      }
    }
    this.pageOverlapCount++;
    if (this.pageReads) this.found('read-write-page', page * pageBytes, pageBytes, reader, writer);
  }

  summary(): RaceSummary {
    const races = [...this.races.values()].sort((a, b) => a.start - b.start || a.kind.localeCompare(b.kind));
    return {
      raceCount: this.raceCount, distinctCount: this.distinctCount, distinctCountExact: this.distinctCountExact, unlistedCount: this.unlistedCount,
      intervalCount: this.intervalCount, droppedRecordCount: this.droppedRecordCount, pageOverlapCount: this.pageOverlapCount,
      sharedNodes: [...this.threadsByNode].filter(([, threads]) => threads.size > 1).map(([node, threads]) => ({ node, threads: [...threads].sort((a, b) => a - b) })),
      races, allocations: [...this.allocations].sort((a, b) => a.address - b.address),
    };
  }

  /** Records kept for comparison (bounded-memory checks). */
  windowSize(): number { return this.recordCount; }

  private concurrent(a: Meta, b: Meta): boolean {
    if (a.node === b.node) return false; // one node's intervals are ordered (one thread per node in race mode)
    return (b.vc[a.node] ?? 0) < a.index && (a.vc[b.node] ?? 0) < b.index;
  }

  private keep(table: Map<number, Access[]>, page: number, access: Access): void {
    let list = table.get(page);
    if (list === undefined) { list = []; table.set(page, list); }
    // A node's newer access supersedes an older one of the same node that it
    // covers (the same bytes written, the same byte read): an interval
    // concurrent with the older one is concurrent with the newer one too,
    // unless its record arrived late (FastTrack's last-access epochs, per
    // node). This keeps a page written under a lock at one record per node.
    for (let k = list.length - 1; k >= 0; k--) {
      const old = list[k]!;
      if (old.meta.node !== access.meta.node) continue;
      const covered = access.runs === null ? old.readOffset === access.readOffset : covers(access.runs, old.runs!);
      if (!covered) continue;
      this.recordCount -= weightOf(old);
      list.splice(k, 1);
    }
    access.seq = this.seqNext++;
    list.push(access);
    this.recordCount += weightOf(access);
  }

  private found(kind: RaceKind, start: number, length: number, a: Meta, b: Meta): void {
    this.raceCount++;
    // read-write: first is the reader, second the writer.
    const [first, second] = kind === 'write-write' ? sideOrder(a, b) : [a, b];
    // One race per place in memory: an 8-byte word (write-write), the byte
    // read (read-write) or a page (read-write-page). A racing loop reports once, with a count, whatever bytes
    // each round changed and whichever intervals of the threads met there;
    // the first pair of intervals is the example, further pairs of program
    // places are listed (a few).
    const key = `${kind}|${kind === 'read-write-page' ? Math.floor(start / pageBytes) : kind === 'read-write' ? start : Math.floor(start / 8)}`;
    const entry = this.races.get(key);
    if (entry !== undefined) {
      entry.count++;
      entry.start = Math.min(entry.start, start);
      entry.end = Math.max(entry.end, start + length);
      if (entry.threadPairs.length < raceThreadPairCountMax
        && !entry.threadPairs.some(([x, y]) => sameThreads(x, first.threads) && sameThreads(y, second.threads))) {
        entry.threadPairs.push([first.threads, second.threads]);
      }
      const places = `${placeKey(first)}|${placeKey(second)}`;
      if (entry.otherPlaces.length < raceThreadPairCountMax && places !== `${placeKey(entry.first)}|${placeKey(entry.second)}`
        && !entry.otherPlaces.some((pair) => `${sideKey(pair[0])}|${sideKey(pair[1])}` === places)) {
        entry.otherPlaces.push([side(first), side(second)]);
      }
      return;
    }
    if (this.races.size >= this.reportCountMax) {
      if (this.unlistedKeys.has(key)) return;
      if (this.unlistedKeys.size >= this.reportCountMax * 16) { this.distinctCountExact = false; return; }
      this.unlistedKeys.add(key);
      this.distinctCount++;
      this.unlistedCount++;
      return;
    }
    this.distinctCount++;
    this.races.set(key, {
      kind, start, end: start + length, first: side(first), second: side(second), count: 1,
      threadPairs: [[first.threads, second.threads]], otherPlaces: [],
    });
  }

  /**
   * Drops records no later interval can race with: (n, i) is ordered before
   * every later interval of node m once m's latest timestamp covers it, for
   * every other node m that runs app threads.
   */
  private prune(): void {
    const isDone = (meta: Meta): boolean => {
      for (const node of this.nodes) {
        if (node === meta.node) continue;
        const vc = this.latestVc.get(node);
        if (vc === undefined || (vc[meta.node] ?? 0) < meta.index) return false;
      }
      return true;
    };
    for (const table of [this.writes, this.reads]) {
      for (const [page, list] of table) {
        const kept = list.filter((access) => !isDone(access.meta));
        for (const access of list) if (isDone(access.meta)) this.recordCount -= weightOf(access);
        if (kept.length === 0) table.delete(page); else table.set(page, kept);
      }
    }
  }

  /** At the window's limit: drops the oldest quarter of the kept accesses (by insertion order). */
  private dropOldest(): void {
    let seqMin = this.seqNext;
    for (const table of [this.writes, this.reads]) for (const list of table.values()) if (list.length > 0) seqMin = Math.min(seqMin, list[0]!.seq!);
    const cutoff = seqMin + Math.max(1, Math.floor((this.seqNext - seqMin) / 4));
    for (const table of [this.writes, this.reads]) {
      for (const [page, list] of table) {
        let drop = 0;
        while (drop < list.length && list[drop]!.seq! < cutoff) drop++;
        if (drop === 0) continue;
        for (const access of list.splice(0, drop)) this.recordCount -= weightOf(access);
        this.droppedRecordCount += drop;
        if (list.length === 0) table.delete(page);
      }
    }
  }
}

/** What a kept access costs the window: one, plus one per byte run. */
function weightOf(access: Access): number {
  return 1 + (access.runs === null ? 0 : access.runs.length >> 1);
}

/** Whether run list `outer` holds every byte of `inner`. */
function covers(outer: number[], inner: number[]): boolean {
  let innerBytes = 0;
  for (let k = 1; k < inner.length; k += 2) innerBytes += inner[k]!;
  const both = overlapRuns(outer, inner);
  let bothBytes = 0;
  for (let k = 1; k < both.length; k += 2) bothBytes += both[k]!;
  return bothBytes === innerBytes;
}

function side(meta: Meta): RaceSide {
  return { node: meta.node, threads: meta.threads, interval: meta.index, begin: meta.begin, end: meta.end };
}

function pointKey(point: SyncPoint | null): string {
  return point === null ? '-' : `${point.op}@${point.site ?? '?'}`;
}

function placeKey(meta: Meta | RaceSide): string {
  return `${pointKey(meta.begin)}>${pointKey(meta.end)}`;
}

const sideKey = placeKey;

/** A stable order of the two sides (by program place, then node), so a race found either way round is one race. */
function sideOrder(a: Meta, b: Meta): [Meta, Meta] {
  const ka = placeKey(a);
  const kb = placeKey(b);
  if (ka < kb || (ka === kb && a.node <= b.node)) return [a, b];
  return [b, a];
}

function sameThreads(x: number[], y: number[]): boolean {
  return x.length === y.length && x.every((value, index) => value === y[index]);
}
