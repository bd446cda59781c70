// `dsm bench startup`'s program: how long a run takes to reach the program and
// its workers, and to end, seen from the moment its launcher spawned it.
// Arguments: LAUNCHED_AT (epoch ms, Date.now() just before the spawn) and
// WORKERS (0: the program is one line). Each worker posts the time of its
// first line; the main thread prints one JSON line at its end:
// firstLineMs (the main thread's first line), workersMs (the last worker's
// first line; 0 without workers) and lastLineMs (this line), all since
// LAUNCHED_AT.
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

if (isMainThread) {
  const launchedAt = Number(process.argv[2]);
  const firstLineMs = Date.now() - launchedAt;
  const workers = Number(process.argv[3] ?? 0);
  let workersAt = launchedAt;
  let ended = 0;
  const done = () => console.log(JSON.stringify({ firstLineMs, workersMs: workersAt - launchedAt, lastLineMs: Date.now() - launchedAt }));
  if (workers === 0) done();
  for (let index = 0; index < workers; index += 1) {
    const worker = new Worker(new URL(import.meta.url));
    worker.on('message', (at) => { workersAt = Math.max(workersAt, at); });
    worker.on('exit', () => { ended += 1; if (ended === workers) done(); });
  }
} else {
  parentPort.postMessage(Date.now());
}
