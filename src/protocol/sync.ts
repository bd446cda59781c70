// The synchronization layer, the same for every coherence protocol: sync
// requests in flight and their cancellation, mutexes (lock tokens that rest
// at their last holder's node, the manager's queue, recalls, tryLock),
// barriers (barriers.ts, to which it routes theirs), and node-local release/acquire. (The runtime's Condition is built
// on Atomics wait/notify: the atomics home, atomics.ts.) A release or an
// acquire is asked of the coherence (closeInterval, acquire), which decides
// what it means (sc: nothing). Atomics are the atomics home's (atomics.ts),
// which files its requests here (SyncRequests). Managers of ids: see
// EngineContext.managerOf.
// Over 600 lines: a mutex's token, queue, recall, direct hand-off and keep
// window (session 10) are one state machine over one Token and LockState, and
// the requests in flight and their cancellation cross all of it; the keep
// window's policy (its arithmetic, no state of a token) is apart, lock-keep.ts.

import { DsmError, assert } from '../errors.js';
import { PushPredictor } from './push-predict.js';
import { grantPagePushCountMax, lockIdCountMax, lockKeepIdleMs, lockKeepMsMax, lockKeepTakeCountMax, lockPushConfidenceMax, lockPushConfidenceMin, lockRestProbeGrantInterval, syncInFlightCountMax, syncQueueCountMax } from '../constants.js';
import type { Coherence, GrantPush } from './coherence.js';
import type { EngineContext } from './context.js';
import type { Intervals } from './intervals.js';
import type { ConsistencyInfo, ProtocolMessage } from './messages.js';
import { Barriers, syncObjectsError, type BarrierRequests } from './barriers.js';
import type { SyncRequest, SyncResult } from './types.js';
import { claimToken, delegateToken } from './token-table.js';
import { LockKeepPolicy, type KeepOutcome } from './lock-keep.js';

/** A lockGrant's requestId when the manager pushes the token ahead of any request (request ids start at 1). */
const pushRequestId = 0;
/** What a pushed token that went back untaken costs its lock's push confidence (a right guess adds 1): pushes go on while at least 2 in 3 are taken. */
const lockPushMissPenalty = 2;

/** What the atomics home needs of the request table. */
export interface SyncRequests {
  /** Files a request of `threadRef`; returns its id. Atomics name the home it goes to and whether it is a wait. */
  newRequest(threadRef: number, kind: string, extra?: { home?: number; isWait?: boolean }): number;
  /** Answers a request (or drops the answer of a canceled one). */
  finish(requestId: number, result: SyncResult): void;
  /** A canceled request of this node will get no answer: forget it. */
  forgetCanceled(requestId: number): void;
}

interface PendingRequest {
  threadRef: number; kind: string; lockId?: number; threadId?: number;
  /** Atomics: the home the request went to, and whether it is a wait. */
  home?: number; isWait?: boolean;
}

/** A lock token at this node (see SyncLayer.tokens). */
interface Token {
  recalled: boolean;
  waiters: Array<{ threadRef: number; threadId: number }>;
  /** Granted to rest (no recall flag), and the re-acquires at this node since, reported with its release. */
  resting: boolean; reuses: number;
  /** The node the manager named to take the token next (lockGrant.next): the unlock grants it directly. */
  next?: { node: number; requestId: number; recall: boolean };
  /** In the node's lock token table (token-table.ts): `held` says nothing of it until the layer claims it back. */
  delegated: boolean;
  /** When the token came to this node (ms): its keep window counts from here. */
  arrivedAtMs: number;
  /**
   * Kept after a recall while this node's threads still take it (lock-keep.ts):
   * the window's end (ms), or -1 when not keeping. At most one keep per tenure (`keepEnded`).
   */
  keepUntilMs: number;
  keepEnded: boolean;
  /** While kept: when the layer last saw it taken or held here (for the idle release), and the takes since the keep began. */
  keepLookMs: number;
  keepTakes: number;
  /** Sent ahead by the manager (a lockGrant with no request, requestId 0): rests free here until a thread takes it once, goes back at that unlock. */
  pushed?: boolean;
}

/** At a lock's manager. */
interface LockState {
  /** The node the token is at (held by a thread there, or resting unused): -1 when it is here at the manager. */
  holderNode: number;
  /** `vc`: what the requester had applied when it asked (a lower bound). `tryOnly`: waits only for the holder's answer to a recall. */
  queue: Array<{ node: number; requestId: number; vc: number[]; tryOnly: boolean }>;
  /** A recall (plain, not tryOnly) went to the holder since its grant: it gives the token back at its unlock. */
  recalled: boolean;
  /**
   * The last token left to rest was not re-acquired at its node before it was
   * recalled: grants carry the recall flag (the token goes back at the unlock,
   * no lockRecall needed), all but every lockRestProbeGrantInterval-th.
   */
  eager: boolean;
  eagerGrantCount: number;
  vc: number[];
  /**
   * The holder `from` was granted the token with `next` (lockGrant.next): it
   * hands it to `node` directly at its unlock (holderNode is `node` already),
   * or gives it back here (a lockRelease from `from`) and the manager grants.
   * Cleared by either release.
   */
  passing: { from: number; node: number; requestId: number; vc: number[] } | null;
  /** The latest releases, newest last: node and the interval it closed at the release (at most grantPagePushCountMax). */
  releases: Array<{ node: number; index: number }>;
  /** Where each node's critical sections under this lock write (push-predict.ts): what a grant pushes. Made at the first release. */
  predictor: PushPredictor | null;
  /**
   * Token pushes (session 23). Phases are this node's barrier departures
   * (SyncLayer.barrierEpoch): `phaseTakers` are the nodes that took the token
   * in phase `phase`, the last phase with a taker so far, `lastPhaseTakers`
   * those of the phase with takers before it. When the token comes back to a
   * free lock with no queue, the guess is the node that took it in that
   * phase and not yet in this one, if just one and not this node (a
   * reduction under a lock once per node between barriers: Water's energy
   * sum). `pushConfidence` (0..lockPushConfidenceMax) counts how often the
   * guess named the next taker lately; at lockPushConfidenceMin the manager
   * sends the token to the guess ahead of its request (`pushed`: that tenure
   * is a push not yet known taken).
   */
  phase: number;
  phaseTakers: number[];
  lastPhaseTakers: number[];
  guess: number;
  pushConfidence: number;
  pushed: boolean;
}

