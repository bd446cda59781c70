// The byte runs of a native diff (native/dsm_mmu.cc EncodeDiff, the format in
// src/protocol/diff-codec.ts): exact runs and masked runs, both exact to the
// byte (only bytes whose value changed since the twin).

import { forEachRun } from '../protocol/diff-codec.js';

/** [offset, length, offset, length, ...] of a diff's changed bytes within its page, ascending, adjacent stretches joined. */
export function diffRuns(diff: Uint8Array): number[] {
  const runs: number[] = [];
  forEachRun(diff, (offset, bytes) => {
    if (bytes.length === 0) return;
    const last = runs.length - 2;
    if (last >= 0 && runs[last]! + runs[last + 1]! === offset) runs[last + 1]! += bytes.length;
    else runs.push(offset, bytes.length);
  });
  return runs;
}

/** The union of two run lists (each ascending and disjoint), adjacent runs joined. */
export function unionRuns(a: number[], b: number[]): number[] {
  const all: Array<[number, number]> = [];
  for (let k = 0; k < a.length; k += 2) all.push([a[k]!, a[k]! + a[k + 1]!]);
  for (let k = 0; k < b.length; k += 2) all.push([b[k]!, b[k]! + b[k + 1]!]);
  all.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  let start = -1;
  let end = -1;
  for (const [s, e] of all) {
    if (start >= 0 && s <= end) { end = Math.max(end, e); continue; }
    if (start >= 0) out.push(start, end - start);
    start = s;
    end = e;
  }
  if (start >= 0) out.push(start, end - start);
  return out;
}

/** The bytes in both run lists, as [offset, length, ...], adjacent overlaps joined. */
export function overlapRuns(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const aStart = a[i]!;
    const aEnd = aStart + a[i + 1]!;
    const bStart = b[j]!;
    const bEnd = bStart + b[j + 1]!;
    const start = Math.max(aStart, bStart);
    const end = Math.min(aEnd, bEnd);
    if (start < end) {
      const last = out.length - 2;
      if (last >= 0 && out[last]! + out[last + 1]! === start) out[last + 1]! += end - start;
      else out.push(start, end - start);
    }
    if (aEnd <= bEnd) i += 2; else j += 2;
  }
  return out;
}
