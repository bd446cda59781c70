// The engine's public types: what the runtime and the simulator hand in
// (options, host) and get back (the Engine interface, sync requests and
// results, counters). Its own file so that every part of the engine can
// import them without importing engine.ts (which imports the parts).

import type { PageMemory } from './memory.js';
import type { AtomicOp, ConsistencyInfo, DiffBatch, ProtocolMessage, ShippedOp } from './messages.js';

export const protocolNames = ['hlrc', 'sc'] as const;
export type ProtocolName = (typeof protocolNames)[number];
export const placementNames = ['roundRobin', 'block'] as const;
export type PlacementName = (typeof placementNames)[number];

export type SyncRequest =
  /** With `tryOnly`, a lock that is held or has waiters answers 'busy' at once instead of queueing. */
  | { kind: 'lock'; lockId: number; threadId: number; tryOnly?: boolean }
  | { kind: 'unlock'; lockId: number; threadId: number }
  | { kind: 'barrier'; barrierId: number; parties: number }
  /**
   * An Atomics operation on a global byte address. Operands and the result are
   * the raw little-endian unsigned bits as decimal strings. `timeoutMs` is for
   * wait only (-1: none). wait answers 'ok' | 'not-equal' | 'timed-out';
   * notify answers the count woken; the others answer the old value
   * (store answers the stored value).
   */
  | { kind: 'atomic'; op: AtomicOp; address: number; width: 1 | 2 | 4 | 8; operands: string[]; timeoutMs: number }
  /** Atomics by ownership (src/protocol/lines.ts): answered once this node holds the line. */
  | { kind: 'line'; line: number }
  /**
   * An Atomics read-modify-write, store or load on a line this node does not
   * hold (src/protocol/lines.ts): answered null once the node holds the line
   * (the thread runs the op natively), or the op's result (raw bits, as for
   * 'atomic') when the layer shipped it to the line's directory instead.
   */
  /** `workMs`: how long the thread ran since its last shipped op on this line returned (absent: unknown), for the ship or move choice. */
  | { kind: 'lineOp'; op: ShippedOp; address: number; width: 1 | 2 | 4 | 8; operands: string[]; workMs?: number }
  /** The thread found the value equal while its node held the line: wait at the directory ('ok' | 'timed-out'). */
  /** `parks`: an Atomics.wait (its thread sleeps until answered), not a waitAsync: the node may give the line back with it. */
  | { kind: 'lineWait'; address: number; timeoutMs: number; parks?: boolean }
  /**
   * Atomics.wait on a line this node does not hold (session 15): shipped to the
   * line's directory when the node ships its ops on the line, which checks the
   * value against `expected` (raw bits, as an op's operands) and answers
   * 'not-equal' or 'timed-out' (timeout 0) at once, else registers the waiter
   * there ('ok' | 'timed-out' later). Answered null when not shipped: the node
   * holds the line now, and the thread checks natively (then 'lineWait').
   */
  | { kind: 'lineWaitShip'; address: number; width: 4 | 8; expected: string; timeoutMs: number }
  /** Wakes up to `count` (-1: all) line waiters on `address`; answers the count woken. */
  /**
   * `afterOp`: the thread's last Atomics operation was the op on this line it
   * shipped just before (nothing since), so the layer may answer 0 if that op
   * found the line quiet (src/protocol/lines.ts, "Notifies that wake nobody").
   */
  | { kind: 'lineNotify'; address: number; count: number; afterOp?: boolean }
  | { kind: 'release' }
  | { kind: 'acquire' };

/**
 * lock answers null (held now) or 'busy' (a tryOnly lock that was not free);
 * barrier answers 'serial' in exactly one arriving thread per round, else null.
 */
export type SyncResult =
  | { ok: true; value: string | null }
  | { ok: false; code: 'DSM_ERR_NOT_OWNER' | 'DSM_ERR_BARRIER_PARTIES'; message: string };

/** What a fault resumes with. */
export type FaultResult = { ok: true; value: null };

