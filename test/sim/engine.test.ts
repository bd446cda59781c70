// Single operations on a small simulated cluster: results, errors and the
// message count of each operation (pinned; docs/PROTOCOL.md explains them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lockRestProbeGrantInterval, pageBytes } from '../../src/constants.js';
import { DsmError } from '../../src/errors.js';
import { createEngine, type SyncRequest, type SyncResult } from '../../src/protocol/engine.js';
import type { ProtocolMessage } from '../../src/protocol/messages.js';
import { SimCluster, SimMemory, type ThreadOp, type ThreadProgram } from './sim.js';
import { runThread as run, syncOp } from './thread-ops.js';

function cluster(nodeCount: number, pageCount = 4): SimCluster {
  return new SimCluster({ seed: 42, nodeCount, pageCount, protocol: 'hlrc' });
}


test('an unknown protocol is a DSM_ERR_PROTOCOL naming the valid ones', () => {
  assert.throws(() => createEngine({
    nodeId: 0, nodeCount: 1, pageCount: 1, protocol: 'tso', memory: new SimMemory(1), send: () => {}, host: { resume: () => {} },
  }), (error: unknown) => error instanceof DsmError && error.code === 'DSM_ERR_PROTOCOL' && /hlrc, sc/.test(error.message));
});

test('message count: read miss costs 2 messages (request, page)', () => {
  const c = cluster(2);
  // Node 1 writes page 0 (homed at node 0) and releases; node 0 acquires the lock after it.
  const order: number[] = [];
  c.addThread(1, () => (function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 0 });
    yield { op: 'store', address: 8, value: 77 };
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 0 });
    order.push(1);
  })() as ThreadProgram);
  c.run(); c.drain();
  const before = c.messageCount;
  let seen = 0;
  run(c, 0, function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
    seen = (yield { op: 'load', address: 8 + pageBytes * 1 }) as number; // page 1: home node 1, written? no: valid
    seen = (yield { op: 'load', address: 8 }) as number; // page 0 is homed here: diff arrived, no fetch
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
  });
  assert.equal(seen, 77);
  // lock manager of lock 0 is node 0 (local); the token rested at node 1 after
  // its unlock, so node 0 recalls it: lockRecall and node 1's lockRelease (its diff bundled).
  assert.equal(c.messageCount - before, 2);

  // Now a page homed at node 0 read by node 1 after node 0 writes it.
  const c2 = cluster(2);
  c2.addThread(0, () => (function* () {
    yield { op: 'store', address: 16, value: 5 };
    yield* syncOp({ kind: 'barrier', barrierId: 1, parties: 2 });
  })() as ThreadProgram);
  let read = 0;
  c2.addThread(1, () => (function* () {
    yield* syncOp({ kind: 'barrier', barrierId: 1, parties: 2 });
    const start = c2.messageCount;
    read = (yield { op: 'load', address: 16 }) as number;
    assert.equal(c2.messageCount - start, 2);
  })() as ThreadProgram);
  c2.run();
  assert.equal(read, 5);
});

test('message count: lock acquire from a remote manager is 2 messages; unlock and re-acquire on the same node 0', () => {
  const c = cluster(2);
  run(c, 1, function* () {
    const a = c.messageCount;
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 3 });
    assert.equal(c.messageCount - a, 2);
    const b = c.messageCount;
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 3 });
    // The token rests at node 1: unlock and re-acquire by any thread of node 1 send nothing.
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 4 });
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 4 });
    assert.equal(c.messageCount - b, 0);
  });
  assert.deepEqual(c.messageCounts.get('lockRequest'), 1);
  assert.deepEqual(c.messageCounts.get('lockGrant'), 1);
  assert.equal(c.engines[1]!.tableSizes()['tokens'], 1);
});

test('message count: barrier of n nodes is 2(n-1) messages plus one diff batch per (writer, remote home)', () => {
  for (const n of [2, 3, 4]) {
    const c = cluster(n);
    for (let node = 0; node < n; node++) {
      c.addThread(node, () => (function* () { yield* syncOp({ kind: 'barrier', barrierId: 0, parties: n }); })() as ThreadProgram);
    }
    c.run(); c.drain();
    assert.equal(c.messageCount, 2 * (n - 1), `n = ${n}`);
  }
});

