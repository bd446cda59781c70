import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameDecoder, FrameError, encodeFrameHeader, frameKinds, wireVersion } from '../../src/transport/frame.js';
import { decodeBody, encodeBody } from '../../src/transport/codec.js';
import { frameBytesMax } from '../../src/constants.js';

function frameOf(message: { type: string; payload?: Uint8Array; [k: string]: unknown }): Buffer {
  const { body, payload } = encodeBody(message);
  const header = encodeFrameHeader(frameKinds.message, body.byteLength, payload?.byteLength ?? 0);
  return Buffer.concat([header, body, payload ?? new Uint8Array(0)]);
}

test('frames split at every byte boundary decode to the same messages', () => {
  const messages = [
    { type: 'fetch', page: 7, vector: [1, 2, 3] },
    { type: 'page', page: 7, payload: new Uint8Array(4096).fill(9) },
    { type: 'big', n: 2n ** 60n, nested: { a: [true, null, 'x'] } },
  ];
  const stream = Buffer.concat(messages.map(frameOf));
  for (let split = 0; split <= stream.length; split += 97) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(stream.subarray(0, split)), ...decoder.push(stream.subarray(split))];
    assert.equal(frames.length, 3);
    const decoded = frames.map((frame) => decodeBody(frame.body, frame.payload));
    assert.deepEqual(decoded[0], messages[0]);
    assert.equal(decoded[1]!.payload!.length, 4096);
    assert.equal(decoded[1]!.payload![4095], 9);
    assert.equal(decoded[2]!.n, 2n ** 60n);
    assert.deepEqual(decoded[2]!.nested, { a: [true, null, 'x'] });
  }
});

test('one byte at a time and many frames per chunk', () => {
  const stream = Buffer.concat(Array.from({ length: 50 }, (_, i) => frameOf({ type: 't', i })));
  const decoder = new FrameDecoder();
  let count = 0;
  for (const byte of stream) count += decoder.push(Buffer.of(byte)).length;
  assert.equal(count, 50);
  assert.equal(new FrameDecoder().push(stream).length, 50);
});

test('foreign, oversize and malformed frames are FrameErrors naming the problem', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), (e: Error) => e instanceof FrameError && /bad magic/.test(e.message));
  const oversize = encodeFrameHeader(frameKinds.message, 0, 0);
  oversize.writeUInt32BE(frameBytesMax, 8);
  assert.throws(() => new FrameDecoder().push(oversize), /exceeds the maximum/);
  const unknownKind = encodeFrameHeader(frameKinds.message, 0, 0);
  unknownKind.writeUInt8(99, 5);
  assert.throws(() => new FrameDecoder().push(unknownKind), /unknown frame kind 99/);
  const badBody = Buffer.concat([encodeFrameHeader(frameKinds.message, 1, 0), Buffer.of(0xc1)]);
  const [frame] = new FrameDecoder().push(badBody);
  assert.throws(() => decodeBody(frame!.body, frame!.payload), FrameError);
  assert.throws(() => decodeBody(encodeBody({ type: 'x' }).body.subarray(0, 0), new Uint8Array(0)), FrameError);
});

test('random garbage never throws anything but a FrameError', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
    const decoder = new FrameDecoder();
    try {
      for (const chunk of chunks) {
        for (const frame of decoder.push(Buffer.from(chunk))) decodeBody(frame.body, frame.payload);
      }
    } catch (error) {
      assert.ok(error instanceof FrameError, `unexpected ${String(error)}`);
    }
  }), { numRuns: 500, seed: 7 });
});

