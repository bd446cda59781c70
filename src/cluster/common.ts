// Types and helpers shared by the launcher (node 0) and the joiners.

import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { nodeCountMax, type ProgramSignal, secretEntropyBitsMin } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import { packageVersion } from '../package-info.js';
import { takeEnvironmentSecret } from '../env.js';
import { type Connection, type Hello, peerVanished } from '../transport/connection.js';
import { Listener, Mesh, type PeerAddress } from '../transport/mesh.js';
import { wireVersion } from '../transport/frame.js';
import { refusals } from '../transport/refusals.js';
import type { TlsConfig } from '../transport/tls.js';

export interface PeerInfo {
  nodeId: number;
  host: string;
  /** The port this node's mesh listens on. */
  port: number;
  /** Known when the node is a child of the launcher. */
  pid?: number;
}

/** What every node must agree on; checked by the transport handshake. */
export interface ClusterConfig {
  clusterId: string;
  coherence: string;
  pageBytes: number;
  regionBytes: number;
}

export interface Failure {
  nodeId: number;
  host: string;
  pid?: number;
  reason: string;
  /** The one-line message printed on the launching terminal. */
  message: string;
}

/** The transport's Mesh as the cluster layer sees it. */
export interface MeshLike extends EventEmitter {
  close(): void | Promise<void>;
}

export interface MeshContext {
  nodeId: number;
  nodeCount: number;
  peers: PeerInfo[];
  secret: string;
  hello: Hello;
  /** Already listening on peers[nodeId].port; the mesh accepts its peers here. */
  listener: Listener;
  /** Mutual TLS for the mesh's connections (as for the listener). */
  tls?: TlsConfig;
  /** Floor of the adaptive heartbeat timeout (--heartbeat-timeout). */
  heartbeatTimeoutMs?: number;
}

/** The signals that interrupt a run (Ctrl-C, `timeout`, kill): each node then says where its app threads stand. */
export type InterruptSignal = 'SIGINT' | 'SIGTERM';

/** Whether `signal` interrupts a run (else it is one a program may take that dsm's processes otherwise leave be). */
export function isInterruptSignal(signal: ProgramSignal): signal is InterruptSignal {
  return signal === 'SIGINT' || signal === 'SIGTERM';
}

export interface ClusterHandle {
  readonly nodeId: number;
  readonly nodeCount: number;
  readonly peers: readonly PeerInfo[];
  readonly secret: string;
  readonly mesh: MeshLike | null;
  onFailure(callback: (failure: Failure) => void | Promise<void>): void;
  describeInFlight(describe: () => string): void;
  onShutdown(callback: (code: number) => void | Promise<void>): void;
  /**
   * cb(signal) once, before the shutdown callbacks, when the run is interrupted by SIGINT or SIGTERM: received by
   * node 0, or SIGTERM by this node (then it ends by it), or named by node 0's stop. Not for a program that exits
   * 130 or 143 itself. Optional for a custom handle.
   */
  onInterrupt?(callback: (signal: InterruptSignal) => void | Promise<void>): void;
  /**
   * Node 0: asked first when SIGINT or SIGTERM arrives; true when the program
   * took the signal (its main thread listens for it: process.on('SIGINT')),
   * and the run goes on as a plain node process would. Optional for a custom handle.
   */
  takeSignal?: ((signal: ProgramSignal) => boolean) | null;
  /** Node 0: the signals the program takes changed (every other node is told: Control 'signals'). */
  programSignals?(taken: ProgramSignal[]): void;
  /** The signals the program takes (node 0: handed to it; other nodes: ignored while it does), besides SIGINT/SIGTERM's handlers. */
  listenForProgram?(taken: readonly ProgramSignal[]): void;
  shutdown(code: number): Promise<never>;
  relayOutput(stream: 'stdout' | 'stderr', text: string, threadId?: number): void;
  /** Floor of the adaptive heartbeat timeout every node of this cluster uses (--heartbeat-timeout). */
  readonly heartbeatTimeoutMs?: number;
  /** This node's manager failed (`message` is the one line saying so): end the run and this process. */
  fatal?(message: string): Promise<void>;
}

export { parseAddress } from './address.js';
export { formatAddress } from '../transport/dial.js';

/**
 * The secret from --secret, --secret-file or DSM_SECRET (in that order),
 * refused when weak. DSM_SECRET is removed from this process's environment
 * once read, so the program's threads and their children never see it.
 */
export function secretFromEnvironment(explicit: string | undefined, file?: string): string {
  let secret = explicit;
  let source = '--secret';
  if (secret === undefined && file !== undefined) {
    try {
      secret = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `--secret-file ${file}: ${(error as Error).message}`);
    }
    source = `--secret-file ${file}`;
  }
  const fromEnvironment = takeEnvironmentSecret();
  if (secret === undefined) {
    secret = fromEnvironment;
    source = 'DSM_SECRET';
  }
  if (secret === undefined || secret === '') {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `a cluster across machines needs a shared secret: put one made by \`dsm secret\` in a file readable only by you and pass --secret-file FILE (or set DSM_SECRET) on every node`);
  }
  checkSecretStrength(secret, source);
  return secret;
}

/**
 * Bits of entropy a secret can hold at most: its length times log2 of the
 * alphabet it draws from (lower, upper, digits, others). A generous estimate
 * (it cannot see that "Password1Password1" is weak) that still refuses short
 * and small-alphabet secrets, which an attacker can enumerate.
 */
