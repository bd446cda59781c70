// Listener, connectPeer and the mesh over real sockets on 127.0.0.1.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DsmError } from '../../src/errors.js';
import { type Hello, Listener, Mesh, type PeerAddress, type WireMessage, connectPeer, wireVersion } from '../../src/transport/index.js';

const baseHello: Hello = { clusterId: 'mesh', dsmVersion: '0.1.0', wireVersion, coherence: 'hlrc', pageBytes: 4096, regionBytes: 1 << 30, nodeId: 0 };

test('listening on a port in use is DSM_ERR_PORT_IN_USE naming the address', async () => {
  const first = await Listener.listen('127.0.0.1', 0);
  await assert.rejects(Listener.listen('127.0.0.1', first.address.port), (error: DsmError) =>
    error.code === 'DSM_ERR_PORT_IN_USE' && error.message.includes(`127.0.0.1:${first.address.port}`) && /another port/.test(error.message));
  first.close();
});

test('connecting to a closed port is DSM_ERR_UNREACHABLE after bounded retries', async () => {
  const probe = await Listener.listen('127.0.0.1', 0);
  const port = probe.address.port;
  probe.close();
  await new Promise((resolve) => probe.server.once('close', resolve));
  await assert.rejects(connectPeer({ host: '127.0.0.1', port, hello: baseHello, secret: 's', retryCountMax: 2 }), (error: DsmError) =>
    error.code === 'DSM_ERR_UNREACHABLE' && error.message.includes(`127.0.0.1:${port}`) && /3 attempts/.test(error.message));
});

async function startMeshes(nodeCount: number): Promise<Mesh[]> {
  const listeners = await Promise.all(Array.from({ length: nodeCount }, () => Listener.listen('127.0.0.1', 0)));
  const addresses = new Map<number, PeerAddress>(listeners.map((listener, nodeId) => [nodeId, listener.address]));
  const meshes = listeners.map((listener, nodeId) =>
    new Mesh({ nodeId, listener, addresses, hello: { ...baseHello, nodeId }, secret: 's', heartbeatIntervalMs: 50, heartbeatTimeoutMs: 400 }));
  await Promise.all(meshes.map((mesh) => mesh.start()));
  return meshes;
}

