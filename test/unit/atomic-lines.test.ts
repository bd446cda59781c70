// The node's atomic line table (src/channel/atomic-lines.ts) and the app
// side's Atomics on it (src/threads/atomics.ts), in one process: held lines
// run natively, a pinned line is not revoked, slots are re-keyed only while
// invalid, a pin given back unblocks a revoke.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineTable, lineQuietCheckOne, lineTableLayout, lineStateHeld, lineStateInvalid, lineStateRevoking, lineStateShared } from '../../src/channel/atomic-lines.js';

/**
 * Runs `body` with the app side's Atomics (src/threads/atomics.ts) installed over `table`, `dsm` at region
 * offset 8192, the channel answering a pin from the table and a line request with `acquire` (a line op
 * too, unless `lineOp` answers it); Atomics is restored after.
 */
async function withAppAtomics(
  table: LineTable, dsm: SharedArrayBuffer, acquire: (line: number) => void, body: () => void,
  /** A line op the node does not hold (an 'atomic' request with `line`): the shipped op's result, or null (default: acquire, then null). */
  lineOp?: (request: { fn: string; address: number; width: number; operands: string[] }) => string | null,
  /** Each line notify the channel was asked for, with its `afterOp` flag. */
  notifies: Array<{ address: number; afterOp: boolean }> = [],
): Promise<void> {
  const { installClusterAtomics } = await import('../../src/threads/atomics.js');
  const channel = {
    call(request: { op: string; fn: string; line?: number; address?: number; width?: number; operands?: string[] }): unknown {
      if (request.fn === 'pin') return table.takePin();
      if (request.fn === 'acquire') { acquire(request.line!); return null; }
      if (request.fn === 'notify') { notifies.push({ address: request.address!, afterOp: (request as { afterOp?: boolean }).afterOp === true }); return 0; }
      if (request.op === 'atomic' && (request as { line?: boolean }).line === true) {
        const op = { fn: request.fn, address: request.address!, width: request.width!, operands: request.operands! };
        if (lineOp !== undefined) return lineOp(op);
        acquire(Math.floor(op.address / 64));
        return null;
      }
      throw new Error(`unexpected ${request.fn}`);
    },
    onEvent() {}, post() {},
  };
  const saved = Object.fromEntries(Object.getOwnPropertyNames(Atomics).map((name) => [name, Object.getOwnPropertyDescriptor(Atomics, name)!]));
  try {
    installClusterAtomics({ channel: channel as never, offsetOf: (buffer) => (buffer === dsm ? 8192 : null), lines: table.buffer });
    body();
  } finally {
    for (const [name, descriptor] of Object.entries(saved)) Object.defineProperty(Atomics, name, descriptor);
  }
}

test('a revoke waits for no thread but fails while a pin names the line, and succeeds once it is gone', () => {
  const table = new LineTable(16);
  const words = new Int32Array(table.buffer);
  const layout = lineTableLayout(16);
  const pin = table.takePin();
  table.lineGranted(5);
  assert.equal(table.lineUsed(5), 0);
  words[layout.pins + pin] = 6; // a thread inside an op on line 5
  assert.equal(table.lineRevoke(5), false);
  const slot = [...words.subarray(layout.keys, layout.keys + 16)].indexOf(6);
  assert.ok(slot >= 0);
  assert.equal(words[layout.states + slot], lineStateRevoking, 'no new op starts while revoking');
  assert.equal(words[layout.held + slot], 0, 'the held word an app thread loads is cleared before the pins are read');
  table.clearPin(pin);
  assert.equal(table.lineRevoke(5), true);
  assert.equal(words[layout.states + slot], lineStateInvalid);
  table.lineGranted(5);
  assert.equal(words[layout.states + slot], lineStateHeld, 'the same slot again');
  assert.equal(words[layout.held + slot], 6, 'the held word names the line');
  words[layout.used + slot] = 2;
  assert.equal(table.lineUsed(5), 2, 'one write');
  words[layout.used + slot] = 7;
  assert.equal(table.lineUsed(5), 4, 'three writes and a read');
  assert.equal(table.lineUsed(5), 0, 'the use mark clears');
  table.releasePin(pin);
  assert.equal(table.takePin(), pin, 'a pin word given back is handed out again');
});

