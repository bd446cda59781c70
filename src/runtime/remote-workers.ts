// The remote-workers lane: a worker whose parent thread runs on another node.
//
// The parent's side (this node runs the parent): its app thread asks through
// the channel (worker-spawn, worker-post, worker-terminate) and hears back as
// channel events (worker-online, -message, -error, -exit). The worker's side
// (this node hosts the worker): the worker is a real Worker thread of this
// node with its own channel; its parentPort's posts come as parent-post
// requests and the parent's messages go to it as parent-message events. Every
// crossing is a release on the sending node and an acquire on the receiving
// one (ConsistencyBounds), so the worker sees what its parent wrote before.
//
// Posts to a thread (postMessageToThread, session 39). A thread id names the
// node that made the thread (threadIdNodeStride), not the node it runs on: a
// post to a thread of another node asks the maker where it runs
// (rtThreadWhere, rtThreadAt; the answer is kept: a thread never moves, ids
// are never reused), then goes there (rtThreadPost: a release and an acquire,
// its MessagePorts relayed as a postMessage's). The receiving thread emits
// 'workerMessage' and says what its listeners did; the answer goes back to
// the poster's node (rtThreadPostDone, a release and an acquire too: under
// Node the poster's promise settles after the listeners ran, through an
// Atomics.notify). No thread there, or the thread ends before it reads the
// message: the answer is "no listener" (Node's ERR_WORKER_MESSAGING_FAILED),
// never a post that waits for good. At most threadPostsInFlightMax posts of a
// node's threads wait for their answers, and as many messages for its threads.

import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { type ChannelServer, type ThreadEndpoint, flushPendingEvents } from '../channel/server.js';
import { heldRangesOf, transferListOf } from '../channel/clone.js';
import { serializeThrown } from '../channel/thrown.js';
import {
  appEntryUrl, appThreadConfig, appThreadWorkerData, endUnusedWarmThread, handWarmStart, StartGate, startWarmThread, terminateAppThread, trackBoot,
  type NodeThreadBase, type PrestartedWarmThread,
} from '../channel/thread-config.js';
import { broadcastChannelNameCountMax, exitFenceCountMax, exitFenceRetryMs, lanePostBatchMax, threadIdNodeStride, threadPostsInFlightMax, warmThreadCountMax, warmThreadIdleMsMax } from '../constants.js';
import { PortRoutes, type PortDelivery, type PortOnward } from './port-routes.js';
import { threadPostResults, workerQueries, type ChannelEvent, type ChannelRequest, type WorkerQuery, type WorkerQueryAnswer } from '../channel/wire.js';
import { DsmError, assert } from '../errors.js';
import type { ConsistencyInfo } from '../protocol/messages.js';
import type { LaneNetwork, LanePost, WorkerLaneMessage } from './envelope.js';
import { MessageJoiner, cutMessage } from './message-parts.js';
import { hop, hopsOn } from '../util/hops.js';

/** The release and acquire around each crossing (the engine's, named for race mode). */
export interface ConsistencyBounds {
  /** Before sending to `toNode`: what the receiver must acquire. `op` names the release (race mode), `request` carries the call site. */
  release(op: string, request: object | null, toNode: number): ConsistencyInfo;
  acquire(op: string, site: string | null, fromNode: number, info: ConsistencyInfo): void;
  /** On arrival of a message whose acquire waits (an exit held for its fence): its intervals, logged in arrival order. */
  learn(fromNode: number, info: ConsistencyInfo): void;
}

export interface RemoteWorkersOptions {
  node: NodeThreadBase;
  /** Where this node is, for errors that must say which machine lacks a file. */
  hostName: string;
  channel: ChannelServer;
  network: LaneNetwork<WorkerLaneMessage>;
  bounds: ConsistencyBounds;
  /** Admits work that makes traffic in order, within the link limit (src/runtime/flow.ts). */
  admit(work: () => void): void;
  /** Race mode: each crossing names the program's call site (docs/RACE.md). */
  raceSites: boolean;
  /** Race mode: a hosted worker started or ended (its thread id). */
  threadStarted?(threadIdSeen: number): void;
  threadEnded?(threadIdSeen: number): void;
  /** A hosted worker's thread exited (Node's 'exit' here): its parked requests go before its parent hears of it. */
  threadExited?(endpoint: ThreadEndpoint): void;
  /**
   * The node's allocation service: a message handed to a thread here leaves
   * its buffers' holds pending there until the thread reads it, and one no
   * thread will read gives them back (src/runtime/heap-service.ts, "Pending holds").
   */
  holds?: {
    expectHolds(thread: object, held: readonly number[]): void;
    expectSharedHolds(threads: readonly object[], held: readonly number[]): void;
    abandonHolds(held: readonly number[]): void;
  };
  /** Test hook (DSM_TEST_HOOK_SLOW_WORKER_START): runs between a hosted worker's creation and its node's acquire. */
  beforeStartAcquire?(): void;
  /** The nodes this node has sent a notify to (see "Exit fences"); none when absent. */
  notifyTargets?(): ReadonlySet<number>;
  /** Whether the engine holds no notify from another node back (it answers an exit fence only then: see "Exit fences"). */
  notifiesSettled?(): boolean;
  /**
   * Warm threads (DSM_WARM_THREADS, on by default): keep a thread booted up to
   * the program's module, taken by the next worker hosted here (`atStart`:
   * make one now, or adopt `prestarted`, the one src/runtime/node-prepare.ts
   * started before the node joined). A worker that finds none turns on a new
   * one at each hosted worker's end.
   */
  warmThreads?: { atStart: boolean; prestarted?: PrestartedWarmThread | null };
}

/**
 * A warm app thread: started on dsm's app entry with no program yet, booted
 * (Node's worker realm, dsm's modules) and waiting at its start gate until a
 * worker takes it (src/channel/thread-config.ts, awaitAppThreadStart).
 */
interface WarmThread {
  worker: Worker;
  /** Where its start is posted when it is taken. */
  handoff: MessagePort;
  gate: StartGate;
  /** Whether Node's 'online' came (the thread runs JavaScript). */
  online: boolean;
  /** Its listeners while warm, removed when it is taken. */
  onOnline(): void;
  onEnd(): void;
  /** Ends it if it is still warm warmThreadIdleMsMax after its making. */
  idleTimer: NodeJS.Timeout | null;
}

type WorkerRequest = Extract<ChannelRequest, { op: 'worker-spawn' | 'worker-post' | 'parent-post' | 'worker-terminate' | 'bc-post' | 'port-post' | 'port-close' | 'port-join' | 'thread-post' | 'thread-message-done' | 'worker-query' }>;
type ThreadPostRequest = Extract<ChannelRequest, { op: 'thread-post' }>;

/**
 * The requests this lane serves after admission (bc-open, bc-close and
 * port-open and port-splice are served at once: subscribe, unsubscribe,
 * register, hold). A port-close is admitted too: it must not pass the relay's
 * messages before it; so is a port-join.
 */
export function isWorkerRequest(request: ChannelRequest): request is WorkerRequest {
  return request.op === 'worker-spawn' || request.op === 'worker-post' || request.op === 'parent-post' || request.op === 'worker-terminate' || request.op === 'bc-post'
    || request.op === 'port-post' || request.op === 'port-close' || request.op === 'port-join' || request.op === 'thread-post' || request.op === 'thread-message-done' || request.op === 'worker-query';
}

/** A relayed MessagePort's message as the manager keeps it: its clone (src/channel/clone.ts), and its ports (a splice's). */
type PortMessage = { bytes: Uint8Array; form?: number; ports?: string[] };

/** A worker hosted here for a parent on another node. */
interface HostedWorker {
  worker: Worker;
  endpoint: ThreadEndpoint;
  parentNode: number;
  /** Its start gate (null only in race mode for a cold thread): says whether its program has begun. */
  gate: StartGate | null;
  /**
   * Terminated before its program began: under Node that thread would still be booting, and it ends with 0
   * (this thread, running dsm's entry, ends with 1).
   */
  terminatedEarly: boolean;
  /** Its 'online' went to its parent: a terminate from then on stops a thread its program may know is up. */
  onlineSent: boolean;
}

