// A program that uses more distinct barriers than a manager keeps state for
// gets a stable, user-facing error naming the limit and how to raise it (it was
// DSM_ERR_INTERNAL, "invariant failed", which reads as a bug in dsm). The mutex
// limit (lockIdCountMax, 2^20) takes the same path and message; a test of it
// would keep a million locks' state.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barrierIdCountMax } from '../../src/constants.js';
import { DsmError } from '../../src/errors.js';
import { createEngine, type SyncResult } from '../../src/protocol/engine.js';
import { SimMemory } from './sim.js';

test(`barrier ${barrierIdCountMax + 1} at one manager is DSM_ERR_SYNC_OBJECTS naming barrierIdCountMax; a known barrier still works`, () => {
  const resumed = new Map<number, SyncResult>();
  const engine = createEngine({
    nodeId: 0, nodeCount: 2, pageCount: 2, memory: new SimMemory(2), protocol: 'hlrc',
    send: () => {}, host: { resume: (ref, result) => resumed.set(ref, result as SyncResult) },
  });
  engine.start();
  // Ids past the region are managed by id % nodeCount: even ids are node 0's.
  const firstId = 1 << 24;
  for (let index = 0; index < barrierIdCountMax; index += 1) {
    engine.onSync(index, { kind: 'barrier', barrierId: firstId + 2 * index, parties: 1 });
  }
  assert.equal(resumed.size, barrierIdCountMax, 'every one-party barrier passed');
  engine.onSync(barrierIdCountMax, { kind: 'barrier', barrierId: firstId, parties: 1 });
  assert.deepEqual(resumed.get(barrierIdCountMax), { ok: true, value: 'serial' }, 'a barrier the manager knows is no new one');
  assert.throws(() => engine.onSync(barrierIdCountMax + 1, { kind: 'barrier', barrierId: firstId + 2 * barrierIdCountMax, parties: 1 }),
    (error: unknown) => error instanceof DsmError && error.code === 'DSM_ERR_SYNC_OBJECTS'
      && /at most 65536 distinct barriers \(barrierIdCountMax in src\/constants\.ts\): reuse barriers .* or raise barrierIdCountMax/.test(error.message));
});
