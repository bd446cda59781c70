// users20 (a helper's fidelity round): programs of kinds no earlier round had, run against plain node on 1, 2, 3
// (and for the larger ones 4) nodes and under sc. The ones here match node and cover what no earlier test does:
// a piscina-like pool (per-task MessageChannels, aborted queued tasks, growing and shrinking), a comlink-like RPC
// proxy over ports (transfers, proxied callbacks, a worker calling a worker), a synchronization kit (latches,
// a cyclic barrier over many phases, a writer-preferring rwlock), workers whose parent ends under them, a baton
// port passed hand to hand round a ring of workers, thousands of messages each ordered after shared stores, what
// monitoring code reads (memoryUsage, resourceUsage, ELU, clocks), and structuredClone of an ArrayBuffer transferred
// next to a SharedArrayBuffer. The programs that differ from node are listed in the round's report (and cut down
// in test/fixtures/users20/min).
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  dsm: readonly string[];
}

const runs: readonly Run[] = [
  { file: 'piscina-pool.mjs', args: ['120', '4'], dsm: ['--nodes', '3'], status: 0, what: 'a piscina-like pool: a MessageChannel per task, queued tasks aborted, growing to max and shrinking when idle' },
  { file: 'comlink-rpc.mjs', args: ['100'], dsm: ['--nodes', '3'], status: 0, what: 'a comlink-like RPC proxy over ports: out-of-order answers, transfers, a proxied callback, worker to worker' },
  { file: 'sync-kit.mjs', args: ['8', '25'], dsm: ['--nodes', '2', '--protocol', 'sc'], status: 0, what: 'countdown latches, a cyclic barrier over many phases and a writer-preferring rwlock in one buffer' },
  { file: 'orphan-subworkers.mjs', args: ['3'], dsm: ['--nodes', '3'], status: 0, what: 'workers whose launcher ends under them: their ports to the main thread close after what they sent' },
  { file: 'port-chain.mjs', args: ['8', '10'], dsm: ['--nodes', '4'], status: 0, what: 'a baton port (with a port riding in its message) passed hand to hand round a ring of workers' },
  { file: 'msg-store-order.mjs', args: ['4', '800', '2'], dsm: ['--nodes', '3'], status: 0, what: 'thousands of messages, each after plain shared stores the receiver must see; answers and relays likewise' },
  { file: 'proc-metrics.mjs', dsm: ['--nodes', '3'], status: 0, what: 'memoryUsage, resourceUsage, cpuUsage and ELU shapes, clocks forward between threads, parallelism alike' },
  { file: 'clone-transfer.mjs', dsm: ['--nodes', '2'], status: 0, what: 'structuredClone and postMessage of an ArrayBuffer transferred next to a SharedArrayBuffer' },
  // The round's finding 1 (fixed in session 46): a main thread's listeners for signals other than SIGINT/SIGTERM.
  { file: 'min/sighup-main.mjs', args: ['SIGHUP'], dsm: ['--nodes', '2'], status: 0, what: 'the main thread listens for SIGHUP and signals itself (the run died of it, exit 129)' },
  { file: 'min/sighup-main.mjs', args: ['SIGWINCH'], dsm: ['--nodes', '1'], status: 0, what: 'the main thread listens for SIGWINCH and signals itself (never heard)' },
];

for (const run of runs) {
  test(`${run.dsm.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(run.dsm, run, 'test/fixtures/users20');
  });
}
