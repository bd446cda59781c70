// How an app thread is started, for both sides of the door: the manager
// starts the program's main thread and the workers it hosts for parents on
// other nodes (src/runtime/); an app thread starts the workers it creates
// locally (src/threads/worker.ts). All of them build the thread's
// AppThreadConfig here, hand it over in the same workerData envelope, and
// start the same entry module.

import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker, type WorkerOptions } from 'node:worker_threads';
import { bootWaitAtExitMsMax, mainThreadPrewarmCountMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import { entryUrl } from '../util/entry-url.js';
import type { AppThreadConfig, ThreadRole } from './wire.js';

/** What a node tells every app thread it starts (the same for all its threads). */
export interface NodeThreadBase {
  nodeId: number;
  nodeCount: number;
  regionBytes: number;
  /** Cluster-wide parallelism. */
  parallelism: number;
  /** The node's atomic line table (src/channel/atomic-lines.ts) when Atomics run by line ownership. */
  atomicLines?: SharedArrayBuffer;
  /** The node's lock token table (src/channel/lock-tokens.ts) when mutex tokens rest with app threads. */
  lockTokens?: SharedArrayBuffer;
}

/** What differs from one app thread to the next. */
export interface ThreadStart {
  role: ThreadRole;
  entry: string;
  evalCode: boolean;
  argv: string[];
  threadIdSeen: number;
  /** A local worker's workerData (structured-cloned by Node). */
  userWorkerData?: unknown;
  /** A worker whose parent runs on another node: its workerData, cloned by dsm (src/channel/clone.ts). */
  remoteWorkerData?: Uint8Array;
  /** A local worker: its creator's environment data entries. */
  environmentEntries?: Array<[unknown, unknown]>;
  /** A worker whose parent runs on another node: the parent's environment data, cloned by dsm. */
  remoteEnvironmentData?: Uint8Array;
}

/** The one place an AppThreadConfig is built. */
export function appThreadConfig(base: NodeThreadBase, start: ThreadStart): AppThreadConfig {
  return {
    role: start.role,
    nodeId: base.nodeId,
    nodeCount: base.nodeCount,
    regionBytes: base.regionBytes,
    entry: start.entry,
    evalCode: start.evalCode,
    argv: start.argv,
    parallelism: base.parallelism,
    userWorkerData: start.userWorkerData ?? null,
    threadIdSeen: start.threadIdSeen,
    ...(start.remoteWorkerData === undefined ? {} : { remoteWorkerData: start.remoteWorkerData }),
    ...(start.environmentEntries === undefined || start.environmentEntries.length === 0 ? {} : { environmentEntries: start.environmentEntries }),
    ...(start.remoteEnvironmentData === undefined ? {} : { remoteEnvironmentData: start.remoteEnvironmentData }),
    ...(base.atomicLines === undefined ? {} : { atomicLines: base.atomicLines }),
    ...(base.lockTokens === undefined ? {} : { lockTokens: base.lockTokens }),
  };
}

/** The workerData an app thread is started with: its config and its end of the channel (transfer the port). */
export interface AppThreadWorkerData {
  __dsm: AppThreadConfig;
  __dsmPort: MessagePort;
  /** A remote worker's start gate (see StartGate): absent for a thread that may run at once. */
  __dsmStartGate?: Int32Array;
  /** Its boot word (see trackBoot). */
  __dsmBoot: Int32Array;
}

export function appThreadWorkerData(config: AppThreadConfig, port: MessagePort, startGate?: StartGate): AppThreadWorkerData {
  return { __dsm: config, __dsmPort: port, __dsmBoot: newBootWord(), ...(startGate === undefined ? {} : { __dsmStartGate: startGate.word }) };
}

/**
 * Held when this module loads, before an app thread's setup replaces the global
 * one: a gate made in an app thread (a local warm thread's) is private, never dsm memory.
 */
const NativeSharedArrayBuffer = globalThis.SharedArrayBuffer;

/** StartGate's word: closed until the manager opens it. */
const gateClosed = 0;
const gateOpen = 1;
const gateFailed = 2;
/** Set by the thread once it has begun running the program (after the gate opened). */
const gateProgramStarted = 3;
/** A warm thread not taken: it ends at its gate without running anything (see StartGate.discard). */
const gateDiscarded = 4;

/**
 * A remote worker is created before its node acquires its parent's writes
 * (worker creation is a synchronization: the worker must see them), so the
 * thread's bootstrap (Node's worker realm, dsm's modules) overlaps the
 * acquire. The thread waits here before it sets dsm up and runs the program:
 * a page still valid here from before the acquire would otherwise be read
 * stale with no fault. One word in a SharedArrayBuffer of its own, opened by the
 * manager right after the acquire, in the same turn. A warm thread waits at one
 * too until it is taken (opened by its maker: a manager, or for a local worker
 * the parent thread, which has nothing to acquire).
 */
export class StartGate {
  readonly word = new Int32Array(new NativeSharedArrayBuffer(4));

  /** Lets the thread run (ok), or fail at its start (the acquire threw). */
  open(ok: boolean): void {
    Atomics.store(this.word, 0, ok ? gateOpen : gateFailed);
    Atomics.notify(this.word, 0);
  }

  /**
   * A warm thread not taken (idle, discarded, its start not handed over): it ends on its own at its gate, now or
   * once it has booted there, rather than being terminated, which may catch it as it starts dsm's entry module
   * (see trackBoot). Its maker closes its hand-off port.
   */
  discard(): void {
    Atomics.store(this.word, 0, gateDiscarded);
    Atomics.notify(this.word, 0);
  }

  /**
   * Whether the thread has begun running the program. A thread terminated before had not started under Node
   * (a new thread boots for milliseconds): Node answers 0 and emits no 'online' (src/threads/worker.ts,
   * src/runtime/remote-workers.ts).
   */
  get programStarted(): boolean {
    return Atomics.load(this.word, 0) === gateProgramStarted;
  }
}

/** The thread's side: its program starts now (its gate, if it has one, says so from now on). */
export function markProgramStarted(workerData: unknown): void {
  const word = (workerData as { __dsmStartGate?: Int32Array } | null)?.__dsmStartGate;
  if (word !== undefined) Atomics.store(word, 0, gateProgramStarted);
}

/** The thread's side: blocks until the manager opens the gate (true), or discards the thread (false); throws if the acquire failed. */
export function passStartGate(word: Int32Array | undefined): boolean {
  if (word === undefined) return true;
  // One wait: the manager opens the gate once, right after the acquire (no timeout: the thread has nothing else to do).
  Atomics.wait(word, 0, gateClosed);
  const verdict = Atomics.load(word, 0);
  if (verdict === gateDiscarded) return false;
  if (verdict !== gateOpen) throw new DsmError('DSM_ERR_INTERNAL', 'dsm: this worker\'s node could not acquire its parent\'s writes');
  return true;
}

/**
 * An app thread's boot word. Node 20's V8 (11.3) aborts the whole process ("Check failed: (location_) != nullptr"
 * in SourceTextModule::ExecuteAsyncModule) when a thread's termination is pending as it starts evaluating a module
 * with top-level await, before the module's first line: dsm's entry (src/threads/entry.ts) is such a module, and
 * every app thread starts in it (later V8s return the termination instead). The last module the thread evaluates
 * before the entry (src/threads/boot-mark.ts) moves the word from booting to loaded, the entry's first line to
 * entered (markEntryReached). Whoever ends a thread (terminateAppThread; an ending thread for the threads it
 * started, trackBoot) first moves a booting word to endAsked: the thread then stops at boot-mark, before the
 * window, and may be terminated at once; a loaded one is waited for until entered (microseconds). A warm thread
 * not taken is not terminated at all (StartGate.discard).
 */
const bootBooting = 0;
/** Past boot-mark, about to start the entry: not to be terminated until entered. */
const bootLoaded = 1;
/** The entry's first line has run: the thread may be terminated. */
const bootEntered = 2;
/** Its end was asked while it booted: it stops at boot-mark. */
const bootEndAsked = 3;
/** Stopped at boot-mark (after bootEndAsked), waiting for its termination. */
const bootParked = 4;
/** For test/unit/boot-termination.test.ts: the same numbers as boot-mark's. */
export const bootStatesHere = { booting: bootBooting, loaded: bootLoaded, entered: bootEntered, endAsked: bootEndAsked, parked: bootParked };

/** Node's own, held before an app thread's setup replaces Atomics' functions (these words are never dsm memory). */
const nativeWaitAsync = (Atomics as unknown as { waitAsync(typed: Int32Array, index: number, value: number): { async: boolean; value: Promise<unknown> } }).waitAsync.bind(Atomics);
const nativeWait = Atomics.wait.bind(Atomics);

/** Made in the starting thread's own memory, never dsm memory (see NativeSharedArrayBuffer). */
function newBootWord(): Int32Array {
  return new Int32Array(new NativeSharedArrayBuffer(4));
}

/** The boot word of each app thread this thread started, for terminateAppThread. */
const bootWords = new WeakMap<Worker, Int32Array>();
/** The app threads this thread started that may not have reached their entry yet (pruned at each new one). */
const booting = new Map<Worker, Int32Array>();
let waitAtExitInstalled = false;

/**
 * Notes a thread just started on `workerData` (an app or a warm thread's), so that this thread's end (its 'exit'
 * event, which Node emits before it terminates the threads this one started) does not catch it as it starts its
 * entry (waitForBoots). Forgotten at its 'exit' (`watchExit`: a listener; else the caller calls forgetBoot, as
 * dsm's Worker does from its emit, where the program would count a listener).
 */
export function trackBoot(worker: Worker, workerData: { __dsmBoot: Int32Array }, watchExit = true): void {
  const word = workerData.__dsmBoot;
  bootWords.set(worker, word);
  for (const [other, otherWord] of booting) {
    const state = Atomics.load(otherWord, 0);
    if (state !== bootBooting && state !== bootLoaded) booting.delete(other);
  }
  booting.set(worker, word);
  if (watchExit) worker.once('exit', () => forgetBoot(worker));
  if (!waitAtExitInstalled) {
    waitAtExitInstalled = true;
    process.on('exit', waitForBoots);
  }
}

/** A thread trackBoot noted has ended. */
export function forgetBoot(worker: Worker): void {
  booting.delete(worker);
}

/**
 * At this thread's end: a thread it started that has not reached boot-mark will stop there; one past it is waited
 * for until its entry's first line (microseconds; at most bootWaitAtExitMsMax for all).
 */
function waitForBoots(): void {
  const deadline = performance.now() + bootWaitAtExitMsMax;
  for (const word of booting.values()) {
    if (Atomics.compareExchange(word, 0, bootBooting, bootEndAsked) === bootBooting) continue;
    while (Atomics.load(word, 0) === bootLoaded) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      nativeWait(word, 0, bootLoaded, left);
    }
  }
  booting.clear();
}

