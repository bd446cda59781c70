// Atomics by ownership (issue 12.2): synchronization lines, MSI-style: held
// by one node for every op (M), or read copies on any number of nodes for
// Atomics.load (S, session 34: see "Read copies" below), or neither.
// Over 600 lines: one state machine per line, seen from the holder, the
// directory and a node that ships its ops; waits, notifies and shipped ops
// all turn on the same per-line states, which a split would share across files.
//
// A line is `atomicLineBytes` bytes of the global region. While a node holds
// a line, its app threads run every Atomics operation on it natively on
// their own mapping, with no message: the bytes are ordinary page bytes kept
// coherent by the page protocol (a native Atomics op on a protected page
// faults like a plain access). The line's directory is the static
// (placement) home of its page, the node that also manages sync ids there.
// Every transfer goes through the directory:
//
//   lineRequest  requester -> directory
//   lineRecall   directory -> holder        (another node wants it)
//   lineRelease  holder -> directory        (a release: the holder's write notices, with its diffs for
//                                           pages homed at the directory: one message, one wake-up)
//   lineGrant    directory -> requester     (an acquire: the notices travel on; under hlrc
//                                           with the line's page when the directory is its home
//                                           and the taker may lack a write of it: no fetch while pinned)
//
// Shipped ops (session 9). A line that is contended but used at a low rate
// (a work counter taken once per row) should not move: each move costs the
// taker the holder's window and a recall, release and grant. A node that gave
// a line up idle ships its next ops on it instead:
//
//   lineOp       requester -> directory     (a release, bundled as lineRelease's, and the op)
//   lineOpDone   directory -> requester     (the result and the directory's release: an acquire)
//   lineWaitShip requester -> directory     (a release as lineOp's, and an Atomics.wait: session 15;
//                                           checked there and registered as a lineWait's, or
//                                           answered at once with lineWake 'not-equal')
//
// The directory runs a shipped op while its own node holds the line (taking
// it back through its own queue first if another node holds it), natively on
// its own copy of the page through the manager view: atomic against its own
// threads' native ops on the same bytes. One round trip for the requester;
// the directory's threads never wait. The requester moves again (asks for the
// line) when a sample of its shipped ops shows the line hot by the rule that
// keeps a held line for its window (ops per transfer time over the time its
// threads ran between them: a tight loop on the line, where batching by
// moving pays), when the directory is not the page's home (lent away), and
// for Atomics.waitAsync (whose check runs with the line held here; an
// Atomics.wait ships like an op). A line found used here while shipped (hot,
// or waited on asynchronously) keeps moving for the node's next idle
// give-ups (a doubling backoff, see stopShipping).
//
// Handing a line over is a release by the giver and an acquire by the taker,
// as a lock grant is; threads of one node share a held line with no protocol.
// A node keeps a wanted line for a hold window (Mirage's time window) that
// adapts to use: a line still in use at the end of its window gets a longer
// one next time, a line idle while wanted goes at once and its window halves.
// So contention between nodes turns into batches.
//
// Atomics.wait and notify: the waiting thread checks the value natively while
// its node holds the line (and its pin keeps the line there), then registers
// at the directory with lineWait, sent before any later lineRelease of that
// node on the same FIFO link. A store that a notifier makes after that needs
// the line, which the directory grants only after that release, so the
// notifier's lineNotify finds the waiter registered. A waiter on the
// directory's own node is registered inline, before its node can give the line up.
//
// Notifies that wake nobody. A notify from a node that is not the line's
// directory is a round trip to the directory, which alone knows the waiters;
// a producer that notifies after every push pays one per item. Two cases
// answer 0 at once, with no message (a notify that wakes nobody synchronizes
// with nobody, so it needs no release either):
// - The node holds the line, and its grant said no waiter was registered on
//   the line (`quiet`), and none of this node's threads has registered one
//   since or is between its check and its registration (pinned). While the
//   node holds the line no other node can register a waiter (a waiter
//   checks the value with the line held at its node, and its lineWait
//   precedes its node's release), so 0 is the true count when the notify is
//   handled: a linearization point inside the call.
// - The thread's last Atomics op was the op on the line it shipped just
//   before, and the directory found the line quiet when that op ran (the
//   thread says so: `afterOp`). The notify is ordered right after that op:
//   a waiter registered since checked the value after the op, and nothing
//   the thread did in between (no Atomics op, no sync) orders the wait
//   before the notify, so an order in which the notify came first, waking
//   nobody, is one a single machine could produce (sequential consistency).
//   The directory works `quiet` out for an op only once some other node has
//   notified on the line (its pin check is a membarrier): before that, a
//   notify after a shipped op makes its round trip, and from then on it may not.
//   Session 20: `quiet` is worked out for the op's address, not its whole line
//   (the argument above is about waiters on the notified address: a waiter on
//   another address of the line is no waiter of this notify), and the notify
//   skips its round trip only when it is on that address. A ring buffer keeps
//   its lock and its "not empty"/"not full" words on one line: with consumers
//   parked on one word, an unlock's notify on the lock word paid a round trip
//   that found nobody.
//
// Session 17 (docs/PROTOCOL.md "Giving a line back with a wait or a notify",
// "Counted notifies"): an Atomics.wait that parks gives the line back with its
// lineWait when its thread is the line's one user here, a notify gives it back
// with the lineNotify when the line has several users here, and a grant lists the
// line's waiters (at most atomicLineGrantWaitingAddressesMax) so that the
// holder answers its notifies itself: the directory keeps those waiters (holds
// other nodes' notifies and timeouts) until the line is back.
//
// Read copies (session 34, docs/PROTOCOL.md "Read copies of a line"): a load
// on a line neither held nor copied here asks for a copy (lineShareRequest),
// granted as an acquire (lineShareGrant) while nobody holds the line; a writer
// waits at the directory until every other copy is dropped (lineInvalidate,
// lineInvalidated), and a holder recalled for a copy keeps one (lineRecall
// `share`, lineRelease `keepShare`). A per-line score keeps load-then-write
// lines taking the line for their loads (NodeLine.shareScore).
//
// This layer wraps a protocol engine (hlrc) and uses only its public
// releaseFor/acquireFrom for the consistency actions; it does no I/O and
// reads no clock (time comes from onTick and the engine options' clock).

import { DsmError, assert } from '../errors.js';
import {
  atomicLineBytes, atomicLineHotWritesPerTransfer, atomicLineHoldMsBase, atomicLineHoldMsInitial, atomicLineHoldMsMax, atomicLineHoldMsMin, atomicLineHoldTransferFactor,
  atomicLineQuietThreadCountMax, atomicLineShipBackoffMax, atomicLineShipBurstGapMs, atomicLineShipBurstOps, atomicLineShipInFlightMax, atomicLineShipSampleOps, atomicLineShippedCountMax, atomicLineStateCountMax,
  atomicLinePageGroupLines, atomicLinePagePullHistory, atomicLinePagePullLinesMax, atomicLinePagePullSlack, atomicLinePagePullUsesMin, atomicLinePageUseCountMax, atomicLineShippedWaitCountMax, atomicLineWaiterCountMax, grantPagePushCountMax, pageBytes,
  atomicLineGrantWaitingAddressesMax, atomicLineHeldNotifyCountMax, atomicLinePageColdWritesMax, atomicLineFirstTenureColdWritesMax, atomicLineShareScoreMax, atomicLineRoomFraction,
  atomicLineShareAheadLinesMax, atomicLineDropBatchLinesMax,
} from '../constants.js';
import type { Engine, EngineCounters, FaultResult, LineHost, LineUse, PagePush, PlacementName, SyncRequest, SyncResult } from './types.js';
import type { ConsistencyInfo, DiffBatch, ProtocolMessage } from './messages.js';
import { blockHomeOf } from './placement.js';

export type { LineHost, LineUse };

/** A grant's line page and subscribed pages in one push (a page in both goes once: both copies were read in this turn). */
function joinPushes(a: PagePush, b: PagePush): PagePush {
  if ((a.pushPages?.length ?? 0) === 0) return b;
  if ((b.pushPages?.length ?? 0) === 0) return a;
  const joined = { pushPages: [...a.pushPages!], pushVersions: [...a.pushVersions!], pushBytes: [...a.pushBytes!], pushApplied: [...a.pushApplied!] };
  b.pushPages!.forEach((page, k) => {
    if (joined.pushPages.includes(page)) return;
    joined.pushPages.push(page);
    joined.pushVersions.push(b.pushVersions![k]!);
    joined.pushBytes.push(b.pushBytes![k]!);
    joined.pushApplied.push(b.pushApplied![k]!);
  });
  assert(joined.pushPages.length <= grantPagePushCountMax, 'a joined push within the limit');
  return joined;
}

export type LineMessage = Extract<ProtocolMessage, { type: `line${string}` }>;

type NodeLine = {
  state: 'none' | 'requested' | 'held' | 'revoking';
  /** Threads waiting for the line here. */
  waiters: number[];
  grantedAtMs: number;
  /** Another node wants the line: since when (-1: nobody). */
  wantedAtMs: number;
  holdMs: number;
  /** Whether a thread used the line since the grant. */
  usedOnce: boolean;
  /**
   * The app threads' use of the line (LineUse) since its grant, and the part
   * of it taken from the table outside a hold-window look (coldHeldLinesOfPage),
   * which the next look still counts.
   */
  tenureUse: LineUse;
  usedCarry: LineUse;
  /** When the layer last read the line's use (lineUsed), or its grant. */
  lookedAtMs: number;
  /** When this node last asked for the line, and how long its last transfer took (request to grant), ms. */
  requestedAtMs: number;
  transferMs: number;
  /** This node ships its ops on the line to the directory instead of asking for it (it gave the line up idle). */
  ship: boolean;
  /** Grants of the line to this node (a first tenure taken back cold is given up as an idle one). */
  tenures: number;
  /** This node asked for the line at least once (a line never asked for whose page's other line is shipped here ships its first op: shipsFirstOp). */
  asked: boolean;
  /** Asked for with its page's lines (requestPageLines), with no thread waiting: whether a thread used it is counted at its give-up. */
  pulled: boolean;
  /** The current sample of shipped ops: how many answered, the time their threads waited, since when (ms). */
  shipOps: number;
  shipWaitMs: number;
  shipSinceMs: number;
  /** Of the sample's ops, those whose thread said how long it ran since its previous shipped op on the line, and the sum. */
  shipWorkOps: number;
  shipWorkMs: number;
  /** Shipped ops in a row that their thread issued right after its previous one on the line returned (a burst). */
  shipBurstOps: number;
  /** At the directory's node: shipped ops run on the line since the layer last looked (counted as writes). */
  shippedUses: number;
  /** The line's grant found no waiter registered on it (valid while held; see "Notifies that wake nobody"). */
  quiet: boolean;
  /**
   * Ship backoff: idle give-ups left that keep the line moving, and the
   * count the next hot sample sets (doubling up to atomicLineShipBackoffMax;
   * 0 after a sample that was not hot). See onOpDone.
   */
  shipSkips: number;
  shipBackoff: number;
  /** Waits of this node's threads registered (or on their way) at the directory and not answered yet. */
  waitsOut: number;
  /** The line went back with a wait or a notify (releaseWith), unasked, since its last grant: a recall may cross it. */
  releasedUnasked: boolean;
  /**
   * While held: the waiters registered at the directory on the line, by address, when the grant listed them
   * (`waiting`), with this node's waits since and less its counted notifies; null: not counted (see "Counted notifies").
   */
  counts: Map<number, number> | null;
  /** This node's threads (their keys) seen asking for or waiting or notifying on the line, the first two only: whether it has one user here or several. */
  threadsSeen: number[];
  /**
   * A read copy of the line (session 34, "Read copies of a line"): none, asked for, here (loads run natively),
   * or dropping (a writer waits for it: dropped once a thread used it, or its minimum window passed, and no
   * thread is inside a load on it). Never held together with the line itself (a grant takes its place).
   * `ahead` (session 35): asked for with another line's copy (aheadOf), not answered yet; loads wait for the answer.
   */
  share: 'none' | 'requested' | 'ahead' | 'held' | 'dropping';
  /** Threads waiting for the read copy (their loads run again once it is here). */
  shareWaiters: number[];
  shareGrantedAtMs: number;
  /** A thread loaded from the read copy since it came (or it was kept from the line's own tenure). */
  shareUsed: boolean;
  /**
   * Whether loads here ask for a read copy (>= 0) or for the line (< 0): an upgrade (an op that writes or a
   * wait, made while a read copy was here) counts -2; a read copy used and then dropped for a writer, the
   * line recalled from here for another node's read copy (this node keeps one), and a tenure of the line here
   * with no write each count +1; within ±atomicLineShareScoreMax.
   */
  shareScore: number;
  /** The recall this tenure answers is for a read copy: the line goes back and this node keeps one (lineRelease `keepShare`). */
  recallShare: boolean;
  /** The read copy was dropped unasked (to make room): a lineInvalidate that crossed the drop is answered already. */
  shareDroppedUnasked: boolean;
  /** The read copy came ahead (no thread here asked for it): dropped for a writer without waiting for its first use. */
  shareAhead: boolean;
  /** A copy taken ahead was dropped for a writer before any use: not asked for ahead again until a load here takes one. */
  aheadWasted: boolean;
};

type ShippedOpMessage = Extract<ProtocolMessage, { type: 'lineOp' }>;
type ShippedWaitMessage = Extract<ProtocolMessage, { type: 'lineWaitShip' }>;

/**
 * `shipped`: ops shipped here that wait for this node to hold the line again.
 * `shippedEver`: a shipped op ran on the line (a remote notify then waits for
 * this node's pinned waiters, see onNotify).
 */
/**
 * `notifiedFromAfar`: another node has sent a lineNotify on the line. Until it has, a shipped op's answer
 * does not work out `quiet` (which only lets the requester's next notify skip its round trip): that check
 * runs a process-wide membarrier, 40–75 µs of the op's round trip, in programs that never notify.
 */
/**
 * `listedTo`: the node the line was granted to with its waiters listed (`waiting`), which counts its own notifies
 * until it gives the line back (-1: none); meanwhile its waiters leave only through that node's notifies:
 * notifies from other nodes wait in `heldNotifies` and timeouts wait, both until the line is back (a recall).
 */
/**
 * `queue`: nodes waiting for the line (`read` false) or for a read copy (true), in arrival order; at most one
 * of each kind a node. `sharers`: the nodes with a read copy (while `owner` is -1 only), `invalidating` those
 * asked to drop theirs for the writer at the queue's head.
 */
type DirectoryLine = {
  owner: number; queue: Array<{ node: number; read: boolean }>; sharers: number[]; invalidating: number[]; recalling: boolean; shipped: Array<{ from: number; message: ShippedOpMessage | ShippedWaitMessage }>; shippedEver: boolean; notifiedFromAfar: boolean;
  listedTo: number; heldNotifies: Array<{ from: number; message: Extract<LineMessage, { type: 'lineNotify' }> }>;
};

