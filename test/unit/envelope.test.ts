import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserializeValue, serializeValue, transferListOf } from '../../src/channel/clone.js';
import { fromWire, laneOf, route, toWire, type MeshMessage } from '../../src/runtime/envelope.js';
import { decodeBody, encodeBody, type WireMessage } from '../../src/transport/codec.js';
import { FrameDecoder, FrameError, encodeFrameHeader, frameKinds } from '../../src/transport/frame.js';

test('every mesh message type belongs to one lane; unknown types to none', () => {
  assert.equal(laneOf('pageRequest'), 'engine');
  assert.equal(laneOf('atomicReply'), 'engine');
  assert.equal(laneOf('rtSpawn'), 'workers');
  assert.equal(laneOf('rtEvent'), 'workers');
  assert.equal(laneOf('rtReport'), 'reports');
  assert.equal(laneOf('rtRaceAlloc'), 'reports');
  assert.equal(laneOf('rtSomethingElse'), null);
  assert.equal(laneOf('toString'), null, 'not an inherited property');
});

test('route types a message by its lane', () => {
  const routed = route({ type: 'vcQuery', info: { vc: [0], intervals: [] } });
  assert.equal(routed?.lane, 'engine');
  assert.equal(route({ type: 'rtTerminate', spawnId: '0:1' })?.lane, 'workers');
  assert.equal(route({ type: 'nonsense' }), null);
});

const noRanges = { rangeOf: () => null, bufferAt: (): never => { throw new Error('no dsm buffers here'); } };

/** Through a real frame, as the mesh sends it: toWire, encode, decode, fromWire. */
function overTheWire(message: MeshMessage): { back: WireMessage; wire: Buffer; body: Uint8Array; payload: Uint8Array | null } {
  const { body, payload } = encodeBody(toWire(message));
  const wire = Buffer.concat([encodeFrameHeader(frameKinds.message, body.byteLength, payload?.byteLength ?? 0), body, payload ?? new Uint8Array(0)]);
  const frame = new FrameDecoder().push(wire)[0]!;
  return { back: fromWire(decodeBody(frame.body, frame.payload)), wire, body, payload };
}

test('page copies travel as the payload: one view of the reply\'s buffer out, views of the frame in', () => {
  const copies = new Uint8Array(5 * 4096).map((_, i) => (i * 7) & 0xff);
  const pages = [0, 1, 2, 3, 4].map((k) => copies.subarray(k * 4096, (k + 1) * 4096));
  const extraVersions = [[1, 0], [0, 2], [3, 0], [0, 4]];
  const message: MeshMessage = { type: 'pageReply', page: 5, version: [1, 0], bytes: pages[0]!, extraPages: [6, 7, 8, 9], extraVersions, extraBytes: pages.slice(1) };
  const wire = toWire(message);
  assert.equal(wire.payload!.buffer, copies.buffer, 'back-to-back copies go out without a copy');
  assert.equal(wire.payload!.byteLength, copies.byteLength);
  assert.deepEqual([wire.bytes, wire.extraBytes], [4096, [4096, 4096, 4096, 4096]], 'the body holds the lengths');
  assert.equal((message as { bytes: Uint8Array }).bytes, pages[0], 'the message itself is left as it was');
  const { back, wire: frameBytes, body } = overTheWire(message);
  assert.ok(body.byteLength < 200, `a small body (${body.byteLength} bytes)`);
  const reply = back as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
  assert.equal('payload' in reply, false);
  assert.equal(reply.bytes.buffer, frameBytes.buffer, 'pages arrive as views of the received frame');
  assert.deepEqual([reply.bytes, ...reply.extraBytes].map((view) => Buffer.from(view)), pages.map((view) => Buffer.from(view)));
  assert.deepEqual(reply.extraVersions, extraVersions);
});

test('a reply of a page or a few stays in the body (no payload: msgpackr\'s buffer is the frame)', () => {
  const message: MeshMessage = { type: 'pageReply', page: 5, version: [1], bytes: new Uint8Array(4096).fill(3), extraPages: [], extraVersions: [], extraBytes: [] };
  assert.equal(toWire(message), message);
  const { back, payload } = overTheWire(message);
  assert.equal(payload, null);
  assert.deepEqual([...new Set((back as unknown as { bytes: Uint8Array }).bytes)], [3]);
});

