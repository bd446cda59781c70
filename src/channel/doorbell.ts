// The doorbell: the synchronous path between an app thread and its manager
// without a message (issue 12).
//
// Each app thread owns one block of shared memory, private to it and its
// manager (a SharedArrayBuffer made with the native constructor, never dsm
// memory): a small ring of requests the thread writes, and the reply its
// manager writes back. A request is binary fields (an op code, ids and
// addresses as float64, Atomics operands as float64 or as two 32-bit halves),
// never JSON or text. The thread writes an entry, publishes the ring's head,
// and rings the manager's bell (native/dsm_doorbell.cc: a uv_async_send on the
// manager's loop, which coalesces: one wake-up drains every thread's ring);
// a call then parks on the reply word until the manager stores the answer and
// wakes it, a post goes on at once.
//
// Why a SharedArrayBuffer rather than native memory: the fields are read
// and written by JIT-compiled typed-array accesses (no call into the addon per
// field), and the block lives and dies with the thread's endpoint (garbage
// collected; nothing native to free or to leave stale). The native part is
// what JavaScript cannot do or does slowly: wake another thread's event loop
// without a MessagePort (uv_async), and park and wake on a raw futex on the
// block's reply word (park/unpark; V8's Atomics.wait/notify wrap a futex in a
// process-wide lock and a condition variable: about a third slower a trip).
// A thread parks in slices (channelParkSliceMs) so that worker.terminate, which
// stops JavaScript but interrupts only Atomics.wait, takes effect within one.
//
// A small cross-node postMessage (a clone of at most ringPostBytesMax, no
// MessagePort in it) is an entry too: its clone is copied into the block's
// post bytes (a byte ring beside the entries, freed as the manager takes the
// entry), so a burst of posts costs the manager one wake-up, not one
// 'message' event a post.
//
// What is rare or large still goes by postMessage (ports, worker data, race
// mode's call sites, larger posts), and so does every reply that is not a small value (an
// error's text, an object): as JSON in the same block. The two ways keep the
// thread's order: each port message says how many ring entries came before it
// and each ring entry how many port messages, and the manager serves them in
// that order (src/channel/server.ts).

import { doorbellSetting } from '../env.js';
import { channelParkSliceMs, channelPostBytes, channelReplyBytesMax, channelRingEntries, ringPostBytesMax } from '../constants.js';
import { DsmError, type ErrorCode, assert } from '../errors.js';
import type { AtomicFunction, ChannelReply, ChannelRequest } from './wire.js';
import { loadAddon } from '../util/addon.js';

// V8's own Atomics, taken when this module loads: in a cluster an app thread's
// global Atomics are replaced by dsm's (src/threads/atomics.ts), which would
// first ask whether the block is dsm memory (it never is).
const atomicLoad = Atomics.load;
const atomicStore = Atomics.store;
const atomicWait = Atomics.wait;
const atomicNotify = Atomics.notify;
/** V8's compareExchange and load, for other node-local tables app threads share with the manager (src/channel/lock-tokens.ts). */
export const nativeCompareExchange = Atomics.compareExchange;
export const nativeLoad = Atomics.load;

export interface NativeDoorbell {
  /** The calling thread (a node's manager) is the one rung: `onRing` runs on its loop after one or more rings. */
  open(onRing: () => void): void;
  /** From any thread: wakes the manager; false if no bell is open (the manager is gone or going). */
  ring(): boolean;
  isOpen(): boolean;
  close(): void;
  stats(): { rings: number; wakes: number };
  /** Sleeps on the Int32 word at `byteOffset` while it holds `expected`, at most `timeoutMs` (a raw futex). */
  park(buffer: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): void;
  /** Wakes the threads parked on the word. */
  unpark(buffer: SharedArrayBuffer, byteOffset: number): void;
  /** Manager: the poll gate (src/util/manager-poll.ts) park() and ring() count in, process-wide. */
  setGate(gate: SharedArrayBuffer): void;
}

let loaded: NativeDoorbell | null = null;

export function loadDoorbell(): NativeDoorbell {
  if (loaded !== null) return loaded;
  const addon = loadAddon<NativeDoorbell>('dsm_doorbell.node', 'the native doorbell addon');
  loaded = addon;
  return addon;
}

/** DSM_DOORBELL=0 sends every request by postMessage, as before the doorbell (to compare the two). */
export const doorbellEnabled = doorbellSetting();