export class SyncLayer implements SyncRequests, BarrierRequests {
  // -- requests of this node's threads
  /** The id of the next request. */
  private requestIdNext = 1;
  /** Requests sent and not answered yet. */
  private readonly pending = new Map<number, PendingRequest>();
  /** Requests whose thread is gone (cancel): their answers are dropped, a granted lock released. */
  private readonly canceled = new Map<number, { kind: string; lockId?: number }>();

  // -- locks at this node (as a holder)
  /** Locks this node holds: lockId -> threadId. */
  private readonly held = new Map<number, { threadId: number }>();
  /**
   * Lock tokens at this node (issue 12): a lock stays with the node of its last
   * holder until its manager recalls it, so a re-acquire here costs no message
   * (TreadMarks' locks stay with their last owner likewise). `recalled`: another
   * node waits, so the token goes back at the next unlock. Every held lock has its token here.
   * `waiters`: threads of this node waiting for a held token nobody recalled;
   * the unlock hands it to the first (no message).
   */
  private readonly tokens = new Map<number, Token>();
  /**
   * Locks recalled while their token was on its way to this node (a direct
   * handoff from the previous holder races the manager's recall): the grant,
   * when it comes, carries the recall.
   */
  private readonly earlyRecalls = new Set<number>();
  /** This node's lock requests a pushed token served before the manager's answer came (onLockPushed): that answer is not a grant. */
  private readonly crossedRequests = new Set<number>();
  /** Locks whose recalled token this node keeps for its own threads (Token.keepUntilMs), looked at by every tick. */
  private readonly keeping = new Set<number>();
  /** The keep windows (lock-keep.ts), or null: a recalled token goes at the unlock (off, or race mode). */
  private readonly keepPolicy: LockKeepPolicy | null;
  /** The clock handed in (EngineOptions.clock), or null: the last tick's time. */
  private readonly clock: (() => number) | null;
  /** As a manager: a free token goes ahead to the node predicted to take it next (LockState.phase). */
  private readonly lockPush: boolean;
  /** Barrier departures of this node's threads so far: the phases of token pushes (LockState.phase). */
  private barrierEpoch = 0;
  private nowMs = 0;

  // -- at this node as a manager
  /** Locks managed here that are held, queued, or keep a release vector. */
  private readonly locks = new Map<number, LockState>();
  /** Barriers (barriers.ts), as a manager and as a node of their rounds. */
  private readonly barrierLayer: Barriers;

  constructor(
    private readonly ctx: EngineContext, private readonly intervals: Intervals, private readonly coherence: Coherence,
    keep: { lockKeep?: boolean; clock?: () => number; peerBarriers?: boolean; lockPush?: boolean } = {},
  ) {
    this.barrierLayer = new Barriers(ctx, intervals, coherence, this, keep.peerBarriers ?? true);
    // Race mode: every lock bounds the intervals the race report names, so no node keeps a token for more takes.
    this.keepPolicy = keep.lockKeep === true && ctx.homeNode < 0 ? new LockKeepPolicy() : null;
    this.clock = keep.clock ?? null;
    // Race mode: every lock is a request (see grantNext), never a push.
    this.lockPush = keep.lockPush !== false && ctx.homeNode < 0;
  }

  tableSizes(): Record<string, number> {
    return {
      canceled: this.canceled.size, held: this.held.size, pending: this.pending.size,
      locks: this.locks.size, tokens: this.tokens.size,
      tokenWaiters: [...this.tokens.values()].reduce((sum, token) => sum + token.waiters.length, 0),
      tokensRecalled: [...this.tokens.values()].filter((token) => token.recalled).length,
      earlyRecalls: this.earlyRecalls.size, keeping: this.keeping.size, crossedRequests: this.crossedRequests.size,
      ...this.barrierLayer.tableSizes(),
    };
  }

  // ------------------------------------------------------- requests

  newRequest(threadRef: number, kind: string, extra?: { lockId?: number; threadId?: number; home?: number; isWait?: boolean }): number {
    assert(this.pending.size < syncInFlightCountMax, 'sync requests in flight within limit');
    const requestId = this.requestIdNext++;
    this.pending.set(requestId, { threadRef, kind, ...extra });
    return requestId;
  }