test('message count: remote atomic op is 2 messages (request, reply); results are raw bits', () => {
  const c = cluster(2);
  const results: SyncResult[] = [];
  run(c, 1, function* () {
    const address = 0; // page 0: home node 0
    const a = c.messageCount;
    yield* syncOp({ kind: 'atomic', op: 'add', address, width: 4, operands: ['5'], timeoutMs: -1 }, results);
    assert.equal(c.messageCount - a, 2);
    yield* syncOp({ kind: 'atomic', op: 'sub', address, width: 4, operands: ['7'], timeoutMs: -1 }, results);
    yield* syncOp({ kind: 'atomic', op: 'compareExchange', address, width: 4, operands: ['4294967294', '9'], timeoutMs: -1 }, results);
    yield* syncOp({ kind: 'atomic', op: 'exchange', address: 8, width: 8, operands: ['18446744073709551615'], timeoutMs: -1 }, results);
    yield* syncOp({ kind: 'atomic', op: 'add', address: 8, width: 8, operands: ['2'], timeoutMs: -1 }, results);
    const plain = (yield { op: 'load', address }) as number;
    assert.equal(plain, 9, 'a plain read after the atomic sees its value');
  });
  assert.deepEqual(results.map((r) => r.ok && r.value), ['0', '5', '4294967294', '0', '18446744073709551615']);
});

test('unlock by a non-owner is DSM_ERR_NOT_OWNER; wrong barrier parties is DSM_ERR_BARRIER_PARTIES', () => {
  const c = cluster(2);
  const results: SyncResult[] = [];
  c.addThread(0, () => (function* () {
    yield* syncOp({ kind: 'unlock', lockId: 3, threadId: 0 }, results);
    yield* syncOp({ kind: 'barrier', barrierId: 5, parties: 2 }, results);
  })() as ThreadProgram);
  c.addThread(1, () => (function* () {
    yield* syncOp({ kind: 'barrier', barrierId: 5, parties: 2 }, results);
    yield* syncOp({ kind: 'barrier', barrierId: 5, parties: 3 }, results);
  })() as ThreadProgram);
  c.run();
  const codes = results.map((r) => (r.ok ? 'ok' : r.code)).sort();
  assert.deepEqual(codes, ['DSM_ERR_BARRIER_PARTIES', 'DSM_ERR_NOT_OWNER', 'ok', 'ok']);
});

test('Atomics wait/notify across nodes, and a wait timeout driven by ticks', () => {
  const c = cluster(3);
  const results: Array<string | null> = [];
  const address = pageBytes * 2 + 4; // page 2: home node 2
  c.addThread(0, () => (function* () {
    const r = yield* syncOp({ kind: 'atomic', op: 'wait', address, width: 4, operands: ['0'], timeoutMs: -1 });
    results.push(r.ok ? r.value : 'error');
    const v = (yield { op: 'load', address: 64 }) as number;
    results.push(String(v));
  })() as ThreadProgram);
  c.addThread(1, () => (function* () {
    yield { op: 'store', address: 64, value: 123 };
    // Notify until the waiter is parked: count of woken tells.
    for (let k = 0; k < 10_000; k++) {
      const r = yield* syncOp({ kind: 'atomic', op: 'notify', address, width: 4, operands: ['1'], timeoutMs: -1 });
      if (r.ok && r.value === '1') return;
    }
    throw new Error('waiter never parked');
  })() as ThreadProgram);
  c.addThread(2, () => (function* () {
    const r = yield* syncOp({ kind: 'atomic', op: 'wait', address: address + 4, width: 4, operands: ['0'], timeoutMs: 50 });
    results.push(r.ok ? r.value : 'error');
    const ne = yield* syncOp({ kind: 'atomic', op: 'wait', address: address + 4, width: 4, operands: ['1'], timeoutMs: 50 });
    results.push(ne.ok ? ne.value : 'error');
  })() as ThreadProgram);
  c.run();
  assert.deepEqual(results.sort(), ['123', 'not-equal', 'ok', 'timed-out'].sort());
});

test('interval logs are reclaimed at all-node barriers', () => {
  const c = cluster(3);
  for (let node = 0; node < 3; node++) {
    c.addThread(node, () => (function* () {
      for (let round = 0; round < 50; round++) {
        yield { op: 'store', address: node * 4 + round * 16, value: round + 1 };
        yield* syncOp({ kind: 'barrier', barrierId: 2, parties: 3 });
      }
    })() as ThreadProgram);
  }
  c.run(); c.drain();
  for (const engine of c.engines) assert.ok(engine.tableSizes()['log']! <= 6, `node ${engine.nodeId} log ${engine.tableSizes()['log']}`);
});