// ---- Block layout. Int32 words of the header:
const wordReplyState = 0;
const wordReplyKind = 1;
const wordReplyBytes = 2;
const wordReplyWord = 3;
const wordReplyLow = 4;
const wordReplyHigh = 5;
/** Ring entries the thread has published (it alone writes this word). */
const wordHead = 6;
/** Ring entries the manager has taken (it alone writes this word). */
const wordTail = 7;
/** Set by a thread waiting for room in its ring: the manager notifies wordTail when it takes an entry. */
const wordSpaceWanted = 8;
/** Message posts (ChannelClient.postMessageRequest) the manager has admitted and served (it alone writes this word). */
const wordPostsServed = 9;
/** Set by a thread waiting for its posts in flight to fall: the manager notifies wordPostsServed once it reaches wordPostsWake. */
const wordPostsWanted = 10;
const wordPostsWake = 11;
/** The post bytes the manager has taken: the end of the last post entry it took (it alone writes this word). */
const wordBytesTail = 12;
/** With wordSpaceWanted: the tail at which the manager wakes the thread (half the ring free, or enough bytes). */
const wordSpaceWake = 13;
/** Float64 index of the reply's number. */
const replyNumberF64 = 8;
/**
 * Float64 indices of the thread's own wait note (a cluster of one, where Atomics.wait is V8's own and the manager
 * sees no request): the wait's start (epoch ms, 0 when not waiting), its byte address, and what waits (waitKind*).
 * The thread alone writes them, around a native wait; the manager reads them only for an interrupted run's report.
 */
export const waitNoteStartF64 = 9;
export const waitNoteAddressF64 = 10;
export const waitNoteKindF64 = 11;
export const waitKindAtomics = 0;
export const waitKindMutex = 1;
export const waitKindBarrier = 2;
const ringOffsetBytes = 128;
/** One ring entry: 12 Int32 words, then 6 float64s. */
const entryBytes = 96;
const entryIntWords = 12;
/** The bytes of small posts (a ring of channelPostBytes, addressed by an Int32 running count). */
const postOffsetBytes = ringOffsetBytes + channelRingEntries * entryBytes;
const jsonOffsetBytes = postOffsetBytes + channelPostBytes;
export const blockBytes = jsonOffsetBytes + channelReplyBytesMax;
assert(jsonOffsetBytes % 8 === 0 && entryBytes % 8 === 0 && (waitNoteKindF64 + 1) * 8 <= ringOffsetBytes && wordSpaceWake * 4 < replyNumberF64 * 8,
  'doorbell block fields are aligned and apart');
assert((channelPostBytes & (channelPostBytes - 1)) === 0 && ringPostBytesMax * 4 <= channelPostBytes, 'post bytes: a power of two, four largest posts at least');

export const replyStateIdle = 0;
export const replyStateReady = 1;

// Entry Int32 fields.
const fieldOp = 0;
const fieldFlags = 1;
const fieldSub = 2;
const fieldWidth = 3;
const fieldOperandLow = 4; // + 2k
const fieldOperandHigh = 5; // + 2k
const fieldOperandCount = 8;
// Entry float64 fields.
const fieldA = 0;
const fieldB = 1;
const fieldC = 2;
const fieldOperand = 3; // + k
const fieldPortBefore = 5;
const operandCountMax = 2;

const opSync = 1;
const opAtomic = 2;
const opAlloc = 3;
// 4 was sliceAlloc (removed: no sender)
const opFree = 5;
const opEscape = 6;
const opThreadId = 7;
const opPlace = 8;
const opLine = 9;
/** A small message post (worker-post, parent-post, port-post, bc-post): its clone in the block's post bytes. */
const opPost = 10;
/** An 'escape' whose weight the thread gave itself (`given`): posted before its message. */
const opEscapeGiven = 11;

const flagPosted = 1;
const flagTryOnly = 2;
const flagAsyncId = 4;
const flagParties = 8;
/** Operand k is held as two 32-bit halves (flagOperandBig << k), not as a float64. */
const flagOperandBig = 16;
/** An atomic entry is a line op (ChannelRequest 'atomic' with `line`; after the two operand flags). */
const flagLineOp = 64;
/** A line op's `workMs` is in field C (a line op has no asyncId). */
const flagWorkMs = 128;
/** A line notify whose thread's last Atomics op was the op it shipped on that line (ChannelRequest `afterOp`). */
const flagAfterOp = 256;
/** A given escape the manager counted ahead of its turn (ChannelServer.applyGivenEscapes): served as nothing. */
const flagApplied = 512;

