// DSM64's matrix multiplication (thesis §6.2, mmult-lock-row / mmult-lock-col):
// two N×N Int32 matrices (default 400×400) in SharedArrayBuffers, filled by
// the main thread with seeded pseudo-random small ints; T workers; worker t
// computes output rows (or, for `col`, output columns) t, t+T, t+2T, … holding
// ONE shared Mutex around each of them, exactly as the thesis' pthread code
// holds `lock` around each row. No barriers. The main thread then checks C
// against a sequential multiplication.
//   row: c[i][j] = Σk a[i][k] * b[k][j]
//   col: c[j][i] = Σk a[k][i] * b[j][k]   (column-major, as in the thesis)
// Usage: node matmul.mjs [--threads 2] [--size 400] [--variant row|col] [--seed 1]
import { isMainThread, workerData } from 'node:worker_threads';
import { Mutex } from 'dsm';
import { checksumInt32, parseArgs, random, report, runWorkers } from './lib.mjs';

const valueMax = 10; // entries in [0, 10): sums stay far below 2^31 for any size we run

/** One output line (row i for `row`, column i for `col`), the same code the check uses. */
function computeLine(a, b, c, n, i, variant) {
  if (variant === 'row') {
    const rowA = i * n;
    for (let j = 0; j < n; j += 1) {
      let sum = 0;
      for (let k = 0; k < n; k += 1) sum += a[rowA + k] * b[k * n + j];
      c[rowA + j] = sum;
    }
  } else {
    for (let j = 0; j < n; j += 1) {
      let sum = 0;
      const rowB = j * n;
      for (let k = 0; k < n; k += 1) sum += a[k * n + i] * b[rowB + k];
      c[rowB + i] = sum;
    }
  }
}

if (isMainThread) {
  const options = parseArgs(process.argv.slice(2), { threads: 2, size: 400, variant: 'row', seed: 1 });
  const { threads, size: n, variant, seed } = options;
  if (variant !== 'row' && variant !== 'col') throw new Error(`matmul: --variant is row or col; got '${variant}'`);
  const a = new Int32Array(new SharedArrayBuffer(4 * n * n));
  const b = new Int32Array(new SharedArrayBuffer(4 * n * n));
  const c = new Int32Array(new SharedArrayBuffer(4 * n * n));
  const next = random(seed);
  for (let index = 0; index < n * n; index += 1) a[index] = Math.floor(next() * valueMax);
  for (let index = 0; index < n * n; index += 1) b[index] = Math.floor(next() * valueMax);
  const lock = new Mutex();
  const { seconds } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, (_, index) =>
    ({ index, threads, n, variant, a, b, c, lock: lock.handle })));
  // Not timed: the sequential check.
  const expected = new Int32Array(n * n);
  for (let i = 0; i < n; i += 1) computeLine(a, b, expected, n, i, variant);
  let wrong = 0;
  for (let index = 0; index < n * n; index += 1) if (c[index] !== expected[index]) wrong += 1;
  report({
    app: 'matmul', variant, threads, size: n, problem: `two ${n}x${n} Int32 matrices, ${variant}-major, one mutex around each output ${variant}`,
    seconds, verified: wrong === 0, wrong, checksum: checksumInt32(c),
  });
} else {
  const { index, threads, n, variant, a, b, c } = workerData;
  const lock = Mutex.from(workerData.lock);
  for (let i = index; i < n; i += threads) {
    lock.lock();
    computeLine(a, b, c, n, i, variant);
    lock.unlock();
  }
}
