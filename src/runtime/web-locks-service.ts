// Web Locks (Node 24: navigator.locks, worker_threads.locks) for a whole
// cluster. Node's lock manager is one per process: under dsm, where a
// program's threads run in several processes, a lock taken on one node did
// not exclude the threads of another. On a cluster of 2 or more nodes every
// app thread gets dsm's LockManager (src/threads/web-locks.ts), whose
// requests come here through the thread's channel ('wl-request',
// 'wl-release'); each node's WebLocks passes them on to the one lock service
// of the cluster, on node 0, over the 'locks' lane, and hands its answers
// ('wl-grant', 'wl-stolen' events) to the thread that asked.
//
// The service keeps, per name, the held requests and the queue, and grants
// as the Web Locks standard says: in request order, an exclusive request
// alone, shared requests together (one behind an exclusive one in the queue
// waits); `steal` takes the lock from its holders (told 'stolen') and goes
// first; `ifAvailable` is answered not granted when it could not be granted
// at once.
//
// Consistency: a lock orders memory as a Mutex does. The release of a held
// lock is a release of its node to node 0 (rtWebLockRelease carries what node
// 0 acquires), and a grant is a release of node 0 to the grantee's node
// (which acquires before its thread hears of the grant): so a thread granted
// the lock sees what the threads that held it before wrote (release to node
// 0, node 0 to the grantee: transitively, as vector times go). A thread
// that ends drops its requests, held and pending (rtWebLockDrop, a release
// too: what it wrote before it ended is seen by the next holder).

import type { ThreadEndpoint } from '../channel/server.js';
import type { ChannelEvent, ChannelRequest } from '../channel/wire.js';
import { webLockRequestCountMax } from '../constants.js';
import type { ConsistencyInfo } from '../protocol/messages.js';
import type { LaneNetwork, WebLockLaneMessage } from './envelope.js';
import { epochUs } from './observe.js';
import type { ConsistencyBounds } from './remote-workers.js';

/** The node whose manager keeps the cluster's locks. */
export const webLockServiceNode = 0;

type LockMode = 'exclusive' | 'shared';

interface ServiceRequest {
  key: string;
  node: number;
  mode: LockMode;
}

interface NameState {
  /** The held requests, by key: one exclusive, or any number of shared ones. */
  held: Map<string, ServiceRequest>;
  /** Whether the one held request is exclusive. */
  exclusiveHeld: boolean;
  queue: ServiceRequest[];
  /** Exclusive requests in the queue (an ifAvailable shared request is not available behind one). */
  exclusiveQueued: number;
}

type ToService = Extract<WebLockLaneMessage, { type: 'rtWebLockRequest' | 'rtWebLockRelease' | 'rtWebLockDrop' }>;
type ToNode = Extract<WebLockLaneMessage, { type: 'rtWebLockGrant' | 'rtWebLockStolen' }>;

/** The cluster's lock service (node 0 only): no I/O of its own, it answers through `send`. */
export class WebLockService {
  private readonly names = new Map<string, NameState>();
  /** Each held or queued request's name, by key (at most webLockRequestCountMax). */
  private readonly keys = new Map<string, string>();
  private readonly send: (toNode: number, message: ToNode) => void;

  constructor(send: (toNode: number, message: ToNode) => void) {
    this.send = send;
  }

  /** Held and queued requests (tests, reports). */
  get size(): number {
    return this.keys.size;
  }

  onMessage(from: number, message: ToService): void {
    switch (message.type) {
      case 'rtWebLockRequest': this.request(from, message); return;
      case 'rtWebLockRelease': this.drop([message.key]); return;
      case 'rtWebLockDrop': this.drop(message.keys); return;
    }
  }

  private request(from: number, message: Extract<ToService, { type: 'rtWebLockRequest' }>): void {
    if (this.keys.size >= webLockRequestCountMax) {
      this.send(from, { type: 'rtWebLockGrant', key: message.key, granted: false, full: this.keys.size });
      return;
    }
    let state = this.names.get(message.name);
    if (state === undefined) {
      state = { held: new Map(), exclusiveHeld: false, queue: [], exclusiveQueued: 0 };
      this.names.set(message.name, state);
    }
    const request: ServiceRequest = { key: message.key, node: from, mode: message.mode };
    if (message.steal) {
      for (const holder of state.held.values()) {
        this.keys.delete(holder.key);
        this.send(holder.node, { type: 'rtWebLockStolen', key: holder.key, by: message.key });
      }
      state.held.clear();
      state.exclusiveHeld = false;
      state.queue.unshift(request);
    } else if (message.ifAvailable && !WebLockService.availableNow(state, request.mode)) {
      this.send(from, { type: 'rtWebLockGrant', key: message.key, granted: false });
      if (state.held.size === 0 && state.queue.length === 0) this.names.delete(message.name);
      return;
    } else {
      state.queue.push(request);
    }
    if (request.mode === 'exclusive') state.exclusiveQueued += 1;
    this.keys.set(message.key, message.name);
    this.grantFrom(message.name, state);
  }

