// A node of a multi-node run: the manager wires the native MMU, the coherence
// engine (src/protocol) and the cluster's mesh together, serves its app
// threads' channel requests (Atomics, worker placement, remote workers), and
// hosts workers whose parents run on other nodes.
//
// Node 0 also runs the program's main thread (runClusterProgram); every other
// node runs `runNode` (the DSM_NODE_RUNTIME module of src/cluster/node-main).

import { MessageChannel, Worker } from 'node:worker_threads';
import type { ClusterHandle, MeshContext, MeshLike } from '../cluster/index.js';
import { createTransportMesh } from '../cluster/common.js';
import { replyLater, type ThreadEndpoint } from '../channel/server.js';
import type { AppThreadConfig, ChannelEvent, ChannelRequest, RemoteWorkerOptions } from '../channel/wire.js';
import { faultSlotCount, pageBytes, regionBytesDefault } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import type { NativeMmu } from '../memory/native.js';
import { createEngine, type Engine, type FaultResult, type SyncResult } from '../protocol/engine.js';
import type { PageMemory } from '../protocol/memory.js';
import type { ConsistencyInfo, ProtocolMessage } from '../protocol/messages.js';
import { serializeValue } from '../threads/clone.js';
import { appEntryUrl } from '../threads/worker.js';
import { NodeManager } from './manager.js';
import { runMainThread } from './program.js';

/** Engine ticks drive Atomics.wait timeouts. */
const tickIntervalMs = 5;
/** Sync requests in flight on one node (each is a parked app thread). */
const syncRefCountMax = 4096;

type RuntimeMessage =
  | { type: 'rtSpawn'; spawnId: string; entry: string; evalCode: boolean; workerData: Uint8Array; options: RemoteWorkerOptions; info: ConsistencyInfo }
  | { type: 'rtEvent'; spawnId: string; event: 'online' | 'message' | 'error' | 'exit'; bytes?: Uint8Array; code?: number; threadId?: number; info: ConsistencyInfo }
  | { type: 'rtPost'; spawnId: string; bytes: Uint8Array; info: ConsistencyInfo }
  | { type: 'rtTerminate'; spawnId: string };

const noRanges = {
  rangeOf: () => null,
  bufferAt: (): never => { throw new DsmError('DSM_ERR_INTERNAL', 'the manager holds no dsm buffers'); },
};

/**
 * The mesh, with messages held from the moment it exists until the runtime
 * takes over: a peer may send before this node has wired its engine.
 */
export async function createMesh(context: MeshContext): Promise<MeshLike> {
  const mesh = await createTransportMesh(context);
  const held: Array<[number, unknown]> = [];
  const hold = (from: number, message: unknown) => held.push([from, message]);
  mesh.on('message', hold);
  (mesh as MeshLike & { takeOver?: (listener: (from: number, message: unknown) => void) => void }).takeOver = (listener) => {
    mesh.off('message', hold);
    mesh.on('message', listener);
    for (const [from, message] of held.splice(0)) listener(from, message);
  };
  return mesh;
}

function asPageMemory(native: NativeMmu): PageMemory {
  const pagesOf = (pages: Uint32Array | number[]) => (pages instanceof Uint32Array ? pages : Uint32Array.from(pages));
  return {
    protect: (pages, prot) => native.protectPages(pagesOf(pages), prot),
    setFastWrite: (pages, enabled) => native.setFastWrite(pagesOf(pages), enabled),
    drainDirty: () => native.drainDirty(),
    makeTwin: (page) => native.makeTwin(page),
    flush: (pages) => native.flush(pagesOf(pages)),
    applyDiff: (page, diff) => native.applyDiff(page, diff),
    readPage: (page, into) => native.readPage(page, into),
    writePage: (page, from) => native.writePage(page, from),
  };
}

export class ClusterNode {
  readonly handle: ClusterHandle;
  readonly manager: NodeManager;
  readonly engine: Engine;
  private readonly mesh: MeshLike & { send(nodeId: number, message: object): boolean };
  private readonly syncWaiters = new Map<number, ThreadEndpoint>();
  private nextSyncRef = faultSlotCount;
  private placementCounter = 0;
  /** Workers started here for parents elsewhere: spawnId -> worker and the parent's node. */
  private readonly hosted = new Map<string, { worker: Worker; parentNode: number }>();
  /** Remote workers of this node's app threads: spawnId -> (endpoint, handle id, node). */
  private readonly remote = new Map<string, { endpoint: ThreadEndpoint; handleId: number; nodeId: number }>();
  private spawnCounter = 0;

