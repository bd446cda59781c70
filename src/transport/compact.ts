// A compact binary body for the shipped Atomics op's two messages (issue 12,
// session 11): `lineOp` and `lineOpDone` (src/protocol/messages.ts), the one
// round trip a thread waits for on each shipped op; for a line transfer's
// (`lineRequest`, `lineRecall`, `lineRelease`, and `lineGrant` without pages
// pushed with it); and, since session 14, a lock's (`lockRequest`, `lockGrant`,
// `lockRecall`, `lockBusy`, `lockRelease`) and a barrier's (`barrierArrive`,
// `barrierDepart`, `barrierFlush`) and the `diffs` a release sends on its own, which every remote acquire of a Mutex and
// every barrier round pays in a program too short for this path to be optimized code (docs/EVALUATION.md,
// "Session 14: where the managers' CPU goes"); and a page fetch's (`pageRequest`, `pageReply`: session 14,
// the read fault's data path). msgpackr writes a field
// name and a type tag for every field and its decoder is generic; a render
// ships only ~50 ops, so that code runs cold (interpreted) on every op: a
// lineOp took 40–60 µs to encode and 35–50 µs to scan and decode, each way.
// This layout is written and read by two small straight-line functions.
//
// A body that starts with 0xc1 is compact: msgpack never uses that byte (it
// is "never used" in the msgpack spec), so a msgpack body (a map: 0x80–0x8f,
// 0xde or 0xdf) can never be mistaken for one. Then:
//
//   u8      compact type (compactTypes)
//   lineOp:     requestId v, op u8 (shippedOpCodes), address v, width u8,
//               operands (count u8, each: length u8 then ASCII bytes), info,
//               flags u8 (bit 0 bundled, bit 1 pushed: wire version 15), then bundled: interval v,
//               pages (count v, each v), diffs (byte arrays, below), then pushed pages (as lockGrant's)
//   lineOpDone: requestId v, result (u8 0 null, 1 string: length u8 then ASCII bytes), info,
//               flags u8 (bit 0 quiet, bit 1 pushed: wire version 15), then pushed pages
//   lineRequest, lineShareRequest, lineInvalidate, lineInvalidated: line v
//   lineRecall:  line v; one with `share` is lineRecallShare (line v: wire version 11)
//   lineRelease: line v, flags u8 (bit 0 info, bit 1 bundled, bit 2 keepShare, bit 3 pushed: wire version 15), then
//               info, then bundled as in lineOp, then pushed pages
//   lineGrant:   line v, flags u8 (bit 0 recall, bit 1 info, bit 2 quiet, bit 3 waiting, bit 4 share), then info,
//               then waiting (count v, each v: wire version 7)
//   lineShareGrant: line v, flags u8 (bit 0 info, bit 1 ahead, bit 2 aheadOnly), then info (without pages pushed
//               with it, as lineGrant), then ahead as lineShareRequestAhead's
//   lineShareRequestAhead (a lineShareRequest with `ahead`: wire version 12): line v, then ahead (count v, each
//               as its distance past line, v)
//   lineInvalidatedMany (a lineInvalidated with `more`: wire version 12): line v, then more (count v, each v)
//   lockRequest, lockGrant, lockRecall, lockRelease, barrierArrive, barrierDepart: see their writers below;
//   lockBusy: lockId v; barrierFlush: barrierId v, round v; diffs: see its writer
//   pageRequest: page v, need (count v, each v), extraPages (count v, each v),
//               extraNeeds (count v, each: count v, each v),
//               flags u8 (bit 0 origin, bit 1 ahead present, bit 2 ahead's value), then origin v
//   pageReply:   page v, flags u8 (bit 0 lengths: the copies are the frame's payload and
//               the body holds their lengths, as the envelope leaves them; bit 1 packed),
//               version (count v, each v), bytes (a copy), extraPages (count v, each v),
//               extraVersions (count v, each: count v, each v), extraBytes (count v, each a copy),
//               then packed (count v, each v); a copy is its length v, then (unless
//               lengths) its bytes, which the decoded message views in the frame (as
//               msgpack's bin fields are: the engine copies them into the page at once)
//   info:       vc (count v, each v), known (count v, each v),
//               intervals (count v, each: node v, index v, pages (count v, each v))
//   byte arrays (a batch's diffs, pushed pages' copies; wire version 6): count v, form u8 (0: in the body,
//               1: the frame's payload), each one's length v, then (form 0) their bytes back to back
//
// where v is an unsigned LEB128 varint of a safe integer (at most 8 bytes).
// A message that does not fit (a field outside these forms, a field this
// layout does not know, a string longer than 255 or not ASCII, a body larger
// than compactBodyBytesMax) is sent as msgpack instead: the compact form is an
// optimization, never a limit. Its decoder checks every length against the
// bytes there (a FrameError otherwise), as msgpack-scan does for msgpack.
// Only a pageReply of the lengths form, and a message whose byte arrays are of the payload form (a batch's
// diffs or pushed copies the envelope moved to the payload), come with a payload.

import { compactBodyBytesMax, compactSlabBytes } from '../constants.js';
import { assert } from '../errors.js';
import { FrameError } from './frame.js';
import type { WireMessage } from './frame.js';

/** The first byte of a compact body (msgpack's one never-used byte). */
export const compactMarker = 0xc1;

const compactTypes = {
  lineOp: 1, lineOpDone: 2, lineRequest: 3, lineRecall: 4, lineRelease: 5, lineGrant: 6,
  lockRequest: 7, lockGrant: 8, lockRecall: 9, lockBusy: 10, lockRelease: 11,
  barrierArrive: 12, barrierDepart: 13, barrierFlush: 14, diffs: 15,
  pageRequest: 16, pageReply: 17,
  lineShareRequest: 18, lineShareGrant: 19, lineInvalidate: 20, lineInvalidated: 21, lineRecallShare: 22,
  lineShareRequestAhead: 23, lineInvalidatedMany: 24,
} as const;

/**
 * Whether the body at `at` in `bytes` (at least two bytes there) is a compact pageReply: the one message whose
 * decoded views of its body are consumed as it is handled (the engine copies a reply's pages into memory at once,
 * src/protocol/hlrc.ts installFetched) and which is large (a page). The frame reader copies such a body into a
 * shared receive slab instead of an ArrayBuffer of its own (frame-reader.ts bodyCopyOf).
 */
