// The handle of a worker that runs on another node. It is an instance of
// dsm's Worker class (so `instanceof Worker` holds) and behaves as a Worker:
// 'online', 'message', 'error', 'exit', postMessage, terminate, ref/unref.
// Values cross by dsm's structured clone (dsm buffers travel by range).

import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import type { ChannelClient } from '../channel/client.js';
import type { RemoteWorkerOptions, ThreadEvent, WorkerQuery, WorkerQueryAnswer } from '../channel/wire.js';
import { DsmError, assert } from '../errors.js';
import { deserializeMessage, transferListOf, type BufferRanges } from '../channel/clone.js';
import { portRelays } from './port-relay.js';
import { deserializeThrown } from '../channel/thrown.js';
import { hop, hopsOn } from '../util/hops.js';

interface RemoteState {
  handleId: number;
  nodeId: number;
  threadId: number;
  exited: boolean;
  exitCode: number | null;
  referenced: boolean;
  exitWaiters: Array<(code: number) => void>;
  /** The thread's V8 limits as its node reports them when it comes online; {} before and after it runs (as Node's). */
  resourceLimits: Record<string, number>;
  /** 'online' emitted, terminate() called before it, and an 'online' held back since (see exited). */
  online: boolean;
  terminating: boolean;
  onlineHeld: boolean;
  /** Node 24's worker.threadName: its name option, or Node's default; null once it has ended (as Node's). */
  threadName: string | null;
}

const states = new WeakMap<object, RemoteState>();
const handles = new Map<number, EventEmitter>();
/** This thread's questions to its workers on other nodes waiting for answers (askWorker), by id. */
const queries = new Map<number, (answer: WorkerQueryAnswer) => void>();
let nextQueryId = 0;
let nextHandleId = 1;
let listening = false;

function stateOf(worker: object): RemoteState {
  const state = states.get(worker);
  if (state === undefined) throw new TypeError('not a dsm remote worker handle');
  return state;
}

export interface RemoteSpawn {
  channel: ChannelClient;
  ranges: BufferRanges;
  nodeId: number;
  /** The thread id the program sees, known at once (the creating node hands it out). */
  threadIdSeen: number;
  entry: string;
  evalCode: boolean;
  workerData: unknown;
  /** Its MessagePorts are relayed to the worker's node (./port-relay.ts). */
  transferList: readonly unknown[];
  options: RemoteWorkerOptions;
}

export function spawnRemoteWorker(prototype: object, spawn: RemoteSpawn): EventEmitter {
  const { channel, ranges } = spawn;
  if (hopsOn) hop('t:new Worker');
  if (!listening) {
    listening = true;
    channel.onEvent((event) => dispatch(event, ranges, channel));
  }
  // First: a workerData that cannot cross throws before any handle exists.
  const relays = portRelays();
  assert(relays !== null, 'a thread with remote workers has port relays');
  const { bytes: workerData, ports } = relays.serializeValue(spawn.workerData, spawn.transferList, 'a worker');
  const handleId = nextHandleId++;
  const worker = Object.create(makeRemotePrototype(prototype, channel, ranges)) as EventEmitter;
  EventEmitter.call(worker);
  const state: RemoteState = { handleId, nodeId: spawn.nodeId, threadId: spawn.threadIdSeen, exited: false, exitCode: null, referenced: true, exitWaiters: [], resourceLimits: {}, online: false, terminating: false, onlineHeld: false,
    threadName: spawn.options.name ? String(spawn.options.name) : 'WorkerThread' };
  states.set(worker, state);
  handles.set(handleId, worker);
  channel.hold();
  channel.post({
    op: 'worker-spawn', handleId, nodeId: spawn.nodeId, threadIdSeen: spawn.threadIdSeen, entry: spawn.entry, evalCode: spawn.evalCode, workerData, options: spawn.options,
    ...(ports === undefined ? {} : { ports }),
  }, transferListOf(workerData));
  return worker;
}

/** The node a worker handle made by spawnRemoteWorker runs on; undefined for any other object. */
export function remoteWorkerNode(worker: object): number | undefined {
  return states.get(worker)?.nodeId;
}

/** A limits record from another node: its own finite numbers only. */
function numbersOnly(limits: Record<string, number> | undefined): Record<string, number> {
  const kept: Record<string, number> = {};
  for (const [name, value] of Object.entries(limits ?? {})) if (typeof value === 'number' && Number.isFinite(value)) kept[name] = value;
  return kept;
}

/** Emits the 'online' a terminate held back (see 'worker-online'), once its worker has shown its program began. */
function releaseHeldOnline(worker: EventEmitter, state: RemoteState): void {
  if (!state.onlineHeld) return;
  state.onlineHeld = false;
  state.online = true;
  worker.emit('online');
}

