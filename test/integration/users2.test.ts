// Round 2 of user-written programs (test/fixtures/users2: stencils, sorts, a prefix sum, a matrix multiply, a
// worker pool, more threads than nodes, allocation churn, the environment; plain worker_threads,
// SharedArrayBuffer, Atomics, MessagePorts, no dsm API): each prints the same under `dsm run` as under node and
// ends with the same exit code. Most run on 3 nodes under hlrc, some on 2, 4 or 8 nodes and some under sc; the
// arguments pick small sizes (threads first).
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  nodes: number;
  protocol: 'hlrc' | 'sc';
}

const runs: readonly Run[] = [
  { file: 'heat-sense.mjs', args: ['4', '40', '10'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a 2-D heat stencil whose workers meet at a sense-reversing barrier' },
  { file: 'redblack-sor.mjs', args: ['3', '40', '6'], nodes: 3, protocol: 'hlrc', status: 0, what: 'red-black SOR in place, two barriers (arrivals and generation counters) per iteration' },
  { file: 'wave-flags.mjs', args: ['4', '2000', '40'], nodes: 4, protocol: 'hlrc', status: 0, what: 'a 1-D wave whose workers wait only for their neighbours\' progress words' },
  { file: 'main-band.mjs', args: ['2', '40', '10'], nodes: 2, protocol: 'sc', status: 0, what: 'a stencil whose main thread computes a band and waits at the workers\' barrier' },
  { file: 'radix-lsd.mjs', args: ['3', '20000'], nodes: 3, protocol: 'hlrc', status: 0, what: 'an LSD radix sort with per-worker histograms summed by Atomics.add' },
  { file: 'oddeven-blocks.mjs', args: ['4', '20000'], nodes: 2, protocol: 'sc', status: 0, what: 'an odd-even transposition sort of blocks, a barrier between phases' },
  { file: 'samplesort-ports.mjs', args: ['8', '20000'], nodes: 8, protocol: 'hlrc', status: 0, what: 'a sample sort whose workers exchange buckets over a mesh of MessagePorts' },
  { file: 'prefix-sum.mjs', args: ['3', '50000'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a two-pass parallel prefix sum' },
  { file: 'matmul-counter.mjs', args: ['3', '60'], nodes: 3, protocol: 'sc', status: 0, what: 'a matrix multiply whose workers take rows from an Atomics.add counter' },
  { file: 'task-pool.mjs', args: ['3', '30', '2000'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a worker pool: tasks carrying SharedArrayBuffers posted to idle workers' },
  { file: 'bitonic.mjs', args: ['4', '12'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a bitonic sort, a barrier after each of its 78 steps' },
  { file: 'halo-ports.mjs', args: ['4', '40', '10'], nodes: 4, protocol: 'hlrc', status: 0, what: 'an MPI-style stencil: private bands, halo rows swapped through MessagePorts' },
  { file: 'interleaved-bytes.mjs', args: ['4', '20000', '6'], nodes: 3, protocol: 'hlrc', status: 0, what: 'bytes, halves and floats of one word owned by different workers; Atomics.add on bytes' },
  { file: 'interleaved-bytes.mjs', args: ['3', '8000', '3'], nodes: 3, protocol: 'sc', status: 0, what: 'bytes, halves and floats of one word owned by different workers; Atomics.add on bytes' },
  { file: 'alloc-pingpong.mjs', args: ['3', '60', '65536'], nodes: 3, protocol: 'hlrc', status: 0, what: 'workers allocating SharedArrayBuffers of many sizes, posting them to the main thread and dropping them' },
  { file: 'result-records.mjs', args: ['3', '30000'], nodes: 3, protocol: 'hlrc', status: 0, what: 'typed arrays (small ones and a 128 KiB one) posted back as results, read through their .buffer (new Float64Array, DataView, Buffer.from)' },
  { file: 'ring-buffer.mjs', args: ['2', '2', '60', '4'], nodes: 3, protocol: 'hlrc', status: 0, what: 'producers and consumers over a bounded ring buffer with a lock and not-full/not-empty words' },
  { file: 'fail-in-barrier.mjs', args: ['4', '40', '3'], nodes: 3, protocol: 'hlrc', status: 2, what: 'a worker throwing mid-stencil while the others sleep at the barrier; the main thread exits 2 from its error handler' },
  { file: 'table-workerdata.mjs', args: ['3', '20000', '30000'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a 160 KB lookup table copied in workerData, rewrapped as new Float64Array(table.buffer)' },
  { file: 'env-workers.mjs', args: ['4'], nodes: 3, protocol: 'hlrc', status: 0, what: 'workers configured through process.env, set by their creator (main or a worker) before `new Worker`' },
  { file: 'spawn-tree-lock.mjs', args: ['4', '1', '50'], nodes: 4, protocol: 'hlrc', status: 0, what: '8 threads on 4 nodes (workers spawning workers) appending under a compareExchange lock' },
];

for (const run of runs) {
  const dsmArgs = ['--nodes', String(run.nodes), '--protocol', run.protocol];
  test(`${dsmArgs.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(dsmArgs, run, 'test/fixtures/users2');
  });
}
