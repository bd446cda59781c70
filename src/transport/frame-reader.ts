// Frames read from a plain TCP socket without Node's stream layers.
//
// A net.Socket built with the `onread` option hands each read to one callback
// with a buffer we own: no Readable.push, no 'data' event, no maybeReadMore on
// the next tick, no fresh ArrayBuffer for every read. The FrameReader parses
// frames in place from that buffer and copies out only each frame's body and
// payload (the buffer is read into again next time; a page reply's body into a
// shared receive slab, bodyCopyOf). A frame that spans reads
// and still needs receiveDirectBytesMin bytes or more is read straight into
// its own buffers (the socket is handed the unfilled rest as its next read
// buffer): a large page reply is never copied at all.
//
// What this relies on beyond Node's documented API (read in Node 20's lib/net.js
// and internal/stream_base_commons.js; test/integration/transport.test.ts fails
// if a connection stops being streamless): a socket's handle (`socket._handle`)
// can be re-wrapped by `new net.Socket({ handle, onread })` (the `handle`
// option Node's own child_process and cluster use) before anything was read
// from it, and the server's connection count moves with `_server`. Documented:
// `onread.buffer` may be a function, called after every read for the buffer of
// the next one (Node keeps no reference to it: the reader does). Where any of
// this is missing (no `_handle`, a subclass, TLS) the socket is read through
// Node's streams as before (StreamFrameSource): TLS bytes are decrypted inside
// the stream machinery.

import net from 'node:net';
import { compactBodyBytesMax, compactSlabBytes, receiveBufferBytes, receiveDirectBytesMin, replyPayloadBytesMax } from '../constants.js';
import { assert } from '../errors.js';
import { streamReadsForced } from '../env.js';
import { isCompactPageReply } from './compact.js';
import { type Frame, FrameDecoder, type FrameHeader, type FrameKind, frameHeaderBytes, parseFrameHeader } from './frame.js';
import { hop, hopsOn } from '../util/hops.js';
import { noteActivity } from '../util/manager-poll.js';

const emptyBytes = Buffer.alloc(0);

/**
 * A frame whose bytes span reads, filled as they come: header and body in `head`, then the payload, alone in its
 * ArrayBuffer or, for a compact pageReply, in the reader's reply buffer (`pooled`). The payload's buffer is taken
 * once the head is whole (its body says whether the frame is a page reply): until then `payload` is empty and
 * `payloadBytes` says how long it will be.
 */
interface PartialFrame {
  kind: FrameKind;
  head: Buffer;
  payload: Buffer;
  payloadBytes: number;
  pooled: boolean;
  /** Bytes of the frame filled so far (head first, then payload). */
  filled: number;
}

/**
 * Parses frames out of the reads of one socket. Each read goes into the buffer
 * `nextBuffer()` lent for it; `received(count, buffer)` then delivers every
 * frame now whole to `onFrame`, in order, each in buffers of its own (so a
 * message may keep its bytes). Throws FrameError on a malformed header, and
 * whatever onFrame throws; after `stop()` it delivers nothing.
 */
