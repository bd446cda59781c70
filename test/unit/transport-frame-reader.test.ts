// FrameReader: frames parsed in place from the buffer a socket reads into (net.Socket's onread), as a socket
// would drive it: each read fills at most the buffer nextBuffer() lent, then received(count, buffer).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameReader } from '../../src/transport/frame-reader.js';
import { type Frame, FrameError, encodeFrameHeader, frameKinds } from '../../src/transport/frame.js';
import { decodeBody, encodeBody } from '../../src/transport/codec.js';
import { frameBytesMax, receiveBufferBytes, receiveDirectBytesMin } from '../../src/constants.js';

function frameOf(message: { type: string; payload?: Uint8Array; [k: string]: unknown }): Buffer {
  const { body, payload } = encodeBody(message);
  const header = encodeFrameHeader(frameKinds.message, body.byteLength, payload?.byteLength ?? 0);
  return Buffer.concat([header, body, payload ?? new Uint8Array(0)]);
}

/** Feeds `stream` to a reader in reads of at most `readBytes(i)` bytes (and at most what the lent buffer holds); returns the frames and the buffers lent. */
function readAll(stream: Buffer, readBytes: (readIndex: number) => number, scratchBytes?: number): { frames: Frame[]; lent: Buffer[]; reader: FrameReader } {
  const frames: Frame[] = [];
  const lent: Buffer[] = [];
  const reader = new FrameReader(frameBytesMax, (frame) => frames.push(frame), scratchBytes);
  let at = 0;
  for (let index = 0; at < stream.length; index += 1) {
    assert.ok(index < 10_000_000, 'bounded');
    const buffer = reader.nextBuffer();
    lent.push(buffer);
    const count = Math.min(buffer.length, stream.length - at, Math.max(1, readBytes(index)));
    stream.copy(buffer, 0, at, at + count);
    at += count;
    reader.received(count, buffer);
  }
  return { frames, lent, reader };
}

const messages = [
  { type: 'fetch', page: 7, vector: [1, 2, 3] },
  { type: 'page', page: 7, payload: new Uint8Array(4096).fill(9) },
  { type: 'big', n: 2n ** 60n, nested: { a: [true, null, 'x'] } },
];

function checkDecoded(frames: Frame[]): void {
  assert.equal(frames.length, 3);
  const decoded = frames.map((frame) => decodeBody(frame.body, frame.payload));
  assert.deepEqual(decoded[0], messages[0]);
  assert.equal(decoded[1]!.payload!.length, 4096);
  assert.deepEqual([...new Set(decoded[1]!.payload!)], [9]);
  assert.equal(decoded[2]!.n, 2n ** 60n);
  assert.deepEqual(decoded[2]!.nested, { a: [true, null, 'x'] });
}

test('frames split at every byte boundary across two reads decode to the same messages', () => {
  const stream = Buffer.concat(messages.map(frameOf));
  for (let split = 1; split < stream.length; split += 1) {
    const { frames, reader } = readAll(stream, (index) => (index === 0 ? split : stream.length));
    checkDecoded(frames);
    assert.equal(reader.pendingBytes, 0);
  }
});

test('one byte a read, and many frames in one read', () => {
  const stream = Buffer.concat(Array.from({ length: 50 }, (_, i) => frameOf({ type: 't', i })));
  assert.equal(readAll(stream, () => 1).frames.length, 50);
  const { frames, lent } = readAll(stream, () => stream.length);
  assert.equal(lent.length, 1, 'all in one read');
  assert.deepEqual(frames.map((frame) => decodeBody(frame.body, frame.payload).i), Array.from({ length: 50 }, (_, i) => i));
});

test('a delivered frame keeps its bytes when the read buffer is read into again', () => {
  const stream = Buffer.concat([frameOf({ type: 'a', bytes: new Uint8Array(100).fill(1), payload: new Uint8Array(300).fill(2) }), frameOf({ type: 'b', payload: new Uint8Array(300).fill(3) })]);
  const { frames, lent } = readAll(stream, () => 600);
  assert.equal(lent[0], lent[1], 'the same scratch buffer for both reads');
  lent[0]!.fill(0xee);
  const first = decodeBody(frames[0]!.body, frames[0]!.payload);
  assert.deepEqual([...new Set(first.bytes as Uint8Array)], [1]);
  assert.deepEqual([...new Set(first.payload!)], [2]);
  assert.deepEqual([...new Set(decodeBody(frames[1]!.body, frames[1]!.payload).payload!)], [3]);
  for (const frame of frames) {
    assert.equal(frame.payload.byteOffset, 0);
    assert.equal(frame.payload.buffer.byteLength, frame.payload.byteLength, 'a payload alone in its ArrayBuffer (transferable)');
  }
});