function scCluster(nodeCount: number): SimCluster {
  return new SimCluster({ seed: 7, nodeCount, pageCount: 4, protocol: 'sc' });
}

test('sc message count: write miss on a page read-shared by n nodes, manager owns it: 2 + 2(n-2) + 1', () => {
  for (const n of [2, 3, 4]) {
    const c = scCluster(n);
    // Page 0 is managed and owned by node 0; node 1 writes it.
    run(c, 1, function* () { yield { op: 'store', address: 0, value: 1 }; });
    // request, forward (local at the manager-owner: free), page, invalidations + acks to n-2 others, confirm.
    assert.equal(c.messageCount, 1 + 1 + 2 * (n - 2) + 1, `n = ${n}`);
  }
});

test('sc message count: read miss of a page owned by a third node is 4 messages', () => {
  const c = scCluster(3);
  run(c, 1, function* () { yield { op: 'store', address: 0, value: 9 }; }); // node 1 owns page 0 now
  const before = c.messageCount;
  let value = 0;
  run(c, 2, function* () { value = (yield { op: 'load', address: 0 }) as number; });
  assert.equal(value, 9);
  // request (2 -> manager 0), forward (0 -> owner 1), page (1 -> 2), confirm (2 -> 0).
  assert.equal(c.messageCount - before, 4);
});

test('sc: an atomic add at the manager sees a plain store made elsewhere', () => {
  const c = scCluster(2);
  const results: SyncResult[] = [];
  run(c, 1, function* () {
    yield { op: 'store', address: 0, value: 40 };
    yield* syncOp({ kind: 'atomic', op: 'add', address: 0, width: 4, operands: ['2'], timeoutMs: -1 }, results);
    const plain = (yield { op: 'load', address: 0 }) as number;
    assert.equal(plain, 42);
  });
  assert.deepEqual(results.map((r) => r.ok && r.value), ['40']);
});

test('releaseFor / acquireFrom carry writes along a message outside the engine (postMessage)', () => {
  const c = cluster(3);
  run(c, 1, function* () { yield { op: 'store', address: 4, value: 31 }; }); // page 0: home node 0
  const info = c.engines[1]!.releaseFor(2);
  c.drain(); // the diff reaches the home
  c.engines[2]!.acquireFrom(1, structuredClone(info));
  let value = 0;
  run(c, 2, function* () { value = (yield { op: 'load', address: 4 }) as number; });
  assert.equal(value, 31);
});

test('message count: a lock acquire carrying k write notices is 4 lock messages when the token rests at its last holder; the grant notices k pages', () => {
  for (const k of [1, 3, 8]) {
    const c = cluster(3, 16);
    run(c, 1, function* () {
      for (let round = 0; round < k; round++) {
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
        yield { op: 'store', address: round * pageBytes, value: round + 1 };
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
      }
    });
    const before = c.sent.length;
    run(c, 2, function* () { yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 }); });
    const ops = c.sent.slice(before);
    // The token rested at node 1 (its k critical sections sent nothing): the manager recalls it.
    // (Its diffs for homes other than the manager go at that release too.)
    const lockOps = ops.filter((s) => s.message.type !== 'diffs');
    assert.deepEqual(lockOps.map((s) => s.message.type), ['lockRequest', 'lockRecall', 'lockRelease', 'lockGrant'], `k = ${k}`);
    const grant = lockOps[3]!.message;
    assert.ok(grant.type === 'lockGrant');
    // Node 1's k critical sections closed one interval (at the recall), noticing all k pages.
    const notices = grant.info.intervals.filter((i) => i.node === 1);
    assert.deepEqual(notices.flatMap((i) => i.pages).sort((x, y) => x - y), Array.from({ length: k }, (_, p) => p), `k = ${k}`);
  }
});

// Named scenario: two nodes write adjacent 4-byte words of one 8-byte word in
// the same phase (legal: no data race). Diffs must carry only changed bytes;
// whole-word diffs would let the later diff overwrite the other node's word at
// the home with its old value.
function adjacentWords(): number[] {
  const c = new SimCluster({ seed: 3, nodeCount: 3, pageCount: 2, protocol: 'hlrc' });
  for (const node of [1, 2]) {
    c.addThread(node, () => (function* () {
      yield { op: 'store', address: (node - 1) * 4, value: 100 + node };
      yield* syncOp({ kind: 'barrier', barrierId: 0, parties: 2 });
    })() as ThreadProgram);
  }
  c.run(); c.drain();
  const home = c.memories[0]!.data; // page 0: home node 0
  return [home[0]!, home[4]!];
}