export function isCompactPageReply(bytes: Uint8Array, at: number): boolean {
  return bytes[at] === compactMarker && bytes[at + 1] === compactTypes.pageReply;
}
/** compactTypes by name, for the encoder's one look-up a message (a Map's get: no hasOwn call, no keyed load by a varying name). */
// (lineRecallShare is no message type: a lineRecall with `share` is written under it.)
const compactTypeCodes = new Map<unknown, number>(Object.entries(compactTypes).filter(([type]) => type !== 'lineRecallShare' && type !== 'lineShareRequestAhead' && type !== 'lineInvalidatedMany'));

/** ShippedOp (src/protocol/messages.ts) by code: the order is the wire's. */
const shippedOps = ['load', 'store', 'add', 'sub', 'and', 'or', 'xor', 'exchange', 'compareExchange'] as const;
const shippedOpCodes = new Map<string, number>(shippedOps.map((op, code) => [op, code]));

/**
 * Compact frames are written straight into this slab, each one a view of it
 * that goes to the socket as it is (no allocation and no copy per message, as
 * msgpackr does with its own buffer). Bytes handed out are never written
 * again: when the room left could not hold a whole body, a new slab is taken
 * and the old one lives as long as frames still view it. Before session 14 a
 * body was written to a scratch buffer and copied into a buffer of its own:
 * a one-page reply paid two 4 KiB copies and an allocation.
 */
let scratch = Buffer.allocUnsafeSlow(compactSlabBytes);
/** Bytes of the slab handed out as frames. */
let slabUsed = 0;
/** The newest frame handed out: where it starts in the slab, and slabUsed after it (-1: none to take back). */
let newestStart = -1;
let newestEnd = -1;
/** Where the body being written must end (compactBodyBytesMax after its start). */
let limit = 0;
/** The largest varint: 8 bytes of 7 bits hold every safe integer (53 bits). */
const varintBytesMax = 8;
/** Strings (operands, results: decimal or bigint text) are short. */
const stringBytesMax = 255;

/** Thrown inside the encoder when a message does not fit the compact form (caught: msgpack instead). */
class NotCompact extends Error {}
const notCompact = new NotCompact('not compact');

let at = 0;

// The writers are straight-line code over the fields of their message (a manager sends a few hundred of these
// in a short program, so most of them run in V8's interpreter: every call, keyed load and loop turn counts):
// fields are read by name, a message's keys are checked by counting them (Object.keys: an own field the layout
// does not know, or one set to undefined, makes the count differ from the fields found), and a varint of one
// byte (a count, a flag, a small id) is written inline.

function room(byteCount: number): void {
  if (at + byteCount > limit) throw notCompact;
}

function writeU8(value: number): void {
  if (at >= limit) throw notCompact;
  scratch[at++] = value;
}

function writeVarint(value: unknown): void {
  // One byte inline (room for a whole varint is asked for, as the long form does: the same messages fit).
  if (typeof value === 'number' && value >= 0 && value < 0x80 && (value | 0) === value && at + varintBytesMax <= limit) {
    scratch[at++] = value;
    return;
  }
  writeVarintLong(value);
}

