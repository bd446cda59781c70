// The compact message layout (src/transport/compact.ts): the shipped op's
// lineOp and lineOpDone, a line transfer's and a lock's messages round-trip through real frames in it, anything outside its
// forms goes as msgpack, and a malformed compact body is a FrameError.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bodyDone, decodeBody, encodeBody, encodeBodyAfter, type WireMessage } from '../../src/transport/codec.js';
import { compactMarker, decodeCompact } from '../../src/transport/compact.js';
import { FrameDecoder, FrameError, frameHeaderBytes, frameKinds, writeFrameHeader } from '../../src/transport/frame.js';
import { corpusDigests, corpusEncodings, corpusMessages } from '../fixtures/compact-corpus.js';

/** The frame body as Connection sends it, and the message decoded from the frame. */
function roundTrip(message: WireMessage): { body: Uint8Array; back: WireMessage } {
  const frame = encodeBodyAfter(message, frameHeaderBytes);
  writeFrameHeader(frame, frameKinds.message, frame.byteLength - frameHeaderBytes, 0);
  const frames = new FrameDecoder().push(Buffer.from(frame));
  assert.equal(frames.length, 1);
  return { body: frames[0]!.body, back: decodeBody(frames[0]!.body, frames[0]!.payload) };
}

/** Plain data to compare: byte arrays (msgpack gives Buffers) as number arrays, objects with the plain prototype. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}

/** Each message goes compact, comes back equal, and is smaller than its msgpack form times `ratio`. */
function assertCompact(cases: WireMessage[], ratio = 1): void {
  for (const message of cases) {
    const { body, back } = roundTrip(message);
    assert.equal(body[0], compactMarker, `${message.type} is compact`);
    assert.deepEqual(plain(back), plain(message));
    const { body: msgpackBody } = roundTrip({ ...message, unknownField: 1 });
    assert.notEqual(msgpackBody[0], compactMarker);
    assert.ok(body.byteLength < msgpackBody.byteLength * ratio, `${message.type}: compact ${body.byteLength} B against msgpack ${msgpackBody.byteLength} B`);
  }
}

const info = { vc: [12, 300, 0], known: [12, 301, 5], intervals: [{ node: 1, index: 301, pages: [3, 70_000, 1 << 30] }, { node: 2, index: 5, pages: [] }] };
const lineOp: WireMessage = { type: 'lineOp', requestId: 77, op: 'compareExchange', address: 17 * 2 ** 32 + 8, width: 8, operands: ['-5', '18446744073709551615'], info };
const bundled = { interval: 301, pages: [4, 6], diffs: [new Uint8Array([1, 2, 3, 250]), new Uint8Array(0)] };

test('lineOp and lineOpDone round-trip in the compact layout, smaller than msgpack', () => {
  const cases: WireMessage[] = [
    lineOp,
    { ...lineOp, op: 'add', width: 4, operands: ['1'], bundled },
    { type: 'lineOpDone', requestId: 77, result: '41', info },
    { type: 'lineOpDone', requestId: 0, result: null, info: { vc: [], known: [], intervals: [] }, quiet: true },
    { type: 'lineRelease', line: 3, info, bundled },
    { type: 'lineRelease', line: 2 ** 40, info },
    { type: 'lineGrant', line: 9, recall: true, info, quiet: true },
    { type: 'lineGrant', line: 9, recall: false, info, waiting: [576, 576, 580] },
    { type: 'lineGrant', line: 9, recall: false, info },
  ];
  assertCompact(cases, 0.6);
  // The smallest: a line number and a flags byte or less, where msgpack spells the field names out.
  for (const message of [{ type: 'lineRequest', line: 70_000 }, { type: 'lineRecall', line: 1 }, { type: 'lineRelease', line: 5 }, { type: 'lineGrant', line: 5, recall: false }]) {
    const { body, back } = roundTrip(message);
    assert.equal(body[0], compactMarker, `${message.type} is compact`);
    assert.ok(body.byteLength <= 6, `${message.type}: ${body.byteLength} B`);
    assert.deepEqual(back, message);
  }
  const { back } = roundTrip({ ...lineOp, bundled });
  const diffs = (back.bundled as typeof bundled).diffs;
  assert.ok(diffs[0] instanceof Uint8Array && diffs[0].byteLength === 4);
});

const push = { pushPages: [7, 70_000], pushVersions: [[1, 0, 3], []], pushBytes: [new Uint8Array(4096).fill(7), new Uint8Array(12)], pushApplied: [2, 0] };