/**
 * Whether a warm thread can host a worker with these options: it was made with
 * Node's defaults (the node's environment, no name, no resource limits, no execArgv), which
 * a thread cannot change once started; argv and workerData come with its start.
 */
function warmFits(options: Extract<WorkerLaneMessage, { type: 'rtSpawn' }>['options']): boolean {
  return options.env === undefined && options.name === undefined && options.resourceLimits === undefined && options.execArgv === undefined;
}

const siteOf = (request: object | null): string | null => (request as { site?: string | null } | null)?.site ?? null;

/** A message's `form` (src/channel/clone.ts, serializeMessage), passed on only when it has one. */
const formOf = (carrier: { form?: number }): { form?: number } => (carrier.form === undefined ? {} : { form: carrier.form });

/** A message's relayed ports (src/threads/port-relay.ts), passed on only when it has some. */
const portsOf = (carrier: { ports?: string[] }): { ports?: string[] } => (carrier.ports === undefined ? {} : { ports: carrier.ports });

const noRanges = {
  rangeOf: () => null,
  bufferAt: (): never => { throw new DsmError('DSM_ERR_INTERNAL', 'the manager holds no dsm buffers'); },
};

export class RemoteWorkers {
  private readonly options: RemoteWorkersOptions;
  /** Workers started here for parents elsewhere: spawnId -> worker, its channel endpoint and the parent's node. */
  private readonly hosted = new Map<string, HostedWorker>();
  /** Messages larger than a frame, their parts joined per sending node. */
  private readonly joiner = new MessageJoiner();
  /** The channel endpoints of those workers: endpoint -> spawnId. */
  private readonly hostedEndpoints = new Map<ThreadEndpoint, string>();
  /** Remote workers of this node's app threads: spawnId -> (endpoint, handle id, node). */
  private readonly remote = new Map<string, { endpoint: ThreadEndpoint; handleId: number; nodeId: number; threadIdSeen: number; ended?: true }>();
  /**
   * Posts to a thread (see the header). `threadPosts`: this node's threads' posts waiting for their answers, by
   * key (the poster and its own id); `threadsAt`: where threads of other nodes run, as their makers answered;
   * `threadWhereWaiting`: posts waiting for such an answer, by thread; `threadMessages`: messages handed to
   * this node's threads, by key (the poster's node and key), until the thread says what its listeners did.
   */
  private readonly threadPosts = new Map<number, { endpoint: ThreadEndpoint; id: number }>();
  private readonly threadsAt = new Map<number, number>();
  private readonly threadWhereWaiting = new Map<number, Array<{ key: number; endpoint: ThreadEndpoint; request: ThreadPostRequest }>>();
  private readonly threadMessages = new Map<number, { endpoint: ThreadEndpoint; fromNode: number; id: number }>();
  private threadPostCounter = 0;
  /** Worker queries of this node's threads about their workers on other nodes, waiting for answers, by key (at most threadPostsInFlightMax). */
  private readonly workerQueries = new Map<number, { endpoint: ThreadEndpoint; id: number }>();
  private workerQueryCounter = 0;
  /** Profiles started in workers hosted here for their parents elsewhere, until stopped (or their worker ends), by number. */
  private readonly profiles = new Map<number, { spawnId: string; handle: { stop(): Promise<string> } }>();
  private profileCounter = 0;
  /**
   * Threads of this node that ended with remote workers still running: what to do once the last of them has
   * exited (a hosted worker's own 'exit' event, which under Node comes after its workers have stopped).
   */
  private readonly awaitingChildren = new Map<number, () => void>();
  /**
   * Exit fences (session 35). Under Node a thread's Atomics.notify queues the
   * waiters' wake-ups before the thread can end, so a parent hears a wake its
   * child caused before the child's 'exit'. Here a notify may go to the
   * line's directory on a third node without a round trip (a counted notify)
   * and the directory's wake-up travel on another link than the 'exit': a
   * parent whose loop `await`ed only that wake (Atomics.waitAsync keeps no
   * thread alive) then ran dry at the 'exit' and ended with its top-level
   * await unsettled, exit code 13 (users9/grandchild-churn, session 33's CI).
   * So before a thread's 'exit' is delivered, its node sends a fence
   * (rtExitFence) to each node it has sent a notify to, but the parent's; each
   * answers the parent's node (rtExitFenced) once its engine holds none of its
   * notifies back, after the wake-ups it sent there (FIFO); the parent's node
   * delivers the 'exit' once every answer came (`fence` of the rtEvent; for a
   * child on the parent's own node, before its thread-exited call returns).
   * `fencesIn`: answers counted per fence; `fencesAwaited`: what runs once all came.
   */
  private readonly fencesIn = new Map<string, number>();
  private readonly fencesAwaited = new Map<string, { count: number; then: () => void }>();
  private fenceCounter = 0;
  private spawnCounter = 0;
  /**
   * BroadcastChannel names with an open instance in a thread of this node:
   * name -> those threads' channel endpoints (at most
   * broadcastChannelNameCountMax names). A thread says when it opens its first
   * instance of a name and closes its last; its end drops the rest.
   */
  private readonly broadcastOpen = new Map<string, Set<ThreadEndpoint>>();
  /** The relay ends of MessagePorts relayed across nodes held by this node's threads (./port-routes.ts). */
  private readonly ports = new PortRoutes<ThreadEndpoint, PortMessage>();
  /** Whether race mode names each crossing's call site. */
  private readonly withSites: boolean;
  /** Warm threads ready to be taken (at most warmThreadCountMax). */
  private readonly warm: WarmThread[] = [];
  /** False with DSM_WARM_THREADS=0, and once a warm thread ended before it was taken (it would again: cold starts only). */
  private warmEnabled: boolean;
  /**
   * Whether a hosted worker's end makes a warm thread: set once a worker that
   * could have had one found none (this node gets workers one after another),
   * so a node whose program places one worker here pays for no unused thread.
   */
  private warmRefill = false;
  /**
   * Small posts (no ports, not race mode) served in this run of the manager,
   * by node, not yet sent: they go as one rtPosts message a node (one frame,
   * one release) at the run's end (a microtask), once lanePostBatchMax are
   * waiting, or before anything else this node sends on the lane or serves
   * for a thread (flushPosts: a thread's posts go before its next request).
   */
  private readonly outgoing = new Map<number, LanePost[]>();
  private flushScheduled = false;

  constructor(options: RemoteWorkersOptions) {
    this.options = options;
    this.withSites = options.raceSites;
    this.warmEnabled = options.warmThreads !== undefined;
    if (options.warmThreads?.atStart === true) this.makeWarmThread(options.warmThreads.prestarted ?? null);
    else options.warmThreads?.prestarted?.discard();
    options.channel.onThreadEnd((endpoint) => {
      this.parentEnded(endpoint.threadIdSeen);
      this.threadPostsEnded(endpoint);
      for (const [key, query] of this.workerQueries) if (query.endpoint === endpoint) this.workerQueries.delete(key);
      for (const name of [...this.broadcastOpen.keys()]) this.broadcastClosed(endpoint, name);
      // Its relay ends close with it, as its ports would under Node: each far end sees 'close'. Admitted: after
      // the messages this thread posted on the relay before it ended, and its splices (port-join).
      options.admit(() => {
        for (const { id, farNode } of this.ports.threadEnded(endpoint)) this.send(farNode, { type: 'rtPortClose', id });
      });
    });
  }