function writeVarintLong(value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw notCompact;
  room(varintBytesMax);
  let rest = value;
  while (rest > 0x7fffffff) {
    scratch[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  while (rest >= 0x80) {
    scratch[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  scratch[at++] = rest;
}

function writeString(value: unknown): void {
  if (typeof value !== 'string' || value.length > stringBytesMax) throw notCompact;
  room(1 + value.length);
  scratch[at++] = value.length;
  for (let k = 0; k < value.length; k++) {
    const code = value.charCodeAt(k);
    if (code >= 0x80) throw notCompact;
    scratch[at++] = code;
  }
}

function writeNumbers(values: unknown): void {
  if (!Array.isArray(values)) throw notCompact;
  const count = values.length;
  writeVarint(count);
  for (let k = 0; k < count; k++) {
    const value: unknown = values[k];
    if (typeof value === 'number' && value >= 0 && value < 0x80 && (value | 0) === value && at + varintBytesMax <= limit) scratch[at++] = value;
    else writeVarintLong(value);
  }
}

/** `value` as an object whose own enumerable keys number `count` (its fields are then checked one by one). */
function fields(value: unknown, count: number): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.keys(value).length !== count) throw notCompact;
  return value as Record<string, unknown>;
}

/** A message whose fields (`type` and those read) number `count`: any other own key makes it msgpack. */
function checkCount(message: Record<string, unknown>, count: number): void {
  if (Object.keys(message).length !== count) throw notCompact;
}

/** Own enumerable keys of `value`, all among `allowed` (a field the layout does not know: msgpack). For the rare kinds. */
function checkKeys(value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw notCompact;
  for (const key in value) if (!allowed.includes(key)) throw notCompact;
  return value as Record<string, unknown>;
}

const lineKeys = ['type', 'line'] as const;
const lineRecallKeys = ['type', 'line', 'share'] as const;
const lineReleaseKeys = ['type', 'line', 'info', 'bundled', 'keepShare', 'pushPages', 'pushVersions', 'pushBytes', 'pushApplied'] as const;
const lineShareGrantKeys = ['type', 'line', 'info', 'ahead', 'aheadOnly'] as const;
const lineShareRequestKeys = ['type', 'line', 'ahead'] as const;
const lineInvalidatedKeys = ['type', 'line', 'more'] as const;
// pushPages, pushVersions, pushBytes, pushApplied (a grant that carries pages) are not among them: such a grant goes as msgpack.
const lineGrantKeys = ['type', 'line', 'recall', 'share', 'info', 'quiet', 'waiting'] as const;
const lockRecallKeys = ['type', 'lockId', 'tryOnly', 'early'] as const;
const lockBusyKeys = ['type', 'lockId'] as const;
const barrierFlushKeys = ['type', 'barrierId', 'round'] as const;

// info: vc, known, intervals (each: node, index, pages)
function writeInfo(value: unknown): void {
  const info = fields(value, 3);
  writeNumbers(info.vc);
  writeNumbers(info.known);
  const intervals = info.intervals;
  if (!Array.isArray(intervals)) throw notCompact;
  const count = intervals.length;
  writeVarint(count);
  for (let k = 0; k < count; k++) {
    const record = fields(intervals[k], 3);
    writeVarint(record.node);
    writeVarint(record.index);
    writeNumbers(record.pages);
  }
}

// lineOp: type, requestId, op, address, width, operands, info, bundled (optional), pushed pages (optional)
function writeLineOp(message: Record<string, unknown>): void {
  const bundled = message.bundled;
  const push = pushed(message);
  checkCount(message, (bundled === undefined ? 7 : 8) + (push ? pushFieldCount : 0));
  writeVarint(message.requestId);
  const op = shippedOpCodes.get(message.op as string);
  if (op === undefined) throw notCompact;
  writeU8(op);
  writeVarint(message.address);
  const width = message.width;
  if (width !== 1 && width !== 2 && width !== 4 && width !== 8) throw notCompact;
  writeU8(width);
  const operands = message.operands;
  if (!Array.isArray(operands) || operands.length > 0xff) throw notCompact;
  writeU8(operands.length);
  for (let k = 0; k < operands.length; k++) writeString(operands[k]);
  writeInfo(message.info);
  writeU8((bundled === undefined ? 0 : 1) | (push ? 2 : 0));
  if (bundled !== undefined) writeBundled(bundled);
  if (push) writePushes(message);
}

/** A field that is either absent or set (an own key whose value is undefined: msgpack, which keeps what it keeps). */
function present(message: Record<string, unknown>, key: string): boolean {
  if (message[key] !== undefined) return true;
  if (key in message) throw notCompact;
  return false;
}

function writeLine(message: Record<string, unknown>): void {
  checkKeys(message, lineKeys);
  writeVarint(message.line);
}

/** A lineRecall: its type code is written already; one with `share` goes as lineRecallShare (the byte after the marker). */
function writeLineRecall(message: Record<string, unknown>): void {
  checkKeys(message, lineRecallKeys);
  if (trueFlag(message.share) === 1) scratch[at - 1] = compactTypes.lineRecallShare;
  writeVarint(message.line);
}

function writeLineShareGrant(message: Record<string, unknown>): void {
  checkKeys(message, lineShareGrantKeys);
  writeVarint(message.line);
  const info = present(message, 'info');
  const ahead = present(message, 'ahead');
  writeU8((info ? 1 : 0) | (ahead ? 2 : 0) | (trueFlag(message.aheadOnly) << 2));
  if (info) writeInfo(message.info);
  if (ahead) writeAhead(message.line, message.ahead);
}

/**
 * A line message whose list `field` may be there (a lineShareRequest's `ahead`, a lineInvalidated's `more`): one
 * with it goes as `listType` (the byte after the marker), the list after the line.
 */
function writeLineAndList(message: Record<string, unknown>, keys: readonly string[], field: string, listType: number, writeList: (line: unknown, list: unknown) => void): void {
  checkKeys(message, keys);
  const listed = present(message, field);
  if (listed) scratch[at - 1] = listType;
  writeVarint(message.line);
  if (listed) writeList(message.line, message[field]);
}

/** Lines of a page after `line`, each as its distance past it. */
function writeAhead(line: unknown, ahead: unknown): void {
  if (!Array.isArray(ahead) || typeof line !== 'number') throw notCompact;
  writeVarint(ahead.length);
  for (const other of ahead) {
    if (typeof other !== 'number' || !(other > line)) throw notCompact;
    writeVarint(other - line);
  }
}

function writeLineRelease(message: Record<string, unknown>): void {
  checkKeys(message, lineReleaseKeys);
  writeVarint(message.line);
  const info = present(message, 'info');
  const bundled = present(message, 'bundled');
  const push = pushed(message);
  writeU8((info ? 1 : 0) | (bundled ? 2 : 0) | (trueFlag(message.keepShare) << 2) | (push ? 8 : 0));
  if (info) writeInfo(message.info);
  if (bundled) writeBundled(message.bundled);
  if (push) writePushes(message);
}

function writeLineGrant(message: Record<string, unknown>): void {
  checkKeys(message, lineGrantKeys);
  writeVarint(message.line);
  if (typeof message.recall !== 'boolean') throw notCompact;
  const info = present(message, 'info');
  const quiet = present(message, 'quiet');
  if (quiet && message.quiet !== true) throw notCompact;
  const waiting = present(message, 'waiting');
  writeU8((message.recall ? 1 : 0) | (info ? 2 : 0) | (quiet ? 4 : 0) | (waiting ? 8 : 0) | (trueFlag(message.share) << 4));
  if (info) writeInfo(message.info);
  if (waiting) writeNumbers(message.waiting);
}

// bundled: interval, pages, diffs
function writeBundled(value: unknown): void {
  const bundled = fields(value, 3);
  writeVarint(bundled.interval);
  writeNumbers(bundled.pages);
  writeByteArrays(bundled.diffs);
}

/** A byte array: its length v, then its bytes. */
function writeBytes(value: unknown): void {
  if (!(value instanceof Uint8Array)) throw notCompact;
  writeVarint(value.byteLength);
  room(value.byteLength);
  scratch.set(value, at);
  at += value.byteLength;
}

/** Byte arrays' form byte (writeByteArrays): their bytes follow their lengths in the body, or are the frame's payload. */
const byteArraysInBody = 0;
const byteArraysInPayload = 1;

// byte arrays (a batch's diffs, pushed pages' copies): count v, form u8 (byteArraysInBody, byteArraysInPayload),
//   each one's length v, then (in the body) all their bytes back to back: the reader views them in the body,
//   and the envelope leaves only the lengths (numbers) where the bytes went to the payload (src/runtime/envelope.ts)
function writeByteArrays(values: unknown): void {
  if (!Array.isArray(values)) throw notCompact;
  const count = values.length;
  writeVarint(count);
  if (count > 0 && typeof values[0] === 'number') {
    writeU8(byteArraysInPayload);
    for (let k = 0; k < count; k++) writeVarint(values[k]);
    return;
  }
  writeU8(byteArraysInBody);
  let byteCount = 0;
  for (let k = 0; k < count; k++) {
    const value: unknown = values[k];
    if (!(value instanceof Uint8Array)) throw notCompact;
    writeVarint(value.byteLength);
    byteCount += value.byteLength;
  }
  room(byteCount);
  for (let k = 0; k < count; k++) {
    const value = values[k] as Uint8Array;
    scratch.set(value, at);
    at += value.byteLength;
  }
}

// lockRequest: lockId v, requestId v, flags u8 (bit 0 tryOnly, bit 1 bundled), info, then bundled
function writeLockRequest(message: Record<string, unknown>): void {
  const bundled = message.bundled;
  checkCount(message, bundled === undefined ? 5 : 6);
  writeVarint(message.lockId);
  writeVarint(message.requestId);
  const tryOnly = message.tryOnly;
  if (typeof tryOnly !== 'boolean') throw notCompact;
  writeU8((tryOnly ? 1 : 0) | (bundled === undefined ? 0 : 2));
  writeInfo(message.info);
  if (bundled !== undefined) writeBundled(bundled);
}

// lockGrant: lockId v, requestId v, flags u8 (bit 0 granted, 1 recall, 2 next, 3 pushed), info,
//            then next (node v, requestId v, recall u8), then pushPages (count v, each v),
//            pushVersions (count v, each: count v, each v), pushBytes (byte arrays), pushApplied (count v, each v)
// A grant's pushed pages are in it when they came as byte arrays in the body (toWire, src/runtime/envelope.ts,
// leaves small ones there); pages moved to the payload or packed (a `packed` field) go as msgpack.
function writeLockGrant(message: Record<string, unknown>): void {
  const { granted, recall, next } = message;
  const push = pushed(message);
  checkCount(message, 5 + (recall === undefined ? 0 : 1) + (next === undefined ? 0 : 1) + (push ? pushFieldCount : 0));
  writeVarint(message.lockId);
  writeVarint(message.requestId);
  if (typeof granted !== 'boolean') throw notCompact;
  if (recall !== undefined && recall !== true) throw notCompact;
  writeU8((granted ? 1 : 0) | (recall === undefined ? 0 : 2) | (next === undefined ? 0 : 4) | (push ? 8 : 0));
  writeInfo(message.info);
  if (next !== undefined) {
    const value = fields(next, 3);
    writeVarint(value.node);
    writeVarint(value.requestId);
    const nextRecall = value.recall;
    if (typeof nextRecall !== 'boolean') throw notCompact;
    writeU8(nextRecall ? 1 : 0);
  }
  if (push) writePushes(message);
}

/** The fields of pushed pages: pushPages, pushVersions, pushBytes, pushApplied. */
const pushFieldCount = 4;

/** Whether a message carries pushed pages: all four fields or none (else: msgpack). */
function pushed(message: Record<string, unknown>): boolean {
  const pages = message.pushPages !== undefined;
  if (pages !== (message.pushVersions !== undefined) || pages !== (message.pushBytes !== undefined) || pages !== (message.pushApplied !== undefined)) throw notCompact;
  return pages;
}

// pushed pages: pushPages (count v, each v), pushVersions (count v, each: count v, each v),
//               pushBytes (byte arrays), pushApplied (count v, each v)
function writePushes(message: Record<string, unknown>): void {
  writeNumbers(message.pushPages);
  writeLists(message.pushVersions);
  writeByteArrays(message.pushBytes);
  writeNumbers(message.pushApplied);
}

/** A flag field that is absent or `true` (the engine sets these flags only to true): 1 when true. */
function trueFlag(value: unknown): number {
  if (value === undefined) return 0;
  if (value !== true) throw notCompact;
  return 1;
}

// barrierArrive: barrierId v, parties v, flags u8 (bit 0 bundled, 1 round, 2 vcMax, 3 vcMin, 4 flushed, 5 peer,
//                6 peerFlushed, 7 pushed), arrivals (count v, each v), info, then bundled, round v, vcMax
//                (count v, each v), vcMin (the same), pushed pages, each when its bit is set
function writeBarrierArrive(message: Record<string, unknown>): void {
  const { bundled, round, vcMax, vcMin } = message;
  const flushed = trueFlag(message.flushed);
  const peer = trueFlag(message.peer);
  const peerFlushed = trueFlag(message.peerFlushed);
  const push = pushed(message);
  // type, barrierId, parties, arrivals, info, and the optional fields present.
  checkCount(message, 5 + (bundled === undefined ? 0 : 1) + (round === undefined ? 0 : 1) + (vcMax === undefined ? 0 : 1)
    + (vcMin === undefined ? 0 : 1) + flushed + peer + peerFlushed + (push ? pushFieldCount : 0));
  writeVarint(message.barrierId);
  writeVarint(message.parties);
  writeU8((bundled === undefined ? 0 : 1) | (round === undefined ? 0 : 2) | (vcMax === undefined ? 0 : 4) | (vcMin === undefined ? 0 : 8)
    | (flushed << 4) | (peer << 5) | (peerFlushed << 6) | (push ? 128 : 0));
  writeNumbers(message.arrivals);
  writeInfo(message.info);
  if (bundled !== undefined) writeBundled(bundled);
  if (round !== undefined) writeVarint(round);
  if (vcMax !== undefined) writeNumbers(vcMax);
  if (vcMin !== undefined) writeNumbers(vcMin);
  if (push) writePushes(message);
}

// barrierDepart: barrierId v, requestIds (count v, each v), error (length u8 then ASCII), serial v, floor (count v,
//                each v), info, flags u8 (bit 0 plan, bit 1 pushed, bit 2 the plan's peerLocal), then plan (round v,
//                parties v, parent v, local v, children v, peerLocal v), then pushed pages
function writeBarrierDepart(message: Record<string, unknown>): void {
  const planValue = message.plan;
  const push = pushed(message);
  checkCount(message, 7 + (planValue === undefined ? 0 : 1) + (push ? pushFieldCount : 0));
  writeVarint(message.barrierId);
  writeNumbers(message.requestIds);
  writeString(message.error);
  writeVarint(message.serial);
  writeNumbers(message.floor);
  writeInfo(message.info);
  if (planValue === undefined) {
    writeU8(push ? 2 : 0);
  } else {
    if (typeof planValue !== 'object' || planValue === null) throw notCompact;
    const plan = planValue as Record<string, unknown>;
    const peerLocal = plan.peerLocal;
    fields(plan, peerLocal === undefined ? 5 : 6);
    writeU8(1 | (push ? 2 : 0) | (peerLocal === undefined ? 0 : 4));
    writeVarint(plan.round);
    writeVarint(plan.parties);
    writeVarint(plan.parent);
    writeVarint(plan.local);
    writeVarint(plan.children);
    if (peerLocal !== undefined) writeVarint(peerLocal);
  }
  if (push) writePushes(message);
}

// diffs: flags u8 (bit 0 origin), interval, pages and diffs as in a bundled batch, then origin v
function writeDiffs(message: Record<string, unknown>): void {
  const origin = message.origin;
  checkCount(message, origin === undefined ? 4 : 5);
  writeU8(origin === undefined ? 0 : 1);
  writeVarint(message.interval);
  writeNumbers(message.pages);
  writeByteArrays(message.diffs);
  if (origin !== undefined) writeVarint(origin);
}

function writeBarrierFlush(message: Record<string, unknown>): void {
  checkKeys(message, barrierFlushKeys);
  writeVarint(message.barrierId);
  writeVarint(message.round);
}

// lockRecall: lockId v, flags u8 (bit 0 tryOnly, bit 1 early)
function writeLockRecall(message: Record<string, unknown>): void {
  checkKeys(message, lockRecallKeys);
  writeVarint(message.lockId);
  if (typeof message.tryOnly !== 'boolean') throw notCompact;
  const early = present(message, 'early');
  if (early && typeof message.early !== 'boolean') throw notCompact;
  writeU8((message.tryOnly ? 1 : 0) | (early ? 2 : 0) | (early && message.early === true ? 4 : 0));
}

// lockRelease: lockId v, flags u8 (bit 0 bundled, bit 1 reuses), info, then bundled, then reuses v
function writeLockRelease(message: Record<string, unknown>): void {
  const { bundled, reuses } = message;
  checkCount(message, 3 + (bundled === undefined ? 0 : 1) + (reuses === undefined ? 0 : 1));
  writeVarint(message.lockId);
  writeU8((bundled === undefined ? 0 : 1) | (reuses === undefined ? 0 : 2));
  writeInfo(message.info);
  if (bundled !== undefined) writeBundled(bundled);
  if (reuses !== undefined) writeVarint(reuses);
}

const pageReplyLengths = 1;
const pageReplyPacked = 2;

function writeLists(values: unknown): void {
  if (!Array.isArray(values)) throw notCompact;
  const count = values.length;
  writeVarint(count);
  for (let k = 0; k < count; k++) writeNumbers(values[k]);
}

// pageRequest: type, page, need, extraPages, extraNeeds, origin (optional), ahead (optional)
function writePageRequest(message: Record<string, unknown>): void {
  const { origin, ahead } = message;
  checkCount(message, 5 + (origin === undefined ? 0 : 1) + (ahead === undefined ? 0 : 1));
  writeVarint(message.page);
  writeNumbers(message.need);
  writeNumbers(message.extraPages);
  writeLists(message.extraNeeds);
  if (ahead !== undefined && typeof ahead !== 'boolean') throw notCompact;
  writeU8((origin === undefined ? 0 : 1) | (ahead === undefined ? 0 : 2) | (ahead === true ? 4 : 0));
  if (origin !== undefined) writeVarint(origin);
}

/** One page copy: its bytes in the body, or (lengths form) only its length. */
function writeCopy(value: unknown, lengths: boolean): void {
  if (lengths) {
    writeVarint(value);
    return;
  }
  writeBytes(value);
}

// pageReply: type, page, version, bytes, extraPages, extraVersions, extraBytes, packed (optional)
function writePageReply(message: Record<string, unknown>): void {
  const packed = message.packed;
  checkCount(message, packed === undefined ? 7 : 8);
  writeVarint(message.page);
  // The envelope leaves either every copy in the body or every length (toWire): a mix is not ours.
  const lengths = typeof message.bytes === 'number';
  writeU8((lengths ? pageReplyLengths : 0) | (packed === undefined ? 0 : pageReplyPacked));
  writeNumbers(message.version);
  writeCopy(message.bytes, lengths);
  writeNumbers(message.extraPages);
  writeLists(message.extraVersions);
  const extraBytes = message.extraBytes;
  if (!Array.isArray(extraBytes)) throw notCompact;
  const count = extraBytes.length;
  writeVarint(count);
  for (let k = 0; k < count; k++) writeCopy(extraBytes[k], lengths);
  if (packed !== undefined) writeNumbers(packed);
}

// lineOpDone: type, requestId, result, info, quiet (optional, true)
function writeLineOpDone(message: Record<string, unknown>): void {
  const quiet = message.quiet;
  const push = pushed(message);
  checkCount(message, (quiet === undefined ? 4 : 5) + (push ? pushFieldCount : 0));
  if (quiet !== undefined && quiet !== true) throw notCompact;
  writeVarint(message.requestId);
  const result = message.result;
  if (result === null) writeU8(0);
  else { writeU8(1); writeString(result); }
  writeInfo(message.info);
  writeU8((quiet === true ? 1 : 0) | (push ? 2 : 0));
  if (push) writePushes(message);
}

/**
 * The compact body of `message` after `reserveBytes` bytes left for the
 * caller (a frame header), or null when it has no compact form (the caller
 * encodes it as msgpack).
 */
export function encodeCompactAfter(message: WireMessage, reserveBytes: number): Buffer | null {
  const type = compactTypeCodes.get(message.type);
  if (type === undefined) return null;
  assert(reserveBytes >= 0 && reserveBytes <= 0xff, 'a reserve of at most 255 bytes');
  if (scratch.length - slabUsed < reserveBytes + compactBodyBytesMax) {
    scratch = Buffer.allocUnsafeSlow(compactSlabBytes);
    slabUsed = 0;
  }
  const start = slabUsed;
  at = start + reserveBytes;
  limit = at + compactBodyBytesMax;
  try {
    writeU8(compactMarker);
    writeU8(type);
    switch (type) {
      case compactTypes.lineOp: writeLineOp(message); break;
      case compactTypes.lineOpDone: writeLineOpDone(message); break;
      case compactTypes.lineRequest: case compactTypes.lineInvalidate: writeLine(message); break;
      case compactTypes.lineInvalidated: writeLineAndList(message, lineInvalidatedKeys, 'more', compactTypes.lineInvalidatedMany, (_line, more) => writeNumbers(more)); break;
      case compactTypes.lineShareRequest: writeLineAndList(message, lineShareRequestKeys, 'ahead', compactTypes.lineShareRequestAhead, writeAhead); break;
      case compactTypes.lineRecall: writeLineRecall(message); break;
      case compactTypes.lineShareGrant: writeLineShareGrant(message); break;
      case compactTypes.lineRelease: writeLineRelease(message); break;
      case compactTypes.lineGrant: writeLineGrant(message); break;
      case compactTypes.lockRequest: writeLockRequest(message); break;
      case compactTypes.lockGrant: writeLockGrant(message); break;
      case compactTypes.lockRecall: writeLockRecall(message); break;
      case compactTypes.lockBusy: checkKeys(message, lockBusyKeys); writeVarint(message.lockId); break;
      case compactTypes.lockRelease: writeLockRelease(message); break;
      case compactTypes.barrierArrive: writeBarrierArrive(message); break;
      case compactTypes.barrierDepart: writeBarrierDepart(message); break;
      case compactTypes.barrierFlush: writeBarrierFlush(message); break;
      case compactTypes.diffs: writeDiffs(message); break;
      case compactTypes.pageRequest: writePageRequest(message); break;
      case compactTypes.pageReply: writePageReply(message); break;
    }
  } catch (error) {
    if (error === notCompact) return null;
    throw error;
  }
  // The next frame starts on an 8-byte boundary (the slab's ArrayBuffer is malloc'd, so aligned).
  slabUsed = Math.min(scratch.length, (at + 7) & ~7);
  newestStart = start;
  newestEnd = slabUsed;
  return scratch.subarray(start, at);
}

/**
 * The caller is done with `frame`, the newest buffer encodeCompactAfter returned (the socket took it whole:
 * its write queue was empty right after the write, or its bytes were copied): the next frame is written over
 * it. A connection's frames then reuse the same few hundred bytes of the slab, warm in the cache, instead of
 * walking through fresh memory and a new 64 KiB slab every ~15 one-page replies (page faults, and external
 * memory for V8's collector to count). A frame that is not the newest, or of an old slab, is left alone.
 */
export function compactFrameDone(frame: Uint8Array): void {
  if (frame.buffer !== scratch.buffer || frame.byteOffset !== scratch.byteOffset + newestStart || slabUsed !== newestEnd) return;
  slabUsed = newestStart;
  newestStart = -1;
  newestEnd = -1;
}

// ------------------------------------------------------------ decoding

// The body being read (decodeCompact is not re-entrant: nothing it calls reads another), as module state read by
// small functions, as the encoder's: every read checks the bytes are there.
let input: Uint8Array = new Uint8Array(0);
/** The next byte to read, and the body's end. */
let position = 0;
let end = 0;
/** Set where the body holds byte arrays' lengths whose bytes are the frame's payload (readByteArrays). */
let payloadNamed = false;

function remaining(): number {
  return end - position;
}

function u8(): number {
  if (position >= end) throw new FrameError('a compact body ends early');
  return input[position++]!;
}

/** A varint: one byte (the most of them: counts, flags, small ids) read inline, longer ones by varintLong. */
function varint(): number {
  if (position < end) {
    const byte = input[position]!;
    if (byte < 0x80) {
      position++;
      return byte;
    }
  }
  return varintLong();
}

function varintLong(): number {
  let value = 0;
  let scale = 1;
  for (let k = 0; k < varintBytesMax; k++) {
    const byte = u8();
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(value)) throw new FrameError('a compact varint beyond a safe integer');
      return value;
    }
    scale *= 0x80;
  }
  throw new FrameError(`a compact varint longer than ${varintBytesMax} bytes`);
}