type LineWaiter = { node: number; requestId: number; address: number; deadlineMs: number };

/** `thread`: the requesting thread's key (Engine.onSync), for what its next request may use (quietAfterOp). */
/** `shipped`: a wait shipped to the directory (lineWaitShip), counted in shippedWaitsOut. */
/** `address`: a wait's (for counted notifies: this node's own waiters among a grant's list), or a shipped op's (its `quiet` answer is for that address). */
/** A thread's request out at a directory. */
type Pending = { threadRef: number; thread: number; kind: 'wait' | 'notify' | 'op'; canceled: boolean; line: number; sentAtMs: number; shipped?: boolean; address?: number };

export interface LineLayerOptions {
  nodeId: number;
  nodeCount: number;
  pageCount: number;
  placement?: PlacementName;
  send: (toNode: number, message: ProtocolMessage) => void;
  resume: (threadRef: number, result: SyncResult | FaultResult) => void;
  host: LineHost;
  /** Test hook: a wait joined the directory's waiter list (EngineHost.waitRegistered). */
  waitRegistered?: (address: number) => void;
  clock?: () => number;
  /** Writes per transfer time that make a wanted line worth keeping for its window (a simulation's ops are slow against its messages). */
  hotWritesPerTransfer?: number;
  /** Whether a grant from the directory that is the line page's home carries the page (default true). */
  pagePush?: boolean;
  /** Whether a node ships ops on a line it gave up idle (default true; false: lines only move). */
  shipOps?: boolean;
  /** Shipped ops per sample: at its end the node looks whether moving the line would pay again (default atomicLineShipSampleOps). */
  shipSampleOps?: number;
  /** Idle give-ups that keep a line moving after it was found used here while shipped, at most (default atomicLineShipBackoffMax; 0: none). */
  shipBackoffMax?: number;
  /** Whether a node that ships its ops on a line ships its Atomics.waits on it too (default true; false: a wait takes the line here). */
  shipWaits?: boolean;
  /** Whether a notify from the line's holder gives the line back with it (default true; see "Giving a line back with a wait or a notify"). */
  notifyRelease?: boolean;
  /** Whether an Atomics.wait that parks gives its line back with its lineWait (default true). */
  waitRelease?: boolean;
  /** Whether a grant lists the line's waiters, so that its holder counts its own notifies (default true). */
  countedNotify?: boolean;
  /** Whether loads take read copies of a line, on any number of nodes at once (default true; false: loads take the line or ship). */
  shareLoads?: boolean;
  /** Whether a load in a scan asks for copies of its page's next lines with its own (default true; see aheadOf). */
  shareAhead?: boolean;
  /** Whether a grant hands app threads a quiet mask, so that a notify that wakes nobody is answered in the thread (default true; see quietMaskOf). */
  notifyInThread?: boolean;
}

/** A mask of the Int32 words of `line` whose addresses `waiting` does not name (a quiet mask: LineHost.lineGranted). */
function wordsWithout(line: number, waiting: ReadonlyMap<number, unknown>): number {
  const first = line * atomicLineBytes;
  let mask = 0;
  for (let k = 0; k < atomicLineBytes / 4; k++) if (!waiting.has(first + 4 * k)) mask |= 1 << k;
  return mask;
}

/** Line states in which this node holds the line (for a page's other lines: see holdsLineOnPageOf). */
const heldStates: ReadonlySet<NodeLine['state']> = new Set(['held', 'revoking']);
const requestedStates: ReadonlySet<NodeLine['state']> = new Set(['requested']);

/** Two LineUse marks of one line in one (writes add up; a read alone is 1). */
function joinUse(a: LineUse, b: LineUse): LineUse {
  return a >= 2 && b >= 2 ? a + b - 1 : Math.max(a, b);
}

export function lineOf(address: number): number {
  return Math.floor(address / atomicLineBytes);
}

export function isLineMessage(message: ProtocolMessage): message is LineMessage {
  return message.type.startsWith('line');
}

/** An engine with atomic lines: every Engine call goes to the inner engine except the line requests and messages. */
export class LineEngine implements Engine {
  readonly nodeId: number;
  readonly protocol;
  private readonly inner: Engine;
  /** An acquire through a line from another node happened in the event being handled (see endLineWindow). */
  private acquiredByLine = false;
  /** Pages with a line this node directs (their directory entries stay for the run, as do these). */
  private readonly directoryPages = new Set<number>();
  private readonly directsLineOn = (page: number): boolean => this.directoryPages.has(page);
  private readonly nodeCount: number;
  private readonly pageCount: number;
  private readonly placement: PlacementName;
  private readonly send: (toNode: number, message: ProtocolMessage) => void;
  private readonly resume: (threadRef: number, result: SyncResult | FaultResult) => void;
  private readonly host: LineHost;
  private readonly waitRegistered: ((address: number) => void) | null;
  private readonly clock: (() => number) | null;
  private readonly hotWritesPerTransfer: number;
  private readonly pagePush: boolean;
  private readonly shipOps: boolean;
  private readonly shipSampleOps: number;
  /** Shipped ops in a burst after which the line moves instead (atomicLineShipBurstOps, or the sample size given). */
  private readonly shipBurstOpsMin: number;
  private readonly shipBackoffMax: number;
  private readonly shipWaits: boolean;
  private readonly notifyRelease: boolean;
  private readonly notifyInThread: boolean;
  private readonly waitRelease: boolean;
  private readonly countedNotify: boolean;
  private readonly shareLoads: boolean;
  private readonly shareAhead: boolean;
  /** Requests for lines and read copies out (their grants will each take a slot of the table: see roomLeft). */
  private requestsOut = 0;
  /** Requests that skip makeRoom's look after one that freed less than its batch. */
  private roomLooksSkipped = 0;
  /** Lines whose read copy is dropping (see NodeLine.share), looked at again at every tick. */
  private readonly unsharing = new Set<number>();
  /** Per read copy request out with lines asked for ahead (aheadOf): those lines, answered with its first answer. */
  private readonly aheadAsked = new Map<number, number[]>();
  /** At a directory, while it handles a read copy request with lines ahead: the ahead lines granted, for the request's grant to carry (grantShare). */
  private aheadGranted: { to: number; line: number; lines: number[] } | null = null;
  /** Notifies held back at this directory (all lines' heldNotifies), against atomicLineHeldNotifyCountMax. */
  private heldNotifyCount = 0;
  private nowMs = 0;
  /** This node's view of lines (held, requested, or remembered for their hold window). */
  private readonly lines = new Map<number, NodeLine>();
  /**
   * Lines of each page this node's threads asked for (a page's lines used
   * together, as a histogram's buckets): at most atomicLinePageUseCountMax
   * pages, forgotten all at once past it.
   */
  private readonly pageLinesAsked = new Map<number, Set<number>>();
  /** Per page, the lines pulled with it (requestPageLines) and given back since, and the ops threads here ran on them (notePull); bounded as pageLinesAsked. */
  private readonly pagePulls = new Map<number, { pulls: number; uses: number }>();
  /** Held lines another node wants (checked at every tick). */
  private readonly wanted = new Set<number>();
  /** Directory state of lines homed here. */
  private readonly directory = new Map<number, DirectoryLine>();
  /**
   * The waiters registered at this node's directories, indexed so that no step scans them all (a program may keep
   * tens of thousands, pending Atomics.waitAsync: users12 promise-table.mjs): in registration order per address
   * (a notify wakes the oldest first), by request (a cancel), and those with a deadline (the tick's timeouts).
   */
  private readonly waiters = new Set<LineWaiter>();
  /** Per address, its waiters oldest first (an address absent: none): also what the quiet masks and a shipped op's `quiet` read. */
  private readonly waitersAt = new Map<number, LineWaiter[]>();
  private readonly waiterByRequest = new Map<string, LineWaiter>();
  private readonly timedWaiters = new Set<LineWaiter>();
  /** Per line, its waiters in `waiters` (a line absent: none), so a grant or a shipped op asks without a scan. */
  private readonly waiterCounts = new Map<number, number>();
  /** Per line directed here, its shipped waits between their check's start and its end (requiet waits for none). */
  private readonly shippedChecks = new Map<number, number>();
  private readonly pending = new Map<number, Pending>();
  /** Notifies waiting for this node's pinned waiters of their line to register (retried at every tick). */
  private deferredNotifies: Array<{ threadRef: number; thread: number; request: Extract<SyncRequest, { kind: 'lineNotify' }> }> = [];
  /** Remote notifies at this directory waiting for this node's pinned waiters of a line with shipped ops (retried at every tick). */
  private deferredRemoteNotifies: Array<{ from: number; message: Extract<LineMessage, { type: 'lineNotify' }> }> = [];
  /** Shipped ops queued at this directory (all lines), against atomicLineShippedCountMax. */
  private shippedQueued = 0;
  /** Shipped ops of this node in flight, against atomicLineShipInFlightMax. */
  private shipInFlight = 0;
  /** Shipped waits of this node not answered yet (in flight or registered), against atomicLineShippedWaitCountMax. */
  private shippedWaitsOut = 0;
  /**
   * At this directory: shipped waits received and neither registered nor
   * answered yet (queued for the line, or waiting for the page's diffs), by
   * `${from}:${requestId}`, true once canceled (a lineWaitCancel that
   * overtook the wait's check: it is then answered 'canceled', never
   * registered). Within atomicLineShippedWaitCountMax.
   */
  private readonly shippedWaitsRunning = new Map<string, boolean>();
  private nextRequestId = 1;
  private readonly stats = { lineGrants: 0, lineReleases: 0, lineRecalls: 0, lineWaits: 0, lineNotifies: 0, lineNotifiesQuiet: 0, lineOpsShipped: 0, lineOpsRun: 0, lineWaitsShipped: 0, lineShipSwitches: 0, lineMoveSwitches: 0, lineReleasesWithNotify: 0, lineReleasesWithWait: 0, lineNotifiesCounted: 0, lineColdPageReleases: 0, lineFirstOpsShipped: 0, linePagePullsSkipped: 0, lineShareGrants: 0, lineShareInvalidations: 0, lineShareDowngrades: 0, lineShareUpgrades: 0, lineEvictions: 0, lineShareAheadAsked: 0, lineShareAheadGrants: 0, lineShareAheadUnused: 0, lineNotifiesHeldForHolder: 0 };
  /**
   * Per thread (its key, Engine.onSync's `thread`: not the request's ref,
   * which in the runtime is new for every request): the address of its last shipped
   * op, found quiet at the directory (answered, nothing of the thread's since
   * in this layer). At most one entry per thread with a shipped op answered;
   * dropped at its next request. A thread that ends right after such an op
   * leaves its entry: the map is cleared past atomicLineQuietThreadCountMax
   * (a lost entry costs one notify its round trip, nothing else).
   */
  private readonly quietAfterOp = new Map<number, number>();

  constructor(inner: Engine, options: LineLayerOptions) {
    assert(options.nodeCount > 1, 'lines are for a cluster of several nodes');
    this.inner = inner;
    this.nodeId = options.nodeId;
    this.protocol = inner.protocol;
    this.nodeCount = options.nodeCount;
    this.pageCount = options.pageCount;
    this.placement = options.placement ?? 'roundRobin';
    this.send = options.send;
    this.resume = options.resume;
    this.host = options.host;
    this.waitRegistered = options.waitRegistered ?? null;
    this.clock = options.clock ?? null;
    this.hotWritesPerTransfer = options.hotWritesPerTransfer ?? atomicLineHotWritesPerTransfer;
    this.pagePush = options.pagePush ?? true;
    this.shipOps = (options.shipOps ?? true) && inner.shippedAtomic !== undefined;
    this.shipSampleOps = options.shipSampleOps ?? atomicLineShipSampleOps;
    // A sample size given (DSM_LINE_SHIP_SAMPLE_OPS) keeps a node shipping that long, bursts included.
    this.shipBurstOpsMin = options.shipSampleOps === undefined ? atomicLineShipBurstOps : Math.max(atomicLineShipBurstOps, options.shipSampleOps);
    this.shipBackoffMax = options.shipBackoffMax ?? atomicLineShipBackoffMax;
    this.shipWaits = (options.shipWaits ?? true) && this.shipOps;
    this.notifyRelease = options.notifyRelease ?? true;
    this.waitRelease = options.waitRelease ?? true;
    this.countedNotify = options.countedNotify ?? true;
    this.shareLoads = options.shareLoads ?? true;
    this.shareAhead = options.shareAhead ?? true;
    this.notifyInThread = options.notifyInThread ?? true;
  }

  // ------------------------------------------------------------ delegation

  start(): void { this.inner.start(); }
  onFault(threadRef: number, page: number, isWrite: boolean): void { this.inner.onFault(threadRef, page, isWrite); }
  onTouched(stream = true): void { this.inner.onTouched(stream); }
  releaseFor(toNode: number): ConsistencyInfo { return this.inner.releaseFor(toNode); }
  acquireFrom(fromNode: number, info: ConsistencyInfo): void { this.inner.acquireFrom(fromNode, info); }
  learnFrom(fromNode: number, info: ConsistencyInfo): void { this.inner.learnFrom(fromNode, info); }
  dirtyPageCount(): number { return this.inner.dirtyPageCount(); }
  flushDirty(pageCountMax: number): number { return this.inner.flushDirty(pageCountMax); }
  refreshStale(): void { this.inner.refreshStale?.(); }
  deferredPageCount(): number { return this.inner.deferredPageCount(); }
  flushDeferred(pageCountMax: number): number { return this.inner.flushDeferred(pageCountMax); }
  homeOf(page: number): number { return this.inner.homeOf(page); }
  counters(): EngineCounters { return { ...this.inner.counters(), ...this.stats, lineNotifiesInThread: this.host.lineNotifiesInThread?.() ?? 0 }; }
  notifiesHeldBack(): number {
    return this.deferredRemoteNotifies.length;
  }

  tableSizes(): Record<string, number> {
    return {
      ...this.inner.tableSizes(), lines: this.lines.size, lineDirectory: this.directory.size,
      lineWaiters: this.waiters.size, linePending: this.pending.size + this.deferredNotifies.length + this.deferredRemoteNotifies.length,
      lineShippedQueued: this.shippedQueued, lineShippedWaits: this.shippedWaitsOut + this.shippedWaitsRunning.size, lineSharesAhead: this.aheadAsked.size,
    };
  }

  private pageOf(line: number): number {
    return Math.floor((line * atomicLineBytes) / pageBytes);
  }

  /** The directory of a line: the static (placement) home of its page, which never moves. */
  directoryOf(line: number): number {
    const page = this.pageOf(line);
    assert(page >= 0 && page < this.pageCount, 'line within the region');
    if (this.placement === 'block') return blockHomeOf(page, this.pageCount, this.nodeCount);
    return page % this.nodeCount;
  }

  /** Whether this node holds `line` (for tests and assertions). */
  holds(line: number): boolean {
    return this.lines.get(line)?.state === 'held';
  }

  /** The directory's owner of a line homed here (-1: free), for tests. */
  ownerOf(line: number): number {
    return this.directory.get(line)?.owner ?? -1;
  }

