// Structured clone across nodes.
//
// Values sent to a thread on another node (postMessage, workerData) are
// serialized with V8's serializer. dsm SharedArrayBuffers inside them travel
// as (offset, byteLength) and reappear on the far side as the same global
// memory; views over them (typed arrays, DataView) keep their offset and
// length. A SharedArrayBuffer that is not dsm memory cannot cross nodes.

import v8 from 'node:v8';
import { types } from 'node:util';
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { BlockList, SocketAddress } from 'node:net';
import { MessagePort } from 'node:worker_threads';
import { cloneArrayNamedScanLengthMax, remoteMessageBytesMax } from '../constants.js';
import { DsmError } from '../errors.js';
import { rangeTokenOwners } from './range-tokens.js';

export { rangeTokenOwners };

export interface BufferRanges {
  rangeOf(buffer: SharedArrayBuffer): { offset: number; byteLength: number } | null;
  bufferAt(offset: number, byteLength: number): SharedArrayBuffer;
  /** The buffer at `offset` (`buffer`, the one serialized) leaves for another node: the range token its descriptor carries (0 without a manager). */
  onEscape?(offset: number, buffer: SharedArrayBuffer): number;
  /** A buffer received with this range token is about to be made. */
  onHold?(offset: number, byteLength: number, token: number): void;
}

/**
 * The weighted range tokens a clone carries, listed after the value (a
 * trailer V8's deserializer does not read): the receiving manager reads them
 * without decoding the value, so that the weights of a message no thread ever
 * reads (its worker terminated with it queued, or never started, or never
 * listened) go back to their owners when the thread ends
 * (src/runtime/heap-service.ts, "Pending holds"). The trailer: a lead byte
 * (heldTrailerLead), then for each descriptor with a weight its offset,
 * byteLength and token as float64, then their count and heldTrailerMagic as
 * uint32, little-endian.
 */
const heldTrailerMagic = 0x68_6d_73_64;
/** The trailer's first byte: no tag V8's deserializer reads after a value (see writeHeldTrailer). */
const heldTrailerLead = 0xff;
const heldTrailerTailBytes = 8;
const heldEntryBytes = 24;

/**
 * The held ranges a clone's trailer lists, as [offset, byteLength, token, …]
 * (see heldTrailerMagic). Bytes without a well-formed trailer are a
 * DSM_ERR_FRAME naming `from`.
 */
export function heldRangesOf(bytes: Uint8Array, from: string): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tail = bytes.byteLength - heldTrailerTailBytes;
  if (tail < 0 || view.getUint32(tail + 4, true) !== heldTrailerMagic) {
    throw new DsmError('DSM_ERR_FRAME', `a cloned message from ${from} ends without its list of held ranges: a peer of another dsm version, or corrupted bytes`);
  }
  const count = view.getUint32(tail, true);
  if (count * heldEntryBytes + 1 > tail) throw new DsmError('DSM_ERR_FRAME', `a cloned message from ${from} lists ${count} held ranges in ${bytes.byteLength} bytes`);
  const held: number[] = [];
  for (let at = tail - count * heldEntryBytes; at < tail; at += 8) held.push(view.getFloat64(at, true));
  return held;
}

/** Node's serializer hooks, which @types/node does not declare. */
interface HostHooks {
  _writeHostObject?(object: object): void;
  _readHostObject?(): unknown;
}

const hostTagView = 1;
const hostTagBuffer = 2;
const hostTagPlain = 0;
/** A MessagePort relayed across nodes: its relay id (src/threads/port-relay.ts). */
const hostTagPort = 3;
/** A KeyObject: its type and its key material (raw, SPKI or PKCS#8 DER), made a KeyObject again on the other node. */
const hostTagKeyObject = 4;
/** A net.SocketAddress: its address, port, family and flow label. */
const hostTagSocketAddress = 5;
/** A net.BlockList: its rules, added again in their order. */
const hostTagBlockList = 6;
const keyObjectTypes = ['secret', 'public', 'private'] as const;
/** The marker views replaceBareBuffers put in place of a SocketAddress or a BlockList, with what each is written as. */
const stateMarkers = new WeakMap<DataView, { tag: number; state: string }>();

/**
 * MessagePorts in a value that crosses nodes (src/threads/port-relay.ts):
 * `idOf` gives the relay id a port travels as (or throws: a port not in the
 * transferList), `portAt` the port a received id becomes.
 */
export interface PortCodec {
  idOf?(port: MessagePort): string;
  portAt?(id: string): MessagePort;
}

/** Float16Array where Node has it (Node 24 on; the project's type libraries do not declare it). */
const float16Array = (globalThis as { Float16Array?: typeof Float32Array }).Float16Array;

/** The view kinds a clone names by index; Float16Array last, where Node has it (every node of a run has the same). */
const viewKinds = [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
  ...(float16Array === undefined ? [] : [float16Array]),
] as const;

const typedArrayTagGetter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Int8Array.prototype) as object, Symbol.toStringTag)!.get!;

