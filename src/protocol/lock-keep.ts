// The keep window of a contended lock token (issue 12 items 3/5): how long a
// node whose own threads still take a mutex keeps its token after another node
// asked for it, so that contention across nodes becomes batches of critical
// sections instead of one crossing per section (Mirage's time window Δ for
// pages, as the atomic lines keep theirs: src/protocol/lines.ts).
//
// The sync layer (sync.ts) asks this policy whether to keep a recalled token
// and for how long, and reports how each keep ended:
//
//   cut      the window ended with the token still in use here (held, or taken
//            again since the layer last looked): batches were cut short, so the
//            window doubles, up to lockKeepMsMax;
//   drained  the node's threads stopped taking it before the window ended
//            (no take for lockKeepIdleMs): the batch ended by itself, no change;
//   idle     kept and never taken again: keeping only made the other node wait.
//            The window halves (at least lockKeepMsMin) and the next
//            lockKeepProbeInterval - 1 recalled unlocks of this lock at this
//            node give the token up at once, as before the window; the one
//            after probes again.
//
// Fairness: a token is kept at most lockKeepMsMax after it arrived at the
// node, so a node that asked waits at most that long plus one critical
// section (and the hand-over) once the token is recalled.
//
// Pure: no clock, no I/O; times are handed in (ms).

import { assert } from '../errors.js';
import { lockKeepMsInitial, lockKeepMsMax, lockKeepMsMin, lockKeepProbeInterval, lockKeepStateCountMax } from '../constants.js';

export type KeepOutcome = 'cut' | 'drained' | 'idle';

interface LockKeepState {
  /** The window, ms since the token's arrival. */
  windowMs: number;
  /** Recalled unlocks that give the token up at once before the next probe (after an idle keep). */
  skip: number;
}

export class LockKeepPolicy {
  /** Per lock whose token this node kept or was asked to keep; cleared wholesale past lockKeepStateCountMax. */
  private readonly states = new Map<number, LockKeepState>();

  private state(lockId: number): LockKeepState {
    let state = this.states.get(lockId);
    if (state === undefined) {
      // A bounded cache of what keeping paid: losing it costs one window's re-learning.
      if (this.states.size >= lockKeepStateCountMax) this.states.clear();
      state = { windowMs: lockKeepMsInitial, skip: 0 };
      this.states.set(lockId, state);
    }
    return state;
  }

  /**
   * At an unlock (or a local lock) that finds the token recalled: the time
   * until which to keep it, counted from its arrival, or null to give it up
   * now (the window since arrival is over, or keeping was idle lately).
   */
  keepUntil(lockId: number, arrivedAtMs: number, nowMs: number): number | null {
    const state = this.state(lockId);
    if (state.skip > 0) { state.skip--; return null; }
    const untilMs = arrivedAtMs + state.windowMs;
    assert(state.windowMs <= lockKeepMsMax, 'a keep window within the fairness bound');
    return nowMs < untilMs ? untilMs : null;
  }

  /** How a keep ended (see the file's comment). */
  ended(lockId: number, outcome: KeepOutcome): void {
    const state = this.state(lockId);
    if (outcome === 'cut') state.windowMs = Math.min(lockKeepMsMax, state.windowMs * 2);
    else if (outcome === 'idle') {
      state.windowMs = Math.max(lockKeepMsMin, state.windowMs / 2);
      state.skip = lockKeepProbeInterval - 1;
    }
  }

  /** The current window of a lock (tests, stats). */
  windowMs(lockId: number): number { return this.states.get(lockId)?.windowMs ?? lockKeepMsInitial; }

  get size(): number { return this.states.size; }
}
