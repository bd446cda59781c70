// App side of the channel: synchronous calls from an app thread to its manager.

import type { MessagePort } from 'node:worker_threads';
import { DsmError, type ErrorCode, assert } from '../errors.js';
import { type ChannelEvent, type ChannelReply, type ChannelRequest, replyBytes, replyHeaderBytes, replyStateIdle, replyStateReady } from './wire.js';
import { captureSite, raceSitesEnabled } from '../race/site.js';

const NativeSharedArrayBuffer = globalThis.SharedArrayBuffer;

export class ChannelClient {
  private readonly port: MessagePort;
  private readonly control: Int32Array;
  private readonly bytes: Uint8Array;
  private callInFlight = false;
  private holdCount = 0;
  private readonly listeners = new Set<(event: ChannelEvent) => void>();

  constructor(port: MessagePort, threadIdSeen: number) {
    this.port = port;
    // Created with the native constructor before dsm replaces the global one:
    // the reply block is private to this thread and its manager, never dsm memory.
    const reply = new NativeSharedArrayBuffer(replyBytes);
    this.control = new Int32Array(reply, 0, 2);
    this.bytes = new Uint8Array(reply, replyHeaderBytes);
    this.port.postMessage({ op: 'hello', reply, threadIdSeen } satisfies ChannelRequest);
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
      this.port.postMessage(request, transfer as never);
      while (Atomics.load(this.control, 0) === replyStateIdle) {
        Atomics.wait(this.control, 0, replyStateIdle);
      }
      assert(Atomics.load(this.control, 0) === replyStateReady, 'reply block holds a ready reply');
      const byteLength = this.control[1]!;
      assert(byteLength >= 0 && byteLength <= this.bytes.byteLength, 'reply length within the block');
      const text = Buffer.from(this.bytes.slice(0, byteLength)).toString('utf8');
      Atomics.store(this.control, 0, replyStateIdle);
      const reply = JSON.parse(text) as ChannelReply;
      if (!reply.ok) throw new DsmError(reply.code as ErrorCode, reply.message);
      return reply.value;
    } finally {
      this.callInFlight = false;
    }
  }

  /** Sends a request that needs no answer. */
  post(request: ChannelRequest, transfer: readonly unknown[] = []): void {
    if (raceSitesEnabled) withSite(request);
    this.port.postMessage(request, transfer as never);
  }
}

/** Requests that synchronize or allocate: in race mode they say where the program called them (docs/RACE.md). */
const sitedOps = new Set(['alloc', 'atomic', 'sync', 'worker-spawn', 'worker-post', 'parent-post']);

function withSite(request: ChannelRequest): void {
  if (sitedOps.has(request.op)) (request as { site?: string | null }).site = captureSite();
}