export class FrameReader {
  /** Largest frame accepted (raised by the handshake once the peer is proven, as FrameDecoder's). */
  frameBytesMax: number;
  onFrame: (frame: Frame) => void;
  /** The buffer most reads go into: parsed in place, never handed out. */
  private readonly scratch: Buffer;
  /** A header cut by the end of a read: its first bytes, until the rest comes. */
  private readonly cutHeader = Buffer.allocUnsafe(frameHeaderBytes);
  private cutHeaderBytes = 0;
  private partial: PartialFrame | null = null;
  /**
   * The buffer lent for the read under way: the scratch buffer, or the unfilled rest of the partial frame.
   * Node keeps only its address, so this reference is what keeps it alive until the read is done (also after
   * stop() has let go of the partial frame: the socket may read once more before it closes).
   */
  private lent: Buffer;
  private stopped = false;
  /**
   * Page replies' payloads (a read-ahead window's copies, up to a MiB) are read into this buffer, reused from
   * reply to reply, instead of a fresh ArrayBuffer each (session 26): a fresh buffer's pages are faulted in,
   * zeroed and, on a virtual machine with shadow page tables, mapped through the hypervisor at the first write
   * of each (5-10 µs a page on the 2-vCPU VM), and V8 frees them only at its next collection, so a long remote
   * read ran through fresh memory for tens of MiB. A reply's copies are consumed while it is handled (the engine
   * installs them, src/protocol/hlrc.ts onPageReply), and a reply held before the mesh has a receiver is copied
   * out (src/transport/mesh.ts), so the buffer is free again once onFrame returns (`replyPayloadBusy` meanwhile).
   */
  private replyPayload: Buffer | null = null;
  private replyPayloadBusy = false;

  constructor(frameBytesLimit: number, onFrame: (frame: Frame) => void, scratchBytes = receiveBufferBytes) {
    assert(scratchBytes >= frameHeaderBytes, 'a read buffer holds at least a frame header');
    this.frameBytesMax = frameBytesLimit;
    this.onFrame = onFrame;
    this.scratch = Buffer.allocUnsafeSlow(scratchBytes);
    this.lent = this.scratch;
  }

  /** The buffer the next read fills: the unfilled rest of a large partial frame (no copy), else the scratch buffer. */
  nextBuffer(): Buffer {
    const partial = this.partial;
    this.lent = this.scratch;
    if (partial !== null) {
      const headBytes = partial.head.length;
      if (partial.filled >= headBytes) this.takePayload(partial);
      const rest = partial.filled < headBytes ? partial.head.subarray(partial.filled) : partial.payload.subarray(partial.filled - headBytes);
      if (rest.length >= receiveDirectBytesMin) this.lent = rest;
    }
    return this.lent;
  }

  /** `count` bytes were read into `buffer` (the one nextBuffer lent last). */
  received(count: number, buffer: Uint8Array): void {
    assert(buffer === this.lent && count > 0 && count <= buffer.length, 'a read fills the buffer lent for it');
    if (this.stopped) return;
    if (buffer !== this.scratch) {
      // Read straight into the partial frame's own buffer.
      const partial = this.partial!;
      partial.filled += count;
      if (partial.filled >= partial.head.length) this.takePayload(partial);
      if (partial.filled === partial.head.length + partial.payloadBytes) this.deliverPartial(partial);
      return;
    }
    const bytes = this.scratch;
    let at = 0;
    while (at < count && !this.stopped) {
      if (this.partial !== null) {
        at += this.fill(this.partial, bytes, at, count);
        if (this.partial.filled < this.partial.head.length + this.partial.payloadBytes) break;
        this.deliverPartial(this.partial);
        continue;
      }
      if (this.cutHeaderBytes > 0 || count - at < frameHeaderBytes) {
        const taken = bytes.copy(this.cutHeader, this.cutHeaderBytes, at, Math.min(count, at + frameHeaderBytes - this.cutHeaderBytes));
        this.cutHeaderBytes += taken;
        at += taken;
        if (this.cutHeaderBytes < frameHeaderBytes) break;
        this.cutHeaderBytes = 0;
        const partial = this.begin(parseFrameHeader(this.cutHeader, 0, this.frameBytesMax));
        this.cutHeader.copy(partial.head, 0, 0, frameHeaderBytes);
        partial.filled = frameHeaderBytes;
        if (partial.head.length + partial.payloadBytes === frameHeaderBytes) this.deliverPartial(partial);
        continue;
      }
      const header = parseFrameHeader(bytes, at, this.frameBytesMax);
      const total = frameHeaderBytes + header.bodyBytes + header.payloadBytes;
      if (count - at < total) {
        // The loop's next turn copies what came of it.
        this.begin(header);
        continue;
      }
      const bodyAt = at + frameHeaderBytes;
      const payloadAt = bodyAt + header.bodyBytes;
      at += total;
      if (hopsOn) hop('m:frames');
      const pooled = header.payloadBytes > 0 && this.replyPayloadFree(bytes, bodyAt, header.bodyBytes, header.payloadBytes);
      const body = bodyCopyOf(bytes, bodyAt, header.bodyBytes);
      if (!pooled) {
        this.onFrame({ kind: header.kind, body, payload: copyOf(bytes, payloadAt, header.payloadBytes, true) });
        continue;
      }
      const payload = this.replyPayload!.subarray(0, header.payloadBytes);
      bytes.copy(payload, 0, payloadAt, payloadAt + header.payloadBytes);
      this.deliverPooled(header.kind, body, payload);
    }
  }