  // ------------------------------------------------------------ requests

  onSync(threadRef: number, request: SyncRequest, thread: number = threadRef): void {
    // Valid only for the thread's request that comes right after the shipped op's answer.
    const quietAddress = this.quietAfterOp.get(thread);
    if (quietAddress !== undefined) this.quietAfterOp.delete(thread);
    this.seeThread(request, thread);
    switch (request.kind) {
      case 'line': {
        // A wait's check (src/threads/atomics.ts: only a waitAsync, or a wait
        // whose line left again after the layer answered it null, pins a line
        // it does not hold by asking): the line comes here for it, so this node
        // uses it here again and stops shipping its ops on it.
        const state = this.lines.get(request.line);
        if (state !== undefined && state.ship) this.stopShipping(state);
        if (state !== undefined) this.noteUpgrade(state);
        return this.wantLine(threadRef, request.line);
      }
      case 'lineOp': return this.lineOp(threadRef, request, thread);
      case 'lineWaitShip': return this.lineWaitShip(threadRef, request);
      case 'lineWait': {
        // The thread checked the value while this node held the line and its pin kept it here.
        const line = lineOf(request.address);
        assert(this.lines.get(line)?.state === 'held' || this.lines.get(line)?.state === 'revoking', 'a line wait is made while the line is held');
        // Counted in the quiet word since its check: registered from here on (below, in this same step).
        this.host.lineCheckDone?.(line);
        const requestId = this.newPending(threadRef, 'wait', line);
        this.pending.get(requestId)!.address = request.address;
        const state = this.lines.get(line)!;
        state.waitsOut++;
        this.stats.lineWaits++;
        // A thread that parks gives the line back with its wait (its pin is gone already): whoever stores to
        // wake it needs the line, and takes it with no recall.
        // Only when this thread is the line's one user here: with several, the next to use it is likely a sibling.
        const released = this.waitRelease && request.parks === true && state.threadsSeen.length <= 1 ? this.releaseWith(line, state) : null;
        if (released !== null) this.stats.lineReleasesWithWait++;
        // Still held and counting: the directory registers this wait before any notify of this node's that follows.
        else if (state.state === 'held' && state.counts !== null) state.counts.set(request.address, (state.counts.get(request.address) ?? 0) + 1);
        this.toDirectory(line, { type: 'lineWait', requestId, address: request.address, timeoutMs: request.timeoutMs, ...released });
        return;
      }
      case 'lineNotify': {
        // A waiter of this node that checked the value before this notifier's
        // store may not have reached the engine yet (its request travels on its
        // own channel): it still pins the line, and the notify waits for it,
        // so that its lineWait goes to the directory first.
        if (this.host.linePinned(lineOf(request.address))) {
          this.deferredNotifies.push({ threadRef, thread, request });
          return;
        }
        const line = lineOf(request.address);
        const state = this.lines.get(line);
        if ((request.afterOp === true && quietAddress === request.address) || (state !== undefined && state.state === 'held' && state.quiet && state.waitsOut === 0)) {
          this.stats.lineNotifiesQuiet++;
          this.resume(threadRef, { ok: true, value: '0' });
          return;
        }
        const home = this.directoryOf(line);
        if (state !== undefined && state.state === 'held' && state.counts !== null && home !== this.nodeId) {
          this.countedNotifyOf(threadRef, line, state, request);
          return;
        }
        const requestId = this.newPending(threadRef, 'notify', line);
        this.stats.lineNotifies++;
        if (home === this.nodeId) {
          this.toDirectory(line, { type: 'lineNotify', requestId, address: request.address, count: request.count });
          return;
        }
        // Held here and a waiter registered when it came (not quiet): the woken thread will want the line
        // right after it wakes, so it goes back with the notify (a recall and a release fewer).
        const released = this.notifyRelease && state !== undefined && !state.quiet && !(this.waitRelease && state.threadsSeen.length <= 1) ? this.releaseWith(line, state) : null;
        if (released !== null) this.stats.lineReleasesWithNotify++;
        this.toNode(home, { type: 'lineNotify', requestId, address: request.address, count: request.count, ...(released ?? { info: this.inner.releaseFor(home), ...this.pushTo(home) }) });
        return;
      }
      default:
        this.inner.onSync(threadRef, request);
    }
  }

  cancel(threadRef: number): boolean {
    this.quietAfterOp.delete(threadRef);
    const deferred = this.deferredNotifies.findIndex((entry) => entry.threadRef === threadRef);
    if (deferred >= 0) { this.deferredNotifies.splice(deferred, 1); return true; }
    for (const state of this.lines.values()) {
      const k = state.waiters.indexOf(threadRef);
      if (k >= 0) { state.waiters.splice(k, 1); return true; }
      const j = state.shareWaiters.indexOf(threadRef);
      if (j >= 0) { state.shareWaiters.splice(j, 1); return true; }
    }
    for (const [requestId, entry] of this.pending) {
      if (entry.threadRef !== threadRef || entry.canceled) continue;
      entry.canceled = true;
      // A shipped op runs all the same (it may have already): its answer is dropped.
      if (entry.kind === 'wait') {
        // The directory answers a waiter it still had with 'canceled'; one it woke already was answered.
        const waiter = this.findWaitDirectory(requestId);
        this.toNode(waiter, { type: 'lineWaitCancel', requestId });
      }
      return true;
    }
    return this.inner.cancel(threadRef);
  }

  /** Notes the thread behind a request on a line this node tracks (see NodeLine.threadsSeen). */
  private seeThread(request: SyncRequest, thread: number): void {
    let line: number;
    switch (request.kind) {
      case 'line': line = request.line; break;
      case 'lineOp': case 'lineWaitShip': case 'lineWait': case 'lineNotify': line = lineOf(request.address); break;
      default: return;
    }
    const seen = this.lines.get(line)?.threadsSeen;
    if (seen !== undefined && seen.length < 2 && !seen.includes(thread)) seen.push(thread);
  }

  /** The directory each pending wait went to, remembered by request id. */
  private readonly waitDirectories = new Map<number, number>();
  private findWaitDirectory(requestId: number): number {
    const node = this.waitDirectories.get(requestId);
    assert(node !== undefined, 'a pending wait knows its directory');
    return node;
  }

  /** Whether a notify of this node's on `line` is unanswered (sent to the directory, its lineNotified not back). */
  private notifyInFlight(line: number): boolean {
    for (const entry of this.pending.values()) if (entry.kind === 'notify' && entry.line === line) return true;
    return false;
  }

  private newPending(threadRef: number, kind: Pending['kind'], line: number, thread: number = threadRef): number {
    const requestId = this.nextRequestId++;
    this.pending.set(requestId, { threadRef, thread, kind, canceled: false, line, sentAtMs: this.timeNowMs() });
    return requestId;
  }

  private finishPending(requestId: number, result: SyncResult): Pending {
    const entry = this.pending.get(requestId);
    assert(entry !== undefined, 'a line answer matches a pending request');
    this.pending.delete(requestId);
    this.waitDirectories.delete(requestId);
    if (entry.kind === 'wait') {
      const state = this.lines.get(entry.line);
      assert(state !== undefined && state.waitsOut > 0, 'an outstanding wait is counted on its line');
      state.waitsOut--;
      if (state.waitsOut === 0) this.requiet(entry.line);
    }
    if (entry.shipped === true) {
      assert(this.shippedWaitsOut > 0, 'a shipped wait answered is counted');
      this.shippedWaitsOut--;
    }
    if (!entry.canceled) this.resume(entry.threadRef, result);
    return entry;
  }

  private nodeLine(line: number): NodeLine {
    let state = this.lines.get(line);
    if (state === undefined) {
      if (this.lines.size >= atomicLineStateCountMax) this.forgetIdleLines();
      if (this.lines.size >= atomicLineStateCountMax) {
        throw new DsmError('DSM_ERR_ATOMIC_LINES', `a node tracks at most ${atomicLineStateCountMax} atomic lines at once`);
      }
      state = {
        state: 'none', waiters: [], grantedAtMs: 0, wantedAtMs: -1, holdMs: atomicLineHoldMsInitial, usedOnce: false, tenureUse: 0, usedCarry: 0, lookedAtMs: 0,
        requestedAtMs: 0, transferMs: 0, ship: false, asked: false, pulled: false, tenures: 0, shipOps: 0, shipWaitMs: 0, shipSinceMs: 0, shipWorkOps: 0, shipWorkMs: 0, shipBurstOps: 0, shippedUses: 0,
        quiet: false, waitsOut: 0, shipSkips: 0, shipBackoff: 0, releasedUnasked: false, counts: null, threadsSeen: [],
        share: 'none', shareWaiters: [], shareGrantedAtMs: 0, shareUsed: false, shareScore: 0, recallShare: false, shareDroppedUnasked: false,
        shareAhead: false, aheadWasted: false,
      };
      this.lines.set(line, state);
    }
    return state;
  }

  private forgetIdleLines(): void {
    for (const [line, state] of this.lines) {
      if (state.state === 'none' && state.waiters.length === 0 && state.waitsOut === 0 && state.share === 'none' && state.shareWaiters.length === 0) this.lines.delete(line);
    }
  }

  /**
   * Gives `line`, held here, back to its directory (another node) inside the
   * message being sent (a notify's or a parking wait's) instead of keeping it
   * until a recall: the release a lineRelease carries, with `release`. Null
   * when the line is not held here (or is on its way back), its directory is
   * this node, or a thread here is inside an op on it: it stays held (granted
   * again to the app threads, whose new ops the failed revoke held back).
   */
  private releaseWith(line: number, state: NodeLine): { release: true; info: ConsistencyInfo; bundled?: DiffBatch } & PagePush | null {
    const home = this.directoryOf(line);
    if (state.state !== 'held' || home === this.nodeId) return null;
    assert(state.waiters.length === 0, 'no thread waits for a line held here');
    if (!this.host.lineRevoke(line)) { this.host.lineGranted(line); return null; }
    this.wanted.delete(line);
    state.state = 'none';
    state.wantedAtMs = -1;
    state.releasedUnasked = true;
    state.counts = null;
    this.stats.lineReleases++;
    const release = this.inner.releaseBundledFor !== undefined ? this.inner.releaseBundledFor(home) : { info: this.inner.releaseFor(home) };
    return { release: true, ...release, ...this.pushTo(home) };
  }

  /**
   * A notify on a line held here whose grant listed its waiters (see "Counted
   * notifies"): the waiters on the address registered at the directory are
   * `counts`' (no other node registers one while this node holds the line,
   * and the directory lets none leave but through this node's notifies until
   * the line is back), so the thread is answered here, at once: nobody to
   * wake, no message; else the notify goes one way, counted (the directory
   * wakes that many and answers nothing), with the line when it can go.
   */
  private countedNotifyOf(threadRef: number, line: number, state: NodeLine, request: Extract<SyncRequest, { kind: 'lineNotify' }>): void {
    const counts = state.counts!;
    const known = counts.get(request.address) ?? 0;
    const woken = request.count < 0 ? known : Math.min(known, request.count);
    if (woken === 0) {
      this.stats.lineNotifiesQuiet++;
      this.resume(threadRef, { ok: true, value: '0' });
      return;
    }
    if (known === woken) { counts.delete(request.address); this.requiet(line); } else counts.set(request.address, known - woken);
    this.stats.lineNotifies++;
    this.stats.lineNotifiesCounted++;
    const home = this.directoryOf(line);
    // The line goes with the notify when a thread of another node may be among those woken (it will want
    // the line next); not when all the waiters on the address are this node's own (they will want it here).
    let own = 0;
    for (const entry of this.pending.values()) if (entry.kind === 'wait' && !entry.canceled && entry.address === request.address) own++;
    // With one user of the line here, that thread parks at its next wait and the line goes then (measured: the
    // notifier's own next arrival often came first, and took it back).
    const released = this.notifyRelease && known > own && !(this.waitRelease && state.threadsSeen.length <= 1) ? this.releaseWith(line, state) : null;
    if (released !== null) this.stats.lineReleasesWithNotify++;
    this.toNode(home, { type: 'lineNotify', requestId: 0, address: request.address, count: woken, counted: true, ...(released ?? { info: this.inner.releaseFor(home), ...this.pushTo(home) }) });
    this.resume(threadRef, { ok: true, value: String(woken) });
  }

  /** A thread needs `line` held here: answered at once if it is, else once granted. */
  private wantLine(threadRef: number, line: number): void {
    const state = this.nodeLine(line);
    switch (state.state) {
      case 'held':
        this.resume(threadRef, { ok: true, value: null });
        return;
      case 'requested': case 'revoking':
        // Revoking: the line is asked for again once its release is sent.
        state.waiters.push(threadRef);
        return;
      case 'none':
        state.waiters.push(threadRef);
        this.requestLine(line, state);
        this.requestPageLines(line);
        return;
    }
  }

  /**
   * A thread needs the line itself (an op that writes, or a wait's check) where a load took a read copy: a
   * load-then-write line (a CAS loop, a load then a wait) takes the line for its loads from the next on.
   */
  private noteUpgrade(state: NodeLine): void {
    if (!this.shareLoads || state.share !== 'held') return;
    this.stats.lineShareUpgrades++;
    state.shareScore = Math.max(-atomicLineShareScoreMax, state.shareScore - 2);
  }

  /** The table's free slots less the grants on their way (null: the host does not say). */
  private roomLeft(): { free: number; slots: number } | null {
    const room = this.host.lineRoom?.();
    return room === undefined ? null : { free: room.free - this.requestsOut, slots: room.slots };
  }

  /**
   * Room in the node's line table (session 34): past 1/atomicLineRoomFraction
   * of it left, read copies and held lines that no thread here used since the
   * last look, none waits for, and no other node wants are given back unasked
   * (the clock algorithm: a look clears the use marks of the lines it keeps),
   * at most 1/atomicLineRoomFraction of the table at once. A read copy goes
   * with an unasked lineInvalidated, a line with an unasked lineRelease (as a
   * cold one, giveBackCold). Lines this node directs are given back too (to
   * itself, inline). A program that loads over a large array with Atomics
   * (4 MiB of lines fill the table) filled it and ended with DSM_ERR_ATOMIC_LINES.
   * A look that frees less than its batch (the lines are in use) is not made
   * again for the next batch/atomicLineRoomFraction requests: the sweeps are
   * a walk over every line known here.
   */
  private makeRoom(): void {
    const room = this.roomLeft();
    if (room === null || room.free * atomicLineRoomFraction > room.slots) return;
    if (this.roomLooksSkipped > 0) { this.roomLooksSkipped--; return; }
    const batch = Math.max(1, Math.floor(room.slots / atomicLineRoomFraction));
    let freed = 0;
    // Two sweeps at most: the first may only take the marks of lines all used since the last look.
    for (let sweep = 0; sweep < 2 && freed < batch; sweep++) freed += this.evictSweep(batch - freed);
    if (freed < batch) this.roomLooksSkipped = Math.floor(batch / atomicLineRoomFraction);
  }

