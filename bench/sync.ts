// Synchronization costs over real dsm clusters on loopback, beside the raw
// TCP round trip measured in the same run (bench/rtt.ts):
//   lockUsP50        a thread on node 1 locks and unlocks a Mutex managed by
//                    node 0, nobody else asking (bench/programs/sync-lock.mjs);
//                    lockManagerLocalUsP50 the same with the manager on node 1
//   handoffUsP50     threads on nodes 1 and 2 take strict turns under a Mutex
//                    managed by node 0 (a turn word guarded by it, homed on
//                    node 0): one remote handoff per turn (recall, release with
//                    the turn word's diff, grant with its page); half the
//                    interval between two turns of one thread
//   barrier2/4/8UsP50  a Barrier with one thread on each of 2 / 4 / 8 node
//                    processes, managed by node 0 (sync-barrier.mjs); after the
//                    first round each node sends one combined arrival up the
//                    barrier's tree (issue 12.3); barrier2 is the floor: one
//                    arrival each way, peer to peer (session 13: each node departs
//                    on its own once it has the other's; DSM_PEER_BARRIERS=0: one
//                    arrival and one departure, a round trip)
//   atomicAddUsP50   Atomics.add from node 1 on a fresh line homed on node 0 and held
//                    there (sync-atomic.mjs): a line transfer (lineRequest, lineGrant);
//                    with DSM_ATOMIC_LINES=0 the home round trip (atomicRequest, atomicReply)
//                    (with lock tokens in the node's table, issue 12.3, the token
//                    rests at node 1 after its first lock: lock+unlock is then two
//                    compareExchanges, no request)
//   doorbellRoundTripUsP50  a tryLock of a free mutex managed on the thread's own
//                    node (sync-lock.mjs, run again with DSM_LOCK_TOKENS=0 so that
//                    it reaches the manager): one app thread -> manager -> app thread
//                    trip through the doorbell, against futexRoundTripUsP50, a
//                    bare Atomics.wait/notify ping-pong between two plain-node
//                    threads (atomics-plain.mjs, best of a few runs) in the same run
//   doorbellBareUsP50  the doorbell alone: a ChannelServer on one thread answering a
//                    ChannelClient on another at once (no cluster, no engine), with
//                    the futex ping-pong in the same process (doorbell-bare.mjs)
// Each program times inside itself with performance.now() and prints one JSON line.
// Message counts per operation come from the same runs' --stats-json.
// Goals (reported, not asserted): lock ≤ 1.5 round trips; a barrier of n
// nodes ≤ 2 round trips plus one per node at the manager, read here as
// (2 + n) round trips.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DsmError, assert } from '../src/errors.js';
import { packageRoot } from '../src/package-info.js';
import { runRttBench } from './rtt.js';

const protocol = 'hlrc';
const regionBytes = '256m';
const lockNodeCount = 3;
const atomicNodeCount = 2;
const barrierNodeCounts = [2, 4, 8] as const;
assert(barrierNodeCounts[0] === 2 && barrierNodeCounts[1] === 4 && barrierNodeCounts[2] === 8, 'the result names barrier2, barrier4 and barrier8');
const lockGoalRtts = 1.5;
/** Issue 12: one sync round trip through the doorbell costs at most this many bare futex ping-pongs. */
const doorbellGoalRatio = 1.5;
const plainRunCount = 3;
/** atomics-plain.mjs also counts; the sync bench wants only its ping-pong. */
const plainCounterIterations = 1000;
const runTimeoutMs = 300_000;
/** DSM_ATOMIC_LINES=0 (inherited by the runs): Atomics at their home instead of by line ownership (src/env.ts). */
const atomicLinesOn = process.env.DSM_ATOMIC_LINES !== '0';
/** DSM_PEER_BARRIERS=0 (inherited by the runs): two-node barrier rounds through the manager, as on more nodes (src/env.ts). */
const peerBarriersOn = process.env.DSM_PEER_BARRIERS !== '0';

