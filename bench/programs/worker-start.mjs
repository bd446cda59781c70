// Run under `dsm run --nodes 2`: how long a worker takes to start and to end,
// seen by the program. The main thread starts ROUNDS workers one after the
// other on node NODE (default 1: a remote start), each after the previous one
// has exited and a pause (PAUSE_MS, default 300: time for a node to get ready
// for the next start, as between a program's phases). Per worker: `startMs`,
// from `new Worker` in the main thread to the first line of the worker's
// module; `exitMs`, from the worker's last line to the main thread's 'exit'
// event. Prints one JSON line: the first start (a program's usual case) and
// the medians. Times are this machine's clock (performance.timeOrigin + now:
// the same epoch in every thread and process).
// Arguments: ROUNDS NODE PAUSE_MS.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const now = () => performance.timeOrigin + performance.now();

if (isMainThread) {
  const rounds = Number(process.argv[2] ?? 5);
  const node = Number(process.argv[3] ?? 1);
  const pauseMs = Number(process.argv[4] ?? 300);
  const starts = [];
  const exits = [];
  for (let round = 0; round < rounds; round += 1) {
    const createdAt = now();
    const worker = new Worker(new URL(import.meta.url), { workerData: { round }, dsmNode: node });
    const { firstLineAt, lastLineAt, exitSeenAt } = await new Promise((resolve, reject) => {
      let lines = null;
      worker.on('message', (message) => { lines = message; });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (code !== 0 || lines === null) reject(new Error(`worker ${round} exited with ${code}`));
        else resolve({ ...lines, exitSeenAt: now() });
      });
    });
    starts.push(firstLineAt - createdAt);
    exits.push(exitSeenAt - lastLineAt);
    if (round + 1 < rounds) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const round1 = (value) => Math.round(value * 10) / 10;
  console.log(JSON.stringify({
    node, rounds,
    firstStartMs: round1(starts[0]), startMsMedian: round1(median(starts)),
    firstExitMs: round1(exits[0]), exitMsMedian: round1(median(exits)),
    startMs: starts.map(round1), exitMs: exits.map(round1),
  }));
} else {
  const firstLineAt = now();
  if (typeof workerData?.round !== 'number') throw new Error('worker-start: workerData did not arrive');
  parentPort.postMessage({ firstLineAt, lastLineAt: now() });
}