/**
 * A view's index in viewKinds, by its internal slots as structured clone sees it: a subclass's is its base class's,
 * and a view made in a vm context (of that realm's classes, so no `instanceof` here holds) is its kind's.
 */
function viewKindIndexOf(view: ArrayBufferView): number {
  if (types.isDataView(view)) return viewKinds.indexOf(DataView);
  const tag = typedArrayTagGetter.call(view) as string | undefined;
  return viewKinds.findIndex((kind) => kind.name === tag);
}

/** By the internal slot, as structured clone sees it: a subclass's Symbol.toStringTag or another prototype does not hide one. */
function isSharedArrayBuffer(value: unknown): value is SharedArrayBuffer {
  return types.isSharedArrayBuffer(value);
}

/** WebAssembly.Memory (the project's type libraries do not declare WebAssembly). */
const wasmMemory = (globalThis as { WebAssembly?: { Memory: abstract new (...args: never[]) => { buffer: unknown } } }).WebAssembly?.Memory;

/** Node's cloneable objects whose state dsm copies to another node (see DsmSerializer._writeHostObject). */
function crossesNodes(item: object): boolean {
  return types.isKeyObject(item) || item instanceof SocketAddress || item instanceof BlockList;
}

/**
 * Node's own cloneable or transferable objects, whose state lives in this process and which dsm cannot send to
 * another node: a Blob or File, a histogram, a web stream (their classes carry Node's messaging symbols, on Node 20
 * and 24 alike), a CryptoKey. Not a MessagePort (dsm relays ports between nodes), nor a KeyObject, a SocketAddress
 * or a BlockList (dsm copies their state: crossesNodes).
 */
function isNodeHostObject(item: object): boolean {
  if (item instanceof MessagePort || crossesNodes(item)) return false;
  if (types.isCryptoKey(item)) return true;
  for (let proto = Object.getPrototypeOf(item) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const symbol of Object.getOwnPropertySymbols(proto)) {
      if (symbol.description === 'messaging_clone_symbol' || symbol.description === 'messaging_transfer_symbol') return true;
    }
  }
  return false;
}

/**
 * Whether `value` holds what is local to this node and so cannot cross nodes:
 * shared memory (a WebAssembly shared Memory, a growable SharedArrayBuffer, or
 * any other SharedArrayBuffer that is not dsm memory, bare or under a view) or
 * one of Node's own cloneable objects (isNodeHostObject: a Blob, a KeyObject...).
 * The walk follows what the structured clone follows (own enumerable values of
 * objects and arrays, Map and Set entries) and stops after `valueCountMax`
 * values, answering false: a worker placed by that answer and given such a value
 * still gets the clone's error, which names it.
 */
export function holdsNodeLocalMemory(value: unknown, ranges: BufferRanges, valueCountMax: number): boolean {
  const seen = new Set<object>();
  const pending: unknown[] = [value];
  let visited = 0;
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item !== 'object' || item === null || seen.has(item)) continue;
    if (++visited > valueCountMax) return false;
    seen.add(item);
    if (wasmMemory !== undefined && item instanceof wasmMemory) return isSharedArrayBuffer(item.buffer);
    const buffer = isSharedArrayBuffer(item) ? item : ArrayBuffer.isView(item) && isSharedArrayBuffer(item.buffer) ? item.buffer : null;
    if (buffer !== null) {
      if (ranges.rangeOf(buffer) === null) return true;
      continue;
    }
    if (ArrayBuffer.isView(item) || item instanceof ArrayBuffer) continue;
    if (isNodeHostObject(item)) return true;
    if (item instanceof Map) {
      for (const [key, entry] of item) pending.push(key, entry);
    } else if (item instanceof Set) {
      for (const entry of item) pending.push(entry);
    } else {
      for (const key of Object.keys(item)) pending.push((item as Record<string, unknown>)[key]);
    }
  }
  return false;
}

/**
 * Whether V8's structured clone copies `value` as an ordinary object: its own enumerable properties into a plain
 * object (the prototype is lost), as it does for an instance of a class or an object made with Object.create. Not
 * the objects it copies otherwise (arrays, Maps, Sets, buffers and views, Dates, RegExps, boxed primitives, Errors)
 * or refuses (Promises, Proxies, weak collections, ...), nor Node's host objects.
 */
function clonesAsOrdinaryObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value) as object | null;
  if (prototype === Object.prototype || prototype === null) return true;
  return !(types.isDate(value) || types.isRegExp(value) || types.isBoxedPrimitive(value) || types.isNativeError(value)
    || types.isPromise(value) || types.isProxy(value) || types.isWeakMap(value) || types.isWeakSet(value)
    || types.isGeneratorObject(value) || types.isMapIterator(value) || types.isSetIterator(value)
    || types.isModuleNamespaceObject(value) || types.isExternal(value) || value instanceof MessagePort || isNodeHostObject(value));
}

/** Whether an own property key is an array index ("0", "1", ...: a canonical integer below 2^32 - 1). */
function isArrayIndex(key: string): boolean {
  const number = Number(key);
  return Number.isInteger(number) && number >= 0 && number < 2 ** 32 - 1 && String(number) === key;
}

