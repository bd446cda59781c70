// The engine lane: hosts a node's coherence engine (src/protocol/). It feeds
// the engine faults, synchronization requests, messages and ticks, gives it
// the page memory it works on, sends what it sends, and routes each answer
// back to whoever waits for it (a faulting thread's slot, a parked sync
// request's owner).
//
// Network and memory are injected, so the same host runs in a node (the
// native MMU and the mesh: src/runtime/cluster-node.ts) and in the
// simulation (simulated memory and a seeded network: test/sim/host.test.ts).
// It knows nothing of channels or app threads: a sync request's owner is an
// opaque value (a channel endpoint in a node, a thread index in the
// simulation) whose requests are withdrawn together when it ends.

import { atomicLineBytes, faultSlotCount, syncInFlightCountMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import { createEngine, type Engine, type EngineOptions, type FaultResult, type SyncRequest, type SyncResult } from '../protocol/engine.js';
import type { PageMemory } from '../protocol/memory.js';
import type { ProtocolMessage } from '../protocol/messages.js';
import type { LaneNetwork } from './envelope.js';
import { epochUs, type NodeObserver, type SyncKind } from './observe.js';
import { hop, hopsOn } from '../util/hops.js';

/** Page memory as the host sees it: the engine's PageMemory, and the way to let a faulting thread go on. */
export interface HostMemory {
  readonly pages: PageMemory;
  /** The fault in `slot` is served: its thread retries the access. */
  resumeFault(slot: number): void;
  /**
   * Optional: makes these pages' memory resident (contents unchanged), called once a fetch's request is out, so
   * that installing the reply's copies takes no page fault on the fault's path (src/memory/native.ts prefault).
   */
  prefault?(page: number, extraPages: readonly number[]): void;
  /**
   * Optional: the reply for `page` arrived and is about to be installed; threads asleep on its fault are woken to
   * spin for their resume (src/memory/native.ts prewake).
   */
  prewake?(page: number): void;
}

export interface EngineHostOptions extends Omit<EngineOptions, 'send' | 'host' | 'memory'> {
  memory: HostMemory;
  network: LaneNetwork<ProtocolMessage>;
  /** Sync timings and trace events (a node's observer; the simulation may pass one too). */
  observer: NodeObserver;
  /**
   * Test hook (DSM_TEST_HOOK_ARRIVALS): called when a lock request reaches this node's engine as its manager (from
   * another node, or from a thread of this node when nothing was sent for it), and when an Atomics.wait joins a
   * waiter list here (the engine says so: a wait that only reached its directory may not be registered yet).
   */
  onArrival?: (what: Arrival, key: number) => void;
}

/** What reached its manager or home: a lock request (key: the lock id) or a wait (key: the address). */
export type Arrival = 'lock' | 'wait';

/** How a parked sync request is answered, and what it is traced as. */
export interface SyncWait<Owner> {
  owner: Owner;
  answer(result: SyncResult): void;
  /** Traced and timed as this kind (null: neither). */
  kind: SyncKind | null;
  args: Record<string, unknown>;
  /** The thread id shown in the trace. */
  tid: number;
}

export class EngineHost<Owner = unknown> {
  readonly engine: Engine;
  readonly nodeId: number;
  private readonly memory: HostMemory;
  private readonly network: LaneNetwork<ProtocolMessage>;
  private readonly observer: NodeObserver;
  /** Parked sync requests, by ref (refs from faultSlotCount up: below are fault slots). */
  private readonly waiters = new Map<number, SyncWait<Owner> & { startUs: number; request: SyncRequest }>();
  private nextSyncRef = faultSlotCount;
  /**
   * A key per owner that stays the same across its requests (each request
   * gets its own ref): the engine's `thread` (Engine.onSync). A numeric owner
   * (the simulation's thread index) is its own key; an object owner (a
   * channel endpoint) gets the next number, kept as long as the owner lives.
   */
  private readonly ownerKeys = new WeakMap<object, number>();
  private nextOwnerKey = 0;
  /** Refs withdrawn after the engine threw taking them; a late answer for one is dropped. */
  private readonly withdrawn = new Set<number>();
  /** Faults being served, by slot (kept only while tracing). */
  private readonly faultsInFlight = new Map<number, { page: number; isWrite: boolean; startUs: number }>();
  /** Page fetches in flight (tracing only): page -> async event id. */
  private readonly fetchesInFlight = new Map<number, string>();
  private fetchCounter = 0;
  private readonly onArrival: ((what: Arrival, key: number) => void) | null;
  /** While a thread of this node hands its lock request or wait to the engine: cleared if the engine sends it on. */
  private localArrival: { what: Arrival; key: number } | null = null;

  constructor(options: EngineHostOptions) {
    const { memory, network, observer, onArrival, ...engineOptions } = options;
    this.onArrival = onArrival ?? null;
    this.nodeId = options.nodeId;
    this.memory = memory;
    this.network = network;
    this.observer = observer;
    this.engine = createEngine({
      ...engineOptions,
      memory: memory.pages,
      send: (toNode, message) => this.send(toNode, message),
      host: {
        resume: (ref, result) => this.resume(ref, result),
        // A wait counts once it is in a waiter list (a shipped wait may be queued at the directory, or come back
        // for a native check and then register through lineWait): the engine says when.
        ...(onArrival === undefined ? {} : { waitRegistered: (address: number) => onArrival('wait', address) }),
      },
    });
  }

  start(): void {
    this.engine.start();
  }

  /** An app thread faulted on `page`; it waits in fault slot `slot` until resumeFault. */
  fault(slot: number, page: number, isWrite: boolean): void {
    assert(slot >= 0 && slot < faultSlotCount, 'a fault slot');
    if (this.observer.tracing) {
      this.faultsInFlight.set(slot, { page, isWrite, startUs: epochUs() });
      this.hop('fault received', page);
    }
    this.engine.onFault(slot, page, isWrite);
  }

  /** The signal handler served first touches of read-ahead copies (the fault service's wake-up said so). */
  touched(): void {
    this.engine.onTouched();
  }

  /**
   * Parks a sync request and hands it to the engine; its answer comes through
   * `wait.answer`. If the engine throws, the request is withdrawn (no answer
   * can reach its owner later: "one answer per call") and the error goes to
   * the caller. Returns the request's ref.
   */
  sync(request: SyncRequest, wait: SyncWait<Owner>): number {
    if (this.waiters.size >= syncInFlightCountMax) {
      throw new DsmError('DSM_ERR_SYNC_REQUESTS', `node ${this.nodeId} has ${syncInFlightCountMax} synchronization requests in flight (pending Atomics.waitAsync calls, and threads waiting in Atomics.wait, Mutex.lock or Barrier.wait), at most syncInFlightCountMax: notify or time out some pending waits before making more`);
    }
    const ref = this.nextSyncRef++;
    const thread = this.ownerKey(wait.owner);
    // Fields named (not a spread: a cold spread is a runtime call per request).
    // Timed when traced, and when the line layer's own (a line grant, a line op): said if the run is interrupted.
    const timed = wait.kind !== null || request.kind === 'line' || request.kind === 'lineOp';
    this.waiters.set(ref, { owner: wait.owner, answer: wait.answer, kind: wait.kind, args: wait.args, tid: wait.tid, startUs: timed ? epochUs() : 0, request });
    if (hopsOn) hop(`m:onSync ${request.kind}`);
    try {
      if (this.onArrival === null) {
        this.engine.onSync(ref, request, thread);
      } else {
        this.localArrival = arrivalOfRequest(request);
        this.engine.onSync(ref, request, thread);
        const arrived = this.localArrival;
        this.localArrival = null;
        if (arrived !== null) this.onArrival(arrived.what, arrived.key);
      }
    } catch (error) {
      this.waiters.delete(ref);
      this.withdrawn.add(ref);
      try { this.engine.cancel(ref); } catch { /* the engine is already failing */ }
      throw error;
    }
    if (hopsOn) hop('m:onSync done');
    return ref;
  }

  private ownerKey(owner: Owner): number | undefined {
    if (typeof owner === 'number') return owner;
    if (typeof owner !== 'object' || owner === null) return undefined;
    let key = this.ownerKeys.get(owner);
    if (key === undefined) {
      key = this.nextOwnerKey++;
      this.ownerKeys.set(owner, key);
    }
    return key;
  }

  /**
   * An owner ended (its thread exited, or was terminated while parked): its
   * sync requests still in the engine are withdrawn, so an Atomics.wait it
   * left at a home does not swallow a notify and a lock granted to it is released.
   */
  ownerEnded(owner: Owner): void {
    for (const [ref, waiter] of this.waiters) {
      if (waiter.owner !== owner) continue;
      this.waiters.delete(ref);
      this.engine.cancel(ref);
    }
  }

  /** Sync requests parked now. */
  get syncInFlight(): number {
    return this.waiters.size;
  }

  /**
   * The app threads' requests parked now (Atomics ops, locks, barriers, and the line layer's own: a thread waiting
   * for a line's grant, or for the line under an Atomics op), oldest first: "app thread 2: Atomics.wait at byte 32
   * for 6.1 s". Said when a run is interrupted (ClusterNode), so that a run that stood still (a program's deadlock,
   * or an answer lost) is not silent about where its threads stand. `others`: waits the engine does not see
   * (a cluster of one's native Atomics.wait, a Web Lock request), merged in by their start.
   */
  describeParked(countMax: number, others: ReadonlyArray<{ tid: number; startUs: number; what: string }> = []): string[] {
    const nowUs = epochUs();
    const parked = [...[...this.waiters.values()].filter((waiter) => waiter.startUs !== 0), ...others].sort((a, b) => a.startUs - b.startUs);
    const lines = parked.slice(0, countMax).map((waiter) => {
      if (!('request' in waiter)) return `app thread ${waiter.tid}: ${waiter.what} for ${((nowUs - waiter.startUs) / 1e6).toFixed(1)} s`;
      const { args, request } = waiter;
      const what = request.kind === 'line' ? `the grant of Atomics line ${request.line} (bytes ${request.line * atomicLineBytes} to ${(request.line + 1) * atomicLineBytes - 1})`
        : request.kind === 'lineOp' ? `Atomics.${request.op} at byte ${request.address} (its line: held elsewhere, or the op shipped to the line's directory)`
          : waiter.kind === 'atomic' ? `Atomics.${String(args.op)} at byte ${String(args.address)}`
            : waiter.kind === 'lock' ? `Mutex.lock of lock ${String(args.lock)}`
              : `Barrier.wait of barrier ${String(args.barrier)}`;
      return `app thread ${waiter.tid}: ${what} for ${((nowUs - waiter.startUs) / 1e6).toFixed(1)} s`;
    });
    if (parked.length > countMax) lines.push(`${parked.length - countMax} more`);
    return lines;
  }

  message(fromNode: number, message: ProtocolMessage): void {
    if (hopsOn) hop(`m:onMessage ${message.type}`);
    if (message.type === 'pageReply') {
      // Before the engine installs it: a sleeping thread's wake-up then overlaps the install.
      this.memory.prewake?.(message.page);
      if (this.fetchesInFlight.size > 0) this.fetchArrived(message.page, fromNode);
    }
    const hopPage = this.observer.tracing && (message.type === 'pageReply' || message.type === 'pageRequest') ? message.page : -1;
    if (hopPage >= 0) this.hop(message.type === 'pageReply' ? 'reply received' : 'request received', hopPage);
    this.engine.onMessage(fromNode, message);
    if (hopsOn) hop('m:onMessage done');
    if (hopPage >= 0 && message.type === 'pageReply') this.hop('reply installed', hopPage);
    if (this.onArrival !== null) {
      const arrived = arrivalOfMessage(message);
      if (arrived !== null) this.onArrival(arrived.what, arrived.key);
    }
  }

  tick(nowMs: number): void {
    this.engine.onTick(nowMs);
  }

  /** The earliest time the engine's tick has work beyond the regular ticks (atomic lines), or null. */
  nextTickMs(): number | null {
    return this.engine.nextTickMs?.() ?? null;
  }

  private resume(ref: number, result: SyncResult | FaultResult): void {
    if (ref < faultSlotCount) {
      this.memory.resumeFault(ref);
      const fault = this.faultsInFlight.get(ref);
      if (fault !== undefined) {
        this.faultsInFlight.delete(ref);
        this.hop('thread resumed', fault.page);
        this.observer.record({
          name: fault.isWrite ? 'write fault' : 'read fault', cat: 'fault', ph: 'X', ts: this.observer.traceTs(fault.startUs),
          dur: epochUs() - fault.startUs, pid: this.observer.nodeId, tid: 0, args: { page: fault.page },
        });
      }
      return;
    }
    const waiter = this.waiters.get(ref);
    // A request withdrawn (its owner ended, or the engine threw taking it) may still get its one answer: drop it.
    if (waiter === undefined && this.withdrawn.delete(ref)) return;
    assert(waiter !== undefined, 'a sync result answers a waiting request');
    this.waiters.delete(ref);
    if (waiter.kind !== null) this.observer.syncDone(waiter.kind, waiter.startUs, waiter.tid, waiter.args);
    waiter.answer(result);
  }

  private send(toNode: number, message: ProtocolMessage): void {
    if (this.localArrival !== null && arrivalOfMessage(message) !== null) this.localArrival = null;
    // 'queued' needs nothing here (flow control sees the backed-up link); 'lost' ends the run elsewhere.
    const hopPage = this.observer.tracing && (message.type === 'pageReply' || message.type === 'pageRequest') ? message.page : -1;
    if (hopPage >= 0) this.hop(message.type === 'pageReply' ? 'reply sending' : 'request sending', hopPage);
    if (hopsOn) hop(`m:send ${message.type}`);
    if (this.network.send(toNode, message) === 'lost') return;
    if (hopsOn) hop('m:sent');
    // Stamped before the prefault below: `bench rtt --hops` times the encode and write apart from it.
    if (hopPage >= 0) this.hop(message.type === 'pageReply' ? 'reply sent' : 'request sent', hopPage);
    // Our own request (an old home forwarding another node's carries its origin): its pages' memory is made
    // resident while the home serves it, time this manager would spend waiting. (It also tells the threads
    // parked on the page that their fault went to the network: they stop spinning, src/memory/native.ts.)
    if (message.type === 'pageRequest' && message.origin === undefined && this.memory.prefault !== undefined) {
      this.memory.prefault(message.page, message.extraPages);
      if (hopsOn) hop('m:prefaulted');
      if (hopPage >= 0) this.hop('request prefaulted', hopPage);
    }
    if (message.type === 'pageRequest' && this.observer.tracing) {
      const id = `n${this.observer.nodeId}-f${this.fetchCounter++}`;
      this.fetchesInFlight.set(message.page, id);
      this.observer.record({ name: 'page fetch', cat: 'fetch', ph: 'b', id, ts: this.observer.traceTs(epochUs()), pid: this.observer.nodeId, tid: 0, args: { page: message.page, home: toNode } });
    }
  }

  /**
   * One hop of a remote read fault (`bench rtt --hops`): an instant trace
   * event with the page and this machine's epoch time in microseconds, so
   * hops recorded on different nodes of one machine line up.
   */
  private hop(hop: string, page: number): void {
    if (!this.observer.tracing) return;
    const atUs = epochUs();
    this.observer.record({ name: hop, cat: 'hop', ph: 'i', s: 't', ts: this.observer.traceTs(atUs), pid: this.observer.nodeId, tid: 0, args: { page, epochUs: atUs } });
  }

  private fetchArrived(page: number, home: number): void {
    const id = this.fetchesInFlight.get(page);
    if (id === undefined) return;
    this.fetchesInFlight.delete(page);
    this.observer.record({ name: 'page fetch', cat: 'fetch', ph: 'e', id, ts: this.observer.traceTs(epochUs()), pid: this.observer.nodeId, tid: 0, args: { page, home } });
  }
}

/** A lock request counts where it joins its manager's queue: here, unless the engine sends it on. (Waits: EngineHost.waitRegistered.) */
function arrivalOfRequest(request: SyncRequest): { what: Arrival; key: number } | null {
  if (request.kind === 'lock' && request.tryOnly !== true) return { what: 'lock', key: request.lockId };
  return null;
}

function arrivalOfMessage(message: ProtocolMessage): { what: Arrival; key: number } | null {
  if (message.type === 'lockRequest' && !message.tryOnly) return { what: 'lock', key: message.lockId };
  return null;
}
