// `SharedArrayBuffer` inside a dsm program: allocates from the global region.
//
// The replacement shares the native prototype, so `instanceof`, `byteLength`,
// `util.types.isSharedArrayBuffer` and Object.prototype.toString behave as
// before; `slice` goes through Symbol.species and so allocates dsm memory too.

import { DsmError } from '../errors.js';

export const NativeSharedArrayBuffer: SharedArrayBufferConstructor = globalThis.SharedArrayBuffer;

const byteLengthMax = Number.MAX_SAFE_INTEGER;

/** ToIndex from the specification, with the RangeError V8 would throw. */
function toIndex(value: unknown): number {
  if (value === undefined) return 0;
  const number = Number(value);
  const integer = Number.isNaN(number) ? 0 : Math.trunc(number);
  if (integer < 0 || integer > byteLengthMax) throw new RangeError('Invalid array buffer length');
  return integer;
}

export function makeSharedArrayBufferClass(allocate: (byteLength: number) => SharedArrayBuffer): SharedArrayBufferConstructor {
  function SharedArrayBuffer(this: unknown, length?: unknown, options?: unknown): SharedArrayBuffer {
    if (new.target === undefined) throw new TypeError("Constructor SharedArrayBuffer requires 'new'");
    const byteLength = toIndex(length);
    if (typeof options === 'object' && options !== null && (options as { maxByteLength?: unknown }).maxByteLength !== undefined) {
      throw new DsmError('DSM_ERR_GROWABLE',
        'growable SharedArrayBuffers (maxByteLength) are not supported on dsm memory: allocate the largest size you need up front');
    }
    // A zero-length buffer holds no memory, so it needs no room in the region.
    const buffer = byteLength === 0 ? new NativeSharedArrayBuffer(0) : allocate(byteLength);
    if (new.target !== SharedArrayBuffer) Object.setPrototypeOf(buffer, (new.target as { prototype: object }).prototype);
    return buffer;
  }
  SharedArrayBuffer.prototype = NativeSharedArrayBuffer.prototype;
  Object.defineProperty(SharedArrayBuffer, Symbol.species, { get() { return this; }, configurable: true });
  return SharedArrayBuffer as unknown as SharedArrayBufferConstructor;
}

/** Makes `ctor` the global SharedArrayBuffer, including `prototype.constructor`. */
export function installSharedArrayBuffer(ctor: SharedArrayBufferConstructor): void {
  Object.defineProperty(globalThis, 'SharedArrayBuffer', { value: ctor, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(NativeSharedArrayBuffer.prototype, 'constructor', { value: ctor, writable: true, configurable: true, enumerable: false });
}
