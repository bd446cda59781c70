// Run where clusters already are: Slurm (srun), MPI launchers (mpirun, mpiexec)
// and Kubernetes Indexed Jobs start every rank with the same `dsm run app.js`.
//
//   detectLauncher(env, request): LauncherPlan | null   rank, size, node 0's address (detect.ts)
//   launcherSecret(env, home, exists)                    the secret the engine provides (secret.ts)
//   startUnderLauncher(plan, options): ClusterHandle     rank 0 listens (and publishes its address for
//                                                        an MPI rendezvous) and waits for size-1 joiners;
//                                                        rank r joins node 0 as node r. Both within the
//                                                        join deadline; errors name the variables read.
//   expandHostlist, expandTaskCounts                     Slurm's compressed forms (hostlist.ts)

import { joinTimeoutMsDefault, rendezvousRetrySliceMs } from '../../constants.js';
import { DsmError, isDsmError } from '../../errors.js';
import type { ClusterConfig, ClusterHandle, MeshContext, MeshLike } from '../common.js';
import { formatAddress } from '../common.js';
import { joinCluster } from '../join.js';
import { launchLocalCluster } from '../launch.js';
import type { LauncherPlan } from './detect.js';
import { publishLeader, waitForLeader } from './rendezvous.js';

export { detectLauncher, launcherNames, type LauncherName, type LauncherPlan, type LauncherRequest, type Leader } from './detect.js';
export { expandHostlist, expandTaskCounts, HostlistError } from './hostlist.js';
export { launcherSecret, readSecretFile } from './secret.js';
export { publishLeader, readLeader, waitForLeader } from './rendezvous.js';

export interface StartOptions {
  secret: string;
  /** What every node must agree on besides the cluster id (the plan's). */
  config: Omit<ClusterConfig, 'clusterId' | 'pageBytes'> & { pageBytes?: number };
  joinTimeoutMs?: number;
  createMesh?: (context: MeshContext) => Promise<MeshLike>;
  tagOutput?: boolean;
  /** Floor of the adaptive heartbeat timeout (--heartbeat-timeout), on every rank alike. */
  heartbeatTimeoutMs?: number;
}

/** Adds where the failing address came from to a cluster error, keeping its code. */
function explained(error: unknown, plan: LauncherPlan, what: string): unknown {
  if (!isDsmError(error)) return error;
  const dsmError = error as DsmError;
  return new DsmError(dsmError.code, `${dsmError.message}; ${plan.launcher}: ${what}; read: ${plan.source}`, { cause: error });
}

/** Rank 0 becomes node 0 and waits for the others; rank r joins as node r. Resolves when the cluster starts. */
export async function startUnderLauncher(plan: LauncherPlan, options: StartOptions): Promise<ClusterHandle> {
  const joinTimeoutMs = options.joinTimeoutMs ?? joinTimeoutMsDefault;
  const config = { ...options.config, clusterId: plan.clusterId };
  const leader = plan.leader;
  if (plan.rank === 0) {
    // A rendezvous whose ranks share this machine keeps node 0 on loopback; otherwise every interface.
    const listenHost = leader.kind === 'rendezvous' && leader.advertiseHost === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0';
    try {
      return await launchLocalCluster({
        nodeCount: plan.size,
        spawnLocal: false,
        listen: { host: listenHost, port: leader.port },
        secret: options.secret,
        config,
        joinTimeoutMs,
        ...(options.createMesh === undefined ? {} : { createMesh: options.createMesh }),
        ...(options.tagOutput === undefined ? {} : { tagOutput: options.tagOutput }),
        ...(options.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs: options.heartbeatTimeoutMs }),
        ...(leader.kind === 'rendezvous'
          ? { onListening: (control: { port: number }) => publishLeader(leader.file, { host: leader.advertiseHost, port: control.port, pid: process.pid, clusterId: plan.clusterId }) }
          : {}),
      });
    } catch (error) {
      throw explained(error, plan, `rank 0 of ${plan.size} listening on ${formatAddress(listenHost, leader.port)} waited for ranks 1 to ${plan.size - 1} (a rank that could not start prints its own error)`);
    }
  }
  const deadlineMs = Date.now() + joinTimeoutMs;
  const join = (host: string, port: number, timeoutMs: number): Promise<ClusterHandle> => joinCluster({
    join: { host, port },
    secret: options.secret,
    config,
    nodeId: plan.rank,
    joinTimeoutMs: timeoutMs,
    ...(options.createMesh === undefined ? {} : { createMesh: options.createMesh }),
    relayProcessOutput: true,
    ...(options.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs: options.heartbeatTimeoutMs }),
  });
  if (leader.kind === 'address') {
    try {
      return await join(leader.host, leader.port, joinTimeoutMs);
    } catch (error) {
      throw explained(error, plan, `rank ${plan.rank} of ${plan.size} joining node 0 at ${formatAddress(leader.host, leader.port)}`);
    }
  }
  // Rendezvous: a file left by an earlier run names an address nobody listens on; reread it until the deadline.
  for (;;) {
    const record = await waitForLeader(leader.file, plan.clusterId, deadlineMs, plan.source);
    const remainingMs = deadlineMs - Date.now();
    try {
      return await join(record.host, record.port, Math.max(1, Math.min(remainingMs, rendezvousRetrySliceMs)));
    } catch (error) {
      const unreachable = isDsmError(error) && (error as DsmError).code === 'DSM_ERR_UNREACHABLE';
      if (!unreachable || Date.now() >= deadlineMs) {
        throw explained(error, plan, `rank ${plan.rank} of ${plan.size} joining node 0 at ${formatAddress(record.host, record.port)} (published in ${leader.file})`);
      }
    }
  }
}