  /**
   * A thread of this node ended (it returned, called process.exit, threw or was terminated): its remote workers
   * end too, as a Node worker's own workers do when it stops. Each is terminated (admitted: after what the thread
   * posted before it ended); `then`, if given, runs once the last of them has exited (at once if there are none).
   * Whether any of them was still running.
   */
  parentEnded(threadIdSeen: number, then?: () => void): boolean {
    let running = false;
    for (const [spawnId, entry] of this.remote) {
      if (entry.endpoint.threadIdSeen !== threadIdSeen) continue;
      running = true;
      if (entry.ended === true) continue;
      entry.ended = true;
      this.options.admit(() => this.send(entry.nodeId, { type: 'rtTerminate', spawnId }));
    }
    if (then !== undefined) {
      if (running) this.awaitingChildren.set(threadIdSeen, then);
      else then();
    }
    return running;
  }

  /**
   * Sends the exit fences of a thread of this node whose parent is on `parentNode` (see fencesIn): answers the
   * fence to wait for there, or null when this node has sent no notify to a node but the parent's.
   */
  private sendExitFences(parentNode: number): { id: string; count: number } | null {
    const self = this.options.node.nodeId;
    const targets = [...(this.options.notifyTargets?.() ?? [])].filter((node) => node !== self && node !== parentNode);
    if (targets.length === 0) return null;
    const id = `${self}:${this.fenceCounter++}`;
    for (const node of targets) this.sendNow(node, { type: 'rtExitFence', id, to: parentNode });
    return { id, count: targets.length };
  }

  /** Runs `then` once `fence`'s answers all came here (at once for none). */
  private awaitFence(fence: { id: string; count: number } | null | undefined, then: () => void): void {
    if (fence === null || fence === undefined || (this.fencesIn.get(fence.id) ?? 0) >= fence.count) {
      if (fence !== null && fence !== undefined) this.fencesIn.delete(fence.id);
      then();
      return;
    }
    assert(this.fencesAwaited.size < exitFenceCountMax, 'exit fences awaited within exitFenceCountMax');
    this.fencesAwaited.set(fence.id, { count: fence.count, then });
  }

  /**
   * A local thread of this node ended (its parent's thread-exited call): `then` runs once the wake-ups its
   * notifies caused on other nodes have reached this node (see fencesIn).
   */
  localExitFence(then: () => void): void {
    this.awaitFence(this.sendExitFences(this.options.node.nodeId), then);
  }

  /** An exit fence's answer came here. */
  private fenced(id: string): void {
    const count = (this.fencesIn.get(id) ?? 0) + 1;
    const awaited = this.fencesAwaited.get(id);
    if (awaited !== undefined && count >= awaited.count) {
      this.fencesAwaited.delete(id);
      this.fencesIn.delete(id);
      awaited.then();
      return;
    }
    assert(this.fencesIn.size < exitFenceCountMax, 'exit fence answers within exitFenceCountMax');
    this.fencesIn.set(id, count);
  }

  /** An exit fence came from another node: answered to its parent's node once the engine holds no notify back. */
  private answerFence(id: string, to: number): void {
    if (this.options.notifiesSettled?.() === false) {
      setTimeout(() => this.answerFence(id, to), exitFenceRetryMs);
      return;
    }
    if (to === this.options.node.nodeId) this.fenced(id);
    else this.sendNow(to, { type: 'rtExitFenced', id });
  }

  /** A remote worker of thread `threadIdSeen` exited: if that thread ended and waits for its last one, it goes on. */
  private childExited(threadIdSeen: number): void {
    const then = this.awaitingChildren.get(threadIdSeen);
    if (then === undefined) return;
    for (const entry of this.remote.values()) if (entry.endpoint.threadIdSeen === threadIdSeen) return;
    this.awaitingChildren.delete(threadIdSeen);
    then();
  }

  /** A message carrying relayed ports came for a thread that has ended: their ends close (the sender's see 'close'). */
  private portsRefused(ids: readonly string[] | undefined, fromNode: number): void {
    for (const id of ids ?? []) this.send(fromNode, { type: 'rtPortClose', id });
  }

  /** A thread made the port of relay `id` (it read the message that carried it): it takes what waited, and the rest as it comes. */
  portOpened(endpoint: ThreadEndpoint, id: string): void {
    for (const delivery of this.ports.opened(endpoint, id)) this.post(endpoint, id, delivery);
  }

  /** A thread ending with relay ends that are one local channel's two ends: what comes for them waits (port-splice). */
  portsSpliced(endpoint: ThreadEndpoint, pairs: unknown): void {
    this.ports.hold(endpoint, pairs);
  }

  /** What came for a spliced relay (src/runtime/port-routes.ts, passOn), or waited for a join: on to the far end's node. */
  private passOn(steps: ReadonlyArray<PortOnward<PortMessage>>, site: string | null): void {
    for (const { fromNode, toNode, id, delivery } of steps) {
      if (delivery.kind === 'close') {
        this.send(toNode, { type: 'rtPortClose', id });
        continue;
      }
      const { message } = delivery;
      let ports = message.ports;
      // Ports inside it pass through here; when both far ends are on one node they cannot (one id, two ends there): closed.
      if (ports !== undefined && !this.ports.throughAdded(ports, fromNode, toNode)) {
        this.portsRefused(ports, fromNode);
        ports = undefined;
      }
      this.send(toNode, {
        type: 'rtPortMessage', id, bytes: message.bytes, ...formOf(message), ...(ports === undefined ? {} : { ports }),
        info: this.release('MessagePort.postMessage', null, toNode), ...(this.withSites ? { site } : {}),
      });
    }
  }

  /** Something for this node's end of relay `id`: to its thread, or held until the thread opens it. */
  private toRelayEnd(id: string, delivery: PortDelivery<PortMessage>): void {
    const endpoint = this.ports.deliver(id, delivery);
    if (endpoint !== null) this.post(endpoint, id, delivery);
  }

  private post(endpoint: ThreadEndpoint, id: string, delivery: PortDelivery<PortMessage>): void {
    if (delivery.kind === 'close') {
      endpoint.sendEvent({ kind: 'port-close', id } satisfies ChannelEvent);
      return;
    }
    // By transfer when the bytes are a large frame's payload (no copy), as rtPost.
    const { message } = delivery;
    endpoint.sendEvent({ kind: 'port-message', id, bytes: message.bytes, ...formOf(message) } satisfies ChannelEvent, transferListOf(message.bytes), true);
  }

  /** A thread of this node opened its first BroadcastChannel named `name`: messages from other nodes reach it from now on. */
  broadcastOpened(endpoint: ThreadEndpoint, name: string): void {
    let threads = this.broadcastOpen.get(name);
    if (threads === undefined) {
      if (this.broadcastOpen.size >= broadcastChannelNameCountMax) {
        throw new DsmError('DSM_ERR_BROADCAST_CHANNELS', `this node has BroadcastChannels of ${this.broadcastOpen.size} different names open, its limit (broadcastChannelNameCountMax): close channels the program no longer uses`);
      }
      threads = new Set();
      this.broadcastOpen.set(name, threads);
    }
    threads.add(endpoint);
  }

  /** A thread closed its last BroadcastChannel named `name` (or ended). */
  broadcastClosed(endpoint: ThreadEndpoint, name: string): void {
    const threads = this.broadcastOpen.get(name);
    if (threads === undefined || !threads.delete(endpoint)) return;
    if (threads.size === 0) this.broadcastOpen.delete(name);
  }

  /** Remote workers of this node's threads not yet ended. */
  get inFlight(): number {
    return this.remote.size;
  }

