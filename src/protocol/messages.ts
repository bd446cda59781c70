// Messages between protocol engines. Plain objects (numbers, strings,
// booleans, arrays, Uint8Array) so msgpackr encodes them without help.
// Every message has a `type`; the engine dispatches on it in one switch.

/** One closed interval of a node: the pages it wrote (its write notices). */
export interface IntervalRecord {
  node: number;
  /** 1-based interval number of `node`. */
  index: number;
  pages: number[];
}

/** What a sync message carries for lazy release consistency (hlrc). */
export interface ConsistencyInfo {
  /** The sender's applied vector timestamp: what the receiver must acquire. */
  vc: number[];
  /** The sender's known-interval vector (its log extent per node). */
  known: number[];
  /** Intervals the sender believes the receiver lacks. */
  intervals: IntervalRecord[];
}

/** A writer's diffs for pages homed at the receiver, completing the writer's interval `interval`. */
export interface DiffBatch { interval: number; pages: number[]; diffs: Uint8Array[] }

export type AtomicOp =
  | 'load' | 'store' | 'add' | 'sub' | 'and' | 'or' | 'xor' | 'exchange' | 'compareExchange'
  | 'wait' | 'notify';

/** The Atomics ops a node may ship to a line's directory (wait and notify have their own line messages). */
export type ShippedOp = Exclude<AtomicOp, 'wait' | 'notify'>;