test('a line\'s shipped op, its answer and a release that push pages (wire version 15) round-trip in the compact layout', () => {
  assertCompact([
    { ...lineOp, ...push },
    { ...lineOp, bundled, ...push },
    { type: 'lineOpDone', requestId: 77, result: '41', info, ...push },
    { type: 'lineOpDone', requestId: 77, result: null, info, quiet: true, ...push },
    { type: 'lineRelease', line: 3, info, bundled, ...push },
    { type: 'lineRelease', line: 3, keepShare: true, ...push },
  ]);
  // Some of the four push fields but not all: msgpack, as for a grant.
  const { pushBytes: _bytes, ...partial } = push;
  for (const message of [{ ...lineOp, ...partial }, { type: 'lineOpDone', requestId: 1, result: null, info, ...partial }]) {
    const { body, back } = roundTrip(message);
    assert.notEqual(body[0], compactMarker, message.type);
    assert.deepEqual(plain(back), plain(message));
  }
});

test('read copies of a line (session 34): their messages and flags round-trip in the compact layout', () => {
  for (const message of [
    { type: 'lineShareRequest', line: 70_000 }, { type: 'lineInvalidate', line: 3 }, { type: 'lineInvalidated', line: 3 },
    { type: 'lineRecall', line: 9, share: true }, { type: 'lineShareGrant', line: 4 }, { type: 'lineRelease', line: 5, keepShare: true },
    { type: 'lineGrant', line: 5, recall: true, share: true },
  ]) {
    const { body, back } = roundTrip(message);
    assert.equal(body[0], compactMarker, `${message.type} is compact`);
    assert.ok(body.byteLength <= 6, `${message.type}: ${body.byteLength} B`);
    assert.deepEqual(back, message);
  }
  assertCompact([{ type: 'lineShareGrant', line: 4, info }, { type: 'lineRelease', line: 5, info, bundled, keepShare: true }, { type: 'lineGrant', line: 5, recall: true, share: true, info, quiet: true }]);
  // A flag set to anything but true, or a grant with pages pushed, goes as msgpack.
  for (const message of [{ type: 'lineRecall', line: 9, share: false }, { type: 'lineShareGrant', line: 4, info, ...push }]) {
    const { body, back } = roundTrip(message);
    assert.notEqual(body[0], compactMarker, message.type);
    assert.deepEqual(plain(back), plain(message));
  }
});

test('read copies ahead and many copies dropped at once (session 35): their lines round-trip compact', () => {
  const ahead = Array.from({ length: 63 }, (_, k) => 70_001 + k);
  for (const message of [
    { type: 'lineShareRequest', line: 70_000, ahead }, { type: 'lineShareRequest', line: 70_000, ahead: [] },
    { type: 'lineShareGrant', line: 70_000, ahead: [70_002, 70_063] }, { type: 'lineShareGrant', line: 70_000, ahead: [], aheadOnly: true },
  ]) {
    const { body, back } = roundTrip(message);
    assert.equal(body[0], compactMarker, `${message.type} is compact`);
    assert.ok(body.byteLength <= 7 + message.ahead.length, `${message.type}: ${body.byteLength} B`);
    assert.deepEqual(back, message);
  }
  assertCompact([{ type: 'lineShareGrant', line: 4, info, ahead: [5, 6], aheadOnly: true }]);
  // A line ahead that is not past the request's line has no compact form.
  for (const message of [{ type: 'lineShareRequest', line: 9, ahead: [9] }, { type: 'lineShareGrant', line: 9, ahead: [3] }]) {
    const { body, back } = roundTrip(message);
    assert.notEqual(body[0], compactMarker, message.type);
    assert.deepEqual(plain(back), plain(message));
  }
  // Copies dropped many at once (makeRoom): their lines in one compact message.
  const more = Array.from({ length: 511 }, (_, k) => 200_000 + 3 * k);
  const { body, back } = roundTrip({ type: 'lineInvalidated', line: 9, more });
  assert.equal(body[0], compactMarker);
  assert.ok(body.byteLength <= 8 + 3 * more.length, `${body.byteLength} B`);
  assert.deepEqual(back, { type: 'lineInvalidated', line: 9, more });
  // A compact body naming a line ahead at distance 0 is malformed.
  assert.throws(() => decodeCompact(Uint8Array.of(compactMarker, 23, 9, 1, 0)), FrameError);
});

