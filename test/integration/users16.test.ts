// users16 (session 42, a helper's round): 23 programs of kinds no earlier round had (BigInt64 waits and
// waitAsync, compareExchange on all eight integer kinds, a ticket lock on wrapping Uint16 counters, notifies
// through aliasing views, a Michael-Scott queue with tagged BigInt64 pointers, RCU and seqlocks, sparse solves and
// label propagation with Atomics, a full mesh of ports between running workers, BroadcastChannel elections,
// eleven ways a worker ends, a main thread leaving running workers four ways, workers that fail to load), run
// against plain node on 1, 2 and 3 nodes under both protocols (docs/EVALUATION.md "Session 42"). Every run printed
// what plain node printed; the few here guard what no earlier test covers, the others are kept for the survey.
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  dsm: readonly string[];
}

const runs: readonly Run[] = [
  { file: 'lifecycle-matrix.mjs', dsm: ['--nodes', '2'], status: 0, what: 'eleven workers ending eleven ways: error events, terminate results and exit codes' },
  { file: 'cas-kinds.mjs', dsm: ['--nodes', '2'], status: 0, what: 'CAS loops, wrapping adds and xor on all eight integer kinds in one buffer' },
  { file: 'waitasync-bigint.mjs', dsm: ['--nodes', '3'], status: 0, what: 'wait, waitAsync and notify on BigInt64 words: timeouts, mismatches, counts' },
  { file: 'notify-aliasing.mjs', dsm: ['--nodes', '2', '--protocol', 'sc'], status: 0, what: 'a notify wakes by address: aliasing views, an Int32 notify on a BigInt64 word' },
  { file: 'ticket-u16-wrap.mjs', dsm: ['--nodes', '2'], status: 0, what: 'a ticket lock whose Uint16 counters wrap past 65535' },
  { file: 'port-mesh.mjs', dsm: ['--nodes', '3'], status: 0, what: 'a mesh of channels between running workers: shared views and transferred ArrayBuffers' },
  { file: 'main-leaves.mjs', args: ['exitcode'], dsm: ['--nodes', '2'], status: 4, what: 'the main thread sets exitCode 4 and returns while a worker computes' },
  { file: 'main-leaves.mjs', args: ['tla'], dsm: ['--nodes', '2'], status: 13, what: 'an unsettled top-level await with only an unref\'d worker left' },
];

for (const run of runs) {
  test(`${run.dsm.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(run.dsm, run, 'test/fixtures/users16');
  });
}
