// The one door between app threads and their node's manager.
//
// An app thread's synchronous calls that are small (sync operations, Atomics,
// allocation) go through its doorbell block (src/channel/doorbell.ts): binary
// fields in shared memory, the manager woken natively, the thread parked with
// Atomics.wait on the block until the manager writes the answer and
// notifies. What is rare or large is posted on the thread's MessagePort (as a
// PortMessage) and answered in the same block. Requests that need no answer
// are posted and forgotten. Both sides import this file and doorbell.ts, and
// nothing of each other.

import type { MessagePort } from 'node:worker_threads';
import type { ProgramSignal } from '../constants.js';

export type ThreadRole = 'main' | 'worker';

/** What an app thread is told when it starts (carried in workerData). */
export interface AppThreadConfig {
  role: ThreadRole;
  nodeId: number;
  nodeCount: number;
  regionBytes: number;
  /** Absolute path or file: URL of the user's module, or source text when `evalCode` is set. */
  entry: string;
  evalCode: boolean;
  argv: string[];
  /** Cluster-wide parallelism, reported by os.availableParallelism() inside the program. */
  parallelism: number;
  /** The user's workerData for a worker thread (structured-cloned by Node). */
  userWorkerData: unknown;
  /** Thread id the program sees (the main thread is 0, as under plain node). */
  threadIdSeen: number;
  /** The node's atomic line table (src/channel/atomic-lines.ts) when Atomics run by line ownership. */
  atomicLines?: SharedArrayBuffer;
  /** The node's lock token table (src/channel/lock-tokens.ts) when mutex tokens rest with app threads. */
  lockTokens?: SharedArrayBuffer;
  /** Set for a worker whose parent thread runs on another node: its workerData, cloned by dsm. */
  remoteWorkerData?: Uint8Array;
  /**
   * A local worker: its creator's environment data entries (structured-cloned
   * by Node; src/threads/environment-data.ts). Node copies them itself too,
   * but not into a warm thread, made before the program set them.
   */
  environmentEntries?: Array<[unknown, unknown]>;
  /** A worker whose parent thread runs on another node: the parent's environment data entries, cloned by dsm. */
  remoteEnvironmentData?: Uint8Array;
}

export type AtomicFunction =
  'load' | 'store' | 'add' | 'sub' | 'and' | 'or' | 'xor' | 'exchange' | 'compareExchange' | 'wait' | 'notify';

/** The signals a program's main thread may take itself (src/threads/signals.ts; programSignalNames). */
export type { ProgramSignal };

/**
 * In race mode (DSM_RACE=1) the client adds `site` (file:line:column of the
 * program's call, or null) to alloc, atomic, sync, worker-spawn, worker-post
 * and parent-post requests; the manager reads it as `(request as { site? }).site`.
 */
