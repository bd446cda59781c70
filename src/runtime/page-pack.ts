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
//
// packWords and unpackWords here are the reference; the envelope calls
// packCopy and unpackCopy, the native addon's copies of them (the same bytes,
// checked by test/unit/page-pack.test.ts) where it loads: a fetch's copies are
// packed in code that never gets hot in a short run (Jacobi's start: ~30 ms of
// the home manager's CPU for 2,044 pages in cold JavaScript, session 14).

import { pagePackGainDivisor, pagePackProbeBytes } from '../constants.js';
import { nativePackEnabled } from '../env.js';
import { assert } from '../errors.js';
import { loadNativeMmu } from '../memory/native.js';
import { FrameError } from '../transport/frame.js';

const wordBytes = 8;
const runCountMax = 255;
/** Copies smaller than this go raw: below it, len / pagePackGainDivisor could not hold one word's worst case (10 bytes). */
const packedCopyBytesMin = 128;

/** Whether a 32-bit word has a zero byte (the classic bit trick). */
function hasZeroByte(v: number): boolean {
  return ((v - 0x01010101) & ~v & 0x80808080) !== 0;
}

/** Whether the word at byte `at` is all zero bytes. */
function zeroAt(src: Uint8Array, at: number): boolean {
  for (let b = 0; b < wordBytes; b++) if (src[at + b] !== 0) return false;
  return true;
}

/** Whether a word, as its two 32-bit halves, has at most one zero byte. */
function dense32(lo: number, hi: number): boolean {
  const loZero = hasZeroByte(lo);
  const hiZero = hasZeroByte(hi);
  if (!loZero && !hiZero) return true;
  if (loZero && hiZero) return false;
  const half = loZero ? lo : hi;
  let zeros = 0;
  for (let b = 0; b < 32; b += 8) if (((half >>> b) & 0xff) === 0) zeros++;
  return zeros <= 1;
}

/** Whether the word at byte `at` has at most one zero byte (copied raw in a dense run: packing it gains nothing). */
function denseAt(src: Uint8Array, at: number): boolean {
  let zeros = 0;
  for (let b = 0; b < wordBytes; b++) if (src[at + b] === 0) zeros++;
  return zeros <= 1;
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
  // Whole words read as two 32-bit halves where the copy is aligned (pages are): a zero word, or a word with no zero byte, costs two loads.
  const words32 = src.byteOffset % 4 === 0 ? new Uint32Array(src.buffer, src.byteOffset, src.length >> 2) : null;
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
    // The tag and the word's non-zero bytes in one pass.
    const tagAt = o++;
    let tag = 0;
    for (let b = 0; b < wordBytes; b++) {
      const v = src[i + b]!;
      if (v !== 0) { tag |= 1 << b; out[o++] = v; }
    }
    out[tagAt] = tag;
    i += wordBytes;
    if (tag === 0) {
      let run = 0;
      if (words32 !== null) {
        while (run < runCountMax && i < src.length && words32[i >> 2] === 0 && words32[(i >> 2) + 1] === 0) { run++; i += wordBytes; }
      } else {
        while (run < runCountMax && i < src.length && zeroAt(src, i)) { run++; i += wordBytes; }
      }
      out[o++] = run;
    } else if (tag === 0xff) {
      // A dense run stops at the probe's end until the probe has looked (pages of doubles are one long run).
      const runEnd = probed ? src.length : probeEnd;
      let run = 0;
      let j = i;
      if (words32 !== null) {
        while (run < runCountMax && j < runEnd && o + 1 + wordBytes * (run + 1) <= end && dense32(words32[j >> 2]!, words32[(j >> 2) + 1]!)) { run++; j += wordBytes; }
      } else {
        while (run < runCountMax && j < runEnd && o + 1 + wordBytes * (run + 1) <= end && denseAt(src, j)) { run++; j += wordBytes; }
      }
      out[o++] = run;
      if (run > 0) { out.set(src.subarray(i, j), o); o += wordBytes * run; }
      i = j;
    }
  }
  return o > limit ? -1 : o;
}

