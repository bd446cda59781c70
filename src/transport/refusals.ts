// Lines about strangers turned away at the door (a bad hello, a wrong secret,
// no TLS certificate) are rate-limited: anyone who can reach a port can make
// them, and an unbounded stream of them would flood the node's stderr and
// bury the lines that matter. In each window of refusalWindowMs the first
// refusalLinesMax lines are printed; the rest are counted, and one summary
// line at the end of the window says how many were not shown.

import { refusalLinesMax, refusalWindowMs } from '../constants.js';

export class RefusalLog {
  private windowStartMs = -Infinity;
  private shown = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly now: () => number = Date.now,
    private readonly linesMax = refusalLinesMax,
    private readonly windowMs = refusalWindowMs,
  ) {}

  report(line: string): void {
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
// What was held back is said before the process ends (a pipe's write is synchronous at exit).
process.once('exit', () => refusals.summarize());
