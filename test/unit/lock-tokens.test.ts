// The node's lock token table (src/channel/lock-tokens.ts): the manager's side
// (delegate, reclaim, gone) and the app threads' side (take, give), in one
// thread here; test/sim/lock-tokens.test.ts runs it under the sync layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  LockTokenTable, LockTokenView, lockOwnerField, lockTokenHere, lockTokenLayout, lockTokenSlotHash, ownerNodeBase,
  takeAsk, takeHeldHere, takeTaken,
} from '../../src/channel/lock-tokens.js';

const base = ownerNodeBase(3);
const tokenOf = (thread: number): number => base + thread + 1;
const noGiveBack = (): void => { throw new Error('no re-key race in one thread'); };

test('a delegated free token is taken and given back with no manager; a held one is busy for another thread', () => {
  const table = new LockTokenTable(base, 16);
  const a = new LockTokenView(table.buffer, lockOwnerField(tokenOf(1), base));
  const b = new LockTokenView(table.buffer, lockOwnerField(tokenOf(2), base));
  assert.equal(a.take(7, noGiveBack), takeAsk, 'not delegated: ask the manager');
  assert.equal(a.give(7), false);
  assert.ok(table.tokenDelegate(7, null));
  assert.equal(a.take(7, noGiveBack), takeTaken);
  assert.equal(b.take(7, noGiveBack), takeHeldHere);
  assert.equal(b.give(7), false, 'only the holder gives it back');
  assert.equal(a.give(7), true);
  assert.equal(b.take(7, noGiveBack), takeTaken);
  assert.deepEqual(table.tokenReclaim(7), { holder: tokenOf(2), uses: 2 }, 'reclaimed while held: the holder and the uses');
  assert.equal(b.give(7), false, 'after a reclaim the unlock goes to the manager');
  assert.equal(a.take(7, noGiveBack), takeAsk);
});

test('a token delegated with a take limit (a kept token\'s budget) is taken that many times, then the threads ask the manager', () => {
  const table = new LockTokenTable(base, 16);
  const a = new LockTokenView(table.buffer, lockOwnerField(tokenOf(1), base));
  assert.ok(table.tokenDelegate(9, null, 2));
  for (let k = 0; k < 2; k++) {
    assert.equal(a.take(9, noGiveBack), takeTaken);
    assert.equal(a.give(9), true);
  }
  assert.equal(a.take(9, noGiveBack), takeAsk, 'the budget is spent');
  assert.deepEqual(table.tokenReclaim(9), { holder: null, uses: 2 });
  assert.ok(table.tokenDelegate(9, null), 'delegated again with no limit');
  for (let k = 0; k < 4; k++) {
    assert.equal(a.take(9, noGiveBack), takeTaken);
    assert.equal(a.give(9), true);
  }
});

test('delegated with a holder (a grant): the holder unlocks in the table; a reclaim of a free token names nobody', () => {
  const table = new LockTokenTable(base, 16);
  const a = new LockTokenView(table.buffer, lockOwnerField(tokenOf(5), base));
  assert.ok(table.tokenDelegate(40, tokenOf(5)));
  assert.equal(a.give(40), true);
  assert.deepEqual(table.tokenReclaim(40), { holder: null, uses: 0 });
  table.tokenGone(40);
});

test('a probe with no room leaves the lock to the manager; a slot whose token left is re-keyed', () => {
  const table = new LockTokenTable(base, 1);
  const a = new LockTokenView(table.buffer, lockOwnerField(tokenOf(1), base));
  assert.ok(table.tokenDelegate(1, null));
  assert.equal(table.tokenDelegate(2, null), false, 'one slot, taken by a token that is here');
  table.tokenReclaim(1);
  assert.equal(table.tokenDelegate(2, null), false, 'reclaimed is still here: its slot keeps its key');
  table.tokenGone(1);
  assert.ok(table.tokenDelegate(2, null));
  assert.equal(a.take(1, noGiveBack), takeAsk, 'the old lock finds its slot re-keyed');
  assert.equal(a.take(2, noGiveBack), takeTaken);
  assert.equal(a.give(2), true);
  const layout = lockTokenLayout(1);
  assert.equal(new Int32Array(table.buffer)[layout.states], lockTokenHere);
});

test('a taker overtaken by a re-key of its slot gives the other lock back and asks the manager', () => {
  const table = new LockTokenTable(base, 1);
  const words = new Int32Array(table.buffer);
  const layout = lockTokenLayout(1);
  const a = new LockTokenView(table.buffer, lockOwnerField(tokenOf(1), base));
  assert.ok(table.tokenDelegate(1, null));
  // The race, replayed: right after the view found lock 1's slot, the manager takes lock 1 away
  // (another node wanted it), and re-keys the slot for lock 2, which comes to rest here free.
  const view = a as unknown as { slotOf: (id: number) => number };
  const slotOf = view.slotOf.bind(a);
  view.slotOf = (id: number) => {
    const slot = slotOf(id);
    table.tokenReclaim(1);
    table.tokenGone(1);
    assert.ok(table.tokenDelegate(2, null));
    return slot;
  };
  const given: number[] = [];
  assert.equal(a.take(1, (other) => given.push(other)), takeAsk);
  assert.deepEqual(given, [], 'lock 2 was free and is free again: nothing for the manager');
  assert.equal(words[layout.states], lockTokenHere);
  assert.equal(words[layout.keys], 3);
  assert.deepEqual(table.tokenReclaim(2), { holder: null, uses: 0 }, 'lock 2 was never counted as used');
});

test('take and give from several threads keep one holder at a time', async () => {
  const table = new LockTokenTable(base, 16);
  assert.ok(table.tokenDelegate(11, null));
  const counter = new Int32Array(new SharedArrayBuffer(8));
  const source = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { buffer, counter, owner, rounds, statesAt, here } = workerData;
    const words = new Int32Array(buffer);
    let asked = 0;
    for (let k = 0; k < rounds; k++) {
      // take/give as LockTokenView does (the view is ESM TypeScript; the protocol is the same two compareExchanges).
      while (Atomics.compareExchange(words, statesAt, here, here | owner) !== here) asked++;
      const value = counter[0]; counter[0] = value + 1;
      if (Atomics.compareExchange(words, statesAt, here | owner, here) !== (here | owner)) throw new Error('lost the token');
    }
    parentPort.postMessage(asked);
  `;
  const statesAt = lockTokenLayout(16).states + lockTokenSlotHash(11, 15);
  const rounds = 20_000;
  await Promise.all([1, 2, 3].map((owner) => new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { buffer: table.buffer, counter, owner, rounds, statesAt, here: lockTokenHere } });
    worker.on('message', resolve);
    worker.on('error', reject);
  })));
  assert.equal(counter[0], 3 * rounds);
  assert.deepEqual(table.tokenReclaim(11), { holder: null, uses: 0 });
});
