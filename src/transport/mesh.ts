// Listening, connecting with bounded retries, and the full mesh of
// connections between the nodes of a cluster (exactly one per pair: node i
// dials every node j < i, and accepts every node j > i), kept alive by
// heartbeats so a silent peer is reported, never waited on forever.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { beaconDelayMs, beaconStartMsMax, connectRetryCountMax, connectRetryIntervalMs, heartbeatIntervalMs, heartbeatTimeoutMs, nodeCountMax } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import type { WireMessage } from './codec.js';
import { type Connection, type Hello, HandshakeDoor, handshake } from './connection.js';
import { type TlsConfig, connectionEventOf, createStreamServer } from './tls.js';
import { type PeerAddress, dialWithRetry, formatAddress } from './dial.js';
import { FailureDetector, LoopLateness } from './failure-detector.js';
import { Beacon } from './beacon.js';
import { hop, hopsOn } from '../util/hops.js';

export type { PeerAddress } from './dial.js';
const where = (address: PeerAddress): string => formatAddress(address.host, address.port);

/** A bound TCP listener; sockets it accepts are emitted as 'socket' (run `acceptPeer` on them). */
export class Listener extends EventEmitter {
  readonly server: net.Server;
  readonly address: PeerAddress;
  /** Handshakes under way on this listener (bounded: see HandshakeDoor). */
  readonly door = new HandshakeDoor();

  private constructor(server: net.Server, address: PeerAddress, tlsConfig: TlsConfig | undefined) {
    super();
    this.server = server;
    this.address = address;
    server.on(connectionEventOf(tlsConfig), (socket: net.Socket) => this.emit('socket', socket));
  }

  /**
   * Binds host:port (port 0 picks a free one); `what` names it in errors ("listen address").
   * EADDRINUSE becomes DSM_ERR_PORT_IN_USE, EADDRNOTAVAIL and the rest DSM_ERR_UNREACHABLE, naming the address.
   */
  static listen(host: string, port: number, tlsConfig?: TlsConfig, what = 'listen address'): Promise<Listener> {
    assert(Number.isInteger(port) && port >= 0 && port <= 65535, 'a listen port is a TCP port number');
    const server = createStreamServer(tlsConfig);
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const at = `${what} ${formatAddress(host, port)}`;
        if (error.code === 'EADDRINUSE') {
          reject(new DsmError('DSM_ERR_PORT_IN_USE', `${at} is in use: choose another port (e.g. ${port === 65535 ? port - 1 : port + 1}) or stop the process holding it`));
        } else if (error.code === 'EADDRNOTAVAIL') {
          reject(new DsmError('DSM_ERR_UNREACHABLE', `${at}: no interface of this machine has that address`));
        } else {
          reject(new DsmError('DSM_ERR_UNREACHABLE', `cannot listen on ${at}: ${error.message}`));
        }
      });
      server.listen({ host, port, exclusive: true }, () => {
        const bound = server.address() as net.AddressInfo;
        resolve(new Listener(server, { host, port: bound.port }, tlsConfig));
      });
    });
  }

  close(): void {
    this.server.close();
  }
}

/**
 * Dials a peer and runs the handshake. Connection errors that a peer still
 * starting up would cause are retried `retryCountMax` times
 * (`connectRetryIntervalMs` apart), then reported as DSM_ERR_UNREACHABLE.
 */
