// A connection to one peer node: frames over a TCP socket (Nagle off), a
// bounded send queue, and the handshake that proves both sides share the
// cluster's secret without ever sending it.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { frameBytesMax, frameHeldBytesMax, handshakeTimeoutMs, helloStringBytesMax, nodeCountMax, nonceBytes, preAuthFrameBytesMax, refusalReasonBytesMax, sendQueueBytesMax, unauthenticatedCountMax } from '../constants.js';
import { DsmError, type ErrorCode, assert, errorCodes } from '../errors.js';
import { bodyDone, decodeBody, encodeBody, encodeBodyAfter, type WireMessage } from './codec.js';
import { FrameError, type Frame, type FrameKind, encodeFrameHeader, frameHeaderBytes, frameKinds, wireVersion, writeFrameHeader } from './frame.js';
import { type FrameSource, frameSourceOf } from './frame-reader.js';
import { releasePayloadSlab } from './payload-slabs.js';
import { hop, hopsOn } from '../util/hops.js';

export interface Hello {
  clusterId: string;
  dsmVersion: string;
  wireVersion: number;
  coherence: string;
  pageBytes: number;
  regionBytes: number;
  nodeId: number;
}

type Role = 'connect' | 'accept';

/** Payloads up to this size are copied into the frame's one buffer; larger ones go out as their own buffer. */
const payloadCopyBytesMax = 16 * 1024;

/**
 * A frame with a payload (a postMessage's bytes, a window's copies) is written into this buffer while the socket
 * is drained: a frame of 4 KiB or more is over Node's pool limit, and a buffer of its own cost an ArrayBuffer
 * allocation a frame (session 23). Twice the largest payload copied, so that a page and its body fit. One for
 * every connection of the thread (writeFrame takes a new one when a socket's queue keeps it).
 */
const sendScratchBytes = 2 * payloadCopyBytesMax;
let sendScratch = Buffer.allocUnsafeSlow(sendScratchBytes);

/** Bytes of the frame writeFrame wrote last (for traffic counters; one thread writes). */
let lastFrameBytes = 0;

function writeFrame(socket: Socket, kind: FrameKind, message: WireMessage): boolean {
  let flushed: boolean;
  if (!('payload' in message)) {
    // Most messages (requests, grants, pages sent as a field): the header goes into room msgpackr leaves before
    // the body, and that one buffer goes to the socket as it is.
    const frame = encodeBodyAfter(message, frameHeaderBytes);
    writeFrameHeader(frame, kind, frame.byteLength - frameHeaderBytes, 0);
    lastFrameBytes = frame.byteLength;
    if (hopsOn) hop('m:encoded');
    flushed = socket.write(frame);
    // Nothing queued: the kernel has the frame's bytes (a write the socket could not finish keeps a reference).
    if (socket.writableLength === 0) bodyDone(frame);
    return flushed && socket.writableLength < sendQueueBytesMax;
  }
  const { body, payload } = encodeBody(message);
  const payloadBytes = payload?.byteLength ?? 0;
  lastFrameBytes = frameHeaderBytes + body.byteLength + payloadBytes;
  if (payloadBytes <= payloadCopyBytesMax) {
    // Control frames and pages alike: one buffer, one write. Copying a
    // page costs less than a gathered write's bookkeeping (measured with bench/rtt.ts).
    const total = frameHeaderBytes + body.byteLength + payloadBytes;
    // Into the send scratch when nothing is queued on the socket and it is not corked (the kernel then mostly takes
    // the write whole); frames queued behind others get buffers of their own, exactly their size.
    const scratch = total <= sendScratchBytes && socket.writableLength === 0 && socket.writableCorked === 0;
    const frame = scratch ? sendScratch.subarray(0, total) : Buffer.allocUnsafe(total);
    writeFrameHeader(frame, kind, body.byteLength, payloadBytes);
    frame.set(body, frameHeaderBytes);
    if (payload !== null && payloadBytes > 0) {
      frame.set(payload, frameHeaderBytes + body.byteLength);
      // Copied: its slab (if it came from one) is free again.
      releasePayloadSlab(payload.buffer);
    }
    bodyDone(body);
    flushed = socket.write(frame);
    // Not taken whole: the socket's queue keeps the scratch until it is written, so the next frame (on any
    // connection of this thread) gets a new one.
    if (scratch && socket.writableLength !== 0) sendScratch = Buffer.allocUnsafeSlow(sendScratchBytes);
  } else {
    // A large payload goes out as its own buffer, gathered into one writev.
    socket.cork();
    socket.write(encodeFrameHeader(kind, body.byteLength, payloadBytes));
    socket.write(body);
    // Written by reference: its slab (if it came from one) is free once the socket has written it (or failed to).
    const written = payload!;
    flushed = socket.write(written, () => releasePayloadSlab(written.buffer));
    socket.uncork();
    if (socket.writableLength === 0) bodyDone(body);
  }
  return flushed && socket.writableLength < sendQueueBytesMax;
}

