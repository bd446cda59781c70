// `worker_threads.Worker` inside a dsm program.
//
// A worker placed on this node is a real Worker thread whose entry is dsm's
// app-thread entry; it gets its own channel to the manager and then runs the
// user's module exactly as Node would. The handle is a real Worker, so
// events, postMessage, terminate, ref/unref, resourceLimits all behave as Node's.

import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, Worker as NativeWorker, type WorkerOptions, receiveMessageOnPort } from 'node:worker_threads';
import type { ChannelClient } from '../channel/client.js';
import {
  appEntryUrl, appThreadConfig, appThreadWorkerData, endUnusedWarmThread, forgetBoot, handWarmStart, StartGate, startWarmThread,
  terminateAppThread, trackBoot,
} from '../channel/thread-config.js';
import { placementScanValueCountMax, warmThreadCountMax, warmThreadIdleMsMax, workerOptionKindCountMax } from '../constants.js';
import { hop, hopsOn } from '../util/hops.js';
import { findMainPath } from '../util/module-kind.js';
import { environmentFingerprint, processEnvironment, warmThreadsEnabled } from '../env.js';
import type { AppThreadConfig } from '../channel/wire.js';
import { holdsNodeLocalMemory, type BufferRanges } from '../channel/clone.js';
import { calledByRuntime } from './caller.js';
import { spawnRemoteWorker } from './remote-worker.js';
import { environmentEntries, serializeEnvironmentData } from './environment-data.js';

/** The creator's environment data for a worker on another node, when it has any. */
function environmentDataOption(ranges: BufferRanges): { environmentData?: Uint8Array } {
  const environmentData = serializeEnvironmentData(ranges);
  return environmentData === undefined ? {} : { environmentData };
}

/** dsm's own Worker option: the node to start the worker on (otherwise the placement policy decides). */
export interface DsmWorkerOptions extends WorkerOptions {
  dsmNode?: number;
}

/**
 * Whether a worker needs its creator's process: a transferList that moves a
 * handle (only ArrayBuffers cross nodes as they are), stdio streams piped to
 * the creator, the creator's own environment object (SHARE_ENV), or shared
 * memory in its workerData that is not dsm memory (a WebAssembly shared Memory,
 * a growable SharedArrayBuffer: V8 makes those, local to one node) or one of
 * Node's own cloneable objects (a Blob, a KeyObject: src/channel/clone.ts
 * isNodeHostObject), which cannot cross nodes either. The
 * placement policy then starts it on the creator's node, where it runs as
 * under plain node. A MessagePort could be relayed (src/threads/port-relay.ts),
 * but a relayed port delivers through the receiving thread's event loop, and a
 * pool's worker typically reads its port synchronously (receiveMessageOnPort
 * after an Atomics wake-up, as piscina does) without ever returning to it: on
 * another node it would wait for ever. `dsmNode` still places such a worker
 * anywhere, its ports relayed.
 */
function needsCreatorsProcess(options: WorkerOptions, ranges: BufferRanges): boolean {
  if (listedTransfers(options.transferList).some((item) => !(item instanceof ArrayBuffer))) return true;
  if (options.stdin === true || options.stdout === true || options.stderr === true) return true;
  if (typeof options.env === 'symbol') return true;
  // Shared memory that is not dsm memory (a WebAssembly shared Memory, a growable buffer) stays on its node.
  return holdsNodeLocalMemory(options.workerData, ranges, placementScanValueCountMax);
}

/**
 * A Worker's `transferList` option as Node's constructor reads it: nothing if it is falsy, else its indexed items
 * (an array's; none of a number, a Set or a plain object; a string's characters, which Node then refuses).
 */
function listedTransfers(transferList: unknown): unknown[] {
  if (!transferList) return [];
  return Array.prototype.slice.call(Object(transferList)) as unknown[];
}

/**
 * Node's rule: a string is a path, absolute or starting with ./ or ../, or a file: URL; a URL object is a file: or
 * a data: URL (an ES module given as text, which stays a URL: entry.ts imports it).
 */
function resolveWorkerFile(filename: string | URL): string | null {
  if (filename instanceof URL) return filename.protocol === 'data:' ? filename.href : fileURLToPath(filename);
  if (isAbsolute(filename) || filename.startsWith('./') || filename.startsWith('../') ||
      filename.startsWith('.\\') || filename.startsWith('..\\')) {
    return resolve(filename);
  }
  // Node throws ERR_WORKER_PATH here: for a bare name, and for a URL given as a string (`file:` and `data:` are
  // taken only as URL objects).
  return null;
}

