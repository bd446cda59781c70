// `Atomics` inside a multi-node dsm program.
//
// On dsm memory every Atomics operation is a synchronization access: it is
// performed at the location's synchronization home, in one total order per
// location, with release before and acquire after. The shim validates its
// arguments exactly as the specification does (same error types), converts
// the value to the element type's raw bits, and asks the manager. On any
// other buffer the native Atomics run unchanged.

import type { ChannelClient } from '../channel/client.js';
import type { AtomicFunction } from '../channel/wire.js';

type IntegerArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

interface ElementKind {
  width: 1 | 2 | 4 | 8;
  /** One-element scratch of the array's own type, and an unsigned view of the same bytes. */
  typed: { [index: number]: number | bigint };
  raw: { [index: number]: number | bigint };
  bigint: boolean;
}

function kindOf(tag: string): ElementKind | null {
  const make = (width: 1 | 2 | 4 | 8, Typed: new (b: ArrayBuffer) => { [i: number]: number | bigint },
    Raw: new (b: ArrayBuffer) => { [i: number]: number | bigint }, bigint = false): ElementKind => {
    const bytes = new ArrayBuffer(8);
    return { width, typed: new Typed(bytes), raw: new Raw(bytes), bigint };
  };
  switch (tag) {
    case 'Int8Array': return make(1, Int8Array, Uint8Array);
    case 'Uint8Array': return make(1, Uint8Array, Uint8Array);
    case 'Int16Array': return make(2, Int16Array, Uint16Array);
    case 'Uint16Array': return make(2, Uint16Array, Uint16Array);
    case 'Int32Array': return make(4, Int32Array, Uint32Array);
    case 'Uint32Array': return make(4, Uint32Array, Uint32Array);
    case 'BigInt64Array': return make(8, BigInt64Array, BigUint64Array, true);
    case 'BigUint64Array': return make(8, BigUint64Array, BigUint64Array, true);
    default: return null;
  }
}

const kinds = new Map<string, ElementKind>();
function elementKind(tag: string): ElementKind | null {
  if (!kinds.has(tag)) {
    const kind = kindOf(tag);
    if (kind === null) return null;
    kinds.set(tag, kind);
  }
  return kinds.get(tag)!;
}

function typedArrayTag(value: unknown): string | undefined {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) return undefined;
  return (value as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
}

function toIndex(value: unknown, length: number): number {
  const number = value === undefined ? 0 : Number(value);
  const integer = Number.isNaN(number) ? 0 : Math.trunc(number);
  if (integer < 0 || integer > Number.MAX_SAFE_INTEGER) throw new RangeError('Invalid atomic access index');
  if (integer >= length) throw new RangeError('Invalid atomic access index');
  return integer;
}

/**
 * Converts a value to the element type and returns its raw unsigned bits as a
 * decimal string. Assigning to an element of the array's own type converts as
 * the specification does (ToNumber then modulo, or ToBigInt), including the
 * TypeError for a BigInt given to an Int32Array and a Number to a BigInt64Array.
 */
function rawOf(kind: ElementKind, value: unknown): string {
  kind.typed[0] = value as number & bigint;
  return String(kind.raw[0]);
}

function valueOf(kind: ElementKind, raw: string): number | bigint {
  kind.raw[0] = kind.bigint ? BigInt(raw) : Number(raw);
  return kind.typed[0]!;
}

export interface AtomicRoute {
  /** The global byte address of element `index`, or null when the array is not dsm memory. */
  addressOf(array: IntegerArray, index: number, width: number): number | null;
  channel: ChannelClient;
}