  /** One sweep of makeRoom over the lines known here: gives back up to `batch` unused ones; answers how many. */
  private evictSweep(batch: number): number {
    let freed = 0;
    const nowMs = this.timeNowMs();
    // Read copies to drop: all at once below (one barrier for all, one message a directory for many).
    const drops: number[] = [];
    for (const [line, state] of this.lines) {
      if (freed >= batch) break;
      const copy = state.share === 'held' && state.state === 'none' && state.shareWaiters.length === 0;
      const held = state.state === 'held' && state.share === 'none' && state.waiters.length === 0 && state.waitsOut === 0 && !this.wanted.has(line);
      if (!copy && !held) continue;
      // Not used once since it came, and fresh: the thread that asked for it runs first (else two threads could
      // take each other's lines back for ever).
      const fresh = nowMs - (copy ? state.shareGrantedAtMs : state.grantedAtMs) < atomicLineHoldMsMin;
      if (fresh && (copy ? !state.shareUsed : state.tenureUse === 0 && !state.pulled)) continue;
      const used = this.host.lineUsed(line);
      if (used > 0) {
        // Used since the last look: kept, its mark taken (still counted for the line's hold window).
        if (held) { state.usedCarry = joinUse(state.usedCarry, used); state.tenureUse = joinUse(state.tenureUse, used); } else state.shareUsed = true;
        continue;
      }
      if (copy) {
        drops.push(line);
        freed++;
      } else if (this.giveBackNow(line, state)) {
        this.stats.lineEvictions++;
        freed++;
      }
    }
    return freed - (drops.length - this.dropCopies(drops));
  }

  /**
   * Drops the read copies `lines` unasked (makeRoom), telling their
   * directories in lineInvalidated messages of up to atomicLineDropBatchLinesMax
   * lines each; answers how many went (a thread inside a load on one keeps it).
   */
  private dropCopies(lines: number[]): number {
    if (lines.length === 0) return 0;
    const gone = new Set(this.host.lineUnshareMany?.(lines) ?? lines.filter((line) => this.host.lineUnshare(line)));
    const byDirectory = new Map<number, number[]>();
    for (const line of lines) {
      // A thread inside a load on it: it stays (readable again, as the failed drop left it unreadable).
      if (!gone.has(line)) { this.host.lineShared(line); continue; }
      const state = this.lines.get(line)!;
      state.share = 'none';
      state.shareDroppedUnasked = true;
      this.stats.lineEvictions++;
      const directory = this.directoryOf(line);
      const list = byDirectory.get(directory);
      if (list === undefined) byDirectory.set(directory, [line]);
      else list.push(line);
    }
    for (const [directory, list] of byDirectory) {
      for (let k = 0; k < list.length; k += atomicLineDropBatchLinesMax) {
        const [line, ...more] = list.slice(k, k + atomicLineDropBatchLinesMax);
        this.toNode(directory, { type: 'lineInvalidated', line: line!, ...(more.length > 0 ? { more } : {}) });
      }
    }
    return gone.size;
  }

  /** Gives a held line back unasked, now (makeRoom); false when a thread is inside an op on it (it stays held). */
  private giveBackNow(line: number, state: NodeLine): boolean {
    const home = this.directoryOf(line);
    if (home !== this.nodeId) {
      const released = this.releaseWith(line, state);
      if (released === null) return false;
      const { release: _given, ...rest } = released;
      this.toNode(home, { type: 'lineRelease', line, ...rest });
      return true;
    }
    if (!this.host.lineRevoke(line)) { this.host.lineGranted(line); return false; }
    state.state = 'none';
    state.wantedAtMs = -1;
    state.counts = null;
    this.stats.lineReleases++;
    this.toNode(home, { type: 'lineRelease', line });
    return true;
  }

  /** A thread's load needs a read copy of `line` here (the line is neither here nor asked for): answered at once if one is, else once it comes. */
  private wantShare(threadRef: number, line: number, state: NodeLine): void {
    switch (state.share) {
      case 'held':
        this.resume(threadRef, { ok: true, value: null });
        return;
      case 'requested': case 'dropping': case 'ahead':
        // Dropping: asked for again once the drop is sent. Ahead: asked for again if the answer does not grant it.
        state.shareWaiters.push(threadRef);
        return;
      case 'none':
        state.shareWaiters.push(threadRef);
        this.requestShare(line, state, this.aheadOf(line));
        return;
    }
  }

  private requestShare(line: number, state: NodeLine, ahead: number[] = []): void {
    assert(state.share === 'none', 'a read copy is asked for when none is here or asked for');
    this.makeRoom();
    state.share = 'requested';
    this.requestsOut++;
    if (ahead.length === 0) { this.toDirectory(line, { type: 'lineShareRequest', line }); return; }
    assert(!this.aheadAsked.has(line), 'one read copy request out a line');
    for (const other of ahead) {
      const otherState = this.nodeLine(other);
      assert(otherState.share === 'none' && otherState.state === 'none', 'a line asked for ahead is neither here nor asked for');
      otherState.share = 'ahead';
      this.requestsOut++;
    }
    this.stats.lineShareAheadAsked += ahead.length;
    this.aheadAsked.set(line, ahead);
    this.toDirectory(line, { type: 'lineShareRequest', line, ahead });
  }

  /**
   * Read copies ahead (session 35, docs/PROTOCOL.md "Read copies ahead"): a
   * load that needs a copy of `line` right after loads here of the two lines
   * before it (a scan over an array with Atomics.load) asks for copies of
   * the next atomicLineShareAheadLinesMax lines of the same directory with
   * it, those this node neither holds, nor has a copy of or asked for, nor
   * found written here (share score < 0), nor took ahead before only to drop
   * it unused for a writer (aheadWasted). The directory grants those it can
   * at once (nobody holds or waits for them) in the same answer, with their
   * pages: a round trip every 16 KiB, not one every 64 bytes. Within the
   * table's room above makeRoom's mark, as page pulls.
   */
  private aheadOf(line: number): number[] {
    if (!this.shareAhead || line < 2 || !this.readableHere(line - 1) || !this.readableHere(line - 2)) return [];
    const room = this.roomLeft();
    const budget = Math.min(atomicLineShareAheadLinesMax, room === null ? Infinity : room.free - 1 - Math.ceil(room.slots / atomicLineRoomFraction));
    const directory = this.directoryOf(line);
    const end = Math.min(line + 1 + budget, (this.pageCount * pageBytes) / atomicLineBytes);
    const ahead: number[] = [];
    for (let other = line + 1; other < end; other++) {
      if (this.directoryOf(other) !== directory) break;
      const state = this.lines.get(other);
      if (state !== undefined && (state.state !== 'none' || state.share !== 'none' || state.shareScore < 0 || state.aheadWasted || state.waiters.length > 0 || state.waitsOut > 0)) continue;
      ahead.push(other);
    }
    return ahead;
  }

  /** Whether loads of `line` run here now (the line is held here, or a read copy of it). */
  private readableHere(line: number): boolean {
    const state = this.lines.get(line);
    return state !== undefined && (state.share === 'held' || heldStates.has(state.state));
  }

  /** Asks the line's directory for `line`, which this node does not hold or ask for now. */
  private requestLine(line: number, state: NodeLine): void {
    assert(state.state === 'none', 'a line is asked for when neither here nor asked for');
    this.makeRoom();
    state.state = 'requested';
    this.requestsOut++;
    state.asked = true;
    state.requestedAtMs = this.timeNowMs();
    this.toDirectory(line, { type: 'lineRequest', line });
  }

  /**
   * A thread here asks for `line`: once this node's threads have asked for
   * atomicLinePageGroupLines lines of its page, the page's lines are used
   * together (a histogram's buckets), and the others asked for before that
   * are not here are asked for too, with no thread waiting: they come in the
   * same order as the lines other nodes ask for the same way, so a node holds
   * the page's lines together for its windows, instead of each node holding a
   * few and waiting for the rest (docs/PROTOCOL.md "Lines of one page used together").
   */
  private requestPageLines(line: number): void {
    // On two nodes the lines go back and forth between the same two, the
    // directory's own threads one of them: pulling a page's other lines here
    // only made more transfers (2 x 2 x 10^6 adds: 116-160 grants -> 507-776).
    if (this.nodeCount < 3) return;
    const page = this.pageOf(line);
    let asked = this.pageLinesAsked.get(page);
    if (asked === undefined) {
      if (this.pageLinesAsked.size >= atomicLinePageUseCountMax) this.pageLinesAsked.clear();
      asked = new Set();
      this.pageLinesAsked.set(page, asked);
    }
    asked.add(line);
    if (asked.size < atomicLinePageGroupLines) return;
    // Many lines pulled that brought next to no ops (a hash table's buckets, each used now and then by every node) only
    // made the nodes take the page's lines from each other at every op: once a page's asked lines are more than
    // atomicLinePagePullLinesMax and its pulled lines bring fewer than atomicLinePagePullUsesMin ops each on
    // average, this node asks for the lines its threads want, one by one. A histogram's few buckets (16 lines)
    // are pulled as before: their pulls are rare, and bring about as little each, but keep the page's lines together.
    const pulls = this.pagePulls.get(page);
    if (asked.size > atomicLinePagePullLinesMax && pulls !== undefined && pulls.pulls >= atomicLinePagePullSlack && pulls.uses < pulls.pulls * atomicLinePagePullUsesMin) {
      this.stats.linePagePullsSkipped++;
      return;
    }
    // Within the table's room above makeRoom's mark (a page's 63 other lines at most).
    const room = this.roomLeft();
    let budget = room === null ? Infinity : room.free - Math.ceil(room.slots / atomicLineRoomFraction);
    for (const other of asked) {
      if (budget <= 0) break;
      if (other === line) continue;
      const state = this.nodeLine(other);
      if (state.state === 'none') {
        this.requestLine(other, state);
        state.pulled = true;
        budget--;
      }
    }
  }

  /** A line pulled with its page's lines went back after `use` (its tenure's LineUse: ~ the ops threads here ran on it). */
  private notePull(line: number, use: LineUse): void {
    const page = this.pageOf(line);
    let pulls = this.pagePulls.get(page);
    if (pulls === undefined) {
      if (this.pagePulls.size >= atomicLinePageUseCountMax) this.pagePulls.clear();
      pulls = { pulls: 0, uses: 0 };
      this.pagePulls.set(page, pulls);
    }
    pulls.pulls++;
    pulls.uses += Math.min(use, atomicLinePagePullHistory);
    // Recent pulls count most: a page whose use changes (buckets that turn hot) is pulled again.
    if (pulls.pulls > atomicLinePagePullHistory) {
      pulls.pulls >>= 1;
      pulls.uses >>= 1;
    }
  }

  /**
   * An op on a line this node did not hold when the thread looked: run it
   * natively once the line is here (answer null), or ship it to the directory
   * (answer its result) when this node ships ops on the line.
   */
  private lineOp(threadRef: number, request: Extract<SyncRequest, { kind: 'lineOp' }>, thread: number): void {
    const line = lineOf(request.address);
    const state = this.nodeLine(line);
    if (this.shareLoads) {
      if (request.op === 'load' && state.state === 'none') {
        if (state.shareScore >= 0 || state.share !== 'none') { this.wantShare(threadRef, line, state); return; }
      } else if (request.op !== 'load') {
        this.noteUpgrade(state);
      }
    }
    const home = this.directoryOf(line);
    if (!state.ship && state.state === 'none' && home !== this.nodeId && this.shipsFirstOp(line, state)) {
      this.markShipping(state);
      this.stats.lineFirstOpsShipped++;
    }
    if (!state.ship || state.state !== 'none' || home === this.nodeId) { this.wantLine(threadRef, line); return; }
    if (this.holdsLineOnPageOf(line)) {
      // Another line of the page is here. Used hot since its grant (a histogram's buckets): the page's lines
      // stay together, and this op asks for its line. Used only once or twice (a render's done counter next to
      // its row counter): it goes back now, and the op ships (docs/PROTOCOL.md "Lines of one page used together").
      const cold = this.coldHeldLinesOfPage(line);
      if (cold === null) { this.wantLine(threadRef, line); return; }
      for (const other of cold) this.giveBackCold(other, this.lines.get(other)!);
      if (this.holdsLineOnPageOf(line)) { this.wantLine(threadRef, line); return; }
    }
    // A burst (ops issued right after the previous one returned: an Atomics-made barrier's last arrival loads,
    // adds, stores, adds and notifies): a round trip each shipped, one transfer for all moved.
    if (request.workMs !== undefined && request.workMs < atomicLineShipBurstGapMs) state.shipBurstOps++;
    else state.shipBurstOps = 0;
    if (state.shipBurstOps >= this.shipBurstOpsMin) {
      state.shipBurstOps = 0;
      this.stopShipping(state);
      this.wantLine(threadRef, line);
      return;
    }
    if (this.shipInFlight >= atomicLineShipInFlightMax) {
      throw new DsmError('DSM_ERR_ATOMIC_LINES', `a node has at most ${atomicLineShipInFlightMax} shipped Atomics ops in flight`);
    }
    const requestId = this.newPending(threadRef, 'op', line, thread);
    this.pending.get(requestId)!.address = request.address;
    this.shipInFlight++;
    if (request.workMs !== undefined && request.workMs >= 0) {
      state.shipWorkOps++;
      state.shipWorkMs += request.workMs;
    }
    this.stats.lineOpsShipped++;
    // The op is a release (the notices, with the diffs for pages homed at the
    // directory inside the message) and, with its answer, an acquire.
    const release = this.inner.releaseBundledFor !== undefined ? this.inner.releaseBundledFor(home) : { info: this.inner.releaseFor(home) };
    this.send(home, { type: 'lineOp', requestId, op: request.op, address: request.address, width: request.width, operands: request.operands, ...release, ...this.pushTo(home) });
  }

  /**
   * Atomics.wait on a line this node does not hold (session 15). A node that
   * ships its ops on the line ships the wait too: one message to the
   * directory, which checks the value while its node holds the line and
   * registers the waiter there (or answers 'not-equal' at once), instead of
   * taking the line here for the check (a request, and the holder's recall,
   * release and grant to take it back: Atomics barriers paid ~5 messages a
   * round). Else the line comes here (null: the thread checks natively and
   * sends lineWait), and a line this node shipped ops on moves again.
   */
  private lineWaitShip(threadRef: number, request: Extract<SyncRequest, { kind: 'lineWaitShip' }>): void {
    const line = lineOf(request.address);
    const state = this.nodeLine(line);
    this.noteUpgrade(state);
    const home = this.directoryOf(line);
    if (!this.shipWaits || !state.ship || state.state !== 'none' || home === this.nodeId || this.holdsLineOnPageOf(line)) {
      if (state.ship) this.stopShipping(state);
      this.wantLine(threadRef, line);
      return;
    }
    if (this.shippedWaitsOut >= atomicLineShippedWaitCountMax) {
      throw new DsmError('DSM_ERR_ATOMIC_LINES', `a node has at most ${atomicLineShippedWaitCountMax} shipped Atomics waits out`);
    }
    const requestId = this.newPending(threadRef, 'wait', line);
    this.pending.get(requestId)!.shipped = true;
    this.shippedWaitsOut++;
    state.waitsOut++;
    this.stats.lineWaits++;
    this.stats.lineWaitsShipped++;
    // A release as a shipped op's (the waiter list's critical section orders the
    // thread's writes before a notifier's), and its answer an acquire.
    const release = this.inner.releaseBundledFor !== undefined ? this.inner.releaseBundledFor(home) : { info: this.inner.releaseFor(home) };
    this.waitDirectories.set(requestId, home);
    this.send(home, {
      type: 'lineWaitShip', requestId, address: request.address, width: request.width, expected: request.expected, timeoutMs: request.timeoutMs,
      ...release, ...this.pushTo(home),
    });
  }

