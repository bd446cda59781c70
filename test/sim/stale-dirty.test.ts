// A flush that takes a fast-path twin leaves a stale dirty-ring entry (session 20).
//
// A page flushed early stays in the open interval, read-only with the native
// fast path on. A store made while a later flush runs (here: the release's)
// twins it through the fast path and that flush takes the twin home, but the
// dirty ring still names the page, so the next drain puts it in the engine's
// `twinned` set with no twin behind it. A write fault then made no twin and
// its store never went home (the random simulation at --early-flush 0.3,
// seed 4420). This is that schedule, written out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyncRequest } from '../../src/protocol/engine.js';
import { SimCluster, type ThreadProgram } from './sim.js';
import { pageBytes } from '../../src/constants.js';
import { loadOp as load, syncOk as sync } from './thread-ops.js';

const barrier = (parties: number): SyncRequest => ({ kind: 'barrier', barrierId: 7, parties });

/**
 * Node 1 (the home of page 1) passes `rounds` barriers with node 0, reads words a, b and c of page 1 (node 0's
 * three stores, 11, 22, 33), then the cluster runs to its end.
 */
function homeReadsAfter(cluster: SimCluster, rounds: number, [a, b, c]: number[]): void {
  let checked = false;
  cluster.addThread(1, () => (function* () {
    for (let k = 0; k < rounds; k++) yield* sync(barrier(2));
    assert.deepEqual([yield* load(a!), yield* load(b!), yield* load(c!)], [11, 22, 33], 'every store of node 0 reached the home');
    checked = true;
  })() as ThreadProgram);
  cluster.run();
  cluster.drain();
  assert.ok(checked);
}

test('a write fault on a page whose twin a flush took (its dirty entry stale) still makes a twin: the store goes home', () => {
  // Pages 1 and 3 are node 1's (round robin); node 0 writes them. A twin limit
  // of one page makes node 0's store to page 1 fault once page 3 holds a twin.
  const cluster = new SimCluster({ seed: 1, nodeCount: 2, pageCount: 4, placement: 'roundRobin', twinPageCountMax: 1, migrateHomes: false });
  const memory = cluster.memories[0]!;
  const engine = cluster.engines[0]!;
  const a = pageBytes + 0;
  const b = pageBytes + 4;
  const c = pageBytes + 8;
  // Once armed, node 0's next flush call begins with an app store to word b
  // (as the concurrent simulation runs app threads at an engine's memory calls).
  let armed = false;
  const flush = memory.flush.bind(memory);
  memory.flush = (pages) => {
    if (armed) {
      armed = false;
      assert.ok(memory.storeAllowed(1), 'the fast path takes the store (page 1 read-only, fast path on)');
      new DataView(memory.data.buffer).setUint32(b, 22, true);
    }
    return flush(pages);
  };
  cluster.addThread(0, () => (function* () {
    yield { op: 'store', address: a, value: 11 };
    // An early flush: page 1's diff goes home, the page stays in the open interval, read-only.
    assert.equal(engine.flushDirty(1), 1);
    armed = true;
    yield* sync(barrier(2));
    assert.equal(armed, false, 'the release flushed page 1 (and took the twin of the store to b)');
    yield { op: 'store', address: 3 * pageBytes, value: 5 };
    const faults = engine.counters().writeFaults;
    yield { op: 'store', address: c, value: 33 };
    assert.equal(engine.counters().writeFaults, faults + 1, 'the store to page 1 faulted into the engine (twin limit)');
    yield* sync(barrier(2));
  })() as ThreadProgram);
  homeReadsAfter(cluster, 2, [a, b, c]);
});

test('deferred diffs: a twinless page deferred with a stale dirty entry, twinned by a store before its fast path went off, is deferred once', () => {
  const cluster = new SimCluster({ seed: 1, nodeCount: 2, pageCount: 2, placement: 'roundRobin', deferDiffPageCountMin: 1, deferredFlushChance: 0, migrateHomes: false });
  const memory = cluster.memories[0]!;
  const engine = cluster.engines[0]!;
  const [a, b, c] = [pageBytes, pageBytes + 4, pageBytes + 8];
  const store = (address: number, value: number): void => {
    assert.ok(memory.storeAllowed(1), 'the fast path takes the store (page 1 read-only, fast path on)');
    new DataView(memory.data.buffer).setUint32(address, value, true);
  };
  // Armed, node 0's next flush (or fast-path switch) call begins with an app store.
  let flushStore: (() => void) | null = null;
  let switchStore: (() => void) | null = null;
  const flush = memory.flush.bind(memory);
  memory.flush = (pages) => {
    const then = flushStore;
    flushStore = null;
    then?.();
    return flush(pages);
  };
  const setFastWrite = memory.setFastWrite.bind(memory);
  memory.setFastWrite = (pages, enabled) => {
    const then = switchStore;
    switchStore = null;
    then?.();
    setFastWrite(pages, enabled);
  };
  cluster.addThread(0, () => (function* () {
    yield { op: 'store', address: a, value: 11 };
    assert.equal(engine.flushDirty(1), 1);
    // The release flushes page 1 (none twinned: nothing deferred), taking the twin of this store: a stale entry.
    flushStore = () => store(b, 22);
    yield* sync(barrier(2));
    assert.equal(flushStore, null);
    // The next release defers page 1 (in `twinned` through the stale entry); a store twins it before its fast path goes off.
    switchStore = () => store(c, 33);
    yield* sync(barrier(2));
    assert.equal(switchStore, null);
    yield* sync(barrier(2));
  })() as ThreadProgram);
  homeReadsAfter(cluster, 3, [a, b, c]);
});
