// Bounded memory without barriers: a lock-only program keeps every engine
// table flat (issue 4 item 6). Before vcQuery/vcReport the interval log grew
// by about one record per round on every node until intervalLogCountMax.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intervalLogReclaimCount, pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';

function* syncOp(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  assert.ok(result.ok, `${request.kind} succeeds`);
  return result;
}

/** The largest entry of each table over all engines. */
function maxSizes(cluster: SimCluster): Record<string, number> {
  const out: Record<string, number> = {};
  for (const engine of cluster.engines) {
    for (const [name, size] of Object.entries(engine.tableSizes())) out[name] = Math.max(out[name] ?? 0, size);
  }
  return out;
}

interface LockRoundsOutcome { early: Record<string, number>; late: Record<string, number>; cluster: SimCluster; counters: number[] }

/**
 * `roundCount` lock/read/write/unlock rounds in total, split over one thread
 * per node; each round takes one of `lockCount` locks and increments its
 * counter (counters on different pages), and also writes the thread's own word
 * on a shared page (multiple writers). Table sizes are sampled at a tenth of
 * the rounds and at the end.
 */
function lockRounds(roundCount: number, nodeCount: number, lockCount: number, seed: number, logReclaimCount?: number): LockRoundsOutcome {
  const cluster = new SimCluster({
    seed, nodeCount, pageCount: lockCount + 2, protocol: 'hlrc', stepCountMax: roundCount * 200, deliverBias: 0.5,
    ...(logReclaimCount === undefined ? {} : { logReclaimCount }),
  });
  const counterAddress = (lock: number): number => lock * pageBytes + 64;
  const ownAddress = (thread: number): number => lockCount * pageBytes + thread * 4;
  let early: Record<string, number> = {};
  let done = 0;
  for (let node = 0; node < nodeCount; node++) {
    cluster.addThread(node, (thread) => (function* () {
      const rounds = Math.floor(roundCount / nodeCount) + (thread < roundCount % nodeCount ? 1 : 0);
      for (let round = 0; round < rounds; round++) {
        const lock = (round * 7 + thread) % lockCount;
        yield* syncOp({ kind: 'lock', lockId: 1000 + lock, threadId: thread });
        const value = (yield { op: 'load', address: counterAddress(lock) }) as number;
        yield { op: 'store', address: counterAddress(lock), value: value + 1 };
        yield { op: 'store', address: ownAddress(thread), value: round + 1 };
        yield* syncOp({ kind: 'unlock', lockId: 1000 + lock, threadId: thread });
        done++;
        if (done === Math.floor(roundCount / 10)) early = maxSizes(cluster);
      }
    })() as ThreadProgram);
  }
  cluster.run();
  cluster.drain();
  const late = maxSizes(cluster);
  // Read the counters through one more lock round per lock at node 0.
  const counters: number[] = [];
  cluster.addThread(0, (thread) => (function* () {
    for (let lock = 0; lock < lockCount; lock++) {
      yield* syncOp({ kind: 'lock', lockId: 1000 + lock, threadId: thread });
      counters.push((yield { op: 'load', address: counterAddress(lock) }) as number);
      yield* syncOp({ kind: 'unlock', lockId: 1000 + lock, threadId: thread });
    }
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  return { early, late, cluster, counters };
}

function expectedCounters(roundCount: number, nodeCount: number, lockCount: number): number[] {
  const counters = new Array<number>(lockCount).fill(0);
  for (let thread = 0; thread < nodeCount; thread++) {
    const rounds = Math.floor(roundCount / nodeCount) + (thread < roundCount % nodeCount ? 1 : 0);
    for (let round = 0; round < rounds; round++) counters[(round * 7 + thread) % lockCount]!++;
  }
  return counters;
}

test('lock-only program: 100,000 rounds on 3 nodes keep every engine table bounded by constants', () => {
  // Issue 4: memory stays flat over 10^5 lock/write/unlock rounds.
  const roundCount = 100_000;
  const { early, late, counters, cluster } = lockRounds(roundCount, 3, 3, 11);
  assert.deepEqual(counters, expectedCounters(roundCount, 3, 3));
  // The log is reclaimed in rounds of vcQuery/vcReport once it holds
  // intervalLogReclaimCount records: it never holds much more than twice that.
  assert.ok(late['log']! <= 2 * intervalLogReclaimCount + 64, `log ${late['log']} at the end`);
  assert.ok(early['log']! <= 2 * intervalLogReclaimCount + 64, `log ${early['log']} early`);
  // Without reclamation the log would hold about one record per round per writer.
  assert.ok(roundCount > 4 * intervalLogReclaimCount, 'enough rounds to show the difference');
  for (const name of ['pages', 'statelessNeeds', 'pending', 'locks', 'fetchers', 'held', 'twinned', 'intervalPages', 'atomicWaiters', 'barriers']) {
    assert.ok(late[name]! <= 8, `table ${name} is ${late[name]} at the end (page and lock tables hold at most the program's pages and locks)`);
  }
  assert.ok((cluster.messageCounts.get('vcQuery') ?? 0) > 0, 'reclamation ran');
  // Its cost: 2(n-1) messages per intervalLogReclaimCount records at each node: small beside the rounds'.
  assert.ok((cluster.messageCounts.get('vcQuery') ?? 0) * 20 < cluster.messageCount, 'reclamation is a small share of the messages');
});

test('lock-only program with a tiny reclaim threshold: the log stays within a few records, results exact', () => {
  for (const seed of [1, 2, 3, 4]) {
    const roundCount = 3000;
    const { late, counters } = lockRounds(roundCount, 2 + (seed % 3), 2, seed, 4);
    assert.deepEqual(counters, expectedCounters(roundCount, 2 + (seed % 3), 2), `seed ${seed}`);
    assert.ok(late['log']! <= 64, `seed ${seed}: log ${late['log']}`);
  }
});
