// Intervals, vector clocks, write notices and log reclamation (TreadMarks,
// Keleher 1992), shared by both coherence protocols (sc closes no interval,
// so its log stays empty and its vectors zero).
//
// Per node: `vc` is what this node has applied (acquired); `known` is how far
// its interval log reaches per writer (known >= vc). Sync messages carry the
// sender's vc plus the intervals the receiver may lack (infoFor). The log is
// reclaimed below a floor every node has applied: raised by all-node barriers
// and by vcQuery rounds once the log passes logReclaimCount.

import { assert } from '../errors.js';
import { intervalLogCountMax, intervalLogReclaimCount } from '../constants.js';
import type { EngineContext } from './context.js';
import type { ConsistencyInfo, IntervalRecord } from './messages.js';

export class Intervals {
  // -- this node's clocks and log
  /** What this node has applied per writer (vc[nodeId]: its own last closed interval). */
  readonly vc: number[];
  /** How far this node's log reaches per writer (known >= vc). */
  readonly known: number[];
  /** Intervals above `floor` per writer: log[n][i - floor[n] - 1] is interval i of n. */
  private readonly log: IntervalRecord[][];
  /** Every node has applied at least this (set by all-node barriers and vcQuery rounds); older intervals are reclaimed. */
  readonly floor: number[];
  /** Records in the log, all writers together. */
  private logCount = 0;

  // -- what this node knows of its peers (lower bounds)
  /** What each peer's log is known to reach. */
  private readonly peerKnown: number[][];
  /** What each peer has applied (from vcReport and the vc that sync messages carry). */
  private readonly peerVc: number[][];

  // -- reclamation rounds
  /** The log size that starts a vcQuery round, and again after each round. */
  private readonly logReclaimCount: number;
  /** vcReport answers still due for this node's vcQuery round (0: none in flight). */
  private vcReportsDue = 0;
  /** The log size at which this node starts its next vcQuery round. */
  private vcQueryLogCount: number;

  constructor(private readonly ctx: EngineContext, logReclaimCount: number | undefined) {
    const nodeCount = ctx.nodeCount;
    this.vc = new Array<number>(nodeCount).fill(0);
    this.known = new Array<number>(nodeCount).fill(0);
    this.floor = new Array<number>(nodeCount).fill(0);
    this.log = Array.from({ length: nodeCount }, () => []);
    this.peerKnown = Array.from({ length: nodeCount }, () => new Array<number>(nodeCount).fill(0));
    this.peerVc = Array.from({ length: nodeCount }, () => new Array<number>(nodeCount).fill(0));
    this.logReclaimCount = logReclaimCount ?? intervalLogReclaimCount;
    assert(this.logReclaimCount >= 1 && this.logReclaimCount < intervalLogCountMax / 2, 'log reclaim count within the log limit');
    this.vcQueryLogCount = this.logReclaimCount;
  }

  tableSizes(): Record<string, number> {
    return { log: this.logCount, vcReportsDue: this.vcReportsDue };
  }

  // ------------------------------------------------------------ the log

  /** Logs this node's interval `index` (the next one), naming `pages`, and makes it applied. */
  closeOwn(index: number, pages: number[]): void {
    const self = this.ctx.nodeId;
    assert(index === this.vc[self]! + 1, 'own intervals close in order');
    this.vc[self] = index;
    this.append({ node: self, index, pages });
  }

  private append(record: IntervalRecord): void {
    const n = record.node;
    if (record.index <= this.known[n]!) return; // already known
    assert(record.index === this.known[n]! + 1, `intervals of node ${n} arrive in order`);
    assert(this.logCount < intervalLogCountMax, 'interval log within limit (barriers and vcQuery rounds reclaim it)');
    if (record.index > this.floor[n]!) {
      assert(record.index === this.floor[n]! + 1 + this.log[n]!.length, 'interval log stays contiguous');
      this.log[n]!.push(record);
      this.logCount++;
    }
    this.known[n] = record.index;
  }

  /** Interval `index` of `writer` if the log still holds it (above the floor, known), else null. */
  record(writer: number, index: number): IntervalRecord | null {
    if (index <= this.floor[writer]! || index > this.known[writer]!) return null;
    const record = this.log[writer]![index - this.floor[writer]! - 1]!;
    assert(record.index === index && record.node === writer, 'the log holds a known interval above the floor');
    return record;
  }

  /**
   * Raises vc to `target` (other writers only): calls `notice` with every
   * interval in between, oldest first per writer, so the caller can apply
   * their write notices. Every such interval must be known.
   */
  advance(target: number[], notice: (record: IntervalRecord) => void): void {
    for (let n = 0; n < this.ctx.nodeCount; n++) {
      if (n === this.ctx.nodeId) continue;
      const upTo = target[n] ?? 0;
      if (upTo <= this.vc[n]!) continue;
      assert(this.known[n]! >= upTo, `log of node ${n} reaches what must be acquired`);
      // The log is contiguous: log[n][k] is interval floor[n] + 1 + k, and floor <= vc.
      const log = this.log[n]!;
      for (let k = this.vc[n]! - this.floor[n]!; k < upTo - this.floor[n]!; k++) {
        const record = log[k]!;
        assert(record.index === this.floor[n]! + 1 + k, 'interval log is contiguous above the floor');
        notice(record);
      }
      this.vc[n] = upTo;
    }
  }