  /**
   * The thread behind `threadRef` is gone (Engine.cancel). A wait parked at an
   * atomics home is named to `cancelWait`, which tells the home.
   */
  cancel(threadRef: number, cancelWait: (requestId: number, home: number) => void): boolean {
    // A thread waiting here for a token held on this node: nothing was sent for it.
    for (const token of this.tokens.values()) {
      const k = token.waiters.findIndex((waiter) => waiter.threadRef === threadRef);
      if (k >= 0) { token.waiters.splice(k, 1); return true; }
    }
    for (const [requestId, entry] of this.pending) {
      if (entry.threadRef !== threadRef) continue;
      this.pending.delete(requestId);
      // Exactly one answer still comes (the result, or 'canceled' for a wait
      // removed at its home): it finds the request here and is dropped.
      assert(this.canceled.size < syncInFlightCountMax, 'canceled requests within limit');
      this.canceled.set(requestId, { kind: entry.kind, ...(entry.lockId === undefined ? {} : { lockId: entry.lockId }) });
      if (entry.kind === 'atomic' && entry.isWait === true && entry.home !== undefined) cancelWait(requestId, entry.home);
      return true;
    }
    return false;
  }

  forgetCanceled(requestId: number): void { this.canceled.delete(requestId); }

  /** Whether one of `requestIds` is a request of this node's still pending. */
  anyPending(requestIds: number[]): boolean {
    return requestIds.some((id) => this.pending.has(id));
  }

  /** `recalled`: for a granted lock, whether another node already waits for it. */
  finish(requestId: number, result: SyncResult, recalled = false, next?: Token['next']): void {
    const gone = this.canceled.get(requestId);
    if (gone !== undefined) {
      this.canceled.delete(requestId);
      // The token goes back at once: a recall that came ahead of it is answered by that release.
      if (gone.kind === 'lock' && result.ok && result.value === null) this.earlyRecalls.delete(gone.lockId!);
      // A lock granted to a thread that is gone is released at once.
      if (gone.kind === 'lock' && result.ok && result.value === null) {
        this.coherence.closeInterval();
        const manager = this.ctx.managerOf(gone.lockId!);
        this.ctx.deliver(manager, () => ({ type: 'lockRelease', lockId: gone.lockId!, info: this.intervals.infoTo(manager) }));
      }
      return;
    }
    const entry = this.pending.get(requestId);
    assert(entry !== undefined, 'a reply answers a pending request');
    this.pending.delete(requestId);
    if (entry.kind === 'barrier') this.barrierEpoch++;
    if (entry.kind === 'lock' && result.ok && result.value === null) {
      assert(!this.tokens.has(entry.lockId!), 'a lock is granted to a node that does not have its token');
      this.held.set(entry.lockId!, { threadId: entry.threadId! });
      const recall = recalled || next !== undefined || this.earlyRecalls.delete(entry.lockId!);
      this.tokens.set(entry.lockId!, {
        recalled: recall, waiters: [], resting: !recall, reuses: 0, delegated: false, ...(next === undefined ? {} : { next }),
        arrivedAtMs: this.timeNowMs(), keepUntilMs: -1, keepEnded: false, keepLookMs: 0, keepTakes: 0,
      });
      // Before the thread runs on: its unlock can then be one compareExchange.
      this.delegate(entry.lockId!);
    }
    this.ctx.host.resume(entry.threadRef, result);
  }

  // --------------------------------------------------- app requests

  /** Every sync request but 'atomic' (the atomics home's). */
  onSync(threadRef: number, request: Exclude<SyncRequest, { kind: 'atomic' }>): void {
    const host = this.ctx.host;
    switch (request.kind) {
      case 'release':
        this.coherence.closeInterval();
        host.resume(threadRef, { ok: true, value: null });
        return;
      case 'acquire':
        // A node-local acquire: what this node's log holds is all it can know.
        this.coherence.acquire(this.intervals.known);
        host.resume(threadRef, { ok: true, value: null });
        return;
      case 'lock': {
        this.claim(request.lockId);
        const token = this.tokens.get(request.lockId);
        if (token !== undefined && !this.held.has(request.lockId)) {
          assert(token.waiters.length === 0, 'an awaited token goes on at its unlock, it never rests');
          if (token.pushed === true) {
            // Pushed ahead of this take (no message): taken once, it goes back at the unlock.
            token.pushed = false;
            this.ctx.stats.lockPushesTaken = (this.ctx.stats.lockPushesTaken ?? 0) + 1;
          } else if (token.recalled) {
            // Free and recalled: only while kept for this node's threads (else it went at the unlock or a tick).
            assert(token.keepUntilMs >= 0, 'a recalled token rests only while kept');
            if (!this.keepOpen(request.lockId, token)) {
              // The window (or its take budget) is over: the token goes, and this thread asks behind the node that waits.
              this.endKeep(request.lockId, token, this.keepOverOutcome(token));
              this.releaseToken(request.lockId);
              this.requestLock(threadRef, request.lockId, request.threadId, request.tryOnly === true);
              return;
            }
            this.keptTake(token);
          }
          // The token rests here from this node's last holder: no message, and
          // nothing to acquire (every write under the lock was made on this node).
          this.held.set(request.lockId, { threadId: request.threadId });
          this.ctx.stats.lockTokenReuses = (this.ctx.stats.lockTokenReuses ?? 0) + 1;
          token.reuses++;
          this.delegate(request.lockId);
          host.resume(threadRef, { ok: true, value: null });
          return;
        }
        if (token !== undefined && request.tryOnly === true) {
          this.delegate(request.lockId);
          host.resume(threadRef, { ok: true, value: 'busy' });
          return;
        }
        if (token !== undefined && (!token.recalled || this.keepOpen(request.lockId, token))) {
          // Held by another thread of this node, nobody else asked (or the token is
          // kept for this node's threads): wait here for its unlock.
          assert(token.waiters.length < syncQueueCountMax, 'lock waiters within limit');
          token.waiters.push({ threadRef, threadId: request.threadId });
          return;
        }
        this.requestLock(threadRef, request.lockId, request.threadId, request.tryOnly === true);
        return;
      }
      case 'unlock': {
        this.claim(request.lockId);
        const held = this.held.get(request.lockId);
        if (held === undefined || held.threadId !== request.threadId) {
          this.delegate(request.lockId);
          host.resume(threadRef, {
            ok: false, code: 'DSM_ERR_NOT_OWNER',
            message: `mutex ${request.lockId} unlocked by thread ${request.threadId}, which does not hold it`,
          });
          return;
        }
        this.held.delete(request.lockId);
        const token = this.tokens.get(request.lockId);
        assert(token !== undefined, 'a held lock has its token here');
        host.resume(threadRef, { ok: true, value: null });
        if (token.recalled && this.keepOpen(request.lockId, token)) {
          // Another node asked, but this node's threads still take it: keep it
          // for the window (a local waiter takes it now, or it waits free for the next take).
          token.keepLookMs = this.timeNowMs();
          const kept = token.waiters.shift();
          if (kept !== undefined) {
            this.held.set(request.lockId, { threadId: kept.threadId });
            this.keptTake(token);
          }
          this.delegate(request.lockId);
          if (kept !== undefined) host.resume(kept.threadRef, { ok: true, value: null });
          return;
        }
        if (token.recalled) {
          if (token.keepUntilMs >= 0) this.endKeep(request.lockId, token, this.keepOverOutcome(token));
          this.releaseToken(request.lockId);
          // This node's waiters queue at the manager behind the node that asked.
          for (const waiter of token.waiters) this.requestLock(waiter.threadRef, request.lockId, waiter.threadId, false);
          return;
        }
        const next = token.waiters.shift();
        // Nobody else asked: the next thread of this node takes it, or it rests here until someone does (no message).
        if (next !== undefined) {
          this.held.set(request.lockId, { threadId: next.threadId });
          this.ctx.stats.lockTokenReuses = (this.ctx.stats.lockTokenReuses ?? 0) + 1;
          token.reuses++;
        }
        this.delegate(request.lockId);
        if (next !== undefined) host.resume(next.threadRef, { ok: true, value: null });
        return;
      }
      case 'barrier':
        this.barrierLayer.arrive(threadRef, request.barrierId, request.parties);
        return;
    }
  }

