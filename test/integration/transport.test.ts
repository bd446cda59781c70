// The handshake and connections over real sockets on 127.0.0.1.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { EventEmitter } from 'node:events';
import { frameBytesMax } from '../../src/constants.js';
import { Connection, handshake, type Hello } from '../../src/transport/connection.js';
import { StreamFrameSource } from '../../src/transport/frame-reader.js';
import { type WireMessage, wireVersion } from '../../src/transport/frame.js';
import { Listener, acceptPeer, connectPeer } from '../../src/transport/mesh.js';
import { payloadSlabStats, takePayloadSlab } from '../../src/transport/payload-slabs.js';
import { type TlsConfig, loadTls } from '../../src/transport/tls.js';
import { makeTestCerts } from '../fixtures/tls.js';

const baseHello: Hello = { clusterId: 'c1', dsmVersion: '0.1.0', wireVersion, coherence: 'hlrc', pageBytes: 4096, regionBytes: 1 << 30, nodeId: 0 };

async function pair(server: { hello?: Partial<Hello>; secret?: string }, client: { hello?: Partial<Hello>; secret?: string }) {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = new Promise<Connection>((resolve, reject) => {
    listener.once('connection', (socket) => {
      handshake(socket, { hello: { ...baseHello, nodeId: 0, ...server.hello }, secret: server.secret ?? 's', role: 'accept', peerLabel: 'client' }).then(resolve, reject);
    });
  });
  const socket = net.connect(port, '127.0.0.1');
  const connected = handshake(socket, { hello: { ...baseHello, nodeId: 1, ...client.hello }, secret: client.secret ?? 's', role: 'connect', peerLabel: 'server' });
  const results = await Promise.allSettled([accepted, connected]);
  listener.close();
  return { listener, port, results };
}

function closeAll(results: PromiseSettledResult<Connection>[]) {
  for (const result of results) if (result.status === 'fulfilled') result.value.close();
}

test('the handshake succeeds with the same secret, and messages with payloads flow both ways', async () => {
  const { results } = await pair({}, {});
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'fulfilled');
  const [server, client] = results.map((r) => (r as PromiseFulfilledResult<Connection>).value) as [Connection, Connection];
  assert.equal(server.peer.nodeId, 1);
  assert.equal(client.peer.nodeId, 0);
  const got = new Promise<unknown>((resolve) => server.once('message', resolve));
  const page = new Uint8Array(4096).fill(3);
  client.send({ type: 'page', page: 12, payload: page });
  const message = (await got) as { type: string; page: number; payload: Uint8Array };
  assert.equal(message.type, 'page');
  assert.equal(message.page, 12);
  assert.deepEqual(Buffer.from(message.payload), Buffer.from(page));
  const back = new Promise<unknown>((resolve) => client.once('message', resolve));
  server.send({ type: 'ack', n: 1 });
  assert.deepEqual(await back, { type: 'ack', n: 1 });
  closeAll(results);
});

test('a payload in a reused slab is given back once written, and its bytes arrive as they were when sent, slab reused or not', async () => {
  const { results } = await pair({}, {});
  const [server, client] = results.map((r) => (r as PromiseFulfilledResult<Connection>).value) as [Connection, Connection];
  const received: Uint8Array[] = [];
  const rounds = 24;
  const sizeOf = (round: number): number => (round % 3 === 2 ? 8 * 1024 : 256 * 1024 + 4096 * round);
  const inUseBefore = payloadSlabStats().inUse;
  const all = new Promise<void>((resolve) => server.on('message', (message: { payload: Uint8Array }) => {
    received.push(Uint8Array.from(message.payload));
    if (received.length === rounds) resolve();
  }));
  // A slab reused while the socket still held it would send another round's bytes, or a torn frame the server
  // refuses: bounded either way.
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    server.once('error', reject);
    timer = setTimeout(() => reject(new Error(`${received.length} of ${rounds} payloads arrived in 10 s`)), 10_000);
  });
  try {
    // Large payloads (written by reference) and small ones (copied into the frame), each filled with its round's
    // byte; a slab given back is taken again by a later round and overwritten. The receiver reads nothing at
    // first, so that the sender's socket queues the large ones (held by reference until written).
    server.socket.pause();
    setTimeout(() => server.socket.resume(), 50);
    for (let round = 0; round < rounds; round++) {
      const payload = takePayloadSlab(sizeOf(round));
      payload.fill(round + 1);
      client.send({ type: 'copies', round, payload });
      if (round % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.race([all, failed]);
    await new Promise((resolve) => setImmediate(resolve));
    received.forEach((bytes, round) => {
      assert.equal(bytes.byteLength, sizeOf(round));
      assert.ok(bytes.every((byte) => byte === round + 1), `round ${round}'s bytes arrived as sent`);
    });
    assert.equal(payloadSlabStats().inUse, inUseBefore, 'every slab was given back once written');
  } finally {
    clearTimeout(timer);
    closeAll(results);
  }
});

