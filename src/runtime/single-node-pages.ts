// The page service of a one-node run: every page's home is this node, so a
// fault never waits on the network, yet the page state machine runs as it
// does in a cluster: invalid -> read-only -> read-write with a twin, and
// dirty pages are flushed (protect, diff, drop twin) when their count
// reaches a bound, so twin memory stays bounded.

import { assert } from '../errors.js';
import { type NativeMmu, protNone, protRead, protReadWrite } from '../memory/native.js';

/** Dirty pages (each holding a twin) a node keeps before it closes its interval. */
export const singleNodeDirtyPageCountMax = 4096;

export class SingleNodePages {
  private readonly native: NativeMmu;
  private readonly dirty = new Set<number>();
  readFaultCount = 0;
  writeFaultCount = 0;
  flushCount = 0;

  constructor(native: NativeMmu) {
    this.native = native;
  }

  onFaults(records: Uint32Array): void {
    assert(records.length % 3 === 0, 'fault records are (slot, page, flags) triples');
    const slots = new Uint32Array(records.length / 3);
    for (let index = 0; index < records.length; index += 3) {
      const slot = records[index]!;
      const page = records[index + 1]!;
      const isWrite = (records[index + 2]! & 1) === 1;
      slots[index / 3] = slot;
      this.serve(page, isWrite);
    }
    this.native.resumeMany(slots);
  }

  private serve(page: number, isWrite: boolean): void {
    const prot = this.native.pageState(page) & 3;
    if (!isWrite) {
      this.readFaultCount += 1;
      if (prot === protNone) {
        this.native.protect(page, 1, protRead);
        this.native.setFastWrite(Uint32Array.of(page), true);
      }
      return;
    }
    this.writeFaultCount += 1;
    if (prot !== protReadWrite) {
      this.native.makeTwin(page);
      this.native.protect(page, 1, protReadWrite);
      this.dirty.add(page);
    }
    this.noteDirty(this.native.drainDirty());
  }

  private noteDirty(pages: Uint32Array): void {
    for (const page of pages) this.dirty.add(page);
    if (this.dirty.size >= singleNodeDirtyPageCountMax) this.flush();
  }

  /** Closes the interval: dirty pages go back to read-only and their twins are dropped. */
  flush(): void {
    for (const page of this.native.drainDirty()) this.dirty.add(page);
    if (this.dirty.size === 0) return;
    this.native.flush(Uint32Array.from(this.dirty));
    this.dirty.clear();
    this.flushCount += 1;
  }
}
