// The cluster layer: how N node processes come to exist, find each other,
// agree to start, and end together.
//
// Public interface (everything else in src/cluster is internal):
//
//   launchLocalCluster(options: LaunchOptions): Promise<ClusterHandle>
//     The calling process is node 0. Options: nodeCount; listen? {host, port}
//     (default 127.0.0.1:0); spawnLocal? (default true: spawn nodes
//     1..nodeCount-1 as children running node-main.ts; false: wait for
//     nodeCount-1 `dsm node --join` processes, i.e. `--listen HOST:PORT
//     --expect N`); secret? (required when !spawnLocal; random otherwise);
//     config? Partial<ClusterConfig>; joinTimeoutMs? (joinTimeoutMsDefault);
//     child? {execArgv, script, args, env} (what a local child runs);
//     createMesh? (default createTransportMesh; null for none); tagOutput?;
//     handleSignals? (default true: SIGINT/SIGTERM end the cluster, exit 130/143).
//     Resolves once every node joined, every node's mesh is connected and
//     "start" went out. Rejects with DSM_ERR_PORT_IN_USE, DSM_ERR_JOIN_TIMEOUT
//     ("k of N nodes joined within T ms"), DSM_ERR_NODE_DIED (a child died
//     before start), after stopping every node it started.
//
//   joinCluster(options: JoinOptions): Promise<ClusterHandle>
//     Every other node. Options: join {host, port}; secret; config?; nodeId?
//     (a local child's; remote joiners get the next free id); joinTimeoutMs?;
//     meshHost? (--bind; default the local address of the connection to node 0); createMesh?; relayProcessOutput? (send this
//     process's stdout/stderr to node 0's terminal); supervisedBy? (parent pid:
//     exit on stdin EOF or when the parent changes). Retries a refused
//     connection until the join timeout, then DSM_ERR_UNREACHABLE; handshake
//     refusals (DSM_ERR_SECRET, _VERSION, _CONFIG_MISMATCH) reject at once.
//     Resolves on "start".
//
//   soloCluster({heartbeatTimeoutMs?, handleSignals?}): ClusterHandle
//     A cluster of one (`dsm run` on one node): node 0 with no peer, over a
//     mesh of one (src/transport/solo-mesh.ts): no socket, no child, no join.
//     handleSignals (default true): SIGINT/SIGTERM run the interrupt callbacks, exit 130/143.
//
//   joinOptionsFromEnvironment(childJoinEnvironment()): JoinOptions   what a local child was given (src/env.ts)
//   defaultChildScript(): string                   path of node-main (imports DSM_NODE_RUNTIME's
//                                                  createMesh?(context) and runNode(handle))
//
//   createTransportMesh(context: MeshContext): Promise<MeshLike>   the default createMesh
//   releaseEarlySockets(listener)   a custom createMesh calls this once its Mesh listens on
//                                   context.listener (peers may dial before this node built its Mesh)
//
//   ClusterHandle {
//     nodeId, nodeCount, peers: PeerInfo[] (index = node id: {nodeId, host, port, pid?}), secret,
//     mesh: MeshLike | null           the transport Mesh (or what createMesh returned)
//     onFailure(cb)                   cb(failure: Failure) before the run ends on a node death
//     describeInFlight(fn)            fn() => string, appended to the failure line as "; in flight: …"
//     onShutdown(cb)                  cb(code) before this process exits on a shutdown
//     onInterrupt?(cb)                cb(signal) once, before the shutdown callbacks, when SIGINT or SIGTERM
//                                     interrupts the run (node 0 received it and names it in its stop, or SIGTERM
//                                     to this node: then it ends by it, as without the handler)
//     shutdown(code): Promise<never>  node 0: stops every node (message, grace, SIGKILL), waits, exits(code);
//                                     a joiner asks node 0 to do that
//     relayOutput(stream, text, threadId?)  text to the launcher's terminal, in order per thread;
//                                     tagged "[node N thread T] " when node 0 has tagOutput
//   }
//   exitCodeNodeDied (70): the exit code of a run ended by a node's death.
//
// Supervision: a local child watches its stdin (the launcher holds the other
// end; EOF means the launcher is gone, even by SIGKILL) and its parent pid,
// and exits at once when either goes. Failure detection is the transport's:
// the mesh's heartbeats (also sent from a thread of their own, see
// src/transport/beacon.ts) cover every pair of nodes, node 0 and each joiner
// included; a mesh's 'peer-lost' event, a closed control connection and a
// child's unexpected exit are failures. Listening and dialing are the
// transport's too (Listener, dialWithRetry); node 0 and the joiners share one
// handle implementation (handle.ts). The environment is read in src/env.ts.
// Any failure ends the run on every node with exit code exitCodeNodeDied and
// one line naming the node, its host and (when local) its pid.

export { launchLocalCluster, type LaunchOptions } from './launch.js';
export { soloCluster } from './solo.js';
export { joinCluster, joinOptionsFromEnvironment, type JoinOptions } from './join.js';
export { defaultChildScript } from './launch.js';
export {
  type ClusterHandle, type ClusterConfig, type Failure, type MeshContext, type MeshLike, type PeerInfo,
  createTransportMesh, formatAddress, parseAddress, releaseEarlySockets, secretFromEnvironment,
} from './common.js';
export { exitCodeNodeDied } from '../errors.js';