test("a lock's messages round-trip in the compact layout, smaller than msgpack", () => {
  const cases: WireMessage[] = [
    { type: 'lockRequest', lockId: 3, requestId: 12, tryOnly: false, info },
    { type: 'lockRequest', lockId: 2 ** 40, requestId: 0, tryOnly: true, info, bundled },
    { type: 'lockGrant', lockId: 3, requestId: 12, granted: true, info },
    { type: 'lockGrant', lockId: 3, requestId: 12, granted: false, info },
    { type: 'lockGrant', lockId: 3, requestId: 12, granted: true, info, recall: true, next: { node: 2, requestId: 9, recall: false } },
    { type: 'lockGrant', lockId: 3, requestId: 12, granted: true, info, ...push, next: { node: 0, requestId: 1, recall: true } },
    { type: 'lockRelease', lockId: 5, info },
    { type: 'lockRelease', lockId: 5, info, bundled, reuses: 17 },
    { type: 'lockRecall', lockId: 5, tryOnly: false },
    { type: 'lockRecall', lockId: 5, tryOnly: true, early: true },
    { type: 'lockRecall', lockId: 5, tryOnly: false, early: false },
    { type: 'lockBusy', lockId: 5 },
  ];
  assertCompact(cases);
  const { back } = roundTrip({ type: 'lockGrant', lockId: 3, requestId: 12, granted: true, info, ...push });
  const bytes = back.pushBytes as Uint8Array[];
  assert.ok(bytes[0] instanceof Uint8Array && bytes[0].byteLength === 4096 && bytes[0][4095] === 7);
});

test("a barrier's messages and a release's diffs round-trip in the compact layout, smaller than msgpack", () => {
  const plan = { round: 8, parties: 4, parent: 0, local: 1, children: 2 };
  const cases: WireMessage[] = [
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [1, 40], info },
    { type: 'barrierArrive', barrierId: 2, parties: 8, arrivals: [1, 40, 3, 41, 5, 7], info, round: 9, vcMax: [3, 4, 5], vcMin: [1, 2, 3], bundled },
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [1, 40], info, round: 9, peer: true, ...push },
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [], info, round: 9, flushed: true, peerFlushed: true },
    { type: 'barrierDepart', barrierId: 2, requestIds: [40, 41], error: '', serial: 41, floor: [3, 2], info },
    { type: 'barrierDepart', barrierId: 2, requestIds: [40], error: 'a thread of node 1 ended', serial: 0, floor: [], info, plan },
    { type: 'barrierDepart', barrierId: 2, requestIds: [40], error: '', serial: 0, floor: [3, 2], info, plan: { ...plan, peerLocal: 1 }, ...push },
    { type: 'barrierFlush', barrierId: 2 ** 33, round: 5 },
    { type: 'diffs', ...bundled },
    { type: 'diffs', ...bundled, origin: 3 },
  ];
  assertCompact(cases);
});

