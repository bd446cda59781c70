// Run under `dsm run --nodes 3`. Two mutexes, both managed by node 0 (a
// mutex's manager is the home of its address, see sync-lib.mjs):
// - uncontended: a thread on node 1 locks and unlocks one mutex in a loop,
//   timing each lock() and each lock()+unlock(); then, for comparison, one
//   managed by node 1 itself (no network: the cost of reaching the engine);
// - contended: threads on nodes 1 and 2 take turns under the other mutex: a
//   turn word (plain dsm memory homed on node 0, guarded by the mutex) says
//   whose turn it is; a thread whose turn it is flips it and unlocks, one that
//   finds the other's turn unlocks and locks again. So every turn is a real
//   remote handoff (recall, release with the turn word's diff, grant with its
//   page), and each thread's interval between two of its own turns is two
//   handoffs (a lock kept on one node, re-acquired with no message, would
//   otherwise time a local re-lock);
// - doorbell: tryLock of the free mutex managed by node 1, by its thread on
//   node 1: one app thread -> manager -> app thread round trip (the doorbell,
//   src/channel/doorbell.ts) plus the lock's bookkeeping; the unlock is posted.
// Prints one JSON line.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { Barrier, Mutex, nodeInfo } from 'dsm';
import { managedBy, percentile } from './sync-lib.mjs';

function onMessage(worker) {
  return new Promise((resolve, reject) => {
    worker.on('message', resolve);
    worker.on('error', reject);
  });
}

if (isMainThread) {
  const iterations = Number(process.argv[2] ?? 2000);
  const { nodeCount } = nodeInfo();
  if (nodeCount < 3) throw new Error('sync-lock: needs at least 3 nodes');
  const manager = 0;
  const solo = managedBy(() => new Mutex(), manager, nodeCount);
  const soloLocal = managedBy(() => new Mutex(), 1, nodeCount);
  const shared = managedBy(() => new Mutex(), manager, nodeCount);
  // The turn word: 1 or 2, the node whose thread goes next (16 bytes: a heap block of its own).
  const turn = managedBy(() => ({ handle: new Int32Array(new SharedArrayBuffer(16)) }), manager, nodeCount);
  turn.handle[0] = 1;
  const start = new Barrier(2);
  const url = new URL(import.meta.url);
  const uncontended = await onMessage(new Worker(url, { workerData: { role: 'solo', iterations, mutex: solo.handle }, dsmNode: 1 }));
  const managerLocal = await onMessage(new Worker(url, { workerData: { role: 'solo', iterations, mutex: soloLocal.handle, tryToo: true }, dsmNode: 1 }));
  const contended = await Promise.all([1, 2].map((node) => onMessage(new Worker(url, {
    workerData: { role: 'pair', iterations, mutex: shared.handle, start: start.handle, turn: turn.handle, me: node }, dsmNode: node,
  }))));
  const cycles = contended.flatMap((report) => report.cycles);
  console.log(JSON.stringify({
    nodeCount, manager, iterations,
    lockUsP50: percentile(uncontended.acquireRelease, 0.5),
    lockUsP99: percentile(uncontended.acquireRelease, 0.99),
    lockAcquireUsP50: percentile(uncontended.acquire, 0.5),
    lockManagerLocalUsP50: percentile(managerLocal.acquireRelease, 0.5),
    doorbellRoundTripUsP50: percentile(managerLocal.tryLock, 0.5),
    doorbellRoundTripUsP99: percentile(managerLocal.tryLock, 0.99),
    handoffUsP50: Math.round(percentile(cycles, 0.5) / 2 * 100) / 100,
    handoffUsP99: Math.round(percentile(cycles, 0.99) / 2 * 100) / 100,
    handoffUsMean: Math.round(Math.max(...contended.map((report) => report.elapsedUs)) / (2 * iterations) * 100) / 100,
  }));
} else {
  const { role, iterations } = workerData;
  const mutex = Mutex.from(workerData.mutex);
  const warmCount = Math.min(100, iterations);
  if (role === 'solo') {
    for (let i = 0; i < warmCount; i += 1) {
      mutex.lock();
      mutex.unlock();
    }
    const acquire = new Float64Array(iterations);
    const acquireRelease = new Float64Array(iterations);
    for (let i = 0; i < iterations; i += 1) {
      const begin = performance.now();
      mutex.lock();
      const held = performance.now();
      mutex.unlock();
      const end = performance.now();
      acquire[i] = (held - begin) * 1000;
      acquireRelease[i] = (end - begin) * 1000;
    }
    // A tryLock of a free mutex managed on this thread's node: the round trip to the manager.
    const tryLock = new Float64Array(workerData.tryToo === true ? iterations : 0);
    for (let i = -Math.min(warmCount, tryLock.length); i < tryLock.length; i += 1) {
      const begin = performance.now();
      if (!mutex.tryLock()) throw new Error('sync-lock: a free mutex was busy');
      const end = performance.now();
      mutex.unlock();
      if (i >= 0) tryLock[i] = (end - begin) * 1000;
    }
    parentPort.postMessage({ acquire: Array.from(acquire), acquireRelease: Array.from(acquireRelease), tryLock: Array.from(tryLock) });
  } else {
    const start = Barrier.from(workerData.start, 2);
    const { turn, me } = workerData;
    const other = me === 1 ? 2 : 1;
    // One turn of this thread: wait (lock, look, unlock) until the turn word names it, then pass it on.
    const takeTurn = () => {
      for (;;) {
        mutex.lock();
        if (turn[0] === me) {
          turn[0] = other;
          mutex.unlock();
          return;
        }
        mutex.unlock();
      }
    };
    start.wait();
    for (let i = 0; i < warmCount; i += 1) takeTurn();
    start.wait();
    const cycles = new Float64Array(iterations);
    const begin = performance.now();
    let previous = begin;
    for (let i = 0; i < iterations; i += 1) {
      takeTurn();
      const now = performance.now();
      cycles[i] = (now - previous) * 1000;
      previous = now;
    }
    const elapsedUs = (performance.now() - begin) * 1000;
    // The first interval starts at the barrier, not at an acquisition.
    parentPort.postMessage({ cycles: Array.from(cycles.subarray(1)), elapsedUs });
  }
}
