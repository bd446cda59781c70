// bench/apps/quicksort.mjs with a log (issue 13; docs/EVALUATION.md "Session 14:
// QuickSort on 2 nodes"): the same algorithm, input and check, and each worker
// records what it does, in ms since the first worker started: every lock wait,
// pop (the range, its elements), partition (elements, ms), local sort and idle
// wait, with its node. Prints one JSON line: per worker the elements' worth of
// ranges it popped, its partitions' elements and ms (so ns an element), its
// lock wait, its idle wait, its first lock() and pop, and the CPU its node's
// process spent from its first lock() to its end (all threads; under plain node
// both workers share one process); `events` with `--events`.
// Works under plain node too (every worker is node 0 there).
// Usage: dsm run --nodes 2 bench/programs/quicksort-timed.mjs [--variant push-smaller|push-larger] [--events]
import { isMainThread, workerData, parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Condition, Mutex, nodeInfo } from 'dsm';
import { partition, random, runWorkers } from '../apps/lib.mjs';

const localMax = 16384;

/** This thread's node; 0 under plain node (where nodeInfo has no cluster to name). */
function nodeId() {
  try { return nodeInfo().nodeId; } catch { return 0; }
}
const stateTop = 0;
const stateBusy = 1;
const n = 1 << 22;

function makeInput(seed) {
  const next = random(seed);
  const values = new Int32Array(n);
  for (let index = 0; index < n; index += 1) values[index] = Math.floor(next() * 4294967296) | 0;
  return values;
}

/** CPU ms of each thread of this process by thread id (Linux /proc; {} elsewhere; 10 ms resolution). */
function threadCpuMs() {
  if (!existsSync('/proc/self/task')) return {};
  const threads = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads[tid] = (Number(fields[11]) + Number(fields[12])) * 10;
    } catch { /* the thread ended */ }
  }
  return threads;
}

/**
 * The CPU threads spent between two threadCpuMs() samples: this worker's own
 * thread, the process's main thread (a dsm node's manager; under plain node the
 * app's main thread) and the rest (the app's main thread on node 0, V8's and
 * libuv's helpers).
 */
function cpuSplit(before, after) {
  const self = existsSync('/proc/thread-self') ? readlinkSync('/proc/thread-self').split('/').at(-1) : '';
  const split = { worker: 0, main: 0, others: 0 };
  for (const [tid, ms] of Object.entries(after)) {
    const spent = ms - (before[tid] ?? 0);
    if (tid === self) split.worker += spent;
    else if (tid === String(process.pid)) split.main += spent;
    else split.others += spent;
  }
  return split;
}

