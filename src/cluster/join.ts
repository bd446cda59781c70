// Every node but node 0: connect to node 0 (retrying while it is not up yet),
// prove the secret, receive a node id and the address table, build the mesh,
// wait for "start"; afterwards exit with the cluster.

import type { Listener } from '../transport/mesh.js';
import { failureReportMsMax, heartbeatTimeoutMs, joinRetryIntervalMs, joinTimeoutMsDefault, outputRelayBytesMax, pageBytes, parentCheckIntervalMs, type ProgramSignal, programSignalNames, regionBytesDefault, shutdownGraceMs, signalledNodeStopWaitMs, exitDeadlineMs } from '../constants.js';
import { DsmError, assert, exitCodeNodeDied } from '../errors.js';
import { type Connection, handshake } from '../transport/connection.js';
import type { TlsConfig } from '../transport/tls.js';
import { dialWithRetry } from '../transport/dial.js';
import {
  type ClusterConfig, type ClusterHandle, type Control, type InterruptSignal, type MeshContext, type MeshLike,
  checkSecretStrength, createTransportMesh, isInterruptSignal, formatAddress, helloFor, listenMesh, parseAddress, secretFromEnvironment, sendControl,
} from './common.js';
import { NodeHandle } from './handle.js';
import { progress } from './progress.js';
import type { ChildJoinEnvironment } from '../env.js';
import { exitProcess } from './watchdog.js';
import { hop, hopsOn } from '../util/hops.js';

export interface JoinOptions {
  join: { host: string; port: number };
  secret: string;
  config?: Partial<ClusterConfig>;
  /** A local child knows its id; a remote joiner gets the next free one. */
  nodeId?: number;
  joinTimeoutMs?: number;
  /** Address this node's mesh listens on (--bind); default the local address of the connection to node 0. */
  meshHost?: string;
  /** Default: the transport's Mesh over the address table; null: no mesh. */
  createMesh?: ((context: MeshContext) => Promise<MeshLike>) | null;
  /** After start, send this process's stdout/stderr writes to node 0's terminal (for a node on another machine). */
  relayProcessOutput?: boolean;
  /** Exit when this pid is gone or stdin reaches EOF (a local child). */
  supervisedBy?: number;
  /** Mutual TLS (--tls-cert/--tls-key/--tls-ca), as node 0 uses. */
  tls?: TlsConfig;
  /** Floor of the adaptive heartbeat timeout (--heartbeat-timeout; a local child gets node 0's). */
  heartbeatTimeoutMs?: number;
}

/** A local child dies with its launcher: EOF on stdin, or the parent pid changing, ends it at once. */
export function watchParent(parentPid: number): void {
  const die = (): void => exitProcess(exitCodeNodeDied);
  process.stdin.on('end', die);
  process.stdin.on('close', die);
  process.stdin.on('error', die);
  process.stdin.resume();
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) die();
  }, parentCheckIntervalMs);
  timer.unref();
  // The terminal's SIGINT reaches the whole process group; the launcher decides how the cluster ends.
  process.on('SIGINT', () => {});
}

/** Retry progress about once a second. */
const progressEveryAttempts = Math.max(1, Math.round(1000 / joinRetryIntervalMs));

