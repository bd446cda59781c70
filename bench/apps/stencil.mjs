// A 2-D heat stencil (issue 17): two S×S Float64 grids (working set 16·S²
// bytes), every iteration each interior point becomes a weighted mean of
// itself and its four neighbours in the other grid; row bands, one per
// worker, and a barrier made of Atomics (a counter and a generation word with
// Atomics.wait/notify, no dsm API) per iteration. It exists to measure what
// the page machinery costs per written page as the working set grows: every
// interior page of one grid is rewritten every iteration. The main thread
// fills grid 0 (seeded) and afterwards repeats the iterations sequentially;
// the arithmetic and its order are the same, so the check is bitwise.
// Usage: node stencil.mjs [--threads 2] [--size 2048] [--iterations 30] [--seed 1]
import { isMainThread, workerData } from 'node:worker_threads';
import { checksumFloat64, parseArgs, random, report, runWorkers } from './lib.mjs';

/** One sweep over rows [rowStart, rowEnd) of the interior: dst from src. */
function sweep(src, dst, n, rowStart, rowEnd) {
  for (let i = rowStart; i < rowEnd; i += 1) {
    const row = i * n;
    for (let j = 1; j < n - 1; j += 1) {
      const at = row + j;
      dst[at] = src[at] + 0.2 * (src[at - n] + src[at + n] + src[at - 1] + src[at + 1] - 4 * src[at]);
    }
  }
}

/** Interior rows 1..n-2 split into `threads` contiguous bands. */
function band(n, threads, index) {
  const interior = n - 2;
  return [1 + Math.floor((interior * index) / threads), 1 + Math.floor((interior * (index + 1)) / threads)];
}

/** Grid 0 random, grid 1 only its fixed boundary (its interior is written before it is read). */
function fill(grids, n, seed) {
  const next = random(seed);
  const [first, second] = grids;
  for (let index = 0; index < n * n; index += 1) first[index] = next();
  second.set(first.subarray(0, n), 0);
  second.set(first.subarray((n - 1) * n), (n - 1) * n);
  for (let i = 1; i < n - 1; i += 1) {
    second[i * n] = first[i * n];
    second[i * n + n - 1] = first[i * n + n - 1];
  }
}

/** A barrier of Atomics only: state[0] counts arrivals, state[1] is the generation. */
function barrierWait(state, parties) {
  const generation = Atomics.load(state, 1);
  if (Atomics.add(state, 0, 1) === parties - 1) {
    Atomics.store(state, 0, 0);
    Atomics.add(state, 1, 1);
    Atomics.notify(state, 1);
    return;
  }
  while (Atomics.load(state, 1) === generation) Atomics.wait(state, 1, generation);
}

if (isMainThread) {
  const { threads, size: n, iterations, seed } = parseArgs(process.argv.slice(2), { threads: 2, size: 2048, iterations: 30, seed: 1 });
  if (n < 3) throw new Error('stencil: --size must be at least 3');
  const grids = [new Float64Array(new SharedArrayBuffer(8 * n * n)), new Float64Array(new SharedArrayBuffer(8 * n * n))];
  fill(grids, n, seed);
  const state = new Int32Array(new SharedArrayBuffer(8));
  const { seconds } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, (_, index) =>
    ({ index, threads, n, iterations, grids, state })));
  // Not timed: the same iterations, sequentially.
  const local = [new Float64Array(n * n), new Float64Array(n * n)];
  fill(local, n, seed);
  for (let iteration = 0; iteration < iterations; iteration += 1) sweep(local[iteration % 2], local[(iteration + 1) % 2], n, 1, n - 1);
  const result = grids[iterations % 2];
  const expected = local[iterations % 2];
  let wrong = 0;
  for (let index = 0; index < n * n; index += 1) if (!Object.is(result[index], expected[index])) wrong += 1;
  report({
    app: 'stencil', variant: 'stencil', threads, size: n, iterations,
    problem: `two ${n}x${n} Float64 grids (${16 * n * n} bytes), ${iterations} iterations, row bands, an Atomics barrier per iteration`,
    workingSetBytes: 16 * n * n,
    seconds, verified: wrong === 0, wrong, checksum: checksumFloat64(result),
  });
} else {
  const { index, threads, n, iterations, grids, state } = workerData;
  const [rowStart, rowEnd] = band(n, threads, index);
  for (let iteration = 0; iteration < iterations; iteration += 1) {
    sweep(grids[iteration % 2], grids[(iteration + 1) % 2], n, rowStart, rowEnd);
    barrierWait(state, threads);
  }
}
