// A node of a multi-node run: the manager wires the native MMU, the coherence
// engine (src/protocol) and the cluster's mesh together, serves its app
// threads' channel requests (Atomics, worker placement, remote workers), and
// hosts workers whose parents run on other nodes.
//
// Node 0 also runs the program's main thread (runClusterProgram); every other
// node runs `runNode` (the DSM_NODE_RUNTIME module of src/cluster/node-main).

import { performance } from 'node:perf_hooks';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { ClusterHandle, MeshContext, MeshLike } from '../cluster/index.js';
import { createTransportMesh } from '../cluster/common.js';
import { replyLater, type ThreadEndpoint } from '../channel/server.js';
import type { AppThreadConfig, ChannelEvent, ChannelRequest, RemoteWorkerOptions } from '../channel/wire.js';
import { diffsMessageBytesMax, faultSlotCount, heartbeatTimeoutMs, loopStallFactor, pageBytes, regionBytesDefault, reportTimeoutMs, traceEventsPerMessage } from '../constants.js';
import { DsmError, assert, exitCodeNodeDied, isDsmError } from '../errors.js';
import { activity, blockLoopForTest, endOnManagerFailure, noteActivity, stopStallCheck, supervise, testHook } from '../cluster/watchdog.js';
import type { NativeMmu } from '../memory/native.js';
import { createEngine, linesSuit, type Engine, type FaultResult, type PlacementName, type SyncResult } from '../protocol/engine.js';
import type { PageMemory } from '../protocol/memory.js';
import type { ConsistencyInfo, ProtocolMessage } from '../protocol/messages.js';
import { serializeValue } from '../threads/clone.js';
import { appEntryUrl } from '../threads/worker.js';
import { NodeManager } from './manager.js';
import { LineTable } from './atomic-lines.js';
import { runMainThread } from './program.js';
import { epochUs, NodeObserver, type NodeStats, type SyncKind, type TraceEvent } from './observe.js';
import { FlowGate, sendQueueBytesFromEnvironment } from './flow.js';
import { writeRunReport, type ReportOptions } from './report.js';
import { RaceChecker } from '../race/checker.js';
import { RaceRecorder } from '../race/recorder.js';
import type { AllocationRecord, IntervalWrites } from '../race/record.js';

/** Engine ticks drive Atomics.wait timeouts. */
const tickIntervalMs = 5;
/** Sync requests in flight on one node (each is a parked app thread). */
const syncRefCountMax = 4096;

type RuntimeMessage =
  | { type: 'rtSpawn'; spawnId: string; threadIdSeen: number; entry: string; evalCode: boolean; workerData: Uint8Array; options: RemoteWorkerOptions; info: ConsistencyInfo }
  | { type: 'rtEvent'; spawnId: string; event: 'online' | 'message' | 'error' | 'exit'; bytes?: Uint8Array; code?: number; threadId?: number; info: ConsistencyInfo; site?: string | null }
  /** `site` (race mode): where the sender called postMessage, to name the receiver's acquire. */
  | { type: 'rtPost'; spawnId: string; bytes: Uint8Array; info: ConsistencyInfo; site?: string | null }
  | { type: 'rtTerminate'; spawnId: string }
  // Observability (node 0 asks, every other node answers; see src/runtime/observe.ts)
  | { type: 'rtTraceStart'; originUs: number }
  | { type: 'rtReportRequest'; trace: boolean }
  | { type: 'rtReportTrace'; events: TraceEvent[] }
  | { type: 'rtReport'; stats: NodeStats; dropped: number }
  // race mode (src/race/): every node's interval records and allocations go to node 0's checker
  | { type: 'rtRace'; record: IntervalWrites }
  | { type: 'rtRaceAlloc'; record: AllocationRecord };

type DiffsMessage = Extract<ProtocolMessage, { type: 'diffs' }>;

function diffBytesOf(diffs: Uint8Array[]): number {
  let bytes = 0;
  for (const diff of diffs) bytes += diff.byteLength + 16;
  return bytes;
}

/** Pieces of a diffs message, each within diffsMessageBytesMax (a single diff is at most a few pages' worth). */
function splitDiffs(message: DiffsMessage): DiffsMessage[] {
  const pieces: DiffsMessage[] = [];
  let piece: DiffsMessage = { type: 'diffs', interval: message.interval, pages: [], diffs: [] };
  let bytes = 0;
  for (let index = 0; index < message.pages.length; index++) {
    const diff = message.diffs[index]!;
    if (bytes + diff.byteLength + 16 > diffsMessageBytesMax && piece.pages.length > 0) {
      pieces.push(piece);
      piece = { type: 'diffs', interval: message.interval, pages: [], diffs: [] };
      bytes = 0;
    }
    piece.pages.push(message.pages[index]!);
    piece.diffs.push(diff);
    bytes += diff.byteLength + 16;
  }
  if (piece.pages.length > 0) pieces.push(piece);
  return pieces;
}

const observabilityTypes = new Set(['rtTraceStart', 'rtReportRequest', 'rtReportTrace', 'rtReport', 'rtRace', 'rtRaceAlloc']);

const noRanges = {
  rangeOf: () => null,
  bufferAt: (): never => { throw new DsmError('DSM_ERR_INTERNAL', 'the manager holds no dsm buffers'); },
};

