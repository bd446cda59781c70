// Issue 13 in the simulation: home migration (docs/PROTOCOL.md, "Home migration").
//
// A page's static home lends it, at a barrier's departure, to the one node
// that alone wrote it since the last barrier. The lender's own writes of the
// migration window (a thread outside the barrier storing to the page as its
// home) must reach the borrower, and every request and diff still on its
// way to the lender must be forwarded in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { SimCluster, readU32, type ThreadOp, type ThreadProgram } from './sim.js';

function* sync(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  if (!result.ok) throw new Error(`sync ${request.kind} failed`);
  return result;
}

function* load(address: number): Generator<ThreadOp, number, unknown> {
  return (yield { op: 'load', address }) as number;
}

const barrier = (barrierId: number, parties: number): SyncRequest => ({ kind: 'barrier', barrierId, parties });

/** The node that holds itself home of a page (exactly one does). */
function homeNow(cluster: SimCluster, page: number): number {
  const homes = cluster.engines.filter((engine) => engine.homeOf(page) === engine.nodeId).map((engine) => engine.nodeId);
  assert.equal(homes.length, 1, `page ${page} has exactly one home (${homes.join(', ')})`);
  return homes[0]!;
}

/**
 * The scenario that deadlocked the barrier-migration prototype: page 0
 * (homed at node 0) is written only by node 1's thread A between barriers,
 * so it moves to node 1 at a barrier's departure, while node 0's thread C,
 * which is not in that barrier, keeps storing to another word of the same
 * page as its home, between arrival and departure too. C's stores made
 * before the lend must travel with the page, later ones as diffs to the new
 * home; nothing may wait forever and no store may be lost.
 */
