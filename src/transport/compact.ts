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
//               bundled u8 (0 absent, 1 present) then interval v, pages (count v, each v),
//               diffs (byte arrays, below)
//   lineOpDone: requestId v, result (u8 0 null, 1 string: length u8 then ASCII bytes), info,
//               quiet u8 (0 absent, 1 true)
//   lineRequest, lineRecall: line v
//   lineRelease: line v, flags u8 (bit 0 info, bit 1 bundled), then info, then bundled as in lineOp
//   lineGrant:   line v, flags u8 (bit 0 recall, bit 1 info, bit 2 quiet, bit 3 waiting), then info,
//               then waiting (count v, each v: wire version 7)
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
} as const;

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

function room(byteCount: number): void {
  if (at + byteCount > limit) throw notCompact;
}

function writeU8(value: number): void {
  room(1);
  scratch[at++] = value;
}

function writeVarint(value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw notCompact;
  room(varintBytesMax);
  let rest = value;
  while (rest >= 0x80) {
    scratch[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
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
  writeVarint(values.length);
  for (const value of values) writeVarint(value);
}

/** Own enumerable keys of `value`, all among `allowed` (a field the layout does not know: msgpack). */
function checkKeys(value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw notCompact;
  for (const key in value) if (!allowed.includes(key)) throw notCompact;
  return value as Record<string, unknown>;
}

const infoKeys = ['vc', 'known', 'intervals'] as const;
const intervalKeys = ['node', 'index', 'pages'] as const;
const bundledKeys = ['interval', 'pages', 'diffs'] as const;
const lineOpKeys = ['type', 'requestId', 'op', 'address', 'width', 'operands', 'info', 'bundled'] as const;
const lineOpDoneKeys = ['type', 'requestId', 'result', 'info', 'quiet'] as const;
const lineKeys = ['type', 'line'] as const;
const lineReleaseKeys = ['type', 'line', 'info', 'bundled'] as const;
// pushPages, pushVersions, pushBytes (a grant that carries pages) are not among them: such a grant goes as msgpack.
const lineGrantKeys = ['type', 'line', 'recall', 'info', 'quiet', 'waiting'] as const;
const lockRequestKeys = ['type', 'lockId', 'requestId', 'tryOnly', 'info', 'bundled'] as const;
// A grant's pushed pages are in it when they came as byte arrays in the body (toWire, src/runtime/envelope.ts,
// leaves small ones there); pages moved to the payload or packed (a `packed` field) go as msgpack.
const lockGrantKeys = ['type', 'lockId', 'requestId', 'granted', 'info', 'pushPages', 'pushVersions', 'pushBytes', 'recall', 'next'] as const;
const lockNextKeys = ['node', 'requestId', 'recall'] as const;
const lockRecallKeys = ['type', 'lockId', 'tryOnly', 'early'] as const;
const lockBusyKeys = ['type', 'lockId'] as const;
const lockReleaseKeys = ['type', 'lockId', 'info', 'bundled', 'reuses'] as const;
const barrierArriveKeys = [
  'type', 'barrierId', 'parties', 'arrivals', 'info', 'bundled', 'round', 'vcMax', 'vcMin', 'flushed', 'peer', 'peerFlushed',
  'pushPages', 'pushVersions', 'pushBytes',
] as const;
const barrierDepartKeys = ['type', 'barrierId', 'requestIds', 'error', 'serial', 'floor', 'info', 'plan', 'pushPages', 'pushVersions', 'pushBytes'] as const;
const barrierPlanKeys = ['round', 'parties', 'parent', 'local', 'children', 'peerLocal'] as const;
const barrierFlushKeys = ['type', 'barrierId', 'round'] as const;
const diffsKeys = ['type', 'interval', 'pages', 'diffs', 'origin'] as const;

function writeInfo(value: unknown): void {
  const info = checkKeys(value, infoKeys);
  writeNumbers(info.vc);
  writeNumbers(info.known);
  const intervals = info.intervals;
  if (!Array.isArray(intervals)) throw notCompact;
  writeVarint(intervals.length);
  for (const item of intervals) {
    const record = checkKeys(item, intervalKeys);
    writeVarint(record.node);
    writeVarint(record.index);
    writeNumbers(record.pages);
  }
}

function writeLineOp(message: Record<string, unknown>): void {
  checkKeys(message, lineOpKeys);
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
  for (const operand of operands) writeString(operand);
  writeInfo(message.info);
  if (message.bundled === undefined) {
    if ('bundled' in message) throw notCompact; // present but undefined: msgpack keeps what it keeps
    writeU8(0);
    return;
  }
  writeU8(1);
  writeBundled(message.bundled);
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

function writeLineRelease(message: Record<string, unknown>): void {
  checkKeys(message, lineReleaseKeys);
  writeVarint(message.line);
  const info = present(message, 'info');
  const bundled = present(message, 'bundled');
  writeU8((info ? 1 : 0) | (bundled ? 2 : 0));
  if (info) writeInfo(message.info);
  if (bundled) writeBundled(message.bundled);
}

function writeLineGrant(message: Record<string, unknown>): void {
  checkKeys(message, lineGrantKeys);
  writeVarint(message.line);
  if (typeof message.recall !== 'boolean') throw notCompact;
  const info = present(message, 'info');
  const quiet = present(message, 'quiet');
  if (quiet && message.quiet !== true) throw notCompact;
  const waiting = present(message, 'waiting');
  writeU8((message.recall ? 1 : 0) | (info ? 2 : 0) | (quiet ? 4 : 0) | (waiting ? 8 : 0));
  if (info) writeInfo(message.info);
  if (waiting) writeNumbers(message.waiting);
}

function writeBundled(value: unknown): void {
  const bundled = checkKeys(value, bundledKeys);
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

function writeBoolean(value: unknown): void {
  if (typeof value !== 'boolean') throw notCompact;
  writeU8(value ? 1 : 0);
}

/** Byte arrays' form byte (writeByteArrays): their bytes follow their lengths in the body, or are the frame's payload. */
const byteArraysInBody = 0;
const byteArraysInPayload = 1;

// byte arrays (a batch's diffs, pushed pages' copies): count v, form u8 (byteArraysInBody, byteArraysInPayload),
//   each one's length v, then (in the body) all their bytes back to back: the reader copies them out in one piece,
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
  checkKeys(message, lockRequestKeys);
  writeVarint(message.lockId);
  writeVarint(message.requestId);
  if (typeof message.tryOnly !== 'boolean') throw notCompact;
  const bundled = present(message, 'bundled');
  writeU8((message.tryOnly ? 1 : 0) | (bundled ? 2 : 0));
  writeInfo(message.info);
  if (bundled) writeBundled(message.bundled);
}

// lockGrant: lockId v, requestId v, flags u8 (bit 0 granted, 1 recall, 2 next, 3 pushed), info,
//            then next (node v, requestId v, recall u8), then pushPages (count v, each v),
//            pushVersions (count v, each: count v, each v), pushBytes (byte arrays)
function writeLockGrant(message: Record<string, unknown>): void {
  checkKeys(message, lockGrantKeys);
  writeVarint(message.lockId);
  writeVarint(message.requestId);
  if (typeof message.granted !== 'boolean') throw notCompact;
  const recall = present(message, 'recall');
  if (recall && message.recall !== true) throw notCompact;
  const next = present(message, 'next');
  const push = pushed(message);
  writeU8((message.granted ? 1 : 0) | (recall ? 2 : 0) | (next ? 4 : 0) | (push ? 8 : 0));
  writeInfo(message.info);
  if (next) {
    const value = checkKeys(message.next, lockNextKeys);
    writeVarint(value.node);
    writeVarint(value.requestId);
    writeBoolean(value.recall);
  }
  if (push) writePushes(message);
}

/** Whether a message carries pushed pages: all three fields or none (else: msgpack). */
function pushed(message: Record<string, unknown>): boolean {
  const pages = present(message, 'pushPages');
  if (pages !== present(message, 'pushVersions') || pages !== present(message, 'pushBytes')) throw notCompact;
  return pages;
}

// pushed pages: pushPages (count v, each v), pushVersions (count v, each: count v, each v),
//               pushBytes (byte arrays)
function writePushes(message: Record<string, unknown>): void {
  writeNumbers(message.pushPages);
  const versions = message.pushVersions;
  if (!Array.isArray(versions)) throw notCompact;
  writeVarint(versions.length);
  for (const version of versions) writeNumbers(version);
  writeByteArrays(message.pushBytes);
}

/** A field that is absent or `true` (the engine sets these flags only to true). */
function presentTrue(message: Record<string, unknown>, key: string): boolean {
  if (!present(message, key)) return false;
  if (message[key] !== true) throw notCompact;
  return true;
}

// barrierArrive: barrierId v, parties v, flags u8 (bit 0 bundled, 1 round, 2 vcMax, 3 vcMin, 4 flushed, 5 peer,
//                6 peerFlushed, 7 pushed), arrivals (count v, each v), info, then bundled, round v, vcMax
//                (count v, each v), vcMin (the same), pushed pages, each when its bit is set
function writeBarrierArrive(message: Record<string, unknown>): void {
  checkKeys(message, barrierArriveKeys);
  writeVarint(message.barrierId);
  writeVarint(message.parties);
  const bundled = present(message, 'bundled');
  const round = present(message, 'round');
  const vcMax = present(message, 'vcMax');
  const vcMin = present(message, 'vcMin');
  const flags = (bundled ? 1 : 0) | (round ? 2 : 0) | (vcMax ? 4 : 0) | (vcMin ? 8 : 0)
    | (presentTrue(message, 'flushed') ? 16 : 0) | (presentTrue(message, 'peer') ? 32 : 0)
    | (presentTrue(message, 'peerFlushed') ? 64 : 0) | (pushed(message) ? 128 : 0);
  writeU8(flags);
  writeNumbers(message.arrivals);
  writeInfo(message.info);
  if (bundled) writeBundled(message.bundled);
  if (round) writeVarint(message.round);
  if (vcMax) writeNumbers(message.vcMax);
  if (vcMin) writeNumbers(message.vcMin);
  if ((flags & 128) !== 0) writePushes(message);
}

// barrierDepart: barrierId v, requestIds (count v, each v), error (length u8 then ASCII), serial v, floor (count v,
//                each v), info, flags u8 (bit 0 plan, bit 1 pushed, bit 2 the plan's peerLocal), then plan (round v,
//                parties v, parent v, local v, children v, peerLocal v), then pushed pages
function writeBarrierDepart(message: Record<string, unknown>): void {
  checkKeys(message, barrierDepartKeys);
  writeVarint(message.barrierId);
  writeNumbers(message.requestIds);
  writeString(message.error);
  writeVarint(message.serial);
  writeNumbers(message.floor);
  writeInfo(message.info);
  const plan = present(message, 'plan') ? checkKeys(message.plan, barrierPlanKeys) : null;
  const peerLocal = plan !== null && present(plan, 'peerLocal');
  const push = pushed(message);
  writeU8((plan !== null ? 1 : 0) | (push ? 2 : 0) | (peerLocal ? 4 : 0));
  if (plan !== null) {
    writeVarint(plan.round);
    writeVarint(plan.parties);
    writeVarint(plan.parent);
    writeVarint(plan.local);
    writeVarint(plan.children);
    if (peerLocal) writeVarint(plan.peerLocal);
  }
  if (push) writePushes(message);
}

// diffs: flags u8 (bit 0 origin), interval, pages and diffs as in a bundled batch, then origin v
function writeDiffs(message: Record<string, unknown>): void {
  checkKeys(message, diffsKeys);
  const origin = present(message, 'origin');
  writeU8(origin ? 1 : 0);
  writeBundled({ interval: message.interval, pages: message.pages, diffs: message.diffs });
  if (origin) writeVarint(message.origin);
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
  checkKeys(message, lockReleaseKeys);
  writeVarint(message.lockId);
  const bundled = present(message, 'bundled');
  const reuses = present(message, 'reuses');
  writeU8((bundled ? 1 : 0) | (reuses ? 2 : 0));
  writeInfo(message.info);
  if (bundled) writeBundled(message.bundled);
  if (reuses) writeVarint(message.reuses);
}

const pageRequestKeys = ['type', 'page', 'need', 'extraPages', 'extraNeeds', 'origin', 'ahead'] as const;
const pageReplyKeys = ['type', 'page', 'version', 'bytes', 'extraPages', 'extraVersions', 'extraBytes', 'packed'] as const;
const pageReplyLengths = 1;
const pageReplyPacked = 2;

function writeLists(values: unknown): void {
  if (!Array.isArray(values)) throw notCompact;
  writeVarint(values.length);
  for (const value of values) writeNumbers(value);
}

function writePageRequest(message: Record<string, unknown>): void {
  checkKeys(message, pageRequestKeys);
  writeVarint(message.page);
  writeNumbers(message.need);
  writeNumbers(message.extraPages);
  writeLists(message.extraNeeds);
  const origin = present(message, 'origin');
  const ahead = present(message, 'ahead');
  if (ahead && typeof message.ahead !== 'boolean') throw notCompact;
  writeU8((origin ? 1 : 0) | (ahead ? 2 : 0) | (message.ahead === true ? 4 : 0));
  if (origin) writeVarint(message.origin);
}

/** One page copy: its bytes in the body, or (lengths form) only its length. */
function writeCopy(value: unknown, lengths: boolean): void {
  if (lengths) {
    writeVarint(value);
    return;
  }
  writeBytes(value);
}

function writePageReply(message: Record<string, unknown>): void {
  checkKeys(message, pageReplyKeys);
  writeVarint(message.page);
  // The envelope leaves either every copy in the body or every length (toWire): a mix is not ours.
  const lengths = typeof message.bytes === 'number';
  const packed = present(message, 'packed');
  writeU8((lengths ? pageReplyLengths : 0) | (packed ? pageReplyPacked : 0));
  writeNumbers(message.version);
  writeCopy(message.bytes, lengths);
  writeNumbers(message.extraPages);
  writeLists(message.extraVersions);
  const extraBytes = message.extraBytes;
  if (!Array.isArray(extraBytes)) throw notCompact;
  writeVarint(extraBytes.length);
  for (const copy of extraBytes) writeCopy(copy, lengths);
  if (packed) writeNumbers(message.packed);
}

function writeLineOpDone(message: Record<string, unknown>): void {
  checkKeys(message, lineOpDoneKeys);
  writeVarint(message.requestId);
  if (message.result === null) writeU8(0);
  else { writeU8(1); writeString(message.result); }
  writeInfo(message.info);
  if (message.quiet === true) writeU8(1);
  else if (!('quiet' in message)) writeU8(0);
  else throw notCompact;
}

/**
 * The compact body of `message` after `reserveBytes` bytes left for the
 * caller (a frame header), or null when it has no compact form (the caller
 * encodes it as msgpack).
 */
export function encodeCompactAfter(message: WireMessage, reserveBytes: number): Buffer | null {
  const type = Object.hasOwn(compactTypes, message.type) ? compactTypes[message.type as keyof typeof compactTypes] : 0;
  if (type === 0) return null;
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
      case compactTypes.lineRequest: case compactTypes.lineRecall: writeLine(message); break;
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
  return scratch.subarray(start, at);
}

// ------------------------------------------------------------ decoding

/** A compact body being read; every read checks the bytes are there. */
class Reader {
  private readonly bytes: Uint8Array;
  private position: number;
  /** Set where the body holds byte arrays' lengths whose bytes are the frame's payload (readByteArrays). */
  payloadNamed = false;

  constructor(bytes: Uint8Array, position: number) {
    this.bytes = bytes;
    this.position = position;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.position;
  }

  u8(): number {
    if (this.position >= this.bytes.byteLength) throw new FrameError('a compact body ends early');
    return this.bytes[this.position++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let k = 0; k < varintBytesMax; k++) {
      const byte = this.u8();
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
  count(): number {
    const count = this.varint();
    if (count > this.remaining) throw new FrameError(`a compact count of ${count} with ${this.remaining} bytes left`);
    return count;
  }

  string(): string {
    const length = this.u8();
    if (length > this.remaining) throw new FrameError('a compact string ends early');
    let text = '';
    for (let k = 0; k < length; k++) {
      const code = this.bytes[this.position++]!;
      if (code >= 0x80) throw new FrameError('a compact string that is not ASCII');
      text += String.fromCharCode(code);
    }
    return text;
  }

  numbers(): number[] {
    const count = this.count();
    // Built by push, as msgpackr builds its arrays: V8 keeps them packed (`new Array(count)` is holey, and the
    // engine's code that also sees its own packed arrays then runs slower everywhere: a page fetch's `need`,
    // `extraPages` and versions are kept in its page states and fetcher lists).
    const values: number[] = [];
    for (let k = 0; k < count; k++) values.push(this.varint());
    return values;
  }

  /** `byteCount` bytes, copied (a message may be kept longer than the received chunk should be). */
  bytesCopy(byteCount: number): Uint8Array {
    if (byteCount > this.remaining) throw new FrameError('compact bytes end early');
    const copy = new Uint8Array(byteCount);
    copy.set(this.bytes.subarray(this.position, this.position + byteCount));
    this.position += byteCount;
    return copy;
  }

  /** `byteCount` bytes as a view of the body (no copy). */
  bytesView(byteCount: number): Uint8Array {
    if (byteCount > this.remaining) throw new FrameError('compact bytes end early');
    const view = this.bytes.subarray(this.position, this.position + byteCount);
    this.position += byteCount;
    return view;
  }

  lists(): number[][] {
    const count = this.count();
    const lists: number[][] = [];
    for (let k = 0; k < count; k++) lists.push(this.numbers());
    return lists;
  }

  flag(): boolean {
    const value = this.u8();
    if (value > 1) throw new FrameError(`a compact flag of ${value}`);
    return value === 1;
  }
}

function readInfo(reader: Reader): { vc: number[]; known: number[]; intervals: { node: number; index: number; pages: number[] }[] } {
  const vc = reader.numbers();
  const known = reader.numbers();
  const count = reader.count();
  const intervals = new Array<{ node: number; index: number; pages: number[] }>(count);
  for (let k = 0; k < count; k++) {
    const node = reader.varint();
    const index = reader.varint();
    intervals[k] = { node, index, pages: reader.numbers() };
  }
  return { vc, known, intervals };
}

function readLineOp(reader: Reader): WireMessage {
  const requestId = reader.varint();
  const opCode = reader.u8();
  const op = shippedOps[opCode];
  if (op === undefined) throw new FrameError(`a compact lineOp with op code ${opCode}`);
  const address = reader.varint();
  const width = reader.u8();
  if (width !== 1 && width !== 2 && width !== 4 && width !== 8) throw new FrameError(`a compact lineOp of width ${width}`);
  const operandCount = reader.u8();
  const operands = new Array<string>(operandCount);
  for (let k = 0; k < operandCount; k++) operands[k] = reader.string();
  const info = readInfo(reader);
  const message: WireMessage = { type: 'lineOp', requestId, op, address, width, operands, info };
  if (reader.flag()) message.bundled = readBundled(reader);
  return message;
}

function readBundled(reader: Reader): { interval: number; pages: number[]; diffs: Uint8Array[] } {
  const interval = reader.varint();
  const pages = reader.numbers();
  return { interval, pages, diffs: readByteArrays(reader) };
}

/**
 * Byte arrays as writeByteArrays wrote them: views of one copy of their bytes (one allocation for a message's
 * diffs, not one each), or, in the payload form, their lengths, which the envelope turns into views of the
 * frame's payload (fromWire; the reader notes that the body names a payload).
 */
function readByteArrays(reader: Reader): Uint8Array[] {
  const count = reader.count();
  const form = reader.u8();
  if (form !== byteArraysInBody && form !== byteArraysInPayload) throw new FrameError(`compact byte arrays of form ${form}`);
  const lengths: number[] = [];
  let byteCount = 0;
  for (let k = 0; k < count; k++) {
    const length = reader.varint();
    lengths.push(length);
    byteCount += length;
  }
  if (form === byteArraysInPayload) {
    reader.payloadNamed = true;
    return lengths as unknown as Uint8Array[];
  }
  const bytes = reader.bytesCopy(byteCount);
  const buffer = bytes.buffer;
  const views: Uint8Array[] = [];
  let at = 0;
  for (let k = 0; k < count; k++) {
    const length = lengths[k]!;
    // The constructor, not subarray (which looks up a species constructor: twice the time a view).
    views.push(new Uint8Array(buffer, at, length));
    at += length;
  }
  return views;
}

/** A flags byte with no bit set beyond `bitCount`. */
function readFlags(reader: Reader, bitCount: number): number {
  const flags = reader.u8();
  if (flags >>> bitCount !== 0) throw new FrameError(`compact flags 0x${flags.toString(16)}`);
  return flags;
}

function readLineRelease(reader: Reader): WireMessage {
  const message: WireMessage = { type: 'lineRelease', line: reader.varint() };
  const flags = readFlags(reader, 2);
  if ((flags & 1) !== 0) message.info = readInfo(reader);
  if ((flags & 2) !== 0) message.bundled = readBundled(reader);
  return message;
}

function readLineGrant(reader: Reader): WireMessage {
  const line = reader.varint();
  const flags = readFlags(reader, 4);
  const message: WireMessage = { type: 'lineGrant', line, recall: (flags & 1) !== 0 };
  if ((flags & 2) !== 0) message.info = readInfo(reader);
  if ((flags & 4) !== 0) message.quiet = true;
  if ((flags & 8) !== 0) message.waiting = reader.numbers();
  return message;
}

function readLockRequest(reader: Reader): WireMessage {
  const lockId = reader.varint();
  const requestId = reader.varint();
  const flags = readFlags(reader, 2);
  const message: WireMessage = { type: 'lockRequest', lockId, requestId, tryOnly: (flags & 1) !== 0, info: readInfo(reader) };
  if ((flags & 2) !== 0) message.bundled = readBundled(reader);
  return message;
}

function readLockGrant(reader: Reader): WireMessage {
  const lockId = reader.varint();
  const requestId = reader.varint();
  const flags = readFlags(reader, 4);
  const message: WireMessage = { type: 'lockGrant', lockId, requestId, granted: (flags & 1) !== 0, info: readInfo(reader) };
  if ((flags & 2) !== 0) message.recall = true;
  if ((flags & 4) !== 0) {
    const node = reader.varint();
    const nextRequestId = reader.varint();
    message.next = { node, requestId: nextRequestId, recall: reader.flag() };
  }
  if ((flags & 8) !== 0) readPushes(reader, message);
  return message;
}

function readPushes(reader: Reader, message: WireMessage): void {
  message.pushPages = reader.numbers();
  const versionCount = reader.count();
  const versions = new Array<number[]>(versionCount);
  for (let k = 0; k < versionCount; k++) versions[k] = reader.numbers();
  message.pushVersions = versions;
  message.pushBytes = readByteArrays(reader);
}

function readBarrierArrive(reader: Reader): WireMessage {
  const barrierId = reader.varint();
  const parties = reader.varint();
  const flags = readFlags(reader, 8);
  const arrivals = reader.numbers();
  const message: WireMessage = { type: 'barrierArrive', barrierId, parties, arrivals, info: readInfo(reader) };
  if ((flags & 1) !== 0) message.bundled = readBundled(reader);
  if ((flags & 2) !== 0) message.round = reader.varint();
  if ((flags & 4) !== 0) message.vcMax = reader.numbers();
  if ((flags & 8) !== 0) message.vcMin = reader.numbers();
  if ((flags & 16) !== 0) message.flushed = true;
  if ((flags & 32) !== 0) message.peer = true;
  if ((flags & 64) !== 0) message.peerFlushed = true;
  if ((flags & 128) !== 0) readPushes(reader, message);
  return message;
}

function readBarrierDepart(reader: Reader): WireMessage {
  const barrierId = reader.varint();
  const requestIds = reader.numbers();
  const error = reader.string();
  const serial = reader.varint();
  const floor = reader.numbers();
  const message: WireMessage = { type: 'barrierDepart', barrierId, requestIds, error, serial, floor, info: readInfo(reader) };
  const flags = readFlags(reader, 3);
  if ((flags & 4) !== 0 && (flags & 1) === 0) throw new FrameError('a compact barrierDepart with a peerLocal and no plan');
  if ((flags & 1) !== 0) {
    const round = reader.varint();
    const parties = reader.varint();
    const parent = reader.varint();
    const local = reader.varint();
    const children = reader.varint();
    message.plan = (flags & 4) !== 0 ? { round, parties, parent, local, children, peerLocal: reader.varint() } : { round, parties, parent, local, children };
  }
  if ((flags & 2) !== 0) readPushes(reader, message);
  return message;
}

function readLockRecall(reader: Reader): WireMessage {
  const lockId = reader.varint();
  const flags = readFlags(reader, 3);
  if ((flags & 4) !== 0 && (flags & 2) === 0) throw new FrameError('a compact lockRecall with early set and absent');
  const message: WireMessage = { type: 'lockRecall', lockId, tryOnly: (flags & 1) !== 0 };
  if ((flags & 2) !== 0) message.early = (flags & 4) !== 0;
  return message;
}

function readLockRelease(reader: Reader): WireMessage {
  const lockId = reader.varint();
  const flags = readFlags(reader, 2);
  const message: WireMessage = { type: 'lockRelease', lockId, info: readInfo(reader) };
  if ((flags & 1) !== 0) message.bundled = readBundled(reader);
  if ((flags & 2) !== 0) message.reuses = reader.varint();
  return message;
}

function readLineOpDone(reader: Reader): WireMessage {
  const requestId = reader.varint();
  const result = reader.flag() ? reader.string() : null;
  const info = readInfo(reader);
  const message: WireMessage = { type: 'lineOpDone', requestId, result, info };
  if (reader.flag()) message.quiet = true;
  return message;
}

function readPageRequest(reader: Reader): WireMessage {
  const page = reader.varint();
  const need = reader.numbers();
  const extraPages = reader.numbers();
  const extraNeeds = reader.lists();
  const flags = readFlags(reader, 3);
  if ((flags & 4) !== 0 && (flags & 2) === 0) throw new FrameError(`compact flags 0x${flags.toString(16)}`);
  const message: WireMessage = { type: 'pageRequest', page, need, extraPages, extraNeeds };
  if ((flags & 1) !== 0) message.origin = reader.varint();
  if ((flags & 2) !== 0) message.ahead = (flags & 4) !== 0;
  return message;
}

function readPageReply(reader: Reader, payloadBytes: number): WireMessage {
  const page = reader.varint();
  const flags = readFlags(reader, 2);
  const lengths = (flags & pageReplyLengths) !== 0;
  if (!lengths && payloadBytes > 0) throw new FrameError('a compact pageReply with its copies in the body and a payload');
  const copy = (): Uint8Array | number => (lengths ? reader.varint() : reader.bytesView(reader.varint()));
  const version = reader.numbers();
  const bytes = copy();
  const extraPages = reader.numbers();
  const extraVersions = reader.lists();
  const count = reader.count();
  const extraBytes: (Uint8Array | number)[] = [];
  for (let k = 0; k < count; k++) extraBytes.push(copy());
  const message: WireMessage = { type: 'pageReply', page, version, bytes, extraPages, extraVersions, extraBytes };
  if ((flags & pageReplyPacked) !== 0) message.packed = reader.numbers();
  return message;
}

/**
 * Decodes a compact body (its first byte is compactMarker). Throws FrameError on anything malformed.
 * `payloadBytes`: the frame's payload, which only a pageReply of the lengths form may have.
 */
export function decodeCompact(body: Uint8Array, payloadBytes = 0): WireMessage {
  const reader = new Reader(body, 1);
  const type = reader.u8();
  let message: WireMessage;
  switch (type) {
    case compactTypes.lineOp: message = readLineOp(reader); break;
    case compactTypes.lineOpDone: message = readLineOpDone(reader); break;
    case compactTypes.lineRequest: message = { type: 'lineRequest', line: reader.varint() }; break;
    case compactTypes.lineRecall: message = { type: 'lineRecall', line: reader.varint() }; break;
    case compactTypes.lineRelease: message = readLineRelease(reader); break;
    case compactTypes.lineGrant: message = readLineGrant(reader); break;
    case compactTypes.lockRequest: message = readLockRequest(reader); break;
    case compactTypes.lockGrant: message = readLockGrant(reader); break;
    case compactTypes.lockRecall: message = readLockRecall(reader); break;
    case compactTypes.lockBusy: message = { type: 'lockBusy', lockId: reader.varint() }; break;
    case compactTypes.lockRelease: message = readLockRelease(reader); break;
    case compactTypes.barrierArrive: message = readBarrierArrive(reader); break;
    case compactTypes.barrierDepart: message = readBarrierDepart(reader); break;
    case compactTypes.barrierFlush: message = { type: 'barrierFlush', barrierId: reader.varint(), round: reader.varint() }; break;
    case compactTypes.diffs: {
      const flags = readFlags(reader, 1);
      message = { type: 'diffs', ...readBundled(reader) };
      if (flags !== 0) message.origin = reader.varint();
      break;
    }
    case compactTypes.pageRequest: message = readPageRequest(reader); break;
    case compactTypes.pageReply: message = readPageReply(reader, payloadBytes); break;
    default: throw new FrameError(`unknown compact message type ${type}`);
  }
  // Only a pageReply's copies and byte arrays of the payload form (a batch's diffs, pushed copies) are a payload.
  if (payloadBytes > 0 && type !== compactTypes.pageReply && !reader.payloadNamed) throw new FrameError(`a compact ${message.type} body with a payload`);
  if (payloadBytes === 0 && reader.payloadNamed) throw new FrameError(`a compact ${message.type} body names a payload it does not have`);
  if (reader.remaining !== 0) throw new FrameError(`a compact ${message.type} with ${reader.remaining} bytes left over`);
  return message;
}
