// A node of a run (one node is a cluster of one: src/cluster/solo.ts): wires the native MMU, the channel to this
// node's app threads and the cluster's mesh to the runtime's lanes, over one
// typed envelope (src/runtime/envelope.ts):
//
//   engine lane          src/runtime/engine-host.ts     the coherence engine: faults, sync, its messages
//   remote-workers lane  src/runtime/remote-workers.ts  workers whose parent runs on another node
//   reports lane         src/runtime/run-reports.ts     stats, trace, race records, end-of-run reports
//
// This file serves the app threads' channel requests (handing each to its
// lane, admitted by flow control: src/runtime/flow.ts) and routes each mesh
// message to its lane.
//
// Node 0 also runs the program's main thread (runClusterProgram); every other
// node runs `runNode` (the DSM_NODE_RUNTIME module of src/cluster/node-main).
//
// A cluster of one runs this same code over a mesh of one (no socket): its
// engine is home of every page and holds them exclusive from the start
// (read-write, no twin, no fault: src/protocol/hlrc.ts and sc.ts `start`), its
// app threads run V8's own Atomics (every atomic line is held by the only node,
// src/threads/atomics.ts) and its Mutex/Barrier take the "token always here"
// case of the sync route (src/sync/route.ts); its region is private anonymous
// memory (src/runtime/manager.ts), what V8 gives a plain SharedArrayBuffer.

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ClusterHandle, MeshContext, MeshLike } from '../cluster/index.js';
import { flushPendingEvents, replyLater, type ThreadEndpoint } from '../channel/server.js';
import { replyStateReady, ringSyncBarrier, ringSyncLock, type RingSync, waitKindBarrier, waitKindMutex } from '../channel/doorbell.js';
import type { ChannelEvent, ChannelRequest } from '../channel/wire.js';
import { dirtyAheadTag, earlyFlushPageCountMin, faultFlagOffsetShift, faultFlagWrite, heartbeatTimeoutMs, loopStallFactor, pageBytes, parkedReportCountMax, regionBytesDefault, staleRefreshDelayMs, type PageProt } from '../constants.js';
import { DsmError, assert, exitCodeNodeDied, isDsmError } from '../errors.js';
import { activity, blockLoopForTest, endOnManagerFailure, noteActivity, stopStallCheck, supervise } from '../cluster/watchdog.js';
import { ManagerAtomics } from '../memory/manager-atomics.js';
import { atomicLinesEnabled, deferDiffsEnabled, directSyncEnabled, linePagePushEnabled, lineShareEnabled, lineShareAheadEnabled, lineNotifyInThreadEnabled, lineShipEnabled, lineShipSampleOps, lineShipWaitsEnabled, lineNotifyReleaseEnabled, lineWaitReleaseEnabled, lineCountedNotifyEnabled, lockKeepEnabled, lockPushEnabled, lockTokensEnabled, ownWriteAheadEnabled, staleRefreshEnabled, peerBarriersEnabled, prefaultEnabled, prewakeEnabled, readAheadPageCount, readAheadStatsEnabled, readAheadStreamingEnabled, touchAheadEnabled, runtimeConfig, sendQueueBytesFromEnvironment, supervisingParentPid, testHook, warmThreadsEnabled } from '../env.js';
import { loadNativeMmu, type NativeMmu } from '../memory/native.js';
import { linesSuit, type PlacementName, type SyncRequest, type SyncResult } from '../protocol/engine.js';
import type { PageMemory } from '../protocol/memory.js';
import type { ConsistencyInfo } from '../protocol/messages.js';
import type { MeshPort } from '../transport/mesh.js';
import { takePayloadSlab } from '../transport/payload-slabs.js';
import { NodeManager } from './manager.js';
import { LineTable } from '../channel/atomic-lines.js';
import { LockTokenTable, ownerNodeBase } from '../channel/lock-tokens.js';
import { runMainThread, type PrestartedThread } from './program.js';
import { epochUs, NodeObserver, type NodeStats, type SyncKind } from './observe.js';
import { FlowGate } from './flow.js';
import { writeRunReport, type ReportOptions } from './report.js';
import { MeshNetwork, type Routed } from './envelope.js';
import { EngineHost } from './engine-host.js';
import { type ConsistencyBounds, isWorkerRequest, RemoteWorkers } from './remote-workers.js';
import { takePrestartedWarmThread } from './node-prepare.js';
import { RunReports } from './run-reports.js';
import type { RaceChecker } from '../race/checker.js';
import type { RaceRecorder } from '../race/recorder.js';
import { hop, hopsOn } from '../util/hops.js';
import { WebLocks } from './web-locks-service.js';
import { mappedStackOf } from '../util/source-frames.js';

// A node's atomic line table runs a process-wide membarrier at its start, whose first call registers the
// process and waits out a kernel grace period (5-15 ms): started as this module loads (node 0: while the
// other nodes start; the others: while they join), it is done by then.
if (atomicLinesEnabled()) loadNativeMmu().prepareMembarrier();

/** Race mode's classes (src/race/), loaded for a race run only: every other node starts without them. */
export interface RaceModules { RaceChecker: typeof RaceChecker; RaceRecorder: typeof RaceRecorder }
export async function loadRaceModules(): Promise<RaceModules> {
  const [{ RaceChecker }, { RaceRecorder }] = await Promise.all([import('../race/checker.js'), import('../race/recorder.js')]);
  return { RaceChecker, RaceRecorder };
}

/** Engine ticks drive Atomics.wait timeouts. */
const tickIntervalMs = 5;

/**
 * The mesh, with messages held from the moment it exists until the runtime
 * listens (MeshNetwork.listen): a peer may send before this node has wired its lanes.
 */
export async function createMesh(context: MeshContext): Promise<MeshLike> {
  // Loaded here, not above: a cluster of one never loads the transport (its start-up time).
  const { createTransportMesh } = await import('../cluster/common.js');
  const mesh = await createTransportMesh(context);
  assert(isMeshPort(mesh), 'the runtime runs over the transport mesh');
  mesh.holdMessages();
  return mesh;
}

/** The transport's Mesh or a mesh of one (src/transport/solo-mesh.ts), told apart from other MeshLikes by shape. */
function isMeshPort(mesh: MeshLike | null): mesh is MeshLike & MeshPort {
  return mesh !== null && typeof (mesh as Partial<MeshPort>).deliverTo === 'function' && typeof (mesh as Partial<MeshPort>).queuedBytes === 'function';
}

/**
 * The longest delay a Node timer holds (2^31 - 1 ms): a later deadline (an Atomics.wait's timeout of 2^32 ms) is
 * armed at this, and the tick it runs arms the rest. Beyond it Node clamps the delay to 1 ms with a
 * TimeoutOverflowWarning, and the tick re-armed itself every millisecond, each time with the warning.
 */
const nodeTimerMsMax = 2 ** 31 - 1;

/** What drainDirty returns when the fast path pushed nothing (read only: the engine iterates it). */
const noDirtyPages = new Uint32Array(0);