/** A count of items of at least one byte each: never more than the bytes left. */
function readCount(): number {
  const value = varint();
  if (value > end - position) throw new FrameError(`a compact count of ${value} with ${end - position} bytes left`);
  return value;
}

function string(): string {
  const length = u8();
  if (length > end - position) throw new FrameError('a compact string ends early');
  let text = '';
  for (let k = 0; k < length; k++) {
    const code = input[position++]!;
    if (code >= 0x80) throw new FrameError('a compact string that is not ASCII');
    text += String.fromCharCode(code);
  }
  return text;
}

function numbers(): number[] {
  const itemCount = readCount();
  // Built by push, as msgpackr builds its arrays: V8 keeps them packed (`new Array(count)` is holey, and the
  // engine's code that also sees its own packed arrays then runs slower everywhere: a page fetch's `need`,
  // `extraPages` and versions are kept in its page states and fetcher lists).
  const values: number[] = [];
  for (let k = 0; k < itemCount; k++) {
    // One-byte varints inline (past the end the load is undefined: varintLong then says the body ends early).
    const byte = input[position]!;
    if (byte < 0x80) {
      position++;
      values.push(byte);
    } else values.push(varintLong());
  }
  return values;
}

/** `byteCount` bytes as a view of the body (no copy): a body is a buffer of its own, never written again. */
function bytesView(byteCount: number): Uint8Array {
  if (byteCount > end - position) throw new FrameError('compact bytes end early');
  const view = new Uint8Array(input.buffer, input.byteOffset + position, byteCount);
  position += byteCount;
  return view;
}