export interface EngineHost {
  resume(threadRef: number, result: SyncResult | FaultResult): void;
  /**
   * Test hook (DSM_TEST_HOOK_ARRIVALS): an Atomics.wait on `address` joined a
   * waiter list (an atomics home's or a line directory's), where a notify
   * ordered after it finds it. Not when a wait merely left its node: a shipped
   * wait may be queued at the directory, or come back for a native check.
   */
  waitRegistered?(address: number): void;
}

export interface EngineOptions {
  nodeId: number;
  nodeCount: number;
  /** Pages of the global region. */
  pageCount: number;
  protocol?: string;
  placement?: PlacementName;
  memory: PageMemory;
  /**
   * hlrc: log size that starts a vcQuery round (default intervalLogReclaimCount).
   * The simulation sets it tiny so reclamation runs all the time.
   */
  logReclaimCount?: number;
  /**
   * hlrc: home migration (default true). At a barrier's departure the static
   * home of a page whose only writer since the last barrier was another node
   * lends the page to that node (docs/PROTOCOL.md, "Home migration").
   */
  migrateHomes?: boolean;
  /**
   * hlrc, tests only: the home's own writes of a window count as handed over
   * to a later writer even when that writer made its writes concurrently
   * (had not applied them): the lending rule before session 13, kept so that
   * tests can lend pages a thread of the home keeps writing (migration.ts).
   */
  lendConcurrentWrites?: boolean;
  /**
   * Barriers whose round had threads on the manager's node and one other only
   * go peer to peer (default true): each node sends its arrival to the other
   * and departs on its own (docs/PROTOCOL.md, "Barrier", two-node rounds).
   */
  peerBarriers?: boolean;
  /** hlrc: pages one fetch may bring (the faulting one included), 1..prefetchPageCountMax; default prefetchPageCountDefault (the runtime's: prefetchPageCountRuntime), 1 turns prefetch off. */
  prefetchPageCount?: number;
  /**
   * hlrc: count which read-ahead pages a thread touches (useful) and which it
   * never does (wasted). Read-ahead pages then stay at no access until their
   * first touch, which costs one local fault each (no message); off by default.
   */
  readAheadTracking?: boolean;
  /**
   * hlrc: streaming read-ahead (default on, needs readAheadTracking): a stream
   * whose windows are used fetches its next window when a thread first touches
   * the first page of its current one (src/protocol/readahead.ts).
   */
  readAheadStreaming?: boolean;
  /**
   * hlrc: the most pages this node keeps twinned (--twin-bytes / pageBytes);
   * past it the oldest dirty pages are flushed early. 0 or absent: no limit.
   */
  twinPageCountMax?: number;
  /**
   * hlrc on 2+ nodes, not in race mode: a fast write that continues a run of this node's own pages written
   * behind it also upgrades the next ones (PageMemory.setOwnWriteAhead, writeAheadPageCountMax; docs/PROTOCOL.md,
   * "Own pages written ahead"). Default on; DSM_OWN_WRITE_AHEAD=0 turns it off.
   */
  ownWriteAhead?: boolean;
  /**
   * hlrc: a close (release) with at least this many twinned pages sends its
   * write notices with the sync message at once and defers the pages' diffs:
   * Engine.flushDeferred sends them after (docs/PROTOCOL.md, "Deferred
   * diffs"). 0 or absent: every diff leaves with its release, as before.
   */
  deferDiffPageCountMin?: number;
  send: (toNode: number, message: ProtocolMessage) => void;
  host: EngineHost;
  /**
   * Monotonic milliseconds (performance.now() in the runtime, the simulated
   * clock in the simulation), read when a timed Atomics.wait arrives at its
   * home: its deadline counts from then, which is after the wait was called,
   * so no wait times out early. Without it the engine uses the last tick's
   * time, up to one tick old.
   */
  clock?: () => number;
  /**
   * hlrc, race detection (src/race/): every page homed at this one node.
   * `dsm run --race` gives it a node that runs no app thread, so every app
   * node twins every page it writes and each interval's diffs are its exact
   * writes (a home's own writes need no diff and would be invisible).
   */
  homeNode?: number;
  /**
   * hlrc, race detection: called when this node closes an interval, after its
   * dirty pages were flushed (PageMemory.flush made their diffs), with the
   * interval's vector timestamp (vc[nodeId] = index; the other entries are
   * what the node had acquired). With it set, an acquire from outside the
   * engine (acquireFrom) also closes the open interval first, so no interval
   * spans an acquire and its timestamp is exact for all of its writes.
   */
  onIntervalClosed?: (index: number, vc: readonly number[]) => void;
  /**
   * Atomics by ownership (issue 12.2, src/protocol/lines.ts): with this host
   * an hlrc engine of several nodes (not in race mode) serves line requests;
   * app threads then run Atomics natively on lines their node holds.
   */
  lines?: LineHost;
  /** With lines: whether a grant from the line page's home carries the page (default true; DSM_LINE_PUSH=0 to compare). */
  linePagePush?: boolean;
  /** With lines: writes per transfer time that make a wanted line worth keeping (default atomicLineHotWritesPerTransfer). */
  lineHotWritesPerTransfer?: number;
  /** With lines: whether a node ships ops on a line it gave up idle to its directory (default true; DSM_LINE_SHIP=0 to compare). */
  lineShipOps?: boolean;
  /** With lines: whether loads take read copies of a line, on any number of nodes at once (default true; DSM_LINE_SHARE=0 to compare). */
  lineShareLoads?: boolean;
  /** With lines: whether a load in a scan asks for copies of its page's next lines too (default true; DSM_LINE_SHARE_AHEAD=0 to compare). */
  lineShareAhead?: boolean;
  /** With lines: whether a notify that wakes nobody on a held line is answered in the app thread (default true; DSM_LINE_NOTIFY_IN_THREAD=0 to compare). */
  lineNotifyInThread?: boolean;
  /** With lines: shipped ops per sample before the node looks whether moving pays again (default atomicLineShipSampleOps). */
  lineShipSampleOps?: number;
  /** With lines: idle give-ups that keep a line moving after it was found used here while shipped, at most (default atomicLineShipBackoffMax; 0: none). */
  lineShipBackoffMax?: number;
  /** With lines: whether a node that ships its ops on a line ships its Atomics.waits on it too (default true; DSM_LINE_SHIP_WAITS=0 to compare). */
  lineShipWaits?: boolean;
  /** With lines: whether a notify from the line's holder gives the line back with it (default true; DSM_LINE_NOTIFY_RELEASE=0 to compare). */
  lineNotifyRelease?: boolean;
  /** With lines: whether an Atomics.wait that parks gives the line back with its lineWait (default true; DSM_LINE_WAIT_RELEASE=0 to compare). */
  lineWaitRelease?: boolean;
  /** With lines: whether a grant lists the line's waiters so that its holder counts its own notifies (default true; DSM_LINE_COUNTED_NOTIFY=0 to compare). */
  lineCountedNotify?: boolean;
  /**
   * Lock tokens at their node (issue 12.3, src/protocol/sync.ts): with this
   * host a mutex token that rests at this node is handed to the node's table,
   * where app threads take and give it back with no message and no request.
   */
  lockTokens?: LockTokenHost;
  /**
   * The keep window of a contended lock (src/protocol/lock-keep.ts): a node
   * whose threads still take a mutex keeps its token after another node asked,
   * up to an adaptive window since it arrived (default off; the runtime turns
   * it on, DSM_LOCK_KEEP=0 to compare). Needs onTick (and nextTickMs) to end windows.
   */
  lockKeep?: boolean;
  /**
   * Token pushes (src/protocol/sync.ts, session 23): a lock's manager sends a
   * free token ahead to the node predicted to take it next (default on, but
   * never in race mode; DSM_LOCK_PUSH=0 to compare).
   */
  lockPush?: boolean;
  /**
   * hlrc, 2+ nodes: after this many milliseconds with no acquire or release,
   * the node flushes its dirty pages home and drops its copies the homes find
   * out of date (src/protocol/stale.ts; doubling while nothing is found).
   * 0 or absent: only at refreshStale (the runtime passes staleRefreshDelayMs).
   */
  staleRefreshMs?: number;
}