/** The native MMU as the engine's page memory (fast-path write faults drained are traced here). */
function nativePageMemory(native: NativeMmu, observer: NodeObserver): PageMemory {
  const pagesOf = (pages: Uint32Array | number[]) => (pages instanceof Uint32Array ? pages : Uint32Array.from(pages));
  // One page (a fault's, a one-page reply's): the range calls, with no page list built for the addon.
  const protect = (pages: Uint32Array | number[], prot: PageProt) => {
    if (pages.length === 1) native.protect(pages[0]!, 1, prot);
    else native.protectPages(pagesOf(pages), prot);
  };
  // The fast path's push counter, read as a word: a drain (a native call and a fresh array) only when it moved
  // since the read before the last drain. Most drains find nothing (the flow gate's dirty-page count asks at every
  // admission). A page pushed between that read and the drain is drained then, and only costs one more drain later.
  const pushedCounter = new Uint32Array(native.dirtyPushCounter());
  let pushedSeen = -1;
  // The same for the touch ring (read-ahead copies made readable by the signal handler).
  const touchedCounter = new Uint32Array(native.touchPushCounter());
  let touchedSeen = -1;
  const shipped = new ManagerAtomics((offset, byteLength) => native.managerBuffer(offset, byteLength));
  return {
    atomic: (address, width, op, operands) => shipped.run(address, width, op, operands),
    protect: hopsOn ? (pages, prot) => { hop(`m:protect ${pages.length}`); protect(pages, prot); hop('m:protected'); } : protect,
    protectRange: (first, count, prot) => native.protect(first, count, prot),
    setFastWrite: (pages, enabled) => {
      if (pages.length === 1) native.setFastWriteRange(pages[0]!, 1, 1, enabled);
      else native.setFastWrite(pagesOf(pages), enabled);
    },
    setTwinless: (pages, enabled) => native.setTwinless(pagesOf(pages), enabled),
    setFastWriteRange: (first, count, step, enabled) => native.setFastWriteRange(first, count, step, enabled),
    setTwinlessRange: (first, count, step, enabled) => native.setTwinlessRange(first, count, step, enabled),
    setTwinLimit: (pageCount) => native.setTwinLimit(pageCount),
    setOwnWriteAhead: (pageCount) => native.setOwnWriteAhead(pageCount),
    drainDirty: () => {
      const pushed = Atomics.load(pushedCounter, 0);
      if (pushed === pushedSeen) return noDirtyPages;
      pushedSeen = pushed;
      const pages = native.drainDirty();
      // Fast-path write faults never reach JS one by one: they show in the trace when drained.
      if (observer.tracing && pages.length > 0) {
        const ts = observer.traceTs(epochUs());
        // Entries tagged dirtyAheadTag are own pages upgraded ahead of a write stream, not faults.
        for (const page of pages) if ((page & dirtyAheadTag) === 0) observer.record({ name: 'write fault', cat: 'fault', ph: 'i', s: 't', ts, pid: observer.nodeId, tid: 0, args: { page, fast: true } });
      }
      return pages;
    },
    ...(touchAheadEnabled() ? {
      setTouchAhead: (pages: Uint32Array | number[], wake: boolean) => native.setTouchAhead(pagesOf(pages), wake),
      drainTouched: () => {
        const pushed = Atomics.load(touchedCounter, 0);
        if (pushed === touchedSeen) return noDirtyPages;
        touchedSeen = pushed;
        const pages = native.drainTouched();
        if (hopsOn && pages.length > 0) hop(`m:touched ${pages.length}`);
        return pages;
      },
    } : {}),
    makeTwin: (page) => native.makeTwin(page),
    flush: (pages) => {
      if (!hopsOn) return native.flush(pagesOf(pages));
      hop(`m:flush ${pages.length}`);
      const records = native.flush(pagesOf(pages));
      hop('m:flushed');
      return records;
    },
    applyDiff: (page, diff) => native.applyDiff(page, diff),
    readPage: (page, into) => native.readPage(page, into),
    isZero: (page) => native.isZeroPage(page),
    writePage: hopsOn ? (page, from) => { hop('m:writePage'); native.writePage(page, from); hop('m:writePage done'); } : (page, from) => native.writePage(page, from),
    copyBuffer: (bytes) => takePayloadSlab(bytes),
    writePages: hopsOn ? (first, from) => { hop(`m:writePages ${from.length / pageBytes}`); native.writePages(first, from); hop('m:writePages done'); } : (first, from) => native.writePages(first, from),
  };
}

/** What ascendingPages returns for a fetch of one page (read only: the addon only reads it). */
const noExtraPages = new Uint32Array(0);

/**
 * A window's pages other than its first, ascending (a window streaming downwards lists them downwards), so that
 * prefault queues one run. A fetch of one page makes no array (Uint32Array.from([]) cost ~0.6 µs a fetch).
 */
function ascendingPages(extraPages: readonly number[]): Uint32Array {
  if (extraPages.length === 0) return noExtraPages;
  const pages = Uint32Array.from(extraPages);
  return pages.length > 1 ? pages.sort() : pages;
}

/** A request that synchronizes through the engine (Atomics; Mutex and Barrier of src/sync, routed here by src/sync/route.ts). */
type EngineRequest = Extract<ChannelRequest, { op: 'atomic' | 'sync' }>;
type LineRequest = Extract<ChannelRequest, { op: 'line' }>;

/** The line layer's shipped-op sample size when DSM_LINE_SHIP_SAMPLE_OPS sets it. */
function shipSampleOption(): { lineShipSampleOps?: number } {
  const ops = lineShipSampleOps();
  return ops === undefined ? {} : { lineShipSampleOps: ops };
}

export class ClusterNode {
  readonly handle: ClusterHandle;
  readonly manager: NodeManager;
  readonly host: EngineHost<ThreadEndpoint>;
  readonly workers: RemoteWorkers;
  /** Web Locks (Node 24) for the cluster: this node's threads' requests, and on node 0 the lock service (./web-locks-service.ts). */
  readonly webLocks: WebLocks;
  readonly reports: RunReports;
  readonly network: MeshNetwork;
  /** Admits work that makes traffic only while every link is below its limit (src/runtime/flow.ts). */
  readonly flow: FlowGate;
  readonly observer: NodeObserver;
  private placementCounter = 0;
  /** Race mode: this node's recorder (null on the race home, which runs no app thread), and node 0's checker. */
  readonly race: RaceRecorder | null = null;
  readonly raceChecker: RaceChecker | null = null;
  private readonly raceMode: boolean;
  /** Atomics by line ownership (issue 12.2): the node's line table and each app thread's pin word in it. */
  private readonly lineTable: LineTable | null = null;
  private readonly linePins = new Map<ThreadEndpoint, number>();
  /** Per live app thread, the lock grant last written to its reply block until its next request shows it read it (threadEnded). */
  private readonly lockGrantsUnread = new Map<ThreadEndpoint, { lockId: number; threadId: number }>();
  /** Mutex tokens resting at this node for its app threads (issue 12.3), or null (race mode, DSM_LOCK_TOKENS=0). */
  private readonly lockTokens: LockTokenTable | null = null;
  private lineTimer: NodeJS.Timeout | null = null;
  private lineTimerAtMs = Infinity;

