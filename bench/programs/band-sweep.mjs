// Run under `dsm run --nodes 2 --placement block`: the main thread (node 0)
// fills a band of pages it allocated, so node 0 is their home; a worker on
// node 1 then sums every Float64 of it in order, as Jacobi's first iteration
// reads its band (issue 13: read-ahead windows, page replies of up to 64
// pages). Prints one JSON line: the sweep's milliseconds and the worker's
// CPU time in it. The home's CPU is the node process's, outside (dsm run --stats, /proc).
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const pageBytes = 4096;
if (isMainThread) {
  const megabytes = Number(process.argv[2] ?? 8);
  const rounds = Number(process.argv[3] ?? 1);
  const length = (megabytes * 1024 * 1024) / 8;
  const band = new Float64Array(new SharedArrayBuffer(length * 8));
  for (let index = 0; index < length; index += 1) band[index] = index % 1000;
  const worker = new Worker(new URL(import.meta.url), { workerData: { band, rounds }, dsmNode: 1 });
  worker.on('message', (figures) => console.log(JSON.stringify({ megabytes, pages: (length * 8) / pageBytes, ...figures })));
} else {
  const { band, rounds } = workerData;
  const sweeps = [];
  let sum = 0;
  for (let round = 0; round < rounds; round += 1) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (let index = 0; index < band.length; index += 1) sum += band[index];
    const used = process.cpuUsage(cpu);
    sweeps.push({ ms: Math.round((performance.now() - start) * 100) / 100, threadCpuMs: Math.round((used.user + used.system) / 10) / 100 });
  }
  let expected = 0;
  for (let index = 0; index < band.length; index += 1) expected += index % 1000;
  if (sum !== expected * rounds) throw new Error(`sum ${sum}, expected ${expected * rounds}`);
  parentPort.postMessage({ sweepMs: sweeps[0].ms, sweeps });
}
