// Round 5 of user programs (test/fixtures/users6): kinds that matter on many nodes — a reduction tree and an
// all-to-all exchange over 8 workers, a barrier-phased stencil with the main thread in it, work-stealing deques,
// short-lived workers spawned by remote workers, allocation from every node —, plain worker_threads, no dsm API:
// under dsm on 4 to 8 nodes (hlrc and sc) they print what plain node prints and exit with its code.
// scripts/user-scale.mjs runs every user program this way on 4, 6 and 8 nodes.
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  nodes: number;
  protocol: 'hlrc' | 'sc';
}

const runs: readonly Run[] = [
  { file: 'reduce-tree.mjs', args: ['8', '4000'], nodes: 8, protocol: 'hlrc', status: 0, what: 'partial sums of 8 workers meeting pairwise up a binary tree of ready words, the total sent back down, a compareExchange maximum' },
  { file: 'all-to-all.mjs', args: ['8', '32', '3'], nodes: 8, protocol: 'hlrc', status: 0, what: 'every worker writing a block for every other into a shared matrix, a barrier, each reading its column' },
  { file: 'phased-stencil.mjs', args: ['7', '32', '8'], nodes: 8, protocol: 'hlrc', status: 0, what: 'the main thread and 7 workers in a Jacobi stencil, three sense-reversing barriers per iteration around an Atomics.add residual' },
  { file: 'steal-deque.mjs', args: ['8', '8', '9'], nodes: 4, protocol: 'sc', status: 0, what: 'per-worker deques under compareExchange locks, idle workers stealing from the others\' heads, a pending counter ending the run' },
  { file: 'remote-spawns.mjs', args: ['4', '3'], nodes: 6, protocol: 'hlrc', status: 0, what: 'workers spawning short-lived workers one after another and in a batch, half of them a grandchild' },
  { file: 'dom-exception.mjs', args: ['abort', '3'], nodes: 4, protocol: 'hlrc', status: 1, what: 'the main thread ending on an aborted signal\'s reason thrown at the top level, an uncaught DOMException (it printed `{}`)' },
  { file: 'dom-exception.mjs', args: ['rejection', '2'], nodes: 2, protocol: 'hlrc', status: 1, what: 'the main thread ending on an unhandled rejection with a TimeoutError, a DOMException (it printed `{}`)' },
  { file: 'throw-values.mjs', args: ['null', '2'], nodes: 3, protocol: 'hlrc', status: 1, stderrHas: 'null', what: 'the main thread throwing null in a timer (dsm printed nothing)' },
  { file: 'throw-values.mjs', args: ['object', '2'], nodes: 3, protocol: 'hlrc', status: 1, stderrHas: '{ code: 42, why: \'a plain object\' }', what: 'the main thread throwing a plain object at the top level' },
  { file: 'throw-values.mjs', args: ['string', '1'], nodes: 2, protocol: 'hlrc', status: 1, stderrHas: '(Use `node --trace-uncaught ...` to show where the exception was thrown)', what: 'the main thread throwing a string: its text and node\'s --trace-uncaught line (dsm printed it quoted, without the line)' },
  { file: 'relay-porter.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'a worker posting both ends of a MessageChannel to the main thread and ending, two workers ping-ponging on them (dsm threw DataCloneError: the ends were relayed through the ended thread)' },
  { file: 'relay-porter.mjs', nodes: 3, protocol: 'hlrc', status: 0, what: 'the same on 3 nodes (the ends were closed: `ping undefined pong undefined`)' },
  { file: 'relay-porter-queued.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'both ends of a MessageChannel with messages waiting on them posted to the main thread: relayed through the porter, what waited first, in order' },
  { file: 'relay-through.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'a port passed on through a worker that then ends, and a pair with messages waiting posted by a worker that then ends (dsm threw DataCloneError: the relays closed with the worker; now spliced at its manager)' },
  { file: 'relay-through.mjs', nodes: 3, protocol: 'hlrc', status: 0, what: 'the same on 3 nodes (the far worker on a third node)' },
  { file: 'relay-through.mjs', nodes: 4, protocol: 'hlrc', status: 0, what: 'the same on 4 nodes' },
  { file: 'alloc-spread.mjs', args: ['8', '6'], nodes: 8, protocol: 'sc', status: 0, what: 'every worker allocating buffers of many sizes and handing them round a ring of MessagePorts and back' },
];

for (const run of runs) {
  const dsmArgs = ['--nodes', String(run.nodes), '--protocol', run.protocol];
  test(`${dsmArgs.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(dsmArgs, run, 'test/fixtures/users6');
  });
}