test('a wrong secret is refused on both sides with DSM_ERR_SECRET', async () => {
  const { results } = await pair({ secret: 'one' }, { secret: 'two' });
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.equal((result as PromiseRejectedResult).reason.code, 'DSM_ERR_SECRET');
  }
});

test('another version is refused on both sides with DSM_ERR_VERSION', async () => {
  const { results } = await pair({}, { hello: { dsmVersion: '9.9.9' } });
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.equal((result as PromiseRejectedResult).reason.code, 'DSM_ERR_VERSION');
    assert.match((result as PromiseRejectedResult).reason.message, /9\.9\.9/);
  }
});

test('another configuration is refused naming the field', async () => {
  const { results } = await pair({}, { hello: { regionBytes: 1 << 20 } });
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.equal((result as PromiseRejectedResult).reason.code, 'DSM_ERR_CONFIG_MISMATCH');
    assert.match((result as PromiseRejectedResult).reason.message, /regionBytes differs/);
  }
});

test('a foreign peer sending garbage is refused with DSM_ERR_FRAME, and the listener keeps serving', async () => {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const outcomes: Array<Promise<unknown>> = [];
  listener.on('connection', (socket) => {
    outcomes.push(handshake(socket, { hello: baseHello, secret: 's', role: 'accept', peerLabel: `peer ${socket.remotePort}` }).then(
      (connection) => { connection.close(); return 'ok'; }, (error: { code: string }) => error.code));
  });
  const garbage = net.connect(port, '127.0.0.1');
  garbage.on('error', () => {});
  garbage.resume();
  garbage.write('GET / HTTP/1.1\r\nHost: dsm\r\n\r\n');
  await new Promise((resolve) => garbage.on('close', resolve));
  const good = await handshake(net.connect(port, '127.0.0.1'), { hello: { ...baseHello, nodeId: 2 }, secret: 's', role: 'connect', peerLabel: 'server' });
  good.close();
  listener.close();
  assert.deepEqual(await Promise.all(outcomes), ['DSM_ERR_FRAME', 'ok']);
});

test('a malformed frame after the handshake closes that connection with DSM_ERR_FRAME naming the peer', async () => {
  const { results } = await pair({}, {});
  const [server, client] = results.map((r) => (r as PromiseFulfilledResult<Connection>).value) as [Connection, Connection];
  const failure = new Promise<{ code: string; message: string }>((resolve) => server.once('error', resolve));
  client.socket.write(Buffer.from('not a frame at all, just text....'));
  const error = await failure;
  assert.equal(error.code, 'DSM_ERR_FRAME');
  assert.match(error.message, /node 1/);
  client.close();
});

/** A connected pair over Listener, acceptPeer and connectPeer (as the mesh makes them), plain TCP or mutual TLS. */
async function meshPair(tls?: TlsConfig) {
  const listener = await Listener.listen('127.0.0.1', 0, tls);
  const accepted = new Promise<Connection>((resolve, reject) => listener.once('socket', (socket: net.Socket) => acceptPeer(socket, { hello: baseHello, secret: 's' }).then(resolve, reject)));
  const client = await connectPeer({ ...listener.address, hello: { ...baseHello, nodeId: 1 }, secret: 's', ...(tls === undefined ? {} : { tls }) });
  return { listener, server: await accepted, client };
}