/**
 * The mesh, with messages held from the moment it exists until the runtime
 * takes over: a peer may send before this node has wired its engine.
 */
export async function createMesh(context: MeshContext): Promise<MeshLike> {
  const mesh = await createTransportMesh(context);
  const held: Array<[number, unknown]> = [];
  const hold = (from: number, message: unknown) => held.push([from, message]);
  mesh.on('message', hold);
  (mesh as MeshLike & { takeOver?: (listener: (from: number, message: unknown) => void) => void }).takeOver = (listener) => {
    mesh.off('message', hold);
    mesh.on('message', listener);
    for (const [from, message] of held.splice(0)) listener(from, message);
  };
  return mesh;
}

function asPageMemory(native: NativeMmu, observer: NodeObserver): PageMemory {
  const pagesOf = (pages: Uint32Array | number[]) => (pages instanceof Uint32Array ? pages : Uint32Array.from(pages));
  return {
    protect: (pages, prot) => native.protectPages(pagesOf(pages), prot),
    setFastWrite: (pages, enabled) => native.setFastWrite(pagesOf(pages), enabled),
    setTwinless: (pages, enabled) => native.setTwinless(pagesOf(pages), enabled),
    setTwinLimit: (pageCount) => native.setTwinLimit(pageCount),
    drainDirty: () => {
      const pages = native.drainDirty();
      // Fast-path write faults never reach JS one by one: they show in the trace when drained.
      if (observer.tracing && pages.length > 0) {
        const ts = observer.traceTs(epochUs());
        for (const page of pages) observer.record({ name: 'write fault', cat: 'fault', ph: 'i', s: 't', ts, pid: observer.nodeId, tid: 0, args: { page, fast: true } });
      }
      return pages;
    },
    makeTwin: (page) => native.makeTwin(page),
    flush: (pages) => native.flush(pagesOf(pages)),
    applyDiff: (page, diff) => native.applyDiff(page, diff),
    readPage: (page, into) => native.readPage(page, into),
    writePage: (page, from) => native.writePage(page, from),
  };
}

export class ClusterNode {
  readonly handle: ClusterHandle;
  readonly manager: NodeManager;
  readonly engine: Engine;
  private readonly mesh: MeshLike & {
    send(nodeId: number, message: object): boolean; lastSentBytes?: number; lastReceivedBytes?: number;
    queuedBytes?(nodeId: number): number; peerIds?: number[];
  };
  /** Admits work that makes traffic only while every link is below its limit (src/runtime/flow.ts). */
  readonly flow: FlowGate;
  /** Parked sync requests; a `posted` one has no thread waiting for its answer. */
  private readonly syncWaiters = new Map<number, {
    endpoint: ThreadEndpoint; kind: SyncKind | null; startUs: number; args: Record<string, unknown>; posted: boolean;
    /** Answered as an 'atomic-done' event (Atomics.waitAsync), not through the reply block. */
    asyncId?: number;
  }>();
  readonly observer: NodeObserver;
  /** Faults being served, by slot (kept only while tracing). */
  private readonly faultsInFlight = new Map<number, { page: number; isWrite: boolean; startUs: number }>();
  /** Page fetches in flight (tracing only): page -> async event id. */
  private readonly fetchesInFlight = new Map<number, string>();
  private fetchCounter = 0;
  /** Reports gathered by node 0 at the end of a run. */
  private reportWaiter: { reports: Map<number, { stats: NodeStats; dropped: number }>; events: TraceEvent[]; done: () => void } | null = null;
  private nextSyncRef = faultSlotCount;
  /** Refs withdrawn after the engine threw taking them; a late answer for one is dropped. */
  private readonly withdrawn = new Set<number>();
  private placementCounter = 0;
  /** Workers started here for parents elsewhere: spawnId -> worker and the parent's node. */
  private readonly hosted = new Map<string, { worker: Worker; parentNode: number }>();
  /** The channel endpoints of those workers: endpoint -> spawnId (their parentPort posts arrive here). */
  private readonly hostedEndpoints = new Map<ThreadEndpoint, string>();
  /** Remote workers of this node's app threads: spawnId -> (endpoint, handle id, node). */
  private readonly remote = new Map<string, { endpoint: ThreadEndpoint; handleId: number; nodeId: number }>();
  private spawnCounter = 0;
  /** Race mode: this node's recorder (null on the race home, which runs no app thread), and node 0's checker. */
  readonly race: RaceRecorder | null = null;
  readonly raceChecker: RaceChecker | null = null;
  private readonly raceMode: boolean;
  /** Atomics by line ownership (issue 12.2): the node's line table and each app thread's pin word in it. */
  private readonly lineTable: LineTable | null = null;
  private readonly linePins = new Map<ThreadEndpoint, number>();
  private lineTimer: NodeJS.Timeout | null = null;
  private lineTimerAtMs = Infinity;

