// Helpers the simulation tests share to drive one simulated app thread.
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import type { SimCluster, ThreadOp, ThreadProgram } from './sim.js';

/** One synchronization request from a simulated thread; its result is returned (and pushed to `results`). */
export function* syncOp(request: SyncRequest, results?: SyncResult[]): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  results?.push(result);
  return result;
}

/** A synchronization request that must succeed (a failed one fails the test, naming its kind). */
export function* syncOk(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  if (!result.ok) throw new Error(`sync ${request.kind} failed`);
  return result;
}

/** A 32-bit load from the simulated memory. */
export function* loadOp(address: number): Generator<ThreadOp, number, unknown> {
  return (yield { op: 'load', address }) as number;
}

/** Runs `body` as a thread on `node` until the cluster is quiet, messages drained. */
export function runThread(c: SimCluster, node: number, body: () => Generator<ThreadOp, unknown, unknown>): void {
  c.addThread(node, () => body() as ThreadProgram);
  c.run();
  c.drain();
}