/** A post entry's sub: its request's op. */
const postOps = ['worker-post', 'parent-post', 'port-post', 'bc-post'] as const;
type PostOp = typeof postOps[number];
export type PostRequest = Extract<ChannelRequest, { op: PostOp }>;
// A post entry's fields: A the handle id (worker-post), B the start of its bytes (the Int32 running count), C the
// clone's byte count, operand 0 the byte count of the text before the clone (a port's id, a channel's name),
// operand 1 the end of its bytes (B + text + C); fieldWidth its form + 1 (0: none).
const fieldPostStart = fieldB;
const fieldPostLength = fieldC;
const fieldPostText = fieldOperand;
const fieldPostEnd = fieldOperand + 1;

const syncKinds = ['lock', 'unlock', 'barrier'] as const;
/** A sync entry's kind as the direct path sees it: the index in syncKinds. */
export const ringSyncLock = 0;
export const ringSyncUnlock = 1;
export const ringSyncBarrier = 2;
export type RingSyncKind = typeof ringSyncLock | typeof ringSyncUnlock | typeof ringSyncBarrier;

/** A sync entry's fields (DoorbellBlock.readSync): one object a server reuses for every entry. */
export interface RingSync {
  kind: RingSyncKind;
  id: number;
  threadId: number;
  /** The barrier's parties, -1 when the thread gave none. */
  parties: number;
  tryOnly: boolean;
  posted: boolean;
}

/** The request a sync entry stands for (what DoorbellBlock.decode returns for it). */
export function requestOfSync(entry: RingSync): ChannelRequest {
  const request: ChannelRequest = { op: 'sync', kind: syncKinds[entry.kind], id: entry.id, threadId: entry.threadId };
  if (entry.tryOnly) request.tryOnly = true;
  if (entry.parties >= 0) request.parties = entry.parties;
  if (entry.posted) request.posted = true;
  return request;
}
const atomicFunctions: readonly AtomicFunction[] =
  ['load', 'store', 'add', 'sub', 'and', 'or', 'xor', 'exchange', 'compareExchange', 'wait', 'notify'];
const atomicFunctionCodes = new Map(atomicFunctions.map((fn, code) => [fn, code]));

const replyKindJson = 0;
const replyKindNull = 1;
const replyKindNumber = 2;
/** A string of replyWords. */
const replyKindWord = 3;
/** A decimal string of a safe integer, held as a float64. */
const replyKindDecimal = 4;
/** A decimal string of an unsigned 64-bit integer, held as two 32-bit halves. */
const replyKindDecimal64 = 5;
const replyWords = ['busy', 'serial', 'ok', 'not-equal', 'timed-out'] as const;
const replyWordCodes = new Map<string, number>(replyWords.map((word, code) => [word, code]));

/** Atomics by line ownership (src/threads/atomics.ts): the line request's fn, by code. */
const lineFunctions = ['pin', 'acquire', 'wait', 'waitAsync', 'notify', 'unpinned'] as const;
const lineFunctionCodes = new Map<string, number>(lineFunctions.map((fn, code) => [fn, code]));

const u64Limit = 1n << 64n;
const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/** One thread's block, as both sides see it. */
export class DoorbellBlock {
  readonly buffer: SharedArrayBuffer;
  readonly words: Int32Array;
  private readonly floats: Float64Array;
  private readonly json: Uint8Array;
  /** The small posts' bytes. */
  private readonly posts: Uint8Array;

  private readonly native: NativeDoorbell;

  constructor(buffer: SharedArrayBuffer) {
    assert(buffer.byteLength === blockBytes, 'a doorbell block of the expected size');
    this.buffer = buffer;
    this.native = loadDoorbell();
    this.words = new Int32Array(buffer, 0, ringOffsetBytes / 4 + channelRingEntries * entryBytes / 4);
    this.floats = new Float64Array(buffer, 0, jsonOffsetBytes / 8);
    this.json = new Uint8Array(buffer, jsonOffsetBytes);
    this.posts = new Uint8Array(buffer, postOffsetBytes, channelPostBytes);
  }

  /** The block's float64 fields (the thread's wait note: waitNote*F64). */
  get floatFields(): Float64Array { return this.floats; }