test('copies in separate buffers, an empty page, optional pushes: each round-trips', () => {
  const lent = overTheWire({ type: 'pageReply', page: 5, version: [], bytes: new Uint8Array(0), extraPages: [6], extraVersions: [[1]], extraBytes: [new Uint8Array(4096).fill(9)] }).back as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
  assert.equal(lent.bytes.byteLength, 0);
  assert.deepEqual([...new Set(lent.extraBytes[0]!)], [9]);
  const pushBytes = [1, 2, 3, 4, 5].map((k) => new Uint8Array(4096).fill(k));
  const push = overTheWire({ type: 'lockGrant', lockId: 1, requestId: 2, granted: true, info: { vc: [0], known: [0], intervals: [] }, pushPages: [3, 4, 5, 6, 7], pushVersions: [[1], [1], [1], [1], [1]], pushBytes });
  assert.equal(push.payload?.byteLength, 5 * 4096, 'five pages in separate buffers: copied into one payload');
  const grant = push.back as unknown as Extract<MeshMessage, { type: 'lockGrant' }>;
  assert.deepEqual(grant.pushBytes!.map((view) => view[0]), [1, 2, 3, 4, 5]);
  const plain = overTheWire({ type: 'lockGrant', lockId: 1, requestId: 2, granted: true, info: { vc: [0], known: [0], intervals: [] } });
  assert.equal(plain.payload, null, 'no page, no payload');
  assert.equal('pushBytes' in plain.back, false);
});

test('lengths that do not account for the payload, and payloads where none belongs, are FrameErrors', () => {
  const reply = (fields: Record<string, unknown>, payloadBytes: number): WireMessage => ({ type: 'pageReply', page: 1, version: [], extraPages: [], extraVersions: [], ...fields, payload: new Uint8Array(payloadBytes) } as WireMessage);
  assert.throws(() => fromWire(reply({ bytes: 4096, extraBytes: [] }, 4095)), FrameError);
  assert.throws(() => fromWire(reply({ bytes: 4096, extraBytes: [] }, 4097)), /lengths account for 4096 of its 4097/);
  assert.throws(() => fromWire(reply({ bytes: -1, extraBytes: [] }, 0)), FrameError);
  assert.throws(() => fromWire(reply({ bytes: 1.5, extraBytes: [] }, 4096)), FrameError);
  assert.throws(() => fromWire(reply({ bytes: 'x', extraBytes: [] }, 4096)), FrameError);
  assert.throws(() => fromWire(reply({ bytes: 0, extraBytes: [4096, { a: 1 }] }, 4096)), FrameError);
  assert.throws(() => fromWire({ type: 'pageRequest', page: 1, payload: new Uint8Array(1) } as WireMessage), /carries no payload/);
  assert.doesNotThrow(() => fromWire(reply({ bytes: 0, extraBytes: [4096] }, 4096)));
});

test('a remote worker\'s message bytes travel as the payload, by reference, and arrive alone in their buffer (transferable)', () => {
  const bytes = serializeValue(new Uint8Array(1024 * 1024).fill(7), noRanges);
  const info = { vc: [0], known: [0], intervals: [] };
  for (const message of [
    { type: 'rtPost', spawnId: '0:1', bytes, info },
    { type: 'rtEvent', spawnId: '0:1', event: 'message', bytes, info },
    { type: 'rtPortMessage', id: '0.0.1', bytes, ports: ['0.0.2'], info },
  ] as MeshMessage[]) {
    const wire = toWire(message);
    assert.equal(wire.payload!.buffer, bytes.buffer, `${message.type}: the serialized bytes themselves go out (no copy into msgpackr's buffer)`);
    assert.equal(wire.payload!.byteLength, bytes.byteLength);
    assert.equal(wire.bytes, bytes.byteLength);
    // Received as a socket gives it: in reads of 64 KiB.
    const { body, payload } = encodeBody(wire);
    const stream = Buffer.concat([encodeFrameHeader(frameKinds.message, body.byteLength, payload!.byteLength), body, payload!]);
    const decoder = new FrameDecoder();
    const frames = [];
    for (let at = 0; at < stream.length; at += 64 * 1024) frames.push(...decoder.push(stream.subarray(at, at + 64 * 1024)));
    const back = fromWire(decodeBody(frames[0]!.body, frames[0]!.payload)) as unknown as { bytes: Uint8Array; ports?: string[] };
    assert.deepEqual(back.ports, (message as { ports?: string[] }).ports, `${message.type}: relayed ports' ids travel in the body`);
    assert.deepEqual(transferListOf(back.bytes), [back.bytes.buffer], `${message.type}: the bytes are their buffer, whole`);
    assert.deepEqual(deserializeValue(back.bytes, noRanges), new Uint8Array(1024 * 1024).fill(7));
  }
  const spawn = toWire({ type: 'rtSpawn', spawnId: '0:2', threadIdSeen: 1, entry: '/x.js', evalCode: false, workerData: bytes, options: { argv: [] }, info });
  assert.equal(spawn.payload!.buffer, bytes.buffer, 'a large workerData too');
  const online = toWire({ type: 'rtEvent', spawnId: '0:1', event: 'online', threadId: 1, info });
  assert.equal('payload' in online, false, 'an event without bytes has no payload');
  const small = serializeValue('hello', noRanges);
  const inline = overTheWire({ type: 'rtPost', spawnId: '0:1', bytes: small, info });
  assert.equal(inline.payload, null, 'a small message stays in the body');
  const smallBack = (inline.back as unknown as { bytes: Uint8Array }).bytes;
  assert.deepEqual(transferListOf(smallBack), [], 'a view of the received frame is copied, never transferred');
  assert.equal(deserializeValue(smallBack, noRanges), 'hello');
});
