// The mesh of a cluster of one (`dsm run` on one node): no peer, so no
// socket, no heartbeat and no message. The runtime runs over it exactly as
// over the transport's Mesh (src/runtime/cluster-node.ts); a send is a bug
// (every page, lock, barrier and atomic line of a cluster of one is at home),
// so it is refused by an assertion rather than dropped.

import { EventEmitter } from 'node:events';
import { DsmError } from '../errors.js';
import type { WireMessage } from './codec.js';
import type { MeshPort } from './mesh.js';

export class SoloMesh extends EventEmitter implements MeshPort {
  readonly nodeId = 0;
  readonly peerIds: number[] = [];
  readonly queuingPeerIds: ReadonlySet<number> = new Set();
  readonly lastSentBytes = 0;
  readonly lastReceivedBytes = 0;

  send(nodeId: number, message: WireMessage): boolean {
    throw new DsmError('DSM_ERR_INTERNAL', `invariant failed: a cluster of one sends nothing (a '${message.type}' to node ${nodeId})`);
  }

  queuedBytes(_nodeId: number): number {
    return 0;
  }

  /** Nothing can arrive: there is nothing to hold. */
  holdMessages(): void {}

  deliverTo(listener: (from: number, message: WireMessage) => void): void {
    this.on('message', listener);
  }

  close(): void {
    this.removeAllListeners();
  }
}
