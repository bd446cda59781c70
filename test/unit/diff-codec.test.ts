// The TypeScript diff codec (src/protocol/diff-codec.ts) against the native
// encoder (EncodeDiff in native/dsm_mmu.cc): byte-identical diffs for the same
// twin and page (exact and masked runs), the same bytes after applying them,
// and malformed runs of both kinds rejected before anything is written. Only the manager view
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
  // Masked runs: short gaps of unchanged bytes inside a cluster of runs.
  edit('Int32s below 2^24 over zeros', zero(), (p) => { const v = new Int32Array(p.buffer); for (let i = 0; i < v.length; i++) v[i] = (i * 31 + 7) | 0; });
  edit('Int16s over zeros', zero(), (p) => { const v = new Int16Array(p.buffer); for (let i = 0; i < v.length; i++) v[i] = (i * 31) & 0x7fff; });
  edit('Float64s of small integers over zeros', zero(), (p) => { const v = new Float64Array(p.buffer); for (let i = 0; i < v.length; i++) v[i] = i * 3 + 1; });
  edit('a dense half then sparse Int32s', zero(), (p) => {
    p.fill(9, 0, pageBytes / 2);
    const v = new Int32Array(p.buffer, pageBytes / 2);
    for (let i = 0; i < v.length; i++) v[i] = i + 1;
  });
  edit('clusters 4 and 3 unchanged groups apart', zero(), (p) => {
    for (const base of [64, 64 + 16 + 32, 64 + 16 + 32 + 16 + 24]) for (let k = 0; k < 16; k += 2) p[base + k] = 1;
  });
  edit('a run ends and the next starts in one group', zero(), (p) => { for (let k = 0; k < 256; k++) if (k % 8 !== 3) p[k] = 5; });
  edit('every other byte, then a long gap, then a word', zero(), (p) => { for (let k = 0; k < 1024; k += 2) p[k] = 3; p.fill(4, 3000, 3008); });
  const prng = new Prng(11);
  {
    // Jacobi's relaxation: doubles nudged, their sign, exponent and top mantissa bytes unchanged.
    const twin = zero();
    const v = new Float64Array(twin.buffer);
    for (let i = 0; i < v.length; i++) v[i] = 1 + prng.int(1000) / 1000;
    edit('doubles nudged', twin, (p) => { const w = new Float64Array(p.buffer); for (let i = 0; i < w.length; i++) w[i] = w[i]! * (1 + 1e-7); });
  }
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
  // Clusters at random distances (gaps of 0-6 unchanged groups around the 4 that split them), random masks.
  for (let round = 0; round < 40; round++) {
    edit(`clusters ${round}`, zero(), (p) => {
      let group = prng.int(6);
      while (group < pageBytes / 8) {
        const mask = prng.chance(0.3) ? 0xff : 1 + prng.int(255);
        for (let i = 0; i < 8; i++) if (mask & (1 << i)) p[group * 8 + i] = 1 + prng.int(255);
        group += 1 + (prng.chance(0.5) ? 0 : prng.int(7));
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

test('a masked run, byte for byte: a mask byte per 8-byte group, then the changed bytes', () => {
  const twin = new Uint8Array(pageBytes);
  const page = twin.slice();
  page.set([1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9], 16); // three exact runs (21 bytes) or one masked run of 2 groups (15)
  const expected = Uint8Array.of(16, 0, 2, 0x80, 0x77, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 9);
  assert.deepEqual(encodeDiff(twin, page), expected);
  assert.deepEqual(nativeDiff(twin, page), expected);
  // Two runs in one group: masked (4 + 1 + 6 bytes, exact 4 + 4 + 6).
  page.fill(0, 24);
  assert.deepEqual(encodeDiff(twin, page), Uint8Array.of(16, 0, 1, 0x80, 0x77, 1, 2, 3, 4, 5, 6));
  // Two runs 4 groups apart stay exact (a masked run of 4 groups costs what the second header does).
  page.fill(0, 20);
  page.set([4, 5, 6], 40);
  assert.deepEqual(encodeDiff(twin, page), Uint8Array.of(16, 0, 3, 0, 1, 2, 3, 40, 0, 3, 0, 4, 5, 6));
  assert.deepEqual(nativeDiff(twin, page), encodeDiff(twin, page));
});

test('masked runs halve the diffs of small integers (the alloc-drop fixture)', () => {
  const twin = new Uint8Array(pageBytes);
  const page = twin.slice();
  const v = new Int32Array(page.buffer);
  for (let i = 0; i < v.length; i++) v[i] = 0x10101 * (1 + (i % 200)); // three non-zero bytes of four
  // One masked run: a header, 512 mask bytes, 3 bytes a word (exact: 7 bytes a word, 7,168 a page).
  assert.equal(encodeDiff(twin, page).length, 4 + pageBytes / 8 + (pageBytes / 4) * 3);
  // A whole rewrite stays one exact run.
  assert.equal(encodeDiff(twin, page.fill(1)).length, 4 + pageBytes);
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
    nativeApplyAsTypeScript(diff, `runs of ${length} bytes`);
  }
});

/** Applies `diff` natively to page 3 filled with 0xee and asserts the bytes are what TypeScript's applyDiff makes; returns them. */
function nativeApplyAsTypeScript(diff: Uint8Array, message: string): Uint8Array {
  const background = new Uint8Array(pageBytes).fill(0xee);
  const expected = background.slice();
  applyDiff(expected, diff);
  native.writePage(3, background);
  native.applyDiff(3, diff);
  const back = new Uint8Array(pageBytes);
  native.readPage(3, back);
  assert.deepEqual(back, expected, message);
  return back;
}

/** Malformed masked runs, each after a valid exact run that must not be applied. */
const malformedMasked: Array<[string, number[]]> = [
  ['no groups', [0, 0, 0, 0x80]],
  ['an offset not a multiple of 8', [4, 0, 1, 0x80, 0x01, 9]],
  ['groups past the page', [0xf8, 0x0f, 2, 0x80, 0x01, 9, 0x01, 9]],
  ['a group\'s bytes past the diff', [0, 0, 1, 0x80, 0xff, 1, 2, 3]],
  ['a mask byte missing', [0, 0, 2, 0x80, 0x01]],
  ['the last group one byte short', [8, 0, 2, 0x80, 0x03, 0x03, 1, 2, 1]],
  ['nine groups, the ninth\'s byte missing', [0, 0, 9, 0x80, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8]],
  ['every group count', [0, 0, 0xff, 0xff, 0x01, 9]],
];

test('a malformed masked run is rejected, in TypeScript and natively, before writing anything', () => {
  for (const [name, run] of malformedMasked) {
    const bad = Uint8Array.from([...encodeRun(0, Uint8Array.of(9)), ...run]);
    const page = new Uint8Array(pageBytes);
    assert.throws(() => applyDiff(page, bad), { code: 'DSM_ERR_INTERNAL' }, name);
    assert.equal(page[0], 0, `${name}: the valid first run was not applied`);
    native.writePage(2, new Uint8Array(pageBytes));
    assert.throws(() => native.applyDiff(2, bad), { code: 'DSM_ERR_FRAME' }, name);
    const back = new Uint8Array(pageBytes);
    native.readPage(2, back);
    assert.equal(back[0], 0, `${name}: native: the valid first run was not applied`);
  }
});

test('the native apply of masked runs writes exactly the masked bytes: random masks onto a page that differs elsewhere', () => {
  const prng = new Prng(5);
  for (let round = 0; round < 50; round++) {
    const parts: number[] = [];
    let group = prng.int(8);
    while (group < pageBytes / 8) {
      const groups = Math.min(1 + prng.int(40), pageBytes / 8 - group);
      const offset = group * 8;
      parts.push(offset & 0xff, offset >> 8, groups & 0xff, (groups >> 8) | 0x80);
      const masks = Array.from({ length: groups }, () => (prng.chance(0.2) ? 0xff : prng.int(256)));
      parts.push(...masks);
      for (const mask of masks) for (let i = 0; i < 8; i++) if (mask & (1 << i)) parts.push(1 + prng.int(200)); // never 0xee
      group += groups + prng.int(20);
    }
    const diff = Uint8Array.from(parts);
    const back = nativeApplyAsTypeScript(diff, `round ${round}`);
    // Only masked bytes were written: the page and the background differ exactly where a mask bit is set.
    let changed = 0;
    for (let k = 0; k < pageBytes; k++) if (back[k] !== 0xee) changed++;
    let set = 0;
    for (let at = 0; at < diff.length;) {
      const groups = (diff[at + 2]! | (diff[at + 3]! << 8)) & 0x7fff;
      let bits = 0;
      for (let g = 0; g < groups; g++) for (let i = 0; i < 8; i++) if (diff[at + 4 + g]! & (1 << i)) bits++;
      set += bits;
      at += 4 + groups + bits;
    }
    assert.equal(changed, set, `round ${round}: bytes written`);
  }
});