test('a 3-node mesh has one connection per pair and delivers every message to the right node', async () => {
  const meshes = await startMeshes(3);
  const received: Array<Array<[number, WireMessage]>> = meshes.map(() => []);
  meshes.forEach((mesh, nodeId) => mesh.on('message', (from: number, message: WireMessage) => received[nodeId]!.push([from, message])));
  for (const mesh of meshes) assert.deepEqual(mesh.peerIds, [0, 1, 2].filter((id) => id !== mesh.nodeId));
  const page = new Uint8Array(4096).fill(9);
  for (const mesh of meshes) {
    for (const to of mesh.peerIds) mesh.send(to, { type: 'hi', from: mesh.nodeId, to, payload: page });
  }
  const deadline = Date.now() + 5000;
  while (received.some((list) => list.length < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  received.forEach((list, nodeId) => {
    assert.equal(list.length, 2);
    for (const [from, message] of list) {
      assert.equal(message.from, from);
      assert.equal(message.to, nodeId);
      assert.deepEqual(Buffer.from(message.payload!), Buffer.from(page));
    }
    assert.deepEqual(list.map(([from]) => from).sort(), [0, 1, 2].filter((id) => id !== nodeId));
  });
  // Heartbeats keep quiet peers alive: nobody is lost after several timeouts' worth of heartbeats.
  const lost: number[] = [];
  for (const mesh of meshes) mesh.on('peer-lost', (nodeId: number) => lost.push(nodeId));
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.deepEqual(lost, []);
  for (const mesh of meshes) mesh.close();
  for (const mesh of meshes) (mesh as unknown as { options: { listener: Listener } }).options.listener.close();
});

test('a peer that goes silent is reported lost, naming its node id and host', async () => {
  const listener = await Listener.listen('127.0.0.1', 0);
  const addresses = new Map<number, PeerAddress>([[0, listener.address], [1, { host: '127.0.0.1', port: 1 }]]);
  const mesh = new Mesh({ nodeId: 0, listener, addresses, hello: baseHello, secret: 's', heartbeatIntervalMs: 50, heartbeatTimeoutMs: 300 });
  const lost = new Promise<[number, DsmError]>((resolve) => mesh.on('peer-lost', (nodeId: number, error: DsmError) => resolve([nodeId, error])));
  const started = mesh.start();
  // Node 1 handshakes like a mesh node, then never sends another frame.
  const silent = await connectPeer({ ...listener.address, hello: { ...baseHello, nodeId: 1 }, secret: 's' });
  await started;
  const [nodeId, error] = await lost;
  assert.equal(nodeId, 1);
  assert.equal(error.code, 'DSM_ERR_NODE_DIED');
  assert.match(error.message, /node 1 \(127\.0\.0\.1\) stopped answering/);
  // Its loss is reported; what the runtime still sends to it until the run ends goes nowhere, without a throw.
  assert.equal(mesh.send(1, { type: 'late' }), false);
  silent.close();
  mesh.close();
  listener.close();
});

test('two real processes exchange messages over the transport', async () => {
  const listener = await Listener.listen('127.0.0.1', 0);
  const script = fileURLToPath(new URL('./transport-peer.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(listener.address.port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const addresses = new Map<number, PeerAddress>([[0, listener.address], [1, { host: '127.0.0.1', port: 1 }]]);
  const mesh = new Mesh({ nodeId: 0, listener, addresses, hello: baseHello, secret: 'two-processes' });
  const replies: WireMessage[] = [];
  const allReplies = new Promise<void>((resolve) => mesh.on('message', (from: number, message: WireMessage) => {
    assert.equal(from, 1);
    replies.push(message);
    if (replies.length === 10) resolve();
  }));
  const timeout = setTimeout(() => child.kill(), 20000);
  await mesh.start();
  for (let i = 0; i < 10; i += 1) mesh.send(1, { type: 'ping', i, payload: new Uint8Array(64).fill(i) });
  await allReplies;
  assert.deepEqual(replies.map((message) => message.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const message of replies) {
    assert.equal(message.type, 'pong');
    assert.equal(message.pid !== process.pid && typeof message.pid === 'number', true);
    assert.deepEqual([...message.payload!], new Array(64).fill((message.i as number) + 1));
  }
  mesh.send(1, { type: 'bye' });
  assert.equal(await exited, 0);
  clearTimeout(timeout);
  mesh.close();
  listener.close();
});

test('deliverTo hands the held messages, then every message, to its receiver in order, and no longer emits them as events', async () => {
  const meshes = await startMeshes(2);
  const [zero, one] = meshes as [Mesh, Mesh];
  zero.holdMessages();
  one.send(0, { type: 'early', i: 0 });
  one.send(0, { type: 'early', i: 1 });
  // Both held before the receiver is wired (bounded wait for their arrival, not a timing).
  const held = (): number => (zero as unknown as { held: unknown[] | null }).held?.length ?? 0;
  const heldBy = Date.now() + 5000;
  while (held() < 2 && Date.now() < heldBy) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(held(), 2, 'the two early messages are held');
  const events: WireMessage[] = [];
  zero.on('message', (_from: number, message: WireMessage) => events.push(message));
  const received: Array<[number, WireMessage]> = [];
  zero.deliverTo((from, message) => received.push([from, message]));
  assert.deepEqual(received.map(([from, message]) => [from, message.i]), [[1, 0], [1, 1]]);
  for (let i = 2; i < 10; i += 1) one.send(0, { type: 'late', i, ...(i % 3 === 0 ? { payload: new Uint8Array(70_000).fill(i) } : {}) });
  const deadline = Date.now() + 5000;
  while (received.length < 10 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(received.map(([, message]) => message.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(received[3]![1].payload![69_999], 3);
  assert.deepEqual(events, [], 'the receiver, not the event');
  assert.ok(zero.lastReceivedBytes > 0);
  for (const mesh of meshes) mesh.close();
  for (const mesh of meshes) (mesh as unknown as { options: { listener: Listener } }).options.listener.close();
});

test('queuingPeerIds names every peer whose queue holds bytes (the flow gate reads only those), and empties as queues drain', async () => {
  const meshes = await startMeshes(2);
  const [zero, one] = meshes as [Mesh, Mesh];
  zero.deliverTo(() => {});
  // Small frames on an idle loopback link go to the kernel at once: nothing queued, nothing named.
  for (let i = 0; i < 20; i += 1) one.send(0, { type: 'small', i });
  assert.equal(one.queuedBytes(0), 0);
  assert.deepEqual([...one.queuingPeerIds], []);
  // A reader that stopped: the queue grows and the peer is named until it has drained.
  const zeroSide = (zero as unknown as { peers: Map<number, { connection: { socket: { pause(): void; resume(): void } } }> }).peers.get(1)!.connection.socket;
  zeroSide.pause();
  const payload = new Uint8Array(1 << 20);
  for (let i = 0; i < 64 && one.queuedBytes(0) === 0; i += 1) one.send(0, { type: 'big', i, payload });
  for (let i = 0; i < 4; i += 1) one.send(0, { type: 'big', i, payload });
  assert.ok(one.queuedBytes(0) > 0, 'the paused reader made the queue grow');
  assert.deepEqual([...one.queuingPeerIds], [0]);
  zeroSide.resume();
  const deadline = Date.now() + 10_000;
  while (one.queuedBytes(0) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(one.queuedBytes(0), 0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([...one.queuingPeerIds], [], 'a drained queue is no longer named');
  for (const mesh of meshes) mesh.close();
  for (const mesh of meshes) (mesh as unknown as { options: { listener: Listener } }).options.listener.close();
});
