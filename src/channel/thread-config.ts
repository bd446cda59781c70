// How an app thread is started, for both sides of the door: the manager
// starts the program's main thread and the workers it hosts for parents on
// other nodes (src/runtime/); an app thread starts the workers it creates
// locally (src/threads/worker.ts). All of them build the thread's
// AppThreadConfig here, hand it over in the same workerData envelope, and
// start the same entry module.

import type { MessagePort } from 'node:worker_threads';
import { entryUrl } from '../util/entry-url.js';
import type { AppThreadConfig, ThreadRole } from './wire.js';

/** What a node tells every app thread it starts (the same for all its threads). */
export interface NodeThreadBase {
  nodeId: number;
  nodeCount: number;
  regionBytes: number;
  /** Cluster-wide parallelism. */
  parallelism: number;
  /** The node's atomic line table (src/channel/atomic-lines.ts) when Atomics run by line ownership. */
  atomicLines?: SharedArrayBuffer;
  /** The node's lock token table (src/channel/lock-tokens.ts) when mutex tokens rest with app threads. */
  lockTokens?: SharedArrayBuffer;
}

/** What differs from one app thread to the next. */
export interface ThreadStart {
  role: ThreadRole;
  entry: string;
  evalCode: boolean;
  argv: string[];
  threadIdSeen: number;
  /** A local worker's workerData (structured-cloned by Node). */
  userWorkerData?: unknown;
  /** A worker whose parent runs on another node: its workerData, cloned by dsm (src/channel/clone.ts). */
  remoteWorkerData?: Uint8Array;
}

/** The one place an AppThreadConfig is built. */
export function appThreadConfig(base: NodeThreadBase, start: ThreadStart): AppThreadConfig {
  return {
    role: start.role,
    nodeId: base.nodeId,
    nodeCount: base.nodeCount,
    regionBytes: base.regionBytes,
    entry: start.entry,
    evalCode: start.evalCode,
    argv: start.argv,
    parallelism: base.parallelism,
    userWorkerData: start.userWorkerData ?? null,
    threadIdSeen: start.threadIdSeen,
    ...(start.remoteWorkerData === undefined ? {} : { remoteWorkerData: start.remoteWorkerData }),
    ...(base.atomicLines === undefined ? {} : { atomicLines: base.atomicLines }),
    ...(base.lockTokens === undefined ? {} : { lockTokens: base.lockTokens }),
  };
}

/** The workerData an app thread is started with: its config and its end of the channel (transfer the port). */
export interface AppThreadWorkerData {
  __dsm: AppThreadConfig;
  __dsmPort: MessagePort;
}

export function appThreadWorkerData(config: AppThreadConfig, port: MessagePort): AppThreadWorkerData {
  return { __dsm: config, __dsmPort: port };
}

/** The app thread's side: its config and channel port, from the workerData it was started with. */
export function readAppThreadWorkerData(workerData: unknown): { config: AppThreadConfig; port: MessagePort } {
  const data = workerData as Partial<AppThreadWorkerData> | null;
  if (data === null || typeof data !== 'object' || data.__dsm === undefined || data.__dsmPort === undefined) {
    throw new TypeError('dsm: an app thread was started without its config and channel port');
  }
  return { config: data.__dsm, port: data.__dsmPort };
}

/**
 * The module every app thread starts in (src/threads/entry.ts: bundled, compiled .js,
 * or .ts when dsm itself runs under tsx). A URL, not an import: the manager
 * never loads app-side code itself.
 */
export function appEntryUrl(): URL {
  return entryUrl('threadEntry');
}