/**
 * Copies `value`'s own enumerable string-keyed properties into `copy`, each with its bare buffers replaced (a
 * getter is called here, once: the copy holds what it gave, and V8's serializer then reads the copy, so the
 * program's getter is not called a second time, as the structured clone calls it once). Returns whether any
 * property changed.
 */
function copyOwnProperties(value: object, copy: Record<string, unknown>, markers: Map<SharedArrayBuffer, DataView>, seen: Map<object, unknown>, skip?: (key: string) => boolean): boolean {
  let changed = false;
  for (const key of Object.keys(value)) {
    if (skip?.(key) === true) continue;
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    const accessor = descriptor !== undefined && !('value' in descriptor);
    const item = accessor ? (value as Record<string, unknown>)[key] : descriptor?.value;
    const newItem = replaceBareBuffers(item, markers, seen);
    changed ||= accessor || newItem !== item;
    copy[key] = newItem;
  }
  return changed;
}

/**
 * V8 serializes a bare SharedArrayBuffer by id, which its deserializer cannot
 * read back in Node; so each bare buffer is first replaced by a zero-length
 * marker view over it, and the marker is written as a host object. Containers
 * (wherever the structured clone reaches: plain and ordinary objects, arrays
 * with their holes and named properties, Maps, Sets, an Error's cause) are
 * copied only along paths that lead to a buffer, each as the clone would copy
 * it.
 */
function replaceBareBuffers(value: unknown, markers: Map<SharedArrayBuffer, DataView>, seen: Map<object, unknown>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (isSharedArrayBuffer(value)) {
    let marker = markers.get(value);
    if (marker === undefined) {
      marker = new DataView(value, 0, 0);
      markers.set(value, marker);
    }
    return marker;
  }
  if (seen.has(value)) return seen.get(value);
  if (value instanceof SocketAddress || value instanceof BlockList) {
    // Node 24 makes these ordinary objects to V8 (whose clone of one is an empty object), Node 20 host objects: a
    // marker view either way, written with the object's state (DsmSerializer._writeHostObject).
    const marker = new DataView(new ArrayBuffer(0));
    stateMarkers.set(marker, value instanceof SocketAddress
      ? { tag: hostTagSocketAddress, state: JSON.stringify({ address: value.address, port: value.port, family: value.family, flowlabel: value.flowlabel }) }
      : { tag: hostTagBlockList, state: JSON.stringify(value.rules) });
    seen.set(value, marker);
    return marker;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  if (Array.isArray(value)) {
    // Its length, the indices it holds (a hole stays a hole) and its named properties, as V8 clones an array.
    const copy: unknown[] = new Array<unknown>(value.length);
    seen.set(value, copy);
    let changed = false;
    for (let index = 0; index < value.length; index += 1) {
      if (!(index in value)) continue;
      const item = replaceBareBuffers(value[index], markers, seen);
      changed ||= item !== value[index];
      copy[index] = item;
    }
    // Named properties (`parts.header = buffer`): looked for on arrays of up to cloneArrayNamedScanLengthMax
    // elements (the list of an array's keys names every index), and on any array copied anyway.
    if (changed || value.length <= cloneArrayNamedScanLengthMax) {
      if (copyOwnProperties(value, copy as unknown as Record<string, unknown>, markers, seen, isArrayIndex)) changed = true;
    }
    if (!changed) seen.set(value, value);
    return changed ? copy : value;
  }
  if (value instanceof Map) {
    const copy = new Map();
    seen.set(value, copy);
    let changed = false;
    for (const [key, item] of value) {
      const newKey = replaceBareBuffers(key, markers, seen);
      const newItem = replaceBareBuffers(item, markers, seen);
      changed ||= newKey !== key || newItem !== item;
      copy.set(newKey, newItem);
    }
    if (!changed) seen.set(value, value);
    return changed ? copy : value;
  }
  if (value instanceof Set) {
    const copy = new Set();
    seen.set(value, copy);
    let changed = false;
    for (const item of value) {
      const newItem = replaceBareBuffers(item, markers, seen);
      changed ||= newItem !== item;
      copy.add(newItem);
    }
    if (!changed) seen.set(value, value);
    return changed ? copy : value;
  }
  if (types.isNativeError(value)) {
    // V8 clones an Error's kind (by its name), message, stack and cause: a copy of those, with the cause's buffers replaced.
    if (!Object.prototype.hasOwnProperty.call(value, 'cause')) return value;
    const cause = (value as { cause?: unknown }).cause;
    seen.set(value, value);
    const newCause = replaceBareBuffers(cause, markers, seen);
    if (newCause === cause) return value;
    const copy = new Error();
    Object.setPrototypeOf(copy, Object.getPrototypeOf(value) as object | null);
    const own = (key: string, item: unknown): void => { Object.defineProperty(copy, key, { value: item, writable: true, configurable: true, enumerable: false }); };
    if (Object.prototype.hasOwnProperty.call(value, 'message')) own('message', (value as Error).message);
    own('stack', (value as Error).stack);
    own('cause', newCause);
    seen.set(value, copy);
    return copy;
  }
  if (!clonesAsOrdinaryObject(value)) return value;
  const copy: Record<string, unknown> = {};
  seen.set(value, copy);
  const changed = copyOwnProperties(value, copy, markers, seen);
  if (!changed) seen.set(value, value);
  return changed ? copy : value;
}

/**
 * The transfer list that hands `bytes` to another thread without a copy: its
 * ArrayBuffer, when the bytes are the whole of it (serializeValue's output; a
 * large message's payload as the frame decoder gives it, src/transport/frame.ts),
 * else none (a view of a larger buffer, such as a frame received in one chunk,
 * is copied by the clone: transferring it would take its neighbours along).
 * The sender must not use `bytes` afterwards: they are detached.
 */
export function transferListOf(bytes: Uint8Array): ArrayBuffer[] {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength) return [];
  return [buffer];
}

