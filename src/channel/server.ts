// Manager side of the channel: one endpoint per app thread. Requests arrive
// by the thread's doorbell (binary entries in its block, the manager woken
// natively) or on its port; answers are written into the thread's block.

import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { DsmError, assert, isDsmError } from '../errors.js';
import type { ChannelReply, ChannelRequest, PortMessage } from './wire.js';
import { DoorbellBlock, type RingSync, loadDoorbell, requestOfSync, ringSyncLock } from './doorbell.js';
import { hop, hopsOn } from '../util/hops.js';
import { channelEventBatchMax } from '../constants.js';
import type { ChannelEvent } from './wire.js';

/** A handler's answer meaning: no reply now (the manager answers later, or the request was a post). */
export const replyLater = Symbol('replyLater');

export type RequestHandler = (thread: ThreadEndpoint, request: ChannelRequest) => unknown;

/**
 * The direct path of a sync entry (lock, unlock, barrier wait) read from a
 * thread's ring: it serves the entry (parks it in the engine, answers it when
 * the answer comes) and returns true, or returns false having done nothing,
 * and the entry takes the general path (a request object, the handler). It
 * must read `entry`'s fields before anything else: the object is reused.
 */
export interface DirectSyncHandler { serveSyncEntry(thread: ThreadEndpoint, entry: RingSync): boolean }

/**
 * The direct path of a decoded Atomics entry from the ring (an 'atomic' or
 * 'line' request): true when served, false having done nothing (the general
 * path then takes it).
 */
export interface DirectRequestHandler { serveAtomicsEntry(thread: ThreadEndpoint, request: Extract<ChannelRequest, { op: 'atomic' | 'line' }>, posted: boolean): boolean }

export class ThreadEndpoint {
  readonly port: MessagePort;
  threadIdSeen = -1;
  /** Node's own id of the thread (its hello), -1 before. */
  nativeThreadId = -1;
  /** The thread is known to have ended (its parent saw 'exit'), though its channel may not have closed yet. */
  ended = false;
  /** Set by the thread's hello: its doorbell block. */
  block: DoorbellBlock | null = null;
  /** Port messages served (hello included). */
  portServed = 0;
  /** Doorbell entries taken from the thread's ring. */
  ringServed = 0;

  /** Message events gathered for this thread in this run of the manager's code (sendEvent), and the buffers they move. */
  private pendingEvents: ChannelEvent[] = [];
  private pendingTransfer: ArrayBuffer[] = [];

  constructor(port: MessagePort) {
    this.port = port;
  }

  /**
   * Sends `event` to the thread. A message (`batch`) waits for the end of the
   * manager's synchronous run (a microtask: the frames of one read), with the
   * thread's other messages of that run, and they go as one MessagePort
   * message (one wake-up of the thread, not one a message); any other event,
   * and anything else the manager does that a thread could see (an engine
   * message, flushPendingEvents), sends those first.
   */
  sendEvent(event: ChannelEvent, transfer: readonly ArrayBuffer[] = [], batch = false): void {
    if (!batch) {
      this.flushEvents();
      this.port.postMessage(event, transfer as ArrayBuffer[]);
      return;
    }
    if (this.pendingEvents.length === 0) {
      if (pendingEndpoints.length === 0) queueMicrotask(flushPendingEvents);
      pendingEndpoints.push(this);
    }
    this.pendingEvents.push(event);
    for (const buffer of transfer) if (!this.pendingTransfer.includes(buffer)) this.pendingTransfer.push(buffer);
    if (this.pendingEvents.length >= channelEventBatchMax) this.flushEvents();
  }

  /** Sends the message events gathered for this thread, if any (one MessagePort message). */
  flushEvents(): void {
    const events = this.pendingEvents;
    if (events.length === 0) return;
    const transfer = this.pendingTransfer;
    this.pendingEvents = [];
    this.pendingTransfer = [];
    if (events.length === 1) this.port.postMessage(events[0], transfer);
    else this.port.postMessage({ kind: 'events', events } satisfies ChannelEvent, transfer);
  }

  /** One of the thread's message posts (a request with `posted`, ChannelClient.postMessageRequest) is served: room for another. */
  postServed(units = 1): void {
    this.block?.postServed(units);
  }

  attachReply(reply: SharedArrayBuffer, threadIdSeen: number, nativeThreadId = -1): void {
    assert(this.block === null, 'a thread says hello once');
    this.block = new DoorbellBlock(reply);
    this.threadIdSeen = threadIdSeen;
    this.nativeThreadId = nativeThreadId;
  }

