// System calls and thread-pool jobs on dsm memory.
//
// The kernel does not raise SIGSEGV when a system call touches a page this
// node may not access: the call fails with EFAULT (or, for a page that is
// readable but stale, silently uses stale bytes). A libuv thread-pool thread
// (async fs, zlib, crypto) is not an app thread either. So every Node API that
// hands a buffer to the kernel or the thread pool gets, in the app thread, a
// private copy of a dsm range instead of the range itself:
//  - writes from memory: the app thread copies the range (reads fault and
//    fetch coherently), the kernel reads the copy;
//  - reads into memory: the kernel fills a private buffer, then the app thread
//    copies the bytes that arrived into the range (writes fault coherently).
// A copy needs no pinning: the kernel never sees dsm memory. Plain buffers
// pass through untouched. docs/LIMITS.md lists the APIs covered.

import childProcess from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import stream from 'node:stream';
import { types } from 'node:util';
import { kernelScratchReuseBytesMax } from '../constants.js';

type RangeOf = (buffer: SharedArrayBuffer) => { offset: number; byteLength: number } | null;
type AnyFunction = (...args: unknown[]) => unknown;

let rangeOfBuffer: RangeOf = () => null;

/** Whether `value` is a view (or a SharedArrayBuffer) over dsm memory. */
function isDsm(value: unknown): value is ArrayBufferView | SharedArrayBuffer {
  if (ArrayBuffer.isView(value)) return types.isSharedArrayBuffer(value.buffer) && rangeOfBuffer(value.buffer) !== null;
  return types.isSharedArrayBuffer(value) && rangeOfBuffer(value) !== null;
}

function bytesOf(value: ArrayBufferView | SharedArrayBuffer): Uint8Array {
  return ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
}

let reusableScratch: Buffer | null = null;

/**
 * A private buffer of `byteLength` bytes. A synchronous call, which keeps no
 * reference once it returns, may reuse this thread's one scratch buffer.
 */
function scratchOf(byteLength: number, reusable: boolean): Buffer {
  if (!reusable || byteLength > kernelScratchReuseBytesMax) return Buffer.allocUnsafeSlow(byteLength);
  if (reusableScratch === null || reusableScratch.byteLength < byteLength) {
    reusableScratch = Buffer.allocUnsafeSlow(Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(byteLength))));
  }
  return reusableScratch.subarray(0, byteLength);
}

/**
 * A private Buffer as long as `value`, holding its bytes in [start, end)
 * (the rest is never read: the caller's offset and length select the range).
 */
function copyOut(value: ArrayBufferView | SharedArrayBuffer, start = 0, end?: number, reusable = false): Buffer {
  const bytes = bytesOf(value);
  const copy = scratchOf(bytes.byteLength, reusable);
  const from = Math.max(0, Math.min(start, bytes.byteLength));
  const to = Math.max(from, Math.min(end ?? bytes.byteLength, bytes.byteLength));
  copy.set(bytes.subarray(from, to), from);
  return copy;
}

/** Copies `count` bytes at `offset` of the private buffer back into the dsm range. */
function copyIn(target: ArrayBufferView, from: Uint8Array, offset: number, count: number): void {
  if (count <= 0) return;
  bytesOf(target).set(from.subarray(offset, offset + count), offset);
}

function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The range an fs write reads: (buffer, offset, length) as Node reads its arguments. */
function writeRange(view: ArrayBufferView, offset: unknown, length: unknown): [number, number] {
  if (typeof offset === 'object' && offset !== null) {
    const options = offset as { offset?: unknown; length?: unknown };
    return writeRange(view, options.offset, options.length);
  }
  const start = isInteger(offset) ? offset : 0;
  const end = isInteger(length) ? start + length : view.byteLength;
  return [start, end];
}

/** Where an fs read puts its bytes in the buffer (the offset, as Node reads it). */
function readOffsetOf(offsetOrOptions: unknown): number {
  if (typeof offsetOrOptions === 'object' && offsetOrOptions !== null) {
    const offset = (offsetOrOptions as { offset?: unknown }).offset;
    return isInteger(offset) ? offset : 0;
  }
  return isInteger(offsetOrOptions) ? offsetOrOptions : 0;
}

function lastIsFunction(args: unknown[]): boolean {
  return typeof args[args.length - 1] === 'function';
}

