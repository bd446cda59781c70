// Shared helpers of the evaluation applications (bench/apps/*.mjs): argv
// parsing, a seeded generator, joining workers, QuickSort's partition (also
// bench/programs/remote-partition.mjs), Jacobi's sweep, bands and grids (also
// bench/programs/jacobi-phases.mjs), and the result line that
// bench/apps/run.ts reads. Plain ESM with no dsm import, so every app runs
// the same under `node app.mjs` and `dsm run app.mjs`.
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

const optionNames = ['threads', 'size', 'variant', 'iterations', 'seed'];

/** Reads `--threads T --size S --variant V --iterations I --seed X` (any order) over the app's defaults. */
export function parseArgs(argv, defaults) {
  const options = { ...defaults };
  for (let index = 0; index < argv.length; index += 2) {
    const flag = argv[index];
    const value = argv[index + 1];
    const name = flag?.startsWith('--') ? flag.slice(2) : undefined;
    if (name === undefined || !optionNames.includes(name) || value === undefined) {
      throw new Error(`usage: app.mjs [--threads T] [--size S] [--variant V] [--iterations I] [--seed X]; got '${flag}'`);
    }
    if (name === 'variant') {
      options.variant = value;
    } else {
      const number = Number(value);
      if (!Number.isInteger(number) || number < (name === 'seed' ? 0 : 1)) throw new Error(`--${name} needs a positive integer; got '${value}'`);
      options[name] = number;
    }
  }
  return options;
}

/** mulberry32: a small seeded generator, so the main thread and the check see the same input. */
export function random(seed) {
  let state = (seed >>> 0) || 0x9e3779b9;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Starts one worker per workerData entry on `url` and waits for all of them
 * to exit; returns the wall seconds from before the first is created to
 * after the last has joined (worker exit orders its writes before our reads),
 * and the last message each worker posted.
 */
export async function runWorkers(url, workerDataList) {
  const start = performance.now();
  const messages = new Array(workerDataList.length).fill(undefined);
  const workers = workerDataList.map((workerData) => new Worker(url, { workerData }));
  await Promise.all(workers.map((worker, index) => new Promise((resolve, reject) => {
    worker.on('message', (message) => { messages[index] = message; });
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${index} exited with code ${code}`))));
  })));
  return { seconds: (performance.now() - start) / 1000, messages };
}

/** FNV-1a over 32-bit words: a checksum that does not depend on who computed what. */
export function checksumInt32(values) {
  let hash = 0x811c9dc5;
  for (let index = 0; index < values.length; index += 1) {
    hash = Math.imul(hash ^ (values[index] | 0), 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** The same over the bits of Float64 values (bitwise, so -0 and NaN payloads count). */
export function checksumFloat64(values) {
  const copy = Float64Array.from(values);
  return checksumInt32(new Int32Array(copy.buffer));
}

/** Prints the result as the last stdout line and sets the exit code. */
export function report(result) {
  process.stdout.write(`DSM_APP_RESULT ${JSON.stringify(result)}\n`);
  process.exitCode = result.verified ? 0 : 1;
}

/**
 * The shared work stack of quicksort and tsp: `state[0]` counts the jobs on
 * the stack, `state[1]` the workers holding one. With `lock` held, waits on
 * `idle` until there is a job or no busy worker can push one, then takes the
 * top job and counts the caller busy. Returns the job's slot, or -1 when all
 * work is done (the stack is empty and nobody is busy).
 */
export function takeJob(state, lock, idle) {
  while (state[0] === 0 && state[1] > 0) idle.wait(lock);
  if (state[0] === 0) return -1;
  const top = state[0] - 1;
  state[0] = top;
  state[1] += 1;
  return top;
}

/** QuickSort's Hoare partition of [lo, hi) around a median-of-three; returns [leftEnd, rightStart]. */
export function partition(a, lo, hi) {
  const x = a[lo];
  const y = a[(lo + hi) >>> 1];
  const z = a[hi - 1];
  const pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
  let i = lo;
  let j = hi - 1;
  while (i <= j) {
    while (a[i] < pivot) i += 1;
    while (a[j] > pivot) j -= 1;
    if (i <= j) {
      const t = a[i]; a[i] = a[j]; a[j] = t;
      i += 1;
      j -= 1;
    }
  }
  return [j + 1, i];
}

// ---- Jacobi (bench/apps/jacobi.mjs; bench/programs/jacobi-phases.mjs times its phases)

/** One sweep over rows [rowStart, rowEnd) of the interior: dst from src. */
export function jacobiSweep(src, dst, n, rowStart, rowEnd) {
  for (let i = rowStart; i < rowEnd; i += 1) {
    const row = i * n;
    for (let j = 1; j < n - 1; j += 1) {
      dst[row + j] = 0.25 * (src[row - n + j] + src[row + n + j] + src[row + j - 1] + src[row + j + 1]);
    }
  }
}

/** Interior rows 1..n-2 split into `threads` contiguous bands. */
export function jacobiBand(n, threads, index) {
  const interior = n - 2;
  return [1 + Math.floor((interior * index) / threads), 1 + Math.floor((interior * (index + 1)) / threads)];
}

export function jacobiFill(grid, n, seed) {
  const next = random(seed);
  for (let index = 0; index < n * n; index += 1) grid[index] = next();
}

/** The fixed boundary rows and columns, from one grid to the other. */
export function jacobiCopyBoundary(from, to, n) {
  to.set(from.subarray(0, n), 0);
  to.set(from.subarray((n - 1) * n), (n - 1) * n);
  for (let i = 1; i < n - 1; i += 1) {
    to[i * n] = from[i * n];
    to[i * n + n - 1] = from[i * n + n - 1];
  }
}

/** Not timed: the same Jacobi iterations, sequentially, from the same seed; how many cells of `result` differ (bitwise). */
export function jacobiWrongCells(result, n, iterations, seed) {
  const local = [new Float64Array(n * n), new Float64Array(n * n)];
  jacobiFill(local[0], n, seed);
  jacobiCopyBoundary(local[0], local[1], n);
  for (let iteration = 0; iteration < iterations; iteration += 1) jacobiSweep(local[iteration % 2], local[(iteration + 1) % 2], n, 1, n - 1);
  const expected = local[iterations % 2];
  let wrong = 0;
  for (let index = 0; index < n * n; index += 1) if (!Object.is(result[index], expected[index])) wrong += 1;
  return wrong;
}