export class Connection extends EventEmitter {
  readonly socket: Socket;
  /** Frame bytes of the last message sent, and of the message being delivered. */
  lastSentBytes = 0;
  lastReceivedBytes = 0;
  readonly peer: Hello;
  readonly peerLabel: string;
  /** Why the connection failed, once it has (for an owner that learns of it from 'close'). */
  failure: DsmError | null = null;
  private closed = false;
  private readonly source: FrameSource;
  /** Where messages go when one owner takes them all (the Mesh): called directly, instead of 'message' events. */
  receiver: ((message: WireMessage) => void) | null = null;
  /**
   * Whether frames after the first in an event-loop turn are held to the
   * turn's end (see send). Set by the Mesh, whose links carry a node's
   * traffic; a bare connection (tests, the fuzzer) writes each frame at once.
   */
  holdsTurnFrames = false;
  /** Whether a frame went to the socket in this turn of the event loop: a later one is held (corked) until the turn's end. */
  private wroteThisTurn = false;
  /** Bytes of the frames held this turn (at most frameHeldBytesMax: then they go at once). */
  private heldBytes = 0;
  private readonly endTurn = (): void => {
    this.wroteThisTurn = false;
    this.releaseHeld();
  };

  constructor(socket: Socket, peer: Hello, source: FrameSource) {
    super();
    this.socket = socket;
    this.peer = peer;
    this.source = source;
    this.peerLabel = `node ${peer.nodeId} (${socket.remoteAddress}:${socket.remotePort})`;
    // Frames that came with the handshake's last one (or right after it) are held until the owner has had a
    // chance to listen: after the microtasks that resolve the handshake's promise (a nextTick would run before them).
    // Bounded by what one poll phase reads from a proven peer (libuv reads a socket at most 32 times an event).
    // A malformed frame among them is reported after them, by then to a listener (the source stops at it).
    let held: Frame[] | null = [];
    let heldError: { error: unknown } | null = null;
    source.onFrame = (frame) => {
      if (held === null) this.receive(frame);
      else held.push(frame);
    };
    source.onError = (error) => {
      if (held === null) this.readFailed(error);
      else heldError ??= { error };
    };
    setImmediate(() => {
      const frames = held!;
      held = null;
      for (const frame of frames) this.receive(frame);
      if (heldError !== null) this.readFailed(heldError.error);
    });
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (error) => this.fail(new DsmError('DSM_ERR_NODE_DIED', `connection to ${this.peerLabel} failed: ${error.message}`)));
    socket.on('close', () => {
      this.closed = true;
      this.source.stop();
      this.emit('close');
    });
  }

  /** True when this connection reads its frames without Node's stream layers (plain TCP; frame-reader.ts). */
  get streamless(): boolean {
    return this.source.streamless;
  }

  /**
   * Sends one message: it is queued on the socket whatever the queue holds, so
   * nothing is dropped or reordered and nothing throws into the caller. Returns
   * false once the queue holds `sendQueueBytesMax` or more (or the socket's
   * high-water mark is passed): the producer should wait for 'drain' (the
   * runtime parks app threads meanwhile, see src/runtime/flow.ts). A large
   * payload is queued by reference: the caller must not change it afterwards.
   */
  send(message: WireMessage): boolean {
    // Its loss was reported ('close' or 'error') and ends the run: what is still sent to it goes nowhere.
    if (this.closed) {
      if (message.payload !== undefined) releasePayloadSlab(message.payload.buffer);
      return false;
    }
    // The turn's first frame goes to the kernel at once (a request and its answer wait for nothing); those after
    // it in the same turn (a burst of posts, a release's messages) are held and go together, in order, in one
    // write at the turn's end (setImmediate) or once frameHeldBytesMax are held: one system call, not one a frame.
    const hold = this.wroteThisTurn;
    if (hold && this.heldBytes === 0) this.socket.cork();
    const flushed = writeFrame(this.socket, frameKinds.message, message);
    this.lastSentBytes = lastFrameBytes;
    if (!this.holdsTurnFrames) return flushed;
    if (!hold) {
      this.wroteThisTurn = true;
      setImmediate(this.endTurn);
    } else {
      this.heldBytes += lastFrameBytes;
      if (this.heldBytes >= frameHeldBytesMax) this.releaseHeld();
    }
    return flushed;
  }

  /** The frames held this turn go to the socket; if the kernel did not take them all, 'backlog' says the queue grew. */
  private releaseHeld(): void {
    if (this.heldBytes === 0) return;
    this.heldBytes = 0;
    this.socket.uncork();
    if (this.socket.writableLength > 0) this.emit('backlog');
  }

  /** Bytes queued on this connection and not yet handed to the kernel (not those held for this turn's end: they are not a backed-up link). */
  get queuedBytes(): number {
    return this.socket.writableLength - this.heldBytes;
  }

  /** Sends a heartbeat frame (no body to decode); skipped while the socket is backed up, which itself shows the peer is slow. */
  sendHeartbeat(): void {
    if (this.closed || this.socket.writableLength > 0) return;
    this.socket.write(encodeFrameHeader(frameKinds.heartbeat, 0, 0));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.source.stop();
    // end() writes what is held this turn first (it uncorks).
    this.heldBytes = 0;
    this.socket.end();
  }

  /** One whole frame from the source: a heartbeat or a message, delivered to the owner. Never throws. */
  private receive(frame: Frame): void {
    if (this.closed) return;
    let handling: string | null = null;
    try {
      if (frame.kind === frameKinds.heartbeat) {
        this.emit('heartbeat');
        return;
      }
      if (frame.kind !== frameKinds.message) throw new FrameError(`unexpected frame kind ${frame.kind} after the handshake`);
      this.lastReceivedBytes = frameHeaderBytes + frame.body.byteLength + frame.payload.byteLength;
      const message = decodeBody(frame.body, frame.payload);
      handling = message.type;
      if (hopsOn) hop('m:decoded');
      if (this.receiver !== null) this.receiver(message);
      else this.emit('message', message);
    } catch (error) {
      if (handling === null && error instanceof FrameError) {
        this.readFailed(error);
        return;
      }
      // A proven peer's message that its handler could not take: a malformed message (or a bug in dsm).
      // Either way the run cannot go on; the owner hears it as this connection's error, never as an uncaught throw.
      const what = error instanceof Error ? `${error.name === 'DsmError' ? (error as DsmError).code : error.name}: ${error.message}` : String(error);
      this.fail(new DsmError('DSM_ERR_FRAME', `a '${handling?.slice(0, 64) ?? '?'}' message from ${this.peerLabel} could not be handled (${what}); the peer sent a malformed message or dsm has a bug; the connection was closed`, { cause: error }));
    }
  }

  /** The source met a malformed frame (or failed reading): the connection ends, naming the peer. */
  private readFailed(error: unknown): void {
    const what = error instanceof Error ? error.message : String(error);
    this.fail(new DsmError('DSM_ERR_FRAME', `${this.peerLabel} sent a malformed frame (${what}); the connection was closed`, { cause: error }));
  }

  private fail(error: DsmError): void {
    if (this.closed) return;
    this.closed = true;
    this.source.stop();
    this.failure = error;
    this.socket.destroy();
    this.emit('error', error);
  }
}