  /** Serves an admitted request of an app thread (answers nothing itself: each is a post, or a call answered null). */
  serve(endpoint: ThreadEndpoint, request: WorkerRequest): null {
    const { bounds } = this.options;
    // A message post the thread did not wait for: counted served (its thread may post another: flow control).
    if ((request.op === 'worker-post' || request.op === 'parent-post' || request.op === 'bc-post' || request.op === 'port-post') && request.posted === true) endpoint.postServed(request.units ?? 1);
    switch (request.op) {
      case 'worker-spawn': {
        if (hopsOn) hop('m:worker-spawn');
        const spawnId = `${this.options.node.nodeId}:${this.spawnCounter++}`;
        this.remote.set(spawnId, { endpoint, handleId: request.handleId, nodeId: request.nodeId, threadIdSeen: request.threadIdSeen });
        this.ports.sent(endpoint, request.ports, request.nodeId);
        this.send(request.nodeId, {
          type: 'rtSpawn', spawnId, threadIdSeen: request.threadIdSeen, entry: request.entry, evalCode: request.evalCode,
          workerData: request.workerData, ...portsOf(request), options: request.options, info: this.release('new Worker', request, request.nodeId),
        });
        return null;
      }
      case 'worker-post': {
        if (hopsOn) hop('m:worker-post');
        const target = this.findRemote(endpoint, request.handleId);
        if (target !== null) {
          if (this.batches(request)) {
            this.postLater(target.nodeId, { to: 0, key: target.spawnId, bytes: request.bytes, ...formOf(request) });
            return null;
          }
          this.ports.sent(endpoint, request.ports, target.nodeId);
          this.send(target.nodeId, {
            type: 'rtPost', spawnId: target.spawnId, bytes: request.bytes, ...formOf(request), ...portsOf(request), info: this.release('worker.postMessage', request, target.nodeId),
            ...(this.withSites ? { site: siteOf(request) } : {}),
          });
        } else {
          this.dropped(request);
        }
        return null;
      }
      case 'parent-post': {
        const spawnId = this.hostedEndpoints.get(endpoint);
        const entry = spawnId === undefined ? undefined : this.hosted.get(spawnId);
        if (spawnId !== undefined && entry !== undefined) {
          if (this.batches(request)) {
            this.postLater(entry.parentNode, { to: 1, key: spawnId, bytes: request.bytes, ...formOf(request) });
            return null;
          }
          this.ports.sent(endpoint, request.ports, entry.parentNode);
          this.send(entry.parentNode, {
            type: 'rtEvent', spawnId, event: 'message', bytes: request.bytes, ...formOf(request), ...portsOf(request), info: this.release('parentPort.postMessage', request, entry.parentNode),
            ...(this.withSites ? { site: siteOf(request) } : {}),
          });
        } else {
          this.dropped(request);
        }
        return null;
      }
      case 'thread-post': {
        this.postToThread(endpoint, request);
        return null;
      }
      case 'worker-query': {
        const target = this.findRemote(endpoint, request.handleId);
        if (target === null) {
          endpoint.sendEvent({ kind: 'worker-query-done', id: request.id, answer: notRunning } satisfies ChannelEvent);
          return null;
        }
        if (this.workerQueries.size >= threadPostsInFlightMax) {
          throw new DsmError('DSM_ERR_THREAD_POSTS', `this node's threads wait for ${this.workerQueries.size} answers from workers on other nodes (getHeapSnapshot, getHeapStatistics, cpuUsage), its limit (threadPostsInFlightMax): await them before asking more`);
        }
        const query = this.workerQueryCounter++;
        this.workerQueries.set(query, { endpoint, id: request.id });
        this.send(target.nodeId, { type: 'rtWorkerQuery', spawnId: target.spawnId, query, what: request.what, ...(request.args === undefined ? {} : { args: request.args }) });
        return null;
      }
      case 'thread-message-done': {
        const message = this.threadMessages.get(request.key);
        // Answered already: the thread ended (its answers went as "no listener"), or a bug.
        if (message === undefined || message.endpoint !== endpoint) return null;
        this.threadMessages.delete(request.key);
        this.threadPostDone(message.fromNode, message.id, request.result);
        return null;
      }
      case 'worker-terminate': {
        const target = this.findRemote(endpoint, request.handleId);
        if (target !== null) this.send(target.nodeId, { type: 'rtTerminate', spawnId: target.spawnId });
        return null;
      }
      case 'bc-post': {
        // To every other node: whether one has an instance of the channel
        // open can change at any moment (a thread there may open one and tell
        // this thread so through shared memory before the post), so each
        // receiver decides. Each send is a release to its node, as a postMessage is.
        for (let node = 0; node < this.options.node.nodeCount; node += 1) {
          if (node === this.options.node.nodeId) continue;
          if (this.batches(request)) {
            this.postLater(node, { to: 3, key: request.name, bytes: request.bytes, ...formOf(request) });
            continue;
          }
          this.send(node, {
            type: 'rtBroadcast', name: request.name, bytes: request.bytes, ...formOf(request), info: this.release('BroadcastChannel.postMessage', request, node),
            ...(this.withSites ? { site: siteOf(request) } : {}),
          });
        }
        return null;
      }
      case 'port-post': {
        const farNode = this.ports.farNodeOf(request.id);
        // Its far end closed: the message goes nowhere, as a post to a closed port's twin.
        if (farNode === null) {
          this.dropped(request);
          return null;
        }
        if (this.batches(request)) {
          this.postLater(farNode, { to: 2, key: request.id, bytes: request.bytes, ...formOf(request) });
          return null;
        }
        this.ports.sent(endpoint, request.ports, farNode);
        this.send(farNode, {
          type: 'rtPortMessage', id: request.id, bytes: request.bytes, ...formOf(request), ...portsOf(request), info: this.release('MessagePort.postMessage', request, farNode),
          ...(this.withSites ? { site: siteOf(request) } : {}),
        });
        return null;
      }
      case 'port-close': {
        const farNode = this.ports.closedHere(request.id);
        if (farNode !== null) this.send(farNode, { type: 'rtPortClose', id: request.id });
        return null;
      }
      case 'port-join': {
        this.passOn(this.ports.join(endpoint, request.pairs), null);
        return null;
      }
    }
  }

