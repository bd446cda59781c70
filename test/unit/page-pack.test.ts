import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativePacking, packCopy, packWords, unpackCopy, unpackWords } from '../../src/runtime/page-pack.js';
import { fromWire, toWire, type MeshMessage } from '../../src/runtime/envelope.js';
import { decodeBody, encodeBody, type WireMessage } from '../../src/transport/codec.js';
import { FrameDecoder, FrameError, encodeFrameHeader, frameKinds } from '../../src/transport/frame.js';

/** A seeded generator (xorshift32), so a failure names its case. */
function random(seed: number): () => number {
  let x = seed | 1;
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32; };
}

function roundTrip(page: Uint8Array): number {
  const out = new Uint8Array(page.length + 16).fill(0xaa);
  const end = packWords(page, out, 16);
  if (end < 0) return -1;
  const back = new Uint8Array(page.length).fill(0x55);
  unpackWords(out.subarray(16, end), back);
  assert.deepEqual(Buffer.from(back), Buffer.from(page));
  return end - 16;
}

test('a page of small Int32s packs to about a third, and unpacks to the same bytes', () => {
  const next = random(1);
  const page = new Int32Array(1024).map(() => Math.floor(next() * 10));
  const packed = roundTrip(new Uint8Array(page.buffer));
  assert.ok(packed > 0 && packed < 4096 * 0.4, `packed ${packed} bytes`);
});

test('a zero page packs to a few bytes; a page of doubles or random bytes goes raw', () => {
  assert.ok(roundTrip(new Uint8Array(4096)) <= 8);
  const next = random(2);
  assert.equal(roundTrip(new Uint8Array(new Float64Array(512).map((_, k) => Math.sin(k + next())).buffer)), -1);
  assert.equal(roundTrip(new Uint8Array(4096).map(() => 1 + Math.floor(next() * 255))), -1);
  assert.equal(roundTrip(new Uint8Array(64)), -1, 'too small to pack');
});

test('every mix of zero, sparse, dense and one-zero words round-trips (10,000 seeded pages)', () => {
  let packedCount = 0;
  for (let seed = 1; seed <= 10_000; seed++) {
    const next = random(seed);
    const length = 8 * (16 + Math.floor(next() * 1009));
    const page = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      // Runs of one kind of word, long enough to cross the 255-word run limit now and then.
      const kind = Math.floor(next() * 4);
      const words = Math.min((length - at) / 8, 1 + Math.floor(next() * (next() < 0.1 ? 600 : 8)));
      for (let w = 0; w < words; w++, at += 8) {
        for (let b = 0; b < 8; b++) {
          const nonZero = kind === 1 ? next() < 0.3 : kind === 2 ? true : kind === 3 ? b !== Math.floor(next() * 8) : false;
          page[at + b] = nonZero ? 1 + Math.floor(next() * 255) : 0;
        }
      }
    }
    if (roundTrip(page) >= 0) packedCount++;
  }
  assert.ok(packedCount > 1000, `some pack (${packedCount})`);
});

test('a malformed packed copy is a FrameError, never bytes past its length', () => {
  const out = new Uint8Array(4096);
  assert.throws(() => unpackWords(new Uint8Array([0, 255]), new Uint8Array(64)), FrameError, 'a zero run past the end');
  assert.throws(() => unpackWords(new Uint8Array([0xff, 1, 2, 3]), out), FrameError, 'a raw word cut short');
  assert.throws(() => unpackWords(new Uint8Array([3, 1]), out), FrameError, 'a tag without its bytes');
  assert.throws(() => unpackWords(new Uint8Array([0, 0, 0, 0, 9]), new Uint8Array(16)), /past its end/);
  assert.throws(() => unpackWords(new Uint8Array([0, 0]), new Uint8Array(12)), FrameError, 'whole words only');
});

function overTheWire(message: MeshMessage): { back: WireMessage; wireBytes: number } {
  const { body, payload } = encodeBody(toWire(message));
  const wire = Buffer.concat([encodeFrameHeader(frameKinds.message, body.byteLength, payload?.byteLength ?? 0), body, payload ?? new Uint8Array(0)]);
  const frame = new FrameDecoder().push(wire)[0]!;
  return { back: fromWire(decodeBody(frame.body, frame.payload)), wireBytes: wire.byteLength };
}

