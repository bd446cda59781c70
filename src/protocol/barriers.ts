// Barriers (issue 12.3), part of the synchronization layer (sync.ts, which
// files the threads' requests and routes the messages here).
//
// A barrier's manager counts the round's arrivals and departs every node
// with threads in it (one barrierDepart per node, naming its requests).
// Arrivals reach it flat (one barrierArrive per thread) or combined (issue
// 12.3): each departure carries the node's plan for the next round, made
// from the round just ended (its nodes, and how many threads each had):
// the round's nodes form a tree rooted at the manager, barrierTreeFanIn
// children per node, and a node sends one barrierArrive to its parent once
// its own threads expected and each child's combined arrival are in. A
// plan is a guess (parties are threads, which come and go): an arrival the
// plan did not foresee goes flat to the manager, which then tells every
// node to send what it holds of the round (barrierFlush) and go flat until
// its next plan. So no arrival waits for one that will not come: the plan's
// counts add up to the parties, so a node that gets fewer threads than
// planned means another gets more (or the round cannot end anyway).
//
// Two-node rounds go peer to peer (session 13, PeerRound below): when the
// round just ended had threads on the manager and on one other node only,
// the plan says so, and from then on each of the two sends its arrival to
// the other and departs on its own once it holds both: one crossing a round
// instead of two (arrival, then departure), and no departure message.
//
// Over 600 lines: the manager's round, the tree's combined arrivals, the
// flush that turns a wrong plan flat and the two-node peer round are one
// state machine per barrier, and each needs the others' cases.

import { DsmError, assert } from '../errors.js';
import { barrierIdCountMax, barrierTreeFanIn, syncQueueCountMax } from '../constants.js';
import type { Coherence, GrantPush } from './coherence.js';
import type { EngineContext } from './context.js';
import type { Intervals } from './intervals.js';
import type { BarrierPlan, ProtocolMessage } from './messages.js';
import type { SyncResult } from './types.js';

/** What barriers need of the sync layer's request table. */
export interface BarrierRequests {
  /** Files a request of `threadRef`; returns its id. */
  newRequest(threadRef: number, kind: string): number;
  /** Answers a request (or drops the answer of a canceled one). */
  finish(requestId: number, result: SyncResult): void;
  /** Whether one of `requestIds` is a request of this node's still pending. */
  anyPending(requestIds: number[]): boolean;
}

type BarrierArrive = Extract<ProtocolMessage, { type: 'barrierArrive' }>;

/** At a barrier's manager: the open round's arrivals. */
interface BarrierState {
  parties: number;
  arrivals: Array<{ node: number; requestId: number }>;
  /** Element-wise max and min of the applied vectors the arrivals' messages carried. */
  vcMax: number[];
  vcMin: number[];
  /** Pages pushed to the manager's node with arrivals (see HlrcCoherence.pushForBarrier). */
  pushes: GrantPush[];
}

/** At a barrier's manager, for the barrier's life. */
interface BarrierRecord {
  /** Fixed by the barrier's first use. */
  parties: number;
  /** Rounds completed: the open round is `round + 1`. */
  round: number;
  /** The open round has a plan (made from the round before): the manager's own threads it expects, or -1 (no plan: every arrival is flat). */
  planLocal: number;
  /** The manager's own arrivals in the open round. */
  localArrived: number;
  /** A barrierFlush went out for the open round. */
  flushed: boolean;
}

/**
 * At any node that takes part in a barrier: its part in the rounds (issue
 * 12.3). With a plan, its threads' arrivals and the combined arrivals of its
 * children in the round's tree are gathered here and go to its parent in one
 * barrierArrive; without one, each arrival goes to the manager alone (flat).
 */
interface BarrierNode {
  plan: BarrierPlan | null;
  /** Gathered for plan.round and not sent yet: pairs (node, requestId). */
  arrivals: number[];
  local: number;
  children: number;
  vcMax: number[] | null;
  vcMin: number[] | null;
  /** The plan's round went to the parent (complete); further arrivals of this node go flat until the next plan. */
  sent: boolean;
  /** Children's arrivals for a round after plan.round, which this node's departure (on its way) will plan. */
  early: Array<{ from: number; message: BarrierArrive }>;
  /** Rounds up to this one are planned past or flushed here: a child's arrival for one goes on to the manager. */
  doneRound: number;
}