  private requestLock(threadRef: number, lockId: number, threadId: number, tryOnly: boolean): void {
    const manager = this.ctx.managerOf(lockId);
    this.coherence.closeInterval(manager);
    const requestId = this.newRequest(threadRef, 'lock', { lockId, threadId });
    this.ctx.deliver(manager, () => ({ type: 'lockRequest', lockId, requestId, tryOnly, info: this.intervals.infoTo(manager) }));
  }

  // ------------------------------------------------------- messages

  /** The sync layer's messages (locks, barriers). */
  onMessage(from: number, message: ProtocolMessage): void {
    switch (message.type) {
      case 'lockRequest': return this.onLockRequest(from, message.lockId, message.requestId, message.tryOnly, message.info);
      case 'lockRelease': return this.onLockRelease(from, message.lockId, message.info, message.reuses);
      case 'lockGrant': return this.onLockGrant(from, message);
      case 'lockRecall': return this.onLockRecall(message.lockId, message.tryOnly, message.early === true);
      case 'lockBusy': return this.onLockBusy(from, message.lockId);
      case 'barrierArrive': case 'barrierDepart': case 'barrierFlush': return this.barrierLayer.onMessage(from, message);
      default:
        assert(false, `the sync layer got a message it does not speak: ${message.type}`);
    }
  }

  // ------------------------------------------------- locks (holder side)

  private onLockGrant(from: number, message: Extract<ProtocolMessage, { type: 'lockGrant' }>): void {
    this.intervals.learn(from, message.info);
    if (message.requestId === pushRequestId) { this.onLockPushed(message); return; }
    if (this.crossedRequests.delete(message.requestId)) { this.onCrossedGrant(message); return; }
    if (!message.granted) { this.finish(message.requestId, { ok: true, value: 'busy' }); return; }
    this.coherence.acquire(message.info.vc, message.pushPages);
    this.coherence.installPushed(message);
    this.finish(message.requestId, { ok: true, value: null }, message.recall === true, message.next);
  }

  /**
   * A token the manager sent ahead of any request (LockState.after): it
   * rests here, not in the node's table, for one take, whose unlock gives it
   * back. The acquire is made now; a pushed page copy is installed only if
   * this node never flushed that page early (with no request, nothing says
   * which early flushes reached the home before the copy left it). A thread
   * of this node that asked meanwhile (its request crossed the push) takes
   * it now; the manager, which queued that request behind the push, grants
   * it once more after the push's release, and that grant goes back at once
   * (crossedRequests).
   */
  private onLockPushed(message: Extract<ProtocolMessage, { type: 'lockGrant' }>): void {
    const lockId = message.lockId;
    assert(message.granted && !this.tokens.has(lockId) && message.next === undefined, 'a token is pushed to a node without it');
    this.coherence.acquire(message.info.vc, message.pushPages);
    this.coherence.installPushed(message);
    let crossed: number | undefined;
    for (const [requestId, entry] of this.pending) if (entry.kind === 'lock' && entry.lockId === lockId) { crossed = requestId; break; }
    this.tokens.set(lockId, {
      recalled: true, waiters: [], resting: true, reuses: crossed === undefined ? 0 : 1, delegated: false, pushed: crossed === undefined,
      arrivedAtMs: this.timeNowMs(), keepUntilMs: -1, keepEnded: true, keepLookMs: 0, keepTakes: 0,
    });
    if (crossed === undefined) return;
    // The oldest request of this node for the lock (Map order) takes it, a tryLock's too.
    const entry = this.pending.get(crossed)!;
    this.pending.delete(crossed);
    assert(this.crossedRequests.size < syncInFlightCountMax, 'crossed requests within limit');
    this.crossedRequests.add(crossed);
    this.held.set(lockId, { threadId: entry.threadId! });
    this.ctx.stats.lockPushesTaken = (this.ctx.stats.lockPushesTaken ?? 0) + 1;
    this.ctx.stats.lockPushesCrossed = (this.ctx.stats.lockPushesCrossed ?? 0) + 1;
    this.ctx.host.resume(entry.threadRef, { ok: true, value: null });
  }