test('page copies go packed where it pays, raw where not, and the engine sees whole pages', () => {
  const next = random(3);
  const small = new Uint8Array(new Int32Array(1024).map(() => Math.floor(next() * 10)).buffer);
  const doubles = new Uint8Array(new Float64Array(512).map((_, k) => Math.sin(k + next())).buffer);
  const zero = new Uint8Array(4096);
  const message: MeshMessage = { type: 'pageReply', page: 5, version: [1, 0], bytes: small, extraPages: [6, 7], extraVersions: [[1, 0], [0, 1]], extraBytes: [doubles, zero] };
  const { back, wireBytes } = overTheWire(message);
  assert.ok(wireBytes < 4096 + 1600 + 300, `${wireBytes} bytes on the wire`);
  assert.equal('packed' in back, false, 'the engine never sees the packed field');
  const reply = back as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
  assert.deepEqual([reply.bytes, ...reply.extraBytes].map((view) => Buffer.from(view)), [small, doubles, zero].map((view) => Buffer.from(view)));
  const grant: MeshMessage = { type: 'lockGrant', lockId: 1, requestId: 2, granted: true, info: { vc: [0, 1], known: [0, 1], intervals: [] }, pushPages: [3, 4], pushVersions: [[0, 1], [0, 1]], pushBytes: [small, zero], pushApplied: [0, 0] };
  const { back: back2, wireBytes: grantBytes } = overTheWire(grant);
  assert.ok(grantBytes < 1600 + 200, `${grantBytes} bytes`);
  assert.deepEqual((back2 as unknown as Extract<MeshMessage, { type: 'lockGrant' }>).pushBytes!.map((view) => Buffer.from(view)), [small, zero].map((view) => Buffer.from(view)));
  // A worker's bytes are never packed (they are handed on by transfer).
  const post: MeshMessage = { type: 'rtPost', spawnId: '0:1', bytes: zero, info: { vc: [0], known: [0], intervals: [] } };
  assert.equal(toWire(post), post);
});

test('pages that pack small stay in the body (no payload), packed; a message of one page goes as it is', () => {
  const page = new Uint8Array(4096);
  page[0] = 7;
  const one: MeshMessage = { type: 'pageReply', page: 5, version: [1], bytes: page, extraPages: [], extraVersions: [], extraBytes: [] };
  assert.equal(toWire(one), one);
  const message: MeshMessage = { type: 'pageReply', page: 5, version: [1], bytes: page, extraPages: [6], extraVersions: [[1]], extraBytes: [page] };
  const { body, payload } = encodeBody(toWire(message));
  assert.equal(payload, null);
  assert.ok(body.byteLength < 150, `${body.byteLength} bytes for two pages`);
  const back = overTheWire(message).back as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
  assert.deepEqual([back.bytes, ...back.extraBytes].map((view) => Buffer.from(view)), [page, page].map((view) => Buffer.from(view)));
  assert.equal('packed' in back, false);
});

