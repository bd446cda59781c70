// The native fast path's write-ahead over a node's own pages in the simulation (native/dsm_mmu.cc WriteAhead over own pages,
// SimMemory.ownWriteAheadOn): a fast write to a twinless page continuing a run of own pages written behind it
// also upgrades the next read-only own pages and reports them dirty, so a thread filling the memory its node
// homes faults every few pages instead of every page. The stores that follow on such a page take no fault at
// all: nothing may be lost, also when another thread of the node releases (closes the interval) between the
// upgrade and the store, and when other nodes hold copies of the pages being filled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest } from '../../src/protocol/engine.js';
import { SimCluster, type ThreadProgram } from './sim.js';
import { loadOp, syncOk } from './thread-ops.js';

const word = (page: number, k = 0): number => page * pageBytes + 4 * k;
const value = (round: number, page: number, k: number): number => ((round + 1) << 20) | (page << 4) | k;
const wordsWritten = 3;

/**
 * Node 0's thread A fills pages `first .. first + count - 1` (homed at node 0 with block placement) in page order,
 * every round with new values; node 0's thread B takes and releases a lock meanwhile (each release closes node 0's
 * interval while A's stream is under way); the other nodes' threads read every filled page after the barrier (so
 * they hold copies of them when the next round's fill starts) and check each word.
 */
function run(seed: number, ownWriteAhead: boolean, nodeCount: number): SimCluster {
  const rounds = 4;
  const first = 2;
  const count = 20;
  const parties = nodeCount + 1;
  const barrier: SyncRequest = { kind: 'barrier', barrierId: 7, parties };
  const lock = 0x9000;
  const cluster = new SimCluster({
    seed, nodeCount, pageCount: 32 * nodeCount, placement: 'block', prefetchPageCount: 1 + (seed % 4),
    ownWriteAhead, concurrentStepsMax: seed % 2 === 0 ? 0 : 1 + (seed % 5), deliverBias: 0.3 + (seed % 5) / 10,
    stepCountMax: 10_000_000,
  });
  cluster.addThread(0, () => (function* () {
    for (let round = 0; round < rounds; round++) {
      for (let page = first; page < first + count; page++) {
        for (let k = 0; k < wordsWritten; k++) yield { op: 'store', address: word(page, k), value: value(round, page, k) };
      }
      yield* syncOk(barrier);
      yield* syncOk(barrier);
    }
  })() as ThreadProgram);
  cluster.addThread(0, () => (function* () {
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 3 + (seed % 4); i++) {
        yield* syncOk({ kind: 'lock', lockId: lock, threadId: 2 });
        yield* syncOk({ kind: 'unlock', lockId: lock, threadId: 2 });
      }
      yield* syncOk(barrier);
      yield* syncOk(barrier);
    }
  })() as ThreadProgram);
  for (let node = 1; node < nodeCount; node++) {
    cluster.addThread(node, () => (function* () {
      for (let round = 0; round < rounds; round++) {
        yield* syncOk(barrier);
        for (let page = first; page < first + count; page++) {
          for (let k = 0; k < wordsWritten; k++) {
            const seen = yield* loadOp(word(page, k));
            if (seen !== value(round, page, k)) throw new Error(`seed ${seed} (${nodeCount} nodes, own write-ahead ${ownWriteAhead}): node ${node} reads word ${k} of page ${page} as ${seen.toString(16)} in round ${round}, not ${value(round, page, k).toString(16)}`);
          }
        }
        yield* syncOk(barrier);
      }
    })() as ThreadProgram);
  }
  cluster.run();
  cluster.drain();
  return cluster;
}

const fastWritesOf = (cluster: SimCluster): number => [...cluster.memories[0]!.fastWrites.values()].reduce((sum, n) => sum + n, 0);

test('own write-ahead: a thread filling its node\'s pages faults every few pages, and every store reaches the readers on other nodes (60 seeds, 2 and 3 nodes)', () => {
  let aheadPages = 0;
  let fastWith = 0;
  let fastWithout = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const nodeCount = 2 + (seed % 2);
    const on = run(seed, true, nodeCount);
    const off = run(seed, false, nodeCount);
    aheadPages += on.memories[0]!.writeAheadPages;
    assert.equal(off.memories[0]!.writeAheadPages, 0, `seed ${seed}: nothing written ahead with it off`);
    fastWith += fastWritesOf(on);
    fastWithout += fastWritesOf(off);
  }
  assert.ok(aheadPages > 60 * 4, `own pages were upgraded ahead of node 0's fills (${aheadPages})`);
  // Each round's fill of 20 pages: faults at its 1st, 2nd, 3rd, 5th, 9th and 17th page (the runs behind double).
  assert.ok(fastWith * 2 < fastWithout, `node 0 took under half the fast-path faults (${fastWith} with own write-ahead, ${fastWithout} without)`);
});

/**
 * Jacobi's shape on 2 nodes (block homes: pages 0..31 at node 0): node 0 writes pages 4..11 of its own every
 * iteration, in order, and node 1 writes pages 12..19 (homed at node 0) alone. Node 0's write stream runs into
 * node 1's pages, which its fast path upgrades ahead while they are still its own: they must move to node 1 all
 * the same (node 0 never stored to them), and every store must reach the readers.
 */