function proofOf(secret: string, role: Role, ownNonce: Buffer, peerNonce: Buffer, own: Hello, peer: Hello): Buffer {
  return createHmac('sha256', secret)
    .update(`dsm-handshake|${role}|`).update(ownNonce).update('|').update(peerNonce)
    .update(`|${canonicalHello(own)}|${canonicalHello(peer)}`)
    .digest();
}

/** Which field, if any, makes the peer's hello incompatible with ours. */
function mismatch(own: Hello, peer: Hello): { code: ErrorCode; reason: string } | null {
  if (peer.dsmVersion !== own.dsmVersion || peer.wireVersion !== own.wireVersion) {
    return { code: 'DSM_ERR_VERSION', reason: `dsm ${peer.dsmVersion} (wire ${peer.wireVersion}) cannot join dsm ${own.dsmVersion} (wire ${own.wireVersion}): run the same dsm version on every node` };
  }
  for (const field of ['clusterId', 'coherence', 'pageBytes', 'regionBytes'] as const) {
    if (peer[field] !== own[field]) {
      return { code: 'DSM_ERR_CONFIG_MISMATCH', reason: `${field} differs: ${String(peer[field])} there, ${String(own[field])} here; start every node with the same options` };
    }
  }
  return null;
}

/**
 * Handshakes in progress on one listener. Past `unauthenticatedCountMax` the
 * oldest is dropped: strangers holding connections open can delay a real
 * node's handshake by at most their churn, never fill the door for good, and
 * together never hold more than count × preAuthFrameBytesMax of our memory.
 */
