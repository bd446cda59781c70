// Turns a fresh worker thread into a dsm app thread: connects the channel,
// replaces SharedArrayBuffer and Worker, and makes worker_threads, process
// and os answer as they would for the program under plain node.

import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import { join, sep } from 'node:path';
import workerThreads, { type MessagePort } from 'node:worker_threads';
import { ChannelClient } from '../channel/client.js';
import { doorbellEnabled, loadDoorbell } from '../channel/doorbell.js';
import type { AllocReplyWait, AllocReplyZeroed, AppThreadConfig } from '../channel/wire.js';
import { DsmError, assert } from '../errors.js';
import { loadNativeMmu } from '../memory/native.js';
import { installClusterAtomics } from './atomics.js';
import { hideGlobalGc } from './hide-gc.js';
import { calledByRuntime } from './caller.js';
import { copyStdioChunks, installKernelCopies } from './kernel-copies.js';
import { quietStdioAtBeforeExit } from './before-exit.js';
import { forwardProgramSignals } from './signals.js';
import { deserializeValue } from '../channel/clone.js';
import { rangeEscapeWeight, rangeToken } from '../channel/range-tokens.js';
import { makeBroadcastChannelClass } from './broadcast-channel.js';
import { installWebLocks } from './web-locks.js';
import { installPairedMessageChannel, installPortRelays, portClosed, portRelays, PortRelays } from './port-relay.js';
import { installEnvironmentData } from './environment-data.js';
import { installPostMessageToThread } from './post-to-thread.js';
import { RemoteParentPort } from './remote-parent.js';
import { installSharedArrayBuffer, makeSharedArrayBufferClass, NativeSharedArrayBuffer } from './shared-array-buffer.js';
import { setAppThreadState } from './state.js';
import { hasPrewarmedThread, makeWorkerClass } from './worker.js';
import { installVmContexts } from './vm-contexts.js';
import { keepUncaughtText } from './uncaught-text.js';
import { packageRoot } from '../package-info.js';
import { LineTagger } from '../util/line-tagger.js';
import { publishNodeIdentity, tagOutputEnabled } from '../env.js';
import { allocBatchCountMax, allocCacheBlockBytesMax, allocCacheBytesMax, allocCacheSizeCountMax, allocWaitMsMax } from '../constants.js';

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * A garbage collection in this thread (minor: a scavenge; major: a full one), without exposing `gc` to any
 * context: the native side sets --expose-gc only around the request (a context made while it is set, a new
 * Worker's or vm's, would get a global `gc`, which plain node has not).
 */
function collectGarbage(type: 'minor' | 'major' = 'major'): void {
  loadNativeMmu().collectHere(type === 'minor');
}

/**
 * Loads the native addons a thread's set-up needs (each is loaded once per
 * thread): a thread waiting at its start gate (a warm one, or a remote worker
 * whose node acquires) does it while it waits.
 */
export function preloadAppThreadAddons(): void {
  loadNativeMmu();
  if (doorbellEnabled) loadDoorbell();
}

