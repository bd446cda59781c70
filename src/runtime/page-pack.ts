// Page copies packed for the wire (issue 13: matmul 16 x 16 moves pages whose
// bytes are mostly zero). Typed arrays of small integers, and pages only partly
// written, are mostly zero bytes: an Int32 of [0, 10) is one non-zero byte in
// four. Whole-page copies cannot go below ~14.9 MB for matmul on 16 nodes (all
// of B on 15 nodes, 9.6 MB, and each node's pages of A and C, 2.1 MB each); packed,
// those pages are a third of it.
//
// The format is Cap'n Proto's packing, per 8-byte word:
//   a tag byte whose bit i says byte i of the word is not zero, then those bytes;
//   tag 0x00 is followed by a count (0-255) of further all-zero words;
//   tag 0xff (eight bytes follow) is followed by a count (0-255) of further words
//   copied as they are (words with at most one zero byte: packing them gains nothing).
// A copy is packed only where that saves at least 1/pagePackGainDivisor of it
// (pages of doubles do not: they go raw, after a look at their first bytes).
// Packing is the envelope's (src/runtime/envelope.ts): the engine never sees it.

import { pagePackGainDivisor, pagePackProbeBytes } from '../constants.js';
import { assert } from '../errors.js';
import { FrameError } from '../transport/frame.js';

const wordBytes = 8;
const runCountMax = 255;
/** Copies smaller than this go raw: below it, len / pagePackGainDivisor could not hold one word's worst case (10 bytes). */
const packedCopyBytesMin = 128;

function nonZeroMask(src: Uint8Array, at: number): number {
  let tag = 0;
  for (let b = 0; b < wordBytes; b++) if (src[at + b] !== 0) tag |= 1 << b;
  return tag;
}

function popCount8(tag: number): number {
  let count = 0;
  for (let t = tag; t !== 0; t &= t - 1) count++;
  return count;
}

/**
 * Packs `src` (a whole number of words) into `out` from `outAt`; returns where
 * the packed bytes end, or -1 when packing would not save 1/pagePackGainDivisor
 * of `src` (checked after the first pagePackProbeBytes and at the end; `out`
 * past `outAt` is then garbage). `out` must have room for src.length bytes from outAt.
 */
export function packWords(src: Uint8Array, out: Uint8Array, outAt: number): number {
  assert(src.length % wordBytes === 0 && out.length - outAt >= src.length, 'packing whole words into room for them raw');
  // Too small to gain: and the limit below must leave room for one word's worst case (tag, 8 bytes, count).
  if (src.length < packedCopyBytesMin) return -1;
  const end = outAt + src.length;
  const limit = outAt + src.length - Math.floor(src.length / pagePackGainDivisor);
  const probeEnd = Math.min(src.length, pagePackProbeBytes);
  const probeLimit = outAt + probeEnd - Math.floor(probeEnd / pagePackGainDivisor);
  let probed = false;
  let o = outAt;
  let i = 0;
  while (i < src.length) {
    if (!probed && i >= probeEnd) {
      if (o > probeLimit) return -1;
      probed = true;
    }
    // At most 10 bytes are written before the next look (a raw run stops short of `end`).
    if (o > limit) return -1;
    const tag = nonZeroMask(src, i);
    out[o++] = tag;
    i += wordBytes;
    if (tag === 0) {
      let run = 0;
      while (run < runCountMax && i < src.length && nonZeroMask(src, i) === 0) { run++; i += wordBytes; }
      out[o++] = run;
    } else if (tag === 0xff) {
      for (let b = 0; b < wordBytes; b++) out[o++] = src[i - wordBytes + b]!;
      const countAt = o++;
      let run = 0;
      while (run < runCountMax && i < src.length && o + wordBytes <= end && popCount8(nonZeroMask(src, i)) >= wordBytes - 1) {
        for (let b = 0; b < wordBytes; b++) out[o++] = src[i + b]!;
        run++; i += wordBytes;
      }
      out[countAt] = run;
    } else {
      for (let b = 0; b < wordBytes; b++) if ((tag & (1 << b)) !== 0) out[o++] = src[i - wordBytes + b]!;
    }
  }
  return o > limit ? -1 : o;
}

/**
 * Unpacks `packed` into `out` (zeroed where packing left zeros: every byte of
 * `out` is written). Throws FrameError when `packed` does not hold exactly
 * out.length bytes' worth (a peer's bytes are checked like any frame field).
 */
export function unpackWords(packed: Uint8Array, out: Uint8Array): void {
  if (out.length % wordBytes !== 0) throw new FrameError('a packed copy unpacks to whole words');
  let p = 0;
  let o = 0;
  const need = (bytes: number): void => {
    if (p + bytes > packed.length) throw new FrameError('a packed copy ends inside a word');
  };
  while (o < out.length) {
    need(1);
    const tag = packed[p++]!;
    if (tag === 0) {
      need(1);
      const words = 1 + packed[p++]!;
      if (o + words * wordBytes > out.length) throw new FrameError('a packed copy unpacks past its length');
      out.fill(0, o, o + words * wordBytes);
      o += words * wordBytes;
    } else if (tag === 0xff) {
      need(wordBytes + 1);
      out.set(packed.subarray(p, p + wordBytes), o);
      p += wordBytes; o += wordBytes;
      const words = packed[p++]!;
      const bytes = words * wordBytes;
      need(bytes);
      if (o + bytes > out.length) throw new FrameError('a packed copy unpacks past its length');
      out.set(packed.subarray(p, p + bytes), o);
      p += bytes; o += bytes;
    } else {
      for (let b = 0; b < wordBytes; b++) {
        if ((tag & (1 << b)) !== 0) { need(1); out[o + b] = packed[p++]!; } else out[o + b] = 0;
      }
      o += wordBytes;
    }
  }
  if (p !== packed.length) throw new FrameError(`a packed copy has ${packed.length - p} bytes past its end`);
}