export class HandshakeDoor {
  private readonly waiting = new Set<Socket>();

  constructor(readonly countMax: number = unauthenticatedCountMax) {
    assert(countMax >= 1, 'a door admits at least one handshake');
  }

  admit(socket: Socket): void {
    if (this.waiting.size >= this.countMax) {
      const oldest = this.waiting.values().next().value as Socket;
      this.waiting.delete(oldest);
      oldest.destroy(new Error(`more than ${this.countMax} connections were handshaking at once; the oldest was dropped`));
    }
    this.waiting.add(socket);
    assert(this.waiting.size <= this.countMax, 'the door holds at most countMax handshakes');
  }

  leave(socket: Socket): void {
    this.waiting.delete(socket);
  }

  get waitingCount(): number {
    return this.waiting.size;
  }
}

/** What the handshake accepts from a peer, checked field by field before anything reads it. */
type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function onlyFields(value: Record<string, unknown>, fields: readonly string[], what: string): string | null {
  for (const key of Object.keys(value)) if (!fields.includes(key)) return `${what} has an unknown field '${key.slice(0, 32)}'`;
  return null;
}

const helloFields = ['clusterId', 'dsmVersion', 'wireVersion', 'coherence', 'pageBytes', 'regionBytes', 'nodeId'] as const;

function checkHelloMessage(message: WireMessage): Checked<{ hello: Hello; nonce: Buffer }> {
  const extra = onlyFields(message, ['type', 'hello', 'nonce'], 'hello message');
  if (extra !== null) return { ok: false, reason: extra };
  if (message.type !== 'hello') return { ok: false, reason: `a hello frame carries a '${String(message.type).slice(0, 32)}' message` };
  const hello = message.hello;
  if (!isPlainObject(hello)) return { ok: false, reason: `hello is ${hello === null ? 'null' : typeof hello}, expected an object` };
  const helloExtra = onlyFields(hello, helloFields, 'hello');
  if (helloExtra !== null) return { ok: false, reason: helloExtra };
  for (const field of ['clusterId', 'dsmVersion', 'coherence'] as const) {
    const value = hello[field];
    if (typeof value !== 'string' || value.length === 0 || value.length > helloStringBytesMax) {
      return { ok: false, reason: `hello.${field} must be a string of 1 to ${helloStringBytesMax} characters` };
    }
  }
  for (const field of ['wireVersion', 'pageBytes', 'regionBytes', 'nodeId'] as const) {
    const value = hello[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) return { ok: false, reason: `hello.${field} must be an integer` };
  }
  if ((hello.nodeId as number) < -1 || (hello.nodeId as number) >= nodeCountMax) return { ok: false, reason: `hello.nodeId must lie from -1 to ${nodeCountMax - 1}` };
  const nonce = message.nonce;
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== nonceBytes) return { ok: false, reason: `nonce must be ${nonceBytes} bytes` };
  const checked = Object.fromEntries(helloFields.map((field) => [field, hello[field]])) as unknown as Hello;
  return { ok: true, value: { hello: checked, nonce: Buffer.from(nonce) } };
}

