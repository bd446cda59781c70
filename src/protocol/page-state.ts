// hlrc: what one node keeps per page (its copy's versions, what it needs,
// validity, waiters, and at the home the diffs applied). Shared by the hlrc
// coherence (hlrc.ts) and home migration (migration.ts).

export interface PageState {
  /** What the local copy contains, per writer (the home: what it has applied). */
  version: number[];
  /**
   * What this node must see before using the page. The coherence's shared
   * frozen zero vector until an acquire first raises it (a page only this
   * node or its home writes never needs one: see newPageState).
   */
  need: number[];
  valid: boolean;
  fetching: boolean;
  /**
   * Installed by read-ahead and not touched yet: valid but kept at no access,
   * so the first touch faults locally (no message) and tells the read-ahead
   * the page was useful; an invalidation before that counts it wasted.
   */
  prefetched?: boolean;
  /**
   * At the home: per node, the writes of the other nodes in the copy of the page last sent to it (a fetch's
   * reply, a read-ahead page, a push): the sum of `version` but the node's own entry. A line's grant pushes the
   * page only when the home holds more (HlrcCoherence.pushForLine). Absent (0 each) until the page's first push
   * with a line: a home serving 1 GiB of pages keeps no array for each.
   */
  servedSum?: number[];
  /**
   * Fault slots and continuations waiting for the page to become valid;
   * `noWaiters` (shared, frozen) while there are none: most pages never have
   * one, and an array each costs 32 bytes a page (8 MiB for 1 GiB touched).
   */
  waiters: Array<() => void>;
  /** Diff entries this node sent for the page to its home (empty ones too). */
  sentDiffs: number;
  /**
   * At the home: diff entries applied per writer (a lent page's count travels
   * with it). The shared frozen zero vector until a diff is applied (a
   * writer's copy of another home's page never has one).
   */
  applied: number[];
  /**
   * A borrowed page's diff of this node's own writes made before the lend
   * arrived: applied once every diff this node sent the old home is in (they
   * come forwarded), so a writer's diffs apply in the order it wrote them.
   */
  ownPending: Uint8Array | null;
}

/** PageState.waiters of a page no one waits for: shared by every such page, so frozen (a push throws). */
export const noWaiters: Array<() => void> = Object.freeze([]) as unknown as Array<() => void>;

/**
 * A zero vector of nodeCount entries, frozen (a write throws), for `need` and
 * `applied` of the states that never get their own: one array each costs
 * ~64 bytes a page on 2 nodes, and a node writing 1 GiB of another home's
 * pages holds 262,144 states (issue 9: its memory bound).
 */
export function zeroVector(nodeCount: number): number[] {
  return Object.freeze(new Array<number>(nodeCount).fill(0)) as number[];
}

/** A fresh state: valid at version zero; `zeros` (zeroVector) is shared by need and applied until they are raised. */
export function newPageState(nodeCount: number, zeros: number[]): PageState {
  return {
    version: new Array<number>(nodeCount).fill(0), need: zeros,
    valid: true, fetching: false, waiters: noWaiters,
    sentDiffs: 0, applied: zeros, ownPending: null,
  };
}

/** Whether a copy with `version` holds everything `need` asks for. */
export function isCovered(version: number[], need: number[], nodeCount: number): boolean {
  for (let n = 0; n < nodeCount; n++) if ((version[n] ?? 0) < (need[n] ?? 0)) return false;
  return true;
}