export function setupAppThread(config: AppThreadConfig, port: MessagePort): void {
  const native = loadNativeMmu();
  native.init(config.regionBytes);
  native.registerCollector();
  // A thread made while another collected (the flag set for a moment) may have a global `gc`: plain node has none.
  if (!native.userExposesGc()) hideGlobalGc(globalThis);
  const channel = new ChannelClient(port, config.threadIdSeen);

  // The same range asked for twice gives the same object while it lives.
  const cache = new Map<string, WeakRef<SharedArrayBuffer>>();
  const ranges = new WeakMap<SharedArrayBuffer, { offset: number; byteLength: number }>();
  // Escapes of buffers over memory this node allocated give the owner's weight here (received.onEscape), which
  // needs the doorbell ring (the manager reads its entries ahead of their turn).
  const givesOwnWeight = config.nodeCount > 1 && channel.ringsBell;
  const forget = new FinalizationRegistry<string>((key) => {
    if (cache.get(key)?.deref() === undefined) cache.delete(key);
  });
  function bufferAt(offset: number, byteLength: number): SharedArrayBuffer {
    const key = `${offset}:${byteLength}`;
    const cached = cache.get(key)?.deref();
    if (cached !== undefined) return cached;
    const buffer = native.sharedArrayBuffer(offset, byteLength);
    assert(buffer.byteLength === byteLength, 'native buffer has the asked length');
    cache.set(key, new WeakRef(buffer));
    ranges.set(buffer, { offset, byteLength });
    forget.register(buffer, key);
    return buffer;
  }
  function rangeOf(buffer: SharedArrayBuffer): { offset: number; byteLength: number } | null {
    return ranges.get(buffer) ?? native.rangeOf(buffer);
  }
  // In a cluster, reused memory is zeroed by the allocating thread itself,
  // through the ordinary write path: the zeros reach the pages' homes as diffs
  // and other nodes' copies are invalidated by write notices, exactly like any
  // other write (the manager's view would bypass the protocol).
  let zeroFirst = false;
  // Blocks of small sizes given in batches and not made into buffers yet, by size: [offset, zero, …] (popped from the end).
  const allocCache = new Map<number, { blocks: number[]; batch: number }>();
  let allocCacheBytes = 0;
  function isWaitReply(reply: unknown): boolean {
    return typeof reply === 'object' && reply !== null && (reply as Partial<AllocReplyWait>).wait === true;
  }
  function allocReply(reply: unknown): number {
    if (typeof reply === 'number') {
      zeroFirst = false;
      return reply;
    }
    const { offset } = reply as AllocReplyZeroed;
    zeroFirst = true;
    return offset;
  }
  function allocate(byteLength: number): SharedArrayBuffer {
    // Node's own code and the TypeScript loader allocate with the global
    // SharedArrayBuffer too (the loader hooks' lock, esbuild's): threads
    // outside dsm wait on them, so they stay local. Frames: allocate, the constructor, its caller.
    if (calledByRuntime(2)) return new NativeSharedArrayBuffer(byteLength);
    // No room: V8 does not count dsm memory as its own, so it may not have
    // collected dead buffers yet; room may also come from other nodes (a
    // borrow, a gather, their threads' collections: several message rounds
    // on a busy machine). So the thread collects and asks again, a minor
    // collection first (a scavenge frees the buffers dropped since the last
    // one at a fraction of a full one's cost), full ones after (V8 frees
    // backing stores on a background sweeper, so their memory may return a
    // moment after), until its node's manager decides the region is really
    // full (it throws DSM_ERR_REGION_EXHAUSTED: src/runtime/heap-service.ts,
    // allocOrWait) or allocWaitMsMax passed while memory was still freed or
    // borrowed but never enough.
    // A small size allocated again: from the thread's cache, refilled in batches (allocCacheBlockBytesMax).
    if (byteLength <= allocCacheBlockBytesMax) {
      const cached = allocCache.get(byteLength);
      if (cached !== undefined) {
        if (cached.blocks.length === 0) refill(byteLength, cached);
        if (cached.blocks.length > 0) {
          const zero = cached.blocks.pop()!;
          const offset = cached.blocks.pop()!;
          allocCacheBytes -= byteLength;
          return made(offset, byteLength, zero === 1);
        }
      } else if (allocCache.size < allocCacheSizeCountMax) {
        allocCache.set(byteLength, { blocks: [], batch: 1 });
      }
    }
    const reply = callAlloc({ op: 'alloc', byteLength });
    const offset = allocReply(reply);
    return made(offset, byteLength, zeroFirst);
  }
  /** Asks the manager until it answers with memory (or throws: see allocate). */
  function callAlloc(request: { op: 'alloc'; byteLength: number } | { op: 'alloc-batch'; byteLength: number; count: number }): unknown {
    const { byteLength } = request;
    let reply = channel.call(request);
    const startedMs = performance.now();
    for (let attempt = 0; isWaitReply(reply); attempt += 1) {
      if (performance.now() - startedMs >= allocWaitMsMax) {
        throw new DsmError('DSM_ERR_REGION_EXHAUSTED',
          `an allocation of ${byteLength} bytes found no room for ${allocWaitMsMax} ms (allocWaitMsMax) while memory was freed or borrowed but never enough: the program keeps nearly all of --region-bytes ${config.regionBytes} live; run with a larger --region-bytes`);
      }
      if (attempt % 4 === 0) collectGarbage(attempt === 0 ? 'minor' : 'major');
      Atomics.wait(pause, 0, 0, 2 ** Math.min(attempt, 5));
      reply = channel.call(request);
    }
    return reply;
  }
  /** A batch for the cache of `byteLength`, twice the last one's size (up to allocBatchCountMax, within allocCacheBytesMax). */
  function refill(byteLength: number, cached: { blocks: number[]; batch: number }): void {
    cached.batch = Math.min(allocBatchCountMax, cached.batch * 2, Math.floor((allocCacheBytesMax - allocCacheBytes) / byteLength));
    if (cached.batch < 2) {
      cached.batch = 1;
      return;
    }
    const blocks = callAlloc({ op: 'alloc-batch', byteLength, count: cached.batch }) as number[];
    assert(Array.isArray(blocks) && blocks.length >= 2 && blocks.length % 2 === 0 && blocks.length <= 2 * cached.batch, 'a batch of blocks');
    // Taken from the end: the first block first.
    for (let index = blocks.length - 2; index >= 0; index -= 2) cached.blocks.push(blocks[index]!, blocks[index + 1]!);
    allocCacheBytes += byteLength * (blocks.length / 2);
  }
  /** The buffer over a block this thread was given. */
  function made(offset: number, byteLength: number, zero: boolean): SharedArrayBuffer {
    // Not through the WeakRef cache: a WeakRef keeps its target alive until the
    // current job ends, so a thread that allocates and drops buffers in one
    // long loop could never collect any of them. A fresh range has no other
    // buffer to share an identity with.
    const buffer = native.sharedArrayBuffer(offset, byteLength, true);
    assert(buffer.byteLength === byteLength, 'native buffer has the asked length');
    ranges.set(buffer, { offset, byteLength });
    if (zero) new Uint8Array(buffer).fill(0);
    return buffer;
  }
  // A buffer that arrives in a message is a new object over the same memory,
  // as with postMessage between threads under plain node.
  function receivedBufferAt(offset: number, byteLength: number): SharedArrayBuffer {
    const buffer = native.sharedArrayBuffer(offset, byteLength);
    ranges.set(buffer, { offset, byteLength });
    return buffer;
  }
  const received = {
    bufferAt: receivedBufferAt,
    rangeOf,
    onEscape(offset: number, buffer: SharedArrayBuffer): number {
      // A buffer over memory this node allocated (made by a thread here, or a copy of one, as a relayed
      // port's) is live at this node while the thread holds it (it is serializing it): its token is the
      // owner's weight, given here, the manager told by a posted entry it counts before it acts on the
      // buffer's collection (ChannelServer.applyGivenEscapes). No wait for the manager, which would
      // otherwise serve this thread's earlier posts first: a post of a view cost a round trip (session 45).
      if (givesOwnWeight && native.isMadeHere(buffer)) {
        channel.post({ op: 'escape', offset, given: true });
        return rangeToken(rangeEscapeWeight, config.nodeId);
      }
      return channel.call({ op: 'escape', offset }) as number;
    },
    onHold(offset: number, byteLength: number, token: number): void {
      channel.call({ op: 'hold', offset, byteLength, token });
    },
  };
  setAppThreadState({ config, channel, bufferAt, rangeOf });

  installSharedArrayBuffer(makeSharedArrayBufferClass(allocate, config.regionBytes));
  // The kernel and the thread pool get private copies of dsm ranges (src/threads/kernel-copies.ts).
  installKernelCopies(rangeOf);
  if (config.role === 'main') {
    copyStdioChunks();
    quietStdioAtBeforeExit();
    forwardProgramSignals(channel);
    askForStdinWhenRead(channel);
  }

  const wt = workerThreads as unknown as Record<string, unknown>;
  // MessagePorts posted to threads on other nodes are relayed (src/threads/port-relay.ts).
  if (config.nodeCount > 1) {
    const relays = new PortRelays(channel, received, config.nodeId, config.threadIdSeen);
    installPortRelays(relays);
    // Both ends of a channel posted in one message to another node travel as a pair, not relayed through this thread.
    installPairedMessageChannel(wt);
    // A thread's end (its loop ran dry, or process.exit): what its program posted on relayed ports still goes.
    process.on('exit', () => {
      relays.flushBacklog();
      relays.drain();
      // Its relay ends that are one local channel's two ends live on, spliced at the manager.
      relays.splice();
    });
    // receiveMessageOnPort on a relayed port sees what reached this thread for it, even if the thread never
    // returned to its event loop since (it waited in Atomics.wait), as under Node: relayed ports' events are read
    // from the channel first (they run no program code: each is posted on, or closes, the program's port).
    const receiveNative = wt.receiveMessageOnPort as (port: unknown) => unknown;
    wt.receiveMessageOnPort = { receiveMessageOnPort(port: unknown): unknown {
      channel.takeNow((event) => event.kind === 'port-message' || event.kind === 'port-close');
      // A closed end has nothing to receive; polled inside its own 'close' callback, Node would crash (./port-relay.ts).
      if (portClosed(port)) return undefined;
      return receiveNative(port);
    } }.receiveMessageOnPort;
    // And what the program posts on its end of a relayed port goes at once, not when this thread's loop next
    // turns (its relay end hears it there): a thread answering in a loop of Atomics.wait and
    // receiveMessageOnPort never returns to it. After every post on a port of this thread, the relay ends'
    // waiting messages are forwarded (none to look at while this thread relays no port).
    const messagePort = wt.MessagePort as { prototype: { postMessage: (...args: unknown[]) => unknown } };
    const nativePost = messagePort.prototype.postMessage;
    Object.defineProperty(messagePort.prototype, 'postMessage', {
      configurable: true, enumerable: true, writable: true,
      // Its answer as the native's (Node's BroadcastChannel, whose handle is a MessagePort, reads it).
      value: { postMessage(this: unknown, ...args: unknown[]): unknown {
        const posted = nativePost.apply(this, args);
        relays.drain();
        return posted;
      } }.postMessage,
    });
  }
  const workers = makeWorkerClass(channel, config, received);
  wt.Worker = workers.Worker;
  if (config.role === 'main') {
    // Its uncaught DOMException reaches the manager as node prints it, not as `{}` (./uncaught-text.ts).
    const dsmCode = [join(packageRoot, 'dist') + sep, join(packageRoot, 'src') + sep];
    keepUncaughtText((line) => dsmCode.some((code) => line.includes(code)));
    wt.isMainThread = true;
    wt.parentPort = null;
    wt.workerData = null;
    wt.threadId = 0;
    // Node 24's threadName: the main thread's is '' (this thread is a worker of dsm's, 'WorkerThread').
    if ('threadName' in wt) (wt as { threadName: string }).threadName = '';
  } else if (config.remoteWorkerData !== undefined) {
    // Its MessagePorts become local ports relayed to the creator's node (src/threads/port-relay.ts).
    wt.workerData = deserializeValue(config.remoteWorkerData, received, portRelays()?.receiving());
    const parentPort = new RemoteParentPort(received, channel);
    wt.parentPort = parentPort;
    wt.threadId = config.threadIdSeen;
    // receiveMessageOnPort(parentPort) reads its waiting messages, as under Node (it threw ERR_INVALID_ARG_TYPE).
    const receiveMessageOnPort = wt.receiveMessageOnPort as (port: unknown) => unknown;
    // Named as Node's (users17: a program that inspects it saw an empty name).
    wt.receiveMessageOnPort = { receiveMessageOnPort: (port: unknown) => (port === parentPort ? parentPort.receiveSync() : receiveMessageOnPort(port)) }.receiveMessageOnPort;
    // `parentPort instanceof MessagePort` is true, as under Node (instanceof only: its methods are dsm's). This
    // thread's own MessagePort class (each thread has its own), so nothing changes for other threads.
    const hasInstance = Function.prototype[Symbol.hasInstance];
    Object.defineProperty(wt.MessagePort, Symbol.hasInstance, {
      configurable: true,
      value(this: unknown, value: unknown): boolean { return value === parentPort || hasInstance.call(this, value); },
    });
  } else {
    wt.workerData = config.userWorkerData;
    wt.threadId = config.threadIdSeen;
  }
  // Environment data: the creator's entries are set before the program runs (a warm or remote thread has none).
  installEnvironmentData(wt, received, config.environmentEntries, config.remoteEnvironmentData);
  if (config.nodeCount > 1) {
    // BroadcastChannel reaches the instances of its name on every node (src/threads/broadcast-channel.ts).
    const BroadcastChannel = makeBroadcastChannelClass(channel, received);
    wt.BroadcastChannel = BroadcastChannel;
    (globalThis as Record<string, unknown>).BroadcastChannel = BroadcastChannel;
    // Web Locks (Node 24) exclude the threads of every node (src/threads/web-locks.ts); one node keeps Node's own.
    installWebLocks(wt, channel);
  }
  // postMessageToThread (Node 22.5 on) takes and reports dsm's thread ids (./post-to-thread.ts).
  installPostMessageToThread(wt, channel, Number(wt.threadId), config.nodeCount);
  // Which node this thread runs on, for programs that want to say so (plain node leaves these unset).
  publishNodeIdentity(config.nodeId, config.nodeCount);
  workers.environmentSet();
  // The native functions, before dsm replaces them: a vm context's Atomics gets dsm's in place of these.
  const nativeAtomics = new Map(Object.getOwnPropertyNames(Atomics).map((name) => [name, (Atomics as unknown as Record<string, unknown>)[name]]));
  installClusterAtomics({
    channel,
    offsetOf(buffer) {
      return rangeOf(buffer as SharedArrayBuffer)?.offset ?? null;
    },
    ...(config.atomicLines === undefined ? {} : { lines: config.atomicLines }),
    // A cluster of one holds every atomic line: its Atomics are V8's own.
    allLinesHeld: config.nodeCount === 1,
  });
  // Contexts the program makes with node:vm get this thread's Atomics and SharedArrayBuffer (./vm-contexts.ts).
  installVmContexts({ nativeAtomics, sharedArrayBufferFor: (realm) => makeSharedArrayBufferClass(allocate, config.regionBytes, realm) });
  if (tagOutputEnabled()) tagThreadOutput(config.nodeId, Number(wt.threadId));
  if (config.nodeCount > 1) {
    // Programs size their pools by core count; in dsm the cores are the cluster's.
    const parallelism = config.parallelism;
    const localCpus = os.cpus();
    (os as unknown as Record<string, unknown>).availableParallelism = () => parallelism;
    (os as unknown as Record<string, unknown>).cpus = () =>
      Array.from({ length: parallelism }, (_, index) => ({ ...localCpus[index % Math.max(1, localCpus.length)]! }));
    // navigator.hardwareConcurrency (Node 21 on) says the same as os.availableParallelism(), as under node (users20).
    const navigatorObject = (globalThis as { navigator?: object }).navigator;
    if (navigatorObject !== undefined) {
      Object.defineProperty(navigatorObject, 'hardwareConcurrency', { get: () => parallelism, enumerable: true, configurable: true });
    }
  }
  syncBuiltinESMExports();
  // The program's main thread keeps a warm thread for its first local worker on a cluster (docs/DESIGN.md "Warm
  // threads"), and on one node when its entry names worker_threads (it made one before its gate); otherwise on one
  // node from its first local worker's start on.
  if (config.role === 'main' && (config.nodeCount > 1 || hasPrewarmedThread())) workers.warm.make();
}