  /**
   * Writes the answer to the thread's pending synchronous call and wakes it.
   * A function of its own (made once per thread), so that an engine's answer
   * can be this function itself, with no closure per request (an engine
   * SyncResult is a ChannelReply).
   */
  readonly answer = (reply: ChannelReply): void => {
    if (hopsOn) hop('m:answer');
    assert(this.block !== null, 'answer only after hello');
    this.block.answer(reply);
  };
}

/** A message post the thread did not wait for (ChannelClient.postMessageRequest). */
function isPostedPost(request: ChannelRequest): boolean {
  return (request.op === 'worker-post' || request.op === 'parent-post' || request.op === 'port-post' || request.op === 'bc-post') && request.posted === true;
}

/**
 * Whether the posts held back to send together may stay held while `request`
 * is served: a post the thread did not wait for, or a given escape (the
 * weight of the post after it: this node's bookkeeping, nothing sent; one
 * that sent them would make each post of a view a frame of its own).
 */
function leavesPostsHeld(request: ChannelRequest): boolean {
  return isPostedPost(request) || (request.op === 'escape' && request.given === true);
}

/** Endpoints with message events gathered (ThreadEndpoint.sendEvent), sent at the end of the run or by flushPendingEvents. */
const pendingEndpoints: ThreadEndpoint[] = [];

/**
 * Sends every thread's gathered message events now: before the manager does
 * what a thread could see that came after them (an engine message answering or
 * waking a thread), and at the end of the run that gathered them.
 */
export function flushPendingEvents(): void {
  for (let index = 0; index < pendingEndpoints.length; index += 1) pendingEndpoints[index]!.flushEvents();
  pendingEndpoints.length = 0;
}

/** The servers of this thread (a node's manager has one), drained when the doorbell rings (an array: no iterator a ring). */
const servers: ChannelServer[] = [];

function drainAllServers(): void {
  if (hopsOn) hop('m:bell');
  for (let index = 0; index < servers.length; index += 1) servers[index]!.drainAll();
}

export class ChannelServer {
  private readonly handler: RequestHandler;
  readonly endpoints = new Set<ThreadEndpoint>();
  /**
   * The same endpoints as an array, for the drain at every ring (a Set's
   * iterator in cold code cost as much as the drain). Endpoints come and go
   * only in port events, never while a drain runs.
   */
  private readonly endpointList: ThreadEndpoint[] = [];
  private readonly endListeners: Array<(endpoint: ThreadEndpoint) => void> = [];
  private directSync: DirectSyncHandler | null = null;
  /** The fields of the sync entry being served (one object for all: no allocation per entry). */
  private readonly syncEntry: RingSync = { kind: ringSyncLock, id: 0, threadId: 0, parties: -1, tryOnly: false, posted: false };
  /** A ring entry looked at before it is taken (see drainRing's tryLock rule). */
  private readonly peekEntry: RingSync = { kind: ringSyncLock, id: 0, threadId: 0, parties: -1, tryOnly: false, posted: false };
  /** Set while the other threads' rings are drained ahead of a tryLock. */
  private drainingAhead = false;
  /** Sync entries served by the direct path, and those it declined (tests, diagnostics). */
  directServed = 0;
  directDeclined = 0;

  /**
   * Sync entries from the ring go first to `handler` (the node decides once
   * whether it may: not in race mode, whose requests carry call sites by port).
   */
  serveSyncDirectly(handler: DirectSyncHandler | null): void {
    this.directSync = handler;
  }

  private directAtomics: DirectRequestHandler | null = null;

  /**
   * Called before the server serves anything but a message post the thread
   * did not wait for or a given escape (leavesPostsHeld): the node sends the
   * posts it served and holds back to send together
   * (src/runtime/remote-workers.ts), so that a thread's posts go before what
   * it does next (a sync op, an Atomics op, any call).
   */
  beforeOtherRequest: (() => void) | null = null;

  /** Atomics entries ('atomic', 'line') from the ring go first to `handler` (decided once by the node, as above). */
  serveAtomicsDirectly(handler: DirectRequestHandler | null): void {
    this.directAtomics = handler;
  }

  /** Calls `listener` when an app thread's channel closes (the thread exited or was terminated). */
  onThreadEnd(listener: (endpoint: ThreadEndpoint) => void): void {
    this.endListeners.push(listener);
  }

  constructor(handler: RequestHandler) {
    this.handler = handler;
    // The bell is process-wide (one manager per process): the first server opens it on this thread's loop.
    if (servers.length === 0) loadDoorbell().open(drainAllServers);
    servers.push(this);
  }

  /** Test hook (DSM_TEST_HOOK_THREAD_END_DELAY): a thread's channel close is handled this many ms late. */
  private closeDelayMs = 0;