  /**
   * The manager's answer to a request a pushed token served already (onLockPushed): a grant goes back at once
   * (to the node it names next, if any: a direct handoff, as an unlock makes), a 'busy' is dropped.
   * (Session 36, simulation seed 75 with --lines always --tokens seeded: the manager had queued a third node's
   * request behind the crossed one and granted it with `next`, which this asserted never came.)
   */
  private onCrossedGrant(message: Extract<ProtocolMessage, { type: 'lockGrant' }>): void {
    if (!message.granted) return;
    const lockId = message.lockId;
    assert(!this.tokens.has(lockId), 'a crossed request is granted to a node without the token');
    this.coherence.acquire(message.info.vc);
    this.tokens.set(lockId, {
      recalled: true, waiters: [], resting: false, reuses: 0, delegated: false, ...(message.next === undefined ? {} : { next: message.next }),
      arrivedAtMs: this.timeNowMs(), keepUntilMs: -1, keepEnded: true, keepLookMs: 0, keepTakes: 0,
    });
    this.releaseToken(lockId);
  }

  /** At the node holding a lock's token: the manager wants it back. */
  private onLockRecall(lockId: number, tryOnly: boolean, early: boolean): void {
    this.claim(lockId);
    const token = this.tokens.get(lockId);
    if (token === undefined) {
      // Maybe on its way here from the previous holder (a direct handoff):
      // its grant takes the recall; a tryOnly one finds the lock taken.
      if (early && this.awaitsToken(lockId)) {
        if (!tryOnly) { this.earlyRecalls.add(lockId); return; }
        const manager = this.ctx.managerOf(lockId);
        this.ctx.deliver(manager, () => ({ type: 'lockBusy', lockId }));
        return;
      }
      // Gone already (a canceled grant): that release answers the recall.
      return;
    }
    if (!this.held.has(lockId)) {
      assert(token.waiters.length === 0, 'a free token has no waiters here');
      this.releaseToken(lockId);
      return;
    }
    if (!tryOnly) { token.recalled = true; return; }
    // Held here, kept from a tryLock elsewhere: its holder's unlock is again one compareExchange.
    this.delegate(lockId);
    const manager = this.ctx.managerOf(lockId);
    this.ctx.deliver(manager, () => ({ type: 'lockBusy', lockId }));
  }

  // --------------------------------------------- the keep window (lock-keep.ts)

  private timeNowMs(): number {
    if (this.clock === null) return this.nowMs;
    const nowMs = this.clock();
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    return this.nowMs;
  }

  /**
   * Whether a recalled token stays here for this node's threads: within its
   * keep window since it arrived. The first ask of a tenure starts the keep
   * (or, with the policy saying no, ends it for the tenure).
   */
  private keepOpen(lockId: number, token: Token): boolean {
    if (this.keepPolicy === null || token.keepEnded) return false;
    const nowMs = this.timeNowMs();
    if (token.keepUntilMs >= 0) return nowMs < token.keepUntilMs && token.keepTakes < lockKeepTakeCountMax;
    const untilMs = this.keepPolicy.keepUntil(lockId, token.arrivedAtMs, nowMs);
    if (untilMs === null) { token.keepEnded = true; return false; }
    // The fairness bound: the node that asked gets the token at most lockKeepMsMax after it came here (plus one critical section).
    assert(untilMs <= token.arrivedAtMs + lockKeepMsMax, 'a token is kept within the fairness bound');
    token.keepUntilMs = untilMs;
    token.keepLookMs = nowMs;
    token.keepTakes = 0;
    this.keeping.add(lockId);
    return true;
  }

  /** A thread of this node took a kept token (from the layer: a lock request, or a waiter at the unlock). */
  private keptTake(token: Token): void {
    token.keepTakes++;
    token.keepLookMs = this.timeNowMs();
    this.ctx.stats.lockKeepTakes = (this.ctx.stats.lockKeepTakes ?? 0) + 1;
  }

  /**
   * How a keep that is over at a take or an unlock ended: its window cut a
   * batch still going, unless its take budget ran out first (threads that
   * take and give the lock back in a loop, e.g. polling a flag only the
   * other node sets: a longer window would not help them).
   */
  private keepOverOutcome(token: Token): KeepOutcome {
    return token.keepTakes >= lockKeepTakeCountMax ? 'drained' : 'cut';
  }

  private endKeep(lockId: number, token: Token, outcome: KeepOutcome): void {
    assert(token.keepUntilMs >= 0 && this.keepPolicy !== null, 'a keep ends once, where it began');
    this.keeping.delete(lockId);
    token.keepUntilMs = -1;
    token.keepEnded = true;
    this.keepPolicy.ended(lockId, outcome);
    if (outcome === 'idle') this.ctx.stats.lockKeepIdle = (this.ctx.stats.lockKeepIdle ?? 0) + 1;
  }

