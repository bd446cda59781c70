// `parentPort` inside a worker whose parent thread runs on another node.
// The real parentPort leads to this node's manager; this facade clones values
// with dsm's structured clone, so dsm buffers travel by range, and otherwise
// behaves as a MessagePort: listening for 'message' keeps the thread alive.

import { EventEmitter } from 'node:events';
import type { MessagePort } from 'node:worker_threads';
import type { ChannelClient } from '../channel/client.js';
import { deserializeValue, serializeValue, type BufferRanges } from './clone.js';

export interface RemoteParentFrame {
  dsmRemote: 'message';
  bytes: Uint8Array;
}

export function isRemoteParentFrame(value: unknown): value is RemoteParentFrame {
  return typeof value === 'object' && value !== null && (value as { dsmRemote?: unknown }).dsmRemote === 'message';
}

export class RemoteParentPort extends EventEmitter {
  private readonly port: MessagePort;
  private readonly ranges: BufferRanges;
  private readonly channel: ChannelClient;
  private readonly relay = (frame: unknown) => {
    if (!isRemoteParentFrame(frame)) return;
    let value: unknown;
    try {
      value = deserializeValue(frame.bytes, this.ranges);
    } catch (error) {
      this.emit('messageerror', error);
      return;
    }
    this.emit('message', value);
  };

  constructor(port: MessagePort, ranges: BufferRanges, channel: ChannelClient) {
    super();
    this.port = port;
    this.channel = channel;
    this.ranges = ranges;
    this.on('newListener', (event: string) => {
      if (event === 'message' && this.listenerCount('message') === 0) this.port.on('message', this.relay);
    });
    this.on('removeListener', (event: string) => {
      if (event === 'message' && this.listenerCount('message') === 0) this.port.off('message', this.relay);
    });
  }

  postMessage(value: unknown): void {
    // Through the channel as a call: when the link to the parent's node is
    // full, this thread waits until it drains (flow control, src/runtime/flow.ts).
    this.channel.call({ op: 'parent-post', bytes: serializeValue(value, this.ranges) });
  }

  start(): void { this.port.start(); }
  close(): void { this.port.close(); }
  ref(): void { this.port.ref(); }
  unref(): void { this.port.unref(); }
  hasRef(): boolean { return (this.port as unknown as { hasRef(): boolean }).hasRef(); }
}