test('a message outside the compact forms goes as msgpack, unchanged', () => {
  const outside: WireMessage[] = [
    { ...lineOp, extra: true },
    { ...lineOp, requestId: -1 },
    { ...lineOp, address: 0.5 },
    { ...lineOp, operands: ['é'] },
    { ...lineOp, operands: ['1'.repeat(256)] },
    { ...lineOp, op: 'wait' },
    { ...lineOp, width: 3 },
    { ...lineOp, info: { ...info, extra: 1 } },
    { ...lineOp, bundled: { ...bundled, diffs: [new Uint8Array(20_000)] } },
    { type: 'lineOpDone', requestId: 1, result: '1', info, quiet: false },
    { type: 'lineOpDone', requestId: 1, result: 5, info },
    { type: 'lineGrant', line: 3, recall: false, pushPages: [4], pushVersions: [[1, 2]], pushBytes: [new Uint8Array(8)] },
    { type: 'lineGrant', line: 3, recall: 1 },
    { type: 'lineGrant', line: 3, recall: false, quiet: false },
    { type: 'lineRelease', line: 3, extra: 1 },
    { type: 'lineRequest', line: -3 },
    { type: 'lineRecall', line: 3, info },
    { type: 'lockRequest', lockId: 3, requestId: 1, tryOnly: 0, info },
    { type: 'lockGrant', lockId: 3, requestId: 1, granted: true, info, recall: false },
    { type: 'lockGrant', lockId: 3, requestId: 1, granted: true, info, pushPages: [1], pushVersions: [[1]] },
    { type: 'lockGrant', lockId: 3, requestId: 1, granted: true, info, ...push, packed: [4096, 0] },
    { type: 'lockGrant', lockId: 3, requestId: 1, granted: true, info, pushPages: [1, 2, 3, 4, 5], pushVersions: [[1], [1], [1], [1], [1]], pushBytes: Array.from({ length: 5 }, () => new Uint8Array(4096)), pushApplied: [0, 0, 0, 0, 0] },
    { type: 'lockGrant', lockId: 3, requestId: 1, granted: true, info, next: { node: 1, requestId: 2 } },
    { type: 'lockRecall', lockId: 3, tryOnly: false, early: 1 },
    { type: 'lockRelease', lockId: 3, info, reuses: -1 },
    { type: 'lockBusy', lockId: 3, info },
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [1, 40], info, flushed: false },
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [1, -40], info },
    { type: 'barrierArrive', barrierId: 2, parties: 2, arrivals: [1, 40], info, pushPages: [3] },
    { type: 'barrierDepart', barrierId: 2, requestIds: [40], error: 'é', serial: 0, floor: [], info },
    { type: 'barrierDepart', barrierId: 2, requestIds: [40], error: '', serial: 0, floor: [], info, plan: { round: 1, parties: 2, parent: -1, local: 1, children: 0 } },
    { type: 'barrierDepart', barrierId: 2, requestIds: [40], error: '', serial: 0, floor: [], info, plan: { round: 1, parties: 2, parent: 0, local: 1, children: 0, extra: 1 } },
    { type: 'barrierFlush', barrierId: 2, round: 1, info },
    { type: 'diffs', ...bundled, origin: -1 },
    { type: 'diffs', ...bundled, diffs: [new Uint8Array(20_000)] },
  ];
  for (const message of outside) {
    const { body, back } = roundTrip(message);
    assert.notEqual(body[0], compactMarker, JSON.stringify(message).slice(0, 80));
    assert.deepEqual(plain(back), plain(message));
  }
});

test('a malformed compact body is a FrameError: cut anywhere, bytes left over, bad codes, counts beyond the bytes', () => {
  const empty = new Uint8Array(0);
  const { body } = roundTrip({ ...lineOp, bundled });
  for (let length = 1; length < body.byteLength; length++) {
    assert.throws(() => decodeBody(body.subarray(0, length), empty), FrameError, `cut at ${length}`);
  }
  assert.throws(() => decodeBody(Buffer.concat([body, Buffer.from([0])]), empty), /left over/);
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 99]), empty), /unknown compact message type/);
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 1, 5, 42]), empty), /op code 42/);
  // lineOpDone, requestId 1, no result, vc count of 2^40.
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 2, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]), empty), /count/);
  // A varint of 9 bytes.
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1]), empty), /varint/);
  assert.throws(() => decodeBody(body, Uint8Array.from([1])), /payload/);
  // lineGrant of line 1 with flag bit 5; lineRelease of line 1 with flag bit 4 (wire 11 gave each one more bit, wire 15 lineRelease another).
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 6, 1, 32]), empty), /flags/);
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 5, 1, 16]), empty), /flags/);
  // lockRecall of lock 1: a flag beyond bit 2; early's value set while early is absent.
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 9, 1, 8]), empty), /flags/);
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 9, 1, 4]), empty), /early/);
  // A granted lockGrant with pushed pages cut anywhere.
  const { body: grant } = roundTrip({ type: 'lockGrant', lockId: 3, requestId: 12, granted: true, info, ...push, next: { node: 1, requestId: 2, recall: true } });
  for (let length = 1; length < grant.byteLength; length += 97) {
    assert.throws(() => decodeBody(grant.subarray(0, length), empty), FrameError, `grant cut at ${length}`);
  }
  // A barrierDepart with every optional part, cut anywhere; one whose flags name a peerLocal without a plan.
  const { body: depart } = roundTrip({ type: 'barrierDepart', barrierId: 2, requestIds: [40], error: 'x', serial: 1, floor: [3], info, plan: { round: 1, parties: 2, parent: 0, local: 1, children: 0, peerLocal: 1 }, ...push });
  for (let length = 1; length < depart.byteLength; length += 89) {
    assert.throws(() => decodeBody(depart.subarray(0, length), empty), FrameError, `depart cut at ${length}`);
  }
  // barrierDepart 1, no request ids, empty error, serial 0, no floor, empty info, flags: peerLocal only.
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 13, 1, 0, 0, 0, 0, 0, 0, 0, 4]), empty), /peerLocal/);
});