  onMessage(from: number, received: WorkerLaneMessage): void {
    const { bounds } = this.options;
    // A part of a message larger than a frame: held until the message itself comes (message-parts.ts).
    if (received.type === 'rtPart') { this.joiner.addPart(from, received); return; }
    const message = this.joiner.join(from, received);
    // Messages to threads gather (ThreadEndpoint.sendEvent); what else comes sends those before it first.
    const isPost = message.type === 'rtPosts' || message.type === 'rtPost' || message.type === 'rtPortMessage' || message.type === 'rtBroadcast' || (message.type === 'rtEvent' && message.event === 'message');
    if (!isPost) flushPendingEvents();
    switch (message.type) {
      case 'rtSpawn': {
        if (hopsOn) hop('m:rtSpawn received');
        // A warm thread if one is ready and the worker's options are the defaults it was made with.
        const fits = warmFits(message.options);
        const warm = fits ? this.takeWarmThread() : null;
        if (fits && warm === null && this.warmEnabled) this.warmRefill = true;
        if (this.withSites) {
          // Race mode: the acquire is recorded before the thread starts (threadStarted).
          bounds.acquire('worker start', null, from, message.info);
          this.host(from, message, warm, null);
          warm?.gate.open(true);
          return;
        }
        // The thread is created first (or is warm already), so its bootstrap
        // (Node's worker realm, dsm's modules: hundreds of ms on a loaded
        // machine) overlaps the acquire of the parent's writes (a Jacobi
        // start: 4,096 pages); it waits at its start gate until the acquire is
        // done. The acquire runs even if the thread could not be created.
        const gate = warm?.gate ?? new StartGate();
        try {
          this.host(from, message, warm, gate);
        } finally {
          let acquired = false;
          try {
            this.options.beforeStartAcquire?.();
            bounds.acquire('worker start', null, from, message.info);
            acquired = true;
          } finally {
            gate.open(acquired);
            if (hopsOn) hop('m:start gate opened');
          }
        }
        return;
      }
      case 'rtPost': {
        bounds.acquire('message received from worker.postMessage', message.site ?? null, from, message.info);
        const hosted = this.hosted.get(message.spawnId);
        if (hosted === undefined) {
          this.portsRefused(message.ports, from);
          this.dropped(message);
          return;
        }
        this.ports.received(hosted.endpoint, message.ports, from);
        // By transfer when the bytes are a large frame's payload (no copy; src/channel/clone.ts).
        this.handTo(hosted.endpoint, { kind: 'parent-message', bytes: message.bytes, ...formOf(message) } satisfies ChannelEvent, transferListOf(message.bytes), true);
        return;
      }
      case 'rtPortMessage': {
        bounds.acquire('message received from MessagePort.postMessage', message.site ?? null, from, message.info);
        this.portMessageArrived(from, message.id, message, message.site ?? null);
        return;
      }
      case 'rtPortClose': {
        if (this.ports.spliced(message.id)) {
          this.passOn(this.ports.passOn(message.id, from, { kind: 'close' }), null);
          return;
        }
        this.toRelayEnd(message.id, { kind: 'close' });
        return;
      }
      case 'rtPosts': {
        // One acquire (the sender released once, after the last), then each post as its own message type would be.
        bounds.acquire('message received from postMessage', null, from, message.info);
        for (const post of message.posts) this.receivePost(post, from);
        return;
      }
      case 'rtTerminate': {
        const hosted = this.hosted.get(message.spawnId);
        if (hosted === undefined) return;
        if (!hosted.onlineSent && hosted.gate !== null && !hosted.gate.programStarted) hosted.terminatedEarly = true;
        void terminateAppThread(hosted.worker, () => hosted.worker.terminate());
        return;
      }
      case 'rtBroadcast': {
        // Acquired even when no thread here listens: a later instance's reads must see what the post released.
        bounds.acquire('message received from BroadcastChannel.postMessage', message.site ?? null, from, message.info);
        this.broadcastArrived(message.name, message);
        return;
      }
      case 'rtExitFence': {
        this.answerFence(message.id, message.to);
        return;
      }
      case 'rtThreadWhere': {
        checkThreadId(message.thread, from);
        this.send(from, { type: 'rtThreadAt', thread: message.thread, node: this.threadRunsOn(message.thread) });
        return;
      }
      case 'rtThreadAt': {
        checkThreadId(message.thread, from);
        if (!Number.isSafeInteger(message.node) || message.node < -1 || message.node >= this.options.node.nodeCount) {
          throw new DsmError('DSM_ERR_FRAME', `node ${from} says thread ${message.thread} runs on node ${String(message.node)}, which is no node of this cluster`);
        }
        this.threadFound(message.thread, message.node);
        return;
      }
      case 'rtThreadPost': {
        bounds.acquire('message received from postMessageToThread', message.site ?? null, from, message.info);
        checkThreadId(message.thread, from);
        checkThreadId(message.source, from);
        if (!Number.isSafeInteger(message.id)) throw new DsmError('DSM_ERR_FRAME', `node ${from} sent a postMessageToThread with ${String(message.id)} for its key`);
        this.threadPostArrived(from, message);
        return;
      }
      case 'rtWorkerQuery': {
        if (!workerQueries.includes(message.what as WorkerQuery) || !Number.isSafeInteger(message.query) || (message.args !== undefined && typeof message.args !== 'string')) {
          throw new DsmError('DSM_ERR_FRAME', `node ${from} asked a worker here '${String(message.what)}', which dsm does not ask`);
        }
        void this.answerWorkerQuery(from, message.spawnId, message.what as WorkerQuery, message.args).then((answer) => {
          const { query } = message;
          this.options.admit(() => this.send(from, answer.ok ? { type: 'rtWorkerQueryDone', query, ...answer } : { type: 'rtWorkerQueryDone', query, ok: false, code: answer.code, message: answer.message }));
        });
        return;
      }
      case 'rtWorkerQueryDone': {
        const query = this.workerQueries.get(message.query);
        // Its thread ended meanwhile: nobody waits.
        if (query === undefined) return;
        this.workerQueries.delete(message.query);
        const answer: WorkerQueryAnswer = message.ok
          ? { ok: true, ...(message.value === undefined ? {} : { value: message.value }), ...(message.bytes === undefined ? {} : { bytes: message.bytes }) }
          : { ok: false, code: String(message.code), message: String(message.message) };
        query.endpoint.sendEvent({ kind: 'worker-query-done', id: query.id, answer } satisfies ChannelEvent, message.bytes === undefined ? [] : transferListOf(message.bytes));
        return;
      }
      case 'rtThreadPostDone': {
        bounds.acquire('postMessageToThread answered', null, from, message.info);
        if (!Object.values(threadPostResults).includes(message.result as 0)) {
          throw new DsmError('DSM_ERR_FRAME', `node ${from} answered a postMessageToThread with ${String(message.result)}, no outcome dsm knows`);
        }
        this.answerPoster(message.id, message.result);
        return;
      }
      case 'rtExitFenced': {
        this.fenced(message.id);
        return;
      }
      case 'rtEvent': {
        if (message.fence !== undefined) {
          assert(message.event === 'exit', 'only an exit waits for its fence');
          const { fence, ...event } = message;
          // Its intervals now: what node `from` sends next names only the ones this message did not
          // (Intervals.infoFor), and may be delivered first (a race run's CI, session 37).
          bounds.learn(from, message.info);
          this.awaitFence(fence, () => this.onMessage(from, event));
          return;
        }
        if (hopsOn) hop(`m:rtEvent ${message.event}`);
        bounds.acquire(message.event === 'message' ? 'message received from parentPort.postMessage' : `worker '${message.event}' event`, message.site ?? null, from, message.info);
        const entry = this.remote.get(message.spawnId);
        if (entry === undefined) {
          this.portsRefused(message.ports, from);
          this.dropped(message);
          return;
        }
        if (message.event === 'message') this.ports.received(entry.endpoint, message.ports, from);
        let event: ChannelEvent;
        switch (message.event) {
          case 'online':
            event = { kind: 'worker-online', handleId: entry.handleId, threadId: message.threadId ?? -1, ...(message.limits === undefined ? {} : { resourceLimits: message.limits }) };
            break;
          case 'message': event = { kind: 'worker-message', handleId: entry.handleId, bytes: message.bytes!, ...formOf(message) }; break;
          case 'error': event = { kind: 'worker-error', handleId: entry.handleId, bytes: message.bytes! }; break;
          case 'exit':
            event = { kind: 'worker-exit', handleId: entry.handleId, exitCode: message.code ?? 1 };
            this.remote.delete(message.spawnId);
            break;
        }
        this.handTo(entry.endpoint, event, 'bytes' in event ? transferListOf(event.bytes) : [], event.kind === 'worker-message');
        if (hopsOn) hop('m:event posted');
        if (message.event === 'exit') this.childExited(entry.endpoint.threadIdSeen);
        return;
      }
    }
  }

  /**
   * Sends on this lane. A backed-up link ('queued') needs nothing: flow
   * control holds new work until it drains. A lost node ('lost') ends the run
   * (the cluster's failure path says so); a worker spawned there never
   * answers, so its record goes.
   */
  private send(toNode: number, message: WorkerLaneMessage): void {
    // Posts served before it go first.
    this.flushPosts();
    this.sendNow(toNode, message);
  }

  private sendNow(toNode: number, whole: WorkerLaneMessage): void {
    // A message larger than a frame: its leading parts go first, back to back (message-parts.ts).
    const { parts, last: message } = cutMessage(whole);
    for (const part of parts) {
      if (this.options.network.send(toNode, part) === 'lost') break;
    }
    if (this.options.network.send(toNode, message) !== 'lost') return;
    if (message.type === 'rtSpawn') {
      const entry = this.remote.get(message.spawnId);
      this.remote.delete(message.spawnId);
      if (entry !== undefined) this.childExited(entry.endpoint.threadIdSeen);
    }
  }

  /**
   * A release for a message to `toNode` about to be sent: the posts held
   * back go first (their release before this one: a release sends the
   * intervals the receiver has not had yet, so releases must reach it in the
   * order they were made).
   */
  private release(op: string, request: object | null, toNode: number): ConsistencyInfo {
    this.flushPosts();
    return this.options.bounds.release(op, request, toNode);
  }