export interface SyncBenchResult extends Record<string, unknown> {
  iterations: number;
  rawRttUsP50: number;
  dsmRttUsP50: number;
  lockUsP50: number;
  lockUsP99: number;
  lockAcquireUsP50: number;
  /** The same lock+unlock with the manager on the thread's own node: no network, only the way to the engine and back. */
  lockManagerLocalUsP50: number;
  handoffUsP50: number;
  handoffUsP99: number;
  barrier2UsP50: number;
  barrier2UsP99: number;
  barrier4UsP50: number;
  barrier4UsP99: number;
  barrier8UsP50: number;
  barrier8UsP99: number;
  atomicAddUsP50: number;
  atomicAddUsP99: number;
  atomicAddHomeLocalUsP50: number;
  /** tryLock of a free mutex managed on the thread's node: the app thread -> manager round trip (the doorbell). */
  doorbellRoundTripUsP50: number;
  doorbellRoundTripUsP99: number;
  /** A bare futex ping-pong between two plain-node threads, measured in the same run. */
  futexRoundTripUsP50: number;
  doorbellRoundTripRatio: number;
  /** The doorbell alone (doorbell-bare.mjs), and a futex ping-pong in the same process: best of a few runs. */
  doorbellBareUsP50: number;
  doorbellBareFutexUsP50: number;
  doorbellBareRatio: number;
  lockAcquireRtts: number;
  handoffRtts: number;
  barrier2Rtts: number;
  barrier4Rtts: number;
  barrier8Rtts: number;
  atomicAddRtts: number;
  /** Messages per operation, from each run's statistics (setup traffic included, so slightly above the protocol's count). */
  lockMessages: number;
  barrier2Messages: number;
  barrier4Messages: number;
  barrier8Messages: number;
  atomicAddMessages: number;
  goals: Record<string, number | boolean>;
  config: Record<string, unknown>;
}

const round = (value: number) => Math.round(value * 100) / 100;

interface NodeStats {
  lockAcquires: number;
  barrierWaits: number;
  messagesByType: Record<string, { count: number; bytes: number }>;
}

interface RunStats {
  total: NodeStats;
  nodes: NodeStats[];
}

/** Warm-up rounds the programs run before timing (bench/programs/sync-*.mjs). */
const lockWarmCount = (iterations: number) => Math.min(100, iterations);
const barrierWarmCount = (iterations: number) => Math.min(50, iterations);
const atomicWarmCount = (iterations: number) => Math.min(100, iterations);

function sentBy(stats: RunStats, nodeId: number, type: string): number {
  const node = stats.nodes[nodeId];
  assert(node !== undefined, `statistics for node ${nodeId}`);
  return node.messagesByType[type]?.count ?? 0;
}

/**
 * The programs pick their managers and homes by the placement rule; the
 * messages each node sent show whether the engine agreed, so that a figure
 * labelled remote was remote.
 */
function checkPlacement(iterations: number, lock: RunStats, atomic: RunStats, barriers: Array<{ nodeCount: number; stats: RunStats }>): void {
  const lockRounds = lockWarmCount(iterations) + iterations;
  // Node 1: the remote solo phase (one request: the token then rests at node 1)
  // and its half of the pair; its manager-local phase sends nothing. In the
  // pair every turn needs the token back from the other node (at least one
  // request per turn), and a thread that gets it before its turn asks again.
  const lockRequests1 = sentBy(lock, 1, 'lockRequest');
  const lockRequests2 = sentBy(lock, 2, 'lockRequest');
  const turnRequestsMax = 4 * lockRounds;
  if (lockRequests1 < 1 + lockRounds || lockRequests1 > 1 + turnRequestsMax || lockRequests2 < lockRounds || lockRequests2 > turnRequestsMax) {
    throw new DsmError('DSM_ERR_BENCH', `sync-lock: lock requests sent by node 1 and 2 were ${lockRequests1} and `
      + `${lockRequests2}, not ${1 + lockRounds}..${1 + turnRequestsMax} and ${lockRounds}..${turnRequestsMax}: the mutexes are not managed where the program placed them`);
  }
  const atomicRounds = atomicWarmCount(iterations) + iterations;
  if (atomicLinesOn) {
    // One line transfer per remote add (sync-atomic.mjs): node 1 asks the directory
    // (node 0) once per line and never goes to a home; the final check's loads run
    // on lines node 1 then holds.
    const lineRequests = sentBy(atomic, 1, 'lineRequest');
    const lineGrants = sentBy(atomic, 0, 'lineGrant');
    const homeRequests = sentBy(atomic, 1, 'atomicRequest');
    if (lineRequests !== atomicRounds || lineGrants !== atomicRounds || homeRequests !== 0) {
      throw new DsmError('DSM_ERR_BENCH', `sync-atomic: node 1 sent ${lineRequests} line requests (and ${homeRequests} atomic requests) and node 0 `
        + `${lineGrants} line grants for ${atomicRounds} adds on remote lines: the lines are not directed where the program placed them`);
    }
  } else {
    // Each remote add and each final check's load of a remote word is one request to the home.
    const atomicRequests = sentBy(atomic, 1, 'atomicRequest');
    if (atomicRequests !== 2 * atomicRounds) {
      throw new DsmError('DSM_ERR_BENCH', `sync-atomic: node 1 sent ${atomicRequests} atomic requests for ${atomicRounds} remote adds and as many `
        + 'remote loads: the words are not homed where the program placed them');
    }
  }
  for (const { nodeCount, stats } of barriers) {
    const barrierRounds = barrierWarmCount(iterations) + iterations;
    // Two nodes go peer to peer after the first round (its one departure from
    // the manager): the manager then sends an arrival a round too.
    const pair = nodeCount === 2 && peerBarriersOn;
    const managerArrivals = pair ? barrierRounds - 1 : 0;
    const departs = pair ? 1 : (nodeCount - 1) * barrierRounds;
    if (sentBy(stats, 0, 'barrierArrive') !== managerArrivals || sentBy(stats, 0, 'barrierDepart') !== departs
      || stats.total.messagesByType.barrierArrive?.count !== (nodeCount - 1) * barrierRounds + managerArrivals) {
      throw new DsmError('DSM_ERR_BENCH', `sync-barrier on ${nodeCount} nodes: the barrier is not managed by node 0`);
    }
  }
}