export type ChannelRequest =
  /** `reply` is the thread's doorbell block (doorbell.ts), where every answer to it is written. */
  // nativeThreadId: Node's own id of the thread (postMessageToThread's target and source, src/threads/post-to-thread.ts).
  | { op: 'hello'; reply: SharedArrayBuffer; threadIdSeen: number; nativeThreadId?: number }
  | { op: 'alloc'; byteLength: number }
  /**
   * Up to `count` blocks of `byteLength` bytes for the thread's allocation
   * cache (src/threads/setup.ts): answered with [offset, zero, offset, zero, …]
   * (zero 1: the thread zeroes the block before use), at least one, or an
   * AllocReplyWait. Never in the doorbell: rare, and its answer is a list.
   */
  | { op: 'alloc-batch'; byteLength: number; count: number }
  | { op: 'free'; offset: number }
  /**
   * A dsm buffer at `offset` is being sent to another node: answered with the
   * range token its descriptor carries (src/runtime/heap-service.ts, weighted
   * reference counting, issue 13). `given`: the thread made the buffer, and
   * gave the descriptor the owner's weight itself (rangeEscapeWeight, this
   * node): posted through the doorbell before the message, no answer; the
   * manager counts it outstanding. `applied` (set by the manager only, see
   * ChannelServer.applyGivenEscapes): counted already.
   */
  | { op: 'escape'; offset: number; given?: true; applied?: true }
  /**
   * As 'escape', for a BroadcastChannel message, which goes to every other
   * node with the same token: the weight given is the token's once a node.
   * Never in the doorbell (it has no binary form): it goes by postMessage.
   */
  | { op: 'escape-broadcast'; offset: number }
  /**
   * Posted by a thread that read a BroadcastChannel message with no instance
   * of its name open: it made none of its buffers, so the weights handed to it
   * ([offset, byteLength, token, …], heldRangesOf) go back.
   */
  | { op: 'holds-unread'; held: number[] }
  /** A buffer received from another node is about to be made here, with its descriptor's range token. */
  | { op: 'hold'; offset: number; byteLength: number; token: number }
  /**
   * Posted by the program's main thread when it gains its first or loses its
   * last listener for `signal` (src/threads/signals.ts): while it listens,
   * node 0's SIGINT or SIGTERM goes to it (a 'signal' event) instead of ending the run.
   */
  | { op: 'signal-listeners'; signal: ProgramSignal; listening: boolean }
  | { op: 'adopt'; port: MessagePort; threadIdSeen: number }
  /**
   * Posted by a worker's parent thread when its 'exit' comes (before the program sees it): the manager withdraws
   * that thread's parked requests now, ahead of anything the parent does next, rather than when the thread's
   * channel closes (asynchronously, possibly after them). With `call` (2+ nodes) it is a call, answered once that
   * thread's own workers on other nodes have stopped (terminated by its end, as under Node).
   */
  | { op: 'thread-exited'; threadIdSeen: number; call?: true }
  /** Which node a new worker runs on (the placement policy's choice). */
  | { op: 'place' }
  /**
   * Posted once by the program's main thread when its program first reads `process.stdin`: only then does the
   * manager pipe the process's stdin into it (src/runtime/program.ts), so that a program that never reads it ends
   * as under node with data waiting in a pipe, and one that reads fd 0 itself (fs.readFileSync(0)) gets it all.
   */
  | { op: 'stdin-wanted' }
  /** The node that is home to global page `page` now, as this node knows it (the public homeOf). */
  | { op: 'home-of'; page: number }
  /** The next worker thread id of this node (see threadIdNodeStride), in creation order. */
  | { op: 'thread-id' }
  /** Node's id of this node's thread the program knows as `threadIdSeen` (-1: none here), and the converse. */
  | { op: 'thread-native-id'; threadIdSeen: number }
  | { op: 'thread-seen-id'; nativeThreadId: number }
  | { op: 'worker-spawn'; handleId: number; nodeId: number; threadIdSeen: number; entry: string; evalCode: boolean; workerData: Uint8Array; options: RemoteWorkerOptions; ports?: string[] }
  /**
   * A message to a remote worker. `posted`: the thread went on at once (ChannelClient.postMessageRequest); else a
   * call, answered once the message is queued within the link limit (the poster is parked meanwhile): the first
   * of each postsInFlightMax, and any that carries MessagePorts. The same for parent-post, bc-post and port-post.
   * `units`: what a posted one counts against postsInFlightMax (portPostUnits when it went by port; else 1).
   */
  | { op: 'worker-post'; handleId: number; bytes: Uint8Array; form?: number; ports?: string[]; posted?: boolean; units?: number }
  /** A worker whose parent runs on another node posts to it (parentPort.postMessage); posted or a call, as worker-post. */
  | { op: 'parent-post'; bytes: Uint8Array; form?: number; ports?: string[]; posted?: boolean; units?: number }
  | { op: 'worker-terminate'; handleId: number }
  /**
   * postMessageToThread to a thread on another node (src/threads/post-to-thread.ts): a call, answered once the
   * message is on its way; the outcome comes as a 'thread-post-done' event with the thread's own `id`. The
   * receiving thread posts 'thread-message-done' with the `key` of its 'thread-message' event and what its
   * 'workerMessage' listeners did (threadPostResults).
   */
  | { op: 'thread-post'; threadId: number; id: number; bytes: Uint8Array; form?: number; ports?: string[] }
  | { op: 'thread-message-done'; key: number; result: number }
  /**
   * A question about a worker of this thread that runs on another node, asked of its Node Worker there
   * (src/threads/remote-worker.ts): a call, answered once sent; the answer comes as a 'worker-query-done' event
   * with the thread's `id`. `args`: the method's argument (JSON), if any.
   */
  | { op: 'worker-query'; handleId: number; id: number; what: WorkerQuery; args?: string }
  /**
   * BroadcastChannel across nodes (src/threads/broadcast-channel.ts): a thread
   * opened its first channel of `name` (a call, so that it is registered
   * before the thread goes on), closed its last (a post, never answered), or
   * posts to the channel's instances on other nodes (posted or a call, as worker-post).
   */
  | { op: 'bc-open'; name: string }
  | { op: 'bc-close'; name: string }
  | { op: 'bc-post'; name: string; bytes: Uint8Array; form?: number; posted?: boolean; units?: number }
  /**
   * Web Locks across nodes (src/threads/web-locks.ts, src/runtime/web-locks-service.ts), posts both: a request
   * (`id`: the thread's own; answered by a 'wl-grant' event) and the release of a granted one.
   */
  | { op: 'wl-request'; id: number; name: string; mode: 'exclusive' | 'shared'; ifAvailable: boolean; steal: boolean }
  | { op: 'wl-release'; id: number }
  /**
   * MessagePorts relayed across nodes (src/threads/port-relay.ts). `ports` of
   * a post: the relay ids of the ports it carries (this thread holds their
   * relay ends; their far ends will be where the message goes). 'port-open'
   * (a call): this thread made the port a received id names, and takes the
   * relay's messages from now on. 'port-post' (posted or a call, as worker-post): a
   * message to the relay's far end. 'port-close' (a post): this end closed.
   */
  | { op: 'port-open'; id: string }
  | { op: 'port-post'; id: string; bytes: Uint8Array; form?: number; ports?: string[]; posted?: boolean; units?: number }
  | { op: 'port-close'; id: string }
  /**
   * A thread ending with relay ends that are the two ends of one local channel (src/threads/port-relay.ts,
   * splice): 'port-splice' (a call) has the manager hold what comes for them; 'port-join' (a post, after the
   * thread forwarded what had reached it) routes each relay's far end to the other's from then on.
   */
  | { op: 'port-splice'; pairs: Array<[string, string]> }
  | { op: 'port-join'; pairs: Array<[string, string]> }
  /**
   * operands are raw unsigned element bits as decimal strings; timeoutMs -1 means none.
   * With `asyncId` (Atomics.waitAsync) the request is posted and the answer comes as an 'atomic-done' event.
   */
  /**
   * With `line` (Atomics by ownership, a line the node did not hold when the
   * thread looked): answered null once the node holds the line (the thread
   * runs the op natively), or with the op's result when the line layer shipped
   * the op to the line's directory (src/protocol/lines.ts). `workMs`: how
   * long the thread ran since its previous shipped op on the line returned.
   */
  | { op: 'atomic'; fn: AtomicFunction; address: number; width: number; operands: string[]; timeoutMs: number; asyncId?: number; line?: boolean; workMs?: number }
  /**
   * Atomics by ownership (src/threads/atomics.ts, src/channel/atomic-lines.ts), calls all:
   * 'pin' answers this thread's pin word in the node's line table; 'acquire'
   * answers once the node holds `line`; 'wait' (made with the thread's pin on
   * the line, which the manager clears once the engine has the wait) answers
   * 'ok' or 'timed-out'; 'waitAsync' answers at once and the outcome comes as
   * an 'atomic-done' event with `asyncId`; 'notify' answers the count woken
   * (`afterOp`: the thread's last Atomics op was the op it shipped on this
   * line, nothing since; see src/protocol/lines.ts).
   * 'unpinned' (posted) says that the thread left an op on a line whose watch
   * word the manager had set (it waits to give the line up).
   */
  | { op: 'line'; fn: 'pin' | 'acquire' | 'wait' | 'waitAsync' | 'notify' | 'unpinned'; line?: number; address?: number; timeoutMs?: number; count?: number; asyncId?: number; afterOp?: boolean }
  /**
   * A dsm Mutex or Barrier in a multi-node run, performed by the coherence
   * engine's lock and barrier managers. `id` names the object cluster-wide
   * (its global address / 16); `threadId` is the caller's owner token.
   * lock answers null or 'busy' (tryOnly); barrier answers 'serial' or null.
   * A `posted` request (unlock) gets no answer: the thread goes on at once.
   */
  | { op: 'sync'; kind: 'lock' | 'unlock' | 'barrier'; id: number; threadId: number; tryOnly?: boolean; parties?: number; posted?: boolean };

