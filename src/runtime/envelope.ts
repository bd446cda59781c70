// The one message envelope between the runtimes of a cluster's nodes, and
// its lanes. Every message on the mesh is a MeshMessage: the coherence
// engine's traffic (src/protocol/messages.ts), the remote-workers lane
// (src/runtime/remote-workers.ts: a worker started on another node than its
// parent) or the reports lane (src/runtime/run-reports.ts: statistics, trace,
// race records) or the heap lane (slice borrowing between the nodes'
// allocation services, src/runtime/heap-service.ts). Each type belongs to exactly one lane (laneOfType); a
// message is routed by that table and nothing else.
//
// MeshNetwork is the envelope over the transport's Mesh (or a cluster of
// one's SoloMesh): it sends, says what
// became of each send, counts the program's traffic (what the reports lane
// itself sends is not the program's) and hands each arriving message to its
// lane already typed.

import { DsmError, assert, isDsmError } from '../errors.js';
import type { AllocationRecord, IntervalWrites } from '../race/record.js';
import type { ConsistencyInfo, ProtocolMessage, ProtocolMessageType } from '../protocol/messages.js';
import type { WireMessage } from '../transport/codec.js';
import type { MeshPort } from '../transport/mesh.js';
import type { RemoteWorkerOptions } from '../channel/wire.js';
import type { NodeObserver, NodeStats, TraceEvent } from './observe.js';
import type { ChunkMessage } from './heap-service.js';

/** A worker started on another node than its parent thread (src/runtime/remote-workers.ts). */
export type WorkerLaneMessage =
  | { type: 'rtSpawn'; spawnId: string; threadIdSeen: number; entry: string; evalCode: boolean; workerData: Uint8Array; options: RemoteWorkerOptions; info: ConsistencyInfo }
  /** `site` (race mode): where the sender called postMessage, to name the receiver's acquire. */
  | { type: 'rtEvent'; spawnId: string; event: 'online' | 'message' | 'error' | 'exit'; bytes?: Uint8Array; code?: number; threadId?: number; info: ConsistencyInfo; site?: string | null }
  | { type: 'rtPost'; spawnId: string; bytes: Uint8Array; info: ConsistencyInfo; site?: string | null }
  | { type: 'rtTerminate'; spawnId: string };

/** Observability: node 0 asks, every other node answers (src/runtime/run-reports.ts). */
export type ReportLaneMessage =
  | { type: 'rtTraceStart'; originUs: number }
  | { type: 'rtReportRequest'; trace: boolean }
  | { type: 'rtReportTrace'; events: TraceEvent[] }
  | { type: 'rtReport'; stats: NodeStats; dropped: number }
  // race mode (src/race/): every node's interval records and allocations go to node 0's checker
  | { type: 'rtRace'; record: IntervalWrites }
  | { type: 'rtRaceAlloc'; record: AllocationRecord };

/** Slice borrowing between the nodes' allocation services (src/runtime/heap-service.ts). */
export type HeapLaneMessage = ChunkMessage;

export type MeshMessage = ProtocolMessage | WorkerLaneMessage | ReportLaneMessage | HeapLaneMessage;

export type Lane = 'engine' | 'workers' | 'reports' | 'heap';

export type Routed =
  | { lane: 'engine'; message: ProtocolMessage }
  | { lane: 'workers'; message: WorkerLaneMessage }
  | { lane: 'reports'; message: ReportLaneMessage }
  | { lane: 'heap'; message: HeapLaneMessage };

const engineLane = 'engine' as const;

/** Each message type's lane: the compiler checks every type of the envelope is here exactly once. */
const laneOfType: { readonly [T in MeshMessage['type']]: T extends ProtocolMessageType ? 'engine' : T extends WorkerLaneMessage['type'] ? 'workers' : T extends HeapLaneMessage['type'] ? 'heap' : 'reports' } = {
  pageRequest: engineLane, pageReply: engineLane, diffs: engineLane, homeLend: engineLane,
  scRequest: engineLane, scForward: engineLane, scPage: engineLane, scInvalidate: engineLane, scInvalidateAck: engineLane, scConfirm: engineLane,
  lockRequest: engineLane, lockGrant: engineLane, lockRecall: engineLane, lockBusy: engineLane, lockRelease: engineLane,
  barrierArrive: engineLane, barrierDepart: engineLane, barrierFlush: engineLane,
  atomicRequest: engineLane, atomicReply: engineLane, atomicCancel: engineLane, vcQuery: engineLane, vcReport: engineLane,
  lineRequest: engineLane, lineRecall: engineLane, lineRelease: engineLane, lineGrant: engineLane,
  lineWait: engineLane, lineWaitCancel: engineLane, lineNotify: engineLane, lineWake: engineLane, lineNotified: engineLane,
  rtSpawn: 'workers', rtEvent: 'workers', rtPost: 'workers', rtTerminate: 'workers',
  rtTraceStart: 'reports', rtReportRequest: 'reports', rtReportTrace: 'reports', rtReport: 'reports', rtRace: 'reports', rtRaceAlloc: 'reports',
  rtChunkBorrow: 'heap', rtChunkLend: 'heap',
};

