// Sums 1..N with four workers over one shared Int32Array.
// Runs the same under `node examples/sum.js` and `npx dsm run examples/sum.js`.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const workerCount = 4;
const n = Number(process.argv[2] ?? 1_000_000);

if (isMainThread) {
  // One slot per worker for its partial sum (as float64: sums exceed 2^31),
  // plus one Int32 counter of finished workers.
  const partials = new Float64Array(new SharedArrayBuffer(8 * workerCount));
  const done = new Int32Array(new SharedArrayBuffer(4));
  const workers = [];
  for (let index = 0; index < workerCount; index += 1) {
    workers.push(new Worker(new URL(import.meta.url), { workerData: { index, n, partials, done } }));
  }
  await Promise.all(workers.map((worker) => new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', resolve);
  })));
  // Every worker released its writes by exiting; the 'exit' events acquired them.
  const total = partials.reduce((sum, value) => sum + value, 0);
  const expected = (n * (n + 1)) / 2;
  console.log(`workers=${workerCount} n=${n} finished=${Atomics.load(done, 0)}`);
  partials.forEach((value, index) => console.log(`worker ${index}: ${value}`));
  console.log(`total=${total} expected=${expected} ${total === expected ? 'OK' : 'MISMATCH'}`);
  process.exitCode = total === expected ? 0 : 1;
} else {
  const { index, n: count, partials, done } = workerData;
  let sum = 0;
  for (let value = index + 1; value <= count; value += workerCount) sum += value;
  partials[index] = sum;
  // Under dsm, DSM_NODE_ID says which node this worker runs on (plain node leaves it unset).
  if (process.env.DSM_NODE_ID !== undefined) {
    console.error(`worker ${index} ran on node ${process.env.DSM_NODE_ID} of ${process.env.DSM_NODE_COUNT}`);
  }
  Atomics.add(done, 0, 1);
  parentPort.postMessage('done');
}