/**
 * Thread ids the program sees: the program's main thread is 0, workers are
 * numbered by the node that creates them, in creation order (1, 2, 3... on
 * node 0, as under plain node; see threadIdNodeStride), whatever node they
 * run on. Node's own bookkeeping keeps the real ids, which differ (the
 * program's main thread is itself a worker of the manager).
 */
const threadIdsSeen = new WeakMap<object, number>();
/** A taken warm thread's 'online', not emitted yet (emitOnlineLater). */
const pendingOnline = new WeakMap<object, NodeJS.Immediate>();
/** The events of a worker's thread, which Node emits only after its 'online' (not 'newListener' and the like). */
const eventsAfterOnline = new Set<string | symbol>(['message', 'messageerror', 'error', 'exit']);
/** Taken warm threads whose 'online' the program has not heard yet: their start gates. */
const takenGates = new WeakMap<object, StartGate>();
/** Taken warm threads the program terminated before their program began (Worker.terminate). */
const terminatedEarly = new WeakSet<object>();
/** Workers the program (or dsm, while warm) unref'd and did not ref again. */
const unrefd = new WeakSet<object>();

/** A worker's entry that is a data: URL (resolveWorkerFile keeps it a URL). */
function isDataUrl(entry: string): boolean {
  return entry.startsWith('data:');
}

/** The file esbuild runs its synchronous API's service thread from. */
function isCompilerThread(entry: string): boolean {
  return /[\\/]node_modules[\\/]esbuild[\\/]lib[\\/]main\.js$/.test(entry);
}

/** Whether the caller of `callee` is one of Node's own modules (its frame is node:internal/...). */
function calledFromNodeInternals(callee: (...args: never[]) => unknown): boolean {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  Error.captureStackTrace(holder, callee);
  Error.stackTraceLimit = limit;
  return /^\s*at .*\bnode:internal\//m.test(holder.stack ?? '');
}

/**
 * The options a warm thread can take (src/runtime/remote-workers.ts has the
 * remote case): a thread made with Node's defaults cannot change its env,
 * execArgv, resource limits, name, stdio or fd tracking once started, and
 * transferred objects must go with the thread's workerData.
 */
const warmOptionNames = new Set(['workerData', 'argv', 'eval', 'dsmNode']);
function warmFits(options: DsmWorkerOptions): boolean {
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && !warmOptionNames.has(name)) return false;
  }
  return true;
}

/** A local warm thread: a Worker of this thread booted on dsm's app entry, waiting at its start gate (src/channel/thread-config.ts). */
interface LocalWarmThread {
  worker: NativeWorker;
  handoff: MessagePort;
  gate: StartGate;
  /** The process environment when it was made (it has a copy): a worker made later must see the environment of then. */
  env: string;
  online: boolean;
  onOnline(): void;
  onEnd(): void;
  /** Ends it if it is still warm warmThreadIdleMsMax after its making. */
  idleTimer: ReturnType<typeof setTimeout> | null;
}

/** The local warm threads of one app thread, and the class's hook to make them. */
export interface WarmLocalThreads {
  /** Makes one if there are fewer than warmThreadCountMax and warm threads are on (DSM_WARM_THREADS not 0). */
  make(): void;
}

/** Node's receiveMessageOnPort, held before the thread's setup wraps the builtin's (for relayed ports). */
const nativeReceiveMessageOnPort = receiveMessageOnPort;

/**
 * Before a local worker's 'error' (its uncaught exception, the thread's last act after its 'exit' handlers ran):
 * what it posted on its parentPort before, still queued on the handle's port, goes out first. Node's error comes on
 * another port of the handle, and a thread that took long to start (a warm thread, under plain node too) sees it
 * first about one time in four; Node drains that port likewise before 'exit'.
 */
function drainPublicPort(worker: NativeWorker): void {
  const key = Object.getOwnPropertySymbols(worker).find((symbol) => symbol.description === 'kPublicPort');
  const port = key === undefined ? undefined : (worker as unknown as Record<symbol, unknown>)[key];
  if (!(port instanceof Object) || typeof (port as MessagePort).postMessage !== 'function') return;
  for (let received = nativeReceiveMessageOnPort(port as MessagePort); received !== undefined; received = nativeReceiveMessageOnPort(port as MessagePort)) {
    worker.emit('message', received.message);
  }
}

