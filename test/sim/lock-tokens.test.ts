// Lock tokens at their node (issue 12.3): threads lock and unlock a token that
// rests at their node in the node's lock token table (src/channel/lock-tokens.ts,
// the real one), with no request to the engine; the sync layer
// (src/protocol/sync.ts) delegates tokens to the table and claims them back when
// another node, or a waiter of this node, wants them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';
import { runThread as run, syncOp } from './thread-ops.js';

const protocols = ['hlrc', 'sc'] as const;

function cluster(protocol: string, nodeCount = 3, seed = 42, lockTokenSlots = 16): SimCluster {
  return new SimCluster({ seed, nodeCount, pageCount: 4, protocol, lockTokenSlots });
}


/** A word on page 2: homed at node 2 of 3 (round-robin), so node 1's writes travel as diffs. */
const word = 8 + pageBytes * 2;

test('lock token: cached at its node, re-acquires cost no message and no engine request; a recall while free carries every holding\'s writes', () => {
  for (const protocol of protocols) {
    const c = cluster(protocol);
    run(c, 1, function* () {
      for (let round = 1; round <= 5; round++) {
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
        yield { op: 'store', address: word, value: round * 10 };
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
      }
    });
    assert.equal(c.messageCounts.get('lockRequest'), 1, `${protocol}: only the first lock asks the manager`);
    // The first lock is granted by the engine; its unlock and the 4 lock/unlock pairs after it run in the table.
    assert.equal(c.tokenFastOps, 9, protocol);
    assert.equal(c.engines[1]!.tableSizes()['held'], 0, `${protocol}: a delegated token has no holder in the layer`);
    let seen = 0;
    run(c, 2, function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 });
      seen = (yield { op: 'load', address: word }) as number;
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 2 });
    });
    assert.equal(seen, 50, `${protocol}: the last holding's write reached the next holder`);
    assert.equal(c.messageCounts.get('lockRecall'), 1, protocol);
    assert.equal(c.messageCounts.get('lockRelease'), 1, protocol);
    assert.equal(c.engines[1]!.counters().lockTokenReuses, 4, `${protocol}: the table's re-acquires are counted when the token is claimed`);
    assert.equal(c.engines[1]!.tableSizes()['tokens'], 0, `${protocol}: node 1 gave its token back`);
    assert.equal(c.engines[2]!.tableSizes()['tokens'], 1, `${protocol}: the token rests at node 2`);
  }
});

test('lock token: recalled while a thread holds it in the table, the unlock goes to the engine, which hands it over with the writes', () => {
  for (const protocol of protocols) {
    const c = cluster(protocol);
    // The token comes to rest at node 1 (one engine grant, then free in the table).
    run(c, 1, function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
    });
    const fastBefore = c.tokenFastOps;
    let seen = 0;
    let locked = false;
    c.addThread(1, () => (function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
      locked = true;
      yield { op: 'store', address: word, value: 77 };
      // Hold until the recall reached node 1: the layer claimed the token (it knows the holder now).
      while (c.engines[1]!.tableSizes()['held'] === 0) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
    })() as ThreadProgram);
    c.addThread(2, () => (function* () {
      while (!locked) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 });
      seen = (yield { op: 'load', address: word }) as number;
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 2 });
    })() as ThreadProgram);
    c.run(); c.drain();
    assert.equal(seen, 77, protocol);
    // Node 1: the lock in the table, its unlock through the engine. Node 2: granted by the engine, unlocked in its table.
    assert.equal(c.tokenFastOps - fastBefore, 2, protocol);
    for (const engine of c.engines) assert.equal(engine.tableSizes()['pending'], 0, protocol);
  }
});

test('lock token: tryLock in the table — taken when free, busy at once when another thread of the node holds it', () => {
  for (const protocol of protocols) {
    const c = cluster(protocol);
    const results: SyncResult[] = [];
    run(c, 1, function* () {
      yield* syncOp({ kind: 'lock', lockId: 5, threadId: 1 });
      yield* syncOp({ kind: 'unlock', lockId: 5, threadId: 1 });
    });
    const messages = c.messageCount;
    let held = false;
    let tried = false;
    c.addThread(1, () => (function* () {
      yield* syncOp({ kind: 'lock', lockId: 5, threadId: 1, tryOnly: true }, results);
      held = true;
      while (!tried) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'unlock', lockId: 5, threadId: 1 });
    })() as ThreadProgram);
    c.addThread(1, () => (function* () {
      while (!held) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 5, threadId: 3, tryOnly: true }, results);
      tried = true;
    })() as ThreadProgram);
    c.run(); c.drain();
    assert.deepEqual(results, [{ ok: true, value: null }, { ok: true, value: 'busy' }], protocol);
    assert.equal(c.messageCount, messages, `${protocol}: no message`);
  }
});