  constructor(handle: ClusterHandle, options: { regionBytes: number; protocol: string }) {
    assert(handle.mesh !== null, 'a cluster node has a mesh');
    this.handle = handle;
    this.mesh = handle.mesh as ClusterNode['mesh'];
    this.manager = new NodeManager({ nodeId: handle.nodeId, nodeCount: handle.nodeCount, regionBytes: options.regionBytes });
    this.engine = createEngine({
      nodeId: handle.nodeId,
      nodeCount: handle.nodeCount,
      pageCount: options.regionBytes / pageBytes,
      protocol: options.protocol,
      memory: asPageMemory(this.manager.native),
      send: (toNode, message) => { this.mesh.send(toNode, message as unknown as { type: string }); },
      host: { resume: (ref, result) => this.resume(ref, result) },
    });
    this.manager.handleFaults((records) => {
      for (let index = 0; index < records.length; index += 3) {
        this.engine.onFault(records[index]!, records[index + 1]!, (records[index + 2]! & 1) === 1);
      }
    });
    this.manager.handleRequests((endpoint, request) => this.onRequest(endpoint, request));
    this.manager.start();
    this.engine.start();
    const takeOver = (this.mesh as unknown as { takeOver?: (l: (from: number, m: unknown) => void) => void }).takeOver;
    const listener = (from: number, message: unknown) => this.onMessage(from, message as { type: string });
    if (takeOver !== undefined) takeOver(listener);
    else this.mesh.on('message', listener);
    setInterval(() => this.engine.onTick(Date.now()), tickIntervalMs).unref();
    handle.describeInFlight(() => `${this.syncWaiters.size} synchronization request(s) and ${this.remote.size} remote worker(s) in flight on node ${handle.nodeId}`);
  }

  private resume(ref: number, result: SyncResult | FaultResult): void {
    if (ref < faultSlotCount) {
      this.manager.native.resume(ref);
      return;
    }
    const endpoint = this.syncWaiters.get(ref);
    assert(endpoint !== undefined, 'a sync result answers a waiting thread');
    this.syncWaiters.delete(ref);
    endpoint.answer(result.ok ? { ok: true, value: result.value } : { ok: false, code: result.code, message: result.message });
  }

  private onRequest(endpoint: ThreadEndpoint, request: ChannelRequest): unknown {
    switch (request.op) {
      case 'atomic': {
        assert(this.syncWaiters.size < syncRefCountMax, 'sync requests in flight within their limit');
        const ref = this.nextSyncRef++;
        this.syncWaiters.set(ref, endpoint);
        this.engine.onSync(ref, {
          kind: 'atomic', op: request.fn, address: request.address,
          width: request.width as 1 | 2 | 4 | 8, operands: request.operands, timeoutMs: request.timeoutMs,
        });
        return replyLater;
      }
      case 'place':
        return (this.handle.nodeId + 1 + this.placementCounter++) % this.handle.nodeCount;
      case 'worker-spawn': {
        const spawnId = `${this.handle.nodeId}:${this.spawnCounter++}`;
        this.remote.set(spawnId, { endpoint, handleId: request.handleId, nodeId: request.nodeId });
        this.sendRuntime(request.nodeId, {
          type: 'rtSpawn', spawnId, entry: request.entry, evalCode: request.evalCode,
          workerData: request.workerData, options: request.options, info: this.engine.releaseFor(request.nodeId),
        });
        return replyLater;
      }
      case 'worker-post': {
        const target = this.findRemote(endpoint, request.handleId);
        if (target !== null) {
          this.sendRuntime(target.nodeId, { type: 'rtPost', spawnId: target.spawnId, bytes: request.bytes, info: this.engine.releaseFor(target.nodeId) });
        }
        return replyLater;
      }
      case 'worker-terminate': {
        const target = this.findRemote(endpoint, request.handleId);
        if (target !== null) this.sendRuntime(target.nodeId, { type: 'rtTerminate', spawnId: target.spawnId });
        return replyLater;
      }
      default:
        throw new DsmError('DSM_ERR_CHANNEL', `unknown channel request '${request.op}'`);
    }
  }

  private findRemote(endpoint: ThreadEndpoint, handleId: number): { spawnId: string; nodeId: number } | null {
    for (const [spawnId, entry] of this.remote) {
      if (entry.endpoint === endpoint && entry.handleId === handleId) return { spawnId, nodeId: entry.nodeId };
    }
    return null;
  }

  private sendRuntime(toNode: number, message: RuntimeMessage): void {
    this.mesh.send(toNode, message as unknown as { type: string });
  }

