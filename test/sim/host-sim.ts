// The simulation over the runtime's own engine host: N EngineHosts
// (src/runtime/engine-host.ts, the class a cluster node runs) over simulated
// page memory (SimMemory) and a seeded network, every message routed by the
// runtime's envelope (src/runtime/envelope.ts). A bug in the host (a lost
// answer, a fault resumed twice, a withdrawn request answered, a message
// routed to the wrong lane) is found by a seed.
//
// Network model as in sim.ts: each ordered pair of nodes is one FIFO
// connection; across connections the seed picks the delivery order.

import { pageBytes } from '../../src/constants.js';
import type { SyncKind } from '../../src/runtime/observe.js';
import { NodeObserver } from '../../src/runtime/observe.js';
import { EngineHost, type Arrival } from '../../src/runtime/engine-host.js';
import { route, type LaneNetwork, type SendOutcome } from '../../src/runtime/envelope.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import type { ProtocolMessage } from '../../src/protocol/messages.js';
import type { WireMessage } from '../../src/transport/codec.js';
import { Prng, SimLinks, SimMemory, readU32, writeU32, type ThreadOp, type ThreadProgram } from './sim.js';

interface HostThread {
  index: number;
  node: number;
  program: ThreadProgram;
  current: ThreadOp | null;
  input: number | SyncResult | undefined;
  blocked: boolean;
  done: boolean;
  /** Answers this thread got for the sync request it is parked on (more than one is a host bug). */
  answers: number;
}

export interface HostClusterOptions {
  seed: number;
  nodeCount: number;
  pageCount: number;
  protocol?: string;
  placement?: 'roundRobin' | 'block';
  /** Probability a step delivers a message rather than running a thread. */
  deliverBias?: number;
  stepCountMax?: number;
  /** Trace on every node (exercises the host's fault and fetch tracing). */
  trace?: boolean;
  /** The hosts' arrival hook (DSM_TEST_HOOK_ARRIVALS in a node), with the node it fired on. */
  onArrival?: (node: number, what: Arrival, key: number) => void;
}

/** The simulated network (sim.ts's SimLinks) as the hosts see it through LaneNetwork. */
class SimNetwork {
  private readonly links: SimLinks<WireMessage>;
  messageCount = 0;
  readonly counts = new Map<string, number>();

  constructor(readonly nodeCount: number) {
    this.links = new SimLinks<WireMessage>(nodeCount);
  }

  /** The network node `from` sends through. */
  of(from: number): LaneNetwork<ProtocolMessage> {
    return {
      send: (toNode, message): SendOutcome => {
        if (toNode === from || toNode < 0 || toNode >= this.nodeCount) throw new Error(`node ${from} sends to node ${toNode}`);
        this.links.push(from, toNode, message);
        this.messageCount++;
        this.counts.set(message.type, (this.counts.get(message.type) ?? 0) + 1);
        return 'sent';
      },
    };
  }

  busyLinks(): number[] {
    return this.links.busy();
  }

  take(link: number): { from: number; to: number; message: WireMessage } {
    return this.links.take(link);
  }
}

export class HostCluster {
  readonly prng: Prng;
  readonly memories: SimMemory[] = [];
  readonly hosts: Array<EngineHost<number>> = [];
  readonly threads: HostThread[] = [];
  readonly network: SimNetwork;
  nowMs = 0;
  stepCount = 0;

  constructor(readonly options: HostClusterOptions) {
    this.prng = new Prng(options.seed);
    const n = options.nodeCount;
    this.network = new SimNetwork(n);
    for (let node = 0; node < n; node++) {
      const memory = new SimMemory(options.pageCount);
      this.memories.push(memory);
      const observer = new NodeObserver(node);
      if (options.trace === true) observer.startTrace(0);
      this.hosts.push(new EngineHost<number>({
        nodeId: node, nodeCount: n, pageCount: options.pageCount, protocol: options.protocol ?? 'hlrc',
        placement: options.placement ?? 'roundRobin',
        memory: { pages: memory, resumeFault: (slot) => this.resumeFault(node, slot) },
        network: this.network.of(node),
        observer,
        clock: () => this.nowMs,
        ...(options.onArrival === undefined ? {} : { onArrival: (what: Arrival, key: number) => options.onArrival!(node, what, key) }),
      }));
    }
    for (const host of this.hosts) host.start();
  }

  addThread(node: number, make: (threadIndex: number) => ThreadProgram): number {
    const index = this.threads.length;
    this.threads.push({ index, node, program: make(index), current: null, input: undefined, blocked: false, done: false, answers: 0 });
    return index;
  }