function lists(): number[][] {
  const listCount = readCount();
  const values: number[][] = [];
  for (let k = 0; k < listCount; k++) values.push(numbers());
  return values;
}

function flag(): boolean {
  const value = u8();
  if (value > 1) throw new FrameError(`a compact flag of ${value}`);
  return value === 1;
}

function readInfo(): { vc: number[]; known: number[]; intervals: { node: number; index: number; pages: number[] }[] } {
  const vc = numbers();
  const known = numbers();
  const intervalCount = readCount();
  const intervals: { node: number; index: number; pages: number[] }[] = [];
  for (let k = 0; k < intervalCount; k++) {
    const node = varint();
    const index = varint();
    intervals.push({ node, index, pages: numbers() });
  }
  return { vc, known, intervals };
}

function readLineOp(): WireMessage {
  const requestId = varint();
  const opCode = u8();
  const op = shippedOps[opCode];
  if (op === undefined) throw new FrameError(`a compact lineOp with op code ${opCode}`);
  const address = varint();
  const width = u8();
  if (width !== 1 && width !== 2 && width !== 4 && width !== 8) throw new FrameError(`a compact lineOp of width ${width}`);
  const operandCount = u8();
  const operands = new Array<string>(operandCount);
  for (let k = 0; k < operandCount; k++) operands[k] = string();
  const info = readInfo();
  const message: WireMessage = { type: 'lineOp', requestId, op, address, width, operands, info };
  const flags = readFlags(2);
  if ((flags & 1) !== 0) message.bundled = readBundled();
  if ((flags & 2) !== 0) readPushes(message);
  return message;
}