export async function joinCluster(options: JoinOptions): Promise<ClusterHandle> {
  if (options.supervisedBy !== undefined) watchParent(options.supervisedBy);
  const config: ClusterConfig = {
    clusterId: options.config?.clusterId ?? 'dsm',
    coherence: options.config?.coherence ?? 'hlrc',
    pageBytes: options.config?.pageBytes ?? pageBytes,
    regionBytes: options.config?.regionBytes ?? regionBytesDefault,
  };
  const requestedId = options.nodeId ?? -1;
  const deadlineMs = Date.now() + (options.joinTimeoutMs ?? joinTimeoutMsDefault);
  const { host, port } = options.join;
  checkSecretStrength(options.secret, 'the join options');
  const where = formatAddress(host, port);
  const socket = await dialWithRetry({ host, port }, {
    intervalMs: joinRetryIntervalMs, deadlineMs, label: 'node 0',
    hint: 'check the address, that dsm run --listen is running there, and the firewall',
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    // Said at once, then about once a second: a wrong address should not look like a hang.
    onRetry: (attempt, code) => {
      if (attempt !== 1 && attempt % progressEveryAttempts !== 0) return;
      const leftS = Math.max(0, Math.round((deadlineMs - Date.now()) / 1000));
      progress(`node 0 at ${where} is not reachable yet (${code}); retrying every ${joinRetryIntervalMs} ms, attempt ${attempt}, giving up in ${leftS} s (--join-timeout)`);
    },
    onGiveUp: (attemptCount) => progress(`giving up on node 0 at ${where} after ${attemptCount} attempts`),
  });
  const connection = await handshake(socket, { hello: helloFor(config, requestedId), secret: options.secret, role: 'connect', peerLabel: `node 0 at ${formatAddress(host, port)}` });
  connection.on('error', () => {});
  // The mesh listens on the address this machine reaches node 0 from (the cluster's network), never on every
  // interface, unless --bind says otherwise.
  const meshHost = options.meshHost ?? (connection.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  let meshServer: Listener;
  try {
    meshServer = await listenMesh(meshHost, options.tls);
  } catch (error) {
    connection.close();
    throw error;
  }
  const join: Control = { type: 'join', nodeId: requestedId, meshPort: meshServer.address.port, pid: process.pid, meshHost };
  const joiner = new Joiner(connection, meshServer, options, config, host);
  // Before the watchdog chains its handler in front (src/cluster/watchdog.ts: supervise), as node 0's are.
  process.on('SIGTERM', () => void joiner.terminated());
  const waiting = joiner.waitForStart();
  // Repeated until node 0 acknowledges: a message that arrives together with the handshake's last frame
  // can be emitted before node 0 listens for it.
  sendControl(connection, join);
  const repeat = setInterval(() => {
    if (joiner.acknowledged || connection.socket.destroyed) clearInterval(repeat);
    else sendControl(connection, join);
  }, joinRetryIntervalMs);
  return waiting.finally(() => clearInterval(repeat));
}

class Joiner extends NodeHandle {
  nodeId = -1;
  acknowledged = false;
  private droppedOutputBytes = 0;
  /** The terminal's own writes, kept for when the link to node 0 is gone. */
  private readonly localWrites = new Map<string, (text: string) => void>();
  private started = false;

  constructor(
    private readonly connection: Connection,
    private readonly meshServer: Listener,
    private readonly options: JoinOptions,
    private readonly config: ClusterConfig,
    private readonly joinHost: string,
  ) {
    super(options.secret, options.heartbeatTimeoutMs ?? heartbeatTimeoutMs);
  }

  waitForStart(): Promise<ClusterHandle> {
    return new Promise((resolve, reject) => {
      this.connection.on('close', () => {
        if (!this.started) {
          this.meshServer.close();
          reject(new DsmError('DSM_ERR_NODE_DIED', `node 0 at ${formatAddress(this.joinHost, this.options.join.port)} closed the connection before the cluster started (it may have timed out waiting for the other nodes)`));
        } else if (!this.ending) {
          const failure = this.connection.failure;
          void this.lost(failure !== null ? `the connection to node 0 (${this.joinHost}) broke: ${failure.message}` : `node 0 (${this.joinHost}) closed its connection`);
        }
      });
      this.connection.on('message', (message) => {
        // A message node 0 sent that cannot be handled ends this node with a line naming node 0, never an unhandled rejection.
        this.onMessage(message as unknown as Control, resolve, reject).catch((error: unknown) => {
          const what = `node 0 (${formatAddress(this.joinHost, this.options.join.port)}) sent a '${String((message as { type?: unknown }).type).slice(0, 64)}' message that could not be handled (${(error as Error)?.message ?? String(error)})`;
          if (this.started) void this.lost(what);
          else reject(new DsmError('DSM_ERR_FRAME', what));
        });
      });
    });
  }

  private async onMessage(message: Control, resolve: (handle: ClusterHandle) => void, reject: (error: unknown) => void): Promise<void> {
    switch (message.type) {
      case 'joined':
        if (!this.acknowledged) progress(`joined as node ${message.nodeId}; waiting for the other nodes`);
        this.acknowledged = true;
        return;
      case 'table': {
        this.acknowledged = true;
        assert(message.peers.length === message.nodeCount, 'the table lists every node');
        this.nodeId = message.nodeId;
        this.nodeCount = message.nodeCount;
        // Node 0 may listen on a wildcard; reach its mesh where we reached it.
        this.peers = message.peers.map((peer) => (peer.nodeId === 0 ? { ...peer, host: this.joinHost } : peer));
        try {
          if (this.options.createMesh !== null) {
            this.mesh = await (this.options.createMesh ?? createTransportMesh)({
              nodeId: this.nodeId, nodeCount: this.nodeCount, peers: this.peers, secret: this.secret,
              hello: helloFor(this.config, this.nodeId), listener: this.meshServer,
              ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
              heartbeatTimeoutMs: this.heartbeatTimeoutMs,
            });
            this.watchPeerLost(this.mesh, (nodeId, reason) => {
              const lost = `node ${nodeId} (${this.whereIs(nodeId).where}) ${reason} (seen by node ${this.nodeId})`;
              void this.report(`dsm: DSM_ERR_NODE_DIED: ${lost}${this.inFlightSuffix()}; the run was ended`, lost);
            });
          }
        } catch (error) {
          reject(error);
          this.connection.close();
          return;
        }
        if (hopsOn) hop('m:ready');
        sendControl(this.connection, { type: 'ready' });
        return;
      }
      case 'start':
        progress(`all ${this.nodeCount} nodes joined; the program runs (its output appears on node 0's terminal)`);
        this.started = true;
        if (this.options.relayProcessOutput === true) this.relayProcessOutput();
        resolve(this);
        return;
      case 'failure':
        this.ending = true;
        // Node 0 prints it on the launching terminal; a remote node prints it on its own as well.
        if (this.options.supervisedBy === undefined) process.stderr.write(`${message.message}\n`);
        await this.failed(message.message);
        this.exit(exitCodeNodeDied);
        return;
      case 'shutdown':
        await this.stop(message.code, message.signal);
        return;
      case 'signals': {
        const taken = (Array.isArray(message.taken) ? message.taken : []).filter((signal): signal is ProgramSignal => (programSignalNames as readonly unknown[]).includes(signal));
        this.programSignalsTaken = new Set(taken.filter(isInterruptSignal));
        // The others: ignored here while the program takes them (node 0 hands a group's signal to it once).
        this.listenForProgram(taken);
        return;
      }
      default:
        process.stderr.write(`dsm: node 0 sent an unexpected control message '${message.type}'; ignored\n`);
    }
  }

  /**
   * This node's manager failed: node 0 prints the line and ends the run (a
   * node on another machine prints it here too); if node 0 cannot be told,
   * this node ends on its own. The watchdog bounds both.
   */
  async fatal(message: string): Promise<void> {
    if (this.options.supervisedBy === undefined || this.connection.socket.destroyed) process.stderr.write(`${message}\n`);
    if (this.connection.socket.destroyed) {
      this.exit(exitCodeNodeDied);
      return;
    }
    try {
      sendControl(this.connection, { type: 'fatal', message });
    } catch {
      if (this.options.supervisedBy !== undefined) process.stderr.write(`${message}\n`);
      this.exit(exitCodeNodeDied);
      return;
    }
    // Node 0 answers with 'failure' or 'shutdown'; end anyway if it does not.
    setTimeout(() => this.exit(exitCodeNodeDied), failureReportMsMax).unref();
  }

  /**
   * Tells node 0, which ends the run everywhere. When node 0 does not answer
   * (this node is cut off from it too: a partition), this node ends on its own.
   */
  private async report(message: string, reason: string): Promise<void> {
    if (this.ending) return;
    try {
      sendControl(this.connection, { type: 'failure', message });
    } catch {
      await this.lost(reason);
      return;
    }
    setTimeout(() => void this.lost(reason), failureReportMsMax + shutdownGraceMs).unref();
  }

  private async lost(reason: string): Promise<void> {
    if (this.ending) return;
    // From here on this node's output stays on its own terminal: the link to node 0 is gone or unanswered
    // (a partition), and its line must not be relayed into the void.
    this.ending = true;
    const message = `dsm: DSM_ERR_NODE_DIED: ${reason}; node ${this.nodeId} is ending${this.inFlightSuffix()}`;
    await this.failed(message);
    process.stderr.write(`${message}\n`);
    this.exit(exitCodeNodeDied);
  }

  private failed(message: string): Promise<void> {
    return this.runFailureCallbacks({ nodeId: 0, host: this.joinHost, reason: message, message });
  }

  private async stop(code: number, signal: InterruptSignal | undefined): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    if (hopsOn) hop('m:shutdown received');
    if (signal !== undefined) await this.runInterruptCallbacks(signal);
    await this.runShutdownCallbacks(code);
    if (hopsOn) hop('m:shutdown callbacks run');
    try { await this.mesh?.close(); } catch { /* the run is over */ }
    this.exit(code);
  }

  /** The signals the program takes itself (Control 'signals' from node 0). */
  private programSignalsTaken = new Set<InterruptSignal>();

  /**
   * SIGTERM to this node: once the run started, it names its parked requests (the interrupt callbacks), then waits
   * up to signalledNodeStopWaitMs for node 0's stop: the whole process group was signalled (`timeout` does so), so
   * node 0 is ending the run and this node ends with it. Otherwise (the signal was for this node alone, or came
   * before the start) it ends as without this handler: killed by SIGTERM, which node 0 names as the run's cause.
   * Not while the program takes SIGTERM itself (Control 'signals'): it decides how the run ends.
   */
  async terminated(): Promise<void> {
    // The program takes SIGTERM itself (its main thread, on node 0, listens): node 0 got it too and hands it over.
    if (this.started && !this.ending && this.programSignalsTaken.has('SIGTERM')) return;
    if (this.started && !this.ending) {
      await this.runInterruptCallbacks('SIGTERM');
      await new Promise<void>((resolve) => setTimeout(resolve, signalledNodeStopWaitMs));
    }
    if (this.ending) return;
    process.stderr.write('', () => {
      // The last listener gone, the disposition is the default again: the signal ends the process.
      process.removeAllListeners('SIGTERM');
      process.kill(process.pid, 'SIGTERM');
      setTimeout(() => exitProcess(143), exitDeadlineMs).unref();
    });
  }

  private exit(code: number): void {
    this.ending = true;
    this.meshServer.close();
    this.connection.close();
    process.stdout.write('', () => process.stderr.write('', () => exitProcess(code)));
  }

  /** Asks node 0 to end the run with this code; the process exits when node 0 says so. */
  shutdown(code: number): Promise<never> {
    try { sendControl(this.connection, { type: 'shutdown', code }); } catch { this.exit(code); }
    setTimeout(() => this.exit(code), shutdownGraceMs * 2).unref();
    return new Promise<never>(() => {});
  }

  relayOutput(stream: 'stdout' | 'stderr', text: string, threadId = 0): void {
    const writeLocally = (): void => {
      const local = this.localWrites.get(stream);
      if (local !== undefined) local(text);
    };
    if (this.ending || this.connection.socket.destroyed) {
      writeLocally();
      return;
    }
    // Output must not crowd out the protocol or grow without bound: past the limit it is dropped and counted.
    if (this.connection.socket.writableLength + text.length > outputRelayBytesMax) {
      this.droppedOutputBytes += text.length;
      return;
    }
    if (this.droppedOutputBytes > 0) {
      sendControl(this.connection, { type: 'output', stream: 'stderr', text: `[dsm: ${this.droppedOutputBytes} bytes of output from node ${this.nodeId} were dropped: the link to node 0 was too slow]\n`, threadId });
      this.droppedOutputBytes = 0;
    }
    try {
      sendControl(this.connection, { type: 'output', stream, text, threadId });
    } catch {
      writeLocally();
    }
  }

  /** Sends everything this process writes to stdout and stderr to node 0's terminal (a remote machine's node). */
  relayProcessOutput(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const target = process[stream];
      const original = target.write.bind(target);
      this.localWrites.set(stream, (text) => original(text));
      target.write = ((chunk: string | Uint8Array, encodingOrCallback?: unknown, callback?: unknown): boolean => {
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
        this.relayOutput(stream, text, 0);
        const done = typeof encodingOrCallback === 'function' ? encodingOrCallback : callback;
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      }) as typeof target.write;
    }
  }
}

