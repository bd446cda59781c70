// `Atomics` inside a dsm program (on one node: V8's own, see installHeldLineAtomics).
//
// On dsm memory every Atomics operation is a synchronization access: it is
// performed at the location's synchronization home, in one total order per
// location, with release before and acquire after. The shim validates its
// arguments exactly as the specification does (same error types), converts
// the value to the element type's raw bits, and asks the manager. On any
// other buffer the native Atomics run unchanged.

import type { ChannelClient } from '../channel/client.js';
import type { AtomicFunction, ChannelRequest } from '../channel/wire.js';
import { atomicLineBytes, atomicLineShipTimesCountMax, waitAsyncNotifyHoldMs } from '../constants.js';
import { isDsmError } from '../errors.js';
import { waitKindAtomics, waitKindBarrier, waitKindMutex, waitNoteAddressF64, waitNoteKindF64, waitNoteStartF64 } from '../channel/doorbell.js';
import { lineQuietBit, lineQuietCheckOne, lineSlotHash, lineTableLayout, lineUseWordMax } from '../channel/atomic-lines.js';

/**
 * Held when this module loads, before setup replaces the global constructor:
 * a thread's own state (the fast path's words) is private to it, never dsm
 * memory (which would cost an allocation round trip at every thread's start,
 * and make the words' page a shared page that every release diffs).
 */
const NativeSharedArrayBuffer = globalThis.SharedArrayBuffer;

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

/** ToIndex then ValidateAtomicAccess's bound check: one ToNumber (a TypeError for a BigInt or Symbol). */
function toIndex(value: unknown, length: number): number {
  const number = value === undefined ? 0 : +(value as number);
  const integer = Number.isNaN(number) ? 0 : Math.trunc(number);
  if (integer < 0 || integer > Number.MAX_SAFE_INTEGER) throw new RangeError('Invalid atomic access index');
  if (integer >= length) throw new RangeError('Invalid atomic access index');
  return integer;
}

/**
 * ToPrimitive with hint number, run once; every later conversion of the
 * result (ToBigInt, ToIntegerOrInfinity, the element type's) has no side
 * effects, so a value's valueOf runs exactly once as under plain node.
 */
function toPrimitiveNumber(value: unknown): unknown {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
  const exotic = (value as { [Symbol.toPrimitive]?: unknown })[Symbol.toPrimitive];
  if (exotic !== undefined && exotic !== null) {
    if (typeof exotic !== 'function') throw new TypeError('Symbol.toPrimitive is not a function');
    const primitive = (exotic as (hint: string) => unknown).call(value, 'number');
    if (primitive !== null && (typeof primitive === 'object' || typeof primitive === 'function')) throw new TypeError('Cannot convert object to primitive value');
    return primitive;
  }
  for (const name of ['valueOf', 'toString'] as const) {
    const method = (value as Record<string, unknown>)[name];
    if (typeof method !== 'function') continue;
    const primitive = (method as () => unknown).call(value);
    if (primitive === null || (typeof primitive !== 'object' && typeof primitive !== 'function')) return primitive;
  }
  throw new TypeError('Cannot convert object to primitive value');
}

/**
 * Converts a primitive to the element type and returns its raw unsigned bits
 * as a decimal string. Assigning to an element of the array's own type
 * converts as the specification does (ToNumber then modulo, or ToBigInt),
 * including the TypeError for a BigInt given to an Int32Array and a Number
 * to a BigInt64Array.
 */
function rawOf(kind: ElementKind, primitive: unknown): string {
  kind.typed[0] = primitive as number & bigint;
  return String(kind.raw[0]);
}

function valueOf(kind: ElementKind, raw: string): number | bigint {
  kind.raw[0] = kind.bigint ? BigInt(raw) : Number(raw);
  return kind.typed[0]!;
}

/** ToIntegerOrInfinity (or ToBigInt) of a primitive, unwrapped: what Atomics.store returns. */
function storedValueOf(kind: ElementKind, primitive: unknown): number | bigint {
  if (kind.bigint) return typeof primitive === 'bigint' ? primitive : BigInt(primitive as string | boolean);
  const number = +(primitive as number);
  const integer = Number.isNaN(number) ? 0 : Math.trunc(number);
  return integer === 0 ? 0 : integer;
}

export interface AtomicRoute {
  /** The global byte offset of a dsm SharedArrayBuffer, or null for any other buffer. */
  offsetOf(buffer: ArrayBufferLike): number | null;
  channel: ChannelClient;
  /**
   * The node's atomic line table (src/channel/atomic-lines.ts): Atomics run
   * by line ownership, natively on lines the node holds. Absent: every op
   * goes to the location's home (sc, race mode).
   */
  lines?: SharedArrayBuffer;
  /** A cluster of one: the node holds every line, forever (see installHeldLineAtomics). */
  allLinesHeld?: boolean;
}

// %TypedArray%.prototype's own getters: a program may shadow `length` or
// `buffer` on an array, and the specification reads the internal slots.
const typedArrayPrototype = Object.getPrototypeOf(Int8Array.prototype) as object;
const intrinsicGetter = (key: string | symbol) => Object.getOwnPropertyDescriptor(typedArrayPrototype, key)!.get! as (this: unknown) => unknown;
const tagGetter = intrinsicGetter(Symbol.toStringTag) as (this: unknown) => string | undefined;
const bufferGetter = intrinsicGetter('buffer') as (this: unknown) => ArrayBufferLike;
const byteOffsetGetter = intrinsicGetter('byteOffset') as (this: unknown) => number;
const lengthGetter = intrinsicGetter('length') as (this: unknown) => number;

/** A non-constructor function with the given name and length, as the built-in it replaces. */
function builtin<F extends (...args: never[]) => unknown>(name: string, length: number, body: F): F {
  // A method definition is not a constructor and has no prototype property.
  const method = { [name](...args: Parameters<F>) { return body(...args); } }[name]!;
  Object.defineProperty(method, 'length', { value: length });
  return method as unknown as F;
}

