// Streaming read-ahead (issue 13) in the simulation: a thread that sweeps a
// band homed on another node gets each next window issued when it first
// touches the current one, not when it faults past its end; every value read
// is right, and the read-ahead counters still add up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';

function* sync(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  if (!result.ok) throw new Error(`sync ${request.kind} failed`);
  return result;
}

const barrier: SyncRequest = { kind: 'barrier', barrierId: 3, parties: 2 };
const bandPages = 300;

/** Node 0 writes a band of its own; node 1 sweeps it (`wordsPerPage` loads a page, in order), `rounds` times, each after node 0 rewrote it. */
function sweep(options: { seed: number; streaming: boolean; wordsPerPage: number; rounds: number; concurrentStepsMax?: number; touchAhead?: boolean }) {
  const cluster = new SimCluster({
    seed: options.seed, nodeCount: 2, pageCount: 2 * bandPages + 2, placement: 'block', stepCountMax: 5_000_000,
    readAheadStreaming: options.streaming, concurrentStepsMax: options.concurrentStepsMax ?? 0, touchAhead: options.touchAhead === true,
    // Home migration would lend node 1 nothing here (it only reads), but keep the band at node 0 for certain.
    migrateHomes: false,
  });
  const stride = pageBytes / options.wordsPerPage;
  cluster.addThread(0, () => (function* () {
    for (let round = 0; round < options.rounds; round++) {
      for (let page = 0; page < bandPages; page++) yield { op: 'store', address: page * pageBytes, value: round * 1000 + page + 1 };
      yield* sync(barrier);
      yield* sync(barrier);
    }
  })() as ThreadProgram);
  cluster.addThread(1, () => (function* () {
    for (let round = 0; round < options.rounds; round++) {
      yield* sync(barrier);
      for (let page = 0; page < bandPages; page++) {
        for (let word = 0; word < options.wordsPerPage; word++) {
          const value = (yield { op: 'load', address: page * pageBytes + word * stride }) as number;
          const expected = word === 0 ? round * 1000 + page + 1 : 0;
          if (value !== expected) throw new Error(`round ${round}, page ${page}, word ${word}: read ${value}, expected ${expected}`);
        }
      }
      yield* sync(barrier);
    }
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  const counters = cluster.engines[1]!.counters();
  return { counters, pagesMoved: cluster.pagesMoved, messageCount: cluster.messageCount, pageRuns: cluster.memories[1]!.pageRuns, fastTouches: cluster.memories[1]!.fastTouches };
}

test('a sweep of a remote band: each next window goes out at the first touch of the current one, every value right', () => {
  for (const seed of [1, 2, 3]) {
    const on = sweep({ seed, streaming: true, wordsPerPage: 4, rounds: 2 });
    const off = sweep({ seed, streaming: false, wordsPerPage: 4, rounds: 2 });
    const ahead = on.counters.prefetchAheadFetches ?? 0;
    assert.ok(ahead >= 4, `seed ${seed}: ${ahead} windows streamed`);
    assert.equal(off.counters.prefetchAheadFetches ?? 0, 0);
    // Fetches a thread waited for: fewer (the windows came ahead).
    const waitedOn = on.counters.pageFetches - ahead;
    assert.ok(waitedOn < off.counters.pageFetches, `seed ${seed}: ${waitedOn} fetches from faults streaming, ${off.counters.pageFetches} without`);
    // The band, and at most a window per round past its end.
    assert.ok(on.pagesMoved <= 2 * (bandPages + 64), `seed ${seed}: ${on.pagesMoved} pages moved`);
    if (process.env.STREAM_LOG) console.log(seed, JSON.stringify({ on: { ...on.counters, moved: on.pagesMoved, messages: on.messageCount }, off: { ...off.counters, moved: off.pagesMoved, messages: off.messageCount } }));
    // Counters add up: every tracked read-ahead page is useful or wasted, and the sweep touched every one of the band.
    const tracked = on.counters.prefetchedPages ?? 0;
    const useful = on.counters.prefetchUsefulPages ?? 0;
    assert.ok(useful <= tracked && tracked - useful <= 2 * 64, `seed ${seed}: ${tracked} tracked, ${useful} useful`);
  }
});

test('first touches of read-ahead copies served in the "signal handler" (touchAhead): no fault for them, the windows still stream, the counters add up, every value right', () => {
  for (const seed of [11, 12, 13, 14]) {
    const concurrentStepsMax = seed % 2 === 0 ? 3 : 0;
    const on = sweep({ seed, streaming: true, wordsPerPage: 2, rounds: 3, concurrentStepsMax, touchAhead: true });
    const off = sweep({ seed, streaming: true, wordsPerPage: 2, rounds: 3, concurrentStepsMax });
    assert.ok(on.fastTouches > 0, `seed ${seed}: no touch served without a fault`);
    assert.equal(off.fastTouches, 0);
    // A touch served there is no read fault; each is still counted useful once the engine hears of it.
    assert.ok(on.counters.readFaults + on.fastTouches <= off.counters.readFaults + 64, `seed ${seed}: ${on.counters.readFaults} faults + ${on.fastTouches} touches, ${off.counters.readFaults} faults without`);
    assert.ok(on.counters.readFaults < off.counters.readFaults, `seed ${seed}: ${on.counters.readFaults} read faults, ${off.counters.readFaults} without`);
    assert.ok((on.counters.prefetchAheadFetches ?? 0) >= 4, `seed ${seed}: windows still stream`);
    const tracked = on.counters.prefetchedPages ?? 0;
    const useful = on.counters.prefetchUsefulPages ?? 0;
    assert.ok(useful <= tracked && tracked - useful <= 3 * 64, `seed ${seed}: ${tracked} tracked, ${useful} useful`);
    assert.ok(useful >= on.fastTouches - 64, `seed ${seed}: ${useful} useful for ${on.fastTouches} touches`);
  }
});

test('threads running between the engine\'s memory calls: streaming stays right', () => {
  for (const seed of [4, 5, 6, 7]) sweep({ seed, streaming: true, wordsPerPage: 2, rounds: 3, concurrentStepsMax: 3 });
});

test('one load a page, many rounds: the windows stream every round', () => {
  const { counters } = sweep({ seed: 8, streaming: true, wordsPerPage: 1, rounds: 4 });
  assert.ok((counters.prefetchAheadFetches ?? 0) >= 4 * 3, `${counters.prefetchAheadFetches ?? 0} windows streamed in 4 rounds`);
});

test('a window\'s copies are installed in one call (writePages), not one a page, and read back right', () => {
  for (const seed of [1, 2]) {
    const run = sweep({ seed, streaming: true, wordsPerPage: 4, rounds: 2 });
    const fetches = run.counters.pageFetches;
    assert.ok(run.pageRuns > 0, `seed ${seed}: ${run.pageRuns} runs installed in one call`);
    assert.ok(run.pageRuns <= fetches, `seed ${seed}: at most one run a fetch (${run.pageRuns} runs, ${fetches} fetches)`);
  }
});
