// One large postMessage to a worker on another node, hop by hop (issue 9 item 1):
// how many times its bytes are copied in user space between the sender's
// worker.postMessage and the receiver's 'message' event: twice, the snapshot
// on the sending app thread (a copy of a typed array's contents, or the
// structured clone) and the receiving manager's one pass from the socket's
// reads into the frame's payload, whose typed arrays the receiving thread
// reads as views when the array is the whole message (one inside a larger
// message, or an ArrayBuffer there, is copied out once more, so that its
// buffer is its own as under node; a typed array whose buffer the program
// transfers is not snapshot: once in all). Every other hop moves the same bytes: the channel to the manager by
// transfer, the socket by a gathered write of the bytes themselves, the
// channel to the receiving thread by transfer. (Before session 9, seven for a
// typed array: the channel to and from each manager copied twice each way,
// msgpackr copied the bytes into its buffer, and the frame decoder joined
// the reads.) The kernel's copies (socket buffers) are not counted.

import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { deserializeMessage, deserializeValue, serializeMessage, serializeValue, transferListOf, type MessageBytes } from '../../src/channel/clone.js';
import { fromWire, toWire } from '../../src/runtime/envelope.js';
import { Connection, type Hello } from '../../src/transport/connection.js';
import { StreamFrameSource } from '../../src/transport/frame-reader.js';
import { frameBytesMax } from '../../src/constants.js';

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

/**
 * Follows `message` (serialized on the sending thread) to the receiving thread: asserts each hop
 * between is a move, not a copy, and returns what the receiving thread reads the message from.
 */
async function acrossNodes(message: MessageBytes): Promise<MessageBytes> {
  // Sending app thread to its manager.
  const toManager = await throughPort(message.bytes);
  assert.ok(toManager.moved, 'app thread to manager: moved (detached on the app thread), not copied');
  // Sending manager: the frame goes out as header, body and the very bytes that arrived (a gathered write).
  const sender = new FakeSocket();
  new Connection(sender as unknown as Socket, hello, new StreamFrameSource(sender as unknown as Socket, frameBytesMax)).send(toWire({ type: 'rtPost', spawnId: '0:1', bytes: toManager.arrived, ...(message.form === undefined ? {} : { form: message.form }), info }));
  const payloadWrites = sender.written.filter((chunk) => chunk.buffer === toManager.arrived.buffer);
  assert.equal(payloadWrites.length, 1, 'the bytes are written as they are (not copied into msgpackr\'s buffer or a frame buffer)');
  assert.equal(payloadWrites[0]!.byteLength, toManager.arrived.byteLength);
  const frameBytes = sender.written.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  assert.ok(frameBytes - toManager.arrived.byteLength < 1024, `header and body are small (${frameBytes - toManager.arrived.byteLength} bytes)`);
  // Receiving manager: reads of 64 KiB copied once into the frame's payload (a copy), which is its buffer, whole.
  const receiver = new FakeSocket();
  const connection = new Connection(receiver as unknown as Socket, hello, new StreamFrameSource(receiver as unknown as Socket, frameBytesMax));
  // A new connection holds what arrives until its owner has had a turn to listen.
  await new Promise(setImmediate);
  const received: unknown[] = [];
  connection.on('message', (wire) => received.push(fromWire(wire)));
  const stream = Buffer.concat(sender.written);
  for (let at = 0; at < stream.length; at += 64 * 1024) receiver.emit('data', Buffer.from(stream.subarray(at, at + 64 * 1024)));
  assert.equal(received.length, 1);
  const { bytes: receivedBytes, form } = received[0] as MessageBytes;
  assert.equal(receivedBytes.byteLength, toManager.arrived.byteLength);
  assert.equal(form, message.form);
  // Receiving manager to app thread: moved.
  const toThread = await throughPort(receivedBytes);
  assert.ok(toThread.moved, 'manager to app thread: moved, not copied');
  return { bytes: toThread.arrived, ...(form === undefined ? {} : { form }) };
}