test('a packed field the receiver cannot trust is a FrameError', () => {
  const lengths = (packed: unknown): WireMessage => ({ type: 'pageReply', page: 1, version: [1], bytes: 2, extraPages: [], extraVersions: [], extraBytes: [], packed, payload: new Uint8Array([0, 255]) });
  assert.deepEqual([...(fromWire(lengths([2048])) as unknown as { bytes: Uint8Array }).bytes], new Array(2048).fill(0));
  assert.throws(() => fromWire(lengths([2047])), FrameError, 'whole words');
  assert.throws(() => fromWire(lengths([1 << 30])), FrameError, 'at most a frame');
  assert.throws(() => fromWire(lengths([2048, 8])), /names 2 packed copies for its 1/);
  assert.throws(() => fromWire(lengths('x')), FrameError);
  // In the body (a small message): the same checks.
  assert.throws(() => fromWire({ type: 'pageReply', page: 1, version: [1], bytes: new Uint8Array(8), extraPages: [], extraVersions: [], extraBytes: [], packed: [8] }), /past its end/);
  assert.throws(() => fromWire({ type: 'pageReply', page: 1, version: [1], bytes: 'x', extraPages: [], extraVersions: [], extraBytes: [], packed: [8] }), /must be a packed copy's bytes/);
  assert.throws(() => fromWire({ type: 'pageReply', page: 1, version: [1], bytes: new Uint8Array([0, 0]), extraPages: [], extraVersions: [], extraBytes: [], packed: [8, 8] }), /names 2 packed copies for its 1/);
  assert.throws(() => fromWire({ type: 'rtPost', spawnId: '0:1', bytes: 2, info: { vc: [0], intervals: [] }, packed: [8], payload: new Uint8Array([0, 0]) }), /carries no packed copies/);
});

/** A seeded page of runs of zero, sparse, dense and one-zero words (the mix the round-trip test uses). */
function mixedPage(next: () => number, length: number): Uint8Array {
  const page = new Uint8Array(length);
  let at = 0;
  while (at < length) {
    const kind = Math.floor(next() * 5);
    const words = Math.min((length - at) / 8, 1 + Math.floor(next() * (next() < 0.1 ? 600 : 8)));
    for (let w = 0; w < words; w++, at += 8) {
      for (let b = 0; b < 8; b++) {
        // kind 4: a word of small ints (a non-zero low byte per Int32), Jacobi's and matmul's pages.
        const nonZero = kind === 1 ? next() < 0.3 : kind === 2 ? true : kind === 3 ? b !== Math.floor(next() * 8) : kind === 4 ? b % 4 === 0 : false;
        page[at + b] = nonZero ? 1 + Math.floor(next() * 255) : 0;
      }
    }
  }
  return page;
}

test('the native packer writes the reference bytes and unpacks what it unpacks (5,000 seeded copies)', () => {
  assert.ok(nativePacking || process.platform !== 'linux', 'the addon packs on Linux');
  for (let seed = 1; seed <= 5_000; seed++) {
    const next = random(seed);
    // Some copies under the 128-byte minimum, some past the 1 KiB probe, most page-sized.
    const length = 8 * (seed % 7 === 0 ? 1 + Math.floor(next() * 40) : seed % 3 === 0 ? 16 + Math.floor(next() * 1009) : 512);
    const page = mixedPage(next, length);
    const outAt = Math.floor(next() * 24);
    const reference = new Uint8Array(outAt + length);
    const native = new Uint8Array(outAt + length);
    const end = packWords(page, reference, outAt);
    assert.equal(packCopy(page, native, outAt), end, `seed ${seed}: the same end`);
    if (end < 0) continue;
    assert.deepEqual(Buffer.from(native.subarray(outAt, end)), Buffer.from(reference.subarray(outAt, end)), `seed ${seed}: the same bytes`);
    const back = new Uint8Array(length).fill(0x55);
    unpackCopy(native.subarray(outAt, end), back);
    assert.deepEqual(Buffer.from(back), Buffer.from(page), `seed ${seed}: unpacked`);
    const zeroed = new Uint8Array(length);
    unpackCopy(native.subarray(outAt, end), zeroed, true);
    assert.deepEqual(Buffer.from(zeroed), Buffer.from(page), `seed ${seed}: unpacked into zeros`);
  }
});

test('the native unpacker refuses what the reference refuses, with its FrameError (cut, padded and flipped copies)', () => {
  let refused = 0;
  for (let seed = 1; seed <= 3_000; seed++) {
    const next = random(seed);
    const page = mixedPage(next, 8 * (16 + Math.floor(next() * 500)));
    const out = new Uint8Array(page.length);
    const end = packWords(page, out, 0);
    const packed = end < 0 ? new Uint8Array(page.length).fill(0) : out.slice(0, end);
    // One change: cut short, a byte more, or a byte flipped.
    const change = Math.floor(next() * 3);
    const at = Math.floor(next() * packed.length);
    const bad = change === 0 ? packed.subarray(0, at) : change === 1 ? Buffer.concat([packed, new Uint8Array([Math.floor(next() * 256)])]) : packed.map((v, k) => (k === at ? v ^ (1 + Math.floor(next() * 255)) : v));
    const outLength = next() < 0.1 ? page.length - 4 : page.length;
    let expected: unknown = null;
    try { unpackWords(bad, new Uint8Array(outLength)); } catch (error) { expected = error; }
    let actual: unknown = null;
    const native = new Uint8Array(outLength);
    try { unpackCopy(bad, native); } catch (error) { actual = error; }
    if (expected === null) {
      assert.equal(actual, null, `seed ${seed}: the native unpacker took it too`);
      const reference = new Uint8Array(outLength);
      unpackWords(bad, reference);
      assert.deepEqual(Buffer.from(native), Buffer.from(reference), `seed ${seed}: the same bytes`);
    } else {
      refused++;
      assert.ok(actual instanceof FrameError, `seed ${seed}: a FrameError`);
      assert.equal((actual as Error).message, (expected as Error).message, `seed ${seed}: the same reason`);
    }
  }
  assert.ok(refused > 1000, `most changes are refused (${refused})`);
});

test('packed copies left in the body are views of a scratch buffer (no copy out), encoded before the next toWire reuses it', () => {
  const pageOf = (fill: number): Uint8Array => {
    const page = new Uint8Array(4096);
    for (let k = 0; k < 4096; k += 64) page[k] = fill;
    return page;
  };
  const messageOf = (fill: number): MeshMessage => ({ type: 'pageReply', page: 5, version: [1], bytes: pageOf(fill), extraPages: [6], extraVersions: [[1]], extraBytes: [pageOf(fill + 1)] });
  const wire = toWire(messageOf(1)) as unknown as { bytes: Uint8Array; extraBytes: Uint8Array[] };
  assert.equal(wire.bytes.buffer, wire.extraBytes[0]!.buffer, 'both copies view one scratch buffer');
  assert.ok(wire.bytes.buffer.byteLength > wire.bytes.byteLength + wire.extraBytes[0]!.byteLength, 'a view of a larger buffer, not a copy of its own');
  // Encoded at once, as MeshNetwork.send does: a later toWire rewrites the scratch buffer, not the frame.
  const first = encodeBody(toWire(messageOf(1)));
  const second = encodeBody(toWire(messageOf(3)));
  for (const [{ body, payload }, fill] of [[first, 1], [second, 3]] as const) {
    assert.equal(payload, null);
    const back = fromWire(decodeBody(body, new Uint8Array(0))) as unknown as Extract<MeshMessage, { type: 'pageReply' }>;
    assert.deepEqual([back.bytes, ...back.extraBytes].map((view) => Buffer.from(view)), [pageOf(fill), pageOf(fill + 1)].map((view) => Buffer.from(view)));
  }
});
