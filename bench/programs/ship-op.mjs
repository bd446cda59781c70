// The shipped Atomics op's round trip (issue 12, session 11): a render-shaped
// loop without the image. Run under `dsm run --nodes 2`: one thread on each
// node takes tasks with Atomics.add on one counter word (homed on node 0, the
// line's directory) and then works `workUs` of CPU per task. Node 0's thread
// keeps the line busy, so node 1 gives it up idle and ships its adds to node 0
// (docs/PROTOCOL.md "Shipped ops"). Prints one JSON line: for each thread, its
// tasks and the time of each Atomics.add as the thread saw it (µs: p50, p90,
// and p50 per window of `windowOps` ops, to see cold code warm up).
// argv: tasks workUs
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { percentile } from './sync-lib.mjs';

const windowOps = 100;

if (isMainThread) {
  const tasks = Number(process.argv[2] ?? 2000);
  const workUs = Number(process.argv[3] ?? 330);
  // [0] next task, [1] threads ready (a common start); the rest of the line unused.
  const control = new Int32Array(new SharedArrayBuffer(64));
  const workers = [0, 1].map((node) => new Worker(new URL(import.meta.url), { workerData: { control, tasks, workUs, threads: 2 }, dsmNode: node }));
  const reports = await Promise.all(workers.map((worker) => new Promise((resolve, reject) => { worker.on('message', resolve); worker.on('error', reject); })));
  console.log(JSON.stringify({ tasks, workUs, threads: reports }));
} else {
  const { control, tasks, workUs, threads } = workerData;
  Atomics.add(control, 1, 1);
  while (Atomics.load(control, 1) < threads) { /* spin: a common start */ }
  const samples = [];
  let done = 0;
  for (;;) {
    const start = performance.now();
    const task = Atomics.add(control, 0, 1);
    samples.push((performance.now() - start) * 1000);
    if (task >= tasks) break;
    done += 1;
    const until = performance.now() + workUs / 1000;
    while (performance.now() < until) { /* work */ }
  }
  const windows = [];
  for (let k = 0; k + windowOps <= samples.length; k += windowOps) windows.push(percentile(samples.slice(k, k + windowOps), 0.5));
  parentPort.postMessage({ tasks: done, opUsP50: percentile(samples, 0.5), opUsP90: percentile(samples, 0.9), windowP50s: windows });
}