export function laneOf(type: string): Lane | null {
  return Object.hasOwn(laneOfType, type) ? laneOfType[type as MeshMessage['type']] : null;
}

function isEngineMessage(message: WireMessage): message is ProtocolMessage & WireMessage {
  return laneOf(message.type) === 'engine';
}

function isWorkerLaneMessage(message: WireMessage): message is WorkerLaneMessage & WireMessage {
  return laneOf(message.type) === 'workers';
}

function isReportLaneMessage(message: WireMessage): message is ReportLaneMessage & WireMessage {
  return laneOf(message.type) === 'reports';
}

function isHeapLaneMessage(message: WireMessage): message is HeapLaneMessage & WireMessage {
  return laneOf(message.type) === 'heap';
}

/** The lane of a message off the wire; null for a type no lane knows. */
export function route(message: WireMessage): Routed | null {
  if (isEngineMessage(message)) return { lane: 'engine', message };
  if (isWorkerLaneMessage(message)) return { lane: 'workers', message };
  if (isReportLaneMessage(message)) return { lane: 'reports', message };
  if (isHeapLaneMessage(message)) return { lane: 'heap', message };
  return null;
}

/**
 * What became of a send. 'sent': handed to the kernel; 'queued': the link is
 * backed up and the message waits in its queue (nothing is dropped: flow
 * control, src/runtime/flow.ts, holds new work until the link drains);
 * 'lost': the peer is gone, its loss is already ending the run (the cluster's
 * failure path says so) and the message goes nowhere.
 */
export type SendOutcome = 'sent' | 'queued' | 'lost';

/** What a lane sends through. */
export interface LaneNetwork<M> {
  send(toNode: number, message: M): SendOutcome;
}

export class MeshNetwork implements LaneNetwork<MeshMessage> {
  private readonly mesh: MeshPort;
  private readonly observer: NodeObserver;

  constructor(mesh: MeshPort, observer: NodeObserver) {
    this.mesh = mesh;
    this.observer = observer;
  }

  send(toNode: number, message: MeshMessage): SendOutcome {
    let flushed: boolean;
    try {
      flushed = this.mesh.send(toNode, message);
    } catch (error) {
      // A connection failing under the send: the same as a peer already lost (throwing here would
      // surface in the engine or in an app thread as a second, wrong error).
      if (isDsmError(error) && (error as DsmError).code === 'DSM_ERR_NODE_DIED') return 'lost';
      throw error;
    }
    if (!flushed && !this.mesh.peerIds.includes(toNode)) return 'lost';
    // What observability itself sends is not part of the program's traffic.
    if (laneOfType[message.type] !== 'reports') this.observer.countSent(message.type, this.mesh.lastSentBytes);
    return flushed ? 'sent' : 'queued';
  }

  /** Delivers every message (those held since the mesh was made first) to `receive`, typed by lane. */
  listen(receive: (from: number, routed: Routed) => void): void {
    this.mesh.deliverTo((from, message) => {
      const routed = route(message);
      if (routed === null) throw new DsmError('DSM_ERR_PROTOCOL', `node ${from} sent a message of unknown type '${message.type}'`);
      if (routed.lane !== 'reports') this.observer.countReceived(this.mesh.lastReceivedBytes);
      receive(from, routed);
    });
  }
}

/** Every other node of the cluster. */
export function otherNodes(nodeId: number, nodeCount: number): number[] {
  assert(nodeId >= 0 && nodeId < nodeCount, 'a node of the cluster');
  return [...Array(nodeCount).keys()].filter((node) => node !== nodeId);
}
