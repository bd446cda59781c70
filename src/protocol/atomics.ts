// The atomics home, part of the synchronization layer: every Atomics
// operation on dsm memory runs at the home of its page (as the coherence
// knows it), in arrival order, after the requester's release.
//   requester: request (an app's Atomics call), onReply, cancelWait
//   home:      onRequest -> performAtomic (read-modify-write through the
//              manager view; wait parks, notify wakes), onCancel, onTick
//              (timed waits), and in race mode per-location clocks.
// Its narrow interface to the rest of the engine: the engine routes the
// 'atomic' sync request and the atomicRequest/atomicReply/atomicCancel
// messages here; it asks the coherence for the page (atomicAccess,
// atomicStore) and files its requests in the sync layer (SyncRequests).

import { assert } from '../errors.js';
import { atomicClockCountMax, atomicWaiterCountMax, pageBytes } from '../constants.js';
import { atomicApply } from './atomic-ops.js';
import type { Coherence } from './coherence.js';
import type { EngineContext } from './context.js';
import { encodeRun } from './diff-codec.js';
import type { Intervals } from './intervals.js';
import type { AtomicOp, ProtocolMessage } from './messages.js';
import type { SyncRequests } from './sync.js';
import type { SyncRequest } from './types.js';

type AtomicRequestMessage = Extract<ProtocolMessage, { type: 'atomicRequest' }>;

/** An Atomics.wait parked at this home. */
interface AtomicWaiter { node: number; requestId: number; address: number; deadlineMs: number }

export class AtomicsHome {
  // -- at the home
  /** Waits parked here, oldest first (notify wakes in this order). */
  private readonly waiters: AtomicWaiter[] = [];
  /** Race mode at the race home: per Atomics location (byte address), the join of the vcs released there. */
  private readonly clocks = new Map<number, number[]>();
  /** One page's bytes, read for each operation. */
  private readonly pageScratch = new Uint8Array(pageBytes);

