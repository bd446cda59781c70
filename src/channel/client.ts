// App side of the channel: synchronous calls from an app thread to its manager.

import type { MessagePort } from 'node:worker_threads';
import { DsmError, assert } from '../errors.js';
import type { ChannelEvent, ChannelRequest, PortMessage } from './wire.js';
import { DoorbellBlock, type NativeDoorbell, blockBytes, doorbellEnabled, loadDoorbell } from './doorbell.js';
import { captureSite, raceSitesEnabled } from '../race/site.js';
import { hop, hopsOn } from '../util/hops.js';

const NativeSharedArrayBuffer = globalThis.SharedArrayBuffer;

export class ChannelClient {
  private readonly port: MessagePort;
  private readonly block: DoorbellBlock;
  /** Null when requests go by postMessage only (race mode carries call sites as text; DSM_DOORBELL=0). */
  private readonly bell: NativeDoorbell | null;
  /** Doorbell entries published so far (the ring's head). */
  private ringSent = 0;
  /** Messages posted on the port so far. */
  private portSent = 0;
  private callInFlight = false;
  private holdCount = 0;
  private readonly listeners = new Set<(event: ChannelEvent) => void>();

  constructor(port: MessagePort, threadIdSeen: number) {
    this.port = port;
    // Created with the native constructor before dsm replaces the global one:
    // the block is private to this thread and its manager, never dsm memory.
    const reply = new NativeSharedArrayBuffer(blockBytes);
    this.block = new DoorbellBlock(reply);
    this.bell = doorbellEnabled && !raceSitesEnabled ? loadDoorbell() : null;
    this.send({ op: 'hello', reply, threadIdSeen }, []);
    this.port.on('message', (event: ChannelEvent) => {
      for (const listener of this.listeners) listener(event);
    });
    // The port must not keep the thread alive: a program ends when its own work ends.
    // (Adding a 'message' listener refs a port, so unref comes after it.)
    this.port.unref();
  }

  /** Listens for events the manager sends on its own (e.g. a remote worker's messages). */
  onEvent(listener: (event: ChannelEvent) => void): void {
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
    this.port.postMessage({ request, ringBefore: this.ringSent } satisfies PortMessage, transfer as never);
    this.portSent += 1;
  }
}

/** Requests that synchronize or allocate: in race mode they say where the program called them (docs/RACE.md). */
const sitedOps = new Set(['alloc', 'atomic', 'sync', 'worker-spawn', 'worker-post', 'parent-post']);

function withSite(request: ChannelRequest): void {
  if (sitedOps.has(request.op)) (request as { site?: string | null }).site = captureSite();
}
