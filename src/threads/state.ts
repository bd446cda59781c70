// Per-thread state of the app side: set once by setup, read by the public API.

import type { ChannelClient } from '../channel/client.js';
import type { AppThreadConfig } from '../channel/wire.js';

export interface AppThreadState {
  config: AppThreadConfig;
  channel: ChannelClient;
  /** Returns the SharedArrayBuffer over [offset, offset + byteLength) of the global region. */
  bufferAt(offset: number, byteLength: number): SharedArrayBuffer;
  /** The (offset, byteLength) of a dsm SharedArrayBuffer, or null for any other buffer. */
  rangeOf(buffer: SharedArrayBuffer): { offset: number; byteLength: number } | null;
}

let current: AppThreadState | null = null;

export function setAppThreadState(state: AppThreadState): void {
  current = state;
}

export function appThreadState(): AppThreadState | null {
  return current;
}
