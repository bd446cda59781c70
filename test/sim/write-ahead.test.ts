// The native fast path's write-ahead in the simulation (SimMemory.writeAheadPageCountMax,
// native/dsm_mmu.cc WriteAhead): a fast write continuing a run of twinned pages
// twins and upgrades the next read-only pages with it, so a sequential write
// stream faults every few pages. Pages twinned ahead that their node never
// writes close with empty diffs and are named in its write notice: the engine
// must lose no store of the node that does write them, and lends must still
// happen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest } from '../../src/protocol/engine.js';
import { SimCluster, readU32, type ThreadOp, type ThreadProgram } from './sim.js';
import { loadOp, syncOk } from './thread-ops.js';


const barrier: SyncRequest = { kind: 'barrier', barrierId: 9, parties: 2 };
const word = (page: number, k = 0): number => page * pageBytes + 4 * k;
/** Node 1's band (homed at node 0 by block placement, as Jacobi's grids), then pages node 0 writes right after it. */
const band = { first: 4, count: 8 };
const after = { first: 12, count: 2 };
const wordsWritten = 4;
const value = (it: number, page: number): number => ((it + 1) << 16) | page;

/**
 * Node 0's main thread first stores to every page (all homed at node 0, pages
 * 0..31 of 64 with block placement). Then, every iteration, node 1 writes its
 * band in page order (a write stream: write-ahead runs past its end into the
 * pages after it, which node 1 read the iteration before), node 0 writes the
 * pages after the band, and after a barrier each reads the other's pages.
 */
function run(seed: number, writeAheadPageCountMax: number, migrateHomes: boolean): SimCluster {
  const iterations = 6;
  const cluster = new SimCluster({
    seed, nodeCount: 2, pageCount: 64, placement: 'block', migrateHomes, prefetchPageCount: 1 + (seed % 3),
    writeAheadPageCountMax, concurrentStepsMax: seed % 2 === 0 ? 0 : 1 + (seed % 5), deliverBias: 0.3 + (seed % 5) / 10,
    stepCountMax: 10_000_000,
  });
  cluster.addThread(0, () => (function* () {
    for (let page = 0; page < 32; page++) yield { op: 'store', address: word(page, 100), value: 1 };
    yield* syncOk(barrier);
    for (let it = 0; it < iterations; it++) {
      for (let page = after.first; page < after.first + after.count; page++) for (let k = 0; k < wordsWritten; k++) yield { op: 'store', address: word(page, k), value: value(it, page) };
      yield* syncOk(barrier);
      for (let page = band.first; page < band.first + band.count; page++) {
        const seen = yield* loadOp(word(page, wordsWritten - 1));
        if (seen !== value(it, page)) throw new Error(`seed ${seed}: node 0 reads page ${page} of node 1's band as ${seen.toString(16)} in iteration ${it}`);
      }
      yield* syncOk(barrier);
    }
  })() as ThreadProgram);
  cluster.addThread(1, () => (function* () {
    yield* syncOk(barrier);
    for (let it = 0; it < iterations; it++) {
      for (let page = band.first; page < band.first + band.count; page++) for (let k = 0; k < wordsWritten; k++) yield { op: 'store', address: word(page, k), value: value(it, page) };
      yield* syncOk(barrier);
      for (let page = after.first; page < after.first + after.count; page++) {
        const seen = yield* loadOp(word(page, 0));
        if (seen !== value(it, page)) throw new Error(`seed ${seed}: node 1 reads page ${page} as ${seen.toString(16)} in iteration ${it}`);
      }
      yield* syncOk(barrier);
    }
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  return cluster;
}

/** The word as its home holds it now (the page's one home). */
function atHome(cluster: SimCluster, address: number): number {
  const page = Math.floor(address / pageBytes);
  const home = cluster.engines.find((engine) => engine.homeOf(page) === engine.nodeId)!;
  return readU32(cluster.memories[home.nodeId]!.data, address);
}

test('write-ahead: node 1\'s band stream faults every few pages, the pages twinned past its end lose none of node 0\'s stores, and the band still moves (40 seeds)', () => {
  let aheadPages = 0;
  let pastBand = 0;
  let fastWith = 0;
  let fastWithout = 0;
  for (let seed = 1; seed <= 40; seed++) {
    for (const migrateHomes of [true, false]) {
      const ahead = run(seed, 15, migrateHomes);
      const plain = run(seed, 0, migrateHomes);
      aheadPages += ahead.memories[1]!.writeAheadPages;
      for (const [page, count] of ahead.memories[1]!.writtenAhead) if (page >= after.first) pastBand += count;
      const fastOf = (cluster: SimCluster): number => [...cluster.memories[1]!.fastWrites.values()].reduce((sum, n) => sum + n, 0);
      fastWith += fastOf(ahead);
      fastWithout += fastOf(plain);
      for (const cluster of [ahead, plain]) {
        for (let page = band.first; page < band.first + band.count; page++) {
          assert.equal(atHome(cluster, word(page, wordsWritten - 1)), value(5, page), `seed ${seed}: page ${page}'s home holds node 1's last store`);
          if (migrateHomes) assert.equal(cluster.engines[1]!.homeOf(page), 1, `seed ${seed}: page ${page} of node 1's band moved to node 1`);
        }
        for (let page = after.first; page < after.first + after.count; page++) {
          assert.equal(atHome(cluster, word(page, 0)), value(5, page), `seed ${seed}: page ${page}'s home holds node 0's last store`);
        }
      }
    }
  }
  // Pages twinned ahead: within the band, and past its end into the pages node 0 writes.
  assert.ok(aheadPages > 40 * 8, `write-ahead twinned pages ahead of node 1's stream (${aheadPages})`);
  assert.ok(pastBand > 40, `pages node 0 writes were twinned ahead by node 1 (${pastBand} times)`);
  // 8 pages a stream: faults at its 1st, 2nd, 4th and 8th page; none on the band once it is lent.
  assert.ok(fastWith * 4 < fastWithout * 3, `node 1 took under 3/4 of the fast-path faults (${fastWith} with write-ahead, ${fastWithout} without)`);
});

test('write-ahead off (0) twins nothing ahead', () => {
  assert.equal(run(1, 0, true).memories[1]!.writeAheadPages, 0);
});
