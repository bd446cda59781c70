// A bulk transfer (session 24): the main thread (node 0) fills two Float64Arrays of BULK_MB MiB each (default 8),
// so node 0 is their home; a worker on node 1 reads the first (every page a fetch or a read-ahead page) and then
// writes the second. Prints one JSON line: MiB, ms and MB/s of the read and of the write, and whether the sum
// read is right. Usage: dsm run --nodes 2 --region-bytes 256m bench/programs/bulk-read.mjs (BULK_MB=64 with
// --region-bytes 512m for a longer transfer). Raw TCP between two node processes streams ~1.2 GB/s here.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const bytes = Number(process.env.BULK_MB ?? 8) * 1024 * 1024;
if (isMainThread) {
  const a = new Float64Array(new SharedArrayBuffer(bytes));
  const b = new Float64Array(new SharedArrayBuffer(bytes));
  for (let i = 0; i < a.length; i += 1) { a[i] = i; b[i] = -i; }
  const worker = new Worker(new URL(import.meta.url), { workerData: { a, b }, dsmNode: 1 });
  worker.on('message', (figures) => console.log(JSON.stringify(figures)));
} else {
  const { a, b } = workerData;
  let start = performance.now();
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += a[i];
  const readMs = performance.now() - start;
  start = performance.now();
  for (let i = 0; i < b.length; i += 1) b[i] = i * 2;
  const writeMs = performance.now() - start;
  const mib = bytes / 1048576;
  parentPort.postMessage({
    MiB: mib, readMs: Math.round(readMs * 100) / 100, writeMs: Math.round(writeMs * 100) / 100,
    readMBps: Math.round(mib / readMs * 1000), writeMBps: Math.round(mib / writeMs * 1000), ok: sum === (a.length - 1) * a.length / 2,
  });
}