/** Node's Worker, held now: the imported binding is live, and becomes dsm's class once setup syncs the builtin exports. */
const NodeWorker = NativeWorker;

/** The workerData checkOptionsAsNode gives Node's constructor: its clone, the constructor's last step before the thread starts, throws. */
const uncloneable = (): void => {};
/** Kinds of options Node's checks passed in this thread (optionsKey), so that each is checked once. */
const optionsPassed = new Set<string>();

/**
 * What Node's checks of a worker's options look at: the execArgv flags, the
 * types of argv, env and name, and the NODE_OPTIONS of an env given; null
 * when none is given (nothing to check: the common case).
 */
function optionsKey(execArgv: unknown, argv: unknown, env: unknown, name: unknown): string | null {
  if (execArgv === undefined && argv === undefined && env === undefined && name === undefined) return null;
  const envKind = typeof env === 'object' && env !== null ? ['object', String((env as Record<string, unknown>).NODE_OPTIONS ?? '')]
    : typeof env === 'symbol' ? String(env) : env === null ? 'null' : typeof env;
  return JSON.stringify([Array.isArray(execArgv) ? execArgv.map(String) : typeof execArgv, Array.isArray(argv) ? 'array' : typeof argv,
    envKind, name === undefined || name === '' ? 'none' : typeof name]);
}

/**
 * Node's constructor checks a worker's options before it starts the thread:
 * the types of execArgv, argv, env and name (ERR_INVALID_ARG_TYPE), then, as
 * it makes the thread's handle, the execArgv flags and the NODE_OPTIONS of
 * its env (ERR_WORKER_INVALID_EXEC_ARGV: a V8 flag such as --expose-gc, a
 * per-process option), and last it clones the workerData. dsm takes the
 * worker's thread id and its place first, and a worker placed on another node
 * was constructed there: a refused execArgv took an id here, and a number name
 * or a refused flag placed on another node ended that node (DSM_ERR_NODE_DIED).
 * So Node's constructor runs first with those options and a workerData it
 * cannot clone: it throws Node's own error where the program called, or the
 * clone's DataCloneError, with no thread started (about 0.3 ms). Once for
 * each kind of options that passes: a handle Node made and never started is
 * never freed (about 27 KB).
 */
function checkOptionsAsNode(options: DsmWorkerOptions): void {
  if (typeof options !== 'object' || options === null) return;
  const { execArgv, argv, env, name, resourceLimits } = options;
  const key = optionsKey(execArgv, argv, env, name);
  if (key === null || optionsPassed.has(key)) return;
  let probe: NativeWorker;
  try {
    probe = new NodeWorker('', { eval: true, execArgv, argv, env, name, resourceLimits, workerData: uncloneable });
  } catch (error) {
    if (!(error instanceof DOMException && error.name === 'DataCloneError')) throw error;
    if (optionsPassed.size < workerOptionKindCountMax) optionsPassed.add(key);
    return;
  }
  // A Node that clones the workerData after it starts the thread: one that runs nothing.
  probe.unref();
  void probe.terminate();
}

/** A local warm thread made before this thread passed its start gate (prewarmLocalThread), not yet adopted by make(). */
interface Prewarmed { worker: NativeWorker; handoff: MessagePort; gate: StartGate; env: string; online: boolean; ended: boolean; untrack(): void }
/** The local warm threads made before this thread passed its start gate (prewarmLocalThread), in order, not yet adopted by make(). */
const prewarmed: Prewarmed[] = [];

/**
 * The program's main thread, started early (src/runtime/program.ts `prestartMainThread`), makes its first local warm
 * threads before it waits at its gate (`count`: one on a cluster, one a CPU up to mainThreadPrewarmCountMax on one
 * node): they boot while the cluster starts, and the main thread's set-up adopts them all as warm threads (their
 * prototype becomes dsm's Worker's then, as if made by Reflect.construct).
 */
export function prewarmLocalThreads(count: number): void {
  if (prewarmed.length > 0 || !warmThreadsEnabled()) return;
  for (let made = 0; made < count; made += 1) prewarmLocalThread();
}