test('scenario: adjacent words of one 8-byte word written by two nodes both reach the home', () => {
  assert.deepEqual(adjacentWords(), [101, 102]);
});

test('several threads faulting on one invalid page share one fetch', () => {
  // Two engines wired by hand so the faults surely overlap the fetch.
  const memories = [new SimMemory(2), new SimMemory(2)];
  const queues: Array<Array<{ from: number; message: ProtocolMessage }>> = [[], []];
  const resumed: number[] = [];
  const engines = [0, 1].map((node) => createEngine({
    nodeId: node, nodeCount: 2, pageCount: 2, memory: memories[node]!,
    send: (to, message) => queues[to]!.push({ from: node, message: structuredClone(message) }),
    host: { resume: (ref) => resumed.push(ref) },
  }));
  for (const engine of engines) engine.start();
  const pump = (): number => {
    let count = 0;
    for (let guard = 0; guard < 100 && (queues[0]!.length > 0 || queues[1]!.length > 0); guard++) {
      for (const node of [0, 1]) {
        const item = queues[node]!.shift();
        if (item !== undefined) { count++; engines[node]!.onMessage(item.from, item.message); }
      }
    }
    return count;
  };
  // Node 0 (home of page 0) writes it and releases to node 1.
  memories[0]!.storeAllowed(0);
  memories[0]!.data[0] = 9;
  const info = engines[0]!.releaseFor(1);
  engines[1]!.acquireFrom(0, structuredClone(info));
  assert.equal(memories[1]!.prot[0], 0, 'the page is invalid at node 1');
  engines[1]!.onFault(11, 0, false);
  engines[1]!.onFault(12, 0, false);
  engines[1]!.onFault(13, 0, true);
  assert.equal(queues[0]!.length, 1, 'one pageRequest for three faults');
  const delivered = pump();
  assert.equal(delivered, 2);
  assert.deepEqual(resumed.sort(), [11, 12, 13]);
  assert.equal(memories[1]!.data[0], 9);
  assert.equal(memories[1]!.prot[0], 2, 'the write fault left the page writable');
});

test('tryOnly lock: a held lock answers busy at once and acquires nothing; a free one is taken', () => {
  for (const protocol of ['hlrc', 'sc'] as const) {
    const c = new SimCluster({ seed: 7, nodeCount: 2, pageCount: 4, protocol });
    const results: SyncResult[] = [];
    let holderLocked = false;
    c.addThread(0, () => (function* () {
      yield* syncOp({ kind: 'lock', lockId: 2, threadId: 10 });
      holderLocked = true;
      // Hold the lock until node 1 has tried: its try answers busy, remotely (lock 2's manager is node 0).
      while (results.length === 0) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'unlock', lockId: 2, threadId: 10 });
    })() as ThreadProgram);
    c.addThread(1, () => (function* () {
      while (!holderLocked) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 2, threadId: 11, tryOnly: true }, results);
    })() as ThreadProgram);
    c.run(); c.drain();
    assert.deepEqual(results, [{ ok: true, value: 'busy' }], protocol);
    // Not held after busy: unlocking is an error.
    const after: SyncResult[] = [];
    run(c, 1, function* () {
      yield* syncOp({ kind: 'unlock', lockId: 2, threadId: 11 }, after);
      yield* syncOp({ kind: 'lock', lockId: 2, threadId: 11, tryOnly: true }, after);
      yield* syncOp({ kind: 'unlock', lockId: 2, threadId: 11 }, after);
    });
    assert.equal(after[0]!.ok, false, protocol);
    assert.deepEqual(after.slice(1), [{ ok: true, value: null }, { ok: true, value: null }], protocol);
  }
});

test('barrier: exactly one thread per round is told it is serial', () => {
  const c = cluster(3);
  const values: Array<string | null> = [];
  for (let node = 0; node < 3; node++) {
    for (let thread = 0; thread < 2; thread++) {
      c.addThread(node, () => (function* () {
        for (let round = 0; round < 5; round++) {
          const result = yield* syncOp({ kind: 'barrier', barrierId: 2, parties: 6 });
          assert.ok(result.ok);
          values.push(result.value);
        }
      })() as ThreadProgram);
    }
  }
  c.run(); c.drain();
  assert.equal(values.length, 30);
  assert.equal(values.filter((v) => v === 'serial').length, 5);
  assert.equal(values.filter((v) => v === null).length, 25);
});