/** Options of a Worker that travel to another node (functions and ports cannot). */
export interface RemoteWorkerOptions {
  name?: string;
  argv: string[];
  env?: Record<string, string>;
  resourceLimits?: Record<string, number>;
  /** Node's options for the thread (process.execArgv there), as given to the worker. */
  execArgv?: string[];
  stdout?: boolean;
  stderr?: boolean;
  /** The creator's worker_threads environment data entries, cloned by dsm (src/threads/environment-data.ts). */
  environmentData?: Uint8Array;
}

/**
 * Events the manager sends to an app thread on its own (the thread listens
 * with ChannelClient.onEvent): about a worker of this thread that runs on
 * another node, a message from the parent of a worker hosted here for a
 * parent on another node, and the answer to an Atomics.waitAsync.
 */
export type ChannelEvent =
  | { kind: 'worker-online'; handleId: number; threadId: number; resourceLimits?: Record<string, number> }
  /** `bytes` and `form` of a message: src/channel/clone.ts, serializeMessage. */
  | { kind: 'worker-message'; handleId: number; bytes: Uint8Array; form?: number }
  | { kind: 'worker-error'; handleId: number; bytes: Uint8Array }
  | { kind: 'worker-exit'; handleId: number; exitCode: number }
  /** To a worker whose parent runs on another node: the parent's worker.postMessage (its parentPort's 'message'). */
  | { kind: 'parent-message'; bytes: Uint8Array; form?: number }
  /** postMessageToThread from thread `source` on another node: for this thread's 'workerMessage' listeners. */
  | { kind: 'thread-message'; key: number; source: number; bytes: Uint8Array; form?: number }
  /** The answer to this thread's worker-query `id`: a value (JSON) or bytes, or the error the worker's Node gave. */
  | { kind: 'worker-query-done'; id: number; answer: WorkerQueryAnswer }
  /** The outcome of this thread's postMessageToThread `id` to a thread on another node (threadPostResults). */
  | { kind: 'thread-post-done'; id: number; result: number }
  /** The answer to a posted atomic request (Atomics.waitAsync). */
  | { kind: 'atomic-done'; asyncId: number; value: string }
  /** A message posted to a BroadcastChannel named `name` on another node, for this thread's instances of it. */
  | { kind: 'bc-message'; name: string; bytes: Uint8Array; form?: number }
  /** A message for this thread's relay end of MessagePort relay `id` (src/threads/port-relay.ts), and the close of its far end. */
  | { kind: 'port-message'; id: string; bytes: Uint8Array; form?: number }
  | { kind: 'port-close'; id: string }
  /** Node 0 received `signal` and the program's main thread listens for it: emitted there (src/threads/signals.ts). */
  | { kind: 'signal'; signal: ProgramSignal }
  /**
   * A Web Locks request of this thread granted (`granted` false: an ifAvailable one not available; `full`: refused,
   * the lock service holds that many requests), or its held lock stolen (`sameThread`: by a request of this thread).
   */
  | { kind: 'wl-grant'; id: number; granted: boolean; full?: number }
  | { kind: 'wl-stolen'; id: number; sameThread: boolean }
  /**
   * Messages (worker-message, parent-message, port-message, bc-message) the
   * manager read in one run of frames, in order, in one MessagePort message
   * (ThreadEndpoint.sendEvent); the thread delivers them one a turn, as Node
   * delivers a port's queued messages (ChannelClient).
   */
  | { kind: 'events'; events: ChannelEvent[] };

