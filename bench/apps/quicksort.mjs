// Parallel quicksort (TreadMarks' "QuickSort"): a shared Int32Array of N
// seeded random ints; a shared stack of subranges guarded by one Mutex, with
// a Condition on which idle workers sleep. A worker pops a range, partitions
// it (median-of-three pivot) while it is larger than `localMax`, pushing one
// large half for others and continuing with the other; ranges of at most
// `localMax` elements it sorts itself (TypedArray sort in place). The run ends
// when the stack is empty and no worker holds a range. The main thread then
// compares the array with a sequential sort of the same input.
// Usage: node quicksort.mjs [--threads 2] [--size 4194304 (elements)] [--seed 1]
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
  const { threads, size: n, seed } = parseArgs(process.argv.slice(2), { threads: 2, size: 1 << 22, seed: 1 });
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
    ({ n, capacity, data, stack, state, lock: lock.handle, idle: idle.handle })));
  // Not timed: a sequential sort of the same input.
  const expected = makeInput(n, seed).sort();
  let wrong = 0;
  for (let index = 0; index < n; index += 1) if (data[index] !== expected[index]) wrong += 1;
  report({
    app: 'quicksort', variant: 'quicksort', threads, size: n,
    problem: `${n} Int32 (seed ${seed}), shared stack of ranges, ranges of at most ${localMax} sorted locally`,
    seconds, verified: wrong === 0, wrong, ranges: messages.reduce((sum, count) => sum + (count ?? 0), 0),
    checksum: checksumInt32(data),
  });
} else {
  const { capacity, data, stack, state } = workerData;
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
        // Both halves are worth sharing: publish the larger, keep the smaller.
        lock.lock();
        const slot = state[stateTop];
        if (slot >= capacity) throw new Error('quicksort: range stack capacity exceeded');
        stack[2 * slot] = larger[0];
        stack[2 * slot + 1] = larger[1];
        state[stateTop] = slot + 1;
        idle.signal();
        lock.unlock();
        [lo, hi] = smaller;
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