export interface EngineCounters {
  readFaults: number;
  writeFaults: number;
  pageFetches: number;
  diffsSent: number;
  diffsApplied: number;
  intervalsClosed: number;
  invalidations: number;
  messagesSent: number;
  /** Mutex acquisitions served by a token resting at this node, with no message (issue 12). */
  lockTokenReuses?: number;
  /** Atomic lines: notifies that app threads answered 0 from a quiet word of a held line, with no call (session 36). */
  lineNotifiesInThread?: number;
  /** Atomic lines: exclusive and shared grants this node's directories made, and the recalls they made (to this node too) (src/protocol/lines.ts). */
  lineGrants?: number;
  lineShareGrants?: number;
  lineRecalls?: number;
  /** Takes of a contended lock's token kept at this node for its threads after another node asked (keep window). */
  lockKeepTakes?: number;
  /** Keeps of a recalled token that no thread of the node took (each made the asking node wait up to lockKeepIdleMs). */
  lockKeepIdle?: number;
  /** Tokens a lock manager sent ahead of any request (sync.ts, token pushes); those a thread of the node took; those that went back untaken. */
  lockPushes?: number;
  lockPushesTaken?: number;
  lockPushesUnused?: number;
  /** Pushed tokens that found a request of their node on its way to the manager, and served it (its grant then went back). */
  lockPushesCrossed?: number;
  /** Contended locks this node handed to the next holder directly, not through the manager (issue 12). */
  lockHandoffsDirect?: number;
  /** Barrier rounds whose arrivals did not follow the plan, so the manager sent barrierFlush (issue 12.3). */
  barrierFlushes?: number;
  /** Barrier rounds this node ended peer to peer, with no departure message (two-node rounds, session 13). */
  barrierPeerRounds?: number;
  /** hlrc: pages installed from a push (with a lockGrant, a barrier message or a line's message; each saved a fetch). */
  pagesPushed?: number;
  /** hlrc: pushed pages not installed (valid already, a fetch in flight, lacking diffs of this node's it no longer keeps, or short of its need). */
  pushesRefused?: number;
  /** hlrc: pushed copies that lacked this node's last diffs of the page (not at its home yet), completed with them (HlrcCoherence.keptDiffs). */
  pushesCompleted?: number;
  /** hlrc: pushed copies installed over a stale copy the acquire left read-only (invalidate's `keep`): no protection call. */
  pushesInPlace?: number;
  /** hlrc: pages installed by read-ahead (not faulted on when they arrived). */
  prefetchedPages?: number;
  /** hlrc: read-ahead pages a thread then touched (useful). */
  prefetchUsefulPages?: number;
  /** hlrc: read-ahead pages invalidated before any thread touched them (wasted; the others never touched are wasted too). */
  prefetchWastedPages?: number;
  /** hlrc: read-ahead pages installed readable, untracked (a saturated sequential stream's; neither useful nor wasted is known). */
  prefetchUntrackedPages?: number;
  /** hlrc: fetches streaming read-ahead issued ahead of a stream's threads (also in pageFetches). */
  prefetchAheadFetches?: number;
  /** hlrc: early flushes of the oldest dirty pages because the twin limit was reached (pages). */
  twinLimitFlushes?: number;
  /** hlrc: pages whose diff a close deferred (EngineOptions.deferDiffPageCountMin): sent after the sync message. */
  diffsDeferred?: number;
  /** hlrc: own pages upgraded ahead of a write stream while all zeros and still all zeros at the close: left out of the notice. */
  aheadUnchanged?: number;
  /** hlrc: pages this node lent as their static home to the node that alone wrote them (home migration). */
  pagesLent?: number;
  /** hlrc: of those, pages lent without their bytes (the borrower's copy was current). */
  pagesLentWithoutBytes?: number;
  /** hlrc: requests and diffs this node forwarded to the node it lent their page to. */
  lendForwards?: number;
  /** hlrc: pages of this node's own that went from exclusive (read-write, no write notice) to shared when a copy left. */
  exclusiveShared?: number;
  /** hlrc: looks for stale copies after a while with no synchronization (src/protocol/stale.ts). */
  staleLooks?: number;
  /** hlrc: clean copies such looks dropped because their home's copy differed (or the page was written since start). */
  staleDropped?: number;
}