function prewarmLocalThread(): void {
  const { worker, handoff: port1, gate } = startWarmThread((entry, options) => new NodeWorker(entry, options), {}, 0, false);
  const onOnline = (): void => { made.online = true; };
  const onEnd = (): void => {
    made.ended = true;
    forgetBoot(worker);
  };
  const made = {
    worker, handoff: port1, gate, env: environmentFingerprint(), online: false, ended: false,
    untrack: () => {
      worker.off('online', onOnline);
      worker.off('error', onEnd);
      worker.off('exit', onEnd);
    },
  };
  worker.once('online', onOnline);
  worker.once('error', onEnd);
  worker.once('exit', onEnd);
  prewarmed.push(made);
  if (hopsOn) hop('t:warm thread prewarmed');
}

/** Whether this thread made a warm thread before its gate that its set-up has not adopted yet. */
export function hasPrewarmedThread(): boolean {
  return prewarmed.length > 0;
}

const nativeThreadId = Object.getOwnPropertyDescriptor(NativeWorker.prototype, 'threadId')!.get! as (this: NativeWorker) => number;

export function makeWorkerClass(channel: ChannelClient, parent: AppThreadConfig, ranges: BufferRanges): { Worker: typeof NativeWorker; warm: WarmLocalThreads; environmentSet(): void } {
  /**
   * The first 'exit' listener of a local worker (registered before the program can add one): tells the manager
   * the thread ended, ahead of whatever this thread does next (an unlock, a notify), so that a request the dead
   * thread left parked (a lock or a wait) takes no grant or wake-up meant for a live thread. Without it the
   * manager learned of the end only when the thread's channel closed, asynchronously, maybe after those.
   */
  const tellManagerAtExit = (worker: NativeWorker, threadIdSeen: number): void => {
    worker.once('exit', () => {
      try {
        // A call on 2+ nodes: it returns once the thread's own workers on other nodes have stopped too, so that
        // the program's 'exit' listeners, after this one, run when they have, as under Node.
        if (parent.nodeCount > 1) {
          channel.call({ op: 'thread-exited', threadIdSeen, call: true });
          // The call returned after the wake-ups the thread's notifies caused (exit fences): their events wait on
          // this thread's channel, whose port libuv reads in the loop's next turn. Held until then (two checks),
          // so that a loop that awaited only such a wake (Atomics.waitAsync keeps no thread alive) does not end
          // before it (users9/grandchild-churn's exit 13, its child on its own node).
          channel.hold();
          setImmediate(() => setImmediate(() => channel.unhold()));
        } else channel.post({ op: 'thread-exited', threadIdSeen });
      } catch {
        // The node is ending: its manager withdraws every thread's requests anyway.
      }
    });
  };
  const warmThreads: LocalWarmThread[] = [];
  /**
   * Warm threads (DSM_WARM_THREADS=0 turns them off), on one node too: there the main thread makes none at its start
   * (a program that makes no worker pays nothing), the first local worker's miss starts the refills. False once one
   * ended before it was taken (another would too).
   */
  let warmEnabled = warmThreadsEnabled();
  /** Set once a worker that could have had a warm thread found none: from then on, each take makes the next. */
  let warmRefill = false;
  const warm: WarmLocalThreads = {
    make(): void {
      // The threads made before the gate are adopted all (one more than warmThreadCountMax each); then one at a time.
      if (!warmEnabled || (warmThreads.length >= warmThreadCountMax && prewarmed.length === 0)) return;
      const early = prewarmed.shift() ?? null;
      early?.untrack();
      if (early?.ended === true) {
        // It failed or ended while this thread waited at its gate: another would too.
        warmEnabled = false;
        early.handoff.close();
        for (const other of prewarmed.splice(0)) {
          other.untrack();
          endUnusedWarmThread(other);
        }
        return;
      }
      // The prewarmed one becomes an instance of dsm's Worker; a new one is made so, without dsm's constructor:
      // Node's own thread, on dsm's entry, with no program yet.
      if (early !== null) Object.setPrototypeOf(early.worker, Worker.prototype);
      const made = early ?? {
        ...startWarmThread((entry, options) => Reflect.construct(NodeWorker, [entry, options], Worker) as NativeWorker, {}, 0, false),
        env: environmentFingerprint(), online: false,
      };
      const { worker, handoff: port1, gate } = made;
      const thread: LocalWarmThread = {
        worker, handoff: port1, gate, env: made.env, online: made.online, idleTimer: null,
        onOnline: () => { thread.online = true; },
        onEnd: () => {
          const index = warmThreads.indexOf(thread);
          if (index >= 0) warmThreads.splice(index, 1);
          warmEnabled = false;
          port1.close();
        },
      };
      worker.on('online', thread.onOnline);
      worker.on('error', thread.onEnd);
      worker.on('exit', thread.onEnd);
      // Not taken soon: end it and return its memory (warm threads stay on).
      thread.idleTimer = setTimeout(() => {
        if (detachWarm(thread)) {
          endUnusedWarmThread(thread);
          if (hopsOn) hop('t:warm thread ended idle');
        }
      }, warmThreadIdleMsMax);
      thread.idleTimer.unref();
      warmThreads.push(thread);
      if (hopsOn) hop('t:warm thread made');
      if (prewarmed.length > 0) warm.make();
    },
  };
  /**
   * The next worker's warm thread is made once the workers started here since the refills began have all booted
   * ('online', or their end if they end first), not at a start: a program that starts workers in a burst then boots
   * just its own threads at once, as under Node. Made at each start, the last one made was never used and took a
   * share of the CPU from the burst's boots (2 workers on one node reached their first lines 260 ms after the main
   * thread's instead of ~100); made when the first of a burst came online, it booted beside the others (4 workers on
   * one node, session 31: all started 233–263 ms after the first `new Worker`, against 212–223 with no refill at all).
   * A program that starts workers one after another still finds the next one ready, made as its predecessor came
   * online.
   */
  const notOnline = new Set<NativeWorker>();
  let refillWanted = false;
  function refillWhenOnline(worker: NativeWorker, online: boolean): void {
    refillWanted = true;
    if (!online && !notOnline.has(worker)) {
      notOnline.add(worker);
      const seen = (): void => {
        worker.off('online', seen);
        worker.off('exit', seen);
        notOnline.delete(worker);
        if (refillWanted && notOnline.size === 0) {
          refillWanted = false;
          warm.make();
        }
      };
      worker.once('online', seen);
      worker.once('exit', seen);
    }
    if (notOnline.size === 0) {
      refillWanted = false;
      warm.make();
    }
  }
  /** Takes `thread` out of the warm ones (its listeners and idle timer gone); false if it was not there. */
  function detachWarm(thread: LocalWarmThread): boolean {
    const index = warmThreads.indexOf(thread);
    if (index < 0) return false;
    warmThreads.splice(index, 1);
    thread.worker.off('online', thread.onOnline);
    thread.worker.off('error', thread.onEnd);
    thread.worker.off('exit', thread.onEnd);
    if (thread.idleTimer !== null) clearTimeout(thread.idleTimer);
    return true;
  }
  /** A warm thread for a worker made now (its environment unchanged since), no longer warm; or null. */
  function takeWarm(): LocalWarmThread | null {
    const thread = warmThreads[0];
    if (thread === undefined || !detachWarm(thread)) return null;
    if (thread.env !== environmentFingerprint()) {
      // The program changed its environment since: a new thread copies the environment of now.
      endUnusedWarmThread(thread);
      return null;
    }
    thread.worker.ref();
    return thread;
  }

  /** This thread's environment once set up (setup publishes the node's identity in it), before the program runs. */
  let environmentAtStart: string | null = null;
  /**
   * The env of a worker on another node. Node gives a worker a copy of its
   * creator's environment as it is at `new Worker`; a thread on another node
   * starts from that node's environment, the creator's as it was at the start
   * (the same `dsm run`), so the creator's is sent once the program changed it
   * (an assignment to a variable before `new Worker`: the worker saw the other node's
   * value, or none). DSM_NODE_ID and DSM_NODE_COUNT are the host's again there.
   */
  function remoteEnvOption(options: DsmWorkerOptions): { env?: Record<string, string> } {
    if (typeof options.env === 'object' && options.env !== null) return { env: options.env as Record<string, string> };
    if (options.env !== undefined || environmentAtStart === null || environmentFingerprint() === environmentAtStart) return {};
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(processEnvironment())) if (value !== undefined) env[name] = value;
    return { env };
  }

  /**
   * Emits a taken warm thread's 'online' two immediates from now (after the immediates the program queues in this
   * turn), each immediate ref'd or not as the worker is: an unref'd worker's 'online' keeps the loop no more alive
   * than node's message would (a program awaiting it with nothing else to do ends, as under node).
   */
  function emitOnlineLater(worker: NativeWorker): void {
    const second = (): void => {
      const immediate = setImmediate(() => {
        pendingOnline.delete(worker);
        worker.emit('online');
      });
      if (unrefd.has(worker)) immediate.unref();
      pendingOnline.set(worker, immediate);
    };
    const first = setImmediate(second);
    if (unrefd.has(worker)) first.unref();
    pendingOnline.set(worker, first);
  }

  /**
   * A local worker's output that Node pipes into this thread's stdout and stderr goes there before its 'exit' is
   * heard. Node writes a main thread's stdout synchronously (a file, a pipe), so a worker's last lines come out
   * before what the main thread prints on its 'exit'; a dsm program's main thread is a worker itself, whose stdout
   * is a stream with backpressure, and the pipe held the rest back while the main thread's own line went ahead
   * (users9's exit-output-order). Each chunk read here goes to the pipe's destination ('data'), in order. Streams
   * the program reads itself (`stdout: true`: not piped) are left alone.
   */
  function flushPipedOutput(worker: NativeWorker): void {
    for (const stream of [worker.stdout, worker.stderr]) {
      const state = (stream as unknown as { _readableState?: { pipes?: unknown[] } } | null)?._readableState;
      if (stream === null || state?.pipes === undefined || state.pipes.length === 0) continue;
      while (stream.read() !== null) { /* written by the pipe's 'data' listener */ }
    }
  }

  class Worker extends NativeWorker {
    /**
     * A taken warm thread's 'online' still to come goes out before any other event of the worker: a thread that
     * fails at once (a missing file, a syntax error) or posts at once would otherwise be heard before it is online
     * (Node's thread says it is online before it loads the program).
     */
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'exit') {
        forgetBoot(this);
        flushPipedOutput(this);
      }
      if (terminatedEarly.has(this)) {
        // Terminated before its program started (see terminate): as Node's thread that had not started, no
        // 'online', and exit code 0 where the warm thread's is 1.
        if (event === 'online') return false;
        if (event === 'exit') {
          const pending = pendingOnline.get(this);
          if (pending !== undefined) clearImmediate(pending);
          pendingOnline.delete(this);
          return super.emit(event, args[0] === 1 ? 0 : args[0], ...args.slice(1));
        }
      }
      if (event === 'online') takenGates.delete(this);
      if (event === 'error') drainPublicPort(this);
      const pending = eventsAfterOnline.has(event) ? pendingOnline.get(this) : undefined;
      if (pending !== undefined) {
        clearImmediate(pending);
        pendingOnline.delete(this);
        super.emit('online');
      }
      return super.emit(event, ...args);
    }

    /**
     * A taken warm thread terminated before the program heard it online and before its program began: under Node
     * that thread would still be booting (milliseconds), so it ends as Node's does then (emit above).
     */
    override terminate(): Promise<number> {
      const gate = takenGates.get(this);
      if (gate !== undefined && !gate.programStarted) terminatedEarly.add(this);
      takenGates.delete(this);
      return terminateAppThread(this, () => super.terminate());
    }

    override ref(): void {
      super.ref();
      unrefd.delete(this);
      pendingOnline.get(this)?.ref();
    }

    override unref(): void {
      super.unref();
      unrefd.add(this);
      pendingOnline.get(this)?.unref();
    }

    constructor(filename: string | URL, options: DsmWorkerOptions = {}) {
      if (calledByRuntime(1)) {
        // Node's or the TypeScript loader's own thread (esbuild's service): a plain local Worker.
        super(filename, options);
        return;
      }
      checkOptionsAsNode(options);
      const evalCode = options.eval === true;
      const resolved = evalCode ? String(filename) : resolveWorkerFile(filename);
      if (resolved === null) {
        // Let Node produce its own ERR_WORKER_PATH error.
        super(filename, options);
        return;
      }
      const entry = resolved;
      if (!evalCode && isCompilerThread(entry)) {
        // esbuild's service thread, which tsx starts to compile a TypeScript
        // program: dsm's tooling, not a thread of the program, so it runs as a
        // plain Worker here and takes no thread id the program would see.
        super(filename, options);
        return;
      }
      const threadIdSeen = channel.call({ op: 'thread-id' }) as number;
      if (parent.nodeCount > 1) {
        // A file not found here fails here, with Node's own error (not a remote node's, which would add its name).
        const missing = !evalCode && !isDataUrl(entry) && findMainPath(entry) === false;
        const nodeId = options.dsmNode ?? (missing || needsCreatorsProcess(options, ranges) ? parent.nodeId : channel.call({ op: 'place' }) as number);
        if (nodeId !== parent.nodeId) {
          // A derived constructor may return another object instead of calling super.
          // eslint-disable-next-line no-constructor-return
          return spawnRemoteWorker(new.target.prototype, {
            channel, ranges, nodeId, threadIdSeen, entry, evalCode,
            workerData: options.workerData,
            transferList: listedTransfers(options.transferList),
            options: {
              ...(options.name === undefined ? {} : { name: options.name }),
              argv: (options.argv ?? []).map(String),
              ...remoteEnvOption(options),
              ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits as Record<string, number> }),
              ...(options.execArgv === undefined ? {} : { execArgv: options.execArgv.map(String) }),
              ...environmentDataOption(ranges),
            },
          }) as unknown as Worker;
        }
      }
      const { port1, port2 } = new MessageChannel();
      const config = appThreadConfig(parent, {
        role: 'worker', entry, evalCode, argv: (options.argv ?? []).map(String), userWorkerData: options.workerData, threadIdSeen,
        environmentEntries: environmentEntries(),
      });
      const fits = new.target === Worker && warmFits(options);
      const taken = fits ? takeWarm() : null;
      // Workers come one after another here: from now on each start makes the next one's warm thread.
      const missed = fits && taken === null && warmEnabled;
      if (missed) warmRefill = true;
      if (taken !== null) {
        // workerData is cloned by postMessage here, as Node clones it for a new thread.
        handWarmStart(taken, { config, port: port2 });
        taken.gate.open(true);
        if (hopsOn) hop('t:warm thread taken');
        const worker = taken.worker;
        takenGates.set(worker, taken.gate);
        threadIdsSeen.set(worker, threadIdSeen);
        channel.post({ op: 'adopt', port: port1, threadIdSeen }, [port1 as never]);
        tellManagerAtExit(worker, threadIdSeen);
        // Node's 'online' came while it was warm: the program's comes in a later turn of the loop, as a new
        // thread's would (node's is a message from the thread: never before this turn's ticks and promise
        // callbacks, and after the immediates it queues), and holds the loop only as the worker does.
        if (taken.online) emitOnlineLater(worker);
        if (warmRefill) refillWhenOnline(worker, taken.online);
        // eslint-disable-next-line no-constructor-return
        return worker as Worker;
      }
      const transferList = [...listedTransfers(options.transferList), port2];
      if (hopsOn) hop('t:creating thread');
      const workerData = appThreadWorkerData(config, port2);
      super(appEntryUrl(), {
        ...options,
        eval: false,
        argv: [],
        workerData,
        transferList: transferList as never,
      });
      trackBoot(this, workerData, false);
      threadIdsSeen.set(this, threadIdSeen);
      channel.post({ op: 'adopt', port: port1, threadIdSeen }, [port1 as never]);
      tellManagerAtExit(this, threadIdSeen);
      if (missed) refillWhenOnline(this, false);
    }
  }
  // @types/node declares threadId a property; Node defines it as an accessor.
  Object.defineProperty(Worker.prototype, 'threadId', {
    /** The id the program sees; -1 once the thread has ended, as Node's. */
    get: function threadIdGetter(this: NativeWorker): number {
      const real = nativeThreadId.call(this);
      // Node's own modules (e.g. internal/worker/messaging at exit) key their tables by the real id.
      if (real < 0 || calledFromNodeInternals(threadIdGetter)) return real;
      return threadIdsSeen.get(this) ?? real;
    },
    configurable: true,
    enumerable: false,
  });
  Object.defineProperty(Worker, 'name', { value: 'Worker' });
  /** Called once the thread's set-up has written its environment, before the program runs. */
  const environmentSet = (): void => { environmentAtStart = environmentFingerprint(); };
  return { Worker, warm, environmentSet };
}
