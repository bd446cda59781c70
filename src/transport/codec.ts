// Control messages: plain objects with a `type`, encoded with msgpackr.
// A message may carry one raw `payload` (a page, a diff) which travels after
// the body as its own buffer, never re-encoded.

import { Packr } from 'msgpackr';
import { FrameError } from './frame.js';
import { scanMsgpack } from './msgpack-scan.js';

export interface WireMessage {
  type: string;
  payload?: Uint8Array;
  [field: string]: unknown;
}

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'bigint', mapsAsObjects: true });

export function encodeBody(message: WireMessage): { body: Uint8Array; payload: Uint8Array | null } {
  const { payload, ...rest } = message;
  return { body: packr.pack(rest), payload: payload ?? null };
}

export function decodeBody(body: Uint8Array, payload: Uint8Array): WireMessage {
  // A body from the network is checked before msgpackr sees it: declared lengths must fit the bytes (msgpack-scan.ts).
  const problem = scanMsgpack(body);
  if (problem !== null) throw new FrameError(`undecodable message body (${problem})`);
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch (error) {
    throw new FrameError(`undecodable message body (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    throw new FrameError('a message body without a string `type`');
  }
  const message = value as WireMessage;
  if (payload.byteLength > 0) message.payload = payload;
  return message;
}