/** Copies of pages pushed with a grant (the shape of Coherence's GrantPush, named here so that types.ts imports no coherence). */
export interface PagePush { pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }

export interface Engine {
  readonly nodeId: number;
  readonly protocol: ProtocolName;
  /** Sets initial protections; call once before any event. */
  start(): void;
  /** The node that is home to `page` now, as this node knows it (a lend moves it; sc: the page's manager). */
  homeOf(page: number): number;
  onFault(threadRef: number, page: number, isWrite: boolean): void;
  /**
   * The signal handler served first touches of read-ahead copies with no fault for the engine
   * (PageMemory.setTouchAhead): learn of them (`stream` false: issue no read-ahead window now, as before a report).
   */
  onTouched(stream?: boolean): void;
  /**
   * `thread`: a key of the requesting thread that stays the same across its
   * requests, absent when `threadRef` is that key. The simulation's threadRef
   * is its thread; the runtime's is one per request (src/runtime/engine-host.ts),
   * so it passes the thread's key here. Only the line layer uses it (a shipped
   * op's answer, remembered for the same thread's next request).
   */
  onSync(threadRef: number, request: SyncRequest, thread?: number): void;
  onMessage(fromNode: number, message: ProtocolMessage): void;
  onTick(nowMs: number): void;
  /** The earliest time onTick has work (atomic lines: a wanted line, a timed line wait), or null; absent: none beyond the regular ticks. */
  nextTickMs?(): number | null;
  /** At a line's directory (hlrc): a copy of the line's page to push with a grant to `toNode` (see Coherence.pushForLine). */
  pushForLine?(page: number, toNode: number): PagePush;
  /**
   * With a release to `toNode` through a line (after the release): pages of
   * this node's own that `toNode` fetched before and this node wrote since
   * (hlrc: the barrier pushes' subscriptions, Coherence.pushForBarrier), so
   * a boundary read in every round of an Atomics-made barrier costs no fetch.
   */
  pushSubscribed?(toNode: number, pageCountMax?: number): PagePush;
  /** At a line's taker, after the grant's acquire: installs its pushed page where it makes an invalid copy valid. */
  installPushed?(push: PagePush): void;
  /**
   * After an event in which this node acquired another node's release through
   * an atomic line (a grant, a shipped op or its answer, a notify or wake):
   * hlrc may end a home-migration window (Coherence.afterLineAcquire).
   * `linePage`: pages that hold lines this node directs (they stay).
   */
  afterLineAcquire?(linePage: (page: number) => boolean): void;
  /**
   * At a line's directory (hlrc, issue 12 session 9): runs a shipped Atomics op
   * on this node's own copy of its page, atomically against this node's app
   * threads' native ops on the same memory (the manager view maps the same
   * bytes), once that copy is current; a write joins the open interval, which
   * the caller's release then closes. `then` gets the result (raw bits) or
   * null when this node is not the page's home (lent away): the requester then
   * asks for the line instead. `mayRun`, if given, is asked right before the
   * op runs (after any wait for the page): false, and `then` gets false, the
   * op not run.
   */
  shippedAtomic?(address: number, width: 1 | 2 | 4 | 8, op: ShippedOp, operands: string[], then: (result: string | null | false) => void, mayRun?: () => boolean): void;
  /**
   * The thread behind `threadRef` is gone (its worker was terminated while
   * parked in a sync request): the engine never resumes it. An Atomics.wait
   * parked at a home is removed there, so a notify is not spent on it; a lock
   * granted to it later is released at once; other answers are dropped.
   * Returns whether a request of that thread was pending.
   */
  cancel(threadRef: number): boolean;
  /**
   * A release whose acquirer learns of it outside the engine (worker creation,
   * postMessage, worker exit on another node): closes this node's interval and
   * returns what to attach to the runtime's message for `toNode`.
   */
  releaseFor(toNode: number): ConsistencyInfo;
  /**
   * releaseFor, with the closed interval's diffs for pages homed at `toNode`
   * held back to travel inside the message that carries the info (a line
   * release to its directory): one message and one wake-up at the receiver
   * instead of two. The receiver hands them to onMessage as a 'diffs'
   * message before its acquireFrom. Absent: releaseFor, diffs sent apart.
   */
  releaseBundledFor?(toNode: number): { info: ConsistencyInfo; bundled?: DiffBatch };
  /**
   * The matching acquire on the receiving node, with the attached info.
   * `pushed`: the pages of a push that came with it, which the caller hands
   * to installPushed next, in the same turn (hlrc keeps their stale copies
   * read-only for an install in place: Coherence.acquire).
   */
  acquireFrom(fromNode: number, info: ConsistencyInfo, pushed?: readonly number[]): void;
  /**
   * Logs the intervals `info` carries, with no acquire: for a message whose
   * delivery (and so its acquireFrom) waits while later ones from the same
   * node go ahead (a worker's 'exit' held for its exit fence). A sender's
   * messages name only the intervals its earlier ones did not, so each must
   * be learned in the order it came; the acquire may come later.
   */
  learnFrom(fromNode: number, info: ConsistencyInfo): void;
  /**
   * `vc` is what `fromNode` had applied when it sent a message (the vc of a
   * release it built with releaseFor): a lower bound of its applied vc from
   * now on (Intervals.appliedBy: log reclamation, the pushes of subscribed
   * pages). For a layer whose messages do not pass through onMessage (lines.ts).
   */
  hearVc?(fromNode: number, vc: readonly number[]): void;
  /**
   * Pages written since the last release that still hold a twin (each costs
   * a page of memory and, at the release, up to a page of diff). sc: 0.
   */
  dirtyPageCount(): number;
  /**
   * Sends the diffs of up to `pageCountMax` dirty pages to their homes now,
   * ahead of the release that will close the interval (as before an
   * invalidation): the pages stay in the open interval, read-only without a
   * twin, and the release sends them as empty diffs. The runtime calls it to
   * spread a large release over a link's capacity. Returns the pages flushed.
   */
  flushDirty(pageCountMax: number): number;
  /**
   * hlrc, 2+ nodes: one look for stale copies now (src/protocol/stale.ts), as
   * after staleRefreshMs with no synchronization: dirty pages' diffs go home,
   * and copies their homes find out of date are dropped when the answers come.
   * Absent or no-op: sc, one node, race detection.
   */
  refreshStale?(): void;
  /**
   * Pages of closed intervals whose diffs were deferred
   * (EngineOptions.deferDiffPageCountMin) and not sent yet. Homes wait for
   * them, so whoever runs the engine must call flushDeferred until this is 0
   * (the runtime's flow control streams them in pieces). sc: 0.
   */
  deferredPageCount(): number;
  /** Makes and sends the deferred diffs of up to `pageCountMax` pages, oldest first. Returns the pages sent. */
  flushDeferred(pageCountMax: number): number;
  /** The node that is home (hlrc) or manager (sc) of a page. */
  homeOf(page: number): number;
  counters(): EngineCounters;
  /** Entries in the engine's tables, for bounded-memory checks. */
  tableSizes(): Record<string, number>;
  /**
   * Optional (session 35): notifies from other nodes this engine holds back (to run once a pin here clears), whose
   * wake-ups are still to be sent: a node answers an exit fence only once there are none (src/runtime/remote-workers.ts).
   */
  notifiesHeldBack?(): number;
}