const writePlainHostObject = (v8.DefaultSerializer.prototype as unknown as HostHooks)._writeHostObject!;

/**
 * dsm's serializer: one class for every message (a class made per call cost
 * the posting thread about twice the serialization itself, and garbage;
 * session 21), the message's own state on the instance.
 */
class DsmSerializer extends v8.DefaultSerializer {
  private readonly ranges: BufferRanges;
  private readonly ports: PortCodec;
  private readonly bareMarkers: Set<DataView>;
  /** The descriptors written with a weight, as [offset, byteLength, token, …] (the trailer: heldTrailerMagic). */
  private readonly held: number[] = [];

  constructor(ranges: BufferRanges, ports: PortCodec, bareMarkers: Set<DataView>) {
    super();
    this.ranges = ranges;
    this.ports = ports;
    this.bareMarkers = bareMarkers;
  }

  /** After the value: the held ranges' trailer (heldRangesOf reads it). */
  writeHeldTrailer(): void {
    const trailer = new DataView(new ArrayBuffer(1 + this.held.length * 8 + heldTrailerTailBytes));
    // V8's deserializer, having read an ArrayBuffer (a dsm buffer is one), peeks at the next tag, past padding
    // (0): should it be an ArrayBufferView's ('V'), it reads a view of it. A first byte of 0x56 in an offset made
    // a message "Unable to deserialize cloned data". The lead byte is neither.
    trailer.setUint8(0, heldTrailerLead);
    for (let index = 0; index < this.held.length; index += 1) trailer.setFloat64(1 + index * 8, this.held[index]!, true);
    trailer.setUint32(1 + this.held.length * 8, this.held.length / 3, true);
    trailer.setUint32(1 + this.held.length * 8 + 4, heldTrailerMagic, true);
    this.writeRawBytes(new Uint8Array(trailer.buffer));
  }

  /** A value structured clone cannot copy (a function, a symbol, a WeakMap): Node's postMessage throws a DataCloneError DOMException, not an Error. */
  _getDataCloneError(message: string): Error {
    return new DOMException(message, 'DataCloneError');
  }

  _getSharedArrayBufferId(buffer: SharedArrayBuffer): never {
    // V8 asks for an id for a buffer it meets outside a view we wrote: where replaceBareBuffers does not look, or a
    // WebAssembly shared Memory's buffer (which is never dsm memory).
    if (this.ranges.rangeOf(buffer) === null) {
      throw new DsmError('DSM_ERR_NOT_DSM_MEMORY',
        'a WebAssembly shared Memory (or another SharedArrayBuffer that is not dsm memory) cannot cross nodes: it is local to its node; a worker given it in workerData starts on its creator\'s node');
    }
    throw new DsmError('DSM_ERR_NOT_DSM_MEMORY',
      `a SharedArrayBuffer held where dsm's clone does not look for one (a named property of an array of more than ${cloneArrayNamedScanLengthMax} elements) cannot cross nodes: send it in an element, a field of an object, a Map or a Set`);
  }

