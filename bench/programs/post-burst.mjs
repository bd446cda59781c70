// A burst of worker.postMessage to a worker on another node, one JSON line
// (docs/EVALUATION.md, session 21: "postMessage bursts"): main posts N small
// messages to a worker on node 1 (dsmNode; plain node ignores it), which
// counts them and answers once, at the last. Then the same the other way
// (the worker's parentPort.postMessage burst to main). Milliseconds from the
// first post to the answer (to the last message), and messages per second.
// POST_BURST_COUNT sets N (3,000).
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

const count = Number(process.env.POST_BURST_COUNT ?? 3000);

if (isMainThread) {
  const nodeCount = Number(process.env.DSM_NODE_COUNT ?? 1);
  const worker = new Worker(new URL(import.meta.url), { dsmNode: nodeCount > 1 ? 1 : 0 });
  await new Promise((resolve) => worker.once('online', resolve));
  // Warm-up: one round trip.
  await new Promise((resolve) => { worker.once('message', resolve); worker.postMessage({ warm: true }); });
  const start = process.hrtime.bigint();
  const answered = new Promise((resolve) => worker.once('message', resolve));
  for (let index = 0; index < count; index += 1) worker.postMessage({ index, text: 'burst' });
  const got = await answered;
  const downMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (got !== count) throw new Error(`the worker counted ${got} of ${count}`);
  // The other way: the worker posts `count` messages to main.
  let seen = 0;
  const upStart = process.hrtime.bigint();
  await new Promise((resolve) => {
    worker.on('message', (value) => {
      if (value.index !== seen) throw new Error(`message ${value.index} came as ${seen}`);
      seen += 1;
      if (seen === count) resolve();
    });
    worker.postMessage({ up: true });
  });
  const upMs = Number(process.hrtime.bigint() - upStart) / 1e6;
  await worker.terminate();
  console.log(JSON.stringify({
    nodes: nodeCount, count, downMs: Math.round(downMs * 10) / 10, downPerSecond: Math.round(count / downMs * 1000),
    upMs: Math.round(upMs * 10) / 10, upPerSecond: Math.round(count / upMs * 1000),
  }));
} else {
  let received = 0;
  parentPort.on('message', (value) => {
    if (value.warm) { parentPort.postMessage('warm'); return; }
    if (value.up) {
      for (let index = 0; index < count; index += 1) parentPort.postMessage({ index, text: 'burst' });
      return;
    }
    if (value.index !== received) throw new Error(`message ${value.index} came as ${received}`);
    received += 1;
    if (received === count) parentPort.postMessage(received);
  });
}