  /**
   * Whether the frame whose body is bytes[bodyAt, +bodyBytes) is a compact pageReply whose payload goes into the
   * reply buffer, which is free (made or grown here as needed, up to replyPayloadBytesMax).
   */
  private replyPayloadFree(bytes: Buffer, bodyAt: number, bodyBytes: number, payloadBytes: number): boolean {
    if (this.replyPayloadBusy || payloadBytes > replyPayloadBytesMax || bodyBytes < 2 || !isCompactPageReply(bytes, bodyAt)) return false;
    if (this.replyPayload === null || this.replyPayload.length < payloadBytes) this.replyPayload = Buffer.allocUnsafeSlow(Math.max(payloadBytes, receiveBufferBytes));
    return true;
  }

  /** Delivers a frame whose payload is a view of the reply buffer, which is busy until onFrame returns. */
  private deliverPooled(kind: FrameKind, body: Buffer, payload: Buffer): void {
    this.replyPayloadBusy = true;
    try {
      this.onFrame({ kind, body, payload });
    } finally {
      this.replyPayloadBusy = false;
    }
  }

  /** Delivers nothing more (the connection failed or closed, or the handshake ended). */
  stop(): void {
    this.stopped = true;
    this.partial = null;
  }

  /** Bytes received and not yet delivered as frames. */
  get pendingBytes(): number {
    return this.cutHeaderBytes + (this.partial?.filled ?? 0);
  }

  private begin(header: FrameHeader): PartialFrame {
    assert(this.partial === null, 'one partial frame at a time');
    // The payload alone in its ArrayBuffer (transferable to a thread without a copy); allocated only once the header passed the limit.
    this.partial = {
      kind: header.kind,
      head: Buffer.allocUnsafe(frameHeaderBytes + header.bodyBytes),
      payload: emptyBytes,
      payloadBytes: header.payloadBytes,
      pooled: false,
      filled: 0,
    };
    return this.partial;
  }

  /** The head is whole: the payload's buffer, the reply buffer for a compact pageReply (if free), else its own. */
  private takePayload(partial: PartialFrame): void {
    if (partial.payload.length === partial.payloadBytes) return;
    partial.pooled = this.replyPayloadFree(partial.head, frameHeaderBytes, partial.head.length - frameHeaderBytes, partial.payloadBytes);
    partial.payload = partial.pooled ? this.replyPayload!.subarray(0, partial.payloadBytes) : Buffer.allocUnsafeSlow(partial.payloadBytes);
  }

  /** Copies bytes[at, end) into the partial frame, as far as it needs; returns the count taken. */
  private fill(partial: PartialFrame, bytes: Buffer, at: number, end: number): number {
    const headBytes = partial.head.length;
    const total = headBytes + partial.payloadBytes;
    const start = at;
    while (partial.filled < total && at < end) {
      const inHead = partial.filled < headBytes;
      if (!inHead) this.takePayload(partial);
      const into = inHead ? partial.head : partial.payload;
      const offset = inHead ? partial.filled : partial.filled - headBytes;
      const copied = bytes.copy(into, offset, at, Math.min(end, at + into.length - offset));
      partial.filled += copied;
      at += copied;
    }
    return at - start;
  }

