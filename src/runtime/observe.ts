// What a node counts and records for `dsm run --stats`, `--stats-json` and
// `--trace` (formats in docs/OBSERVABILITY.md). Counting is always on (a few
// integer additions per message or fault); trace events are kept only after
// node 0 asked for them, at most traceEventCountMax per node.

import { performance } from 'node:perf_hooks';
import { pageBytes, traceEventCountMax } from '../constants.js';
import type { NativeStats } from '../memory/native.js';
import type { EngineCounters } from '../protocol/engine.js';

export interface TypeTraffic { count: number; bytes: number }

export interface NodeStats {
  nodeId: number;
  readFaults: number;
  writeFaults: number;
  fastWriteFaults: number;
  /** Pages twinned and made writable ahead of a sequential write stream, without a fault of their own. */
  writeAheadPages: number;
  /** hlrc: own pages upgraded ahead of a write stream while all zeros, still all zeros at the close: left out of its notice. */
  writeAheadUnchanged: number;
  pageFetches: number;
  /** hlrc: bytes of pages installed by read-ahead, and of those no thread touched (invalidated first, or never touched so far). */
  prefetchedBytes: number;
  prefetchWastedBytes: number;
  /** hlrc: read-ahead pages a thread touched (useful), and those not touched (invalidated untouched, or never touched so far). */
  prefetchUsefulPages: number;
  prefetchWastedPages: number;
  /** hlrc: page fetches streaming read-ahead issued ahead of a stream's threads (in pageFetches too). */
  prefetchAheadFetches: number;
  /** hlrc: first touches of read-ahead copies the signal handler served, with no fault through the manager (not in readFaults). */
  readAheadTouches: number;
  /** hlrc: pages this node lent to their sole writer (home migration), and of those, lent without their bytes. */
  pagesLent: number;
  pagesLentWithoutBytes: number;
  /** hlrc: pages pushed to this node (with lock grants, barrier messages, line messages) and installed, and those refused (not made current by them). */
  pagesPushed: number;
  pushesRefused: number;
  /** hlrc: of pagesPushed, those installed over a stale copy the acquire left read-only (no protection call). */
  pushesInPlace: number;
  /** Lock tokens this node's lock managers sent ahead of any request (token pushes), and those a thread of the node they went to took. */
  lockPushes: number;
  lockPushesTaken: number;
  /** hlrc: looks for stale copies after a while with no synchronization, and the clean copies they dropped. */
  staleLooks: number;
  staleDropped: number;
  /**
   * Several nodes: the manager's polls before its loop sleeps that saw an event come, those that ended without one,
   * and those not made because every CPU was busy (src/constants.ts managerPollUs).
   */
  managerPollHits: number;
  managerPollMisses: number;
  managerPollSkips: number;
  diffsSent: number;
  /** hlrc: diffs of large releases sent after their sync message (deferred; in diffsSent too once sent). */
  diffsDeferred: number;
  diffsApplied: number;
  invalidations: number;
  intervalsClosed: number;
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  messagesByType: Record<string, TypeTraffic>;
  lockAcquires: number;
  lockWaitMs: number;
  barrierWaits: number;
  barrierWaitMs: number;
  atomicOps: number;
  atomicWaitMs: number;
  /**
   * Atomic lines (issue 12): lines this node's directories granted (exclusive or shared, to this node too), recalls they made, and
   * notifies this node's threads answered 0 from a held line with no call (session 36).
   */
  lineGrants: number;
  lineRecalls: number;
  lineNotifiesInThread: number;
}

export interface TraceEvent {
  name: string;
  cat: string;
  ph: 'X' | 'i' | 'b' | 'e' | 'M' | 'C';
  ts: number;
  pid: number;
  tid: number;
  dur?: number;
  id?: string;
  s?: 't';
  args?: Record<string, unknown>;
}

export type SyncKind = 'lock' | 'barrier' | 'atomic';

const syncEventNames: Record<SyncKind, string> = { lock: 'lock wait', barrier: 'barrier wait', atomic: 'atomic' };