/** What the node's runtime does for the line layer (the ownership table app threads read). */
export interface LineHost {
  /**
   * The node holds `line` now: app threads may run Atomics on it natively.
   * `quietMask` (session 36): bit k set when a notify on the line's Int32 word
   * k wakes nobody for this tenure unless a waiter here checks the value on
   * it first (its bit cleared then): such a notify is answered 0 by the app
   * thread itself (src/channel/atomic-lines.ts). None: the tenure goes on (a
   * revoke that found a thread inside an op), its mask too.
   */
  lineGranted(line: number, quietMask?: number): void;
  /**
   * Optional (session 36): clears `address`'s quiet bit of `line` (if the line has a slot here) before a waiter's
   * value check that the layer makes itself (a shipped wait at the directory), or a waiter's registration.
   */
  lineQuietClear?(line: number, address: number): void;
  /** Optional (session 36): a waiter counted in its check on `line` (held here) is registered now (its lineWait). */
  lineCheckDone?(line: number): void;
  /**
   * Optional (session 36): sets `bits` of `line`'s quiet mask within a tenure, when no waiter of this node is
   * between its check and its registration; false when one is (or the line has no slot), nothing set.
   */
  lineRequiet?(line: number, bits: number): boolean;
  /** Optional (session 36): how many notifies app threads answered from a quiet word so far (for the stats). */
  lineNotifiesInThread?(): number;
  /**
   * Stop app threads from starting Atomics on `line` and answer whether none
   * is inside one now. True: the line is revoked (no thread may use it until
   * the next lineGranted). False: a thread still uses it; no new one starts,
   * and the layer asks again later (never waits: that thread may itself wait
   * for a fault this node's manager must serve).
   */
  lineRevoke(line: number): boolean;
  /**
   * Session 34: the node has a read copy of `line` (it does not hold it):
   * app threads run Atomics.load on it natively, every other op asks.
   */
  lineShared(line: number): void;
  /**
   * Gives up a held `line` but keeps a read copy (lineRevoke's contract for
   * every op but loads, which go on natively). True: done. False: a thread
   * is inside an op on it; asked again later.
   */
  lineDowngrade(line: number): boolean;
  /**
   * Drops the read copy of `line` (shared, not held): no thread may load it
   * natively until the next lineShared or lineGranted. False: a thread is
   * inside a load on it; asked again later.
   */
  lineUnshare(line: number): boolean;
  /**
   * Optional (session 35): lineUnshare for many lines at once, with one process-wide barrier for all of them
   * (makeRoom's drops): answers the lines dropped; the others are as lineUnshare left them when it said false.
   */
  lineUnshareMany?(lines: readonly number[]): number[];
  /**
   * Optional (session 34): the table's free slots and its size. Past atomicLineRoomFraction full the layer gives
   * back lines and read copies unused since its last look (never: DSM_ERR_ATOMIC_LINES once the table is full).
   */
  lineRoom?(): { free: number; slots: number };
  /** How app threads used `line` since the last call (or since its grant); clears the mark. */
  lineUsed(line: number): LineUse;
  /**
   * Whether a thread of this node is inside an op on `line` now, such as a
   * waiter that checked the value and whose lineWait has not reached the
   * engine yet: a notify from this node waits until it has (see lineNotify).
   */
  linePinned(line: number): boolean;
  /**
   * Optional: have the next thread that ends an op on `line` tell the layer
   * (the runtime then runs onTick at once). lineRevoke sets the same watch
   * itself when it finds a pin. Without it the layer looks at its next tick.
   */
  lineWatch?(line: number): void;
}