function readBundled(): { interval: number; pages: number[]; diffs: Uint8Array[] } {
  const interval = varint();
  const pages = numbers();
  return { interval, pages, diffs: readByteArrays() };
}

/**
 * Byte arrays as writeByteArrays wrote them: views of the body (no copy: a body is a buffer of its own that
 * nothing writes again, src/transport/frame-reader.ts and frame.ts, as a pageReply's copies and msgpack's bin
 * fields are views of it), or, in the payload form, their lengths, which the envelope turns into views of the
 * frame's payload (fromWire; the decoder notes that the body names a payload).
 */
function readByteArrays(): Uint8Array[] {
  const arrayCount = readCount();
  const form = u8();
  if (form !== byteArraysInBody && form !== byteArraysInPayload) throw new FrameError(`compact byte arrays of form ${form}`);
  const lengths: number[] = [];
  let byteCount = 0;
  for (let k = 0; k < arrayCount; k++) {
    const length = varint();
    lengths.push(length);
    byteCount += length;
  }
  if (form === byteArraysInPayload) {
    payloadNamed = true;
    return lengths as unknown as Uint8Array[];
  }
  if (byteCount > end - position) throw new FrameError('compact bytes end early');
  const buffer = input.buffer;
  let at = input.byteOffset + position;
  position += byteCount;
  const views: Uint8Array[] = [];
  for (let k = 0; k < arrayCount; k++) {
    const length = lengths[k]!;
    // The constructor, not subarray (which looks up a species constructor: twice the time a view).
    views.push(new Uint8Array(buffer, at, length));
    at += length;
  }
  return views;
}

