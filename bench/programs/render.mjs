// Row-counter render (issue 12, bench atomics): worker threads take rows
// with Atomics.add on one shared counter and write each row of a Mandelbrot
// image into a shared output buffer. Runs as is under plain node and under
// `dsm run --nodes N` (the workers spread over the nodes). One JSON line:
// { seconds (from the workers' common start to the last row), cpuSeconds (CPU
// time of the processes the workers run in over that span: a plain-node
// process counted once, each dsm node process once, manager threads
// included), rows, threads, checksum }. Start-up is outside both figures,
// under plain node as under dsm.
// argv: threads rows width iterations
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

if (isMainThread) {
  const threads = Number(process.argv[2] ?? 2);
  const rows = Number(process.argv[3] ?? 300);
  const width = Number(process.argv[4] ?? 1024);
  const iterations = Number(process.argv[5] ?? 400);
  const image = new Uint32Array(new SharedArrayBuffer(4 * rows * width));
  // [0] next row, [1] threads ready (a common start), [16] rows done (another line).
  const control = new Int32Array(new SharedArrayBuffer(128));
  const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), { workerData: { image, control, rows, width, iterations, threads } }));
  const reports = await Promise.all(workers.map((worker) => new Promise((resolve, reject) => { worker.on('message', resolve); worker.on('error', reject); })));
  const seconds = reports.map((report) => report.seconds);
  // Workers sharing a process report the same process's CPU: the largest span of each process counts
  // (the last worker of a process to finish saw its other threads' work too).
  const cpuByProcess = new Map();
  for (const { pid, cpuSeconds } of reports) cpuByProcess.set(pid, Math.max(cpuByProcess.get(pid) ?? 0, cpuSeconds));
  const cpuSeconds = [...cpuByProcess.values()].reduce((sum, value) => sum + value, 0);
  let checksum = 0;
  for (let k = 0; k < image.length; k += 1) checksum = (checksum * 31 + image[k]) >>> 0;
  console.log(JSON.stringify({ seconds: Math.max(...seconds), cpuSeconds, rows, threads, done: Atomics.load(control, 16), checksum }));
} else {
  const { image, control, rows, width, iterations, threads } = workerData;
  Atomics.add(control, 1, 1);
  while (Atomics.load(control, 1) < threads) { /* spin: a common start */ }
  const begin = performance.now();
  const cpuBegin = process.cpuUsage();
  for (;;) {
    const row = Atomics.add(control, 0, 1);
    if (row >= rows) break;
    const y = (row / rows) * 2.4 - 1.2;
    for (let column = 0; column < width; column += 1) {
      const x = (column / width) * 3.2 - 2.2;
      let a = 0; let b = 0; let n = 0;
      while (n < iterations && a * a + b * b <= 4) { const t = a * a - b * b + x; b = 2 * a * b + y; a = t; n += 1; }
      image[row * width + column] = n;
    }
    Atomics.add(control, 16, 1);
  }
  const seconds = (performance.now() - begin) / 1000;
  const cpu = process.cpuUsage(cpuBegin);
  parentPort.postMessage({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, pid: process.pid });
}