/** An event as the thread's listeners see it (a batch is delivered as its events). */
export type ThreadEvent = Exclude<ChannelEvent, { kind: 'events' }>;

/**
 * The reply to 'alloc' when no room was found but the node's manager has not decided the region is full (memory
 * is being freed or borrowed, or collections asked have not had their time: src/runtime/heap-service.ts,
 * allocOrWait): the thread collects and asks again.
 */
export interface AllocReplyWait {
  wait: true;
}

/** The reply to 'alloc' when the thread must zero the buffer itself before use (a reused range in a cluster; else the offset alone). */
export interface AllocReplyZeroed {
  offset: number;
  zero: true;
}

/**
 * What travels on a thread's port to its manager: a request, and how many of
 * the thread's doorbell entries came before it (the manager serves the two in
 * the thread's order).
 */
export interface PortMessage {
  request: ChannelRequest;
  ringBefore: number;
}

export type ChannelReply =
  | { ok: true; value: unknown }
  | { ok: false; code: string; message: string };

/** What a postMessageToThread did at its target, as Node's own status words say it (lib/internal/worker/messaging.js). */
export const threadPostResults = { delivered: 0, noListener: 1, listenerThrew: 2 } as const;

/**
 * What a thread may ask of its worker on another node: Node's Worker methods of those names (Node 24 has all of
 * them), and the stop of a profile one of the start methods began (its `args`: the profile's number there).
 */
export type WorkerQuery = 'getHeapSnapshot' | 'getHeapStatistics' | 'cpuUsage' | 'startCpuProfile' | 'startHeapProfile' | 'stopProfile';
export const workerQueries: readonly WorkerQuery[] = ['getHeapSnapshot', 'getHeapStatistics', 'cpuUsage', 'startCpuProfile', 'startHeapProfile', 'stopProfile'];

/** A worker query's answer: `value` (JSON text) or `bytes` (a heap snapshot), or Node's error's code and message. */
export type WorkerQueryAnswer =
  | { ok: true; value?: string; bytes?: Uint8Array }
  | { ok: false; code: string; message: string };