  _writeHostObject(object: object): void {
    if (ArrayBuffer.isView(object) && isSharedArrayBuffer(object.buffer)) {
      const range = this.ranges.rangeOf(object.buffer);
      if (range === null && (object.buffer as { growable?: boolean }).growable === true) {
        throw new DsmError('DSM_ERR_GROWABLE',
          'a growable SharedArrayBuffer (maxByteLength) cannot cross nodes: it is local to the node that made it; share a fixed-size one');
      }
      if (range === null) {
        throw new DsmError('DSM_ERR_NOT_DSM_MEMORY',
          'a SharedArrayBuffer that is not dsm memory cannot cross nodes: create it with new SharedArrayBuffer() inside the dsm program');
      }
      // Before the escape is counted: a view of a kind this clone does not know is refused, not sent as one it misreads.
      const kind = viewKindIndexOf(object);
      if (kind < 0) throw this._getDataCloneError(`${Object.prototype.toString.call(object)} over dsm memory could not be cloned`);
      const token = this.ranges.onEscape?.(range.offset, object.buffer) ?? 0;
      if (token >= rangeTokenOwners) this.held.push(range.offset, range.byteLength, token);
      const bare = this.bareMarkers.has(object as DataView);
      this.writeUint32(bare ? hostTagBuffer : hostTagView);
      this.writeUint32(kind);
      this.writeDouble(range.offset);
      this.writeDouble(range.byteLength);
      this.writeDouble(token);
      this.writeDouble(object.byteOffset);
      this.writeDouble(object.byteLength);
      return;
    }
    if (this.ports.idOf !== undefined && object instanceof MessagePort) {
      const id = Buffer.from(this.ports.idOf(object), 'utf8');
      this.writeUint32(hostTagPort);
      this.writeUint32(id.byteLength);
      this.writeRawBytes(id);
      return;
    }
    if (types.isKeyObject(object)) {
      const key = object as unknown as KeyObject;
      const material = key.type === 'secret' ? key.export()
        : key.type === 'public' ? key.export({ type: 'spki', format: 'der' }) : key.export({ type: 'pkcs8', format: 'der' });
      this.writeUint32(hostTagKeyObject);
      this.writeUint32(keyObjectTypes.indexOf(key.type));
      this.writeUint32(material.byteLength);
      this.writeRawBytes(material);
      return;
    }
    const marked = stateMarkers.get(object as DataView);
    if (marked !== undefined) {
      const bytes = Buffer.from(marked.state, 'utf8');
      this.writeUint32(marked.tag);
      this.writeUint32(bytes.byteLength);
      this.writeRawBytes(bytes);
      return;
    }
    this.writeUint32(hostTagPlain);
    try {
      writePlainHostObject.call(this, object);
    } catch (error) {
      // V8's "Unserializable host object" names nothing a program can act on (a MessagePort in a remote worker's workerData).
      const kind = (object as { constructor?: { name?: unknown } }).constructor?.name;
      const what = typeof kind === 'string' && kind !== '' ? kind : 'this host object';
      throw new DsmError('DSM_ERR_NOT_DSM_MEMORY',
        `a ${what} cannot cross nodes (in workerData or a message to or from a thread on another node): only values a structured clone copies, and dsm memory, can; ${what === 'MessagePort' ? 'post it to the thread with postMessage, in the transferList (a MessagePort posted across nodes is relayed)' : 'send its data instead'}`,
        { cause: error });
    }
  }
}

/** A value as bytes that cross nodes: the serializer's own buffer, whole (transferListOf hands it on without a copy). */
export function serializeValue(value: unknown, ranges: BufferRanges, ports: PortCodec = {}): Uint8Array {
  const markers = new Map<SharedArrayBuffer, DataView>();
  const prepared = replaceBareBuffers(value, markers, new Map());
  const bareMarkers = new Set<DataView>(markers.values());
  const serializer = new DsmSerializer(ranges, ports, bareMarkers);
  serializer.writeHeader();
  serializer.writeValue(prepared);
  serializer.writeHeldTrailer();
  return serializer.releaseBuffer();
}

/**
 * A typed array or DataView the clone read: Node's deserializer makes it a
 * view of the message's bytes (past the clone's header, the other values
 * around it; a pooled 8 KiB Buffer's when unaligned), so that a program that
 * reads it through its buffer (`new Float64Array(view.buffer)`, `new
 * DataView(record.buffer)`, `Buffer.from(view.buffer)`, as users read a
 * worker's small result) read other bytes than under node, where it is the
 * whole of its own buffer. So it gets a buffer of its own (a copy: of a few
 * bytes for a worker's result record; a large one inside a message costs one
 * copy more than the view did, while a large typed array that is the whole
 * message still travels as its contents, serializeMessage). A Buffer (which
 * Node's deserializer makes a Buffer again) is a Uint8Array, as a structured
 * clone gives it.
 */
