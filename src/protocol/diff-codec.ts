// The diff format, in one place for TypeScript: a diff is a sequence of runs,
// each a header [u16 offset][u16 word], little-endian, then the run's body;
// runs ascending. Two kinds, chosen per run by the encoder, whichever is
// smaller (docs/PROTOCOL.md, "Diffs"):
//   - exact (word's bit 15 clear): `word` bytes at `offset`, every one changed;
//   - masked (bit 15 set): `word & 0x7fff` groups of 8 bytes from `offset` (a
//     multiple of 8): a mask byte per group (bit i: byte i of the group
//     changed), then the changed bytes of all its groups, ascending (the
//     masks first: the applier sums their bits 8 at a time to check the
//     run's length). A masked run spans short
//     gaps of unchanged bytes without carrying them: an Int32 below 2^24
//     written over zeros is 3 changed bytes of 4, one exact run a word (7
//     bytes a word), one masked run a page (7 bytes per 2 words).
// Either way a diff carries, and an apply writes, only bytes that changed, so
// diffs of disjoint writes commute: two nodes may write neighbouring bytes of
// one word between synchronizations. The native addon encodes the same format
// in C++ (EncodeDiff in native/dsm_mmu.cc); test/unit/diff-codec.test.ts pins
// this encoder byte for byte against it. Used by the engine (an atomic store
// at its home is a one-run diff), the race checker (src/race/diff.ts) and the
// simulator's page memory.

import { assert } from '../errors.js';
import { pageBytes } from '../constants.js';

/** Bytes of a run's header: u16 offset, u16 length (exact) or group count | diffMaskedRunFlag (masked). */
export const diffRunHeaderBytes = 4;
/** Set in a run header's second word: a masked run (a mask byte per 8-byte group, then the changed bytes). */
export const diffMaskedRunFlag = 0x8000;
/** Bytes of a masked run's group. */
export const diffMaskGroupBytes = 8;
/**
 * Unchanged groups that end a cluster: a masked run spanning that many pays
 * a mask byte each, as much as a new run's header (the encoder's rule, the
 * native kMaskGapGroups).
 */
const maskGapGroups = 4;

assert(pageBytes <= 0xffff + 1 && pageBytes < diffMaskedRunFlag, 'a run offset and length fit in a u16 below the masked-run flag');
assert(pageBytes % diffMaskGroupBytes === 0, 'a page is whole mask groups');

/** One exact run: [u16 offset][u16 length][bytes]. */
export function encodeRun(offset: number, bytes: Uint8Array): Uint8Array {
  assert(offset >= 0 && bytes.length > 0 && offset + bytes.length <= pageBytes, 'a run lies within a page');
  const out = new Uint8Array(diffRunHeaderBytes + bytes.length);
  out[0] = offset & 0xff; out[1] = offset >> 8; out[2] = bytes.length & 0xff; out[3] = bytes.length >> 8;
  out.set(bytes, diffRunHeaderBytes);
  return out;
}

/** The largest diff of a page: every other byte changed, a 5-byte exact run each (a masked run is chosen only when smaller). */
const diffBytesMax = (pageBytes / 2) * 5;
let scratch: Uint8Array | null = null;

/**
 * The diff of `page` against `twin` (both one page, or a shorter whole number
 * of groups), as the native encoder makes it: exact runs of the changed bytes,
 * grouped into clusters (runs less than maskGapGroups unchanged groups apart);
 * a cluster goes as one masked run over its groups when that is smaller than
 * its exact runs (4 + groups < 4 × runs).
 */
export function encodeDiff(twin: Uint8Array, page: Uint8Array): Uint8Array {
  assert(twin.length === page.length && page.length <= pageBytes && page.length % diffMaskGroupBytes === 0, 'a twin and its page are the same length, at most a page, whole groups');
  scratch ??= new Uint8Array(diffBytesMax);
  const out = scratch;
  let written = 0;
  let clusterFirst = -1; // group of the cluster's first changed byte, -1: no cluster yet
  let clusterLast = 0; // group of its last changed byte so far
  let clusterOut = 0; // where its runs start in `out`
  let clusterRuns = 0;
  const closeCluster = (): void => {
    const groups = clusterLast - clusterFirst + 1;
    if (diffRunHeaderBytes + groups >= diffRunHeaderBytes * clusterRuns) return;
    written = clusterOut + encodeMasked(twin, page, clusterFirst, groups, out, clusterOut);
  };
  let k = 0;
  const length = page.length;
  while (k < length) {
    if (page[k] === twin[k]) { k++; continue; }
    const start = k;
    while (k < length && page[k] !== twin[k]) k++;
    const group = start >> 3;
    if (clusterFirst < 0 || group - clusterLast - 1 >= maskGapGroups) {
      if (clusterFirst >= 0) closeCluster();
      clusterFirst = group;
      clusterOut = written;
      clusterRuns = 0;
    }
    clusterRuns++;
    clusterLast = (k - 1) >> 3;
    const runLength = k - start;
    out[written] = start & 0xff; out[written + 1] = start >> 8; out[written + 2] = runLength & 0xff; out[written + 3] = runLength >> 8;
    out.set(page.subarray(start, k), written + diffRunHeaderBytes);
    written += diffRunHeaderBytes + runLength;
  }
  if (clusterFirst >= 0) closeCluster();
  return out.slice(0, written);
}

