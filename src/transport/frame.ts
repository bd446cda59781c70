// Length-prefixed frames.
//
//   offset 0  u32  magic 'DSM1' (0x44534d31): a foreign peer is recognized at once
//   offset 4  u8   wire version
//   offset 5  u8   frame kind
//   offset 6  u16  reserved, zero
//   offset 8  u32  body byte length
//   offset 12 u32  payload byte length (raw bytes after the body, e.g. a page)
//   then the body (msgpack, or a compact layout for a few messages: compact.ts) and the payload
//
// The decoder yields whole frames, copying each byte at most once (a frame
// that spans chunks, into buffers of its own: FrameDecoder.next); anything
// malformed is a FrameError naming what was wrong, and the caller closes that
// connection. FrameDecoder serves sockets read as streams (TLS); plain TCP
// connections read with FrameReader (frame-reader.ts), which checks headers
// with the same parseFrameHeader.

import { frameBytesMax } from '../constants.js';
import { assert } from '../errors.js';


/** A message as the codec encodes it: its type, its fields, and the byte arrays that travel as the frame's payload (src/runtime/envelope.ts). Here so that codec.ts and compact.ts both name it without importing each other. */
export interface WireMessage {
  type: string;
  payload?: Uint8Array;
  [field: string]: unknown;
}

export const frameMagic = 0x44534d31;
/**
 * 6 since session 15: compact byte arrays (a batch's diffs, pushed copies) carry their lengths first, and may be the frame's payload.
 * 7 since session 17: a compact lineGrant may list the line's waiters (`waiting`, flag bit 3).
 * 8 since session 18: the heap lane's gather (rtChunkSurvey, rtChunkFree).
 * 9 since session 21: a diff's runs may be masked (src/protocol/diff-codec.ts).
 * 10 since session 26: a node asked to collect answers (rtRangeCollect's `ask`, rtRangeCollected).
 * 11 since session 34: read copies of a line (lineShareRequest, lineShareGrant, lineInvalidate, lineInvalidated;
 *    a compact lineRecall's flags, lineRelease's `keepShare`, lineGrant's `share`).
 * 12 since session 35: read copies ahead (lineShareRequest's and lineShareGrant's `ahead`, lineShareGrant's `aheadOnly`),
 *    and copies dropped many at once (lineInvalidated's `more`).
 * 13 since session 39: a cloned message lists the weighted dsm buffers it carries after the value
 *    (src/channel/clone.ts, heldRangesOf), which the receiving manager reads.
 * 14 since session 41: a pushed page says how many of its receiver's diffs its copy holds (`pushApplied`).
 * 15 since session 46: a line's shipped op, its answer and a line release carry pushed pages in the compact layout (a flag
 *    byte where lineOp and lineOpDone had a presence byte), and line messages' pushed copies are the frame's payload.
 */
export const wireVersion = 15;
export const frameHeaderBytes = 16;

export const frameKinds = {
  hello: 1,
  proof: 2,
  refused: 3,
  message: 4,
  heartbeat: 5,
} as const;
export type FrameKind = (typeof frameKinds)[keyof typeof frameKinds];
const kindValues = Object.values(frameKinds);
const frameKindMin = Math.min(...kindValues);
const frameKindMax = Math.max(...kindValues);
// The decoder checks a kind by range: the kinds are consecutive.
assert(frameKindMax - frameKindMin + 1 === kindValues.length, 'frame kinds are consecutive numbers');

export interface Frame {
  kind: FrameKind;
  body: Uint8Array;
  payload: Uint8Array;
}

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** The header of a frame; body and payload are written after it without copying. */
export function encodeFrameHeader(kind: FrameKind, bodyBytes: number, payloadBytes: number): Buffer {
  return writeFrameHeader(Buffer.allocUnsafe(frameHeaderBytes), kind, bodyBytes, payloadBytes);
}

