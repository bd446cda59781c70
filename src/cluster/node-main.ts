// The entry a local child node runs (and that `dsm node` may reuse): read the
// join parameters from the environment (the secret never goes on argv, where
// `ps` would show it), join, then hand the cluster to the runtime.
//
// Environment: DSM_JOIN (host:port), DSM_SECRET_FROM_STDIN=1 (the secret is the first line of
// stdin, a JSON string; otherwise DSM_SECRET, removed from the environment once read), DSM_NODE_ID, DSM_CLUSTER_CONFIG
// (JSON ClusterConfig), DSM_JOIN_TIMEOUT_MS, DSM_PARENT_PID + DSM_SUPERVISED=1
// (exit when the launcher goes), DSM_NODE_RUNTIME: a module URL or path whose
// exports `createMesh(context)` (optional) and `runNode(handle)` are used;
// DSM_NODE_PREPARE: a module URL or path imported first, whose `prepareNode()` runs before the join.

import { pathToFileURL } from 'node:url';
import { DsmError, exitCodeNodeDied, isDsmError } from '../errors.js';
import { childJoinEnvironment, isEarlyStart, replaceEnvironment, supervisingParentPid } from '../env.js';
import { type ClusterHandle, type MeshContext, type MeshLike, createTransportMesh } from './common.js';
import { mappedStackOf } from '../util/source-frames.js';
import { joinCluster, joinOptionsFromEnvironment, readSecretFromStdin, readStdinLine } from './join.js';
import { ignoreClosedOutput } from '../util/closed-output.js';
import { hop, hopsOn } from '../util/hops.js';
import { entryUrl } from '../util/entry-url.js';

interface NodeRuntime {
  createMesh?: (context: MeshContext) => Promise<MeshLike>;
  runNode?: (handle: ClusterHandle) => void | Promise<void>;
}

/** A module specifier from the environment: a file: URL, or a path. */
function moduleUrl(specifier: string): string {
  return specifier.startsWith('file:') ? specifier : pathToFileURL(specifier).href;
}

/**
 * A child started early (src/cluster/early-nodes.ts): its settings, the first line on stdin, replace its
 * environment (as a spawn with them would have set it) before anything reads it; their secret, or null when
 * the launcher ended or discarded this child first (it then exits quietly).
 */
async function takeEarlySettings(): Promise<string | null> {
  const line = await readStdinLine('settings', earlySettingsBytesMax);
  if (line === null) return null;
  let settings: unknown;
  try { settings = JSON.parse(line); } catch { settings = null; }
  const { env, secret } = (settings ?? {}) as { env?: unknown; secret?: unknown };
  if (typeof env !== 'object' || env === null || typeof secret !== 'string') {
    throw new DsmError('DSM_ERR_INVALID_OPTION', 'the first line on stdin is not the settings ({ env, secret }) a launcher writes to a node it started early');
  }
  replaceEnvironment(env as Record<string, unknown>);
  return secret;
}

/** The settings line of a child started early: its environment is rarely more than a few KiB. */
const earlySettingsBytesMax = 4 * 1024 * 1024;

async function main(): Promise<void> {
  ignoreClosedOutput();
  if (hopsOn) hop('m:node process started');
  const early = isEarlyStart();
  // The runtime a local run gives its children (src/cli/main.ts) loads while this one waits for its settings.
  if (early) import(entryUrl('clusterNode').href).catch(() => {});
  const earlySecret = early ? await takeEarlySettings() : undefined;
  if (earlySecret === null) process.exit(0);
  if (hopsOn && early) hop('m:early settings taken');
  const environment = childJoinEnvironment();
  // The preparation module first (small: it loads at once), then the runtime, which loads while this node joins.
  if (environment.nodePrepare !== undefined) {
    try {
      (await import(moduleUrl(environment.nodePrepare)) as { prepareNode?: () => void }).prepareNode?.();
    } catch {
      // Best effort: preparing only starts early what the runtime would start later.
    }
  }
  const runtimeSpecifier = environment.nodeRuntime;
  // The runtime loads while this node reads its secret and joins (it is needed once the mesh is made).
  const runtimeLoaded: Promise<NodeRuntime> = runtimeSpecifier === undefined ? Promise.resolve({}) :
    import(moduleUrl(runtimeSpecifier)) as Promise<NodeRuntime>;
  runtimeLoaded.catch(() => {});
  const secret = earlySecret ?? (environment.secretFromStdin ? await readSecretFromStdin() : undefined);
  const createMesh = async (context: MeshContext): Promise<MeshLike> => {
    const runtime = await runtimeLoaded;
    return (runtime.createMesh ?? createTransportMesh)(context);
  };
  const handle = await joinCluster({ ...joinOptionsFromEnvironment(environment, secret), createMesh });
  const runtime = await runtimeLoaded;
  await runtime.runNode?.(handle);
}

main().catch((error: unknown) => {
  // Another node went away before the cluster started (node 0 closed, a mesh peer died): a consequence. A local
  // child whose launcher still runs leaves the line to it (it names the node that died, with why: one line on the
  // terminal), and ends as a node failure does; anything else, or a launcher that is gone, is printed here.
  // Read without validation: the error may be the environment's own (a missing DSM_JOIN, a malformed settings line).
  const parentPid = supervisingParentPid();
  if (isDsmError(error) && (error as DsmError).code === 'DSM_ERR_NODE_DIED' && parentPid !== undefined && process.ppid === parentPid) {
    process.exit(exitCodeNodeDied);
  }
  process.stderr.write(isDsmError(error) ? `dsm: ${(error as DsmError).code}: ${(error as DsmError).message}\n` : `dsm: ${mappedStackOf(error)}\n`);
  process.exit(1);
});