  /** The answer to a wait: the directory's release (if any), then the thread's. */
  private onWake(from: number, message: Extract<LineMessage, { type: 'lineWake' }>): void {
    if (message.info !== undefined && from !== this.nodeId) this.acquireLine(from, message.info, message);
    if (message.result !== null) {
      this.finishPending(message.requestId, { ok: true, value: message.result });
      return;
    }
    // A shipped wait the directory could not check (its page lent away): the
    // line comes here and the thread checks natively; the node stops shipping on it.
    const entry = this.pending.get(message.requestId);
    assert(entry !== undefined && entry.shipped === true, 'a shipped wait is answered null only');
    const canceled = entry.canceled;
    entry.canceled = true; // answered below, once the line is here
    this.finishPending(message.requestId, { ok: true, value: null });
    const state = this.lines.get(entry.line);
    if (state !== undefined && state.ship) {
      state.ship = false;
      this.stats.lineMoveSwitches++;
    }
    if (!canceled) this.wantLine(entry.threadRef, entry.line);
  }

  /**
   * Whether this node holds (or is giving back) another line of `line`'s page.
   * A shipped op's answer is an acquire from the directory, which wrote the
   * page when it ran the op: the page's copy here is invalidated, and the next
   * native op on a line held here faults and fetches the whole page. A thread
   * cycling over the lines of one page (a histogram's buckets) then paid a
   * round trip per op plus a page fetch per few ops (2 x 10^7 adds on 2 nodes:
   * 77,356 shipped ops, 39,675 page fetches, 56x plain node); so ops on such a
   * page ask for their line instead, and the page's lines gather here.
   */
  private holdsLineOnPageOf(line: number): boolean {
    return this.anotherLineOfPageIs(line, heldStates);
  }

  /** How app threads used `line` since the last look, taken from the table now and still counted at the next look. */
  private takeUse(line: number, state: NodeLine): LineUse {
    const used = this.host.lineUsed(line);
    state.usedCarry = joinUse(state.usedCarry, used);
    state.tenureUse = joinUse(state.tenureUse, used);
    return state.tenureUse;
  }

  /**
   * The other lines of `line`'s page held here, when every one of them was
   * used since its grant and written at most atomicLinePageColdWritesMax
   * times in the atomicLineHoldMsMin or more since (a counter taken once per
   * row: nothing keeps it here), or null when one is hot, granted just now or
   * not used yet (the thread that asked for it runs first), or on its way back.
   */
  private coldHeldLinesOfPage(line: number): number[] | null {
    const linesPerPage = pageBytes / atomicLineBytes;
    const first = line - (line % linesPerPage);
    const cold: number[] = [];
    const nowMs = this.timeNowMs();
    for (let other = first; other < first + linesPerPage; other++) {
      const state = this.lines.get(other);
      if (other === line || state === undefined || state.state === 'none' || state.state === 'requested') continue;
      if (state.state !== 'held') return null;
      const use = this.takeUse(other, state);
      if (use === 0 || use - 1 > atomicLinePageColdWritesMax || nowMs - state.grantedAtMs < atomicLineHoldMsMin) return null;
      cold.push(other);
    }
    return cold;
  }

  /**
   * Gives a cold line of the page back unasked (see coldHeldLinesOfPage), as
   * the hold window gives an idle one: this node's next ops on it ship. Stays
   * held if a thread is inside an op on it.
   */
  private giveBackCold(line: number, state: NodeLine): void {
    const home = this.directoryOf(line);
    const ship = !state.ship && this.shipOps && state.shipSkips === 0;
    const released = this.releaseWith(line, state);
    if (released === null) return;
    this.stats.lineColdPageReleases++;
    state.holdMs = Math.max(atomicLineHoldMsMin, state.holdMs / 2);
    if (state.shipSkips > 0 && !state.ship) state.shipSkips--;
    if (ship) this.markShipping(state);
    const { release: _given, ...rest } = released;
    this.toNode(home, { type: 'lineRelease', line, ...rest });
  }

  /** From now on this node ships its ops on the line (a new sample of shipped ops). */
  private markShipping(state: NodeLine): void {
    state.ship = true;
    state.shipOps = 0;
    state.shipWaitMs = 0;
    state.shipSinceMs = this.timeNowMs();
    state.shipWorkOps = 0;
    state.shipWorkMs = 0;
    state.shipBurstOps = 0;
    this.stats.lineShipSwitches++;
  }

  /**
   * Whether the first op of this node on `line` (never asked for here) ships
   * rather than asks for the line: the one other line of its page known here
   * is shipped and not held (given up idle or cold: another node, the
   * directory's own threads most often, uses that page's lines). Not with two
   * or more others known (a histogram's buckets: they gather here). A render's done counter next
   * to its row counter: node 1's first done add asked for its line, and the
   * directory's thread, adding to it a row later, waited for it to come back
   * (2-5 ms of each run's start at load 4). A line used hot here moves by the
   * shipped ops' rules (a sample, a burst).
   */
  private shipsFirstOp(line: number, state: NodeLine): boolean {
    if (!this.shipOps || state.asked || state.shipSkips > 0 || state.shipBackoff > 0) return false;
    const linesPerPage = pageBytes / atomicLineBytes;
    const first = line - (line % linesPerPage);
    let shipped = false;
    for (let other = first; other < first + linesPerPage; other++) {
      const sibling = this.lines.get(other);
      if (other === line || sibling === undefined) continue;
      // A second line of the page known here (a histogram's buckets): its lines gather here (holdsLineOnPageOf).
      if (shipped || !sibling.ship || sibling.state !== 'none') return false;
      shipped = true;
    }
    return shipped;
  }

  /**
   * Whether this node asked for another line of `line`'s page and waits for
   * it: a thread here does, or (3 or more nodes) it asked for the page's
   * lines together (requestPageLines).
   */
  private requestsLineOnPageOf(line: number): boolean {
    return this.anotherLineOfPageIs(line, requestedStates);
  }

  private anotherLineOfPageIs(line: number, states: ReadonlySet<NodeLine['state']>): boolean {
    const linesPerPage = pageBytes / atomicLineBytes;
    const first = line - (line % linesPerPage);
    for (let other = first; other < first + linesPerPage; other++) {
      const state = this.lines.get(other);
      if (other !== line && state !== undefined && states.has(state.state)) return true;
    }
    return false;
  }

  /** The directory's answer to a shipped op: its acquire, then the thread's result (null: ask for the line). */
  private onOpDone(from: number, message: Extract<LineMessage, { type: 'lineOpDone' }>): void {
    assert(from !== this.nodeId, 'a shipped op comes from another node');
    this.acquireLine(from, message.info, message);
    this.shipInFlight--;
    const waiting = this.pending.get(message.requestId);
    assert(waiting !== undefined, 'a shipped op is answered once');
    // Before the thread resumes: its notify, if it comes next, finds this.
    if (message.quiet === true && !waiting.canceled) {
      if (this.quietAfterOp.size >= atomicLineQuietThreadCountMax && !this.quietAfterOp.has(waiting.thread)) this.quietAfterOp.clear();
      assert(waiting.address !== undefined, 'a shipped op remembers its address');
      this.quietAfterOp.set(waiting.thread, waiting.address);
    } else {
      this.quietAfterOp.delete(waiting.thread);
    }
    assert(this.quietAfterOp.size <= atomicLineQuietThreadCountMax, 'quiet answers remembered within their limit');
    const entry = this.finishPending(message.requestId, { ok: true, value: message.result });
    const state = this.lines.get(entry.line);
    if (state === undefined) return;
    if (message.result === null) {
      // Not run (the page is not homed at the directory: lent away): the thread asks for the line. Counted as
      // asked already, so that the first-op rule (shipsFirstOp) does not ship its retry again: with the page's
      // other line shipped here, every retry shipped and came back null, forever (seed 485, --lines always).
      if (state.ship) this.stats.lineMoveSwitches++;
      state.ship = false;
      state.asked = true;
      return;
    }
    const nowMs = this.timeNowMs();
    state.shipOps++;
    state.shipWaitMs += nowMs - entry.sentAtMs;
    if (state.shipOps < this.shipSampleOps) return;
    // Hot, by the rule that keeps a held line for its window: the rate at
    // which the node's threads would use the line if it were here (ops per
    // time they ran between them) times a transfer's time. A thread that does
    // little but this line's ops (a counter loop) is hot; a row counter taken
    // once per row of work is not. The threads say how long they ran since
    // their previous shipped op on the line returned (their channel's
    // wake-ups are not work: on a loaded machine they are most of the gap
    // the manager sees); without that, the sample's span less its waits
    // (threads of the node waiting at once, waits summing past it: hot).
    const spanMs = nowMs - state.shipSinceMs;
    const workingMs = state.shipWorkOps > 0 ? (state.shipWorkMs * state.shipOps) / state.shipWorkOps : spanMs - state.shipWaitMs;
    // A transfer's time: twice the sample's own round trip (a request and its grant, and the other node's recall),
    // not the line's last transfer, which may be the run's first, with cold code (27-45 ms at load 20 in the
    // render, against 1-10 ms round trips later: every sample looked hot and the row counter moved again).
    const transferMs = Math.max((2 * state.shipWaitMs) / state.shipOps, atomicLineHoldMsMin);
    const hot = workingMs <= 0 || state.shipOps * transferMs >= this.hotWritesPerTransfer * workingMs;
    if (state.ship && hot) {
      this.stopShipping(state);
    } else if (!hot) {
      state.shipBackoff = 0;
    }
    state.shipOps = 0;
    state.shipWaitMs = 0;
    state.shipSinceMs = nowMs;
    state.shipWorkOps = 0;
    state.shipWorkMs = 0;
  }

  /**
   * A line this node ships its ops on is used here after all: hot in its
   * shipped ops' sample, or waited on here (a wait's check needs the line
   * here). It was idle when given up but is used in bursts (a queue's pushes
   * and pops between waits): shipping a burst op by op costs a round trip
   * each, moving the line one transfer for all. So it moves again, and its
   * next idle give-ups keep it moving, twice as many each time this repeats
   * (a 2-node ring buffer of 10,000 items: 13,707 shipped ops and 2,373
   * moves before; with lines only moving, 1,019 moves).
   */
  private stopShipping(state: NodeLine): void {
    state.ship = false;
    this.stats.lineMoveSwitches++;
    state.shipBackoff = Math.min(this.shipBackoffMax, Math.max(1, state.shipBackoff * 2));
    state.shipSkips = state.shipBackoff;
  }

  // ------------------------------------------------------------ messages

  onMessage(fromNode: number, message: ProtocolMessage): void {
    if (isLineMessage(message)) {
      // Every info a line message carries is its sender's own release (releaseFor): its vc is what the sender had
      // applied, which the log's reclamation and the subscribed pages' pushes read (before, only lock, barrier
      // and atomic messages told it, and a node that synchronized through lines alone looked far behind).
      if ('info' in message && message.info !== undefined) this.inner.hearVc?.(fromNode, message.info.vc);
      this.dispatch(fromNode, message);
    } else this.inner.onMessage(fromNode, message);
    this.endLineWindow();
  }

  /** A line's hand-over or a shipped op's answer: an acquire from another node's release. */
  private acquireLine(from: number, info: ConsistencyInfo, push?: PagePush): void {
    const pushed = push !== undefined && from !== this.nodeId && (push.pushPages?.length ?? 0) > 0 ? push.pushPages : undefined;
    this.inner.acquireFrom(from, info, pushed);
    if (from === this.nodeId) return;
    this.acquiredByLine = true;
    // Subscribed pages pushed with the release (pushTo), installed where they make an invalid copy valid and
    // hold this node's own diffs, or miss only some it keeps (HlrcCoherence.installPushed).
    if (push !== undefined && (push.pushPages?.length ?? 0) > 0) {
      assert(this.inner.installPushed !== undefined, 'a pushed page reaches an engine that installs pushes');
      this.inner.installPushed(push);
    }
  }

  /** With a release to `node` (after it): the pages of this node's own that `node` is subscribed to (Engine.pushSubscribed). */
  private pushTo(node: number, pageCountMax = grantPagePushCountMax): PagePush {
    return this.pagePush && node !== this.nodeId ? this.inner.pushSubscribed?.(node, pageCountMax) ?? {} : {};
  }

  /**
   * After an event that acquired another node's release through a line: the
   * inner engine may end a home-migration window there (hlrc: in programs
   * that synchronize through Atomics and not barriers, docs/PROTOCOL.md
   * "Windows at atomic lines"). Run between events, never inside a handler.
   */
  private endLineWindow(): void {
    if (!this.acquiredByLine) return;
    this.acquiredByLine = false;
    this.inner.afterLineAcquire?.(this.directsLineOn);
  }

  private toDirectory(line: number, message: LineMessage): void {
    this.toNode(this.directoryOf(line), message);
  }

  /** Sends, or handles inline when the receiver is this node (a message to itself is free). */
  private toNode(node: number, message: LineMessage): void {
    if (message.type === 'lineWait') this.waitDirectories.set(message.requestId, node);
    if (node === this.nodeId) this.dispatch(this.nodeId, message);
    else this.send(node, message);
  }

