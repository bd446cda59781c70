// A barrier made of Atomics (an arrival count, a generation word, wait and
// notify) over synchronization lines (session 17): a notify from the line's
// holder gives the line back with it, a wait that parks gives it back with its
// lineWait, and a grant lists the line's waiters so that its holder counts its
// own notifies (docs/PROTOCOL.md "Giving a line back with a wait or a notify",
// "Counted notifies"). Message counts, not times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { atomicGenerationBarrier as atomicBarrier } from './programs.js';
import { SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';

export type Switches = { lineNotifyRelease: boolean; lineWaitRelease: boolean; lineCountedNotify: boolean };
/** The defaults (a notify gives the line back only with DSM_LINE_NOTIFY_RELEASE=1). */
export const on: Switches = { lineNotifyRelease: false, lineWaitRelease: true, lineCountedNotify: true };
export const off: Switches = { lineNotifyRelease: false, lineWaitRelease: false, lineCountedNotify: false };

function* load(address: number): Generator<ThreadOp, number, unknown> {
  return (yield { op: 'load', address }) as number;
}

function* atomic(op: 'load' | 'add' | 'store' | 'wait' | 'notify', address: number, operands: string[], timeoutMs = -1): Generator<ThreadOp, string, unknown> {
  const result = (yield { op: 'sync', request: { kind: 'atomic', op, address, width: 4, operands, timeoutMs } satisfies SyncRequest }) as SyncResult;
  if (!result.ok) throw new Error(`Atomics.${op} failed: ${result.code} ${result.message}`);
  return result.value ?? '';
}

/**
 * `threadsPerNode` threads on each of `nodeCount` nodes pass an Atomics barrier
 * `rounds` times; each publishes a word before and reads all the others' after.
 */
export function barrierRun(seed: number, switches: Switches, nodeCount = 2, threadsPerNode = 1, rounds = 30): SimCluster {
  const cluster = new SimCluster({
    seed, nodeCount, pageCount: 4, atomicLines: true, concurrentStepsMax: seed % 3, stepCountMax: 20_000_000,
    lineRefuseChance: (seed % 4) / 10, ...switches,
  });
  // Page 0 the threads' words, page 1 the barrier's line (homed at node 1).
  const count = pageBytes + 64;
  const generation = count + 4;
  const parties = nodeCount * threadsPerNode;
  for (let node = 0; node < nodeCount; node++) {
    for (let t = 0; t < threadsPerNode; t++) {
      const index = node * threadsPerNode + t;
      cluster.addThread(node, function* (): ThreadProgram {
        for (let round = 0; round < rounds; round++) {
          yield { op: 'store', address: 64 * index, value: round + 1 };
          yield* atomicBarrier(count, generation, parties);
          for (let other = 0; other < parties; other++) {
            const seen = yield* load(64 * other);
            if (seen < round + 1) throw new Error(`thread ${index} reads thread ${other}'s word as ${seen} after round ${round}'s barrier`);
          }
          yield* atomicBarrier(count, generation, parties);
        }
      });
    }
  }
  cluster.run();
  cluster.drain();
  for (const engine of cluster.engines) {
    const sizes = engine.tableSizes();
    assert.equal(sizes['linePending'], 0, `seed ${seed}: node ${engine.nodeId} has no line request left`);
    assert.equal(sizes['lineWaiters'], 0, `seed ${seed}: node ${engine.nodeId} keeps no waiter`);
  }
  return cluster;
}

/** A line-layer counter summed over the cluster's nodes. */
const counter = (cluster: SimCluster, name: string): number => cluster.engines.reduce((sum, engine) => sum + ((engine.counters() as unknown as Record<string, number>)[name] ?? 0), 0);

const lineMessages = (cluster: SimCluster): number => [...cluster.messageCounts].filter(([type]) => type.startsWith('line')).reduce((sum, [, n]) => sum + n, 0);

test('an Atomics barrier on 2 nodes sends fewer line messages with the line given back and notifies counted (a count bound)', () => {
  let before = 0;
  let after = 0;
  let notifiedBefore = 0;
  let notifiedAfter = 0;
  let recallsBefore = 0;
  let recallsAfter = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const old = barrierRun(seed, off);
    const now = barrierRun(seed, on);
    before += lineMessages(old);
    after += lineMessages(now);
    notifiedBefore += old.messageCounts.get('lineNotified') ?? 0;
    notifiedAfter += now.messageCounts.get('lineNotified') ?? 0;
    recallsBefore += old.messageCounts.get('lineRecall') ?? 0;
    recallsAfter += now.messageCounts.get('lineRecall') ?? 0;
  }
  assert.ok(after < before * 0.9, `line messages: ${after} with the changes, ${before} without`);
  assert.ok(notifiedAfter < notifiedBefore / 4, `notifies answered by the directory: ${notifiedAfter} counted, ${notifiedBefore} not`);
  assert.ok(recallsAfter < recallsBefore, `recalls: ${recallsAfter} with the line given back, ${recallsBefore} without`);
});

test('each switch alone keeps the barrier correct, and does its part', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const notifyOnly = barrierRun(seed, { ...off, lineNotifyRelease: true });
    const waitOnly = barrierRun(seed, { ...off, lineWaitRelease: true });
    const countedOnly = barrierRun(seed, { ...off, lineCountedNotify: true });
    const none = barrierRun(seed, off);
    for (const name of ['lineNotifiesCounted', 'lineReleasesWithNotify', 'lineReleasesWithWait']) assert.equal(counter(none, name), 0, `seed ${seed}: no ${name} when off`);
    assert.ok(counter(countedOnly, 'lineNotifiesCounted') > 0, `seed ${seed}: notifies counted`);
    assert.ok(counter(notifyOnly, 'lineReleasesWithNotify') > 0, `seed ${seed}: lines given back with a notify`);
    assert.ok(counter(waitOnly, 'lineReleasesWithWait') > 0, `seed ${seed}: lines given back with a wait`);
  }
});

test('3 nodes, 2 threads each: the barrier passes with the line given back and counted notifies, and with fewer messages', () => {
  let before = 0;
  let after = 0;
  for (let seed = 1; seed <= 12; seed++) {
    before += lineMessages(barrierRun(seed, off, 3, 2, 12));
    after += lineMessages(barrierRun(seed, on, 3, 2, 12));
  }
  assert.ok(after < before, `line messages: ${after} with the changes, ${before} without`);
});
