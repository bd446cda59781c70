// A lock hand-off behind a large release (issue 13, QuickSort's push).
// Run under `dsm run --nodes 2`. An array of `pages` pages homed at node 0
// (the main thread fills it). Rounds: a thread on node 1 writes half of every
// page outside the lock (each page then has a 2 KiB diff for node 0), then
// takes the mutex (managed by node 0) and hands the turn to a thread on node
// 0, which takes the mutex, reads one word of every page (each must show
// node 1's write: its home copy waits for the diff) and hands the turn back.
// Times per round (ms): node 1's lock() after its writes (`lockMs`: the
// request waits for whatever the release sends before it), node 0's wait from
// its turn being published to its lock() returning with the turn (`grantMs`),
// and its read of every page (`readMs`). Prints one JSON line.
// Usage: dsm run --nodes 2 bench/programs/handoff.mjs [rounds 20] [pages 3072]
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { Mutex, nodeInfo } from 'dsm';
import { managedBy, percentile } from './sync-lib.mjs';

const intsPerPage = 1024;
const pause = new Int32Array(new SharedArrayBuffer(4)); // not dsm memory: a local sleep

function startOn(node, data) {
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  return new Promise((resolve, reject) => {
    worker.on('message', (message) => resolve(message));
    worker.on('error', reject);
  }).then((message) => {
    if (message.node !== node) throw new Error(`handoff: worker placed on node ${message.node}, wanted ${node}`);
    return message;
  });
}

if (isMainThread) {
  const rounds = Number(process.argv[2] ?? 20);
  const pages = Number(process.argv[3] ?? 3072);
  const { nodeCount } = nodeInfo();
  if (nodeCount !== 2) throw new Error('handoff: run with --nodes 2');
  const data = new Int32Array(new SharedArrayBuffer(pages * intsPerPage * 4));
  data.fill(-1);
  const lock = managedBy(() => new Mutex(), 0, nodeCount);
  // turn[0]: whose turn (1: node 1 writes, 0: node 0 reads); turn[1]: the round; turn[2]: node 0's publish time.
  const turn = managedBy(() => ({ handle: new Int32Array(new SharedArrayBuffer(64)) }), 0, nodeCount).handle;
  turn[0] = 1;
  const common = { rounds, pages, data, lock: lock.handle, turn };
  // Round-robin placement: the first worker goes to node 1 on two nodes (checked by startOn).
  const [one, zero] = await Promise.all([startOn(1, { ...common, role: 1 }), startOn(0, { ...common, role: 0 })]);
  console.log(JSON.stringify({
    program: 'handoff', rounds, pages,
    lockMsP50: percentile(one.lockMs, 0.5), lockMsMax: Math.max(...one.lockMs),
    grantMsP50: percentile(zero.grantMs, 0.5), readMsP50: percentile(zero.readMs, 0.5),
    roundMsP50: percentile(one.roundMs, 0.5), wrong: zero.wrong,
  }));
} else {
  const { rounds, pages, data, turn, role } = workerData;
  const lock = Mutex.from(workerData.lock);
  const awaitTurn = (mine) => {
    for (let spins = 0; ; spins++) {
      lock.lock();
      if (turn[0] === mine) return;
      lock.unlock();
      Atomics.wait(pause, 0, 0, 0.2);
      if (spins > 5_000_000) throw new Error('handoff: turn never came');
    }
  };
  if (role === 1) {
    const lockMs = []; const roundMs = [];
    for (let round = 0; round < rounds; round++) {
      const start = performance.now();
      awaitTurn(1); lock.unlock();
      for (let page = 0; page < pages; page++) data.fill(round, page * intsPerPage, page * intsPerPage + intsPerPage / 2);
      const before = performance.now();
      lock.lock();
      lockMs.push(performance.now() - before);
      turn[0] = 0; turn[1] = round;
      lock.unlock();
      roundMs.push(performance.now() - start);
    }
    parentPort.postMessage({ node: nodeInfo().nodeId, lockMs, roundMs });
  } else {
    const grantMs = []; const readMs = [];
    let wrong = 0;
    for (let round = 0; round < rounds; round++) {
      const before = performance.now();
      awaitTurn(0);
      grantMs.push(performance.now() - before);
      const read = performance.now();
      for (let page = 0; page < pages; page++) if (data[page * intsPerPage + 7] !== turn[1]) wrong++;
      readMs.push(performance.now() - read);
      turn[0] = 1;
      lock.unlock();
    }
    parentPort.postMessage({ node: nodeInfo().nodeId, grantMs, readMs, wrong });
  }
}
