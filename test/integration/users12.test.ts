// Round 10 of user programs (test/fixtures/users12, session 37): scale. 24–64 workers at once, hundreds churned,
// worker trees of 3–5 levels, thousands of small SharedArrayBuffers, 512 MiB of them written in bands, hundreds of
// lock words, thousands of wait/notify hand-offs, 100,000 small messages, messages of megabytes, hundreds to tens of
// thousands of pending Atomics.waitAsync. Plain worker_threads, no dsm API: under dsm they print what plain node
// prints and exit with its code. The round found one bug: a node's in-flight synchronization requests were bounded
// at 4,096, an invariant, and a program with 4,097 pending waitAsync failed with DSM_ERR_INTERNAL (now 65,536,
// syncInFlightCountMax, past which DSM_ERR_SYNC_REQUESTS names the limit). The long ones are left to the survey
// (scripts/user-times.mjs): lock-per-record programs (bucket-locks, lock-table) run 20–100× plain node.
// waitasync-many.mjs is not run here: under plain Node 24 it now and then ends with exit code 13 itself (its timed
// waitAsync keep no thread alive there once the workers are gone).
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  nodes: number;
}

const runs: readonly Run[] = [
  { file: 'waitasync-pending-limit.mjs', args: ['5000'], nodes: 2, status: 0, what: '5,000 Atomics.waitAsync pending at once on one node (past the old limit of 4,096), then notified' },
  { file: 'msg-flood.mjs', args: ['4', '5000'], nodes: 3, status: 0, what: 'small posts from 4 producers to the main thread in order, every 10th relayed to a consumer' },
  { file: 'many-sabs.mjs', nodes: 2, status: 0, what: 'thousands of small SharedArrayBuffers posted to workers in batches and answered with new ones' },
];

for (const run of runs) {
  const dsmArgs = ['--nodes', String(run.nodes)];
  test(`${dsmArgs.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(dsmArgs, run, 'test/fixtures/users12');
  });
}