test('a read copy (session 34): loads run natively, every other op asks; a downgrade keeps loads, a drop waits for a load inside', async () => {
  const table = new LineTable(16);
  const words = new Int32Array(table.buffer);
  const layout = lineTableLayout(16);
  const dsm = new SharedArrayBuffer(4096);
  const view = new Int32Array(dsm);
  // Line of view[k]: (8192 + 4k) / 64.
  const line = 8192 / 64;
  const asked: string[] = [];
  await withAppAtomics(table, dsm, (wanted) => { asked.push(`line ${wanted}`); table.lineGranted(wanted); }, () => {
    table.lineShared(line);
    const slot = [...words.subarray(layout.keys, layout.keys + 16)].indexOf(line + 1);
    assert.equal(words[layout.states + slot], lineStateShared);
    assert.equal(words[layout.held + slot], 0, 'not held');
    view[1] = 7;
    assert.equal(Atomics.load(view, 1), 7, 'a load runs on the read copy');
    assert.deepEqual(asked, [], 'with no message');
    assert.equal(table.lineUsed(line), 1, 'marked read');
    assert.equal(Atomics.add(view, 1, 1), 7, 'an add asks for the line');
    assert.deepEqual(asked, [`line ${line}`]);
    // Held: a downgrade clears the held word only; loads go on, adds ask again.
    assert.equal(table.lineDowngrade(line), true);
    assert.equal(words[layout.states + slot], lineStateShared);
    assert.equal(Atomics.load(view, 1), 8);
    assert.equal(asked.length, 1);
    assert.equal(Atomics.store(view, 1, 3), 3);
    assert.equal(asked.length, 2, 'a store asks for the line');
    assert.equal(table.lineRevoke(line), true);
    table.lineShared(line);
  }, (request) => {
    if (request.fn === 'load') assert.fail('a load on a read copy never asks');
    asked.push(`line ${Math.floor(request.address / 64)}`);
    table.lineGranted(Math.floor(request.address / 64));
    return null;
  });
  // A load inside (its pin) holds the drop back; once it is out, the copy goes.
  const pin = table.takePin();
  const slot = [...words.subarray(layout.keys, layout.keys + 16)].indexOf(line + 1);
  words[layout.pins + pin] = line + 1;
  assert.equal(table.lineUnshare(line), false);
  assert.equal(words[layout.readable + slot], 0, 'no new load starts while it drops');
  table.clearPin(pin);
  assert.equal(table.lineUnshare(line), true);
  assert.equal(words[layout.states + slot], lineStateInvalid);
});

test('the table counts its slots in use (lineRoom): a grant or a copy takes one, a revoke or a drop frees it, a downgrade keeps it', () => {
  const table = new LineTable(8);
  assert.deepEqual(table.lineRoom(), { free: 8, slots: 8 });
  table.lineGranted(1);
  table.lineShared(2);
  assert.equal(table.lineRoom().free, 6);
  assert.equal(table.lineDowngrade(1), true);
  assert.equal(table.lineRoom().free, 6, 'a downgraded line keeps its slot');
  table.lineGranted(1);
  assert.equal(table.lineRoom().free, 6, 'granted again over its copy');
  assert.equal(table.lineRevoke(1), true);
  assert.equal(table.lineUnshare(2), true);
  assert.equal(table.lineRevoke(1), true);
  assert.deepEqual(table.lineRoom(), { free: 8, slots: 8 }, 'a second revoke frees nothing more');
});

test('slots are re-keyed only while their line is invalid; a full table of held lines is DSM_ERR_ATOMIC_LINES', () => {
  const table = new LineTable(8);
  for (let line = 0; line < 8; line++) table.lineGranted(line * 8);
  assert.throws(() => table.lineGranted(1000), (error: Error & { code?: string }) => error.code === 'DSM_ERR_ATOMIC_LINES');
  assert.equal(table.lineRevoke(24), true);
  table.lineGranted(1000); // takes line 24's slot
  const words = new Int32Array(table.buffer);
  const layout = lineTableLayout(8);
  const keys = [...words.subarray(layout.keys, layout.keys + 8)];
  assert.ok(keys.includes(1001) && !keys.includes(25));
  // Every held line is still found.
  for (const line of [0, 8, 16, 32, 40, 48, 56, 1000]) assert.equal(table.lineRevoke(line), true);
});