/** Sends frames of sizes around the read buffer's and the direct-read threshold both ways; checks order and bytes. */
async function exchange(server: Connection, client: Connection): Promise<void> {
  const sizes = [0, 1, 15, 16, 17, 4096, 16 * 1024 + 1, 32 * 1024 - 40, 64 * 1024 - 16, 64 * 1024, 64 * 1024 + 1, 200 * 1024, 1 << 20, 7, 0];
  for (const [from, to] of [[client, server], [server, client]] as const) {
    const received: WireMessage[] = [];
    const all = new Promise<void>((resolve) => {
      const onMessage = (message: WireMessage) => {
        received.push(message);
        if (received.length === sizes.length) {
          to.off('message', onMessage);
          resolve();
        }
      };
      to.on('message', onMessage);
    });
    sizes.forEach((size, i) => from.send(size === 0 ? { type: 'empty', i } : { type: 'sized', i, payload: new Uint8Array(size).fill(i + 1) }));
    await all;
    received.forEach((message, i) => {
      assert.equal(message.i, i);
      assert.equal(message.payload?.byteLength ?? 0, sizes[i]);
      if (sizes[i]! > 0) assert.deepEqual([...new Set(message.payload!)], [i + 1]);
    });
  }
}

test('plain TCP connections read frames without the stream layers on both sides, TLS ones through the stream; every size arrives in order, and a close is seen', async () => {
  const plain = await meshPair();
  assert.equal(plain.server.streamless, true, 'the accepted side');
  assert.equal(plain.client.streamless, true, 'the dialled side');
  await exchange(plain.server, plain.client);
  const closed = new Promise((resolve) => plain.server.once('close', resolve));
  const listenerClosed = new Promise((resolve) => plain.listener.server.once('close', resolve));
  plain.client.close();
  await closed;
  // The re-wrapped socket took over the server's connection count: the server closes once it is gone.
  plain.listener.close();
  await listenerClosed;

  const certs = makeTestCerts();
  if (certs === null) return;
  const tls = loadTls({ cert: certs.cert, key: certs.key, ca: certs.ca })!;
  const secure = await meshPair(tls);
  assert.equal(secure.server.streamless, false);
  assert.equal(secure.client.streamless, false);
  await exchange(secure.server, secure.client);
  const failed = new Promise<{ code: string; message: string }>((resolve) => secure.client.once('error', resolve));
  secure.server.socket.destroy();
  const lost = await Promise.race([failed, new Promise((resolve) => secure.client.once('close', () => resolve('close')))]);
  assert.ok(lost === 'close' || (lost as { code: string }).code === 'DSM_ERR_NODE_DIED');
  secure.listener.close();
});

test('a malformed frame after the handshake on a streamless connection closes it with DSM_ERR_FRAME naming the peer, and a peer\'s death is seen', async () => {
  const { listener, server, client } = await meshPair();
  assert.equal(server.streamless, true);
  const failure = new Promise<{ code: string; message: string }>((resolve) => server.once('error', resolve));
  const clientClosed = new Promise((resolve) => client.once('close', resolve));
  client.socket.write(Buffer.from('not a frame at all, just text....'));
  const error = await failure;
  assert.equal(error.code, 'DSM_ERR_FRAME');
  assert.match(error.message, /node 1 .*bad magic/);
  await clientClosed;
  listener.close();
});

test('a malformed frame read with the handshake\'s last one is reported once the owner has had a turn to listen', async () => {
  // The handshake resolves in the read that brought its last frame; what follows it in that read reaches the
  // new Connection before the owner's 'error' listener (the fuzzer's man in the middle found it).
  const socket = Object.assign(new EventEmitter(), { remoteAddress: '127.0.0.1', remotePort: 1, writableLength: 0, write: () => true, end() {}, destroy() {} });
  const source = new StreamFrameSource(socket as unknown as net.Socket, frameBytesMax);
  const connection = new Connection(socket as unknown as net.Socket, { ...baseHello, nodeId: 3 }, source);
  socket.emit('data', Buffer.from('garbage after the proof, same read'));
  const error = await new Promise<{ code: string; message: string }>((resolve) => connection.once('error', resolve));
  assert.equal(error.code, 'DSM_ERR_FRAME');
  assert.match(error.message, /node 3 .*bad magic/);
});
