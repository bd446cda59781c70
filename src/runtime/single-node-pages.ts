// The page service of a one-node run. With no other node, no copy of a page
// can go stale and no write ever needs a diff, so the page state machine of a
// cluster (invalid -> read-only -> read-write with a twin, flushed at each
// release) has nothing to do. The cheapest correct design is no design: the
// region is private anonymous memory, read-write from the start (native init
// with `anonymous`, the manager view being the app view), so a program
// touches its memory exactly as under plain node (the kernel's own first-touch
// fault on a fresh anonymous page, nothing else), whatever its working set.
//
// Consequences (docs/PROTOCOL.md, "Twins only where a diff is needed"):
// `--stats` reports no read or write faults on one node, because none happen;
// freed memory is given back with madvise(MADV_DONTNEED) (reads zero
// afterwards) and reused memory is zeroed in place.

import { assert } from '../errors.js';
import { type NativeMmu, protReadWrite } from '../memory/native.js';
import { faultFlagWrite, pageBytes } from '../constants.js';

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
      if ((records[index + 2]! & faultFlagWrite) !== 0) this.writeFaultCount += 1; else this.readFaultCount += 1;
      this.native.protect(page, 1, protReadWrite);
    }
    this.native.resumeMany(slots);
  }
}