export function installClusterAtomics(route: AtomicRoute): void {
  const native = { ...Object.fromEntries(Object.getOwnPropertyNames(Atomics).map((name) => [name, (Atomics as unknown as Record<string, unknown>)[name]])) } as
    unknown as typeof Atomics;

  function prepare(array: unknown, index: unknown, waitable: boolean): { kind: ElementKind; address: number } | null {
    const tag = typedArrayTag(array);
    const kind = tag === undefined ? null : elementKind(tag);
    if (kind === null || (waitable && tag !== 'Int32Array' && tag !== 'BigInt64Array')) return null;
    const typed = array as IntegerArray;
    const position = toIndex(index, typed.length);
    const address = route.addressOf(typed, position, kind.width);
    return address === null ? null : { kind, address };
  }

  function call(fn: AtomicFunction, address: number, width: number, operands: string[], timeoutMs?: number): string {
    return route.channel.call({ op: 'atomic', fn, address, width, operands, timeoutMs: timeoutMs ?? -1 }) as string;
  }

  const shim = Atomics as unknown as Record<string, unknown>;
  const binary = (fn: AtomicFunction) => function (array: IntegerArray, index: number, value: number | bigint) {
    const target = prepare(array, index, false);
    if (target === null) return (native as unknown as Record<string, (...a: unknown[]) => unknown>)[fn]!(array, index, value);
    const operand = rawOf(target.kind, value);
    return valueOf(target.kind, call(fn, target.address, target.kind.width, [operand]));
  };
  for (const fn of ['add', 'sub', 'and', 'or', 'xor', 'exchange'] as const) shim[fn] = binary(fn);
  shim.store = function store(array: IntegerArray, index: number, value: number | bigint) {
    const target = prepare(array, index, false);
    if (target === null) return native.store(array as Int32Array, index, value as number);
    // Atomics.store returns the value converted by ToIntegerOrInfinity (or ToBigInt), not wrapped.
    const raw = rawOf(target.kind, value); // throws the specification's TypeError first
    let result: number | bigint;
    if (target.kind.bigint) result = BigInt(value as bigint);
    else {
      const number = Number(value);
      result = Number.isNaN(number) ? 0 : Math.trunc(number);
    }
    call('store', target.address, target.kind.width, [raw]);
    return Object.is(result, -0) ? 0 : result;
  };
  shim.load = function load(array: IntegerArray, index: number) {
    const target = prepare(array, index, false);
    if (target === null) return native.load(array as Int32Array, index);
    return valueOf(target.kind, call('load', target.address, target.kind.width, []));
  };
  shim.compareExchange = function compareExchange(array: IntegerArray, index: number, expected: number | bigint, replacement: number | bigint) {
    const target = prepare(array, index, false);
    if (target === null) return native.compareExchange(array as Int32Array, index, expected as number, replacement as number);
    const operands = [rawOf(target.kind, expected), rawOf(target.kind, replacement)];
    return valueOf(target.kind, call('compareExchange', target.address, target.kind.width, operands));
  };
  const checkWaitable = (array: unknown, name: string): void => {
    const tag = typedArrayTag(array);
    if (tag !== 'Int32Array' && tag !== 'BigInt64Array') {
      const error = new TypeError(`Atomics.${name} needs an Int32Array or BigInt64Array over a SharedArrayBuffer; got ${tag ?? typeof array}`);
      (error as TypeError & { code: string }).code = 'DSM_ERR_ATOMICS_TYPE';
      throw error;
    }
  };
  const timeoutMsOf = (timeout: unknown): number => {
    const number = timeout === undefined ? Infinity : Number(timeout);
    return Number.isNaN(number) ? Infinity : Math.max(0, number);
  };
  shim.wait = function wait(array: Int32Array | BigInt64Array, index: number, value: number | bigint, timeout?: number) {
    checkWaitable(array, 'wait');
    const target = prepare(array, index, true);
    if (target === null) return native.wait(array as Int32Array, index, value as number, timeout);
    const operand = rawOf(target.kind, value);
    const timeoutMs = timeoutMsOf(timeout);
    return call('wait', target.address, target.kind.width, [operand], Number.isFinite(timeoutMs) ? timeoutMs : -1);
  };
  // Atomics.waitAsync is in Node 20's V8 but not in this TypeScript lib (es2022).
  const nativeWaitAsync = (native as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t?: number) => unknown }).waitAsync;
  if (typeof nativeWaitAsync === 'function') {
    // The value is compared by a synchronous load (a value already changed answers
    // { async: false, value: 'not-equal' }, as the specification says); then the wait
    // is posted to the location's home and its answer arrives as a channel event.
    // Should the value change between the load and the home's check, the wait
    // resolves 'ok', as if notified: a spurious wake-up, which a program that
    // re-checks its condition (as every waitAsync loop must) cannot tell.
    const pending = new Map<number, (value: 'ok' | 'timed-out') => void>();
    let nextAsyncId = 1;
    route.channel.onEvent((event) => {
      if (event.kind !== 'atomic-done') return;
      const resolve = pending.get(event.asyncId);
      if (resolve === undefined) return;
      pending.delete(event.asyncId);
      resolve(event.value === 'timed-out' ? 'timed-out' : 'ok');
    });
    shim.waitAsync = function waitAsync(array: Int32Array | BigInt64Array, index: number, value: number | bigint, timeout?: number) {
      checkWaitable(array, 'waitAsync');
      const target = prepare(array, index, true);
      if (target === null) return nativeWaitAsync(array as Int32Array, index, value as number, timeout);
      const operand = rawOf(target.kind, value);
      const current = call('load', target.address, target.kind.width, []);
      if (current !== operand) return { async: false, value: 'not-equal' };
      const timeoutMs = timeoutMsOf(timeout);
      if (timeoutMs === 0) return { async: false, value: 'timed-out' };
      const asyncId = nextAsyncId++;
      const promise = new Promise<'ok' | 'timed-out'>((resolve) => pending.set(asyncId, resolve));
      route.channel.post({
        op: 'atomic', fn: 'wait', address: target.address, width: target.kind.width, operands: [operand],
        timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : -1, asyncId,
      });
      return { async: true, value: promise };
    };
  }
  shim.notify = function notify(array: Int32Array | BigInt64Array, index: number, count?: number) {
    const target = prepare(array, index, true);
    if (target === null) return native.notify(array as Int32Array, index, count);
    const number = count === undefined ? Infinity : Math.max(0, Math.trunc(Number(count)) || 0);
    return Number(call('notify', target.address, target.kind.width, [Number.isFinite(number) ? String(number) : '-1']));
  };
}
