// The entry a local child node runs (and that `dsm node` may reuse): read the
// join parameters from the environment (the secret never goes on argv, where
// `ps` would show it), join, then hand the cluster to the runtime.
//
// Environment: DSM_JOIN (host:port), DSM_SECRET, DSM_NODE_ID, DSM_CLUSTER_CONFIG
// (JSON ClusterConfig), DSM_JOIN_TIMEOUT_MS, DSM_PARENT_PID + DSM_SUPERVISED=1
// (exit when the launcher goes), DSM_NODE_RUNTIME: a module URL or path whose
// exports `createMesh(context)` (optional) and `runNode(handle)` are used.

import { pathToFileURL } from 'node:url';
import { DsmError, isDsmError } from '../errors.js';
import { type ClusterConfig, type ClusterHandle, type MeshContext, type MeshLike, parseAddress, secretFromEnvironment } from './common.js';
import { joinCluster } from './join.js';

interface NodeRuntime {
  createMesh?: (context: MeshContext) => Promise<MeshLike>;
  runNode?: (handle: ClusterHandle) => void | Promise<void>;
}

async function main(): Promise<void> {
  const joinText = process.env.DSM_JOIN;
  if (joinText === undefined) throw new DsmError('DSM_ERR_INVALID_OPTION', 'DSM_JOIN is not set: node-main is started by the launcher');
  const supervised = process.env.DSM_SUPERVISED === '1';
  const runtimeSpecifier = process.env.DSM_NODE_RUNTIME;
  const runtime: NodeRuntime = runtimeSpecifier === undefined ? {} :
    await import(runtimeSpecifier.startsWith('file:') ? runtimeSpecifier : pathToFileURL(runtimeSpecifier).href) as NodeRuntime;
  const handle = await joinCluster({
    join: parseAddress(joinText, 'DSM_JOIN'),
    secret: secretFromEnvironment(undefined),
    ...(process.env.DSM_CLUSTER_CONFIG !== undefined ? { config: JSON.parse(process.env.DSM_CLUSTER_CONFIG) as ClusterConfig } : {}),
    ...(process.env.DSM_NODE_ID !== undefined ? { nodeId: Number(process.env.DSM_NODE_ID) } : {}),
    ...(process.env.DSM_JOIN_TIMEOUT_MS !== undefined ? { joinTimeoutMs: Number(process.env.DSM_JOIN_TIMEOUT_MS) } : {}),
    ...(supervised ? { supervisedBy: Number(process.env.DSM_PARENT_PID), meshHost: '127.0.0.1' } : {}),
    ...(runtime.createMesh !== undefined ? { createMesh: runtime.createMesh } : {}),
  });
  await runtime.runNode?.(handle);
}

main().catch((error: unknown) => {
  process.stderr.write(isDsmError(error) ? `dsm: ${(error as DsmError).code}: ${(error as DsmError).message}\n` : `dsm: ${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