  // ------------------------------------------------- consistency info

  /** What a sync message to `toNode` carries: this node's vectors and the intervals `toNode` may lack. */
  infoFor(toNode: number): ConsistencyInfo {
    const intervals: IntervalRecord[] = [];
    const peer = this.peerKnown[toNode]!;
    for (let n = 0; n < this.ctx.nodeCount; n++) {
      if (n === toNode) continue;
      const from = Math.max(peer[n]!, this.floor[n]!);
      const log = this.log[n]!;
      for (let k = from - this.floor[n]!; k < log.length; k++) intervals.push(log[k]!);
      peer[n] = Math.max(peer[n]!, this.known[n]!);
    }
    return { vc: [...this.vc], known: [...this.known], intervals };
  }

  /** Info for a message this node delivers to itself: its vectors, no intervals. */
  localInfo(): ConsistencyInfo { return { vc: [...this.vc], known: [...this.known], intervals: [] }; }

  infoTo(toNode: number): ConsistencyInfo {
    return toNode === this.ctx.nodeId ? this.localInfo() : this.infoFor(toNode);
  }

  /** Logs the intervals a sync message from `from` carried. */
  learn(from: number, info: ConsistencyInfo): void {
    const sorted = [...info.intervals].sort((a, b) => a.index - b.index);
    for (const record of sorted) this.append(record);
    const peer = this.peerKnown[from]!;
    for (let n = 0; n < this.ctx.nodeCount; n++) peer[n] = Math.max(peer[n]!, info.known[n] ?? 0);
  }

  // ------------------------------------------------ log reclamation

  /** What `node` is known to have applied of `writer`'s intervals (a lower bound). */
  appliedBy(node: number, writer: number): number {
    return node === this.ctx.nodeId ? this.vc[writer]! : this.peerVc[node]![writer]!;
  }

  /** `vc` is what `node` had applied when it sent it: a lower bound of its applied vc from now on. */
  hearVc(node: number, vc: readonly number[]): void {
    if (node === this.ctx.nodeId) return;
    const row = this.peerVc[node]!;
    for (let n = 0; n < this.ctx.nodeCount; n++) row[n] = Math.max(row[n]!, vc[n] ?? 0);
  }

  /**
   * Raises the floor to the element-wise minimum of every node's applied vc
   * (this node's own included): every node has applied those intervals, so no
   * future acquire anywhere asks for their write notices. No barrier needed.
   */
  private reclaim(): void {
    const floor = [...this.vc];
    for (let m = 0; m < this.ctx.nodeCount; m++) {
      if (m === this.ctx.nodeId) continue;
      for (let n = 0; n < this.ctx.nodeCount; n++) floor[n] = Math.min(floor[n]!, this.peerVc[m]![n]!);
    }
    this.raiseFloor(floor);
  }

  /**
   * Called after every event: a log past its threshold starts a vcQuery round.
   * This node first applies every interval it knows (`acquire`: the
   * coherence's), and the query carries them, so each answering node applies
   * at least as much: once all answers are in, the floor reaches what this
   * node knew when it asked.
   */
  maybeReclaim(acquire: (target: number[]) => void): void {
    if (this.logCount < this.vcQueryLogCount || this.vcReportsDue > 0 || this.ctx.nodeCount === 1) return;
    acquire(this.known);
    this.reclaim();
    this.vcReportsDue = this.ctx.nodeCount - 1;
    for (let m = 0; m < this.ctx.nodeCount; m++) if (m !== this.ctx.nodeId) this.ctx.send(m, { type: 'vcQuery', info: this.infoFor(m) });
  }

  onVcQuery(from: number, info: ConsistencyInfo, acquire: (target: number[]) => void): void {
    this.learn(from, info);
    this.hearVc(from, info.vc);
    // An extra acquire is always allowed under release consistency (it only
    // shows newer writes); it lets the querier's floor rise past old records.
    acquire(this.known);
    this.ctx.send(from, { type: 'vcReport', vc: [...this.vc] });
    this.reclaim();
  }

  onVcReport(from: number, vc: number[]): void {
    assert(this.vcReportsDue > 0, 'a vcReport answers this node\'s vcQuery');
    this.hearVc(from, vc);
    this.vcReportsDue--;
    this.reclaim();
    if (this.vcReportsDue === 0) this.vcQueryLogCount = this.logCount + this.logReclaimCount;
  }

  /** Drops log records every node has applied (up to `floor`, never past this node's vc). */
  raiseFloor(floor: number[]): void {
    for (let n = 0; n < this.ctx.nodeCount; n++) {
      const upTo = Math.min(floor[n] ?? 0, this.vc[n]!);
      if (upTo <= this.floor[n]!) continue;
      const log = this.log[n]!;
      let drop = 0;
      while (drop < log.length && log[drop]!.index <= upTo) drop++;
      log.splice(0, drop);
      this.logCount -= drop;
      this.floor[n] = upTo;
    }
  }
}
