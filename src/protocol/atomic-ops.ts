// The arithmetic of Atomics read-modify-write operations on raw unsigned bits.
// Signedness belongs to the app side: two's complement wraps the same way.

import { assert } from '../errors.js';
import type { AtomicOp } from './messages.js';

/** Returns the result to hand back and the new value to store (null: no store). */
export function atomicApply(op: AtomicOp, old: bigint, operands: string[], width: number): { result: bigint; next: bigint | null } {
  const bits = width * 8;
  const operand = (k: number): bigint => {
    const text = operands[k];
    assert(text !== undefined, `atomic ${op} has operand ${k}`);
    return BigInt.asUintN(bits, BigInt(text));
  };
  switch (op) {
    case 'load': return { result: old, next: null };
    case 'store': { const value = operand(0); return { result: value, next: value }; }
    case 'add': return { result: old, next: BigInt.asUintN(bits, old + operand(0)) };
    case 'sub': return { result: old, next: BigInt.asUintN(bits, old - operand(0)) };
    case 'and': return { result: old, next: old & operand(0) };
    case 'or': return { result: old, next: old | operand(0) };
    case 'xor': return { result: old, next: old ^ operand(0) };
    case 'exchange': return { result: old, next: operand(0) };
    case 'compareExchange': return { result: old, next: old === operand(0) ? operand(1) : null };
    default:
      assert(false, `atomicApply does not handle ${op}`);
  }
}