/**
 * A barrier's two-node round at one of its two nodes (the manager and one
 * other; session 13). Each node, once its `local` threads have arrived,
 * closes its interval and sends one barrierArrive (`peer`) to the other,
 * carrying its write notices, its bundled diffs and its barrier pushes; it
 * departs when it holds its own and the other's: it acquires their merged
 * knowledge, installs the pushes and raises the floor itself (the floor only
 * when the two are the whole cluster). The next round keeps the plan. So a
 * round costs two messages, one crossing on each node's path.
 *
 * An arrival the plan did not foresee reaches the manager (flat) and the
 * manager alone decides (FIFO links, two nodes): if it has not sent its own
 * peer arrival of the round, the other node cannot end the round; if it has,
 * the other ends it only if all its threads arrived, and then its peer
 * arrival is already on the way. So the manager sends barrierFlush, holds
 * the unforeseen arrivals, sends nothing more of the round, and waits:
 * either the other's peer arrival comes while its own went out (the round
 * ends peer to peer, the held arrivals count in the next round), or the
 * other's answer to the flush (`peerFlushed`: its unsent arrivals, maybe
 * none; it then drops the round and everything it got of it) makes the
 * round flat at the manager, which ends it with departures as before.
 */
interface PeerRound {
  /** The open round. */
  round: number;
  /** The other node of the pair. */
  peer: number;
  parties: number;
  /** This node's threads the round expects, and the other node's. */
  local: number;
  peerLocal: number;
  /** This node's requests gathered for `round`. */
  ids: number[];
  /** This node's applied vector when its arrival went to the other (null: not sent). */
  sentVc: number[] | null;
  /** The other node's arrival of `round` (null: not here yet). */
  got: BarrierArrive | null;
  /** At the manager: a barrierFlush of `round` went to the other node, not answered yet. */
  flushing: boolean;
  /** At the manager while flushing: arrivals to count once the round ends or goes flat, in order. */
  held: Array<{ from: number; message: BarrierArrive }>;
}

export class Barriers {
  /** At this node as a manager: barriers with arrivals in the open round. */
  private readonly barriers = new Map<number, BarrierState>();
  /** At this node as a manager: party count and round per barrier id, fixed by its first use. */
  private readonly barrierRecords = new Map<number, BarrierRecord>();
  /** This node's part in barriers its threads took part in (any node: see BarrierNode). */
  private readonly barrierNodes = new Map<number, BarrierNode>();
  /** Two-node rounds this node takes part in (see PeerRound). */
  private readonly peerRounds = new Map<number, PeerRound>();

  constructor(
    private readonly ctx: EngineContext, private readonly intervals: Intervals, private readonly coherence: Coherence,
    private readonly requests: BarrierRequests,
    /** Plan two-node rounds peer to peer (EngineOptions.peerBarriers). */
    private readonly peerBarriers = true,
  ) {}

  tableSizes(): Record<string, number> {
    return {
      barriers: this.barriers.size,
      barrierEarly: [...this.barrierNodes.values()].reduce((sum, node) => sum + node.early.length, 0),
      barrierPeerHeld: [...this.peerRounds.values()].reduce((sum, round) => sum + round.held.length + (round.flushing ? 1 : 0), 0),
    };
  }

  /** The barrier messages. */
  onMessage(from: number, message: Extract<ProtocolMessage, { type: 'barrierArrive' | 'barrierDepart' | 'barrierFlush' }>): void {
    switch (message.type) {
      case 'barrierArrive': return this.onBarrierArrive(from, message);
      case 'barrierDepart': return this.onBarrierDepart(from, message);
      case 'barrierFlush': return this.onBarrierFlush(message.barrierId, message.round);
    }
  }