test('a 1 MiB typed array or ArrayBuffer posted to a worker on another node is copied twice: the receiver\'s array is the received payload, whole', async () => {
  for (const make of [
    () => new Uint8Array(mib).map((_, i) => (i * 31) & 0xff),
    () => new Float64Array(mib / 8).map((_, i) => i / 3),
    () => new Uint8Array(mib).fill(9).buffer,
  ]) {
    const original = make();
    // Sending app thread: the snapshot of its contents (copy 1).
    const message = serializeMessage(original, noRanges);
    assert.notEqual(message.form, undefined, 'a typed array that is its buffer whole travels as its contents');
    const arrived = await acrossNodes(message); // copy 2: the frame's payload
    const value = deserializeMessage(arrived, noRanges);
    assert.deepEqual(value, original);
    const buffer = value instanceof ArrayBuffer ? value : (value as ArrayBufferView).buffer;
    assert.equal(buffer, arrived.bytes.buffer, 'no third copy: the receiver\'s array is over the received payload');
    assert.equal(buffer.byteLength, value instanceof ArrayBuffer ? value.byteLength : (value as ArrayBufferView).byteLength, 'its buffer whole, as under plain node');
  }
});

test('a 1 MiB typed array posted with its buffer in the transferList is copied once: the frame\'s payload', async () => {
  const original = new Uint8Array(mib).map((_, i) => (i * 7) & 0xff);
  const expected = original.slice();
  const message = serializeMessage(original, noRanges, [original.buffer]);
  assert.equal(message.bytes.buffer, original.buffer, 'no snapshot: the program gave its buffer away');
  const arrived = await acrossNodes(message); // the one copy: the frame's payload
  assert.equal(original.byteLength, 0, 'detached on the sending thread, as under plain node');
  const value = deserializeMessage(arrived, noRanges) as Uint8Array;
  assert.deepEqual(value, expected);
  assert.equal(value.buffer, arrived.bytes.buffer);
});

test('a 1 MiB message holding a typed array is copied three times: the receiver\'s array has a buffer of its own, as under node', async () => {
  const original = { data: new Uint8Array(mib).map((_, i) => (i * 31) & 0xff), label: 'x' };
  // Sending app thread: the structured clone (copy 1).
  const message = serializeMessage(original, noRanges);
  assert.equal(message.form, undefined, 'a structured clone');
  const arrived = await acrossNodes(message); // copy 2: the frame's payload
  const value = deserializeMessage(arrived, noRanges) as typeof original;
  assert.deepEqual(value, original);
  // Copy 3 (session 18): a view of the clone's bytes gave `new Uint8Array(value.data.buffer)` the clone's header
  // and the other values; a typed array that is the whole message still travels as its contents, copied twice.
  assert.notEqual(value.data.buffer, arrived.bytes.buffer);
  assert.equal(value.data.byteOffset, 0);
  assert.equal(value.data.buffer.byteLength, mib);
});

test('a small postMessage stays in the frame\'s body, and is copied, not moved, to the receiving thread', async () => {
  const bytes = serializeValue({ hello: 'world' }, noRanges);
  const sender = new FakeSocket();
  new Connection(sender as unknown as Socket, hello, new StreamFrameSource(sender as unknown as Socket, frameBytesMax)).send(toWire({ type: 'rtPost', spawnId: '0:1', bytes, info }));
  assert.equal(sender.written.length, 1, 'one buffer: the frame, msgpackr\'s own');
  const receiver = new FakeSocket();
  const connection = new Connection(receiver as unknown as Socket, hello, new StreamFrameSource(receiver as unknown as Socket, frameBytesMax));
  // A new connection holds what arrives until its owner has had a turn to listen.
  await new Promise(setImmediate);
  const received: unknown[] = [];
  connection.on('message', (wire) => received.push(fromWire(wire)));
  receiver.emit('data', sender.written[0]!);
  const { bytes: receivedBytes } = received[0] as { bytes: Uint8Array };
  assert.deepEqual(transferListOf(receivedBytes), [], 'a view of the received frame: transferring it would take the frame along');
  const toThread = await throughPort(receivedBytes);
  assert.equal(toThread.moved, false);
  assert.deepEqual(deserializeValue(toThread.arrived, noRanges), { hello: 'world' });
});