function withOwnBuffer(value: unknown): unknown {
  if (!ArrayBuffer.isView(value)) return value;
  const { buffer, byteOffset, byteLength } = value;
  if (!(buffer instanceof ArrayBuffer)) return value;
  const own = byteOffset !== 0 || byteLength !== buffer.byteLength;
  if (value instanceof DataView) return own ? new DataView(buffer.slice(byteOffset, byteOffset + byteLength)) : value;
  // The built-in class it is (a Buffer's is Uint8Array).
  const kind = (globalThis as unknown as Record<string, new (...args: unknown[]) => ArrayBufferView>)[
    (value as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]]!;
  if (own) return new kind(buffer.slice(byteOffset, byteOffset + byteLength));
  if (Object.getPrototypeOf(value) !== kind.prototype) return new kind(buffer, byteOffset, byteLength / (kind as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT);
  return value;
}

const readPlainHostObject = (v8.DefaultDeserializer.prototype as unknown as HostHooks)._readHostObject!;

/** dsm's deserializer: one class for every message (as DsmSerializer), the message's own state on the instance. */
class DsmDeserializer extends v8.DefaultDeserializer {
  private readonly ranges: BufferRanges;
  private readonly ports: PortCodec;
  /**
   * One message keeps one buffer identity, as structured clone does: views
   * over the same dsm buffer arrive over the same SharedArrayBuffer object.
   */
  private readonly buffers = new Map<string, SharedArrayBuffer>();

  constructor(bytes: Buffer, ranges: BufferRanges, ports: PortCodec) {
    super(bytes);
    this.ranges = ranges;
    this.ports = ports;
  }

  private bufferAt(offset: number, byteLength: number): SharedArrayBuffer {
    const key = `${offset}:${byteLength}`;
    let buffer = this.buffers.get(key);
    if (buffer === undefined) {
      buffer = this.ranges.bufferAt(offset, byteLength);
      this.buffers.set(key, buffer);
    }
    return buffer;
  }

  _readHostObject(): unknown {
    const tag = this.readUint32();
    if (tag === hostTagPlain) return withOwnBuffer(readPlainHostObject.call(this));
    if (tag === hostTagPort) {
      const id = (this.readRawBytes(this.readUint32()) as Buffer).toString('utf8');
      if (this.ports.portAt === undefined) throw new DsmError('DSM_ERR_FRAME', 'a cloned value holds a relayed MessagePort where none can be received');
      return this.ports.portAt(id);
    }
    if (tag === hostTagKeyObject) {
      const type = keyObjectTypes[this.readUint32()];
      const material = Buffer.from(this.readRawBytes(this.readUint32()) as Buffer);
      if (type === 'secret') return createSecretKey(material);
      if (type === 'public') return createPublicKey({ key: material, format: 'der', type: 'spki' });
      if (type === 'private') return createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
      throw new DsmError('DSM_ERR_FRAME', 'a cloned KeyObject names an unknown key type');
    }
    if (tag === hostTagSocketAddress || tag === hostTagBlockList) {
      const state = JSON.parse((this.readRawBytes(this.readUint32()) as Buffer).toString('utf8')) as unknown;
      if (tag === hostTagSocketAddress) return new SocketAddress(state as ConstructorParameters<typeof SocketAddress>[0]);
      return blockListOf(state);
    }
    const kind = viewKinds[this.readUint32()];
    const offset = this.readDouble();
    const bufferByteLength = this.readDouble();
    const token = this.readDouble();
    const byteOffset = this.readDouble();
    const byteLength = this.readDouble();
    // The buffer first, then its hold: once a buffer maps the range, no report that no buffer lives over it can
    // be made (a report queued before is withdrawn, or was taken by the manager before this hold), so the
    // manager never takes an older buffer's collection for this one's (src/runtime/heap-service.ts).
    // Every descriptor's weight is held, also when one message names the range twice (each took a share).
    const buffer = this.bufferAt(offset, bufferByteLength);
    this.ranges.onHold?.(offset, bufferByteLength, token);
    if (tag === hostTagBuffer) return buffer;
    if (kind === undefined) throw new DsmError('DSM_ERR_FRAME', 'a cloned value names an unknown view kind');
    if (kind === DataView) return new DataView(buffer, byteOffset, byteLength);
    const elementBytes = (kind as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    return new (kind as unknown as new (b: SharedArrayBuffer, o: number, l: number) => ArrayBufferView)(
      buffer, byteOffset, byteLength / elementBytes);
  }
}

/** A BlockList holding `rules` (BlockList.rules: the newest first, as "Address: IPv4 1.2.3.4", "Range: IPv4 a-b", "Subnet: IPv6 fe80::/64"). */
function blockListOf(rules: unknown): BlockList {
  if (!Array.isArray(rules)) throw new DsmError('DSM_ERR_FRAME', 'a cloned BlockList carries no rule list');
  const list = new BlockList();
  for (const rule of [...rules].reverse()) {
    const match = typeof rule === 'string' ? /^(Address|Range|Subnet): IPv([46]) (.+)$/.exec(rule) : null;
    if (match === null) throw new DsmError('DSM_ERR_FRAME', `a cloned BlockList carries a rule dsm cannot read: ${String(rule).slice(0, 80)}`);
    const [, kind, version, what] = match;
    const family = version === '4' ? 'ipv4' : 'ipv6';
    if (kind === 'Address') {
      list.addAddress(what!, family);
    } else if (kind === 'Range') {
      const [start, end] = what!.split('-');
      list.addRange(start!, end!, family);
    } else {
      const slash = what!.lastIndexOf('/');
      list.addSubnet(what!.slice(0, slash), Number(what!.slice(slash + 1)), family);
    }
  }
  return list;
}

export function deserializeValue(bytes: Uint8Array, ranges: BufferRanges, ports: PortCodec = {}): unknown {
  const deserializer = new DsmDeserializer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), ranges, ports);
  deserializer.readHeader();
  const value = deserializer.readValue();
  if (bytes.byteLength >= youngGcCheckBytesMin) askForYoungGc();
  return value;
}