  constructor(handle: ClusterHandle, options: { regionBytes: number; protocol: string; placement?: PlacementName; twinBytes?: number; parentPid?: number; race?: boolean; racePages?: boolean; raceModules?: RaceModules }) {
    assert(isMeshPort(handle.mesh), 'a cluster node runs over the transport mesh (or a mesh of one)');
    superviseNode(handle, options.parentPid);
    const mesh: MeshPort = handle.mesh;
    this.handle = handle;
    this.manager = new NodeManager({ nodeId: handle.nodeId, nodeCount: handle.nodeCount, regionBytes: options.regionBytes });
    this.observer = new NodeObserver(handle.nodeId);
    this.network = new MeshNetwork(mesh, this.observer, Number(testHook('DELAY_SENDS', handle.nodeId) ?? 0));
    // Race mode (docs/RACE.md): the last node is home of every page and runs
    // no app thread; every other node runs one thread, so its intervals are
    // that thread's and its diffs are that thread's exact writes.
    this.raceMode = options.race === true;
    const raceHome = handle.nodeCount - 1;
    const raceModules = options.raceModules;
    if (this.raceMode) {
      assert(handle.nodeCount >= 2, 'race mode has a home node besides the app nodes');
      assert(raceModules !== undefined, 'a race run loads the race modules (loadRaceModules) before its node starts');
      if (handle.nodeId === 0) this.raceChecker = new raceModules.RaceChecker({ pageReads: options.racePages === true });
    }
    this.reports = new RunReports({
      nodeId: handle.nodeId, nodeCount: handle.nodeCount, observer: this.observer, network: this.network,
      stats: () => this.stats(), raceChecker: this.raceChecker,
    });
    if (this.raceMode && handle.nodeId !== raceHome) {
      this.race = new raceModules!.RaceRecorder(handle.nodeId, (record) => this.reports.raceInterval(record),
        () => [...this.manager.channel.endpoints].map((endpoint) => endpoint.threadIdSeen).filter((id) => id >= 0));
      this.manager.allocObserver = (offset, byteLength, site, endpoint) => {
        this.reports.raceAllocation({ address: offset, byteLength, site, thread: Math.max(0, endpoint.threadIdSeen), node: handle.nodeId });
      };
    }
    const pages = nativePageMemory(this.manager.native, this.observer);
    const native = this.manager.native;
    // Atomics by line ownership (issue 12.2): the line table every app thread of this node maps (src/channel/atomic-lines.ts).
    if (atomicLinesEnabled() && linesSuit({ protocol: options.protocol, nodeCount: handle.nodeCount, ...(this.raceMode ? { homeNode: raceHome } : {}) })) {
      this.lineTable = new LineTable(undefined, hopsOn
        ? () => { hop('m:membarrier'); const done = native.membarrier(); hop('m:membarrier done'); return done; }
        : () => native.membarrier());
      this.manager.atomicLines = this.lineTable.buffer;
    }
    // Mutex tokens resting at this node, taken and given back by app threads with no message (src/channel/lock-tokens.ts);
    // not in race mode, where every lock bounds the intervals the race report names.
    if (!this.raceMode && lockTokensEnabled()) {
      this.lockTokens = new LockTokenTable(ownerNodeBase(handle.nodeId));
      this.manager.lockTokens = this.lockTokens.buffer;
    }
    const lockTokens = this.lockTokens;
    const deferDiffs = deferDiffsEnabled();
    // Test hook: a line per lock request or wait that reaches this node as its manager or home, so a litmus
    // program can wait for one instead of sleeping a grace period (test/fixtures/litmus/arrivals.mjs).
    const arrivalsDir = testHook('ARRIVALS', handle.nodeId);
    const arrivalsFile = arrivalsDir === null ? null : join(arrivalsDir, `node-${handle.nodeId}`);
    this.host = new EngineHost<ThreadEndpoint>({
      ...(arrivalsFile === null ? {} : { onArrival: (what: string, key: number) => appendFileSync(arrivalsFile, `${what} ${key}\n`) }),
      nodeId: handle.nodeId,
      nodeCount: handle.nodeCount,
      pageCount: options.regionBytes / pageBytes,
      protocol: options.protocol,
      ...(options.placement === undefined ? {} : { placement: options.placement }),
      ...(options.twinBytes === undefined ? {} : { twinPageCountMax: Math.floor(options.twinBytes / pageBytes) }),
      // A release with as many dirty pages as flow control would flush ahead sends its notices first, its diffs after.
      ...(deferDiffs ? { deferDiffPageCountMin: earlyFlushPageCountMin } : {}),
      ...(peerBarriersEnabled() ? {} : { peerBarriers: false }),
      memory: {
        pages: this.race === null ? pages : this.race.wrap(pages),
        resumeFault: hopsOn ? (slot) => { hop('m:resume'); native.resume(slot); hop('m:resumed'); } : (slot) => native.resume(slot),
        ...(prewakeEnabled() ? { prewake: (page: number) => native.prewake(page) } : {}),
        ...(prefaultEnabled() ? { prefault: (page: number, extraPages: readonly number[]) => native.prefault(page, ascendingPages(extraPages)) } : {}),
      },
      network: this.network,
      observer: this.observer,
      ...(this.raceMode ? { homeNode: raceHome } : {}),
      ...(this.race === null ? {} : { onIntervalClosed: (index: number, vc: readonly number[]) => this.race!.intervalClosed(index, vc) }),
      // Monotonic: Date.now() can step backwards and is read only at each tick.
      clock: () => performance.now(),
      // Wasted read-ahead bytes in --stats (issue 13); each read-ahead page's first touch then faults locally.
      readAheadTracking: readAheadStatsEnabled(),
      readAheadStreaming: readAheadStreamingEnabled(),
      ownWriteAhead: ownWriteAheadEnabled(),
      prefetchPageCount: readAheadPageCount(),
      ...(this.lineTable === null ? {} : { lines: this.lineTable, linePagePush: linePagePushEnabled(), lineShipOps: lineShipEnabled(), lineShareLoads: lineShareEnabled(), lineShareAhead: lineShareAheadEnabled(), lineNotifyInThread: lineNotifyInThreadEnabled(), lineShipWaits: lineShipWaitsEnabled(), lineNotifyRelease: lineNotifyReleaseEnabled(), lineWaitRelease: lineWaitReleaseEnabled(), lineCountedNotify: lineCountedNotifyEnabled(), ...shipSampleOption() }),
      ...(lockTokens === null ? {} : { lockTokens }),
      lockKeep: lockKeepEnabled(),
      lockPush: lockPushEnabled(),
      // A loop polling a plain read ends (src/protocol/stale.ts).
      staleRefreshMs: staleRefreshEnabled() ? staleRefreshDelayMs : 0,
    });
    const engine = this.host.engine;
    // Race mode: no store takes the native fast path, ever (each write fault goes to the engine). With two threads
    // on a node, a store twinned in the signal handler between an interval's close and its re-arm (the recorder
    // protects the pages it touched) left counters written under a lock short (users11/futex-array, 1 of 2 runs
    // after the read-fault fix in hlrc.ts; none in 9 with the fast path off: session 37).
    const raceMode = this.raceMode;
    if (raceMode) native.pauseFastWrite(true);
    this.flow = new FlowGate({
      queuedBytes: (nodeId) => mesh.queuedBytes(nodeId),
      get queuingPeerIds() { return mesh.queuingPeerIds; },
      on: (event, listener) => mesh.on(event, listener),
    }, engine, sendQueueBytesFromEnvironment(), (paused) => native.pauseFastWrite(paused || raceMode), deferDiffs);
    if (testHook('HOLD_DEFERRED', handle.nodeId) !== null) this.flow.holdDeferredForTest();
    const slowWorkerStart = testHook('SLOW_WORKER_START', handle.nodeId);
    const slowWorkerStartMs = slowWorkerStart === null ? null : Number(slowWorkerStart);
    // The release and acquire of every crossing outside the engine (remote workers' messages, Web Locks).
    const bounds: ConsistencyBounds = {
      release: (op, request, toNode) => this.raceSync(op, request, () => engine.releaseFor(toNode)),
      acquire: (op, site, fromNode, info) => this.raceSync(op, { site }, () => engine.acquireFrom(fromNode, info)),
      learn: (fromNode, info) => engine.learnFrom(fromNode, info),
    };
    this.workers = new RemoteWorkers({
      node: this.manager,
      hostName: handle.peers[handle.nodeId]?.host ?? 'this host',
      channel: this.manager.channel,
      network: this.network,
      bounds,
      admit: (work) => this.flow.admit(work),
      raceSites: this.race !== null,
      // Test hook: the acquire at a remote worker's start comes MS ms late (its thread must still see the parent's writes).
      ...(slowWorkerStartMs === null ? {} : { beforeStartAcquire: () => blockLoopForTest(slowWorkerStartMs) }),
      notifyTargets: () => this.network.notifyTargets(),
      notifiesSettled: () => (engine.notifiesHeldBack?.() ?? 0) === 0,
      // Remote workers start on a warm thread; nodes other than 0 host them from the program's start.
      ...(handle.nodeCount > 1 && warmThreadsEnabled() ? { warmThreads: { atStart: handle.nodeId !== 0, prestarted: takePrestartedWarmThread() } } : {}),
      threadExited: (endpoint: ThreadEndpoint) => this.threadExited(endpoint),
      holds: this.manager.heap,
      ...(this.race === null ? {} : {
        threadStarted: (id: number) => this.race!.threadStarted(id),
        threadEnded: (id: number) => this.race!.threadEnded(id),
      }),
    });
    this.webLocks = new WebLocks({
      nodeId: handle.nodeId,
      network: this.network,
      bounds,
    });
    // A thread's end releases its Web Locks and drops its waiting requests, after what it asked before (admitted in order).
    this.manager.channel.onThreadEnd((endpoint) => this.flow.admit(() => this.webLocks.threadEnded(endpoint)));
    const throwOnFault = testHook('MANAGER_THROW', handle.nodeId) !== null;
    this.manager.handleFaults((records) => {
      if (hopsOn) hop(`m:faults ${records.length / 3}`);
      noteActivity(activity.faults);
      // Test hook: the manager fails while the app thread that faulted is parked on it.
      if (throwOnFault) throw new Error(`test hook DSM_TEST_HOOK_MANAGER_THROW: node ${handle.nodeId} failed while serving a fault on page ${records[1]}`);
      this.race?.sample();
      // Touches the handler served on read-ahead copies (a wake-up may carry only those): before the faults, in their order.
      this.host.touched();
      for (let index = 0; index < records.length; index += 3) {
        const slot = records[index]!;
        const page = records[index + 1]!;
        const isWrite = (records[index + 2]! & faultFlagWrite) !== 0;
        if (this.race !== null && !isWrite) this.race.onReadFault(page, (records[index + 2]! >>> faultFlagOffsetShift) & (pageBytes - 1));
        // A write may make one more twin: held while too many pages are dirty.
        if (isWrite) this.flow.admitWriteFault(() => this.host.fault(slot, page, true));
        else this.host.fault(slot, page, false);
      }
      noteActivity(activity.idle);
    });
    this.manager.handleRequests((endpoint, request) => {
      noteActivity(activity.channelRequest);
      // Test hook: the manager fails while the app thread that asked is parked on its answer.
      if (throwOnFault && (request.op === 'atomic' || request.op === 'sync' || request.op === 'line')) {
        throw new Error(`test hook DSM_TEST_HOOK_MANAGER_THROW: node ${handle.nodeId} failed while serving an app thread's '${request.op}' request`);
      }
      const answer = this.onRequest(endpoint, request);
      this.scheduleLineTick();
      noteActivity(activity.idle);
      return answer;
    });
    // Test hook: the manager learns of a thread's end this many ms late (its channel port's 'close' comes
    // asynchronously, after requests other threads made meanwhile: test/integration/regressions.test.ts).
    const threadEndDelayMs = Number(testHook('THREAD_END_DELAY', handle.nodeId) ?? 0);
    if (threadEndDelayMs > 0) this.manager.channel.delayClosesForTest(threadEndDelayMs);
    this.manager.channel.onThreadEnd((endpoint) => this.threadEnded(endpoint));
    // Small posts served and held back to go together are sent before anything else a thread asks (remote-workers.ts).
    this.manager.channel.beforeOtherRequest = this.workers.flushPosts;
    // The direct path of a thread's lock, unlock and barrier wait (serveSyncEntry), decided once for the node: not in
    // race mode (its requests come by port, each bounding intervals through raceSync) nor under the test hook
    // that fails the manager on a request.
    if (this.race === null && !throwOnFault && directSyncEnabled()) {
      this.manager.channel.serveSyncDirectly(this);
      if (this.lineTable !== null) this.manager.channel.serveAtomicsDirectly(this);
    }
    // Slice borrowing: a lost send needs nothing here (the peer's loss is already ending the run).
    // A lend of chunks used before is a release and an acquire (src/runtime/heap-service.ts).
    this.manager.heap.borrowThrough((toNode, message) => { this.network.send(toNode, message); }, {
      release: (toNode) => this.raceSync('chunk lend', null, () => engine.releaseFor(toNode)),
      acquire: (fromNode, info) => this.raceSync('chunk borrow', null, () => engine.acquireFrom(fromNode, info)),
    });
    this.manager.start();
    this.host.start();
    this.race?.armAll(options.regionBytes / pageBytes);
    this.network.listen((from, routed) => this.onMessage(from, routed));
    setInterval(() => {
      noteActivity(activity.engineTick);
      this.host.tick(performance.now());
      this.flow.tick();
      this.scheduleLineTick();
      noteActivity(activity.idle);
    }, tickIntervalMs).unref();
    const block = testHook('BLOCK_LOOP', handle.nodeId);
    if (block !== null) {
      // Test hook: the manager's loop stands still (as in a deadlock or an endless engine step),
      // soon after start or (`MS:SIGUSR2`) when the test sends SIGUSR2.
      const [blockMs, trigger] = block.split(':');
      if (trigger === 'SIGUSR2') process.once('SIGUSR2', () => blockLoopForTest(Number(blockMs)));
      else setTimeout(() => blockLoopForTest(Number(blockMs)), 200);
    }
    // A run interrupted by a signal (SIGINT, SIGTERM: Ctrl-C, `timeout`; not a program's own exit 130 or 143) says
    // where its app threads stood: a run that stands still (two threads waiting on each other, or an answer lost) is
    // not silent to the end. Once per node, one write: every node's line whole, in whatever order they come.
    // The program's own SIGINT and SIGTERM listeners (on its main thread, on node 0) take the signals first.
    if (handle.nodeId === 0 && 'takeSignal' in handle) handle.takeSignal = (signal) => this.manager.deliverSignal(signal);
    if (handle.nodeId === 0) {
      this.manager.onSignalsTaken = (taken) => {
        // This process takes the other signals for the program first, then the other nodes are told (they ignore them).
        handle.listenForProgram?.(taken);
        handle.programSignals?.(taken);
      };
    }
    handle.onInterrupt?.(() => {
      const parked = this.host.describeParked(parkedReportCountMax, [...this.parkedNatively(), ...this.webLocks.waiting()]);
      if (parked.length > 0) process.stderr.write(`dsm: interrupted; parked on node ${handle.nodeId}: ${parked.join('; ')}\n`);
    });
    handle.describeInFlight(() => `${this.host.syncInFlight} synchronization request(s) and ${this.workers.inFlight} remote worker(s) in flight on node ${handle.nodeId}${this.flow.describeWaiting()}`);
  }