  delayClosesForTest(ms: number): void {
    this.closeDelayMs = ms;
  }

  /** The live endpoint of the thread the program knows as `threadIdSeen` (after its hello), or null. */
  endpointOf(threadIdSeen: number): ThreadEndpoint | null {
    for (const endpoint of this.endpoints) if (endpoint.threadIdSeen === threadIdSeen) return endpoint;
    return null;
  }

  /**
   * Serves what `endpoint`'s thread sent before it ended (its channel has not
   * closed yet): the port messages waiting on its port (posted messages the
   * thread did not wait for: they are in the port's queue once the thread has
   * ended) and the doorbell entries, in the thread's order. What the thread
   * did after them (its end) is then served after them.
   */
  serveInOrder(endpoint: ThreadEndpoint): void {
    for (let got = receiveMessageOnPort(endpoint.port); got !== undefined; got = receiveMessageOnPort(endpoint.port)) {
      this.onPortMessage(endpoint, got.message as PortMessage);
    }
    this.drainRing(endpoint, false);
  }

  /** Serves requests arriving on `port`, the manager's end of one app thread's channel. */
  attach(port: MessagePort): ThreadEndpoint {
    const endpoint = new ThreadEndpoint(port);
    this.endpoints.add(endpoint);
    this.endpointList.push(endpoint);
    port.on('message', (message: PortMessage) => this.onPortMessage(endpoint, message));
    port.on('close', () => {
      const ended = (): void => {
        this.endpoints.delete(endpoint);
        this.endpointList.splice(this.endpointList.indexOf(endpoint), 1);
        // What the thread queued before it ended is still served (a posted unlock
        // is performed); a call whose thread is gone gets no answer (src/runtime).
        this.drainRing(endpoint, true);
        for (const listener of this.endListeners) listener(endpoint);
      };
      if (this.closeDelayMs > 0) setTimeout(ended, this.closeDelayMs);
      else ended();
    });
    port.unref();
    return endpoint;
  }

  /**
   * Counts, ahead of their turn, the given escapes (ChannelRequest 'escape'
   * `given`) every thread has published and this manager has not served:
   * `count` for each one's offset; each is then served as nothing. Called
   * before a report that a buffer was collected is acted on: a thread posts
   * the escape while it holds the buffer, so an escape that precedes the
   * collection is published by then, though this manager may not have come to
   * it (a port message ahead of it, or a thread that ended with it unread).
   * Counted late, the range could be reused under the other node's buffer;
   * counted early, it is only kept a little longer.
   */
  applyGivenEscapes(count: (offset: number) => void): void {
    for (const endpoint of this.endpoints) {
      const block = endpoint.block;
      if (block === null) continue;
      const head = block.head();
      for (let sequence = endpoint.ringServed; sequence < head; sequence += 1) {
        const offset = block.takeGivenEscape(sequence);
        if (offset !== -1) count(offset);
      }
    }
  }

  /** Takes every thread's ready doorbell entries (the bell coalesces: one wake-up for any number of rings). */
  drainAll(): void {
    const list = this.endpointList;
    for (let index = 0; index < list.length; index += 1) this.drainRing(list[index]!, false);
  }

  private onPortMessage(endpoint: ThreadEndpoint, message: PortMessage): void {
    assert(typeof message === 'object' && message !== null && typeof message.ringBefore === 'number', 'a port message comes from a ChannelClient (a PortMessage)');
    // Entries the thread queued before this message come first (they are in
    // its block already: it published them before posting).
    if (endpoint.ringServed < message.ringBefore) this.drainRing(endpoint, false, message.ringBefore);
    assert(endpoint.ringServed === message.ringBefore, 'a port message is served after the doorbell entries before it');
    const request = message.request;
    // A tryLock by port: what the node's other threads sent before it goes first (see drainRing).
    if (request.op === 'sync' && request.kind === 'lock' && request.tryOnly === true && !this.drainingAhead && this.endpointList.length > 1) {
      this.drainOthersAhead(endpoint);
    }
    endpoint.portServed += 1;
    if (this.beforeOtherRequest !== null && !leavesPostsHeld(request)) this.beforeOtherRequest();
    this.dispatch(endpoint, request);
    // Entries that waited for this message.
    this.drainRing(endpoint, false);
  }

