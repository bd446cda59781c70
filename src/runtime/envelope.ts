// The one message envelope between the runtimes of a cluster's nodes, and
// its lanes. Every message on the mesh is a MeshMessage: the coherence
// engine's traffic (src/protocol/messages.ts), the remote-workers lane
// (src/runtime/remote-workers.ts: a worker started on another node than its
// parent) or the reports lane (src/runtime/run-reports.ts: statistics, trace,
// race records) or the heap lane (slice borrowing between the nodes'
// allocation services, src/runtime/heap-service.ts). Each type belongs to exactly one lane (laneOfType); a
// message is routed by that table and nothing else.
//
// MeshNetwork is the envelope over the transport's Mesh (or a cluster of
// one's SoloMesh): it sends, says what
// became of each send, counts the program's traffic (what the reports lane
// itself sends is not the program's) and hands each arriving message to its
// lane already typed.

import { DsmError, assert, isDsmError } from '../errors.js';
import type { AllocationRecord, IntervalWrites } from '../race/record.js';
import type { ConsistencyInfo, ProtocolMessage, ProtocolMessageType } from '../protocol/messages.js';
import type { WireMessage } from '../transport/codec.js';
import { FrameError } from '../transport/frame.js';
import type { MeshPort } from '../transport/mesh.js';
import { releasePayloadSlab, takePayloadSlab } from '../transport/payload-slabs.js';
import type { RemoteWorkerOptions } from '../channel/wire.js';
import type { NodeObserver, NodeStats, TraceEvent } from './observe.js';
import type { HeapMessage } from './heap-service.js';
import { packCopy, unpackCopy } from './page-pack.js';
import { diffsInlineBytesMax, frameBytesMax, pageBytes } from '../constants.js';
import { pagePackEnabled } from '../env.js';

/** A worker started on another node than its parent thread (src/runtime/remote-workers.ts). */
export type WorkerLaneMessage =
  | { type: 'rtSpawn'; spawnId: string; threadIdSeen: number; entry: string; evalCode: boolean; workerData: Uint8Array; ports?: string[]; options: RemoteWorkerOptions; info: ConsistencyInfo }
  /** `site` (race mode): where the sender called postMessage, to name the receiver's acquire. `form`: how a message's bytes read (src/channel/clone.ts, serializeMessage). */
  /** `fence` (an 'exit'): delivered once `count` rtExitFenced of fence `id` came (src/runtime/remote-workers.ts, "Exit fences"). */
  | { type: 'rtEvent'; spawnId: string; event: 'online' | 'message' | 'error' | 'exit'; bytes?: Uint8Array; form?: number; ports?: string[]; code?: number; threadId?: number; limits?: Record<string, number>; info: ConsistencyInfo; site?: string | null; fence?: { id: string; count: number } }
  /** Exit fences: a node a thread's node sent notifies to answers `to` (rtExitFenced) after what it sent `to` before. */
  | { type: 'rtExitFence'; id: string; to: number }
  | { type: 'rtExitFenced'; id: string }
  /** `ports`: the relay ids of the MessagePorts a message carries (src/threads/port-relay.ts). */
  | { type: 'rtPost'; spawnId: string; bytes: Uint8Array; form?: number; ports?: string[]; info: ConsistencyInfo; site?: string | null }
  | { type: 'rtTerminate'; spawnId: string }
  /** A BroadcastChannel message for the instances of `name` on the receiving node (src/runtime/remote-workers.ts). */
  | { type: 'rtBroadcast'; name: string; bytes: Uint8Array; form?: number; info: ConsistencyInfo; site?: string | null }
  /** A message for the receiving node's end of MessagePort relay `id`, and the close of the sending node's end (src/runtime/remote-workers.ts). */
  | { type: 'rtPortMessage'; id: string; bytes: Uint8Array; form?: number; ports?: string[]; info: ConsistencyInfo; site?: string | null }
  | { type: 'rtPortClose'; id: string }
  /**
   * postMessageToThread across nodes (src/runtime/remote-workers.ts, "Posts to a thread"): where thread `thread`
   * runs, asked of the node that made it (its id names it) and answered (`node` -1: no such thread); the message,
   * sent to the node it runs on; and what its listeners did (threadPostResults), back to the poster's node.
   */
  | { type: 'rtThreadWhere'; thread: number }
  | { type: 'rtThreadAt'; thread: number; node: number }
  | { type: 'rtThreadPost'; thread: number; source: number; id: number; bytes: Uint8Array; form?: number; ports?: string[]; info: ConsistencyInfo; site?: string | null }
  | { type: 'rtThreadPostDone'; id: number; result: number; info: ConsistencyInfo }
  /**
   * A question about a worker hosted on the receiving node (getHeapSnapshot, getHeapStatistics, cpuUsage), and its
   * answer (`bytes`: a heap snapshot; `value`: JSON text; `code`, `message`: the error Node gave there).
   */
  | { type: 'rtWorkerQuery'; spawnId: string; query: number; what: string; args?: string }
  | { type: 'rtWorkerQueryDone'; query: number; ok: boolean; value?: string; bytes?: Uint8Array; code?: string; message?: string }
  /**
   * Small posts without ports (src/runtime/remote-workers.ts, not in race mode) served in one run of the sender's
   * manager, in order, with one release (made after the last): each as rtPost (`to` 0: `key` a spawn id),
   * rtEvent 'message' (1: a spawn id), rtPortMessage (2: a relay id) or rtBroadcast (3: a channel's name) would be.
   */
  | { type: 'rtPosts'; posts: LanePost[]; info: ConsistencyInfo }
  /**
   * A leading part of the next message's bytes (its `bytes`, or an rtSpawn's `workerData`), `total` bytes in all,
   * from a message larger than remoteMessagePartBytes (src/runtime/message-parts.ts).
   */
  | { type: 'rtPart'; total: number; bytes: Uint8Array };

