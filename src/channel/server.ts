// Manager side of the channel: one endpoint per app thread, answers written
// into the thread's reply block.

import type { MessagePort } from 'node:worker_threads';
import { DsmError, assert, isDsmError } from '../errors.js';
import { type ChannelReply, type ChannelRequest, replyHeaderBytes, replyStateIdle, replyStateReady } from './wire.js';

/** A handler's answer meaning: no reply now (the manager answers later, or the request was a post). */
export const replyLater = Symbol('replyLater');

export type RequestHandler = (thread: ThreadEndpoint, request: ChannelRequest) => unknown;

export class ThreadEndpoint {
  readonly port: MessagePort;
  threadIdSeen = -1;
  private control: Int32Array | null = null;
  private bytes: Uint8Array | null = null;

  constructor(port: MessagePort) {
    this.port = port;
  }

  attachReply(reply: SharedArrayBuffer, threadIdSeen: number): void {
    assert(this.control === null, 'a thread says hello once');
    this.control = new Int32Array(reply, 0, 2);
    this.bytes = new Uint8Array(reply, replyHeaderBytes);
    this.threadIdSeen = threadIdSeen;
  }

  /** Writes the answer to the thread's pending synchronous call and wakes it. */
  answer(reply: ChannelReply): void {
    assert(this.control !== null && this.bytes !== null, 'answer only after hello');
    assert(Atomics.load(this.control, 0) === replyStateIdle, 'one answer per call');
    let encoded = Buffer.from(JSON.stringify(reply), 'utf8');
    if (encoded.byteLength > this.bytes.byteLength) {
      encoded = Buffer.from(JSON.stringify({ ok: false, code: 'DSM_ERR_CHANNEL', message: `reply of ${encoded.byteLength} bytes exceeds the reply block` }));
    }
    this.bytes.set(encoded);
    this.control[1] = encoded.byteLength;
    Atomics.store(this.control, 0, replyStateReady);
    Atomics.notify(this.control, 0);
  }
}

export class ChannelServer {
  private readonly handler: RequestHandler;
  readonly endpoints = new Set<ThreadEndpoint>();
  private readonly endListeners: Array<(endpoint: ThreadEndpoint) => void> = [];

  /** Calls `listener` when an app thread's channel closes (the thread exited or was terminated). */
  onThreadEnd(listener: (endpoint: ThreadEndpoint) => void): void {
    this.endListeners.push(listener);
  }

  constructor(handler: RequestHandler) {
    this.handler = handler;
  }

  /** Serves requests arriving on `port`, the manager's end of one app thread's channel. */
  attach(port: MessagePort): ThreadEndpoint {
    const endpoint = new ThreadEndpoint(port);
    this.endpoints.add(endpoint);
    port.on('message', (request: ChannelRequest) => this.dispatch(endpoint, request));
    port.on('close', () => {
      this.endpoints.delete(endpoint);
      for (const listener of this.endListeners) listener(endpoint);
    });
    port.unref();
    return endpoint;
  }

  private dispatch(endpoint: ThreadEndpoint, request: ChannelRequest): void {
    switch (request.op) {
      case 'hello':
        endpoint.attachReply(request.reply, request.threadIdSeen);
        return;
      case 'adopt':
        this.attach(request.port);
        return;
      default: {
        let reply: ChannelReply;
        try {
          const value = this.handler(endpoint, request);
          if (value === replyLater) return;
          reply = { ok: true, value: value ?? null };
        } catch (error) {
          if (!isDsmError(error)) throw error;
          reply = { ok: false, code: (error as DsmError).code, message: (error as DsmError).message };
        }
        endpoint.answer(reply);
      }
    }
  }
}