/**
 * Terminates an app thread this thread started (`terminate`: Node's terminate() for it): at once, unless it is
 * about to start its entry (then once it has). One that has not reached boot-mark stops there, so no line of
 * dsm's or the program's runs, as under Node.
 */
export function terminateAppThread(worker: Worker, terminate: () => Promise<number>): Promise<number> {
  const word = bootWords.get(worker);
  if (word === undefined) return terminate();
  Atomics.compareExchange(word, 0, bootBooting, bootEndAsked);
  if (Atomics.load(word, 0) !== bootLoaded) return terminate();
  const { async, value } = nativeWaitAsync(word, 0, bootLoaded);
  return (async ? value : Promise.resolve()).then(terminate);
}

/** The thread's side, at its entry's first line: it may be terminated from now on. */
export function markEntryReached(workerData: unknown): void {
  const word = (workerData as { __dsmBoot?: Int32Array } | null)?.__dsmBoot;
  if (word === undefined) return;
  for (;;) {
    const state = Atomics.load(word, 0);
    if (state === bootEntered) return;
    if (state === bootBooting || state === bootLoaded) {
      if (Atomics.compareExchange(word, 0, state, bootEntered) !== state) continue;
      Atomics.notify(word, 0);
      return;
    }
    // Its end was asked and boot-mark did not stop it (it always runs first: kept safe all the same): stop here.
    Atomics.store(word, 0, bootParked);
    Atomics.notify(word, 0);
    for (;;) Atomics.wait(word, 0, bootParked);
  }
}