function dispatch(event: ThreadEvent, ranges: BufferRanges, channel: ChannelClient): void {
  // Atomics.waitAsync's answers (src/threads/atomics.ts), a hosted worker's parent messages (./remote-parent.ts)
  // and BroadcastChannel messages (./broadcast-channel.ts).
  // and relayed MessagePorts' messages (./port-relay.ts), Web Locks' answers (./web-locks.ts), postMessageToThread's
  // messages and answers (./post-to-thread.ts), signals (./signals.ts).
  if (event.kind === 'atomic-done' || event.kind === 'parent-message' || event.kind === 'bc-message' || event.kind === 'port-message' || event.kind === 'port-close'
    || event.kind === 'signal' || event.kind === 'wl-grant' || event.kind === 'wl-stolen' || event.kind === 'thread-message' || event.kind === 'thread-post-done') return;
  if (event.kind === 'worker-query-done') {
    queries.get(event.id)?.(event.answer);
    return;
  }
  const worker = handles.get(event.handleId);
  if (worker === undefined) return;
  const state = stateOf(worker);
  switch (event.kind) {
    case 'worker-online':
      assert(event.threadId === state.threadId, 'a remote worker comes online with the thread id its creator gave it');
      state.resourceLimits = numbersOnly(event.resourceLimits);
      if (state.terminating) {
        state.onlineHeld = true;
        return;
      }
      state.online = true;
      worker.emit('online');
      return;
    case 'worker-message': {
      if (hopsOn) hop('t:worker message');
      // A message shows its program began: the 'online' held back by a terminate goes first, as under Node (users17:
      // a parent that called terminate() before its loop ran saw "message" before "online").
      releaseHeldOnline(worker, state);
      let value: unknown;
      try {
        // Its MessagePorts, if any, become local ports relayed to the worker's node (./port-relay.ts).
        value = deserializeMessage(event, ranges, portRelays()?.receiving());
      } catch (error) {
        worker.emit('messageerror', error);
        return;
      }
      worker.emit('message', value);
      return;
    }
    case 'worker-error': {
      releaseHeldOnline(worker, state);
      worker.emit('error', deserializeThrown(event.bytes, ranges));
      return;
    }
    case 'worker-exit': {
      if (hopsOn) hop('t:worker exit seen');
      // What the worker posted on relayed ports before it ended reached this thread's relay ends first, and they
      // posted it on to the program's ports: 'exit' comes after those messages, as under node. A fresh channel's
      // message is delivered after the messages already sent to older ports of this thread (libuv runs its
      // pending async handles in the order they were made), so the 'exit' goes through one. Posts to it stop now.
      state.exited = true;
      state.exitCode = event.exitCode;
      const { port1, port2 } = new MessageChannel();
      port1.once('message', () => {
        port1.close();
        exited(worker, state, event.exitCode, channel);
      });
      port2.postMessage(null);
      port2.close();
      return;
    }
  }
}

function exited(worker: EventEmitter, state: RemoteState, exitCode: number, channel: ChannelClient): void {
  // Terminated before it was online: its node answers 0 if its program had not begun (Node's thread would not
  // have started: no 'online'), else the 'online' held back goes first.
  if (state.onlineHeld && exitCode !== 0) worker.emit('online');
  state.threadId = -1; // as Node's handle of an ended thread
  state.threadName = null;
  state.resourceLimits = {};
  handles.delete(state.handleId);
  if (state.referenced) channel.unhold();
  state.referenced = false;
  // As Node's handle: its 'message' listeners go before 'exit' (Node's code also names 'messageerrors', which no
  // listener uses), every listener after it.
  worker.removeAllListeners('message');
  worker.removeAllListeners('messageerrors');
  worker.emit('exit', exitCode);
  worker.removeAllListeners();
  for (const waiter of state.exitWaiters.splice(0)) waiter(exitCode);
}

const prototypes = new WeakMap<object, object>();

