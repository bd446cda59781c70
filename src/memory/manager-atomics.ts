// A line's shipped Atomics ops at its directory (issue 12, session 9,
// src/protocol/lines.ts): the manager runs the op with V8's own Atomics on a
// SharedArrayBuffer over the manager view of the line's page. The manager view
// and the app view map the same memfd pages, so the op is one locked
// instruction on the very bytes the node's app threads run their native ops
// on: atomic against them, whatever the app view's protection.

import { managerAtomicPageCountMax, pageBytes } from '../constants.js';
import { assert } from '../errors.js';
import type { ShippedOp } from '../protocol/messages.js';

interface PageViews { u8: Uint8Array; u16: Uint16Array; u32: Uint32Array; u64: BigUint64Array }

// The manager thread never installs the app side's Atomics shim; these are V8's own all the same.
const nativeAtomics = Atomics;

export class ManagerAtomics {
  /** Views of the pages shipped ops ran on (a few control pages in practice), dropped wholesale past the limit. */
  private readonly pages = new Map<number, PageViews>();

  constructor(private readonly bufferAt: (offset: number, byteLength: number) => SharedArrayBuffer) {}

  private views(page: number): PageViews {
    let views = this.pages.get(page);
    if (views === undefined) {
      if (this.pages.size >= managerAtomicPageCountMax) this.pages.clear();
      const buffer = this.bufferAt(page * pageBytes, pageBytes);
      views = { u8: new Uint8Array(buffer), u16: new Uint16Array(buffer), u32: new Uint32Array(buffer), u64: new BigUint64Array(buffer) };
      this.pages.set(page, views);
    }
    return views;
  }

  /** Runs `op` on the raw unsigned bits at `address`: the result as atomicApply's (old value; a store's value) and whether it stored. */
  run(address: number, width: 1 | 2 | 4 | 8, op: ShippedOp, operands: string[]): { result: bigint; wrote: boolean } {
    assert(address % width === 0, 'a shipped atomic is aligned');
    const page = Math.floor(address / pageBytes);
    const views = this.views(page);
    const index = (address - page * pageBytes) / width;
    if (width === 8) {
      const array = views.u64;
      const operand = (k: number): bigint => BigInt.asUintN(64, BigInt(operands[k] ?? '0'));
      switch (op) {
        case 'load': return { result: nativeAtomics.load(array, index), wrote: false };
        case 'store': { const value = operand(0); nativeAtomics.store(array, index, value); return { result: value, wrote: true }; }
        case 'compareExchange': {
          const expected = operand(0);
          const old = nativeAtomics.compareExchange(array, index, expected, operand(1));
          return { result: old, wrote: old === expected };
        }
        default: return { result: nativeAtomics[op](array, index, operand(0)), wrote: true };
      }
    }
    const array = width === 4 ? views.u32 : width === 2 ? views.u16 : views.u8;
    // Raw bits below 2^32: exact as Numbers, and the unsigned array wraps as the element type does.
    const operand = (k: number): number => Number(operands[k] ?? '0');
    switch (op) {
      case 'load': return { result: BigInt(nativeAtomics.load(array, index)), wrote: false };
      case 'store': {
        const value = operand(0);
        nativeAtomics.store(array, index, value);
        return { result: BigInt(value), wrote: true };
      }
      case 'compareExchange': {
        const expected = operand(0);
        const old = nativeAtomics.compareExchange(array, index, expected, operand(1));
        return { result: BigInt(old), wrote: old === expected };
      }
      default: return { result: BigInt(nativeAtomics[op](array, index, operand(0))), wrote: true };
    }
  }
}