function patch(target: object, name: string, make: (original: AnyFunction) => AnyFunction): void {
  const holder = target as Record<string, unknown>;
  const original = holder[name];
  if (typeof original !== 'function') return;
  const wrapped = make(original as AnyFunction);
  Object.defineProperty(wrapped, 'name', { value: original.name });
  Object.defineProperty(wrapped, 'length', { value: original.length });
  // Node's own marks on the function, e.g. the names util.promisify gives fs.read's results.
  for (const key of Reflect.ownKeys(original)) {
    if (key === 'name' || key === 'length' || key === 'prototype') continue;
    Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(original, key)!);
  }
  holder[name] = wrapped;
}

/** `fn(x, data, ...)`: data at `index` is copied when it is dsm memory (writeFile, appendFile, zlib, ...). */
function copyArgument(index: number) {
  return (original: AnyFunction) => function (this: unknown, ...args: unknown[]) {
    if (isDsm(args[index])) args[index] = copyOut(args[index] as ArrayBufferView);
    return original.apply(this, args);
  };
}

function installFs(): void {
  // write(fd, buffer, offset?, length?, position?, cb) and writeSync: the
  // callback and FileHandle.write give back the caller's buffer.
  patch(fs, 'writeSync', (original) => function (this: unknown, ...args: unknown[]) {
    const view = args[1];
    if (!isDsm(view) || !ArrayBuffer.isView(view)) return original.apply(this, args);
    const [start, end] = writeRange(view, args[2], args[3]);
    args[1] = copyOut(view, start, end, true);
    return original.apply(this, args);
  });
  patch(fs, 'write', (original) => function (this: unknown, ...args: unknown[]) {
    const view = args[1];
    if (!isDsm(view) || !ArrayBuffer.isView(view) || !lastIsFunction(args)) return original.apply(this, args);
    const [start, end] = writeRange(view, args[2], args[3]);
    args[1] = copyOut(view, start, end);
    const callback = args[args.length - 1] as AnyFunction;
    args[args.length - 1] = (error: unknown, written: unknown) => callback(error, written, view);
    return original.apply(this, args);
  });
  const copyAll = (list: unknown) => (Array.isArray(list) && list.some(isDsm) ? list.map((item) => (isDsm(item) ? copyOut(item) : item)) : list);
  patch(fs, 'writevSync', (original) => function (this: unknown, ...args: unknown[]) {
    args[1] = copyAll(args[1]);
    return original.apply(this, args);
  });
  patch(fs, 'writev', (original) => function (this: unknown, ...args: unknown[]) {
    const buffers = args[1];
    if (!lastIsFunction(args) || copyAll(buffers) === buffers) return original.apply(this, args);
    args[1] = copyAll(buffers);
    const callback = args[args.length - 1] as AnyFunction;
    args[args.length - 1] = (error: unknown, written: unknown) => callback(error, written, buffers);
    return original.apply(this, args);
  });
  for (const name of ['writeFileSync', 'writeFile', 'appendFileSync', 'appendFile']) patch(fs, name, copyArgument(1));
  for (const name of ['writeFile', 'appendFile']) patch(fs.promises, name, copyArgument(1));

  // read(fd, buffer, offset, length, position, cb), read(fd, { buffer, ... }, cb),
  // read(fd, buffer, { offset, ... }, cb) and readSync: the kernel fills a
  // private buffer, then the bytes read are copied into the caller's.
  patch(fs, 'readSync', (original) => function (this: unknown, ...args: unknown[]) {
    const view = args[1];
    if (!isDsm(view) || !ArrayBuffer.isView(view)) return original.apply(this, args);
    const offset = readOffsetOf(args[2]);
    const scratch = scratchOf(view.byteLength, true);
    args[1] = scratch;
    const count = original.apply(this, args) as number;
    copyIn(view, scratch, offset, count);
    return count;
  });
  patch(fs, 'read', (original) => function (this: unknown, ...args: unknown[]) {
    if (!lastIsFunction(args)) return original.apply(this, args);
    let view = args[1];
    let offset: number;
    const scratchOf = (target: ArrayBufferView) => Buffer.allocUnsafeSlow(target.byteLength);
    let scratch: Buffer;
    if (isDsm(view) && ArrayBuffer.isView(view)) {
      offset = readOffsetOf(args[2]);
      scratch = scratchOf(view);
      args[1] = scratch;
    } else if (typeof view === 'object' && view !== null && !ArrayBuffer.isView(view) && isDsm((view as { buffer?: unknown }).buffer)) {
      const options = view as { buffer: ArrayBufferView; offset?: unknown };
      view = options.buffer;
      offset = readOffsetOf(options);
      scratch = scratchOf(options.buffer);
      args[1] = { ...options, buffer: scratch };
    } else {
      return original.apply(this, args);
    }
    const target = view as ArrayBufferView;
    const callback = args[args.length - 1] as AnyFunction;
    args[args.length - 1] = (error: unknown, count: number) => {
      if (error == null) copyIn(target, scratch, offset, count);
      callback(error, count, target);
    };
    return original.apply(this, args);
  });
  const scratchAll = (list: unknown) => (Array.isArray(list) && list.some(isDsm)
    ? list.map((item) => (ArrayBuffer.isView(item) ? Buffer.allocUnsafeSlow(item.byteLength) : item)) : null);
  /** After a readv of `count` bytes into the scratch buffers, copies them into the caller's in order. */
  const copyInAll = (targets: ArrayBufferView[], scratches: Buffer[], count: number) => {
    let left = count;
    for (let index = 0; index < targets.length && left > 0; index++) {
      const take = Math.min(left, targets[index]!.byteLength);
      if (scratches[index] !== (targets[index] as unknown)) copyIn(targets[index]!, scratches[index]!, 0, take);
      left -= take;
    }
  };
  patch(fs, 'readvSync', (original) => function (this: unknown, ...args: unknown[]) {
    const targets = args[1] as ArrayBufferView[];
    const scratches = scratchAll(targets);
    if (scratches === null) return original.apply(this, args);
    args[1] = scratches;
    const count = original.apply(this, args) as number;
    copyInAll(targets, scratches as Buffer[], count);
    return count;
  });
  patch(fs, 'readv', (original) => function (this: unknown, ...args: unknown[]) {
    const targets = args[1] as ArrayBufferView[];
    const scratches = scratchAll(targets);
    if (scratches === null || !lastIsFunction(args)) return original.apply(this, args);
    args[1] = scratches;
    const callback = args[args.length - 1] as AnyFunction;
    args[args.length - 1] = (error: unknown, count: number) => {
      if (error == null) copyInAll(targets, scratches as Buffer[], count);
      callback(error, count, targets);
    };
    return original.apply(this, args);
  });

  // FileHandle (fs/promises): its class is not exported; patch its prototype at the first open.
  let fileHandlePatched = false;
  const patchFileHandle = (handle: unknown) => {
    if (fileHandlePatched || typeof handle !== 'object' || handle === null) return;
    fileHandlePatched = true;
    installFileHandle(Object.getPrototypeOf(handle) as object);
  };
  patch(fs.promises, 'open', (original) => async function (this: unknown, ...args: unknown[]) {
    const handle = await (original.apply(this, args) as Promise<unknown>);
    patchFileHandle(handle);
    return handle;
  });
}