/** Writes the masked run of `groups` groups from group `first` at out[at...]; returns its bytes. */
function encodeMasked(twin: Uint8Array, page: Uint8Array, first: number, groups: number, out: Uint8Array, at: number): number {
  const offset = first * diffMaskGroupBytes;
  const word = groups | diffMaskedRunFlag;
  out[at] = offset & 0xff; out[at + 1] = offset >> 8; out[at + 2] = word & 0xff; out[at + 3] = word >> 8;
  let w = at + diffRunHeaderBytes + groups;
  for (let g = 0; g < groups; g++) {
    const base = offset + g * diffMaskGroupBytes;
    let mask = 0;
    for (let i = 0; i < diffMaskGroupBytes; i++) {
      if (page[base + i] === twin[base + i]) continue;
      mask |= 1 << i;
      out[w++] = page[base + i]!;
    }
    out[at + diffRunHeaderBytes + g] = mask;
  }
  return w - at;
}

/** Bits set in a mask byte. */
function popcount8(mask: number): number {
  let bits = mask - ((mask >> 1) & 0x55);
  bits = (bits & 0x33) + ((bits >> 2) & 0x33);
  return (bits + (bits >> 4)) & 0x0f;
}

/**
 * Calls `run` per stretch of changed bytes of a diff (offset, and the bytes as
 * a view into the diff): an exact run's, or each stretch of set bits of a
 * masked run's group (a stretch never crosses a group). Throws
 * DSM_ERR_INTERNAL on a malformed diff, before any call.
 */
export function forEachRun(diff: Uint8Array, run: (offset: number, bytes: Uint8Array) => void, pageLength = pageBytes): void {
  let k = 0;
  while (k < diff.length) {
    assert(k + diffRunHeaderBytes <= diff.length, 'a diff run header lies within the diff');
    const offset = diff[k]! | (diff[k + 1]! << 8);
    const word = diff[k + 2]! | (diff[k + 3]! << 8);
    k += diffRunHeaderBytes;
    if ((word & diffMaskedRunFlag) === 0) {
      assert(offset + word <= pageLength && k + word <= diff.length, 'a diff run lies within its page and the diff');
      k += word;
      continue;
    }
    const groups = word & ~diffMaskedRunFlag;
    assert(groups > 0 && offset % diffMaskGroupBytes === 0 && offset + groups * diffMaskGroupBytes <= pageLength, 'a masked diff run has groups, aligned, within its page');
    assert(k + groups <= diff.length, 'a masked diff run\'s masks lie within the diff');
    let changed = 0;
    for (let g = 0; g < groups; g++) changed += popcount8(diff[k + g]!);
    k += groups + changed;
    assert(k <= diff.length, 'a masked diff run lies within the diff');
  }
  k = 0;
  while (k < diff.length) {
    const offset = diff[k]! | (diff[k + 1]! << 8);
    const word = diff[k + 2]! | (diff[k + 3]! << 8);
    k += diffRunHeaderBytes;
    if ((word & diffMaskedRunFlag) === 0) {
      run(offset, diff.subarray(k, k + word));
      k += word;
      continue;
    }
    const groups = word & ~diffMaskedRunFlag;
    const masks = k;
    k += groups;
    for (let g = 0; g < groups; g++) {
      const mask = diff[masks + g]!;
      let i = 0;
      while (i < diffMaskGroupBytes) {
        if ((mask & (1 << i)) === 0) { i++; continue; }
        const first = i;
        while (i < diffMaskGroupBytes && (mask & (1 << i)) !== 0) i++;
        run(offset + g * diffMaskGroupBytes + first, diff.subarray(k, k + i - first));
        k += i - first;
      }
    }
  }
}

/** Writes a diff's changed bytes into `page` (one page of bytes); a malformed diff writes nothing. */
export function applyDiff(page: Uint8Array, diff: Uint8Array): void {
  forEachRun(diff, (offset, bytes) => page.set(bytes, offset), page.length);
}
