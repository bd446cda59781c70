// The diff format, in one place for TypeScript: a diff is a sequence of runs,
// each [u16 offset][u16 byteLength][bytes], little-endian, runs ascending and
// exact to the byte (a run never carries an unchanged byte, so diffs of
// disjoint writes commute: two nodes may write neighbouring bytes of one word
// between synchronizations). The native addon encodes the same format in C++
// (EncodeDiff in native/dsm_mmu.cc); test/unit/diff-codec.test.ts pins this
// encoder byte for byte against it. Used by the engine (an atomic store at
// its home is a one-run diff) and by the simulator's page memory.

import { assert } from '../errors.js';
import { pageBytes } from '../constants.js';

/** Bytes of a run's header: u16 offset, u16 length. */
export const diffRunHeaderBytes = 4;

assert(pageBytes <= 0xffff + 1, 'a run offset and length fit in a u16');

/** One run: [u16 offset][u16 length][bytes]. */
export function encodeRun(offset: number, bytes: Uint8Array): Uint8Array {
  assert(offset >= 0 && bytes.length > 0 && offset + bytes.length <= pageBytes, 'a run lies within a page');
  const out = new Uint8Array(diffRunHeaderBytes + bytes.length);
  out[0] = offset & 0xff; out[1] = offset >> 8; out[2] = bytes.length & 0xff; out[3] = bytes.length >> 8;
  out.set(bytes, diffRunHeaderBytes);
  return out;
}

/** The runs of bytes where `page` differs from `twin` (both one page), as the native encoder makes them. */
export function encodeDiff(twin: Uint8Array, page: Uint8Array): Uint8Array {
  assert(twin.length === page.length && page.length <= pageBytes, 'a twin and its page are the same length, at most a page');
  // Two passes: size, then fill (no intermediate arrays).
  let bytes = 0;
  forEachChange(twin, page, (start, end) => { bytes += diffRunHeaderBytes + (end - start); });
  const out = new Uint8Array(bytes);
  let at = 0;
  forEachChange(twin, page, (start, end) => {
    const length = end - start;
    out[at] = start & 0xff; out[at + 1] = start >> 8; out[at + 2] = length & 0xff; out[at + 3] = length >> 8;
    out.set(page.subarray(start, end), at + diffRunHeaderBytes);
    at += diffRunHeaderBytes + length;
  });
  return out;
}

function forEachChange(twin: Uint8Array, page: Uint8Array, run: (start: number, end: number) => void): void {
  let k = 0;
  while (k < page.length) {
    if (page[k] === twin[k]) { k++; continue; }
    const start = k;
    while (k < page.length && page[k] !== twin[k]) k++;
    run(start, k);
  }
}

/**
 * Calls `run` per run of a diff (offset, and the run's bytes as a view into
 * the diff). Throws DSM_ERR_INTERNAL on a malformed diff, before any call.
 */
export function forEachRun(diff: Uint8Array, run: (offset: number, bytes: Uint8Array) => void, pageLength = pageBytes): void {
  let k = 0;
  while (k < diff.length) {
    assert(k + diffRunHeaderBytes <= diff.length, 'a diff run header lies within the diff');
    const offset = diff[k]! | (diff[k + 1]! << 8);
    const length = diff[k + 2]! | (diff[k + 3]! << 8);
    assert(offset + length <= pageLength && k + diffRunHeaderBytes + length <= diff.length, 'a diff run lies within its page and the diff');
    k += diffRunHeaderBytes + length;
  }
  k = 0;
  while (k < diff.length) {
    const offset = diff[k]! | (diff[k + 1]! << 8);
    const length = diff[k + 2]! | (diff[k + 3]! << 8);
    run(offset, diff.subarray(k + diffRunHeaderBytes, k + diffRunHeaderBytes + length));
    k += diffRunHeaderBytes + length;
  }
}

/** Writes a diff's runs into `page` (one page of bytes); a malformed diff writes nothing. */
export function applyDiff(page: Uint8Array, diff: Uint8Array): void {
  forEachRun(diff, (offset, bytes) => page.set(bytes, offset), page.length);
}
