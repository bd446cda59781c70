// The msgpack codec with its out-of-band payload: round trips through real frames.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeBody, encodeBody, type WireMessage } from '../../src/transport/codec.js';
import { FrameDecoder, FrameError, encodeFrameHeader, frameKinds } from '../../src/transport/frame.js';

function roundTrip(message: WireMessage): WireMessage {
  const { body, payload } = encodeBody(message);
  const header = encodeFrameHeader(frameKinds.message, body.byteLength, payload?.byteLength ?? 0);
  const frames = new FrameDecoder().push(Buffer.concat([header, body, payload ?? new Uint8Array(0)]));
  assert.equal(frames.length, 1);
  return decodeBody(frames[0]!.body, frames[0]!.payload);
}

test('nested objects, arrays, Uint8Array fields, BigInt and a page payload round-trip', () => {
  const page = new Uint8Array(4096).map((_, i) => i & 0xff);
  const message: WireMessage = {
    type: 'diff', page: 7, ok: true, name: 'x', ratio: 0.5, big: 1n << 60n,
    notices: [{ node: 1, interval: 3, pages: [1, 2, 3] }], nested: { twin: new Uint8Array([1, 2, 3]) }, payload: page,
  };
  const back = roundTrip(message);
  assert.equal(back.type, 'diff');
  assert.equal(back.big, 1n << 60n);
  assert.deepEqual(back.notices, message.notices);
  assert.ok((back.nested as { twin: unknown }).twin instanceof Uint8Array);
  assert.deepEqual([...(back.nested as { twin: Uint8Array }).twin], [1, 2, 3]);
  assert.ok(back.payload instanceof Uint8Array);
  assert.deepEqual(Buffer.from(back.payload), Buffer.from(page));
});

test('a message without a payload has none after decoding', () => {
  assert.deepEqual(roundTrip({ type: 'ack', n: 1 }), { type: 'ack', n: 1 });
});

test('the payload arrives as a view of the received bytes, not a copy', () => {
  const { body } = encodeBody({ type: 'page' });
  const payload = new Uint8Array(4096).fill(5);
  const wire = Buffer.concat([encodeFrameHeader(frameKinds.message, body.byteLength, payload.byteLength), body, payload]);
  const frame = new FrameDecoder().push(wire)[0]!;
  const message = decodeBody(frame.body, frame.payload);
  assert.equal(message.payload!.buffer, wire.buffer);
});

test('bodies that are not a message with a string type are FrameErrors', () => {
  const empty = new Uint8Array(0);
  assert.throws(() => decodeBody(encodeBody({ type: 'x' }).body.subarray(0, 3), empty), FrameError);
  assert.throws(() => decodeBody(new Uint8Array([0xc1]), empty), FrameError);
  assert.throws(() => decodeBody(new Uint8Array([0x2a]), empty), /string `type`/);
});

test('arbitrary JSON-like messages round-trip (property)', () => {
  // `__proto__` keys, at any depth, are not round-tripped on purpose: the
  // decoder never lets a peer set a prototype (JSON.parse would keep the key).
  const noProto = (value: unknown) => !JSON.stringify(value).includes('"__proto__"');
  fc.assert(fc.property(fc.dictionary(fc.string().filter((key) => key !== 'type' && key !== 'payload'), fc.jsonValue()).filter(noProto), fc.string(), (fields, type) => {
    const message = { ...fields, type } as WireMessage;
    assert.deepEqual(roundTrip(message), JSON.parse(JSON.stringify(message)));
  }), { numRuns: 300, seed: 20261122 });
});
