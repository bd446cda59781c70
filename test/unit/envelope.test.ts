import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserializeValue, serializeValue, transferListOf } from '../../src/channel/clone.js';
import { fromWire, laneOf, route, toWire, type MeshMessage } from '../../src/runtime/envelope.js';
import { decodeBody, encodeBody, type WireMessage } from '../../src/transport/codec.js';
import { compactMarker } from '../../src/transport/compact.js';
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
  const push = overTheWire({ type: 'lockGrant', lockId: 1, requestId: 2, granted: true, info: { vc: [0], known: [0], intervals: [] }, pushPages: [3, 4, 5, 6, 7], pushVersions: [[1], [1], [1], [1], [1]], pushBytes, pushApplied: [0, 0, 0, 0, 0] });
  assert.equal(push.payload?.byteLength, 5 * 4096, 'five pages in separate buffers: copied into one payload');
  const grant = push.back as unknown as Extract<MeshMessage, { type: 'lockGrant' }>;
  assert.deepEqual(grant.pushBytes!.map((view) => view[0]), [1, 2, 3, 4, 5]);
  const plain = overTheWire({ type: 'lockGrant', lockId: 1, requestId: 2, granted: true, info: { vc: [0], known: [0], intervals: [] } });
  assert.equal(plain.payload, null, 'no page, no payload');
  assert.equal('pushBytes' in plain.back, false);
});

/** A received message's diffs: its own, or its bundled batch's. */
function diffsIn(message: WireMessage): Uint8Array[] {
  const value = message as unknown as { diffs?: Uint8Array[]; bundled?: { diffs: Uint8Array[] } };
  return value.diffs ?? value.bundled!.diffs;
}

test('a message\'s diffs past 8 KiB travel as one payload (compact body, their lengths in it), and arrive as views of it', () => {
  const info = { vc: [3, 1], known: [3, 1], intervals: [{ node: 1, index: 1, pages: [10, 11, 12] }] };
  // As the native flush leaves them: back to back in one buffer, and the engine's shared empty diff for a page flushed early.
  const flushed = new Uint8Array(3 * 5000).map((_, i) => (i * 13) & 0xff);
  const diffs = [flushed.subarray(0, 5000), new Uint8Array(0), flushed.subarray(5000, 15_000)];
  const bundled = { interval: 1, pages: [10, 11, 12], diffs };
  const cases: MeshMessage[] = [
    { type: 'diffs', interval: 1, pages: [10, 11, 12], diffs },
    { type: 'diffs', interval: 1, pages: [10, 11, 12], diffs, origin: 0 },
    { type: 'lockRelease', lockId: 4, info, bundled },
    { type: 'lockRequest', lockId: 4, requestId: 9, tryOnly: false, info, bundled },
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [1, 1], info, bundled, pushPages: [20], pushVersions: [[3, 1]], pushBytes: [new Uint8Array(4096).fill(5)], pushApplied: [1] },
  ];
  for (const message of cases) {
    const wire = toWire(message);
    assert.equal(wire.payload!.byteLength, 15_000 + ('pushBytes' in message ? 4096 : 0), `${message.type}: the diffs are the payload`);
    if (!('pushBytes' in message)) assert.equal(wire.payload!.buffer, flushed.buffer, `${message.type}: back-to-back diffs go out without a copy`);
    const sent = message.type === 'diffs' ? message.diffs : (message as { bundled: typeof bundled }).bundled.diffs;
    assert.equal(sent, diffs, 'the message itself is left as it was');
    const { back, body } = overTheWire(message);
    assert.equal(body[0], compactMarker, `${message.type} goes compact`);
    assert.ok(body.byteLength < 200, `${message.type}: a small body (${body.byteLength} bytes)`);
    const got = diffsIn(back);
    assert.deepEqual(got.map((diff) => Buffer.from(diff)), diffs.map((diff) => Buffer.from(diff)), `${message.type}: the same diffs`);
    assert.equal(got[0]!.buffer, got[2]!.buffer, `${message.type}: views of one received buffer`);
  }
  // 8 KiB or less stays in the body, compact too: one copy of the bytes out of the frame, the diffs views of it.
  const small: MeshMessage = { type: 'lockRelease', lockId: 4, info, bundled: { interval: 1, pages: [10, 11], diffs: [flushed.subarray(0, 3000), flushed.subarray(3000, 8000)] } };
  assert.equal(toWire(small), small);
  const { back, body, payload } = overTheWire(small);
  assert.equal(payload, null);
  assert.equal(body[0], compactMarker);
  const got = diffsIn(back);
  assert.equal(got[0]!.buffer, got[1]!.buffer);
  assert.deepEqual(got.map((diff) => Buffer.from(diff)), [flushed.subarray(0, 3000), flushed.subarray(3000, 8000)].map((diff) => Buffer.from(diff)));
  // A message outside the compact layout (here an atomic request, msgpack) moves its diffs to the payload the same way.
  const atomic = { type: 'atomicRequest', requestId: 1, op: 'add', address: 64, width: 4, operands: ['1'], info, bundled } as unknown as MeshMessage;
  const viaMsgpack = overTheWire(atomic);
  assert.notEqual(viaMsgpack.body[0], compactMarker);
  assert.equal(viaMsgpack.payload!.byteLength, 15_000);
  assert.deepEqual(diffsIn(viaMsgpack.back).map((diff) => Buffer.from(diff)), diffs.map((diff) => Buffer.from(diff)));
});