/**
 * What the node's runtime does for the sync layer's lock tokens (the table app
 * threads lock and unlock in, src/channel/lock-tokens.ts). The layer delegates a
 * token that rests here, free or held by one thread, with no one else waiting
 * (no recall, no local waiter); it takes it back before it acts on the lock again.
 */
export interface LockTokenHost {
  /**
   * The token of `lockId` rests here: app threads take and give it back in
   * the table from now on. `holder`: the thread (engine thread id) that holds
   * it now, or null. False: the table has no room; the layer keeps the token.
   * `takeLimit` (0: none): after that many takes in the table threads ask the
   * layer again (a token kept for this node's threads after a recall).
   */
  tokenDelegate(lockId: number, holder: number | null, takeLimit?: number): boolean;
  /**
   * Takes a delegated token back: from now on app threads ask the layer. Says
   * who held it at that instant (null: nobody) and how many times threads took
   * it in the table since it was delegated.
   */
  tokenReclaim(lockId: number): { holder: number | null; uses: number };
  /** The token left this node (it was not delegated since it was taken back). */
  tokenGone(lockId: number): void;
}

/**
 * 0: not used; 1: only read (loads, waits, failed compareExchange); n >= 2:
 * written, n - 1 times (a count app threads keep without locked
 * instructions: approximate when several threads of the node write at once).
 */
export type LineUse = number;
