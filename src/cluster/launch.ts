// Node 0: listens for joiners (spawning them as children for a local
// cluster), hands out node ids and the address table, says "start", then
// watches every node and ends the run together.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Listener } from '../transport/mesh.js';
import { fileURLToPath } from 'node:url';
import { nodeCountMax, childExitWaitMs, heartbeatTimeoutMs, joinTimeoutMsDefault, pageBytes, regionBytesDefault, shutdownGraceMs } from '../constants.js';
import { exitProcess, forgetChild, watchChild } from './watchdog.js';
import { DsmError, assert, exitCodeNodeDied } from '../errors.js';
import { type Connection, handshake, peerVanished } from '../transport/connection.js';
import type { TlsConfig } from '../transport/tls.js';
import { refusals } from '../transport/refusals.js';
import {
  type ClusterConfig, type ClusterHandle, type Control, type Failure, type MeshLike, type PeerInfo, LineTagger,
  checkSecretStrength, createTransportMesh, formatAddress, freshSecret, helloFor, listenMesh, sendControl, validateNodeCount,
} from './common.js';
import type { InterruptSignal, MeshContext } from './common.js';
import { progress } from './progress.js';
import { NodeHandle, withTimeout } from './handle.js';
import { childEnvironment } from '../env.js';
import { entryUrl } from '../util/entry-url.js';
import { hop, hopsOn } from '../util/hops.js';
import type { EarlyNodes } from './early-nodes.js';

export interface LaunchOptions {
  nodeCount: number;
  /** Control address node 0 listens on; default 127.0.0.1:0. */
  listen?: { host: string; port: number };
  /** Spawn nodes 1..N-1 here (a local cluster); false waits for `dsm node --join`. Default true. */
  spawnLocal?: boolean;
  /** Required when spawnLocal is false; a local cluster draws a random one. */
  secret?: string;
  config?: Partial<ClusterConfig>;
  joinTimeoutMs?: number;
  /** What a local child runs; default this process's execArgv and src/cluster/node-main. */
  child?: { execArgv?: string[]; script?: string; args?: string[]; env?: Record<string, string>; nodeRuntime?: string; nodePrepare?: string; runtimeConfig?: unknown };
  /** Default: the transport's Mesh over the address table; null: no mesh. */
  createMesh?: ((context: MeshContext) => Promise<MeshLike>) | null;
  /** Prefix relayed lines with `[node N thread T] ` (local children: `[node N] `). */
  tagOutput?: boolean;
  /** SIGINT/SIGTERM end the whole cluster. Default true. */
  handleSignals?: boolean;
  /** Mutual TLS on the control port and the mesh (--tls-cert/--tls-key/--tls-ca); joiners must use it too. */
  tls?: TlsConfig;
  /** Called once the control address listens, before the joins (a launcher publishes it for the other ranks). */
  onListening?: (control: { host: string; port: number }) => void;
  /**
   * Called once the other nodes are spawned (across machines: once node 0 listens), while they start:
   * what node 0 loads from here on is off the path of their start.
   */
  onNodesStarting?: () => void;
  /** Floor of the adaptive heartbeat timeout on every node (--heartbeat-timeout); default heartbeatTimeoutMs. */
  heartbeatTimeoutMs?: number;
  /** Children started before the CLI loaded (src/cluster/early-nodes.ts), adopted instead of spawned where running. */
  early?: EarlyNodes | null;
}

interface Member {
  nodeId: number;
  host: string;
  meshPort: number;
  pid?: number;
  connection: Connection;
  ready: boolean;
  taggers: Map<string, LineTagger>;
}

/** Why a join message from a proven peer cannot be used, or null. */
function malformedJoin(message: Control & { type: 'join' }): string | null {
  if (!Number.isSafeInteger(message.nodeId) || message.nodeId < -1 || message.nodeId >= nodeCountMax) return 'nodeId';
  if (!Number.isInteger(message.meshPort) || message.meshPort < 1 || message.meshPort > 65535) return 'meshPort';
  if (!Number.isSafeInteger(message.pid) || message.pid < 0) return 'pid';
  if (typeof message.meshHost !== 'string' || message.meshHost.length > 255) return 'meshHost';
  return null;
}