test('a frame that spans chunks: copied once, its payload alone in an ArrayBuffer of its own, the chunks let go as they are copied', () => {
  const payload = new Uint8Array(200 * 1024).map((_, i) => (i * 13) & 0xff);
  const large = frameOf({ type: 'post', spawnId: '0:1', payload });
  const small = frameOf({ type: 'next', i: 1 });
  const stream = Buffer.concat([large, small]);
  const chunkBytes = 64 * 1024;
  const decoder = new FrameDecoder();
  const frames = [];
  for (let at = 0; at < stream.length; at += chunkBytes) {
    frames.push(...decoder.push(stream.subarray(at, at + chunkBytes)));
    // Each chunk's bytes of the large frame are in its buffers already: no chunk waits for the rest of the frame.
    const held = (decoder as unknown as { chunks: Buffer[] }).chunks;
    assert.equal(held.length, 0, `after the chunk at ${at}: no chunk held`);
  }
  assert.equal(frames.length, 2);
  const received = frames[0]!.payload;
  assert.equal(received.byteOffset, 0, 'the payload starts its buffer');
  assert.equal(received.buffer.byteLength, payload.byteLength, 'the payload is its buffer, whole: transferable without taking anything else along');
  assert.deepEqual(Buffer.from(received), Buffer.from(payload));
  assert.equal(decodeBody(frames[0]!.body, received).spawnId, '0:1');
  assert.deepEqual(decodeBody(frames[1]!.body, frames[1]!.payload), { type: 'next', i: 1 });
  assert.equal(decoder.pendingBytes, 0);
});

test('a header cut by a read is read across chunks without joining what follows', () => {
  const large = frameOf({ type: 'post', payload: new Uint8Array(100 * 1024).fill(4) });
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(large.subarray(0, 5)), []);
  assert.deepEqual(decoder.push(large.subarray(5, 64 * 1024)), []);
  assert.equal(decoder.pendingBytes, 64 * 1024);
  const [frame] = decoder.push(large.subarray(64 * 1024));
  assert.equal(frame!.payload.byteLength, 100 * 1024);
  assert.equal(frame!.payload.buffer.byteLength, 100 * 1024);
  assert.deepEqual([...new Set(frame!.payload)], [4]);
});

test('a frame of the previous wire version is refused naming both versions (session 14: compact lock and barrier messages made wire 4, compact page messages wire 5, batched byte arrays wire 6, a grant waiter list wire 7, the heap lane gather wire 8, masked diff runs wire 9, answered collection asks wire 10, read copies of lines wire 11, copies ahead wire 12, held-range trailers of clones wire 13, applied counts of pushed copies wire 14, pushed copies in compact line messages wire 15)', () => {
  assert.equal(wireVersion, 15);
  const frame = frameOf({ type: 'pageRequest', page: 1, need: [], extraPages: [], extraNeeds: [] });
  frame[4] = wireVersion - 1;
  assert.throws(() => new FrameDecoder().push(frame), (error: unknown) => error instanceof FrameError && /wire version 14, expected 15/.test(error.message));
});

test('a header written byte by byte reads back its kind and both lengths, at every byte boundary of a length', async () => {
  const { parseFrameHeader, writeFrameHeader, frameHeaderBytes } = await import('../../src/transport/frame.js');
  const lengths = [0, 1, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000, frameBytesMax - frameHeaderBytes];
  for (const bodyBytes of lengths) {
    for (const payloadBytes of lengths) {
      if (frameHeaderBytes + bodyBytes + payloadBytes > frameBytesMax) continue;
      const header = writeFrameHeader(Buffer.alloc(frameHeaderBytes, 0xee), frameKinds.message, bodyBytes, payloadBytes);
      assert.deepEqual(header.subarray(8), Buffer.from([...u32be(bodyBytes), ...u32be(payloadBytes)]));
      const parsed = parseFrameHeader(header, 0, frameBytesMax);
      assert.equal(parsed.kind, frameKinds.message);
      assert.equal(parsed.bodyBytes, bodyBytes);
      assert.equal(parsed.payloadBytes, payloadBytes);
    }
  }
  assert.throws(() => writeFrameHeader(Buffer.alloc(frameHeaderBytes), frameKinds.message, frameBytesMax, 0), FrameError);
});

function u32be(value: number): number[] {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return [...bytes];
}