/** One post of an rtPosts message. */
export interface LanePost { to: 0 | 1 | 2 | 3; key: string; bytes: Uint8Array; form?: number }

/** Observability: node 0 asks, every other node answers (src/runtime/run-reports.ts). */
export type ReportLaneMessage =
  | { type: 'rtTraceStart'; originUs: number }
  | { type: 'rtReportRequest'; trace: boolean }
  | { type: 'rtReportTrace'; events: TraceEvent[] }
  | { type: 'rtReport'; stats: NodeStats; dropped: number }
  // race mode (src/race/): every node's interval records and allocations go to node 0's checker
  | { type: 'rtRace'; record: IntervalWrites }
  | { type: 'rtRaceAlloc'; record: AllocationRecord };

/** Slice borrowing between the nodes' allocation services (src/runtime/heap-service.ts). */
export type HeapLaneMessage = HeapMessage;

/**
 * Web Locks for the cluster (src/runtime/web-locks-service.ts): a node's requests, releases and ended threads'
 * drops to the lock service (node 0), and its grants (`granted` false: an ifAvailable request that could not be
 * granted at once, or `full`: the service holds webLockRequestCountMax requests) and steals back. `info`: what
 * the receiver acquires (a release, and a grant, to another node).
 */
export type WebLockLaneMessage =
  | { type: 'rtWebLockRequest'; key: string; name: string; mode: 'exclusive' | 'shared'; ifAvailable: boolean; steal: boolean }
  | { type: 'rtWebLockRelease'; key: string; info?: ConsistencyInfo }
  | { type: 'rtWebLockDrop'; keys: string[]; info?: ConsistencyInfo }
  | { type: 'rtWebLockGrant'; key: string; granted: boolean; full?: number; info?: ConsistencyInfo }
  | { type: 'rtWebLockStolen'; key: string; by: string };

export type MeshMessage = ProtocolMessage | WorkerLaneMessage | ReportLaneMessage | HeapLaneMessage | WebLockLaneMessage;

export type Lane = 'engine' | 'workers' | 'reports' | 'heap' | 'locks';

export type Routed =
  | { lane: 'engine'; message: ProtocolMessage }
  | { lane: 'workers'; message: WorkerLaneMessage }
  | { lane: 'reports'; message: ReportLaneMessage }
  | { lane: 'heap'; message: HeapLaneMessage }
  | { lane: 'locks'; message: WebLockLaneMessage };

const engineLane = 'engine' as const;

