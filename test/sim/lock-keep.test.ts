// The keep window of a contended lock (src/protocol/lock-keep.ts, the sync
// layer's keep in src/protocol/sync.ts): a node whose own threads still take a
// mutex keeps its token for a window after another node asked, so contention
// across nodes goes in batches; the node that asked gets the token within the
// fairness bound (lockKeepMsMax after the token arrived, plus a critical
// section and the hand-over). Mutual exclusion is asserted at every take.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lockKeepIdleMs, lockKeepMsMax, lockKeepTakeCountMax, pageBytes } from '../../src/constants.js';
import { SimCluster, type ThreadProgram } from './sim.js';
import { syncOp } from './thread-ops.js';

const protocols = ['hlrc', 'sc'] as const;
/** A word on page 1: homed at node 1 of 2 (round-robin); lock 0's manager is node 0. */
const word = 8 + pageBytes;

interface Contention { grants: number; crossings: number; waitsMs: number[]; counter: number; keepTakes: number }

/**
 * Two nodes, one thread each (as matmul on 2 nodes): each takes lock 0
 * `rounds` times, with a critical section of `sectionSteps` steps (1/16 ms of
 * simulated time each), and asks again at once. Returns the lock grants sent
 * and the simulated wait of every lock.
 */
function contend(protocol: string, lockKeep: boolean, seed: number, lockTokenSlots?: number, rounds = 40, sectionSteps = 8): Contention {
  const c = new SimCluster({ seed, nodeCount: 2, pageCount: 4, protocol, lockKeep, ...(lockTokenSlots === undefined ? {} : { lockTokenSlots }) });
  let holder = -1;
  let lastNode = -1;
  let crossings = 0;
  let counter = 0;
  const waitsMs: number[] = [];
  for (const node of [0, 1]) {
    c.addThread(node, (thread) => (function* () {
      for (let k = 0; k < rounds; k++) {
        const askedAtMs = c.nowMs;
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
        waitsMs.push(c.nowMs - askedAtMs);
        assert.equal(holder, -1, `${protocol}: thread ${thread} took lock 0 while thread ${holder} holds it`);
        holder = thread;
        if (node !== lastNode) { crossings++; lastNode = node; }
        const value = (yield { op: 'load', address: word }) as number;
        for (let s = 0; s < sectionSteps; s++) yield* syncOp({ kind: 'release' });
        yield { op: 'store', address: word, value: value + 1 };
        counter++;
        holder = -1;
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
      }
    })() as ThreadProgram);
  }
  c.run(); c.drain();
  let seen = -1;
  c.addThread(0, (thread) => (function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
    seen = (yield { op: 'load', address: word }) as number;
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
  })() as ThreadProgram);
  c.run(); c.drain();
  assert.equal(seen, 2 * rounds, `${protocol}: every increment made under the lock is seen by the next holder`);
  for (const engine of c.engines) {
    assert.equal(engine.tableSizes()['pending'], 0, protocol);
    assert.equal(engine.tableSizes()['held'], 0, protocol);
  }
  const keepTakes = c.engines.reduce((sum, engine) => sum + (engine.counters().lockKeepTakes ?? 0), 0);
  return { grants: c.messageCounts.get('lockGrant') ?? 0, crossings, waitsMs, counter, keepTakes };
}

test('lock keep: two nodes contending for one lock take it in batches, and each waits within the fairness bound', () => {
  for (const protocol of protocols) {
    for (const slots of [undefined, 16]) {
      for (const seed of [1, 2, 3]) {
        const off = contend(protocol, false, seed, slots);
        const on = contend(protocol, true, seed, slots);
        const label = `${protocol}, table ${slots ?? 'none'}, seed ${seed}`;
        assert.equal(on.counter, 80, label);
        assert.ok(on.keepTakes > 0, `${label}: kept tokens were taken`);
        // Without the window the token crosses at almost every section; with it, in batches.
        assert.ok(on.crossings * 3 <= off.crossings, `${label}: ${on.crossings} crossings kept against ${off.crossings}`);
        assert.ok(on.grants * 3 <= off.grants, `${label}: ${on.grants} grants kept against ${off.grants}`);
        // Fairness: the wait of a lock is at most the window's bound, the holder's section, and the hand-over
        // (the simulated network delivers at random, so the hand-over gets a generous allowance).
        const waitMax = Math.max(...on.waitsMs);
        assert.ok(waitMax <= lockKeepMsMax + 16, `${label}: a lock waited ${waitMax} ms (bound ${lockKeepMsMax} ms + section + hand-over)`);
      }
    }
  }
});

test('lock keep: a kept token no thread of its node takes again goes after the idle time', () => {
  for (const protocol of protocols) {
    for (const slots of [undefined, 16]) {
      const c = new SimCluster({ seed: 5, nodeCount: 2, pageCount: 4, protocol, lockKeep: true, ...(slots === undefined ? {} : { lockTokenSlots: slots }) });
      const label = `${protocol}, table ${slots ?? 'none'}`;
      let taken = false;
      let unlockedAtMs = -1;
      let grantedAtMs = -1;
      // Node 1's thread takes the lock, holds it until node 0's ask recalled it, unlocks, and never comes back.
      c.addThread(1, (thread) => (function* () {
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
        taken = true;
        while (c.engines[1]!.tableSizes()['tokensRecalled'] === 0) yield* syncOp({ kind: 'release' });
        unlockedAtMs = c.nowMs;
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
      })() as ThreadProgram);
      c.addThread(0, (thread) => (function* () {
        while (!taken) yield* syncOp({ kind: 'release' });
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
        grantedAtMs = c.nowMs;
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
      })() as ThreadProgram);
      c.run(); c.drain();
      assert.equal(c.engines[1]!.counters().lockKeepIdle, 1, `${label}: one keep nobody used`);
      assert.equal(c.engines[1]!.tableSizes()['keeping'], 0, `${label}: no keep left`);
      assert.equal(c.engines[1]!.tableSizes()['tokens'], 0, `${label}: the token left node 1`);
      // The idle keep made node 0 wait at most lockKeepIdleMs after the unlock (plus a tick and the hand-over).
      assert.ok(grantedAtMs - unlockedAtMs <= lockKeepIdleMs + 3, `${label}: granted ${grantedAtMs - unlockedAtMs} ms after the unlock`);
    }
  }
});

