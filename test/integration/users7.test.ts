// Round 5 of user programs (test/fixtures/users7): kinds the earlier rounds did not cover — Atomics on
// BigInt64Array, DataView records, crowds of Atomics.waitAsync waiters and errors thrown in their callbacks,
// events.on/once over MessagePorts, receiveMessageOnPort drains, a lock holder terminated, workers three levels
// deep, a k-way merge, an MPMC ring with backpressure, a seeded Monte Carlo, a breadth-first search with Atomics.or
// visited bits, a writer-first readers–writer lock, buffers growing across phases, process.exitCode with workers
// running, a growable buffer read while it grows, a spin lock with Atomics.pause (Node 24) —, plain worker_threads,
// no dsm API: under dsm on 1 to 8 nodes (hlrc and sc) they print what plain node prints and exit with its code.
import { test } from 'node:test';
import workerThreads from 'node:worker_threads';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  nodes: number;
  protocol: 'hlrc' | 'sc';
  /** The worker_threads function the program needs: skipped on a Node without it. */
  needs?: string;
}

const runs: readonly Run[] = [
  { file: 'bigint-atomics.mjs', args: ['4', '150'], nodes: 4, protocol: 'sc', status: 0, what: 'BigInt64Array counters past 2^32, a compareExchange ticket lock and a baton passed with wait/notify on a bigint element' },
  { file: 'dataview-records.mjs', args: ['8', '60'], nodes: 8, protocol: 'hlrc', status: 0, what: 'records written through DataViews at offsets (float64, big- and little-endian ints, bigint64), published with Atomics, checked by a neighbour' },
  { file: 'wait-async-crowd.mjs', args: ['6', '5'], nodes: 8, protocol: 'hlrc', status: 0, what: 'many Atomics.waitAsync waiters on one word from every thread, some timing out, notify counts summing to the waiters' },
  { file: 'wait-async-throws.mjs', args: ['both'], nodes: 2, protocol: 'hlrc', status: 1, stderrHas: 'RangeError: main\'s callback threw after ok', what: 'an error thrown in a waitAsync callback in a worker (its error event) and then in the main thread (the process dies)' },
  { file: 'wait-async-throws.mjs', args: ['worker'], nodes: 3, protocol: 'sc', status: 0, what: 'an error thrown in a worker\'s waitAsync callback: error event, exit 1, the program carries on' },
  { file: 'port-iteration.mjs', args: ['3', '5'], nodes: 3, protocol: 'hlrc', status: 0, what: 'ports read with for await (events.on), events.once for online, exit and a last message, an aborted iteration' },
  { file: 'port-iteration.mjs', args: ['2', '4'], nodes: 1, protocol: 'hlrc', status: 0, what: 'the same on one node' },
  { file: 'receive-drain.mjs', args: ['3', '12', '8'], nodes: 4, protocol: 'hlrc', status: 0, what: 'batches drained with receiveMessageOnPort loops on both sides of a port, each side blocked in Atomics.wait between them' },
  { file: 'receive-drain.mjs', args: ['2', '10', '6'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'lock-holder-terminated.mjs', args: ['3'], nodes: 3, protocol: 'hlrc', status: 0, what: 'the holder of an Atomics lock terminated while asleep: the others see the lock word still held, nothing hangs' },
  { file: 'lock-holder-terminated.mjs', args: ['2'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'spawn-three-deep.mjs', args: ['2'], nodes: 4, protocol: 'hlrc', status: 0, what: 'workers spawning workers three levels deep on one buffer, leaves meeting at an Atomics barrier' },
  { file: 'kway-merge.mjs', args: ['4', '30000'], nodes: 4, protocol: 'hlrc', status: 0, what: 'runs sorted in place, then parts merged by value with k-way min-heaps into a second shared array' },
  { file: 'ring-backpressure.mjs', args: ['2', '2', '200', '8'], nodes: 3, protocol: 'hlrc', status: 0, what: 'producers and consumers on a small bounded MPMC ring of slot sequences, both sides waiting on full and empty' },
  { file: 'monte-carlo.mjs', args: ['4', '10000', '4'], nodes: 4, protocol: 'hlrc', status: 0, what: 'per-worker BigInt xorshift seeds, hit counts with Atomics.add, float sums under a spin lock' },
  { file: 'bfs-frontier.mjs', args: ['3', '6000', '4'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a level-synchronous BFS: frontier chunks taken with Atomics.add, vertices claimed with Atomics.or on a visited bitmap' },
  { file: 'rwlock-writer-first.mjs', args: ['3', '2', '100'], nodes: 4, protocol: 'hlrc', status: 0, what: 'a writer-preferring readers–writer lock: writers move amounts between accounts, readers never see the total change' },
  { file: 'buffer-phases.mjs', args: ['3', '3', '1'], nodes: 3, protocol: 'hlrc', status: 0, what: 'buffers of 1, 4 and 16 MiB allocated phase after phase, filled by workers in stripes and dropped, one small buffer kept' },
  { file: 'exitcode-running.mjs', args: ['finish', '3'], nodes: 2, protocol: 'hlrc', status: 4, what: 'process.exitCode set by a main thread that returns while its workers still work and post' },
  { file: 'exitcode-running.mjs', args: ['exit', '3'], nodes: 3, protocol: 'hlrc', status: 4, what: 'process.exitCode set, then process.exit() while workers sleep in Atomics.wait' },
  { file: 'growable-readers.mjs', args: ['3', '4'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a growable buffer grown step by step while workers read it through length-tracking and fixed views, grown by a worker too (its workers start on its node)' },
  { file: 'float16-views.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'Float16Array views of a shared buffer in workerData, large and small Float16Arrays in messages both ways (Node 24; dsm threw DSM_ERR_FRAME naming an unknown view kind)' },
  { file: 'thread-names.mjs', args: ['3'], nodes: 3, protocol: 'hlrc', status: 0, what: 'Node 24\'s threadName of the main thread, of named and unnamed workers\' handles and insides, null once ended; a worker ended by its Symbol.asyncDispose (dsm showed \'WorkerThread\' for the main thread, and a remote handle\'s threadName threw)' },
  { file: 'process-identity.mjs', args: ['3', 'extra'], nodes: 3, protocol: 'hlrc', status: 0, what: 'argv, argv0, execArgv, import.meta.filename, send, title and TTYs as the main thread and each worker read them (a worker on another node read argv0 as the path its node was spawned by)' },
  { file: 'emitter-errors.mjs', args: ['emitter'], nodes: 2, protocol: 'hlrc', status: 1, what: 'an \'error\' event with no listener on an EventEmitter in a timer: node\'s arrow at node:events\' throw and where it was emitted (dsm pointed at the error\'s making and left out the emit)' },
  { file: 'emitter-errors.mjs', args: ['subclass'], nodes: 1, protocol: 'hlrc', status: 1, what: 'the same on a subclass, "Emitted \'error\' event on Pipeline instance"' },
  { file: 'emitter-errors.mjs', args: ['enoent'], nodes: 3, protocol: 'hlrc', status: 1, what: 'readFileSync\'s ENOENT thrown in a timer: the arrow into node:fs, the code among the properties (dsm printed no arrow and `Error [ENOENT]:`)' },
  { file: 'emitter-errors.mjs', args: ['coded'], nodes: 2, protocol: 'hlrc', status: 1, stderrHas: 'Error: coded', what: 'an Error the program gave a code, thrown in a timer: its name as node shows it (dsm printed `Error [E_APP]: coded`)' },
  { file: 'post-to-thread.mjs', args: ['3'], nodes: 1, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'postMessageToThread by dsm\'s thread ids: a round main -> workers -> main, each answering the source it heard; to itself, to no thread and to a worker with no listener fail as Node\'s (the main thread posting to its worker got ERR_WORKER_MESSAGING_SAME_THREAD)' },
  { file: 'post-to-thread.mjs', args: ['2'], nodes: 1, protocol: 'sc', status: 0, needs: 'postMessageToThread', what: 'the same under sc' },
  { file: 'post-to-thread.mjs', args: ['3'], nodes: 2, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'the round across 2 nodes (session 39; refused before): every hop to a thread of another node, answered as Node answers' },
  { file: 'post-to-thread.mjs', args: ['4'], nodes: 3, protocol: 'sc', status: 0, needs: 'postMessageToThread', what: 'the same on 3 nodes under sc' },
  { file: 'post-to-thread-more.mjs', args: ['20'], nodes: 1, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'postMessageToThread with shared writes before it, a buffer and a port in it, to a worker\'s worker, to a throwing listener, with a timeout, a refused timeout and an uncloneable value' },
  { file: 'post-to-thread-more.mjs', args: ['20'], nodes: 2, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'the same across 2 nodes (the listener and the parent on node 1)' },
  { file: 'post-to-thread-more.mjs', args: ['20'], nodes: 3, protocol: 'sc', status: 0, needs: 'postMessageToThread', what: 'the same on 3 nodes under sc (the sleeper on another node too)' },
  // Under node these posts never settle (the program hangs); on another node dsm answers once the thread ended.
  { file: 'post-to-ended.mjs', nodes: 3, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', expected: 'terminated: ERR_WORKER_MESSAGING_FAILED\nended: ERR_WORKER_MESSAGING_FAILED\n', what: 'a post to a thread on another node that is terminated, or ends, before it reads it: ERR_WORKER_MESSAGING_FAILED, not a promise that never settles' },
  // users14 (session 39): a post whose target never reads it kept the poster alive for good (the run never ended); a
  // post to an ended worker's id let the main thread's loop run dry before the answer (exit 13).
  { file: 'ptt-unsettled-exit.mjs', args: ['1', '1'], nodes: 2, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'a post to a worker of the poster\'s node that is terminated before it reads it: it never settles and the run ends, as under node' },
  { file: 'ptt-unsettled-exit.mjs', args: ['2', '0'], nodes: 1, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'the same on one node' },
  { file: 'ptt-after-terminate.mjs', args: ['20', '0', '0'], nodes: 2, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'posts to the id of a worker just terminated, nothing else keeping the main thread alive: FAILED each time, as under node' },
  { file: 'ptt-after-terminate.mjs', args: ['10', '3', '1'], nodes: 3, protocol: 'sc', status: 0, needs: 'postMessageToThread', what: 'the same with posts queued before the terminate, 3 nodes, sc' },
  { file: 'worker-introspection.mjs', args: ['2'], nodes: 3, protocol: 'hlrc', status: 0, what: 'getHeapSnapshot (and Node 24\'s getHeapStatistics, cpuUsage and CPU and heap profiles) of workers on other nodes, asked of their Node there (they rejected with DSM_ERR_INVALID_OPTION before), and of ended ones (ERR_WORKER_NOT_RUNNING)' },
  // users14 (session 39): a post whose target never reads it kept the poster alive for good (the run never ended); a
  // post to an ended worker's id let the main thread's loop run dry before the answer (exit 13).
  { file: 'ptt-unsettled-exit.mjs', args: ['1', '1'], nodes: 2, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'a post to a worker of the poster\'s node that is terminated before it reads it: it never settles and the run ends, as under node' },
  { file: 'ptt-unsettled-exit.mjs', args: ['2', '0'], nodes: 1, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'the same on one node' },
  { file: 'ptt-after-terminate.mjs', args: ['20', '0', '0'], nodes: 2, protocol: 'hlrc', status: 0, needs: 'postMessageToThread', what: 'posts to the id of a worker just terminated, nothing else keeping the main thread alive: FAILED each time, as under node' },
  { file: 'ptt-after-terminate.mjs', args: ['10', '3', '1'], nodes: 3, protocol: 'sc', status: 0, needs: 'postMessageToThread', what: 'the same with posts queued before the terminate, 3 nodes, sc' },
  { file: 'worker-introspection.mjs', args: ['1'], nodes: 1, protocol: 'hlrc', status: 0, what: 'the same on one node (Node\'s own)' },
  { file: 'spin-pause.mjs', args: ['4', '1000'], nodes: 2, protocol: 'hlrc', status: 0, what: 'a spin lock with backoff through Atomics.pause where Node has it, a plain counter under it' },
];

for (const run of runs) {
  const dsmArgs = ['--nodes', String(run.nodes), '--protocol', run.protocol];
  const skip = run.needs !== undefined && typeof (workerThreads as unknown as Record<string, unknown>)[run.needs] !== 'function';
  test(`${dsmArgs.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, { skip }, () => {
    checkUserProgram(dsmArgs, run, 'test/fixtures/users7');
  });
}
