// Stale copies between synchronizations (src/protocol/stale.ts, session 23):
// a loop polling a plain read ends on several nodes. Page 0 is node 0's
// (round robin). On 3 nodes, node 1 stores the flag plainly (into its twin: it
// is not the home) and polls an ack; node 2 polls the flag and stores the ack.
// After one barrier no thread synchronizes. Without the engines' looks the reader spins
// until the step limit; with them (every simulated 2 ms with no
// synchronization, doubling while nothing is found) both loops end. And the
// random programs stay correct when copies are dropped at random moments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type ThreadProgram } from './sim.js';
import { loadOp as load, syncOk as sync } from './thread-ops.js';
import { runSeed } from './programs.js';

const flag = 0;
const ack = 4;

function pingPong(staleRefreshMs: number | undefined, stepCountMax: number): { spins: number[]; cluster: SimCluster } {
  const cluster = new SimCluster({ seed: 3, nodeCount: 3, pageCount: 3, placement: 'roundRobin', stepCountMax, ...(staleRefreshMs === undefined ? {} : { staleRefreshMs }) });
  const spins = [0, 0];
  // One barrier first, as a real thread starts with an acquire (a node looks from its first synchronization).
  const start = { kind: 'barrier', barrierId: 1, parties: 2 } as const;
  cluster.addThread(1, () => (function* () {
    yield* sync(start);
    yield { op: 'store', address: flag, value: 1 };
    while ((yield* load(ack)) === 0) spins[0]!++;
  })() as ThreadProgram);
  cluster.addThread(2, () => (function* () {
    yield* sync(start);
    while ((yield* load(flag)) === 0) spins[1]!++;
    yield { op: 'store', address: ack, value: 1 };
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  return { spins, cluster };
}

test('without looks a loop polling a plain read written on another node spins forever (the step limit)', () => {
  assert.throws(() => pingPong(undefined, 200_000), /step limit/);
});

test('with looks a plain store of a non-home node reaches a poller on a third node, and the poller\'s store comes back', () => {
  const { spins, cluster } = pingPong(2, 2_000_000);
  assert.ok(spins[1]! > 0, 'the reader spun before it saw the flag');
  const counters = cluster.engines.map((engine) => engine.counters());
  assert.ok((counters[2]!.staleDropped ?? 0) >= 1 && (counters[1]!.staleDropped ?? 0) >= 1, 'both pollers dropped their stale copy');
  // The home's master copy holds both stores (each went home in a look's early flush).
  const home = new DataView(cluster.memories[0]!.data.buffer);
  assert.deepEqual([home.getUint32(flag, true), home.getUint32(ack, true)], [1, 1]);
});

test('hlrc: 100 random data-race-free programs end with the sequential result with copies dropped at random moments', () => {
  let dropped = 0;
  for (let seed = 1; seed <= 100; seed++) {
    try {
      dropped += runSeed(seed, 'hlrc', 'seeded', 0, 'never', 'seeded', 'seeded', 'seeded', 'never', 'always').staleDropped;
    } catch (error) {
      assert.fail(`seed ${seed}: ${(error as Error).message}\nrerun: npm run sim -- --seed ${seed} --stale-refresh always`);
    }
  }
  assert.ok(dropped > 0, 'some copies were dropped');
});
