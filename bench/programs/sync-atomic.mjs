// Run under `dsm run --nodes 2`: a thread on node 1 performs Atomics.add on a
// word whose page is homed on node 0 (remote: one request to the home and its
// answer), then on a word homed on node 1 (local to its node, for
// comparison). Pages are homed round-robin: page index modulo node count.
// Prints one JSON line.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { nodeInfo, rangeOf } from 'dsm';
import { percentile } from './sync-lib.mjs';

const pageBytes = 4096;

if (isMainThread) {
  const iterations = Number(process.argv[2] ?? 2000);
  const { nodeCount } = nodeInfo();
  const threadNode = 1;
  const remoteHome = 0;
  const words = new Int32Array(new SharedArrayBuffer(2 * nodeCount * pageBytes));
  const range = rangeOf(words.buffer);
  if (range === null) throw new Error('sync-atomic: run this program with dsm run');
  const indexHomedOn = (node) => {
    for (let index = 0; index < words.length; index += pageBytes / 4) {
      if (Math.floor((range.offset + index * 4) / pageBytes) % nodeCount === node) return index;
    }
    throw new Error(`sync-atomic: no page homed on node ${node}`);
  };
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { iterations, words, remoteIndex: indexHomedOn(remoteHome), localIndex: indexHomedOn(threadNode) },
    dsmNode: threadNode,
  });
  const report = await new Promise((resolve, reject) => {
    worker.on('message', resolve);
    worker.on('error', reject);
  });
  console.log(JSON.stringify({
    nodeCount, threadNode, remoteHome, iterations,
    atomicAddUsP50: percentile(report.remote, 0.5),
    atomicAddUsP99: percentile(report.remote, 0.99),
    atomicAddHomeLocalUsP50: percentile(report.local, 0.5),
  }));
} else {
  const { iterations, words, remoteIndex, localIndex } = workerData;
  const measure = (index) => {
    for (let i = 0; i < Math.min(100, iterations); i += 1) Atomics.add(words, index, 1);
    const samples = new Float64Array(iterations);
    for (let i = 0; i < iterations; i += 1) {
      const start = performance.now();
      Atomics.add(words, index, 1);
      samples[i] = (performance.now() - start) * 1000;
    }
    return Array.from(samples);
  };
  const remote = measure(remoteIndex);
  const local = measure(localIndex);
  const expected = 2 * (Math.min(100, iterations) + iterations);
  if (Atomics.load(words, remoteIndex) + Atomics.load(words, localIndex) !== expected) throw new Error('sync-atomic: lost an Atomics.add');
  parentPort.postMessage({ remote, local });
}