  private barrierNode(barrierId: number): BarrierNode {
    let node = this.barrierNodes.get(barrierId);
    if (node === undefined) {
      if (this.barrierNodes.size >= barrierIdCountMax) throw syncObjectsError('barriers', 'barrierIdCountMax', barrierIdCountMax, this.ctx.nodeId);
      node = { plan: null, arrivals: [], local: 0, children: 0, vcMax: null, vcMin: null, sent: false, early: [], doneRound: 0 };
      this.barrierNodes.set(barrierId, node);
    }
    return node;
  }

  /** A thread of this node arrives (a release). */
  arrive(threadRef: number, barrierId: number, parties: number): void {
    const manager = this.ctx.managerOf(barrierId);
    const requestId = this.requests.newRequest(threadRef, 'barrier');
    const pair = this.peerRounds.get(barrierId);
    if (pair !== undefined && pair.sentVc === null && pair.parties === parties && pair.ids.length < pair.local) {
      pair.ids.push(requestId);
      // While the manager flushes the round it sends nothing of it: the arrival waits in `ids`.
      if (pair.ids.length === pair.local && !pair.flushing) this.sendPeer(barrierId, pair);
      else this.coherence.closeInterval();
      return;
    }
    const node = manager === this.ctx.nodeId ? null : this.barrierNode(barrierId);
    const plan = node?.plan ?? null;
    if (node !== null && plan !== null && !node.sent && plan.parties === parties && node.local < plan.local) {
      node.arrivals.push(this.ctx.nodeId, requestId);
      node.local++;
      if (this.barrierComplete(node)) {
        this.coherence.closeInterval(plan.parent, plan.parent === manager ? manager : -1);
        this.sendUp(barrierId, node);
      } else {
        this.coherence.closeInterval();
      }
      return;
    }
    // Flat: no plan (first round, or flushed), or one more thread than planned.
    this.coherence.closeInterval(manager, manager);
    this.ctx.deliver(manager, () => ({
      type: 'barrierArrive', barrierId, parties, arrivals: [this.ctx.nodeId, requestId], info: this.intervals.infoTo(manager),
      ...this.coherence.pushForBarrier(manager),
    }));
  }

  private barrierComplete(node: BarrierNode): boolean {
    return node.plan !== null && !node.sent && node.local >= node.plan.local && node.children >= node.plan.children;
  }

  /** The plan's round is complete here: one combined arrival to the parent. */
  private sendUp(barrierId: number, node: BarrierNode): void {
    const plan = node.plan;
    assert(plan !== null && !node.sent, 'a planned round goes up once');
    const own = this.intervals.vc;
    const vcMax = own.map((v, n) => Math.max(v, node.vcMax?.[n] ?? 0));
    const vcMin = own.map((v, n) => Math.min(v, node.vcMin?.[n] ?? v));
    const arrivals = node.arrivals;
    const manager = this.ctx.managerOf(barrierId);
    node.sent = true;
    this.resetGathered(node);
    this.ctx.deliver(plan.parent, () => ({
      type: 'barrierArrive', barrierId, parties: plan.parties, arrivals, round: plan.round, vcMax, vcMin, info: this.intervals.infoTo(plan.parent),
      ...(plan.parent === manager ? this.coherence.pushForBarrier(manager) : {}),
    }));
  }

  private resetGathered(node: BarrierNode): void {
    node.arrivals = [];
    node.local = 0;
    node.children = 0;
    node.vcMax = null;
    node.vcMin = null;
  }

  /** Sends arrivals this node holds or got from a child straight to the manager, past the plan. */
  private forward(barrierId: number, parties: number, arrivals: number[], round: number | undefined, vcMax: number[], vcMin: number[]): void {
    if (arrivals.length === 0) return;
    const manager = this.ctx.managerOf(barrierId);
    this.ctx.deliver(manager, () => ({
      type: 'barrierArrive', barrierId, parties, arrivals, ...(round === undefined ? {} : { round }), vcMax, vcMin, flushed: true,
      info: this.intervals.infoTo(manager),
    }));
  }

  private forwardMessage(message: BarrierArrive): void {
    this.forward(message.barrierId, message.parties, message.arrivals, message.round, message.vcMax ?? message.info.vc, message.vcMin ?? message.info.vc);
  }