  /** Manager: the thread's native wait now (a cluster of one), or null. */
  waitNote(): { startMs: number; address: number; kind: number } | null {
    const startMs = this.floats[waitNoteStartF64]!;
    if (startMs === 0) return null;
    return { startMs, address: this.floats[waitNoteAddressF64]!, kind: this.floats[waitNoteKindF64]! };
  }

  // ---- The ring (app thread: publish; manager: take).

  head(): number { return atomicLoad(this.words, wordHead); }
  tail(): number { return atomicLoad(this.words, wordTail); }

  /**
   * App thread: waits until the ring has room for entry `sequence` (the
   * manager takes entries in order) and, for a post whose bytes end at
   * `bytesEnd` (an Int32 running count), room in the post bytes. A full ring
   * waits until half of it is free (one wake-up per half ring, not one an
   * entry), full post bytes until about half of the posts before are taken.
   */
  waitForRoom(sequence: number, bytesEnd = -1): void {
    const words = this.words;
    for (;;) {
      const tail = atomicLoad(words, wordTail);
      const entriesFull = sequence - tail >= channelRingEntries;
      const bytesFull = bytesEnd !== -1 && ((bytesEnd - atomicLoad(words, wordBytesTail)) | 0) > channelPostBytes;
      if (!entriesFull && !bytesFull) return;
      const wake = entriesFull ? sequence - (channelRingEntries >> 1) : tail + Math.max(1, (sequence - tail) >> 1);
      atomicStore(words, wordSpaceWake, wake);
      atomicStore(words, wordSpaceWanted, 1);
      const now = atomicLoad(words, wordTail);
      if (((now - wake) | 0) < 0) atomicWait(words, wordTail, now);
    }
  }

  /**
   * App thread: where a post of `length` bytes written after `bytesHead` (the
   * running count) starts: there, or at the start of the post bytes if it
   * would wrap. -1 if it is too large for the ring (it goes by port).
   */
  static postStart(bytesHead: number, length: number): number {
    if (length > ringPostBytesMax) return -1;
    const offset = bytesHead & (channelPostBytes - 1);
    return offset + length <= channelPostBytes ? bytesHead : (bytesHead + channelPostBytes - offset) | 0;
  }