test('arbitrary messages of every compact type round-trip (property)', () => {
  const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
  const numbers = fc.array(count, { maxLength: 20 });
  const infoValue = fc.record({ vc: numbers, known: numbers, intervals: fc.array(fc.record({ node: fc.nat(64), index: count, pages: numbers }), { maxLength: 6 }) });
  const ascii = fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((code) => String.fromCharCode(code)), maxLength: 40 });
  const op = fc.record({
    type: fc.constant('lineOp'), requestId: count, op: fc.constantFrom('load', 'store', 'add', 'sub', 'and', 'or', 'xor', 'exchange', 'compareExchange'),
    address: count, width: fc.constantFrom(1, 2, 4, 8), operands: fc.array(ascii, { maxLength: 3 }), info: infoValue,
    bundled: fc.option(fc.record({ interval: count, pages: numbers, diffs: fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }) }), { nil: undefined }),
  }).map((message) => {
    if (message.bundled === undefined) delete (message as { bundled?: unknown }).bundled;
    return message;
  });
  const done = fc.record({ type: fc.constant('lineOpDone'), requestId: count, result: fc.option(ascii, { nil: null }), info: infoValue, quiet: fc.option(fc.constant(true as const), { nil: undefined }) })
    .map((message) => {
      if (message.quiet === undefined) delete (message as { quiet?: unknown }).quiet;
      return message;
    });
  const drop = <T extends Record<string, unknown>>(message: T): T => {
    for (const key of Object.keys(message)) if (message[key] === undefined) delete message[key];
    return message;
  };
  const bundledValue = fc.record({ interval: count, pages: numbers, diffs: fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }) });
  const transfer = fc.oneof(
    fc.record({ type: fc.constantFrom('lineRequest', 'lineRecall'), line: count }),
    fc.record({ type: fc.constant('lineRelease'), line: count, info: fc.option(infoValue, { nil: undefined }), bundled: fc.option(bundledValue, { nil: undefined }) }).map(drop),
    fc.record({ type: fc.constant('lineGrant'), line: count, recall: fc.boolean(), info: fc.option(infoValue, { nil: undefined }), quiet: fc.option(fc.constant(true as const), { nil: undefined }) }).map(drop),
  );
  const lock = fc.oneof(
    fc.record({ type: fc.constant('lockRequest'), lockId: count, requestId: count, tryOnly: fc.boolean(), info: infoValue, bundled: fc.option(bundledValue, { nil: undefined }) }).map(drop),
    fc.record({
      type: fc.constant('lockGrant'), lockId: count, requestId: count, granted: fc.boolean(), info: infoValue,
      recall: fc.option(fc.constant(true as const), { nil: undefined }),
      next: fc.option(fc.record({ node: fc.nat(64), requestId: count, recall: fc.boolean() }), { nil: undefined }),
      push: fc.option(fc.record({ pushPages: numbers, pushVersions: fc.array(numbers, { maxLength: 3 }), pushBytes: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }), pushApplied: numbers }), { nil: undefined }),
    }).map(({ push: pushed, ...message }) => drop({ ...message, ...pushed })),
    fc.record({ type: fc.constant('lockRecall'), lockId: count, tryOnly: fc.boolean(), early: fc.option(fc.boolean(), { nil: undefined }) }).map(drop),
    fc.record({ type: fc.constant('lockBusy'), lockId: count }),
    fc.record({ type: fc.constant('lockRelease'), lockId: count, info: infoValue, bundled: fc.option(bundledValue, { nil: undefined }), reuses: fc.option(count, { nil: undefined }) }).map(drop),
  );
  const pushValue = fc.option(fc.record({ pushPages: numbers, pushVersions: fc.array(numbers, { maxLength: 3 }), pushBytes: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }), pushApplied: numbers }), { nil: undefined });
  const flag = fc.option(fc.constant(true as const), { nil: undefined });
  const barrier = fc.oneof(
    fc.record({
      type: fc.constant('barrierArrive'), barrierId: count, parties: count, arrivals: numbers, info: infoValue,
      bundled: fc.option(bundledValue, { nil: undefined }), round: fc.option(count, { nil: undefined }),
      vcMax: fc.option(numbers, { nil: undefined }), vcMin: fc.option(numbers, { nil: undefined }),
      flushed: flag, peer: flag, peerFlushed: flag, push: pushValue,
    }).map(({ push: pushed, ...message }) => drop({ ...message, ...pushed })),
    fc.record({
      type: fc.constant('barrierDepart'), barrierId: count, requestIds: numbers, error: ascii, serial: count, floor: numbers, info: infoValue,
      plan: fc.option(fc.record({ round: count, parties: count, parent: fc.nat(64), local: count, children: count, peerLocal: fc.option(count, { nil: undefined }) }).map(drop), { nil: undefined }),
      push: pushValue,
    }).map(({ push: pushed, ...message }) => drop({ ...message, ...pushed })),
    fc.record({ type: fc.constant('barrierFlush'), barrierId: count, round: count }),
    fc.record({ type: fc.constant('diffs'), interval: count, pages: numbers, diffs: fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }), origin: fc.option(fc.nat(64), { nil: undefined }) }).map(drop),
  );
  fc.assert(fc.property(fc.oneof(op, done, transfer, lock, barrier), (message) => {
    const { body, back } = roundTrip(message as WireMessage);
    assert.equal(body[0], compactMarker);
    assert.deepEqual(plain(back), plain(message));
  }), { numRuns: 300, seed: 20261203 });
});