/** Each message type's lane: the compiler checks every type of the envelope is here exactly once. */
const laneOfType: { readonly [T in MeshMessage['type']]: T extends ProtocolMessageType ? 'engine' : T extends WorkerLaneMessage['type'] ? 'workers' : T extends HeapLaneMessage['type'] ? 'heap' : T extends WebLockLaneMessage['type'] ? 'locks' : 'reports' } = {
  pageRequest: engineLane, pageReply: engineLane, diffs: engineLane, homeLend: engineLane,
  scRequest: engineLane, scForward: engineLane, scPage: engineLane, scInvalidate: engineLane, scInvalidateAck: engineLane, scConfirm: engineLane,
  lockRequest: engineLane, lockGrant: engineLane, lockRecall: engineLane, lockBusy: engineLane, lockRelease: engineLane,
  barrierArrive: engineLane, barrierDepart: engineLane, barrierFlush: engineLane,
  atomicRequest: engineLane, atomicReply: engineLane, atomicCancel: engineLane, vcQuery: engineLane, vcReport: engineLane, staleQuery: engineLane, staleReply: engineLane,
  lineRequest: engineLane, lineRecall: engineLane, lineRelease: engineLane, lineGrant: engineLane,
  lineShareRequest: engineLane, lineShareGrant: engineLane, lineInvalidate: engineLane, lineInvalidated: engineLane,
  lineWait: engineLane, lineWaitShip: engineLane, lineWaitCancel: engineLane, lineNotify: engineLane, lineWake: engineLane, lineNotified: engineLane, lineOp: engineLane, lineOpDone: engineLane,
  rtSpawn: 'workers', rtEvent: 'workers', rtPost: 'workers', rtTerminate: 'workers', rtBroadcast: 'workers', rtPortMessage: 'workers', rtPortClose: 'workers', rtPosts: 'workers', rtPart: 'workers', rtExitFence: 'workers', rtExitFenced: 'workers',
  rtThreadWhere: 'workers', rtThreadAt: 'workers', rtThreadPost: 'workers', rtThreadPostDone: 'workers', rtWorkerQuery: 'workers', rtWorkerQueryDone: 'workers',
  rtTraceStart: 'reports', rtReportRequest: 'reports', rtReportTrace: 'reports', rtReport: 'reports', rtRace: 'reports', rtRaceAlloc: 'reports',
  rtChunkBorrow: 'heap', rtChunkLend: 'heap', rtChunkSurvey: 'heap', rtChunkFree: 'heap', rtRangeRelease: 'heap', rtRangeCollect: 'heap', rtRangeCollected: 'heap',
  rtWebLockRequest: 'locks', rtWebLockRelease: 'locks', rtWebLockDrop: 'locks', rtWebLockGrant: 'locks', rtWebLockStolen: 'locks',
};

export function laneOf(type: string): Lane | null {
  return Object.hasOwn(laneOfType, type) ? laneOfType[type as MeshMessage['type']] : null;
}

function isEngineMessage(message: WireMessage): message is ProtocolMessage & WireMessage {
  return laneOf(message.type) === 'engine';
}

function isWorkerLaneMessage(message: WireMessage): message is WorkerLaneMessage & WireMessage {
  return laneOf(message.type) === 'workers';
}

function isReportLaneMessage(message: WireMessage): message is ReportLaneMessage & WireMessage {
  return laneOf(message.type) === 'reports';
}

function isHeapLaneMessage(message: WireMessage): message is HeapLaneMessage & WireMessage {
  return laneOf(message.type) === 'heap';
}

/** The lane of a message off the wire; null for a type no lane knows. */
export function route(message: WireMessage): Routed | null {
  if (isEngineMessage(message)) return { lane: 'engine', message };
  if (isWorkerLaneMessage(message)) return { lane: 'workers', message };
  if (isReportLaneMessage(message)) return { lane: 'reports', message };
  if (isHeapLaneMessage(message)) return { lane: 'heap', message };
  if (laneOf(message.type) === 'locks') return { lane: 'locks', message: message as WebLockLaneMessage & WireMessage };
  return null;
}

/** The raw field naming a sync message's bundled diffs (`bundled.diffs`, src/protocol/messages.ts DiffBatch). */
const bundledDiffs = 'bundled.diffs';
/** Raw fields that hold diffs: they go to the payload past diffsInlineBytesMax, and are never packed (runs of changed bytes). */
const diffFields: ReadonlySet<string> = new Set(['diffs', bundledDiffs]);

/** A raw field's value: a field of the message, or the diffs of its bundled batch. */
function fieldValue(message: Record<string, unknown>, field: string): unknown {
  if (field !== bundledDiffs) return message[field];
  const bundled = message.bundled;
  return typeof bundled === 'object' && bundled !== null ? (bundled as Record<string, unknown>).diffs : undefined;
}

/** Sets a raw field (a bundled batch is copied: toWire never changes the engine's objects). */
function setFieldValue(message: Record<string, unknown>, field: string, value: unknown): void {
  if (field !== bundledDiffs) { message[field] = value; return; }
  message.bundled = { ...(message.bundled as Record<string, unknown>), diffs: value };
}