test('the app side runs Atomics natively on a held line and asks for a line it does not hold', async () => {
  const table = new LineTable(64);
  const dsm = new SharedArrayBuffer(4096);
  const other = new SharedArrayBuffer(64);
  const asked: number[] = [];
  await withAppAtomics(table, dsm, (line) => { asked.push(line); table.lineGranted(line); }, () => {
    const array = new Int32Array(dsm);
    assert.equal(Atomics.add(array, 0, 5), 0);
    assert.deepEqual(asked, [8192 / 64], 'the first op asks for its line');
    for (let k = 0; k < 1000; k++) Atomics.add(array, 0, 1);
    assert.equal(Atomics.load(array, 0), 1005);
    assert.equal(Atomics.compareExchange(array, 0, 1005, 7), 1005);
    assert.equal(Atomics.store(array, 16, 3), 3);
    assert.deepEqual(asked, [128, 129], 'one request per line');
    assert.ok(table.lineUsed(128) >= 1002, 'every write counts');
    assert.equal(table.lineRevoke(128), true, 'no pin is left behind');
    assert.equal(Atomics.sub(array, 0, 2), 7);
    assert.deepEqual(asked, [128, 129, 128], 'a revoked line is asked for again');
    assert.equal(Atomics.add(new Int32Array(other), 0, 1), 0, 'other buffers stay native');
    assert.throws(() => Atomics.add(array, 1024, 1), RangeError);
    assert.throws(() => Atomics.add(array, 0, 1n as never), TypeError);
  });
});

test('the fast path does not trust a cached slot that was re-keyed to another line', async () => {
  const table = new LineTable(1); // one slot: every line shares it
  const dsm = new SharedArrayBuffer(4096);
  const asked: number[] = [];
  let holding = -1;
  const acquire = (line: number): void => {
    asked.push(line);
    if (holding >= 0) assert.equal(table.lineRevoke(holding), true);
    table.lineGranted(line);
    holding = line;
  };
  await withAppAtomics(table, dsm, acquire, () => {
    const array = new Int32Array(dsm);
    Atomics.add(array, 0, 1);
    for (let k = 0; k < 100; k++) Atomics.add(array, 0, 1); // cached: line 128 in slot 0
    assert.deepEqual(asked, [128]);
    // The manager gives line 128 up and re-keys the slot to another line, held.
    assert.equal(table.lineRevoke(128), true);
    table.lineGranted(999);
    holding = 999;
    assert.equal(Atomics.add(array, 0, 1), 101);
    assert.deepEqual(asked, [128, 128], 'the op asked for its line again instead of running under line 999');
    assert.equal(Atomics.load(array, 0), 102);
  });
});

test('the repeated-element fast path: only the same element of the same array, a Number value, and a line still held', async () => {
  const table = new LineTable(64);
  const dsm = new SharedArrayBuffer(4096);
  const asked: number[] = [];
  await withAppAtomics(table, dsm, (line) => { asked.push(line); table.lineGranted(line); }, () => {
    const array = new Int32Array(dsm);
    const view = new Int32Array(dsm, 64); // the same buffer, one line further: index 0 is line 129
    for (let k = 0; k < 10; k++) Atomics.add(array, 0, 1); // element 0 cached, line 128
    assert.deepEqual(asked, [128]);
    assert.equal(Atomics.add(view, 0, 1), 0, 'the same index of another array is its own element');
    assert.deepEqual(asked, [128, 129], 'and its own line');
    assert.equal(Atomics.add(array, 16, 5), 1, 'another element of the array: line 129');
    assert.equal(Atomics.add(array, 0, 1), 10);
    assert.deepEqual(asked, [128, 129]);
    // The cached element's line goes: the next op on it asks again instead of running unheld.
    assert.equal(table.lineRevoke(128), true);
    assert.equal(Atomics.add(array, 0, 1), 11);
    assert.deepEqual(asked, [128, 129, 128]);
    assert.equal(table.lineRevoke(128), true);
    assert.equal(Atomics.load(array, 0), 12, 'a load of the cached element after a revoke asks too');
    assert.deepEqual(asked, [128, 129, 128, 128]);
    // Values and indices the fast path leaves to the specification's conversions.
    assert.equal(Atomics.add(array, 0, { valueOf: () => 3 } as never), 12);
    assert.equal(Atomics.add(array, 0, '2' as never), 15);
    assert.equal(Atomics.add(array, -0, 1), 17);
    assert.throws(() => Atomics.add(array, -1, 1), RangeError);
    assert.throws(() => Atomics.add(array, 0, 1n as never), TypeError);
    assert.equal(Atomics.load(array, 0), 18);
    const big = new BigInt64Array(dsm, 128);
    assert.equal(Atomics.add(big, 0, 4n), 0n);
    assert.equal(Atomics.add(big, 0, 4n), 4n);
    assert.throws(() => Atomics.add(big, 0, 1 as never), TypeError);
    assert.equal(table.lineRevoke(128), true, 'no pin is left behind');
    assert.equal(table.lineRevoke(129), true);
    assert.equal(table.lineRevoke(130), true);
  });
});

