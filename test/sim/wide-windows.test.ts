// Read-ahead windows of up to 256 pages (the runtime's limit since session 13,
// prefetchPageCountRuntime; the engine's default stays 64) in the simulation:
// QuickSort's remote partition, a scan from both ends of a band homed on the
// other node that swaps as it goes. Every value must come out right whatever
// the interleaving, and the wide windows must take fewer fetches than 64-page ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes, prefetchPageCountDefault, prefetchPageCountRuntime } from '../../src/constants.js';
import type { SyncRequest } from '../../src/protocol/engine.js';
import { SimCluster, type ThreadProgram } from './sim.js';
import { loadOp, syncOk } from './thread-ops.js';

const bandPages = 1024;
const barrier: SyncRequest = { kind: 'barrier', barrierId: 7, parties: 2 };
/** Words of each page the scan reads and swaps (word 0 and one more). */
const words = [0, 300];

function valueOf(page: number, word: number): number {
  return page * 10 + (word === 0 ? 1 : 2);
}

/** Node 0 fills the band (its home); node 1 reverses it from both ends at once; node 0 checks every word. */
function reverse(options: { seed: number; prefetchPageCount: number; concurrentStepsMax: number; streaming: boolean }) {
  const cluster = new SimCluster({
    seed: options.seed, nodeCount: 2, pageCount: 2 * bandPages, placement: 'block', stepCountMax: 20_000_000,
    prefetchPageCount: options.prefetchPageCount, readAheadStreaming: options.streaming, concurrentStepsMax: options.concurrentStepsMax,
  });
  cluster.addThread(0, () => (function* () {
    for (let page = 0; page < bandPages; page++) for (const word of words) yield { op: 'store', address: page * pageBytes + 4 * word, value: valueOf(page, word) };
    yield* syncOk(barrier);
    yield* syncOk(barrier);
    for (let page = 0; page < bandPages; page++) {
      for (const word of words) {
        const value = yield* loadOp(page * pageBytes + 4 * word);
        const expected = valueOf(bandPages - 1 - page, word);
        if (value !== expected) throw new Error(`seed ${options.seed}: page ${page} word ${word} reads ${value}, expected ${expected}`);
      }
    }
  })() as ThreadProgram);
  cluster.addThread(1, () => (function* () {
    yield* syncOk(barrier);
    for (let low = 0, high = bandPages - 1; low < high; low++, high--) {
      for (const word of words) {
        const a = yield* loadOp(low * pageBytes + 4 * word);
        const b = yield* loadOp(high * pageBytes + 4 * word);
        yield { op: 'store', address: low * pageBytes + 4 * word, value: b };
        yield { op: 'store', address: high * pageBytes + 4 * word, value: a };
      }
    }
    yield* syncOk(barrier);
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  return { counters: cluster.engines[1]!.counters(), pagesMoved: cluster.pagesMoved };
}

test('a band reversed from both ends with 256-page windows: every value right, fewer fetches than with 64-page windows', () => {
  for (const seed of [1, 2, 3]) {
    const wide = reverse({ seed, prefetchPageCount: prefetchPageCountRuntime, concurrentStepsMax: 0, streaming: true });
    const narrow = reverse({ seed, prefetchPageCount: prefetchPageCountDefault, concurrentStepsMax: 0, streaming: true });
    assert.ok(wide.counters.pageFetches < narrow.counters.pageFetches, `seed ${seed}: ${wide.counters.pageFetches} fetches with 256-page windows, ${narrow.counters.pageFetches} with 64`);
    // Each page of the band comes once (a window never runs past the band into pages nobody reads by more than one window each way).
    assert.ok(wide.pagesMoved <= bandPages + 2 * prefetchPageCountRuntime, `seed ${seed}: ${wide.pagesMoved} pages moved`);
  }
});

test('256-page windows with threads running between the engine\'s memory calls, streaming on and off: every value right', () => {
  for (const seed of [4, 5, 6, 7]) {
    reverse({ seed, prefetchPageCount: prefetchPageCountRuntime, concurrentStepsMax: 3, streaming: seed % 2 === 0 });
  }
});
