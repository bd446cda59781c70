// dsm's public API, for use inside a program run with `dsm run`.
//
//   import { Mutex, Barrier, Condition, alloc, free, isDsm, homeOf, nodeOf } from 'dsm';

import { Worker } from 'node:worker_threads';
import { pageBytes } from './constants.js';
import { DsmError } from './errors.js';
import { remoteWorkerNode } from './threads/remote-worker.js';
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

/**
 * The node that is home to the memory of `memory` at `byteOffset` (a byte
 * offset into the buffer or view, default 0): the node that keeps its master
 * copy, where writes from other nodes go as diffs and reads from other nodes
 * are fetched from. Homes start where memory is allocated (a buffer made by a
 * thread on node 2 is homed at node 2) and move to a node that writes a page
 * alone across barriers (docs/PROTOCOL.md, "Home migration"); the answer is
 * this node's knowledge now. Memory that is not dsm memory (a growable buffer,
 * WebAssembly memory) lives on this node: its id. Under plain node, and on one
 * node, 0.
 */
export function homeOf(memory: SharedArrayBuffer | ArrayBufferView, byteOffset = 0): number {
  const buffer = ArrayBuffer.isView(memory) ? memory.buffer : memory;
  const start = ArrayBuffer.isView(memory) ? memory.byteOffset : 0;
  const length = ArrayBuffer.isView(memory) ? memory.byteLength : (memory as { byteLength?: unknown }).byteLength;
  if (Object.prototype.toString.call(buffer) !== '[object SharedArrayBuffer]' || typeof length !== 'number') {
    throw new TypeError('homeOf: the argument must be a SharedArrayBuffer or a view over one');
  }
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || (byteOffset >= length && !(byteOffset === 0 && length === 0))) {
    throw new RangeError(`homeOf: byteOffset ${String(byteOffset)} is outside the memory's ${length} bytes`);
  }
  const current = appThreadState();
  if (current === null) return 0;
  const range = current.rangeOf(buffer as SharedArrayBuffer);
  if (range === null || current.config.nodeCount === 1) return current.config.nodeId;
  const page = Math.floor((range.offset + start + byteOffset) / pageBytes);
  return current.channel.call({ op: 'home-of', page }) as number;
}

/** The node a Worker runs on (this thread's node for a worker it runs locally). Under plain node, 0. */
export function nodeOf(worker: Worker): number {
  const remote = remoteWorkerNode(worker);
  if (remote !== undefined) return remote;
  if (!(worker instanceof Worker)) throw new TypeError('nodeOf: the argument must be a Worker');
  return appThreadState()?.config.nodeId ?? 0;
}