test('random bytes after a compact marker and type decode or are a FrameError, never another error (property)', () => {
  const empty = new Uint8Array(0);
  fc.assert(fc.property(fc.integer({ min: 0, max: 20 }), fc.uint8Array({ maxLength: 120 }), (type, tail) => {
    const body = Uint8Array.from([compactMarker, type, ...tail]);
    try {
      decodeBody(body, empty);
    } catch (error) {
      assert.ok(error instanceof FrameError, `type ${type}: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }), { numRuns: 3000, seed: 20261204 });
});

// ------------------------------------------------------------ a page fetch's two messages (session 14, fetch21)

/** The frame as Connection sends a message with a payload (header, body, payload), and the message decoded from it. */
function roundTripWithPayload(message: WireMessage): { body: Uint8Array; back: WireMessage } {
  const { body, payload } = encodeBody(message);
  const frame = Buffer.alloc(frameHeaderBytes + body.byteLength + (payload?.byteLength ?? 0));
  writeFrameHeader(frame, frameKinds.message, body.byteLength, payload?.byteLength ?? 0);
  frame.set(body, frameHeaderBytes);
  if (payload !== null) frame.set(payload, frameHeaderBytes + body.byteLength);
  const frames = new FrameDecoder().push(frame);
  assert.equal(frames.length, 1);
  return { body: frames[0]!.body, back: decodeBody(frames[0]!.body, frames[0]!.payload) };
}

const page = (fill: number): Uint8Array => new Uint8Array(4096).fill(fill);
const pageRequest: WireMessage = { type: 'pageRequest', page: 70_000, need: [3, 0, 12], extraPages: [70_001, 70_002], extraNeeds: [[3, 0, 12], [1, 0, 0]] };
const pageReply: WireMessage = { type: 'pageReply', page: 5, version: [4, 0, 7], bytes: page(9), extraPages: [], extraVersions: [], extraBytes: [] };

test('a page fetch\'s request and one-page reply round-trip in the compact layout, smaller than msgpack', () => {
  const cases: WireMessage[] = [
    pageRequest,
    { ...pageRequest, extraPages: [], extraNeeds: [] },
    { ...pageRequest, ahead: true },
    { ...pageRequest, ahead: false, origin: 2 },
    pageReply,
    { ...pageReply, bytes: new Uint8Array(0) },
    // Page copies left in the body by the envelope (src/runtime/envelope.ts), packed ones named in `packed`.
    { ...pageReply, bytes: new Uint8Array(40).fill(1), extraPages: [6], extraVersions: [[4, 0, 7]], extraBytes: [new Uint8Array(12).fill(2)], packed: [4096, 4096] },
  ];
  assertCompact(cases);
  // The received page is a view of the frame, as msgpack's bin fields are (the engine copies it into the page at once).
  const { back } = roundTrip(pageReply);
  assert.ok(back.bytes instanceof Uint8Array && back.bytes.byteLength === 4096 && back.bytes.every((byte) => byte === 9));
});

test('a window\'s reply with its copies as the frame\'s payload (lengths in the body) round-trips in the compact layout', () => {
  const extraPages = Array.from({ length: 255 }, (_, k) => 1000 + k);
  // As the envelope's toWire leaves it: each copy's length in its place, the copies in the payload.
  const wire: WireMessage = {
    type: 'pageReply', page: 999, version: [2, 9], bytes: 4096, extraPages, extraVersions: extraPages.map((_, k) => [2, k]),
    extraBytes: extraPages.map(() => 4096), payload: new Uint8Array(256 * 4096).fill(7),
  };
  const { body, back } = roundTripWithPayload(wire);
  assert.equal(body[0], compactMarker);
  assert.ok(body.byteLength < 3 * 1024, `${body.byteLength} B of body for 256 pages`);
  assert.deepEqual(plain({ ...back, payload: undefined }), plain({ ...wire, payload: undefined }));
  assert.equal(back.payload?.byteLength, 256 * 4096);
  // Packed copies name their unpacked lengths.
  const packed: WireMessage = { ...wire, bytes: 100, extraPages: [1000], extraVersions: [[2, 0]], extraBytes: [28], packed: [4096, 4096], payload: new Uint8Array(128) };
  const again = roundTripWithPayload(packed);
  assert.equal(again.body[0], compactMarker);
  assert.deepEqual(plain({ ...again.back, payload: undefined }), plain({ ...packed, payload: undefined }));
  // A compact body with a payload is a page reply's lengths form, nothing else.
  const request = roundTrip(pageRequest).body;
  assert.throws(() => decodeBody(request, Uint8Array.from([1])), /payload/);
  const inline = roundTrip(pageReply).body;
  assert.throws(() => decodeBody(inline, Uint8Array.from([1])), /payload/);
});

test('a page fetch\'s message outside the compact forms goes as msgpack, and a malformed one is a FrameError', () => {
  const outside: WireMessage[] = [
    { ...pageRequest, page: -1 },
    { ...pageRequest, ahead: 1 },
    { ...pageRequest, origin: 0.5 },
    { ...pageRequest, extraNeeds: [[1], 2] },
    { ...pageReply, bytes: [1, 2] },
    { ...pageReply, extraBytes: [page(1), 4096] },
    { ...pageReply, bytes: page(1), extraBytes: [page(2), page(3), page(4), page(5)], extraPages: [1, 2, 3, 4], extraVersions: [[], [], [], []] },
    { ...pageReply, packed: [1.5] },
  ];
  for (const message of outside) {
    const { body, back } = roundTrip(message);
    assert.notEqual(body[0], compactMarker, JSON.stringify(message).slice(0, 80));
    assert.deepEqual(plain(back), plain(message));
  }
  const empty = new Uint8Array(0);
  const { body } = roundTrip({ ...pageReply, extraPages: [6], extraVersions: [[1]], extraBytes: [page(3)], packed: [0, 0] });
  for (let length = 1; length < body.byteLength; length++) {
    assert.throws(() => decodeBody(body.subarray(0, length), empty), FrameError, `cut at ${length}`);
  }
  assert.throws(() => decodeBody(Buffer.concat([body, Buffer.from([0])]), empty), /left over/);
  // A page reply whose flags name a form that does not exist.
  assert.throws(() => decodeBody(Uint8Array.from([compactMarker, 17, 5, 0x80]), empty), /flags/);
});

// ------------------------------------------------------------ the decoder's rewrite (session 17, cold25)

/**
 * test/fixtures/compact-corpus.ts's digests as the decoder before session 17 gave them (wire version 6; the three
 * with pushed pages as of wire 14, whose pushes carry pushApplied; lineOp's and lineOpDone's as of wire 15, whose
 * last byte became flags: a changed byte of 2 there reads pushed pages where it was an error).
 */
const corpusDigestsV6: Record<string, string> = {
  '0 lineOp': '331 3532083d3e210027',
  '1 lineOpDone': '187 01631287cd8d03fd',
  '2 lineOpDone': '169 fb53a426e0862a12',
  '3 lineRequest': '25 afc59893e0d6bf1e',
  '4 lineRecall': '13 e069691ed927ee34',
  '5 lineRelease': '241 14be78b152053b0e',
  '6 lineGrant': '163 af1d44873c89ee4c',
  '7 lockRequest': '247 39add764ffa38aa8',
  '8 lockGrant': '337 877d539d4ceb7599',
  '9 lockRecall': '19 a95741ddc1a63eac',
  '10 lockBusy': '13 490c7da4b514c48b',
  '11 lockRelease': '247 0121962afb313486',
  '12 barrierArrive': '457 38ad02a08a1c58f3',
  '13 barrierDepart': '409 5e53a0db46c2a5d1',
  '14 barrierFlush': '43 c5245befd3f61a3c',
  '15 diffs': '97 64d23f30d3efd369',
  '16 pageRequest': '115 75fc299201b4205d',
  '17 pageReply': '193 93387e351251f01a',
};

test('every compact body of the corpus, cut anywhere or with a byte changed, reads as before the rewrite: the same messages, the same errors', () => {
  assert.equal(new Set(corpusMessages.map((message) => message.type)).size, 17, 'every compact type');
  assert.deepEqual(corpusDigests(), corpusDigestsV6);
});

test('byte arrays in a compact body are read as views of the body (no copy), and stay right once later frames are written', () => {
  const diffs = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(5)];
  const { body, back } = roundTrip({ type: 'diffs', interval: 4, pages: [1, 2, 3], diffs });
  const read = back.diffs as Uint8Array[];
  for (const view of read) assert.equal(view.buffer, body.buffer, 'a view of the body');
  // More frames through the encoder's slab: the body is a buffer of its own, so the views do not move.
  for (let k = 0; k < 1000; k++) encodeBodyAfter({ type: 'diffs', interval: k, pages: [k], diffs: [new Uint8Array(200).fill(k & 0xff)] }, frameHeaderBytes);
  assert.deepEqual(plain(read), plain(diffs));
});

/** test/fixtures/compact-corpus.ts's encodings as the encoder before session 17 made them (wire version 6; the three with pushed pages as of wire 14, whose pushes carry pushApplied). */
const corpusEncodingsV6: Record<string, string> = {
  '0 lineOp': '306 4bf2da07415d2079',
  '1 lineOpDone': '194 f03948c8c130e5dd',
  '2 lineOpDone': '178 86fa205dc523b32b',
  '3 lineRequest': '18 5b017e4965b6b1d1',
  '4 lineRecall': '18 101fd341d6f3d443',
  '5 lineRelease': '242 d7137594773c26fc',
  '6 lineGrant': '194 34ed59504cf2025c',
  '7 lockRequest': '274 86da04840881d64d',
  '8 lockGrant': '434 22406905d673d9a7',
  '9 lockRecall': '50 cb8f3efa6eee2f45',
  '10 lockBusy': '18 5ac3bf49e1093b05',
  '11 lockRelease': '258 2d1a6cc4023e64c4',
  '12 barrierArrive': '514 763c66c3bf47fcf4',
  '13 barrierDepart': '498 2af56e8a064b386c',
  '14 barrierFlush': '34 b507bd45b6f60e9a',
  '15 diffs': '66 6985366a05d61ce2',
  '16 pageRequest': '162 6b731fb306742541',
  '17 pageReply': '178 a532a75e600724ff',
};

test('every message of the corpus and its variants (odd values in each field, unknown fields) encode as before the rewrite: the same bytes, msgpack for the same ones', () => {
  assert.deepEqual(corpusEncodings(), corpusEncodingsV6);
});

test('a frame given back (bodyDone) is written over by the next one; any other frame is left alone', () => {
  const request = (page: number): WireMessage => ({ type: 'pageRequest', page, need: [1, 0], extraPages: [], extraNeeds: [] });
  const first = encodeBodyAfter(request(1), frameHeaderBytes);
  bodyDone(first);
  const second = encodeBodyAfter(request(2), frameHeaderBytes);
  assert.equal(second.buffer, first.buffer);
  assert.equal(second.byteOffset, first.byteOffset, 'the slab room of a frame given back is reused');
  // Kept (not given back): the next frame goes after it, and the kept one still decodes as itself.
  const third = encodeBodyAfter(request(3), frameHeaderBytes);
  assert.ok(third.buffer !== second.buffer || third.byteOffset >= second.byteOffset + second.byteLength);
  // Not the newest any more: giving it back changes nothing.
  bodyDone(second);
  const fourth = encodeBodyAfter(request(4), frameHeaderBytes);
  assert.ok(fourth.buffer !== third.buffer || fourth.byteOffset >= third.byteOffset + third.byteLength);
  assert.deepEqual(decodeBody(second.subarray(frameHeaderBytes), Buffer.alloc(0)), request(2));
  assert.deepEqual(decodeBody(third.subarray(frameHeaderBytes), Buffer.alloc(0)), request(3));
});
