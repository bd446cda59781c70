// Control messages: plain objects with a `type`, encoded with msgpackr (the
// shipped op's lineOp and lineOpDone in a compact layout of their own: compact.ts).
// A message may carry one raw `payload` (a page, a diff) which travels after
// the body as its own buffer, never re-encoded.

// 'msgpackr/pack' is msgpackr's pure-JavaScript entry (under node it resolves to its index.js): the main
// entry also loads the optional native string extractor (msgpackr-extract, found through
// node-gyp-build's platform probe), about 15 ms of CPU in every node process, for messages whose strings
// are short type names and field keys; decoding them took the same time either way (about 1 us a message).
import { Packr, RESERVE_START_SPACE } from 'msgpackr/pack';
import { assert } from '../errors.js';
import { FrameError } from './frame.js';
import { scanMsgpack } from './msgpack-scan.js';
import { compactFrameDone, compactMarker, decodeCompact, encodeCompactAfter } from './compact.js';
import { hop, hopsOn } from '../util/hops.js';

import type { WireMessage } from './frame.js';

export type { WireMessage };

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'bigint', mapsAsObjects: true });

/**
 * A message without a payload field, encoded after `reserveBytes` bytes left
 * for the caller (a frame header): the buffer is a view of msgpackr's own
 * output buffer, which it never writes again, so the frame goes to the socket
 * with no allocation and no copy.
 */
export function encodeBodyAfter(message: WireMessage, reserveBytes: number): Buffer {
  assert(reserveBytes >= 0 && reserveBytes <= 0xff && !('payload' in message), 'a reserve of at most 255 bytes, and a message without payload');
  // The shipped op's messages in their compact layout (compact.ts), when they fit it.
  const compact = encodeCompactAfter(message, reserveBytes);
  if (compact !== null) return compact;
  return packr.pack(message, RESERVE_START_SPACE | reserveBytes);
}

/**
 * The caller is done with a buffer encodeBodyAfter or encodeBody returned last (written whole to the kernel, or
 * copied): a compact one's bytes are written over by the next message (compact.ts compactFrameDone).
 */
export function bodyDone(body: Uint8Array): void {
  compactFrameDone(body);
}

export function encodeBody(message: WireMessage): { body: Uint8Array; payload: Uint8Array | null } {
  const { payload, ...rest } = message;
  // A window's reply (its copies in the payload, their lengths in the body) in the compact layout, when it fits.
  const compact = encodeCompactAfter(rest, 0);
  return { body: compact ?? packr.pack(rest), payload: payload ?? null };
}

export function decodeBody(body: Uint8Array, payload: Uint8Array): WireMessage {
  if (body.byteLength > 0 && body[0] === compactMarker) {
    // A compact body (compact.ts) carries no payload, except a page reply whose copies are the payload.
    const message = decodeCompact(body, payload.byteLength);
    if (hopsOn) hop('m:scanned');
    if (payload.byteLength > 0) message.payload = payload;
    return message;
  }
  // A body from the network is checked before msgpackr sees it: declared lengths must fit the bytes (msgpack-scan.ts).
  const problem = scanMsgpack(body);
  if (hopsOn) hop('m:scanned');
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