/**
 * Fields that hold byte arrays: page copies of engine messages, and the
 * structured-clone bytes of a remote worker's messages, workerData and errors.
 * They travel as the frame's raw payload (src/transport/codec.ts), in this
 * order, and the body holds their byte lengths in their place: msgpackr never
 * copies them into its buffer (a 64-page reply cost the home more in that copy
 * than in serving; a 1 MiB postMessage was one more 1 MiB copy per hop), a
 * reply whose pages were read into one buffer goes to the socket as it is (a
 * gathered write: header, body, pages), and the receiver's arrays are views of
 * the received frame's payload. A large payload arrives alone in its own
 * ArrayBuffer (src/transport/frame.ts), so a message's bytes can be handed to
 * the receiving app thread by transfer (transferListOf, src/channel/clone.ts).
 */
const rawFields: { readonly [T in MeshMessage['type']]?: readonly string[] } = {
  pageReply: ['bytes', 'extraBytes'],
  homeLend: ['bytes'],
  scPage: ['bytes'],
  lockGrant: ['pushBytes'],
  barrierArrive: ['pushBytes', bundledDiffs],
  barrierDepart: ['pushBytes'],
  lineGrant: ['pushBytes'],
  lineShareGrant: ['pushBytes'],
  rtSpawn: ['workerData'],
  rtPost: ['bytes'],
  rtEvent: ['bytes'],
  rtBroadcast: ['bytes'],
  rtPortMessage: ['bytes'],
  rtThreadPost: ['bytes'],
  rtWorkerQueryDone: ['bytes'],
  rtPart: ['bytes'],
  // A writer's diffs (session 15): a message's diffs are one payload, not one msgpack bin each (above 16 KiB a
  // compact body fell back to msgpack), and the receiver's diffs are views of it. Last in each list (never packed).
  diffs: ['diffs'],
  lockRequest: [bundledDiffs],
  lockRelease: [bundledDiffs],
  atomicRequest: [bundledDiffs],
  // A line's release pushes subscribed pages (session 46: before, their copies went in the body, each a msgpack
  // bin copied in and out: a lineOp with a ring's 16 pages took ~250 µs to encode, and the message went msgpack).
  lineRelease: ['pushBytes', bundledDiffs],
  lineOp: ['pushBytes', bundledDiffs],
  lineOpDone: ['pushBytes'],
  lineWait: ['pushBytes', bundledDiffs],
  lineWaitShip: ['pushBytes', bundledDiffs],
  lineNotify: ['pushBytes', bundledDiffs],
  lineWake: ['pushBytes'],
};

/**
 * Byte arrays of at most this many bytes in all stay in the body, packed by
 * msgpackr into its own buffer, which is the frame (no allocation): a frame
 * with a payload of a page or two costs an allocation of its own, which
 * measured slower for a one-page reply (bench/rtt's page fetch) than
 * msgpackr's copy. Read-ahead replies are larger.
 */
const payloadInlineBytesMax = 16 * 1024;

/** Byte arrays of a payload: one view when they lie back to back in one buffer, else one copy. */
function joined(views: Uint8Array[], byteCount: number): Uint8Array {
  // Empty views (a page flushed early sends the engine's one shared empty diff) lie anywhere.
  let first: Uint8Array | null = null;
  let end = 0;
  let contiguous = true;
  for (const view of views) {
    if (view.byteLength === 0) continue;
    if (first === null) { first = view; end = view.byteOffset; }
    if (view.buffer !== first.buffer || view.byteOffset !== end) { contiguous = false; break; }
    end += view.byteLength;
  }
  if (first === null) return new Uint8Array(0);
  if (contiguous) return new Uint8Array(first.buffer, first.byteOffset, byteCount);
  const copy = Buffer.allocUnsafe(byteCount);
  let at = 0;
  for (const view of views) { copy.set(view, at); at += view.byteLength; }
  return copy;
}

/**
 * Engine messages whose raw fields are copies of dsm pages: packed where that
 * pays (src/runtime/page-pack.ts). The workers lane's bytes (structured
 * clones, handed on by transfer) are not.
 */
const pageCopyTypes: ReadonlySet<string> = new Set(['pageReply', 'homeLend', 'scPage', 'lockGrant', 'barrierArrive', 'barrierDepart', 'lineGrant', 'lineShareGrant']);
/** DSM_PAGE_PACK=0 turns packing off (to compare); a receiver unpacks either way. */
const packing = pagePackEnabled();