function installFileHandle(prototype: object): void {
  patch(prototype, 'write', (original) => async function (this: unknown, ...args: unknown[]) {
    const view = args[0];
    if (!isDsm(view) || !ArrayBuffer.isView(view)) return original.apply(this, args);
    const [start, end] = writeRange(view, args[1], args[2]);
    args[0] = copyOut(view, start, end);
    const result = await (original.apply(this, args) as Promise<{ bytesWritten: number }>);
    return { bytesWritten: result.bytesWritten, buffer: view };
  });
  patch(prototype, 'writev', (original) => async function (this: unknown, ...args: unknown[]) {
    const buffers = args[0];
    if (!Array.isArray(buffers) || !buffers.some(isDsm)) return original.apply(this, args);
    args[0] = buffers.map((item) => (isDsm(item) ? copyOut(item) : item));
    const result = await (original.apply(this, args) as Promise<{ bytesWritten: number }>);
    return { bytesWritten: result.bytesWritten, buffers };
  });
  for (const name of ['writeFile', 'appendFile']) patch(prototype, name, copyArgument(0));
  patch(prototype, 'read', (original) => async function (this: unknown, ...args: unknown[]) {
    let view = args[0];
    let offset: number;
    let scratch: Buffer;
    if (isDsm(view) && ArrayBuffer.isView(view)) {
      offset = readOffsetOf(args[1]);
      scratch = Buffer.allocUnsafeSlow(view.byteLength);
      args[0] = scratch;
    } else if (typeof view === 'object' && view !== null && !ArrayBuffer.isView(view) && isDsm((view as { buffer?: unknown }).buffer)) {
      const options = view as { buffer: ArrayBufferView };
      view = options.buffer;
      offset = readOffsetOf(options);
      scratch = Buffer.allocUnsafeSlow(options.buffer.byteLength);
      args[0] = { ...options, buffer: scratch };
    } else {
      return original.apply(this, args);
    }
    const result = await (original.apply(this, args) as Promise<{ bytesRead: number }>);
    copyIn(view as ArrayBufferView, scratch, offset, result.bytesRead);
    return { bytesRead: result.bytesRead, buffer: view };
  });
}