test('lock token: threads of several nodes (two on node 1, one on each other) contend for one lock; every increment counts', () => {
  let fastOps = 0;
  for (const protocol of protocols) {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const c = cluster(protocol, 3, seed, 1 << (seed % 3));
      const rounds = 12;
      for (let t = 0; t < 4; t++) {
        c.addThread(t < 2 ? 1 : t - 2 === 0 ? 0 : 2, () => (function* () {
          for (let k = 0; k < (t < 2 ? rounds : 2); k++) {
            yield* syncOp({ kind: 'lock', lockId: 9, threadId: t });
            const value = (yield { op: 'load', address: word }) as number;
            yield { op: 'store', address: word, value: value + 1 };
            yield* syncOp({ kind: 'unlock', lockId: 9, threadId: t });
          }
        })() as ThreadProgram);
      }
      c.run(); c.drain();
      let total = 0;
      run(c, 0, function* () {
        yield* syncOp({ kind: 'lock', lockId: 9, threadId: 99 });
        total = (yield { op: 'load', address: word }) as number;
        yield* syncOp({ kind: 'unlock', lockId: 9, threadId: 99 });
      });
      assert.equal(total, 2 * rounds + 2 * 2, `${protocol} seed ${seed}`);
      // Only node 1's own re-acquires can run in its table, between the recalls of the others.
      fastOps += c.tokenFastOps;
      for (const engine of c.engines) {
        const sizes = engine.tableSizes();
        assert.equal(sizes['pending'], 0, `${protocol} seed ${seed}`);
        assert.equal(sizes['tokenWaiters'], 0, `${protocol} seed ${seed}`);
      }
    }
  }
  assert.ok(fastOps > 0, 'some locks and unlocks ran in a table');
});

test('lock token: a thread terminated while it waits for a token held in the table leaves no waiter; the lock goes on', () => {
  for (const protocol of protocols) {
    const c = cluster(protocol);
    run(c, 1, function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
    });
    const results: SyncResult[] = [];
    let locked = false;
    let killed = false;
    c.addThread(1, () => (function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
      locked = true;
      while (!killed) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 }, results);
    })() as ThreadProgram);
    const doomed = c.addThread(1, () => (function* () {
      while (!locked) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 });
      throw new Error('the killed thread never resumes');
    })() as ThreadProgram);
    c.addThread(1, () => (function* () {
      while (!locked) yield* syncOp({ kind: 'release' });
      // The doomed thread found the token held in the table and waits in the layer.
      while (c.engines[1]!.tableSizes()['tokenWaiters'] === 0) yield* syncOp({ kind: 'release' });
      assert.ok(c.kill(doomed));
      assert.equal(c.engines[1]!.tableSizes()['tokenWaiters'], 0, `${protocol}: the waiter is gone`);
      killed = true;
    })() as ThreadProgram);
    c.run(); c.drain();
    run(c, 2, function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 3 }, results);
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 3 }, results);
    });
    assert.deepEqual(results, [{ ok: true, value: null }, { ok: true, value: null }, { ok: true, value: null }], protocol);
    for (const engine of c.engines) assert.equal(engine.tableSizes()['pending'], 0, protocol);
  }
});

test('lock token: a table with no room for a lock leaves it to the engine; slots of tokens gone are re-keyed', () => {
  const c = cluster('hlrc', 2, 42, 1);
  // One slot: lock 0 takes it; lock 1 (token here too) finds no room and goes through the engine.
  run(c, 1, function* () {
    for (const lockId of [0, 1]) {
      for (let k = 0; k < 3; k++) {
        yield* syncOp({ kind: 'lock', lockId, threadId: 1 });
        yield* syncOp({ kind: 'unlock', lockId, threadId: 1 });
      }
    }
  });
  assert.equal(c.tokenFastOps, 5, 'lock 0 in the table after its grant (5 ops), lock 1 always through the engine');
  // Node 0 takes lock 0 away; node 1's slot is then re-keyed for lock 1 at its next delegation.
  run(c, 0, function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 0 });
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 0 });
  });
  const before = c.tokenFastOps;
  run(c, 1, function* () {
    for (let k = 0; k < 3; k++) {
      yield* syncOp({ kind: 'lock', lockId: 1, threadId: 1 });
      yield* syncOp({ kind: 'unlock', lockId: 1, threadId: 1 });
    }
  });
  assert.equal(c.tokenFastOps - before, 5, 'lock 1 got the re-keyed slot at its first (engine) lock');
});