  /**
   * Every tick: each kept token is claimed from the table (counting the takes
   * there); one whose window is over goes now if free (a held one at its
   * holder's unlock, which now comes to the layer), and a free one nobody took
   * for lockKeepIdleMs goes early; the others go back to the table.
   */
  onTick(nowMs: number): void {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    if (this.keeping.size === 0) return;
    const now = this.timeNowMs();
    for (const lockId of [...this.keeping]) {
      const token = this.tokens.get(lockId);
      assert(token !== undefined && token.keepUntilMs >= 0 && token.recalled, 'a kept token is here, recalled');
      this.claim(lockId);
      const held = this.held.has(lockId);
      if (held) token.keepLookMs = now;
      const idle = !held && now - token.keepLookMs >= lockKeepIdleMs;
      if (now >= token.keepUntilMs || token.keepTakes >= lockKeepTakeCountMax) {
        this.endKeep(lockId, token, !idle ? this.keepOverOutcome(token) : token.keepTakes > 0 ? 'drained' : 'idle');
        if (!held) this.releaseToken(lockId);
        continue;
      }
      if (idle) {
        this.endKeep(lockId, token, token.keepTakes > 0 ? 'drained' : 'idle');
        this.releaseToken(lockId);
        continue;
      }
      this.delegate(lockId);
    }
  }

  /** The earliest time a tick has keep work: a window's end, or a free kept token's idle release. */
  nextTickMs(): number | null {
    let at = Infinity;
    for (const lockId of this.keeping) {
      const token = this.tokens.get(lockId)!;
      at = Math.min(at, token.keepUntilMs, token.keepLookMs + lockKeepIdleMs);
    }
    return Number.isFinite(at) ? at : null;
  }

  /**
   * Takes a delegated token back from the node's table before the layer acts
   * on the lock (token-table.ts); a kept token's takes there count for its keep.
   * Returns those takes.
   */
  private claim(lockId: number): number {
    const token = this.tokens.get(lockId);
    if (token === undefined) return 0;
    const reusesBefore = token.reuses;
    claimToken(this.ctx, token, lockId, this.held);
    const took = token.reuses - reusesBefore;
    if (took > 0 && token.keepUntilMs >= 0) {
      token.keepTakes += took;
      token.keepLookMs = this.timeNowMs();
      this.ctx.stats.lockKeepTakes = (this.ctx.stats.lockKeepTakes ?? 0) + took;
    }
    return took;
  }

  /**
   * Hands a token resting here to the node's table when nothing but its holder
   * is concerned (token-table.ts); a kept one with what is left of its take
   * budget, after which its threads ask the layer again.
   */
  private delegate(lockId: number): void {
    const token = this.tokens.get(lockId);
    const kept = token !== undefined && token.keepUntilMs >= 0;
    if (kept && token.keepTakes >= lockKeepTakeCountMax) return;
    delegateToken(this.ctx, token, lockId, this.held, kept ? lockKeepTakeCountMax - token.keepTakes : 0);
  }

  /** A thread of this node asked for the lock and has no answer yet. */
  private awaitsToken(lockId: number): boolean {
    for (const entry of this.pending.values()) if (entry.kind === 'lock' && entry.lockId === lockId) return true;
    return false;
  }

  /**
   * Gives a lock's token back to its manager: the release of release
   * consistency happens here, not at every unlock. A token with a named next
   * holder goes to it directly (one message instead of lockRelease +
   * lockGrant), unless the release has diffs for the manager's pages: those
   * travel in the lockRelease, and the manager grants.
   */
  private releaseToken(lockId: number): void {
    const token = this.tokens.get(lockId);
    assert(token !== undefined && !token.delegated, 'a token is released by the node it is at, from the layer');
    // A keep ended by anything else (a tryLock's recall of a token granted with the recall flag): its threads had stopped.
    if (token.keepUntilMs >= 0) this.endKeep(lockId, token, 'drained');
    if (token.pushed === true) this.ctx.stats.lockPushesUnused = (this.ctx.stats.lockPushesUnused ?? 0) + 1;
    this.tokens.delete(lockId);
    this.ctx.lockTokens?.tokenGone(lockId);
    const manager = this.ctx.managerOf(lockId);
    this.coherence.closeInterval(manager);
    const next = token.next;
    if (next !== undefined && this.ctx.bundle === null) {
      assert(next.node !== this.ctx.nodeId && next.node !== manager, 'a direct handoff goes to a third node');
      this.ctx.stats.lockHandoffsDirect = (this.ctx.stats.lockHandoffsDirect ?? 0) + 1;
      this.ctx.send(next.node, {
        type: 'lockGrant', lockId, requestId: next.requestId, granted: true, info: this.intervals.infoFor(next.node), ...(next.recall ? { recall: true } : {}),
      });
      return;
    }
    this.ctx.deliver(manager, () => ({ type: 'lockRelease', lockId, info: this.intervals.infoTo(manager), ...(token.resting ? { reuses: token.reuses } : {}) }));
  }

  // ------------------------------------------------ locks (manager side)