test("page replies' bodies share a receive slab, and each keeps its bytes while later ones are read", () => {
  const pageReply = (i: number) => ({ type: 'pageReply', page: i, version: [i, 0], bytes: new Uint8Array(4096).fill(i), extraPages: [], extraVersions: [], extraBytes: [] });
  const count = 40;
  const stream = Buffer.concat(Array.from({ length: count }, (_, i) => frameOf(pageReply(i))));
  for (const readBytes of [stream.length, 5000, 777]) {
    const { frames, lent } = readAll(stream, () => readBytes);
    assert.equal(frames.length, count);
    for (const buffer of lent) buffer.fill(0xee);
    const slabs = new Set(frames.map((frame) => frame.body.buffer));
    if (readBytes === stream.length) assert.ok(slabs.size < count / 4, `bodies share slabs (${slabs.size} for ${count} replies)`);
    frames.forEach((frame, i) => {
      const message = decodeBody(frame.body, frame.payload);
      assert.equal(message.page, i);
      assert.deepEqual([...new Set(message.bytes as Uint8Array)], [i], `reply ${i} keeps its page`);
    });
  }
});

test('a frame larger than the read buffer is read straight into its own buffers, and what follows it is not', () => {
  const payload = new Uint8Array(300 * 1024).map((_, i) => (i * 13) & 0xff);
  const stream = Buffer.concat([frameOf({ type: 'post', spawnId: '0:1', payload }), frameOf({ type: 'next', i: 1 })]);
  const { frames, lent, reader } = readAll(stream, () => receiveBufferBytes);
  assert.equal(frames.length, 2);
  const received = frames[0]!.payload;
  assert.equal(received.buffer.byteLength, payload.byteLength, 'the payload is its buffer, whole');
  assert.deepEqual(Buffer.from(received), Buffer.from(payload));
  assert.equal(decodeBody(frames[0]!.body, received).spawnId, '0:1');
  assert.deepEqual(decodeBody(frames[1]!.body, frames[1]!.payload), { type: 'next', i: 1 });
  const direct = lent.filter((buffer) => buffer.buffer === received.buffer);
  assert.ok(direct.length >= 3, `most of the payload was read in place (${direct.length} direct reads of ${lent.length})`);
  for (const buffer of direct) assert.ok(buffer.length >= receiveDirectBytesMin, 'only a rest worth a read of its own is read in place');
  assert.equal(reader.pendingBytes, 0);
});

test('random frame streams in random reads: every frame, in order, whole', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ n: fc.nat(), bytes: fc.nat({ max: 3000 }), payload: fc.oneof(fc.constant(0), fc.nat({ max: 100_000 })) }), { minLength: 1, maxLength: 12 }),
    fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 20 }),
    fc.integer({ min: 16, max: 2048 }),
    (specs, reads, scratchBytes) => {
      const sent = specs.map((spec, i) => ({ type: 'm', i, n: spec.n, bytes: new Uint8Array(spec.bytes).fill(i & 0xff), ...(spec.payload > 0 ? { payload: new Uint8Array(spec.payload).fill((i * 7) & 0xff) } : {}) }));
      const stream = Buffer.concat(sent.map(frameOf));
      const { frames, reader } = readAll(stream, (index) => reads[index % reads.length]!, scratchBytes);
      assert.equal(frames.length, sent.length);
      frames.forEach((frame, i) => {
        const message = decodeBody(frame.body, frame.payload);
        assert.equal(message.i, i);
        assert.equal(message.n, sent[i]!.n);
        assert.equal((message.bytes as Uint8Array).length, sent[i]!.bytes.length);
        assert.equal(message.payload?.length ?? 0, sent[i]!.payload?.length ?? 0);
        if (message.payload !== undefined) assert.equal(message.payload[message.payload.length - 1], (i * 7) & 0xff);
      });
      assert.equal(reader.pendingBytes, 0);
    },
  ), { numRuns: 200, seed: 22 });
});

test('malformed and oversize headers are FrameErrors, also when the header is cut by a read; nothing is delivered after stop()', () => {
  const read = (stream: Buffer, first: number, limit = frameBytesMax) => {
    const reader = new FrameReader(limit, () => {});
    const buffer = reader.nextBuffer();
    stream.copy(buffer, 0, 0, first);
    reader.received(first, buffer);
    const rest = reader.nextBuffer();
    stream.copy(rest, 0, first);
    reader.received(stream.length - first, rest);
  };
  const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  for (const first of [1, 5, 15, 16, 20]) assert.throws(() => read(garbage, first), (e: Error) => e instanceof FrameError && /bad magic 0x47455420/.test(e.message));
  const oversize = encodeFrameHeader(frameKinds.message, 0, 0);
  oversize.writeUInt32BE(5000, 8);
  assert.throws(() => read(oversize, 7, 4096), /frame of 5016 bytes exceeds the maximum of 4096/);
  const unknownKind = encodeFrameHeader(frameKinds.message, 0, 0);
  unknownKind.writeUInt8(99, 5);
  assert.throws(() => read(unknownKind, 3), /unknown frame kind 99/);

  const frames: Frame[] = [];
  const reader = new FrameReader(frameBytesMax, (frame) => {
    frames.push(frame);
    reader.stop();
  });
  const two = Buffer.concat([frameOf({ type: 'a' }), frameOf({ type: 'b' })]);
  const buffer = reader.nextBuffer();
  two.copy(buffer);
  reader.received(two.length, buffer);
  assert.equal(frames.length, 1, 'the frame after stop() is not delivered');
});