  private onMessage(from: number, message: { type: string }): void {
    if (!message.type.startsWith('rt')) {
      this.engine.onMessage(from, message as unknown as ProtocolMessage);
      return;
    }
    const runtime = message as RuntimeMessage;
    switch (runtime.type) {
      case 'rtSpawn':
        this.engine.acquireFrom(from, runtime.info);
        this.host(from, runtime);
        return;
      case 'rtPost': {
        this.engine.acquireFrom(from, runtime.info);
        this.hosted.get(runtime.spawnId)?.worker.postMessage({ dsmRemote: 'message', bytes: runtime.bytes });
        return;
      }
      case 'rtTerminate':
        void this.hosted.get(runtime.spawnId)?.worker.terminate();
        return;
      case 'rtEvent': {
        this.engine.acquireFrom(from, runtime.info);
        const entry = this.remote.get(runtime.spawnId);
        if (entry === undefined) return;
        let event: ChannelEvent;
        switch (runtime.event) {
          case 'online': event = { kind: 'worker-online', handleId: entry.handleId, threadId: runtime.threadId ?? -1 }; break;
          case 'message': event = { kind: 'worker-message', handleId: entry.handleId, bytes: runtime.bytes! }; break;
          case 'error': event = { kind: 'worker-error', handleId: entry.handleId, bytes: runtime.bytes! }; break;
          case 'exit':
            event = { kind: 'worker-exit', handleId: entry.handleId, exitCode: runtime.code ?? 1 };
            this.remote.delete(runtime.spawnId);
            break;
        }
        entry.endpoint.port.postMessage(event);
        return;
      }
    }
  }

  /** Starts, on this node, a worker whose parent thread runs on node `parentNode`. */
  private host(parentNode: number, spawn: Extract<RuntimeMessage, { type: 'rtSpawn' }>): void {
    const { port1, port2 } = new MessageChannel();
    this.manager.channel.attach(port1);
    const config: AppThreadConfig = {
      role: 'worker', nodeId: this.handle.nodeId, nodeCount: this.handle.nodeCount,
      regionBytes: this.manager.regionBytes, entry: spawn.entry, evalCode: spawn.evalCode,
      argv: spawn.options.argv, parallelism: this.manager.parallelism, userWorkerData: null,
      threadIdSeen: -1, remoteWorkerData: spawn.workerData,
    };
    const worker = new Worker(appEntryUrl(), {
      workerData: { __dsm: config, __dsmPort: port2 },
      transferList: [port2],
      ...(spawn.options.env === undefined ? {} : { env: spawn.options.env }),
      ...(spawn.options.name === undefined ? {} : { name: spawn.options.name }),
      ...(spawn.options.resourceLimits === undefined ? {} : { resourceLimits: spawn.options.resourceLimits }),
    });
    this.hosted.set(spawn.spawnId, { worker, parentNode });
    const event = (kind: 'online' | 'message' | 'error' | 'exit', extra: { bytes?: Uint8Array; code?: number; threadId?: number }) =>
      this.sendRuntime(parentNode, { type: 'rtEvent', spawnId: spawn.spawnId, event: kind, ...extra, info: this.engine.releaseFor(parentNode) });
    worker.on('online', () => event('online', { threadId: worker.threadId }));
    worker.on('message', (frame: { dsmRemote?: string; bytes?: Uint8Array }) => {
      if (frame?.dsmRemote === 'message' && frame.bytes !== undefined) event('message', { bytes: frame.bytes });
    });
    worker.on('error', (error: unknown) => {
      // Node rebuilds a worker's error as an object with Error's prototype but
      // not a real Error, which V8's serializer would flatten to {}: send its parts.
      const thrown = typeof error === 'object' && error !== null && 'message' in error
        ? { dsmError: true, name: String((error as Error).name), message: String((error as Error).message), stack: String((error as Error).stack ?? '') }
        : { dsmThrown: true, value: String(error) };
      event('error', { bytes: serializeValue(thrown, noRanges) });
    });
    worker.on('exit', (code) => {
      this.hosted.delete(spawn.spawnId);
      event('exit', { code });
    });
  }
}

/** The DSM_NODE_RUNTIME entry of nodes 1..N-1. */
export function runNode(handle: ClusterHandle): void {
  const config = JSON.parse(process.env.DSM_RUNTIME_CONFIG ?? '{}') as { regionBytes?: number; protocol?: string };
  const node = new ClusterNode(handle, { regionBytes: config.regionBytes ?? regionBytesDefault, protocol: config.protocol ?? 'hlrc' });
  void node;
  // The process lives until the cluster ends it.
  setInterval(() => {}, 1 << 30);
}

/** Node 0: runs the program's main thread and ends the cluster with its exit code. */
export async function runClusterProgram(handle: ClusterHandle, options: { regionBytes: number; protocol: string; file: string; args: string[] }): Promise<never> {
  const node = new ClusterNode(handle, options);
  let code: number;
  try {
    code = await runMainThread(node.manager, { file: options.file, args: options.args });
  } catch (error) {
    if (error instanceof DsmError) process.stderr.write(`dsm: ${error.code}: ${error.message}\n`);
    else process.stderr.write(`dsm: ${String((error as Error)?.stack ?? error)}\n`);
    code = 2;
  }
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return handle.shutdown(code);
}