  private dispatch(from: number, message: LineMessage): void {
    switch (message.type) {
      case 'lineRequest': return this.onRequest(from, message.line, false);
      case 'lineShareRequest': return message.ahead === undefined ? this.onRequest(from, message.line, true) : this.onShareRequestAhead(from, message.line, message.ahead);
      case 'lineShareGrant': return this.onShareGrant(from, message);
      case 'lineInvalidate': return this.onInvalidate(message.line);
      case 'lineInvalidated':
        this.onInvalidated(from, message.line);
        for (const line of message.more ?? []) this.onInvalidated(from, line);
        return;
      case 'lineRelease':
        if (message.bundled !== undefined) {
          assert(from !== this.nodeId, 'a release to its own node bundles nothing');
          this.applyBundled(from, message.bundled);
        }
        return this.onRelease(from, message.line, message.info, message, message.keepShare === true);
      case 'lineGrant': return this.onGrant(from, message);
      case 'lineRecall': return this.onRecall(message.line, message.share === true);
      case 'lineWait':
        // Only the holder registers waits (it checked the value with the line held there): while the line is listed to a node, that node.
        assert(this.directoryLine(lineOf(message.address)).listedTo < 0 || this.directoryLine(lineOf(message.address)).listedTo === from, 'a wait on a listed line comes from its holder');
        this.onWait(from, message.requestId, message.address, message.timeoutMs);
        if (message.release === true) {
          // The waiter's node gave the line back with the wait: registered above, then the line returns.
          assert(from !== this.nodeId && message.info !== undefined, 'a line given back with a wait comes from another node, with its release');
          if (message.bundled !== undefined) this.applyBundled(from, message.bundled);
          this.onRelease(from, lineOf(message.address), message.info, message);
        }
        return;
      case 'lineWaitCancel': return this.onWaitCancel(from, message.requestId);
      case 'lineNotify': {
        // A waiter of this node that checked the value while a shipped store
        // ran here may not have reached the engine yet (pinned): the notify
        // that follows the store waits for it, as a local notify does.
        const line = lineOf(message.address);
        const entry = this.directoryLine(line);
        if (from !== this.nodeId) entry.notifiedFromAfar = true;
        const reply = message.counted !== true;
        if (!reply) assert(from !== this.nodeId && entry.listedTo === from && entry.owner === from, 'a counted notify comes from the node the line is listed to');
        if (message.release === true) {
          // The notifier held the line and gives it back: its waiters woken (before any grant, so a
          // waiter registered after the notify is not), then the line returns. Never deferred for a
          // pinned waiter here: a thread here checks natively only while this node holds the line, and
          // its pin kept the line here until its lineWait registered, so the notifier's store (with the
          // line held there, after this node gave it up) follows every registration of this node's.
          assert(from !== this.nodeId && message.info !== undefined, 'a line given back with a notify comes from another node, with its release');
          if (message.bundled !== undefined) this.applyBundled(from, message.bundled);
          this.onNotify(from, message.requestId, message.address, message.count, message.info, message, reply);
          this.onRelease(from, line, undefined);
          return;
        }
        if (!reply) return this.onNotify(from, message.requestId, message.address, message.count, message.info, message, false);
        // Held back until the line is back (before its next grant), the line recalled:
        // - listed: its holder counts its own notifies; this one (from another node, or this directory's own) waits,
        //   so that no waiter the holder counts leaves meanwhile;
        // - held by another node than the notifier's and this one (session 38): one of its threads may have checked
        //   the value there with its lineWait on the way (it precedes that node's release on the link), and its
        //   next checks read its own copy. A plain store before this notify (`v[i] = 33; Atomics.notify(v, i)`: a
        //   wait after the notify must see 33) reached neither; once the line is back, the holder's waits are
        //   registered and its next check acquires what the notifier released (users13/store-notify-race.mjs).
        const listed = entry.listedTo >= 0 && from !== entry.listedTo;
        if (listed || (entry.owner >= 0 && entry.owner !== from && entry.owner !== this.nodeId)) {
          if (this.heldNotifyCount >= atomicLineHeldNotifyCountMax) {
            throw new DsmError('DSM_ERR_ATOMIC_LINES', `a line directory holds back at most ${atomicLineHeldNotifyCountMax} notifies`);
          }
          if (message.info !== undefined && from !== this.nodeId) { this.acquireLine(from, message.info, message); delete message.info; delete message.pushPages; delete message.pushVersions; delete message.pushBytes; delete message.pushApplied; }
          entry.heldNotifies.push({ from, message });
          this.heldNotifyCount++;
          if (!listed) this.stats.lineNotifiesHeldForHolder++;
          this.recall(line, entry);
          return;
        }
        if (from !== this.nodeId && this.directory.get(line)?.shippedEver === true && this.host.linePinned(line)) {
          if (message.info !== undefined) { this.acquireLine(from, message.info, message); delete message.info; delete message.pushPages; delete message.pushVersions; delete message.pushBytes; delete message.pushApplied; }
          this.deferredRemoteNotifies.push({ from, message });
          this.host.lineWatch?.(line);
          return;
        }
        return this.onNotify(from, message.requestId, message.address, message.count, message.info, message);
      }
      case 'lineWake': return this.onWake(from, message);
      case 'lineNotified': this.finishPending(message.requestId, { ok: true, value: String(message.woken) }); return;
      case 'lineOp': return this.onShippedOp(from, message);
      case 'lineWaitShip': return this.onShippedWait(from, message);
      case 'lineOpDone': return this.onOpDone(from, message);
    }
  }

  // ------------------------------------------------------------ directory

  private directoryLine(line: number): DirectoryLine {
    assert(this.directoryOf(line) === this.nodeId, 'the directory of a line is its static home');
    let entry = this.directory.get(line);
    if (entry === undefined) {
      if (this.directory.size >= atomicLineStateCountMax) {
        throw new DsmError('DSM_ERR_ATOMIC_LINES', `a node directs at most ${atomicLineStateCountMax} atomic lines`);
      }
      entry = { owner: -1, queue: [], sharers: [], invalidating: [], recalling: false, shipped: [], shippedEver: false, notifiedFromAfar: false, listedTo: -1, heldNotifies: [] };
      this.directory.set(line, entry);
      this.directoryPages.add(this.pageOf(line));
    }
    return entry;
  }

  /** A node asks for the line (`read` false) or for a read copy of it (true). */
  private onRequest(from: number, line: number, read: boolean): void {
    const entry = this.directoryLine(line);
    assert(entry.owner !== from && !this.queued(entry, from, read), 'a node asks for a line it neither holds nor asked for');
    assert(!read || !entry.sharers.includes(from), 'a node asks for a read copy it does not have');
    assert(entry.queue.length < 2 * this.nodeCount, 'a line\'s queue holds at most one request of each kind a node');
    entry.queue.push({ node: from, read });
    this.advance(line, entry);
  }

  /**
   * A read copy request with lines asked for ahead (aheadOf): each of those
   * that nobody holds or waits for, and `from` has no copy of, is granted a
   * copy now, in the request's own grant when `line` is granted at once, else
   * in an answer of their own (`aheadOnly`) sent now; the others are not
   * (`from` asks for them again when a thread loads them). Either way the
   * answer is sent while the request is handled, ahead of any later grant
   * of those lines to `from` (FIFO), so `from` knows which are its copies.
   */
  private onShareRequestAhead(from: number, line: number, ahead: number[]): void {
    assert(ahead.length <= atomicLineShareAheadLinesMax, 'a read copy request asks for at most atomicLineShareAheadLinesMax lines ahead');
    const granted: number[] = [];
    for (const other of ahead) {
      assert(other > line && other <= line + atomicLineShareAheadLinesMax && this.directoryOf(other) === this.nodeId, 'lines asked for ahead follow the line, at this directory');
      const entry = this.directoryLine(other);
      if (entry.owner >= 0 || entry.queue.length > 0 || entry.invalidating.length > 0 || entry.sharers.includes(from)) continue;
      entry.sharers.push(from);
      granted.push(other);
    }
    this.stats.lineShareAheadGrants += granted.length;
    assert(this.aheadGranted === null, 'one read copy request with lines ahead handled at a time');
    this.aheadGranted = { to: from, line, lines: granted };
    this.onRequest(from, line, true);
    // Not taken by the request's grant (the line waits): answered on its own now.
    if (this.aheadGranted === null) return;
    this.aheadGranted = null;
    this.sendShareGrant(line, from, { ahead: granted, aheadOnly: true }, granted.length > 0);
  }

  /** Whether `node` waits in the line's queue for the line (`read` false) or a read copy (true). */
  private queued(entry: DirectoryLine, node: number, read: boolean): boolean {
    return entry.queue.some((waiting) => waiting.node === node && waiting.read === read);
  }

  /**
   * Serves the line's queue in order: while a node holds the line, it is
   * recalled; read copies go to the readers at the head; the writer at the
   * head gets the line once every other read copy is dropped (asked for
   * here, answered with lineInvalidated). Re-entered from a handler inline
   * (this node's own drop or grant): every step re-reads the entry.
   */
  private advance(line: number, entry: DirectoryLine): void {
    for (;;) {
      const head = entry.queue[0];
      if (head === undefined) return;
      if (entry.owner >= 0) { this.recall(line, entry); return; }
      if (head.read) {
        entry.queue.shift();
        this.grantShare(line, entry, head.node);
        continue;
      }
      let waiting = false;
      for (const node of [...entry.sharers]) {
        if (node === head.node) continue;
        waiting = true;
        if (entry.invalidating.includes(node)) continue;
        entry.invalidating.push(node);
        this.stats.lineShareInvalidations++;
        this.toNode(node, { type: 'lineInvalidate', line });
      }
      if (waiting) return;
      entry.queue.shift();
      // A writer with a read copy: the grant takes its place.
      const k = entry.sharers.indexOf(head.node);
      if (k >= 0) entry.sharers.splice(k, 1);
      assert(entry.sharers.length === 0 && entry.invalidating.length === 0, 'a line is granted with no read copy elsewhere');
      this.grant(line, entry, head.node);
      return;
    }
  }

  /** A read copy to `to`: an acquire, as a grant's (with the line's page when this directory is its home and `to` may lack a write of it). */
  private grantShare(line: number, entry: DirectoryLine, to: number): void {
    assert(entry.owner < 0 && !entry.sharers.includes(to) && entry.sharers.length < this.nodeCount, 'a read copy goes to a node without one while nobody holds the line');
    entry.sharers.push(to);
    this.stats.lineShareGrants++;
    const ahead = this.aheadGranted;
    if (ahead !== null && ahead.to === to && ahead.line === line) {
      this.aheadGranted = null;
      this.sendShareGrant(line, to, { ahead: ahead.lines }, true);
      return;
    }
    this.sendShareGrant(line, to, {}, true);
  }

  /**
   * A lineShareGrant to `to`: with the directory's release (an acquire) when `acquire` and `to` is another
   * node, and the pages of its line and of the lines granted ahead (`ahead.ahead`, those not in the line's
   * page first: the taker loads them next) that `to` may lack a write of, within grantPagePushCountMax.
   */
  private sendShareGrant(line: number, to: number, ahead: { ahead?: number[]; aheadOnly?: true }, acquire: boolean): void {
    if (to === this.nodeId || !acquire) { this.toNode(to, { type: 'lineShareGrant', line, ...ahead }); return; }
    const info = this.inner.releaseFor(to);
    let linePush: PagePush = {};
    if (this.pagePush && this.inner.pushForLine !== undefined) {
      const pages = [this.pageOf(line)];
      for (const other of ahead.ahead ?? []) if (this.pageOf(other) !== pages[pages.length - 1]) pages.push(this.pageOf(other));
      for (const page of pages.slice(0, grantPagePushCountMax)) linePush = joinPushes(linePush, this.inner.pushForLine(page, to));
    }
    const push = joinPushes(linePush, this.pushTo(to, grantPagePushCountMax - (linePush.pushPages?.length ?? 0)));
    this.toNode(to, { type: 'lineShareGrant', line, info, ...push, ...ahead });
  }

  /** A node dropped its read copy for the writer at the queue's head. */
  private onInvalidated(from: number, line: number): void {
    const entry = this.directoryLine(line);
    const k = entry.invalidating.indexOf(from);
    const j = entry.sharers.indexOf(from);
    assert(j >= 0, 'a read copy dropped was here');
    // Asked for, or dropped unasked to make room (then an ask that crossed it is answered by it).
    if (k >= 0) entry.invalidating.splice(k, 1);
    entry.sharers.splice(j, 1);
    this.advance(line, entry);
  }

  private recall(line: number, entry: DirectoryLine): void {
    if (entry.recalling || entry.owner < 0) return;
    entry.recalling = true;
    this.stats.lineRecalls++;
    this.toNode(entry.owner, { type: 'lineRecall', line, ...(entry.queue[0]?.read === true ? { share: true as const } : {}) });
  }

  /** `keepShare`: the holder keeps a read copy (it was recalled for one). */
  private onRelease(from: number, line: number, info: ConsistencyInfo | undefined, push?: PagePush, keepShare = false): void {
    const entry = this.directoryLine(line);
    assert(entry.owner === from, 'a line is released by its holder');
    if (info !== undefined && from !== this.nodeId) this.acquireLine(from, info, push);
    entry.owner = -1;
    entry.recalling = false;
    if (keepShare) {
      assert(!entry.sharers.includes(from) && entry.sharers.length < this.nodeCount, 'a holder keeps a read copy it did not have');
      entry.sharers.push(from);
    }
    if (entry.listedTo >= 0) {
      // Back from the node that counted its notifies.
      assert(entry.listedTo === from, 'a listed line comes back from the node it is listed to');
      entry.listedTo = -1;
    }
    if (entry.heldNotifies.length > 0) {
      // The notifies held back while the line was away (listed, or held by another node than theirs) run now,
      // before the next grant: the holder's waits sent before its release are registered.
      const held = entry.heldNotifies.splice(0);
      this.heldNotifyCount -= held.length;
      for (const { from: notifier, message } of held) this.dispatch(notifier, message);
    }
    this.advance(line, entry);
  }

  private grant(line: number, entry: DirectoryLine, to: number): void {
    assert(entry.listedTo < 0, 'a line is listed to its holder only');
    entry.owner = to;
    this.stats.lineGrants++;
    const recall = entry.queue.length > 0;
    if (recall) entry.recalling = true;
    const share = recall && entry.queue[0]!.read ? { share: true as const } : {};
    if (to === this.nodeId) { this.toNode(to, { type: 'lineGrant', line, recall, ...share }); return; }
    const info = this.inner.releaseFor(to);
    // The line's page, when this directory is its home and the taker may lack a write of it (after the release above).
    const linePush = this.pagePush ? this.inner.pushForLine?.(this.pageOf(line), to) ?? {} : {};
    // And the pages `to` reads of this node's own (the subscribed pushes), within one push's limit.
    const push = joinPushes(linePush, this.pushTo(to, grantPagePushCountMax - (linePush.pushPages?.length ?? 0)));
    // No other node registers a waiter on the line while `to` holds it: its notifies may count waiters itself.
    const quiet = !this.hasWaiterOn(line);
    // Few waiters: listed, and `to` counts its own notifies while it holds the line ("Counted notifies").
    const waiting = quiet || !this.countedNotify ? null : this.waitingOn(line);
    if (waiting !== null) entry.listedTo = to;
    this.toNode(to, { type: 'lineGrant', line, recall, ...share, info, ...push, ...(quiet ? { quiet } : {}), ...(waiting === null ? {} : { waiting }) });
  }

  /**
   * A shipped op: acquire what the requester released (its bundled diffs
   * first), then run the op while this node holds the line, now or once it
   * has the line back.
   */
  private onShippedOp(from: number, message: ShippedOpMessage): void {
    assert(from !== this.nodeId, 'a node runs its own ops natively');
    const line = lineOf(message.address);
    const entry = this.directoryLine(line);
    // FIFO: the requester's release of the line (if it held it) came before its op.
    assert(entry.owner !== from && !this.queued(entry, from, false), 'a node ships ops only on a line it neither holds nor asked for');
    this.acquireShipped(from, message);
    this.runShipped(line, entry, from, message);
  }