  /**
   * Everything held of the planned round goes to the manager; flat until the
   * next plan. Children's arrivals held for rounds up to `upTo` go too; later
   * ones wait for the departure that plans their round.
   */
  private dropPlan(barrierId: number, node: BarrierNode, upTo: number): void {
    const plan = node.plan;
    if (plan !== null && !node.sent && node.arrivals.length > 0) {
      const own = this.intervals.vc;
      const vcMax = own.map((v, n) => Math.max(v, node.vcMax?.[n] ?? 0));
      const vcMin = own.map((v, n) => Math.min(v, node.vcMin?.[n] ?? v));
      this.forward(barrierId, plan.parties, node.arrivals, plan.round, vcMax, vcMin);
    }
    node.plan = null;
    node.sent = false;
    node.doneRound = Math.max(node.doneRound, upTo);
    this.resetGathered(node);
    const stale = node.early.filter((entry) => (entry.message.round ?? 0) <= upTo);
    node.early = node.early.filter((entry) => (entry.message.round ?? 0) > upTo);
    for (const entry of stale) this.forwardMessage(entry.message);
  }

  private onBarrierArrive(from: number, message: BarrierArrive): void {
    if (from !== this.ctx.nodeId) this.intervals.learn(from, message.info);
    if (message.peer === true) { this.onPeerArrive(from, message); return; }
    if (this.ctx.managerOf(message.barrierId) !== this.ctx.nodeId) { this.onChildArrive(from, message); return; }
    this.arriveAtManager(from, message);
  }

  /** At the manager: an arrival (flat, combined, forwarded, or the other node's answer to a two-node flush), its info learned. */
  private arriveAtManager(from: number, message: BarrierArrive): void {
    const pair = this.peerRounds.get(message.barrierId);
    if (pair !== undefined) { this.arriveInPair(from, message, pair); return; }
    let record = this.barrierRecords.get(message.barrierId);
    if (record === undefined) {
      // A reusable barrier keeps its party count for life: the first use fixes it.
      if (this.barrierRecords.size >= barrierIdCountMax) throw syncObjectsError('barriers', 'barrierIdCountMax', barrierIdCountMax, this.ctx.nodeId);
      record = { parties: message.parties, round: 0, planLocal: -1, localArrived: 0, flushed: false };
      this.barrierRecords.set(message.barrierId, record);
    }
    // An arrival the open round's plan did not foresee: every node sends what it holds.
    if (from === this.ctx.nodeId) record.localArrived += message.arrivals.length / 2;
    const unplanned = from === this.ctx.nodeId
      ? record.localArrived > record.planLocal
      : message.round !== record.round + 1 || message.flushed === true;
    if (record.planLocal >= 0 && !record.flushed && unplanned) {
      record.flushed = true;
      this.ctx.stats.barrierFlushes = (this.ctx.stats.barrierFlushes ?? 0) + 1;
      for (let n = 0; n < this.ctx.nodeCount; n++) {
        if (n !== this.ctx.nodeId) this.ctx.send(n, { type: 'barrierFlush', barrierId: message.barrierId, round: record.round + 1 });
      }
    }
    const vcMax = message.vcMax ?? message.info.vc;
    const vcMin = message.vcMin ?? message.info.vc;
    const push = message.pushPages === undefined ? null : message;
    for (let k = 0; k < message.arrivals.length; k += 2) {
      const node = message.arrivals[k]!;
      const requestId = message.arrivals[k + 1]!;
      if (record.parties !== message.parties || message.parties < 1) {
        const error = `barrier ${message.barrierId} has ${record.parties} parties, a thread waited with ${message.parties}`;
        this.depart(node, message.barrierId, [requestId], 0, error, this.intervals.vc, this.intervals.floor, undefined);
        continue;
      }
      let barrier = this.barriers.get(message.barrierId);
      if (barrier === undefined) {
        barrier = { parties: record.parties, arrivals: [], vcMax: [...vcMax], vcMin: [...vcMin], pushes: [] };
        this.barriers.set(message.barrierId, barrier);
      }
      assert(barrier.arrivals.length < syncQueueCountMax, 'barrier arrivals within limit');
      for (let n = 0; n < this.ctx.nodeCount; n++) {
        barrier.vcMax[n] = Math.max(barrier.vcMax[n]!, vcMax[n] ?? 0);
        barrier.vcMin[n] = Math.min(barrier.vcMin[n]!, vcMin[n] ?? 0);
      }
      if (push !== null && !barrier.pushes.includes(push)) barrier.pushes.push(push);
      barrier.arrivals.push({ node, requestId });
      if (barrier.arrivals.length === barrier.parties) {
        this.completeRound(message.barrierId, record, barrier);
        // The next round is a two-node one: the rest of this message is unforeseen there.
        if (this.peerRounds.has(message.barrierId) && k + 2 < message.arrivals.length) {
          const { pushPages: _pages, pushVersions: _versions, pushBytes: _bytes, pushApplied: _applied, ...rest } = message;
          this.arriveAtManager(from, { ...rest, arrivals: message.arrivals.slice(k + 2) });
          return;
        }
      }
    }
  }

