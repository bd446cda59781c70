// One large postMessage to a worker on another node, hop by hop (issue 9 item 1):
// how many times its bytes are copied in user space between the sender's
// worker.postMessage and the receiver's 'message' event. Three: the structured
// clone on the sending app thread, the receiving manager's one pass from the
// socket's reads into the frame's payload, and the structured clone's read on
// the receiving app thread. Every other hop moves the same bytes: the channel
// to the manager by transfer, the socket by a gathered write of the bytes
// themselves, the channel to the receiving thread by transfer. (Before this,
// eight: the channel to and from each manager copied twice each way, msgpackr
// copied the bytes into its buffer, and the frame decoder joined the reads.)
// The kernel's copies (socket buffers) are not counted.

import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { deserializeValue, serializeValue, transferListOf } from '../../src/channel/clone.js';
import { fromWire, toWire } from '../../src/runtime/envelope.js';
import { Connection, type Hello } from '../../src/transport/connection.js';
import { FrameDecoder } from '../../src/transport/frame.js';

const mib = 1024 * 1024;
const noRanges = { rangeOf: () => null, bufferAt: (): never => { throw new Error('no dsm buffers here'); } };
const hello: Hello = { clusterId: 'c', dsmVersion: '0', wireVersion: 2, coherence: 'hlrc', pageBytes: 4096, regionBytes: 1 << 30, nodeId: 1 };
const info = { vc: [0, 0], known: [0, 0], intervals: [] };

/** A socket that keeps what is written to it, and delivers what a test emits as reads. */
class FakeSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 1;
  writableLength = 0;
  write(chunk: Buffer): boolean { this.written.push(chunk); return true; }
  cork(): void {}
  uncork(): void {}
  end(): void {}
  destroy(): void {}
}

/** Moves `bytes` through a MessageChannel as the channel does (with transferListOf); what arrives. */
async function throughPort(bytes: Uint8Array): Promise<{ arrived: Uint8Array; moved: boolean }> {
  const { port1, port2 } = new MessageChannel();
  try {
    const arriving = once(port2, 'message');
    const byteLength = bytes.byteLength;
    port1.postMessage({ bytes }, transferListOf(bytes));
    const moved = bytes.byteLength === 0 && byteLength > 0;
    const [{ bytes: arrived }] = await arriving as [{ bytes: Uint8Array }];
    return { arrived, moved };
  } finally {
    port1.close();
  }
}

test('a 1 MiB postMessage to a worker on another node is copied three times, and moved at every other hop', async () => {
  const message = new Uint8Array(mib).map((_, i) => (i * 31) & 0xff);
  // Sending app thread: the structured clone (copy 1), then the channel to its manager.
  const bytes = serializeValue(message, noRanges);
  const toManager = await throughPort(bytes);
  assert.ok(toManager.moved, 'app thread to manager: moved (detached on the app thread), not copied');
  // Sending manager: the frame goes out as header, body and the very bytes that arrived (a gathered write).
  const sender = new FakeSocket();
  new Connection(sender as unknown as Socket, hello, new FrameDecoder(), []).send(toWire({ type: 'rtPost', spawnId: '0:1', bytes: toManager.arrived, info }));
  const payloadWrites = sender.written.filter((chunk) => chunk.buffer === toManager.arrived.buffer);
  assert.equal(payloadWrites.length, 1, 'the bytes are written as they are (not copied into msgpackr\'s buffer or a frame buffer)');
  assert.equal(payloadWrites[0]!.byteLength, toManager.arrived.byteLength);
  const frameBytes = sender.written.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  assert.ok(frameBytes - toManager.arrived.byteLength < 1024, `header and body are small (${frameBytes - toManager.arrived.byteLength} bytes)`);
  // Receiving manager: reads of 64 KiB copied once into the frame's payload (copy 2), which is its buffer, whole.
  const receiver = new FakeSocket();
  const connection = new Connection(receiver as unknown as Socket, hello, new FrameDecoder(), []);
  const received: unknown[] = [];
  connection.on('message', (wire) => received.push(fromWire(wire)));
  const stream = Buffer.concat(sender.written);
  for (let at = 0; at < stream.length; at += 64 * 1024) receiver.emit('data', Buffer.from(stream.subarray(at, at + 64 * 1024)));
  assert.equal(received.length, 1);
  const { bytes: receivedBytes } = received[0] as { bytes: Uint8Array };
  assert.equal(receivedBytes.byteLength, toManager.arrived.byteLength);
  // Receiving manager to app thread: moved.
  const toThread = await throughPort(receivedBytes);
  assert.ok(toThread.moved, 'manager to app thread: moved, not copied');
  // Receiving app thread: the structured clone's read (copy 3) gives the message.
  assert.deepEqual(deserializeValue(toThread.arrived, noRanges), message);
});

test('a small postMessage stays in the frame\'s body, and is copied, not moved, to the receiving thread', async () => {
  const bytes = serializeValue({ hello: 'world' }, noRanges);
  const sender = new FakeSocket();
  new Connection(sender as unknown as Socket, hello, new FrameDecoder(), []).send(toWire({ type: 'rtPost', spawnId: '0:1', bytes, info }));
  assert.equal(sender.written.length, 1, 'one buffer: the frame, msgpackr\'s own');
  const receiver = new FakeSocket();
  const connection = new Connection(receiver as unknown as Socket, hello, new FrameDecoder(), []);
  const received: unknown[] = [];
  connection.on('message', (wire) => received.push(fromWire(wire)));
  receiver.emit('data', sender.written[0]!);
  const { bytes: receivedBytes } = received[0] as { bytes: Uint8Array };
  assert.deepEqual(transferListOf(receivedBytes), [], 'a view of the received frame: transferring it would take the frame along');
  const toThread = await throughPort(receivedBytes);
  assert.equal(toThread.moved, false);
  assert.deepEqual(deserializeValue(toThread.arrived, noRanges), { hello: 'world' });
});