/** Writes a frame header at the start of `header` (which may be the whole frame's buffer). */
export function writeFrameHeader(header: Buffer, kind: FrameKind, bodyBytes: number, payloadBytes: number): Buffer {
  const total = frameHeaderBytes + bodyBytes + payloadBytes;
  if (total > frameBytesMax) throw new FrameError(`frame of ${total} bytes exceeds the maximum of ${frameBytesMax}`);
  // Byte by byte: this runs for every message sent.
  header[0] = frameMagic >>> 24;
  header[1] = (frameMagic >>> 16) & 0xff;
  header[2] = (frameMagic >>> 8) & 0xff;
  header[3] = frameMagic & 0xff;
  header[4] = wireVersion;
  header[5] = kind;
  header[6] = 0;
  header[7] = 0;
  // The lengths too (both below frameBytesMax, checked above): Buffer.writeUInt32BE is two calls of Node's
  // baseline code a frame, in a manager that sends one or two frames a round (perf: ~4 µs a Jacobi round).
  header[8] = bodyBytes >>> 24;
  header[9] = (bodyBytes >>> 16) & 0xff;
  header[10] = (bodyBytes >>> 8) & 0xff;
  header[11] = bodyBytes & 0xff;
  header[12] = payloadBytes >>> 24;
  header[13] = (payloadBytes >>> 16) & 0xff;
  header[14] = (payloadBytes >>> 8) & 0xff;
  header[15] = payloadBytes & 0xff;
  return header;
}

/** A frame header's fields, checked. */
export interface FrameHeader {
  kind: FrameKind;
  bodyBytes: number;
  payloadBytes: number;
}

/**
 * Reads and checks the frame header at `at` in `bytes` (which hold at least a
 * header from there): magic, version, kind and a total within `limit`. Throws
 * FrameError naming what was wrong. Shared by FrameDecoder and FrameReader.
 */
export function parseFrameHeader(bytes: Uint8Array, at: number, limit: number): FrameHeader {
  assert(bytes.length - at >= frameHeaderBytes, 'a header is parsed from bytes that hold one');
  if (bytes[at] !== frameMagic >>> 24 || bytes[at + 1] !== ((frameMagic >>> 16) & 0xff) || bytes[at + 2] !== ((frameMagic >>> 8) & 0xff) || bytes[at + 3] !== (frameMagic & 0xff)) {
    const magic = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
    throw new FrameError(`bad magic 0x${magic.toString(16).padStart(8, '0')}: the peer does not speak dsm`);
  }
  const version = bytes[at + 4]!;
  if (version !== wireVersion) throw new FrameError(`wire version ${version}, expected ${wireVersion}`);
  const kind = bytes[at + 5]!;
  if (kind < frameKindMin || kind > frameKindMax) throw new FrameError(`unknown frame kind ${kind}`);
  const bodyBytes = readUint32(bytes, at + 8);
  const payloadBytes = readUint32(bytes, at + 12);
  const total = frameHeaderBytes + bodyBytes + payloadBytes;
  if (total > limit) throw new FrameError(`frame of ${total} bytes exceeds the maximum of ${limit}`);
  return { kind: kind as FrameKind, bodyBytes, payloadBytes };
}

function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) >>> 0) + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}

/** A frame spanning chunks, filled as its bytes arrive (FrameDecoder). */
interface PartialFrame {
  kind: FrameKind;
  /** Header and body: one buffer. */
  head: Buffer;
  /** The payload: a buffer of its own, exactly its length (empty when there is none). */
  payload: Buffer;
  /** Bytes of the frame filled so far (head first, then payload). */
  filled: number;
}

