// Atomics and lock costs over a real 2-node dsm cluster on loopback, each
// against plain node measured in the same run (issue 12):
//   counter      threads on node 0 and node 1 each Atomics.add one counter
//                word; ns per add, against 2 plain-node threads on one word
//                (plain node counts 10^6 each to be timeable; dsm counts
//                `iterations` each, since an add is a message today)
//   atomicAdd    one thread's Atomics.add on a word homed on its own node,
//                against native Atomics.add (each after a warm-up of 50,000
//                adds, best of 9 rounds; dsm: best of its 2 runs, plain: of 3)
//   notifyQuiet  that thread's Atomics.notify on the same word, nobody waiting,
//                against native (session 36: answered in the app thread while
//                the node holds the line; a call to the manager before)
//   lock         lock+unlock of a Mutex by a thread on node 1, no other
//                thread interested: managed by node 1 / by node 0
//   render       a row-counter render (bench/programs/render.mjs): 2 threads take
//                rows with Atomics.add and write them into a shared image;
//                wall time on 2 nodes (one thread each) against plain node, and
//                CPU time (of the processes the workers run in) over the same
//                span; both from the workers' common start to the last row,
//                start-up excluded under plain node as under dsm; at two sizes:
//                the small one (300 rows of 400 iterations, ~0.05 s plain, where
//                fixed costs weigh) and a large one of the issue's kind (2,000
//                rows of 1,000 iterations, ~0.6 s plain on a quiet machine)
//   histogram    2 threads (one a node) add 1 to pseudo-random buckets of one
//                table with Atomics.add, 2,000,000 each, the 64 buckets over the
//                16 lines of one page (bench/programs/histogram.mjs); wall time
//                against plain node (session 13: it took minutes before)
//   atomicsBarrier  Jacobi-like bands (2 threads, one a node, 1 MiB of doubles
//                each, 200 rounds) whose rounds end at a barrier written with
//                Atomics, as users of worker_threads write one
//                (bench/programs/atomics-barrier.mjs); wall time against plain
//                node (session 15: homes move at atomic lines; 23x before)
//   syncRoundTrip  a tryLock of a free mutex managed on the thread's node (one
//                app thread -> manager -> app thread trip), against a bare
//                futex ping-pong between two plain-node threads; from a second
//                run with DSM_LOCK_TOKENS=0, since with lock tokens in the node's
//                table (issue 12.3) that tryLock makes no request at all
//   allocSmall  µs per new SharedArrayBuffer(64) in a thread, kept alive,
//                against plain node (session 40: a small size allocated again
//                comes from the thread's cache, refilled in batches)
// Programs: bench/programs/atomics.mjs (dsm) and atomics-plain.mjs (plain node).
// Goals from issue 12 are reported, not asserted.

import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { DsmError, assert } from '../src/errors.js';
import { packageRoot } from '../src/package-info.js';

const protocol = 'hlrc';
const nodeCount = 2;
const regionBytes = '256m';
const plainCounterIterations = 1_000_000;
const plainRunCount = 3;
const runTimeoutMs = 300_000;
const goalCounterRatioMax = 3;
const goalAtomicAddRatioMax = 1.5;
const goalLockUsMax = 2;
const goalRoundTripRatioMax = 1.5;
const goalRenderRatioMax = 1.25;
const goalRenderCpuRatioMax = 1.5;
const renderArgs = ['2', '300', '1024', '400'];
/** The issue's kind of render (seconds, thousands of atomic ops): 2,000 rows, ~0.6 s plain with 2 threads on a quiet machine. */
const renderLargeArgs = ['2', '2000', '1024', '1000'];
/** A histogram: 2 threads, 2,000,000 Atomics.add each on 64 buckets over the 16 lines of one page (~0.1 s plain). */
const histogramArgs = ['2', '2000000'];
/** Jacobi with an Atomics-made barrier: 2 threads, 200 rounds, 131,072 doubles (1 MiB) a band (~0.1 s plain). */
const atomicsBarrierArgs = ['2', '200', '131072'];
/**
 * Atomics by line ownership (issue 12.2) make a dsm add cheap: the dsm counter
 * then counts as many as plain node. DSM_ATOMIC_LINES=0 (every op at its home,
 * as before) keeps the small count.
 */
const linesOn = process.env.DSM_ATOMIC_LINES !== '0';

const round = (value: number) => Math.round(value * 100) / 100;

function runJson(args: string[], what: string, env: Record<string, string> = {}): Record<string, number> {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: runTimeoutMs, env: { ...process.env, ...env } });
  if (result.error !== undefined || result.status !== 0) {
    throw new DsmError('DSM_ERR_BENCH', `${what} failed (${String(result.error ?? `exit ${result.status}`)}): ${result.stderr}`);
  }
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, number>;
  } catch {
    throw new DsmError('DSM_ERR_BENCH', `${what} printed no JSON line: ${result.stdout}`);
  }
}