/** Microseconds since the Unix epoch on this machine's clock. */
/** The process's time origin (ms since the epoch): fixed for its life; the getter is a brand-checked call each time. */
const timeOriginMs = performance.timeOrigin;

export function epochUs(): number {
  return (timeOriginMs + performance.now()) * 1000;
}

export class NodeObserver {
  readonly nodeId: number;
  private readonly sync = { lock: { count: 0, ms: 0 }, barrier: { count: 0, ms: 0 }, atomic: { count: 0, ms: 0 } };
  private readonly sentByType = new Map<string, TypeTraffic>();
  private readonly received: TypeTraffic = { count: 0, bytes: 0 };
  private traceOriginUs: number | null = null;
  private readonly events: TraceEvent[] = [];
  private dropped = 0;

  constructor(nodeId: number) {
    this.nodeId = nodeId;
  }

  get tracing(): boolean {
    return this.traceOriginUs !== null;
  }

  /** Starts keeping trace events; `originUs` (epoch µs, node 0's start) is time zero for every node. */
  startTrace(originUs: number): void {
    this.traceOriginUs = originUs;
    this.events.push({ name: 'process_name', cat: '__metadata', ph: 'M', ts: 0, pid: this.nodeId, tid: 0, args: { name: `node ${this.nodeId}` } });
  }

  /** Trace time of an epoch-µs instant (0 when not tracing). */
  traceTs(atUs: number): number {
    return this.traceOriginUs === null ? 0 : atUs - this.traceOriginUs;
  }

  record(event: TraceEvent): void {
    if (this.traceOriginUs === null) return;
    if (this.events.length >= traceEventCountMax) {
      this.dropped += 1;
      return;
    }
    this.events.push(event);
  }

  countReceived(bytes: number): void {
    this.received.count += 1;
    this.received.bytes += bytes;
  }

  countSent(type: string, bytes: number): void {
    let entry = this.sentByType.get(type);
    if (entry === undefined) {
      entry = { count: 0, bytes: 0 };
      this.sentByType.set(type, entry);
    }
    entry.count += 1;
    entry.bytes += bytes;
  }

  /** A synchronization request answered after `startUs` (epoch µs). */
  syncDone(kind: SyncKind, startUs: number, tid: number, args: Record<string, unknown>): void {
    const endUs = epochUs();
    const entry = this.sync[kind];
    entry.count += 1;
    entry.ms += (endUs - startUs) / 1000;
    // The event is built only when traced (record drops it otherwise).
    if (this.traceOriginUs !== null) this.record({ name: syncEventNames[kind], cat: 'sync', ph: 'X', ts: this.traceTs(startUs), dur: endUs - startUs, pid: this.nodeId, tid, args });
  }

  /** Takes the kept trace events (and how many were dropped). */
  takeTrace(): { events: TraceEvent[]; dropped: number } {
    return { events: this.events.splice(0), dropped: this.dropped };
  }