/** A flags byte with no bit set beyond `bitCount`. */
function readFlags(bitCount: number): number {
  const flags = u8();
  if (flags >>> bitCount !== 0) throw new FrameError(`compact flags 0x${flags.toString(16)}`);
  return flags;
}

function readLineRelease(): WireMessage {
  const message: WireMessage = { type: 'lineRelease', line: varint() };
  const flags = readFlags(4);
  if ((flags & 1) !== 0) message.info = readInfo();
  if ((flags & 2) !== 0) message.bundled = readBundled();
  if ((flags & 4) !== 0) message.keepShare = true;
  if ((flags & 8) !== 0) readPushes(message);
  return message;
}


function readLineShareGrant(): WireMessage {
  const line = varint();
  const message: WireMessage = { type: 'lineShareGrant', line };
  const flags = readFlags(3);
  if ((flags & 1) !== 0) message.info = readInfo();
  if ((flags & 2) !== 0) message.ahead = readAhead(line);
  if ((flags & 4) !== 0) message.aheadOnly = true;
  return message;
}

function readAhead(line: number): number[] {
  const distances = numbers();
  return distances.map((distance) => {
    if (distance === 0) throw new FrameError('a line ahead at distance 0');
    return line + distance;
  });
}

function readLineGrant(): WireMessage {
  const line = varint();
  const flags = readFlags(5);
  const message: WireMessage = { type: 'lineGrant', line, recall: (flags & 1) !== 0 };
  if ((flags & 16) !== 0) message.share = true;
  if ((flags & 2) !== 0) message.info = readInfo();
  if ((flags & 4) !== 0) message.quiet = true;
  if ((flags & 8) !== 0) message.waiting = numbers();
  return message;
}

function readLockRequest(): WireMessage {
  const lockId = varint();
  const requestId = varint();
  const flags = readFlags(2);
  const message: WireMessage = { type: 'lockRequest', lockId, requestId, tryOnly: (flags & 1) !== 0, info: readInfo() };
  if ((flags & 2) !== 0) message.bundled = readBundled();
  return message;
}

function readLockGrant(): WireMessage {
  const lockId = varint();
  const requestId = varint();
  const flags = readFlags(4);
  const message: WireMessage = { type: 'lockGrant', lockId, requestId, granted: (flags & 1) !== 0, info: readInfo() };
  if ((flags & 2) !== 0) message.recall = true;
  if ((flags & 4) !== 0) {
    const node = varint();
    const nextRequestId = varint();
    message.next = { node, requestId: nextRequestId, recall: flag() };
  }
  if ((flags & 8) !== 0) readPushes(message);
  return message;
}

function readPushes(message: WireMessage): void {
  message.pushPages = numbers();
  const versionCount = readCount();
  const versions = new Array<number[]>(versionCount);
  for (let k = 0; k < versionCount; k++) versions[k] = numbers();
  message.pushVersions = versions;
  message.pushBytes = readByteArrays();
  message.pushApplied = numbers();
}

function readBarrierArrive(): WireMessage {
  const barrierId = varint();
  const parties = varint();
  const flags = readFlags(8);
  const arrivals = numbers();
  const message: WireMessage = { type: 'barrierArrive', barrierId, parties, arrivals, info: readInfo() };
  if ((flags & 1) !== 0) message.bundled = readBundled();
  if ((flags & 2) !== 0) message.round = varint();
  if ((flags & 4) !== 0) message.vcMax = numbers();
  if ((flags & 8) !== 0) message.vcMin = numbers();
  if ((flags & 16) !== 0) message.flushed = true;
  if ((flags & 32) !== 0) message.peer = true;
  if ((flags & 64) !== 0) message.peerFlushed = true;
  if ((flags & 128) !== 0) readPushes(message);
  return message;
}

