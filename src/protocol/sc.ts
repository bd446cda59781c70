// Sequential consistency: single writer / multiple readers, write-invalidate,
// a fixed distributed manager per page (Li & Hudak 1989, page % nodeCount).
//
// The manager serializes the requests of each page: it forwards a request to
// the owner and takes the next one only when the requester confirms. The
// owner sends the page; for a write it also hands over the copyset, and the
// requester invalidates every other copy (waiting for the acks) before it
// writes. So at every instant a page has one writer or any number of readers.
// The synchronization layer (sync.ts, atomics.ts) is the hlrc one, with a
// release and an acquire that do nothing (every store is already visible when
// it completes), so write notices stay empty; atomics run at the page's
// manager once that node holds the page writable.

import { assert } from '../errors.js';
import { syncQueueCountMax, pageBytes } from '../constants.js';
import type { Coherence, GrantPush, LockReleases } from './coherence.js';
import type { PushPrediction } from './push-predict.js';
import type { EngineContext } from './context.js';
import { protNone, protRead, protReadWrite, type PageMemory } from './memory.js';
import type { ProtocolMessage } from './messages.js';
import type { EngineCounters } from './types.js';

type Access = 0 | 1 | 2;

interface ScManaged {
  owner: number;
  copyset: Set<number>;
  busy: boolean;
  queue: Array<{ requester: number; isWrite: boolean }>;
}

interface ScLocal {
  access: Access;
  requesting: boolean;
  requestWrite: boolean;
  acksPending: number;
  waiters: Array<{ isWrite: boolean; then: () => void }>;
}

export class ScCoherence implements Coherence {
  readonly protocol = 'sc' as const;

  // -- shared with the other parts (copied from the context for brevity)
  private readonly nodeId: number;
  private readonly nodeCount: number;
  private readonly pageCount: number;
  private readonly memory: PageMemory;
  private readonly stats: EngineCounters;

  // -- pages
  /** At the manager: the directory entry of each page that moved from its initial state. */
  private readonly managed = new Map<number, ScManaged>();
  /** This node's access to each page it asked for or gave up. */
  private readonly local = new Map<number, ScLocal>();

  constructor(private readonly ctx: EngineContext) {
    assert(ctx.placement === 'roundRobin', 'sc managers are placed round-robin');
    this.nodeId = ctx.nodeId;
    this.nodeCount = ctx.nodeCount;
    this.pageCount = ctx.pageCount;
    this.memory = ctx.memory;
    this.stats = ctx.stats;
  }

  start(): void {
    // Every node starts with a read copy of every (zero) page; the manager owns it.
    if (this.ctx.nodeCount === 1) {
      // A cluster of one manages every page and no other node can ever hold
      // a copy: every page is read-write from the start, with no fault.
      this.memory.protectRange(0, this.pageCount, protReadWrite);
      return;
    }
    this.memory.protectRange(0, this.pageCount, protRead);
    this.memory.setFastWriteRange(0, this.pageCount, 1, false);
  }

  tableSizes(): Record<string, number> {
    return { scManaged: this.managed.size, scLocal: this.local.size };
  }

  /** The manager of a page: fixed by placement (pages never move under sc). */
  homeOf(page: number): number {
    assert(page >= 0 && page < this.pageCount, 'page within the region');
    return this.ctx.placementHomeOf(page);
  }
  lentTo(_page: number): number { return -1; }
  lendees(): Iterable<number> { return []; }

  // Write notices do not exist under sc: stores are coherent when they complete.
  closeInterval(_bundleTo?: number, _pushTo?: number): void {}
  acquire(_target: number[]): void {}
  // Nor pushes with a lock grant (they follow write notices), nor home migration.
  pushFor(_releases: LockReleases, _requesterVc: number[], _requester: number, _prediction: PushPrediction | null): GrantPush { return {}; }
  pushForBarrier(_toNode: number, _pageCountMax?: number): GrantPush { return {}; }
  pushForLine(_page: number, _toNode: number): GrantPush { return {}; }
  installPushed(push: GrantPush): void {
    assert((push.pushPages ?? []).length === 0, 'no pages are pushed under sc');
  }
  afterBarrier(): void {}
  afterLineAcquire(_linePage: (page: number) => boolean): void {}
  // Nor twins: a written page is owned, never diffed.
  dirtyPageCount(): number { return 0; }
  flushDirty(_pageCountMax: number): number { return 0; }
  deferredPageCount(): number { return 0; }
  flushDeferredCount(_pageCountMax: number): number { return 0; }

  private managedOf(page: number): ScManaged {
    assert(this.homeOf(page) === this.nodeId, 'only the manager keeps a page directory entry');
    let entry = this.managed.get(page);
    if (entry === undefined) {
      entry = { owner: this.nodeId, copyset: new Set(Array.from({ length: this.nodeCount }, (_, n) => n)), busy: false, queue: [] };
      this.managed.set(page, entry);
    }
    return entry;
  }

  private localOf(page: number): ScLocal {
    let entry = this.local.get(page);
    if (entry === undefined) {
      entry = { access: 1, requesting: false, requestWrite: false, acksPending: 0, waiters: [] };
      this.local.set(page, entry);
    }
    return entry;
  }

  onFault(threadRef: number, page: number, isWrite: boolean): void {
    assert(page >= 0 && page < this.pageCount, 'fault within the region');
    if (isWrite) this.stats.writeFaults++; else this.stats.readFaults++;
    this.withAccess(page, isWrite, () => this.ctx.host.resume(threadRef, { ok: true, value: null }));
  }

  /** sc marks no read-ahead copies (PageMemory.setTouchAhead): no touch to learn. */
  syncTouched(): void { /* nothing */ }

  atomicAccess(page: number, then: () => void): void {
    this.withAccess(page, true, then);
  }