/**
 * The workerData of a warm thread (issue 13: a remote worker that starts at
 * once): a thread started before any worker needs it, which boots (Node's
 * worker realm, dsm's modules) and then waits at its start gate. The manager
 * takes it for a worker by posting the thread's start (WarmStart) on the
 * hand-off port, then opens the gate once its node has acquired the parent's
 * writes, as for a thread started then.
 */
export interface WarmThreadWorkerData {
  __dsmWarm: MessagePort;
  __dsmStartGate: Int32Array;
  /** Its boot word (see trackBoot). */
  __dsmBoot: Int32Array;
  /**
   * The program's main thread started early (src/runtime/program.ts prestartMainThread): the local warm threads it
   * makes before it waits at its gate, so that they boot meanwhile too (absent: none).
   */
  __dsmPrewarmLocal?: number;
}

/** What a warm thread is handed when it is taken: what a thread started cold gets in its workerData. */
export interface WarmStart {
  config: AppThreadConfig;
  port: MessagePort;
}

export function warmThreadWorkerData(handoff: MessagePort, gate: StartGate, prewarmLocal = 0): WarmThreadWorkerData {
  return { __dsmWarm: handoff, __dsmStartGate: gate.word, __dsmBoot: newBootWord(), ...(prewarmLocal > 0 ? { __dsmPrewarmLocal: prewarmLocal } : {}) };
}