test('a line\'s release that pushes pages (session 46): the copies are the payload, the body compact, the pages views of it', () => {
  const info = { vc: [3, 1], known: [3, 1], intervals: [{ node: 1, index: 1, pages: [10, 11] }] };
  // As readPushed leaves them: views of one buffer.
  const copies = new Uint8Array(16 * 4096).map((_, i) => (i * 11) & 0xff);
  const pushPages = Array.from({ length: 16 }, (_, k) => 100 + k);
  const push = { pushPages, pushVersions: pushPages.map(() => [0, 4]), pushBytes: pushPages.map((_, k) => copies.subarray(k * 4096, (k + 1) * 4096)), pushApplied: pushPages.map(() => 0) };
  const bundled = { interval: 1, pages: [10, 11], diffs: [new Uint8Array(9000).fill(3), new Uint8Array(0)] };
  const cases: MeshMessage[] = [
    { type: 'lineOp', requestId: 7, op: 'store', address: 4096 * 300, width: 4, operands: ['5'], info, ...push },
    { type: 'lineOp', requestId: 7, op: 'store', address: 4096 * 300, width: 4, operands: ['5'], info, bundled, ...push },
    { type: 'lineOpDone', requestId: 7, result: '0', info, quiet: true, ...push },
    { type: 'lineRelease', line: 12, info, bundled, ...push },
    { type: 'lineNotify', requestId: 3, address: 4096 * 300, count: 1, info, ...push },
    { type: 'lineWake', requestId: 3, result: 'ok', info, ...push },
  ];
  for (const message of cases) {
    const { back, body, payload } = overTheWire(message);
    const diffBytes = 'bundled' in message ? 9000 : 0;
    assert.equal(payload!.byteLength, 16 * 4096 + diffBytes, `${message.type}: the copies (and diffs) are the payload`);
    if (message.type === 'lineOp' || message.type === 'lineOpDone' || message.type === 'lineRelease') {
      assert.equal(body[0], compactMarker, `${message.type} goes compact`);
      assert.ok(body.byteLength < 400, `${message.type}: a small body (${body.byteLength} bytes)`);
    }
    const got = back.pushBytes as Uint8Array[];
    assert.deepEqual(got.map((page) => Buffer.from(page)), push.pushBytes.map((page) => Buffer.from(page)), `${message.type}: the same copies`);
    assert.equal(got[0]!.buffer, got[15]!.buffer, `${message.type}: views of one received buffer`);
    assert.deepEqual([back.pushPages, back.pushVersions, back.pushApplied], [push.pushPages, push.pushVersions, push.pushApplied]);
    if ('bundled' in message) assert.deepEqual(diffsIn(back).map((diff) => diff.byteLength), [9000, 0]);
  }
  // A push of a page or two stays in the body, compact.
  const small: MeshMessage = { type: 'lineOp', requestId: 8, op: 'add', address: 64, width: 4, operands: ['1'], info, pushPages: [5], pushVersions: [[1, 0]], pushBytes: [copies.subarray(0, 4096)], pushApplied: [0] };
  const inBody = overTheWire(small);
  assert.equal(inBody.payload, null);
  assert.equal(inBody.body[0], compactMarker);
  assert.deepEqual(Buffer.from((inBody.back.pushBytes as Uint8Array[])[0]!), Buffer.from(copies.subarray(0, 4096)));
});