test('lock keep: a thread terminated while waiting at its node for a kept token is forgotten; the token still goes to the node that asked', () => {
  for (const protocol of protocols) {
    for (const slots of [undefined, 16]) {
      const c = new SimCluster({ seed: 9, nodeCount: 2, pageCount: 4, protocol, lockKeep: true, ...(slots === undefined ? {} : { lockTokenSlots: slots }) });
      const label = `${protocol}, table ${slots ?? 'none'}`;
      let holder = -1;
      let remoteAsked = false;
      let doomedAsked = false;
      let killed = false;
      let waitingAtKill = -1;
      const order: string[] = [];
      // Node 1: thread A holds the lock across the kill; thread B (doomed) waits for it at node 1, kept there.
      c.addThread(1, (thread) => (function* () {
        for (let k = 0; k < 6; k++) {
          yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
          assert.equal(holder, -1, label); holder = thread;
          order.push(`A${k}`);
          while (k === 0 && !killed) yield* syncOp({ kind: 'release' });
          holder = -1;
          yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
        }
      })() as ThreadProgram);
      const doomed = c.addThread(1, (thread) => (function* () {
        while (!remoteAsked) yield* syncOp({ kind: 'release' });
        // Once the recall reached node 1: B's ask finds the token recalled, and kept (A took it moments ago).
        while (c.engines[1]!.tableSizes()['tokensRecalled'] === 0) yield* syncOp({ kind: 'release' });
        doomedAsked = true;
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
        throw new Error('the killed thread never resumes');
      })() as ThreadProgram);
      // Node 0 asks while A holds it; another thread of node 0 kills B.
      c.addThread(0, (thread) => (function* () {
        while (order.length === 0) yield* syncOp({ kind: 'release' });
        remoteAsked = true;
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
        assert.equal(holder, -1, label); holder = thread;
        order.push('R');
        holder = -1;
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
      })() as ThreadProgram);
      c.addThread(0, () => (function* () {
        while (!doomedAsked) yield* syncOp({ kind: 'release' });
        for (let k = 0; k < 4; k++) yield* syncOp({ kind: 'release' });
        waitingAtKill = c.engines[1]!.tableSizes()['tokenWaiters']!;
        assert.ok(c.kill(doomed), `${label}: the doomed thread was waiting`);
        killed = true;
      })() as ThreadProgram);
      c.run(); c.drain();
      assert.equal(waitingAtKill, 1, `${label}: the doomed thread waited at its node for the kept token`);
      assert.ok((c.engines[1]!.counters().lockKeepTakes ?? 0) > 0, `${label}: A took the kept token again`);
      assert.ok(order.includes('R'), `${label}: the node that asked got the lock`);
      assert.equal(order.filter((entry) => entry.startsWith('A')).length, 6, label);
      for (const engine of c.engines) {
        assert.equal(engine.tableSizes()['pending'], 0, label);
        assert.equal(engine.tableSizes()['tokenWaiters'], 0, label);
        assert.equal(engine.tableSizes()['held'], 0, label);
        assert.equal(engine.tableSizes()['canceled'], 0, label);
        assert.equal(engine.tableSizes()['keeping'], 0, label);
      }
    }
  }
});

test('lock keep: threads that poll a flag under the lock (strict turns, as bench sync\'s handoff) give a kept token up after the take budget', () => {
  for (const protocol of protocols) {
    for (const slots of [undefined, 16]) {
      const label = `${protocol}, table ${slots ?? 'none'}`;
      const turns = 12;
      const run = (lockKeep: boolean): { polls: number } => {
        const c = new SimCluster({ seed: 3, nodeCount: 3, pageCount: 4, protocol, lockKeep, ...(slots === undefined ? {} : { lockTokenSlots: slots }) });
        let turn = 1;
        let polls = 0;
        for (const node of [1, 2]) {
          c.addThread(node, (thread) => (function* () {
            for (let k = 0; k < turns; k++) {
              for (;;) {
                yield* syncOp({ kind: 'lock', lockId: 0, threadId: thread });
                const mine = turn === node;
                if (mine) turn = node === 1 ? 2 : 1;
                else polls++;
                yield* syncOp({ kind: 'unlock', lockId: 0, threadId: thread });
                if (mine) break;
              }
            }
          })() as ThreadProgram);
        }
        c.run(); c.drain();
        return { polls };
      };
      const off = run(false);
      const on = run(true);
      // Each hand-over costs at most one take budget of polls at the node that keeps the token
      // (in the table each is a compareExchange pair; without one, a request to the layer each).
      assert.ok(on.polls <= 2 * turns * (lockKeepTakeCountMax + 2), `${label}: ${on.polls} polls kept against ${off.polls}`);
    }
  }
});