/**
 * Starts a warm thread: `construct` makes the Worker (Node's class, or dsm's through Reflect.construct) on dsm's
 * entry, with `options` besides the warm workerData and its hand-off port; unreferenced, so that it never keeps
 * its creator alive until it is taken. The manager (a remote worker's warm thread, the program's prestarted main
 * thread) and an app thread (its local warm thread) all start theirs here.
 */
export function startWarmThread<W extends Worker>(
  construct: (entry: URL, options: WorkerOptions) => W, options: WorkerOptions = {}, prewarmLocal = 0, watchExit = true,
): { worker: W; handoff: MessagePort; gate: StartGate } {
  const { port1, port2 } = new MessageChannel();
  const gate = new StartGate();
  const workerData = warmThreadWorkerData(port2, gate, prewarmLocal);
  const worker = construct(appEntryUrl(), { ...options, workerData, transferList: [port2] });
  trackBoot(worker, workerData, watchExit);
  worker.unref();
  return { worker, handoff: port1, gate };
}

/**
 * A warm thread started before the one who takes it exists (the program's main thread before its node,
 * src/runtime/program.ts; a node's first remote-worker thread before the node joins,
 * src/runtime/node-prepare.ts): its own listeners note whether Node's 'online' came and whether it
 * ended (failed) while it waited, until it is taken (`untrack`) or ended unused (`discard`).
 */
export interface PrestartedWarmThread<W extends Worker = Worker> {
  worker: W;
  handoff: MessagePort;
  gate: StartGate;
  online: boolean;
  /** Set when the thread failed or ended while it waited (or was discarded). */
  ended: boolean;
  /** Taken: its listeners off (the taker's go on). */
  untrack(): void;
  /** Ends it unused. */
  discard(): void;
}

