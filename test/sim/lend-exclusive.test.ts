// A lend (docs/PROTOCOL.md, "Home migration"): the borrower takes each lent
// page exclusive (read-write, no write detection) as soon as its copy is
// complete, so its band's next writes take no fault (Jacobi's lend-up
// iterations: 2,048 write faults on node 1). The pages join its open
// interval as if written, so the lender's own copies (it was their home)
// are invalidated by that interval's notice: the lender reads every later
// write of the borrower, which took no fault.
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

const barrier: SyncRequest = { kind: 'barrier', barrierId: 7, parties: 2 };
const bandPages = 4;
const iterations = 8;
const word = (page: number, k = 0): number => page * pageBytes + 128 + 4 * k;
const value = (it: number, page: number): number => 1000 * (it + 1) + page;

/**
 * Node 0's main thread stands for Jacobi's fill: it writes both bands
 * (pages 0..7, all homed at node 0 by block placement over 16 pages). Then
 * each node writes its band every iteration and reads the other's edge page
 * (node 0 reads page 4, node 1 page 3) between two barriers. Node 1's band
 * is lent to it after the first window; pages 5..7 are then written only by
 * node 1 and read by no one.
 */
function bandRun(seed: number, concurrentStepsMax: number): { cluster: SimCluster; fastWritesAtLend: Map<number, number> } {
  // Node 1's fast-path writes of each page of its band when it first finds the page lent to it.
  const fastWritesAtLend = new Map<number, number>();
  const cluster = new SimCluster({ seed, nodeCount: 2, pageCount: 4 * bandPages, placement: 'block', prefetchPageCount: 1, concurrentStepsMax, deliverBias: 0.3 + (seed % 5) / 10 });
  const band = (node: number): number[] => Array.from({ length: bandPages }, (_, k) => node * bandPages + k);
  const edge = (node: number): number => (node === 0 ? bandPages : bandPages - 1);
  for (const node of [0, 1]) {
    cluster.addThread(node, () => (function* () {
      if (node === 0) for (let page = 0; page < 2 * bandPages; page++) yield { op: 'store', address: word(page), value: 1 };
      yield* sync(barrier);
      for (let it = 0; it < iterations; it++) {
        for (const page of band(node)) {
          if (node === 1 && !fastWritesAtLend.has(page) && cluster.engines[1]!.homeOf(page) === 1) fastWritesAtLend.set(page, cluster.memories[1]!.fastWrites.get(page) ?? 0);
        }
        for (const page of band(node)) yield { op: 'store', address: word(page, 1 + it), value: value(it, page) };
        yield* sync(barrier);
        const seen = (yield { op: 'load', address: word(edge(node), 1 + it) }) as number;
        if (seen !== value(it, edge(node))) throw new Error(`node ${node} reads page ${edge(node)} as ${seen} in iteration ${it}, expected ${value(it, edge(node))}`);
        yield* sync(barrier);
      }
      // The lender still held copies of node 1's band (it was their home):
      // node 1's writes after the lend took no fault, yet must be seen here.
      if (node === 0) {
        for (let page = bandPages; page < 2 * bandPages; page++) {
          for (let it = 0; it < iterations; it++) {
            const seen = (yield { op: 'load', address: word(page, 1 + it) }) as number;
            if (seen !== value(it, page)) throw new Error(`node 0 reads page ${page} word ${it} as ${seen} at the end, expected ${value(it, page)}`);
          }
        }
      }
    })() as ThreadProgram);
  }
  cluster.run();
  cluster.drain();
  return { cluster, fastWritesAtLend };
}

test('a lent page is exclusive at the borrower: its next writes take no fault, and values stay right (40 seeds)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const { cluster, fastWritesAtLend } = bandRun(seed, seed % 2 === 0 ? 0 : 1 + (seed % 4));
    const lent = cluster.engines[0]!.counters().pagesLent ?? 0;
    assert.ok(lent >= bandPages - 1, `seed ${seed}: node 1's band lent (${lent} pages)`);
    // Pages 5..7: written by node 1 only, read by no one after the lend.
    for (let page = bandPages + 1; page < 2 * bandPages; page++) {
      assert.equal(cluster.engines[1]!.homeOf(page), 1, `seed ${seed}: page ${page} homed at node 1`);
      // After the window that lends them (the second here: node 1's first stores, after the first departure, fetch pages exclusive at node 0; migration.ts noteExclusiveShared).
      assert.ok(fastWritesAtLend.has(page), `seed ${seed}: page ${page} was lent before node 1's last iteration`);
      assert.equal((cluster.memories[1]!.fastWrites.get(page) ?? 0) - fastWritesAtLend.get(page)!, 0, `seed ${seed}: node 1's writes of page ${page} after the lend took no fault`);
      for (let it = 0; it < iterations; it++) assert.equal(readU32(cluster.memories[1]!.data, word(page, 1 + it)), value(it, page), `seed ${seed}: page ${page} word ${it}`);
    }
  }
});