  atomicStore(page: number, diff: Uint8Array): void {
    assert(this.localOf(page).access === 2, 'an atomic store at a node that holds the page writable');
    this.memory.applyDiff(page, diff);
  }

  private withAccess(page: number, isWrite: boolean, then: () => void): void {
    const state = this.localOf(page);
    const needed: Access = isWrite ? 2 : 1;
    if (state.access >= needed && !state.requesting) { then(); return; }
    assert(state.waiters.length < syncQueueCountMax, 'sc page waiters within limit');
    state.waiters.push({ isWrite, then });
    this.requestNext(page);
  }

  private requestNext(page: number): void {
    const state = this.localOf(page);
    if (state.requesting) return;
    // Serve every waiter the current access allows; ask for more if needed.
    const ready = state.waiters.filter((w) => state.access >= (w.isWrite ? 2 : 1));
    state.waiters = state.waiters.filter((w) => state.access < (w.isWrite ? 2 : 1));
    for (const waiter of ready) waiter.then();
    if (state.waiters.length === 0 || state.requesting) return;
    state.requesting = true;
    state.requestWrite = state.waiters.some((w) => w.isWrite);
    this.stats.pageFetches++;
    this.ctx.deliver(this.homeOf(page), () => ({ type: 'scRequest', page, requester: this.nodeId, isWrite: state.requestWrite }));
  }

  onMessage(from: number, message: ProtocolMessage): void {
    switch (message.type) {
      case 'scRequest': return this.onRequest(message.page, message.requester, message.isWrite);
      case 'scForward': return this.onForward(message.page, message.requester, message.isWrite, message.copyset);
      case 'scPage': return this.onPage(message.page, message.isWrite, message.bytes, message.copyset);
      case 'scInvalidate': return this.onInvalidate(message.page, message.requester);
      case 'scInvalidateAck': return this.onInvalidateAck(message.page);
      case 'scConfirm': return this.onConfirm(from, message.page, message.isWrite);
      default:
        assert(false, `sc engine got a message it does not speak: ${message.type}`);
    }
  }

  /** At the manager. */
  private onRequest(page: number, requester: number, isWrite: boolean): void {
    const entry = this.managedOf(page);
    if (entry.busy) {
      assert(entry.queue.length < syncQueueCountMax, 'sc manager queue within limit');
      entry.queue.push({ requester, isWrite });
      return;
    }
    entry.busy = true;
    const copyset = isWrite ? [...entry.copyset].filter((n) => n !== requester && n !== entry.owner) : [];
    this.ctx.deliver(entry.owner, () => ({ type: 'scForward', page, requester, isWrite, copyset }));
  }

  /** At the owner: hand the page over (downgrading or giving up our copy). */
  private onForward(page: number, requester: number, isWrite: boolean, copyset: number[]): void {
    const state = this.localOf(page);
    assert(state.access >= 1, 'the owner holds a copy');
    // Downgrade first, then read: app threads run concurrently with the
    // manager, and a store that lands between a read and the protection
    // change would be lost (after protect returns, no thread can store).
    if (requester !== this.nodeId) {
      const next: Access = isWrite ? 0 : 1;
      state.access = Math.min(state.access, next) as Access;
      this.memory.protect([page], next === 0 ? protNone : protRead);
      if (next === 0) this.stats.invalidations++;
    }
    const bytes = new Uint8Array(pageBytes);
    this.memory.readPage(page, bytes);
    this.ctx.deliver(requester, () => ({ type: 'scPage', page, isWrite, bytes, copyset }));
  }

  /** At the requester. */
  private onPage(page: number, isWrite: boolean, bytes: Uint8Array, copyset: number[]): void {
    const state = this.localOf(page);
    assert(state.requesting && state.requestWrite === isWrite, 'a page answers our request');
    if (state.access === 0) this.memory.writePage(page, bytes);
    if (!isWrite) { this.grantLocal(page, 1); return; }
    state.acksPending = copyset.length;
    if (copyset.length === 0) { this.grantLocal(page, 2); return; }
    for (const node of copyset) this.ctx.deliver(node, () => ({ type: 'scInvalidate', page, requester: this.nodeId }));
  }

  private onInvalidate(page: number, requester: number): void {
    const state = this.localOf(page);
    assert(requester !== this.nodeId, 'a node does not invalidate itself');
    if (state.access > 0) this.stats.invalidations++;
    state.access = 0;
    this.memory.protect([page], protNone);
    this.ctx.deliver(requester, () => ({ type: 'scInvalidateAck', page }));
  }

  private onInvalidateAck(page: number): void {
    const state = this.localOf(page);
    assert(state.acksPending > 0, 'an ack answers an invalidation');
    state.acksPending--;
    if (state.acksPending === 0) this.grantLocal(page, 2);
  }

  private grantLocal(page: number, access: Access): void {
    const state = this.localOf(page);
    state.access = access;
    state.requesting = false;
    this.memory.protect([page], access === 2 ? protReadWrite : protRead);
    this.ctx.deliver(this.homeOf(page), () => ({ type: 'scConfirm', page, isWrite: access === 2 }));
    this.requestNext(page);
  }

  /** At the manager: the transfer is done; take the next request. */
  private onConfirm(from: number, page: number, isWrite: boolean): void {
    const entry = this.managedOf(page);
    assert(entry.busy, 'a confirm ends a transfer');
    if (isWrite) { entry.owner = from; entry.copyset = new Set([from]); } else entry.copyset.add(from);
    entry.busy = false;
    const next = entry.queue.shift();
    if (next !== undefined) this.onRequest(page, next.requester, next.isWrite);
    else if (entry.owner === this.nodeId && entry.copyset.size === this.nodeCount) this.managed.delete(page);
  }
}