  // ------------------------------------------------ two-node rounds (PeerRound)

  /** This node's threads of the round are all in: its arrival goes to the other node. */
  private sendPeer(barrierId: number, pair: PeerRound): void {
    assert(pair.sentVc === null && !pair.flushing && pair.ids.length === pair.local, 'a two-node round\'s arrival goes once, complete');
    this.coherence.closeInterval(pair.peer, pair.peer);
    pair.sentVc = [...this.intervals.vc];
    const self = this.ctx.nodeId;
    const arrivals = pair.ids.flatMap((id) => [self, id]);
    this.ctx.deliver(pair.peer, () => ({
      type: 'barrierArrive', barrierId, parties: pair.parties, arrivals, round: pair.round, peer: true,
      info: this.intervals.infoTo(pair.peer), ...this.coherence.pushForBarrier(pair.peer),
    }));
    this.completePeer(barrierId, pair);
  }

  /** The other node's arrival of a two-node round. */
  private onPeerArrive(from: number, message: BarrierArrive): void {
    const pair = this.peerRounds.get(message.barrierId);
    // FIFO links: the other node sends the round's arrival only while this node
    // is in the round (a flush that dropped it here came after, and the manager
    // goes flat only on the answer to its flush, which follows this arrival).
    assert(pair !== undefined && pair.peer === from && message.round === pair.round && pair.got === null
      && message.arrivals.length === 2 * pair.peerLocal, 'a two-node arrival finds its round open at the other node');
    pair.got = message;
    this.completePeer(message.barrierId, pair);
  }

  /** Ends the round here once this node's arrival went out and the other's came in. */
  private completePeer(barrierId: number, pair: PeerRound): void {
    const got = pair.got;
    const sentVc = pair.sentVc;
    if (got === null || sentVc === null) return;
    const self = this.ctx.nodeId;
    const manager = this.ctx.managerOf(barrierId);
    const ids = pair.ids;
    this.coherence.acquire(this.intervals.vc.map((v, n) => Math.max(v, got.info.vc[n] ?? 0)), got.pushPages);
    if (got.pushPages !== undefined) this.coherence.installPushed(got);
    // Both nodes applied everything up to either's arrival vector: with no other node, the log below it goes.
    if (this.ctx.nodeCount === 2) this.intervals.raiseFloor(sentVc.map((v, n) => Math.min(v, got.info.vc[n] ?? 0)));
    this.coherence.afterBarrier();
    this.ctx.stats.barrierPeerRounds = (this.ctx.stats.barrierPeerRounds ?? 0) + 1;
    const held = pair.held;
    pair.round++;
    pair.ids = [];
    pair.sentVc = null;
    pair.got = null;
    pair.flushing = false;
    pair.held = [];
    if (manager === self) {
      const record = this.barrierRecords.get(barrierId);
      assert(record !== undefined, 'a two-node round\'s manager keeps its record');
      record.round++;
      record.localArrived = 0;
      record.flushed = false;
    }
    // One serial thread a round: the manager's last.
    const serial = manager === self ? ids[ids.length - 1]! : 0;
    for (const id of ids) this.requests.finish(id, { ok: true, value: id === serial ? 'serial' : null });
    // Arrivals the manager held while its flush was open count in the next round.
    for (const entry of held) this.arriveAtManager(entry.from, entry.message);
  }

