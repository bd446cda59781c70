// One node's engine assembled from its parts (the Engine of types.ts): the
// context (context.ts), the interval log (intervals.ts), a coherence (hlrc.ts
// or sc.ts, behind coherence.ts), the sync layer (sync.ts) and the atomics
// home (atomics.ts). It owns no protocol state of its own: it routes each
// event to the part that handles it, then lets the log reclaim.

import { pageBytes } from '../constants.js';
import { assert } from '../errors.js';
import { AtomicsHome } from './atomics.js';
import type { Coherence, GrantPush } from './coherence.js';
import { EngineContext } from './context.js';
import { Intervals } from './intervals.js';
import type { ConsistencyInfo, DiffBatch, ProtocolMessage, ShippedOp } from './messages.js';
import { SyncLayer } from './sync.js';
import type { Engine, EngineCounters, EngineOptions, PlacementName, ProtocolName, SyncRequest } from './types.js';

/** What a coherence is built from (engine.ts picks hlrc or sc). */
export interface CoherenceParts {
  ctx: EngineContext;
  intervals: Intervals;
  options: EngineOptions;
  /** Whether an Atomics.wait is parked at this node on a page (answered by the atomics home, built after). */
  atomicWaiterOn: (page: number) => boolean;
}

export class ProtocolEngine implements Engine {
  readonly nodeId: number;
  readonly protocol: ProtocolName;

  // -- the parts
  /** Identity, memory, host, counters and the way out, shared by every part. */
  private readonly ctx: EngineContext;
  /** Vector clocks, write notices, log reclamation. */
  private readonly intervals: Intervals;
  /** Pages: hlrc or sc. */
  private readonly coherence: Coherence;
  /** Locks, barriers, requests in flight and their cancellation. */
  private readonly sync: SyncLayer;
  /** Atomics at their page's home. */
  private readonly atomics: AtomicsHome;
  /** Race detection (EngineOptions.onIntervalClosed): an acquire from outside the engine closes the open interval first. */
  private readonly closeBeforeAcquire: boolean;

