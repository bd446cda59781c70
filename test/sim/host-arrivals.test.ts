// The engine host's arrival hook (DSM_TEST_HOOK_ARRIVALS, the litmus programs'
// handshake in place of grace periods): a lock request or an Atomics.wait is
// reported once, by the node that is its manager or home, when it gets there —
// from another node (a message) or from a thread of its own (nothing sent) —
// and never by the node that merely sends it on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { HostCluster } from './host-sim.js';
import type { ThreadOp } from './sim.js';

function* sync(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  return (yield { op: 'sync', request }) as SyncResult;
}

for (const protocol of ['hlrc', 'sc'] as const) {
  test(`${protocol}: lock requests and waits are reported by their manager or home, once each`, () => {
    const arrivals: string[] = [];
    const cluster = new HostCluster({ seed: 7, nodeCount: 2, pageCount: 4, protocol, placement: 'block', onArrival: (node, what, key) => arrivals.push(`${node} ${what} ${key}`) });
    // Ids past the region are managed by id % nodeCount; with block placement page 0 is homed on node 0.
    const lockOfNode0 = 1 << 20;
    const lockOfNode1 = (1 << 20) + 1;
    const address = 4;
    assert.equal(Math.floor(address / pageBytes), 0);
    const steps: string[] = [];
    cluster.addThread(1, () => (function* () {
      yield* sync({ kind: 'lock', lockId: lockOfNode0, threadId: 1 });
      steps.push('remote lock held');
      yield* sync({ kind: 'unlock', lockId: lockOfNode0, threadId: 1 });
      yield* sync({ kind: 'lock', lockId: lockOfNode0, threadId: 1, tryOnly: true });
      yield* sync({ kind: 'unlock', lockId: lockOfNode0, threadId: 1 });
      yield* sync({ kind: 'atomic', op: 'wait', address, width: 4, operands: ['0'], timeoutMs: 5 });
      steps.push('remote wait done');
    })());
    cluster.addThread(0, () => (function* () {
      yield* sync({ kind: 'lock', lockId: lockOfNode1, threadId: 2 });
      yield* sync({ kind: 'unlock', lockId: lockOfNode1, threadId: 2 });
      yield* sync({ kind: 'atomic', op: 'wait', address, width: 4, operands: ['0'], timeoutMs: 5 });
      steps.push('local wait done');
    })());
    cluster.run();
    cluster.drain();
    assert.equal(steps.length, 3);
    // Lines (hlrc's Atomics by ownership) are not simulated here: a wait is an 'atomic' request at the word's home.
    assert.deepEqual(arrivals.sort(), [`0 lock ${lockOfNode0}`, `0 wait ${address}`, `0 wait ${address}`, `1 lock ${lockOfNode1}`].sort(),
      'the tryLock is not reported; each wait is reported by node 0 only');
  });
}