/**
 * Streams (sockets, files, zlib, stdout and stderr, ...) keep a written chunk
 * until the kernel or the thread pool takes it; a dsm chunk is copied when written.
 */
function installStreams(): void {
  const prototypes = new Set<object>([stream.Writable.prototype, stream.Duplex.prototype]);
  for (const prototype of prototypes) {
    for (const name of ['write', 'end']) {
      // Fixed arity, cheapest test first: every write of every stream passes here.
      patch(prototype, name, (original) => function (this: { writableObjectMode?: boolean }, chunk: unknown, encoding: unknown, callback: unknown) {
        if (chunk instanceof Uint8Array && types.isSharedArrayBuffer(chunk.buffer) && this.writableObjectMode !== true && isDsm(chunk)) {
          return original.call(this, copyOut(chunk), encoding, callback);
        }
        return original.call(this, chunk, encoding, callback);
      });
    }
  }
}

/** crypto.randomFill fills its buffer on the thread pool. */
function installCrypto(): void {
  patch(crypto, 'randomFill', (original) => function (this: unknown, ...args: unknown[]) {
    const view = args[0];
    if (!isDsm(view) || !lastIsFunction(args)) return original.apply(this, args);
    const target = ArrayBuffer.isView(view) ? view : new Uint8Array(view);
    const scratch = Buffer.allocUnsafeSlow(target.byteLength);
    args[0] = scratch;
    const callback = args[args.length - 1] as AnyFunction;
    args[args.length - 1] = (error: unknown) => {
      // randomFill(buf, offset?, size?): only [offset, offset + size) was filled.
      if (error == null) {
        const offset = isInteger(args[1]) ? args[1] : 0;
        const size = isInteger(args[2]) ? args[2] : target.byteLength - offset;
        copyIn(target, scratch, offset, size);
      }
      callback(error, view);
    };
    return original.apply(this, args);
  });
}

/**
 * A datagram's message (a view, or an array of views and strings) goes to the
 * kernel when the socket is ready, after the call (users17: EFAULT on a page
 * this node did not hold).
 */
function installDgram(): void {
  patch(dgram.Socket.prototype, 'send', (original) => function (this: unknown, ...args: unknown[]) {
    const message = args[0];
    if (isDsm(message)) args[0] = copyOut(message);
    else if (Array.isArray(message) && message.some(isDsm)) args[0] = message.map((part) => (isDsm(part) ? copyOut(part) : part));
    return original.apply(this, args);
  });
}

/**
 * The synchronous child functions write their `input` option to the child's
 * stdin from libuv, in the kernel (users17: EFAULT, the child read nothing).
 */
function installChildProcess(): void {
  for (const name of ['spawnSync', 'execSync', 'execFileSync']) {
    patch(childProcess, name, (original) => function (this: unknown, ...args: unknown[]) {
      const at = args.findIndex((arg) => typeof arg === 'object' && arg !== null && !Array.isArray(arg) && isDsm((arg as { input?: unknown }).input));
      if (at >= 0) {
        const options = args[at] as { input: ArrayBufferView | SharedArrayBuffer };
        args[at] = { ...options, input: copyOut(options.input) };
      }
      return original.apply(this, args);
    });
  }
}

/**
 * The main thread's stdout and stderr: plain node writes them synchronously
 * (files, pipes), so a program may reuse its buffer right after write(). Here
 * they go through the manager asynchronously: every chunk is copied when written.
 */
export function copyStdioChunks(): void {
  for (const output of [process.stdout, process.stderr]) {
    const write = output.write;
    output.write = function (this: typeof output, ...args: unknown[]) {
      if (args[0] instanceof Uint8Array) args[0] = Buffer.from(args[0]);
      return (write as AnyFunction).apply(this, args) as boolean;
    } as typeof output.write;
  }
}

export function installKernelCopies(rangeOf: RangeOf): void {
  rangeOfBuffer = rangeOf;
  installFs();
  installStreams();
  installCrypto();
  installDgram();
  installChildProcess();
}
