// The TypeScript diff codec (src/protocol/diff-codec.ts) against the native
// encoder (EncodeDiff in native/dsm_mmu.cc): byte-identical diffs for the same
// twin and page, and the same bytes after applying them. Only the manager view
// is used (no fault, no signal handler), so it runs in the test process.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pageBytes } from '../../src/constants.js';
import { loadNativeMmu } from '../../src/memory/native.js';
import { applyDiff, encodeDiff, encodeRun } from '../../src/protocol/diff-codec.js';
import { Prng } from '../sim/sim.js';

const native = loadNativeMmu();
native.init(8 * pageBytes);

/** The native diff of `page` against `twin`, made on region page 0 through makeTwin and flush. */
function nativeDiff(twin: Uint8Array, page: Uint8Array): Uint8Array {
  native.writePage(0, twin);
  native.makeTwin(0);
  native.writePage(0, page);
  const records = native.flush(Uint32Array.of(0));
  assert.equal(records.length, 1);
  return new Uint8Array(records[0]!.diff);
}

function cases(): Array<{ name: string; twin: Uint8Array; page: Uint8Array }> {
  const out: Array<{ name: string; twin: Uint8Array; page: Uint8Array }> = [];
  const zero = (): Uint8Array => new Uint8Array(pageBytes);
  const edit = (name: string, twin: Uint8Array, change: (page: Uint8Array) => void): void => {
    const page = twin.slice();
    change(page);
    out.push({ name, twin, page });
  };
  edit('unchanged', zero(), () => {});
  edit('one byte', zero(), (p) => { p[5] = 42; });
  edit('first and last byte', zero(), (p) => { p[0] = 1; p[pageBytes - 1] = 2; });
  edit('neighbours in one word', zero(), (p) => { p[100] = 1; p[101] = 2; p[103] = 3; });
  edit('a run across words', zero(), (p) => { for (let k = 5; k < 30; k++) p[k] = k; });
  edit('every other byte', zero(), (p) => { for (let k = 0; k < pageBytes; k += 2) p[k] = 0xff; });
  edit('every byte', zero(), (p) => p.fill(7));
  const prng = new Prng(11);
  // QuickSort's partition: random ints, some swapped for others (runs of 1-4 bytes, most words touched).
  for (let round = 0; round < 8; round++) {
    const twin = new Uint8Array(pageBytes);
    for (let k = 0; k < pageBytes; k++) twin[k] = prng.int(256);
    edit(`partition ${round}`, twin, (p) => {
      for (let k = 0; k < pageBytes; k += 4) {
        if (!prng.chance(0.5)) continue;
        for (let b = 0; b < 4; b++) p[k + b] = prng.int(256);
      }
    });
  }
  for (let round = 0; round < 40; round++) {
    const twin = new Uint8Array(pageBytes);
    for (let k = 0; k < pageBytes; k++) twin[k] = prng.int(4);
    edit(`random ${round}`, twin, (p) => {
      const stores = 1 + prng.int(200);
      for (let s = 0; s < stores; s++) {
        const at = prng.int(pageBytes);
        const length = 1 + prng.int(prng.chance(0.2) ? 64 : 4);
        // Some stores write the value already there: not a change.
        for (let k = at; k < Math.min(pageBytes, at + length); k++) p[k] = prng.int(4);
      }
    });
  }
  return out;
}

test('encodeDiff is byte-identical to the native encoder, and both apply to the same page', () => {
  for (const { name, twin, page } of cases()) {
    const expected = nativeDiff(twin, page);
    const actual = encodeDiff(twin, page);
    assert.deepEqual(actual, expected, name);
    // Applying either onto the twin gives the page, in TypeScript and natively.
    const applied = twin.slice();
    applyDiff(applied, actual);
    assert.deepEqual(applied, page, `${name}: TypeScript apply`);
    native.writePage(1, twin);
    native.applyDiff(1, actual);
    const back = new Uint8Array(pageBytes);
    native.readPage(1, back);
    assert.deepEqual(back, page, `${name}: native apply`);
  }
});

test('one flush of many pages: each record is the diff of its page alone', () => {
  // The native flush encodes a call's diffs back to back into one buffer; each
  // record's diff must be exactly its page's diff (an offset or a length off by
  // one would hand a neighbour's bytes to the home).
  const all = cases();
  const batch = 6; // the region has 8 pages
  for (let first = 0; first < all.length; first += batch) {
    const group = all.slice(first, first + batch);
    group.forEach(({ twin }, k) => { native.writePage(k, twin); native.makeTwin(k); });
    group.forEach(({ page }, k) => native.writePage(k, page));
    const records = native.flush(Uint32Array.from(group.map((_, k) => k)));
    assert.equal(records.length, group.length);
    records.forEach((record, k) => {
      assert.equal(record.page, k);
      assert.deepEqual(new Uint8Array(record.diff), encodeDiff(group[k]!.twin, group[k]!.page), group[k]!.name);
    });
  }
});

test('encodeRun is the one-run diff the native encoder makes for a single store', () => {
  const twin = new Uint8Array(pageBytes);
  const page = twin.slice();
  page.set([1, 2, 3, 4, 5, 6, 7, 8], 4088);
  assert.deepEqual(encodeRun(4088, page.subarray(4088, 4096)), nativeDiff(twin, page));
});

test('applyDiff rejects a malformed diff before writing anything', () => {
  const page = new Uint8Array(pageBytes);
  const good = encodeRun(0, Uint8Array.of(9));
  const bad = Uint8Array.from([...good, 0xf0, 0x0f, 8, 0]);
  assert.throws(() => applyDiff(page, bad), { code: 'DSM_ERR_INTERNAL' });
  assert.equal(page[0], 0, 'the valid first run was not applied');
});

test('the native apply writes each run exactly: runs of every length 1-40 onto a page that differs elsewhere', () => {
  // Diffs of disjoint writes commute only if an apply touches no byte outside its runs (the native apply copies
  // runs of 4-16 bytes as word copies that overlap within the run).
  for (let length = 1; length <= 40; length++) {
    const runs: Uint8Array[] = [];
    for (let offset = 0; offset + length <= pageBytes; offset += length + 1 + (length % 7)) {
      runs.push(encodeRun(offset, new Uint8Array(length).map((_, k) => 1 + ((offset + k) % 250))));
    }
    const diff = new Uint8Array(runs.reduce((sum, run) => sum + run.length, 0));
    let at = 0;
    for (const run of runs) { diff.set(run, at); at += run.length; }
    const background = new Uint8Array(pageBytes).fill(0xee);
    const expected = background.slice();
    applyDiff(expected, diff);
    native.writePage(3, background);
    native.applyDiff(3, diff);
    const back = new Uint8Array(pageBytes);
    native.readPage(3, back);
    assert.deepEqual(back, expected, `runs of ${length} bytes`);
  }
});
