// `dsm run` under Slurm, an MPI launcher or Kubernetes: every rank runs the
// same command; rank 0 runs the program's main thread, the others serve until
// the cluster ends, and every rank exits with the program's code.

import { homedir, hostname, tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { nodeCountMax } from '../constants.js';
import { DsmError } from '../errors.js';
import type { LauncherPlan } from '../cluster/launchers/detect.js';
import { parseInteger } from './options.js';
import { type Environment, launcherSetting, processEnvironment, takeEnvironmentSecret } from '../env.js';

export interface LaunchedRaw {
  launcher?: string;
  leader?: string;
  rendezvous?: string;
  listen?: string;
  expect?: string;
  secret?: string;
  nodes?: string;
  joinTimeout?: string;
}

/**
 * The launcher plan for this `dsm run`, or null for an ordinary run. An
 * explicit --listen or --nodes N > 1 is an ordinary run unless --launcher
 * names an engine (then they conflict).
 */
export async function launcherPlanFor(raw: LaunchedRaw, env: Environment): Promise<LauncherPlan | null> {
  const manual = raw.listen !== undefined || (raw.nodes !== undefined && raw.nodes !== '1');
  // DSM_LAUNCHER=none keeps ordinary runs ordinary inside an engine's environment (e.g. a CI job under Slurm).
  const asked = raw.launcher ?? launcherSetting(env) ?? 'auto';
  // Which setting named it, for the errors: the option, or the environment variable.
  const askedBy = raw.launcher === undefined && launcherSetting(env) !== undefined ? 'DSM_LAUNCHER' : '--launcher';
  if (manual) {
    if (asked !== 'auto' && asked !== 'none') {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `${askedBy} ${asked} starts every node itself; drop ${raw.listen !== undefined ? '--listen' : '--nodes'}${askedBy === 'DSM_LAUNCHER' ? ' (or unset DSM_LAUNCHER)' : ''}`);
    }
    return null;
  }
  const { detectLauncher } = await import('../cluster/launchers/detect.js');
  const plan = detectLauncher(env, {
    launcher: asked,
    askedBy,
    ...(raw.leader === undefined ? {} : { leader: raw.leader }),
    ...(raw.rendezvous === undefined ? {} : { rendezvous: raw.rendezvous }),
    ...(raw.expect === undefined ? {} : { expect: parseInteger('--expect', raw.expect, 1, nodeCountMax) }),
    hostname: hostname(),
    homeDirectory: homedir(),
    tmpDirectory: tmpdir(),
  });
  if (plan !== null && raw.secret !== undefined) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `under ${plan.launcher} the secret must not be on the command line (every process listing shows it): set DSM_SECRET_FILE, DSM_SECRET or create ~/.dsm/secret`);
  }
  return plan;
}

export interface LaunchedRuntime {
  regionBytes: number;
  protocol: string;
  placement: import('../protocol/engine.js').PlacementName;
  twinBytes: number;
  coherence: string;
  heartbeatTimeoutMs?: number;
}

/** Joins or leads the launched cluster, then runs the program (rank 0) or serves (the others). */
export async function runLaunched(
  plan: LauncherPlan,
  raw: LaunchedRaw & { tagOutput?: string },
  runtime: LaunchedRuntime,
  program: { file: string; args: string[]; report: import('../runtime/report.js').ReportOptions },
): Promise<void> {
  const { launcherSecret, startUnderLauncher } = await import('../cluster/launchers/index.js');
  const { createMesh, runClusterProgram, ClusterNode } = await import('../runtime/cluster-node.js');
  const { secret } = launcherSecret(processEnvironment(), homedir(), existsSync);
  // The program's threads and their subprocesses share this environment: no secret in it.
  takeEnvironmentSecret();
  const handle = await startUnderLauncher(plan, {
    secret,
    config: { coherence: runtime.coherence, regionBytes: runtime.regionBytes },
    ...(raw.joinTimeout === undefined ? {} : { joinTimeoutMs: parseInteger('--join-timeout', raw.joinTimeout, 100, 3_600_000) }),
    createMesh,
    tagOutput: raw.tagOutput !== undefined,
    ...(runtime.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs: runtime.heartbeatTimeoutMs }),
  });
  const options = { regionBytes: runtime.regionBytes, protocol: runtime.protocol, placement: runtime.placement, twinBytes: runtime.twinBytes };
  if (handle.nodeId === 0) {
    await runClusterProgram(handle, { ...options, file: program.file, args: program.args, report: program.report });
    return;
  }
  new ClusterNode(handle, options);
  // A serving rank lives until node 0 ends the cluster, then exits with the program's code.
  setInterval(() => {}, 1 << 30);
}