function makeRemotePrototype(base: object, channel: ChannelClient, ranges: BufferRanges): object {
  const cached = prototypes.get(base);
  if (cached !== undefined) return cached;
  const prototype = Object.create(base, {
    postMessage: {
      value(this: object, value: unknown, transferList?: readonly unknown[]) {
        const state = stateOf(this);
        if (state.exited) return;
        // Sent without waiting, but every postsInFlightMax-th (and one with
        // MessagePorts) is a call: when the link to that node is full, this
        // thread waits there until it drains (flow control, src/runtime/flow.ts;
        // ChannelClient.postMessageRequest). The clone's bytes move to the
        // manager by transfer, not by a copy: they go on to the socket as the
        // frame's payload as they are.
        // Its MessagePorts stay in this thread, relayed to the worker's node (./port-relay.ts).
        const relays = portRelays();
        assert(relays !== null, 'a thread with remote workers has port relays');
        if (hopsOn) hop('t:postMessage');
        const message = relays.serialize(value, transferList, 'a worker');
        if (hopsOn) hop('t:serialized');
        channel.postMessageRequest({ op: 'worker-post', handleId: state.handleId, ...message }, transferListOf(message.bytes), message.ports !== undefined);
      },
    },
    terminate: {
      value(this: object): Promise<number> {
        const state = stateOf(this);
        // Node's handle whose 'exit' was emitted answers undefined (its 'exit' listeners saw the code).
        if (state.exited && state.threadId === -1) return Promise.resolve(undefined as unknown as number);
        // Ended, its 'exit' not emitted yet: the code, with the others waiting.
        if (!state.exited) {
          if (!state.online) state.terminating = true;
          // Node keeps the loop alive for a terminated worker until its 'exit', ref'd or not (pools unref idle
          // workers, then terminate them and await 'exit': tinypool's destroy): held as a ref'd one is.
          if (!state.referenced) { state.referenced = true; channel.hold(); }
          channel.post({ op: 'worker-terminate', handleId: state.handleId });
        }
        return new Promise((resolve) => state.exitWaiters.push(resolve));
      },
    },
    ref: {
      value(this: object) {
        const state = stateOf(this);
        if (!state.referenced && !state.exited) { state.referenced = true; channel.hold(); }
      },
    },
    unref: {
      value(this: object) {
        const state = stateOf(this);
        if (state.referenced) { state.referenced = false; channel.unhold(); }
      },
    },
    threadId: { get(this: object) { return stateOf(this).threadId; } },
    /** The node the worker runs on (dsm only). */
    dsmNodeId: { get(this: object) { return stateOf(this).nodeId; } },
    stdin: { get() { return null; } },
    stdout: { get() { return null; } },
    stderr: { get() { return null; } },
    resourceLimits: { get(this: object) { return { ...stateOf(this).resourceLimits }; } },
    performance: { get() { return { eventLoopUtilization: () => ({ idle: 0, active: 0, utilization: 0 }) }; } },
    // Asked of Node's Worker on the worker's node (session 39; they rejected before): a heap snapshot comes back
    // whole, as a stream of its bytes. Node 24's getHeapStatistics and cpuUsage where Node has them.
    ...Object.fromEntries((['getHeapSnapshot', 'getHeapStatistics', 'cpuUsage', 'startCpuProfile', 'startHeapProfile'] as const).filter((name) => name in base).map((name) => [name, {
      value(this: object, ...args: unknown[]) {
        return askWorker(this, base, channel, name, args);
      },
    }])),
    // Node 24's: where Node has it. Node's own would read the handle's missing native thread (it threw a TypeError).
    ...('threadName' in base ? { threadName: { get(this: object) { return stateOf(this).threadName; } } } : {}),
  });
  prototypes.set(base, prototype);
  return prototype;
}

/**
 * Worker `worker`'s Node method `what` with `args`, asked of its Worker on the node it runs on (which checks the
 * arguments: its errors come back with their code and message). A worker that is not running rejects as Node's
 * own method does on this handle, whose native thread is elsewhere: ERR_WORKER_NOT_RUNNING, Node's own error.
 */
async function askWorker(worker: object, base: object, channel: ChannelClient, what: WorkerQuery, args: unknown[]): Promise<unknown> {
  const state = stateOf(worker);
  // A profile's stop has no method of Node's on the handle: its start's says that the worker is not running.
  const own = (base as Record<string, (...a: unknown[]) => Promise<unknown>>)[what === 'stopProfile' ? 'startCpuProfile' : what]!;
  if (state.exited) return own.apply(worker, args);
  const argument = args[0];
  const id = nextQueryId++;
  const answer = await new Promise<WorkerQueryAnswer>((resolve) => {
    queries.set(id, (got) => { queries.delete(id); channel.unhold(); resolve(got); });
    // As Node's: the thread stays alive until the answer comes.
    channel.hold();
    try {
      channel.call({ op: 'worker-query', handleId: state.handleId, id, what, ...(argument === undefined ? {} : { args: JSON.stringify(argument) }) });
    } catch (error) {
      queries.delete(id);
      channel.unhold();
      resolve({ ok: false, code: (error as { code?: string }).code ?? 'DSM_ERR_CHANNEL', message: (error as Error).message });
    }
  });
  if (!answer.ok) {
    if (answer.code === 'ERR_WORKER_NOT_RUNNING') return own.apply(worker, args);
    throw Object.assign(new Error(answer.message), { code: answer.code });
  }
  if (what === 'startCpuProfile' || what === 'startHeapProfile') return new RemoteProfileHandle(worker, base, channel, JSON.parse(answer.value!) as number);
  if (what === 'getHeapSnapshot') return Readable.from([Buffer.from(answer.bytes!.buffer, answer.bytes!.byteOffset, answer.bytes!.byteLength)]);
  return JSON.parse(answer.value ?? 'null') as unknown;
}

/** Node 24's CPUProfileHandle or HeapProfileHandle for a worker on another node: its stop asks there, once (a second stop answers the same profile, as Node's). */
class RemoteProfileHandle {
  readonly #stop: () => Promise<unknown>;
  #stopped: Promise<unknown> | null = null;

  constructor(worker: object, base: object, channel: ChannelClient, key: number) {
    this.#stop = () => askWorker(worker, base, channel, 'stopProfile', [key]);
  }

  stop(): Promise<unknown> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
