// App side of the channel: synchronous calls from an app thread to its manager.

import { MessagePort, receiveMessageOnPort, threadId } from 'node:worker_threads';
import { DsmError, assert } from '../errors.js';
import type { ChannelEvent, ChannelRequest, PortMessage, ThreadEvent } from './wire.js';
import { DoorbellBlock, type NativeDoorbell, type PostRequest, blockBytes, doorbellEnabled, loadDoorbell } from './doorbell.js';
import { captureSite, raceSitesEnabled } from '../race/site.js';
import { hop, hopsOn } from '../util/hops.js';
import { portPostUnits, postsInFlightMax } from '../constants.js';

/** Node's own id of this thread, read before set-up gives `threadId` dsm's (src/threads/setup.ts). */
const nativeThreadIdHere = threadId;

const NativeSharedArrayBuffer = globalThis.SharedArrayBuffer;
/** Node's, held now: setup replaces the module's export (and so this live binding) with one that calls takeNow. */
const nativeReceiveMessageOnPort = receiveMessageOnPort;
/**
 * MessagePort's own postMessage, held at load: on 2+ nodes setup wraps the prototype's to forward relayed ports'
 * messages after each post (calls of their own), which a request on its way (a call in flight) must not do.
 */
const nativePostMessage = MessagePort.prototype.postMessage;
const textEncoder = new TextEncoder();
const noText = new Uint8Array(0);

export class ChannelClient {
  private readonly port: MessagePort;
  private readonly block: DoorbellBlock;
  /** Null when requests go by postMessage only (race mode carries call sites as text; DSM_DOORBELL=0). */
  private readonly bell: NativeDoorbell | null;
  /** Doorbell entries published so far (the ring's head). */
  private ringSent = 0;
  /** The end of the small posts' bytes written to the ring so far (an Int32 running count: DoorbellBlock.postStart). */
  private postBytesSent = 0;
  /** Messages posted on the port so far. */
  private portSent = 0;
  private callInFlight = false;
  /** Message posts sent without waiting (postMessageRequest), as an Int32 count (the manager counts those it served in the block). */
  private postsSent = 0;
  private holdCount = 0;
  private readonly listeners = new Set<(event: ThreadEvent) => void>();
  /** Events takeNow read from the port ahead of the event loop but left for it (dispatched at the next turn, in order). */
  private readonly deferred: ThreadEvent[] = [];
  /** The events of a batch ('events') not yet delivered, from `batchAt` on (see deliverBatched). */
  private batch: ThreadEvent[] = [];
  private batchAt = 0;
  private deferredFlush: ReturnType<typeof setImmediate> | null = null;

  constructor(port: MessagePort, threadIdSeen: number) {
    this.port = port;
    // Created with the native constructor before dsm replaces the global one:
    // the block is private to this thread and its manager, never dsm memory.
    const reply = new NativeSharedArrayBuffer(blockBytes);
    this.block = new DoorbellBlock(reply);
    this.bell = doorbellEnabled && !raceSitesEnabled ? loadDoorbell() : null;
    this.send({ op: 'hello', reply, threadIdSeen, nativeThreadId: nativeThreadIdHere }, []);
    this.port.on('message', (event: ChannelEvent) => {
      this.flushDeferred();
      if (event.kind !== 'events') {
        this.dispatch(event);
        return;
      }
      if (hopsOn) hop(`t:events ${event.events.length}`);
      for (const each of event.events) this.batch.push(each as ThreadEvent);
      this.deliverBatched();
    });
    // The port must not keep the thread alive: a program ends when its own work ends.
    // (Adding a 'message' listener refs a port, so unref comes after it.)
    this.port.unref();
  }

  /** Whether posted requests go through the doorbell ring (the manager can read them before their turn: 'escape' `given`). */
  get ringsBell(): boolean {
    return this.bell !== null;
  }

  /** The thread's doorbell block as float64s: its wait note (DoorbellBlock.waitNote) is written by the Atomics of a cluster of one. */
  get blockFloats(): Float64Array {
    return this.block.floatFields;
  }