  /**
   * The app threads waiting natively, which the engine does not see: on a cluster of one every Atomics.wait is
   * V8's own, noted by the thread in its doorbell block (src/threads/atomics.ts installNotedWait).
   */
  private parkedNatively(): Array<{ tid: number; startUs: number; what: string }> {
    const parked: Array<{ tid: number; startUs: number; what: string }> = [];
    for (const endpoint of this.manager.channel.endpoints) {
      const note = endpoint.block?.waitNote() ?? null;
      if (note === null) continue;
      const what = note.kind === waitKindMutex ? `Mutex.lock (Atomics.wait at byte ${note.address})`
        : note.kind === waitKindBarrier ? `Barrier.wait (Atomics.wait at byte ${note.address})` : `Atomics.wait at byte ${note.address}`;
      parked.push({ tid: Math.max(0, endpoint.threadIdSeen), startUs: note.startMs * 1000, what });
    }
    return parked;
  }

  private onMessage(from: number, routed: Routed): void {
    noteActivity(routed.lane === 'engine' ? activity.protocolMessage : activity.runtimeMessage);
    // Messages to threads gathered from the frames before this one go first (it may answer or wake a thread).
    if (routed.lane !== 'workers') flushPendingEvents();
    switch (routed.lane) {
      // A message may close an interval (a recalled token's release): its deferred diffs follow.
      case 'engine': this.host.message(from, routed.message); this.flow.streamDeferred(); break;
      case 'workers': this.workers.onMessage(from, routed.message); break;
      case 'reports': this.reports.onMessage(from, routed.message); break;
      case 'heap': this.manager.heap.onChunkMessage(from, routed.message); break;
      case 'locks': this.webLocks.onMessage(from, routed.message); break;
    }
    this.scheduleLineTick();
    noteActivity(activity.idle);
  }

