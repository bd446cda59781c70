// Work for `dsm bench race`: `threads` workers, each `rounds` rounds over its
// own slice of a shared Float64Array (`pages` pages written per round, some
// arithmetic per element), with one Atomics.add per round (a
// synchronization, so an interval per round under --race). The main thread
// prints {"ms": ..., "loopMs": ...}: the time from the first worker's
// creation to the last one's exit, and the longest worker's own loop time
// (without thread start-up, which dsm pays once per node).
// Usage: node race-work.mjs THREADS ROUNDS PAGES WORK
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

const pageDoubles = 512;
if (isMainThread) {
  const [threads, rounds, pages, work] = process.argv.slice(2).map(Number);
  const data = new Float64Array(new SharedArrayBuffer(threads * pages * pageDoubles * 8));
  const counter = new Int32Array(new SharedArrayBuffer(8));
  const loops = new Float64Array(new SharedArrayBuffer(threads * 8)); // each worker's loop time, read after join
  const start = performance.now();
  const workers = Array.from({ length: threads }, (_, slot) => new Worker(new URL(import.meta.url), { workerData: { data, counter, loops, slot, rounds, pages, work } }));
  await Promise.all(workers.map((worker) => new Promise((resolve, reject) => { worker.on('exit', resolve); worker.on('error', reject); })));
  const ms = performance.now() - start;
  if (Atomics.load(counter, 0) !== threads * rounds) throw new Error(`counter ${Atomics.load(counter, 0)}`);
  console.log(JSON.stringify({ ms, loopMs: Math.max(...loops) }));
} else {
  const { data, counter, loops, slot, rounds, pages, work } = workerData;
  const loopStart = performance.now();
  const base = slot * pages * pageDoubles;
  const length = pages * pageDoubles;
  for (let round = 0; round < rounds; round += 1) {
    for (let index = 0; index < length; index += 1) {
      let value = data[base + index] + round;
      for (let step = 0; step < work; step += 1) value = Math.sqrt(value * value + step);
      data[base + index] = value;
    }
    Atomics.add(counter, 0, 1);
  }
  loops[slot] = performance.now() - loopStart;
}
