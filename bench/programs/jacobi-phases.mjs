// Jacobi (bench/apps/jacobi.mjs, the same kernel, bands and check) with each
// worker timing its phases: per iteration the sweep and the `barrier.wait()`,
// summed over the start (iteration 0, when a node fetches its bands; 1-3, when
// they move home) and the steady iterations (4 on), with the steady medians.
// On Linux it also reads, from /proc/self/task/*/schedstat, the CPU time of
// every thread of the worker's process: under `dsm run` the process's main
// thread is the node's manager, so `managerUsPerRound` is what one barrier
// round costs the manager. CPU time moves much less with the machine's load
// than wall time (session 14: 650-960 µs a round at load 5-14, where the
// waits doubled), so A/B pairs of it read on a shared machine.
// Usage: dsm run --nodes 2 bench/programs/jacobi-phases.mjs [--threads 2] [--size 1024] [--iterations 200] [--seed 1]
//        node bench/programs/jacobi-phases.mjs ...   (plain node: the main thread idles, threads share one process)
// Prints one JSON line (`DSM_APP_RESULT`, as the apps do).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Barrier } from 'dsm';
import { checksumFloat64, jacobiBand, jacobiCopyBoundary, jacobiFill, jacobiSweep, jacobiWrongCells, parseArgs, report, runWorkers } from '../apps/lib.mjs';

/** Iterations 1..startIterations-1 are the start's second part (bands moving home); from here on, steady. */
const startIterations = 4;

/** CPU nanoseconds of each thread of this process by thread id, or null where /proc does not say. */
function threadCpu() {
  try {
    const cpu = {};
    for (const tid of readdirSync('/proc/self/task')) {
      try { cpu[tid] = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* the thread ended */ }
    }
    return cpu;
  } catch {
    return null;
  }
}

function median(values) {
  const sorted = Array.from(values).sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)];
}

const sum = (values) => values.reduce((total, value) => total + value, 0);
const ms = (value) => Math.round(value * 100) / 100;

if (isMainThread) {
  const { threads, size: n, iterations, seed } = parseArgs(process.argv.slice(2), { threads: 2, size: 1024, iterations: 200, seed: 1 });
  if (n < 3) throw new Error('jacobi-phases: --size must be at least 3');
  if (iterations <= startIterations) throw new Error(`jacobi-phases: --iterations must be more than ${startIterations}`);
  const grids = [new Float64Array(new SharedArrayBuffer(8 * n * n)), new Float64Array(new SharedArrayBuffer(8 * n * n))];
  jacobiFill(grids[0], n, seed);
  jacobiCopyBoundary(grids[0], grids[1], n);
  const barrier = new Barrier(threads);
  const { seconds, messages } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, (_, index) =>
    ({ index, threads, n, iterations, grids, barrier: barrier.handle })));
  const result = grids[iterations % 2];
  const wrong = jacobiWrongCells(result, n, iterations, seed);
  report({
    app: 'jacobi-phases', threads, size: n, iterations, seconds, verified: wrong === 0, wrong, checksum: checksumFloat64(result),
    workers: messages,
  });
} else {
  const { index, threads, n, iterations, grids } = workerData;
  const barrier = Barrier.from(workerData.barrier, threads);
  const [rowStart, rowEnd] = jacobiBand(n, threads, index);
  const sweeps = new Float64Array(iterations);
  const waits = new Float64Array(iterations);
  const cpuAtStart = threadCpu();
  let cpuAtSteady = null;
  for (let iteration = 0; iteration < iterations; iteration += 1) {
    if (iteration === startIterations) cpuAtSteady = threadCpu();
    const t0 = performance.now();
    jacobiSweep(grids[iteration % 2], grids[(iteration + 1) % 2], n, rowStart, rowEnd);
    const t1 = performance.now();
    barrier.wait();
    sweeps[iteration] = t1 - t0;
    waits[iteration] = performance.now() - t1;
  }
  const cpuAtEnd = threadCpu();
  const steadyRounds = iterations - startIterations;
  let cpu = null;
  if (cpuAtStart !== null && cpuAtSteady !== null && cpuAtEnd !== null) {
    // The process's main thread: the node's manager under dsm (its program's main thread under plain node).
    const main = String(process.pid);
    const usBetween = (from, to, tid) => ((to[tid] ?? 0) - (from[tid] ?? 0)) / 1000;
    let otherStart = 0;
    let otherSteady = 0;
    for (const tid of Object.keys(cpuAtEnd)) {
      if (tid === main) continue;
      otherStart += usBetween(cpuAtStart, cpuAtSteady, tid);
      otherSteady += usBetween(cpuAtSteady, cpuAtEnd, tid);
    }
    cpu = {
      managerStartUs: Math.round(usBetween(cpuAtStart, cpuAtSteady, main)),
      managerUsPerRound: Math.round(usBetween(cpuAtSteady, cpuAtEnd, main) / steadyRounds),
      // The worker itself (its sweeps), V8's compiler and GC helpers, and any other thread of the process.
      otherThreadsStartUs: Math.round(otherStart),
      otherThreadsUsPerRound: Math.round(otherSteady / steadyRounds),
    };
  }
  const steadySweeps = sweeps.subarray(startIterations);
  const steadyWaits = waits.subarray(startIterations);
  parentPort.postMessage({
    index, pid: process.pid,
    iteration0Ms: { sweep: ms(sweeps[0]), wait: ms(waits[0]) },
    iterations1to3Ms: { sweep: ms(sum(Array.from(sweeps.subarray(1, startIterations)))), wait: ms(sum(Array.from(waits.subarray(1, startIterations)))) },
    steadyMs: { sweep: ms(sum(Array.from(steadySweeps))), wait: ms(sum(Array.from(steadyWaits))) },
    steadyMedianMs: { sweep: ms(median(steadySweeps)), wait: ms(median(steadyWaits)) },
    cpu,
  });
}
