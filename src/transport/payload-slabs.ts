// Reused buffers for the large payloads a node sends: a page reply's copies
// (session 27). A fetch window's reply is up to a MiB of page copies, read at
// the home into a buffer of its own that the socket then writes by reference.
// A fresh buffer a reply was fresh memory: each of its pages was faulted in and
// zeroed at its first write, and on a virtual machine with shadow page tables
// that is a trip through the hypervisor (5.75 µs a page on the 2-vCPU VM,
// measured in the native readPage of a 64 MiB stream: 0.33 µs for reading
// the page itself); V8 freed the buffers only at its next collection, so a
// stream used new memory all along. A slab here is touched once and then
// reused: taken for a reply's copies (or its packed payload), given back when
// the bytes have left it — when the socket has written them
// (connection.ts writeFrame: at once for a payload it copies into the frame,
// in the write's callback for one it writes by reference), or when the
// message went out without it (the envelope's MeshNetwork.send). Past
// payloadSlabCountMax slabs in use, or for a payload larger than a slab, a
// buffer of its own, as before.
// One pool per thread (the manager's sends; module state is per thread).

import { payloadSlabBytes, payloadSlabCountMax } from '../constants.js';
import { assert } from '../errors.js';

/** The pool's slabs not in use. */
const idle: ArrayBuffer[] = [];
/** Slabs handed out and not given back. */
const inUse = new Set<ArrayBuffer>();
/** Slabs made so far (at most payloadSlabCountMax). */
let made = 0;
/** Takes that got a buffer of their own (the pool was empty, or the payload larger than a slab). */
let misses = 0;

/**
 * A buffer for `bytes` bytes of a payload to send: a view of an idle slab, or
 * a new buffer of its own. Its contents are whatever the slab last held.
 */
export function takePayloadSlab(bytes: number): Uint8Array {
  assert(Number.isSafeInteger(bytes) && bytes >= 0, 'a payload slab is taken for a byte count');
  if (bytes > 0 && bytes <= payloadSlabBytes) {
    let slab = idle.pop();
    if (slab === undefined && made < payloadSlabCountMax) {
      made++;
      slab = new ArrayBuffer(payloadSlabBytes);
    }
    if (slab !== undefined) {
      inUse.add(slab);
      return new Uint8Array(slab, 0, bytes);
    }
  }
  misses++;
  return new Uint8Array(bytes);
}

/** Gives back the slab under `buffer` once nothing reads its bytes any more (a buffer not taken from the pool, or given back already: nothing). */
export function releasePayloadSlab(buffer: ArrayBufferLike): void {
  if (!inUse.delete(buffer as ArrayBuffer)) return;
  idle.push(buffer as ArrayBuffer);
}

/** The pool's state (tests and stats): slabs made, in use, and takes that got a buffer of their own. */
export function payloadSlabStats(): { made: number; inUse: number; misses: number } {
  return { made, inUse: inUse.size, misses };
}
