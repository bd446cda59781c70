// A hostile raw-TCP client against a listener running the accepting side of
// the handshake: every bad input is refused with one line naming the peer's
// host:port, no proof ever goes to a stranger, and real peers still get in.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preAuthFrameBytesMax, unauthenticatedCountMax } from '../../src/constants.js';
import type { DsmError } from '../../src/errors.js';
import { packageVersion } from '../../src/package-info.js';
import { type Connection, type Hello, Listener, acceptPeer, connectPeer, frameKinds, wireVersion } from '../../src/transport/index.js';
import { attack, attacks, truncatedFlood } from '../fixtures/hostile/attacks.js';

const hello: Hello = { clusterId: 'dsm', dsmVersion: packageVersion, wireVersion, coherence: 'hlrc/block', pageBytes: 4096, regionBytes: 256 * 1024 * 1024, nodeId: 0 };
const secret = 'a-test-secret-that-is-long-enough-0123456789';

async function serve() {
  const listener = await Listener.listen('127.0.0.1', 0);
  const refusals: DsmError[] = [];
  const accepted: Connection[] = [];
  listener.on('socket', (socket) => {
    acceptPeer(socket, { hello, secret, door: listener.door }).then((connection) => accepted.push(connection), (error: DsmError) => refusals.push(error));
  });
  return { listener, refusals, accepted };
}

async function realPeerGetsIn(port: number): Promise<void> {
  const connection = await connectPeer({ host: '127.0.0.1', port, hello: { ...hello, nodeId: 1 }, secret, retryCountMax: 0 });
  connection.close();
}

for (const [name, chunks] of Object.entries(attacks)) {
  test(`${name}: refused with one line naming the peer, no proof sent, the listener keeps serving`, async () => {
    const { listener, refusals } = await serve();
    const result = await attack(listener.address.port, chunks());
    assert.equal(result.closedByServer, true, 'the listener closed the connection');
    assert.equal(result.frames.filter((frame) => frame.kind === frameKinds.proof).length, 0, 'no proof goes to a peer that has not proven itself');
    await realPeerGetsIn(listener.address.port);
    assert.equal(refusals.length, 1);
    const [refusal] = refusals;
    assert.match(refusal!.code, /^DSM_ERR_(FRAME|HANDSHAKE|SECRET)$/);
    assert.match(refusal!.message, /peer at 127\.0\.0\.1:\d+/);
    assert.doesNotMatch(refusal!.message, /\n/);
    listener.close();
  });
}

test('200 connections holding truncated 8 MiB frames cost at most the pre-auth limit each, and a real peer still gets in', async () => {
  const { listener, refusals } = await serve();
  const rssBefore = process.memoryUsage().rss;
  const sockets = await truncatedFlood(listener.address.port, 200);
  await realPeerGetsIn(listener.address.port);
  // Every one of them is turned away at its header: none is buffered towards 8 MiB.
  for (let attempt = 0; attempt < 100 && refusals.length < 200; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(refusals.length, 200);
  for (const refusal of refusals) assert.match(refusal.message, new RegExp(`exceeds the maximum of ${preAuthFrameBytesMax}`));
  const grownBytes = process.memoryUsage().rss - rssBefore;
  assert.ok(grownBytes < 64 * 1024 * 1024, `RSS grew by ${grownBytes} bytes`);
  for (const socket of sockets) socket.destroy();
  listener.close();
});

test('idle strangers cannot fill the door: past the cap the oldest handshake is dropped and a real peer gets in', async () => {
  const { listener } = await serve();
  const net = await import('node:net');
  const idle = [];
  for (let index = 0; index < unauthenticatedCountMax + 20; index += 1) {
    const socket = net.connect(listener.address.port, '127.0.0.1');
    socket.on('error', () => {});
    idle.push(socket);
  }
  await Promise.all(idle.map((socket) => new Promise((resolve) => socket.once('connect', resolve))));
  await realPeerGetsIn(listener.address.port);
  assert.ok(listener.door.waitingCount <= unauthenticatedCountMax);
  for (const socket of idle) socket.destroy();
  listener.close();
});

test('after authentication, a message its handler cannot take ends that peer with DSM_ERR_FRAME naming it, never an uncaught exception', async () => {
  const { Mesh } = await import('../../src/transport/index.js');
  const listeners = await Promise.all([0, 1].map(() => Listener.listen('127.0.0.1', 0)));
  const addresses = new Map(listeners.map((listener, nodeId) => [nodeId, listener.address]));
  const meshes = listeners.map((listener, nodeId) => new Mesh({ nodeId, listener, addresses, hello: { ...hello, nodeId }, secret }));
  // Node 0's handler trusts the message's shape, as the protocol engine does: `page.toFixed` of a string throws a TypeError.
  meshes[0]!.on('message', (_from: number, message: { page: number }) => { message.page.toFixed(0); });
  const lost = new Promise<[number, DsmError]>((resolve) => meshes[0]!.once('peer-lost', (nodeId: number, error: DsmError) => resolve([nodeId, error])));
  meshes[1]!.on('peer-lost', () => {});
  await Promise.all(meshes.map((mesh) => mesh.start()));
  meshes[1]!.send(0, { type: 'pageRequest', page: 'not a number' });
  const [nodeId, error] = await lost;
  assert.equal(nodeId, 1);
  assert.equal(error.code, 'DSM_ERR_FRAME');
  assert.match(error.message, /a 'pageRequest' message from node 1 \(127\.0\.0\.1:\d+\) could not be handled \(TypeError: /);
  for (const mesh of meshes) mesh.close();
  for (const listener of listeners) listener.close();
});
