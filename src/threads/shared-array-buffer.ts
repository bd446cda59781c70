// `SharedArrayBuffer` inside a dsm program: allocates from the global region.
//
// The replacement shares the native prototype, so `instanceof`, `byteLength`,
// `util.types.isSharedArrayBuffer` and Object.prototype.toString behave as
// before; `slice` goes through Symbol.species and so allocates dsm memory too.
// The constructor follows the specification step by step (ToIndex of the
// length, then of maxByteLength, then the prototype from NewTarget, then the
// allocation), so a program sees the same errors, in the same order, as
// under plain node.

import { isDsmError } from '../errors.js';

export const NativeSharedArrayBuffer: SharedArrayBufferConstructor = globalThis.SharedArrayBuffer;

type GrowableSharedArrayBufferConstructor = new (byteLength: number, options: { maxByteLength: number }) => SharedArrayBuffer;

const byteLengthMax = Number.MAX_SAFE_INTEGER;

/** ToIndex from the specification: ToNumber (a TypeError for a BigInt or Symbol), then the range check. */
function toIndex(value: unknown): number {
  if (value === undefined) return 0;
  const number = +(value as number);
  const integer = Number.isNaN(number) ? 0 : Math.trunc(number);
  if (integer < 0 || integer > byteLengthMax) throw new RangeError('Invalid array buffer length');
  return integer === 0 ? 0 : integer;
}

/** GetArrayBufferMaxByteLengthOption from the specification: null when the buffer is not growable. */
function maxByteLengthOf(options: unknown): number | null {
  if (typeof options !== 'object' && typeof options !== 'function') return null;
  if (options === null) return null;
  const maxByteLength = (options as { maxByteLength?: unknown }).maxByteLength;
  if (maxByteLength === undefined) return null;
  const integer = toIndex(maxByteLength);
  return integer;
}

/**
 * The buffer could not be allocated: the specification's RangeError (as V8
 * throws for a length it cannot back), keeping dsm's code and reason.
 */
function allocationRangeError(error: unknown): RangeError {
  const reason = error as { code: string; message: string };
  const rangeError = new RangeError(`Array buffer allocation failed: ${reason.code}: ${reason.message}`) as RangeError & { code: string };
  rangeError.code = reason.code;
  return rangeError;
}

/** Another realm's (a vm context's: src/threads/vm-contexts.ts) own constructor, and its errors. */
export interface SharedArrayBufferRealm {
  /** Its prototype is the buffers', and it makes the buffers dsm leaves to V8 (growable, empty). */
  Native: SharedArrayBufferConstructor;
  /** This realm's error made the realm's (a TypeError as its TypeError). */
  adopt(error: unknown): unknown;
}

/** `regionBytes` bounds the length worth asking the manager for; `realm` is another realm's, this one's by default. */
export function makeSharedArrayBufferClass(allocate: (byteLength: number) => SharedArrayBuffer, regionBytes = byteLengthMax,
  realm?: SharedArrayBufferRealm): SharedArrayBufferConstructor {
  const Native = realm?.Native ?? NativeSharedArrayBuffer;
  const adopt = realm?.adopt;
  // One declared parameter: SharedArrayBuffer.length is 1, options is arguments[1]. A function expression named
  // by its property key: V8 names the function (in its own messages, "#<SharedArrayBuffer> could not be cloned",
  // and stack traces) by its source name, which a bundler renames for a declaration (it shadows the global).
  // eslint-disable-next-line func-names, object-shorthand
  const SharedArrayBuffer = { SharedArrayBuffer: function (this: unknown, length: unknown): SharedArrayBuffer {
    try {
      if (new.target === undefined) throw new TypeError("Constructor SharedArrayBuffer requires 'new'");
      const byteLength = toIndex(length);
      // eslint-disable-next-line prefer-rest-params
      const maxByteLength = maxByteLengthOf(arguments[1]);
      if (maxByteLength !== null && byteLength > maxByteLength) throw new RangeError('Invalid array buffer max length');
      // OrdinaryCreateFromConstructor reads NewTarget.prototype before allocating;
      // one that is not an object gives the realm's SharedArrayBuffer.prototype.
      const candidate = (new.target as { prototype?: unknown }).prototype;
      const prototype = (typeof candidate === 'object' && candidate !== null) || typeof candidate === 'function'
        ? candidate as object : Native.prototype;
      let buffer: SharedArrayBuffer;
      if (maxByteLength !== null) {
        // A growable buffer is V8's own (docs/LIMITS.md): it serves this node's threads.
        buffer = new (Native as unknown as GrowableSharedArrayBufferConstructor)(byteLength, { maxByteLength });
      } else if (byteLength === 0) {
        // A zero-length buffer holds no memory, so it needs no room in the region.
        buffer = new Native(0);
      } else if (byteLength > regionBytes) {
        throw allocationRangeError({ code: 'DSM_ERR_REGION_EXHAUSTED', message: `${byteLength} bytes do not fit in the global region of ${regionBytes} bytes (--region-bytes): run with --region-bytes of at least ${byteLength} and room for the program's other buffers` });
      } else {
        try {
          buffer = allocate(byteLength);
        } catch (error) {
          if (isDsmError(error) && (error as { code: string }).code === 'DSM_ERR_REGION_EXHAUSTED') throw allocationRangeError(error);
          throw error;
        }
      }
      // dsm memory is made in this module's realm: a context's buffer takes the context's prototype.
      if (prototype !== NativeSharedArrayBuffer.prototype || Native !== NativeSharedArrayBuffer) Object.setPrototypeOf(buffer, prototype);
      return buffer;
    } catch (error) {
      // A context's constructor throws the context's TypeError and RangeError, as its native one does.
      throw adopt === undefined ? error : adopt(error);
    }
  } }.SharedArrayBuffer;
  // Spelled out: a bundler may rename the declaration (it shadows the global in the bundle's scope).
  Object.defineProperty(SharedArrayBuffer, 'name', { value: 'SharedArrayBuffer', writable: false, enumerable: false, configurable: true });
  Object.defineProperty(SharedArrayBuffer, 'prototype', { value: Native.prototype, writable: false, enumerable: false, configurable: false });
  // The native getter: its name is "get [Symbol.species]" and it returns `this`.
  Object.defineProperty(SharedArrayBuffer, Symbol.species, Object.getOwnPropertyDescriptor(Native, Symbol.species)!);
  // Another realm's: a function of that realm's (its Function.prototype: `instanceof Function` there, call, bind).
  if (Native !== NativeSharedArrayBuffer) Object.setPrototypeOf(SharedArrayBuffer, Object.getPrototypeOf(Native) as object);
  return SharedArrayBuffer as unknown as SharedArrayBufferConstructor;
}

/** Makes `ctor` the global SharedArrayBuffer, including `prototype.constructor`. */
export function installSharedArrayBuffer(ctor: SharedArrayBufferConstructor): void {
  Object.defineProperty(globalThis, 'SharedArrayBuffer', { value: ctor, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(NativeSharedArrayBuffer.prototype, 'constructor', { value: ctor, writable: true, configurable: true, enumerable: false });
}
