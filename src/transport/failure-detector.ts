// When is a silent peer dead? A fixed timeout is wrong on a busy machine:
// heartbeats arrive late when either side is short of CPU. This is the
// phi-accrual detector (Hayashibara et al. 2004, as in Cassandra and Akka):
// it keeps the recent gaps between messages heard from a peer, models them
// as a normal distribution, and declares the peer dead when the silence so
// far is so unlikely under that model that phi = -log10(P(gap >= silence))
// passes a threshold. The configured timeout is a floor: a peer is never
// declared dead sooner, whatever the samples say.

import { heartbeatSampleCount, phiThreshold } from '../constants.js';
import { assert } from '../errors.js';

/** z such that P(Z >= z) = 10^-phi for a standard normal Z (phi = 8 -> z ~ 5.61). */
function zForPhi(phi: number): number {
  // Bisection on the upper tail; erfc from Abramowitz-Stegun 7.1.26 is exact enough for a threshold.
  const upperTail = (z: number): number => {
    const x = z / Math.SQRT2;
    const t = 1 / (1 + 0.3275911 * x);
    const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
    return erfc / 2;
  };
  const target = 10 ** -phi;
  let low = 0;
  let high = 40;
  for (let step = 0; step < 60; step++) {
    const middle = (low + high) / 2;
    if (upperTail(middle) > target) low = middle; else high = middle;
  }
  return high;
}

const zThreshold = zForPhi(phiThreshold);

export class FailureDetector {
  private readonly gaps = new Float64Array(heartbeatSampleCount);
  private gapCount = 0;
  private nextGap = 0;
  private lastHeardMs: number;

  /** floorMs: never dead sooner; intervalMs: the sender's heartbeat period (the gap expected when idle). */
  constructor(private readonly floorMs: number, private readonly intervalMs: number, nowMs: number) {
    assert(floorMs > intervalMs && intervalMs > 0, 'a heartbeat timeout floor spans more than one heartbeat');
    this.lastHeardMs = nowMs;
  }

  heard(nowMs: number): void {
    const gap = nowMs - this.lastHeardMs;
    this.lastHeardMs = Math.max(this.lastHeardMs, nowMs);
    if (gap <= 0) return;
    this.gaps[this.nextGap] = gap;
    this.nextGap = (this.nextGap + 1) % this.gaps.length;
    this.gapCount = Math.min(this.gapCount + 1, this.gaps.length);
  }

  /**
   * This node's own loop stood still for `ms` (its timers ran late): what
   * peers sent meanwhile is still unread, so their silence does not count.
   */
  excuse(ms: number): void {
    if (ms > 0) this.lastHeardMs += ms;
  }

  silentMs(nowMs: number): number {
    return Math.max(0, nowMs - this.lastHeardMs);
  }

  /** The silence after which the peer counts as dead now: the floor, or more when gaps have been long or irregular. */
  timeoutMs(): number {
    if (this.gapCount === 0) return this.floorMs;
    let sum = 0;
    let sumSquares = 0;
    for (let index = 0; index < this.gapCount; index++) {
      sum += this.gaps[index]!;
      sumSquares += this.gaps[index]! * this.gaps[index]!;
    }
    const mean = sum / this.gapCount;
    // Heartbeats come every intervalMs even when nothing else does; a deviation under a quarter of it is noise.
    const deviation = Math.max(Math.sqrt(Math.max(0, sumSquares / this.gapCount - mean * mean)), this.intervalMs / 4);
    return Math.max(this.floorMs, Math.ceil(Math.max(mean, this.intervalMs) + zThreshold * deviation));
  }

  dead(nowMs: number): boolean {
    return this.silentMs(nowMs) > this.timeoutMs();
  }

  /** For the failure message: "nothing heard for X ms (limit Y ms)". */
  describe(nowMs: number): string {
    return `nothing heard for ${this.silentMs(nowMs)} ms, limit ${this.timeoutMs()} ms`;
  }
}

/**
 * Notices when this node's own loop ran late: a timer due every `intervalMs`
 * that fires `late` ms after it was due means every peer's messages waited
 * unread that long.
 */
export class LoopLateness {
  private lastTickMs: number;

  constructor(private readonly intervalMs: number, nowMs: number) {
    this.lastTickMs = nowMs;
  }

  /** Call on each tick; returns how late this tick was beyond one interval (0 when on time). */
  tick(nowMs: number): number {
    const late = nowMs - this.lastTickMs - this.intervalMs;
    this.lastTickMs = nowMs;
    return late > this.intervalMs ? late : 0;
  }
}