interface ProgramRun {
  figures: Record<string, number>;
  stats: RunStats;
}

/** Runs one bench/programs/sync-*.mjs on a cluster of `nodeCount`: its JSON line and the run's statistics. */
function runProgram(program: string, nodeCount: number, iterations: number, env: Record<string, string> = {}): ProgramRun {
  const statsFolder = mkdtempSync(join(tmpdir(), 'dsm-bench-sync-'));
  const statsFile = join(statsFolder, 'stats.json');
  try {
    // The programs place their objects by the round-robin rule (bench/programs/sync-lib.mjs).
    const args = [join(packageRoot, 'bin', 'dsm.js'), 'run', '--nodes', String(nodeCount), '--protocol', protocol, '--placement', 'roundRobin',
      '--region-bytes', regionBytes, '--stats-json', statsFile, join(packageRoot, 'bench', 'programs', program), String(iterations)];
    const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: runTimeoutMs, env: { ...process.env, ...env } });
    if (result.error !== undefined || result.status !== 0) {
      throw new DsmError('DSM_ERR_BENCH', `${program} on ${nodeCount} nodes failed (${String(result.error ?? `exit ${result.status}`)}): ${result.stderr}`);
    }
    const line = result.stdout.trim().split('\n').pop() ?? '';
    let figures: Record<string, number>;
    try {
      figures = JSON.parse(line) as Record<string, number>;
    } catch {
      throw new DsmError('DSM_ERR_BENCH', `${program} on ${nodeCount} nodes printed no JSON line: ${result.stdout}`);
    }
    assert(figures.nodeCount === nodeCount, `${program} ran on the ${nodeCount} nodes asked for`);
    assert(figures.iterations === iterations, `${program} ran the ${iterations} iterations asked for`);
    return { figures, stats: JSON.parse(readFileSync(statsFile, 'utf8')) as RunStats };
  } finally {
    rmSync(statsFolder, { recursive: true, force: true });
  }
}

/** A plain-node program's JSON line (its last line of output). */
function runJson(program: string, iterations: number, extra: string[] = []): Record<string, number> {
  const result = spawnSync(process.execPath, [program, String(iterations), ...extra], { encoding: 'utf8', timeout: runTimeoutMs });
  if (result.error !== undefined || result.status !== 0) {
    throw new DsmError('DSM_ERR_BENCH', `${program} failed (${String(result.error ?? `exit ${result.status}`)}): ${result.stderr}`);
  }
  try {
    return JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as Record<string, number>;
  } catch {
    throw new DsmError('DSM_ERR_BENCH', `${program} printed no JSON line: ${result.stdout}`);
  }
}

/** A bare futex ping-pong between two plain-node threads (bench/programs/atomics-plain.mjs): its median round trip, µs. */
function runPlainFutex(iterations: number): number {
  const figures = runJson(join(packageRoot, 'bench', 'programs', 'atomics-plain.mjs'), iterations, [String(plainCounterIterations)]);
  return figure(figures, 'futexRoundTripUsP50', 'atomics-plain.mjs');
}