export function secretEntropyBits(secret: string): number {
  let alphabetSize = 0;
  if (/[a-z]/.test(secret)) alphabetSize += 26;
  if (/[A-Z]/.test(secret)) alphabetSize += 26;
  if (/[0-9]/.test(secret)) alphabetSize += 10;
  if (/[^a-zA-Z0-9]/.test(secret)) alphabetSize += 33;
  // A secret of few distinct characters ("aaaa…", "abab…") draws from no more than those.
  alphabetSize = Math.min(alphabetSize, new Set(secret).size * 4);
  return alphabetSize <= 1 ? 0 : [...secret].length * Math.log2(alphabetSize);
}

export function checkSecretStrength(secret: string, source: string): void {
  const bits = secretEntropyBits(secret);
  if (bits < secretEntropyBitsMin) {
    throw new DsmError('DSM_ERR_WEAK_SECRET', `the secret from ${source} holds at most ${Math.floor(bits)} bits of entropy, below the ${secretEntropyBitsMin} needed: make one with \`dsm secret > FILE\` (or \`openssl rand -base64 32\`) and give every node --secret-file FILE`);
  }
}

/** A fresh secret: 256 random bits, base64url (43 characters). */
export function freshSecret(): string {
  const secret = randomBytes(32).toString('base64url');
  assert(secretEntropyBits(secret) >= secretEntropyBitsMin, 'a fresh secret passes the strength check');
  return secret;
}

export function helloFor(config: ClusterConfig, nodeId: number): Hello {
  return { ...config, dsmVersion: packageVersion, wireVersion, nodeId };
}

export function validateNodeCount(nodeCount: number, optionName: string): void {
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > nodeCountMax) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${optionName} ${nodeCount}: expected an integer from 1 to ${nodeCountMax}`);
  }
}

/** Control messages between node 0 and a joiner. */
export type Control =
  | { type: 'join'; nodeId: number; meshPort: number; pid: number; meshHost: string }
  | { type: 'joined'; nodeId: number }
  | { type: 'table'; nodeId: number; nodeCount: number; peers: PeerInfo[] }
  | { type: 'ready' }
  | { type: 'start' }
  | { type: 'output'; stream: 'stdout' | 'stderr'; text: string; threadId: number }
  | { type: 'failure'; message: string }
  /** A joiner's manager failed; node 0 prints its line as the run's cause. */
  | { type: 'fatal'; message: string }
  /** `signal`: the run was interrupted by it (node 0 received it); each node names its parked requests. */
  | { type: 'shutdown'; code: number; signal?: InterruptSignal }
  /**
   * Node 0: the signals the program takes itself now (its main thread listens
   * for them): a node signalled with its process group (`timeout`'s SIGTERM)
   * leaves the signal to the program rather than ending its part of the run.
   */
  | { type: 'signals'; taken: ProgramSignal[] };

export function sendControl(connection: Connection, message: Control): void {
  assert(typeof message.type === 'string', 'control messages carry a type');
  connection.send(message as unknown as Parameters<Connection['send']>[0]);
}

/** Prefixes each line with a tag, keeping a partial last line for the next chunk. */
export { LineTagger } from '../util/line-tagger.js';

/**
 * Sockets that reached a mesh listener before this node built its Mesh: a
 * faster peer may dial as soon as it has the table, and the Listener drops a
 * socket nobody listens for, so they wait here until the Mesh exists.
 */
const earlySockets = new WeakMap<Listener, Socket[]>();

/** Listens for this node's mesh on an ephemeral port, holding early sockets (see earlySockets). */
export async function listenMesh(host: string, tlsConfig?: TlsConfig): Promise<Listener> {
  const listener = await Listener.listen(host, 0, tlsConfig, 'mesh address');
  const early: Socket[] = [];
  earlySockets.set(listener, early);
  listener.on('socket', (socket: Socket) => {
    if (listener.listenerCount('socket') > 1) return;
    // Anyone may connect here; a reset before the mesh runs its handshake must not be an unhandled 'error'.
    socket.on('error', () => {});
    // A real peer dials once; more than a cluster's worth can only be strangers, so the oldest go.
    if (early.length >= nodeCountMax) early.shift()!.destroy();
    early.push(socket);
  });
  return listener;
}

/** Hands the sockets that arrived before the mesh to the mesh's own 'socket' listener. */
export function releaseEarlySockets(listener: Listener): void {
  const early = earlySockets.get(listener) ?? [];
  assert(listener.listenerCount('socket') > 1, 'the mesh listens before early sockets are released');
  for (const socket of early.splice(0)) listener.emit('socket', socket);
}

/**
 * The default mesh: the transport's Mesh over the address table, started
 * (every pair connected) before the cluster says "start".
 */
export async function createTransportMesh(context: MeshContext): Promise<MeshLike> {
  const addresses = new Map<number, PeerAddress>(context.peers.map((peer) => [peer.nodeId, { host: peer.host, port: peer.port }]));
  assert(addresses.size === context.nodeCount, 'the address table names every node once');
  const mesh = new Mesh({
    nodeId: context.nodeId, listener: context.listener, addresses, hello: context.hello, secret: context.secret,
    ...(context.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs: context.heartbeatTimeoutMs }),
    ...(context.tls === undefined ? {} : { tls: context.tls }),
  });
  mesh.on('refused', (error: DsmError) => refusals.report(`dsm: ${error.code}: ${error.message}`, peerVanished(error)));
  releaseEarlySockets(context.listener);
  // A peer that vanishes mid-handshake now is most likely a node of this run dying: its line waits for the start's outcome.
  // Not started (a throw): the process ends, as a node failure (dropping the held lines) or printing them at its exit.
  const started = refusals.holdWhileStarting();
  await mesh.start();
  started();
  return mesh;
}