/**
 * The body field naming packed copies: per payload view in order, 0 (raw) or
 * the length it unpacks to. Only on page-copy messages with a payload; fromWire
 * removes it, so the engine never sees it.
 */
const packedField = 'packed';

/** A message's raw-field byte arrays, in wire order. */
function rawViews(message: Record<string, unknown>, fields: readonly string[]): { views: Uint8Array[]; copyCount: number; diffBytes: number } {
  const views: Uint8Array[] = [];
  let copyCount = 0;
  let diffBytes = 0;
  for (const field of fields) {
    const value = fieldValue(message, field);
    if (value instanceof Uint8Array) views.push(value);
    else if (Array.isArray(value) && value.every((item) => item instanceof Uint8Array)) {
      for (const item of value as Uint8Array[]) {
        views.push(item);
        if (diffFields.has(field)) diffBytes += item.byteLength;
      }
    }
    if (!diffFields.has(field)) copyCount = views.length;
  }
  return { views, copyCount, diffBytes };
}

/**
 * The payload of page copies packed where each gains (or null: none does, so
 * they go as they are, without a copy), and per view its unpacked length or 0.
 */
function packedPayload(views: Uint8Array[], byteCount: number, copyCount: number): { payload: Uint8Array; packed: number[]; lengths: number[] } | null {
  // Packed into a scratch buffer reused from message to message (a one-page buffer of its own per message measured
  // slower: bench/programs/page-fetch.mjs). The payload returned is a view of it: toWire copies it out only where
  // it becomes the frame's payload (a socket may hold that past the send); copies left in the body are encoded
  // before toWire runs again (its result goes to the mesh at once: MeshNetwork.send).
  if (packScratch.length < byteCount) packScratch = new Uint8Array(Math.max(byteCount, 2 * packScratch.length));
  const out = packScratch;
  const packed: number[] = [];
  const lengths: number[] = [];
  let at = 0;
  let gained = false;
  for (let k = 0; k < views.length; k++) {
    const view = views[k]!;
    // Page copies only: a diff (past copyCount) goes raw.
    const end = k < copyCount && view.byteLength % 8 === 0 ? packCopy(view, out, at) : -1;
    if (end < 0) {
      out.set(view, at);
      packed.push(0);
      lengths.push(view.byteLength);
      at += view.byteLength;
    } else {
      packed.push(view.byteLength);
      lengths.push(end - at);
      at = end;
      gained = true;
    }
  }
  return gained ? { payload: out.subarray(0, at), packed, lengths } : null;
}

let packScratch = new Uint8Array(64 * 1024);

/** Page replies' unpacked copies, reused from reply to reply (fromWire). */
let replySlab = new ArrayBuffer(64 * 1024);

/** The slabs under a sent page reply's copies that its wire form does not take to the socket (its payload). */
function releaseReplyCopies(message: Extract<MeshMessage, { type: 'pageReply' }>, wire: WireMessage): void {
  const kept = wire.payload?.buffer;
  if (message.bytes.buffer !== kept) releasePayloadSlab(message.bytes.buffer);
  for (const copy of message.extraBytes) if (copy.buffer !== kept) releasePayloadSlab(copy.buffer);
}

/**
 * A message as it goes on the wire: its page copies (rawFields) moved to the payload (packed where that pays), their
 * lengths left in the body. Packed copies left in the body are views of a scratch buffer the next toWire writes
 * again: encode the result before calling toWire again (MeshNetwork.send does, at once).
 */