/**
 * A message of at least this many bytes is followed by askForYoungGc.
 * V8 weighs the ArrayBuffers of its young generation (a scavenge once they
 * pass two semispaces, about 32 MiB) only when a backing store is allocated
 * through its heap, as a typed array made in JavaScript is. A received
 * message allocates none: its bytes came by transfer (src/runtime/remote-workers.ts)
 * and its typed arrays are views of them. So a thread that only receives
 * large messages and echoes them (a remote worker) held them until a full
 * collection: node 1's worker of bench/volume.ts's posts collected every
 * ~130 MiB (45 mark-compacts and no scavenge for 3,000 messages of 1 MiB;
 * 183 scavenges with the check), its node's peak Pss 253-264 MiB instead of
 * 201-218 (docs/EVALUATION.md, "Session 9: a large postMessage, copy by copy").
 */
const youngGcCheckBytesMin = 64 * 1024;

/** The last allocation askForYoungGc made: kept, so that no compiler drops it as unused. */
export let youngGcProbe: ArrayBuffer | null = null;

/** An allocation through V8's heap, for its check of the young generation's buffers (see youngGcCheckBytesMin). */
function askForYoungGc(): void {
  youngGcProbe = new ArrayBuffer(1);
}

/**
 * A message as it crosses nodes: the bytes of a structured clone, or (`form`
 * set) the contents of the one typed array, DataView or ArrayBuffer the
 * message is: `form` is its kind's index in viewKinds, or formArrayBuffer.
 */
export interface MessageBytes {
  bytes: Uint8Array;
  form?: number;
  /** The relay ids of the MessagePorts in the message (src/threads/port-relay.ts), for the managers' routing. */
  ports?: string[];
}

/**
 * A typed array or ArrayBuffer of at least this many bytes travels as its
 * contents (serializeMessage); a smaller one as a clone, whose few bytes of
 * header cost less than a second way to read it.
 */
const contentsMessageBytesMin = 64 * 1024;

/** `form` of a message that is a bare ArrayBuffer. */
const formArrayBuffer = viewKinds.length;
/** `form` of a message that is a small plain value, as JSON text (simpleJsonOf). */
const formJson = formArrayBuffer + 1;
/** A plain value of at most this many properties and elements in all, nested at most simpleDepthMax deep, travels as JSON text. */
const simpleEntriesMax = 64;
const simpleDepthMax = 4;
const jsonEncoder = new TextEncoder();
const jsonDecoder = new TextDecoder();

/**
 * The JSON text of a small value made only of strings, finite numbers (not
 * -0), booleans, null, and plain objects (Object.prototype, not a Proxy) and
 * dense arrays (no other own properties) of those, each object once (no
 * shared or cyclic reference): JSON.parse of it gives what the structured
 * clone would. Only data properties (a getter is never called here: a value
 * with one goes to the structured clone, which calls it once), in the
 * clone's order (Object.keys). Null for anything else (the
 * structured clone serves it). The common small message, without V8's
 * serializer and deserializer objects, which cost a post more than the rest
 * of its way through the doorbell.
 */
function simpleJsonOf(value: unknown): string | null {
  const state = { entriesLeft: simpleEntriesMax, seen: [] as object[] };
  return simpleJson(value, 0, state);
}

function simpleJson(value: unknown, depth: number, state: { entriesLeft: number; seen: object[] }): string | null {
  switch (typeof value) {
    case 'string': return JSON.stringify(value);
    case 'number': return Number.isFinite(value) && !Object.is(value, -0) ? String(value) : null;
    case 'boolean': return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= simpleDepthMax || state.seen.includes(value) || types.isProxy(value)) return null;
      state.seen.push(value);
      const prototype = Object.getPrototypeOf(value);
      if (prototype === Array.prototype && Array.isArray(value)) {
        const length = value.length;
        state.entriesLeft -= length;
        if (state.entriesLeft < 0 || Object.keys(value).length !== length) return null;
        let text = '[';
        for (let index = 0; index < length; index += 1) {
          const part = simpleJson(dataValue(value, index), depth + 1, state);
          if (part === null) return null;
          text += index === 0 ? part : `,${part}`;
        }
        return `${text}]`;
      }
      if (prototype !== Object.prototype) return null;
      const keys = Object.keys(value);
      state.entriesLeft -= keys.length;
      if (state.entriesLeft < 0) return null;
      let text = '{';
      for (let index = 0; index < keys.length; index += 1) {
        const key = keys[index]!;
        const part = simpleJson(dataValue(value, key), depth + 1, state);
        if (part === null) return null;
        text += `${index === 0 ? '' : ','}${JSON.stringify(key)}:${part}`;
      }
      return `${text}}`;
    }
    default: return null;
  }
}

/**
 * An own data property's value; a marker the JSON path refuses for an
 * accessor, which it must not call: the structured clone that serves the
 * message instead calls each getter once, and only once.
 */
function dataValue(value: object, key: string | number): unknown {
  const descriptor = Object.getOwnPropertyDescriptor(value, key);
  return descriptor !== undefined && 'value' in descriptor ? descriptor.value : notData;
}
const notData = Symbol('not a data property');

/**
 * The kind of a message that is one large view covering all of a plain,
 * fixed-length ArrayBuffer (or such an ArrayBuffer itself), and that buffer;
 * null for anything else (a Buffer or another subclass, a part of a buffer,
 * dsm or other shared memory, a resizable buffer: the structured clone
 * serves those).
 */