export function defaultChildScript(): string {
  return fileURLToPath(entryUrl('nodeMain'));
}

function wildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function cleanRemote(address: string | undefined): string {
  return (address ?? 'unknown').replace(/^::ffff:/, '');
}

export async function launchLocalCluster(options: LaunchOptions): Promise<ClusterHandle> {
  validateNodeCount(options.nodeCount, '--nodes');
  const spawnLocal = options.spawnLocal ?? true;
  if (!spawnLocal && (options.secret === undefined || options.secret === '')) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', 'a cluster across machines needs a shared secret: pass --secret or set DSM_SECRET on every node');
  }
  if (options.secret !== undefined) checkSecretStrength(options.secret, 'the launch options');
  const secret = options.secret ?? freshSecret();
  const config: ClusterConfig = {
    clusterId: options.config?.clusterId ?? (spawnLocal ? randomBytes(8).toString('hex') : 'dsm'),
    coherence: options.config?.coherence ?? 'hlrc',
    pageBytes: options.config?.pageBytes ?? pageBytes,
    regionBytes: options.config?.regionBytes ?? regionBytesDefault,
  };
  const joinTimeoutMs = options.joinTimeoutMs ?? joinTimeoutMsDefault;
  const listenAt = options.listen ?? { host: '127.0.0.1', port: 0 };
  const control = await Listener.listen(listenAt.host, listenAt.port, options.tls, 'listen address');
  let meshServer: Listener;
  try {
    meshServer = await listenMesh(listenAt.host, options.tls);
  } catch (error) {
    control.close();
    throw error;
  }
  try {
    options.onListening?.({ host: listenAt.host, port: control.address.port });
  } catch (error) {
    control.close();
    meshServer.close();
    throw error;
  }
  return new Launcher(options, config, secret, joinTimeoutMs, control, meshServer, spawnLocal).start();
}

/** A local cluster that has not started within this long says what it waits for. */
const startupQuietMs = 1000;

class Launcher extends NodeHandle {
  readonly nodeId = 0;
  private readonly members = new Map<number, Member>();
  private readonly children = new Map<number, ChildProcess>();
  private readonly childExited = new Map<number, Promise<void>>();
  private started = false;
  /** A failure is being reported: later ones (the same death seen another way) are not. */
  private failing = false;
  private readonly ownTaggers = new Map<string, LineTagger>();
  /** Start-up progress: a node joined (src/cluster/progress.ts). */
  private joinedProgress: (nodeId: number, host: string) => void = () => {};

  constructor(
    private readonly options: LaunchOptions,
    private readonly config: ClusterConfig,
    secret: string,
    private readonly joinTimeoutMs: number,
    private readonly control: Listener,
    private readonly meshServer: Listener,
    private readonly spawnLocal: boolean,
  ) {
    super(secret, options.heartbeatTimeoutMs ?? heartbeatTimeoutMs);
    this.nodeCount = options.nodeCount;
  }