  private lock(lockId: number): LockState {
    let lock = this.locks.get(lockId);
    if (lock === undefined) {
      if (this.locks.size >= lockIdCountMax) throw syncObjectsError('mutexes', 'lockIdCountMax', lockIdCountMax, this.ctx.nodeId);
      lock = { holderNode: -1, passing: null, queue: [], recalled: false, eager: false, eagerGrantCount: 0, vc: new Array<number>(this.ctx.nodeCount).fill(0), releases: [], predictor: null, phase: -1, phaseTakers: [], lastPhaseTakers: [], guess: -1, pushConfidence: 0, pushed: false };
      this.locks.set(lockId, lock);
    }
    return lock;
  }

  private onLockRequest(from: number, lockId: number, requestId: number, tryOnly: boolean, info: ConsistencyInfo): void {
    assert(this.ctx.managerOf(lockId) === this.ctx.nodeId, 'lock requests go to the manager');
    if (from !== this.ctx.nodeId) this.intervals.learn(from, info);
    const lock = this.lock(lockId);
    // (A request from the node the token was pushed to crossed the push: that node gives it back at once.)
    if (tryOnly && ((lock.holderNode === from && !lock.pushed) || lock.queue.length > 0)) {
      this.answerBusy(from, lockId, requestId);
      return;
    }
    assert(lock.queue.length < syncQueueCountMax, 'lock queue within limit');
    if (tryOnly && lock.holderNode !== -1) {
      // The token may rest unused at its holder's node: ask. Its answer is a
      // lockRelease (granted to this request) or a lockBusy (answered 'busy').
      lock.queue.push({ node: from, requestId, vc: [...info.vc], tryOnly: true });
      const early = lock.passing !== null;
      this.ctx.deliver(lock.holderNode, () => ({ type: 'lockRecall', lockId, tryOnly: true, ...(early ? { early } : {}) }));
      return;
    }
    lock.queue.push({ node: from, requestId, vc: [...info.vc], tryOnly: false });
    // A request of the node the token was pushed to needs no recall: it crossed the push, which serves it, or the
    // push was taken by another of its threads, and a pushed token goes back at its unlock.
    if (lock.holderNode !== -1 && !lock.recalled && !(lock.pushed && lock.holderNode === from)) {
      lock.recalled = true;
      const early = lock.passing !== null;
      this.ctx.deliver(lock.holderNode, () => ({ type: 'lockRecall', lockId, tryOnly: false, ...(early ? { early } : {}) }));
    }
    this.grantNext(lockId);
  }

  private answerBusy(node: number, lockId: number, requestId: number): void {
    if (node === this.ctx.nodeId) { this.finish(requestId, { ok: true, value: 'busy' }); return; }
    this.ctx.send(node, { type: 'lockGrant', lockId, requestId, granted: false, info: this.intervals.infoFor(node) });
  }

  /** The holder kept the token from a tryOnly recall: the oldest tryOnly request is answered 'busy'. */
  private onLockBusy(from: number, lockId: number): void {
    const lock = this.locks.get(lockId);
    // An answer to an early recall (lockRecall.early) can come after the token
    // went on from that node, whose release already answered the request: drop it.
    if (lock === undefined || lock.holderNode !== from) return;
    const k = lock.queue.findIndex((entry) => entry.tryOnly);
    if (k < 0) return;
    const [entry] = lock.queue.splice(k, 1);
    this.answerBusy(entry!.node, lockId, entry!.requestId);
  }

  private onLockRelease(from: number, lockId: number, info: ConsistencyInfo, reuses?: number): void {
    if (from !== this.ctx.nodeId) this.intervals.learn(from, info);
    const lock = this.lock(lockId);
    if (lock.passing !== null && from === lock.passing.from) {
      // The holder named to hand the token on gave it back instead (its
      // release carried diffs for this home, or its grant found its thread gone): grant the next holder from here.
      this.mergeRelease(lock, from, info);
      const passing = lock.passing;
      lock.passing = null;
      this.grant(passing.node, lockId, passing.requestId, lock, passing.vc, lock.recalled);
      return;
    }
    assert(lock.holderNode === from, 'the lock is released by its holder node');
    // A direct handoff ended at `from`, which releases it now.
    lock.passing = null;
    lock.holderNode = -1;
    if (lock.pushed) {
      // A pushed token tells whether its node took it (a tenure of `from`), not whether resting pays.
      lock.pushed = false;
      // Untaken, it cost the next taker a recall (or the pushed node's crossed request its return): trust the guess less.
      if ((reuses ?? 0) > 0) this.noteTaker(lock, from);
      else lock.pushConfidence = Math.max(0, lock.pushConfidence - lockPushMissPenalty);
    } else if (reuses !== undefined) {
      // Only a token left to rest tells whether resting paid (its node re-acquired it).
      lock.eager = reuses === 0;
    }
    this.mergeRelease(lock, from, info);
    this.grantNext(lockId);
  }

  /** A release's vector joins the lock's; its interval is remembered for pushes. */
  private mergeRelease(lock: LockState, from: number, info: ConsistencyInfo): void {
    for (let n = 0; n < this.ctx.nodeCount; n++) lock.vc[n] = Math.max(lock.vc[n]!, info.vc[n] ?? 0);
    if ((info.vc[from] ?? 0) > 0) {
      lock.releases.push({ node: from, index: info.vc[from]! });
      if (lock.releases.length > grantPagePushCountMax) lock.releases.shift();
      // The pages the release's interval wrote (known here: the release's info carried it, or this node closed it).
      const record = this.intervals.record(from, info.vc[from]!);
      if (record !== null && record.pages.length > 0) (lock.predictor ??= new PushPredictor()).noteRelease(from, record.pages);
    }
  }