  snapshot(native: NativeStats, engine: EngineCounters | null): NodeStats {
    let messagesSent = 0;
    let bytesSent = 0;
    for (const traffic of this.sentByType.values()) {
      messagesSent += traffic.count;
      bytesSent += traffic.bytes;
    }
    return {
      nodeId: this.nodeId,
      readFaults: native.readFaults,
      writeFaults: native.writeFaults + native.fastWriteFaults,
      fastWriteFaults: native.fastWriteFaults,
      writeAheadPages: native.writeAheadPages ?? 0,
      writeAheadUnchanged: engine?.aheadUnchanged ?? 0,
      pageFetches: engine?.pageFetches ?? 0,
      // Untracked read-ahead pages (a saturated sequential stream's) count as moved, not as wasted.
      prefetchedBytes: ((engine?.prefetchedPages ?? 0) + (engine?.prefetchUntrackedPages ?? 0)) * pageBytes,
      prefetchWastedBytes: ((engine?.prefetchedPages ?? 0) - (engine?.prefetchUsefulPages ?? 0)) * pageBytes,
      prefetchUsefulPages: engine?.prefetchUsefulPages ?? 0,
      prefetchWastedPages: (engine?.prefetchedPages ?? 0) - (engine?.prefetchUsefulPages ?? 0),
      prefetchAheadFetches: engine?.prefetchAheadFetches ?? 0,
      readAheadTouches: native.fastTouches ?? 0,
      pagesLent: engine?.pagesLent ?? 0,
      pagesLentWithoutBytes: engine?.pagesLentWithoutBytes ?? 0,
      pagesPushed: engine?.pagesPushed ?? 0,
      pushesRefused: engine?.pushesRefused ?? 0,
      pushesInPlace: engine?.pushesInPlace ?? 0,
      lockPushes: engine?.lockPushes ?? 0,
      lockPushesTaken: engine?.lockPushesTaken ?? 0,
      staleLooks: engine?.staleLooks ?? 0,
      staleDropped: engine?.staleDropped ?? 0,
      managerPollHits: native.managerPollHits ?? 0,
      managerPollMisses: native.managerPollMisses ?? 0,
      managerPollSkips: native.managerPollSkips ?? 0,
      diffsSent: engine?.diffsSent ?? 0,
      diffsDeferred: engine?.diffsDeferred ?? 0,
      diffsApplied: engine?.diffsApplied ?? 0,
      invalidations: engine?.invalidations ?? 0,
      intervalsClosed: engine?.intervalsClosed ?? 0,
      messagesSent,
      bytesSent,
      messagesReceived: this.received.count,
      bytesReceived: this.received.bytes,
      messagesByType: Object.fromEntries([...this.sentByType].sort(([a], [b]) => a.localeCompare(b)).map(([type, t]) => [type, { ...t }])),
      lockAcquires: this.sync.lock.count,
      lockWaitMs: round3(this.sync.lock.ms),
      barrierWaits: this.sync.barrier.count,
      barrierWaitMs: round3(this.sync.barrier.ms),
      atomicOps: this.sync.atomic.count,
      atomicWaitMs: round3(this.sync.atomic.ms),
      lineGrants: (engine?.lineGrants ?? 0) + (engine?.lineShareGrants ?? 0),
      lineRecalls: engine?.lineRecalls ?? 0,
      lineNotifiesInThread: engine?.lineNotifiesInThread ?? 0,
    };
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Sums nodes' stats (nodeId dropped). */
export function totalOf(nodes: NodeStats[]): Omit<NodeStats, 'nodeId'> {
  const total: Omit<NodeStats, 'nodeId'> = {
    readFaults: 0, writeFaults: 0, fastWriteFaults: 0, writeAheadPages: 0, writeAheadUnchanged: 0, pageFetches: 0, prefetchedBytes: 0, prefetchWastedBytes: 0, prefetchUsefulPages: 0, prefetchWastedPages: 0, prefetchAheadFetches: 0, readAheadTouches: 0, pagesLent: 0, pagesLentWithoutBytes: 0, pagesPushed: 0, pushesRefused: 0, pushesInPlace: 0, lockPushes: 0, lockPushesTaken: 0, staleLooks: 0, staleDropped: 0, managerPollHits: 0, managerPollMisses: 0, managerPollSkips: 0, diffsSent: 0, diffsDeferred: 0, diffsApplied: 0, invalidations: 0, intervalsClosed: 0,
    messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0, messagesByType: {},
    lockAcquires: 0, lockWaitMs: 0, barrierWaits: 0, barrierWaitMs: 0, atomicOps: 0, atomicWaitMs: 0,
    lineGrants: 0, lineRecalls: 0, lineNotifiesInThread: 0,
  };
  for (const node of nodes) {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'nodeId' || key === 'messagesByType') continue;
      (total as unknown as Record<string, number>)[key]! += value as number;
    }
    for (const [type, traffic] of Object.entries(node.messagesByType)) {
      const entry = total.messagesByType[type] ?? { count: 0, bytes: 0 };
      entry.count += traffic.count;
      entry.bytes += traffic.bytes;
      total.messagesByType[type] = entry;
    }
  }
  for (const key of ['lockWaitMs', 'barrierWaitMs', 'atomicWaitMs'] as const) total[key] = round3(total[key]);
  return total;
}

