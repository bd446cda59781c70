// Lines about strangers turned away at the door (a bad hello, a wrong secret,
// no TLS certificate) are rate-limited: anyone who can reach a port can make
// them, and an unbounded stream of them would flood the node's stderr and
// bury the lines that matter. In each window of refusalWindowMs the first
// refusalLinesMax lines are printed; the rest are counted, and one summary
// line at the end of the window says how many were not shown.

import { refusalLinesMax, refusalVanishedHoldMs, refusalWindowMs } from '../constants.js';
import { exitCodeNodeDied } from '../errors.js';

export class RefusalLog {
  private windowStartMs = -Infinity;
  private shown = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Lines of peers that vanished mid-handshake, held for holdMs (see refusalVanishedHoldMs). */
  private readonly held: string[] = [];
  private heldTimer: NodeJS.Timeout | null = null;
  private dropping = false;
  /** While a mesh is being made (holdWhileStarting): vanished peers' lines wait for its outcome, not for holdMs. */
  private starting = 0;

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly now: () => number = Date.now,
    private readonly linesMax = refusalLinesMax,
    private readonly windowMs = refusalWindowMs,
    private readonly holdMs = refusalVanishedHoldMs,
  ) {}

  /**
   * `vanished`: the peer reset or closed its socket before its hello. That may be a node of this cluster dying
   * (its death is the run's line): held for holdMs, dropped if the process ends for a failure meanwhile.
   */
  report(line: string, vanished = false): void {
    if (vanished) {
      if (this.dropping) return;
      this.held.push(line);
      if (this.starting === 0) this.startHoldTimer();
      return;
    }
    this.reportNow(line);
  }

  /**
   * Holds vanished peers' lines until `started` runs: a node killed while the mesh is made is seen by its peers
   * as a reset mid-handshake first, and the start's failure (the process then ends as a node failure, dropping the
   * lines) can take longer than holdMs on a loaded machine (a chaos run in CI printed such a line beside the
   * node's death). Once the mesh is made, the lines held so far wait holdMs as any other.
   */
  holdWhileStarting(): () => void {
    this.starting += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.starting -= 1;
      if (this.starting === 0 && this.held.length > 0) this.startHoldTimer();
    };
  }

  private startHoldTimer(): void {
    if (this.heldTimer !== null) return;
    this.heldTimer = setTimeout(() => this.releaseHeld(), this.holdMs);
    this.heldTimer.unref();
  }

  /** The held lines, printed (as any refusal: rate-limited). */
  releaseHeld(): void {
    if (this.heldTimer !== null) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    for (const line of this.held.splice(0)) this.reportNow(line);
  }

  /** This process ends for a node's failure, whose own line says what happened: held lines and later vanished peers are not reported. */
  endingForFailure(): void {
    this.dropping = true;
    if (this.heldTimer !== null) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    this.held.length = 0;
  }

  private reportNow(line: string): void {
    const nowMs = this.now();
    if (nowMs - this.windowStartMs >= this.windowMs) {
      this.summarize();
      this.windowStartMs = nowMs;
      this.shown = 0;
    }
    if (this.shown < this.linesMax) {
      this.shown += 1;
      this.write(line);
      return;
    }
    this.suppressed += 1;
    if (this.timer === null) {
      this.timer = setTimeout(() => this.summarize(), Math.max(0, this.windowStartMs + this.windowMs - nowMs));
      this.timer.unref();
    }
  }

  /** Prints the summary of the lines not shown so far (the window's end; also called when a new window starts). */
  summarize(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.suppressed === 0) return;
    this.write(`dsm: DSM_ERR_HANDSHAKE: ${this.suppressed} more unauthenticated connection(s) were refused within ${Math.round(this.windowMs / 1000)} s (lines not shown; at most ${this.linesMax} per ${Math.round(this.windowMs / 1000)} s); the node keeps serving`);
    this.suppressed = 0;
  }
}

/** This process's log of refusals: every listener (control, mesh, TLS) reports here. */
export const refusals = new RefusalLog();
// What was held back is said before the process ends (a pipe's write is synchronous at exit); a node failure's
// end drops the lines of vanished peers (one of them was the node that died).
process.once('exit', (code) => {
  if (code === exitCodeNodeDied) refusals.endingForFailure();
  else refusals.releaseHeld();
  refusals.summarize();
});
