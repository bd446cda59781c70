// A bare Atomics-made barrier (the sense-reversing count + generation of users15/lcs-barrier.mjs, no data) timed per
// window of rounds: worker 0 prints µs a round for each window, so the warm-up of the managers' path shows
// (docs/EVALUATION.md, session 42). Plain worker_threads. Usage: barrier-windows.mjs [workers] [rounds] [window]
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
function barrier(sync, parties) {
  const gen = Atomics.load(sync, 1);
  if (Atomics.add(sync, 0, 1) === parties - 1) { Atomics.store(sync, 0, 0); Atomics.add(sync, 1, 1); Atomics.notify(sync, 1); }
  else while (Atomics.load(sync, 1) === gen) Atomics.wait(sync, 1, gen);
}
if (isMainThread) {
  const workers = Number(process.argv[2] ?? 2), rounds = Number(process.argv[3] ?? 10000), win = Number(process.argv[4] ?? 1000);
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const times = [];
  await Promise.all(Array.from({ length: workers }, (_, w) => new Promise((resolve, reject) => {
    const wk = new Worker(new URL(import.meta.url), { workerData: { sync, w, workers, rounds, win } });
    wk.on('message', (m) => { if (w === 0) times.push(m); });
    wk.on('error', reject); wk.on('exit', resolve);
  })));
  console.log(times.map((t) => Math.round(t)).join(' '), 'µs per round per window');
} else {
  const { sync, workers, rounds, win } = workerData;
  let t = performance.now();
  for (let r = 1; r <= rounds; r++) {
    barrier(sync, workers);
    if (r % win === 0) { const n = performance.now(); parentPort.postMessage((n - t) * 1000 / win); t = n; }
  }
}