  /**
   * An app thread ended (its channel closed). Its parked requests are withdrawn. A lock granted to it that it
   * never read (its reply block still holds the grant: the thread was terminated while parked in Mutex.lock,
   * and the grant came before this node learned of its end, as when another thread's unlock arrived by the
   * doorbell ahead of the channel's 'close') is released on its behalf: under node such a thread never held
   * the lock, and the next locker would otherwise wait for ever.
   */
  private threadEnded(endpoint: ThreadEndpoint): void {
    this.race?.threadLeft(endpoint.threadIdSeen);
    this.withdrawEnded(endpoint);
    const pin = this.linePins.get(endpoint);
    if (pin !== undefined) {
      this.linePins.delete(endpoint);
      this.lineTable?.releasePin(pin);
    }
  }

  /**
   * A thread is known to have ended before its channel closed (its parent saw 'exit', or this node's manager
   * did for a hosted worker): what it queued in order is served, then its parked requests are withdrawn and an
   * unread lock grant released, before the parent's next request. The channel's close later does the rest.
   */
  threadExited(endpoint: ThreadEndpoint): void {
    endpoint.ended = true;
    this.manager.channel.serveInOrder(endpoint);
    this.withdrawEnded(endpoint);
    // Its workers on other nodes stop, as a Node worker's own workers do when it ends.
    this.workers.parentEnded(endpoint.threadIdSeen);
  }

  private withdrawEnded(endpoint: ThreadEndpoint): void {
    this.host.ownerEnded(endpoint);
    const grant = this.lockGrantsUnread.get(endpoint);
    if (grant !== undefined) {
      this.lockGrantsUnread.delete(endpoint);
      if (endpoint.block?.replyState() === replyStateReady) {
        this.host.sync({ kind: 'unlock', lockId: grant.lockId, threadId: grant.threadId },
          { owner: endpoint, answer: () => {}, kind: null, args: {}, tid: Math.max(0, endpoint.threadIdSeen) });
      }
    }
  }