  /**
   * Serves what every thread but `endpoint`'s has sent and this manager has not served yet (their port messages
   * waiting, their doorbell entries), each in its thread's order: before a tryLock of `endpoint`'s, which answers
   * from the lock's state now (see drainRing).
   */
  private drainOthersAhead(endpoint: ThreadEndpoint): void {
    this.drainingAhead = true;
    try {
      const list = this.endpointList;
      for (let index = 0; index < list.length; index += 1) {
        const other = list[index]!;
        if (other === endpoint) continue;
        for (let got = receiveMessageOnPort(other.port); got !== undefined; got = receiveMessageOnPort(other.port)) {
          this.onPortMessage(other, got.message as PortMessage);
        }
        this.drainRing(other, false);
      }
    } finally {
      this.drainingAhead = false;
    }
  }

  /**
   * Serves the thread's doorbell entries in order, up to `limit`, stopping at
   * one written after a port message not yet arrived (unless `final`: the
   * thread is gone and every message it sent has arrived).
   */
  private drainRing(endpoint: ThreadEndpoint, final: boolean, limit = Infinity): void {
    const block = endpoint.block;
    if (block === null) return;
    let drainedAheadOf = -1;
    while (endpoint.ringServed < limit) {
      const sequence = endpoint.ringServed;
      if (sequence >= block.head()) return;
      if (!final && block.portBefore(sequence) > endpoint.portServed) return;
      // A tryLock answers from the lock's state now, so what other threads of this node did before it must be in
      // that state: a posted unlock in another ring may precede it (the unlocker then stored an Atomics flag the
      // tryLocker loaded: same-node Atomics never pass through here), though that ring was drained before it was
      // published. Every other ring is drained first; this one's entry is looked at again after (lock() needs no
      // such rule: it waits for the unlock).
      if (sequence !== drainedAheadOf && !this.drainingAhead && this.endpointList.length > 1 && !block.isPost(sequence)
        && block.readSync(sequence, this.peekEntry) && this.peekEntry.kind === ringSyncLock && this.peekEntry.tryOnly) {
        drainedAheadOf = sequence;
        this.drainOthersAhead(endpoint);
        continue;
      }
      if (this.beforeOtherRequest !== null && !block.leavesPostsHeld(sequence)) this.beforeOtherRequest();
      const direct = this.directSync;
      if (direct !== null && block.readSync(sequence, this.syncEntry)) {
        // Taken first, as below: serving it may drain this ring again (a thread's end).
        endpoint.ringServed = sequence + 1;
        block.take(endpoint.ringServed);
        if (direct.serveSyncEntry(endpoint, this.syncEntry)) {
          this.directServed += 1;
          continue;
        }
        this.directDeclined += 1;
        const entry = this.syncEntry;
        this.dispatch(endpoint, requestOfSync(entry), entry.posted);
        continue;
      }
      const request = block.decode(sequence);
      const posted = block.isPosted(sequence);
      endpoint.ringServed = sequence + 1;
      block.take(endpoint.ringServed);
      const directAtomics = this.directAtomics;
      if (directAtomics !== null && (request.op === 'atomic' || request.op === 'line')) {
        if (directAtomics.serveAtomicsEntry(endpoint, request, posted)) {
          this.directServed += 1;
          continue;
        }
        this.directDeclined += 1;
      }
      this.dispatch(endpoint, request, posted);
    }
  }

  /** Serves one request; answers it unless the handler will later, or it was posted from the doorbell (nobody waits). */
  private dispatch(endpoint: ThreadEndpoint, request: ChannelRequest, posted = false): void {
    switch (request.op) {
      case 'hello':
        endpoint.attachReply(request.reply, request.threadIdSeen, request.nativeThreadId);
        return;
      case 'thread-native-id':
      case 'thread-seen-id': {
        // This node's threads only: answered here, where every one of them said hello.
        let value = -1;
        for (const each of this.endpoints) {
          // A thread that ended is no thread any more (postMessageToThread to it fails, as Node's does at once).
          if (each.ended) continue;
          if (request.op === 'thread-native-id' ? each.threadIdSeen === request.threadIdSeen : each.nativeThreadId === request.nativeThreadId) {
            value = request.op === 'thread-native-id' ? each.nativeThreadId : each.threadIdSeen;
            break;
          }
        }
        if (!posted) endpoint.answer({ ok: true, value });
        return;
      }
      case 'adopt':
        this.attach(request.port);
        return;
      default: {
        let reply: ChannelReply;
        try {
          const value = this.handler(endpoint, request);
          if (value === replyLater || posted) return;
          reply = { ok: true, value: value ?? null };
        } catch (error) {
          // An answer nobody reads would be taken as the answer to the thread's next call.
          if (!isDsmError(error) || posted) throw error;
          reply = { ok: false, code: (error as DsmError).code, message: (error as DsmError).message };
        }
        endpoint.answer(reply);
      }
    }
  }
}
