// A connection to one peer node: frames over a TCP socket (Nagle off), a
// bounded send queue, and the handshake that proves both sides share the
// cluster's secret without ever sending it.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { handshakeTimeoutMs, sendQueueBytesMax } from '../constants.js';
import { DsmError, type ErrorCode, assert } from '../errors.js';
import { decodeBody, encodeBody, type WireMessage } from './codec.js';
import { FrameDecoder, FrameError, type Frame, type FrameKind, encodeFrameHeader, frameHeaderBytes, frameKinds, wireVersion, writeFrameHeader } from './frame.js';

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

/** Bytes of the frame writeFrame wrote last (for traffic counters; one thread writes). */
let lastFrameBytes = 0;

function writeFrame(socket: Socket, kind: FrameKind, message: WireMessage): boolean {
  const { body, payload } = encodeBody(message);
  const payloadBytes = payload?.byteLength ?? 0;
  lastFrameBytes = frameHeaderBytes + body.byteLength + payloadBytes;
  let flushed: boolean;
  if (payloadBytes <= payloadCopyBytesMax) {
    // Control frames and pages alike: one allocation, one write. Copying a
    // page costs less than a gathered write's bookkeeping (measured with bench/rtt.ts).
    const frame = Buffer.allocUnsafe(frameHeaderBytes + body.byteLength + payloadBytes);
    writeFrameHeader(frame, kind, body.byteLength, payloadBytes);
    frame.set(body, frameHeaderBytes);
    if (payload !== null && payloadBytes > 0) frame.set(payload, frameHeaderBytes + body.byteLength);
    flushed = socket.write(frame);
  } else {
    // A large payload goes out as its own buffer, gathered into one writev.
    socket.cork();
    socket.write(encodeFrameHeader(kind, body.byteLength, payloadBytes));
    socket.write(body);
    flushed = socket.write(payload!);
    socket.uncork();
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
  private closed = false;

  constructor(socket: Socket, peer: Hello, decoder: FrameDecoder, pending: Frame[]) {
    super();
    this.socket = socket;
    this.peer = peer;
    this.peerLabel = `node ${peer.nodeId} (${socket.remoteAddress}:${socket.remotePort})`;
    socket.on('data', (chunk: Buffer) => this.receive(() => decoder.push(chunk)));
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (error) => this.fail(new DsmError('DSM_ERR_NODE_DIED', `connection to ${this.peerLabel} failed: ${error.message}`)));
    socket.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
    if (pending.length > 0) process.nextTick(() => this.receive(() => pending));
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
    if (this.closed) return false;
    const flushed = writeFrame(this.socket, frameKinds.message, message);
    this.lastSentBytes = lastFrameBytes;
    return flushed;
  }

  /** Bytes queued on this connection and not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.socket.writableLength;
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
    this.socket.end();
  }

  private receive(frames: () => Frame[]): void {
    let decoded: Frame[];
    try {
      decoded = frames();
      for (const frame of decoded) {
        if (frame.kind === frameKinds.heartbeat) {
          this.emit('heartbeat');
          continue;
        }
        if (frame.kind !== frameKinds.message) throw new FrameError(`unexpected frame kind ${frame.kind} after the handshake`);
        this.lastReceivedBytes = frameHeaderBytes + frame.body.byteLength + frame.payload.byteLength;
        this.emit('message', decodeBody(frame.body, frame.payload));
      }
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.fail(new DsmError('DSM_ERR_FRAME', `${this.peerLabel} sent a malformed frame (${error.message}); the connection was closed`));
    }
  }

  private fail(error: DsmError): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.emit('error', error);
  }
}

function proofOf(secret: string, role: Role, ownNonce: Buffer, peerNonce: Buffer, own: Hello, peer: Hello): Buffer {
  return createHmac('sha256', secret)
    .update(`dsm-handshake|${role}|`).update(ownNonce).update('|').update(peerNonce)
    .update(`|${JSON.stringify(own)}|${JSON.stringify(peer)}`)
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
 * Runs the handshake on a fresh socket. Both sides send hello (with a fresh
 * nonce), check the other's configuration, then send an HMAC over both nonces
 * and both hellos, keyed by the shared secret, and verify the other's. Either
 * side that refuses says why in a `refused` frame before closing, so both
 * sides report the same reason.
 */
export function handshake(socket: Socket, options: { hello: Hello; secret: string; role: Role; peerLabel: string }): Promise<Connection> {
  const { hello, secret, role, peerLabel } = options;
  assert(hello.wireVersion === wireVersion, 'our hello carries our wire version');
  socket.setNoDelay(true);
  const nonce = randomBytes(32);
  const decoder = new FrameDecoder();
  return new Promise((resolve, reject) => {
    let peerHello: Hello | null = null;
    let peerNonce: Buffer | null = null;
    let settled = false;
    const timer = setTimeout(() => refuse('DSM_ERR_HANDSHAKE', `${peerLabel} did not complete the handshake within ${handshakeTimeoutMs} ms`, false), handshakeTimeoutMs);

    function finish(error: DsmError | null, connection?: Connection): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error !== null) {
        socket.destroy();
        reject(error);
      } else {
        resolve(connection!);
      }
    }
    function refuse(code: ErrorCode, reason: string, tellPeer = true): void {
      if (tellPeer && !socket.destroyed) {
        writeFrame(socket, frameKinds.refused, { type: 'refused', code, reason });
        socket.end();
      }
      finish(new DsmError(code, `${peerLabel}: ${reason}`));
    }
    function onError(error: Error): void {
      finish(new DsmError('DSM_ERR_HANDSHAKE', `${peerLabel}: ${error.message}`));
    }
    function onClose(): void {
      finish(new DsmError('DSM_ERR_HANDSHAKE', `${peerLabel} closed the connection during the handshake`));
    }
    function onData(chunk: Buffer): void {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        refuse('DSM_ERR_FRAME', `sent a malformed frame during the handshake (${error.message})`);
        return;
      }
      while (frames.length > 0 && !settled) {
        const frame = frames.shift()!;
        let message: WireMessage;
        try {
          message = decodeBody(frame.body, frame.payload);
        } catch (error) {
          refuse('DSM_ERR_FRAME', `sent an undecodable handshake frame (${(error as Error).message})`);
          return;
        }
        if (frame.kind === frameKinds.refused) {
          const code = (typeof message.code === 'string' ? message.code : 'DSM_ERR_HANDSHAKE') as ErrorCode;
          finish(new DsmError(code, `${peerLabel} refused the connection: ${String(message.reason)}`));
          return;
        }
        if (frame.kind === frameKinds.hello && peerHello === null) {
          peerHello = message.hello as Hello;
          peerNonce = Buffer.from(message.nonce as Uint8Array);
          const problem = mismatch(hello, peerHello);
          if (problem !== null) {
            refuse(problem.code, problem.reason);
            return;
          }
          writeFrame(socket, frameKinds.proof, { type: 'proof', proof: proofOf(secret, role, nonce, peerNonce, hello, peerHello) });
          continue;
        }
        if (frame.kind === frameKinds.proof && peerHello !== null && peerNonce !== null) {
          const peerRole: Role = role === 'connect' ? 'accept' : 'connect';
          const expected = proofOf(secret, peerRole, peerNonce, nonce, peerHello, hello);
          const proof = Buffer.from(message.proof as Uint8Array);
          if (proof.length !== expected.length || !timingSafeEqual(proof, expected)) {
            refuse('DSM_ERR_SECRET', 'the peer proved a different shared secret: give every node the same --secret (or DSM_SECRET)');
            return;
          }
          const connection = new Connection(socket, peerHello, decoder, frames.splice(0));
          finish(null, connection);
          return;
        }
        refuse('DSM_ERR_HANDSHAKE', `sent frame kind ${frame.kind} out of order during the handshake`);
        return;
      }
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    writeFrame(socket, frameKinds.hello, { type: 'hello', hello: { ...hello }, nonce });
  });
}