test('diff lengths that do not account for the payload are FrameErrors; a compact body naming a payload it lacks too', () => {
  const wire = (diffs: unknown, payloadBytes: number): WireMessage => ({ type: 'diffs', interval: 1, pages: [1, 2], diffs, payload: new Uint8Array(payloadBytes) });
  assert.throws(() => fromWire(wire([4, 4], 7)), FrameError);
  assert.throws(() => fromWire(wire([4, 4], 9)), /lengths account for 8 of its 9/);
  assert.throws(() => fromWire(wire([4, -1], 8)), FrameError);
  assert.throws(() => fromWire({ type: 'lockRelease', lockId: 1, info: { vc: [0], known: [0], intervals: [] }, bundled: { interval: 1, pages: [1], diffs: [3] }, payload: new Uint8Array(4) }), /lengths account for 3 of its 4/);
  const { body } = encodeBody({ type: 'diffs', interval: 1, pages: [1, 2], diffs: [4, 4] });
  assert.equal(body[0], compactMarker);
  assert.throws(() => decodeBody(body, new Uint8Array(0)), /names a payload it does not have/);
  assert.equal((decodeBody(body, new Uint8Array(8)) as { payload?: Uint8Array }).payload?.byteLength, 8);
  const inline = encodeBody({ type: 'diffs', interval: 1, pages: [1], diffs: [new Uint8Array(4)] }).body;
  assert.throws(() => decodeBody(inline, new Uint8Array(1)), /with a payload/);
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

test('packed page replies unpack into one buffer reused from reply to reply, whole at each delivery; other messages\' copies into buffers of their own (session 26)', () => {
  // Half-zero pages (every other 8-byte word: packable), more than a body holds even packed: a packed payload.
  const pagesOf = (seed: number, count: number): Uint8Array[] => Array.from({ length: count }, (_, k) => {
    const page = new Uint8Array(4096);
    for (let i = 0; i < 4096; i += 16) for (let j = 0; j < 8; j++) page[i + j] = ((seed + k + i + j) & 0xff) | 1;
    return page;
  });
  const replyOf = (page: number, copies: Uint8Array[]): MeshMessage => ({
    type: 'pageReply', page, version: [1, 0], bytes: copies[0]!, extraPages: copies.slice(1).map((_, k) => page + 1 + k),
    extraVersions: copies.slice(1).map(() => [1, 0]), extraBytes: copies.slice(1),
  });
  const firstPages = pagesOf(3, 24);
  const first = overTheWire(replyOf(100, firstPages)).back as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
  assert.ok(!('packed' in first) && first.bytes.byteLength === 4096, 'fromWire removes the packed lengths');
  assert.deepEqual([first.bytes, ...first.extraBytes].map((view) => Buffer.from(view)), firstPages.map((view) => Buffer.from(view)), 'the first reply whole');
  const firstBuffer = first.bytes.buffer;
  const secondPages = pagesOf(9, 16);
  const second = overTheWire(replyOf(200, secondPages)).back as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
  assert.ok(second.bytes.buffer === firstBuffer, 'the second reply unpacks into the same buffer');
  assert.deepEqual([second.bytes, ...second.extraBytes].map((view) => Buffer.from(view)), secondPages.map((view) => Buffer.from(view)), 'the second reply whole (no byte of the first left over)');
  const lent = overTheWire({ type: 'homeLend', pages: [7, 8, 9, 10, 11], versions: [[1], [1], [1], [1], [1]], applied: [[0], [0], [0], [0], [0]], bytes: pagesOf(5, 5) } as unknown as MeshMessage).back as unknown as { bytes: Uint8Array[] };
  assert.ok(lent.bytes[0]!.buffer !== firstBuffer, 'a lend\'s copies (which the engine may keep) are not in the replies\' buffer');
});