export function toWire(message: MeshMessage): WireMessage {
  const fields = Object.hasOwn(rawFields, message.type) ? rawFields[message.type] : undefined;
  if (fields === undefined) return message as WireMessage;
  const { views, copyCount, diffBytes } = rawViews(message as unknown as Record<string, unknown>, fields);
  let inlineBytes = 0;
  for (const view of views) inlineBytes += view.byteLength;
  // A message of one page goes as it is (a single-page fetch measured ~15% slower packed on loopback, where bytes are cheap).
  const packed = packing && pageCopyTypes.has(message.type) && inlineBytes - diffBytes > pageBytes ? packedPayload(views, inlineBytes, copyCount) : null;
  if (packed === null && inlineBytes <= payloadInlineBytesMax && diffBytes <= diffsInlineBytesMax) return message as WireMessage;
  const wire: Record<string, unknown> = { ...message };
  if (packed !== null && packed.payload.byteLength <= payloadInlineBytesMax) {
    // Small once packed: the copies stay in the body (msgpackr's buffer is the frame, as for a small reply), each a view of the packed bytes.
    let next = 0;
    let at = 0;
    const view = (): Uint8Array => { const length = packed.lengths[next++]!; at += length; return packed.payload.subarray(at - length, at); };
    for (const field of fields) {
      const value = fieldValue(wire, field);
      if (value instanceof Uint8Array) setFieldValue(wire, field, view());
      else if (Array.isArray(value) && value.every((item) => item instanceof Uint8Array)) setFieldValue(wire, field, value.map(view));
    }
    wire[packedField] = packed.packed;
    return wire as WireMessage;
  }
  const lengths = packed?.lengths ?? views.map((view) => view.byteLength);
  let next = 0;
  for (const field of fields) {
    const value = fieldValue(wire, field);
    if (value instanceof Uint8Array) setFieldValue(wire, field, lengths[next++]);
    else if (Array.isArray(value) && value.every((item) => item instanceof Uint8Array)) setFieldValue(wire, field, value.map(() => lengths[next++]));
    // (Anything else is not dsm's: it goes in the body as it is, and the receiver refuses it.)
  }
  if (packed !== null) {
    // Out of the scratch buffer: the socket may keep a payload queued past this send (into a reused slab, which
    // the connection gives back once written: src/transport/payload-slabs.ts).
    const payload = takePayloadSlab(packed.payload.byteLength);
    payload.set(packed.payload);
    wire.payload = payload;
    wire[packedField] = packed.packed;
  } else if (inlineBytes > 0) wire.payload = joined(views, inlineBytes);
  return wire as WireMessage;
}

function byteLengthOf(value: unknown, left: number, what: Where): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > left) {
    throw new FrameError(`${whereText(what)} must be a byte length of at most the ${left} payload bytes left`);
  }
  return value;
}

/**
 * The message toWire sent: its page copies are views of the payload (no
 * copy), or were left in the body (a small one, no payload). The lengths must
 * account for the payload exactly; a payload on any other message, or a
 * length that does not fit, is a FrameError.
 */
export function fromWire(wire: WireMessage): WireMessage {
  const fields = Object.hasOwn(rawFields, wire.type) ? rawFields[wire.type as MeshMessage['type']] : undefined;
  const payload = wire.payload;
  if (fields === undefined) {
    if (payload !== undefined) throw new FrameError(`a '${wire.type.slice(0, 64)}' message carries no payload`);
    return wire;
  }
  // Copies in the body: the engine checks them as any field; packed ones are unpacked here.
  if (payload === undefined) {
    if (packedField in wire) unpackInline(wire as Record<string, unknown>, wire.type, fields);
    return wire;
  }
  const empty = new Uint8Array(0);
  // An engine message's copies and diffs as plain Uint8Array views (the frame's payload is a Buffer, whose
  // subarray costs several times a Uint8Array's: a `diffs` message has hundreds). The workers lane keeps Buffers.
  const engineLane = laneOf(wire.type) === 'engine';
  const bytes = engineLane ? new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) : payload;
  let at = 0;
  const take = (value: unknown, what: Where): Uint8Array => {
    const length = byteLengthOf(value, bytes.byteLength - at, what);
    const view = length === 0 ? empty : bytes.subarray(at, at + length);
    at += length;
    return view;
  };
  const message: Record<string, unknown> = wire;
  delete message.payload;
  const packed = unpackedLengths(message, wire.type);
  let viewIndex = 0;
  // The message's unpacked copies share one fresh buffer (zeroed, as unpackCopy's `zeroed` wants): one backing
  // store a message, not one a page (a 256-page reply made 256 ArrayBuffers for V8's sweeper to free). A page
  // reply's copies are consumed while it is handled (the engine installs them: src/protocol/hlrc.ts onPageReply;
  // fromWire runs as the message is delivered, MeshNetwork.listen), so they go into one buffer reused from reply
  // to reply (session 26: a fresh one's pages were faulted in and zeroed at every reply), unpacked whole.
  const reuse = wire.type === 'pageReply';
  let slab: ArrayBuffer | null = null;
  let slabAt = 0;
  const takeCopy = (length: unknown, what: Where): Uint8Array => {
    const view = take(length, what);
    const unpacked = packed === null ? 0 : packed[viewIndex] ?? 0;
    viewIndex += 1;
    if (unpacked === 0) return view;
    if (slab === null) {
      let total = 0;
      for (const bytes of packed!) total += bytes;
      if (reuse && replySlab.byteLength < total) replySlab = new ArrayBuffer(Math.max(total, 2 * replySlab.byteLength));
      slab = reuse ? replySlab : new ArrayBuffer(total);
    }
    const out = new Uint8Array(slab, slabAt, unpacked);
    slabAt += unpacked;
    unpackCopy(view, out, !reuse);
    return out;
  };
  const buffer = bytes.buffer;
  const offset = bytes.byteOffset;
  if (packed === null) {
    // Nothing to unpack (diffs, raw copies): each list's views in one loop, no call per item but the view's
    // (a diffs message's hundreds of items run in code that is cold in a short run).
    for (const field of fields) {
      const value = fieldValue(message, field);
      if (!Array.isArray(value)) {
        if (value !== undefined) setFieldValue(message, field, take(value, { type: wire.type, field, index: -1 }));
        continue;
      }
      const views: Uint8Array[] = [];
      for (let k = 0; k < value.length; k++) {
        const length: unknown = value[k];
        if (typeof length !== 'number' || !(length >= 0 && length <= bytes.byteLength - at) || !Number.isInteger(length)) {
          byteLengthOf(length, bytes.byteLength - at, { type: wire.type, field, index: k });
        }
        const end = at + (length as number);
        // The constructor, not subarray (which looks up a species constructor: twice the time a view).
        views.push(end === at ? empty : engineLane ? new Uint8Array(buffer, offset + at, end - at) : bytes.subarray(at, end));
        at = end;
      }
      setFieldValue(message, field, views);
    }
  } else mapCopies(message, wire.type, fields, takeCopy);
  if (at !== bytes.byteLength) throw new FrameError(`a '${wire.type}' message's lengths account for ${at} of its ${bytes.byteLength} payload bytes`);
  if (packed !== null && packed.length !== viewIndex) throw new FrameError(`a '${wire.type}' message names ${packed.length} packed copies for its ${viewIndex}`);
  return message as WireMessage;
}