  /**
   * App thread: writes the post `request` (no ports: not posted with them) as
   * entry `sequence` (not yet published), its text (`text`, a port's id or a
   * channel's name, as UTF-8) and clone at `start` (DoorbellBlock.postStart),
   * room waited for. Returns where its bytes end.
   */
  encodePost(sequence: number, request: PostRequest, text: Uint8Array, start: number, portBefore: number): number {
    const int = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4;
    const float = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes + entryIntWords * 4) / 8;
    const words = this.words;
    const floats = this.floats;
    const offset = start & (channelPostBytes - 1);
    const bytes = request.bytes;
    this.posts.set(text, offset);
    this.posts.set(bytes, offset + text.byteLength);
    const end = (start + text.byteLength + bytes.byteLength) | 0;
    words[int + fieldOp] = opPost;
    words[int + fieldSub] = postOps.indexOf(request.op);
    words[int + fieldWidth] = request.form === undefined ? 0 : request.form + 1;
    words[int + fieldFlags] = flagPosted;
    floats[float + fieldA] = request.op === 'worker-post' ? request.handleId : 0;
    floats[float + fieldPostStart] = start;
    floats[float + fieldPostLength] = bytes.byteLength;
    floats[float + fieldPostText] = text.byteLength;
    floats[float + fieldPostEnd] = end;
    floats[float + fieldPortBefore] = portBefore;
    return end;
  }

  /**
   * App thread: writes `request` as entry `sequence` (not yet published). False
   * if it has no binary form (then it goes by postMessage).
   */
  encode(sequence: number, request: ChannelRequest, posted: boolean, portBefore: number): boolean {
    const int = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4;
    const float = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes + entryIntWords * 4) / 8;
    const words = this.words;
    const floats = this.floats;
    let flags = posted ? flagPosted : 0;
    switch (request.op) {
      case 'sync': {
        const kind = syncKinds.indexOf(request.kind);
        if (kind < 0) return false;
        words[int + fieldOp] = opSync;
        words[int + fieldSub] = kind;
        floats[float + fieldA] = request.id;
        floats[float + fieldB] = request.threadId;
        if (request.tryOnly === true) flags |= flagTryOnly;
        if (request.parties !== undefined) {
          flags |= flagParties;
          floats[float + fieldC] = request.parties;
        }
        // `posted` travels as the flag.
        if ((request.posted === true) !== posted) return false;
        break;
      }
      case 'atomic': {
        const code = atomicFunctionCodes.get(request.fn);
        const count = request.operands.length;
        if (code === undefined || count > operandCountMax) return false;
        words[int + fieldOp] = opAtomic;
        words[int + fieldSub] = code;
        words[int + fieldWidth] = request.width;
        words[int + fieldOperandCount] = count;
        floats[float + fieldA] = request.address;
        floats[float + fieldB] = request.timeoutMs;
        if (request.asyncId !== undefined) {
          flags |= flagAsyncId;
          floats[float + fieldC] = request.asyncId;
        }
        if (request.line === true) flags |= flagLineOp;
        if (request.workMs !== undefined) {
          if (request.asyncId !== undefined) return false;
          flags |= flagWorkMs;
          floats[float + fieldC] = request.workMs;
        }
        for (let k = 0; k < count; k += 1) {
          const text = request.operands[k]!;
          const number = Number(text);
          if (Number.isSafeInteger(number) && String(number) === text) {
            floats[float + fieldOperand + k] = number;
            continue;
          }
          // Raw bits of a 64-bit element: an unsigned decimal below 2^64.
          if (!/^[1-9][0-9]{0,19}$/.test(text)) return false;
          const big = BigInt(text);
          if (big >= u64Limit) return false;
          flags |= flagOperandBig << k;
          words[int + fieldOperandLow + 2 * k] = Number(big & 0xffff_ffffn) | 0;
          words[int + fieldOperandHigh + 2 * k] = Number(big >> 32n) | 0;
        }
        break;
      }
      case 'alloc':
        words[int + fieldOp] = opAlloc;
        floats[float + fieldA] = request.byteLength;
        break;
      case 'free':
      case 'escape':
        words[int + fieldOp] = request.op === 'free' ? opFree : request.given === true ? opEscapeGiven : opEscape;
        floats[float + fieldA] = request.offset;
        break;
      case 'thread-id':
        words[int + fieldOp] = opThreadId;
        break;
      case 'place':
        words[int + fieldOp] = opPlace;
        break;
      case 'line': {
        // The hot path of a line transfer: a binary entry, no postMessage (issue 12).
        const code = lineFunctionCodes.get(request.fn);
        if (code === undefined) return false;
        words[int + fieldOp] = opLine;
        words[int + fieldSub] = code;
        floats[float + fieldA] = request.fn === 'acquire' ? request.line ?? 0 : request.address ?? 0;
        floats[float + fieldB] = request.fn === 'notify' ? request.count ?? -1 : request.timeoutMs ?? -1;
        if (request.afterOp === true) flags |= flagAfterOp;
        if (request.asyncId !== undefined) {
          flags |= flagAsyncId;
          floats[float + fieldC] = request.asyncId;
        }
        break;
      }
      default:
        return false;
    }
    words[int + fieldFlags] = flags;
    floats[float + fieldPortBefore] = portBefore;
    return true;
  }

  /** App thread: makes entries before `head` visible to the manager. */
  publish(head: number): void {
    atomicStore(this.words, wordHead, head);
  }

  /** Manager: how many port messages the thread had sent before it wrote entry `sequence`. */
  portBefore(sequence: number): number {
    return this.floats[(ringOffsetBytes + (sequence % channelRingEntries) * entryBytes + entryIntWords * 4) / 8 + fieldPortBefore]!;
  }

  /** Manager: whether entry `sequence` is a small message post (ChannelClient.sendPost). */
  isPost(sequence: number): boolean {
    return this.words[(ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4 + fieldOp] === opPost;
  }

  /** Manager: whether entry `sequence` is a post or a given escape (src/channel/server.ts, leavesPostsHeld). */
  leavesPostsHeld(sequence: number): boolean {
    const op = this.words[(ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4 + fieldOp];
    return op === opPost || op === opEscapeGiven;
  }

  /**
   * Manager: the offset of entry `sequence` if it is a given escape not yet
   * counted, which it then marks counted (served as nothing); else -1.
   */
  takeGivenEscape(sequence: number): number {
    const int = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4;
    if (this.words[int + fieldOp] !== opEscapeGiven || (this.words[int + fieldFlags]! & flagApplied) !== 0) return -1;
    this.words[int + fieldFlags]! |= flagApplied;
    return this.floats[(int + entryIntWords) / 2 + fieldA]!;
  }

  /** Manager: whether the thread went on after writing entry `sequence` (no answer is wanted). */
  isPosted(sequence: number): boolean {
    return (this.words[(ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4 + fieldFlags]! & flagPosted) !== 0;
  }

  /**
   * Manager: reads entry `sequence` into `into` if it is a sync entry (lock,
   * unlock, barrier), with no request object (the direct path of
   * src/channel/server.ts); false for any other entry.
   */
  readSync(sequence: number, into: RingSync): boolean {
    const int = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4;
    const words = this.words;
    if (words[int + fieldOp] !== opSync) return false;
    const float = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes + entryIntWords * 4) / 8;
    const floats = this.floats;
    const flags = words[int + fieldFlags]!;
    const kind = words[int + fieldSub]!;
    assert(kind >= ringSyncLock && kind <= ringSyncBarrier, 'a sync entry names its kind');
    into.kind = kind as RingSyncKind;
    into.id = floats[float + fieldA]!;
    into.threadId = floats[float + fieldB]!;
    into.parties = (flags & flagParties) !== 0 ? floats[float + fieldC]! : -1;
    into.tryOnly = (flags & flagTryOnly) !== 0;
    into.posted = (flags & flagPosted) !== 0;
    return true;
  }

  /** Manager: entry `sequence` as the request the thread made. */
  decode(sequence: number): ChannelRequest {
    const int = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes) / 4;
    const float = (ringOffsetBytes + (sequence % channelRingEntries) * entryBytes + entryIntWords * 4) / 8;
    const words = this.words;
    const floats = this.floats;
    const flags = words[int + fieldFlags]!;
    switch (words[int + fieldOp]) {
      case opSync: {
        const kind = syncKinds[words[int + fieldSub]!];
        assert(kind !== undefined, 'a sync entry names its kind');
        const request: ChannelRequest = { op: 'sync', kind, id: floats[float + fieldA]!, threadId: floats[float + fieldB]! };
        if ((flags & flagTryOnly) !== 0) request.tryOnly = true;
        if ((flags & flagParties) !== 0) request.parties = floats[float + fieldC]!;
        if ((flags & flagPosted) !== 0) request.posted = true;
        return request;
      }
      case opAtomic: {
        const fn = atomicFunctions[words[int + fieldSub]!];
        assert(fn !== undefined, 'an atomic entry names its function');
        const count = words[int + fieldOperandCount]!;
        assert(count >= 0 && count <= operandCountMax, 'an atomic entry has at most two operands');
        const operands: string[] = [];
        for (let k = 0; k < count; k += 1) {
          if ((flags & (flagOperandBig << k)) === 0) {
            operands.push(String(floats[float + fieldOperand + k]!));
          } else {
            const low = BigInt(words[int + fieldOperandLow + 2 * k]! >>> 0);
            const high = BigInt(words[int + fieldOperandHigh + 2 * k]! >>> 0);
            operands.push(((high << 32n) | low).toString());
          }
        }
        const request: ChannelRequest = {
          op: 'atomic', fn, address: floats[float + fieldA]!, width: words[int + fieldWidth]!, operands, timeoutMs: floats[float + fieldB]!,
        };
        if ((flags & flagAsyncId) !== 0) request.asyncId = floats[float + fieldC]!;
        if ((flags & flagLineOp) !== 0) request.line = true;
        if ((flags & flagWorkMs) !== 0) request.workMs = floats[float + fieldC]!;
        return request;
      }
      case opAlloc: return { op: 'alloc', byteLength: floats[float + fieldA]! };
      case opFree: return { op: 'free', offset: floats[float + fieldA]! };
      case opEscape: return { op: 'escape', offset: floats[float + fieldA]! };
      case opEscapeGiven: return (flags & flagApplied) !== 0
        ? { op: 'escape', offset: floats[float + fieldA]!, given: true, applied: true }
        : { op: 'escape', offset: floats[float + fieldA]!, given: true };
      case opThreadId: return { op: 'thread-id' };
      case opPlace: return { op: 'place' };
      case opLine: {
        const fn = lineFunctions[words[int + fieldSub]!];
        assert(fn !== undefined, 'a line entry names its function');
        const a = floats[float + fieldA]!;
        const b = floats[float + fieldB]!;
        switch (fn) {
          case 'pin': case 'unpinned': return { op: 'line', fn };
          case 'acquire': return { op: 'line', fn, line: a };
          case 'notify': return (flags & flagAfterOp) !== 0 ? { op: 'line', fn, address: a, count: b, afterOp: true } : { op: 'line', fn, address: a, count: b };
          default: {
            const request: ChannelRequest = { op: 'line', fn, address: a, timeoutMs: b };
            if ((flags & flagAsyncId) !== 0) request.asyncId = floats[float + fieldC]!;
            return request;
          }
        }
      }
      case opPost: {
        const op = postOps[words[int + fieldSub]!];
        assert(op !== undefined, 'a post entry names its op');
        const offset = floats[float + fieldPostStart]! & (channelPostBytes - 1);
        const textBytes = floats[float + fieldPostText]!;
        const length = floats[float + fieldPostLength]!;
        assert(offset + textBytes + length <= channelPostBytes, 'a post entry\'s bytes within the post bytes');
        // Copied out (the room is the thread's again once taken): the clone's own buffer, whole, as a transfer made it.
        const bytes = this.posts.slice(offset + textBytes, offset + textBytes + length);
        const form = words[int + fieldWidth]! - 1;
        // TextDecoder does not read shared memory: copy out first.
        const text = textBytes === 0 ? '' : textDecoder.decode(this.posts.slice(offset, offset + textBytes));
        let request: PostRequest;
        switch (op) {
          case 'worker-post': request = { op, handleId: floats[float + fieldA]!, bytes, posted: true }; break;
          case 'parent-post': request = { op, bytes, posted: true }; break;
          case 'port-post': request = { op, id: text, bytes, posted: true }; break;
          case 'bc-post': request = { op, name: text, bytes, posted: true }; break;
        }
        if (form >= 0) request.form = form;
        return request;
      }
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `doorbell entry with unknown op code ${words[int + fieldOp]}`);
    }
  }

  /** Manager: entries before `tail` are taken (their room, and a post's bytes, may be reused). */
  take(tail: number): void {
    const words = this.words;
    const last = tail - 1;
    const int = (ringOffsetBytes + (last % channelRingEntries) * entryBytes) / 4;
    if (words[int + fieldOp] === opPost) {
      const float = (ringOffsetBytes + (last % channelRingEntries) * entryBytes + entryIntWords * 4) / 8;
      atomicStore(words, wordBytesTail, this.floats[float + fieldPostEnd]!);
    }
    atomicStore(words, wordTail, tail);
    if (atomicLoad(words, wordSpaceWanted) !== 0 && ((tail - atomicLoad(words, wordSpaceWake)) | 0) >= 0) {
      atomicStore(words, wordSpaceWanted, 0);
      atomicNotify(words, wordTail);
    }
  }

  // ---- Message posts in flight (app thread: wait for room; manager: count served).

  /**
   * App thread: when `max` of the `sent` message posts it sent without
   * waiting are still in its manager (not yet admitted within the link limit
   * and served: flow control), waits until at most half of them are (one
   * wake-up per max/2 posts, not one a post). In slices of
   * channelParkSliceMs, as awaitReply (a terminated thread ends within one).
   */
  waitForPostRoom(sent: number, max: number): void {
    const words = this.words;
    if (((sent - atomicLoad(words, wordPostsServed)) | 0) < max) return;
    const wake = (sent - (max >> 1)) | 0;
    while (((wake - atomicLoad(words, wordPostsServed)) | 0) > 0) {
      atomicStore(words, wordPostsWake, wake);
      atomicStore(words, wordPostsWanted, 1);
      const served = atomicLoad(words, wordPostsServed);
      if (((wake - served) | 0) > 0) atomicWait(words, wordPostsServed, served, channelParkSliceMs);
    }
  }

  /** Manager: one more of the thread's message posts is served (wakes the thread if it waits for room). */
  postServed(units = 1): void {
    const words = this.words;
    const served = (atomicLoad(words, wordPostsServed) + units) | 0;
    atomicStore(words, wordPostsServed, served);
    if (atomicLoad(words, wordPostsWanted) !== 0 && ((served - atomicLoad(words, wordPostsWake)) | 0) >= 0) {
      atomicStore(words, wordPostsWanted, 0);
      atomicNotify(words, wordPostsServed);
    }
  }

  // ---- The reply (manager: write; app thread: read).

  replyState(): number { return atomicLoad(this.words, wordReplyState); }

  /** Manager: writes the answer to the thread's call and wakes it. */
  answer(reply: ChannelReply): void {
    assert(atomicLoad(this.words, wordReplyState) === replyStateIdle, 'one answer per call');
    if (!reply.ok || !this.encodeValue(reply.value)) this.encodeJson(reply);
    atomicStore(this.words, wordReplyState, replyStateReady);
    this.native.unpark(this.buffer, wordReplyState * 4);
  }

  private encodeValue(value: unknown): boolean {
    const words = this.words;
    if (value === null || value === undefined) {
      words[wordReplyKind] = replyKindNull;
      return true;
    }
    if (typeof value === 'number') {
      words[wordReplyKind] = replyKindNumber;
      this.floats[replyNumberF64] = value;
      return true;
    }
    if (typeof value !== 'string') return false;
    const word = replyWordCodes.get(value);
    if (word !== undefined) {
      words[wordReplyKind] = replyKindWord;
      words[wordReplyWord] = word;
      return true;
    }
    const number = Number(value);
    if (Number.isSafeInteger(number) && String(number) === value) {
      words[wordReplyKind] = replyKindDecimal;
      this.floats[replyNumberF64] = number;
      return true;
    }
    if (/^[1-9][0-9]{0,19}$/.test(value)) {
      const big = BigInt(value);
      if (big < u64Limit) {
        words[wordReplyKind] = replyKindDecimal64;
        words[wordReplyLow] = Number(big & 0xffff_ffffn) | 0;
        words[wordReplyHigh] = Number(big >> 32n) | 0;
        return true;
      }
    }
    return false;
  }

  private encodeJson(reply: ChannelReply): void {
    let encoded = textEncoder.encode(JSON.stringify(reply));
    if (encoded.byteLength > this.json.byteLength) {
      encoded = textEncoder.encode(JSON.stringify({ ok: false, code: 'DSM_ERR_CHANNEL', message: `reply of ${encoded.byteLength} bytes exceeds the reply block` }));
    }
    this.json.set(encoded);
    this.words[wordReplyKind] = replyKindJson;
    this.words[wordReplyBytes] = encoded.byteLength;
  }

  /**
   * App thread: parks until the answer is there, takes it (the block is idle
   * again), and returns its value or throws its error. It parks on a raw futex
   * (V8's Atomics.wait adds a lock and a condition variable to every sleep and
   * wake-up) in slices of channelParkSliceMs, so that a terminated thread
   * (worker.terminate stops JavaScript, and only Atomics.wait would it also
   * wake) ends within one slice. It parks at once: a spin first (as the native
   * fault path does) made the trip shorter with two threads on two idle cores,
   * but longer in dsm runs on a loaded machine, where the spinning thread
   * takes the core its manager needs.
   */
  awaitReply(): unknown {
    const words = this.words;
    while (atomicLoad(words, wordReplyState) === replyStateIdle) this.native.park(this.buffer, wordReplyState * 4, replyStateIdle, channelParkSliceMs);
    assert(atomicLoad(words, wordReplyState) === replyStateReady, 'the block holds a ready reply');
    let value: unknown;
    switch (words[wordReplyKind]) {
      case replyKindNull: value = null; break;
      case replyKindNumber: value = this.floats[replyNumberF64]; break;
      case replyKindWord: value = replyWords[words[wordReplyWord]!]; break;
      case replyKindDecimal: value = String(this.floats[replyNumberF64]); break;
      case replyKindDecimal64: {
        value = ((BigInt(words[wordReplyHigh]! >>> 0) << 32n) | BigInt(words[wordReplyLow]! >>> 0)).toString();
        break;
      }
      default: {
        const byteLength = words[wordReplyBytes]!;
        assert(words[wordReplyKind] === replyKindJson && byteLength >= 0 && byteLength <= this.json.byteLength, 'a JSON reply within the block');
        // TextDecoder does not read shared memory: copy out first.
        const reply = JSON.parse(textDecoder.decode(this.json.slice(0, byteLength))) as ChannelReply;
        atomicStore(words, wordReplyState, replyStateIdle);
        if (!reply.ok) throw new DsmError(reply.code as ErrorCode, reply.message);
        return reply.value;
      }
    }
    atomicStore(words, wordReplyState, replyStateIdle);
    return value;
  }
}
