// N-squared molecular dynamics, the idea of SPLASH Water (TreadMarks'
// "Water") simplified: N single-site molecules (not Water's three-site H2O
// with intra-molecular terms), a Lennard-Jones pair potential over every
// pair (no cutoff, no periodic box), velocity-Verlet-like explicit steps.
// Molecules are split in contiguous blocks, one per worker. Each step:
//   1. a worker computes the force on each of its molecules from ALL others
//      (the full j loop, where Water uses Newton's third law over half the
//      pairs and adds into shared force arrays under per-molecule locks; we
//      trade 2x arithmetic for no force locks), and adds its share of the
//      potential energy into a shared per-step total under one Mutex (as
//      Water sums global energies under locks);
//   2. Barrier (everyone has read the old positions);
//   3. it moves its molecules; Barrier (new positions visible).
// The main thread repeats the steps sequentially: positions must match
// bitwise (same arithmetic, same order per molecule), energies within 1e-9
// relative (their sums' order depends on who got the lock first).
// Usage: node water.mjs [--threads 2] [--size 1536 (molecules)] [--iterations 20 (steps)] [--seed 1]
import { isMainThread, workerData } from 'node:worker_threads';
import { Barrier, Mutex } from 'dsm';
import { checksumFloat64, parseArgs, random, report, runWorkers } from './lib.mjs';

const dt = 0.0005;
const spacing = 1.25; // lattice spacing in units of sigma

function initialize(positions, velocities, n, seed) {
  const next = random(seed);
  const side = Math.ceil(Math.cbrt(n));
  for (let i = 0; i < n; i += 1) {
    const cell = [i % side, Math.floor(i / side) % side, Math.floor(i / (side * side))];
    for (let axis = 0; axis < 3; axis += 1) {
      positions[3 * i + axis] = cell[axis] * spacing + (next() - 0.5) * 0.1;
      velocities[3 * i + axis] = (next() - 0.5) * 0.5;
    }
  }
}

/** Forces on molecules [start, end) into force[3*(i-start)..]; returns their half of the potential energy. */
function computeForces(positions, n, start, end, force) {
  let energy = 0;
  for (let i = start; i < end; i += 1) {
    const xi = positions[3 * i];
    const yi = positions[3 * i + 1];
    const zi = positions[3 * i + 2];
    let fx = 0;
    let fy = 0;
    let fz = 0;
    for (let j = 0; j < n; j += 1) {
      if (j === i) continue;
      const dx = xi - positions[3 * j];
      const dy = yi - positions[3 * j + 1];
      const dz = zi - positions[3 * j + 2];
      const r2 = dx * dx + dy * dy + dz * dz;
      const inv2 = 1 / r2;
      const inv6 = inv2 * inv2 * inv2;
      const scale = 24 * inv2 * inv6 * (2 * inv6 - 1);
      fx += scale * dx;
      fy += scale * dy;
      fz += scale * dz;
      energy += 2 * inv6 * (inv6 - 1); // half of 4(r^-12 - r^-6): each pair is seen from both ends
    }
    force[3 * (i - start)] = fx;
    force[3 * (i - start) + 1] = fy;
    force[3 * (i - start) + 2] = fz;
  }
  return energy;
}

function move(positions, velocities, start, end, force) {
  for (let i = start; i < end; i += 1) {
    for (let axis = 0; axis < 3; axis += 1) {
      const k = 3 * i + axis;
      velocities[k] += force[3 * (i - start) + axis] * dt;
      positions[k] += velocities[k] * dt;
    }
  }
}

function block(n, threads, index) {
  return [Math.floor((n * index) / threads), Math.floor((n * (index + 1)) / threads)];
}

if (isMainThread) {
  const { threads, size: n, iterations: steps, seed } = parseArgs(process.argv.slice(2), { threads: 2, size: 1536, iterations: 20, seed: 1 });
  const positions = new Float64Array(new SharedArrayBuffer(8 * 3 * n));
  const velocities = new Float64Array(new SharedArrayBuffer(8 * 3 * n));
  const energies = new Float64Array(new SharedArrayBuffer(8 * steps));
  initialize(positions, velocities, n, seed);
  const energyLock = new Mutex();
  const barrier = new Barrier(threads);
  const { seconds } = await runWorkers(new URL(import.meta.url), Array.from({ length: threads }, (_, index) =>
    ({ index, threads, n, steps, positions, velocities, energies, energyLock: energyLock.handle, barrier: barrier.handle })));
  // Not timed: the same steps, sequentially.
  const localPositions = new Float64Array(3 * n);
  const localVelocities = new Float64Array(3 * n);
  initialize(localPositions, localVelocities, n, seed);
  const force = new Float64Array(3 * n);
  let wrong = 0;
  let energyError = 0;
  for (let step = 0; step < steps; step += 1) {
    const energy = computeForces(localPositions, n, 0, n, force);
    move(localPositions, localVelocities, 0, n, force);
    energyError = Math.max(energyError, Math.abs(energies[step] - energy) / Math.max(1, Math.abs(energy)));
  }
  for (let k = 0; k < 3 * n; k += 1) {
    if (!Object.is(positions[k], localPositions[k]) || !Object.is(velocities[k], localVelocities[k])) wrong += 1;
  }
  report({
    app: 'water', variant: 'nsquared', threads, size: n, iterations: steps,
    problem: `${n} Lennard-Jones molecules, ${steps} steps, all pairs, molecule blocks per worker, two barriers per step`,
    seconds, verified: wrong === 0 && energyError <= 1e-9, wrong, energyError,
    energy: energies[steps - 1], checksum: checksumFloat64(positions),
  });
} else {
  const { index, threads, n, steps, positions, velocities, energies } = workerData;
  const energyLock = Mutex.from(workerData.energyLock);
  const barrier = Barrier.from(workerData.barrier, threads);
  const [start, end] = block(n, threads, index);
  const force = new Float64Array(3 * (end - start));
  for (let step = 0; step < steps; step += 1) {
    const energy = computeForces(positions, n, start, end, force);
    energyLock.lock();
    energies[step] += energy;
    energyLock.unlock();
    barrier.wait();
    move(positions, velocities, start, end, force);
    barrier.wait();
  }
}
