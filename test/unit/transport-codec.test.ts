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

test('the length guard passes everything dsm encodes (arbitrary values), and refuses length bombs before msgpackr allocates', async () => {
  const { scanMsgpack } = await import('../../src/transport/msgpack-scan.js');
  const leaf = fc.oneof(
    fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.string(), fc.string({ unit: 'grapheme' }),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), fc.uint8Array({ maxLength: 300 }),
  );
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 20 }), fc.dictionary(fc.string(), tie('node'), { maxKeys: 20 })),
  })).node;
  fc.assert(fc.property(value, (field) => {
    const { body } = encodeBody({ type: 'anything', field });
    assert.equal(scanMsgpack(body), null);
  }), { numRuns: 200 });
  // Every length width msgpack has (fix, 8, 16, 32 bits) for strings, binaries and arrays; msgpackr writes objects as map16 at most.
  for (const count of [15, 200, 70_000]) {
    const fields = {
      text: 'x'.repeat(count), bytes: new Uint8Array(count), list: new Array(count).fill(1),
      map: Object.fromEntries(Array.from({ length: Math.min(count, 60_000) }, (_, index) => [`k${index}`, index])),
    };
    assert.equal(scanMsgpack(encodeBody({ type: 'sizes', ...fields }).body), null, `lengths around ${count}`);
  }
  for (const bomb of [[0xdd, 0x02, 0, 0, 0], [0xdf, 0x01, 0, 0, 0], [0xdb, 0x7f, 0, 0, 0], [0xc6, 0x7f, 0, 0, 0], [0x91, 0x91, 0x91, 0xdc, 0xff, 0xff]]) {
    assert.throws(() => decodeBody(Uint8Array.from(bomb), new Uint8Array(0)), (error: Error) => error instanceof FrameError && /declares|truncated/.test(error.message));
  }
});