function outsideWriterScenario(seed: number, concurrentStepsMax: number): { lent: number; cluster: SimCluster } {
  const phaseCount = 6;
  const storeCount = 40;
  const cluster = new SimCluster({ seed, nodeCount: 2, pageCount: 2, placement: 'block', concurrentStepsMax, deliverBias: 0.3 + (seed % 5) / 10 });
  const wordA = 64;
  const wordC = 512;
  // A: node 1, writes word A of page 0 every phase.
  cluster.addThread(1, () => (function* () {
    for (let phase = 0; phase < phaseCount; phase++) {
      yield { op: 'store', address: wordA, value: phase + 1 };
      yield* sync(barrier(7, 2));
      // B reads A's word between the two barriers.
      yield* sync(barrier(7, 2));
    }
    yield* sync(barrier(8, 3));
    const c = yield* load(wordC);
    if (c !== storeCount) throw new Error(`node 1 reads C's word as ${c}, expected ${storeCount}`);
  })() as ThreadProgram);
  // B: node 0, in barrier 7 with A, checks A's word after each.
  cluster.addThread(0, () => (function* () {
    for (let phase = 0; phase < phaseCount; phase++) {
      yield* sync(barrier(7, 2));
      const a = yield* load(wordA);
      if (a !== phase + 1) throw new Error(`node 0 reads A's word as ${a} after phase ${phase}, expected ${phase + 1}`);
      yield* sync(barrier(7, 2));
    }
    yield* sync(barrier(8, 3));
  })() as ThreadProgram);
  // C: node 0, outside barrier 7, stores to its own word of page 0 throughout.
  cluster.addThread(0, () => (function* () {
    for (let k = 1; k <= storeCount; k++) {
      yield { op: 'store', address: wordC, value: k };
      if (k % 8 === 0) yield* load(wordA); // a few reads keep the page in use here
    }
    yield* sync(barrier(8, 3));
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  const home = homeNow(cluster, 0);
  const master = cluster.memories[home]!.data;
  assert.equal(readU32(master, wordA), phaseCount, `seed ${seed}: home copy of A's word`);
  assert.equal(readU32(master, wordC), storeCount, `seed ${seed}: home copy of C's word`);
  return { lent: cluster.engines[0]!.counters().pagesLent ?? 0, cluster };
}

test('a page lent while a thread outside the barrier writes it as its home loses no store and never waits forever (200 seeds)', () => {
  let lent = 0;
  for (let seed = 1; seed <= 200; seed++) {
    try {
      lent += outsideWriterScenario(seed, seed % 2 === 0 ? 0 : 1 + (seed % 8)).lent;
    } catch (error) {
      assert.fail(`seed ${seed}: ${(error as Error).message}`);
    }
  }
  assert.ok(lent > 50, `page 0 moved to node 1 in most seeds (${lent} lends in 200 seeds)`);
});

/**
 * Jacobi's pattern: node 0's main thread fills the grid (so every page is
 * homed, and first written, at node 0), then each node's worker writes its
 * own band every iteration and reads the neighbor's boundary page. After the
 * first iterations node 1's band is homed at node 1 and costs no diffs.
 */
/** Page and diff bytes the cluster moved (fetched pages, diffs, lent pages). */
function bytesMoved(cluster: SimCluster): number {
  let bytes = 0;
  for (const { message } of cluster.sent) {
    if (message.type === 'diffs') for (const diff of message.diffs) bytes += diff.length;
    if ('bundled' in message && message.bundled !== undefined) for (const diff of message.bundled.diffs) bytes += diff.length;
    if (message.type === 'pageReply') bytes += message.bytes.length + message.extraBytes.reduce((sum, page) => sum + page.length, 0);
    if (message.type === 'homeLend') for (const page of message.bytes) bytes += page.length;
  }
  return bytes;
}

function bandRun(migrateHomes: boolean): SimCluster {
  const bandPages = 4;
  // Whole pages, every byte changed: a band's diff is as large as the band (as Jacobi's).
  const wordsPerPage = pageBytes / 4 - 32;
  const value = (it: number): number => (it + 2) * 0x01010101;
  const iterations = 8;
  const cluster = new SimCluster({ seed: 3, nodeCount: 2, pageCount: 4 * bandPages, placement: 'block', migrateHomes, prefetchPageCount: 1, stepCountMax: 10_000_000 });
  const word = (page: number, k = 0): number => page * pageBytes + 128 + 4 * k;
  cluster.addThread(0, () => (function* () {
    for (let page = 0; page < 2 * bandPages; page++) yield { op: 'store', address: word(page), value: 1 };
    yield* sync(barrier(7, 2));
    for (let it = 0; it < iterations; it++) {
      for (let page = 0; page < bandPages; page++) for (let k = 0; k < wordsPerPage; k++) yield { op: 'store', address: word(page, k), value: value(it) };
      yield* sync(barrier(7, 2));
      const edge = yield* load(word(bandPages));
      if (edge !== value(it)) throw new Error(`node 0 reads node 1's edge as ${edge} in iteration ${it}`);
      yield* sync(barrier(7, 2));
    }
  })() as ThreadProgram);
  cluster.addThread(1, () => (function* () {
    yield* sync(barrier(7, 2));
    for (let it = 0; it < iterations; it++) {
      for (let page = bandPages; page < 2 * bandPages; page++) for (let k = 0; k < wordsPerPage; k++) yield { op: 'store', address: word(page, k), value: value(it) };
      yield* sync(barrier(7, 2));
      const edge = yield* load(word(bandPages - 1));
      if (edge !== value(it)) throw new Error(`node 1 reads node 0's edge as ${edge} in iteration ${it}`);
      yield* sync(barrier(7, 2));
    }
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  return cluster;
}

test('a band written only by node 1 moves to node 1: its diffs stop', () => {
  const moved = bandRun(true);
  const fixed = bandRun(false);
  for (let page = 4; page < 8; page++) assert.equal(homeNow(moved, page), 1, `page ${page} of node 1's band is homed at node 1`);
  for (let page = 0; page < 4; page++) assert.equal(homeNow(moved, page), 0, `page ${page} of node 0's band stays at node 0`);
  const movedDiffs = moved.engines[1]!.counters().diffsSent;
  const fixedDiffs = fixed.engines[1]!.counters().diffsSent;
  // Without migration node 1 sends its 4 pages every iteration; with it, only
  // in the two iterations that make it their sole writer (the lend follows).
  assert.ok(fixedDiffs >= 4 * 8, `without migration node 1 diffs its band every iteration (${fixedDiffs})`);
  assert.ok(movedDiffs <= 2 * 4, `with migration node 1 diffs its band twice (${movedDiffs})`);
  assert.ok(bytesMoved(moved) < bytesMoved(fixed), `fewer bytes moved (${bytesMoved(moved)} vs ${bytesMoved(fixed)})`);
});
