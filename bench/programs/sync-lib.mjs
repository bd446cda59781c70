// Helpers shared by the sync-*.mjs benchmark programs.
import { rangeOf } from 'dsm';

const pageBytes = 4096;
// 16-byte heap blocks fill a slab page 256 at a time; a few pages' worth
// reaches a page homed on every node.
const candidateCountMax = 16 * 256;

/** The p-th fraction of samples (µs), to two decimals. */
export function percentile(samples, fraction) {
  const sorted = Float64Array.from(samples).sort();
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] * 100) / 100;
}

/**
 * The node that manages a sync object, or is home to an Atomics word: the
 * home of the page holding its first byte (round-robin placement, the
 * default). The bench checks the run's message statistics against it.
 */
export function managerOf(view, nodeCount) {
  const range = rangeOf(view.buffer);
  if (range === null) throw new Error('sync bench: run this program with dsm run');
  return Math.floor((range.offset + view.byteOffset) / pageBytes) % nodeCount;
}

/** A new sync object (from `make`) managed by `manager`; the ones passed over stay allocated, so the heap moves on. */
export function managedBy(make, manager, nodeCount) {
  const passed = [];
  for (let tries = 0; tries < candidateCountMax; tries += 1) {
    const object = make();
    if (managerOf(object.handle, nodeCount) === manager) return object;
    passed.push(object);
  }
  throw new Error(`sync bench: no object managed by node ${manager} in ${candidateCountMax} tries`);
}