  /** Whether a served post goes in an rtPosts batch: one a thread did not wait for, with no ports, not in race mode. */
  private batches(request: { posted?: boolean; ports?: string[] }): boolean {
    return request.posted === true && request.ports === undefined && !this.withSites;
  }

  private postLater(toNode: number, post: LanePost): void {
    let posts = this.outgoing.get(toNode);
    if (posts === undefined) {
      posts = [];
      this.outgoing.set(toNode, posts);
    }
    posts.push(post);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushPosts);
    }
    if (posts.length >= lanePostBatchMax) this.sendPosts(toNode, posts);
  }

  /** Sends the posts served and not yet sent (see `outgoing`). */
  readonly flushPosts = (): void => {
    this.flushScheduled = false;
    if (this.outgoing.size === 0) return;
    for (const [toNode, posts] of this.outgoing) this.sendPosts(toNode, posts);
  };

  private sendPosts(toNode: number, posts: LanePost[]): void {
    this.outgoing.delete(toNode);
    const { bounds } = this.options;
    if (posts.length > 1) {
      this.sendNow(toNode, { type: 'rtPosts', posts, info: bounds.release('postMessage', null, toNode) });
      return;
    }
    // One alone goes as before (the same frame as a post with ports).
    const post = posts[0]!;
    const { bytes } = post;
    switch (post.to) {
      case 0: this.sendNow(toNode, { type: 'rtPost', spawnId: post.key, bytes, ...formOf(post), info: bounds.release('worker.postMessage', null, toNode) }); break;
      case 1: this.sendNow(toNode, { type: 'rtEvent', spawnId: post.key, event: 'message', bytes, ...formOf(post), info: bounds.release('parentPort.postMessage', null, toNode) }); break;
      case 2: this.sendNow(toNode, { type: 'rtPortMessage', id: post.key, bytes, ...formOf(post), info: bounds.release('MessagePort.postMessage', null, toNode) }); break;
      case 3: this.sendNow(toNode, { type: 'rtBroadcast', name: post.key, bytes, ...formOf(post), info: bounds.release('BroadcastChannel.postMessage', null, toNode) }); break;
    }
  }

  /** One post of an rtPosts message (acquired), delivered as its own message type is. */
  private receivePost(post: LanePost, from: number): void {
    const { bytes } = post;
    switch (post.to) {
      case 0: {
        const hosted = this.hosted.get(post.key);
        if (hosted !== undefined) this.handTo(hosted.endpoint, { kind: 'parent-message', bytes, ...formOf(post) } satisfies ChannelEvent, transferListOf(bytes), true);
        else this.dropped(post);
        return;
      }
      case 1: {
        const entry = this.remote.get(post.key);
        if (entry !== undefined) this.handTo(entry.endpoint, { kind: 'worker-message', handleId: entry.handleId, bytes, ...formOf(post) } satisfies ChannelEvent, transferListOf(bytes), true);
        else this.dropped(post);
        return;
      }
      case 2: this.portMessageArrived(from, post.key, post, null); return;
      case 3: this.broadcastArrived(post.key, post); return;
    }
  }

  /** A message (acquired) for relay `id`: on through a splice here, or to this node's end of the relay. */
  private portMessageArrived(from: number, id: string, message: { bytes: Uint8Array; form?: number; ports?: string[] }, site: string | null): void {
    if (this.ports.spliced(id)) {
      // A relay spliced here (its thread ended holding both ends): on to the far end.
      this.passOn(this.ports.passOn(id, from, { kind: 'message', message: { bytes: message.bytes, ...formOf(message), ...portsOf(message) } }), site);
      return;
    }
    const endpoint = this.ports.endpointOf(id);
    // Closed here meanwhile: dropped, as a message to a closed port (its ports close).
    if (endpoint === null) {
      this.portsRefused(message.ports, from);
      this.dropped(message);
      return;
    }
    this.ports.received(endpoint, message.ports, from);
    // Pending with the thread that holds (or will open) the relay end, whether it goes now or when the end is opened.
    this.expectHolds(endpoint, message);
    this.toRelayEnd(id, { kind: 'message', message: { bytes: message.bytes, ...formOf(message) } });
  }

  /** A BroadcastChannel message (acquired) to each thread here that listens on `name`. */
  private broadcastArrived(name: string, message: { bytes: Uint8Array; form?: number }): void {
    const threads = this.broadcastOpen.get(name);
    if (threads === undefined) {
      this.dropped(message);
      return;
    }
    // This node's weight of each buffer is split among the threads (heap-service expectSharedHolds).
    if (this.options.holds !== undefined && message.form === undefined) {
      this.options.holds.expectSharedHolds([...threads], heldRangesOf(message.bytes, 'another node'));
    }
    for (const endpoint of threads) {
      // Each thread clones its own copy (the bytes are shared by every thread it goes to: no transfer).
      endpoint.sendEvent({ kind: 'bc-message', name, bytes: message.bytes, ...formOf(message) } satisfies ChannelEvent, [], true);
    }
  }

  /**
   * Asks Node's Worker of hosted worker `spawnId` (its parent on node `from` asked): its answer, or the error Node
   * gave (a worker no longer here: Node's ERR_WORKER_NOT_RUNNING, which the asking thread makes its own).
   */
  private async answerWorkerQuery(from: number, spawnId: string, what: WorkerQuery, args: string | undefined): Promise<WorkerQueryAnswer> {
    const hosted = this.hosted.get(spawnId);
    if (hosted === undefined || hosted.parentNode !== from) return notRunning;
    if (what === 'stopProfile') {
      const key = Number(args);
      const profile = this.profiles.get(key);
      if (profile === undefined || profile.spawnId !== spawnId) return notRunning;
      this.profiles.delete(key);
      try {
        return { ok: true, value: JSON.stringify(await profile.handle.stop()) };
      } catch (error) {
        return failed(error);
      }
    }
    const method = (hosted.worker as unknown as Record<string, ((...a: unknown[]) => Promise<unknown>) | undefined>)[what];
    if (typeof method !== 'function') return { ok: false, code: 'DSM_ERR_INVALID_OPTION', message: `${what} is not available in Node ${process.version} on node ${this.options.node.nodeId}` };
    try {
      const result = await method.apply(hosted.worker, args === undefined ? [] : [JSON.parse(args)]);
      if (what === 'startCpuProfile' || what === 'startHeapProfile') {
        // Kept here until its parent stops it, at most threadPostsInFlightMax of them (each a profile in the worker).
        if (this.profiles.size >= threadPostsInFlightMax) {
          await (result as { stop(): Promise<string> }).stop();
          return { ok: false, code: 'DSM_ERR_THREAD_POSTS', message: `workers on node ${this.options.node.nodeId} run ${this.profiles.size} profiles their parents have not stopped, its limit (threadPostsInFlightMax)` };
        }
        const key = this.profileCounter++;
        this.profiles.set(key, { spawnId, handle: result as { stop(): Promise<string> } });
        return { ok: true, value: JSON.stringify(key) };
      }
      if (what !== 'getHeapSnapshot') return { ok: true, value: JSON.stringify(result) };
      const chunks: Buffer[] = [];
      for await (const chunk of result as AsyncIterable<Buffer>) chunks.push(chunk);
      return { ok: true, bytes: new Uint8Array(Buffer.concat(chunks)) };
    } catch (error) {
      return failed(error);
    }
  }

  /** A thread here posts to a thread of another node, or of this one that started since it looked (see the header). */
  private postToThread(endpoint: ThreadEndpoint, request: ThreadPostRequest): void {
    if (this.threadPosts.size >= threadPostsInFlightMax) {
      this.dropped(request);
      throw new DsmError('DSM_ERR_THREAD_POSTS', `this node's threads wait for the answers of ${this.threadPosts.size} postMessageToThread calls to threads on other nodes, its limit (threadPostsInFlightMax): await them before posting more`);
    }
    const key = this.threadPostCounter++;
    this.threadPosts.set(key, { endpoint, id: request.id });
    const thread = request.threadId;
    const maker = thread === 0 ? 0 : Math.floor(thread / threadIdNodeStride);
    const { nodeId, nodeCount } = this.options.node;
    const node = maker >= nodeCount ? -1 : maker === nodeId ? this.threadRunsOn(thread) : this.threadsAt.get(thread);
    if (node !== undefined) {
      this.sendThreadPost(node, key, endpoint, request);
      return;
    }
    let waiting = this.threadWhereWaiting.get(thread);
    if (waiting === undefined) {
      waiting = [];
      this.threadWhereWaiting.set(thread, waiting);
      this.send(maker, { type: 'rtThreadWhere', thread });
    }
    waiting.push({ key, endpoint, request });
  }

  /** The node thread `thread` (made here, or running here) runs on, or -1 if this node knows of none. */
  private threadRunsOn(thread: number): number {
    if (this.options.channel.endpointOf(thread) !== null) return this.options.node.nodeId;
    for (const entry of this.remote.values()) if (entry.threadIdSeen === thread && entry.ended !== true) return entry.nodeId;
    return -1;
  }

  /** The maker of thread `thread` said where it runs (-1: nowhere): the posts waiting for that go. */
  private threadFound(thread: number, node: number): void {
    // A thread never moves and an id is never reused; one not found may start later, so that is asked again.
    // A cache, bounded: past threadPostsInFlightMax threads it starts over (the makers are asked again).
    if (this.threadsAt.size >= threadPostsInFlightMax) this.threadsAt.clear();
    if (node >= 0) this.threadsAt.set(thread, node);
    const waiting = this.threadWhereWaiting.get(thread) ?? [];
    this.threadWhereWaiting.delete(thread);
    for (const { key, endpoint, request } of waiting) {
      if (this.threadPosts.has(key)) this.sendThreadPost(node, key, endpoint, request);
      else this.dropped(request);
    }
  }

  private sendThreadPost(node: number, key: number, endpoint: ThreadEndpoint, request: ThreadPostRequest): void {
    if (node === -1) {
      // No such thread (anywhere its maker knows of): as Node answers a post to an id no thread has.
      this.dropped(request);
      this.threadPostDone(this.options.node.nodeId, key, threadPostResults.noListener);
      return;
    }
    const message = {
      type: 'rtThreadPost', thread: request.threadId, source: endpoint.threadIdSeen, id: key, bytes: request.bytes, ...formOf(request), ...portsOf(request),
    } as const;
    if (node === this.options.node.nodeId) {
      // Started here since its poster looked: handed over with no crossing (one node's memory).
      this.threadPostArrived(node, message);
      return;
    }
    this.ports.sent(endpoint, request.ports, node);
    this.send(node, { ...message, info: this.release('postMessageToThread', request, node), ...(this.withSites ? { site: siteOf(request) } : {}) });
  }

  /** A post (acquired) for thread `message.thread`, which its poster's node found here: to it, or answered "no listener". */
  private threadPostArrived(from: number, message: Omit<Extract<WorkerLaneMessage, { type: 'rtThreadPost' }>, 'info' | 'site'>): void {
    const endpoint = this.options.channel.endpointOf(message.thread);
    if (endpoint === null) {
      this.portsRefused(message.ports, from);
      this.dropped(message);
      this.threadPostDone(from, message.id, threadPostResults.noListener);
      return;
    }
    if (this.threadMessages.size >= threadPostsInFlightMax) {
      throw new DsmError('DSM_ERR_THREAD_POSTS', `${this.threadMessages.size} postMessageToThread messages wait for this node's threads to read them, its limit (threadPostsInFlightMax): the threads they go to must return to their event loops`);
    }
    if (from !== this.options.node.nodeId) this.ports.received(endpoint, message.ports, from);
    const key = this.threadPostCounter++;
    this.threadMessages.set(key, { endpoint, fromNode: from, id: message.id });
    this.handTo(endpoint, { kind: 'thread-message', key, source: message.source, bytes: message.bytes, ...formOf(message) } satisfies ChannelEvent, transferListOf(message.bytes), true);
  }

  /** What a post's listeners did, to the poster's node (with a release: they ran before its promise settles). */
  private threadPostDone(toNode: number, id: number, result: number): void {
    if (toNode === this.options.node.nodeId) {
      this.answerPoster(id, result);
      return;
    }
    this.send(toNode, { type: 'rtThreadPostDone', id, result, info: this.release('postMessageToThread answer', null, toNode) });
  }

  /** This node's post `key` is answered: to its thread (none waits if the poster ended meanwhile). */
  private answerPoster(key: number, result: number): void {
    const post = this.threadPosts.get(key);
    if (post === undefined) return;
    this.threadPosts.delete(key);
    post.endpoint.sendEvent({ kind: 'thread-post-done', id: post.id, result } satisfies ChannelEvent);
  }

  /** A thread's end: its posts want no answer; the messages it never read are answered "no listener" (admitted: they release). */
  private threadPostsEnded(endpoint: ThreadEndpoint): void {
    for (const [key, post] of this.threadPosts) if (post.endpoint === endpoint) this.threadPosts.delete(key);
    const unread: Array<{ fromNode: number; id: number }> = [];
    for (const [key, message] of this.threadMessages) {
      if (message.endpoint !== endpoint) continue;
      this.threadMessages.delete(key);
      unread.push(message);
    }
    if (unread.length > 0) this.options.admit(() => { for (const { fromNode, id } of unread) this.threadPostDone(fromNode, id, threadPostResults.noListener); });
  }

  /**
   * Hands `event` to `endpoint`'s thread. The dsm buffers its clone carries
   * are that thread's pending holds until it reads it (heap-service "Pending holds").
   */
  private handTo(endpoint: ThreadEndpoint, event: ChannelEvent, transfer: ArrayBuffer[], batch: boolean): void {
    if ('bytes' in event) this.expectHolds(endpoint, event as { bytes: Uint8Array; form?: number });
    endpoint.sendEvent(event, transfer, batch);
  }

  private expectHolds(endpoint: ThreadEndpoint, message: { bytes: Uint8Array; form?: number }): void {
    if (this.options.holds === undefined || message.form !== undefined) return;
    this.options.holds.expectHolds(endpoint, heldRangesOf(message.bytes, 'another node'));
  }

  /** A message no thread here will read (nobody to take it, as under Node): the weights of the buffers it carries go back. */
  private dropped(message: { bytes?: Uint8Array; form?: number }): void {
    if (this.options.holds === undefined || message.form !== undefined || message.bytes === undefined) return;
    this.options.holds.abandonHolds(heldRangesOf(message.bytes, 'a thread or node'));
  }

  private findRemote(endpoint: ThreadEndpoint, handleId: number): { spawnId: string; nodeId: number } | null {
    for (const [spawnId, entry] of this.remote) {
      if (entry.endpoint === endpoint && entry.handleId === handleId) return { spawnId, nodeId: entry.nodeId };
    }
    return null;
  }

  /**
   * Starts, on this node, a worker whose parent thread runs on node
   * `parentNode`: hands its start to `warm`, or creates its thread (waiting at
   * `gate` if not null).
   */
  private host(parentNode: number, spawn: Extract<WorkerLaneMessage, { type: 'rtSpawn' }>, warm: WarmThread | null, gate: StartGate | null): void {
    const { port1, port2 } = new MessageChannel();
    const endpoint = this.options.channel.attach(port1);
    this.hostedEndpoints.set(endpoint, spawn.spawnId);
    // workerData's relayed ports: the new thread opens them as it reads its workerData.
    this.ports.received(endpoint, spawn.ports, parentNode);
    const config = appThreadConfig(this.options.node, {
      role: 'worker', entry: spawn.entry, evalCode: spawn.evalCode, argv: spawn.options.argv,
      threadIdSeen: spawn.threadIdSeen, remoteWorkerData: spawn.workerData,
      ...(spawn.options.environmentData === undefined ? {} : { remoteEnvironmentData: spawn.options.environmentData }),
    });
    let worker: Worker;
    if (warm !== null) {
      handWarmStart(warm, { config, port: port2 });
      worker = warm.worker;
      if (hopsOn) hop('m:warm thread taken');
    } else {
      if (hopsOn) hop('m:creating thread');
      const workerData = appThreadWorkerData(config, port2, gate ?? undefined);
      worker = new Worker(appEntryUrl(), {
        workerData,
        transferList: [port2],
        ...(spawn.options.env === undefined ? {} : { env: spawn.options.env }),
        ...(spawn.options.name === undefined ? {} : { name: spawn.options.name }),
        ...(spawn.options.resourceLimits === undefined ? {} : { resourceLimits: spawn.options.resourceLimits }),
        ...(spawn.options.execArgv === undefined ? {} : { execArgv: spawn.options.execArgv }),
      });
      trackBoot(worker, workerData);
      if (hopsOn) hop('m:thread created');
    }
    const hosted: HostedWorker = { worker, endpoint, parentNode, gate: gate ?? warm?.gate ?? null, terminatedEarly: false, onlineSent: false };
    // Its workerData's buffers (and its environment data's) are the new thread's pending holds until it reads them.
    this.expectHolds(endpoint, { bytes: spawn.workerData });
    if (spawn.options.environmentData !== undefined) this.expectHolds(endpoint, { bytes: spawn.options.environmentData });
    this.hosted.set(spawn.spawnId, hosted);
    this.options.threadStarted?.(spawn.threadIdSeen);
    // Each event is a release (worker exit after writing much, say): admitted
    // in order with the app threads' requests, within the link limit.
    const event = (kind: 'online' | 'error' | 'exit', extra: { bytes?: Uint8Array; code?: number; threadId?: number; limits?: Record<string, number> }) =>
      this.options.admit(() => {
        if (kind === 'online') hosted.onlineSent = true;
        // An exit: after the fences of its notifies (see fencesIn).
        const fence = kind === 'exit' ? this.sendExitFences(parentNode) : null;
        this.send(parentNode, {
          type: 'rtEvent', spawnId: spawn.spawnId, event: kind, ...extra,
          info: this.release(kind === 'exit' ? 'worker exit' : `worker ${kind}`, null, parentNode),
          ...(fence === null ? {} : { fence }),
        });
      });
    if (warm?.online === true) {
      // Node's 'online' came while it was warm: the worker's comes now, after
      // this turn's acquire (as a new thread's would), before any of its messages.
      queueMicrotask(() => event('online', { threadId: spawn.threadIdSeen, limits: { ...worker.resourceLimits } }));
    } else {
      worker.once('online', () => event('online', { threadId: spawn.threadIdSeen, limits: { ...worker.resourceLimits } }));
    }
    worker.on('error', (error: unknown) => event('error', { bytes: serializeThrown(error, noRanges, (message, code) => this.moduleNotFoundMessage(message, code)) }));
    worker.on('exit', (code) => {
      if (hopsOn) hop('m:thread exit');
      this.options.threadExited?.(endpoint);
      this.options.threadEnded?.(spawn.threadIdSeen);
      // Admitted: its posts that threadExited served may wait for admission (a full link), and they find it.
      this.options.admit(() => {
        this.hosted.delete(spawn.spawnId);
        this.hostedEndpoints.delete(endpoint);
        for (const [key, profile] of this.profiles) if (profile.spawnId === spawn.spawnId) this.profiles.delete(key);
      });
      // Its own remote workers stop first, as under Node (a worker's 'exit' comes after its workers have stopped).
      this.parentEnded(spawn.threadIdSeen, () => event('exit', { code: hosted.terminatedEarly && code === 1 ? 0 : code }));
      // Workers come here one after another: keep a thread warm for the next one.
      if (this.warmRefill) this.makeWarmThread();
    });
  }

  /** Starts a warm thread if warm threads are on and fewer than warmThreadCountMax wait. */
  private makeWarmThread(prestarted: PrestartedWarmThread | null = null): void {
    if (!this.warmEnabled || this.warm.length >= warmThreadCountMax) {
      prestarted?.discard();
      return;
    }
    if (prestarted !== null) {
      prestarted.untrack();
      // It failed or ended before the node was made: another would too (cold starts from now on).
      if (prestarted.ended) { this.warmEnabled = false; prestarted.handoff.close(); return; }
    }
    const { worker, handoff: port1, gate } = prestarted ?? startWarmThread((entry, options) => new Worker(entry, options));
    const thread: WarmThread = {
      worker, handoff: port1, gate, online: prestarted?.online ?? false, idleTimer: null,
      onOnline: () => { thread.online = true; },
      onEnd: () => {
        // It failed or ended before it was taken: another would too (cold starts from now on).
        const index = this.warm.indexOf(thread);
        if (index >= 0) this.warm.splice(index, 1);
        this.warmEnabled = false;
        port1.close();
      },
    };
    worker.on('online', thread.onOnline);
    worker.on('error', thread.onEnd);
    worker.on('exit', thread.onEnd);
    // Not taken soon: end it and return its memory (not a failure: warm threads stay on).
    thread.idleTimer = setTimeout(() => {
      if (this.detachWarmThread(thread)) {
        endUnusedWarmThread(thread);
        if (hopsOn) hop('m:warm thread ended idle');
      }
    }, warmThreadIdleMsMax);
    thread.idleTimer.unref();
    this.warm.push(thread);
    if (hopsOn) hop(prestarted === null ? 'm:warm thread made' : 'm:warm thread adopted');
  }

  /** A warm thread for a worker, no longer warm (its listeners gone, it keeps the process alive as a worker does), or null. */
  private takeWarmThread(): WarmThread | null {
    const thread = this.warm[0];
    if (thread === undefined || !this.detachWarmThread(thread)) return null;
    thread.worker.ref();
    return thread;
  }

  /** Takes `thread` out of the warm ones (its listeners and idle timer gone); false if it was not there. */
  private detachWarmThread(thread: WarmThread): boolean {
    const index = this.warm.indexOf(thread);
    if (index < 0) return false;
    this.warm.splice(index, 1);
    thread.worker.off('online', thread.onOnline);
    thread.worker.off('error', thread.onEnd);
    thread.worker.off('exit', thread.onEnd);
    if (thread.idleTimer !== null) clearTimeout(thread.idleTimer);
    return true;
  }

  /**
   * A worker's uncaught error, as parts: Node rebuilds a worker's error as an
   * object with Error's prototype but not a real Error, which V8's serializer
   * would flatten to {}.
   */
  /** A module not found here exists where the parent runs: say where, and what a multi-machine run needs. */
  private moduleNotFoundMessage(message: string, code: unknown): string {
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return message;
    const where = `on node ${this.options.node.nodeId} (${this.options.hostName})`;
    return `${message} ${where}: every node needs the program's files at the same path`;
  }
}

/** A thread id off the wire: a safe non-negative integer, else DSM_ERR_FRAME naming the sender. */
function checkThreadId(thread: unknown, from: number): void {
  if (typeof thread !== 'number' || !Number.isSafeInteger(thread) || thread < 0) {
    throw new DsmError('DSM_ERR_FRAME', `node ${from} named thread ${String(thread)} in a postMessageToThread, which is no thread id`);
  }
}

/** The answer for a worker that no longer runs (the asking thread rejects with Node's own ERR_WORKER_NOT_RUNNING). */
const notRunning: WorkerQueryAnswer = { ok: false, code: 'ERR_WORKER_NOT_RUNNING', message: 'Worker instance not running' };

/** What Node threw for a worker query, as an answer (its code, or ERR_WORKER_NOT_RUNNING when it has none). */
function failed(error: unknown): WorkerQueryAnswer {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return { ok: false, code: typeof code === 'string' ? code : 'ERR_WORKER_NOT_RUNNING', message: String(message) };
}