function checkProofMessage(message: WireMessage): Checked<Buffer> {
  const extra = onlyFields(message, ['type', 'proof'], 'proof message');
  if (extra !== null) return { ok: false, reason: extra };
  if (message.type !== 'proof') return { ok: false, reason: `a proof frame carries a '${String(message.type).slice(0, 32)}' message` };
  const proof = message.proof;
  if (!(proof instanceof Uint8Array) || proof.byteLength !== proofBytes) return { ok: false, reason: `proof must be ${proofBytes} bytes` };
  return { ok: true, value: Buffer.from(proof) };
}

function checkRefusedMessage(message: WireMessage): { code: ErrorCode; reason: string } {
  const code = typeof message.code === 'string' && message.code in errorCodes ? message.code as ErrorCode : 'DSM_ERR_HANDSHAKE';
  const reason = typeof message.reason === 'string' ? message.reason.slice(0, refusalReasonBytesMax) : 'no reason given';
  // The reason goes on one line of our terminal: no control characters from a stranger.
  return { code, reason: reason.replace(/[\u0000-\u001f\u007f]/g, ' ') };
}

/** The hello as both sides hash it: fields in one fixed order, whatever order they arrived in. */
function canonicalHello(hello: Hello): string {
  return JSON.stringify(helloFields.map((field) => hello[field]));
}

const proofBytes = 32;
/** What a refusal to a stranger adds: the listener goes on serving, and what its operator can do. */
const strangerAdvice = 'the connection was closed and this node keeps serving; if that was a dsm node, give it the same dsm version, options and secret, otherwise block it at the firewall';

/**
 * Runs the handshake on a fresh socket. Both sides send hello (with a fresh
 * nonce) and check the other's configuration. Then the side that connected
 * proves first: an HMAC over both nonces and both hellos, keyed by the shared
 * secret. The accepting side checks it and only then sends its own proof, so
 * a stranger who connects learns nothing it could test guesses of the secret
 * against offline. Every field is checked before use and a frame before
 * authentication is at most preAuthFrameBytesMax bytes. Either side that
 * refuses says why in a `refused` frame before closing.
 */
/** Handshake failures whose peer reset or closed its socket before its hello (no refusal of ours: it vanished). */
const vanished = new WeakSet<DsmError>();
function vanishedPeer(error: DsmError): DsmError {
  vanished.add(error);
  return error;
}
/** Whether a handshake failed because its peer vanished (reset, closed) rather than being refused. */
export function peerVanished(error: DsmError): boolean { return vanished.has(error); }

