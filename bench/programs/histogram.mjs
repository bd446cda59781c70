// Histogram (bench atomics; session 13): worker threads add 1 to
// pseudo-random buckets of one shared table with Atomics.add, the buckets
// spread over the 16 lines of a 1 KiB range of one page, so every thread
// cycles over every line: a contended counter many times over. Runs as is
// under plain node and under `dsm run --nodes N`. One JSON line: { seconds
// (from the workers' common start to the last add), cpuSeconds (as
// render.mjs counts it), adds, threads, checksum }.
// argv: threads addsPerThread
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const bucketCount = 64;
const bucketStride = 4; // Int32 elements: 16 bytes apart, 4 buckets a 64-byte line

if (isMainThread) {
  const threads = Number(process.argv[2] ?? 2);
  const adds = Number(process.argv[3] ?? 2_000_000);
  const table = new Int32Array(new SharedArrayBuffer(4096));
  // [0] threads ready (a common start), on a page of its own.
  const control = new Int32Array(new SharedArrayBuffer(4096));
  const workers = Array.from({ length: threads }, (_, index) => new Worker(new URL(import.meta.url), { workerData: { table, control, index, adds, threads } }));
  const reports = await Promise.all(workers.map((worker) => new Promise((resolve, reject) => { worker.on('message', resolve); worker.on('error', reject); })));
  const cpuByProcess = new Map();
  for (const { pid, cpuSeconds } of reports) cpuByProcess.set(pid, Math.max(cpuByProcess.get(pid) ?? 0, cpuSeconds));
  const cpuSeconds = [...cpuByProcess.values()].reduce((sum, value) => sum + value, 0);
  let total = 0;
  let checksum = 0;
  for (let bucket = 0; bucket < bucketCount; bucket += 1) {
    const count = Atomics.load(table, bucket * bucketStride);
    total += count;
    checksum = (checksum * 31 + count) >>> 0;
  }
  if (total !== threads * adds) throw new Error(`histogram: ${total} adds landed of ${threads * adds}`);
  console.log(JSON.stringify({ seconds: Math.max(...reports.map((report) => report.seconds)), cpuSeconds, adds: total, threads, checksum }));
} else {
  const { table, control, index, adds, threads } = workerData;
  Atomics.add(control, 0, 1);
  while (Atomics.load(control, 0) < threads) { /* spin: a common start */ }
  const begin = performance.now();
  const cpuBegin = process.cpuUsage();
  let x = 12_345 + index * 7_919;
  for (let i = 0; i < adds; i += 1) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    Atomics.add(table, ((x >>> 16) % bucketCount) * bucketStride, 1);
  }
  const seconds = (performance.now() - begin) / 1000;
  const cpu = process.cpuUsage(cpuBegin);
  parentPort.postMessage({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, pid: process.pid });
}