  constructor(options: EngineOptions, placement: PlacementName, makeCoherence: (parts: CoherenceParts) => Coherence) {
    this.nodeId = options.nodeId;
    this.closeBeforeAcquire = options.onIntervalClosed !== undefined;
    this.ctx = new EngineContext(options, placement);
    this.ctx.dispatchLocal = (from, message) => this.dispatch(from, message);
    this.intervals = new Intervals(this.ctx, options.logReclaimCount);
    this.coherence = makeCoherence({
      ctx: this.ctx, intervals: this.intervals, options,
      atomicWaiterOn: (page) => this.atomics.hasWaiterOn(page),
    });
    this.protocol = this.coherence.protocol;
    this.sync = new SyncLayer(this.ctx, this.intervals, this.coherence, {
      ...(options.lockKeep === undefined ? {} : { lockKeep: options.lockKeep }), ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.peerBarriers === undefined ? {} : { peerBarriers: options.peerBarriers }),
      ...(options.lockPush === undefined ? {} : { lockPush: options.lockPush }),
    });
    this.atomics = new AtomicsHome(this.ctx, this.intervals, this.coherence, this.sync, options.clock);
  }

  start(): void { this.coherence.start(); }

  homeOf(page: number): number { return this.coherence.homeOf(page); }

  counters(): EngineCounters { return { ...this.ctx.stats }; }

  tableSizes(): Record<string, number> {
    return { ...this.intervals.tableSizes(), ...this.sync.tableSizes(), ...this.atomics.tableSizes(), ...this.coherence.tableSizes() };
  }

  onFault(threadRef: number, page: number, isWrite: boolean): void {
    this.coherence.onFault(threadRef, page, isWrite);
  }

  onTouched(stream = true): void {
    this.coherence.syncTouched(stream);
  }

  onSync(threadRef: number, request: SyncRequest): void {
    if (request.kind === 'atomic') this.atomics.request(threadRef, request);
    else this.sync.onSync(threadRef, request);
    this.maybeReclaim();
  }

  onTick(nowMs: number): void {
    this.atomics.onTick(nowMs);
    this.sync.onTick(nowMs);
    this.coherence.onTick?.(nowMs);
  }

  nextTickMs(): number | null { return this.sync.nextTickMs(); }

  pushForLine(page: number, toNode: number): GrantPush { return this.coherence.pushForLine(page, toNode); }

  pushSubscribed(toNode: number, pageCountMax?: number): GrantPush { return this.coherence.pushForBarrier(toNode, pageCountMax, true); }

  installPushed(push: GrantPush): void {
    this.coherence.installPushed(push);
    this.maybeReclaim();
  }


  afterLineAcquire(linePage: (page: number) => boolean): void { this.coherence.afterLineAcquire(linePage); }

  shippedAtomic(address: number, width: 1 | 2 | 4 | 8, op: ShippedOp, operands: string[], then: (result: string | null | false) => void, mayRun?: () => boolean): void {
    assert([1, 2, 4, 8].includes(width) && address % width === 0, 'a shipped atomic is aligned');
    const page = Math.floor(address / pageBytes);
    const memory = this.ctx.memory;
    const noteHomeWrite = this.coherence.noteHomeWrite?.bind(this.coherence);
    if (memory.atomic === undefined || noteHomeWrite === undefined || this.coherence.homeOf(page) !== this.nodeId) { then(null); return; }
    const atomic = memory.atomic.bind(memory);
    // A home copy still waiting for diffs an acquire named becomes current first.
    this.coherence.atomicAccess(page, () => {
      if (this.coherence.homeOf(page) !== this.nodeId) { then(null); return; } // lent away meanwhile
      // Waited for the page's diffs, and the caller's reason to run it is gone meanwhile (its line left): not run.
      if (mayRun !== undefined && !mayRun()) { then(false); return; }
      const { result, wrote } = atomic(address, width, op, operands);
      if (wrote) noteHomeWrite(page);
      then(result.toString());
    });
  }

  cancel(threadRef: number): boolean {
    return this.sync.cancel(threadRef, (requestId, home) => this.atomics.cancelWait(requestId, home));
  }

  releaseFor(toNode: number): ConsistencyInfo {
    assert(toNode >= 0 && toNode < this.ctx.nodeCount, 'release for a node of the cluster');
    this.coherence.closeInterval();
    const info = this.intervals.infoTo(toNode);
    this.maybeReclaim();
    return info;
  }

  releaseBundledFor(toNode: number): { info: ConsistencyInfo; bundled?: DiffBatch } {
    assert(toNode >= 0 && toNode < this.ctx.nodeCount && toNode !== this.nodeId, 'a bundled release for another node of the cluster');
    this.coherence.closeInterval(toNode);
    const bundle = this.ctx.bundle;
    this.ctx.bundle = null;
    const info = this.intervals.infoTo(toNode);
    // No log reclamation here (it runs at the next acquire or message): its acquire may invalidate a page
    // a thread wrote since the close, and flush that newer diff home at once, ahead of this release's
    // bundled diff of the same page, which the caller has not sent yet: the home then applied the older
    // diff last and the write was lost (simulation seed 210, --lines always --atomic-barrier always with
    // session 17's line changes on: a mutex word read back as locked after its unlock).
    return bundle === null ? { info } : { info, bundled: bundle.batch };
  }

  learnFrom(fromNode: number, info: ConsistencyInfo): void {
    assert(fromNode >= 0 && fromNode < this.ctx.nodeCount && info.vc.length === this.ctx.nodeCount, 'intervals from a node of the cluster');
    if (fromNode !== this.nodeId) this.intervals.learn(fromNode, info);
  }

  hearVc(fromNode: number, vc: readonly number[]): void {
    assert(fromNode >= 0 && fromNode < this.ctx.nodeCount && vc.length === this.ctx.nodeCount, 'a vc from a node of the cluster');
    if (fromNode !== this.nodeId) this.intervals.hearVc(fromNode, vc);
  }

  acquireFrom(fromNode: number, info: ConsistencyInfo, pushed?: readonly number[]): void {
    this.learnFrom(fromNode, info);
    // Race detection: writes before this acquire must not take its timestamp.
    if (this.closeBeforeAcquire) this.coherence.closeInterval();
    this.coherence.acquire(info.vc, pushed);
    // With a push, installPushed (next) reclaims: a reclaim's own acquire must not come between the two.
    if (pushed === undefined || pushed.length === 0) this.maybeReclaim();
  }

  dirtyPageCount(): number { return this.coherence.dirtyPageCount(); }

  flushDirty(pageCountMax: number): number { return this.coherence.flushDirty(pageCountMax); }

  refreshStale(): void { this.coherence.refreshStale?.(); }

  deferredPageCount(): number { return this.coherence.deferredPageCount(); }

  flushDeferred(pageCountMax: number): number { return this.coherence.flushDeferredCount(pageCountMax); }

  onMessage(fromNode: number, message: ProtocolMessage): void {
    assert(fromNode !== this.nodeId && fromNode >= 0 && fromNode < this.ctx.nodeCount, 'message from another node');
    this.dispatch(fromNode, message);
    // Messages whose info.vc is the sender's own applied vc tell us a lower bound of it, free.
    if (hearsVc(message.type)) this.intervals.hearVc(fromNode, (message as Extract<ProtocolMessage, { type: VcMessageType }>).info.vc);
    this.maybeReclaim();
  }

  /** Routes a message (from another node, or delivered to self) to its part. */
  private dispatch(from: number, message: ProtocolMessage): void {
    if ('bundled' in message && message.bundled !== undefined) {
      const { interval, pages, diffs } = message.bundled;
      // What the writer had applied when it wrote them (its release's vc), known before they apply: home migration asks it (migration.ts).
      if (from !== this.nodeId && hearsVc(message.type)) this.intervals.hearVc(from, (message as Extract<ProtocolMessage, { type: VcMessageType }>).info.vc);
      this.coherence.onMessage(from, { type: 'diffs', interval, pages, diffs });
    }
    switch (message.type) {
      case 'lockRequest': case 'lockRelease': case 'lockGrant': case 'lockRecall': case 'lockBusy':
      case 'barrierArrive': case 'barrierDepart': case 'barrierFlush':
        return this.sync.onMessage(from, message);
      case 'atomicRequest': return this.atomics.onRequest(from, message);
      case 'atomicReply': return this.atomics.onReply(from, message);
      case 'atomicCancel': return this.atomics.onCancel(message.origin ?? from, message.requestId);
      case 'vcQuery': return this.intervals.onVcQuery(from, message.info, (target) => this.coherence.acquire(target));
      case 'vcReport': return this.intervals.onVcReport(from, message.vc);
      default:
        return this.coherence.onMessage(from, message);
    }
  }

  private maybeReclaim(): void {
    this.intervals.maybeReclaim((target) => this.coherence.acquire(target));
  }
}

/** Messages whose info.vc is the sender's own applied vc: each tells a lower bound of it, free. */
type VcMessageType = 'lockRequest' | 'lockRelease' | 'barrierArrive' | 'atomicRequest' | 'atomicReply';
function hearsVc(type: ProtocolMessage['type']): type is VcMessageType {
  return type === 'lockRequest' || type === 'lockRelease' || type === 'barrierArrive' || type === 'atomicRequest' || type === 'atomicReply';
}
