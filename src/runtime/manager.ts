// A node's manager: the main thread of a node process. It owns the native
// MMU, the global heap's arena for this node and the channel to every app
// thread; faults go to the node's coherence engine (src/runtime/cluster-node.ts).
//
// A cluster of one maps its region as private anonymous memory, read-write,
// with the manager view the app view itself (native init `anonymous`): its
// engine holds every page exclusive from the start and never protects one
// (src/protocol/hlrc.ts `start`), so a program touches its memory exactly as
// under plain node (a shared memfd page costs ~1.5x as much to first touch).
// Freed memory is then given back with madvise(MADV_DONTNEED) and reused
// memory is zeroed in place (src/runtime/heap-service.ts).

import os from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { ChannelServer, replyLater, type RequestHandler, type ThreadEndpoint } from '../channel/server.js';
import type { ChannelRequest, ProgramSignal } from '../channel/wire.js';
import { pageBytes, threadIdNodeStride, writeAheadPageCountMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import { loadNativeMmu, type NativeMmu } from '../memory/native.js';
import { guardAppView } from './app-view-guard.js';
import { loadDoorbell } from '../channel/doorbell.js';
import { pollGate } from '../util/manager-poll.js';
import { debugAppViewEnabled, interruptBudgetFromEnvironment, mallocKeepEnabled, pwriteInstallEnabled, managerPollFromEnvironment, parkYieldUsFromEnvironment, writeAheadEnabled } from '../env.js';
import { HeapService } from './heap-service.js';

export interface ManagerOptions {
  nodeId: number;
  nodeCount: number;
  regionBytes: number;
  /** Total cores across the cluster (what os.availableParallelism() reports inside the program). */
  parallelism?: number;
}

/** Whether this V8 has the --interrupt-budget flag (V8 11 and earlier: Node 20). */
export function v8HasInterruptBudget(v8Version: string = process.versions.v8): boolean {
  return Number.parseInt(v8Version, 10) <= 11;
}

export class NodeManager {
  readonly nodeId: number;
  readonly nodeCount: number;
  readonly regionBytes: number;
  readonly parallelism: number;
  readonly native: NativeMmu;
  readonly channel: ChannelServer;
  readonly heap: HeapService;
  private started = false;
  private faultHandler: ((records: Uint32Array) => void) | null = null;
  /** The node's atomic line table, handed to every app thread (set by a cluster node whose Atomics run by line ownership). */
  atomicLines?: SharedArrayBuffer;
  /** The node's lock token table, handed to every app thread (set by a cluster node, src/channel/lock-tokens.ts). */
  lockTokens?: SharedArrayBuffer;
  private extraRequests: RequestHandler | null = null;
  /** The program's main thread began to read its stdin (src/runtime/program.ts pipes the process's into it then). */
  onStdinWanted: (() => void) | null = null;
  /** The next worker thread id this node hands out (0 is the program's main thread). */
  private threadIdSeenNext: number;

  constructor(options: ManagerOptions) {
    assert(options.nodeId >= 0 && options.nodeId < options.nodeCount, 'node id within the cluster');
    assert(options.regionBytes % pageBytes === 0, 'region is whole pages');
    this.nodeId = options.nodeId;
    this.nodeCount = options.nodeCount;
    this.regionBytes = options.regionBytes;
    this.threadIdSeenNext = options.nodeId * threadIdNodeStride + 1;
    // Programs size their pools by core count; in dsm the cores are the
    // cluster's. Every node is taken to have this node's core count (nodes do
    // not report theirs to each other yet).
    this.parallelism = options.parallelism ?? os.availableParallelism() * options.nodeCount;
    // The manager's path of a synchronization runs each of its functions about once: a smaller budget
    // (DSM_INTERRUPT_BUDGET) brings it to optimized code in ~1000 rounds rather than ~3000, but V8's flags
    // are process-wide, so app threads tier up early too; programs ran faster with V8's own (the default:
    // constants.ts interruptBudgetBytes).
    // V8 12 and later (Node 22+) tier up by invocation counts and have no --interrupt-budget (setting it there
    // only prints "unrecognized flag" on stderr): their defaults stand.
    const interruptBudget = interruptBudgetFromEnvironment();
    if (interruptBudget > 0 && v8HasInterruptBudget()) setFlagsFromString(`--interrupt-budget=${interruptBudget}`);
    this.native = loadNativeMmu();
    // A cluster of one: private anonymous memory (see above).
    this.native.init(this.regionBytes, this.nodeCount === 1);
    // Several nodes (DSM_MALLOC_KEEP=0 to compare): fetch buffers (a reply of up to 1 MiB, a received frame)
    // come and go; kept in the C heap, their pages are not faulted in and zeroed afresh each time (src/constants.ts
    // mallocMmapThresholdBytes). Opt-in until session 25: it saved CPU in a long remote read and cost some in a
    // short one on an earlier machine; where a fresh page is a trip through the hypervisor it saves in both.
    if (this.nodeCount > 1 && mallocKeepEnabled()) this.native.keepMallocHeap();
    // Copies installed through the region's memfd (pwrite), not the manager view (native WritePageFrom).
    this.native.setPwriteInstalls(pwriteInstallEnabled());
    this.native.setParkYield(parkYieldUsFromEnvironment());
    if (writeAheadEnabled()) this.native.setWriteAhead(writeAheadPageCountMax);
    this.heap = new HeapService(this.native, this.regionBytes, this.nodeId, this.nodeCount);
    this.channel = new ChannelServer((endpoint, request) => this.onRequest(endpoint, request));
    // What a thread was handed and never read gives its buffers' weights back (src/runtime/heap-service.ts, "Pending holds").
    this.channel.onThreadEnd((endpoint) => this.heap.endpointEnded(endpoint));
    this.channel.onThreadEnd((endpoint) => { if (this.signalListeners.delete(endpoint)) this.signalsChanged(); });
    // A buffer's collection is acted on after every escape its thread posted before it (ChannelServer.applyGivenEscapes).
    this.heap.beforeCollected = () => this.channel.applyGivenEscapes((offset) => this.heap.onEscapeGiven(offset));
  }

  /** The threads (the program's main thread) listening for the signals it may take ('signal-listeners'). */
  private readonly signalListeners = new Map<ThreadEndpoint, Set<ProgramSignal>>();

  /** Told when the signals the program's threads listen for change (node 0 tells the other nodes). */
  onSignalsTaken: ((taken: ProgramSignal[]) => void) | null = null;
  private signalsTaken = '';

  private signalsChanged(): void {
    const taken = new Set<ProgramSignal>();
    for (const signals of this.signalListeners.values()) for (const signal of signals) taken.add(signal);
    const list = [...taken].sort();
    if (list.join() === this.signalsTaken) return;
    this.signalsTaken = list.join();
    this.onSignalsTaken?.(list);
  }

  /** Emits `signal` in the thread that listens for it (the program's main thread); false when none does. */
  deliverSignal(signal: ProgramSignal): boolean {
    for (const [endpoint, signals] of this.signalListeners) {
      if (!signals.has(signal) || endpoint.ended) continue;
      endpoint.sendEvent({ kind: 'signal', signal });
      return true;
    }
    return false;
  }

  start(): void {
    assert(!this.started, 'a manager starts once');
    const faultHandler = this.faultHandler;
    assert(faultHandler !== null, 'faults have a handler (the node\'s engine) before the manager starts');
    this.started = true;
    this.native.installHandler();
    this.native.startFaultService((records) => faultHandler(records));
    if (this.nodeCount > 1) {
      // Several nodes: the manager polls before its loop sleeps while a thread waits for it (src/constants.ts managerPollUs).
      const { pollUs, lingerUs } = managerPollFromEnvironment();
      const gate = pollGate.buffer as SharedArrayBuffer;
      loadDoorbell().setGate(gate);
      this.native.setManagerPoll(pollUs, lingerUs, gate);
    }
    this.native.onBackingStoreFreed((offset, byteLength) => this.heap.onBufferCollected(offset, byteLength));
    if (debugAppViewEnabled()) guardAppView(this.native);
  }

  /** Faults are served by the node's coherence engine (set once, before start). */
  handleFaults(handler: (records: Uint32Array) => void): void {
    assert(!this.started, 'fault handling is chosen before start');
    this.faultHandler = handler;
  }

  /** Race mode (src/race/): told of every allocation, with the program's call site when the app thread sent it. */
  allocObserver: ((offset: number, byteLength: number, site: string | null, endpoint: ThreadEndpoint) => void) | null = null;

  /** Requests the manager itself does not serve (Atomics, placement, remote workers) go here. */
  handleRequests(handler: RequestHandler): void {
    this.extraRequests = handler;
  }

  stop(): void {
    if (!this.started) return;
    this.native.stopFaultService();
    this.started = false;
  }

  private onRequest(endpoint: ThreadEndpoint, request: ChannelRequest): unknown {
    switch (request.op) {
      case 'alloc': {
        const reply = this.heap.allocOrWait(request.byteLength);
        if (typeof reply === 'object' && 'wait' in reply) return reply;
        const offset = typeof reply === 'number' ? reply : reply.offset;
        this.allocObserver?.(offset, request.byteLength, (request as { site?: string | null }).site ?? null, endpoint);
        return reply;
      }
      case 'alloc-batch': {
        // Race mode names each allocation's site: one block, as an 'alloc'.
        const reply = this.heap.allocBatch(request.byteLength, this.allocObserver === null ? request.count : 1, endpoint);
        if (!Array.isArray(reply)) return reply;
        for (let index = 0; index < reply.length; index += 2) {
          this.allocObserver?.(reply[index]!, request.byteLength, (request as { site?: string | null }).site ?? null, endpoint);
        }
        return reply;
      }
      case 'thread-id': {
        const threadIdSeen = this.threadIdSeenNext++;
        assert(threadIdSeen % threadIdNodeStride !== 0, 'thread ids of this node within their stride');
        return threadIdSeen;
      }
      case 'free':
        this.heap.free(request.offset);
        return null;
      case 'stdin-wanted':
        // Posted (by postMessage: no doorbell form), so nobody waits for an answer.
        this.onStdinWanted?.();
        return replyLater;
      case 'escape':
        if (request.given !== true) return this.heap.onEscape(request.offset);
        if (request.applied !== true) this.heap.onEscapeGiven(request.offset);
        return null;
      case 'escape-broadcast':
        return this.heap.onBroadcastEscape(request.offset);
      case 'holds-unread':
        this.heap.holdsUnread(endpoint, request.held);
        return null;
      case 'hold':
        this.heap.onHold(request.offset, request.byteLength, request.token, endpoint);
        return null;
      case 'signal-listeners': {
        const signals = this.signalListeners.get(endpoint) ?? new Set<ProgramSignal>();
        if (request.listening) signals.add(request.signal);
        else signals.delete(request.signal);
        if (signals.size > 0) this.signalListeners.set(endpoint, signals);
        else this.signalListeners.delete(endpoint);
        this.signalsChanged();
        // A call: the thread's process.on returns once node 0 takes the signal for it (signalsChanged).
        return null;
      }
      default:
        if (this.extraRequests !== null) return this.extraRequests(endpoint, request);
        throw new DsmError('DSM_ERR_CHANNEL', `unknown channel request '${(request as { op: string }).op}'`);
    }
  }
}