export type ProtocolMessage =
  // hlrc: pages and diffs
  /**
   * `extraPages` (with their `extraNeeds`) are the following pages with the same
   * home that are invalid at the requester and not being fetched: a prefetch,
   * at most prefetchPageCountMax - 1 of them.
   */
  /** `origin`: the requester, when an old home forwards the request to the page's new home (absent: the sender). */
  /** `ahead`: a window streaming read-ahead issued (no thread waits for `page`): the home does not subscribe the requester to its pushes. */
  | { type: 'pageRequest'; page: number; need: number[]; extraPages: number[]; extraNeeds: number[][]; origin?: number; ahead?: boolean }
  /**
   * Carries the extra pages whose home copy covered their need when `page` was served (others are left out).
   * Empty `bytes`: `page` was lent to the requester meanwhile (it is its home now; only extras are served).
   */
  | {
    type: 'pageReply'; page: number; version: number[]; bytes: Uint8Array;
    extraPages: number[]; extraVersions: number[][]; extraBytes: Uint8Array[];
  }
  /** Diffs for pages homed at the receiver; `interval` is the writer's interval they complete. */
  /** `origin`: the writer, when an old home forwards diffs to the page's new home (absent: the sender). */
  | { type: 'diffs'; interval: number; pages: number[]; diffs: Uint8Array[]; origin?: number }
  /**
   * Home migration (lend): the static home hands pages over to the node that
   * alone wrote them; per page its master copy, the version vector it covers
   * and how many diffs it applied per writer. The receiver is their home from then on.
   */
  | { type: 'homeLend'; pages: number[]; versions: number[][]; applied: number[][]; bytes: Uint8Array[] }
  // sc: Li-Hudak fixed distributed manager
  | { type: 'scRequest'; page: number; requester: number; isWrite: boolean }
  | { type: 'scForward'; page: number; requester: number; isWrite: boolean; copyset: number[] }
  | { type: 'scPage'; page: number; isWrite: boolean; bytes: Uint8Array; copyset: number[] }
  | { type: 'scInvalidate'; page: number; requester: number }
  | { type: 'scInvalidateAck'; page: number }
  | { type: 'scConfirm'; page: number; isWrite: boolean }
  // sync: mutex, barrier, atomics. `bundled`: the diffs of the
  // release before this message for pages homed at its receiver (one message
  // instead of two; the receiver applies them first, as if they came just before).
  | { type: 'lockRequest'; bundled?: DiffBatch; lockId: number; requestId: number; tryOnly: boolean; info: ConsistencyInfo }
  /** `granted` false answers a tryOnly request for a lock that was not free (the requester acquires nothing). */
  /**
   * `pushPages` (optional): copies of pages the previous holder wrote in its
   * critical section, from their home (the manager), installed like fetched pages.
   */
  | {
    type: 'lockGrant'; lockId: number; requestId: number; granted: boolean; info: ConsistencyInfo;
    pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[];
    /** Another node already waits: give the token back at the holder's unlock instead of keeping it (issue 12). */
    recall?: boolean;
    /**
     * From the manager: the node that waits next (its request id, and whether
     * its grant must carry the recall flag). At its unlock the holder grants
     * the lock to it directly (a lockGrant from holder to next holder with the
     * write notices), unless its release has diffs for pages homed at the
     * manager: then it goes back in a lockRelease, which carries them, and the
     * manager grants (issue 12).
     */
    next?: { node: number; requestId: number; recall: boolean };
  }
  /**
   * Manager to the node where a lock's token rests: another node wants it.
   * A free token goes back at once (lockRelease); a held one at its unlock,
   * or, for `tryOnly`, the holder answers lockBusy and keeps it.
   */
  /** `early`: the token may still be on its way to the receiver (a direct handoff): a node waiting for it takes the recall with it. */
  | { type: 'lockRecall'; lockId: number; tryOnly: boolean; early?: boolean }
  /** The answer to a tryOnly lockRecall whose token was held by a thread: the oldest tryOnly waiter gets 'busy'. */
  | { type: 'lockBusy'; lockId: number }
  /** `reuses`: for a token granted to rest (no recall), how many times its node re-acquired it with no message. */
  | { type: 'lockRelease'; bundled?: DiffBatch; lockId: number; info: ConsistencyInfo; reuses?: number }
  /**
   * Arrivals at a barrier (issue 12.3), to its manager or, combined, up the
   * round's tree. `arrivals`: the threads' arrivals it carries, pairs (node,
   * requestId): one (a flat arrival) or all those of the sender's node and of
   * the nodes below it in the tree. `round`: the round the sender's plan
   * (barrierDepart.plan) made this for; absent for a flat arrival (it counts in
   * the manager's open round). `vcMax`/`vcMin`: the element-wise max and min of
   * the applied vectors of the nodes it speaks for (absent: info.vc).
   * `flushed`: sent past the plan (a barrierFlush, or the plan did not hold).
   * `push*`: pages homed at the sender that the manager's node fetched before
   * and the sender wrote since (see hlrc pushForBarrier); only to the manager,
   * or to the other node of a two-node round.
   * `peer`: a two-node round's arrival (session 13), from either node to the
   * other, which departs its own threads once it holds both.
   * `peerFlushed`: the other node's answer to the manager's barrierFlush of a
   * two-node round (its arrivals not sent, maybe none).
   */
  | {
    type: 'barrierArrive'; bundled?: DiffBatch; barrierId: number; parties: number; arrivals: number[]; info: ConsistencyInfo;
    round?: number; vcMax?: number[]; vcMin?: number[]; flushed?: boolean; peer?: boolean; peerFlushed?: boolean;
    pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[];
  }
  /**
   * From the manager to each node with threads in the round: `requestIds` of
   * that node's arrivals, `serial` the one that is told it is serial (0: none
   * here). `plan`: how the node sends its next round's arrivals (issue 12.3):
   * once `local` threads of its own have arrived and each of `children` nodes
   * has sent its combined arrival, one barrierArrive to `parent`.
   * `push*`: as barrierArrive's, from the manager.
   */
  | {
    type: 'barrierDepart'; barrierId: number; requestIds: number[]; error: string; serial: number; floor: number[]; info: ConsistencyInfo;
    plan?: BarrierPlan;
    pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[];
  }
  /** The round's arrivals did not follow the plan: every node sends what it holds of `round` to the manager and goes flat until its next plan. */
  | { type: 'barrierFlush'; barrierId: number; round: number }
  | {
    type: 'atomicRequest'; bundled?: DiffBatch; requestId: number; op: AtomicOp; address: number; width: number;
    operands: string[]; timeoutMs: number; info: ConsistencyInfo;
    /** The requesting node, when the page's static home forwards the request to the node it lent the page to. */
    origin?: number;
  }
  | { type: 'atomicReply'; requestId: number; result: string; info: ConsistencyInfo }
  /** The thread behind an Atomics.wait is gone: the home drops the waiter (no answer). */
  | { type: 'atomicCancel'; requestId: number; origin?: number }
  // Atomics by ownership (src/protocol/lines.ts): a line's transfers through its directory.
  | { type: 'lineRequest'; line: number }
  /** `share` (session 34): the first node waiting wants a read copy: the holder keeps one (lineRelease's `keepShare`). */
  | { type: 'lineRecall'; line: number; share?: true }
  /** `info`: the holder's release (absent when the holder is the directory itself). `keepShare`: the holder keeps a read copy. */
  | { type: 'lineRelease'; line: number; info?: ConsistencyInfo; bundled?: DiffBatch; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[]; keepShare?: true }
  // Read copies of a line (session 34, docs/PROTOCOL.md "Read copies of a line"): loads on any number of nodes, no writer.
  /** `ahead` (session 35): lines of the same page whose copies the node asks for too, where they can be had at once (no thread waits for them). */
  | { type: 'lineShareRequest'; line: number; ahead?: number[] }
  /**
   * An acquire, as a lineGrant's (with its page from its home when the taker may lack a write of it). `ahead`: the
   * lines asked for ahead that are granted with it (the others are not); `aheadOnly`: the answer to the request's
   * `ahead` alone, sent at once while `line` itself waits (its grant follows, with no `ahead`).
   */
  | { type: 'lineShareGrant'; line: number; info?: ConsistencyInfo; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[]; ahead?: number[]; aheadOnly?: true }
  /** A writer waits for the line: drop the read copy and say so (no release: loads release nothing). */
  | { type: 'lineInvalidate'; line: number }
  /** `more` (session 35): other lines' copies dropped unasked with it, to make room (makeRoom), for the same directory. */
  | { type: 'lineInvalidated'; line: number; more?: number[] }
  /** `recall`: another node already waits for the line (its hold window starts now). */
  /** `push*`: a copy of the line's page from its home, the directory (hlrc, see HlrcCoherence.pushForLine). */
  /** `quiet`: no Atomics.wait waiter was registered on the line when it was granted (see LineLayer, "Notifies that wake nobody"). */
  /**
   * `waiting` (session 17): the addresses of the waiters registered on the line, one each (at most
   * atomicLineGrantWaitingAddressesMax): the holder counts its notifies itself until it gives the line back.
   */
  /** `share`: the first node waiting (`recall`) wants a read copy: the holder keeps one when it gives the line back. */
  | { type: 'lineGrant'; line: number; recall: boolean; share?: true; info?: ConsistencyInfo; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[]; quiet?: boolean; waiting?: number[] }
  /** A thread that found the value equal while its node held the line waits at the directory. */
  /**
   * `release` (session 17): the waiting thread parks, and its node gives the line back with the wait (a release as
   * lineRelease's: `info`, `bundled`, pushes): the directory registers the waiter, then takes the line back.
   */
  | { type: 'lineWait'; requestId: number; address: number; timeoutMs: number; release?: true; info?: ConsistencyInfo; bundled?: DiffBatch; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }
  | { type: 'lineWaitCancel'; requestId: number }
  /** `count` -1: all. `info`: the notifier's release. */
  /**
   * `release` (session 17): the notifier's node held the line and gives it back with the notify (its release as
   * lineRelease's, `bundled` its diffs for pages homed at the directory): the directory wakes, then takes the line back.
   */
  /** `counted`: the holder counted it from its grant's `waiting` list and answered its thread: wake `count`, answer nothing. */
  | { type: 'lineNotify'; requestId: number; address: number; count: number; info?: ConsistencyInfo; release?: true; counted?: true; bundled?: DiffBatch; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }
  /**
   * A shipped wait (session 15): the requester's release (bundled as lineOp's),
   * then the wait, which the directory checks against `expected` (raw bits)
   * while its node holds the line and registers as a lineWait's waiter, or
   * answers at once. Answered with lineWake ('not-equal' and 'timed-out' at
   * once, with the directory's release; null: not run, the page is not homed
   * at the directory: the requester asks for the line).
   */
  | { type: 'lineWaitShip'; requestId: number; address: number; width: 4 | 8; expected: string; timeoutMs: number; info: ConsistencyInfo; bundled?: DiffBatch; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }
  | { type: 'lineWake'; requestId: number; result: 'ok' | 'timed-out' | 'canceled' | 'not-equal' | null; info?: ConsistencyInfo; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }
  | { type: 'lineNotified'; requestId: number; woken: number }
  /**
   * A shipped op (issue 12, session 9): the requester's release (with its
   * diffs for pages homed at the directory, as lineRelease bundles them), then
   * the op, which the directory runs natively on its own copy of the line while
   * its node holds the line (taking it back first if another node holds it).
   */
  | { type: 'lineOp'; requestId: number; op: ShippedOp; address: number; width: 1 | 2 | 4 | 8; operands: string[]; info: ConsistencyInfo; bundled?: DiffBatch; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }
  /** The directory's answer: the op's result (raw bits) and its release; `result` null: not run (the requester asks for the line). */
  /** `quiet`: no waiter was registered on the op's address, nor one of the directory's threads between its check and its registration on the line, when the op ran. */
  | { type: 'lineOpDone'; requestId: number; result: string | null; info: ConsistencyInfo; quiet?: boolean; pushPages?: number[]; pushVersions?: number[][]; pushBytes?: Uint8Array[]; pushApplied?: number[] }
  // hlrc: stale copies between synchronizations (src/protocol/stale.ts)
  /**
   * A node with no synchronization for a while, to a home: its clean copies of
   * the home's `pages`, two 32-bit hashes of each copy's bytes (`hashes`, two a
   * page), and how many entries of the home's written log it has seen.
   */
  | { type: 'staleQuery'; pages: number[]; hashes: number[]; writtenFrom: number }
  /** The home's answer: the named copies whose bytes differ from its own, and its written log from the query's cursor to `writtenTo`. */
  | { type: 'staleReply'; changed: number[]; written: number[]; writtenTo: number }
  // hlrc log reclamation without barriers
  /** The sender's log is long: the receiver learns `info`, acquires all it knows and reports its applied vc. */
  | { type: 'vcQuery'; info: ConsistencyInfo }
  | { type: 'vcReport'; vc: number[] };

/**
 * A node's part in a barrier's next round (barrierDepart.plan). `peerLocal`:
 * the round is a two-node one with the manager (`parent`), which expects
 * this many threads of its own (src/protocol/barriers.ts, PeerRound).
 */
export interface BarrierPlan { round: number; parties: number; parent: number; local: number; children: number; peerLocal?: number }

export type ProtocolMessageType = ProtocolMessage['type'];