  /** A shipped op's or wait's release at the directory: its bundled diffs applied, then the acquire (and its pushes). */
  private acquireShipped(from: number, message: ShippedOpMessage | ShippedWaitMessage): void {
    if (message.bundled !== undefined) this.applyBundled(from, message.bundled);
    this.acquireLine(from, message.info, message);
  }

  /** A release's diffs for pages homed here, bundled in its message: applied before its acquire. */
  private applyBundled(from: number, bundled: DiffBatch): void {
    const { interval, pages, diffs } = bundled;
    this.inner.onMessage(from, { type: 'diffs', interval, pages, diffs });
  }

  /**
   * A shipped op or wait that finds the line held by another node: queued with
   * the line's shipped ops (in arrival order) while the line is taken back.
   * False: this node holds the line, and the caller runs it now.
   */
  private queueShipped(line: number, entry: DirectoryLine, from: number, message: ShippedOpMessage | ShippedWaitMessage): boolean {
    if (entry.owner === this.nodeId) return false;
    if (this.shippedQueued >= atomicLineShippedCountMax) {
      throw new DsmError('DSM_ERR_ATOMIC_LINES', `a line directory queues at most ${atomicLineShippedCountMax} shipped Atomics ops`);
    }
    entry.shipped.push({ from, message });
    this.shippedQueued++;
    this.wantHere(line);
    return true;
  }

  /** Runs a shipped op if this node holds the line, else queues it and takes the line back. */
  private runShipped(line: number, entry: DirectoryLine, from: number, message: ShippedOpMessage): void {
    if (this.queueShipped(line, entry, from, message)) return;
    assert(this.inner.shippedAtomic !== undefined, 'an engine that runs shipped ops');
    this.inner.shippedAtomic(message.address, message.width, message.op, message.operands, (result) => {
      // The page was waited for (its diffs), and the line given away meanwhile:
      // the op did not run (running it and then again once the line is back
      // applied it twice: a compareExchange that took a lock then failed
      // against itself; found with deferred diffs, session 11, seed 240).
      if (result === false) { this.runShipped(line, entry, from, message); return; }
      if (result !== null) {
        entry.shippedEver = true;
        this.stats.lineOpsRun++;
        const state = this.lines.get(line);
        if (state !== undefined) state.shippedUses++;
      }
      // Its release: the requester acquires the op's write and all this node's releases before it.
      // Quiet: no waiter registered on the op's address, nor one of this node's threads between its check and its
      // registration on the line (any address: the pin says no more). Not worked out (not quiet: always safe) until
      // some node notifies on the line from afar: only such a notify uses it.
      const quiet = result !== null && entry.notifiedFromAfar && !this.waitersAt.has(message.address) && !this.host.linePinned(line);
      const info = this.inner.releaseFor(from);
      this.send(from, { type: 'lineOpDone', requestId: message.requestId, result, info, ...this.pushTo(from), ...(quiet ? { quiet } : {}) });
    }, () => entry.owner === this.nodeId);
  }

  /**
   * A shipped wait (session 15): acquire what the requester released, then
   * check the value while this node holds the line (taking it back first, as
   * for a shipped op), through the manager view: atomic against this node's
   * threads' native ops on the line, as a shipped op is.
   */
  private onShippedWait(from: number, message: ShippedWaitMessage): void {
    assert(from !== this.nodeId, 'a node checks its own waits natively');
    const line = lineOf(message.address);
    const entry = this.directoryLine(line);
    assert(entry.owner !== from && !this.queued(entry, from, false), 'a node ships waits only on a line it neither holds nor asked for');
    this.acquireShipped(from, message);
    const key = `${from}:${message.requestId}`;
    assert(!this.shippedWaitsRunning.has(key), 'a shipped wait arrives once');
    if (this.shippedWaitsRunning.size >= atomicLineShippedWaitCountMax) {
      throw new DsmError('DSM_ERR_ATOMIC_LINES', `a line directory checks at most ${atomicLineShippedWaitCountMax} shipped Atomics waits at once`);
    }
    this.shippedWaitsRunning.set(key, false);
    this.runShippedWait(line, entry, from, message);
  }

  /**
   * Checks a shipped wait if this node holds the line, else queues it with the
   * line's shipped ops (in arrival order) and takes the line back. Equal:
   * registered as a lineWait's waiter, in the same turn as the check, so any
   * store after the check (which needs the line, here or granted after this)
   * comes with a notify that finds it: no lost wake-up.
   */
  private runShippedWait(line: number, entry: DirectoryLine, from: number, message: ShippedWaitMessage): void {
    if (this.queueShipped(line, entry, from, message)) return;
    assert(this.inner.shippedAtomic !== undefined, 'an engine that runs shipped ops');
    const key = `${from}:${message.requestId}`;
    // Before the check: a thread here whose store follows it asks this layer for its notify (lineGranted's mask),
    // and no bit is set again on the line (requiet) until the check is done and the wait registered or answered.
    this.host.lineQuietClear?.(line, message.address);
    this.shippedChecks.set(line, (this.shippedChecks.get(line) ?? 0) + 1);
    this.inner.shippedAtomic(message.address, message.width, 'load', [], (result) => {
      const checks = this.shippedChecks.get(line) ?? 0;
      assert(checks > 0, 'a shipped wait checked is counted on its line');
      if (checks === 1) this.shippedChecks.delete(line); else this.shippedChecks.set(line, checks - 1);
      // The line left while the page's diffs were waited for: check again once it is back.
      if (result === false) { this.runShippedWait(line, entry, from, message); return; }
      const canceled = this.shippedWaitsRunning.get(key);
      assert(canceled !== undefined, 'a shipped wait checked is running');
      this.shippedWaitsRunning.delete(key);
      if (canceled) { this.wake(from, message.requestId, 'canceled'); return; }
      // Not homed here (lent away): the requester takes the line and checks natively.
      if (result === null) { this.wake(from, message.requestId, null); return; }
      if (result !== message.expected) { this.wake(from, message.requestId, 'not-equal'); this.requiet(line); return; }
      if (message.timeoutMs === 0) { this.wake(from, message.requestId, 'timed-out'); this.requiet(line); return; }
      this.onWait(from, message.requestId, message.address, message.timeoutMs);
    }, () => entry.owner === this.nodeId);
  }

  /** The directory's own node asks for a line for the shipped ops queued on it (no thread waits). */
  private wantHere(line: number): void {
    const state = this.nodeLine(line);
    if (state.state !== 'none') return; // asked already, or held and on its way back after a release (revoking)
    this.requestLine(line, state);
  }

  /** The directory's node holds the line again: the shipped ops queued on it run, in arrival order. */
  private runQueuedShipped(line: number): void {
    const entry = this.directory.get(line);
    if (entry === undefined || entry.shipped.length === 0) return;
    const queued = entry.shipped.splice(0);
    this.shippedQueued -= queued.length;
    for (const { from, message } of queued) {
      if (message.type === 'lineOp') this.runShipped(line, entry, from, message); else this.runShippedWait(line, entry, from, message);
    }
  }

  private onWait(from: number, requestId: number, address: number, timeoutMs: number): void {
    if (this.waiters.size >= atomicLineWaiterCountMax) {
      throw new DsmError('DSM_ERR_ATOMIC_LINES', `a line directory keeps at most ${atomicLineWaiterCountMax} Atomics.wait waiters`);
    }
    const deadlineMs = timeoutMs < 0 ? Infinity : this.timeNowMs() + timeoutMs;
    const waiter: LineWaiter = { node: from, requestId, address, deadlineMs };
    const key = `${from}:${requestId}`;
    assert(!this.waiterByRequest.has(key), 'a wait registers once');
    this.waiters.add(waiter);
    this.waiterByRequest.set(key, waiter);
    const atAddress = this.waitersAt.get(address);
    if (atAddress === undefined) this.waitersAt.set(address, [waiter]); else atAddress.push(waiter);
    if (deadlineMs !== Infinity) this.timedWaiters.add(waiter);
    const line = lineOf(address);
    // Every check before a registration cleared the bit already (a thread's, a shipped wait's); this keeps the
    // directory's node's mask true whatever the path.
    this.host.lineQuietClear?.(line, address);
    this.waiterCounts.set(line, (this.waiterCounts.get(line) ?? 0) + 1);
    if (this.waitRegistered !== null) this.waitRegistered(address);
  }

  /** Removes `waiter` from the waiters and from its line's count (the caller answers it). */
  private removeWaiter(waiter: LineWaiter): void {
    assert(this.waiters.delete(waiter), 'a waiter removed is registered');
    this.waiterByRequest.delete(`${waiter.node}:${waiter.requestId}`);
    this.timedWaiters.delete(waiter);
    const line = lineOf(waiter.address);
    const count = this.waiterCounts.get(line) ?? 0;
    assert(count > 0, 'a registered waiter is counted on its line');
    if (count === 1) this.waiterCounts.delete(line); else this.waiterCounts.set(line, count - 1);
    const list = this.waitersAt.get(waiter.address);
    const at = list?.indexOf(waiter) ?? -1;
    assert(at >= 0, 'a registered waiter is listed at its address');
    if (list!.length === 1) {
      this.waitersAt.delete(waiter.address);
      this.requiet(line);
    } else {
      list!.splice(at, 1);
    }
  }

  /** The addresses of the waiters registered on `line`, one each, or null past atomicLineGrantWaitingAddressesMax. */
  private waitingOn(line: number): number[] | null {
    const count = this.waiterCounts.get(line) ?? 0;
    if (count > atomicLineGrantWaitingAddressesMax) return null;
    const addresses: number[] = [];
    // Waits are on 4- or 8-byte elements: the line's words are every address a waiter can have.
    for (let address = line * atomicLineBytes; address < (line + 1) * atomicLineBytes && addresses.length < count; address += 4) {
      const list = this.waitersAt.get(address);
      if (list !== undefined) for (let k = 0; k < list.length; k++) addresses.push(address);
    }
    assert(addresses.length === count, 'a line\'s waiters are counted');
    return addresses;
  }

  /** Whether `line`'s holder counts its own notifies (its waiters stay until the line is back). */
  private listedAway(line: number): boolean {
    return (this.directory.get(line)?.listedTo ?? -1) >= 0;
  }

  /** Whether any waiter is registered at this directory on `line` (any of its addresses). */
  private hasWaiterOn(line: number): boolean {
    return this.waiterCounts.has(line);
  }

  private onWaitCancel(from: number, requestId: number): void {
    const key = `${from}:${requestId}`;
    // A shipped wait not checked yet: answered 'canceled' when its check comes (it never registers).
    if (this.shippedWaitsRunning.has(key)) { this.shippedWaitsRunning.set(key, true); return; }
    const waiter = this.waiterByRequest.get(key);
    if (waiter === undefined) return; // woken or timed out already: that answer is on its way
    this.removeWaiter(waiter);
    this.wake(from, requestId, 'canceled');
  }

  /** `reply` false: a counted notify, answered by its node already (woken: `count` at most, fewer only if some were canceled). */
  private onNotify(from: number, requestId: number, address: number, count: number, info: ConsistencyInfo | undefined, push?: PagePush, reply = true): void {
    if (info !== undefined && from !== this.nodeId) this.acquireLine(from, info, push);
    const wanted = count < 0 ? Infinity : count;
    let woken = 0;
    // Oldest first; removeWaiter shortens (or drops) the address's list.
    for (let list = this.waitersAt.get(address); list !== undefined && woken < wanted; list = this.waitersAt.get(address)) {
      const waiter = list[0]!;
      this.removeWaiter(waiter);
      woken++;
      this.wake(waiter.node, waiter.requestId, 'ok');
    }
    if (reply) this.toNode(from, { type: 'lineNotified', requestId, woken });
  }

  private wake(node: number, requestId: number, result: Extract<LineMessage, { type: 'lineWake' }>['result']): void {
    const info = node === this.nodeId ? undefined : this.inner.releaseFor(node);
    this.toNode(node, { type: 'lineWake', requestId, result, ...(info === undefined ? {} : { info, ...this.pushTo(node) }) });
  }

  // ------------------------------------------------------------ holder

  private onGrant(from: number, message: Extract<LineMessage, { type: 'lineGrant' }>): void {
    const { line, recall } = message;
    const state = this.lines.get(line);
    assert(state !== undefined && state.state === 'requested', 'a line is granted to a node that asked for it');
    // A read copy here is taken over by the line (the directory asked no drop of it); one asked for came first (FIFO).
    assert(state.share === 'none' || state.share === 'held', 'a line granted finds no read copy on its way or dropping');
    if (state.share === 'held') state.share = 'none';
    state.recallShare = recall && message.share === true;
    this.requestsOut--;
    this.acquireGrant(from, message);
    state.state = 'held';
    state.releasedUnasked = false;
    state.counts = null;
    // A notify of this node's sent uncounted before the grant came (while the line was asked for) may reach the
    // directory after the grant left it, and wake waiters the grant lists (the directory holds only other
    // nodes' notifies): with one in flight, this tenure does not count (its notifies ask the directory, as
    // uncounted ones do; the listing only holds other nodes' notifies until the line is back).
    if (message.waiting !== undefined && !this.notifyInFlight(line)) {
      assert(from !== this.nodeId, 'a grant lists waiters to another node only');
      state.counts = new Map();
      for (const address of message.waiting) state.counts.set(address, (state.counts.get(address) ?? 0) + 1);
    }
    // A grant to the directory's own node: its notifies are handled here, inline, anyway.
    state.quiet = message.quiet === true;
    state.grantedAtMs = this.timeNowMs();
    state.tenures++;
    state.transferMs = state.grantedAtMs - state.requestedAtMs;
    state.usedOnce = false;
    state.tenureUse = 0;
    state.usedCarry = 0;
    state.lookedAtMs = state.grantedAtMs;
    state.wantedAtMs = recall ? state.grantedAtMs : -1;
    if (recall) this.wanted.add(line);
    this.host.lineGranted(line, this.quietMaskOf(line, state, from));
    for (const threadRef of state.waiters.splice(0)) this.resume(threadRef, { ok: true, value: null });
    if (from === this.nodeId) this.runQueuedShipped(line);
  }

  /**
   * The line's quiet mask for a tenure granted now (LineHost.lineGranted,
   * session 36, docs/PROTOCOL.md "Notifies answered in the app thread"): bit k
   * set when a notify on the line's word k is one this layer would answer 0
   * with no message for as long as no thread here checks a wait's value on it
   * (the thread clears the bit before its check). At the directory's own node:
   * the words with no waiter registered (none registers but through a check
   * here: a thread's, or a shipped wait's, which clears the bit first). At
   * another node: every word when the grant said quiet and no wait of this
   * node's is out (the notify rule in onSync), else those its grant's list
   * lacks (countedNotifyOf answers those 0).
   */
  private quietMaskOf(line: number, state: NodeLine, from: number): number {
    if (!this.notifyInThread) return 0;
    if (from === this.nodeId) return wordsWithout(line, this.waitersAt);
    if (state.quiet && state.waitsOut === 0) return (1 << (atomicLineBytes / 4)) - 1;
    return state.counts === null ? 0 : wordsWithout(line, state.counts);
  }