  constructor(handle: ClusterHandle, options: { regionBytes: number; protocol: string; placement?: PlacementName; twinBytes?: number; parentPid?: number; race?: boolean; racePages?: boolean }) {
    assert(handle.mesh !== null, 'a cluster node has a mesh');
    superviseNode(handle, options.parentPid);
    this.handle = handle;
    this.mesh = handle.mesh as ClusterNode['mesh'];
    this.manager = new NodeManager({ nodeId: handle.nodeId, nodeCount: handle.nodeCount, regionBytes: options.regionBytes });
    this.observer = new NodeObserver(handle.nodeId);
    // Race mode (docs/RACE.md): the last node is home of every page and runs
    // no app thread; every other node runs one thread, so its intervals are
    // that thread's and its diffs are that thread's exact writes.
    this.raceMode = options.race === true;
    const raceHome = handle.nodeCount - 1;
    if (this.raceMode) {
      assert(handle.nodeCount >= 2, 'race mode has a home node besides the app nodes');
      if (handle.nodeId === 0) this.raceChecker = new RaceChecker({ pageReads: options.racePages === true });
      if (handle.nodeId !== raceHome) {
        this.race = new RaceRecorder(handle.nodeId, (record) => {
          if (this.raceChecker !== null) this.raceChecker.addInterval(record);
          else this.sendRuntime(0, { type: 'rtRace', record });
        }, () => [...this.manager.channel.endpoints].map((endpoint) => endpoint.threadIdSeen).filter((id) => id >= 0));
        this.manager.allocObserver = (offset, byteLength, site, endpoint) => {
          const record: AllocationRecord = { address: offset, byteLength, site, thread: Math.max(0, endpoint.threadIdSeen), node: handle.nodeId };
          if (this.raceChecker !== null) this.raceChecker.addAllocation(record);
          else this.sendRuntime(0, { type: 'rtRaceAlloc', record });
        };
      }
    }
    const memory = asPageMemory(this.manager.native, this.observer);
    if (process.env.DSM_ATOMIC_LINES !== '0' && linesSuit({ protocol: options.protocol, nodeCount: handle.nodeCount, ...(this.raceMode ? { homeNode: raceHome } : {}) })) {
      this.lineTable = new LineTable(undefined, () => this.manager.native.membarrier());
      this.manager.atomicLines = this.lineTable.buffer;
    }
    this.engine = createEngine({
      nodeId: handle.nodeId,
      nodeCount: handle.nodeCount,
      pageCount: options.regionBytes / pageBytes,
      protocol: options.protocol,
      ...(options.placement === undefined ? {} : { placement: options.placement }),
      ...(options.twinBytes === undefined ? {} : { twinPageCountMax: Math.floor(options.twinBytes / pageBytes) }),
      memory: this.race === null ? memory : this.race.wrap(memory),
      ...(this.raceMode ? { homeNode: raceHome } : {}),
      ...(this.race === null ? {} : { onIntervalClosed: (index: number, vc: readonly number[]) => this.race!.intervalClosed(index, vc) }),
      send: (toNode, message) => this.sendEngine(toNode, message),
      host: { resume: (ref, result) => this.resume(ref, result) },
      // Monotonic: Date.now() can step backwards and is read only at each tick.
      clock: () => performance.now(),
      // Wasted read-ahead bytes in --stats (issue 13); each read-ahead page's first touch then faults locally.
      readAheadTracking: process.env.DSM_READAHEAD_STATS === '1',
      ...(this.lineTable === null ? {} : { lines: this.lineTable }),
    });
    const mesh = this.mesh;
    this.flow = new FlowGate({
      queuedBytes: (nodeId) => mesh.queuedBytes?.(nodeId) ?? 0,
      get peerIds() { return mesh.peerIds ?? []; },
      on: (event, listener) => mesh.on(event, listener),
    }, this.engine, sendQueueBytesFromEnvironment(), (paused) => this.manager.native.pauseFastWrite(paused));
    const throwOnFault = testHook('MANAGER_THROW', handle.nodeId) !== null;
    this.manager.handleFaults((records) => {
      noteActivity(activity.faults);
      // Test hook: the manager fails while the app thread that faulted is parked on it.
      if (throwOnFault) throw new Error(`test hook DSM_TEST_HOOK_MANAGER_THROW: node ${handle.nodeId} failed while serving a fault on page ${records[1]}`);
      this.race?.sample();
      for (let index = 0; index < records.length; index += 3) {
        const slot = records[index]!;
        const page = records[index + 1]!;
        const isWrite = (records[index + 2]! & 1) === 1;
        if (this.observer.tracing) this.faultsInFlight.set(slot, { page, isWrite, startUs: epochUs() });
        if (this.race !== null && !isWrite) this.race.onReadFault(page, (records[index + 2]! >>> 1) & (pageBytes - 1));
        // A write may make one more twin: held while too many pages are dirty.
        if (isWrite) this.flow.admitWriteFault(() => this.engine.onFault(slot, page, true));
        else this.engine.onFault(slot, page, false);
      }
      noteActivity(activity.idle);
    });
    this.manager.handleRequests((endpoint, request) => {
      noteActivity(activity.channelRequest);
      // Test hook: the manager fails while the app thread that asked is parked on its answer.
      if (throwOnFault && (request.op === 'atomic' || request.op === 'sync')) {
        throw new Error(`test hook DSM_TEST_HOOK_MANAGER_THROW: node ${handle.nodeId} failed while serving an app thread's '${request.op}' request`);
      }
      const answer = this.onRequest(endpoint, request);
      this.scheduleLineTick();
      noteActivity(activity.idle);
      return answer;
    });
    this.manager.channel.onThreadEnd((endpoint) => {
      this.race?.threadLeft(endpoint.threadIdSeen);
      this.threadEnded(endpoint);
    });
    this.manager.start();
    this.engine.start();
    this.race?.armAll(options.regionBytes / pageBytes);
    const takeOver = (this.mesh as unknown as { takeOver?: (l: (from: number, m: unknown) => void) => void }).takeOver;
    const listener = (from: number, message: unknown) => this.onMessage(from, message as { type: string });
    if (takeOver !== undefined) takeOver(listener);
    else this.mesh.on('message', listener);
    setInterval(() => {
      noteActivity(activity.engineTick);
      this.engine.onTick(performance.now());
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
    handle.describeInFlight(() => `${this.syncWaiters.size} synchronization request(s) and ${this.remote.size} remote worker(s) in flight on node ${handle.nodeId}${this.flow.describeWaiting()}`);
  }

  private resume(ref: number, result: SyncResult | FaultResult): void {
    if (ref < faultSlotCount) {
      this.manager.native.resume(ref);
      const fault = this.faultsInFlight.get(ref);
      if (fault !== undefined) {
        this.faultsInFlight.delete(ref);
        this.observer.record({
          name: fault.isWrite ? 'write fault' : 'read fault', cat: 'fault', ph: 'X', ts: this.observer.traceTs(fault.startUs),
          dur: epochUs() - fault.startUs, pid: this.observer.nodeId, tid: 0, args: { page: fault.page },
        });
      }
      return;
    }
    const waiter = this.syncWaiters.get(ref);
    // A request withdrawn (its thread ended, or the engine threw taking it) may still get its one answer: drop it.
    if (waiter === undefined && this.withdrawn.delete(ref)) return;
    assert(waiter !== undefined, 'a sync result answers a waiting thread');
    this.syncWaiters.delete(ref);
    const { endpoint } = waiter;
    if (waiter.kind !== null) this.observer.syncDone(waiter.kind, waiter.startUs, Math.max(0, endpoint.threadIdSeen), waiter.args);
    if (waiter.asyncId !== undefined) {
      assert(result.ok, 'an atomic wait succeeds');
      endpoint.port.postMessage({ kind: 'atomic-done', asyncId: waiter.asyncId, value: String(result.value) } satisfies ChannelEvent);
      return;
    }
    if (waiter.posted) {
      // Nobody waits: the app thread checked ownership itself before posting.
      assert(result.ok, `a posted sync request succeeds (${result.ok ? '' : result.message})`);
      return;
    }
    endpoint.answer(result.ok ? { ok: true, value: result.value } : { ok: false, code: result.code, message: result.message });
  }

  /**
   * Hands a parked request to the engine. If the engine throws, the thread is
   * answered with that error (by the channel) and its waiter is withdrawn, so
   * that no second answer can reach it later ("one answer per call").
   */
  private syncInEngine(ref: number, request: Parameters<Engine['onSync']>[1]): void {
    try {
      this.engine.onSync(ref, request);
    } catch (error) {
      this.syncWaiters.delete(ref);
      this.withdrawn.add(ref);
      try { this.engine.cancel(ref); } catch { /* the engine is already failing */ }
      throw error;
    }
  }

  private onRequest(endpoint: ThreadEndpoint, request: ChannelRequest): unknown {
    switch (request.op) {
      case 'line':
        if (request.fn === 'pin') {
          assert(this.lineTable !== null, 'line requests come only when Atomics run by line ownership');
          if (!this.linePins.has(endpoint)) this.linePins.set(endpoint, this.lineTable.takePin());
          return this.linePins.get(endpoint)!;
        }
        this.flow.admit(() => { this.serveAdmitted(endpoint, request); this.scheduleLineTick(); });
        return replyLater;
      case 'atomic':
      case 'sync':
      case 'worker-spawn':
      case 'worker-post':
      case 'parent-post':
      case 'worker-terminate':
        // These make traffic (a release's diffs, a message): admitted in
        // arrival order while every link is below its limit. A thread that
        // made a call stays parked until its request is admitted and answered.
        this.flow.admit(() => this.serveAdmitted(endpoint, request));
        return replyLater;
      case 'place':
        // Race mode: round-robin over the app nodes (the last node is the race home).
        if (this.raceMode) return (this.handle.nodeId + 1 + this.placementCounter++) % (this.handle.nodeCount - 1);
        return (this.handle.nodeId + 1 + this.placementCounter++) % this.handle.nodeCount;
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `unknown channel request '${request.op}'`);
    }
  }

  /** Whether the thread waits for an answer to this request (a call) or went on (a post). */
  private static isCall(request: ChannelRequest): boolean {
    switch (request.op) {
      case 'atomic': return request.asyncId === undefined;
      case 'line': return true;
      case 'sync': return request.posted !== true;
      case 'worker-post': case 'parent-post': return true;
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
      value = this.serve(endpoint, request);
    } catch (error) {
      if (!isDsmError(error) || !isCall) throw error;
      endpoint.answer({ ok: false, code: (error as DsmError).code, message: (error as DsmError).message });
      return;
    }
    if (value !== replyLater && isCall) endpoint.answer({ ok: true, value: value ?? null });
  }

  private serve(endpoint: ThreadEndpoint, request: ChannelRequest): unknown {
    switch (request.op) {
      case 'line': return this.serveLine(endpoint, request);
      case 'atomic': {
        const ref = this.waitFor(endpoint, 'atomic', { op: request.fn, address: request.address }, false, request.asyncId);
        this.raceSync(`Atomics.${request.fn}`, request, () => this.syncInEngine(ref, {
          kind: 'atomic', op: request.fn, address: request.address,
          width: request.width as 1 | 2 | 4 | 8, operands: request.operands, timeoutMs: request.timeoutMs,
        }));
        return replyLater;
      }
      case 'sync': {
        // Mutex and Barrier of src/sync, routed here in a multi-node run (src/sync/route.ts).
        if (request.kind === 'barrier') {
          const ref = this.waitFor(endpoint, 'barrier', { barrier: request.id });
          this.raceSync('Barrier.wait', request, () => this.syncInEngine(ref, { kind: 'barrier', barrierId: request.id, parties: request.parties ?? 0 }));
        } else if (request.kind === 'lock') {
          const ref = this.waitFor(endpoint, request.tryOnly === true ? null : 'lock', { lock: request.id });
          this.raceSync(request.tryOnly === true ? 'Mutex.tryLock' : 'Mutex.lock', request, () => this.syncInEngine(ref, { kind: 'lock', lockId: request.id, threadId: request.threadId, tryOnly: request.tryOnly === true }));
        } else {
          const ref = this.waitFor(endpoint, null, {}, request.posted === true);
          this.raceSync('Mutex.unlock', request, () => this.syncInEngine(ref, { kind: 'unlock', lockId: request.id, threadId: request.threadId }));
        }
        return replyLater;
      }
      case 'worker-spawn': {
        const spawnId = `${this.handle.nodeId}:${this.spawnCounter++}`;
        this.remote.set(spawnId, { endpoint, handleId: request.handleId, nodeId: request.nodeId });
        this.sendRuntime(request.nodeId, {
          type: 'rtSpawn', spawnId, threadIdSeen: request.threadIdSeen, entry: request.entry, evalCode: request.evalCode,
          workerData: request.workerData, options: request.options, info: this.raceSync('new Worker', request, () => this.engine.releaseFor(request.nodeId)),
        });
        return replyLater;
      }
      case 'worker-post': {
        const target = this.findRemote(endpoint, request.handleId);
        if (target !== null) {
          this.sendRuntime(target.nodeId, {
            type: 'rtPost', spawnId: target.spawnId, bytes: request.bytes, info: this.raceSync('worker.postMessage', request, () => this.engine.releaseFor(target.nodeId)),
            ...(this.race === null ? {} : { site: (request as { site?: string | null }).site ?? null }),
          });
        }
        return null;
      }
      case 'parent-post': {
        const spawnId = this.hostedEndpoints.get(endpoint);
        const entry = spawnId === undefined ? undefined : this.hosted.get(spawnId);
        if (spawnId !== undefined && entry !== undefined) {
          this.sendRuntime(entry.parentNode, {
            type: 'rtEvent', spawnId, event: 'message', bytes: request.bytes, info: this.raceSync('parentPort.postMessage', request, () => this.engine.releaseFor(entry.parentNode)),
            ...(this.race === null ? {} : { site: (request as { site?: string | null }).site ?? null }),
          });
        }
        return null;
      }
      case 'worker-terminate': {
        const target = this.findRemote(endpoint, request.handleId);
        if (target !== null) this.sendRuntime(target.nodeId, { type: 'rtTerminate', spawnId: target.spawnId });
        return replyLater;
      }
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `request '${request.op}' is not served after admission`);
    }
  }