if (isMainThread) {
  const withEvents = process.argv.includes('--events');
  const variantAt = process.argv.indexOf('--variant');
  const variant = variantAt === -1 ? 'push-smaller' : process.argv[variantAt + 1];
  if (variant !== 'push-smaller' && variant !== 'push-larger') throw new Error(`quicksort-timed: --variant is push-smaller or push-larger; got '${variant}'`);
  const pushLarger = variant === 'push-larger';
  const data = new Int32Array(new SharedArrayBuffer(4 * n));
  data.set(makeInput(1));
  const capacity = Math.ceil(n / localMax) + 1;
  const stack = new Int32Array(new SharedArrayBuffer(8 * capacity));
  const state = new Int32Array(new SharedArrayBuffer(8));
  stack[0] = 0; stack[1] = n;
  state[stateTop] = 1;
  const lock = new Mutex();
  const idle = new Condition();
  const origin = performance.timeOrigin + performance.now();
  const { seconds, messages } = await runWorkers(new URL(import.meta.url), [0, 1].map(() =>
    ({ capacity, data, stack, state, lock: lock.handle, idle: idle.handle, origin, pushLarger })));
  const expected = makeInput(1).sort();
  let wrong = 0;
  for (let index = 0; index < n; index += 1) if (data[index] !== expected[index]) wrong += 1;
  const workers = messages.map(({ events, ...summary }) => (withEvents ? { ...summary, events } : summary));
  console.log(JSON.stringify({ program: 'quicksort-timed', variant, seconds: Number(seconds.toFixed(3)), verified: wrong === 0, workers }));
  process.exitCode = wrong === 0 ? 0 : 1;
} else {
  const { capacity, data, stack, state, origin, pushLarger } = workerData;
  const lock = Mutex.from(workerData.lock);
  const idle = Condition.from(workerData.idle);
  const t = () => performance.timeOrigin + performance.now() - origin;
  const r = (x) => Number(x.toFixed(1));
  const events = [];
  const sum = { node: nodeId(), popped: 0, pops: 0, partitioned: 0, partitionMs: 0, sorted: 0, sortMs: 0, lockWaitMs: 0, idleMs: 0, firstPop: null };
  const lockTimed = () => { const a = t(); lock.lock(); const w = t() - a; sum.lockWaitMs += w; if (w > 5) events.push(['lockWait', r(a), r(w)]); };
  let ranges = 0;
  // process.cpuUsage() is the whole process's (every thread: the worker, the node's manager, V8's helpers).
  const cpuAtStart = process.cpuUsage();
  const threadsAtStart = threadCpuMs();
  sum.firstLock = r(t());
  lockTimed();
  sum.firstGranted = r(t());
  for (;;) {
    const a = t();
    while (state[stateTop] === 0 && state[stateBusy] > 0) idle.wait(lock);
    const w = t() - a;
    sum.idleMs += w;
    if (w > 5) events.push(['idle', r(a), r(w)]);
    if (state[stateTop] === 0) break;
    const top = state[stateTop] - 1;
    state[stateTop] = top;
    state[stateBusy] += 1;
    let lo = stack[2 * top];
    let hi = stack[2 * top + 1];
    lock.unlock();
    ranges += 1;
    sum.pops += 1;
    sum.popped += hi - lo;
    events.push(['pop', r(t()), lo, hi]);
    if (sum.firstPop === null) sum.firstPop = [r(t()), hi - lo];
    while (hi - lo > localMax) {
      const p0 = t();
      const [leftEnd, rightStart] = partition(data, lo, hi);
      const pm = t() - p0;
      sum.partitioned += hi - lo;
      sum.partitionMs += pm;
      if (pm > 5) events.push(['partition', r(p0), hi - lo, r(pm)]);
      const halves = [[lo, leftEnd], [rightStart, hi]].sort((p, q) => (q[1] - q[0]) - (p[1] - p[0]));
      const [larger, smaller] = halves;
      if (smaller[1] - smaller[0] > localMax) {
        const [published, kept] = pushLarger ? [larger, smaller] : [smaller, larger];
        lockTimed();
        const slot = state[stateTop];
        if (slot >= capacity) throw new Error('quicksort: range stack capacity exceeded');
        stack[2 * slot] = published[0];
        stack[2 * slot + 1] = published[1];
        state[stateTop] = slot + 1;
        idle.signal();
        lock.unlock();
        events.push(['push', r(t()), published[1] - published[0]]);
        [lo, hi] = kept;
      } else {
        const s0 = t();
        data.subarray(smaller[0], smaller[1]).sort();
        sum.sorted += smaller[1] - smaller[0];
        sum.sortMs += t() - s0;
        [lo, hi] = larger;
      }
    }
    const s0 = t();
    data.subarray(lo, hi).sort();
    sum.sorted += hi - lo;
    sum.sortMs += t() - s0;
    lockTimed();
    state[stateBusy] -= 1;
    if (state[stateBusy] === 0) idle.broadcast();
  }
  idle.broadcast();
  lock.unlock();
  const cpu = process.cpuUsage(cpuAtStart);
  sum.processCpuMs = r((cpu.user + cpu.system) / 1000);
  sum.threadCpuMs = cpuSplit(threadsAtStart, threadCpuMs());
  const nsPerElement = sum.partitioned > 0 ? Number((sum.partitionMs * 1e6 / sum.partitioned).toFixed(1)) : null;
  parentPort.postMessage({ ...sum, end: r(t()), nsPerElement, partitionMs: r(sum.partitionMs), sortMs: r(sum.sortMs), lockWaitMs: r(sum.lockWaitMs), idleMs: r(sum.idleMs), ranges, events });
}
