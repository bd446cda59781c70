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

import { portRelayCountMax, portRelayPendingMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';

/** What goes to a relay end's thread: a message (its clone) or the far end's close. */
export type PortDelivery<M> = { kind: 'message'; message: M } | { kind: 'close' };

interface RelayEnd<E, M> {
  endpoint: E;
  farNode: number;
  opened: boolean;
  pending: Array<PortDelivery<M>>;
}

export class PortRoutes<E, M> {
  private readonly ends = new Map<string, RelayEnd<E, M>>();

  /** Relay ends held by this node's threads. */
  get size(): number {
    return this.ends.size;
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
    if (this.ends.size + ids.length > portRelayCountMax) {
      throw new DsmError('DSM_ERR_PORT_RELAYS', `this node relays ${this.ends.size} MessagePorts to other nodes, its limit (portRelayCountMax): close ports the program no longer uses`);
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
      if (end.endpoint !== endpoint) continue;
      this.ends.delete(id);
      closed.push({ id, farNode: end.farNode });
    }
    return closed;
  }
}
