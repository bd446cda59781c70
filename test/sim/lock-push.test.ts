// Token pushes (src/protocol/sync.ts, session 23): a lock's manager sends a
// free token ahead to the node predicted to take it next, the node that took
// it in the last phase (between barriers) and not yet in this one (Water's
// energy sum: each node adds its share under one mutex once a step). Mutual
// exclusion is asserted at every take, every increment is seen, and the
// pushes are taken, also when a request of the pushed node crossed the push.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import { SimCluster, type ThreadProgram } from './sim.js';
import { syncOp } from './thread-ops.js';

const lockId = 0;
const barrierId = 3;
/** The shared sum on page 1; each thread's own words on page 2 + node (written between the barriers). */
const sumWord = 8 + pageBytes;

interface Outcome { sum: number; pushes: number; taken: number; crossed: number; unused: number; requests: number }

/**
 * `nodeCount` nodes, `threads` threads each, `steps` steps: some work of a
 * random length (node-local releases), the lock (a tryLock first, if
 * `tryFirst`), the sum's increment, the unlock, a barrier, a write of the
 * thread's own word, a barrier.
 */
function reduce(seed: number, protocol: string, nodeCount: number, threads: number, steps: number, lockPush: boolean, tryFirst: boolean, slots?: number): Outcome {
  const c = new SimCluster({ seed, nodeCount, pageCount: 8, protocol, lockPush, lockKeep: true, ...(slots === undefined ? {} : { lockTokenSlots: slots }) });
  const parties = nodeCount * threads;
  let holder = -1;
  let sum = 0;
  let work = seed * 7919;
  for (let node = 0; node < nodeCount; node++) {
    for (let t = 0; t < threads; t++) {
      c.addThread(node, (thread) => (function* () {
        for (let step = 0; step < steps; step++) {
          work = (work * 1103515245 + 12345) & 0x7fffffff;
          const length = work % 24;
          for (let s = 0; s < length; s++) yield* syncOp({ kind: 'release' });
          let got = false;
          if (tryFirst) {
            const tried = yield* syncOp({ kind: 'lock', lockId, threadId: thread, tryOnly: true });
            assert.ok(tried.ok, 'a tryLock answers');
            got = tried.value === null;
          }
          if (!got) {
            const locked = yield* syncOp({ kind: 'lock', lockId, threadId: thread });
            assert.ok(locked.ok && locked.value === null, 'a lock is granted');
          }
          assert.equal(holder, -1, `seed ${seed}: thread ${thread} took the lock while thread ${holder} holds it`);
          holder = thread;
          const value = (yield { op: 'load', address: sumWord }) as number;
          yield { op: 'store', address: sumWord, value: value + 1 };
          sum++;
          holder = -1;
          yield* syncOp({ kind: 'unlock', lockId, threadId: thread });
          yield* syncOp({ kind: 'barrier', barrierId, parties });
          yield { op: 'store', address: (2 + node) * pageBytes + 8 * t, value: step };
          yield* syncOp({ kind: 'barrier', barrierId, parties });
        }
      })() as ThreadProgram);
    }
  }
  c.run(); c.drain();
  let seen = -1;
  c.addThread(nodeCount - 1, (thread) => (function* () {
    yield* syncOp({ kind: 'lock', lockId, threadId: thread });
    seen = (yield { op: 'load', address: sumWord }) as number;
    yield* syncOp({ kind: 'unlock', lockId, threadId: thread });
  })() as ThreadProgram);
  c.run(); c.drain();
  assert.equal(sum, steps * parties, `seed ${seed}`);
  assert.equal(seen, sum, `seed ${seed}, ${protocol}: every increment made under the lock is seen by the next holder`);
  for (const engine of c.engines) {
    const sizes = engine.tableSizes();
    assert.equal(sizes['pending'], 0, `seed ${seed}: no request left`);
    assert.equal(sizes['held'], 0, `seed ${seed}: no lock held`);
    assert.equal(sizes['crossedRequests'], 0, `seed ${seed}: every crossed request's grant came back`);
  }
  const count = (name: 'lockPushes' | 'lockPushesTaken' | 'lockPushesCrossed' | 'lockPushesUnused'): number =>
    c.engines.reduce((total, engine) => total + (engine.counters()[name] ?? 0), 0);
  return { sum, pushes: count('lockPushes'), taken: count('lockPushesTaken'), crossed: count('lockPushesCrossed'), unused: count('lockPushesUnused'), requests: c.messageCounts.get('lockRequest') ?? 0 };
}

test('lock push: a reduction under one lock between barriers, on 2 nodes: the token goes ahead to the other node, which takes it with no request', () => {
  for (const protocol of ['hlrc', 'sc']) {
    let pushes = 0;
    let taken = 0;
    let crossed = 0;
    let requestsOn = 0;
    let requestsOff = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const on = reduce(seed, protocol, 2, 1, 30, true, false);
      const off = reduce(seed, protocol, 2, 1, 30, false, false);
      assert.equal(off.pushes, 0, 'no push when off');
      assert.ok(on.requests <= off.requests, `${protocol}, seed ${seed}: ${on.requests} lock requests with pushes against ${off.requests}`);
      requestsOn += on.requests;
      requestsOff += off.requests;
      pushes += on.pushes;
      taken += on.taken;
      crossed += on.crossed;
    }
    assert.ok(taken * 3 >= pushes * 2, `${protocol}: ${taken} of ${pushes} pushed tokens taken`);
    assert.ok(requestsOn * 10 <= requestsOff * 9, `${protocol}: ${requestsOn} lock requests with pushes against ${requestsOff}`);
    assert.ok(crossed > 0, `${protocol}: some pushes crossed a request of their node (${crossed})`);
  }
});

test('lock push: more nodes and threads, tryLocks, small token tables: exclusion and every increment hold', () => {
  let pushes = 0;
  for (const protocol of ['hlrc', 'sc']) {
    for (let seed = 1; seed <= 16; seed++) {
      const nodeCount = 2 + (seed % 3);
      const threads = 1 + (seed % 2);
      const slots = seed % 4 === 0 ? 2 : undefined;
      const outcome = reduce(seed, protocol, nodeCount, threads, 16, true, seed % 3 === 1, slots);
      pushes += outcome.pushes;
    }
  }
  assert.ok(pushes > 0, `tokens were pushed (${pushes})`);
});