  /**
   * A thread ended (exited, or terminated while parked): its sync requests
   * still in the engine are withdrawn, so an Atomics.wait it left at a home
   * does not swallow a notify and a lock granted to it is released.
   */
  /** Atomics by line ownership: a thread needs a line, waits on or notifies a location (src/threads/atomics.ts). */
  private serveLine(endpoint: ThreadEndpoint, request: Extract<ChannelRequest, { op: 'line' }>): unknown {
    assert(this.lineTable !== null, 'line requests come only when Atomics run by line ownership');
    const address = request.address ?? 0;
    switch (request.fn) {
      case 'acquire': {
        const ref = this.waitFor(endpoint, null, {});
        this.syncInEngine(ref, { kind: 'line', line: request.line ?? 0 });
        return replyLater;
      }
      case 'wait': case 'waitAsync': {
        const asyncId = request.fn === 'waitAsync' ? request.asyncId : undefined;
        const ref = this.waitFor(endpoint, 'atomic', { op: 'wait', address }, false, asyncId);
        try {
          this.syncInEngine(ref, { kind: 'lineWait', address, timeoutMs: request.timeoutMs ?? -1 });
        } finally {
          // The wait is registered (or on its way, before any later release of the line): the line may go.
          const pin = this.linePins.get(endpoint);
          if (pin !== undefined) this.lineTable.clearPin(pin);
        }
        return asyncId === undefined ? replyLater : null;
      }
      case 'notify': {
        const ref = this.waitFor(endpoint, 'atomic', { op: 'notify', address });
        this.syncInEngine(ref, { kind: 'lineNotify', address, count: request.count ?? -1 });
        return replyLater;
      }
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `unknown line request '${request.fn}'`);
    }
  }

  /** Runs the engine's tick when its line layer has work due (a wanted line's window, a revoke to retry, a timed wait). */
  private scheduleLineTick(): void {
    if (this.lineTable === null) return;
    const atMs = this.engine.nextTickMs?.() ?? null;
    if (atMs === null || atMs >= this.lineTimerAtMs) return;
    if (this.lineTimer !== null) clearTimeout(this.lineTimer);
    this.lineTimerAtMs = atMs;
    this.lineTimer = setTimeout(() => {
      this.lineTimer = null;
      this.lineTimerAtMs = Infinity;
      noteActivity(activity.engineTick);
      this.engine.onTick(performance.now());
      this.scheduleLineTick();
      noteActivity(activity.idle);
    }, Math.max(0, atMs - performance.now()));
    this.lineTimer.unref();
  }

  private threadEnded(endpoint: ThreadEndpoint): void {
    const pin = this.linePins.get(endpoint);
    if (pin !== undefined) {
      this.linePins.delete(endpoint);
      this.lineTable?.releasePin(pin);
    }
    for (const [ref, waiter] of this.syncWaiters) {
      if (waiter.endpoint !== endpoint) continue;
      this.syncWaiters.delete(ref);
      this.engine.cancel(ref);
    }
  }

  /** Parks a thread's sync request; its answer comes through resume(). */
  private waitFor(endpoint: ThreadEndpoint, kind: SyncKind | null, args: Record<string, unknown>, posted = false, asyncId?: number): number {
    assert(this.syncWaiters.size < syncRefCountMax, 'sync requests in flight within their limit');
    const ref = this.nextSyncRef++;
    this.syncWaiters.set(ref, { endpoint, kind, startUs: kind === null ? 0 : epochUs(), args, posted, ...(asyncId === undefined ? {} : { asyncId }) });
    return ref;
  }

  /** Runs an engine synchronization; in race mode names it as the bound of the intervals around it (with the program's call site). */
  private raceSync<T>(op: string, request: object | null, run: () => T): T {
    if (this.race === null) return run();
    return this.race.around(op, (request as { site?: string | null } | null)?.site ?? null, run);
  }

  /** Race mode, node 0 at the end of the run: closes the main thread's last interval and gathers every node's records. */
  async finishRace(): Promise<RaceChecker> {
    assert(this.raceChecker !== null, 'node 0 holds the race checker');
    this.raceSync('program end', null, () => this.engine.releaseFor(this.handle.nodeId));
    // Records travel before the report on each link (FIFO): once every node has answered, all have arrived.
    await this.gatherReports(false);
    return this.raceChecker;
  }

  private sendEngine(toNode: number, message: ProtocolMessage): void {
    if (message.type === 'diffs' && diffBytesOf(message.diffs) > diffsMessageBytesMax) {
      // A release may carry more diffs for one home than a frame holds; the
      // home applies a diffs message page by page, so pieces of one are equivalent.
      for (const piece of splitDiffs(message)) this.sendEngine(toNode, piece);
      return;
    }
    if (!this.sendTo(toNode, message)) return;
    this.observer.countSent(message.type, this.mesh.lastSentBytes ?? 0);
    if (message.type === 'pageRequest' && this.observer.tracing) {
      const id = `n${this.observer.nodeId}-f${this.fetchCounter++}`;
      this.fetchesInFlight.set(message.page, id);
      this.observer.record({ name: 'page fetch', cat: 'fetch', ph: 'b', id, ts: this.observer.traceTs(epochUs()), pid: this.observer.nodeId, tid: 0, args: { page: message.page, home: toNode } });
    }
  }

  private findRemote(endpoint: ThreadEndpoint, handleId: number): { spawnId: string; nodeId: number } | null {
    for (const [spawnId, entry] of this.remote) {
      if (entry.endpoint === endpoint && entry.handleId === handleId) return { spawnId, nodeId: entry.nodeId };
    }
    return null;
  }

  /**
   * Sends to a node; false when that node is lost. Its loss is already
   * ending the run (the cluster's failure path says so); throwing here would
   * instead surface in the engine or in an app thread as a second, wrong error.
   */
  private sendTo(toNode: number, message: object): boolean {
    try {
      this.mesh.send(toNode, message as { type: string });
      return true;
    } catch (error) {
      if (isDsmError(error) && (error as DsmError).code === 'DSM_ERR_NODE_DIED') return false;
      throw error;
    }
  }

  private sendRuntime(toNode: number, message: RuntimeMessage): void {
    if (!this.sendTo(toNode, message)) return;
    // What observability itself sends is not part of the program's traffic.
    if (!observabilityTypes.has(message.type)) this.observer.countSent(message.type, this.mesh.lastSentBytes ?? 0);
  }

  private onMessage(from: number, message: { type: string }): void {
    noteActivity(message.type.startsWith('rt') ? activity.runtimeMessage : activity.protocolMessage);
    this.dispatchMessage(from, message);
    this.scheduleLineTick();
    noteActivity(activity.idle);
  }

  private dispatchMessage(from: number, message: { type: string }): void {
    if (!observabilityTypes.has(message.type)) this.observer.countReceived(this.mesh.lastReceivedBytes ?? 0);
    if (!message.type.startsWith('rt')) {
      if (message.type === 'pageReply' && this.fetchesInFlight.size > 0) this.fetchArrived((message as unknown as { page: number }).page, from);
      this.engine.onMessage(from, message as unknown as ProtocolMessage);
      return;
    }
    const runtime = message as RuntimeMessage;
    switch (runtime.type) {
      case 'rtTraceStart':
        this.observer.startTrace(runtime.originUs);
        return;
      case 'rtReportRequest': {
        if (runtime.trace) {
          const { events } = this.observer.takeTrace();
          for (let start = 0; start < events.length; start += traceEventsPerMessage) {
            this.sendRuntime(from, { type: 'rtReportTrace', events: events.slice(start, start + traceEventsPerMessage) });
          }
        }
        this.sendRuntime(from, { type: 'rtReport', stats: this.stats(), dropped: this.observer.takeTrace().dropped });
        return;
      }
      case 'rtReportTrace':
        this.reportWaiter?.events.push(...runtime.events);
        return;
      case 'rtRace':
        this.raceChecker?.addInterval(runtime.record);
        return;
      case 'rtRaceAlloc':
        this.raceChecker?.addAllocation(runtime.record);
        return;
      case 'rtReport':
        if (this.reportWaiter !== null) {
          this.reportWaiter.reports.set(from, { stats: runtime.stats, dropped: runtime.dropped });
          if (this.reportWaiter.reports.size === this.handle.nodeCount) this.reportWaiter.done();
        }
        return;
      case 'rtSpawn':
        this.raceSync('worker start', null, () => this.engine.acquireFrom(from, runtime.info));
        this.host(from, runtime);
        return;
      case 'rtPost': {
        this.raceSync('message received from worker.postMessage', { site: runtime.site ?? null }, () => this.engine.acquireFrom(from, runtime.info));
        this.hosted.get(runtime.spawnId)?.worker.postMessage({ dsmRemote: 'message', bytes: runtime.bytes });
        return;
      }
      case 'rtTerminate':
        void this.hosted.get(runtime.spawnId)?.worker.terminate();
        return;
      case 'rtEvent': {
        this.raceSync(runtime.event === 'message' ? 'message received from parentPort.postMessage' : `worker '${runtime.event}' event`, { site: runtime.site ?? null }, () => this.engine.acquireFrom(from, runtime.info));
        const entry = this.remote.get(runtime.spawnId);
        if (entry === undefined) return;
        let event: ChannelEvent;
        switch (runtime.event) {
          case 'online': event = { kind: 'worker-online', handleId: entry.handleId, threadId: runtime.threadId ?? -1 }; break;
          case 'message': event = { kind: 'worker-message', handleId: entry.handleId, bytes: runtime.bytes! }; break;
          case 'error': event = { kind: 'worker-error', handleId: entry.handleId, bytes: runtime.bytes! }; break;
          case 'exit':
            event = { kind: 'worker-exit', handleId: entry.handleId, exitCode: runtime.code ?? 1 };
            this.remote.delete(runtime.spawnId);
            break;
        }
        entry.endpoint.port.postMessage(event);
        return;
      }
    }
  }

  private fetchArrived(page: number, home: number): void {
    const id = this.fetchesInFlight.get(page);
    if (id === undefined) return;
    this.fetchesInFlight.delete(page);
    this.observer.record({ name: 'page fetch', cat: 'fetch', ph: 'e', id, ts: this.observer.traceTs(epochUs()), pid: this.observer.nodeId, tid: 0, args: { page, home } });
  }

  stats(): NodeStats {
    return this.observer.snapshot(this.manager.native.stats(), this.engine.counters());
  }

  /** Node 0: tells every node to keep trace events from now on. */
  startTrace(): void {
    const originUs = epochUs();
    this.observer.startTrace(originUs);
    for (let node = 0; node < this.handle.nodeCount; node++) {
      if (node !== this.handle.nodeId) this.sendRuntime(node, { type: 'rtTraceStart', originUs });
    }
  }

  /** Node 0, at the end of a run: every node's stats (and trace events), or an error naming the nodes that did not answer. */
  async gatherReports(trace: boolean): Promise<{ nodes: NodeStats[]; events: TraceEvent[]; dropped: number }> {
    const own = this.observer.takeTrace();
    const reports = new Map<number, { stats: NodeStats; dropped: number }>([[this.handle.nodeId, { stats: this.stats(), dropped: own.dropped }]]);
    const events: TraceEvent[] = trace ? own.events : [];
    if (this.handle.nodeCount > 1) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const missing = [...Array(this.handle.nodeCount).keys()].filter((node) => !reports.has(node));
          reject(new DsmError('DSM_ERR_NODE_DIED', `node(s) ${missing.join(', ')} did not send their statistics within ${reportTimeoutMs} ms`));
        }, reportTimeoutMs);
        this.reportWaiter = { reports, events, done: () => { clearTimeout(timer); resolve(); } };
        for (let node = 0; node < this.handle.nodeCount; node++) {
          if (node !== this.handle.nodeId) this.sendRuntime(node, { type: 'rtReportRequest', trace });
        }
      });
      this.reportWaiter = null;
    }
    const nodes = [...reports.keys()].sort((a, b) => a - b).map((node) => reports.get(node)!.stats);
    const dropped = [...reports.values()].reduce((sum, report) => sum + report.dropped, 0);
    return { nodes, events, dropped };
  }

  /** Starts, on this node, a worker whose parent thread runs on node `parentNode`. */
  private host(parentNode: number, spawn: Extract<RuntimeMessage, { type: 'rtSpawn' }>): void {
    const { port1, port2 } = new MessageChannel();
    const endpoint = this.manager.channel.attach(port1);
    this.hostedEndpoints.set(endpoint, spawn.spawnId);
    const config: AppThreadConfig = {
      role: 'worker', nodeId: this.handle.nodeId, nodeCount: this.handle.nodeCount,
      regionBytes: this.manager.regionBytes, entry: spawn.entry, evalCode: spawn.evalCode,
      argv: spawn.options.argv, parallelism: this.manager.parallelism, userWorkerData: null,
      threadIdSeen: spawn.threadIdSeen, remoteWorkerData: spawn.workerData,
      ...(this.manager.atomicLines === null ? {} : { atomicLines: this.manager.atomicLines }),
    };
    const worker = new Worker(appEntryUrl(), {
      workerData: { __dsm: config, __dsmPort: port2 },
      transferList: [port2],
      ...(spawn.options.env === undefined ? {} : { env: spawn.options.env }),
      ...(spawn.options.name === undefined ? {} : { name: spawn.options.name }),
      ...(spawn.options.resourceLimits === undefined ? {} : { resourceLimits: spawn.options.resourceLimits }),
    });
    this.hosted.set(spawn.spawnId, { worker, parentNode });
    this.race?.threadStarted(spawn.threadIdSeen);
    // Each event is a release (worker exit after writing much, say): admitted
    // in order with the app threads' requests, within the link limit.
    const event = (kind: 'online' | 'message' | 'error' | 'exit', extra: { bytes?: Uint8Array; code?: number; threadId?: number }) =>
      this.flow.admit(() => this.sendRuntime(parentNode, {
        type: 'rtEvent', spawnId: spawn.spawnId, event: kind, ...extra,
        info: this.raceSync(kind === 'exit' ? 'worker exit' : kind === 'message' ? 'parentPort.postMessage' : `worker ${kind}`, null, () => this.engine.releaseFor(parentNode)),
      }));
    worker.on('online', () => event('online', { threadId: spawn.threadIdSeen }));
    worker.on('message', (frame: { dsmRemote?: string; bytes?: Uint8Array }) => {
      if (frame?.dsmRemote === 'message' && frame.bytes !== undefined) event('message', { bytes: frame.bytes });
    });
    worker.on('error', (error: unknown) => {
      // Node rebuilds a worker's error as an object with Error's prototype but
      // not a real Error, which V8's serializer would flatten to {}: send its parts.
      let thrown: Record<string, unknown> = { dsmThrown: true, value: String(error) };
      if (typeof error === 'object' && error !== null && 'message' in error) {
        const { name, message, stack, code } = error as Error & { code?: unknown };
        thrown = { dsmError: true, name: String(name), message: String(message), stack: String(stack ?? '') };
        if (typeof code === 'string') thrown.code = code;
        if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
          // The file exists where the parent runs but not here: say where, and what a multi-machine run needs.
          const where = `on node ${this.handle.nodeId} (${this.handle.peers[this.handle.nodeId]?.host ?? 'this host'})`;
          thrown.message = `${String(message)} ${where}: every node needs the program's files at the same path`;
          thrown.stack = String(stack ?? '').replace(String(message), String(thrown.message));
        }
      }
      event('error', { bytes: serializeValue(thrown, noRanges) });
    });
    worker.on('exit', (code) => {
      this.race?.threadEnded(spawn.threadIdSeen);
      this.hosted.delete(spawn.spawnId);
      this.hostedEndpoints.delete(endpoint);
      event('exit', { code });
    });
  }
}

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
export function runNode(handle: ClusterHandle): void {
  const config = JSON.parse(process.env.DSM_RUNTIME_CONFIG ?? '{}') as { regionBytes?: number; protocol?: string; placement?: PlacementName; twinBytes?: number; race?: boolean };
  const parentPid = process.env.DSM_SUPERVISED === '1' ? Number(process.env.DSM_PARENT_PID) : undefined;
  const node = new ClusterNode(handle, {
    regionBytes: config.regionBytes ?? regionBytesDefault, protocol: config.protocol ?? 'hlrc',
    ...(config.placement === undefined ? {} : { placement: config.placement }),
    ...(config.twinBytes === undefined ? {} : { twinBytes: config.twinBytes }),
    ...(config.race === true ? { race: true } : {}),
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
  },
): Promise<never> {
  const node = new ClusterNode(handle, options);
  node.race?.threadStarted(0);
  const report = options.report ?? {};
  if (report.tracePath !== undefined) node.startTrace();
  let code: number;
  const startMs = performance.now();
  try {
    code = await runMainThread(node.manager, { file: options.file, args: options.args });
  } catch (error) {
    if (error instanceof DsmError) process.stderr.write(`dsm: ${error.code}: ${error.message}\n`);
    else process.stderr.write(`dsm: ${String((error as Error)?.stack ?? error)}\n`);
    code = 2;
  }
  const seconds = (performance.now() - startMs) / 1000;
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
      const gathered = await node.gatherReports(report.tracePath !== undefined);
      writeRunReport(report, { protocol: options.protocol, nodeCount: handle.nodeCount, regionBytes: options.regionBytes, seconds, exitCode: code, ...gathered });
    } catch (error) {
      process.stderr.write(`dsm: ${error instanceof DsmError ? `${error.code}: ${error.message}` : String(error)}\n`);
      if (code === 0) code = 1;
    }
  }
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return handle.shutdown(code);
}
