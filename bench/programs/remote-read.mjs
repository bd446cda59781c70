// A long remote read (issue 13 item 4; session 14, docs/EVALUATION.md "Session 14: the cost of one page
// fetch"). Run under `dsm run --nodes 2 --placement block --region-bytes 512m`: the main thread (node 0) fills
// `pages` pages of seeded ints (every byte non-zero almost always, so copies go unpacked), homed at node 0; a
// worker on node 1 then sums them in order, fetched in streamed read-ahead windows of up to 256 pages.
// Prints one JSON line: the read's ms and node 1's process CPU during it (process.cpuUsage: every thread).
// Usage: dsm run --nodes 2 --placement block --region-bytes 512m bench/programs/remote-read.mjs [pages 16384]
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

if (isMainThread) {
  const pages = Number(process.argv[2] ?? 16384);
  const ints = new Int32Array(new SharedArrayBuffer(pages * 4096));
  let state = 1;
  for (let k = 0; k < ints.length; k++) { state = (Math.imul(state, 1103515245) + 12345) | 0; ints[k] = state; }
  const worker = new Worker(new URL(import.meta.url), { workerData: { ints }, dsmNode: 1 });
  worker.on('message', (figures) => console.log(JSON.stringify({ program: 'remote-read', pages, ...figures })));
} else {
  const { ints } = workerData;
  const cpu = process.cpuUsage();
  const start = performance.now();
  let sum = 0;
  for (let k = 0; k < ints.length; k++) sum = (sum + ints[k]) | 0;
  const used = process.cpuUsage(cpu);
  parentPort.postMessage({ readMs: Math.round(performance.now() - start), node1CpuMs: Math.round((used.user + used.system) / 1000), sum });
}