function readBarrierDepart(): WireMessage {
  const barrierId = varint();
  const requestIds = numbers();
  const error = string();
  const serial = varint();
  const floor = numbers();
  const message: WireMessage = { type: 'barrierDepart', barrierId, requestIds, error, serial, floor, info: readInfo() };
  const flags = readFlags(3);
  if ((flags & 4) !== 0 && (flags & 1) === 0) throw new FrameError('a compact barrierDepart with a peerLocal and no plan');
  if ((flags & 1) !== 0) {
    const round = varint();
    const parties = varint();
    const parent = varint();
    const local = varint();
    const children = varint();
    message.plan = (flags & 4) !== 0 ? { round, parties, parent, local, children, peerLocal: varint() } : { round, parties, parent, local, children };
  }
  if ((flags & 2) !== 0) readPushes(message);
  return message;
}

function readLockRecall(): WireMessage {
  const lockId = varint();
  const flags = readFlags(3);
  if ((flags & 4) !== 0 && (flags & 2) === 0) throw new FrameError('a compact lockRecall with early set and absent');
  const message: WireMessage = { type: 'lockRecall', lockId, tryOnly: (flags & 1) !== 0 };
  if ((flags & 2) !== 0) message.early = (flags & 4) !== 0;
  return message;
}

function readLockRelease(): WireMessage {
  const lockId = varint();
  const flags = readFlags(2);
  const message: WireMessage = { type: 'lockRelease', lockId, info: readInfo() };
  if ((flags & 1) !== 0) message.bundled = readBundled();
  if ((flags & 2) !== 0) message.reuses = varint();
  return message;
}

function readLineOpDone(): WireMessage {
  const requestId = varint();
  const result = flag() ? string() : null;
  const info = readInfo();
  const message: WireMessage = { type: 'lineOpDone', requestId, result, info };
  const flags = readFlags(2);
  if ((flags & 1) !== 0) message.quiet = true;
  if ((flags & 2) !== 0) readPushes(message);
  return message;
}

function readPageRequest(): WireMessage {
  const page = varint();
  const need = numbers();
  const extraPages = numbers();
  const extraNeeds = lists();
  const flags = readFlags(3);
  if ((flags & 4) !== 0 && (flags & 2) === 0) throw new FrameError(`compact flags 0x${flags.toString(16)}`);
  const message: WireMessage = { type: 'pageRequest', page, need, extraPages, extraNeeds };
  if ((flags & 1) !== 0) message.origin = varint();
  if ((flags & 2) !== 0) message.ahead = (flags & 4) !== 0;
  return message;
}

function readPageReply(payloadBytes: number): WireMessage {
  const page = varint();
  const flags = readFlags(2);
  const lengths = (flags & pageReplyLengths) !== 0;
  if (!lengths && payloadBytes > 0) throw new FrameError('a compact pageReply with its copies in the body and a payload');
  const version = numbers();
  const bytes = lengths ? varint() : bytesView(varint());
  const extraPages = numbers();
  const extraVersions = lists();
  const copyCount = readCount();
  const extraBytes: (Uint8Array | number)[] = [];
  for (let k = 0; k < copyCount; k++) extraBytes.push(lengths ? varint() : bytesView(varint()));
  const message: WireMessage = { type: 'pageReply', page, version, bytes, extraPages, extraVersions, extraBytes };
  if ((flags & pageReplyPacked) !== 0) message.packed = numbers();
  return message;
}

/**
 * Decodes a compact body (its first byte is compactMarker). Throws FrameError on anything malformed.
 * `payloadBytes`: the frame's payload, which only a pageReply of the lengths form may have.
 */
export function decodeCompact(body: Uint8Array, payloadBytes = 0): WireMessage {
  input = body;
  position = 1;
  end = body.byteLength;
  payloadNamed = false;
  const type = u8();
  let message: WireMessage;
  switch (type) {
    case compactTypes.lineOp: message = readLineOp(); break;
    case compactTypes.lineOpDone: message = readLineOpDone(); break;
    case compactTypes.lineRequest: message = { type: 'lineRequest', line: varint() }; break;
    case compactTypes.lineRecall: message = { type: 'lineRecall', line: varint() }; break;
    case compactTypes.lineRecallShare: message = { type: 'lineRecall', line: varint(), share: true }; break;
    case compactTypes.lineShareRequest: message = { type: 'lineShareRequest', line: varint() }; break;
    case compactTypes.lineShareRequestAhead: { const line = varint(); message = { type: 'lineShareRequest', line, ahead: readAhead(line) }; break; }
    case compactTypes.lineInvalidate: message = { type: 'lineInvalidate', line: varint() }; break;
    case compactTypes.lineInvalidated: message = { type: 'lineInvalidated', line: varint() }; break;
    case compactTypes.lineInvalidatedMany: message = { type: 'lineInvalidated', line: varint(), more: numbers() }; break;
    case compactTypes.lineShareGrant: message = readLineShareGrant(); break;
    case compactTypes.lineRelease: message = readLineRelease(); break;
    case compactTypes.lineGrant: message = readLineGrant(); break;
    case compactTypes.lockRequest: message = readLockRequest(); break;
    case compactTypes.lockGrant: message = readLockGrant(); break;
    case compactTypes.lockRecall: message = readLockRecall(); break;
    case compactTypes.lockBusy: message = { type: 'lockBusy', lockId: varint() }; break;
    case compactTypes.lockRelease: message = readLockRelease(); break;
    case compactTypes.barrierArrive: message = readBarrierArrive(); break;
    case compactTypes.barrierDepart: message = readBarrierDepart(); break;
    case compactTypes.barrierFlush: message = { type: 'barrierFlush', barrierId: varint(), round: varint() }; break;
    case compactTypes.diffs: {
      const flags = readFlags(1);
      const interval = varint();
      const pages = numbers();
      message = { type: 'diffs', interval, pages, diffs: readByteArrays() };
      if (flags !== 0) message.origin = varint();
      break;
    }
    case compactTypes.pageRequest: message = readPageRequest(); break;
    case compactTypes.pageReply: message = readPageReply(payloadBytes); break;
    default: throw new FrameError(`unknown compact message type ${type}`);
  }
  // Only a pageReply's copies and byte arrays of the payload form (a batch's diffs, pushed copies) are a payload.
  if (payloadBytes > 0 && type !== compactTypes.pageReply && !payloadNamed) throw new FrameError(`a compact ${message.type} body with a payload`);
  if (payloadBytes === 0 && payloadNamed) throw new FrameError(`a compact ${message.type} body names a payload it does not have`);
  if (remaining() !== 0) throw new FrameError(`a compact ${message.type} with ${remaining()} bytes left over`);
  return message;
}
