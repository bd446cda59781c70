// Run under `dsm run --nodes 2` (bench/atomics.ts). Figures, one JSON line:
// argv: iterations [counterIterations]
// - counterSeconds: threads on node 0 and node 1 each do `counterIterations`
//   Atomics.add on one counter word (homed on node 0), from a common start;
//   wall time until both are done.
// - atomicAddOwnedNs: mean ns of Atomics.add by a thread on node 1 on a word
//   homed on node 1 that no other thread uses (an owned line), after a
//   warm-up, best of ownedRounds rounds.
// - notifyQuietNs: the same for Atomics.notify on that word, nobody waiting
//   (session 36: answered in the thread while the node holds the line).
// - lockLocalUsP50 / lockRemoteUsP50: lock+unlock by a thread on node 1 of a
//   Mutex managed by node 1 / node 0, no other thread interested.
// - syncRoundTripUsP50: Mutex.tryLock of a mutex managed on the thread's own
//   node while it is free: one app thread -> manager -> app thread round trip
//   (plus the manager's lock bookkeeping), the path a doorbell replaces.
// - allocSmallUs: µs per new SharedArrayBuffer(64) in the main thread (node 0),
//   kept alive: a small size allocated again and again comes from the thread's
//   cache, refilled in batches (session 40), not a call each.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { allocSmallUs } from './alloc-lib.mjs';
import { Barrier, Mutex, nodeInfo, rangeOf } from 'dsm';
import { managedBy, percentile } from './sync-lib.mjs';

const pageBytes = 4096;
// The owned add: adds before timing, and timed rounds (as atomics-plain.mjs).
const ownedWarmUp = 50_000;
const ownedRounds = 9;

function result(worker) {
  return new Promise((resolve, reject) => {
    worker.on('message', resolve);
    worker.on('error', reject);
  });
}

if (isMainThread) {
  const iterations = Number(process.argv[2] ?? 2000);
  // The counter and the owned add run this many (Atomics by line ownership make them cheap; default: iterations).
  const counterIterations = Number(process.argv[3] ?? iterations);
  const { nodeCount } = nodeInfo();
  if (nodeCount !== 2) throw new Error('atomics bench: run on 2 nodes');
  const words = new Int32Array(new SharedArrayBuffer(2 * nodeCount * pageBytes));
  const range = rangeOf(words.buffer);
  if (range === null) throw new Error('atomics bench: run this program with dsm run');
  const indexHomedOn = (node) => {
    for (let index = 0; index < words.length; index += pageBytes / 4) {
      if (Math.floor((range.offset + index * 4) / pageBytes) % nodeCount === node) return index;
    }
    throw new Error(`atomics bench: no page homed on node ${node}`);
  };
  const url = new URL(import.meta.url);
  const start = new Barrier(2);
  const counterIndex = indexHomedOn(0);
  const counter = await Promise.all([0, 1].map((node) => result(new Worker(url, {
    workerData: { role: 'counter', iterations: counterIterations, words, index: counterIndex, start: start.handle }, dsmNode: node,
  }))));
  if (Atomics.load(words, counterIndex) !== 2 * counterIterations) throw new Error('atomics bench: lost an Atomics.add');
  const owned = await result(new Worker(url, { workerData: { role: 'owned', iterations: counterIterations, words, index: indexHomedOn(1) }, dsmNode: 1 }));
  const local = managedBy(() => new Mutex(), 1, nodeCount);
  const remote = managedBy(() => new Mutex(), 0, nodeCount);
  const lock = await result(new Worker(url, { workerData: { role: 'lock', iterations, local: local.handle, remote: remote.handle }, dsmNode: 1 }));
  console.log(JSON.stringify({
    nodeCount, iterations, counterIterations,
    counterSeconds: Math.max(...counter.map((report) => report.seconds)),
    atomicAddOwnedNs: owned.ns,
    notifyQuietNs: owned.notifyNs,
    lockLocalUsP50: percentile(lock.local, 0.5),
    lockRemoteUsP50: percentile(lock.remote, 0.5),
    syncRoundTripUsP50: percentile(lock.tryLocal, 0.5),
    allocSmallUs: allocSmallUs(),
  }));
} else if (workerData.role === 'counter') {
  const { iterations, words, index } = workerData;
  Barrier.from(workerData.start, 2).wait();
  const begin = performance.now();
  for (let i = 0; i < iterations; i += 1) Atomics.add(words, index, 1);
  parentPort.postMessage({ seconds: (performance.now() - begin) / 1000 });
} else if (workerData.role === 'owned') {
  const { iterations, words, index } = workerData;
  // A warm-up long enough for the optimizing compiler (V8 tiers a hot loop up
  // after some thousands of iterations: a short one timed baseline code, on
  // either side), then the best of `ownedRounds` rounds (plain node's figure is the best of its
  // rounds in each of 3 runs, and bench/atomics.ts takes the best of 2 dsm runs): on a loaded
  // machine one descheduled moment would otherwise swamp a per-op figure.
  for (let i = 0; i < Math.min(ownedWarmUp, iterations); i += 1) Atomics.add(words, index, 1);
  const round = Math.max(1, Math.floor(iterations / 5));
  let best = Infinity;
  for (let r = 0; r < ownedRounds; r += 1) {
    const begin = performance.now();
    for (let i = 0; i < round; i += 1) Atomics.add(words, index, 1);
    best = Math.min(best, (performance.now() - begin) * 1e6 / round);
  }
  // Then notifies that wake nobody, timed the same way (warmed up too).
  for (let i = 0; i < Math.min(ownedWarmUp, iterations); i += 1) Atomics.notify(words, index, 1);
  let bestNotify = Infinity;
  for (let r = 0; r < ownedRounds; r += 1) {
    const begin = performance.now();
    for (let i = 0; i < round; i += 1) Atomics.notify(words, index, 1);
    bestNotify = Math.min(bestNotify, (performance.now() - begin) * 1e6 / round);
  }
  // Hundredths of a nanosecond: whole ones made the ratio move in steps of 1/8 (11 / 8 = 1.38, 12 / 8 = 1.5).
  parentPort.postMessage({ ns: Math.round(best * 100) / 100, notifyNs: Math.round(bestNotify * 100) / 100 });
} else {
  const { iterations } = workerData;
  const time = (mutex, tryOnly) => {
    const samples = new Float64Array(iterations);
    for (let i = -Math.min(100, iterations); i < iterations; i += 1) {
      const begin = performance.now();
      if (tryOnly) {
        if (!mutex.tryLock()) throw new Error('atomics bench: a free mutex was busy');
        const end = performance.now();
        mutex.unlock();
        if (i >= 0) samples[i] = (end - begin) * 1000;
      } else {
        mutex.lock();
        mutex.unlock();
        if (i >= 0) samples[i] = (performance.now() - begin) * 1000;
      }
    }
    return Array.from(samples);
  };
  const local = Mutex.from(workerData.local);
  const remote = Mutex.from(workerData.remote);
  parentPort.postMessage({ local: time(local, false), remote: time(remote, false), tryLocal: time(local, true) });
}