  private deliverPartial(partial: PartialFrame): void {
    this.takePayload(partial);
    assert(partial.filled === partial.head.length + partial.payload.length, 'a partial frame is delivered whole');
    this.partial = null;
    if (hopsOn) hop('m:frames');
    const body = partial.head.subarray(frameHeaderBytes);
    if (partial.pooled) this.deliverPooled(partial.kind, body, partial.payload);
    else this.onFrame({ kind: partial.kind, body, payload: partial.payload });
  }
}

/**
 * Page replies' bodies are copied into this slab, each one a view of it that is never written again (a new slab
 * is taken when the rest cannot hold a body), instead of into an ArrayBuffer of its own: a body of a page is
 * over Node's pool limit (4 KiB), and an ArrayBuffer of its own cost the manager 2-3 µs a reply (allocation,
 * external memory accounting), as much as the rest of the frame's reading and decoding (session 23). Only a
 * compact pageReply comes here: its views are consumed as it is handled (isCompactPageReply), so a slab is held
 * only as long as replies in flight through the manager view it.
 */
let bodySlab = Buffer.allocUnsafeSlow(compactSlabBytes);
let bodySlabUsed = 0;

/** A frame's body, in buffers the message may keep (a compact pageReply's in the receive slab, the others' their own). */
function bodyCopyOf(bytes: Buffer, at: number, byteCount: number): Buffer {
  if (byteCount < 2 || byteCount > compactBodyBytesMax || !isCompactPageReply(bytes, at)) return copyOf(bytes, at, byteCount, false);
  if (bodySlab.length - bodySlabUsed < byteCount) {
    bodySlab = Buffer.allocUnsafeSlow(compactSlabBytes);
    bodySlabUsed = 0;
  }
  const start = bodySlabUsed;
  bytes.copy(bodySlab, start, at, at + byteCount);
  // The next body starts on an 8-byte boundary.
  bodySlabUsed = Math.min(bodySlab.length, (start + byteCount + 7) & ~7);
  return bodySlab.subarray(start, start + byteCount);
}

/** `byteCount` bytes of `bytes` from `at`, in a buffer of their own (a payload alone in its ArrayBuffer, so transferable). */
function copyOf(bytes: Buffer, at: number, byteCount: number, own: boolean): Buffer {
  if (byteCount === 0) return emptyBytes;
  const copy = own ? Buffer.allocUnsafeSlow(byteCount) : Buffer.allocUnsafe(byteCount);
  bytes.copy(copy, 0, at, at + byteCount);
  return copy;
}

/**
 * Where a connection's frames come from, for the handshake and then its
 * Connection: `onFrame` gets whole frames in order (the handshake hands the
 * source on by replacing it), `onError` a malformed frame (FrameError) or any
 * other throw while reading, after which the source delivers nothing.
 */
export interface FrameSource {
  onFrame: (frame: Frame) => void;
  onError: (error: unknown) => void;
  frameBytesMax: number;
  /** True when frames are read without Node's stream layers (ReadFrameSource). */
  readonly streamless: boolean;
  stop(): void;
}

const ignoreFrame = (): void => {};
const ignoreError = (): void => {};

/** Frames from a plain TCP socket re-wrapped with `onread` (see the top of this file). */
export class ReadFrameSource implements FrameSource {
  onFrame: (frame: Frame) => void = ignoreFrame;
  onError: (error: unknown) => void = ignoreError;
  readonly streamless = true;
  private readonly reader: FrameReader;

  private constructor(frameBytesLimit: number) {
    this.reader = new FrameReader(frameBytesLimit, (frame) => this.onFrame(frame));
  }

