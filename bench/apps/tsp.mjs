// Travelling salesman by branch and bound (TreadMarks' "TSP", simplified):
// C seeded random cities with integer Euclidean distances; a shared stack of
// partial tours and the best tour so far, both guarded by one Mutex, and a
// Condition on which idle workers sleep. A worker pops a partial tour; if it
// is shorter than `splitDepth` cities it expands it and pushes the children
// (most promising last, so it is popped first), else it finishes the tour
// by a local depth-first search, pruning with the bound it read under the
// lock, and publishes an improvement under the lock. The run ends when the
// stack is empty and no worker holds a job. The main thread then solves the
// same cities sequentially; the two optimal lengths must be equal.
// Differences from TreadMarks: a LIFO stack instead of a priority queue, and
// a simpler lower bound (each city still to be left costs its cheapest edge).
// Usage: node tsp.mjs [--threads 2] [--size 17 (cities)] [--seed 1]
import { isMainThread, workerData } from 'node:worker_threads';
import { Condition, Mutex } from 'dsm';
import { parseArgs, random, report, runWorkers, takeJob } from './lib.mjs';

const splitDepth = 3; // partial tours of fewer cities are expanded through the shared stack
const stateTop = 0; // records on the stack
const stateBusy = 1; // workers holding a job
const stateBest = 2; // best tour length so far
const stateWords = 3; // then the best tour's cities

/** Records a stack holds at most: every partial tour of 1..splitDepth cities. */
function stackCapacity(n) {
  let total = 0;
  let level = 1;
  for (let depth = 1; depth <= splitDepth; depth += 1) {
    total += level;
    level *= Math.max(1, n - depth);
  }
  return total;
}

function makeCities(n, seed) {
  const next = random(seed);
  const xs = Array.from({ length: n }, () => next() * 1000);
  const ys = Array.from({ length: n }, () => next() * 1000);
  const dist = new Int32Array(n * n);
  for (let a = 0; a < n; a += 1) {
    for (let b = 0; b < n; b += 1) dist[a * n + b] = Math.round(Math.hypot(xs[a] - xs[b], ys[a] - ys[b]));
  }
  return dist;
}

/** Cheapest edge leaving each city: the lower bound's ingredients. */
function minimumOut(dist, n) {
  const out = new Int32Array(n);
  for (let a = 0; a < n; a += 1) {
    let least = 0x7fffffff;
    for (let b = 0; b < n; b += 1) if (a !== b && dist[a * n + b] < least) least = dist[a * n + b];
    out[a] = least;
  }
  return out;
}

/**
 * Depth-first completion of the tour `path[0..depth)` of length `cost`.
 * `best` is { length, path }; improved in place. Returns it.
 */
function solve(dist, minOut, n, path, depth, cost, best) {
  const visited = new Uint8Array(n);
  let unvisitedBound = 0;
  for (let index = 0; index < depth; index += 1) visited[path[index]] = 1;
  for (let city = 0; city < n; city += 1) if (visited[city] === 0) unvisitedBound += minOut[city];
  const tour = new Int32Array(n);
  tour.set(path);
  const search = (depthNow, costNow, remainingBound) => {
    const last = tour[depthNow - 1];
    if (depthNow === n) {
      const total = costNow + dist[last * n];
      if (total < best.length) { best.length = total; best.path = Array.from(tour); }
      return;
    }
    if (costNow + minOut[last] + remainingBound >= best.length) return;
    for (let city = 1; city < n; city += 1) {
      if (visited[city] === 1) continue;
      visited[city] = 1;
      tour[depthNow] = city;
      search(depthNow + 1, costNow + dist[last * n + city], remainingBound - minOut[city]);
      visited[city] = 0;
    }
  };
  search(depth, cost, unvisitedBound);
  return best;
}