  private onRequest(endpoint: ThreadEndpoint, request: ChannelRequest): unknown {
    // Any request proves the thread read its last answer (a lock grant among them).
    if (this.lockGrantsUnread.size > 0) this.lockGrantsUnread.delete(endpoint);
    switch (request.op) {
      case 'line':
        if (request.fn === 'pin') {
          assert(this.lineTable !== null, 'line requests come only when Atomics run by line ownership');
          let pin = this.linePins.get(endpoint);
          if (pin === undefined) {
            pin = this.lineTable.takePin();
            this.linePins.set(endpoint, pin);
          }
          return pin;
        }
        if (request.fn === 'unpinned') {
          // Posted: a thread ended an op on a line the layer waits to give up (or to see used): look now.
          this.lineTickNow();
          return replyLater;
        }
        this.flow.admit(() => { this.serveAdmitted(endpoint, request); this.scheduleLineTick(); });
        return replyLater;
      case 'atomic':
        if (request.line === true) {
          this.flow.admit(() => { this.serveAdmitted(endpoint, request); this.scheduleLineTick(); });
          return replyLater;
        }
        this.flow.admit(() => this.serveAdmitted(endpoint, request));
        return replyLater;
      case 'bc-open':
        this.workers.broadcastOpened(endpoint, request.name);
        return null;
      case 'bc-close':
        // Posted: nobody waits for an answer.
        this.workers.broadcastClosed(endpoint, request.name);
        return replyLater;
      case 'port-open':
        this.workers.portOpened(endpoint, request.id);
        return null;
      case 'wl-request':
      case 'wl-release':
        // Posts: in order with the thread's other traffic (a release's write notices).
        this.flow.admit(() => this.webLocks.serve(endpoint, request));
        return replyLater;
      case 'port-splice':
        this.workers.portsSpliced(endpoint, request.pairs);
        return null;
      case 'sync':
      case 'worker-spawn':
      case 'worker-post':
      case 'parent-post':
      case 'bc-post':
      case 'port-post':
      case 'port-close':
      case 'port-join':
      case 'thread-post':
      case 'thread-message-done':
      case 'worker-query':
      case 'worker-terminate':
        // These make traffic (a release's diffs, a message): admitted in
        // arrival order while every link is below its limit. A thread that
        // made a call stays parked until its request is admitted and answered.
        this.flow.admit(() => this.serveAdmitted(endpoint, request));
        return replyLater;
      case 'home-of':
        assert(Number.isInteger(request.page) && request.page >= 0 && request.page * pageBytes < this.manager.regionBytes, 'homeOf asks for a page of the global region');
        return this.host.engine.homeOf(request.page);
      case 'thread-exited': {
        // A call: the parent's 'exit' listeners run once the thread's workers on other nodes have stopped too.
        // (Its channel may have closed already: its workers are found by its thread id.)
        const ended = this.manager.channel.endpointOf(request.threadIdSeen);
        if (ended !== null) this.threadExited(ended);
        if (request.call !== true) {
          this.workers.parentEnded(request.threadIdSeen);
          return replyLater;
        }
        // And once the wake-ups the thread's notifies caused on other nodes have come here (exit fences,
        // src/runtime/remote-workers.ts): its parent hears them first, as under Node.
        let inline = true;
        let answered = false;
        this.workers.parentEnded(request.threadIdSeen, () => this.workers.localExitFence(() => {
          if (inline) answered = true;
          else endpoint.answer({ ok: true, value: null });
        }));
        inline = false;
        return answered ? null : replyLater;
      }
      case 'place':
        // Race mode: round-robin over the app nodes (the last node is the race home).
        if (this.raceMode) return (this.handle.nodeId + 1 + this.placementCounter++) % (this.handle.nodeCount - 1);
        return (this.handle.nodeId + 1 + this.placementCounter++) % this.handle.nodeCount;
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `unknown channel request '${request.op}'`);
    }
  }

  /**
   * The direct path of a sync entry from a thread's doorbell ring: what the general path does for it (the
   * manager's and this node's request handlers, admission by the flow gate, serveAdmitted, syncInEngine and
   * raceSync) in one function, with no request object. Declined (false, nothing done) when the flow gate would
   * hold it, or when its thread has ended (the general path then serves what it must and drops the rest).
   */
  serveSyncEntry(endpoint: ThreadEndpoint, entry: RingSync): boolean {
    const { kind, id, threadId, parties, tryOnly, posted } = entry;
    if (!this.flow.admitsNow() || (!posted && !this.manager.channel.endpoints.has(endpoint))) return false;
    noteActivity(activity.channelRequest);
    // Any request proves the thread read its last answer (a lock grant among them).
    if (this.lockGrantsUnread.size > 0) this.lockGrantsUnread.delete(endpoint);
    const tid = Math.max(0, endpoint.threadIdSeen);
    try {
      if (kind === ringSyncBarrier) {
        this.host.sync({ kind: 'barrier', barrierId: id, parties: parties < 0 ? 0 : parties },
          { owner: endpoint, answer: posted ? answerPosted : endpoint.answer, kind: 'barrier', args: { barrier: id }, tid });
      } else if (kind === ringSyncLock) {
        const answer = (result: SyncResult): void => {
          if (posted) return answerPosted(result);
          // A grant ({ ok, value: null }) is remembered until the thread's next request shows it was read (threadEnded).
          if (result.ok && result.value === null) this.lockGrantsUnread.set(endpoint, { lockId: id, threadId });
          endpoint.answer(result);
        };
        this.host.sync({ kind: 'lock', lockId: id, threadId, tryOnly }, { owner: endpoint, answer, kind: tryOnly ? null : 'lock', args: { lock: id }, tid });
      } else {
        this.host.sync({ kind: 'unlock', lockId: id, threadId },
          { owner: endpoint, answer: posted ? answerPosted : endpoint.answer, kind: null, args: noArgs, tid });
      }
    } catch (error) {
      if (!isDsmError(error) || posted) throw error;
      endpoint.answer({ ok: false, code: (error as DsmError).code, message: (error as DsmError).message });
    }
    this.flow.streamDeferred();
    this.scheduleLineTick();
    noteActivity(activity.idle);
    return true;
  }

  /**
   * The direct path of an Atomics entry by line ownership: a shipped or
   * line-wanting op ('atomic' with `line`, no asyncId) and a line's acquire,
   * wait or notify, served as the general path serves them after admission, in
   * one function. Declined as serveSyncEntry declines, and for anything else.
   */
  serveAtomicsEntry(endpoint: ThreadEndpoint, request: Extract<ChannelRequest, { op: 'atomic' | 'line' }>, posted: boolean): boolean {
    if (request.op === 'atomic') {
      if (request.line !== true || request.asyncId !== undefined) return false;
    } else if (request.fn !== 'acquire' && request.fn !== 'wait' && request.fn !== 'notify') {
      return false;
    }
    // Each of these is a call; anything posted keeps the general path.
    if (posted || !this.flow.admitsNow() || !this.manager.channel.endpoints.has(endpoint)) return false;
    noteActivity(activity.channelRequest);
    if (this.lockGrantsUnread.size > 0) this.lockGrantsUnread.delete(endpoint);
    try {
      if (request.op === 'atomic' && request.fn === 'wait') {
        this.host.sync(this.lineWaitShipOf(request), { owner: endpoint, answer: endpoint.answer, kind: 'atomic', args: { op: 'wait', address: request.address }, tid: Math.max(0, endpoint.threadIdSeen) });
      } else if (request.op === 'atomic') {
        assert(request.fn !== 'wait' && request.fn !== 'notify', 'a line op is a read-modify-write, store or load');
        const lineOp: SyncRequest = { kind: 'lineOp', op: request.fn, address: request.address, width: request.width as 1 | 2 | 4 | 8, operands: request.operands };
        if (request.workMs !== undefined) lineOp.workMs = request.workMs;
        this.host.sync(lineOp, { owner: endpoint, answer: endpoint.answer, kind: null, args: noArgs, tid: Math.max(0, endpoint.threadIdSeen) });
      } else {
        const value = this.serveLine(endpoint, request);
        if (value !== replyLater) endpoint.answer({ ok: true, value: value ?? null });
      }
    } catch (error) {
      if (!isDsmError(error)) throw error;
      endpoint.answer({ ok: false, code: (error as DsmError).code, message: (error as DsmError).message });
    }
    this.flow.streamDeferred();
    this.scheduleLineTick();
    noteActivity(activity.idle);
    return true;
  }

  /** Whether the thread waits for an answer to this request (a call) or went on (a post). */
  private static isCall(request: ChannelRequest): boolean {
    switch (request.op) {
      case 'atomic': return request.asyncId === undefined;
      case 'line': return request.fn !== 'unpinned';
      case 'sync': return request.posted !== true;
      case 'worker-post': case 'parent-post': case 'bc-post': case 'port-post': return request.posted !== true;
      case 'thread-post': case 'worker-query': return true;
      default: return false;
    }
  }

  /** Serves an admitted request; answers a call whose answer is known now (or an error), as the channel server would. */
  private serveAdmitted(endpoint: ThreadEndpoint, request: ChannelRequest): void {
    const isCall = ClusterNode.isCall(request);
    // A thread that ended while its call waited for admission wants no answer
    // (a posted request, e.g. an unlock, is still performed).
    if (isCall && !this.manager.channel.endpoints.has(endpoint)) return;
    let value: unknown;
    try {
      if (request.op === 'atomic' || request.op === 'sync') {
        this.syncInEngine(endpoint, request);
        value = replyLater;
      } else if (request.op === 'line') {
        value = this.serveLine(endpoint, request);
      } else if (isWorkerRequest(request)) {
        value = this.workers.serve(endpoint, request);
      } else {
        throw new DsmError('DSM_ERR_CHANNEL', `request '${request.op}' is not served after admission`);
      }
    } catch (error) {
      if (!isDsmError(error) || !isCall) throw error;
      endpoint.answer({ ok: false, code: (error as DsmError).code, message: (error as DsmError).message });
      return;
    }
    if (value !== replyLater && isCall) endpoint.answer({ ok: true, value: value ?? null });
  }

  /** Parks the thread's request in the engine host; the answer goes back through the channel. */
  private syncInEngine(endpoint: ThreadEndpoint, request: EngineRequest): void {
    const posted = request.op === 'sync' && request.posted === true;
    const asyncId = request.op === 'atomic' ? request.asyncId : undefined;
    const answer = (result: SyncResult): void => {
      if (asyncId !== undefined) {
        assert(result.ok, 'an atomic wait succeeds');
        endpoint.sendEvent({ kind: 'atomic-done', asyncId, value: String(result.value) } satisfies ChannelEvent);
        return;
      }
      if (posted) {
        // Nobody waits: the app thread checked ownership itself before posting.
        assert(result.ok, `a posted sync request succeeds (${result.ok ? '' : result.message})`);
        return;
      }
      endpoint.answer(result);
    };
    const park = (op: string, engineRequest: SyncRequest, kind: SyncKind | null, args: Record<string, unknown>, answerWith = answer) =>
      this.raceSync(op, request, () => this.host.sync(engineRequest, { owner: endpoint, answer: answerWith, kind, args, tid: Math.max(0, endpoint.threadIdSeen) }));
    if (request.op === 'atomic' && request.line === true && request.fn === 'wait' && asyncId === undefined) {
      // A wait on a line not held here (src/protocol/lines.ts): shipped to the directory, or null once the node holds the line.
      this.host.sync(this.lineWaitShipOf(request), { owner: endpoint, answer, kind: 'atomic', args: { op: 'wait', address: request.address }, tid: Math.max(0, endpoint.threadIdSeen) });
    } else if (request.op === 'atomic' && request.line === true) {
      // A line op (src/protocol/lines.ts): null once the node holds the line, or the shipped op's result.
      assert(request.fn !== 'wait' && request.fn !== 'notify' && this.lineTable !== null, 'a line op is a read-modify-write, store or load with lines');
      this.host.sync({
        kind: 'lineOp', op: request.fn, address: request.address, width: request.width as 1 | 2 | 4 | 8, operands: request.operands,
        ...(request.workMs === undefined ? {} : { workMs: request.workMs }),
      },
        { owner: endpoint, answer, kind: null, args: {}, tid: Math.max(0, endpoint.threadIdSeen) });
    } else if (request.op === 'atomic') {
      park(`Atomics.${request.fn}`, {
        kind: 'atomic', op: request.fn, address: request.address,
        width: request.width as 1 | 2 | 4 | 8, operands: request.operands, timeoutMs: request.timeoutMs,
      }, 'atomic', { op: request.fn, address: request.address });
    } else if (request.kind === 'barrier') {
      park('Barrier.wait', { kind: 'barrier', barrierId: request.id, parties: request.parties ?? 0 }, 'barrier', { barrier: request.id });
    } else if (request.kind === 'lock') {
      const tryOnly = request.tryOnly === true;
      const { id: lockId, threadId } = request;
      const lockAnswer = (result: SyncResult): void => {
        // A grant ({ ok, value: null }) is remembered until the thread's next request shows it was read (threadEnded).
        if (result.ok && result.value === null && !posted) this.lockGrantsUnread.set(endpoint, { lockId, threadId });
        answer(result);
      };
      park(tryOnly ? 'Mutex.tryLock' : 'Mutex.lock', { kind: 'lock', lockId, threadId, tryOnly }, tryOnly ? null : 'lock', { lock: lockId }, lockAnswer);
    } else {
      park('Mutex.unlock', { kind: 'unlock', lockId: request.id, threadId: request.threadId }, null, {});
    }
  }

  /** An Atomics.wait on a line the node did not hold when the thread looked (src/threads/atomics.ts): the line layer's request. */
  private lineWaitShipOf(request: Extract<ChannelRequest, { op: 'atomic' }>): SyncRequest {
    assert(this.lineTable !== null && (request.width === 4 || request.width === 8) && request.operands.length === 1, 'a line wait names its element and value');
    return { kind: 'lineWaitShip', address: request.address, width: request.width as 4 | 8, expected: request.operands[0]!, timeoutMs: request.timeoutMs };
  }

  /** Atomics by line ownership: a thread needs a line, waits on or notifies a location (src/threads/atomics.ts). */
  private serveLine(endpoint: ThreadEndpoint, request: LineRequest): unknown {
    assert(this.lineTable !== null, 'line requests come only when Atomics run by line ownership');
    const address = request.address ?? 0;
    const tid = Math.max(0, endpoint.threadIdSeen);
    const answer = (result: SyncResult): void => {
      endpoint.answer(result.ok ? { ok: true, value: result.value } : { ok: false, code: result.code, message: result.message });
    };
    switch (request.fn) {
      case 'acquire':
        this.host.sync({ kind: 'line', line: request.line ?? 0 }, { owner: endpoint, answer, kind: null, args: {}, tid });
        return replyLater;
      case 'wait': case 'waitAsync': {
        const asyncId = request.fn === 'waitAsync' ? request.asyncId : undefined;
        const waitAnswer = asyncId === undefined ? answer : (result: SyncResult): void => {
          assert(result.ok, 'an atomic wait succeeds');
          endpoint.sendEvent({ kind: 'atomic-done', asyncId, value: String(result.value) } satisfies ChannelEvent);
        };
        const pin = this.linePins.get(endpoint);
        // An Atomics.wait parks its thread, and its node may give the line back with the lineWait (session 17):
        // its own pin goes first. Safe: the lineWait leaves (or registers) inside this call, before any release of
        // the line by this node, and no other event of this thread runs in between.
        const parks = asyncId === undefined;
        if (parks && pin !== undefined) this.lineTable.clearPin(pin);
        try {
          this.host.sync({ kind: 'lineWait', address, timeoutMs: request.timeoutMs ?? -1, ...(parks ? { parks } : {}) },
            { owner: endpoint, answer: waitAnswer, kind: 'atomic', args: { op: 'wait', address }, tid });
        } finally {
          // The wait is registered (or on its way, before any later release of the line): the line may go.
          if (pin !== undefined) this.lineTable.clearPin(pin);
        }
        return asyncId === undefined ? replyLater : null;
      }
      case 'notify':
        this.host.sync({ kind: 'lineNotify', address, count: request.count ?? -1, ...(request.afterOp === true ? { afterOp: true } : {}) },
          { owner: endpoint, answer, kind: 'atomic', args: { op: 'notify', address }, tid });
        return replyLater;
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `unknown line request '${request.fn}'`);
    }
  }

  /** Runs the engine's tick now (a thread ended an op the line layer waited for), then schedules the next. */
  private lineTickNow(): void {
    if (this.lineTable === null) return;
    noteActivity(activity.engineTick);
    this.host.tick(performance.now());
    this.scheduleLineTick();
    noteActivity(activity.idle);
  }

  /** Runs the engine's tick when it has work due (a wanted line's window, a revoke to retry, a timed wait, a kept lock token's window). */
  private scheduleLineTick(): void {
    const atMs = this.host.nextTickMs();
    if (atMs === null || atMs >= this.lineTimerAtMs) return;
    if (this.lineTimer !== null) clearTimeout(this.lineTimer);
    this.lineTimerAtMs = atMs;
    this.lineTimer = setTimeout(() => {
      this.lineTimer = null;
      this.lineTimerAtMs = Infinity;
      noteActivity(activity.engineTick);
      this.host.tick(performance.now());
      this.scheduleLineTick();
      noteActivity(activity.idle);
    }, Math.min(nodeTimerMsMax, Math.max(0, atMs - performance.now())));
    this.lineTimer.unref();
  }

  /** Runs an engine synchronization; in race mode names it as the bound of the intervals around it (with the program's call site). */
  private raceSync<T>(op: string, request: object | null, run: () => T): T {
    if (this.race === null) return run();
    return this.race.around(op, (request as { site?: string | null } | null)?.site ?? null, run);
  }

  stats(): NodeStats {
    // Read-ahead touches the handler served and no event has drained yet count as used (no window issued now).
    this.host.engine.onTouched(false);
    const stats = this.observer.snapshot(this.manager.native.stats(), this.host.engine.counters());
    // Locks taken in the node's lock token table are acquires too, with no wait and no request.
    if (this.lockTokens !== null) stats.lockAcquires += this.lockTokens.takes();
    return stats;
  }

  /** Race mode, node 0 at the end of the run: closes the main thread's last interval and gathers every node's records. */
  async finishRace(): Promise<RaceChecker> {
    assert(this.raceChecker !== null, 'node 0 holds the race checker');
    this.raceSync('program end', null, () => this.host.engine.releaseFor(this.handle.nodeId));
    // Records travel before the report on each link (FIFO): once every node has answered, all have arrived.
    await this.reports.gather(false);
    return this.raceChecker;
  }
}