  /** At the manager of a two-node round: an arrival that is not the other node's peer arrival. */
  private arriveInPair(from: number, message: BarrierArrive, pair: PeerRound): void {
    const barrierId = message.barrierId;
    if (message.peerFlushed === true) {
      assert(pair.flushing && from === pair.peer && message.round === pair.round, 'the answer to this round\'s flush');
      this.pairToFlat(barrierId, pair, message);
      return;
    }
    if (message.parties !== pair.parties) {
      const error = `barrier ${barrierId} has ${pair.parties} parties, a thread waited with ${message.parties}`;
      for (let k = 0; k < message.arrivals.length; k += 2) {
        this.depart(message.arrivals[k]!, barrierId, [message.arrivals[k + 1]!], 0, error, this.intervals.vc, this.intervals.floor, undefined);
      }
      return;
    }
    const self = this.ctx.nodeId;
    if (from === self && !pair.flushing && pair.sentVc === null && message.arrivals.length === 2 && pair.ids.length < pair.local) {
      // A thread of this node held in the round before (replayed by completePeer): planned in this one.
      pair.ids.push(message.arrivals[1]!);
      if (pair.ids.length === pair.local) this.sendPeer(barrierId, pair);
      return;
    }
    assert(pair.held.length < syncQueueCountMax, 'held barrier arrivals within limit');
    pair.held.push({ from, message });
    if (pair.flushing) return;
    // Unforeseen (a thread on a third node, or one more than planned): see PeerRound.
    pair.flushing = true;
    this.ctx.stats.barrierFlushes = (this.ctx.stats.barrierFlushes ?? 0) + 1;
    this.ctx.send(pair.peer, { type: 'barrierFlush', barrierId, round: pair.round });
  }

  /** The other node dropped the flushed round: everything of it is counted flat here, in order. */
  private pairToFlat(barrierId: number, pair: PeerRound, answer: BarrierArrive): void {
    this.peerRounds.delete(barrierId);
    const record = this.barrierRecords.get(barrierId);
    assert(record !== undefined && record.round + 1 === pair.round, 'a two-node round is its manager\'s open round');
    record.planLocal = -1;
    record.flushed = true;
    record.localArrived = 0;
    const self = this.ctx.nodeId;
    const flat = (arrivals: number[], info: BarrierArrive['info']): BarrierArrive => ({
      type: 'barrierArrive', barrierId, parties: pair.parties, arrivals, round: pair.round, flushed: true, info,
    });
    if (pair.ids.length > 0) {
      this.arriveAtManager(self, flat(pair.ids.flatMap((id) => [self, id]), { ...this.intervals.localInfo(), vc: pair.sentVc ?? [...this.intervals.vc] }));
    }
    if (pair.got !== null) this.arriveAtManager(pair.peer, { ...pair.got, peer: undefined, flushed: true });
    this.arriveAtManager(pair.peer, answer);
    for (const entry of pair.held) this.arriveAtManager(entry.from, entry.message);
  }

  /** At a node of the round's tree: a child's combined arrival, or one past its plan. */
  private onChildArrive(from: number, message: BarrierArrive): void {
    const node = this.barrierNode(message.barrierId);
    const plan = node.plan;
    if (message.flushed !== true && plan !== null && message.round === plan.round && !node.sent) {
      node.arrivals.push(...message.arrivals);
      node.children++;
      const vcMax = message.vcMax ?? message.info.vc;
      const vcMin = message.vcMin ?? message.info.vc;
      node.vcMax = vcMax.map((v, n) => Math.max(v, node.vcMax?.[n] ?? 0));
      node.vcMin = vcMin.map((v, n) => Math.min(v, node.vcMin?.[n] ?? v));
      if (this.barrierComplete(node)) this.sendUp(message.barrierId, node);
      return;
    }
    const round = message.round;
    if (message.flushed !== true && round !== undefined && round > node.doneRound && (plan === null || plan.round < round)) {
      // A child's plan for `round` names this node its parent: this node took
      // part in the round before, whose departure (on its way) plans `round`.
      assert(node.early.length < syncQueueCountMax, 'early barrier arrivals within limit');
      node.early.push({ from, message });
      return;
    }
    this.forwardMessage(message);
  }

