// dsm's public API, for use inside a program run with `dsm run`.
//
//   import { Mutex, Barrier, Condition, alloc, free, isDsm } from 'dsm';

import { DsmError } from './errors.js';
import { appThreadState } from './threads/state.js';

export { Barrier, Condition, Mutex } from './sync/index.js';
export { DsmError, errorCodes, isDsmError, type ErrorCode } from './errors.js';

function state() {
  const current = appThreadState();
  if (current === null) {
    throw new DsmError('DSM_ERR_STALE_OBJECT', 'this thread is not part of a dsm run: start the program with `dsm run`');
  }
  return current;
}

/** Allocates `byteLength` bytes of zeroed global memory; the same as `new SharedArrayBuffer(byteLength)` in a dsm program. */
export function alloc(byteLength: number): SharedArrayBuffer {
  return new SharedArrayBuffer(byteLength);
}

/**
 * Returns a buffer's memory to the heap now, instead of when it is collected.
 * The buffer must not be used afterwards, by any thread.
 */
export function free(buffer: SharedArrayBuffer): void {
  const current = state();
  const range = current.rangeOf(buffer);
  if (range === null) throw new DsmError('DSM_ERR_FREE', 'free: this SharedArrayBuffer is not dsm memory');
  current.channel.call({ op: 'free', offset: range.offset });
}

/** True when `buffer` is dsm global memory. */
export function isDsm(buffer: SharedArrayBuffer): boolean {
  return appThreadState()?.rangeOf(buffer) != null;
}

/** Where a dsm buffer lives in the global region, or null for other buffers. */
export function rangeOf(buffer: SharedArrayBuffer): { offset: number; byteLength: number } | null {
  return appThreadState()?.rangeOf(buffer) ?? null;
}

/** This thread's node, and the cluster's size. */
export function nodeInfo(): { nodeId: number; nodeCount: number } {
  const { config } = state();
  return { nodeId: config.nodeId, nodeCount: config.nodeCount };
}
