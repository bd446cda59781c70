// What a node process (nodes 1..N-1: src/cluster/node-main, `dsm node`) starts
// before it joins the cluster, from a module small enough to load at once
// (DSM_NODE_PREPARE; the runtime, src/runtime/cluster-node.ts, takes 70 ms and
// more to load on the 2-vCPU VM): the first warm thread for remote workers,
// which boots while the node joins and is adopted by its RemoteWorkers (started
// at the node's construction instead, it was still booting when a program's
// first worker came: 77-101 ms for that start on the 2-vCPU VM, 13-16 ms for
// the next ones).

import { Worker } from 'node:worker_threads';
import { type PrestartedWarmThread, prestartWarmThread } from '../channel/thread-config.js';
import { warmThreadsEnabled } from '../env.js';
import { hop, hopsOn } from '../util/hops.js';

/** Starts a warm thread now, for the RemoteWorkers made later on this node. */
function prestartNodeWarmThread(): PrestartedWarmThread {
  const thread = prestartWarmThread((entry, options) => new Worker(entry, options));
  if (hopsOn) hop('m:warm thread prestarted');
  return thread;
}

/** The warm thread prepareNode started, until the node takes it. */
let prestarted: PrestartedWarmThread | null = null;

/** Starts the node's first warm thread now, if warm threads are on (DSM_WARM_THREADS) and none was started. */
export function prepareNode(): void {
  if (prestarted === null && warmThreadsEnabled()) prestarted = prestartNodeWarmThread();
}

/** The warm thread prepareNode started, once (null if none). */
export function takePrestartedWarmThread(): PrestartedWarmThread | null {
  const thread = prestarted;
  prestarted = null;
  return thread;
}
