// QuickSort's remote partition, alone (issue 13; session 13, docs/EVALUATION.md
// "Session 13: QuickSort on 2 nodes"). Run under `dsm run --nodes 2`. The main
// thread (node 0) fills `pages` pages of seeded ints, homed at node 0; one
// worker on node 1 then does what node 1 does with the first range it pops:
// a Hoare partition of the whole range straight from the remote pages (mode
// `partition`), or first a read pass, a write pass (one store a page) and then
// the partition (mode `passes`, to split the cost: fetches, write faults,
// compute); then it partitions its kept (smaller) half again, as the app does
// after pushing the larger half. Times in ms, and the CPU node 1's process
// spent during the first partition or pass, per thread (Linux /proc, 10 ms
// resolution; CPU is what a loaded machine does not distort). Prints one JSON
// line; `intact` checks that the ints are the same multiset afterwards.
// Usage: dsm run --nodes 2 bench/programs/remote-partition.mjs [mode partition|passes] [pages 3072]
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Mutex, nodeInfo } from 'dsm';
import { partition } from '../apps/lib.mjs';

const intsPerPage = 1024;

/** Sum and xor of the ints: equal before and after iff (almost surely) the partition only moved them. */
function digest(a) {
  let sum = 0;
  let xor = 0;
  for (let k = 0; k < a.length; k++) { sum = (sum + a[k]) | 0; xor ^= a[k]; }
  return `${sum}:${xor}`;
}

/** CPU ms of each thread of this process (utime + stime), or {} where /proc is missing. */
function threadCpuMs() {
  if (!existsSync('/proc/self/task')) return {};
  return Object.fromEntries(readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [tid, (Number(fields[11]) + Number(fields[12])) * 10];
  }));
}

if (isMainThread) {
  const mode = process.argv[2] ?? 'partition';
  const pages = Number(process.argv[3] ?? 3072);
  if (mode !== 'partition' && mode !== 'passes') throw new Error('remote-partition: mode is partition or passes');
  if (nodeInfo().nodeCount !== 2) throw new Error('remote-partition: run with --nodes 2');
  const data = new Int32Array(new SharedArrayBuffer(pages * intsPerPage * 4));
  let state = 1;
  for (let k = 0; k < data.length; k++) { state = (Math.imul(state, 1103515245) + 12345) | 0; data[k] = state; }
  const before = digest(data);
  const lock = new Mutex();
  // Round-robin placement: on two nodes the first worker goes to node 1.
  const worker = new Worker(new URL(import.meta.url), { workerData: { mode, data, lock: lock.handle } });
  const result = await new Promise((resolve, reject) => { worker.on('message', resolve); worker.on('error', reject); });
  if (result.node !== 1) throw new Error(`remote-partition: worker placed on node ${result.node}, wanted 1`);
  // The worker's unlock ordered its writes before this lock.
  lock.lock();
  const intact = digest(data) === before;
  lock.unlock();
  console.log(JSON.stringify({ program: 'remote-partition', mode, pages, ...result, intact }));
  process.exitCode = intact ? 0 : 1;
} else {
  const { mode, data } = workerData;
  const lock = Mutex.from(workerData.lock);
  const out = { node: nodeInfo().nodeId };
  lock.lock();
  const cpuBefore = threadCpuMs();
  let start = performance.now();
  if (mode === 'passes') {
    let sum = 0;
    for (let k = 0; k < data.length; k++) sum = (sum + data[k]) | 0;
    out.readMs = performance.now() - start;
    out.sum = sum;
    start = performance.now();
    for (let k = 0; k < data.length; k += intsPerPage) data[k] = data[k];
    out.writeMs = performance.now() - start;
    start = performance.now();
  }
  const [leftEnd, rightStart] = partition(data, 0, data.length);
  out.partitionMs = performance.now() - start;
  const cpuAfter = threadCpuMs();
  out.cpuMsByThread = Object.keys(cpuAfter).map((tid) => cpuAfter[tid] - (cpuBefore[tid] ?? 0)).filter((ms) => ms > 0).sort((p, q) => q - p);
  out.cpuMs = out.cpuMsByThread.reduce((sum, ms) => sum + ms, 0);
  // The kept half: the smaller one, as bench/apps/quicksort.mjs keeps it after pushing the larger.
  const [lo, hi] = leftEnd < data.length - rightStart ? [0, leftEnd] : [rightStart, data.length];
  start = performance.now();
  partition(data, lo, hi);
  out.keptHalfPages = Math.round((hi - lo) / intsPerPage);
  out.keptHalfMs = performance.now() - start;
  lock.unlock();
  parentPort.postMessage(out);
}