const emptyPayload = Buffer.alloc(0);

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** The frame being filled, once its header has come and it spans more than the chunk it starts in. */
  private partial: PartialFrame | null = null;
  /**
   * Largest frame this decoder accepts. Before the handshake proves the peer
   * holds the secret it is small (preAuthFrameBytesMax), so a stranger can make
   * us buffer only a few KiB; the handshake raises it once the peer is proven.
   */
  frameBytesMax: number;

  constructor(frameBytesLimit: number = frameBytesMax) {
    assert(frameBytesLimit >= frameHeaderBytes && frameBytesLimit <= frameBytesMax, 'a decoder limit lies between a bare header and frameBytesMax');
    this.frameBytesMax = frameBytesLimit;
  }

  /** Adds received bytes; returns the frames now complete. Throws FrameError on malformed input. */
  push(chunk: Buffer): Frame[] {
    this.append(chunk);
    const frames: Frame[] = [];
    for (let frame = this.next(); frame !== null; frame = this.next()) frames.push(frame);
    return frames;
  }

  /** Adds received bytes without decoding them (take the frames with next()). */
  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /**
   * The next complete frame, or null when more bytes are needed. Throws FrameError on malformed input.
   *
   * A frame that lies in one received chunk is a view of it (no copy). A frame
   * that spans chunks (any frame larger than a socket read: a large payload)
   * is copied once, chunk by chunk as the chunks come, into a buffer for its
   * header and body and a buffer of its own for its payload: the chunks go as
   * soon as they are copied (a 1 MiB frame never waits as chunks and a joined
   * copy at once), and the payload, alone in its ArrayBuffer, can be
   * transferred to another thread without a copy (a large postMessage).
   */
  next(): Frame | null {
    if (this.partial === null) {
      if (this.bufferedBytes < frameHeaderBytes) return null;
      const { kind, bodyBytes, payloadBytes } = parseFrameHeader(this.peekHeader(), 0, this.frameBytesMax);
      const total = frameHeaderBytes + bodyBytes + payloadBytes;
      const first = this.chunks[0]!;
      if (first.length >= total) {
        const whole = this.takeFirst(total);
        return {
          kind,
          body: whole.subarray(frameHeaderBytes, frameHeaderBytes + bodyBytes),
          payload: whole.subarray(frameHeaderBytes + bodyBytes, total),
        };
      }
      // Never pooled: a payload alone in its ArrayBuffer (transferable); allocated only once the size passed the limit above.
      this.partial = {
        kind,
        head: Buffer.allocUnsafe(frameHeaderBytes + bodyBytes),
        payload: payloadBytes === 0 ? emptyPayload : Buffer.allocUnsafeSlow(payloadBytes),
        filled: 0,
      };
    }
    return this.fill(this.partial);
  }

  /** Bytes received and not yet taken as frames. */
  get pendingBytes(): number {
    return this.bufferedBytes + (this.partial?.filled ?? 0);
  }

  /** Copies what has come of a spanning frame into its buffers; the frame once whole. */
  private fill(partial: PartialFrame): Frame | null {
    const headBytes = partial.head.length;
    const total = headBytes + partial.payload.length;
    while (partial.filled < total && this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      const into = partial.filled < headBytes ? partial.head : partial.payload;
      const at = partial.filled < headBytes ? partial.filled : partial.filled - headBytes;
      const count = Math.min(chunk.length, into.length - at);
      chunk.copy(into, at, 0, count);
      partial.filled += count;
      this.takeFirst(count);
    }
    if (partial.filled < total) return null;
    this.partial = null;
    return { kind: partial.kind, body: partial.head.subarray(frameHeaderBytes), payload: partial.payload };
  }

  /** The next frame header's bytes: in the first chunk, or (a header cut by a read) copied from the chunks, which stay as they are. */
  private peekHeader(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= frameHeaderBytes) return first;
    const header = Buffer.allocUnsafe(frameHeaderBytes);
    let at = 0;
    for (const chunk of this.chunks) {
      at += chunk.copy(header, at, 0, Math.min(chunk.length, frameHeaderBytes - at));
      if (at === frameHeaderBytes) break;
    }
    return header;
  }

  /** The first `byteCount` bytes of the first chunk, which holds at least that many. */
  private takeFirst(byteCount: number): Buffer {
    const first = this.chunks[0]!;
    assert(first.length >= byteCount, 'bytes are taken from one chunk');
    const taken = first.subarray(0, byteCount);
    if (first.length === byteCount) this.chunks.shift();
    else this.chunks[0] = first.subarray(byteCount);
    this.bufferedBytes -= byteCount;
    return taken;
  }
}