  /** Whether a request of `mode` made now would be granted at once (ifAvailable). */
  private static availableNow(state: NameState, mode: LockMode): boolean {
    if (mode === 'exclusive') return state.held.size === 0 && state.queue.length === 0;
    return !state.exclusiveHeld && state.exclusiveQueued === 0;
  }

  /**
   * Held requests released, or held or queued ones dropped (their thread ended), all before anything is granted;
   * unknown keys (stolen, dropped before) are ignored.
   */
  private drop(keys: readonly string[]): void {
    const touched = new Set<string>();
    for (const key of keys) {
      const name = this.keys.get(key);
      if (name === undefined) continue;
      this.keys.delete(key);
      const state = this.names.get(name)!;
      const held = state.held.get(key);
      if (held !== undefined) {
        state.held.delete(key);
        if (held.mode === 'exclusive') state.exclusiveHeld = false;
      } else {
        const index = state.queue.findIndex((each) => each.key === key);
        if (index >= 0 && state.queue.splice(index, 1)[0]!.mode === 'exclusive') state.exclusiveQueued -= 1;
      }
      touched.add(name);
    }
    for (const name of touched) this.grantFrom(name, this.names.get(name)!);
  }

  /** Grants the queue's head while it can be: an exclusive request with nothing held, shared ones while no exclusive one is held. */
  private grantFrom(name: string, state: NameState): void {
    let granted = 0;
    for (let head = state.queue[granted]; head !== undefined; head = state.queue[granted]) {
      if (head.mode === 'exclusive' ? state.held.size > 0 : state.exclusiveHeld) break;
      granted += 1;
      state.held.set(head.key, head);
      if (head.mode === 'exclusive') {
        state.exclusiveHeld = true;
        state.exclusiveQueued -= 1;
      }
      this.send(head.node, { type: 'rtWebLockGrant', key: head.key, granted: true });
    }
    if (granted > 0) state.queue.splice(0, granted);
    if (state.held.size === 0 && state.queue.length === 0) this.names.delete(name);
  }
}

export interface WebLocksOptions {
  nodeId: number;
  network: LaneNetwork<WebLockLaneMessage>;
  bounds: ConsistencyBounds;
}

/** One node's side: its threads' requests to the service, and the service's answers to them. */
export class WebLocks {
  private readonly options: WebLocksOptions;
  private readonly service: WebLockService | null;
  /**
   * This node's requests the service knows of: key -> the thread and its own id of the request, and, for an
   * interrupted run's report (waiting), its name, mode, when it was made (epoch µs) and whether it was granted.
   */
  private readonly byKey = new Map<string, { endpoint: ThreadEndpoint; id: number; name: string; mode: LockMode; startUs: number; granted: boolean }>();
  /** The same by thread: its id of a request -> key. */
  private readonly byEndpoint = new Map<ThreadEndpoint, Map<number, string>>();
  private counter = 0;

  constructor(options: WebLocksOptions) {
    this.options = options;
    this.service = options.nodeId === webLockServiceNode ? new WebLockService((toNode, message) => this.toNode(toNode, message)) : null;
  }

  /** A thread's request or release (served in the order the thread made them). */
  serve(endpoint: ThreadEndpoint, request: Extract<ChannelRequest, { op: 'wl-request' | 'wl-release' }>): void {
    if (request.op === 'wl-request') {
      const key = `${this.options.nodeId}:${this.counter++}`;
      this.byKey.set(key, { endpoint, id: request.id, name: request.name, mode: request.mode, startUs: epochUs(), granted: false });
      let ids = this.byEndpoint.get(endpoint);
      if (ids === undefined) {
        ids = new Map();
        this.byEndpoint.set(endpoint, ids);
      }
      ids.set(request.id, key);
      this.toService({ type: 'rtWebLockRequest', key, name: request.name, mode: request.mode, ifAvailable: request.ifAvailable, steal: request.steal });
      return;
    }
    const key = this.forget(endpoint, request.id);
    if (key !== null) this.toService({ type: 'rtWebLockRelease', key, info: this.releaseTo() });
  }

