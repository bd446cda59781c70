// The manager side of race mode on one node (docs/RACE.md): collects, per
// interval the engine closes, the exact bytes written (from the diffs the
// engine's flushes make), the pages read (from read faults: the pages an
// interval touched are protected again when it closes) and the sync
// operations that bound it, and hands the record to the race checker.

import { assert } from '../errors.js';
import { protNone, type PageMemory } from '../protocol/memory.js';
import { diffRuns, unionRuns } from './diff.js';
import type { IntervalWrites, SyncPoint } from './record.js';

export class RaceRecorder {
  readonly nodeId: number;
  private readonly emit: (record: IntervalWrites) => void;
  private memory: PageMemory | null = null;
  /** Bytes written in the open interval, per page (runs). */
  private readonly written = new Map<number, number[]>();
  /** Pages read (faulted on for reading) in the open interval, with the offset of the faulting byte. */
  private readonly read = new Map<number, number>();
  /** The sync operation under way (it ends the open interval), and the last one done (it began it). */
  private current: SyncPoint | null = null;
  private last: SyncPoint | null = null;
  /** Thread ids of the app threads running on this node. */
  readonly threads = new Set<number>();
  /** Thread ids that ever ran here: more than one means their races with each other are not seen. */
  readonly threadsEver = new Set<number>();
  intervalCount = 0;
  /** The threads of the last interval that had any (a worker's last interval closes after it exited). */
  private lastThreads: number[] = [];

  /** The thread ids of the app threads attached to this node now (local workers included). */
  private readonly attached: () => number[];

  constructor(nodeId: number, emit: (record: IntervalWrites) => void, attached: () => number[] = () => []) {
    this.nodeId = nodeId;
    this.emit = emit;
    this.attached = attached;
  }

  /** The node's PageMemory, with every diff it makes recorded. */
  wrap(memory: PageMemory): PageMemory {
    this.memory = memory;
    return {
      ...memory,
      flush: (pages) => {
        const records = memory.flush(pages);
        for (const record of records) {
          if (record.diff.length === 0) continue;
          const runs = diffRuns(record.diff);
          const before = this.written.get(record.page);
          this.written.set(record.page, before === undefined ? runs : unionRuns(before, runs));
        }
        return records;
      },
    };
  }

  /** Protects every page so the first read of each faults (call after the engine's start). */
  armAll(pageCount: number): void {
    assert(this.memory !== null, 'the recorder wraps the node\'s memory');
    const all = new Uint32Array(pageCount);
    for (let page = 0; page < pageCount; page++) all[page] = page;
    this.memory.protect(all, protNone);
  }

  threadStarted(threadId: number): void { this.threads.add(threadId); this.threadsEver.add(threadId); }
  threadEnded(threadId: number): void { this.threads.delete(threadId); }

  /** Threads seen attached during the open interval (sampled at faults): more than one shows a shared node. */
  private readonly intervalThreads = new Set<number>();

  /** Notes which threads are attached now (called once per batch of faults). */
  sample(): void {
    if (this.intervalThreads.size < 64) for (const id of this.attached()) this.intervalThreads.add(id);
  }

  /** An app thread of this node ended (its id counts for the interval that was open). */
  threadLeft(threadId: number): void {
    if (threadId >= 0 && this.intervalThreads.size < 64) this.intervalThreads.add(threadId);
  }

  /** A read fault of an app thread (before the engine serves it). */
  onReadFault(page: number, offset: number): void { if (!this.read.has(page)) this.read.set(page, offset); }

  /** Runs a synchronization of the engine (`run`), naming it as the end of the open interval and the start of the next. */
  around<T>(op: string, site: string | null, run: () => T): T {
    const point: SyncPoint = { op, site };
    const outer = this.current;
    this.current = point;
    try {
      return run();
    } finally {
      this.current = outer;
      this.last = point;
    }
  }

  /** The engine's onIntervalClosed hook. */
  intervalClosed(index: number, vc: readonly number[]): void {
    this.intervalCount++;
    const pages = [...this.written.keys()].sort((a, b) => a - b);
    const reads = [...this.read.keys()].sort((a, b) => a - b);
    const touched = [...new Set([...pages, ...reads])].sort((a, b) => a - b);
    const now = new Set([...this.threads, ...this.attached(), ...this.intervalThreads]);
    this.intervalThreads.clear();
    if (now.size > 0) this.lastThreads = [...now].sort((a, b) => a - b);
    if (pages.length > 0 || reads.length > 0) {
      this.emit({
        node: this.nodeId, index, vc: [...vc], threads: this.lastThreads,
        begin: this.last, end: this.current ?? { op: 'dsm release', site: null },
        pages, runs: pages.map((page) => this.written.get(page)!), reads, readOffsets: reads.map((page) => this.read.get(page)!),
      });
    }
    this.written.clear();
    this.read.clear();
    // Re-arm what this interval touched, so the next interval's first reads fault too.
    if (touched.length > 0 && this.memory !== null) this.memory.protect(touched, protNone);
    this.last = this.current ?? this.last;
  }
}