  /** The round is complete at its manager: acquire everything, depart every node with its plan for the next round. */
  private completeRound(barrierId: number, record: BarrierRecord, barrier: BarrierState): void {
    this.barriers.delete(barrierId);
    const nodeCount = this.ctx.nodeCount;
    const self = this.ctx.nodeId;
    // Merge everyone's knowledge: the manager acquires it all, then hands it back.
    const merged = this.intervals.vc.map((v, n) => Math.max(v, barrier.vcMax[n]!));
    this.coherence.acquire(merged);
    // Pages pushed to this (the manager's) node, if one of its threads waits here.
    if (this.requests.anyPending(barrier.arrivals.filter((a) => a.node === self).map((a) => a.requestId))) for (const push of barrier.pushes) this.coherence.installPushed(push);
    // Requests by node, the nodes in tree order: the manager first, then the others by id.
    const byNode = new Map<number, number[]>();
    for (const arrival of barrier.arrivals) {
      let ids = byNode.get(arrival.node);
      if (ids === undefined) { ids = []; byNode.set(arrival.node, ids); }
      ids.push(arrival.requestId);
    }
    // When every node took part, everything up to the smallest arrival vector
    // is applied everywhere: intervals up to it can be reclaimed.
    const current = this.intervals.floor;
    let floor = [...current];
    if (byNode.size === nodeCount) floor = barrier.vcMin.map((v, n) => Math.max(v, current[n]!));
    const order = [self, ...[...byNode.keys()].filter((n) => n !== self).sort((a, b) => a - b)];
    record.round++;
    record.planLocal = byNode.get(self)?.length ?? 0;
    record.localArrived = 0;
    record.flushed = false;
    const last = barrier.arrivals[barrier.arrivals.length - 1]!;
    // Threads on this node and one other only: the next round goes peer to peer (PeerRound).
    const other = order[1];
    const pairPlan = this.peerBarriers && byNode.size === 2 && byNode.has(self) && other !== undefined;
    if (pairPlan) {
      assert(!this.peerRounds.has(barrierId), 'one two-node round at a time');
      this.peerRounds.set(barrierId, {
        round: record.round + 1, peer: other, parties: record.parties, local: byNode.get(self)!.length, peerLocal: byNode.get(other)!.length,
        ids: [], sentVc: null, got: null, flushing: false, held: [],
      });
    }
    // Other nodes first, parents before children (a child's next arrival then
    // finds its parent planned more often); this node's own threads last, so
    // resuming them is off the way of the departures that cross the network.
    for (const index of [...order.keys()].slice(1).concat(0)) {
      const node = order[index]!;
      const ids = byNode.get(node);
      if (ids === undefined) continue;
      const children = order.filter((_, k) => k > 0 && Math.floor((k - 1) / barrierTreeFanIn) === index).length;
      const plan: BarrierPlan | undefined = node === self ? undefined : {
        round: record.round + 1, parties: record.parties, parent: order[Math.floor((index - 1) / barrierTreeFanIn)]!, local: ids.length, children,
        ...(pairPlan ? { peerLocal: byNode.get(self)!.length } : {}),
      };
      this.depart(node, barrierId, ids, node === last.node ? last.requestId : 0, '', merged, floor, plan);
    }
  }

  private depart(node: number, barrierId: number, requestIds: number[], serial: number, error: string, vc: number[], floor: number[], plan: BarrierPlan | undefined): void {
    const extra = plan === undefined ? {} : { plan };
    if (node === this.ctx.nodeId) {
      this.onBarrierDepart(node, { type: 'barrierDepart', barrierId, requestIds, error, serial, floor: [...floor], info: { ...this.intervals.localInfo(), vc: [...vc] }, ...extra });
      return;
    }
    const info = this.intervals.infoFor(node);
    this.ctx.send(node, {
      type: 'barrierDepart', barrierId, requestIds, error, serial, floor: [...floor], info: { ...info, vc: [...vc] }, ...extra,
      ...(error === '' ? this.coherence.pushForBarrier(node) : {}),
    });
  }

