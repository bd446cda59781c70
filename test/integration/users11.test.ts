// Round 9 of user programs (test/fixtures/users11, session 36): Atomics.wait and Atomics.notify on the words of one
// line, written to catch a lost wake-up or a wrong count from notifies answered in the app thread (quiet words):
// waiters on every word of a line with notify storms beside them, BigInt64 and Int32 waiters sharing a line,
// a futex lock and a condition variable on one line, waitAsync beside wait, timeouts, a token ring over the words of
// a line and over lines, a barrier and a semaphore on one line, exact notify counts, sixteen futexes in one line,
// waits through views at byte offsets, countdown latches awaited with waitAsync, a waiter parked on a line that keeps
// moving, and notify counts as the specification coerces them. Plain worker_threads, no dsm API: under dsm on 2 and 3
// nodes they print what plain node prints and exit with its code (the round found no mismatch: docs/EVALUATION.md,
// "Session 36"). The longest (notify-storm, line-lanes) are left to the survey (scripts/user-times.mjs).
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  nodes: number;
  protocol: 'hlrc' | 'sc';
}

const runs: readonly Run[] = [
  { file: 'notify-exact.mjs', nodes: 3, protocol: 'hlrc', status: 0, what: 'waiters parked on an Int32 word or a BigInt64 element woken by notifies whose answers add up to exactly their number' },
  { file: 'notify-odd-counts.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'notify counts -1, NaN, 0, \'0\', null wake nobody; 1.9, \'2\', true, undefined at most that many' },
  { file: 'view-offsets.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'waits through views at byte offsets, notified through other views of the same bytes; neighbouring words wake nobody' },
  { file: 'futex-array.mjs', nodes: 3, protocol: 'hlrc', status: 0, what: 'sixteen futex mutexes in the sixteen words of one line guarding plain counters, sometimes two taken at once' },
  { file: 'async-latch.mjs', args: ['3', '40'], nodes: 3, protocol: 'hlrc', status: 0, what: 'countdown latches on one line awaited at once with waitAsync; a notify after a timed-out wait answers 0' },
  { file: 'migrate-wake.mjs', args: ['4', '30'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a waiter parked on a line the other workers keep moving with their adds, woken by a notify between adds' },
  { file: 'bigint-lanes.mjs', args: ['100'], nodes: 2, protocol: 'hlrc', status: 0, what: 'a token chain over BigInt64 elements and Int32 words of one line; a BigInt waiter woken through the Int32 view' },
  { file: 'waitasync-mix.mjs', args: ['2', '2', '60'], nodes: 3, protocol: 'hlrc', status: 0, what: 'Atomics.wait and waitAsync waiters on one generation word; a worker\'s notify with its own waitAsync pending answers 1' },
  { file: 'lock-cond-line.mjs', args: ['2', '3', '200', '4'], nodes: 2, protocol: 'hlrc', status: 0, what: 'a bounded queue whose futex mutex, condition sequence, count, head and tail share one line' },
  { file: 'lock-cond-line.mjs', args: ['2', '2', '60', '4'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
];

for (const run of runs) {
  const dsmArgs = ['--nodes', String(run.nodes), '--protocol', run.protocol];
  test(`${dsmArgs.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(dsmArgs, run, 'test/fixtures/users11');
  });
}