if (isMainThread) {
  const { threads, size: n, seed } = parseArgs(process.argv.slice(2), { threads: 2, size: 17, seed: 1 });
  if (n < 4 || n > 20) throw new Error('tsp: --size (cities) must be in 4..20');
  const dist = new Int32Array(new SharedArrayBuffer(4 * n * n));
  dist.set(makeCities(n, seed));
  const recordWords = n + 2; // depth, cost, cities
  const capacity = stackCapacity(n);
  const stack = new Int32Array(new SharedArrayBuffer(4 * capacity * recordWords));
  const state = new Int32Array(new SharedArrayBuffer(4 * (stateWords + n)));
  // The root: a tour that has only left... nothing yet; it starts at city 0.
  stack[0] = 1; stack[1] = 0; stack[2] = 0;
  state[stateTop] = 1;
  state[stateBest] = 0x7fffffff;
  const lock = new Mutex();
  const idle = new Condition();
  const { seconds, messages } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, (_, index) =>
    ({ index, n, capacity, dist, stack, state, lock: lock.handle, idle: idle.handle })));
  // Not timed: the sequential solve.
  const local = makeCities(n, seed);
  const expected = solve(local, minimumOut(local, n), n, Int32Array.of(0), 1, 0, { length: 0x7fffffff, path: [] });
  const length = state[stateBest];
  const path = Array.from(state.subarray(stateWords, stateWords + n));
  let pathLength = 0;
  for (let index = 0; index < n; index += 1) pathLength += local[path[index] * n + path[(index + 1) % n]];
  const isPermutation = new Set(path).size === n && path[0] === 0;
  report({
    app: 'tsp', variant: 'bnb', threads, size: n,
    problem: `${n} cities (seed ${seed}), branch and bound, shared stack of partial tours below ${splitDepth} cities`,
    seconds, verified: length === expected.length && pathLength === length && isPermutation,
    optimum: length, expected: expected.length, jobs: messages.reduce((sum, count) => sum + (count ?? 0), 0),
    checksum: String(length),
  });
} else {
  const { n, capacity, dist: shared, stack, state } = workerData;
  const lock = Mutex.from(workerData.lock);
  const idle = Condition.from(workerData.idle);
  const recordWords = n + 2;
  // The distances are read-only after the main thread wrote them: copy once.
  const dist = Int32Array.from(shared);
  const minOut = minimumOut(dist, n);
  let jobs = 0;
  lock.lock();
  for (;;) {
    const top = takeJob(state, lock, idle);
    if (top === -1) break; // empty and nobody can add more: done
    const base = top * recordWords;
    const depth = stack[base];
    const cost = stack[base + 1];
    const path = Int32Array.from(stack.subarray(base + 2, base + 2 + depth));
    const best = { length: state[stateBest], path: [] };
    lock.unlock();
    jobs += 1;
    if (depth < splitDepth) {
      // Expand: children that can still beat the bound, pushed worst first.
      const visited = new Uint8Array(n);
      for (const city of path) visited[city] = 1;
      let remainingBound = 0;
      for (let city = 0; city < n; city += 1) if (visited[city] === 0) remainingBound += minOut[city];
      const last = path[depth - 1];
      const children = [];
      for (let city = 1; city < n; city += 1) {
        if (visited[city] === 1) continue;
        const childCost = cost + dist[last * n + city];
        if (childCost + minOut[city] + remainingBound - minOut[city] < best.length) children.push({ city, cost: childCost });
      }
      children.sort((a, b) => b.cost - a.cost);
      lock.lock();
      for (const child of children) {
        const slot = state[stateTop];
        if (slot >= capacity) throw new Error('tsp: stack capacity exceeded (a bug in stackCapacity)');
        const childBase = slot * recordWords;
        stack[childBase] = depth + 1;
        stack[childBase + 1] = child.cost;
        stack.set(path, childBase + 2);
        stack[childBase + 2 + depth] = child.city;
        state[stateTop] = slot + 1;
      }
    } else {
      solve(dist, minOut, n, path, depth, cost, best);
      lock.lock();
      if (best.length < state[stateBest]) {
        state[stateBest] = best.length;
        state.set(best.path, stateWords);
      }
    }
    state[stateBusy] -= 1;
    idle.broadcast(); // new work, or possibly the end
  }
  lock.unlock();
  (await import('node:worker_threads')).parentPort.postMessage(jobs);
}