/** The per-node table `--stats` prints. */
export function formatStatsTable(report: { protocol: string; nodeCount: number; seconds: number; nodes: NodeStats[] }): string {
  const total = { nodeId: -1, ...totalOf(report.nodes) } as NodeStats;
  const rows: Array<[string, (s: NodeStats) => string]> = [
    ['read faults', (s) => String(s.readFaults)],
    ['write faults', (s) => String(s.writeFaults)],
    ['pages written ahead (unchanged)', (s) => `${s.writeAheadPages} (${s.writeAheadUnchanged})`],
    ['page fetches', (s) => String(s.pageFetches)],
    ['read-ahead bytes', (s) => String(s.prefetchedBytes)],
    ['wasted read-ahead bytes', (s) => String(s.prefetchWastedBytes)],
    ['read-ahead pages useful', (s) => String(s.prefetchUsefulPages)],
    ['read-ahead pages wasted', (s) => String(s.prefetchWastedPages)],
    ['fetches streamed ahead', (s) => String(s.prefetchAheadFetches)],
    ['read-ahead touches in the handler', (s) => String(s.readAheadTouches)],
    ['pages lent (without bytes)', (s) => `${s.pagesLent} (${s.pagesLentWithoutBytes})`],
    ['pushed pages installed (refused)', (s) => `${s.pagesPushed} (${s.pushesRefused})`],
    ['  of which in place', (s) => String(s.pushesInPlace)],
    ['lock tokens pushed (taken)', (s) => `${s.lockPushes} (${s.lockPushesTaken})`],
    ['stale looks (copies dropped)', (s) => `${s.staleLooks} (${s.staleDropped})`],
    ['manager polls: saw an event / ended without / skipped', (s) => `${s.managerPollHits} / ${s.managerPollMisses} / ${s.managerPollSkips}`],
    ['diffs sent (deferred)', (s) => `${s.diffsSent} (${s.diffsDeferred})`],
    ['diffs applied', (s) => String(s.diffsApplied)],
    ['invalidations', (s) => String(s.invalidations)],
    ['messages sent', (s) => String(s.messagesSent)],
    ['bytes sent', (s) => String(s.bytesSent)],
    ['messages received', (s) => String(s.messagesReceived)],
    ['lock acquires', (s) => String(s.lockAcquires)],
    ['lock wait ms', (s) => s.lockWaitMs.toFixed(1)],
    ['barrier waits', (s) => String(s.barrierWaits)],
    ['barrier wait ms', (s) => s.barrierWaitMs.toFixed(1)],
    ['atomic ops', (s) => String(s.atomicOps)],
    ['atomic wait ms', (s) => s.atomicWaitMs.toFixed(1)],
    ['line grants (recalls)', (s) => `${s.lineGrants} (${s.lineRecalls})`],
    ['notifies answered in the thread', (s) => String(s.lineNotifiesInThread)],
  ];
  const types = Object.keys(total.messagesByType).sort();
  for (const type of types) {
    rows.push([`  ${type}`, (s) => { const t = s.messagesByType[type]; return t === undefined ? '0' : `${t.count} (${t.bytes} B)`; }]);
  }
  const columns = [...report.nodes, total];
  const headers = ['', ...report.nodes.map((s) => `node ${s.nodeId}`), 'total'];
  const cells = rows.map(([label, cell]) => [label, ...columns.map(cell)]);
  const widths = headers.map((header, index) => Math.max(header.length, ...cells.map((row) => row[index]!.length)));
  const line = (row: string[]) => row.map((cell, index) => (index === 0 ? cell.padEnd(widths[index]!) : cell.padStart(widths[index]!))).join('  ');
  return [
    `dsm stats: ${report.protocol}, ${report.nodeCount} node(s), ${report.seconds.toFixed(3)} s`,
    line(headers),
    ...cells.map(line),
    '(messages by type: sent, with frame bytes)',
  ].join('\n') + '\n';
}
