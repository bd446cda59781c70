// A view posted to a worker on another node, then work (session 45: the post's buffer weight is given in the
// thread, no call to the manager). The main thread, n times: stores i, posts { i, v: a view of that word } to
// one worker, then computes `work` µs; the worker sums what it reads through the views. Runs as is under plain
// node and under `dsm run --nodes 2` (the worker goes to node 1). One JSON line: { posts, workUs, loopSeconds
// (the main thread's loop), seconds (until the worker's sum came back), sum }.
// argv: posts workUs
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

if (isMainThread) {
  const posts = Number(process.argv[2] ?? 2000);
  const workUs = Number(process.argv[3] ?? 200);
  const words = new Int32Array(new SharedArrayBuffer(4 * posts));
  const worker = new Worker(new URL(import.meta.url));
  const summed = new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  const begin = performance.now();
  for (let i = 0; i < posts; i += 1) {
    words[i] = i;
    worker.postMessage({ i, v: new Int32Array(words.buffer, 4 * i, 1) });
    const until = performance.now() + workUs / 1000;
    while (performance.now() < until) { /* work */ }
  }
  worker.postMessage('end');
  const loopSeconds = (performance.now() - begin) / 1000;
  const sum = await summed;
  const expected = (posts * (posts - 1)) / 2;
  if (sum !== expected) throw new Error(`post-views: the worker read ${sum}, not ${expected}`);
  console.log(JSON.stringify({ posts, workUs, loopSeconds, seconds: (performance.now() - begin) / 1000, sum }));
} else {
  let sum = 0;
  parentPort.on('message', (message) => {
    if (message === 'end') { parentPort.postMessage(sum); parentPort.close(); return; }
    sum += message.v[0];
  });
}