type WaitAsync = (array: unknown, index: unknown, value: unknown, timeout: unknown) => unknown;

/**
 * An Atomics wait's timeout (ToNumber) in ms: NaN and undefined wait forever, negative values not at all, and so
 * does a timeout under a nanosecond: V8 takes whole nanoseconds (ms × 1000 × 1000, truncated), so Atomics.waitAsync
 * answers such a wait { async: false, value: 'timed-out' } at once, as a timeout of 0.
 */
function timeoutMsOf(timeout: unknown): number {
  const number = timeout === undefined ? Infinity : +(timeout as number);
  if (Number.isNaN(number)) return Infinity;
  return number * 1000 * 1000 < 1 ? 0 : number;
}

/**
 * V8's Atomics.waitAsync, kept from answering 'timed-out' before its timeout
 * has passed as measured from the call. V8 times it by the event loop's cached
 * clock, which lags when the thread was held (as by a dsm page fault) after
 * the loop last read it, so the native wait can end early by that much; the
 * rest is waited out here before the promise settles. The timeout is still
 * converted once, by the native function, in the specification's order.
 */
function waitAsyncFromCall(native: WaitAsync): WaitAsync {
  return (array, index, value, timeout) => {
    const startMs = performance.now();
    let timeoutMs = Infinity;
    const probe = timeout === undefined ? undefined : {
      [Symbol.toPrimitive]: () => { timeoutMs = +(timeout as number); return timeoutMs; },
    };
    const result = native(array, index, value, probe) as { async: boolean; value: unknown };
    if (!result.async || !Number.isFinite(timeoutMs)) return result;
    const deadlineMs = startMs + Math.max(0, timeoutMs);
    const waitOut = (outcome: unknown): unknown => {
      const leftMs = deadlineMs - performance.now();
      if (outcome !== 'timed-out' || leftMs <= 0) return outcome;
      // A pending waitAsync does not keep a thread alive, so neither does this timer.
      return new Promise((resolve) => setTimeout(resolve, Math.ceil(leftMs), outcome).unref()).then(waitOut);
    };
    return { async: true, value: (result.value as Promise<unknown>).then(waitOut) };
  };
}

/**
 * A cluster of one holds every atomic line, forever: V8's own Atomics are then
 * exactly what line ownership does for a held line (the operation, natively,
 * with no message), and the ownership check is folded here, once, instead of
 * run per operation. Only waitAsync is wrapped (waitAsyncFromCall).
 */
function installHeldLineAtomics(route: AtomicRoute): void {
  installNotedWait(route);
  const native = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
  if (typeof native !== 'function') return;
  (Atomics as unknown as Record<string, unknown>).waitAsync = builtin('waitAsync', 4, waitAsyncFromCall(native.bind(Atomics)));
}

/**
 * A cluster of one: Atomics.wait on dsm memory is V8's own, so the manager knows of no parked thread. Around the
 * native wait (which blocks anyway) the thread notes in its doorbell block what it waits on (its start, byte
 * address; DoorbellBlock.waitNote), cleared after, for the report of an interrupted run. The index is converted
 * once, here, as the native function would (ValidateAtomicAccess after the array's check), and the native
 * function gets the integer. dsm's Mutex and Barrier pass a fifth argument naming them (waitKind*). Every other buffer, and every invalid array, goes to the native function untouched.
 */
function installNotedWait(route: AtomicRoute): void {
  const nativeWait = Atomics.wait;
  const nativeLoad = Atomics.load;
  const note = route.channel.blockFloats;
  // The last buffer's offset: a thread waits on few buffers, and the lookup (a WeakMap's) costs more than the rest.
  // Held weakly: a dropped buffer's memory goes back to the region when it is collected, waited on last or not.
  let lastBuffer: WeakRef<ArrayBufferLike> | null = null;
  let lastOffset: number | null = null;
  (Atomics as unknown as Record<string, unknown>).wait = builtin('wait', 4, (array: unknown, index: unknown, value: unknown, timeout: unknown, kind?: unknown) => {
    const tag = tagGetter.call(array);
    if (tag !== 'Int32Array' && tag !== 'BigInt64Array') return nativeWait(array as Int32Array, index as number, value as number, timeout as number);
    const buffer = bufferGetter.call(array);
    if (lastBuffer === null || lastBuffer.deref() !== buffer) {
      lastOffset = route.offsetOf(buffer);
      lastBuffer = new WeakRef(buffer);
    }
    const offset = lastOffset;
    if (offset === null) return nativeWait(array as Int32Array, index as number, value as number, timeout as number);
    const position = toIndex(index, lengthGetter.call(array));
    // A wait that will not block (the word differs; value and timeout convert without side effects): nothing to note.
    if (typeof value === 'number' && (timeout === undefined || typeof timeout === 'number') && tag === 'Int32Array'
      && nativeLoad(array as Int32Array, position) !== (value | 0)) return nativeWait(array as Int32Array, position, value, timeout as number);
    note[waitNoteAddressF64] = offset + byteOffsetGetter.call(array) + position * (tag === 'Int32Array' ? 4 : 8);
    // dsm's Mutex and Barrier name themselves by a fifth argument (V8's own wait ignores it).
    note[waitNoteKindF64] = kind === waitKindMutex || kind === waitKindBarrier ? kind : waitKindAtomics;
    note[waitNoteStartF64] = Date.now();
    try {
      return nativeWait(array as Int32Array, position, value as number, timeout as number);
    } finally {
      note[waitNoteStartF64] = 0;
    }
  });
}

/**
 * The app side of Atomics.waitAsync on dsm memory: each wait gets an id and a
 * promise, which the channel's 'atomic-done' event for that id settles.
 */
