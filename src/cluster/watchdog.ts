// The process's watchdog (native/dsm_watchdog.cc): a thread that ends a dsm
// process when its JavaScript cannot — a signal not acted on within the
// grace period, a manager loop that stopped turning, an exit that hangs on an
// app thread parked on a fault. Also the one way dsm's own code ends a node
// process (exitProcess) and reports a failed manager (failManager).

import { exitDeadlineMs, loopPetIntervalMs, signalGraceMs } from '../constants.js';
import { DsmError, isDsmError } from '../errors.js';
import { mappedStack } from '../util/source-frames.js';
import { loadAddon } from '../util/addon.js';
import { hop, hopsOn } from '../util/hops.js';

interface NativeWatchdog {
  start(nodeId: number, loopState: Int32Array, activityNames: string[]): void;
  watchSignals(graceMs: number): void;
  setStallMs(stallMs: number): void;
  setParent(pid: number): void;
  addChild(pid: number): void;
  removeChild(pid: number): void;
  exitSoon(code: number, delayMs: number): void;
  hardExit(code: number): never;
  pendingSignal(): number;
  signalTaken(): void;
}

/** What the manager loop is doing, as the watchdog reports it when the loop stalls. */
export const activity = {
  idle: 0,
  protocolMessage: 1,
  faults: 2,
  channelRequest: 3,
  engineTick: 4,
  runtimeMessage: 5,
  exiting: 6,
  testHook: 7,
} as const;
const activityNames = ['idle (waiting for events)', 'handling a protocol message', 'serving page faults', 'serving an app thread\'s request', 'an engine tick', 'handling a runtime message', 'exiting', 'a test hook blocking the loop'];

let native: NativeWatchdog | null = null;
const loopState = new Int32Array(new SharedArrayBuffer(8));
let petTimer: NodeJS.Timeout | null = null;
let nodeIdSeen = -1;

function load(): NativeWatchdog {
  if (native !== null) return native;
  const addon = loadAddon<NativeWatchdog>('dsm_watchdog.node', 'the native watchdog');
  native = addon;
  return addon;
}

/** Marks what the manager loop is doing now (one store into memory the watchdog reads). */
export function noteActivity(code: number): void {
  Atomics.store(loopState, 1, code);
}

/** A child node's pid: killed with SIGKILL if this process is forced to exit. */
export function watchChild(pid: number | undefined): void {
  if (pid !== undefined) load().addChild(pid);
}

export function forgetChild(pid: number | undefined): void {
  if (pid !== undefined && native !== null) native.removeChild(pid);
}

export interface SuperviseOptions {
  nodeId: number;
  /** The manager loop may stand still this long before the node reports itself stalled and ends; 0 disables. */
  stallMs: number;
  /** A local child: end when this parent pid is gone, even if JavaScript cannot run. */
  parentPid?: number;
}

/**
 * Starts the watchdog thread for this node process: chains the SIGTERM/SIGINT
 * handlers (call after JavaScript registered its own, so they run first), and
 * starts petting the watchdog from the event loop.
 */
export function supervise(options: SuperviseOptions): void {
  const watchdog = load();
  nodeIdSeen = options.nodeId;
  watchdog.start(options.nodeId, loopState, activityNames);
  watchdog.watchSignals(signalGraceMs);
  if (options.parentPid !== undefined) watchdog.setParent(options.parentPid);
  if (petTimer === null) {
    petTimer = setInterval(() => Atomics.add(loopState, 0, 1), loopPetIntervalMs);
    petTimer.unref();
  }
  watchdog.setStallMs(options.stallMs);
}

/** The program took the signal just received (its own listener): the process goes on, no grace period runs. */
export function signalTakenByProgram(): void {
  if (native !== null) native.signalTaken();
}

/** The program is over (reports are being written, which may take long): a still loop is no stall now. */
export function stopStallCheck(): void {
  if (native !== null) native.setStallMs(0);
}

/**
 * Ends this process with `code`. process.exit waits for app threads, and one
 * parked on a page fault never returns; the watchdog ends the process after
 * exitDeadlineMs if the exit hangs.
 */
export function exitProcess(code: number): never {
  if (hopsOn) hop('m:exit');
  noteActivity(activity.exiting);
  try {
    const watchdog = load();
    watchdog.setStallMs(0);
    watchdog.exitSoon(code, exitDeadlineMs);
  } catch {
    // Without the addon there is no fault parking either: process.exit suffices.
  }
  process.exit(code);
}

/** The one line that says a manager failed: node, code, message, and where (first frame of the stack). */
export function describeManagerFailure(nodeId: number, error: unknown): string {
  const code = isDsmError(error) ? (error as DsmError).code : 'DSM_ERR_MANAGER_FAILED';
  const message = error instanceof Error ? error.message : String(error);
  const frame = error instanceof Error ? /\n\s+at (.*)/.exec(mappedStack(error.stack ?? ''))?.[1] : undefined;
  const where = frame === undefined ? '' : ` (at ${frame.replace(/^file:\/\//, '')})`;
  return `dsm: ${code}: node ${nodeId}'s manager failed: ${message.replace(/\s*\n\s*/g, ' ')}${where}; the run was ended`;
}

let failing = false;

/**
 * Makes an uncaught exception or unhandled rejection on this (manager) thread
 * end the node: `onFailure` gets the one-line message (to print and to tell
 * the cluster) and the process exits with `code` within exitDeadlineMs of its
 * return, parked app threads or not.
 */
export function endOnManagerFailure(nodeId: () => number, onFailure: (message: string) => void | Promise<void>, code: number): void {
  const fail = (error: unknown): void => {
    if (failing) return;
    failing = true;
    const message = describeManagerFailure(nodeId(), error);
    try {
      load().exitSoon(code, exitDeadlineMs * 2);
    } catch {
      // Exit below regardless.
    }
    Promise.resolve().then(() => onFailure(message)).catch(() => {
      process.stderr.write(`${message}\n`);
    }).finally(() => exitProcess(code));
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

/** Test hook: blocks this thread's event loop for `ms` (as a long engine step or a deadlock would). */
export function blockLoopForTest(ms: number): void {
  noteActivity(activity.testHook);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  noteActivity(activity.idle);
}

export function watchdogNodeId(): number {
  return nodeIdSeen;
}
