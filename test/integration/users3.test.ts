// Round 2 of user-written programs (test/fixtures/users3: synchronization built from Atomics, Atomics' corners,
// worker lifecycles and the Node APIs around shared memory, no dsm API): under dsm they print what plain node prints
// and exit with its code. Most run on 3 nodes under hlrc; some on 2 under sc, a few on 8 and on 1 (where workers
// made one after another take warm threads).
import { userProgramTests, type UserProgram } from './users-runs.js';

const directory = 'test/fixtures/users3';

const programs: Record<string, UserProgram> = {
  futexMutex: { file: 'futex-mutex.mjs', args: ['200', '50'], what: 'a three-state futex mutex, and a condition variable driving a bounded producer/consumer queue', status: 0 },
  rwlockSemaphore: { file: 'rwlock-semaphore.mjs', what: 'a readers–writer lock, a counting semaphore and a one-shot latch', status: 0 },
  spscMpmc: { file: 'spsc-mpmc.mjs', args: ['200', '50'], what: 'an SPSC ring buffer waiting when empty or full, and a bounded MPMC queue of slot sequences', status: 0 },
  waitTimeouts: { file: 'wait-timeouts.mjs', what: 'Atomics.wait and waitAsync timeouts and results in the main thread and workers, notify\'s guaranteed counts', status: 0 },
  typedKinds: { file: 'typed-kinds.mjs', what: 'Atomics on BigInt64/BigUint64, Int8/Uint16 at odd offsets, DataView, non-shared buffers, the specification\'s errors', status: 0 },
  terminateBlocked: { file: 'terminate-blocked.mjs', what: 'terminate of a worker blocked in Atomics.wait and of a mutex holder, process.exitCode, ref/unref', status: 0 },
  workerEvents: { file: 'worker-events.mjs', what: '\'online\' after the creating turn, a tree of workers announcing themselves on BroadcastChannels', status: 0 },
  buffersNested: { file: 'buffers-nested.mjs', what: 'shared buffers in nested objects, Maps and Sets, sent twice, Buffer.from(sab), encodeInto', status: 0 },
  orphans: { file: 'orphans.mjs', what: 'a worker\'s own workers end with it (process.exit, unref\'d and returning, terminated) before its \'exit\'', status: 0 },
  postErrors: { file: 'post-errors.mjs', what: 'postMessage\'s errors both ways (transferList items and forms, values clone cannot copy) as node throws them', status: 0 },
  waitAddresses: { file: 'wait-addresses.mjs', what: 'waiters keyed by memory and byte index across views and kinds, notify\'s count conversions, nobody left after a worker ends', status: 0 },
  workerHandles: { file: 'worker-handles.mjs', what: 'terminate() twice and after the end (undefined), the handle\'s listeners gone after \'exit\', an eval worker', status: 0 },
  sharedNodeApis: { file: 'shared-node-apis.mjs', what: 'inspect, TextDecoder, v8.serialize (V8\'s message names SharedArrayBuffer), structuredClone, hash, zlib, Buffer on a shared buffer', status: 0 },
  syncRpc: { file: 'sync-rpc.mjs', what: 'synchronous calls over a MessagePort given to a running worker, both sides in Atomics.wait and receiveMessageOnPort', status: 0 },
  growableIo: { file: 'growable-io.mjs', what: 'a growable buffer grown under a worker, fs.readSync/writeSync on shared views, getRandomValues', status: 0 },
};
const all = Object.values(programs);

userProgramTests(['--nodes', '3', '--protocol', 'hlrc'], all, directory);
userProgramTests(['--nodes', '2', '--protocol', 'sc'], [
  programs.orphans!, programs.postErrors!, programs.syncRpc!, programs.workerHandles!, programs.waitTimeouts!, programs.typedKinds!, programs.buffersNested!,
], directory);
userProgramTests(['--nodes', '8', '--protocol', 'hlrc'], [programs.rwlockSemaphore!, programs.workerEvents!], directory);
userProgramTests(['--nodes', '1'], [programs.workerEvents!], directory);