export async function connectPeer(options: PeerAddress & { hello: Hello; secret: string; retryCountMax?: number; peerLabel?: string; tls?: TlsConfig }): Promise<Connection> {
  const label = options.peerLabel ?? where(options);
  const socket = await dialWithRetry(options, {
    intervalMs: connectRetryIntervalMs, retryCountMax: options.retryCountMax ?? connectRetryCountMax, label,
    hint: 'is the node running and the port open?', ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  return handshake(socket, { hello: options.hello, secret: options.secret, role: 'connect', peerLabel: label });
}

/** Runs the accepting side of the handshake on a socket a Listener emitted. */
export function acceptPeer(socket: net.Socket, options: { hello: Hello; secret: string; door?: HandshakeDoor }): Promise<Connection> {
  const label = `peer at ${formatAddress((socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, ''), socket.remotePort ?? 0)}`;
  return handshake(socket, { hello: options.hello, secret: options.secret, role: 'accept', peerLabel: label, ...(options.door === undefined ? {} : { door: options.door }) });
}

export interface MeshOptions {
  nodeId: number;
  listener: Listener;
  /** Every node's address, own included (node id → host:port). */
  addresses: ReadonlyMap<number, PeerAddress>;
  hello: Hello;
  secret: string;
  heartbeatIntervalMs?: number;
  /** The floor of the adaptive timeout (see FailureDetector). */
  heartbeatTimeoutMs?: number;
  /** Mutual TLS under the handshake (the listener must use the same). */
  tls?: TlsConfig;
  /** Heartbeats from a thread of their own as well (beacon.ts); default true. */
  beacon?: boolean;
}

interface Peer {
  connection: Connection;
  detector: FailureDetector;
  /** The last beacon beat fed to the detector (Date.now() time). */
  beaconHeardMs: number;
}

/**
 * What the runtime uses of a mesh (src/runtime/envelope.ts, flow control):
 * the transport's Mesh, or a cluster of one's SoloMesh (src/transport/solo-mesh.ts).
 * Events: 'message' and 'drain' as on Mesh ('peer-lost' never comes from a mesh of one).
 */
export interface MeshPort extends EventEmitter {
  readonly nodeId: number;
  send(nodeId: number, message: WireMessage): boolean;
  queuedBytes(nodeId: number): number;
  /** The peers whose queue may hold bytes: a superset of those whose queuedBytes is above 0 (see Mesh.queuingPeerIds). */
  readonly queuingPeerIds: ReadonlySet<number>;
  readonly peerIds: number[];
  readonly lastSentBytes: number;
  readonly lastReceivedBytes: number;
  holdMessages(): void;
  deliverTo(listener: (from: number, message: WireMessage) => void): void;
  close(): void;
}

/**
 * The connections of one node to all others. Events:
 * 'message' (from: number, message: WireMessage; until a receiver is named by deliverTo), 'peer-lost' (nodeId, DsmError),
 * 'drain' (nodeId) when the queue to that peer has emptied,
 * 'refused' (DsmError) for a stranger turned away at the door (the mesh keeps serving;
 * not 'error', so an unheeded one cannot crash the process).
 */
export class Mesh extends EventEmitter implements MeshPort {
  readonly nodeId: number;
  private readonly options: MeshOptions;
  private readonly peers = new Map<number, Peer>();
  private readonly lost = new Set<number>();
  private readonly beatIntervalMs: number;
  private readonly beatTimeoutMs: number;
  private timer: NodeJS.Timeout | null = null;
  private lateness: LoopLateness | null = null;
  /** When start() began (Date.now()): the heartbeat threads' boot grace counts from here. */
  private startedMs = 0;
  /** Whether this mesh runs beacons (so peers' beacons may still be booting in the grace after the start). */
  private beaconsOn = false;
  private beacon: Beacon | null = null;
  private closing = false;
  private onListenerSocket = (socket: net.Socket) => this.accept(socket);

  constructor(options: MeshOptions) {
    super();
    assert(options.addresses.size <= nodeCountMax, 'the address table is within nodeCountMax');
    assert(options.hello.nodeId === options.nodeId, 'the hello names our own node id');
    assert(options.addresses.has(options.nodeId), 'the address table holds our own address');
    this.nodeId = options.nodeId;
    this.options = options;
    this.beatIntervalMs = options.heartbeatIntervalMs ?? heartbeatIntervalMs;
    this.beatTimeoutMs = options.heartbeatTimeoutMs ?? heartbeatTimeoutMs;
    assert(this.beatTimeoutMs > 2 * this.beatIntervalMs, 'a heartbeat timeout spans several heartbeats');
    options.listener.on('socket', this.onListenerSocket);
  }

  /** Connects to every lower node id and waits until every peer is connected (or one fails). */
  async start(): Promise<void> {
    const all = new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.peers.size === this.options.addresses.size - 1) cleanup(resolve);
      };
      const fail = (nodeId: number, error: DsmError) => cleanup(() => reject(error));
      const cleanup = (then: () => void) => {
        this.off('peer-connected', check);
        this.off('peer-lost', fail);
        then();
      };
      this.on('peer-connected', check);
      this.on('peer-lost', fail);
      check();
    });
    for (const [nodeId, address] of this.options.addresses) {
      if (nodeId >= this.nodeId) continue;
      connectPeer({ ...address, hello: this.options.hello, secret: this.options.secret, peerLabel: `node ${nodeId}`, ...(this.options.tls === undefined ? {} : { tls: this.options.tls }) }).then(
        (connection) => this.adopt(nodeId, connection),
        (error: DsmError) => this.reportLost(nodeId, error),
      );
    }
    if (this.options.beacon ?? true) {
      // Started a while after the mesh (its thread's boot, 40-100 ms of CPU, would compete with every
      // start, and a run shorter than the delay never needs it); until then, and until beaconStartMsMax
      // after the start, a peer not yet heard on UDP is not declared dead by TCP silence (tick).
      const timer = setTimeout(() => {
        if (this.closing) return;
        this.beacon = new Beacon({
          nodeId: this.nodeId, host: this.options.listener.address.host, port: this.options.listener.address.port, intervalMs: this.beatIntervalMs,
          secret: this.options.secret, clusterId: this.options.hello.clusterId, peers: this.options.addresses,
        });
        if (hopsOn) void this.beacon.ready.then(() => hop('m:beacon ready'));
      }, beaconDelayMs);
      timer.unref();
      this.beaconsOn = true;
    }
    this.lateness = new LoopLateness(this.beatIntervalMs, Date.now());
    this.timer = setInterval(() => this.tick(), this.beatIntervalMs);
    // The run starts once the heartbeat thread beats: a main thread busy right after the start is not silent.
    // The run starts once the peers are connected, not once the heartbeat thread beats (its boot,
    // 20–250 ms, was on every start's path): until a peer's beacon is first heard, and for at most
    // beaconStartMsMax, silence on TCP alone does not make it dead (tick), so a main thread busy
    // right after the start is not taken for a dead node while its beacon boots.
    this.startedMs = Date.now();
    await all;
    if (hopsOn) hop('m:mesh connected');
  }

  /**
   * Peers whose send queue may hold bytes. A queue grows only at our writes
   * (send, heartbeat), so a peer is added there when its write left bytes
   * queued; it leaves when its queue is seen empty (queuedBytes, 'drain'),
   * which Node does not always announce (no 'drain' below the high-water
   * mark). So the set is a superset of the peers with queued bytes, and the
   * flow gate's check at every admission reads only its size when it is empty.
   */
  private readonly queuing = new Set<number>();
  get queuingPeerIds(): ReadonlySet<number> {
    return this.queuing;
  }

  /** Bytes queued to one peer and not yet handed to the kernel (0 for a peer not connected). */
  queuedBytes(nodeId: number): number {
    const bytes = this.peers.get(nodeId)?.connection.queuedBytes ?? 0;
    if (bytes === 0) this.queuing.delete(nodeId);
    return bytes;
  }

  /** Sends to one peer, never throwing for a full queue; false means that socket is backed up (see Connection.send). */
  send(nodeId: number, message: WireMessage): boolean {
    const peer = this.peers.get(nodeId);
    if (peer === undefined) {
      // A lost peer was reported ('peer-lost') and ends the run; until then what is sent to it goes nowhere.
      assert(this.lost.has(nodeId) || this.closing, `node ${this.nodeId} sends only to a node of the mesh (not ${nodeId})`);
      return false;
    }
    const flushed = peer.connection.send(message);
    this.lastSentBytes = peer.connection.lastSentBytes;
    if (peer.connection.queuedBytes > 0) this.queuing.add(nodeId);
    return flushed;
  }

  /** Frame bytes of the last message sent, and of the message being delivered (for counters kept by the caller). */
  lastSentBytes = 0;
  lastReceivedBytes = 0;

  /** Messages held until the receiver is wired (holdMessages), with their frame bytes; null when delivering. */
  private held: Array<{ from: number; message: WireMessage; bytes: number }> | null = null;

  /**
   * From now on, messages are held instead of emitted, until `deliverTo`: a
   * peer may send before this node has wired what receives them.
   */
  holdMessages(): void {
    assert(this.held === null, 'messages are held once');
    this.held = [];
  }

  /**
   * The receiver deliverTo named: called directly for every message (two EventEmitter emits a message fewer,
   * in code a short program runs cold); 'message' events are emitted only while there is none.
   */
  private receiver: ((from: number, message: WireMessage) => void) | null = null;

  /** Hands the held messages to `listener`, in arrival order, then every message from then on (instead of 'message' events). */
  deliverTo(listener: (from: number, message: WireMessage) => void): void {
    assert(this.receiver === null, 'one receiver for a mesh');
    const held = this.held ?? [];
    this.held = null;
    this.receiver = listener;
    for (const { from, message, bytes } of held) {
      this.lastReceivedBytes = bytes;
      listener(from, message);
    }
  }

  /** The sorted ids of the connected peers, built again only when a peer comes or goes (null: stale). */
  private peerIdList: number[] | null = null;

  /**
   * The connected peers' ids, ascending. The same (frozen) array until a peer
   * comes or goes: the flow gate reads it at every admission and the envelope
   * at sends, and a new sorted array each time was most of their cost.
   */
  get peerIds(): number[] {
    if (this.peerIdList === null) this.peerIdList = Object.freeze([...this.peers.keys()].sort((a, b) => a - b)) as number[];
    return this.peerIdList;
  }

  close(): void {
    this.closing = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.beacon?.close();
    this.options.listener.off('socket', this.onListenerSocket);
    for (const peer of this.peers.values()) peer.connection.close();
    this.peers.clear();
    this.queuing.clear();
    this.peerIdList = null;
  }

  private accept(socket: net.Socket): void {
    acceptPeer(socket, { hello: this.options.hello, secret: this.options.secret, door: this.options.listener.door }).then((connection) => {
      const nodeId = connection.peer.nodeId;
      // Only higher ids dial us; anything else is a misconfigured or duplicate peer.
      if (!this.options.addresses.has(nodeId) || nodeId <= this.nodeId || this.peers.has(nodeId)) {
        connection.close();
        this.emit('refused', new DsmError('DSM_ERR_HANDSHAKE', `node ${this.nodeId} refused a connection from node ${nodeId} (${socket.remoteAddress}): not an expected peer`));
        return;
      }
      this.adopt(nodeId, connection);
    }, (error: DsmError) => this.emit('refused', error));
  }

  private adopt(nodeId: number, connection: Connection): void {
    assert(connection.peer.nodeId === nodeId, 'the peer is the node we dialled');
    if (this.closing) {
      connection.close();
      return;
    }
    const peer: Peer = { connection, detector: new FailureDetector(this.beatTimeoutMs, this.beatIntervalMs, Date.now()), beaconHeardMs: 0 };
    this.peers.set(nodeId, peer);
    this.peerIdList = null;
    // A burst's frames go in one write (Connection.send).
    connection.holdsTurnFrames = true;
    connection.receiver = (message: WireMessage) => {
      peer.detector.heard(Date.now());
      // A page reply's payload is the connection's reusable reply buffer, free again once this returns
      // (src/transport/frame-reader.ts): a reply kept past it (held, or emitted to listeners) takes a copy.
      const keep = this.held !== null || this.receiver === null;
      if (keep && message.type === 'pageReply' && message.payload !== undefined) message.payload = Buffer.from(message.payload);
      if (this.held !== null) {
        this.held.push({ from: nodeId, message, bytes: connection.lastReceivedBytes });
        return;
      }
      this.lastReceivedBytes = connection.lastReceivedBytes;
      if (this.receiver !== null) this.receiver(nodeId, message);
      else this.emit('message', nodeId, message);
    };
    // Frames held to a turn's end that the kernel did not take at once: the queue grew after the send saw it.
    connection.on('backlog', () => {
      if (connection.queuedBytes > 0) this.queuing.add(nodeId);
    });
    connection.on('drain', () => {
      if (connection.queuedBytes === 0) this.queuing.delete(nodeId);
      this.emit('drain', nodeId);
    });
    connection.on('heartbeat', () => {
      peer.detector.heard(Date.now());
    });
    connection.on('error', (error: DsmError) => this.reportLost(nodeId, error));
    // A label that names the node already ("node 1 (127.0.0.1:40055)") is not wrapped in another.
    const who = connection.peerLabel.startsWith(`node ${nodeId}`) ? connection.peerLabel : `node ${nodeId} (${connection.peerLabel})`;
    connection.on('close', () => this.reportLost(nodeId, new DsmError('DSM_ERR_NODE_DIED', `${who} closed its connection`)));
    this.emit('peer-connected', nodeId);
  }

  private tick(): void {
    const nowMs = Date.now();
    // A late tick means this loop stood still: what peers sent meanwhile waits unread, not their fault.
    const lateMs = this.lateness?.tick(nowMs) ?? 0;
    for (const [nodeId, peer] of this.peers) {
      peer.detector.excuse(lateMs);
      // Beats from the peer's heartbeat thread arrive even while its main thread (or ours) is busy.
      const beaconMs = this.beacon?.heardAtMs(nodeId) ?? null;
      if (beaconMs !== null && beaconMs > peer.beaconHeardMs) {
        peer.beaconHeardMs = beaconMs;
        peer.detector.heard(beaconMs);
      }
      const beaconBooting = this.beaconsOn && peer.beaconHeardMs === 0 && nowMs - this.startedMs < beaconStartMsMax;
      if (!beaconBooting && peer.detector.dead(nowMs)) {
        this.reportLost(nodeId, new DsmError('DSM_ERR_NODE_DIED', `node ${nodeId} (${this.options.addresses.get(nodeId)!.host}) stopped answering: ${peer.detector.describe(nowMs)}`));
        continue;
      }
      peer.connection.sendHeartbeat();
      if (peer.connection.queuedBytes > 0) this.queuing.add(nodeId);
    }
  }

  private reportLost(nodeId: number, error: DsmError): void {
    if (this.closing || this.lost.has(nodeId)) return;
    this.lost.add(nodeId);
    const peer = this.peers.get(nodeId);
    this.peers.delete(nodeId);
    this.queuing.delete(nodeId);
    this.peerIdList = null;
    peer?.connection.socket.destroy();
    this.emit('peer-lost', nodeId, error);
  }
}