function figure(figures: Record<string, number>, key: string, what: string): number {
  const value = figures[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new DsmError('DSM_ERR_BENCH', `${what} reported no ${key}`);
  return value;
}

export async function runAtomicsBench(options: { iterations: number }): Promise<Record<string, unknown>> {
  const { iterations } = options;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `runAtomicsBench: iterations must be a positive integer; got ${String(iterations)}`);
  }
  const programs = join(packageRoot, 'bench', 'programs');
  // Plain node's figures are the best of a few runs (as bench/apps/run.ts does): a baseline
  // inflated by a descheduled thread on a loaded machine would flatter dsm.
  const plainRuns = Array.from({ length: plainRunCount }, () =>
    runJson([join(programs, 'atomics-plain.mjs'), String(iterations), String(plainCounterIterations)], 'atomics-plain.mjs under plain node'));
  const plain: Record<string, number> = {};
  for (const key of ['counterSeconds', 'atomicAddNs', 'notifyQuietNs', 'futexRoundTripUsP50', 'allocSmallUs']) {
    plain[key] = Math.min(...plainRuns.map((run) => figure(run, key, 'atomics-plain.mjs')));
  }
  const counterIterations = linesOn ? plainCounterIterations : iterations;
  const dsmArgs = [join(packageRoot, 'bin', 'dsm.js'), 'run', '--nodes', String(nodeCount), '--protocol', protocol, '--placement', 'roundRobin',
    '--region-bytes', regionBytes, join(programs, 'atomics.mjs'), String(iterations), String(counterIterations)];
  const dsm = runJson(dsmArgs, `atomics.mjs on ${nodeCount} nodes`);
  const managerPath = runJson(dsmArgs, `atomics.mjs on ${nodeCount} nodes with DSM_LOCK_TOKENS=0`, { DSM_LOCK_TOKENS: '0' });
  assert(dsm.iterations === iterations && dsm.nodeCount === nodeCount, 'the dsm run did what was asked');
  const counterNsPerAdd = figure(dsm, 'counterSeconds', 'atomics.mjs') * 1e9 / counterIterations;
  /** One render size: plain node's best of plainRunCount runs (wall and CPU apart), then one dsm run. */
  const render = (args: string[]) => {
    const plainRuns = Array.from({ length: plainRunCount }, () => runJson([join(programs, 'render.mjs'), ...args], 'render.mjs under plain node'));
    const dsmRun = runJson([join(packageRoot, 'bin', 'dsm.js'), 'run', '--nodes', String(nodeCount), '--protocol', protocol,
      '--region-bytes', regionBytes, join(programs, 'render.mjs'), ...args], `render.mjs ${args.join(' ')} on ${nodeCount} nodes`);
    return {
      plainSeconds: Math.min(...plainRuns.map((run) => figure(run, 'seconds', 'render.mjs'))),
      plainCpuSeconds: Math.min(...plainRuns.map((run) => figure(run, 'cpuSeconds', 'render.mjs'))),
      seconds: figure(dsmRun, 'seconds', 'render.mjs'),
      cpuSeconds: figure(dsmRun, 'cpuSeconds', 'render.mjs'),
    };
  };
  const small = render(renderArgs);
  const renderPlainSeconds = small.plainSeconds;
  const renderPlainCpuSeconds = small.plainCpuSeconds;
  const renderSeconds = small.seconds;
  const renderCpuSeconds = small.cpuSeconds;
  const large = render(renderLargeArgs);
  // A program that reports its own `seconds`: plain node's best of plainRunCount runs, then one dsm run.
  const timedAgainstPlain = (file: string, args: string[]): { seconds: number; plainSeconds: number } => {
    const plainRuns = Array.from({ length: plainRunCount }, () => runJson([join(programs, file), ...args], `${file} under plain node`));
    const run = runJson([join(packageRoot, 'bin', 'dsm.js'), 'run', '--nodes', String(nodeCount), '--protocol', protocol,
      '--region-bytes', regionBytes, join(programs, file), ...args], `${file} ${args.join(' ')} on ${nodeCount} nodes`);
    return { seconds: figure(run, 'seconds', file), plainSeconds: Math.min(...plainRuns.map((plainRun) => figure(plainRun, 'seconds', file))) };
  };
  // A histogram (threads cycling over the 16 lines of one page), and a stencil whose rounds end at a barrier written with Atomics.
  const { seconds: histogramSeconds, plainSeconds: histogramPlainSeconds } = timedAgainstPlain('histogram.mjs', histogramArgs);
  const { seconds: atomicsBarrierSeconds, plainSeconds: atomicsBarrierPlainSeconds } = timedAgainstPlain('atomics-barrier.mjs', atomicsBarrierArgs);
  const plainCounterNsPerAdd = figure(plain, 'counterSeconds', 'atomics-plain.mjs') * 1e9 / plainCounterIterations;
  // Best of both dsm runs (plain node's is the best of plainRunCount runs): one more chance against a loaded moment.
  const atomicAddOwnedNs = Math.min(figure(dsm, 'atomicAddOwnedNs', 'atomics.mjs'), figure(managerPath, 'atomicAddOwnedNs', 'atomics.mjs'));
  const plainAtomicAddNs = figure(plain, 'atomicAddNs', 'atomics-plain.mjs');
  const notifyQuietNs = Math.min(figure(dsm, 'notifyQuietNs', 'atomics.mjs'), figure(managerPath, 'notifyQuietNs', 'atomics.mjs'));
  const plainNotifyQuietNs = figure(plain, 'notifyQuietNs', 'atomics-plain.mjs');
  const syncRoundTripUsP50 = figure(managerPath, 'syncRoundTripUsP50', 'atomics.mjs');
  const futexRoundTripUsP50 = figure(plain, 'futexRoundTripUsP50', 'atomics-plain.mjs');
  const allocSmallUs = Math.min(figure(dsm, 'allocSmallUs', 'atomics.mjs'), figure(managerPath, 'allocSmallUs', 'atomics.mjs'));
  const plainAllocSmallUs = figure(plain, 'allocSmallUs', 'atomics-plain.mjs');
  const lockLocalUsP50 = figure(dsm, 'lockLocalUsP50', 'atomics.mjs');
  const lockRemoteUsP50 = figure(dsm, 'lockRemoteUsP50', 'atomics.mjs');
  const result = {
    iterations,
    counterNsPerAdd: round(counterNsPerAdd),
    plainCounterNsPerAdd: round(plainCounterNsPerAdd),
    counterRatio: round(counterNsPerAdd / plainCounterNsPerAdd),
    atomicAddOwnedNs,
    plainAtomicAddNs,
    atomicAddRatio: round(atomicAddOwnedNs / plainAtomicAddNs),
    notifyQuietNs,
    plainNotifyQuietNs,
    notifyQuietRatio: round(notifyQuietNs / plainNotifyQuietNs),
    lockLocalUsP50,
    lockRemoteUsP50,
    syncRoundTripUsP50,
    futexRoundTripUsP50,
    syncRoundTripRatio: round(syncRoundTripUsP50 / futexRoundTripUsP50),
    allocSmallUs,
    plainAllocSmallUs,
    allocSmallRatio: round(allocSmallUs / plainAllocSmallUs),
    renderSeconds: round(renderSeconds),
    renderPlainSeconds: round(renderPlainSeconds),
    renderRatio: round(renderSeconds / renderPlainSeconds),
    renderCpuSeconds: round(renderCpuSeconds),
    renderPlainCpuSeconds: round(renderPlainCpuSeconds),
    renderCpuRatio: round(renderCpuSeconds / renderPlainCpuSeconds),
    histogramSeconds: round(histogramSeconds),
    histogramPlainSeconds: round(histogramPlainSeconds),
    histogramRatio: round(histogramSeconds / histogramPlainSeconds),
    atomicsBarrierSeconds: round(atomicsBarrierSeconds),
    atomicsBarrierPlainSeconds: round(atomicsBarrierPlainSeconds),
    atomicsBarrierRatio: round(atomicsBarrierSeconds / atomicsBarrierPlainSeconds),
    renderLargeSeconds: round(large.seconds),
    renderLargePlainSeconds: round(large.plainSeconds),
    renderLargeRatio: round(large.seconds / large.plainSeconds),
    renderLargeCpuSeconds: round(large.cpuSeconds),
    renderLargePlainCpuSeconds: round(large.plainCpuSeconds),
    renderLargeCpuRatio: round(large.cpuSeconds / large.plainCpuSeconds),
    goals: {
      renderRatioMax: goalRenderRatioMax, renderMet: renderSeconds <= goalRenderRatioMax * renderPlainSeconds,
      renderCpuRatioMax: goalRenderCpuRatioMax, renderCpuMet: renderCpuSeconds <= goalRenderCpuRatioMax * renderPlainCpuSeconds,
      renderLargeMet: large.seconds <= goalRenderRatioMax * large.plainSeconds,
      renderLargeCpuMet: large.cpuSeconds <= goalRenderCpuRatioMax * large.plainCpuSeconds,
      counterRatioMax: goalCounterRatioMax, counterMet: counterNsPerAdd <= goalCounterRatioMax * plainCounterNsPerAdd,
      atomicAddRatioMax: goalAtomicAddRatioMax, atomicAddMet: atomicAddOwnedNs <= goalAtomicAddRatioMax * plainAtomicAddNs,
      lockUsMax: goalLockUsMax, lockMet: Math.max(lockLocalUsP50, lockRemoteUsP50) <= goalLockUsMax,
      syncRoundTripRatioMax: goalRoundTripRatioMax, syncRoundTripMet: syncRoundTripUsP50 <= goalRoundTripRatioMax * futexRoundTripUsP50,
    },
    config: {
      protocol, nodeCount, placement: 'roundRobin', syncRoundTripFrom: 'DSM_LOCK_TOKENS=0', regionBytes, counterHome: 0, dsmCounterIterations: counterIterations, atomicLines: linesOn, render: renderArgs.join(' '), renderLarge: renderLargeArgs.join(' '), histogram: histogramArgs.join(' '), atomicsBarrier: atomicsBarrierArgs.join(' '), plainCounterIterations, plainRunCount,
      cpuCount: cpus().length, loadAverage1m: round(loadavg()[0] ?? 0), nodeVersion: process.version,
    },
  };
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runAtomicsBench({ iterations: Number(process.argv[2] ?? 2000) })));
}