  private onBarrierDepart(from: number, message: Extract<ProtocolMessage, { type: 'barrierDepart' }>): void {
    if (from !== this.ctx.nodeId) this.intervals.learn(from, message.info);
    if (message.error !== '') {
      for (const id of message.requestIds) this.requests.finish(id, { ok: false, code: 'DSM_ERR_BARRIER_PARTIES', message: message.error });
      return;
    }
    this.coherence.acquire(message.info.vc, from !== this.ctx.nodeId ? message.pushPages : undefined);
    if (from !== this.ctx.nodeId && message.pushPages !== undefined) this.coherence.installPushed(message);
    this.intervals.raiseFloor(message.floor);
    this.coherence.afterBarrier();
    for (const id of message.requestIds) this.requests.finish(id, { ok: true, value: id === message.serial ? 'serial' : null });
    if (from === this.ctx.nodeId || message.plan === undefined) return;
    const plan = message.plan;
    assert(!this.peerRounds.has(message.barrierId), 'a departure comes only to a node out of two-node rounds');
    if (plan.peerLocal !== undefined) {
      // A two-node round with the manager: anything held of a tree plan goes to the manager first.
      const old = this.barrierNodes.get(message.barrierId);
      if (old !== undefined) this.dropPlan(message.barrierId, old, plan.round - 1);
      this.peerRounds.set(message.barrierId, {
        round: plan.round, peer: from, parties: plan.parties, local: plan.local, peerLocal: plan.peerLocal,
        ids: [], sentVc: null, got: null, flushing: false, held: [],
      });
      return;
    }
    const node = this.barrierNode(message.barrierId);
    if (node.plan !== null && node.plan.round >= plan.round) return;
    // A new plan: anything held of an older one goes to the manager first;
    // children's arrivals for its round are gathered now.
    this.dropPlan(message.barrierId, node, plan.round - 1);
    node.plan = plan;
    const early = node.early.filter((entry) => entry.message.round === plan.round);
    node.early = node.early.filter((entry) => entry.message.round !== plan.round);
    for (const entry of early) this.onChildArrive(entry.from, entry.message);
  }

  /** The manager saw an arrival the plan of `round` did not foresee: send what is held of it, go flat until the next plan. */
  private onBarrierFlush(barrierId: number, round: number): void {
    const pair = this.peerRounds.get(barrierId);
    if (pair !== undefined) {
      // This node ended the round already: the manager ends it too when this node's arrival reaches it.
      if (pair.round > round) return;
      assert(pair.round === round, 'a flush of the open two-node round');
      this.peerRounds.delete(barrierId);
      // The answer: this node's arrivals it did not send (none if it did); what it got of the round is dropped.
      const arrivals = pair.sentVc === null ? pair.ids.flatMap((id) => [this.ctx.nodeId, id]) : [];
      this.ctx.deliver(pair.peer, () => ({
        type: 'barrierArrive', barrierId, parties: pair.parties, arrivals, round, flushed: true, peerFlushed: true,
        info: this.intervals.infoTo(pair.peer),
      }));
    }
    const node = this.barrierNodes.get(barrierId);
    if (node === undefined || (node.plan !== null && node.plan.round > round)) return;
    this.dropPlan(barrierId, node, round);
  }
}

/** A program that uses more distinct mutexes or barriers than one manager keeps state for: a user-facing limit, not a bug. */
export function syncObjectsError(what: string, limitName: string, limit: number, nodeId: number): DsmError {
  return new DsmError('DSM_ERR_SYNC_OBJECTS', `node ${nodeId}'s manager keeps state for at most ${limit} distinct ${what} `
    + `(${limitName} in src/constants.ts): reuse ${what} instead of creating new ones, or raise ${limitName} and rebuild (npm run build)`);
}
