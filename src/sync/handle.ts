// Synchronization objects live in shared memory: a few Int32 words in a
// SharedArrayBuffer (dsm memory inside a dsm program). Every operation on
// them is an `Atomics` operation, which dsm performs as a synchronization
// access (acquire and release) across the cluster; so these classes need no
// protocol of their own and work unchanged on one node and on many.
//
// To share an object with another thread, send its `handle` (an Int32Array)
// in postMessage or workerData and rebuild it with `Class.from(handle)`.

import workerThreads from 'node:worker_threads';
import { DsmError } from '../errors.js';
import { nodeIdOfThread } from '../env.js';
import { ownerNodeBase } from '../channel/lock-tokens.js';

export const wordBytes = 4;

export function allocateWords(wordCount: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(wordCount * wordBytes));
}

export function checkHandle(handle: unknown, wordCount: number, kind: string, magic: number): Int32Array {
  if (!(handle instanceof Int32Array) || handle.length !== wordCount ||
      Object.prototype.toString.call(handle.buffer) !== '[object SharedArrayBuffer]') {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${kind}.from needs the handle of a ${kind} (an Int32Array of ${wordCount} words over a SharedArrayBuffer)`);
  }
  if (Atomics.load(handle, 0) !== magic) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${kind}.from: this handle does not hold a ${kind}`);
  }
  return handle;
}

/** A nonzero token for the calling thread, unique in the cluster: node id and thread id. */
export function ownerToken(): number {
  const nodeId = nodeIdOfThread();
  return ownerNodeBase(nodeId) + (workerThreads.threadId & 0xfffff) + 1;
}

/**
 * Atomics.wait (untimed) naming its waiter by a fifth argument: a cluster of one, whose waits are V8's own, notes
 * it for an interrupted run's report (src/threads/atomics.ts installNotedWait; the values are waitKindMutex and
 * waitKindBarrier of src/channel/doorbell.ts). V8's own wait ignores the argument.
 */
export function namedWait(array: Int32Array, index: number, value: number, kind: 1 | 2): void {
  (Atomics.wait as (array: Int32Array, index: number, value: number, timeout: undefined, kind: number) => string)(array, index, value, undefined, kind);
}
