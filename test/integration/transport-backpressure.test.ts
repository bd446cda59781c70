// A bounded send queue against a reader that stopped reading.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sendQueueBytesMax } from '../../src/constants.js';
import type { DsmError } from '../../src/errors.js';
import { type Connection, type Hello, Listener, acceptPeer, connectPeer, wireVersion } from '../../src/transport/index.js';

const hello: Hello = { clusterId: 'bp', dsmVersion: '0.1.0', wireVersion, coherence: 'hlrc', pageBytes: 4096, regionBytes: 1 << 30, nodeId: 0 };

test('sending to a paused reader returns false, then reaches DSM_ERR_BACKPRESSURE at the bound', async () => {
  const listener = await Listener.listen('127.0.0.1', 0);
  const accepted = new Promise<Connection>((resolve, reject) => listener.once('socket', (socket) => acceptPeer(socket, { hello, secret: 's' }).then(resolve, reject)));
  const client = await connectPeer({ ...listener.address, hello: { ...hello, nodeId: 1 }, secret: 's' });
  const server = await accepted;
  server.socket.pause();
  const payload = new Uint8Array(1 << 20);
  const sendCountMax = Math.ceil(sendQueueBytesMax / payload.byteLength) * 4;
  let sawFalse = false;
  let failure: DsmError | null = null;
  for (let sendCount = 0; sendCount < sendCountMax && failure === null; sendCount += 1) {
    try {
      if (!client.send({ type: 'page', payload })) sawFalse = true;
    } catch (error) {
      failure = error as DsmError;
    }
  }
  assert.equal(sawFalse, true);
  assert.ok(failure !== null, 'the bound was reached');
  assert.equal(failure.code, 'DSM_ERR_BACKPRESSURE');
  assert.match(failure.message, /node 0/);
  assert.ok(client.socket.writableLength > sendQueueBytesMax);
  // Once the reader resumes, the queue drains and sending works again.
  const drained = new Promise((resolve) => client.once('drain', resolve));
  server.socket.resume();
  await drained;
  assert.equal(client.send({ type: 'ack' }), true);
  client.close();
  server.close();
  listener.close();
});
