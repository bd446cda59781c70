// A send queue against a reader that stopped reading: sending never throws
// (flow control is the producer's: src/runtime/flow.ts), says "wait" once the
// queue holds sendQueueBytesMax, and delivers everything in order once the
// reader resumes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sendQueueBytesMax } from '../../src/constants.js';
import type { WireMessage } from '../../src/transport/codec.js';
import { type Connection, type Hello, Listener, acceptPeer, connectPeer, wireVersion } from '../../src/transport/index.js';

const hello: Hello = { clusterId: 'bp', dsmVersion: '0.1.0', wireVersion, coherence: 'hlrc', pageBytes: 4096, regionBytes: 1 << 30, nodeId: 0 };

test('sending to a paused reader past the limit returns false and never throws; all arrives in order after it resumes', async () => {
  const listener = await Listener.listen('127.0.0.1', 0);
  const accepted = new Promise<Connection>((resolve, reject) => listener.once('socket', (socket) => acceptPeer(socket, { hello, secret: 's' }).then(resolve, reject)));
  const client = await connectPeer({ ...listener.address, hello: { ...hello, nodeId: 1 }, secret: 's' });
  const server = await accepted;
  server.socket.pause();
  const payloadBytes = 1 << 20;
  // Twice the limit: before flow control moved to the producers, the send
  // past sendQueueBytesMax threw DSM_ERR_BACKPRESSURE into whoever sent.
  const sendCount = Math.ceil((2 * sendQueueBytesMax) / payloadBytes);
  let falseCount = 0;
  for (let index = 0; index < sendCount; index += 1) {
    // A large payload is queued by reference, not copied: one per message.
    const payload = new Uint8Array(payloadBytes).fill(index & 255);
    if (!client.send({ type: 'page', index, payload })) falseCount += 1;
  }
  assert.ok(client.queuedBytes > sendQueueBytesMax, `the queue holds everything sent (${client.queuedBytes} bytes)`);
  assert.ok(falseCount >= sendCount / 2, 'every send past the limit said "wait"');
  const received: number[] = [];
  const all = new Promise<void>((resolve) => server.on('message', (message: WireMessage) => {
    if (message.type !== 'page') return;
    const index = message.index as number;
    assert.equal((message.payload as Uint8Array)[0], index & 255);
    received.push(index);
    if (received.length === sendCount) resolve();
  }));
  const drained = new Promise((resolve) => client.once('drain', resolve));
  server.socket.resume();
  await Promise.all([drained, all]);
  assert.deepEqual(received, [...Array(sendCount).keys()]);
  assert.equal(client.queuedBytes, 0);
  assert.equal(client.send({ type: 'ack' }), true);
  client.close();
  server.close();
  listener.close();
});