function asyncWaitsOf(channel: ChannelClient): { next(): { asyncId: number; promise: Promise<'ok' | 'timed-out'> }; afterNotify(woken: number): void } {
  const pending = new Map<number, (value: 'ok' | 'timed-out') => void>();
  let nextAsyncId = 1;
  let holding = false;
  /** Settlements this thread's notifies may still cause here (at most what they woke, at most what is pending). */
  let owed = 0;
  let lastNotifyMs = 0;
  channel.onEvent((event) => {
    if (event.kind !== 'atomic-done') return;
    const resolve = pending.get(event.asyncId);
    if (resolve === undefined) return;
    pending.delete(event.asyncId);
    if (owed > 0) owed--;
    resolve(event.value === 'timed-out' ? 'timed-out' : 'ok');
  });
  const check = (): void => {
    if (owed > 0 && pending.size > 0 && performance.now() - lastNotifyMs < waitAsyncNotifyHoldMs) { setImmediate(check); return; }
    owed = 0;
    holding = false;
    channel.unhold();
  };
  return {
    next() {
      const asyncId = nextAsyncId++;
      return { asyncId, promise: new Promise<'ok' | 'timed-out'>((resolve) => pending.set(asyncId, resolve)) };
    },
    /**
     * After a notify by this thread that woke `woken` waiters while it has
     * waitAsync promises pending: the channel holds the thread until as many
     * 'atomic-done' events as it may have caused here came (or for
     * waitAsyncNotifyHoldMs since the last such notify), so that they are
     * delivered. Under Node the notify queues the resolution at once; without
     * this a thread whose loop then ran dry ended with the promise unsettled
     * (one turn was enough under Node 20, not under Node 24: users12's
     * waitasync-pending-limit.mjs, session 37).
     */
    afterNotify(woken: number) {
      if (pending.size === 0 || woken <= 0) return;
      owed = Math.min(pending.size, owed + woken);
      lastNotifyMs = performance.now();
      if (holding) return;
      holding = true;
      channel.hold();
      setImmediate(check);
    },
  };
}

/**
 * Atomics on dsm memory: a cluster of one holds every line (installHeldLineAtomics);
 * several nodes run by line ownership (route.lines) or at each location's home.
 */
export function installClusterAtomics(route: AtomicRoute): void {
  if (route.allLinesHeld === true) { installHeldLineAtomics(route); return; }
  if (route.lines !== undefined) { installLineAtomics(route, route.lines); return; }
  const native = Object.fromEntries(Object.getOwnPropertyNames(Atomics).map((name) => [name, (Atomics as unknown as Record<string, unknown>)[name]])) as
    Record<string, (...args: unknown[]) => unknown>;

  interface Target { kind: ElementKind; array: IntegerArray; offset: number }

  /**
   * ValidateIntegerTypedArray: the dsm target of `array`, or null when the
   * native function should run with the untouched arguments (any array that
   * is not over dsm memory, and every invalid one: the native function throws
   * the specification's TypeError before it converts anything).
   */
  function targetOf(array: unknown, waitable: boolean): Target | null {
    const tag = tagGetter.call(array);
    const kind = tag === undefined ? null : elementKind(tag);
    if (kind === null || (waitable && tag !== 'Int32Array' && tag !== 'BigInt64Array')) return null;
    const offset = route.offsetOf(bufferGetter.call(array));
    return offset === null ? null : { kind, array: array as IntegerArray, offset };
  }

  /** ValidateAtomicAccess: the global address of element `index` (ToIndex runs once). */
  function addressOf(target: Target, index: unknown): number {
    const position = toIndex(index, lengthGetter.call(target.array));
    return target.offset + byteOffsetGetter.call(target.array) + position * target.kind.width;
  }

  function call(fn: AtomicFunction, address: number, width: number, operands: string[], timeoutMs?: number): string {
    return route.channel.call({ op: 'atomic', fn, address, width, operands, timeoutMs: timeoutMs ?? -1 }) as string;
  }

  const shim = Atomics as unknown as Record<string, unknown>;
  for (const fn of ['add', 'sub', 'and', 'or', 'xor', 'exchange'] as const) {
    shim[fn] = builtin(fn, 3, (array: unknown, index: unknown, value: unknown) => {
      const target = targetOf(array, false);
      if (target === null) return native[fn]!(array, index, value);
      const address = addressOf(target, index);
      const operand = rawOf(target.kind, toPrimitiveNumber(value));
      return valueOf(target.kind, call(fn, address, target.kind.width, [operand]));
    });
  }
  shim.store = builtin('store', 3, (array: unknown, index: unknown, value: unknown) => {
    const target = targetOf(array, false);
    if (target === null) return native.store!(array, index, value);
    const address = addressOf(target, index);
    const primitive = toPrimitiveNumber(value);
    // Atomics.store returns the value converted by ToIntegerOrInfinity (or ToBigInt), not wrapped.
    const raw = rawOf(target.kind, primitive); // throws the specification's TypeError first
    const stored = storedValueOf(target.kind, primitive);
    call('store', address, target.kind.width, [raw]);
    return stored;
  });
  shim.load = builtin('load', 2, (array: unknown, index: unknown) => {
    const target = targetOf(array, false);
    if (target === null) return native.load!(array, index);
    const address = addressOf(target, index);
    return valueOf(target.kind, call('load', address, target.kind.width, []));
  });
  shim.compareExchange = builtin('compareExchange', 4, (array: unknown, index: unknown, expected: unknown, replacement: unknown) => {
    const target = targetOf(array, false);
    if (target === null) return native.compareExchange!(array, index, expected, replacement);
    const address = addressOf(target, index);
    const expectedRaw = rawOf(target.kind, toPrimitiveNumber(expected));
    const replacementRaw = rawOf(target.kind, toPrimitiveNumber(replacement));
    return valueOf(target.kind, call('compareExchange', address, target.kind.width, [expectedRaw, replacementRaw]));
  });
  shim.wait = builtin('wait', 4, (array: unknown, index: unknown, value: unknown, timeout: unknown) => {
    const target = targetOf(array, true);
    if (target === null) return native.wait!(array, index, value, timeout);
    const address = addressOf(target, index);
    const operand = rawOf(target.kind, toPrimitiveNumber(value));
    const timeoutMs = timeoutMsOf(timeout);
    return call('wait', address, target.kind.width, [operand], Number.isFinite(timeoutMs) ? timeoutMs : -1);
  });
  // Atomics.waitAsync is in Node 20's V8 but not in this TypeScript lib (es2022).
  const asyncWaits = typeof native.waitAsync === 'function' ? asyncWaitsOf(route.channel) : null;
  if (typeof native.waitAsync === 'function' && asyncWaits !== null) {
    const nativeWaitAsync = waitAsyncFromCall(native.waitAsync.bind(Atomics));
    // The value is compared by a synchronous load (a value already changed answers
    // { async: false, value: 'not-equal' }, as the specification says); then the wait
    // is posted to the location's home and its answer arrives as a channel event.
    // Should the value change between the load and the home's check, the wait
    // resolves 'ok', as if notified: a spurious wake-up, which a program that
    // re-checks its condition (as every waitAsync loop must) cannot tell.
    shim.waitAsync = builtin('waitAsync', 4, (array: unknown, index: unknown, value: unknown, timeout: unknown) => {
      const target = targetOf(array, true);
      if (target === null) return nativeWaitAsync(array, index, value, timeout);
      const address = addressOf(target, index);
      const operand = rawOf(target.kind, toPrimitiveNumber(value));
      const timeoutMs = timeoutMsOf(timeout);
      const current = call('load', address, target.kind.width, []);
      if (current !== operand) return { async: false, value: 'not-equal' };
      if (timeoutMs === 0) return { async: false, value: 'timed-out' };
      const { asyncId, promise } = asyncWaits.next();
      route.channel.post({
        op: 'atomic', fn: 'wait', address, width: target.kind.width, operands: [operand],
        timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : -1, asyncId,
      });
      return { async: true, value: promise };
    });
  }
  shim.notify = builtin('notify', 3, (array: unknown, index: unknown, count: unknown) => {
    const target = targetOf(array, true);
    if (target === null) return native.notify!(array, index, count);
    const address = addressOf(target, index);
    // ToIntegerOrInfinity, then at least 0; +Infinity (and undefined) wake everyone, sent as -1.
    const number = count === undefined ? Infinity : +(count as number);
    const wanted = Number.isNaN(number) ? 0 : Math.max(0, Math.trunc(number));
    const woken = Number(call('notify', address, target.kind.width, [Number.isFinite(wanted) ? String(wanted) : '-1']));
    if (woken > 0) asyncWaits?.afterNotify(woken);
    return woken;
  });
}