/** A posted sync request's answer: nobody waits (the app thread checked ownership itself before posting). */
function answerPosted(result: SyncResult): void {
  assert(result.ok, `a posted sync request succeeds (${result.ok ? '' : result.message})`);
}

/** The trace arguments of a request traced with none. */
const noArgs: Record<string, unknown> = Object.freeze({});

/**
 * Puts this node process under its watchdog (signals, a stalled loop, a hung
 * exit, a vanished parent) and makes an uncaught exception on the manager
 * thread end the node with one line naming it (see src/cluster/watchdog.ts).
 */
function superviseNode(handle: ClusterHandle, parentPid: number | undefined): void {
  const floorMs = handle.heartbeatTimeoutMs ?? heartbeatTimeoutMs;
  supervise({ nodeId: handle.nodeId, stallMs: Math.round(floorMs * loopStallFactor), ...(parentPid === undefined ? {} : { parentPid }) });
  endOnManagerFailure(() => handle.nodeId, async (message) => {
    if (handle.fatal === undefined) process.stderr.write(`${message}\n`);
    else await handle.fatal(message);
  }, exitCodeNodeDied);
}

/** The DSM_NODE_RUNTIME entry of nodes 1..N-1. */
export async function runNode(handle: ClusterHandle): Promise<void> {
  const config = runtimeConfig<{ regionBytes: number; protocol: string; placement: PlacementName; twinBytes: number; race: boolean }>();
  const parentPid = supervisingParentPid();
  const raceModules = config.race === true ? await loadRaceModules() : undefined;
  const node = new ClusterNode(handle, {
    regionBytes: config.regionBytes ?? regionBytesDefault, protocol: config.protocol ?? 'hlrc',
    ...(config.placement === undefined ? {} : { placement: config.placement }),
    ...(config.twinBytes === undefined ? {} : { twinBytes: config.twinBytes }),
    ...(raceModules === undefined ? {} : { race: true, raceModules }),
    ...(parentPid === undefined || !Number.isInteger(parentPid) ? {} : { parentPid }),
  });
  void node;
  // The process lives until the cluster ends it.
  setInterval(() => {}, 1 << 30);
}

