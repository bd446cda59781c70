// Run under `dsm run --nodes 2` (bench/sync.ts). Pages are homed round-robin
// (page index modulo node count); a page's home is the directory of its lines.
// Each timed Atomics.add runs on a fresh 64-byte line, so that every add pays
// what a first touch of a line costs:
// - atomicAddUsP50/P99: a thread on node 1 adds on lines homed on node 0 that
//   a thread on node 0 used (and so holds) just before. With Atomics by line
//   ownership (the default) each add is a line transfer: node 1's lineRequest,
//   the directory takes the line back from its own node (inline) and answers
//   with a lineGrant carrying node 0's write notices (one round trip). With
//   DSM_ATOMIC_LINES=0 each add is an atomicRequest to the home and its reply.
// - atomicAddHomeLocalUsP50: the same thread adds on fresh lines homed on its
//   own node that nobody holds: granted by its own node's directory, no message
//   (lines on), or run at its own home (lines off).
// Prints one JSON line.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { nodeInfo, rangeOf } from 'dsm';
import { percentile } from './sync-lib.mjs';

const pageBytes = 4096;
const lineBytes = 64;
const lineWords = lineBytes / 4;
const warmCount = (iterations) => Math.min(100, iterations);

function finished(worker) {
  return new Promise((resolve, reject) => {
    worker.on('message', resolve);
    worker.on('error', reject);
  });
}

if (isMainThread) {
  const iterations = Number(process.argv[2] ?? 2000);
  const { nodeCount } = nodeInfo();
  if (nodeCount !== 2) throw new Error('sync-atomic: run on 2 nodes');
  const threadNode = 1;
  const remoteHome = 0;
  const lineCount = warmCount(iterations) + iterations;
  // Enough pages that each node is home to lineCount lines, plus one page for alignment.
  const pageCount = nodeCount * Math.ceil(lineCount / (pageBytes / lineBytes)) + nodeCount + 1;
  const words = new Int32Array(new SharedArrayBuffer(pageCount * pageBytes));
  const range = rangeOf(words.buffer);
  if (range === null) throw new Error('sync-atomic: run this program with dsm run');
  /** The first word of each of `lineCount` whole lines homed on `node`. */
  const linesHomedOn = (node) => {
    const indexes = [];
    const first = ((lineBytes - (range.offset % lineBytes)) % lineBytes) / 4;
    for (let index = first; index + lineWords <= words.length && indexes.length < lineCount; index += lineWords) {
      if (Math.floor((range.offset + index * 4) / pageBytes) % nodeCount === node) indexes.push(index);
    }
    if (indexes.length < lineCount) throw new Error(`sync-atomic: only ${indexes.length} lines homed on node ${node}`);
    return indexes;
  };
  const remote = linesHomedOn(remoteHome);
  const local = linesHomedOn(threadNode);
  const url = new URL(import.meta.url);
  // Node 0's thread takes every remote line first (held by node 0 when node 1 asks).
  await finished(new Worker(url, { workerData: { role: 'holder', words, indexes: remote }, dsmNode: remoteHome }));
  const report = await finished(new Worker(url, { workerData: { role: 'taker', iterations, words, remote, local }, dsmNode: threadNode }));
  console.log(JSON.stringify({
    nodeCount, threadNode, remoteHome, iterations,
    atomicAddUsP50: percentile(report.remote, 0.5),
    atomicAddUsP99: percentile(report.remote, 0.99),
    atomicAddHomeLocalUsP50: percentile(report.local, 0.5),
  }));
} else if (workerData.role === 'holder') {
  const { words, indexes } = workerData;
  for (const index of indexes) Atomics.add(words, index, 1);
  parentPort.postMessage(null);
} else {
  const { iterations, words, remote, local } = workerData;
  const measure = (indexes) => {
    const warm = warmCount(iterations);
    for (let i = 0; i < warm; i += 1) Atomics.add(words, indexes[i], 1);
    const samples = new Float64Array(iterations);
    for (let i = 0; i < iterations; i += 1) {
      const index = indexes[warm + i];
      const start = performance.now();
      Atomics.add(words, index, 1);
      samples[i] = (performance.now() - start) * 1000;
    }
    return Array.from(samples);
  };
  const remoteSamples = measure(remote);
  const localSamples = measure(local);
  // Node 1 holds every line now: these loads send nothing.
  for (const index of remote) if (Atomics.load(words, index) !== 2) throw new Error('sync-atomic: lost an Atomics.add on a remote line');
  for (const index of local) if (Atomics.load(words, index) !== 1) throw new Error('sync-atomic: lost an Atomics.add on a local line');
  parentPort.postMessage({ remote: remoteSamples, local: localSamples });
}
