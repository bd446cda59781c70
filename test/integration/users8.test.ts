// Round 6 of user programs (test/fixtures/users8): kinds the earlier rounds did not cover — a game of life on
// bytes with double buffering, a power iteration over a CSR sparse matrix with rows taken by Atomics.add, a
// three-stage text pipeline over SPSC byte rings (TextEncoder.encodeInto into and TextDecoder straight from shared
// memory, streaming decodes of split characters), a merge sort run as a task graph with continuation counters,
// Treiber stacks with tagged heads, a lock-free open-addressing hash table of words with a shared string arena, a
// seqlock read with Atomics only, Node's cloneable objects (Blob, File, KeyObject, CryptoKey, BlockList,
// SocketAddress, histograms) and transferred web streams, a parcel of many views at odd offsets sent round a ring
// over channels the workers made, workers living on timers with Atomics.wait inside their callbacks, and workers
// from eval code and data: URLs —, plain worker_threads, no dsm API: under dsm on 1 to 8 nodes (hlrc and sc) they
// print what plain node prints and exit with its code.
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  nodes: number;
  protocol: 'hlrc' | 'sc';
  /** Why the run is skipped: a finding not fixed yet. */
  skip?: string;
}

const runs: readonly Run[] = [
  { file: 'life-double.mjs', args: ['4', '64', '12'], nodes: 4, protocol: 'hlrc', status: 0, what: 'a game of life on a byte grid, double buffered, bands split at arbitrary byte offsets, a wait/notify barrier per generation' },
  { file: 'life-double.mjs', args: ['3', '61', '20'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'csr-spmv.mjs', args: ['4', '2000', '5'], nodes: 4, protocol: 'hlrc', status: 0, what: 'a power iteration over a CSR matrix in one buffer: row chunks taken with Atomics.add, per-worker partial norms, one worker normalizing between two barriers' },
  { file: 'csr-spmv.mjs', args: ['3', '2000', '4'], nodes: 1, protocol: 'sc', status: 0, what: 'the same on one node under sc' },
  { file: 'text-pipeline.mjs', args: ['40', '101'], nodes: 3, protocol: 'hlrc', status: 0, what: 'three stages over two SPSC byte rings: UTF-8 frames encoded into shared memory with encodeInto, decoded from it with TextDecoder, read back in 7-byte streaming pieces' },
  { file: 'text-pipeline.mjs', args: ['40', '64'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc with a smaller ring' },
  { file: 'dag-mergesort.mjs', args: ['3', '60000', '2000'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a merge sort as a task graph: leaves sorted in place, parents queued by whoever brings their pending count to zero with Atomics.sub' },
  { file: 'dag-mergesort.mjs', args: ['3', '30000', '4000'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'treiber-stack.mjs', args: ['8', '150', '5'], nodes: 8, protocol: 'hlrc', status: 0, what: 'two Treiber stacks (free and full) with tagged heads swapped by compareExchange over a pool smaller than the workers\' appetite' },
  { file: 'treiber-stack.mjs', args: ['2', '200', '4'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'hash-counts.mjs', args: ['2', '400', '1024'], nodes: 2, protocol: 'hlrc', status: 0, what: 'a word count in a lock-free open-addressing table: slots claimed by compareExchange, keys copied into a shared arena, counts by Atomics.add, decoded by the main thread' },
  { file: 'hash-counts.mjs', args: ['3', '3000', '4096'], nodes: 1, protocol: 'hlrc', status: 0, what: 'the same, larger, on one node' },
  { file: 'hash-counts.mjs', args: ['3', '600', '4096'], nodes: 3, protocol: 'hlrc', status: 0, what: 'the same with a worker on each of 3 nodes (its page lines were pulled op after op: 30 line grants an operation, docs/PROTOCOL.md "Pulls that bring nothing stop")' },
  { file: 'seqlock.mjs', args: ['2', '2', '40'], nodes: 3, protocol: 'hlrc', status: 0, what: 'a seqlock over Int32 and BigInt64 fields read with Atomics.load only: no torn snapshot, no version going back' },
  { file: 'seqlock.mjs', args: ['1', '2', '50'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'node-cloneables.mjs', args: ['2', '6'], nodes: 1, protocol: 'hlrc', status: 0, what: 'Blob, File, KeyObject, CryptoKey, BlockList, SocketAddress, a histogram and Errors with causes posted to workers; ReadableStreams transferred both ways' },
  { file: 'node-cloneables.mjs', args: ['2', '6'], nodes: 2, protocol: 'hlrc', status: 0, skip: 'a limit (docs/LIMITS.md): Node\'s cloneable objects and transferred streams cannot cross nodes; posted to a worker on another node they throw DSM_ERR_NOT_DSM_MEMORY', what: 'the same with the workers on another node' },
  { file: 'host-workerdata.mjs', nodes: 2, protocol: 'hlrc', status: 0, what: 'a Blob and a KeyObject in workerData: the workers start on their creator\'s node and read them (dsm\'s new Worker threw DSM_ERR_NOT_DSM_MEMORY where one would have gone to node 1)' },
  { file: 'views-ring.mjs', args: ['8', '2'], nodes: 8, protocol: 'hlrc', status: 0, what: 'a parcel of two buffers and many views at odd offsets (a repeated view, a Map keyed by a view) round a ring of channels the workers made, updated at each hop' },
  { file: 'views-ring.mjs', args: ['3', '2'], nodes: 3, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'timer-mailboxes.mjs', args: ['3', '6'], nodes: 3, protocol: 'hlrc', status: 0, what: 'workers polling shared mailboxes from setInterval with short Atomics.wait calls inside; the main thread waiting for answers with Atomics.wait and waitAsync between its own timers' },
  { file: 'timer-mailboxes.mjs', args: ['2', '5'], nodes: 1, protocol: 'sc', status: 0, what: 'the same on one node under sc' },
  { file: 'code-workers.mjs', args: ['1000', '3'], nodes: 3, protocol: 'hlrc', status: 0, what: 'eval workers, data: URL workers (percent and base64) and an eval worker starting a data: URL worker meeting at one Atomics barrier' },
  { file: 'code-workers.mjs', args: ['500', '2'], nodes: 2, protocol: 'sc', status: 0, what: 'the same under sc' },
  { file: 'code-workers.mjs', args: ['300', '1', 'strings'], nodes: 1, protocol: 'hlrc', status: 0, what: 'data: and file: URLs given as strings refused with ERR_WORKER_PATH (dsm started the worker: only URL objects are URLs to new Worker)' },
];

for (const run of runs) {
  const dsmArgs = ['--nodes', String(run.nodes), '--protocol', run.protocol];
  test(`${dsmArgs.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, { skip: run.skip ?? false }, () => {
    checkUserProgram(dsmArgs, run, 'test/fixtures/users8');
  });
}