test('cancel: a terminated thread parked in Atomics.wait is removed at the home, so notify wakes the live waiter', () => {
  for (const protocol of ['hlrc', 'sc'] as const) {
    for (const waiterNode of [0, 1]) {
      const c = new SimCluster({ seed: 9, nodeCount: 2, pageCount: 4, protocol });
      const address = 64; // page 0: home node 0
      const waiters = (): number => c.engines[0]!.tableSizes()['atomicWaiters']!;
      const results: SyncResult[] = [];
      let killed = false;
      let canceled = false;
      const doomed = c.addThread(waiterNode, () => (function* () {
        yield* syncOp({ kind: 'atomic', op: 'wait', address, width: 4, operands: ['0'], timeoutMs: -1 });
        throw new Error('the killed waiter never resumes');
      })() as ThreadProgram);
      c.addThread(waiterNode, () => (function* () {
        while (!killed) yield* syncOp({ kind: 'release' });
        yield* syncOp({ kind: 'atomic', op: 'wait', address, width: 4, operands: ['0'], timeoutMs: -1 }, results);
      })() as ThreadProgram);
      c.addThread(0, () => (function* () {
        while (waiters() < 1) yield* syncOp({ kind: 'release' });
        canceled = c.kill(doomed);
        killed = true;
        // Wait until the live waiter is parked and the dead one is gone.
        while (waiters() !== 1 || c.engines[waiterNode]!.tableSizes()['canceled'] !== 0) yield* syncOp({ kind: 'release' });
        yield* syncOp({ kind: 'atomic', op: 'notify', address, width: 4, operands: ['1'], timeoutMs: -1 }, results);
      })() as ThreadProgram);
      c.run(); c.drain();
      assert.ok(canceled, `${protocol}: the killed thread had a pending request`);
      assert.deepEqual(results.map((r) => r.ok && r.value).sort(), ['1', 'ok'], `${protocol}, waiter on node ${waiterNode}`);
      assert.equal(c.engines[waiterNode]!.tableSizes()['pending'], 0);
    }
  }
});

test('cancel: a lock granted to a terminated thread is released at once', () => {
  const c = cluster(2);
  const results: SyncResult[] = [];
  let holderLocked = false;
  let killed = false;
  c.addThread(0, () => (function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
    holderLocked = true;
    while (!killed) yield* syncOp({ kind: 'release' });
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
  })() as ThreadProgram);
  const doomed = c.addThread(1, () => (function* () {
    while (!holderLocked) yield* syncOp({ kind: 'release' });
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 });
    throw new Error('the killed thread never resumes');
  })() as ThreadProgram);
  c.addThread(1, () => (function* () {
    while (!holderLocked) yield* syncOp({ kind: 'release' });
    for (let k = 0; k < 20; k++) yield* syncOp({ kind: 'release' });
    assert.ok(c.kill(doomed));
    killed = true;
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 3 }, results);
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 3 }, results);
  })() as ThreadProgram);
  c.run(); c.drain();
  assert.deepEqual(results, [{ ok: true, value: null }, { ok: true, value: null }]);
});

/** Two engines wired by hand, with a clock the test sets; node 0 is home of page 0. */
function handWired(): { engines: ReturnType<typeof createEngine>[]; pump: () => void; resumed: Map<number, SyncResult>; clock: { nowMs: number } } {
  const clock = { nowMs: 0 };
  const queues: Array<Array<{ from: number; message: ProtocolMessage }>> = [[], []];
  const resumed = new Map<number, SyncResult>();
  const engines = [0, 1].map((node) => createEngine({
    nodeId: node, nodeCount: 2, pageCount: 2, memory: new SimMemory(2),
    send: (to, message) => queues[to]!.push({ from: node, message: structuredClone(message) }),
    host: { resume: (ref, result) => resumed.set(ref, result as SyncResult) },
    clock: () => clock.nowMs,
  }));
  for (const engine of engines) engine.start();
  const pump = (): void => {
    for (let guard = 0; guard < 100 && (queues[0]!.length > 0 || queues[1]!.length > 0); guard++) {
      for (const node of [0, 1]) {
        const item = queues[node]!.shift();
        if (item !== undefined) engines[node]!.onMessage(item.from, item.message);
      }
    }
  };
  return { engines, pump, resumed, clock };
}