  /** The thread ends while parked (its worker terminated): the host withdraws its requests. */
  kill(threadIndex: number): void {
    const thread = this.threads[threadIndex]!;
    thread.done = true;
    this.hosts[thread.node]!.ownerEnded(threadIndex);
  }

  /** The fault slot of a thread is its index (fault slots and sync refs never meet: refs start at faultSlotCount). */
  private resumeFault(node: number, slot: number): void {
    const thread = this.threads[slot];
    if (thread === undefined || thread.node !== node) throw new Error(`node ${node} resumed fault slot ${slot}, which no thread of it holds`);
    if (!thread.blocked || thread.current?.op === 'sync') throw new Error(`node ${node} resumed fault slot ${slot}, which is not faulting`);
    if (thread.done) throw new Error(`fault of killed thread ${slot} resumed`);
    thread.blocked = false;
  }

  private syncKind(request: SyncRequest): SyncKind | null {
    if (request.kind === 'atomic') return 'atomic';
    if (request.kind === 'barrier') return 'barrier';
    if (request.kind === 'lock' && request.tryOnly !== true) return 'lock';
    return null;
  }

  private stepThread(thread: HostThread): void {
    if (thread.current === null) {
      const next = thread.program.next(thread.input);
      thread.input = undefined;
      if (next.done === true) { thread.done = true; return; }
      thread.current = next.value;
    }
    const op = thread.current;
    const memory = this.memories[thread.node]!;
    const host = this.hosts[thread.node]!;
    switch (op.op) {
      case 'load': {
        const page = Math.floor(op.address / pageBytes);
        if (!memory.loadAllowed(page)) { thread.blocked = true; host.fault(thread.index, page, false); return; }
        thread.input = readU32(memory.data, op.address);
        thread.current = null;
        return;
      }
      case 'store': {
        const page = Math.floor(op.address / pageBytes);
        if (!memory.storeAllowed(page)) { thread.blocked = true; host.fault(thread.index, page, true); return; }
        writeU32(memory.data, op.address, op.value);
        thread.current = null;
        return;
      }
      case 'sync': {
        thread.blocked = true;
        thread.answers = 0;
        host.sync(op.request, {
          owner: thread.index, kind: this.syncKind(op.request), args: {}, tid: thread.index,
          answer: (result) => {
            if (thread.done) throw new Error(`thread ${thread.index} was answered after it ended`);
            if (++thread.answers > 1) throw new Error(`thread ${thread.index} was answered twice`);
            thread.blocked = false;
            thread.input = result;
            thread.current = null;
          },
        });
        return;
      }
    }
  }

  private deliver(link: number): void {
    const { from, to, message } = this.network.take(link);
    const routed = route(message);
    if (routed === null || routed.lane !== 'engine') throw new Error(`a ${message.type} message is not engine traffic`);
    this.hosts[to]!.message(from, routed.message);
  }

  /** Runs until every thread is done (or `until` holds). Throws on a stuck cluster or the step limit. */
  run(until: () => boolean = () => false): void {
    const stepCountMax = this.options.stepCountMax ?? 2_000_000;
    const deliverBias = this.options.deliverBias ?? 0.5;
    let idleSteps = 0;
    while (!this.threads.every((t) => t.done) && !until()) {
      this.stepCount++;
      if (this.stepCount > stepCountMax) throw new Error(`step limit ${stepCountMax} reached`);
      if (this.stepCount % 16 === 0) {
        this.nowMs += 1;
        for (const host of this.hosts) host.tick(this.nowMs);
      }
      const runnable = this.threads.filter((t) => !t.done && !t.blocked);
      const links = this.network.busyLinks();
      if (runnable.length === 0 && links.length === 0) {
        // Only timeouts can make progress now.
        if (++idleSteps > 100_000) throw new Error('cluster is stuck: every thread blocked, no message in flight');
        continue;
      }
      idleSteps = 0;
      if (links.length > 0 && (runnable.length === 0 || this.prng.chance(deliverBias))) this.deliver(links[this.prng.int(links.length)]!);
      else this.stepThread(runnable[this.prng.int(runnable.length)]!);
    }
  }

  /** Delivers every queued message (threads untouched). */
  drain(): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const links = this.network.busyLinks();
      if (links.length === 0) return;
      this.deliver(links[0]!);
    }
    throw new Error('drain did not settle');
  }
}