/** startWarmThread, tracked until taken (see PrestartedWarmThread). */
export function prestartWarmThread<W extends Worker>(
  construct: (entry: URL, options: WorkerOptions) => W, options: WorkerOptions = {}, prewarmLocal = 0,
): PrestartedWarmThread<W> {
  const { worker, handoff, gate } = startWarmThread(construct, options, prewarmLocal);
  const onOnline = (): void => { thread.online = true; };
  const onEnd = (): void => { thread.ended = true; };
  const thread: PrestartedWarmThread<W> = {
    worker, handoff, gate, online: false, ended: false,
    untrack: () => {
      worker.off('online', onOnline);
      worker.off('error', onEnd);
      worker.off('exit', onEnd);
    },
    discard: () => {
      thread.ended = true;
      thread.untrack();
      endUnusedWarmThread(thread);
    },
  };
  worker.once('online', onOnline);
  worker.once('error', onEnd);
  worker.once('exit', onEnd);
  return thread;
}

/** How many local warm threads this thread's workerData asks it to make before it waits at its gate (0: none). */
export function prewarmLocalCount(workerData: unknown): number {
  const count = workerData !== null && typeof workerData === 'object' ? (workerData as Partial<WarmThreadWorkerData>).__dsmPrewarmLocal : undefined;
  return typeof count === 'number' && Number.isInteger(count) && count > 0 ? Math.min(count, mainThreadPrewarmCountMax) : 0;
}

/** A warm thread not taken ends: at its gate, on its own (StartGate.discard), its hand-off port closed. */
export function endUnusedWarmThread(thread: { handoff: MessagePort; gate: StartGate }): void {
  thread.gate.discard();
  thread.handoff.close();
}

/** The manager's side of a warm thread's hand-off: posts its start (transfers the channel port); open the gate after. */
export function handWarmStart(thread: { handoff: MessagePort; gate: StartGate }, start: WarmStart): void {
  try {
    thread.handoff.postMessage(start, [start.port]);
  } catch (error) {
    // Its start could not be handed over (e.g. workerData that cannot be cloned, thrown as from Node's
    // constructor): end the warm thread rather than leave it waiting at its gate for nothing.
    endUnusedWarmThread(thread);
    throw error;
  }
}

/**
 * The app thread's side: its config and channel port, from the workerData it
 * was started with, once it may run. A remote worker waits at its start gate
 * first (its node acquires the parent's writes while it boots); a warm thread
 * waits there until it is taken and the acquire is done, then receives its
 * start, posted before the gate opened; null if it is discarded instead (it
 * ends without running anything).
 */
export function awaitAppThreadStart(workerData: unknown): { config: AppThreadConfig; port: MessagePort } | null {
  const warm = workerData as Partial<WarmThreadWorkerData> | null;
  if (warm !== null && typeof warm === 'object' && warm.__dsmWarm !== undefined && warm.__dsmStartGate !== undefined) {
    if (!passStartGate(warm.__dsmStartGate)) {
      // Not taken: the thread ends here (see StartGate.discard).
      warm.__dsmWarm.close();
      return null;
    }
    const received = receiveMessageOnPort(warm.__dsmWarm) as { message: WarmStart } | undefined;
    assert(received !== undefined, 'a warm thread\'s start is posted before its gate opens');
    warm.__dsmWarm.close();
    return { config: received.message.config, port: received.message.port };
  }
  const data = workerData as Partial<AppThreadWorkerData> | null;
  if (data === null || typeof data !== 'object' || data.__dsm === undefined || data.__dsmPort === undefined) {
    throw new TypeError('dsm: an app thread was started without its config and channel port');
  }
  // Only a warm thread's gate is ever discarded.
  assert(passStartGate(data.__dsmStartGate), 'a started app thread\'s gate opens or fails');
  return { config: data.__dsm, port: data.__dsmPort };
}

/**
 * The module every app thread starts in (src/threads/entry.ts: bundled, compiled .js,
 * or .ts when dsm itself runs under tsx). A URL, not an import: the manager
 * never loads app-side code itself.
 */
export function appEntryUrl(): URL {
  return entryUrl('threadEntry');
}