export function handshake(given: Socket, options: { hello: Hello; secret: string; role: Role; peerLabel: string; door?: HandshakeDoor }): Promise<Connection> {
  const { hello, secret, role, peerLabel, door } = options;
  assert(hello.wireVersion === wireVersion, 'our hello carries our wire version');
  // A plain TCP socket is re-wrapped to read frames without Node's stream layers (frame-reader.ts): from here
  // on `socket` is the one to use (the Connection's), `given` is not.
  const { socket, source } = frameSourceOf(given, preAuthFrameBytesMax);
  socket.setNoDelay(true);
  door?.admit(socket);
  const nonce = randomBytes(nonceBytes);
  const peerRole: Role = role === 'connect' ? 'accept' : 'connect';
  return new Promise((resolve, reject) => {
    let peerHello: Hello | null = null;
    let peerNonce: Buffer | null = null;
    let settled = false;
    const timer = setTimeout(() => refuse('DSM_ERR_HANDSHAKE', `did not complete the handshake within ${handshakeTimeoutMs} ms; ${role === 'accept' ? strangerAdvice : 'is that address a dsm node?'}`, false), handshakeTimeoutMs);

    function finish(error: DsmError | null, connection?: Connection): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      door?.leave(socket);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error !== null) {
        source.stop();
        // Errors after this point (a reset while we close) have no one to tell.
        socket.on('error', () => {});
        socket.destroy();
        reject(error);
      } else {
        resolve(connection!);
      }
    }
    function refuse(code: ErrorCode, reason: string, tellPeer = true): void {
      if (settled) return;
      if (tellPeer && !socket.destroyed) {
        writeFrame(socket, frameKinds.refused, { type: 'refused', code, reason });
        socket.end();
      }
      finish(new DsmError(code, `${peerLabel}: ${reason}`));
    }
    function refuseStranger(reason: string): void {
      refuse('DSM_ERR_HANDSHAKE', `${reason}; ${role === 'accept' ? strangerAdvice : 'is that address a dsm node of this cluster?'}`);
    }
    function onError(error: Error): void {
      finish(vanishedPeer(new DsmError('DSM_ERR_HANDSHAKE', `${peerLabel}: ${error.message} during the handshake`)));
    }
    function onClose(): void {
      finish(vanishedPeer(new DsmError('DSM_ERR_HANDSHAKE', `${peerLabel} closed the connection during the handshake`)));
    }
    function onFrame(frame: Frame): void {
      let message: WireMessage;
      try {
        message = decodeBody(frame.body, frame.payload);
      } catch (error) {
        refuse('DSM_ERR_FRAME', `sent an undecodable handshake frame (${(error as Error).message}); ${role === 'accept' ? strangerAdvice : 'is that address a dsm node?'}`);
        return;
      }
      if (frame.payload.byteLength > 0) {
        refuseStranger('sent a handshake frame with a payload');
        return;
      }
      if (frame.kind === frameKinds.refused) {
        const refusal = checkRefusedMessage(message);
        finish(new DsmError(refusal.code, `${peerLabel} refused the connection: ${refusal.reason}`));
        return;
      }
      if (frame.kind === frameKinds.hello && peerHello === null) {
        const checked = checkHelloMessage(message);
        if (!checked.ok) {
          refuseStranger(`sent a malformed hello (${checked.reason})`);
          return;
        }
        const problem = mismatch(hello, checked.value.hello);
        if (problem !== null) {
          refuse(problem.code, problem.reason);
          return;
        }
        peerHello = checked.value.hello;
        peerNonce = checked.value.nonce;
        // The connecting side proves first; the accepting side proves only after checking that proof.
        if (role === 'connect') writeFrame(socket, frameKinds.proof, { type: 'proof', proof: proofOf(secret, role, nonce, peerNonce, hello, peerHello) });
        return;
      }
      if (frame.kind === frameKinds.proof && peerHello !== null && peerNonce !== null) {
        const checked = checkProofMessage(message);
        if (!checked.ok) {
          refuseStranger(`sent a malformed proof (${checked.reason})`);
          return;
        }
        const expected = proofOf(secret, peerRole, peerNonce, nonce, peerHello, hello);
        assert(expected.length === checked.value.length, 'proofs have one length');
        if (!timingSafeEqual(checked.value, expected)) {
          refuse('DSM_ERR_SECRET', 'the peer proved a different shared secret: give every node the same --secret or --secret-file (or DSM_SECRET)');
          return;
        }
        if (role === 'accept') writeFrame(socket, frameKinds.proof, { type: 'proof', proof: proofOf(secret, role, nonce, peerNonce, hello, peerHello) });
        // Proven: from here on the peer is part of the program and may send frames up to the full size.
        source.frameBytesMax = frameBytesMax;
        finish(null, new Connection(socket, peerHello, source));
        return;
      }
      refuseStranger(`sent frame kind ${frame.kind} out of order during the handshake`);
    }
    source.onFrame = (frame) => {
      if (!settled) onFrame(frame);
    };
    source.onError = (error) => {
      if (!(error instanceof FrameError)) throw error;
      refuse('DSM_ERR_FRAME', `sent a malformed frame during the handshake (${error.message}); ${role === 'accept' ? strangerAdvice : 'is that address a dsm node?'}`);
    };
    socket.on('error', onError);
    socket.on('close', onClose);
    writeFrame(socket, frameKinds.hello, { type: 'hello', hello: { ...hello }, nonce });
  });
}
