// The page service of a one-node run. With no other node, no copy of a page
// can go stale and no write ever needs a diff, so the page state machine of a
// cluster (invalid -> read-only -> read-write with a twin, flushed at each
// release) has nothing to do. The cheapest correct design is no design: the
// whole app view is made read-write when the service starts, so a program
// touches its memory exactly as under plain node (the kernel's own first-touch
// fault on a fresh page, nothing else), whatever its working set.
//
// Consequences (docs/PROTOCOL.md, "One node"): `--stats` reports no read or
// write faults on one node, because none happen; freed memory is released by
// punching a hole in the region's file (reads zero afterwards, through every
// view) and reused memory is zeroed through the manager view, both of which
// are coherent with a read-write app view since all views map the same file.

import { assert } from '../errors.js';
import { type NativeMmu, protReadWrite } from '../memory/native.js';
import { pageBytes } from '../constants.js';

export class SingleNodePages {
  private readonly native: NativeMmu;
  readFaultCount = 0;
  writeFaultCount = 0;

  constructor(native: NativeMmu) {
    this.native = native;
  }

  /** Makes every page of the region read-write, once, before any app thread runs. */
  start(): void {
    const pageCount = this.native.regionBytes() / pageBytes;
    assert(Number.isInteger(pageCount) && pageCount > 0, 'the region is whole pages');
    this.native.protect(0, pageCount, protReadWrite);
  }

  /**
   * No fault is expected (every page is read-write from the start); one that
   * comes anyway (a page protected by something else) is served the same way.
   */
  onFaults(records: Uint32Array): void {
    assert(records.length % 3 === 0, 'fault records are (slot, page, flags) triples');
    const slots = new Uint32Array(records.length / 3);
    for (let index = 0; index < records.length; index += 3) {
      slots[index / 3] = records[index]!;
      const page = records[index + 1]!;
      if ((records[index + 2]! & 1) === 1) this.writeFaultCount += 1; else this.readFaultCount += 1;
      this.native.protect(page, 1, protReadWrite);
    }
    this.native.resumeMany(slots);
  }
}