/** Node 0: runs the program's main thread and ends the cluster with its exit code. */
export async function runClusterProgram(
  handle: ClusterHandle,
  options: {
    regionBytes: number; protocol: string; placement?: PlacementName; twinBytes?: number; file: string; args: string[]; report?: ReportOptions;
    /** Race mode (docs/RACE.md): the report goes to stderr (and JSON to `jsonPath`); races found make the exit code exitCodeRaces. */
    race?: boolean; racePages?: boolean; raceJsonPath?: string;
    /** The program's main thread, started early and waiting at its gate (src/cli/main.ts), or null. */
    mainThread?: PrestartedThread | null;
  },
): Promise<never> {
  const node = new ClusterNode(handle, options.race === true ? { ...options, raceModules: await loadRaceModules() } : options);
  node.race?.threadStarted(0);
  if (hopsOn) hop('m:node made');
  const report = options.report ?? {};
  if (report.tracePath !== undefined) node.reports.startTrace();
  let code: number;
  const startMs = performance.now();
  try {
    code = await runMainThread(node.manager, { file: options.file, args: options.args }, options.mainThread ?? null);
  } catch (error) {
    if (error instanceof DsmError) process.stderr.write(`dsm: ${error.code}: ${error.message}\n`);
    else process.stderr.write(`dsm: ${mappedStackOf(error)}\n`);
    code = 2;
  }
  const seconds = (performance.now() - startMs) / 1000;
  if (hopsOn) hop('m:program ended');
  stopStallCheck();
  if (node.raceChecker !== null) {
    try {
      const { finishRaceReport } = await import('../race/output.js');
      code = finishRaceReport(await node.finishRace(), code, options.raceJsonPath);
    } catch (error) {
      process.stderr.write(`dsm: race report: ${error instanceof DsmError ? `${error.code}: ${error.message}` : String(error)}\n`);
      if (code === 0) code = 1;
    }
  }
  if (report.stats === true || report.statsJsonPath !== undefined || report.tracePath !== undefined) {
    try {
      const gathered = await node.reports.gather(report.tracePath !== undefined);
      writeRunReport(report, { protocol: options.protocol, nodeCount: handle.nodeCount, regionBytes: options.regionBytes, seconds, exitCode: code, ...gathered });
    } catch (error) {
      process.stderr.write(`dsm: ${error instanceof DsmError ? `${error.code}: ${error.message}` : String(error)}\n`);
      if (code === 0) code = 1;
    }
  }
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return handle.shutdown(code);
}