test('the watch word: set by a revoke that finds a pin and by lineWatch, cleared by the revoke that succeeds and by a grant', () => {
  const table = new LineTable(16);
  const words = new Int32Array(table.buffer);
  const layout = lineTableLayout(16);
  const pin = table.takePin();
  table.lineGranted(9);
  const slot = [...words.subarray(layout.keys, layout.keys + 16)].indexOf(10);
  assert.ok(slot >= 0);
  assert.equal(words[layout.watch + slot], 0, 'nobody is watched after a grant');
  table.lineWatch(9);
  assert.equal(words[layout.watch + slot], 1, 'the layer waits for the first op to end');
  table.lineGranted(9);
  assert.equal(words[layout.watch + slot], 0);
  words[layout.pins + pin] = 10; // a thread inside an op on line 9
  assert.equal(table.lineRevoke(9), false);
  assert.equal(words[layout.watch + slot], 1, 'the pinned thread is asked to say when its op ends');
  words[layout.watch + slot] = 0; // the thread took the watch and posted 'unpinned'
  table.clearPin(pin);
  assert.equal(table.lineRevoke(9), true);
  assert.equal(words[layout.watch + slot], 0, 'a revoked line is watched by nobody');
  table.lineWatch(12345); // a line without a slot: nothing to watch
});

test('a line op the node does not hold goes to the manager with the op: a shipped result is returned as the element type, memory untouched here', async () => {
  const table = new LineTable(16);
  const dsm = new SharedArrayBuffer(4096);
  const view = new Int32Array(dsm);
  const big = new BigInt64Array(dsm);
  const seen: Array<{ fn: string; address: number; width: number; operands: string[] }> = [];
  await withAppAtomics(table, dsm, () => assert.fail('no line acquire'), () => {
    // Raw bits come back: 0xfffffffe is -2 in an Int32Array, 2^64 - 1 is -1n in a BigInt64Array.
    assert.equal(Atomics.add(view, 3, 5), -2);
    assert.equal(Atomics.store(view, 4, 7.9), 7);
    assert.equal(Atomics.compareExchange(view, 5, -1, 2), -2);
    assert.equal(Atomics.load(view, 6), -2);
    assert.equal(Atomics.sub(big, 10, 1n), -1n);
    assert.throws(() => Atomics.add(view, 3, 1n as never), TypeError);
  }, (request) => {
    seen.push(request);
    return request.width === 8 ? String(2n ** 64n - 1n) : String(0xfffffffe);
  });
  assert.deepEqual(seen.map((r) => [r.fn, r.address, r.width, r.operands]), [
    ['add', 8192 + 12, 4, ['5']],
    ['store', 8192 + 16, 4, ['7']],
    ['compareExchange', 8192 + 20, 4, ['4294967295', '2']],
    ['load', 8192 + 24, 4, []],
    ['sub', 8192 + 80, 8, ['1']],
  ]);
  assert.deepEqual([...view.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0], 'a shipped op ran at the directory, not here');
});

