// The one implementation of ClusterHandle's bookkeeping, shared by node 0
// (launch.ts) and every other node (join.ts): who is in the cluster, the
// callbacks to run on a failure and on shutdown, what is in flight, and how
// a mesh's 'peer-lost' becomes a failure. The two differ only in how the run
// ends (node 0 stops every node; a joiner asks node 0) and where output goes.

import { failureReportMsMax, type ProgramSignal, programSignalNames, shutdownGraceMs } from '../constants.js';
import { signalTakenByProgram } from './watchdog.js';
import { type ClusterHandle, type Failure, type InterruptSignal, type MeshLike, type PeerInfo, isInterruptSignal } from './common.js';

export abstract class NodeHandle implements ClusterHandle {
  abstract readonly nodeId: number;
  nodeCount = 0;
  peers: PeerInfo[] = [];
  mesh: MeshLike | null = null;
  /** The run is ending (shutdown or failure under way): later failures are the same end seen again. */
  protected ending = false;
  private readonly failureCallbacks: Array<(failure: Failure) => void | Promise<void>> = [];
  private readonly shutdownCallbacks: Array<(code: number) => void | Promise<void>> = [];
  private readonly interruptCallbacks: Array<(signal: InterruptSignal) => void | Promise<void>> = [];
  /** The signal that interrupted the run (received here, or named by node 0's stop); null: none yet. */
  protected interruptedBy: InterruptSignal | null = null;
  private inFlight: (() => string) | null = null;
  /** Node 0: the program's own listeners take its signals first (ClusterHandle.takeSignal). */
  takeSignal: ((signal: ProgramSignal) => boolean) | null = null;
  /** The handlers listenForProgram installed, by signal. */
  private readonly programHandlers = new Map<ProgramSignal, () => void>();

  /** Whether the program took `signal` (takeSignal): then the watchdog counts no grace period, and the run goes on. */
  protected programTakes(signal: ProgramSignal): boolean {
    if (this.ending || this.takeSignal?.(signal) !== true) return false;
    if (isInterruptSignal(signal)) signalTakenByProgram();
    return true;
  }

  /**
   * The signals the program listens for, besides SIGINT and SIGTERM (which this process always handles): while it
   * does, this process has a handler for each, which on node 0 hands the signal to the program and elsewhere
   * ignores it (a signal to the whole process group reaches every node; node 0 hands it over once). When the program
   * stops listening, the handler goes and the signal acts as on any process again (SIGHUP ends it).
   */
  listenForProgram(taken: readonly ProgramSignal[]): void {
    for (const signal of programSignalNames) {
      if (isInterruptSignal(signal)) continue;
      const handler = this.programHandlers.get(signal);
      if (taken.includes(signal) && handler === undefined) {
        const handle = (): void => { if (this.nodeId === 0) this.programTakes(signal); };
        this.programHandlers.set(signal, handle);
        process.on(signal, handle);
      } else if (!taken.includes(signal) && handler !== undefined) {
        this.programHandlers.delete(signal);
        process.off(signal, handler);
      }
    }
  }

  constructor(readonly secret: string, readonly heartbeatTimeoutMs: number) {}

  abstract shutdown(code: number): Promise<never>;
  abstract relayOutput(stream: 'stdout' | 'stderr', text: string, threadId?: number): void;
  abstract fatal(message: string): Promise<void>;

  onFailure(callback: (failure: Failure) => void | Promise<void>): void {
    this.failureCallbacks.push(callback);
  }

  describeInFlight(describe: () => string): void {
    this.inFlight = describe;
  }

  onShutdown(callback: (code: number) => void | Promise<void>): void {
    this.shutdownCallbacks.push(callback);
  }

  onInterrupt(callback: (signal: InterruptSignal) => void | Promise<void>): void {
    this.interruptCallbacks.push(callback);
  }

  /** The run was interrupted by `signal`: each interrupt callback, once per process, each bounded by shutdownGraceMs. */
  protected async runInterruptCallbacks(signal: InterruptSignal): Promise<void> {
    if (this.interruptedBy !== null) return;
    this.interruptedBy = signal;
    for (const callback of this.interruptCallbacks) {
      await withTimeout(Promise.resolve().then(() => callback(signal)), shutdownGraceMs);
    }
  }

  /** "; in flight: …" for a failure line ('' when nothing describes it). */
  protected inFlightSuffix(): string {
    if (this.inFlight === null) return '';
    try {
      return `; in flight: ${this.inFlight()}`;
    } catch (error) {
      return `; in flight: unknown (${(error as Error).message})`;
    }
  }

  /** "host, pid N" (or "host") of a node, for failure lines. */
  protected whereIs(nodeId: number): { host: string; pid?: number; where: string } {
    const peer = this.peers[nodeId];
    const host = peer?.host ?? 'unknown host';
    const pid = peer?.pid;
    return { host, ...(pid !== undefined ? { pid } : {}), where: pid !== undefined ? `${host}, pid ${pid}` : host };
  }

  /** Each failure callback, each bounded by failureReportMsMax. */
  protected async runFailureCallbacks(failure: Failure): Promise<void> {
    for (const callback of this.failureCallbacks) {
      await withTimeout(Promise.resolve().then(() => callback(failure)), failureReportMsMax);
    }
  }

  /** Each shutdown callback, each bounded by shutdownGraceMs. */
  protected async runShutdownCallbacks(code: number): Promise<void> {
    for (const callback of this.shutdownCallbacks) {
      await withTimeout(Promise.resolve().then(() => callback(code)), shutdownGraceMs);
    }
  }

  /** Calls `lost(nodeId, reason)` when the mesh loses a peer (its failure detector or a broken connection). */
  protected watchPeerLost(mesh: MeshLike, lost: (nodeId: number, reason: string) => void): void {
    mesh.on('peer-lost', (event: unknown, why?: unknown) => {
      const nodeId = typeof event === 'number' ? event : Number((event as { nodeId?: unknown }).nodeId);
      lost(nodeId, lostReason(why));
    });
  }
}

/**
 * What a mesh's 'peer-lost' error says after the node it names ("stopped answering: nothing heard for X ms,
 * limit Y ms", "closed its connection"), so the cluster's line reads "node N (host, pid P) stopped answering: …".
 */
export function lostReason(why: unknown): string {
  if (!(why instanceof Error)) return 'was lost by the mesh';
  const tail = /^node \d+ \((?:[^()]|\([^()]*\))*\) (.*)$/s.exec(why.message)?.[1];
  return tail ?? `was lost by the mesh (${why.message})`;
}

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    promise.then(
      (value) => { clearTimeout(timer); resolve(value); },
      () => { clearTimeout(timer); resolve(undefined); },
    );
  });
}