/**
 * Unpacks `packed` into `out` (zeroed where packing left zeros: every byte of
 * `out` is written; `zeroed`: `out` is all zeros already, a new array). Throws FrameError when `packed` does not hold exactly
 * out.length bytes' worth (a peer's bytes are checked like any frame field).
 */
export function unpackWords(packed: Uint8Array, out: Uint8Array, zeroed = false): void {
  if (out.length % wordBytes !== 0) throw new FrameError('a packed copy unpacks to whole words');
  // Zeros first (one memset, unless `out` is new), then only the non-zero bytes are written.
  if (!zeroed) out.fill(0);
  const length = packed.length;
  let p = 0;
  let o = 0;
  while (o < out.length) {
    if (p >= length) throw new FrameError('a packed copy ends inside a word');
    const tag = packed[p++]!;
    if (tag === 0) {
      if (p >= length) throw new FrameError('a packed copy ends inside a word');
      const bytes = (1 + packed[p++]!) * wordBytes;
      if (o + bytes > out.length) throw new FrameError('a packed copy unpacks past its length');
      o += bytes;
    } else if (tag === 0xff) {
      if (p + wordBytes + 1 > length) throw new FrameError('a packed copy ends inside a word');
      const bytes = wordBytes * (1 + packed[p + wordBytes]!);
      if (o + bytes > out.length) throw new FrameError('a packed copy unpacks past its length');
      if (p + bytes + 1 > length) throw new FrameError('a packed copy ends inside a word');
      out.set(packed.subarray(p, p + wordBytes), o);
      if (bytes > wordBytes) out.set(packed.subarray(p + wordBytes + 1, p + bytes + 1), o + wordBytes);
      p += bytes + 1;
      o += bytes;
    } else {
      if (p + popCount8(tag) > length) throw new FrameError('a packed copy ends inside a word');
      if ((tag & 1) !== 0) out[o] = packed[p++]!;
      if ((tag & 2) !== 0) out[o + 1] = packed[p++]!;
      if ((tag & 4) !== 0) out[o + 2] = packed[p++]!;
      if ((tag & 8) !== 0) out[o + 3] = packed[p++]!;
      if ((tag & 16) !== 0) out[o + 4] = packed[p++]!;
      if ((tag & 32) !== 0) out[o + 5] = packed[p++]!;
      if ((tag & 64) !== 0) out[o + 6] = packed[p++]!;
      if ((tag & 128) !== 0) out[o + 7] = packed[p++]!;
      o += wordBytes;
    }
  }
  if (p !== length) throw new FrameError(`a packed copy has ${length - p} bytes past its end`);
}

/** Set bits of a byte. */
const popCounts = Uint8Array.from({ length: 256 }, (_, v) => { let c = 0; for (let t = v; t !== 0; t &= t - 1) c++; return c; });
function popCount8(tag: number): number {
  return popCounts[tag]!;
}

/** The addon's packWords and unpackWords (native/dsm_mmu.cc), or null: not loadable here, or DSM_NATIVE_PACK=0. */
function nativePacker(): { packWords(src: Uint8Array, out: Uint8Array, outAt: number): number; unpackWords(packed: Uint8Array, out: Uint8Array, zeroed: boolean): boolean } | null {
  if (!nativePackEnabled()) return null;
  try {
    return loadNativeMmu();
  } catch {
    return null;
  }
}

const native = nativePacker();

/** Whether packCopy and unpackCopy run natively in this process. */
export const nativePacking = native !== null;

/** packWords, natively where the addon loads (the same bytes out). */
export function packCopy(src: Uint8Array, out: Uint8Array, outAt: number): number {
  if (native === null) return packWords(src, out, outAt);
  return native.packWords(src, out, outAt);
}

/** unpackWords, natively where the addon loads; a malformed copy is the reference's FrameError, found by running it. */
export function unpackCopy(packed: Uint8Array, out: Uint8Array, zeroed = false): void {
  if (native === null) { unpackWords(packed, out, zeroed); return; }
  if (native.unpackWords(packed, out, zeroed)) return;
  // The reference throws the error that says why; it must (the two agree on every input).
  unpackWords(packed, out, false);
  assert(false, 'the native unpacker refused a copy the reference unpacks');
}
