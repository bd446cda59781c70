// worker_threads' environment data (setEnvironmentData/getEnvironmentData)
// for workers on other nodes. Node copies a thread's environment data into
// each worker it creates, inside one process; a worker started on another
// node would see none. Node gives no way to list the keys, so dsm wraps
// setEnvironmentData to know them: a remote worker's spawn carries the
// creator's entries (cloned by dsm, so dsm buffers travel by range) and its
// thread sets them before the program's module runs. A local worker's config
// carries them too (cloned by Node): Node's own copy is made when a thread is
// created, and a warm thread (made ahead, src/threads/worker.ts) was created
// before the program set any.

import type { BufferRanges } from '../channel/clone.js';
import { deserializeValue, serializeValue } from '../channel/clone.js';

type WorkerThreadsModule = Record<string, unknown>;
type SetEnvironmentData = (key: unknown, value: unknown) => void;
type GetEnvironmentData = (key: unknown) => unknown;

/** The keys this thread has environment data under (as set here or inherited). */
const keys = new Set<unknown>();
let nativeGet: GetEnvironmentData | null = null;

/**
 * Wraps `setEnvironmentData` of node:worker_threads (before the builtin
 * exports are synced), and sets the creator's entries: `localEntries` (a
 * local worker's, cloned by Node) or `remoteEntries` (a remote worker's, cloned by dsm).
 */
export function installEnvironmentData(wt: WorkerThreadsModule, ranges: BufferRanges, localEntries: ReadonlyArray<[unknown, unknown]> | undefined, remoteEntries: Uint8Array | undefined): void {
  const set = wt.setEnvironmentData as SetEnvironmentData;
  const get = wt.getEnvironmentData as GetEnvironmentData;
  nativeGet = get;
  const entries = remoteEntries === undefined ? localEntries ?? [] : deserializeValue(remoteEntries, ranges) as Array<[unknown, unknown]>;
  for (const [key, value] of entries) {
    set(key, value);
    keys.add(key);
  }
  const setEnvironmentData = (key: unknown, value: unknown): void => {
    set(key, value);
    if (value === undefined) keys.delete(key);
    else keys.add(key);
  };
  Object.defineProperty(setEnvironmentData, 'name', { value: 'setEnvironmentData' });
  wt.setEnvironmentData = setEnvironmentData;
}

/** This thread's environment data, for a local worker's config (cloned by Node with it). */
export function environmentEntries(): Array<[unknown, unknown]> {
  const get = nativeGet;
  return get === null ? [] : [...keys].map((key) => [key, get(key)]);
}

/** This thread's environment data, cloned for a worker on another node; undefined when there is none. */
export function serializeEnvironmentData(ranges: BufferRanges): Uint8Array | undefined {
  if (keys.size === 0 || nativeGet === null) return undefined;
  const get = nativeGet;
  return serializeValue([...keys].map((key) => [key, get(key)]), ranges);
}
