// Heartbeats that a busy main thread cannot delay. A node's manager loop may
// be busy for seconds (a long engine step, a large diff, a slow machine); its
// heartbeats over the mesh's TCP connections wait with it, and its peers
// would declare a live node dead. The beacon is a small worker thread of its
// own that sends an authenticated UDP datagram (beacon-format.ts) to every
// peer each heartbeat interval, on the same port number as the node's mesh
// listener, and records when each peer's last beat arrived in shared memory
// the mesh's failure detector reads. A node that is stopped (SIGSTOP), killed
// or cut off falls silent here as everywhere; a manager loop that is truly
// stuck is ended by its own watchdog (DSM_ERR_STALLED, src/cluster/watchdog.ts)
// after loopStallFactor times the heartbeat floor. The TCP heartbeats stay:
// where UDP is filtered, the beacon is silent and they decide alone.

import { Worker } from 'node:worker_threads';
import { beaconStartMsMax, nodeCountMax } from '../constants.js';
import { assert } from '../errors.js';
import { type BeaconWorkerData, beaconKey, beatBytes, beatMacBytes, beatMagic, beatSignedBytes, beatVersion } from './beacon-format.js';
import { beaconThreadSource } from './beacon-worker.js';

export interface BeaconOptions {
  nodeId: number;
  /** Where this node's mesh listens: the beacon binds the same address and port number, in UDP. */
  host: string;
  port: number;
  intervalMs: number;
  secret: string;
  clusterId: string;
  /** Every other node's mesh address (node id → host:port); their beacons listen there. */
  peers: ReadonlyMap<number, { host: string; port: number }>;
}

export class Beacon {
  private readonly heard = new Int32Array(new SharedArrayBuffer(nodeCountMax * 4));
  private readonly baseMs = Date.now();
  private readonly worker: Worker;
  /** Why the beacon stopped (its UDP port could not be bound), or null while it runs. */
  failure: string | null = null;
  /** Settles once the thread sends beats (or failed, or took longer than beaconStartMsMax: the TCP heartbeats decide meanwhile). */
  readonly ready: Promise<void>;
  private settleReady: () => void = () => {};

  constructor(options: BeaconOptions) {
    assert(options.nodeId >= 0 && options.nodeId < nodeCountMax, 'a beacon serves a node of the cluster');
    const data: BeaconWorkerData = {
      nodeId: options.nodeId, host: options.host, port: options.port, intervalMs: options.intervalMs,
      key: beaconKey(options.secret, options.clusterId), heard: this.heard.buffer as SharedArrayBuffer, baseMs: this.baseMs,
      peers: [...options.peers].filter(([nodeId]) => nodeId !== options.nodeId),
      format: { magic: beatMagic, version: beatVersion, signedBytes: beatSignedBytes, macBytes: beatMacBytes, bytes: beatBytes },
    };
    // An empty environment: the heartbeat thread needs none (and holds only a key derived from the secret).
    this.worker = new Worker(beaconThreadSource, { eval: true, workerData: data, env: {}, resourceLimits: { maxOldGenerationSizeMb: 16 } });
    this.worker.unref();
    this.ready = new Promise((resolve) => {
      this.settleReady = resolve;
      setTimeout(resolve, beaconStartMsMax).unref();
    });
    this.worker.on('message', (message: { type: string; message?: string }) => {
      if (message.type === 'bound') this.settleReady();
      if (message.type === 'error') this.stop(message.message ?? 'unknown error');
    });
    this.worker.on('error', (error: Error) => this.stop(error.message));
  }

  /** When this node last heard a valid beat from `nodeId` (Date.now() time), or null if never. */
  heardAtMs(nodeId: number): number | null {
    const value = Atomics.load(this.heard, nodeId);
    return value === 0 ? null : this.baseMs + value;
  }

  close(): void {
    if (this.failure !== null) return;
    this.failure = 'closed';
    this.worker.postMessage({ type: 'close' });
    setTimeout(() => void this.worker.terminate(), 1000).unref();
  }

  private stop(why: string): void {
    if (this.failure !== null) return;
    this.failure = why;
    this.settleReady();
    void this.worker.terminate();
  }
}
