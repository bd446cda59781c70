// The sync layer's side of the node's lock token table (issue 12.3; the table
// itself is the runtime's, src/channel/lock-tokens.ts, behind LockTokenHost).
// A token resting at this node with nobody else concerned is delegated to the
// table, where app threads lock and unlock it with one compareExchange each;
// the layer claims it back before it acts on the lock again. See
// docs/PROTOCOL.md "Lock tokens in the node's table".

import { assert } from '../errors.js';
import type { EngineContext } from './context.js';

/** What the layer keeps of a token at this node (SyncLayer's Token). */
export interface TableToken {
  recalled: boolean;
  waiters: readonly unknown[];
  next?: unknown;
  reuses: number;
  delegated: boolean;
  /** Kept after a recall for this node's threads (lock-keep.ts): the window's end, or -1. */
  keepUntilMs: number;
}

/**
 * Takes a delegated token back: a thread that holds it in the table is the
 * lock's holder in `held` from now on (its unlock, which finds the table
 * changed, comes as a request); the table's re-acquires count as reuses.
 */
export function claimToken(ctx: EngineContext, token: TableToken | undefined, lockId: number, held: Map<number, { threadId: number }>): void {
  if (token === undefined || !token.delegated) return;
  token.delegated = false;
  const { holder, uses } = ctx.lockTokens!.tokenReclaim(lockId);
  token.reuses += uses;
  if (uses > 0) ctx.stats.lockTokenReuses = (ctx.stats.lockTokenReuses ?? 0) + uses;
  if (holder !== null) {
    assert(!held.has(lockId), 'a delegated lock has no holder in the layer');
    held.set(lockId, { threadId: holder });
  }
}

/**
 * Hands a token that rests here to the table when nothing but its holder (if
 * any) is concerned: no waiter here, and not recalled nor promised to a named
 * next node, unless kept for this node's threads (sync.ts, lock-keep.ts). Every
 * write made under it until the layer claims it back is made on this node,
 * and the release that hands it on (SyncLayer.releaseToken) closes the
 * interval that holds them all: the lazy release of release consistency.
 */
export function delegateToken(ctx: EngineContext, token: TableToken | undefined, lockId: number, held: Map<number, { threadId: number }>, takeLimit = 0): void {
  const table = ctx.lockTokens;
  // A recalled token (or one promised to a next node) goes to the table only while kept for this
  // node's threads: a tick, or a take past its budget, brings it back to the layer, which hands it on.
  const goesOn = token !== undefined && (token.recalled || token.next !== undefined);
  if (table === null || token === undefined || token.delegated || (goesOn && token.keepUntilMs < 0) || token.waiters.length > 0) return;
  const holder = held.get(lockId)?.threadId ?? null;
  if (!table.tokenDelegate(lockId, holder, takeLimit)) return;
  token.delegated = true;
  held.delete(lockId);
}