  private dispatch(event: ThreadEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /**
   * Delivers the next event of a batch, then the one after it once the
   * process.nextTick callbacks and microtasks it queued have run (a tick that
   * queues a microtask that queues a tick: after theirs), as Node delivers the
   * messages queued on a port, each in a callback of its own. All in this
   * turn: the batch is delivered before the port's next message.
   */
  private readonly deliverBatched = (): void => {
    if (this.batchAt >= this.batch.length) return;
    const event = this.batch[this.batchAt]!;
    this.batchAt += 1;
    if (this.batchAt === this.batch.length) {
      this.batch = [];
      this.batchAt = 0;
    }
    try {
      this.dispatch(event);
    } finally {
      if (this.batchAt < this.batch.length) process.nextTick(this.afterTicks);
    }
  };

  private readonly afterTicks = (): void => queueMicrotask(this.afterMicrotasks);
  private readonly afterMicrotasks = (): void => process.nextTick(this.deliverBatched);

  private flushDeferred(): void {
    if (this.deferredFlush !== null) {
      clearImmediate(this.deferredFlush);
      this.deferredFlush = null;
    }
    for (let event = this.deferred.shift(); event !== undefined; event = this.deferred.shift()) this.dispatch(event);
  }

  /**
   * Reads the events that reached this thread without waiting for its event loop (a thread that never returns to
   * it, reading a relayed port with receiveMessageOnPort after an Atomics wake-up): those `now` accepts are
   * dispatched at once (they must run no program code), the others at the loop's next turn, in their order.
   */
  takeNow(now: (event: ThreadEvent) => boolean): void {
    // A batch's events not yet delivered came before what is on the port (none, in a loop polling an empty port).
    if (this.batchAt < this.batch.length) {
      const rest = this.batch.slice(this.batchAt);
      this.batch = [];
      this.batchAt = 0;
      for (const event of rest) this.takeOne(event, now);
    }
    for (let got = nativeReceiveMessageOnPort(this.port); got !== undefined; got = nativeReceiveMessageOnPort(this.port)) {
      const event = got.message as ChannelEvent;
      if (event.kind === 'events') for (const each of event.events) this.takeOne(each as ThreadEvent, now);
      else this.takeOne(event, now);
    }
  }

  private takeOne(event: ThreadEvent, now: (event: ThreadEvent) => boolean): void {
    if (now(event)) {
      this.dispatch(event);
      return;
    }
    this.deferred.push(event);
    this.deferredFlush ??= setImmediate(() => {
      this.deferredFlush = null;
      this.flushDeferred();
    });
  }

  /** Listens for events the manager sends on its own (e.g. a remote worker's messages). */
  onEvent(listener: (event: ThreadEvent) => void): void {
    this.listeners.add(listener);
  }

  /** While held, the channel keeps this thread alive, as a live Worker handle would. */
  hold(): void {
    if (this.holdCount++ === 0) this.port.ref();
  }

  unhold(): void {
    assert(this.holdCount > 0, 'unhold matches a hold');
    if (--this.holdCount === 0) this.port.unref();
  }

  /** Sends a request and parks this thread until the manager answers. */
  call(request: ChannelRequest, transfer: readonly unknown[] = []): unknown {
    assert(!this.callInFlight, 'one synchronous channel call per thread at a time');
    this.callInFlight = true;
    if (raceSitesEnabled) withSite(request);
    try {
      this.send(request, transfer, false);
      const value = this.block.awaitReply();
      if (hopsOn) hop('t:resumed');
      return value;
    } finally {
      this.callInFlight = false;
    }
  }

  /** Sends a request that needs no answer. */
  post(request: ChannelRequest, transfer: readonly unknown[] = []): void {
    if (raceSitesEnabled) withSite(request);
    this.send(request, transfer, true);
  }

  /**
   * A message post to another node (worker-post, parent-post, port-post,
   * bc-post): sent without waiting, as node's postMessage returns at once,
   * unless postsInFlightMax of the thread's posts are in its manager still
   * (not yet admitted within the link limit, src/runtime/flow.ts, and served:
   * the manager counts them in the thread's doorbell block): then the thread
   * waits until one is (flow control: a full link parks the poster, never
   * unbounded memory). One carrying MessagePorts (`mustWait`) is a call, as
   * before (answered once served), and so is every post in race mode: there
   * the release ends the node's interval (docs/RACE.md), and the thread's
   * writes after its post must fall in the next one. The manager serves a
   * thread's requests in the order it sent them (by doorbell or by port, see
   * ./doorbell.ts), so a post is served before anything the thread does after
   * it (a call, a sync op, its end: ChannelServer.serveInOrder), and its
   * release (write notices) is made when it is served, as a call's.
   */
  postMessageRequest(request: Extract<ChannelRequest, { op: 'worker-post' | 'parent-post' | 'port-post' | 'bc-post' }>, transfer: readonly unknown[], mustWait = false): void {
    if (mustWait || raceSitesEnabled) {
      this.call(request, transfer);
      return;
    }
    this.block.waitForPostRoom(this.postsSent, postsInFlightMax);
    request.posted = true;
    let units = 1;
    if (!this.sendPost(request)) {
      units = portPostUnits;
      request.units = units;
      this.post(request, transfer);
    }
    this.postsSent = (this.postsSent + units) | 0;
  }

  /**
   * A small post without MessagePorts through the doorbell ring: its clone
   * copied into the block's post bytes, an entry in order with the thread's
   * other requests, the bell rung (the manager takes every entry ready at one
   * wake-up: one for a burst, not one 'message' event a post). False if it
   * goes by port (no bell, or too large for the ring).
   */
  private sendPost(request: PostRequest): boolean {
    if (this.bell === null || ('ports' in request && request.ports !== undefined)) return false;
    const text = request.op === 'port-post' ? textEncoder.encode(request.id) : request.op === 'bc-post' ? textEncoder.encode(request.name) : noText;
    const length = text.byteLength + request.bytes.byteLength;
    const start = DoorbellBlock.postStart(this.postBytesSent, length);
    if (start === -1) return false;
    const sequence = this.ringSent;
    this.block.waitForRoom(sequence, (start + length) | 0);
    this.postBytesSent = this.block.encodePost(sequence, request, text, start, this.portSent);
    this.ringSent = sequence + 1;
    this.block.publish(this.ringSent);
    if (hopsOn) hop(`t:ring ${request.op}`);
    if (!this.bell.ring()) throw new DsmError('DSM_ERR_CHANNEL', 'the manager\'s doorbell is closed (the node is ending)');
    return true;
  }

  /** Through the doorbell if the request has a binary form and carries nothing to transfer, else by postMessage. */
  private send(request: ChannelRequest, transfer: readonly unknown[], posted = true): void {
    if (this.bell !== null && transfer.length === 0) {
      const sequence = this.ringSent;
      this.block.waitForRoom(sequence);
      if (this.block.encode(sequence, request, posted, this.portSent)) {
        this.ringSent = sequence + 1;
        this.block.publish(this.ringSent);
        if (hopsOn) hop(`t:ring ${request.op}`);
        if (!this.bell.ring()) throw new DsmError('DSM_ERR_CHANNEL', 'the manager\'s doorbell is closed (the node is ending)');
        return;
      }
    }
    nativePostMessage.call(this.port, { request, ringBefore: this.ringSent } satisfies PortMessage, transfer as never);
    this.portSent += 1;
  }
}

/** Requests that synchronize or allocate: in race mode they say where the program called them (docs/RACE.md). */
const sitedOps = new Set(['alloc', 'alloc-batch', 'atomic', 'sync', 'worker-spawn', 'worker-post', 'parent-post']);

function withSite(request: ChannelRequest): void {
  if (sitedOps.has(request.op)) (request as { site?: string | null }).site = captureSite();
}