function wholeBufferOf(value: unknown): { form: number; buffer: ArrayBuffer } | null {
  if (typeof value !== 'object' || value === null) return null;
  let buffer: ArrayBufferLike;
  let form: number;
  if (value instanceof ArrayBuffer) {
    if (Object.getPrototypeOf(value) !== ArrayBuffer.prototype) return null;
    buffer = value;
    form = formArrayBuffer;
  } else if (ArrayBuffer.isView(value)) {
    form = viewKinds.findIndex((kind) => Object.getPrototypeOf(value) === kind.prototype);
    if (form < 0 || value.byteOffset !== 0) return null;
    buffer = value.buffer;
    if (value.byteLength !== buffer.byteLength) return null;
  } else {
    return null;
  }
  if (!(buffer instanceof ArrayBuffer) || (buffer as { resizable?: boolean }).resizable === true) return null;
  if (buffer.byteLength < contentsMessageBytesMin) return null;
  return { form, buffer };
}

/**
 * A message to a thread on another node. One large typed array (or
 * ArrayBuffer) that is its buffer whole, the common large message, travels as
 * a copy of its contents (the snapshot postMessage takes), and the receiver's
 * array is the received bytes themselves, its buffer whole as under plain
 * node (deserializeMessage). Through the clone, a typed array comes back as a
 * view of the message's bytes, at an offset past the clone's header, so that
 * `new Float64Array(received.buffer)` read the header too, and an ArrayBuffer
 * is copied out of the bytes. Anything else is a structured clone. Either way
 * `bytes` is its ArrayBuffer whole (transferListOf).
 */
export function serializeMessage(value: unknown, ranges: BufferRanges, transferList: readonly ArrayBuffer[] = [], ports: PortCodec = {}): MessageBytes {
  if (transferList.length === 0) {
    const json = simpleJsonOf(value);
    if (json !== null) return { bytes: assertFits(jsonEncoder.encode(json), 'a message'), form: formJson };
  }
  const whole = wholeBufferOf(value);
  let message: MessageBytes;
  if (whole !== null) {
    assertFits(whole.buffer.byteLength, 'a message');
    // Transferred by the program: the buffer itself goes (the channel detaches it, as Node would), no snapshot.
    const moved = transferList.includes(whole.buffer);
    message = { bytes: new Uint8Array(moved ? whole.buffer : whole.buffer.slice(0)), form: whole.form };
  } else {
    message = { bytes: assertFits(serializeValue(value, ranges, ports), 'a message') };
  }
  // The program's other transferred buffers were copied into the clone: detached as Node would leave them.
  for (const buffer of new Set(transferList)) {
    if (buffer !== message.bytes.buffer) detach(buffer);
  }
  return message;
}

/** Detaches `buffer` (its contents move to a copy nobody keeps), as a transfer leaves it in the sender. */
function detach(buffer: ArrayBuffer): void {
  structuredClone(buffer, { transfer: [buffer] });
}

/** Throws DSM_ERR_MESSAGE_TOO_LARGE past remoteMessageBytesMax (what a manager joins for a thread on another node); else gives `bytes` back. */
export function assertFits<T extends Uint8Array | number>(bytes: T, what: string): T {
  const byteLength = typeof bytes === 'number' ? bytes : bytes.byteLength;
  if (byteLength > remoteMessageBytesMax) {
    throw new DsmError('DSM_ERR_MESSAGE_TOO_LARGE',
      `${what} of ${byteLength} bytes for a thread on another node is larger than the ${remoteMessageBytesMax} bytes such a message may have (remoteMessageBytesMax): send it in parts, or share it as a SharedArrayBuffer`);
  }
  return bytes;
}

/** The message serializeMessage made. A `form` that names no kind, or bytes that do not fit it, are a DSM_ERR_FRAME. */
export function deserializeMessage(message: MessageBytes, ranges: BufferRanges, ports: PortCodec = {}): unknown {
  const { bytes, form } = message;
  if (form === undefined) return deserializeValue(bytes, ranges, ports);
  if (form === formJson) return JSON.parse(jsonDecoder.decode(bytes));
  if (!Number.isInteger(form) || form < 0 || form > formArrayBuffer) throw new DsmError('DSM_ERR_FRAME', `a message names an unknown form ${String(form)}`);
  // The bytes are the message's buffer when they are a buffer whole (they came by transfer); else (a view of a larger one) a copy.
  const buffer = transferListOf(bytes).length === 1 ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
  if (buffer.byteLength >= youngGcCheckBytesMin) askForYoungGc();
  if (form === formArrayBuffer) return buffer;
  const kind = viewKinds[form]!;
  if (kind === DataView) return new DataView(buffer);
  const elementBytes = (kind as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  if (buffer.byteLength % elementBytes !== 0) throw new DsmError('DSM_ERR_FRAME', `a message of ${buffer.byteLength} bytes is not a whole number of ${kind.name} elements`);
  return new (kind as unknown as new (b: ArrayBuffer) => ArrayBufferView)(buffer);
}