test('a heartbeat (a bare header) is delivered whole, also when its header is cut', () => {
  const beat = encodeFrameHeader(frameKinds.heartbeat, 0, 0);
  const stream = Buffer.concat([beat, beat, frameOf({ type: 'x' })]);
  for (const size of [1, 3, 16, 17, 40]) {
    const { frames } = readAll(stream, () => size);
    assert.deepEqual(frames.map((frame) => frame.kind), [frameKinds.heartbeat, frameKinds.heartbeat, frameKinds.message]);
    assert.equal(frames[0]!.body.byteLength + frames[0]!.payload.byteLength, 0);
  }
});

test('random garbage in random reads never throws anything but a FrameError', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
    const reader = new FrameReader(4096, (frame) => { decodeBody(frame.body, frame.payload); }, 32);
    try {
      for (const chunk of chunks) {
        let at = 0;
        while (at < chunk.length) {
          const buffer = reader.nextBuffer();
          const count = Math.min(buffer.length, chunk.length - at);
          buffer.set(chunk.subarray(at, at + count));
          at += count;
          reader.received(count, buffer);
        }
      }
    } catch (error) {
      assert.ok(error instanceof FrameError, `unexpected ${String(error)}`);
    }
  }), { numRuns: 1000, seed: 15 });
});

test('page replies\' payloads are read into one reply buffer, reused from reply to reply and whole at each delivery; other payloads get buffers of their own (session 26)', () => {
  // Compact page replies of the lengths form (their copies are the payload), as toWire makes them, and a
  // non-reply message with a payload between them.
  const reply = (page: number, pages: number): { type: string; payload: Uint8Array; [k: string]: unknown } => ({
    type: 'pageReply', page, version: [1, 0], bytes: 4096, extraPages: Array.from({ length: pages - 1 }, (_, k) => page + 1 + k),
    extraVersions: Array.from({ length: pages - 1 }, () => [1, 0]), extraBytes: Array.from({ length: pages - 1 }, () => 4096),
    payload: new Uint8Array(pages * 4096).map((_, i) => (page * 7 + i) & 0xff),
  });
  const sent = [reply(10, 16), { type: 'page', page: 3, payload: new Uint8Array(40_000).fill(5) }, reply(40, 3), reply(50, 64), reply(200, 1)];
  const stream = Buffer.concat(sent.map(frameOf));
  for (const split of [1, 7, 4096, 9000, 65536, stream.length]) {
    const seen: Array<{ type: string; whole: boolean; buffer: ArrayBufferLike }> = [];
    const reader = new FrameReader(frameBytesMax, (frame) => {
      // Checked while it is delivered: the contract is that the payload is whole until onFrame returns.
      const message = decodeBody(frame.body, frame.payload);
      const expected = sent[seen.length]!.payload;
      seen.push({ type: message.type, whole: Buffer.compare(Buffer.from(frame.payload), Buffer.from(expected)) === 0, buffer: frame.payload.buffer });
    });
    let at = 0;
    for (let index = 0; at < stream.length; index += 1) {
      const buffer = reader.nextBuffer();
      const count = Math.min(buffer.length, stream.length - at, split);
      stream.copy(buffer, 0, at, at + count);
      at += count;
      reader.received(count, buffer);
    }
    assert.deepEqual(seen.map((s) => s.type), ['pageReply', 'page', 'pageReply', 'pageReply', 'pageReply'], `split ${split}`);
    assert.ok(seen.every((s) => s.whole), `every payload whole at its delivery (split ${split})`);
    assert.ok(seen[0]!.buffer === seen[2]!.buffer, `the replies share the reply buffer (split ${split})`);
    assert.ok(seen[3]!.buffer === seen[4]!.buffer, `grown for the 64-page reply, then kept (split ${split})`);
    assert.ok(seen[1]!.buffer !== seen[0]!.buffer && seen[1]!.buffer !== seen[3]!.buffer, `another message's payload has its own buffer (split ${split})`);
  }
});