function runBands(seed: number, ownWriteAhead: boolean): SimCluster {
  const iterations = 6;
  const barrier: SyncRequest = { kind: 'barrier', barrierId: 5, parties: 2 };
  const own = { first: 4, count: 8 };
  const theirs = { first: 12, count: 8 };
  const cluster = new SimCluster({
    seed, nodeCount: 2, pageCount: 64, placement: 'block', migrateHomes: true, prefetchPageCount: 1 + (seed % 3),
    ownWriteAhead, concurrentStepsMax: seed % 2 === 0 ? 0 : 1 + (seed % 5), deliverBias: 0.3 + (seed % 5) / 10,
    stepCountMax: 10_000_000,
  });
  const band = (node: number, range: { first: number; count: number }, other: { first: number; count: number }) => (function* () {
    for (let it = 0; it < iterations; it++) {
      for (let page = range.first; page < range.first + range.count; page++) yield { op: 'store', address: word(page), value: value(it, page, node) };
      yield* syncOk(barrier);
      for (let page = other.first; page < other.first + other.count; page++) {
        const seen = yield* loadOp(word(page));
        if (seen !== value(it, page, 1 - node)) throw new Error(`seed ${seed}: node ${node} reads page ${page} as ${seen.toString(16)} in iteration ${it}`);
      }
      yield* syncOk(barrier);
    }
  })() as ThreadProgram;
  cluster.addThread(0, () => band(0, own, theirs));
  cluster.addThread(1, () => band(1, theirs, own));
  cluster.run();
  cluster.drain();
  for (let page = theirs.first; page < theirs.first + theirs.count; page++) {
    assert.equal(cluster.engines[1]!.homeOf(page), 1, `seed ${seed} (own write-ahead ${ownWriteAhead}): page ${page}, written by node 1 alone, moved to node 1`);
  }
  return cluster;
}

test('own write-ahead: pages another node writes alone still move to it when the home\'s write stream runs into them (40 seeds)', () => {
  let ahead = 0;
  for (let seed = 1; seed <= 40; seed++) {
    ahead += runBands(seed, true).memories[0]!.writeAheadPages;
    runBands(seed, false);
  }
  assert.ok(ahead > 40, `node 0's stream upgraded pages ahead (${ahead})`);
});

/**
 * A row-counter render's shape on 2 nodes (block homes: pages 0..31 at node 0, all fresh zeros): node 0 writes
 * pages 4..7 in order, a stream whose fast path upgrades the pages after it ahead; node 1 then writes pages 8..13
 * alone (the rows it took), which node 0 never stores to. Node 0's close finds those pages still all zeros and
 * leaves them out of its notice (HlrcCoherence.dropUnchangedAhead), so node 1 writes them with no fetch, as it
 * does with write-ahead off; every store still reaches the other node.
 */
function runRows(seed: number, ownWriteAhead: boolean): SimCluster {
  const barrier: SyncRequest = { kind: 'barrier', barrierId: 3, parties: 2 };
  const mine = { first: 4, count: 4 };
  const theirs = { first: 8, count: 6 };
  const cluster = new SimCluster({
    seed, nodeCount: 2, pageCount: 64, placement: 'block', prefetchPageCount: 1 + (seed % 3),
    ownWriteAhead, concurrentStepsMax: seed % 2 === 0 ? 0 : 1 + (seed % 5), deliverBias: 0.3 + (seed % 5) / 10,
    stepCountMax: 10_000_000,
  });
  const check = function* (node: number, range: { first: number; count: number }, writer: number) {
    for (let page = range.first; page < range.first + range.count; page++) {
      const seen = yield* loadOp(word(page, 1));
      if (seen !== value(0, page, writer)) throw new Error(`seed ${seed} (own write-ahead ${ownWriteAhead}): node ${node} reads page ${page} as ${seen.toString(16)}, not ${value(0, page, writer).toString(16)}`);
    }
  };
  cluster.addThread(0, () => (function* () {
    for (let page = mine.first; page < mine.first + mine.count; page++) yield { op: 'store', address: word(page, 1), value: value(0, page, 0) };
    yield* syncOk(barrier);
    yield* syncOk(barrier);
    yield* check(0, theirs, 1);
  })() as ThreadProgram);
  cluster.addThread(1, () => (function* () {
    yield* syncOk(barrier);
    for (let page = theirs.first; page < theirs.first + theirs.count; page++) yield { op: 'store', address: word(page, 1), value: value(0, page, 1) };
    yield* syncOk(barrier);
    yield* check(1, mine, 0);
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  return cluster;
}

test('own write-ahead: fresh pages the home\'s stream upgraded but never stored to cost the node that writes them no fetch (40 seeds)', () => {
  let unchanged = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const on = runRows(seed, true);
    const off = runRows(seed, false);
    unchanged += on.engines[0]!.counters().aheadUnchanged ?? 0;
    const fetchesOn = on.engines[1]!.counters().pageFetches;
    const fetchesOff = off.engines[1]!.counters().pageFetches;
    assert.ok(fetchesOn <= fetchesOff, `seed ${seed}: node 1 fetched ${fetchesOn} pages with node 0's write-ahead, ${fetchesOff} without`);
  }
  assert.ok(unchanged >= 40, `node 0 left unchanged pages written ahead out of its notices (${unchanged})`);
});
