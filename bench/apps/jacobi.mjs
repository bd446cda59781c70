// Jacobi relaxation (TreadMarks' "Jacobi"): an S×S Float64 grid with fixed
// boundary values; every iteration each interior point becomes the mean of
// its four neighbours in the previous grid. Two grids alternate (read one,
// write the other), so one Barrier per iteration is enough: a worker writes
// grid (t+1)%2 only after every worker has finished reading it in iteration
// t-1. Rows are split into contiguous bands, one per worker; neighbours'
// boundary rows are the only data that cross bands. The main thread fills the
// grid (seeded) and afterwards repeats the iterations sequentially; the
// arithmetic and its order are the same, so the check is bitwise.
// Usage: node jacobi.mjs [--threads 2] [--size 1024] [--iterations 200] [--seed 1]
import { isMainThread, workerData } from 'node:worker_threads';
import { Barrier } from 'dsm';
import { checksumFloat64, jacobiBand as band, jacobiCopyBoundary as copyBoundary, jacobiFill as fill, jacobiSweep as sweep, jacobiWrongCells, parseArgs, report, runWorkers } from './lib.mjs';

if (isMainThread) {
  const { threads, size: n, iterations, seed } = parseArgs(process.argv.slice(2), { threads: 2, size: 1024, iterations: 200, seed: 1 });
  if (n < 3) throw new Error('jacobi: --size must be at least 3');
  const grids = [new Float64Array(new SharedArrayBuffer(8 * n * n)), new Float64Array(new SharedArrayBuffer(8 * n * n))];
  fill(grids[0], n, seed);
  copyBoundary(grids[0], grids[1], n); // the interior of grid 1 is written before it is read
  const barrier = new Barrier(threads);
  const { seconds } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, (_, index) =>
    ({ index, threads, n, iterations, grids, barrier: barrier.handle })));
  const result = grids[iterations % 2];
  const wrong = jacobiWrongCells(result, n, iterations, seed);
  report({
    app: 'jacobi', variant: 'jacobi', threads, size: n, iterations,
    problem: `${n}x${n} Float64 grid, ${iterations} iterations, row bands, one barrier per iteration`,
    seconds, verified: wrong === 0, wrong, checksum: checksumFloat64(result),
  });
} else {
  const { index, threads, n, iterations, grids } = workerData;
  const barrier = Barrier.from(workerData.barrier, threads);
  const [rowStart, rowEnd] = band(n, threads, index);
  for (let iteration = 0; iteration < iterations; iteration += 1) {
    sweep(grids[iteration % 2], grids[(iteration + 1) % 2], n, rowStart, rowEnd);
    barrier.wait();
  }
}
