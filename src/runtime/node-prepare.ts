// What a node process (nodes 1..N-1: src/cluster/node-main, `dsm node`) starts
// before it joins the cluster, from a module small enough to load at once
// (DSM_NODE_PREPARE; the runtime, src/runtime/cluster-node.ts, takes 70 ms and
// more to load on the 2-vCPU VM): the first warm thread for remote workers,
// which boots while the node joins and is adopted by its RemoteWorkers.

import { type MessagePort, Worker } from 'node:worker_threads';
import { type StartGate, startWarmThread } from '../channel/thread-config.js';
import { warmThreadsEnabled } from '../env.js';
import { hop, hopsOn } from '../util/hops.js';

/**
 * A warm thread started before its node joined the cluster (prepareNode): booting while the node
 * joins, it is ready when the program's first worker comes here, where one made once the node was
 * made was still booting then (for another 60 ms on the 2-vCPU VM: the first remote worker's start
 * took 77-101 ms against 13-16 ms for the next ones).
 */
export interface PrestartedWarmThread {
  worker: Worker;
  handoff: MessagePort;
  gate: StartGate;
  /** Node's 'online' came, or the thread ended (failed) before it was adopted. */
  online: boolean;
  ended: boolean;
  /** Its own listeners off (the remote workers' go on). */
  untrack(): void;
  /** Ends it unused (no worker is hosted from the start here). */
  discard(): void;
}

/** Starts a warm thread now, for the RemoteWorkers made later on this node (see PrestartedWarmThread). */
function prestartWarmThread(): PrestartedWarmThread {
  const { worker, handoff, gate } = startWarmThread((entry, options) => new Worker(entry, options));
  const onOnline = (): void => { thread.online = true; };
  const onEnd = (): void => { thread.ended = true; };
  const thread: PrestartedWarmThread = {
    worker, handoff, gate, online: false, ended: false,
    untrack: () => {
      worker.off('online', onOnline);
      worker.off('error', onEnd);
      worker.off('exit', onEnd);
    },
    discard: () => {
      thread.untrack();
      handoff.close();
      void worker.terminate();
    },
  };
  worker.once('online', onOnline);
  worker.once('error', onEnd);
  worker.once('exit', onEnd);
  if (hopsOn) hop('m:warm thread prestarted');
  return thread;
}

/** The warm thread prepareNode started, until the node takes it. */
let prestarted: PrestartedWarmThread | null = null;

/** Starts the node's first warm thread now, if warm threads are on (DSM_WARM_THREADS) and none was started. */
export function prepareNode(): void {
  if (prestarted === null && warmThreadsEnabled()) prestarted = prestartWarmThread();
}

/** The warm thread prepareNode started, once (null if none). */
export function takePrestartedWarmThread(): PrestartedWarmThread | null {
  const thread = prestarted;
  prestarted = null;
  return thread;
}