  /**
   * Within a tenure, after a waiter on `line` left (woken, timed out,
   * canceled) or a count went down: the bits the grant's rule (quietMaskOf)
   * gives now are set again, if the line is held here and no waiter is in
   * its check (LineHost.lineRequiet's compareExchange finds the count 0; at
   * the directory, no shipped wait is in its check either). A ring buffer's
   * producer, once its consumer on the other node was woken, notified through
   * the manager for the rest of the tenure otherwise.
   */
  private requiet(line: number): void {
    if (!this.notifyInThread || this.host.lineRequiet === undefined) return;
    const state = this.lines.get(line);
    if (state === undefined || state.state !== 'held') return;
    const own = this.directoryOf(line) === this.nodeId;
    if (own && (this.shippedChecks.has(line) || this.directory.get(line)?.owner !== this.nodeId)) return;
    const bits = this.quietMaskOf(line, state, own ? this.nodeId : -1);
    if (bits !== 0) this.host.lineRequiet(line, bits);
  }

  /**
   * A grant's acquire (of the line or a read copy) from another node: the directory's release, then the pages
   * pushed with it (installed as acquireLine's).
   */
  private acquireGrant(from: number, message: { info?: ConsistencyInfo } & PagePush): void {
    if (message.info === undefined || from === this.nodeId) return;
    this.acquireLine(from, message.info);
    if (message.pushPages !== undefined && message.pushPages.length > 0) {
      assert(this.inner.installPushed !== undefined, 'a pushed page reaches an engine that installs pushes');
      this.inner.installPushed(message);
    }
  }

  /** A read copy of `line` came: an acquire from the directory's release, then the waiting loads run natively. */
  private onShareGrant(from: number, message: Extract<LineMessage, { type: 'lineShareGrant' }>): void {
    const { line } = message;
    const state = this.lines.get(line);
    assert(state !== undefined && state.share === 'requested', 'a read copy comes to a node that asked for it');
    assert(state.state === 'none' || state.state === 'requested', 'a read copy comes to a node that does not hold the line');
    this.acquireGrant(from, message);
    const asked = this.aheadAsked.get(line);
    // The request's first answer says which of its lines ahead are granted; a later grant of the line itself, nothing.
    assert((asked !== undefined) === (message.ahead !== undefined), 'lines ahead are answered, once, for a request that asked for them');
    if (asked !== undefined && message.ahead !== undefined) {
      // The request's first answer: the lines asked for ahead are copies here now, or not (asked for again if loads wait).
      this.aheadAsked.delete(line);
      const granted = new Set(message.ahead);
      for (const other of asked) {
        const otherState = this.lines.get(other);
        assert(otherState !== undefined && otherState.share === 'ahead', 'a line asked for ahead waits for its answer');
        this.requestsOut--;
        if (granted.has(other)) { this.takeShare(other, otherState, true); continue; }
        otherState.share = 'none';
        if (otherState.shareWaiters.length > 0) this.requestShare(other, otherState);
      }
    }
    if (message.aheadOnly === true) return;
    this.requestsOut--;
    this.takeShare(line, state, false);
  }

  /** A read copy of `line` is here: loads run natively, and those waiting run again. */
  private takeShare(line: number, state: NodeLine, ahead: boolean): void {
    state.share = 'held';
    state.shareAhead = ahead;
    if (!ahead) state.aheadWasted = false;
    state.shareGrantedAtMs = this.timeNowMs();
    state.shareUsed = false;
    state.shareDroppedUnasked = false;
    this.host.lineShared(line);
    for (const threadRef of state.shareWaiters.splice(0)) this.resume(threadRef, { ok: true, value: null });
  }

  /** A writer waits for the line: this node's read copy goes (now, or once used or past its minimum window). */
  private onInvalidate(line: number): void {
    const state = this.lines.get(line);
    // Dropped unasked to make room, and the drop crossed this ask: the directory counts the drop as the answer.
    if (state !== undefined && state.shareDroppedUnasked && state.share !== 'held') return;
    assert(state !== undefined && state.share === 'held', 'a read copy dropped is here');
    state.share = 'dropping';
    this.tryUnshare(line, state);
  }

  /**
   * Drops a read copy asked for (dropping): not before a thread loaded from
   * it or atomicLineHoldMsMin passed since it came (the thread that asked for
   * it loads first: no copy taken back before any use, which could go on for
   * ever), nor while a thread is inside a load on it (the next tick looks again).
   */
  private tryUnshare(line: number, state: NodeLine): void {
    assert(state.share === 'dropping', 'a read copy being dropped');
    if (!state.shareUsed && this.host.lineUsed(line) > 0) state.shareUsed = true;
    // A copy that came ahead: no thread here asked for it, so no load waits to run first.
    const early = !state.shareUsed && !state.shareAhead && this.timeNowMs() - state.shareGrantedAtMs < atomicLineHoldMsMin;
    if (early || !this.host.lineUnshare(line)) {
      this.unsharing.add(line);
      return;
    }
    this.unsharing.delete(line);
    if (state.shareAhead && !state.shareUsed) {
      // Taken ahead and dropped for a writer unused: not taken ahead again until a load here asks for a copy of it.
      this.stats.lineShareAheadUnused++;
      state.aheadWasted = true;
    }
    state.share = 'none';
    if (state.shareUsed) state.shareScore = Math.min(atomicLineShareScoreMax, state.shareScore + 1);
    this.toDirectory(line, { type: 'lineInvalidated', line });
    // Loads that found it gone ask again (after the drop on the same link); with the line asked for since, they
    // wait for it instead (a read copy asked for after it would come after the line: FIFO at the directory).
    if (state.shareWaiters.length === 0) return;
    if (state.state === 'none') this.requestShare(line, state);
    else state.waiters.push(...state.shareWaiters.splice(0));
  }

  private onRecall(line: number, share: boolean): void {
    const state = this.lines.get(line);
    // A recall can cross our release (then the directory is already satisfied) only if
    // it was sent before that release arrived: the directory sends one recall per tenure.
    // A line given back unasked, with a wait or a notify, may cross its tenure's recall:
    // that recall arrives before any next grant (FIFO), and is satisfied already.
    // (Undefined: such a line forgotten since, past atomicLineStateCountMax lines: forgetIdleLines keeps no held line.)
    if (state === undefined || (state.releasedUnasked && (state.state === 'none' || state.state === 'requested'))) return;
    assert(state !== undefined && (state.state === 'held' || state.state === 'revoking'), 'a recall reaches the node holding the line');
    if (state.state !== 'held' || state.wantedAtMs >= 0) return;
    state.recallShare = share;
    state.wantedAtMs = this.timeNowMs();
    this.wanted.add(line);
    this.considerGiving(line, state);
  }

  /**
   * A wanted line goes when its hold window since the grant has passed, or
   * earlier once a thread used it since the grant and, since the last look,
   * nobody used it or wrote it often enough for a batch to pay (idle: fewer
   * than atomicLineHotWritesPerTransfer writes per transfer time), or threads
   * only read it (a spin on Atomics.load or a wait keeps away the very writer
   * it waits for). A line not yet used once waits its window: the thread
   * that asked for it runs first.
   * Mirage's window, adapted: written hot to the end -> twice as long next
   * time (up to a multiple of what a transfer costs); idle -> half as long.
   */
  private considerGiving(line: number, state: NodeLine): void {
    const nowMs = this.timeNowMs();
    if (state.state === 'held') {
      const fresh = this.host.lineUsed(line);
      state.tenureUse = joinUse(state.tenureUse, fresh);
      const used = joinUse(state.usedCarry, fresh);
      state.usedCarry = 0;
      // Ops shipped here and run for other nodes count as writes: a line busy with them is in use.
      const shipped = state.shippedUses;
      state.shippedUses = 0;
      if (used > 0 || shipped > 0) state.usedOnce = true;
      const writes = (used >= 2 ? used - 1 : 0) + shipped;
      const sinceMs = Math.max(nowMs - state.lookedAtMs, 0);
      state.lookedAtMs = nowMs;
      const hot = writes * Math.max(state.transferMs, atomicLineHoldMsMin) >= this.hotWritesPerTransfer * Math.max(sinceMs, atomicLineHoldMsMin);
      const windowOver = nowMs - state.grantedAtMs >= state.holdMs;
      // A thread here waiting for another line of the page will use this one
      // too (a histogram's buckets): not idle, it keeps its window.
      const idle = state.usedOnce && ((used === 0 && shipped === 0) || (writes > 0 && !hot)) && !this.requestsLineOnPageOf(line);
      const readOnly = used === 1 && shipped === 0;
      // (A line not used yet since its grant is looked at again at the next tick, not at its first
      // op's end: that early a look sees too few writes to tell a hot line, measured on the counter.)
      if (!windowOver && !idle && !readOnly) return;
      if (windowOver && writes > 0 && hot) {
        const cap = Math.min(atomicLineHoldMsMax, Math.max(atomicLineHoldMsBase, atomicLineHoldTransferFactor * state.transferMs));
        state.holdMs = Math.min(cap, state.holdMs * 2);
      } else if (idle) {
        state.holdMs = Math.max(atomicLineHoldMsMin, state.holdMs / 2);
      }
      // Given up idle while another node wanted it: this node's next ops on
      // it travel to the directory rather than take the line back (not at the
      // directory itself, where the line comes back to run them).
      // So is a first tenure here that another node takes back after a few writes (a render's row counter,
      // taken for the start's add and a row's): its transfer, slow at the start, made those writes look hot.
      const firstCold = state.wantedAtMs >= 0 && state.tenures === 1 && state.tenureUse <= atomicLineFirstTenureColdWritesMax + 1;
      const shipNow = (idle || firstCold) && this.shipOps && this.directoryOf(line) !== this.nodeId && !state.ship;
      if (shipNow && state.shipSkips > 0) {
        state.shipSkips--;
      } else if (shipNow) {
        state.ship = true;
        state.shipOps = 0;
        state.shipWaitMs = 0;
        state.shipSinceMs = nowMs;
        state.shipWorkOps = 0;
        state.shipWorkMs = 0;
        state.shipBurstOps = 0;
        this.stats.lineShipSwitches++;
      }
      state.state = 'revoking';
      state.counts = null;
    }
    if (state.state !== 'revoking') return;
    // Recalled for a read copy: this node keeps one (its loads go on natively).
    const keepShare = state.recallShare && this.shareLoads;
    if (!(keepShare ? this.host.lineDowngrade(line) : this.host.lineRevoke(line))) return; // a thread is inside an op on it: ask again at the next tick
    this.wanted.delete(line);
    state.state = 'none';
    state.wantedAtMs = -1;
    state.recallShare = false;
    this.stats.lineReleases++;
    if (keepShare) {
      assert(state.share === 'none', 'a line held here has no read copy besides');
      state.share = 'held';
      state.shareGrantedAtMs = this.timeNowMs();
      state.shareUsed = true;
      this.stats.lineShareDowngrades++;
    }
    // Another node reads the line, or this node's threads only read it in this tenure: a sign it is read-shared (see shareScore).
    if (keepShare || state.tenureUse <= 1) state.shareScore = Math.min(atomicLineShareScoreMax, state.shareScore + 1);
    if (state.pulled) {
      state.pulled = false;
      this.notePull(line, state.tenureUse);
    }
    const home = this.directoryOf(line);
    // The release's diffs for pages homed at the directory (the line's own
    // page among them, when it was written) travel inside the lineRelease:
    // the directory applies them before its acquire, with one message and
    // one wake-up instead of a 'diffs' message and then the release.
    const release = home === this.nodeId ? undefined
      : this.inner.releaseBundledFor !== undefined ? this.inner.releaseBundledFor(home) : { info: this.inner.releaseFor(home) };
    this.toNode(home, { type: 'lineRelease', line, ...(release === undefined ? {} : { ...release, ...this.pushTo(home) }), ...(keepShare ? { keepShare: true as const } : {}) });
    const shippedHere = home === this.nodeId && (this.directory.get(line)?.shipped.length ?? 0) > 0;
    if ((state.waiters.length > 0 || shippedHere) && state.state === 'none') {
      // Threads asked while it was going, or ops were shipped here for it: ask again (after the release on the same link).
      this.requestLine(line, state);
    }
  }

  // ------------------------------------------------------------ time

  private timeNowMs(): number {
    if (this.clock === null) return this.nowMs;
    const nowMs = this.clock();
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    return this.nowMs;
  }

  onTick(nowMs: number): void {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    this.inner.onTick(nowMs);
    for (const { threadRef, thread, request } of this.deferredNotifies.splice(0)) this.onSync(threadRef, request, thread);
    for (const { from, message } of this.deferredRemoteNotifies.splice(0)) this.dispatch(from, message);
    this.endLineWindow();
    for (const line of [...this.unsharing]) {
      const state = this.lines.get(line);
      if (state !== undefined) this.tryUnshare(line, state);
    }
    for (const line of [...this.wanted]) {
      const state = this.lines.get(line);
      if (state !== undefined) this.considerGiving(line, state);
    }
    // In registration order (a Set iterates so; deleting the current entry is allowed).
    for (const waiter of this.timedWaiters) {
      if (waiter.deadlineMs > this.nowMs) continue;
      const line = lineOf(waiter.address);
      if (this.listedAway(line)) {
        // Its line's holder may count it: it times out once the line is back (recalled now).
        this.recall(line, this.directory.get(line)!);
        continue;
      }
      this.removeWaiter(waiter);
      this.wake(waiter.node, waiter.requestId, 'timed-out');
    }
  }

  /** The earliest time a tick has work to do here (a wanted line or a timed wait), or null. */
  nextTickMs(): number | null {
    let at = this.deferredNotifies.length > 0 || this.deferredRemoteNotifies.length > 0 ? this.nowMs : Infinity;
    // The inner engine's (a kept lock token's window).
    at = Math.min(at, this.inner.nextTickMs?.() ?? Infinity);
    for (const line of this.wanted) {
      const state = this.lines.get(line);
      if (state === undefined) continue;
      at = Math.min(at, state.state === 'revoking' ? this.nowMs : Math.min(state.grantedAtMs + state.holdMs, this.nowMs + atomicLineHoldMsMin));
    }
    for (const waiter of this.timedWaiters) if (!this.listedAway(lineOf(waiter.address))) at = Math.min(at, waiter.deadlineMs);
    for (const line of this.unsharing) {
      const state = this.lines.get(line);
      if (state !== undefined) at = Math.min(at, state.shareUsed ? this.nowMs : Math.min(state.shareGrantedAtMs + atomicLineHoldMsMin, this.nowMs + atomicLineHoldMsMin));
    }
    return Number.isFinite(at) ? at : null;
  }
}
