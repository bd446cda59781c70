// A node's routing table for MessagePorts relayed across nodes
// (src/threads/port-relay.ts, src/runtime/remote-workers.ts): which thread of
// this node holds each relay end, and the node of its far end. No I/O: the
// caller sends and posts what these methods answer.
//
// A relay end is registered where a message carrying its port leaves (the
// sending thread holds it, `opened`) and where it arrives (the thread the
// message goes to will hold it once it reads the message: not `opened` until
// its 'port-open'). What comes for an end not yet opened waits, at most
// portRelayPendingMax; a far close is delivered last and ends the route.
//
// Splices (src/threads/port-relay.ts, splice): a thread ending with two relay
// ends that are one local channel's two ends asks its manager to hold what
// comes for them (hold), forwards what had reached it, then has them joined
// (join): from then on what comes for one from its far node goes on as the
// other's to that one's far node (a transit). Ports inside a message passing
// a transit pass through this node (a through route: from either node to the
// other) when the two far nodes differ.

import { portRelayCountMax, portRelayPendingMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';

/** What goes to a relay end's thread: a message (its clone) or the far end's close. */
export type PortDelivery<M> = { kind: 'message'; message: M } | { kind: 'close' };

/** What a splice passes on: `delivery` for relay `id` at node `toNode`, which came from `fromNode`. */
export interface PortOnward<M> {
  fromNode: number;
  toNode: number;
  id: string;
  delivery: PortDelivery<M>;
}

interface RelayEnd<E, M> {
  endpoint: E;
  farNode: number;
  opened: boolean;
  pending: Array<PortDelivery<M>>;
  /** While its thread splices it: what came from the far end meanwhile, passed on when joined. */
  held?: Array<PortDelivery<M>>;
  /** Joined: the relay whose far end this one's far end now talks to (its thread holds neither any more). */
  transit?: string;
}

export class PortRoutes<E, M> {
  private readonly ends = new Map<string, RelayEnd<E, M>>();
  /** Ports passing through this node inside messages on a transit: relay id -> its two far nodes. */
  private readonly through = new Map<string, [number, number]>();

  /** Relay ends held by this node's threads, transits and through routes. */
  get size(): number {
    return this.ends.size + this.through.size;
  }

  /** Whether relay `id` is held, joined or passing through here (what comes for it goes on: passOn). */
  spliced(id: string): boolean {
    const end = this.ends.get(id);
    return this.through.has(id) || end?.held !== undefined || end?.transit !== undefined;
  }

  /**
   * The thread at `endpoint` is ending with relay ends `pairs`, each two the ends of one local channel: what
   * comes for them waits here until join.
   */
  hold(endpoint: E, pairs: unknown): void {
    for (const id of splicePairs(pairs).flat()) {
      const end = this.ends.get(id);
      if (end !== undefined && end.endpoint === endpoint && end.opened && end.transit === undefined) end.held ??= [];
    }
  }

  /**
   * The thread at `endpoint` forwarded what had reached it for `pairs`: each pair is joined (its thread holds
   * them no more), and what waited goes on; a pair one of whose ends closed meanwhile ends (the other far end is
   * told). What to send, in order.
   */
  join(endpoint: E, pairs: unknown): Array<PortOnward<M>> {
    const out: Array<PortOnward<M>> = [];
    for (const [a, b] of splicePairs(pairs)) {
      const endA = this.ends.get(a);
      const endB = this.ends.get(b);
      const mine = (end: RelayEnd<E, M> | undefined): end is RelayEnd<E, M> => end !== undefined && end.endpoint === endpoint && end.transit === undefined;
      if (!mine(endA) || !mine(endB)) {
        // Closed meanwhile: the other end goes too, as it would have with its thread.
        for (const [id, end] of [[a, endA], [b, endB]] as const) {
          if (!mine(end)) continue;
          this.ends.delete(id);
          out.push({ fromNode: end.farNode, toNode: end.farNode, id, delivery: { kind: 'close' } });
        }
        continue;
      }
      endA.transit = b;
      endB.transit = a;
      const heldA = endA.held ?? [];
      const heldB = endB.held ?? [];
      delete endA.held;
      delete endB.held;
      for (const delivery of heldA) out.push(...this.passOn(a, endA.farNode, delivery));
      for (const delivery of heldB) out.push(...this.passOn(b, endB.farNode, delivery));
    }
    return out;
  }

  /**
   * Something for relay `id` from `fromNode` where `spliced(id)`: held, or what to send on (a close ends the
   * route). Ports inside a message become through routes here when the two far nodes differ (the caller refuses
   * them otherwise: throughAdded).
   */
  passOn(id: string, fromNode: number, delivery: PortDelivery<M>): Array<PortOnward<M>> {
    const through = this.through.get(id);
    if (through !== undefined) {
      const toNode = fromNode === through[0] ? through[1] : through[0];
      if (delivery.kind === 'close') this.through.delete(id);
      return [{ fromNode, toNode, id, delivery }];
    }
    const end = this.ends.get(id);
    if (end === undefined) return [];
    if (end.held !== undefined) {
      if (end.held.length >= portRelayPendingMax) {
        throw new DsmError('DSM_ERR_PORT_RELAYS', `${portRelayPendingMax} messages wait for a MessagePort passed on by a thread that is ending (portRelayPendingMax)`);
      }
      end.held.push(delivery);
      return [];
    }
    const peerId = end.transit;
    const peer = peerId === undefined ? undefined : this.ends.get(peerId);
    if (peerId === undefined || peer === undefined) return [];
    if (delivery.kind === 'close') {
      this.ends.delete(id);
      this.ends.delete(peerId);
    }
    return [{ fromNode: end.farNode, toNode: peer.farNode, id: peerId, delivery }];
  }

  /** Ports `ids` inside a message passing a transit from `fromNode` to `toNode`: through routes (false: not made, same node). */
  throughAdded(ids: readonly string[], fromNode: number, toNode: number): boolean {
    if (fromNode === toNode) return false;
    if (this.size + ids.length > portRelayCountMax) {
      throw new DsmError('DSM_ERR_PORT_RELAYS', `this node relays ${this.size} MessagePorts to other nodes, its limit (portRelayCountMax): close ports the program no longer uses`);
    }
    for (const id of ids) this.through.set(id, [fromNode, toNode]);
    return true;
  }

  /** The node of relay `id`'s far end, or null if this node holds no end of it (closed). */
  farNodeOf(id: string): number | null {
    return this.ends.get(id)?.farNode ?? null;
  }

  /** The thread that holds (or will hold, once it reads the message that carried it) this node's end of relay `id`, or null. */
  endpointOf(id: string): E | null {
    return this.ends.get(id)?.endpoint ?? null;
  }

  /** The thread at `endpoint` sends a message carrying ports `ids` to `farNode`: it holds their ends. */
  sent(endpoint: E, ids: readonly string[] | undefined, farNode: number): void {
    if (ids === undefined) return;
    if (this.size + ids.length > portRelayCountMax) {
      throw new DsmError('DSM_ERR_PORT_RELAYS', `this node relays ${this.size} MessagePorts to other nodes, its limit (portRelayCountMax): close ports the program no longer uses`);
    }
    for (const id of ids) {
      assert(!this.ends.has(id), 'a relay id is sent once');
      this.ends.set(id, { endpoint, farNode, opened: true, pending: [] });
    }
  }

  /** A message carrying ports `ids` came from `fromNode` for the thread at `endpoint`: their ends are there once it reads it. */
  received(endpoint: E, ids: unknown, fromNode: number): void {
    if (ids === undefined) return;
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
      throw new DsmError('DSM_ERR_FRAME', `a message from node ${fromNode} names its relayed ports with something other than a list of ids`);
    }
    for (const id of ids as string[]) {
      assert(!this.ends.has(id), 'a relay id arrives once');
      this.ends.set(id, { endpoint, farNode: fromNode, opened: false, pending: [] });
    }
  }

  /**
   * The thread at `endpoint` made the port of relay `id`: what waited for it,
   * in order, to post to that thread now (empty if it was open, or is gone).
   */
  opened(endpoint: E, id: string): Array<PortDelivery<M>> {
    const end = this.ends.get(id);
    if (end === undefined || end.opened) return [];
    end.opened = true;
    end.endpoint = endpoint;
    const waiting = end.pending.splice(0);
    if (waiting.some((delivery) => delivery.kind === 'close')) this.ends.delete(id);
    return waiting;
  }

  /**
   * Something for this node's end of relay `id` from its far end: the thread
   * to post it to now, or null (held until the end is opened, or no end here:
   * closed, dropped as a message to a closed port is).
   */
  deliver(id: string, delivery: PortDelivery<M>): E | null {
    const end = this.ends.get(id);
    if (end === undefined) return null;
    if (!end.opened) {
      if (end.pending.length >= portRelayPendingMax) {
        throw new DsmError('DSM_ERR_PORT_RELAYS', `${portRelayPendingMax} messages wait for a MessagePort received from node ${end.farNode} whose message no thread here has read (portRelayPendingMax): read the message that carries the port`);
      }
      end.pending.push(delivery);
      return null;
    }
    if (delivery.kind === 'close') this.ends.delete(id);
    return end.endpoint;
  }

  /** This node's end of relay `id` closed: the far end's node, to tell (null if the route is gone already). */
  closedHere(id: string): number | null {
    const end = this.ends.get(id);
    if (end === undefined) return null;
    this.ends.delete(id);
    return end.farNode;
  }

  /** The thread at `endpoint` ended: its ends go, each far end to be told (relay id, far node). */
  threadEnded(endpoint: E): Array<{ id: string; farNode: number }> {
    const closed: Array<{ id: string; farNode: number }> = [];
    for (const [id, end] of this.ends) {
      // A transit is no thread's any more.
      if (end.endpoint !== endpoint || end.transit !== undefined) continue;
      this.ends.delete(id);
      closed.push({ id, farNode: end.farNode });
    }
    return closed;
  }
}

/** A port-splice's or port-join's pairs as sent by a thread: a list of two relay ids each (else a bug: DSM_ERR_INTERNAL). */
function splicePairs(pairs: unknown): Array<[string, string]> {
  assert(Array.isArray(pairs) && pairs.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((id) => typeof id === 'string')), 'a splice names pairs of relay ids');
  return pairs as Array<[string, string]>;
}
