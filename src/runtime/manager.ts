// A node's manager: the main thread of a node process. It owns the native
// MMU, the global heap's arena for this node, the channel to every app
// thread, and the page service that answers faults.

import os from 'node:os';
import { ChannelServer, type RequestHandler, type ThreadEndpoint } from '../channel/server.js';
import type { ChannelRequest } from '../channel/wire.js';
import { pageBytes, threadIdNodeStride } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import { loadNativeMmu, type NativeMmu } from '../memory/native.js';
import { guardAppView } from './app-view-guard.js';
import { debugAppViewEnabled } from '../env.js';
import { HeapService } from './heap-service.js';
import { SingleNodePages } from './single-node-pages.js';

export interface ManagerOptions {
  nodeId: number;
  nodeCount: number;
  regionBytes: number;
  /** Total cores across the cluster (what os.availableParallelism() reports inside the program). */
  parallelism?: number;
  /** A one-node run: the region is private anonymous memory, read-write (native init). */
  singleNode?: boolean;
}

export class NodeManager {
  readonly nodeId: number;
  readonly nodeCount: number;
  readonly regionBytes: number;
  readonly parallelism: number;
  readonly native: NativeMmu;
  readonly channel: ChannelServer;
  readonly heap: HeapService;
  readonly pages: SingleNodePages;
  private started = false;
  private faultHandler: (records: Uint32Array) => void;
  /** A one-node run serves faults itself (SingleNodePages); a cluster node hands them to its engine. */
  private servesOwnPages = true;
  private readonly singleNode: boolean;
  /** The node's atomic line table, handed to every app thread (set by a cluster node whose Atomics run by line ownership). */
  atomicLines?: SharedArrayBuffer;
  /** The node's lock token table, handed to every app thread (set by a cluster node, src/channel/lock-tokens.ts). */
  lockTokens?: SharedArrayBuffer;
  private extraRequests: RequestHandler | null = null;
  /** The next worker thread id this node hands out (0 is the program's main thread). */
  private threadIdSeenNext: number;

  constructor(options: ManagerOptions) {
    assert(options.nodeId >= 0 && options.nodeId < options.nodeCount, 'node id within the cluster');
    assert(options.regionBytes % pageBytes === 0, 'region is whole pages');
    this.nodeId = options.nodeId;
    this.nodeCount = options.nodeCount;
    this.regionBytes = options.regionBytes;
    this.threadIdSeenNext = options.nodeId * threadIdNodeStride + 1;
    // Programs size their pools by core count; in dsm the cores are the
    // cluster's. Every node is taken to have this node's core count (nodes do
    // not report theirs to each other yet).
    this.parallelism = options.parallelism ?? os.availableParallelism() * options.nodeCount;
    this.native = loadNativeMmu();
    this.singleNode = options.singleNode === true;
    this.native.init(this.regionBytes, this.singleNode);
    this.heap = new HeapService(this.native, this.regionBytes, this.nodeId, this.nodeCount);
    this.pages = new SingleNodePages(this.native);
    this.faultHandler = (records) => this.pages.onFaults(records);
    this.channel = new ChannelServer((endpoint, request) => this.onRequest(endpoint, request));
  }

  start(): void {
    assert(!this.started, 'a manager starts once');
    this.started = true;
    // Before any app thread can touch the region: one node maps it read-write.
    if (this.servesOwnPages) this.pages.start();
    this.native.installHandler();
    this.native.startFaultService((records) => this.faultHandler(records));
    this.native.onBackingStoreFreed((offset, byteLength) => this.heap.onBufferCollected(offset, byteLength));
    if (debugAppViewEnabled()) guardAppView(this.native);
  }

  /** A cluster node serves faults through its coherence engine instead of the one-node page service. */
  handleFaults(handler: (records: Uint32Array) => void): void {
    assert(!this.started, 'fault handling is chosen before start');
    assert(!this.singleNode, 'an anonymous one-node region cannot be protected by an engine');
    this.faultHandler = handler;
    this.servesOwnPages = false;
  }

  /** Race mode (src/race/): told of every allocation, with the program's call site when the app thread sent it. */
  allocObserver: ((offset: number, byteLength: number, site: string | null, endpoint: ThreadEndpoint) => void) | null = null;

  /** Requests the manager itself does not serve (Atomics, placement, remote workers) go here. */
  handleRequests(handler: RequestHandler): void {
    this.extraRequests = handler;
  }

  stop(): void {
    if (!this.started) return;
    this.native.stopFaultService();
    this.started = false;
  }

  private onRequest(_endpoint: ThreadEndpoint, request: ChannelRequest): unknown {
    switch (request.op) {
      case 'alloc': {
        const reply = this.heap.alloc(request.byteLength);
        const offset = typeof reply === 'number' ? reply : reply.offset;
        this.allocObserver?.(offset, request.byteLength, (request as { site?: string | null }).site ?? null, _endpoint);
        return reply;
      }
      case 'thread-id': {
        const threadIdSeen = this.threadIdSeenNext++;
        assert(threadIdSeen % threadIdNodeStride !== 0, 'thread ids of this node within their stride');
        return threadIdSeen;
      }
      case 'free':
        this.heap.free(request.offset);
        return null;
      case 'escape':
        this.heap.onEscape(request.offset);
        return null;
      default:
        if (this.extraRequests !== null) return this.extraRequests(_endpoint, request);
        throw new DsmError('DSM_ERR_CHANNEL', `unknown channel request '${(request as { op: string }).op}'`);
    }
  }
}
