// The plain-node baselines of bench/atomics.ts, in one process, one JSON line:
// - counterSeconds: 2 threads each do `iterations` Atomics.add on one word;
// - atomicAddNs: mean ns of Atomics.add by one thread on a word of its own
//   (a warm-up, then rounds of counterIterations / 5 adds, the best of
//   ownedRounds, as the dsm side);
// - futexRoundTripUsP50: a bare ping-pong between two threads, each parking
//   with Atomics.wait and waking the other with Atomics.notify;
// - allocSmallUs: µs per new SharedArrayBuffer(64), kept alive.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { allocSmallUs } from './alloc-lib.mjs';

// The owned add: adds before timing, and timed rounds (as atomics.mjs).
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
  // The counter runs long enough to time (the dsm run's count is far smaller; compare per add).
  const counterIterations = Number(process.argv[3] ?? 1_000_000);
  const words = new Int32Array(new SharedArrayBuffer(64));
  const url = new URL(import.meta.url);
  const counter = await Promise.all([0, 1].map(() => result(new Worker(url, { workerData: { role: 'counter', iterations: counterIterations, words } }))));
  if (Atomics.load(words, 0) !== 2 * counterIterations) throw new Error('atomics-plain: lost an Atomics.add');
  // As many adds as the dsm side's owned add (its counter count), best of ownedRounds rounds there as here.
  const owned = await result(new Worker(url, { workerData: { role: 'owned', iterations: counterIterations, words } }));
  // Ping-pong on word 4: the pinger sets 1 and waits for 0, the ponger answers 0.
  const ponger = new Worker(url, { workerData: { role: 'pong', iterations, words } });
  // Listening from the start: the ponger may end before the pinger's result arrives.
  const pongerExit = new Promise((resolve) => ponger.on('exit', resolve));
  const ping = await result(new Worker(url, { workerData: { role: 'ping', iterations, words } }));
  await pongerExit;
  const sorted = Float64Array.from(ping.samples).sort();
  console.log(JSON.stringify({
    iterations, counterIterations,
    counterSeconds: Math.max(...counter.map((report) => report.seconds)),
    atomicAddNs: owned.ns,
    notifyQuietNs: owned.notifyNs,
    futexRoundTripUsP50: Math.round(sorted[Math.floor(sorted.length / 2)] * 100) / 100,
    allocSmallUs: allocSmallUs(),
  }));
} else {
  const { role, iterations, words } = workerData;
  const rounds = Math.min(100, iterations) + iterations;
  if (role === 'counter') {
    // A rough common start: the other thread is running by the time this one has counted to 2.
    Atomics.add(words, 8, 1);
    while (Atomics.load(words, 8) < 2);
    const begin = performance.now();
    for (let i = 0; i < iterations; i += 1) Atomics.add(words, 0, 1);
    parentPort.postMessage({ seconds: (performance.now() - begin) / 1000 });
  } else if (role === 'owned') {
    // As the dsm side (atomics.mjs): a warm-up for the optimizing compiler, then the best of its rounds.
    for (let i = 0; i < Math.min(ownedWarmUp, iterations); i += 1) Atomics.add(words, 2, 1);
    const round = Math.max(1, Math.floor(iterations / 5));
    let best = Infinity;
    for (let r = 0; r < ownedRounds; r += 1) {
      const begin = performance.now();
      for (let i = 0; i < round; i += 1) Atomics.add(words, 2, 1);
      best = Math.min(best, (performance.now() - begin) * 1e6 / round);
    }
    // Then notifies that wake nobody, as the dsm side times them.
    for (let i = 0; i < Math.min(ownedWarmUp, iterations); i += 1) Atomics.notify(words, 2, 1);
    let bestNotify = Infinity;
    for (let r = 0; r < ownedRounds; r += 1) {
      const begin = performance.now();
      for (let i = 0; i < round; i += 1) Atomics.notify(words, 2, 1);
      bestNotify = Math.min(bestNotify, (performance.now() - begin) * 1e6 / round);
    }
    // Hundredths of a nanosecond: whole ones made the ratio move in steps of 1/8 (11 / 8 = 1.38, 12 / 8 = 1.5).
    parentPort.postMessage({ ns: Math.round(best * 100) / 100, notifyNs: Math.round(bestNotify * 100) / 100 });
  } else if (role === 'pong') {
    for (let i = 0; i < rounds; i += 1) {
      while (Atomics.load(words, 4) === 0) Atomics.wait(words, 4, 0);
      Atomics.store(words, 4, 0);
      Atomics.notify(words, 4);
    }
  } else {
    const samples = new Float64Array(iterations);
    for (let i = -Math.min(100, iterations); i < iterations; i += 1) {
      const begin = performance.now();
      Atomics.store(words, 4, 1);
      Atomics.notify(words, 4);
      while (Atomics.load(words, 4) === 1) Atomics.wait(words, 4, 1);
      if (i >= 0) samples[i] = (performance.now() - begin) * 1000;
    }
    parentPort.postMessage({ samples: Array.from(samples) });
  }
}
