// What every part of one node's engine shares: who this node is, its page
// memory and host, the counters, the placement of pages and sync ids, and
// the way out (send to another node, or deliver to this node's own parts
// without the network). Also the one piece of state that crosses parts: a
// batch of diffs a coherence release holds back for the sync message that
// follows it (see Coherence.closeInterval).

import { assert } from '../errors.js';
import { pageBytes } from '../constants.js';
import { blockHomeOf, blockOf } from './placement.js';
import type { PageMemory } from './memory.js';
import type { DiffBatch, ProtocolMessage } from './messages.js';
import type { EngineCounters, EngineHost, EngineOptions, LockTokenHost, PlacementName } from './types.js';

export class EngineContext {
  // -- identity and shape of the cluster
  /** This node. */
  readonly nodeId: number;
  /** Nodes in the cluster. */
  readonly nodeCount: number;
  /** Pages of the global region. */
  readonly pageCount: number;
  /** How pages are placed at their static homes. */
  readonly placement: PlacementName;
  /** Race detection: the one home of every page, or -1 (placement decides). */
  readonly homeNode: number;

  // -- what the engine acts on
  /** This node's copy of the region. */
  readonly memory: PageMemory;
  /** Resumes app threads parked in a fault or a sync request. */
  readonly host: EngineHost;
  /** The node's lock token table, where app threads lock and unlock tokens resting here (null: none). */
  readonly lockTokens: LockTokenHost | null;
  /** The counters every part adds to (Engine.counters() copies them). */
  readonly stats: EngineCounters = {
    readFaults: 0, writeFaults: 0, pageFetches: 0, diffsSent: 0, diffsApplied: 0,
    intervalsClosed: 0, invalidations: 0, messagesSent: 0,
  };

  // -- the way out
  /** The transport, as handed in. */
  private readonly sendRaw: EngineOptions['send'];
  /** Hands a message to this node's own parts (set once by the engine that owns this context). */
  dispatchLocal: (from: number, message: ProtocolMessage) => void = () => { assert(false, 'the engine set its local dispatch'); };
  /** Diffs held back by Coherence.closeInterval(bundleTo) for the sync message that follows it. */
  bundle: { toNode: number; batch: DiffBatch } | null = null;

  constructor(options: EngineOptions, placement: PlacementName) {
    this.nodeId = options.nodeId;
    this.nodeCount = options.nodeCount;
    this.pageCount = options.pageCount;
    this.placement = placement;
    this.memory = options.memory;
    this.host = options.host;
    // Race mode: every lock is an acquire and a release the race report names: no token rests with app threads.
    this.lockTokens = options.homeNode === undefined ? options.lockTokens ?? null : null;
    this.sendRaw = options.send;
    this.homeNode = options.homeNode ?? -1;
    assert(this.homeNode >= -1 && this.homeNode < this.nodeCount, 'the race home is a node of the cluster');
  }

  /** Sends to another node (counted). */
  send(toNode: number, message: ProtocolMessage): void {
    assert(toNode !== this.nodeId && toNode >= 0 && toNode < this.nodeCount, 'send to another node of the cluster');
    this.stats.messagesSent++;
    this.sendRaw(toNode, message);
  }

  /**
   * Delivers a message to self without the network (the manager is local),
   * or sends it, with the held-back diffs of the release before it.
   */
  deliver(toNode: number, make: () => ProtocolMessage): void {
    if (toNode === this.nodeId) { this.dispatchLocal(this.nodeId, make()); return; }
    const message = make();
    if (this.bundle !== null) {
      assert(this.bundle.toNode === toNode && 'info' in message && message.type !== 'lockGrant' && message.type !== 'barrierDepart' && message.type !== 'atomicReply', 'held-back diffs go with the sync message to their home');
      (message as { bundled?: DiffBatch }).bundled = this.bundle.batch;
      this.bundle = null;
    }
    this.send(toNode, message);
  }

  /** The home by placement alone: where a page starts, and the manager of sync ids on it (never moves). */
  placementHomeOf(page: number): number {
    if (this.homeNode >= 0) return this.homeNode;
    if (this.placement === 'block') return blockHomeOf(page, this.pageCount, this.nodeCount);
    return page % this.nodeCount;
  }

  /**
   * The pages whose placement home is `node`, as a strided run: pages first,
   * first + step, ... (count pages). An engine's start marks its own pages
   * with it, in one call (no per-page homeOf, no page list).
   */
  placementPagesOf(node: number): { first: number; count: number; step: number } {
    assert(node >= 0 && node < this.nodeCount, 'a node of the cluster');
    if (this.homeNode >= 0) return { first: 0, count: node === this.homeNode ? this.pageCount : 0, step: 1 };
    if (this.placement === 'block') return { ...blockOf(node, this.pageCount, this.nodeCount), step: 1 };
    return { first: node, count: node < this.pageCount ? Math.ceil((this.pageCount - node) / this.nodeCount) : 0, step: this.nodeCount };
  }

  /**
   * The manager of a mutex or barrier id. The runtime's ids are a
   * global byte address / 16: the manager is the home of that address (its
   * synchronization home, as for Atomics), so a lock guarding data homed with
   * it carries the holder's diffs in its release message. Ids beyond the
   * region fall back to id % nodeCount.
   */
  managerOf(id: number): number {
    const page = Math.floor((id * 16) / pageBytes);
    if (id >= 0 && page < this.pageCount) return this.placementHomeOf(page);
    return ((id % this.nodeCount) + this.nodeCount) % this.nodeCount;
  }
}