test('a timed wait counts its deadline from its arrival at the home, read from the clock, not from the last tick', () => {
  const { engines, pump, resumed, clock } = handWired();
  for (const engine of engines) engine.onTick(0);
  // The wait arrives 4.9 ms after the last tick: a deadline from the tick would be 4.9 ms early.
  clock.nowMs = 4.9;
  engines[1]!.onSync(1, { kind: 'atomic', op: 'wait', address: 0, width: 4, operands: ['0'], timeoutMs: 20 });
  pump();
  clock.nowMs = 20;
  engines[0]!.onTick(20);
  pump();
  assert.equal(resumed.has(1), false, 'not timed out 15.1 ms after it arrived');
  clock.nowMs = 24.9;
  engines[0]!.onTick(24.9);
  pump();
  assert.deepEqual(resumed.get(1), { ok: true, value: 'timed-out' });
});

test('notify with a count of 2**32 (or more) wakes every waiter: the count is not reduced modulo 2^32', () => {
  const { engines, pump, resumed } = handWired();
  for (const count of ['4294967296', '4294967297', '9007199254740991']) {
    resumed.clear();
    for (const ref of [1, 2, 3]) engines[1]!.onSync(ref, { kind: 'atomic', op: 'wait', address: 0, width: 4, operands: ['0'], timeoutMs: -1 });
    pump();
    engines[1]!.onSync(4, { kind: 'atomic', op: 'notify', address: 0, width: 4, operands: [count], timeoutMs: -1 });
    pump();
    assert.deepEqual(resumed.get(4), { ok: true, value: '3' }, count);
    assert.deepEqual([1, 2, 3].map((ref) => resumed.get(ref)), [1, 2, 3].map(() => ({ ok: true, value: 'ok' })), count);
  }
});

// Locks that stay where they are used (issue 12): a lock's token rests at the
// node of its last holder until the manager recalls it for another node.

test('lock token: handed to another node with the writes made under it; the manager recalls it once', () => {
  for (const protocol of ['hlrc', 'sc'] as const) {
    const c = new SimCluster({ seed: 42, nodeCount: 3, pageCount: 4, protocol });
    run(c, 1, function* () {
      for (let round = 1; round <= 3; round++) {
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
        yield { op: 'store', address: 8 + pageBytes * 2, value: round * 10 };
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
      }
    });
    assert.equal(c.messageCounts.get('lockRequest'), 1, `${protocol}: re-acquires on node 1 send nothing`);
    let seen = 0;
    run(c, 2, function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 });
      seen = (yield { op: 'load', address: 8 + pageBytes * 2 }) as number;
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 2 });
    });
    assert.equal(seen, 30, protocol);
    assert.equal(c.messageCounts.get('lockRecall'), 1, protocol);
    assert.equal(c.messageCounts.get('lockRelease'), 1, protocol);
    assert.equal(c.engines[1]!.tableSizes()['tokens'], 0, `${protocol}: node 1 gave its token back`);
    assert.equal(c.engines[2]!.tableSizes()['tokens'], 1, `${protocol}: the token rests at node 2`);
  }
});

test('lock token: tryLock gets a free token resting at another node, and "busy" for a held one (the holder keeps it)', () => {
  const c = cluster(3);
  const results: SyncResult[] = [];
  // Twice: a token re-acquired where it rested is left to rest again (lockRestProbeGrantInterval).
  run(c, 1, function* () {
    for (let k = 0; k < 2; k++) {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
    }
  });
  run(c, 2, function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2, tryOnly: true }, results);
  });
  assert.deepEqual(results, [{ ok: true, value: null }], 'a free lock is not busy because its token rests elsewhere');
  let tried = false;
  c.addThread(1, () => (function* () {
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 3, tryOnly: true }, results);
    tried = true;
  })() as ThreadProgram);
  c.addThread(2, () => (function* () {
    while (!tried) yield* syncOp({ kind: 'release' });
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 2 });
    // Node 2 still has the token: its re-acquire sends nothing.
    const before = c.messageCount;
    yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 }, results);
    yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 2 });
    assert.equal(c.messageCount, before);
  })() as ThreadProgram);
  c.run(); c.drain();
  assert.deepEqual(results.slice(1), [{ ok: true, value: 'busy' }, { ok: true, value: null }]);
  assert.equal(c.messageCounts.get('lockBusy'), 1);
  for (const engine of c.engines) assert.equal(engine.tableSizes()['pending'], 0);
});

