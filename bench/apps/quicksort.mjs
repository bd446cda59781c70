// Parallel quicksort (TreadMarks' "QuickSort"): a shared Int32Array of N
// seeded random ints; a shared stack of subranges guarded by one Mutex, with
// a Condition on which idle workers sleep. A worker pops a range, partitions
// it (median-of-three pivot) while it is larger than `localMax`, pushing one
// half for others and continuing with the other; ranges of at most
// `localMax` elements it sorts itself (TypedArray sort in place). The run ends
// when the stack is empty and no worker holds a range. The main thread then
// compares the array with a sequential sort of the same input.
//
// Variants: which half a worker publishes when both are worth sharing.
// `push-smaller` (the default since session 14): it publishes the smaller
// half and goes on with the larger, so the worker that took a range does most
// of it and the others take the smaller pieces it splits off. `push-larger`
// (the app before session 14): it publishes the larger half. Under dsm the
// array is homed where the main thread filled it, and a worker on another
// node partitions at 5-25x the cost an element (it fetches the pages and
// diffs them back): with `push-larger` that worker's first pop was the
// larger half of the first partition (3 M of 4 M elements), on the critical
// path while the other node waited for work (docs/EVALUATION.md, "Session 14:
// QuickSort on 2 nodes"). The sort is the same either way.
// Usage: node quicksort.mjs [--threads 2] [--size 4194304 (elements)] [--seed 1] [--variant push-smaller|push-larger]
import { isMainThread, workerData } from 'node:worker_threads';
import { Condition, Mutex } from 'dsm';
import { checksumInt32, parseArgs, partition, random, report, runWorkers, takeJob } from './lib.mjs';

const localMax = 16384; // ranges this small are sorted by one worker without sharing
const stateTop = 0; // ranges on the stack
const stateBusy = 1; // workers holding a range

function makeInput(n, seed) {
  const next = random(seed);
  const values = new Int32Array(n);
  for (let index = 0; index < n; index += 1) values[index] = Math.floor(next() * 4294967296) | 0;
  return values;
}

if (isMainThread) {
  const { threads, size: n, seed, variant } = parseArgs(process.argv.slice(2), { threads: 2, size: 1 << 22, seed: 1, variant: 'push-smaller' });
  if (variant !== 'push-smaller' && variant !== 'push-larger') throw new Error(`quicksort: --variant is push-smaller or push-larger; got '${variant}'`);
  const data = new Int32Array(new SharedArrayBuffer(4 * n));
  data.set(makeInput(n, seed));
  // Ranges on the stack are disjoint and larger than localMax.
  const capacity = Math.ceil(n / localMax) + 1;
  const stack = new Int32Array(new SharedArrayBuffer(8 * capacity));
  const state = new Int32Array(new SharedArrayBuffer(8));
  stack[0] = 0; stack[1] = n;
  state[stateTop] = 1;
  const lock = new Mutex();
  const idle = new Condition();
  const { seconds, messages } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, () =>
    ({ n, capacity, data, stack, state, lock: lock.handle, idle: idle.handle, pushLarger: variant === 'push-larger' })));
  // Not timed: a sequential sort of the same input.
  const expected = makeInput(n, seed).sort();
  let wrong = 0;
  for (let index = 0; index < n; index += 1) if (data[index] !== expected[index]) wrong += 1;
  report({
    app: 'quicksort', variant, threads, size: n,
    problem: `${n} Int32 (seed ${seed}), shared stack of ranges (${variant}), ranges of at most ${localMax} sorted locally`,
    seconds, verified: wrong === 0, wrong, ranges: messages.reduce((sum, count) => sum + (count ?? 0), 0),
    checksum: checksumInt32(data),
  });
} else {
  const { capacity, data, stack, state, pushLarger } = workerData;
  const lock = Mutex.from(workerData.lock);
  const idle = Condition.from(workerData.idle);
  let ranges = 0;
  lock.lock();
  for (;;) {
    const top = takeJob(state, lock, idle);
    if (top === -1) break; // empty and nobody can add more: done
    let lo = stack[2 * top];
    let hi = stack[2 * top + 1];
    lock.unlock();
    ranges += 1;
    while (hi - lo > localMax) {
      const [leftEnd, rightStart] = partition(data, lo, hi);
      const halves = [[lo, leftEnd], [rightStart, hi]].sort((p, q) => (q[1] - q[0]) - (p[1] - p[0]));
      const [larger, smaller] = halves;
      if (smaller[1] - smaller[0] > localMax) {
        // Both halves are worth sharing: publish one (the variant says which), keep the other.
        const [published, kept] = pushLarger ? [larger, smaller] : [smaller, larger];
        lock.lock();
        const slot = state[stateTop];
        if (slot >= capacity) throw new Error('quicksort: range stack capacity exceeded');
        stack[2 * slot] = published[0];
        stack[2 * slot + 1] = published[1];
        state[stateTop] = slot + 1;
        idle.signal();
        lock.unlock();
        [lo, hi] = kept;
      } else {
        data.subarray(smaller[0], smaller[1]).sort();
        [lo, hi] = larger;
      }
    }
    data.subarray(lo, hi).sort();
    lock.lock();
    state[stateBusy] -= 1;
    if (state[stateBusy] === 0) idle.broadcast(); // possibly the end
  }
  idle.broadcast();
  lock.unlock();
  (await import('node:worker_threads')).parentPort.postMessage(ranges);
}
