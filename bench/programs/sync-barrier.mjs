// Run under `dsm run --nodes N`: one thread on each node passes a dsm Barrier
// of N parties, managed by node 0, back to back. With nothing between two
// waits, each wait lasts one barrier period. Prints one JSON line.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { Barrier, nodeInfo } from 'dsm';
import { managedBy, percentile } from './sync-lib.mjs';

if (isMainThread) {
  const iterations = Number(process.argv[2] ?? 2000);
  const { nodeCount } = nodeInfo();
  const manager = 0;
  const barrier = managedBy(() => new Barrier(nodeCount), manager, nodeCount);
  const reports = await Promise.all(Array.from({ length: nodeCount }, (_, node) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { iterations, nodeCount, barrier: barrier.handle }, dsmNode: node });
    worker.on('message', resolve);
    worker.on('error', reject);
  })));
  const samples = reports.flatMap((report) => report.samples);
  const serialCount = reports.reduce((sum, report) => sum + report.serialCount, 0);
  if (serialCount !== iterations) throw new Error(`sync-barrier: ${serialCount} serial threads in ${iterations} rounds`);
  console.log(JSON.stringify({
    nodeCount, manager, iterations,
    barrierUsP50: percentile(samples, 0.5),
    barrierUsP99: percentile(samples, 0.99),
    barrierUsMean: Math.round(Math.max(...reports.map((report) => report.elapsedUs)) / iterations * 100) / 100,
  }));
} else {
  const { iterations, nodeCount } = workerData;
  const barrier = Barrier.from(workerData.barrier, nodeCount);
  for (let i = 0; i < Math.min(50, iterations); i += 1) barrier.wait();
  const samples = new Float64Array(iterations);
  let serialCount = 0;
  const begin = performance.now();
  for (let i = 0; i < iterations; i += 1) {
    const start = performance.now();
    if (barrier.wait()) serialCount += 1;
    samples[i] = (performance.now() - start) * 1000;
  }
  const elapsedUs = (performance.now() - begin) * 1000;
  parentPort.postMessage({ samples: Array.from(samples), serialCount, elapsedUs });
}
