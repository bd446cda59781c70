// In a multi-node run, Mutex and Barrier go to the coherence engine's lock
// and barrier managers instead of being built from Atomics: a remote lock is
// then 2 messages to acquire and 1 to release (a ticket lock over remote
// Atomics needs about 8 round trips), and a barrier 2(n-1) messages for n
// nodes. The object's words stay in dsm memory; its global address names it.
//
// A cluster of one holds every lock and barrier token, always: the route's
// fast case is then the object's own Atomics implementation (null route: a
// native ticket lock, an Atomics barrier), with no request to the manager, as
// a node-local token does while it stays on the node. Over a SharedArrayBuffer
// that is not dsm memory the Atomics implementation runs unchanged too.

import { assert } from '../errors.js';
import { LockTokenView, lockOwnerField, ownerNodeBase } from '../channel/lock-tokens.js';
import { appThreadState } from '../threads/state.js';
import { ownerToken } from './handle.js';

/** Sync objects are 16-byte heap blocks: their address / 16 is a unique id. */
const idGranuleBytes = 16;

export interface EngineRoute {
  id: number;
  call(kind: 'lock' | 'unlock' | 'barrier', threadId: number, extra?: { tryOnly?: boolean; parties?: number }): unknown;
  /**
   * Sends without waiting. An unlock needs no answer: the manager performs it
   * (closing the interval, telling the lock's manager) before anything else
   * this thread asks, because one thread's requests are served in order; the
   * thread's writes after the unlock may travel with the release, which no
   * data-race-free program can tell.
   */
  post(kind: 'unlock', threadId: number): void;
  /** Posts this thread's unlock of another mutex (by id), for LockTokenView.take's `giveBack`. */
  giveBack(otherId: number): void;
  /**
   * The node's lock token table as this thread sees it (src/channel/lock-tokens.ts),
   * or null: a mutex whose token rests at this node is locked and unlocked there
   * with no request.
   */
  tokens: LockTokenView | null;
}

/** This thread's view of its node's lock token table (one per thread: it caches a slot). */
let tokenView: LockTokenView | null | undefined;

function lockTokenView(buffer: SharedArrayBuffer | undefined, nodeId: number): LockTokenView | null {
  if (tokenView === undefined) tokenView = buffer === undefined ? null : new LockTokenView(buffer, lockOwnerField(ownerToken(), ownerNodeBase(nodeId)));
  return tokenView;
}

/** Whether this thread runs in a dsm program on several nodes (where Mutex and Barrier are engine-routed). */
export function multiNodeRun(): boolean {
  const state = appThreadState();
  return state !== null && state.config.nodeCount > 1;
}

export function engineRoute(handle: Int32Array): EngineRoute | null {
  const state = appThreadState();
  // A cluster of one: the token is always here (see above).
  if (state === null || state.config.nodeCount === 1) return null;
  const range = state.rangeOf(handle.buffer as SharedArrayBuffer);
  if (range === null) return null;
  const address = range.offset + handle.byteOffset;
  assert(address % idGranuleBytes === 0, 'a dsm sync object starts a 16-byte heap block');
  const id = address / idGranuleBytes;
  const channel = state.channel;
  return {
    id,
    call: (kind, threadId, extra) => channel.call({ op: 'sync', kind, id, threadId, ...extra }),
    post: (kind, threadId) => channel.post({ op: 'sync', kind, id, threadId, posted: true }),
    giveBack: (otherId) => channel.post({ op: 'sync', kind: 'unlock', id: otherId, threadId: ownerToken(), posted: true }),
    tokens: lockTokenView(state.config.lockTokens, state.config.nodeId),
  };
}