/** Messages of the given types in a run, divided by the number of operations that sent them. */
function messagesPer(stats: RunStats, types: string[], operationCount: number): number {
  if (operationCount <= 0) throw new DsmError('DSM_ERR_BENCH', `no operations to count messages of ${types.join(', ')} against`);
  const count = types.reduce((sum, type) => sum + (stats.total.messagesByType[type]?.count ?? 0), 0);
  return round(count / operationCount);
}

function figure(figures: Record<string, number>, key: string, program: string): number {
  const value = figures[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new DsmError('DSM_ERR_BENCH', `${program} reported no ${key}`);
  return value;
}

export async function runSyncBench(options: { iterations: number }): Promise<SyncBenchResult> {
  const { iterations } = options;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `runSyncBench: iterations must be a positive integer; got ${String(iterations)}`);
  }
  const config = {
    protocol, placement: 'roundRobin', regionBytes, lockNodeCount, atomicNodeCount, barrierNodeCounts: [...barrierNodeCounts],
    lockManager: 0, barrierManager: 0, atomicHome: 0, atomicLines: atomicLinesOn,
    cpuCount: cpus().length, loadAverage1m: round(loadavg()[0] ?? 0), nodeVersion: process.version,
  };
  const rtt = await runRttBench({ iterations });
  const futexRoundTripUsP50 = Math.min(...Array.from({ length: plainRunCount }, () => runPlainFutex(iterations)));
  const bare = Array.from({ length: plainRunCount }, () => runJson(join(packageRoot, 'bench', 'programs', 'doorbell-bare.mjs'), iterations));
  const doorbellBareUsP50 = Math.min(...bare.map((run) => figure(run, 'doorbellUsP50', 'doorbell-bare.mjs')));
  const doorbellBareFutexUsP50 = Math.min(...bare.map((run) => figure(run, 'futexUsP50', 'doorbell-bare.mjs')));
  const lock = runProgram('sync-lock.mjs', lockNodeCount, iterations);
  // The doorbell round trip is a tryLock that reaches the manager: with lock tokens in the
  // node's table (issue 12.3) a free local mutex is taken there with no request at all, so
  // that figure comes from a run with the table off (DSM_LOCK_TOKENS=0).
  const lockManagerPath = runProgram('sync-lock.mjs', lockNodeCount, iterations, { DSM_LOCK_TOKENS: '0' });
  const atomic = runProgram('sync-atomic.mjs', atomicNodeCount, iterations);
  const barriers = barrierNodeCounts.map((nodeCount) => runProgram('sync-barrier.mjs', nodeCount, iterations));
  const [barrier2Run, barrier4Run, barrier8Run] = barriers as [ProgramRun, ProgramRun, ProgramRun];
  checkPlacement(iterations, lock.stats, atomic.stats, [
    { nodeCount: 2, stats: barrier2Run.stats }, { nodeCount: 4, stats: barrier4Run.stats }, { nodeCount: 8, stats: barrier8Run.stats },
  ]);
  const lockRun = lock;
  const atomicRun = atomic;
  const lockFigures = lockRun.figures;
  const barrier2 = barrier2Run.figures;
  const barrier4 = barrier4Run.figures;
  const barrier8 = barrier8Run.figures;
  const rawRttUsP50 = rtt.rawRtt64UsP50;
  const result: SyncBenchResult = {
    iterations,
    rawRttUsP50,
    dsmRttUsP50: rtt.rtt64UsP50,
    lockUsP50: figure(lockFigures, 'lockUsP50', 'sync-lock'),
    lockUsP99: figure(lockFigures, 'lockUsP99', 'sync-lock'),
    lockAcquireUsP50: figure(lockFigures, 'lockAcquireUsP50', 'sync-lock'),
    lockManagerLocalUsP50: figure(lockFigures, 'lockManagerLocalUsP50', 'sync-lock'),
    handoffUsP50: figure(lockFigures, 'handoffUsP50', 'sync-lock'),
    handoffUsP99: figure(lockFigures, 'handoffUsP99', 'sync-lock'),
    barrier2UsP50: figure(barrier2, 'barrierUsP50', 'sync-barrier'),
    barrier2UsP99: figure(barrier2, 'barrierUsP99', 'sync-barrier'),
    barrier4UsP50: figure(barrier4, 'barrierUsP50', 'sync-barrier'),
    barrier4UsP99: figure(barrier4, 'barrierUsP99', 'sync-barrier'),
    barrier8UsP50: figure(barrier8, 'barrierUsP50', 'sync-barrier'),
    barrier8UsP99: figure(barrier8, 'barrierUsP99', 'sync-barrier'),
    atomicAddUsP50: figure(atomic.figures, 'atomicAddUsP50', 'sync-atomic'),
    atomicAddUsP99: figure(atomic.figures, 'atomicAddUsP99', 'sync-atomic'),
    atomicAddHomeLocalUsP50: figure(atomic.figures, 'atomicAddHomeLocalUsP50', 'sync-atomic'),
    doorbellRoundTripUsP50: figure(lockManagerPath.figures, 'doorbellRoundTripUsP50', 'sync-lock'),
    doorbellRoundTripUsP99: figure(lockManagerPath.figures, 'doorbellRoundTripUsP99', 'sync-lock'),
    futexRoundTripUsP50,
    doorbellRoundTripRatio: 0,
    doorbellBareUsP50,
    doorbellBareFutexUsP50,
    doorbellBareRatio: round(doorbellBareUsP50 / doorbellBareFutexUsP50),
    lockAcquireRtts: 0,
    handoffRtts: 0,
    barrier2Rtts: 0,
    barrier4Rtts: 0,
    barrier8Rtts: 0,
    atomicAddRtts: 0,
    // Per remote acquisition (one lockRequest each): the manager-local phase sends
    // nothing, nor (issue 12) do re-acquisitions of a token resting at the node,
    // which the pair's turns make many of (a thread that finds the other's turn
    // locks again), so lockAcquires would not count what the messages serve.
    lockMessages: messagesPer(lockRun.stats, ['lockRequest', 'lockGrant', 'lockRelease', 'lockRecall', 'lockBusy'],
      lockRun.stats.total.messagesByType.lockRequest?.count ?? 0),
    // Every node's thread counts one wait per round.
    barrier2Messages: messagesPer(barrier2Run.stats, ['barrierArrive', 'barrierDepart', 'barrierFlush'], barrier2Run.stats.total.barrierWaits / 2),
    barrier4Messages: messagesPer(barrier4Run.stats, ['barrierArrive', 'barrierDepart', 'barrierFlush'], barrier4Run.stats.total.barrierWaits / 4),
    barrier8Messages: messagesPer(barrier8Run.stats, ['barrierArrive', 'barrierDepart', 'barrierFlush'], barrier8Run.stats.total.barrierWaits / 8),
    // The remote phase: warm-up and timed adds (lines off: and the final check's
    // remote loads, as many); the home-local phase sends nothing.
    atomicAddMessages: atomicLinesOn
      ? messagesPer(atomicRun.stats, ['lineRequest', 'lineGrant', 'lineRecall', 'lineRelease'], atomicWarmCount(iterations) + iterations)
      : messagesPer(atomicRun.stats, ['atomicRequest', 'atomicReply'], 2 * (atomicWarmCount(iterations) + iterations)),
    goals: {},
    config,
  };
  result.doorbellRoundTripRatio = round(result.doorbellRoundTripUsP50 / futexRoundTripUsP50);
  result.lockAcquireRtts = round(result.lockUsP50 / rawRttUsP50);
  result.handoffRtts = round(result.handoffUsP50 / rawRttUsP50);
  result.barrier2Rtts = round(result.barrier2UsP50 / rawRttUsP50);
  result.barrier4Rtts = round(result.barrier4UsP50 / rawRttUsP50);
  result.barrier8Rtts = round(result.barrier8UsP50 / rawRttUsP50);
  result.atomicAddRtts = round(result.atomicAddUsP50 / rawRttUsP50);
  result.goals = {
    lockAcquireRttsMax: lockGoalRtts,
    lockAcquireMet: result.lockAcquireRtts <= lockGoalRtts,
    barrier4RttsMax: 2 + 4,
    barrier4Met: result.barrier4Rtts <= 2 + 4,
    barrier8RttsMax: 2 + 8,
    barrier8Met: result.barrier8Rtts <= 2 + 8,
    doorbellRoundTripRatioMax: doorbellGoalRatio,
    doorbellRoundTripMet: result.doorbellRoundTripRatio <= doorbellGoalRatio,
  };
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runSyncBench({ iterations: Number(process.argv[2] ?? 2000) })));
}