  /** A thread ended (returned, process.exit, threw, terminated): its held and pending requests go. */
  threadEnded(endpoint: ThreadEndpoint): void {
    const ids = this.byEndpoint.get(endpoint);
    if (ids === undefined) return;
    this.byEndpoint.delete(endpoint);
    const keys = [...ids.values()];
    for (const key of keys) this.byKey.delete(key);
    if (keys.length > 0) this.toService({ type: 'rtWebLockDrop', keys, info: this.releaseTo() });
  }

  /** A message of the 'locks' lane. */
  onMessage(from: number, message: WebLockLaneMessage): void {
    switch (message.type) {
      case 'rtWebLockRequest':
        this.service?.onMessage(from, message);
        return;
      case 'rtWebLockRelease':
      case 'rtWebLockDrop':
        if (message.info !== undefined) this.options.bounds.acquire('LockManager release', null, from, message.info);
        this.service?.onMessage(from, message);
        return;
      case 'rtWebLockGrant':
        if (message.info !== undefined) this.options.bounds.acquire('LockManager grant', null, from, message.info);
        this.granted(message);
        return;
      case 'rtWebLockStolen':
        this.stolen(message);
        return;
    }
  }

  /** This node's threads' requests not granted yet, for an interrupted run's report (ClusterNode). */
  waiting(): Array<{ tid: number; startUs: number; what: string }> {
    const waiting: Array<{ tid: number; startUs: number; what: string }> = [];
    for (const entry of this.byKey.values()) {
      if (entry.granted) continue;
      waiting.push({ tid: Math.max(0, entry.endpoint.threadIdSeen), startUs: entry.startUs, what: `navigator.locks.request of '${entry.name}' (${entry.mode})` });
    }
    return waiting;
  }

  private granted(message: Extract<ToNode, { type: 'rtWebLockGrant' }>): void {
    const entry = this.byKey.get(message.key);
    if (entry === undefined) {
      // Its thread ended after asking (its drop went before or crosses this grant): given back at once.
      if (message.granted) this.toService({ type: 'rtWebLockRelease', key: message.key, info: this.releaseTo() });
      return;
    }
    if (!message.granted) this.forget(entry.endpoint, entry.id);
    else entry.granted = true;
    const event: ChannelEvent = { kind: 'wl-grant', id: entry.id, granted: message.granted, ...(message.full === undefined ? {} : { full: message.full }) };
    entry.endpoint.sendEvent(event);
  }

  private stolen(message: Extract<ToNode, { type: 'rtWebLockStolen' }>): void {
    const entry = this.byKey.get(message.key);
    if (entry === undefined) return;
    this.forget(entry.endpoint, entry.id);
    // Node rejects a stolen request with an AbortError when its own thread stole it, with Error('LOCK_STOLEN') otherwise.
    const sameThread = this.byKey.get(message.by)?.endpoint === entry.endpoint;
    entry.endpoint.sendEvent({ kind: 'wl-stolen', id: entry.id, sameThread } satisfies ChannelEvent);
  }

  private forget(endpoint: ThreadEndpoint, id: number): string | null {
    const ids = this.byEndpoint.get(endpoint);
    const key = ids?.get(id);
    if (ids === undefined || key === undefined) return null;
    ids.delete(id);
    if (ids.size === 0) this.byEndpoint.delete(endpoint);
    this.byKey.delete(key);
    return key;
  }

  /** What node 0 acquires with a release from here (nothing on node 0 itself: one memory). */
  private releaseTo(): ConsistencyInfo | undefined {
    return this.options.nodeId === webLockServiceNode ? undefined : this.options.bounds.release('LockManager release', null, webLockServiceNode);
  }

  private toService(message: ToService): void {
    if (this.service !== null) this.service.onMessage(this.options.nodeId, message);
    else this.options.network.send(webLockServiceNode, message);
  }

  /** From the service (node 0): a grant is a release to the grantee's node. */
  private toNode(toNode: number, message: ToNode): void {
    if (toNode === this.options.nodeId) {
      // After the service's step (never inside it: what a grant starts here may come back to the service), in order.
      queueMicrotask(() => {
        if (message.type === 'rtWebLockGrant') this.granted(message);
        else this.stolen(message);
      });
      return;
    }
    if (message.type === 'rtWebLockGrant' && message.granted) {
      this.options.network.send(toNode, { ...message, info: this.options.bounds.release('LockManager grant', null, toNode) });
      return;
    }
    this.options.network.send(toNode, message);
  }
}