/**
 * The main thread's stdin is fed by its manager from the process's (src/runtime/program.ts) only once the program
 * reads it: its first read (`_read`, which Node calls for 'data', 'readable', read(), pipe, readline, async
 * iteration) posts 'stdin-wanted'. Node defines `process.stdin` as a lazy getter; it is wrapped, not called here.
 */
function askForStdinWhenRead(channel: ChannelClient): void {
  const descriptor = Object.getOwnPropertyDescriptor(process, 'stdin');
  const get = descriptor?.get;
  if (get === undefined) return;
  let stdin: NodeJS.ReadStream | null = null;
  Object.defineProperty(process, 'stdin', {
    configurable: true, enumerable: descriptor!.enumerable ?? true,
    get(): NodeJS.ReadStream {
      if (stdin === null) {
        stdin = get.call(process) as NodeJS.ReadStream;
        const stream = stdin as unknown as { _read(size: number): void };
        const read = stream._read;
        let asked = false;
        stream._read = function readStdin(this: unknown, size: number): void {
          if (!asked) {
            asked = true;
            channel.post({ op: 'stdin-wanted' });
          }
          read.call(this, size);
        };
      }
      return stdin;
    },
  });
}

/**
 * `dsm run --tag-output`: this thread prefixes each line it writes with its
 * node and thread, so the launcher's terminal shows who said what, in order
 * per thread (the launcher tags only untagged lines, e.g. the manager's).
 */
function tagThreadOutput(nodeId: number, threadId: number): void {
  for (const stream of [process.stdout, process.stderr]) {
    const tagger = new LineTagger(`[node ${nodeId} thread ${threadId}] `, true);
    const write = stream.write.bind(stream) as (chunk: string, callback?: () => void) => boolean;
    stream.write = ((chunk: string | Uint8Array, encodingOrCallback?: unknown, callback?: unknown): boolean => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const done = (typeof encodingOrCallback === 'function' ? encodingOrCallback : callback) as (() => void) | undefined;
      return write(tagger.push(text), done);
    }) as typeof stream.write;
    process.once('exit', () => { const rest = tagger.flush(); if (rest !== '') write(rest); });
  }
}