  // -- time (for timed waits)
  /** The last time seen (a tick, or the clock read when a timed wait arrived). */
  private nowMs = 0;
  /** The clock handed in (EngineOptions.clock), or null: the last tick's time. */
  private readonly clock: (() => number) | null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly intervals: Intervals,
    private readonly coherence: Coherence,
    private readonly requests: SyncRequests,
    clock: (() => number) | undefined,
  ) {
    this.clock = clock ?? null;
  }

  tableSizes(): Record<string, number> {
    return { atomicWaiters: this.waiters.length };
  }

  /** Whether a wait is parked here on the page (home migration leaves such pages). */
  hasWaiterOn(page: number): boolean {
    return this.waiters.some((waiter) => Math.floor(waiter.address / pageBytes) === page);
  }

  // -------------------------------------------------------- requester

  /** An app thread's Atomics operation: released, then sent to the page's home. */
  request(threadRef: number, request: Extract<SyncRequest, { kind: 'atomic' }>): void {
    assert([1, 2, 4, 8].includes(request.width) && request.address % request.width === 0, 'atomic access is aligned');
    const home = this.coherence.homeOf(Math.floor(request.address / pageBytes));
    this.coherence.closeInterval(home);
    const requestId = this.requests.newRequest(threadRef, 'atomic', { home, isWait: request.op === 'wait' });
    this.ctx.deliver(home, () => ({
      type: 'atomicRequest', requestId, op: request.op, address: request.address, width: request.width,
      operands: request.operands, timeoutMs: request.timeoutMs, info: this.intervals.infoTo(home),
    }));
  }

  /** The thread of a wait parked at `home` is gone: the home removes the wait. */
  cancelWait(requestId: number, home: number): void {
    this.ctx.deliver(home, () => ({ type: 'atomicCancel', requestId }));
  }

  onReply(from: number, message: Extract<ProtocolMessage, { type: 'atomicReply' }>): void {
    this.intervals.learn(from, message.info);
    this.coherence.acquire(message.info.vc);
    this.requests.finish(message.requestId, { ok: true, value: message.result });
  }

  // ------------------------------------------------------------- home

  onRequest(from: number, message: AtomicRequestMessage): void {
    if (from !== this.ctx.nodeId) this.intervals.learn(from, message.info);
    // The requester released before asking; acquiring its knowledge here
    // orders this operation after everything it saw.
    this.coherence.acquire(message.info.vc);
    if (this.ctx.homeNode === this.ctx.nodeId) this.joinClock(message.address, message.info.vc);
    const page = Math.floor(message.address / pageBytes);
    const requester = message.origin ?? from;
    const home = this.coherence.homeOf(page);
    if (home !== this.ctx.nodeId) {
      // A page lent away: the borrower runs it, after the requester's diffs
      // forwarded before (this node acquired the requester's vc, so its own info covers it).
      // The borrower may be the requester itself, whose lend crossed its request: the lend reaches it
      // before this forward (FIFO), so it runs the op as the page's home (session 35: a simulated scan
      // with Atomics.load of a band whose writer had just become its home).
      assert(this.coherence.lentTo(page) === home, 'atomics run at the home of their page, or are forwarded by its static home');
      const { bundled: _bundled, ...rest } = message;
      this.ctx.stats.lendForwards = (this.ctx.stats.lendForwards ?? 0) + 1;
      this.ctx.send(home, { ...rest, origin: requester, info: this.intervals.infoFor(home) });
      return;
    }
    this.coherence.atomicAccess(page, () => this.performAtomic(requester, message, page));
  }

  private performAtomic(from: number, message: AtomicRequestMessage, page: number): void {
    const offset = message.address - page * pageBytes;
    assert(offset + message.width <= pageBytes, 'atomic access within one page');
    this.ctx.memory.readPage(page, this.pageScratch);
    const old = readLe(this.pageScratch, offset, message.width);
    const op: AtomicOp = message.op;
    if (op === 'notify') {
      // The count is ToIntegerOrInfinity's, not reduced modulo 2^32; -1 stands for +Infinity (all).
      const operand = BigInt(message.operands[0] ?? '-1');
      const count = operand < 0n ? Infinity : Number(operand);
      assert(count >= 0, 'a notify count is never negative');
      let woken = 0;
      for (let k = 0; k < this.waiters.length && woken < count;) {
        const waiter = this.waiters[k]!;
        if (waiter.address !== message.address) { k++; continue; }
        this.waiters.splice(k, 1);
        woken++;
        this.reply(waiter.node, waiter.requestId, 'ok', waiter.address);
      }
      this.reply(from, message.requestId, String(woken), message.address);
      return;
    }
    if (op === 'wait') {
      const expected = BigInt.asUintN(message.width * 8, BigInt(message.operands[0] ?? '0'));
      if (old !== expected) { this.reply(from, message.requestId, 'not-equal', message.address); return; }
      if (message.timeoutMs === 0) { this.reply(from, message.requestId, 'timed-out', message.address); return; }
      assert(this.waiters.length < atomicWaiterCountMax, 'atomic waiters within limit');
      const deadlineMs = message.timeoutMs < 0 ? Infinity : this.timeNowMs() + message.timeoutMs;
      this.waiters.push({ node: from, requestId: message.requestId, address: message.address, deadlineMs });
      this.ctx.host.waitRegistered?.(message.address);
      return;
    }
    const { result, next } = atomicApply(op, old, message.operands, message.width);
    if (next !== null && next !== old) {
      writeLe(this.pageScratch, offset, message.width, next);
      // A store by the home through the manager view: make it this node's
      // write in its own interval, closed at once so the reply carries it.
      const diff = encodeRun(offset, this.pageScratch.subarray(offset, offset + message.width));
      this.coherence.atomicStore(page, diff);
      // Race mode: this location's clock now includes the store's interval.
      const clock = this.clocks.get(message.address);
      if (clock !== undefined) clock[this.ctx.nodeId] = this.intervals.vc[this.ctx.nodeId]!;
    }
    this.reply(from, message.requestId, result.toString(), message.address);
  }

  /** A requester's thread is gone: remove its wait (or pass the cancel on to a borrower of the page). */
  onCancel(from: number, requestId: number): void {
    const k = this.waiters.findIndex((w) => w.node === from && w.requestId === requestId);
    if (k < 0) {
      // The wait may have been forwarded to a borrower of its page.
      for (const node of this.coherence.lendees()) if (node !== from) this.ctx.send(node, { type: 'atomicCancel', requestId, origin: from });
      return;
    }
    this.waiters.splice(k, 1);
    // Nobody will answer it now: the requester forgets the request.
    this.replyCanceled(from, requestId);
  }

  /** Tells the requester of a canceled wait that no answer will come. */
  private replyCanceled(node: number, requestId: number): void {
    if (node === this.ctx.nodeId) { this.requests.forgetCanceled(requestId); return; }
    this.ctx.send(node, { type: 'atomicReply', requestId, result: 'canceled', info: this.intervals.infoFor(node) });
  }

  /**
   * Race mode, at the race home: every Atomics operation releases what its
   * thread did into its location's clock (past atomicClockCountMax
   * locations, new ones are not tracked and their replies carry this node's
   * whole vc: more ordering, races missed rather than invented).
   */
  private joinClock(address: number, vc: number[]): void {
    let clock = this.clocks.get(address);
    if (clock === undefined) {
      if (this.clocks.size >= atomicClockCountMax) return;
      clock = new Array<number>(this.ctx.nodeCount).fill(0);
      this.clocks.set(address, clock);
    }
    for (let n = 0; n < this.ctx.nodeCount; n++) clock[n] = Math.max(clock[n]!, vc[n] ?? 0);
  }

  private reply(node: number, requestId: number, result: string, address = -1): void {
    if (node === this.ctx.nodeId) {
      this.requests.finish(requestId, { ok: true, value: result });
      return;
    }
    const info = this.intervals.infoFor(node);
    // Race mode: the acquire carries what was released at this location only
    // (a lower bound of this node's vc, as hearVc expects), so Atomics order
    // threads per location as the JavaScript memory model does, not through
    // everything the atomic home has seen.
    const clock = this.clocks.get(address);
    if (clock !== undefined) info.vc = [...clock];
    this.ctx.send(node, { type: 'atomicReply', requestId, result, info });
  }

  // ------------------------------------------------------------- time

  /** The current time: the clock handed in, read fresh, or else the last tick's. */
  private timeNowMs(): number {
    if (this.clock === null) return this.nowMs;
    const nowMs = this.clock();
    assert(nowMs >= this.nowMs, 'the clock does not go backwards');
    this.nowMs = nowMs;
    return nowMs;
  }

  /** Times out the waits whose deadline passed. */
  onTick(nowMs: number): void {
    assert(nowMs >= this.nowMs, 'time does not go backwards');
    this.nowMs = nowMs;
    for (let k = 0; k < this.waiters.length;) {
      const waiter = this.waiters[k]!;
      if (waiter.deadlineMs > nowMs) { k++; continue; }
      this.waiters.splice(k, 1);
      this.reply(waiter.node, waiter.requestId, 'timed-out', waiter.address);
    }
  }
}

function readLe(bytes: Uint8Array, offset: number, width: number): bigint {
  let value = 0n;
  for (let k = width - 1; k >= 0; k--) value = (value << 8n) | BigInt(bytes[offset + k]!);
  return value;
}

function writeLe(bytes: Uint8Array, offset: number, width: number, value: bigint): void {
  let rest = value;
  for (let k = 0; k < width; k++) { bytes[offset + k] = Number(rest & 0xffn); rest >>= 8n; }
}
