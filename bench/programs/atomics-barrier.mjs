// A barrier written with Atomics (session 15): threads sweep their band of a
// shared Float64Array (a 1-D stencil reading both neighbours' edge cells) and
// meet at a generation barrier as users write it: read the generation, add 1
// to the arrival count; the last resets the count, bumps the generation and
// notifies; the others Atomics.wait while the generation is unchanged.
// Runs as is under plain node and under `dsm run --nodes N`. One JSON line:
// { seconds (from the workers' common start to the last round), rounds,
// threads, checksum }.
// argv: threads rounds cellsPerThread
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const COUNT = 0;
const GENERATION = 1;

function barrierWait(control, threads) {
  const generation = Atomics.load(control, GENERATION);
  if (Atomics.add(control, COUNT, 1) === threads - 1) {
    Atomics.store(control, COUNT, 0);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    return;
  }
  while (Atomics.load(control, GENERATION) === generation) Atomics.wait(control, GENERATION, generation);
}

if (isMainThread) {
  const threads = Number(process.argv[2] ?? 2);
  const rounds = Number(process.argv[3] ?? 2000);
  const cells = Number(process.argv[4] ?? 1024);
  const grids = [0, 1].map(() => new Float64Array(new SharedArrayBuffer(threads * cells * 8)));
  for (let i = 0; i < grids[0].length; i += 1) grids[0][i] = (i * 7919) % 1000;
  // [0] arrivals, [1] generation, [2] threads ready: a page of its own.
  const control = new Int32Array(new SharedArrayBuffer(4096));
  const workers = Array.from({ length: threads }, (_, index) => new Worker(new URL(import.meta.url), { workerData: { grids, control, index, threads, rounds, cells } }));
  const reports = await Promise.all(workers.map((worker) => new Promise((resolve, reject) => { worker.on('message', resolve); worker.on('error', reject); })));
  const result = grids[rounds % 2];
  let checksum = 0;
  for (let i = 0; i < result.length; i += 1) checksum = (checksum * 31 + Math.round(result[i] * 1000)) >>> 0;
  console.log(JSON.stringify({ seconds: Math.max(...reports.map((report) => report.seconds)), rounds, threads, checksum }));
} else {
  const { grids, control, index, threads, rounds, cells } = workerData;
  Atomics.add(control, 2, 1);
  while (Atomics.load(control, 2) < threads) { /* spin: a common start */ }
  const begin = performance.now();
  const first = index * cells;
  const last = first + cells - 1;
  const end = grids[0].length - 1;
  for (let round = 0; round < rounds; round += 1) {
    const from = grids[round % 2];
    const to = grids[(round + 1) % 2];
    for (let i = first; i <= last; i += 1) {
      const left = i === 0 ? from[i] : from[i - 1];
      const right = i === end ? from[i] : from[i + 1];
      to[i] = (left + from[i] + right) / 3;
    }
    barrierWait(control, threads);
  }
  parentPort.postMessage({ seconds: (performance.now() - begin) / 1000 });
}