/**
 * The join options a local child finds in its environment (read by
 * childJoinEnvironment in src/env.ts; set by the launcher; the secret comes down stdin, see readSecretFromStdin): DSM_JOIN,
 * DSM_NODE_ID, DSM_CLUSTER_CONFIG, DSM_JOIN_TIMEOUT_MS, DSM_PARENT_PID and
 * DSM_SUPERVISED=1. `dsm node` without --join can use this to serve as the child entry.
 */
export function joinOptionsFromEnvironment(env: ChildJoinEnvironment, secretFromLauncher?: string): JoinOptions {
  return {
    join: parseAddress(env.join, 'DSM_JOIN'),
    secret: secretFromLauncher ?? secretFromEnvironment(env.secret),
    ...(env.clusterConfig !== undefined ? { config: env.clusterConfig as ClusterConfig } : {}),
    ...(env.nodeId !== undefined ? { nodeId: env.nodeId } : {}),
    ...(env.joinTimeoutMs !== undefined ? { joinTimeoutMs: env.joinTimeoutMs } : {}),
    ...(env.parentPid !== undefined ? { supervisedBy: env.parentPid, meshHost: '127.0.0.1' } : {}),
    ...(env.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: env.heartbeatTimeoutMs } : {}),
  };
}

/**
 * A local child's secret: the first line of its stdin (a JSON string), written
 * by the launcher, which keeps the pipe open afterwards as the child's lifeline.
 */