test('a notify says afterOp only when the thread\'s last Atomics op was shipped on that line: a native op since clears it', async () => {
  const table = new LineTable(16);
  const dsm = new SharedArrayBuffer(4096);
  const array = new Int32Array(dsm);
  const notifies: Array<{ address: number; afterOp: boolean }> = [];
  await withAppAtomics(table, dsm, () => assert.fail('no line acquire'), () => {
    // Element 0 (line 128) is held and cached by the same-element path; element 16 (line 129) is shipped.
    for (let k = 0; k < 3; k++) Atomics.add(array, 0, 1);
    assert.equal(Atomics.add(array, 16, 1), 0);
    Atomics.notify(array, 16, 1);
    assert.equal(Atomics.add(array, 16, 1), 0);
    Atomics.notify(array, 0, 1); // another line: no afterOp
    assert.equal(Atomics.add(array, 16, 1), 0);
    assert.equal(Atomics.add(array, 0, 1), 3, 'a native add');
    Atomics.notify(array, 16, 1);
    assert.equal(Atomics.add(array, 16, 1), 0);
    assert.equal(Atomics.load(array, 0), 4, 'a native load');
    Atomics.notify(array, 16, 1);
    assert.equal(Atomics.add(array, 16, 1), 0);
    Atomics.notify(array, 16, 1);
  }, (request) => {
    if (Math.floor(request.address / 64) === 128) { table.lineGranted(128); return null; }
    return '0';
  }, notifies);
  assert.deepEqual(notifies.map((n) => [n.address, n.afterOp]), [
    [8192 + 64, true], [8192, false], [8192 + 64, false], [8192 + 64, false], [8192 + 64, true],
  ]);
  assert.equal(table.lineRevoke(128), true, 'no pin is left behind');
});

test('a notify on a held line whose word is quiet is answered 0 in the thread; a wait\'s check clears its word\'s bit first (session 36)', async () => {
  const table = new LineTable(16);
  const dsm = new SharedArrayBuffer(4096);
  const view = new Int32Array(dsm);
  // view[k] is at region byte 8192 + 4k: line 128, word k of the line.
  const line = 8192 / 64;
  const notifies: Array<{ address: number; afterOp: boolean }> = [];
  await withAppAtomics(table, dsm, (wanted) => table.lineGranted(wanted), () => {
    table.lineGranted(line, 0b0110); // words 1 and 2 quiet
    assert.equal(table.quietMask(line), 0b0110);
    assert.equal(Atomics.notify(view, 1, 1), 0);
    assert.equal(Atomics.notify(view, 2), 0);
    assert.equal(notifies.length, 0, 'no call for a quiet word');
    assert.equal(table.lineNotifiesInThread(), 2, 'counted for the stats');
    assert.equal(Atomics.notify(view, 0, 1), 0);
    assert.deepEqual(notifies.map((entry) => entry.address), [8192], 'a word not quiet asks the manager');
    // A wait whose check fails still cleared its word's bit before the check: the next notify asks.
    assert.equal(Atomics.wait(view, 1, 5, 0), 'not-equal');
    assert.equal(table.quietMask(line), 0b0100);
    assert.equal(Atomics.notify(view, 1, 1), 0);
    assert.deepEqual(notifies.map((entry) => entry.address), [8192, 8196]);
    // The manager clears a bit for a wait it checks itself (a shipped wait at the directory).
    table.lineQuietClear(line, 8200);
    assert.equal(table.quietMask(line), 0);
    // Not held: the notify asks, whatever the word's mask was.
    table.lineGranted(line + 1, 0xffff);
    assert.equal(table.lineRevoke(line + 1), true);
    notifies.length = 0;
    assert.equal(Atomics.notify(view, 16), 0);
    assert.deepEqual(notifies.map((entry) => entry.address), [8192 + 64]);
    // A grant writes the tenure's mask afresh; one with no mask (a revoke that found a pin) keeps it.
    assert.equal(table.lineRevoke(line), true);
    table.lineGranted(line, 0b1000);
    assert.equal(table.quietMask(line), 0b1000);
    assert.equal(table.lineRevoke(line), true);
    table.lineGranted(line);
    assert.equal(table.quietMask(line), 0b1000);
    // Set again within a tenure (requiet) only while no waiter is between its check and its registration.
    const words = new Int32Array(table.buffer);
    const slot = [...words.subarray(lineTableLayout(16).keys, lineTableLayout(16).keys + 16)].indexOf(line + 1);
    Atomics.add(words, lineTableLayout(16).quiet + slot, lineQuietCheckOne); // a waiter counts itself, as checkPinned does
    assert.equal(table.quietChecks(line), 1);
    assert.equal(table.lineRequiet(line, 0b0001), false, 'refused while a waiter counts');
    assert.equal(table.quietMask(line), 0b1000);
    table.lineCheckDone(line);
    assert.equal(table.lineRequiet(line, 0b0001), true);
    assert.equal(table.quietMask(line), 0b1001);
    // A waiter that checked and did not sleep uncounted itself.
    assert.equal(Atomics.wait(view, 3, 99, 0), 'not-equal');
    assert.equal(table.quietChecks(line), 0);
    assert.equal(table.quietMask(line), 0b0001);
  }, undefined, notifies);
});