  start(): Promise<ClusterHandle> {
    if (this.options.handleSignals ?? true) {
      // The run was interrupted: every node names its parked requests (the signal goes with the stop), then ends.
      // Unless the program listens for the signal itself (its main thread's process.on('SIGINT')): then it is its.
      process.on('SIGINT', () => { if (!this.programTakes('SIGINT')) void this.shutdown(130, 'SIGINT'); });
      process.on('SIGTERM', () => { if (!this.programTakes('SIGTERM')) void this.shutdown(143, 'SIGTERM'); });
    }
    return new Promise<ClusterHandle>((resolve, reject) => {
      let settled = false;
      const fail = (error: DsmError): void => {
        if (settled) return;
        settled = true;
        if (error.code === 'DSM_ERR_NODE_DIED') refusals.endingForFailure();
        clearTimeout(timer);
        if (slowTimer !== null) clearTimeout(slowTimer);
        void this.abort(error).then(() => reject(error));
      };
      const timer = setTimeout(() => {
        fail(new DsmError('DSM_ERR_JOIN_TIMEOUT', this.joinTimeoutMessage()));
      }, this.joinTimeoutMs);
      // Joiners across machines are started by hand: say where to point them. A local
      // cluster says so only when its children are slow to start.
      let waitingShown = false;
      const showWaiting = (): void => {
        waitingShown = true;
        const address = this.controlAddress();
        progress(this.spawnLocal
          ? `waiting for ${this.nodeCount} nodes to start (${this.members.size + 1} of ${this.nodeCount} so far)`
          : `waiting for ${this.nodeCount} nodes at ${address} (this is node 0; start each other one with: dsm node --join ${address})`);
      };
      const slowTimer = this.nodeCount > 1 && this.spawnLocal ? setTimeout(showWaiting, startupQuietMs) : null;
      if (this.nodeCount > 1 && !this.spawnLocal) showWaiting();
      this.joinedProgress = (nodeId, host) => {
        if (waitingShown) progress(`node ${nodeId} joined from ${host} (${this.members.size + 1} of ${this.nodeCount})`);
      };
      const onReady = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (slowTimer !== null) clearTimeout(slowTimer);
        if (waitingShown) progress(`all ${this.nodeCount} nodes joined; starting the program`);
        resolve(this);
      };
      this.control.on('socket', (socket: Socket) => this.accept(socket, fail, onReady));
      if (this.spawnLocal) {
        if (hopsOn) hop('m:spawning nodes');
        for (let nodeId = 1; nodeId < this.nodeCount; nodeId += 1) this.spawnChild(nodeId, fail);
      }
      this.options.early?.discard();
      this.options.onNodesStarting?.();
      if (this.nodeCount === 1) void this.allJoined(fail, onReady);
    });
  }

  /**
   * What a start that ran out of time still waited for: nodes that never joined, or, when every node
   * joined, the step after the join that did not finish (node 0's mesh, or the nodes not yet ready).
   */
  private joinTimeoutMessage(): string {
    const joined = this.members.size + 1;
    const within = `within ${this.joinTimeoutMs} ms`;
    if (joined < this.nodeCount) {
      const missing: number[] = [];
      for (let nodeId = 1; nodeId < this.nodeCount; nodeId += 1) if (!this.members.has(nodeId)) missing.push(nodeId);
      if (this.spawnLocal) {
        // Processes this run started, still alive (a death ends the start at once): stopped, or starved of CPU.
        const which = missing.map((nodeId) => `node ${nodeId} (pid ${this.children.get(nodeId)?.pid ?? '?'})`).join(', ');
        return `${joined} of ${this.nodeCount} nodes joined ${within} (node 0 counts itself): ${which} started on this machine but did not join; it is alive but not answering (stopped, or starved of CPU on a machine too loaded for ${this.nodeCount} node processes): look at its output above and run again`;
      }
      return `${joined} of ${this.nodeCount} nodes joined ${within} (node 0 counts itself); start the missing nodes with dsm node --join ${this.controlAddress()} or raise --join-timeout`;
    }
    if (this.options.createMesh !== null && this.mesh === null) {
      return `all ${this.nodeCount} nodes joined but node 0 did not finish connecting its mesh to them ${within}; check that every node's mesh port is reachable from node 0 (--bind, firewalls) or raise --join-timeout`;
    }
    const notReady: number[] = [];
    for (const member of this.members.values()) if (!member.ready) notReady.push(member.nodeId);
    notReady.sort((a, b) => a - b);
    return `all ${this.nodeCount} nodes joined but node ${notReady.join(', node ')} did not report ready (mesh connected and runtime loaded) ${within}; check that node's output for an error, or raise --join-timeout on a slow machine`;
  }

  controlAddress(): string {
    return formatAddress(this.control.address.host, this.control.address.port);
  }

  private spawnChild(nodeId: number, fail: (error: DsmError) => void): void {
    const child = this.options.child ?? {};
    const script = child.script ?? defaultChildScript();
    const tag = this.options.tagOutput ?? false;
    const env = childEnvironment({
      join: this.controlAddress(), nodeId, clusterConfig: this.config, joinTimeoutMs: this.joinTimeoutMs,
      parentPid: process.pid, heartbeatTimeoutMs: this.heartbeatTimeoutMs,
      ...(child.nodeRuntime === undefined ? {} : { nodeRuntime: child.nodeRuntime }),
      ...(child.nodePrepare === undefined ? {} : { nodePrepare: child.nodePrepare }),
      ...(child.runtimeConfig === undefined ? {} : { runtimeConfig: child.runtimeConfig }),
    }, child.env);
    // Started before the CLI loaded (bin/dsm.js), with the same script, Node and stdio: its settings go down stdin.
    const early = tag || child.script !== undefined || child.execArgv !== undefined || child.args !== undefined ? null : this.options.early?.take(nodeId) ?? null;
    const processHandle = early ?? spawn(process.execPath, [...(child.execArgv ?? process.execArgv), script, ...(child.args ?? [])], {
      // The program's process.argv0 on every node is the one it was started with ('node', not the full path).
      argv0: process.argv0,
      // stdin is the lifeline: the child exits when it reads EOF, so it dies with us even after SIGKILL.
      stdio: ['pipe', tag ? 'pipe' : 'inherit', tag ? 'pipe' : 'inherit'],
      // The secret goes down the stdin pipe (the first line), never into argv or the environment,
      // where `ps` or the program's own threads and subprocesses could read it.
      env,
    });
    if (hopsOn) hop(early === null ? `m:spawned node ${nodeId}` : `m:adopted early node ${nodeId}`);
    // If this process is ever forced to end (its loop blocked), its watchdog kills the children too.
    watchChild(processHandle.pid);
    processHandle.stdin?.on('error', () => {});
    processHandle.stdin?.write(early === null ? `${JSON.stringify(this.secret)}\n` : `${JSON.stringify({ env, secret: this.secret })}\n`);
    if (tag) {
      for (const stream of ['stdout', 'stderr'] as const) {
        const tagger = new LineTagger(`[node ${nodeId}] `, true);
        const target = stream === 'stdout' ? process.stdout : process.stderr;
        processHandle[stream]?.setEncoding('utf8');
        processHandle[stream]?.on('data', (text: string) => target.write(tagger.push(text)));
        processHandle[stream]?.on('end', () => target.write(tagger.flush()));
      }
    }
    this.children.set(nodeId, processHandle);
    this.childExited.set(nodeId, new Promise((resolve) => processHandle.once('exit', () => resolve())));
    processHandle.once('exit', (code, signal) => {
      forgetChild(processHandle.pid);
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
      if (!this.started) {
        // A child that ended as a node failure (70) before the start ended because another node went away (a
        // mesh peer, see node-main.ts): the node that died says more, and its exit is due within a moment.
        if (code === exitCodeNodeDied && signal === null) {
          this.afterChildExitWait(() => fail(new DsmError('DSM_ERR_NODE_DIED', `node ${nodeId} (127.0.0.1, pid ${processHandle.pid}) ended before the cluster started: it lost another node; the program did not run: the output above says why; run again`)));
          return;
        }
        // A SIGKILL nobody sent by hand is most often the kernel's out-of-memory killer.
        const hint = signal === 'SIGKILL' ? ' (a SIGKILL is often the kernel\'s out-of-memory killer: see dmesg)' : '';
        fail(new DsmError('DSM_ERR_NODE_DIED', `node ${nodeId} (127.0.0.1, pid ${processHandle.pid}) ${how} before the cluster started; the program did not run: its output above says why${hint}; run again`));
        return;
      }
      if (!this.ending) void this.nodeFailed(nodeId, `process ${how}`);
    });
  }

  private accept(socket: Socket, fail: (error: DsmError) => void, onReady: () => void): void {
    const label = `joiner at ${formatAddress(cleanRemote(socket.remoteAddress), socket.remotePort ?? 0)}`;
    handshake(socket, { hello: helloFor(this.config, 0), secret: this.secret, role: 'accept', peerLabel: label, door: this.control.door }).then(
      (connection) => {
        // The joiner repeats 'join' until acknowledged (a message arriving with the handshake's last frame can
        // be emitted before this listener exists), so take the first and ignore repeats.
        let joined = false;
        connection.on('message', (message) => {
          if (joined) return;
          joined = true;
          this.onJoin(connection, message as unknown as Control, fail, onReady);
        });
        connection.on('error', () => {});
      },
      // A stranger turned away: rate-limited, anyone who reaches the port can cause these.
      (error: DsmError) => refusals.report(`dsm: ${error.code}: ${error.message}`, peerVanished(error)),
    );
  }

  private onJoin(connection: Connection, message: Control, fail: (error: DsmError) => void, onReady: () => void): void {
    if (this.ending && !this.started) {
      // A node that joins while a failed start ends: the failure's line is the run's one line.
      connection.close();
      return;
    }
    if (message.type !== 'join' || this.started || this.ending) {
      const why = message.type !== 'join' ? `its first message was '${String(message.type).slice(0, 64)}', not a join` : this.started ? 'the cluster already started' : 'the cluster is ending';
      process.stderr.write(`dsm: ignoring ${connection.peerLabel}: ${why}\n`);
      connection.close();
      return;
    }
    const malformed = malformedJoin(message);
    if (malformed !== null) {
      process.stderr.write(`dsm: DSM_ERR_FRAME: ${connection.peerLabel} sent a malformed join (${malformed}); it was turned away: run the same dsm version on every node\n`);
      connection.close();
      return;
    }
    let nodeId = message.nodeId;
    if (nodeId < 1 || nodeId >= this.nodeCount || this.members.has(nodeId)) {
      nodeId = -1;
      for (let candidate = 1; candidate < this.nodeCount; candidate += 1) {
        if (!this.members.has(candidate) && !(this.spawnLocal && this.children.has(candidate))) { nodeId = candidate; break; }
      }
    }
    if (nodeId === -1) {
      process.stderr.write(`dsm: refusing ${connection.peerLabel}: all ${this.nodeCount} nodes have joined already\n`);
      connection.close();
      return;
    }
    const host = wildcard(message.meshHost) ? cleanRemote(connection.socket.remoteAddress) : message.meshHost;
    const member: Member = {
      nodeId, host, meshPort: message.meshPort, connection, ready: false, taggers: new Map(),
      ...(this.children.has(nodeId) ? { pid: this.children.get(nodeId)!.pid } : { pid: message.pid }),
    };
    this.members.set(nodeId, member);
    sendControl(connection, { type: 'joined', nodeId });
    this.joinedProgress(nodeId, host);
    connection.on('message', (next) => this.onMessage(member, next as unknown as Control, fail, onReady));
    connection.on('close', () => {
      if (!this.started) {
        const left = (): void => fail(new DsmError('DSM_ERR_NODE_DIED', `node ${nodeId} (${host}) left before the cluster started; the program did not run: that node's own output says why; start the run and its nodes again`));
        if (this.children.has(nodeId)) this.afterChildExitWait(left);
        else left();
      } else if (connection.failure !== null) {
        if (!this.ending) void this.nodeFailed(nodeId, `broke its connection: ${connection.failure.message}`);
      } else if (this.children.has(nodeId)) {
        this.afterChildExitWait(() => { if (!this.ending) void this.nodeFailed(nodeId, 'closed its connection'); });
      } else if (!this.ending) void this.nodeFailed(nodeId, 'closed its connection');
    });
    if (this.members.size === this.nodeCount - 1) void this.allJoined(fail, onReady);
  }

  private async allJoined(fail: (error: DsmError) => void, onReady: () => void): Promise<void> {
    const peers: PeerInfo[] = [{ nodeId: 0, host: this.options.listen?.host ?? '127.0.0.1', port: this.meshServer.address.port, pid: process.pid }];
    for (let nodeId = 1; nodeId < this.nodeCount; nodeId += 1) {
      const member = this.members.get(nodeId);
      assert(member !== undefined, `node ${nodeId} joined`);
      peers.push({ nodeId, host: member.host, port: member.meshPort, ...(member.pid !== undefined ? { pid: member.pid } : {}) });
    }
    this.peers = peers;
    for (const member of this.members.values()) {
      sendControl(member.connection, { type: 'table', nodeId: member.nodeId, nodeCount: this.nodeCount, peers });
    }
    try {
      if (this.options.createMesh !== null) {
        this.mesh = await (this.options.createMesh ?? createTransportMesh)({
          nodeId: 0, nodeCount: this.nodeCount, peers, secret: this.secret, hello: helloFor(this.config, 0), listener: this.meshServer,
          ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
          heartbeatTimeoutMs: this.heartbeatTimeoutMs,
        });
        this.watchMesh(this.mesh);
      }
    } catch (error) {
      const failure = error instanceof DsmError ? error : new DsmError('DSM_ERR_HANDSHAKE', `node 0 could not build its mesh: ${(error as Error).message}`);
      // A peer that went away while the mesh was made: a local child's exit, due within a moment, says more.
      if (failure.code === 'DSM_ERR_NODE_DIED' && this.spawnLocal) this.afterChildExitWait(() => fail(failure));
      else fail(failure);
      return;
    }
    this.maybeStart(onReady);
  }

  private maybeStart(onReady: () => void): void {
    if (this.started || this.peers.length !== this.nodeCount) return;
    if (this.options.createMesh !== null && this.mesh === null) return;
    for (const member of this.members.values()) if (!member.ready) return;
    this.started = true;
    for (const member of this.members.values()) sendControl(member.connection, { type: 'start' });
    onReady();
  }

  private onMessage(member: Member, message: Control, fail: (error: DsmError) => void, onReady: () => void): void {
    switch (message.type) {
      case 'join': return;
      case 'ready':
        member.ready = true;
        this.maybeStart(onReady);
        return;
      case 'output':
        this.writeOutput(member.nodeId, member.taggers, message.stream, message.text, message.threadId);
        return;
      case 'failure':
        // Another node saw a peer die; node 0's own view (a child's exit status) is preferred when it comes soon.
        this.afterChildExitWait(() => void this.endRun(message.message, { nodeId: member.nodeId, host: member.host, reason: message.message, message: message.message, ...(member.pid !== undefined ? { pid: member.pid } : {}) }));
        return;
      case 'fatal':
        // A node's manager failed: its own words are the cause, whatever its exit status says afterwards.
        void this.endRun(message.message, { nodeId: member.nodeId, host: member.host, reason: message.message, message: message.message, ...(member.pid !== undefined ? { pid: member.pid } : {}) });
        return;
      case 'shutdown':
        void this.shutdown(message.code);
        return;
      default:
        process.stderr.write(`dsm: node ${member.nodeId} sent an unexpected control message '${message.type}'; ignored\n`);
        void fail;
    }
  }

  private writeOutput(nodeId: number, taggers: Map<string, LineTagger>, stream: 'stdout' | 'stderr', text: string, threadId: number): void {
    const target = stream === 'stdout' ? process.stdout : process.stderr;
    if (!(this.options.tagOutput ?? false)) {
      target.write(text);
      return;
    }
    const key = `${stream}:${threadId}`;
    let tagger = taggers.get(key);
    if (tagger === undefined) {
      tagger = new LineTagger(`[node ${nodeId} thread ${threadId}] `, true);
      taggers.set(key, tagger);
    }
    target.write(tagger.push(text));
  }

  private watchMesh(mesh: MeshLike): void {
    this.watchPeerLost(mesh, (nodeId, reason) => this.afterChildExitWait(() => { if (!this.ending) void this.nodeFailed(nodeId, reason); }));
  }

  /**
   * Runs `report` childExitWaitMs from now. A local child's exit (its code or signal) says more than any other
   * view of its end (a closed control connection, the mesh, another node's failure line), and is due within a
   * moment of them: whichever report comes first ends the run, so the exit's gets its chance first.
   */
  private afterChildExitWait(report: () => void): void {
    setTimeout(report, childExitWaitMs);
  }

  private nodeFailed(nodeId: number, reason: string): Promise<void> {
    const { host, pid, where } = this.whereIs(nodeId);
    const message = `dsm: DSM_ERR_NODE_DIED: node ${nodeId} (${where}) ${reason}${this.inFlightSuffix()}; the run was ended`;
    return this.endRun(message, { nodeId, host, reason, message, ...(pid !== undefined ? { pid } : {}) });
  }

  private async endRun(message: string, failure: Failure): Promise<void> {
    if (this.ending || this.failing) return;
    this.failing = true;
    refusals.endingForFailure();
    // A node declared dead may be stopped or hung rather than gone: it gets no grace period.
    const failed = this.children.get(failure.nodeId);
    if (failed !== undefined && failed.exitCode === null && failed.signalCode === null) failed.kill('SIGKILL');
    await this.runFailureCallbacks(failure);
    process.stderr.write(`${message}\n`);
    for (const member of this.members.values()) {
      try { sendControl(member.connection, { type: 'failure', message }); } catch { /* already gone */ }
    }
    await this.shutdown(exitCodeNodeDied);
  }

  /** Stops every other node (message, then EOF on its lifeline, then SIGKILL) and waits for the children. */
  private async stopOthers(code: number, signal?: InterruptSignal): Promise<void> {
    for (const member of this.members.values()) {
      try { sendControl(member.connection, { type: 'shutdown', code, ...(signal === undefined ? {} : { signal }) }); } catch { /* already gone */ }
    }
    const exits = [...this.childExited.entries()].filter(([nodeId]) => {
      const child = this.children.get(nodeId)!;
      return child.exitCode === null && child.signalCode === null;
    });
    const remoteCloses = [...this.members.values()].filter((member) => !this.children.has(member.nodeId))
      .map((member) => new Promise<void>((resolve) => {
        if (member.connection.socket.destroyed) resolve();
        else member.connection.socket.once('close', () => resolve());
      }));
    await withTimeout(Promise.all([...exits.map(([, exited]) => exited), ...remoteCloses]), shutdownGraceMs);
    for (const child of this.children.values()) child.stdin?.end();
    for (const [nodeId, child] of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await withTimeout(this.childExited.get(nodeId)!, shutdownGraceMs);
      }
    }
    for (const member of this.members.values()) member.connection.socket.destroy();
  }

  private async abort(error: DsmError): Promise<void> {
    this.ending = true;
    for (const member of this.members.values()) {
      try { sendControl(member.connection, { type: 'failure', message: `dsm: ${error.code}: ${error.message}` }); } catch { /* already gone */ }
    }
    await this.stopOthers(exitCodeNodeDied);
    this.control.close();
    this.meshServer.close();
  }

  /** Ends the run everywhere with `code`; `signal`: interrupted by it (each node names its parked requests first). */
  async shutdown(code: number, signal?: InterruptSignal): Promise<never> {
    if (!this.ending) {
      this.ending = true;
      if (signal !== undefined) await this.runInterruptCallbacks(signal);
      await this.runShutdownCallbacks(code);
      if (hopsOn) hop('m:stopping others');
      await this.stopOthers(code, signal);
      if (hopsOn) hop('m:others stopped');
      try { await this.mesh?.close(); } catch { /* the run is over */ }
      this.control.close();
      this.meshServer.close();
      for (const [stream, tagger] of this.ownTaggers) (stream.startsWith('stdout') ? process.stdout : process.stderr).write(tagger.flush());
      process.stdout.write('', () => exitProcess(code));
    }
    return new Promise<never>(() => {});
  }

  /** This node's manager failed: print the line, tell every node, end the run (bounded by the watchdog). */
  async fatal(message: string): Promise<void> {
    if (this.ending || this.failing) return;
    this.failing = true;
    process.stderr.write(`${message}\n`);
    for (const member of this.members.values()) {
      try { sendControl(member.connection, { type: 'failure', message }); } catch { /* already gone */ }
    }
    await this.shutdown(exitCodeNodeDied);
  }

  relayOutput(stream: 'stdout' | 'stderr', text: string, threadId = 0): void {
    this.writeOutput(0, this.ownTaggers, stream, text, threadId);
  }

  programSignals(taken: InterruptSignal[]): void {
    for (const member of this.members.values()) {
      try { sendControl(member.connection, { type: 'signals', taken }); } catch { /* already gone */ }
    }
  }
}
