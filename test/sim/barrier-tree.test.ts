// Barriers whose arrivals combine per node and up a tree rooted at the
// manager (issue 12.3, src/protocol/sync.ts): message counts, and random
// rounds where threads come and go between rounds (a thread leaves, another
// joins on another node, so the plan's per-node counts are wrong and the
// manager must flush), a thread is killed while it waits, on 2..8 nodes under
// both protocols. Every round each member stores its word, passes the
// barrier, reads every member's word (which must hold that round's value),
// and passes the barrier again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barrierTreeFanIn, pageBytes } from '../../src/constants.js';
import type { ProtocolName, SyncResult } from '../../src/protocol/engine.js';
import { Prng, SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';
import { syncOp } from './thread-ops.js';
import { randomRounds } from './barrier-rounds.js';

const pageCount = 4;
const barrierId = 3;
/** Gates a joining thread behind the thread it replaces (see randomRounds). */
const gateId = 5;

function wordOf(slot: number): number {
  return (slot % pageCount) * pageBytes + 64 + 4 * slot;
}

test('barrier tree: n nodes, one thread each: 2(n-1) messages a round, the manager hears from at most barrierTreeFanIn nodes, no flush', () => {
  for (const n of [2, 3, 5, 8]) {
    const c = new SimCluster({ seed: 7, nodeCount: n, pageCount, protocol: 'hlrc' });
    const rounds = 6;
    for (let node = 0; node < n; node++) {
      c.addThread(node, () => (function* () {
        for (let r = 0; r < rounds; r++) yield* syncOp({ kind: 'barrier', barrierId, parties: n });
      })() as ThreadProgram);
    }
    c.run(); c.drain();
    assert.equal(c.messageCount, 2 * (n - 1) * rounds, `n = ${n}: ${JSON.stringify([...c.messageCounts])}`);
    assert.equal(c.messageCounts.get('barrierFlush') ?? 0, 0, `n = ${n}: no flush when every round has the same threads`);
    // After the first (flat) round the manager gets at most barrierTreeFanIn arrivals a round.
    const toManager = c.sent.filter((s) => s.message.type === 'barrierArrive' && s.to === 0).length;
    assert.ok(toManager <= (n - 1) + (rounds - 1) * Math.min(n - 1, barrierTreeFanIn), `n = ${n}: ${toManager} arrivals at the manager`);
  }
});

test('barrier tree: several threads per node: one arrival per node and one departure per node a round after the first', () => {
  const n = 4;
  const perNode = 3;
  const rounds = 5;
  const c = new SimCluster({ seed: 11, nodeCount: n, pageCount, protocol: 'hlrc' });
  const serials: number[] = new Array<number>(rounds).fill(0);
  for (let node = 0; node < n; node++) {
    for (let t = 0; t < perNode; t++) {
      c.addThread(node, () => (function* () {
        for (let r = 0; r < rounds; r++) {
          const result = yield* syncOp({ kind: 'barrier', barrierId, parties: n * perNode });
          if (result.ok && result.value === 'serial') serials[r]!++;
        }
      })() as ThreadProgram);
    }
  }
  c.run(); c.drain();
  assert.deepEqual(serials, new Array<number>(rounds).fill(1), 'exactly one serial thread a round');
  // First round: flat (each thread of nodes 1..3 arrives alone), one departure per node; then one arrival per node.
  const first = (n - 1) * perNode + (n - 1);
  assert.equal(c.messageCount, first + (rounds - 1) * 2 * (n - 1), JSON.stringify([...c.messageCounts]));
  assert.equal(c.messageCounts.get('barrierFlush') ?? 0, 0);
});

for (const protocol of ['hlrc', 'sc'] as const) {
  test(`barrier tree: threads that come and go between rounds, a thread killed while waiting, 2..8 nodes, 300 seeds (${protocol})`, () => {
    let flushes = 0;
    let kills = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const outcome = randomRounds(seed, protocol);
      flushes += outcome.flushes;
      if (outcome.killed) kills++;
    }
    // The plan must have been wrong often (a joiner on another node than its leaver).
    assert.ok(flushes > 50, `flushes: ${flushes}`);
    assert.ok(kills > 50, `kills: ${kills}`);
  });
}