/**
 * Where a copy is in its message, for an error's text: built only when one is thrown (a `diffs` message has
 * hundreds of items, and a string each measured as much as the rest of fromWire).
 */
interface Where { type: string; field: string; index: number }

function whereText(where: Where): string {
  return where.index < 0 ? `${where.type}.${where.field}` : `${where.type}.${where.field}[${where.index}]`;
}

/** Replaces each page-copy field of `message` (one value, or each item of a list), in order, by `map`'s result; `what` names it in errors. */
function mapCopies(message: Record<string, unknown>, type: string, fields: readonly string[], map: (value: unknown, what: Where) => unknown): void {
  for (const field of fields) {
    const value = fieldValue(message, field);
    if (value === undefined) continue;
    const where: Where = { type, field, index: -1 };
    if (Array.isArray(value)) {
      const mapped: unknown[] = [];
      for (let k = 0; k < value.length; k++) { where.index = k; mapped.push(map(value[k], where)); }
      setFieldValue(message, field, mapped);
    } else setFieldValue(message, field, map(value, where));
  }
}

/** A small message's packed copies, in its body (as toWire leaves them): unpacked in place. */
function unpackInline(message: Record<string, unknown>, type: string, fields: readonly string[]): void {
  const packed = unpackedLengths(message, type)!;
  let viewIndex = 0;
  const unpack = (value: unknown, what: Where): unknown => {
    const unpacked = packed[viewIndex] ?? 0;
    viewIndex += 1;
    if (unpacked === 0) return value;
    if (!(value instanceof Uint8Array)) throw new FrameError(`${whereText(what)} must be a packed copy's bytes`);
    const out = new Uint8Array(unpacked);
    unpackCopy(value, out, true);
    return out;
  };
  mapCopies(message, type, fields, unpack);
  if (packed.length !== viewIndex) throw new FrameError(`a '${type}' message names ${packed.length} packed copies for its ${viewIndex}`);
}

/** The packed field of a page-copy message off the wire (removed from it), checked: null when it has none. */
function unpackedLengths(message: Record<string, unknown>, type: string): number[] | null {
  if (!(packedField in message)) return null;
  const value = message[packedField];
  delete message[packedField];
  if (!pageCopyTypes.has(type)) throw new FrameError(`a '${type.slice(0, 64)}' message carries no packed copies`);
  let total = 0;
  const ok = Array.isArray(value) && value.every((length) => {
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length % 8 !== 0) return false;
    total += length;
    return true;
  });
  // Unpacked, the copies fit one frame, as they did before packing.
  if (!ok || total > frameBytesMax) throw new FrameError(`a '${type}' message's packed lengths must be whole words, at most ${frameBytesMax} bytes in all`);
  return value as number[];
}