/**
 * Atomics by line ownership (issue 12.2). An op on dsm memory runs natively,
 * on this thread's own mapping of the region, while the node holds the
 * op's line: the thread pins the line (its pin word in the node's table),
 * checks that the table says held, runs the native op and unpins (see
 * src/channel/atomic-lines.ts for why the manager cannot revoke in between).
 * A line the node does not hold is asked of the manager, and the op retried.
 * A page the op touches that is not valid here faults like a plain access.
 * wait checks the value natively with the line pinned and then parks at the
 * line's directory, or, on a line the node does not hold, hands the wait to
 * the manager, which may ship it to the directory to be checked there
 * (session 15); notify wakes waiters there (on every node).
 */
function installLineAtomics(route: AtomicRoute, table: SharedArrayBuffer): void {
  const native = Object.fromEntries(Object.getOwnPropertyNames(Atomics).map((name) => [name, (Atomics as unknown as Record<string, unknown>)[name]])) as
    Record<string, (...args: unknown[]) => unknown>;
  // The table's own accesses use the native functions: the global ones are this shim.
  const atomicLoad = native.load! as (array: Int32Array, index: number) => number;
  const atomicStore = native.store! as (array: Int32Array, index: number, value: number) => number;
  const words = new Int32Array(table);
  const slotCount = words[0]!;
  const mask = slotCount - 1;
  const layout = lineTableLayout(slotCount);
  // The manager runs a process-wide barrier before it reads pins: a plain store pins.
  const asymmetric = words[1] === 1;
  const keysAt = layout.keys;
  const usedAt = layout.used;
  const heldAt = layout.held;
  // Atomics.load checks this word instead (line + 1 while held or while the node has a read copy: session 34).
  const readableAt = layout.readable;
  const watchAt = layout.watch;
  // Session 36: a notify on a held line whose word's bit is set here wakes nobody (src/channel/atomic-lines.ts).
  const quietAt = layout.quiet;
  // This thread's count of those notifies (its pin's word: layout.notified less layout.pins from its pin word's index).
  const notifiedAt = layout.notified - layout.pins;
  const atomicCompareExchange = native.compareExchange! as (array: Int32Array, index: number, expected: number, replacement: number) => number;
  const atomicSub = native.sub! as (array: Int32Array, index: number, value: number) => number;
  // A plain load may follow the pin: x86 keeps a store and a later load to
  // another word in order once the store is locked (a sequentially consistent
  // store is an xchg), and with the asymmetric barrier the manager's membarrier
  // orders a plain pin and load on any architecture.
  const plainCheck = asymmetric || process.arch === 'x64' || process.arch === 'ia32';
  // The fast path's mutable state: words of one Int32Array and the fields of
  // one object, which optimized code reads with plain loads (a closure's `let`
  // costs a load and a hole check at each use). The words are over a
  // SharedArrayBuffer (private to this thread all the same): its data never
  // moves and its length never changes, so optimized code addresses them as
  // constants, with no load of the array's base, offset and length at each
  // use, which an on-heap Int32Array costs (measured: about a nanosecond an op).
  const state = new Int32Array(new NativeSharedArrayBuffer(10 * 4));
  const sPin = 0; const sCachedLine = 1; const sCachedSlot = 2; const sLine = 3; const sRemainder = 4; const sShift = 5; const sLength = 6; const sBigint = 7;
  // The index of the last array whose line is the cached line (state[sCachedLine], in
  // state[sCachedSlot]), or -1: an op on the same element again (a counter) skips the
  // line arithmetic and the bounds check (set only for Number arrays, after a pin that held).
  const sIndex = 8;
  // The line of this thread's last Atomics op when the line layer shipped that op
  // and the thread has run no Atomics op since, else -1 (its uses: the comment above targetOf).
  // A word here rather than a closure `let`: every native op clears it, and a `let`
  // declared below the functions that store it costs a load and a hole check at each store.
  const sAfterShip = 9;
  // The module binding read once: optimized code loads an imported binding from its cell with a hole check.
  const useWordMax = lineUseWordMax;
  state[sPin] = -1;
  state[sCachedLine] = -1;
  state[sCachedSlot] = -1;
  state[sIndex] = -1;
  state[sAfterShip] = -1;
  const last: { array: unknown } = { array: null };
  const channel = route.channel;
  const lineShift = Math.log2(atomicLineBytes);

  /** The slot of a line, or -1 when the table has none for it. */
  const probe = (line: number): number => {
    const key = line + 1;
    let slot = lineSlotHash(line, mask);
    for (let k = 0; k < slotCount; k++, slot = (slot + 1) & mask) {
      const current = words[keysAt + slot]!;
      if (current === key) return slot;
      if (current === 0) return -1;
    }
    return -1;
  };

  /**
   * Pins `line` and answers its slot if the node holds it (the caller marks
   * its use and unpins), else unpinned, -1. One load of the slot's held word
   * after the pin store.
   */
  const pinSlot = (line: number, wordAt: number): number => {
    let slot = state[sCachedSlot]!;
    if (state[sCachedLine]! !== line) {
      state[sIndex] = -1;
      slot = probe(line);
      if (slot < 0) return -1;
      state[sCachedLine] = line;
      state[sCachedSlot] = slot;
    }
    return pinCached(slot, line + 1, wordAt);
  };

  /**
   * Pins the cached `slot` under `key` (its line + 1): the slot if the node holds it (`wordAt` heldAt), or holds
   * it or has a read copy (readableAt: a load), else unpinned and -1.
   */
  const pinCached = (slot: number, key: number, wordAt: number): number => {
    if (asymmetric) words[state[sPin]!] = key; else atomicStore(words, state[sPin]!, key);
    if ((plainCheck ? words[wordAt + slot] : atomicLoad(words, wordAt + slot)) === key) return slot;
    // Not held (or the slot re-keyed since): probe again next time.
    atomicStore(words, state[sPin]!, 0);
    state[sCachedLine] = -1;
    state[sIndex] = -1;
    return -1;
  };

  /** This thread's pin word, asked for once, at its first op on a line. */
  function takePin(): void {
    if (state[sPin]! < 0) state[sPin] = layout.pins + (channel.call({ op: 'line', fn: 'pin' }) as number);
  }

  /** Pins `line` and answers true if the node holds it (the caller unpins), marking it read; else unpinned, false. */
  function pinHeld(line: number, wordAt: number = heldAt): boolean {
    const slot = pinSlot(line, wordAt);
    if (slot < 0) return false;
    markRead(slot);
    return true;
  }

  /** Pins `line`, asking the manager for it until the node holds it. */
  function pinLine(line: number): void {
    takePin();
    while (!pinHeld(line)) {
      const askedAt = performance.now();
      channel.call({ op: 'line', fn: 'acquire', line });
      lineWaitedMs += performance.now() - askedAt;
    }
  }

  /**
   * Milliseconds this thread has spent waiting for lines (shipped ops' round
   * trips, line acquires): not work. A thread that cycles over many lines
   * (a histogram's buckets) waits on the others between two ops on one line;
   * counted as work, that wait made every line look cold, so each op was
   * shipped, a round trip each, for ever.
   */
  let lineWaitedMs = 0;
  /**
   * When this thread's last shipped op on each line returned (performance.now())
   * and lineWaitedMs then: a few lines in practice, dropped past the limit.
   */
  const shippedAt = new Map<number, { atMs: number; waitedMs: number }>();
  const shippedAtCountMax = atomicLineShipTimesCountMax;
  /**
   * Pins `line` if the node holds it and answers null (the caller runs the op
   * natively, then unpins); else hands the op to the manager, which answers
   * null once the node holds the line (pin again) or the op's raw result when
   * the line layer shipped it to the line's directory (src/protocol/lines.ts):
   * then nothing is pinned and the op is done.
   */
  function pinOrShip(line: number, fn: AtomicFunction, address: number, width: number, operands: string[]): string | null {
    takePin();
    const wordAt = fn === 'load' ? readableAt : heldAt;
    while (!pinHeld(line, wordAt)) {
      // How long this thread ran since its last shipped op on the line returned: the layer's measure of use.
      const last = shippedAt.get(line);
      const request: ChannelRequest = { op: 'atomic', fn, address, width, operands, timeoutMs: -1, line: true };
      const askedAt = performance.now();
      // The time it ran, less its waits for lines (this one's and others') since.
      if (last !== undefined) request.workMs = Math.max(0, askedAt - last.atMs - (lineWaitedMs - last.waitedMs));
      const answer = channel.call(request);
      const answeredAt = performance.now();
      lineWaitedMs += answeredAt - askedAt;
      if (answer !== null && answer !== undefined) {
        if (shippedAt.size >= shippedAtCountMax && !shippedAt.has(line)) shippedAt.clear();
        shippedAt.set(line, { atMs: answeredAt, waitedMs: lineWaitedMs });
        state[sAfterShip] = line;
        return String(answer);
      }
      shippedAt.delete(line);
    }
    return null;
  }

  // x86 keeps stores in order and a plain store cannot pass the locked
  // instruction of the native op before it, so the unpin needs no lock
  // there (V8 keeps memory accesses in program order around an Atomics
  // call). Elsewhere (arm64) a plain store could become visible before the
  // op's own store, and the manager could revoke and flush the line's page
  // without it: the unpin is a sequentially consistent store.
  // Then one load of the slot's watch word: the manager set it while waiting
  // for this op to end (src/channel/atomic-lines.ts), and hears of it at once.
  const plainUnpin = process.arch === 'x64' || process.arch === 'ia32';
  const unpin = plainUnpin
    ? (): void => { words[state[sPin]!] = 0; state[sAfterShip] = -1; if (words[watchAt + state[sCachedSlot]!] !== 0) unpinned(); }
    : (): void => { atomicStore(words, state[sPin]!, 0); state[sAfterShip] = -1; if (words[watchAt + state[sCachedSlot]!] !== 0) unpinned(); };
  const unpinned = (): void => {
    words[watchAt + state[sCachedSlot]!] = 0;
    try {
      channel.post({ op: 'line', fn: 'unpinned' });
    } catch (error) {
      // A manager already ending needs no hint (the hint is never needed for correctness: the tick looks anyway).
      if (!isDsmError(error) || error.code !== 'DSM_ERR_CHANNEL') throw error;
    }
  };

  /** Marks the pinned line written (pinHeld marked it read): the manager keeps written lines for their hold window. */
  function written(): void {
    markWritten(state[sCachedSlot]!);
  }

  // The slot's use word (src/channel/atomic-lines.ts): bit 0 read, a count of
  // writes above it, so that the manager keeps only lines used often enough
  // for a batch to pay. Plain read-modify-writes: a count lost to a race
  // between two threads of the node only makes it approximate.
  const markWritten = (slot: number): void => {
    const word = words[usedAt + slot]!;
    if (word < useWordMax) words[usedAt + slot] = word + 2;
  };
  const markRead = (slot: number): void => {
    const word = words[usedAt + slot]!;
    if ((word & 1) === 0) words[usedAt + slot] = word | 1;
  };

  interface Target { kind: ElementKind; array: IntegerArray; offset: number }

  // The last dsm array an op ran on (a dsm buffer never grows, moves or
  // detaches), so a loop of ops on one array skips the validation the
  // specification's functions repeat anyway (the native op below validates
  // again). Its base address as a line number and a remainder, so that the
  // line of an element is int32 arithmetic: line + ((remainder + (index <<
  // shift)) >> log2(atomicLineBytes)) (state[sLine], state[sRemainder],
  // state[sShift] above; the array itself in last.array). Only cached once the
  // thread has its pin word, and for arrays under 2 GiB (the int32 range).

  // state[sAfterShip]: the line of this thread's last Atomics op when the line
  // layer shipped that op (it ran at the line's directory) and the thread has
  // run no Atomics op since, else -1. A notify on that line says so
  // (`afterOp`), and the layer may answer it with no message
  // (src/protocol/lines.ts, "Notifies that wake nobody"). Every other op
  // clears it: a native op in unpin (or the add's own unpin), any other in
  // targetOf (each slow path's first step).

  function targetOf(array: unknown, waitable: boolean): Target | null {
    state[sAfterShip] = -1;
    const tag = tagGetter.call(array);
    const kind = tag === undefined ? null : elementKind(tag);
    if (kind === null || (waitable && tag !== 'Int32Array' && tag !== 'BigInt64Array')) return null;
    const offset = route.offsetOf(bufferGetter.call(array));
    if (offset === null) return null;
    const target = { kind, array: array as IntegerArray, offset };
    const base = offset + byteOffsetGetter.call(array);
    const length = lengthGetter.call(array);
    if (state[sPin]! >= 0 && length * kind.width + atomicLineBytes < 2 ** 31) {
      state[sIndex] = -1;
      last.array = array;
      state[sLine] = Math.floor(base / atomicLineBytes);
      state[sRemainder] = base % atomicLineBytes;
      state[sShift] = Math.log2(kind.width);
      state[sLength] = length;
      state[sBigint] = kind.bigint ? 1 : 0;
    }
    return target;
  }

  function addressOf(target: Target, position: number): number {
    return target.offset + byteOffsetGetter.call(target.array) + position * target.kind.width;
  }

  /** The line of element `index` of the last array, or -1 when the fast path does not apply (another array, an index or value to convert). */
  const fastLine = (array: unknown, index: unknown, value: unknown): number => {
    if (array !== last.array || typeof index !== 'number' || (index >>> 0) !== index || index >= state[sLength]!) return -1;
    if (state[sBigint] !== 0 ? typeof value !== 'bigint' : typeof value !== 'number') return -1;
    return state[sLine]! + ((state[sRemainder]! + (index << state[sShift]!)) >> lineShift);
  };

  /**
   * Pins the line of element `index` of the last array and answers its slot
   * if the node holds it (the caller marks its use and unpins), else -1,
   * unpinned (the slow path then validates, converts and asks the manager).
   * The same element as the last pin's (state[sIndex]: a non-negative index
   * checked in bounds then; a dsm array never shrinks) with a Number value
   * costs two compares and the cached slot's held check: no line arithmetic.
   */
  const pinFast = (array: unknown, index: unknown, value: unknown, wordAt: number): number => {
    if (array === last.array && index === state[sIndex]! && (index as number) >= 0 && typeof value === 'number') {
      return pinCached(state[sCachedSlot]!, state[sCachedLine]! + 1, wordAt);
    }
    const line = fastLine(array, index, value);
    const slot = line < 0 ? -1 : pinSlot(line, wordAt);
    if (slot >= 0 && state[sBigint] === 0) state[sIndex] = index as number;
    return slot;
  };

  const shim = Atomics as unknown as Record<string, unknown>;
  const nativeAdd = native.add!;
  const nativeLoad = native.load!;
  const nativeStore = native.store!;
  const nativeCompareExchange = native.compareExchange!;
  // Fast paths, one function each (a shared one would make the native call
  // megamorphic): on the last array, an integer index in bounds and a value of
  // the element's type, an op costs the checks, the pin store, one load of
  // the slot's held word, the native op, a load (and rarely a store) of the
  // use mark and the unpin store; no allocation, no call into the engine.
  // What an op costs beyond the native one is loads that wait for the
  // previous op's locked instruction: the fewer, the closer to native
  // (measured in a loop of adds on one word: 15.5 ns with the line
  // arithmetic each time, 11.5-13.5 with the same-element check, native 9.8).
  const fast = {
    add(array: unknown, index: unknown, value: unknown): unknown {
      // pinFast's same-element path written out, with its own native call: a
      // loop of adds on one word (a counter) measured ~2 ns an op faster so.
      // The pin word's and the slot's indices are held in locals across the
      // native call (the optimized code keeps them on its stack), so that the
      // use mark, the unpin and the watch check after it reload nothing from
      // `state` and repeat no bounds check: ~1 ns an op on this machine.
      if (array === last.array && index === state[sIndex]! && (index as number) >= 0 && typeof value === 'number') {
        const slot = state[sCachedSlot]!;
        const key = state[sCachedLine]! + 1;
        const pinAt = state[sPin]!;
        if (asymmetric) words[pinAt] = key; else atomicStore(words, pinAt, key);
        if ((plainCheck ? words[heldAt + slot] : atomicLoad(words, heldAt + slot)) === key) {
          const result = nativeAdd(array, index, value);
          const used = words[usedAt + slot]!;
          if (used < useWordMax) words[usedAt + slot] = used + 2;
          if (plainUnpin) words[pinAt] = 0; else atomicStore(words, pinAt, 0);
          state[sAfterShip] = -1;
          if (words[watchAt + slot] !== 0) unpinned();
          return result;
        }
        atomicStore(words, pinAt, 0);
        state[sCachedLine] = -1;
        state[sIndex] = -1;
      }
      return addOther(array, index, value);
    },
    store(array: unknown, index: unknown, value: unknown): unknown {
      const slot = pinFast(array, index, value, heldAt);
      if (slot < 0) return slow.store!(array, index, value);
      const result = nativeStore(array, index, value);
      markWritten(slot);
      unpin();
      return result;
    },
    load(array: unknown, index: unknown): unknown {
      const slot = pinFast(array, index, state[sBigint] !== 0 ? 0n : 0, readableAt);
      if (slot < 0) return slow.load!(array, index);
      const result = nativeLoad(array, index);
      markRead(slot);
      unpin();
      return result;
    },
    compareExchange(array: unknown, index: unknown, expected: unknown, replacement: unknown): unknown {
      const slot = typeof replacement === typeof expected ? pinFast(array, index, expected, heldAt) : -1;
      if (slot < 0) return slow.compareExchange!(array, index, expected, replacement);
      const result = nativeCompareExchange(array, index, expected, replacement);
      if (result === expected) markWritten(slot); else markRead(slot);
      unpin();
      return result;
    },
  };
  /**
   * The add on any other element (or after the cached slot lost its line): a
   * function of its own, so that fast.add stays under V8's inlining limit
   * (460 bytes of bytecode): a loop of adds inlines it and the call costs
   * nothing, where a fast.add of 491 bytes was called and measured 1-2 ns an op slower.
   */
  const addOther = (array: unknown, index: unknown, value: unknown): unknown => {
    const slot = pinFast(array, index, value, heldAt);
    if (slot < 0) return slow.add!(array, index, value);
    const result = nativeAdd(array, index, value);
    markWritten(slot);
    unpin();
    return result;
  };
  const slow: Record<string, (...args: unknown[]) => unknown> = {};
  for (const fn of ['add', 'sub', 'and', 'or', 'xor', 'exchange', 'store'] as const) {
    const op = native[fn]!;
    slow[fn] = builtin(fn, 3, (array: unknown, index: unknown, value: unknown) => {
      const target = targetOf(array, false);
      if (target === null) return op(array, index, value);
      const position = toIndex(index, lengthGetter.call(target.array));
      const primitive = toPrimitiveNumber(value);
      const address = addressOf(target, position);
      // The element type's conversion (its TypeError for a BigInt to an Int32Array, as the native op's) before anything else.
      const raw = rawOf(target.kind, primitive);
      const shipped = pinOrShip(Math.floor(address / atomicLineBytes), fn, address, target.kind.width, [raw]);
      if (shipped !== null) return fn === 'store' ? storedValueOf(target.kind, primitive) : valueOf(target.kind, shipped);
      try { const result = op(array, position, primitive); written(); return result; } finally { unpin(); }
    });
    shim[fn] = slow[fn];
  }
  slow.load = builtin('load', 2, (array: unknown, index: unknown) => {
    const target = targetOf(array, false);
    if (target === null) return native.load!(array, index);
    const position = toIndex(index, lengthGetter.call(target.array));
    const address = addressOf(target, position);
    const shipped = pinOrShip(Math.floor(address / atomicLineBytes), 'load', address, target.kind.width, []);
    if (shipped !== null) return valueOf(target.kind, shipped);
    try { return native.load!(array, position); } finally { unpin(); }
  });
  slow.compareExchange = builtin('compareExchange', 4, (array: unknown, index: unknown, expected: unknown, replacement: unknown) => {
    const target = targetOf(array, false);
    if (target === null) return native.compareExchange!(array, index, expected, replacement);
    const position = toIndex(index, lengthGetter.call(target.array));
    const expectedPrimitive = toPrimitiveNumber(expected);
    target.kind.typed[0] = expectedPrimitive as number & bigint; // the specification's TypeError before replacement converts
    const replacementPrimitive = toPrimitiveNumber(replacement);
    const address = addressOf(target, position);
    const operands = [rawOf(target.kind, expectedPrimitive), rawOf(target.kind, replacementPrimitive)];
    const shipped = pinOrShip(Math.floor(address / atomicLineBytes), 'compareExchange', address, target.kind.width, operands);
    if (shipped !== null) return valueOf(target.kind, shipped);
    try {
      const result = native.compareExchange!(array, position, expectedPrimitive, replacementPrimitive);
      if (result === expectedOf(target, expectedPrimitive)) written();
      return result;
    } finally { unpin(); }
  });
  // Method definitions: not constructors, named and with the length of the built-ins they replace.
  shim.add = fast.add;
  shim.store = fast.store;
  shim.load = fast.load;
  shim.compareExchange = fast.compareExchange;
  /** The value a waiter compares with, converted as the element type does (ToInt32 or ToBigInt64). */
  function expectedOf(target: Target, primitive: unknown): number | bigint {
    target.kind.typed[0] = primitive as number & bigint;
    return target.kind.typed[0]!;
  }
  /**
   * Checks the value with the line pinned: 'not-equal' or 'timed-out' now,
   * or null with the line still pinned (the manager unpins it once the wait
   * is registered).
   */
  function check(target: Target, position: number, expected: number | bigint, timeoutMs: number): 'not-equal' | 'timed-out' | null {
    const line = Math.floor(addressOf(target, position) / atomicLineBytes);
    // The time until this thread's next op on the line is spent waiting, not working: no workMs for that op.
    shippedAt.delete(line);
    pinLine(line);
    return checkPinned(target, position, expected, timeoutMs);
  }
  /** check's test, with the line pinned here. */
  function checkPinned(target: Target, position: number, expected: number | bigint, timeoutMs: number): 'not-equal' | 'timed-out' | null {
    let outcome: 'not-equal' | 'timed-out' | null = 'not-equal';
    // Before the check (a locked instruction, so the load below cannot pass it): the word's quiet bit cleared
    // and this waiter counted, in one step. A notifier whose store follows the check finds the word not quiet
    // and asks the manager, which finds this wait; the manager sets no bit again while this waiter counts.
    const quiet = quietAt + state[sCachedSlot]!;
    const bit = lineQuietBit(addressOf(target, position));
    for (;;) {
      const word = atomicLoad(words, quiet);
      if (atomicCompareExchange(words, quiet, word, (word & ~bit) + lineQuietCheckOne) === word) break;
    }
    try {
      if (native.load!(target.array, position) !== expected) return outcome;
      outcome = timeoutMs === 0 ? 'timed-out' : null;
      return outcome;
    } finally {
      // No wait: uncounted here. A wait: uncounted by the manager once it has it (LineHost.lineCheckDone).
      if (outcome !== null) { atomicSub(words, quiet, lineQuietCheckOne); unpin(); }
    }
  }
  shim.wait = builtin('wait', 4, (array: unknown, index: unknown, value: unknown, timeout: unknown) => {
    const target = targetOf(array, true);
    if (target === null) return native.wait!(array, index, value, timeout);
    const position = toIndex(index, lengthGetter.call(target.array));
    const expected = expectedOf(target, toPrimitiveNumber(value));
    const timeoutMs = timeoutMsOf(timeout);
    const address = addressOf(target, position);
    const line = Math.floor(address / atomicLineBytes);
    shippedAt.delete(line);
    takePin();
    if (!pinHeld(line)) {
      // Not held here: the wait itself goes to the manager, whose line layer
      // ships it to the line's directory when the node ships its ops on the
      // line (the check and the wait there: one message, src/protocol/lines.ts),
      // answering the wait's outcome; else it answers null once the node holds
      // the line, and the check runs here as below.
      const askedAt = performance.now();
      const outcome = channel.call({
        op: 'atomic', fn: 'wait', address, width: target.kind.width, operands: [rawOf(target.kind, expected)],
        timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : -1, line: true,
      });
      lineWaitedMs += performance.now() - askedAt;
      if (outcome !== null && outcome !== undefined) return outcome;
      pinLine(line);
    }
    const early = checkPinned(target, position, expected, timeoutMs);
    if (early !== null) return early;
    try {
      return channel.call({ op: 'line', fn: 'wait', address, timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : -1 });
    } finally {
      unpin();
    }
  });
  const asyncWaits = typeof native.waitAsync === 'function' ? asyncWaitsOf(channel) : null;
  if (typeof native.waitAsync === 'function' && asyncWaits !== null) {
    const nativeWaitAsync = waitAsyncFromCall(native.waitAsync.bind(Atomics));
    shim.waitAsync = builtin('waitAsync', 4, (array: unknown, index: unknown, value: unknown, timeout: unknown) => {
      const target = targetOf(array, true);
      if (target === null) return nativeWaitAsync(array, index, value, timeout);
      const position = toIndex(index, lengthGetter.call(target.array));
      const expected = expectedOf(target, toPrimitiveNumber(value));
      const timeoutMs = timeoutMsOf(timeout);
      const early = check(target, position, expected, timeoutMs);
      if (early !== null) return { async: false, value: early };
      const { asyncId, promise } = asyncWaits.next();
      try {
        channel.call({
          op: 'line', fn: 'waitAsync', address: addressOf(target, position),
          timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : -1, asyncId,
        });
      } finally {
        unpin();
      }
      return { async: true, value: promise };
    });
  }
  shim.notify = builtin('notify', 3, (array: unknown, index: unknown, count: unknown) => {
    const shippedLine = state[sAfterShip]!; // before targetOf clears it
    const target = targetOf(array, true);
    if (target === null) return native.notify!(array, index, count);
    const position = toIndex(index, lengthGetter.call(target.array));
    const number = count === undefined ? Infinity : +(count as number);
    const wanted = Number.isNaN(number) ? 0 : Math.max(0, Math.trunc(number));
    const address = addressOf(target, position);
    const request: ChannelRequest = { op: 'line', fn: 'notify', address, count: Number.isFinite(wanted) ? wanted : -1 };
    const line = Math.floor(address / atomicLineBytes);
    takePin();
    if (pinHeld(line)) {
      // Held here: a notify on a quiet word wakes nobody (no waiter registered, none between its check and its
      // registration, none of another node's while the line is here): 0, with no call. The bit is read after
      // the caller's store (both sequentially consistent) and while the pin keeps this tenure's mask.
      const quiet = (atomicLoad(words, quietAt + state[sCachedSlot]!) & lineQuietBit(address)) !== 0;
      unpin();
      if (quiet) {
        words[notifiedAt + state[sPin]!] = words[notifiedAt + state[sPin]!]! + 1;
        return 0;
      }
    }
    if (shippedLine === line) request.afterOp = true;
    const askedAt = performance.now();
    const woken = Number(channel.call(request));
    lineWaitedMs += performance.now() - askedAt;
    if (woken > 0) asyncWaits?.afterNotify(woken);
    return woken;
  });
}