test('lock token: a thread canceled while waiting for a token held on another node leaves no holder behind', () => {
  for (const protocol of ['hlrc', 'sc'] as const) {
    const c = new SimCluster({ seed: 7, nodeCount: 3, pageCount: 4, protocol });
    const results: SyncResult[] = [];
    let locked = false;
    let killed = false;
    c.addThread(1, () => (function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 1 });
      locked = true;
      while (!killed) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 1 });
    })() as ThreadProgram);
    const doomed = c.addThread(2, () => (function* () {
      while (!locked) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 2 });
      throw new Error('the killed thread never resumes');
    })() as ThreadProgram);
    c.addThread(2, () => (function* () {
      while (!locked) yield* syncOp({ kind: 'release' });
      for (let k = 0; k < 20; k++) yield* syncOp({ kind: 'release' });
      assert.ok(c.kill(doomed));
      killed = true;
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 3 }, results);
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 3 }, results);
    })() as ThreadProgram);
    // Node 1 takes the lock again after all that: the token comes back to it.
    c.addThread(1, () => (function* () {
      while (results.length < 2) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 4 }, results);
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 4 }, results);
    })() as ThreadProgram);
    c.run(); c.drain();
    assert.deepEqual(results, [0, 1, 2, 3].map(() => ({ ok: true, value: null })), protocol);
    // The token rests at node 1 or went back to the manager (eager after a tenure without re-acquire): never at node 2.
    assert.equal(c.engines[2]!.tableSizes()['tokens'], 0, `${protocol}: no token left at the canceled thread's node`);
    assert.ok(c.engines.reduce((sum, engine) => sum + engine.tableSizes()['tokens']!, 0) <= 1, `${protocol}: at most one token`);
    for (const engine of c.engines) {
      assert.equal(engine.tableSizes()['held'], 0, protocol);
      assert.equal(engine.tableSizes()['canceled'], 0, protocol);
    }
  }
});

test('lock token: threads of one node pass the token among themselves with no message; a canceled local waiter is forgotten', () => {
  for (const protocol of ['hlrc', 'sc'] as const) {
    const c = new SimCluster({ seed: 11, nodeCount: 2, pageCount: 4, protocol });
    let counter = 0;
    const doomed: number[] = [];
    let holding = 0;
    let killed = false;
    // Node 1, manager node 0: three threads take the lock 5 times each; a fourth waits and is killed.
    for (let t = 1; t <= 3; t++) {
      c.addThread(1, () => (function* () {
        for (let k = 0; k < 5; k++) {
          yield* syncOp({ kind: 'lock', lockId: 0, threadId: t });
          holding += 1;
          while (t === 1 && k === 0 && !killed) yield* syncOp({ kind: 'release' });
          const value = (yield { op: 'load', address: 8 }) as number;
          yield { op: 'store', address: 8, value: value + 1 };
          counter += 1;
          yield* syncOp({ kind: 'unlock', lockId: 0, threadId: t });
        }
      })() as ThreadProgram);
    }
    doomed.push(c.addThread(1, () => (function* () {
      while (holding === 0) yield* syncOp({ kind: 'release' });
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 9 });
      throw new Error('the killed thread never resumes');
    })() as ThreadProgram));
    c.addThread(0, () => (function* () {
      while (holding === 0) yield* syncOp({ kind: 'release' });
      for (let k = 0; k < 10; k++) yield* syncOp({ kind: 'release' });
      assert.ok(c.kill(doomed[0]!), `${protocol}: the waiting thread had a request`);
      killed = true;
    })() as ThreadProgram);
    c.run(); c.drain();
    assert.equal(counter, 15, protocol);
    assert.equal(c.messageCounts.get('lockRequest'), 1, `${protocol}: one request for the node's 15 acquisitions`);
    assert.equal(c.messageCounts.get('lockRelease') ?? 0, 0, protocol);
    assert.equal(c.engines[1]!.tableSizes()['tokenWaiters'], 0, protocol);
    assert.equal(c.engines[1]!.tableSizes()['held'], 0, protocol);
  }
});

