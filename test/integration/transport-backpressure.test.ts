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

test('frames with payloads of a few KiB keep their bytes when sockets back up (a frame queued never shares the send scratch, also with another connection)', async () => {
  const listener = await Listener.listen('127.0.0.1', 0);
  const pairs: Array<{ client: Connection; server: Connection }> = [];
  for (let k = 0; k < 2; k += 1) {
    const accepted = new Promise<Connection>((resolve, reject) => listener.once('socket', (socket) => acceptPeer(socket, { hello, secret: 's' }).then(resolve, reject)));
    const client = await connectPeer({ ...listener.address, hello: { ...hello, nodeId: 1 }, secret: 's' });
    pairs.push({ client, server: await accepted });
  }
  for (const { server } of pairs) server.socket.pause();
  // Past what the kernel's loopback buffers hold, so that most frames wait in the sockets' queues; the second
  // connection backs up later than the first, and its frames meanwhile go through the scratch.
  const sendCounts = [3000, 6000];
  const sizes = [4096, 6000, 12 * 1024];
  const payloads = sizes.map((size) => new Uint8Array(size));
  for (let index = 0; index < sendCounts[1]!; index += 1) {
    // One array for every send of a size, filled anew each time: a frame that kept a view of it, or shared a buffer
    // with a later frame, would arrive with a later frame's bytes.
    for (let k = 0; k < 2; k += 1) {
      if (index >= sendCounts[k]!) continue;
      const payload = payloads[index % sizes.length]!.fill((index + k) & 255);
      pairs[k]!.client.send({ type: 'post', index, payload });
    }
  }
  for (const { client } of pairs) assert.ok(client.queuedBytes > 0, 'the socket backed up');
  try {
    await Promise.all(pairs.map(({ server }, k) => {
      let received = 0;
      const all = new Promise<void>((resolve, reject) => server.on('message', (message: WireMessage) => {
        const index = message.index as number;
        const payload = message.payload as Uint8Array;
        if (index !== received || payload.byteLength !== sizes[index % sizes.length] || payload.some((byte) => byte !== ((index + k) & 255))) {
          reject(new Error(`connection ${k}, message ${received}: index ${index}, ${payload.byteLength} bytes, first ${payload[0]}`));
          return;
        }
        received += 1;
        if (received === sendCounts[k]) resolve();
      }).once('error', reject).once('close', () => reject(new Error(`connection ${k} closed after ${received} messages`))));
      server.socket.resume();
      // Once all of it is in the kernel, the client ends the connection: a reader left waiting for bytes that never
      // come (a frame's header overwritten) sees the close instead.
      const { client } = pairs[k]!;
      new Promise((resolve) => client.once('drain', resolve)).then(() => client.close(), () => {});
      return all;
    }));
  } finally {
    // Also after a failure: nothing left open keeps the test's process alive.
    for (const { client, server } of pairs) {
      client.socket.destroy();
      server.socket.destroy();
    }
    listener.close();
  }
});
