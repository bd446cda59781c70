// The coherence protocol of one node, as the rest of the engine sees it:
// page state, faults, fetches, flushes of dirty pages (releases), write
// notices applied (acquires, invalidations), homes and read-ahead. Two
// implementations: hlrc (src/protocol/hlrc.ts, home-based lazy release
// consistency, with home migration and read-ahead) and sc (src/protocol/sc.ts,
// sequential consistency, one writer or many readers per page). The
// synchronization layer (sync.ts, atomics.ts) and the interval log
// (intervals.ts) are the same for both; they call a coherence only through
// this interface.

import type { ProtocolMessage } from './messages.js';
import type { ProtocolName } from './types.js';

/**
 * Pages a lock grant carries to its acquirer (hlrc: migratory data), all four or none: each page's number, its
 * version, its bytes, and the count of the receiver's own diffs for it applied into those bytes at the home (the
 * receiver's sentDiffs it covers: a copy made before a diff it flushed early arrived there lacks that diff).
 */
export interface GrantPush { pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }

/** A lock's latest releases at its manager, newest last: the node and the interval it closed at the release. */
import type { PushPrediction } from './push-predict.js';

export type LockReleases = ReadonlyArray<{ node: number; index: number }>;

export interface Coherence {
  readonly protocol: ProtocolName;
  /** Sets the initial protections of every page. */
  start(): void;
  /** The node that is home (hlrc) or manager (sc) of a page, as this node knows it. */
  homeOf(page: number): number;
  /** hlrc: the node this node lent the page to as its static home, -1 if none (sc: always -1). */
  lentTo(page: number): number;
  /** hlrc: nodes this node lent pages to (a request for such a page may have gone on to them). */
  lendees(): Iterable<number>;

  /** An app thread faulted on a page: resume it (host.resume) once the access is allowed. */
  onFault(threadRef: number, page: number, isWrite: boolean): void;
  /** The signal handler served first touches of read-ahead copies (PageMemory.drainTouched). sc: nothing. */
  syncTouched(stream?: boolean): void;
  /** A message of the page protocol (hlrc: pageRequest, pageReply, diffs, homeLend; sc: sc*). */
  onMessage(from: number, message: ProtocolMessage): void;

  /**
   * A release: closes the open interval (diffs of dirty pages go to their
   * homes, a write notice is logged). The batch for `bundleTo` is held back in
   * the context to travel inside the sync message that follows. `pushTo`: the
   * node that message goes to carries barrier pushes for (pushForBarrier
   * follows): pages of ours it is subscribed to are left shared, not made
   * exclusive only to be shared again by the push. sc: nothing.
   */
  closeInterval(bundleTo?: number, pushTo?: number): void;
  /**
   * An acquire: applies write notices up to `target`, invalidating stale
   * copies. `pushed`: the pages of a push that arrived with it, which the
   * caller installs (installPushed) next in the same turn: hlrc keeps their
   * stale copies read-only for an install in place. sc: nothing.
   */
  acquire(target: number[], pushed?: readonly number[]): void;
  /** At a lock's manager: pages to push with a grant to `requester`, which had applied `requesterVc` (the pages `prediction` names, else the last release's). */
  pushFor(releases: LockReleases, requesterVc: number[], requester: number, prediction: PushPrediction | null): GrantPush;
  /** At the acquirer, after the grant's acquire: installs pushed pages that make an invalid copy valid. */
  installPushed(push: GrantPush): void;
  /**
   * At a line's directory, granting it to `toNode` (issue 12): a copy of the
   * line's page if this node is its home and `toNode` may not have applied its
   * latest writes (the taker would fault on its first op and fetch the page
   * while its line is pinned). sc: none.
   */
  pushForLine(page: number, toNode: number): GrantPush;
  /** Pages to push with a barrier message to `toNode` (hlrc: pages of this node's own it fetched and this node wrote since; `anyWriter`: or any other node but `toNode`). sc: none. */
  pushForBarrier(toNode: number, pageCountMax?: number, anyWriter?: boolean): GrantPush;
  /** After a barrier's departure was acquired (hlrc: home migration). */
  afterBarrier(): void;
  /**
   * After an acquire from another node through an atomic line (hlrc: a
   * home-migration window ends there while no barrier has departed at this
   * node: programs that synchronize with Atomics, docs/PROTOCOL.md "Windows
   * at atomic lines"). Pages for which `linePage` is true hold lines this
   * node directs and stay (a shipped op runs at the directory only while it
   * is the page's home). sc: nothing.
   */
  afterLineAcquire(linePage: (page: number) => boolean): void;

  /** Runs `then` when the page may be read and written here by the manager (an atomic at its home). */
  atomicAccess(page: number, then: () => void): void;
  /** An atomic store at the home (a one-run diff): hlrc makes it this node's write in an interval closed at once. */
  atomicStore(page: number, diff: Uint8Array): void;
  /**
   * Optional (hlrc): the manager wrote a page of its own in place (a shipped
   * op on a line, run through the manager view): the page joins the open
   * interval, as a write fault's would, and the next release names it.
   */
  noteHomeWrite?(page: number): void;

  /** Engine.dirtyPageCount and Engine.flushDirty. sc: 0. */
  dirtyPageCount(): number;
  flushDirty(pageCountMax: number): number;
  /** hlrc: Engine.refreshStale, and its timer (the engine's tick). sc: absent. */
  refreshStale?(): void;
  onTick?(nowMs: number): void;
  /** Engine.deferredPageCount and Engine.flushDeferred. sc: 0. */
  deferredPageCount(): number;
  flushDeferredCount(pageCountMax: number): number;
  tableSizes(): Record<string, number>;
}