  /**
   * Re-wraps `socket`'s handle in a socket that reads into a FrameReader, or
   * returns null when it cannot be (TLS, still connecting, already read from,
   * or closed): the caller then reads it as a stream. The socket passed in
   * must not be used afterwards; the returned one replaces it.
   */
  static adopt(socket: net.Socket, frameBytesLimit: number): { socket: net.Socket; source: ReadFrameSource } | null {
    const internals = socket as net.Socket & { _handle?: unknown; _server?: unknown; server?: unknown; encrypted?: boolean };
    if (internals.encrypted === true || socket.connecting || socket.destroyed || socket.bytesRead > 0 || socket.readableLength > 0) return null;
    const handle = internals._handle;
    if (handle === null || handle === undefined || Object.getPrototypeOf(socket) !== net.Socket.prototype) return null;
    const source = new ReadFrameSource(frameBytesLimit);
    // The old socket lets go of the handle (it is never closed through it) and of its server's connection count,
    // which the new socket takes over (it decrements it on close, as an accepted socket does).
    internals._handle = null;
    const server = internals._server ?? null;
    internals._server = null;
    internals.server = null;
    const options = {
      handle,
      onread: {
        buffer: () => source.reader.nextBuffer(),
        callback: (count: number, buffer: Uint8Array) => source.read(count, buffer),
      },
    };
    const wrapped = new net.Socket(options as net.SocketConstructorOpts) as net.Socket & { _server?: unknown; server?: unknown };
    if (server !== null) {
      wrapped._server = server;
      wrapped.server = server;
    }
    return { socket: wrapped, source };
  }

  get frameBytesMax(): number {
    return this.reader.frameBytesMax;
  }

  set frameBytesMax(limit: number) {
    this.reader.frameBytesMax = limit;
  }

  stop(): void {
    this.reader.stop();
  }

  /** One read's bytes (onread's callback): never throws into Node's read path. */
  private read(count: number, buffer: Uint8Array): void {
    noteActivity();
    if (hopsOn) hop('m:data');
    try {
      this.reader.received(count, buffer);
    } catch (error) {
      this.reader.stop();
      this.onError(error);
    }
    if (hopsOn) hop('m:data done');
  }
}

/** Frames from a socket's 'data' events (TLS, or a socket handed over still connecting). */
export class StreamFrameSource implements FrameSource {
  onFrame: (frame: Frame) => void = ignoreFrame;
  onError: (error: unknown) => void = ignoreError;
  readonly streamless = false;
  private readonly decoder: FrameDecoder;
  private stopped = false;
  private readonly onData = (chunk: Buffer): void => {
    noteActivity();
    if (hopsOn) hop('m:data');
    this.decoder.append(chunk);
    try {
      while (!this.stopped) {
        const frame = this.decoder.next();
        if (frame === null) break;
        if (hopsOn) hop('m:frames');
        this.onFrame(frame);
      }
    } catch (error) {
      this.stop();
      this.onError(error);
    }
    if (hopsOn) hop('m:data done');
  };

  constructor(private readonly socket: net.Socket, frameBytesLimit: number) {
    this.decoder = new FrameDecoder(frameBytesLimit);
    socket.on('data', this.onData);
  }

  get frameBytesMax(): number {
    return this.decoder.frameBytesMax;
  }

  set frameBytesMax(limit: number) {
    this.decoder.frameBytesMax = limit;
  }

  stop(): void {
    this.stopped = true;
    this.socket.off('data', this.onData);
  }
}

/** The frame source for a fresh socket (streamless where it can be) and the socket to use from now on. */
export function frameSourceOf(socket: net.Socket, frameBytesLimit: number): { socket: net.Socket; source: FrameSource } {
  if (!streamReadsForced()) {
    const adopted = ReadFrameSource.adopt(socket, frameBytesLimit);
    if (adopted !== null) return adopted;
  }
  return { socket, source: new StreamFrameSource(socket, frameBytesLimit) };
}