export async function readSecretFromStdin(): Promise<string> {
  const line = await readStdinLine('secret');
  if (line === null) throw new DsmError('DSM_ERR_NODE_DIED', 'the launcher closed stdin before sending the secret');
  let secret: unknown;
  try { secret = JSON.parse(line); } catch { secret = null; }
  if (typeof secret !== 'string') throw new DsmError('DSM_ERR_INVALID_OPTION', 'the first line on stdin is not the secret (a JSON string) a launcher writes');
  return secret;
}

/**
 * The first line on stdin (`what` names it in an error), without its newline; null at EOF before it. What
 * follows the line stays on stdin, which is paused again.
 */
export function readStdinLine(what: string, bytesMax = secretLineBytesMax): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\n');
      if (end === -1) {
        if (text.length > bytesMax) done(new DsmError('DSM_ERR_INVALID_OPTION', `the ${what} line on stdin is too long`));
        return;
      }
      const rest = text.slice(end + 1);
      if (rest.length > 0) process.stdin.unshift(Buffer.from(rest, 'utf8'));
      done(null, text.slice(0, end));
    };
    const onEnd = (): void => done(null, null);
    const done = (error: DsmError | null, line?: string | null): void => {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      if (error !== null) reject(error);
      else resolve(line!);
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  });
}

/** The secret line a launcher writes is short; more before a newline is not a launcher. */
const secretLineBytesMax = 64 * 1024;
