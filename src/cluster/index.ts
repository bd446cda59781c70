// The cluster layer: how N node processes come to exist, find each other,
// agree to start, and end together.
//
// Public interface (everything else in src/cluster is internal):
//
//   launchLocalCluster(options: LaunchOptions): Promise<ClusterHandle>
//     The calling process is node 0. It listens on options.listen (default
//     127.0.0.1:0), spawns nodes 1..nodeCount-1 as child processes when
//     options.spawnLocal is true (the default for `dsm run --nodes N`), or
//     waits for nodeCount-1 remote `dsm node --join` processes otherwise
//     (`dsm run --listen HOST:PORT --expect N`). Resolves once every node
//     joined, every node built its mesh (options.createMesh) and "start" went out.
//
//   joinCluster(options: JoinOptions): Promise<ClusterHandle>
//     Run by every other node (`dsm node --join HOST:PORT`, and the local
//     children through node-main.ts). Resolves on "start".
//
//   ClusterHandle {
//     nodeId, nodeCount, peers: PeerInfo[] (index = node id), secret,
//     mesh: MeshLike | null           what createMesh returned
//     onFailure(cb)                   cb(failure) before the run ends on a node death
//     describeInFlight(fn)            fn() => string, added to the failure line
//     onShutdown(cb)                  cb(code) before this process exits on a shutdown
//     shutdown(code): Promise<never>  ends every node, waits for children, exits
//     relayOutput(stream, text, threadId?)  output from this node to the launcher's terminal
//   }
//
// Supervision: a local child watches its stdin (the launcher holds the other
// end; EOF means the launcher is gone, even by SIGKILL) and its parent pid,
// and exits at once when either goes. Failure detection: node 0 and every
// joiner keep the control connection between them alive with heartbeats; a
// mesh's 'peer-lost' event and a child's unexpected exit are failures too.
// Any failure ends the run on every node with exit code exitCodeNodeDied and
// one line naming the node, its host and (when local) its pid.

export { launchLocalCluster, type LaunchOptions } from './launch.js';
export { joinCluster, type JoinOptions } from './join.js';
export {
  type ClusterHandle, type ClusterConfig, type Failure, type MeshContext, type MeshLike, type PeerInfo,
  formatAddress, parseAddress, secretFromEnvironment,
} from './common.js';
export { exitCodeNodeDied } from '../errors.js';