  private grantNext(lockId: number): void {
    const lock = this.lock(lockId);
    if (lock.holderNode !== -1) return;
    const next = lock.queue.shift();
    if (next === undefined) {
      if (this.pushToken(lockId, lock)) return;
      this.locks.delete(lockId); this.retainLockVc(lockId, lock); return;
    }
    lock.holderNode = next.node;
    // tryOnly requests behind the new holder find the lock held.
    const busy = lock.queue.filter((entry) => entry.tryOnly);
    lock.queue = lock.queue.filter((entry) => !entry.tryOnly);
    // Race mode: every lock is an acquire and a release (each bounds an interval
    // the race report names), so a token never rests.
    const manager = this.ctx.nodeId;
    const after = lock.queue[0];
    if (after !== undefined && this.ctx.homeNode < 0 && next.node !== manager && after.node !== manager && after.node !== next.node) {
      // Contended, between two other nodes: the new holder hands the token to
      // the one after it directly (lockGrant.next), which holds it from then on for the manager.
      lock.queue.shift();
      lock.holderNode = after.node;
      lock.passing = { from: next.node, node: after.node, requestId: after.requestId, vc: after.vc };
      lock.recalled = lock.queue.length > 0 || (lock.eager && ++lock.eagerGrantCount % lockRestProbeGrantInterval !== 0);
      this.grant(next.node, lockId, next.requestId, lock, next.vc, true, { node: after.node, requestId: after.requestId, recall: lock.recalled });
      for (const entry of busy) this.answerBusy(entry.node, lockId, entry.requestId);
      return;
    }
    // No resting probe while pushes are trusted: the next taker is known to be another node (a probe would cost it a recall).
    lock.recalled = lock.queue.length > 0 || this.ctx.homeNode >= 0
      || (lock.eager && (this.pushTrusted(lock) || ++lock.eagerGrantCount % lockRestProbeGrantInterval !== 0));
    this.grant(next.node, lockId, next.requestId, lock, next.vc, lock.recalled);
    for (const entry of busy) this.answerBusy(entry.node, lockId, entry.requestId);
  }

  /** A free lock with no queue still carries its release vector (and whether its token rests, who takes it after whom); keep it unless that is all default. */
  private retainLockVc(lockId: number, lock: LockState): void {
    if (lock.vc.some((v) => v > 0) || lock.eager || lock.phase >= 0) this.locks.set(lockId, lock);
  }

  /** A tenure of `node` begins (a grant to a request, or a pushed token its node took): its phase's takers, and whether the guess named it. */
  private noteTaker(lock: LockState, node: number): void {
    if (lock.phase !== this.barrierEpoch) {
      lock.lastPhaseTakers = lock.phaseTakers;
      lock.phaseTakers = [];
      lock.phase = this.barrierEpoch;
    }
    if (!lock.phaseTakers.includes(node)) {
      assert(lock.phaseTakers.length < this.ctx.nodeCount, 'a phase has at most one taker per node');
      lock.phaseTakers.push(node);
    }
    if (lock.guess < 0) return;
    lock.pushConfidence = lock.guess === node ? Math.min(lockPushConfidenceMax, lock.pushConfidence + 1) : Math.max(0, lock.pushConfidence - 1);
    lock.guess = -1;
  }

  /** Whether the lock's token pushes are on and trusted (LockState.pushConfidence). */
  private pushTrusted(lock: LockState): boolean {
    return this.lockPush && lock.pushConfidence >= lockPushConfidenceMin;
  }

  /**
   * The token came back to a free lock nobody waits for: the guess of its
   * next taker (LockState.phase), and when the guess has been right lately,
   * the token goes there ahead of its request. A right push saves that node
   * its lockRequest/lockGrant round trip; a wrong one costs the next taker a
   * lockRecall and the token's return (a round trip to the pushed node).
   */
  private pushToken(lockId: number, lock: LockState): boolean {
    lock.guess = -1;
    if (!this.lockPush || lock.phase < 0 || lock.phase !== this.barrierEpoch) return false;
    let node = -1;
    for (const taker of lock.lastPhaseTakers) {
      if (lock.phaseTakers.includes(taker)) continue;
      if (node >= 0) return false;
      node = taker;
    }
    if (node < 0 || node === this.ctx.nodeId) return false;
    lock.guess = node;
    if (!this.pushTrusted(lock)) return false;
    lock.holderNode = node;
    lock.pushed = true;
    lock.recalled = false;
    this.ctx.stats.lockPushes = (this.ctx.stats.lockPushes ?? 0) + 1;
    const applied = Array.from({ length: this.ctx.nodeCount }, (_, writer) => this.intervals.appliedBy(node, writer));
    this.grant(node, lockId, pushRequestId, lock, applied, true);
    return true;
  }

  private grant(node: number, lockId: number, requestId: number, lock: LockState, requesterVc: number[], recall: boolean, next?: Token['next']): void {
    const vc = lock.vc;
    if (requestId !== pushRequestId) this.noteTaker(lock, node);
    if (node === this.ctx.nodeId) {
      assert(next === undefined, 'the manager names no next holder to itself');
      this.coherence.acquire(vc);
      this.finish(requestId, { ok: true, value: null }, recall);
      return;
    }
    const info = this.intervals.infoFor(node);
    const push = this.coherence.pushFor(lock.releases, requesterVc, node, lock.predictor?.predicted(node) ?? null);
    this.ctx.send(node, { type: 'lockGrant', lockId, requestId, granted: true, info: { ...info, vc: [...vc] }, ...push, ...(recall ? { recall } : {}), ...(next === undefined ? {} : { next }) });
  }

}