test('lock token: a token recalled with no re-acquire where it rested goes back at each unlock; a probe lets it rest again', () => {
  const c = cluster(3);
  // Nodes 1 and 2 (manager node 0) strictly alternate: the token never finds a re-acquire where it rests.
  let turn = 1;
  const rounds = 2 * lockRestProbeGrantInterval;
  for (const node of [1, 2]) {
    c.addThread(node, () => (function* () {
      for (let k = 0; k < rounds; k++) {
        while (turn !== node) yield* syncOp({ kind: 'release' });
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: node });
        yield* syncOp({ kind: 'unlock', lockId: 0, threadId: node });
        turn = 3 - node;
      }
    })() as ThreadProgram);
  }
  c.run(); c.drain();
  const acquisitions = 2 * rounds;
  assert.equal(c.messageCounts.get('lockRequest'), acquisitions);
  // Every acquisition but the first and the probes' would cost a lockRecall if tokens always rested.
  const recalls = c.messageCounts.get('lockRecall') ?? 0;
  assert.ok(recalls <= 1 + Math.ceil(acquisitions / lockRestProbeGrantInterval) + 1, `${recalls} recalls for ${acquisitions} alternating acquisitions`);
});

test('lock token: a contended lock goes from its holder straight to the next node (no lockRelease), with the writes made under it', () => {
  for (const protocol of ['hlrc', 'sc'] as const) {
    // Lock 0's manager is node 0; the counter's page 1 is homed at node 1, so
    // no release has diffs for the manager's pages (they would send the token back through it).
    const c = new SimCluster({ seed: 11, nodeCount: 3, pageCount: 4, protocol });
    const counter = 8 + pageBytes;
    const asked = [false, false, false];
    const seen: number[] = [];
    let counts: Record<string, number> = {};
    const body = (node: number) => (function* () {
      if (node === 0) {
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: 10 });
      } else {
        while (!asked[0]) yield* syncOp({ kind: 'release' });
        asked[node] = true;
        yield* syncOp({ kind: 'lock', lockId: 0, threadId: 10 + node });
      }
      const value = (yield { op: 'load', address: counter }) as number;
      seen.push(value);
      yield { op: 'store', address: counter, value: value + 1 };
      if (node === 0) {
        asked[0] = true;
        // Both other nodes' requests wait in the manager's queue.
        while (!asked[1] || !asked[2]) yield* syncOp({ kind: 'release' });
        for (let k = 0; k < 400; k++) yield* syncOp({ kind: 'release' });
      }
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 10 + node });
    })() as ThreadProgram;
    for (const node of [0, 1, 2]) c.addThread(node, () => body(node));
    c.run(); c.drain();
    counts = Object.fromEntries(c.messageCounts);
    assert.deepEqual(seen, [0, 1, 2], `${protocol}: each holder saw the writes of the one before`);
    assert.equal(counts['lockRequest'], 2, protocol);
    assert.equal(counts['lockGrant'], 2, `${protocol}: manager to the first, the first to the second`);
    assert.equal(counts['lockRecall'] ?? 0, 0, protocol);
    const handedOn = c.engines.filter((engine) => (engine.counters().lockHandoffsDirect ?? 0) === 1).map((engine) => engine.nodeId);
    assert.equal(handedOn.length, 1, `${protocol}: one direct handoff`);
    // The first node's token went to the second, not back to the manager; the
    // second gives it back at its unlock only because the manager's token was
    // recalled unused before (eager), so at most one lockRelease, from the second.
    const releases = c.sent.filter((sent) => sent.message.type === 'lockRelease');
    assert.ok(releases.length <= 1 && releases.every((sent) => sent.from !== handedOn[0]), protocol);
    assert.ok(c.engines.reduce((sum, engine) => sum + engine.tableSizes()['tokens']!, 0) <= 1, `${protocol}: one token at most`);
    // The manager asks for it again: recalled from wherever it went.
    let last = -1;
    run(c, 0, function* () {
      yield* syncOp({ kind: 'lock', lockId: 0, threadId: 20 });
      last = (yield { op: 'load', address: counter }) as number;
      yield* syncOp({ kind: 'unlock', lockId: 0, threadId: 20 });
    });
    assert.equal(last, 3, protocol);
    for (const engine of c.engines) {
      assert.equal(engine.tableSizes()['pending'], 0, protocol);
      assert.equal(engine.tableSizes()['earlyRecalls'], 0, protocol);
    }
  }
});