/**
 * What became of a send. 'sent': handed to the kernel; 'queued': the link is
 * backed up and the message waits in its queue (nothing is dropped: flow
 * control, src/runtime/flow.ts, holds new work until the link drains);
 * 'lost': the peer is gone, its loss is already ending the run (the cluster's
 * failure path says so) and the message goes nowhere.
 */
export type SendOutcome = 'sent' | 'queued' | 'lost';

/** What a lane sends through. */
export interface LaneNetwork<M> {
  send(toNode: number, message: M): SendOutcome;
}

export class MeshNetwork implements LaneNetwork<MeshMessage> {
  private readonly mesh: MeshPort;
  private readonly observer: NodeObserver;
  /** Test hook (DSM_TEST_HOOK_DELAY_SENDS): every message but the reports lane's leaves this many ms late, in order. */
  private readonly delayMs: number;
  private readonly delayed: Array<{ toNode: number; message: MeshMessage; dueMs: number }> = [];
  /** Nodes this node sent a notify to (a lineNotify, or an atomicRequest or lineOp whose op is notify): see notifyTargets. */
  private readonly notified = new Set<number>();

  constructor(mesh: MeshPort, observer: NodeObserver, delayMs = 0) {
    this.mesh = mesh;
    this.observer = observer;
    this.delayMs = delayMs;
  }

  /**
   * The nodes this node has sent a notify to, ever: a thread's exit is delivered only after the wake-ups its
   * notifies caused there (src/runtime/remote-workers.ts, "Exit fences").
   */
  notifyTargets(): ReadonlySet<number> {
    return this.notified;
  }

  send(toNode: number, message: MeshMessage): SendOutcome {
    if (message.type === 'lineNotify' || ((message.type === 'atomicRequest' || message.type === 'lineOp') && message.op === 'notify')) this.notified.add(toNode);
    if (this.delayMs > 0 && laneOfType[message.type] !== 'reports') {
      this.delayed.push({ toNode, message, dueMs: performance.now() + this.delayMs });
      if (this.delayed.length === 1) this.sendDelayed();
      return 'sent';
    }
    return this.sendNow(toNode, message);
  }

  /** Sends the delayed messages whose time came, in order, and waits for the next. */
  private sendDelayed(): void {
    while (this.delayed.length > 0 && this.delayed[0]!.dueMs <= performance.now()) {
      const { toNode, message } = this.delayed.shift()!;
      this.sendNow(toNode, message);
    }
    if (this.delayed.length > 0) setTimeout(() => this.sendDelayed(), Math.max(0, this.delayed[0]!.dueMs - performance.now()));
  }

  private sendNow(toNode: number, message: MeshMessage): SendOutcome {
    let flushed: boolean;
    try {
      const wire = toWire(message);
      flushed = this.mesh.send(toNode, wire);
      // A page reply's copies (in a reused slab: hlrc servedExtras) were encoded, packed or copied by now; where
      // they are the frame's payload, written by reference, the connection gives the slab back once written.
      if (message.type === 'pageReply') releaseReplyCopies(message, wire);
    } catch (error) {
      // A connection failing under the send: the same as a peer already lost (throwing here would
      // surface in the engine or in an app thread as a second, wrong error).
      if (isDsmError(error) && (error as DsmError).code === 'DSM_ERR_NODE_DIED') return 'lost';
      throw error;
    }
    if (!flushed && !this.mesh.peerIds.includes(toNode)) return 'lost';
    // What observability itself sends is not part of the program's traffic.
    if (laneOfType[message.type] !== 'reports') this.observer.countSent(message.type, this.mesh.lastSentBytes);
    return flushed ? 'sent' : 'queued';
  }

  /** Delivers every message (those held since the mesh was made first) to `receive`, typed by lane. */
  listen(receive: (from: number, routed: Routed) => void): void {
    this.mesh.deliverTo((from, wire) => {
      const message = fromWire(wire);
      const routed = route(message);
      if (routed === null) throw new DsmError('DSM_ERR_PROTOCOL', `node ${from} sent a message of unknown type '${message.type}'`);
      if (routed.lane !== 'reports') this.observer.countReceived(this.mesh.lastReceivedBytes);
      receive(from, routed);
    });
  }
}

/** Every other node of the cluster. */
export function otherNodes(nodeId: number, nodeCount: number): number[] {
  assert(nodeId >= 0 && nodeId < nodeCount, 'a node of the cluster');
  return [...Array(nodeCount).keys()].filter((node) => node !== nodeId);
}
