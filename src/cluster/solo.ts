// A cluster of one: `dsm run` on one node. Nobody joins, so nothing listens
// or dials; the handle is node 0's with no other node, over a mesh of one
// (src/transport/solo-mesh.ts), so the runtime runs it exactly as a cluster
// (src/runtime/cluster-node.ts: the same manager, engine host, lanes, run
// orchestration and end-of-run reports).

import os from 'node:os';
import { heartbeatTimeoutMs } from '../constants.js';
import { exitCodeNodeDied } from '../errors.js';
import { SoloMesh } from '../transport/solo-mesh.js';
import type { ClusterHandle, InterruptSignal } from './common.js';
import { NodeHandle } from './handle.js';
import { exitProcess } from './watchdog.js';

class SoloHandle extends NodeHandle {
  readonly nodeId = 0;

  constructor(heartbeatMs: number) {
    // No peer proves anything to a cluster of one: its secret is never used.
    super('', heartbeatMs);
    this.nodeCount = 1;
    this.peers = [{ nodeId: 0, host: os.hostname(), port: 0, pid: process.pid }];
    this.mesh = new SoloMesh();
  }

  /** Ctrl-C or SIGTERM ends the run as on more nodes: the parked requests named (the interrupt callbacks), exit 130 or 143; unless the program takes it (takeSignal). */
  handleSignals(): void {
    process.on('SIGINT', () => { if (!this.programTakes('SIGINT')) void this.shutdown(130, 'SIGINT'); });
    process.on('SIGTERM', () => { if (!this.programTakes('SIGTERM')) void this.shutdown(143, 'SIGTERM'); });
  }

  async shutdown(code: number, signal?: InterruptSignal): Promise<never> {
    if (!this.ending) {
      this.ending = true;
      if (signal !== undefined) await this.runInterruptCallbacks(signal);
      await this.runShutdownCallbacks(code);
      await this.mesh?.close();
      // Let stdout drain, then leave even if a stray handle would keep the loop alive.
      process.stdout.write('', () => exitProcess(code));
    }
    return new Promise<never>(() => {});
  }

  async fatal(message: string): Promise<void> {
    if (this.ending) return;
    process.stderr.write(`${message}\n`);
    await this.shutdown(exitCodeNodeDied);
  }

  relayOutput(stream: 'stdout' | 'stderr', text: string): void {
    (stream === 'stdout' ? process.stdout : process.stderr).write(text);
  }
}

/**
 * The handle of a cluster of one (node 0, no peer); `heartbeatTimeoutMs` sizes its stalled-loop limit only;
 * `handleSignals` (default true): SIGINT/SIGTERM end the run naming its parked requests, exit 130/143.
 */
export function soloCluster(options: { heartbeatTimeoutMs?: number; handleSignals?: boolean } = {}): ClusterHandle {
  const handle = new SoloHandle(options.heartbeatTimeoutMs ?? heartbeatTimeoutMs);
  if (options.handleSignals ?? true) handle.handleSignals();
  return handle;
}
