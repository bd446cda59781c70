// Which engine started this process, and what it says: this process's rank,
// the cluster's size, and where node 0 listens. Pure: reads only the
// environment and the request it is given, so every case is unit-tested.
//
//   slurm       srun (a job step): SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS),
//               SLURM_STEP_NODELIST (node 0 = its first host), port from SLURM_JOB_ID + SLURM_STEP_ID.
//               A batch script's own environment (SLURM_PROCID without SLURM_STEP_ID) is not a step.
//   mpi         Open MPI (OMPI_COMM_WORLD_RANK/SIZE), MPICH Hydra and Intel MPI (PMI_RANK/PMI_SIZE);
//               node 0 publishes its address in a rendezvous file, or --leader HOST:PORT names it.
//   kubernetes  an Indexed Job: JOB_COMPLETION_INDEX, --expect N (= completions), node 0 is
//               <job>-0.<DSM_KUBERNETES_SERVICE> (the pod's hostname is <job>-<index>).

import { join } from 'node:path';
import { launcherPortDefault, nodeCountMax, slurmPortSpan } from '../../constants.js';
import { DsmError, assert } from '../../errors.js';
import { parseAddress } from '../address.js';
import { HostlistError, expandHostlist, expandTaskCounts } from './hostlist.js';

export const launcherNames = ['slurm', 'mpi', 'kubernetes'] as const;
export type LauncherName = typeof launcherNames[number];

/** Where the other ranks find node 0. */
export type Leader =
  /** A known address: node 0 listens on its port (every interface), the others join host:port. */
  | { kind: 'address'; host: string; port: number }
  /** Node 0 listens on `port` (0: any), then writes advertiseHost:port to `file`; the others read it. */
  | { kind: 'rendezvous'; file: string; advertiseHost: string; port: number };

export interface LauncherPlan {
  launcher: LauncherName;
  rank: number;
  size: number;
  leader: Leader;
  /** Checked by the handshake: a rank of another job that reaches this node 0 is refused. */
  clusterId: string;
  /** The variables read, "NAME=value, …", for messages. */
  source: string;
}

export interface LauncherRequest {
  /** --launcher: auto (default), none, or one of launcherNames. */
  launcher?: string;
  /** The setting that named `launcher` (--launcher, or DSM_LAUNCHER), for the error naming a wrong one. */
  askedBy?: '--launcher' | 'DSM_LAUNCHER';
  /** --leader HOST:PORT, or :PORT to keep the launcher's host. */
  leader?: string;
  /** --rendezvous DIR (MPI). */
  rendezvous?: string;
  /** --expect N: the size (Kubernetes), or a check of the launcher's (the others). */
  expect?: number;
  /** This machine's name (os.hostname()). */
  hostname: string;
  /** Where a rendezvous goes when no directory is named and the ranks span machines (a shared home). */
  homeDirectory: string;
  /** Where a rendezvous goes when every rank is on this machine. */
  tmpDirectory: string;
}

type Env = Record<string, string | undefined>;

/** Builds the "NAME=value, …" list of what was read, and fails naming it. */
class Reading {
  private readonly read: string[] = [];
  constructor(private readonly launcher: string, private readonly env: Env) {}

  get(name: string): string | undefined {
    const value = this.env[name];
    if (value !== undefined && !this.read.some((entry) => entry.startsWith(`${name}=`))) this.read.push(`${name}=${value}`);
    return value;
  }

  /** The first of `names` that is set; fails naming them all when none is. */
  need(names: string[], what: string): { name: string; value: string } {
    for (const name of names) {
      const value = this.get(name);
      if (value !== undefined && value !== '') return { name, value };
    }
    this.fail(`${names.join(' or ')} ${names.length > 1 ? 'are' : 'is'} not set (${what})`);
  }

  integer(name: string, value: string, min: number): number {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
      this.fail(`${name}=${value} is not an integer >= ${min}`);
    }
    return Number(value);
  }

  source(): string {
    return this.read.join(', ');
  }

  fail(what: string): never {
    throw new DsmError('DSM_ERR_LAUNCHER', `${this.launcher}: ${what}; read: ${this.source() || 'nothing'}`);
  }
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** A token safe in a file name and a cluster id. */
function token(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
}

/** --leader: HOST:PORT, or :PORT (the launcher's host). */
function parseLeader(text: string | undefined): { host?: string; port: number } | undefined {
  if (text === undefined) return undefined;
  if (/^:\d{1,5}$/.test(text)) {
    const port = Number(text.slice(1));
    if (port > 65535) throw new DsmError('DSM_ERR_INVALID_OPTION', `--leader '${text}': the port must be at most 65535`);
    return { port };
  }
  return parseAddress(text, '--leader');
}

function checkRankSize(reading: Reading, rankName: string, rank: number, sizeName: string, size: number, expect: number | undefined): void {
  if (size > nodeCountMax) reading.fail(`${sizeName}=${size}: dsm runs at most ${nodeCountMax} nodes`);
  if (rank >= size) reading.fail(`${rankName}=${rank} is not below ${sizeName}=${size} (expected 0 <= rank < size)`);
  if (expect !== undefined && expect !== size) reading.fail(`--expect ${expect} differs from ${sizeName}=${size}`);
}

/** Which engines' variables are present; a Slurm batch script (no step id) is not a step. */
function present(env: Env): LauncherName[] {
  const found: LauncherName[] = [];
  if (env.SLURM_PROCID !== undefined && (env.SLURM_STEP_ID ?? env.SLURM_STEPID) !== undefined) found.push('slurm');
  if (env.OMPI_COMM_WORLD_RANK !== undefined || env.PMI_RANK !== undefined) found.push('mpi');
  if (env.JOB_COMPLETION_INDEX !== undefined) found.push('kubernetes');
  return found;
}

/** The MPI view of rank and size: Open MPI's variables, or PMI's (MPICH Hydra, Intel MPI), which must agree when both are set. */
function mpiRankSize(reading: Reading): { rank: number; size: number; rankName: string; sizeName: string; localSize?: number } {
  const ompiRank = reading.get('OMPI_COMM_WORLD_RANK');
  const pmiRank = reading.get('PMI_RANK');
  const useOmpi = ompiRank !== undefined;
  const rankName = useOmpi ? 'OMPI_COMM_WORLD_RANK' : 'PMI_RANK';
  const sizeName = useOmpi ? 'OMPI_COMM_WORLD_SIZE' : 'PMI_SIZE';
  const rankText = useOmpi ? ompiRank : pmiRank;
  if (rankText === undefined) reading.fail('OMPI_COMM_WORLD_RANK or PMI_RANK is not set (this process\'s rank)');
  const rank = reading.integer(rankName, rankText, 0);
  const size = reading.integer(sizeName, reading.need([sizeName], 'the number of ranks').value, 1);
  if (useOmpi && pmiRank !== undefined) {
    const pmiSize = reading.get('PMI_SIZE');
    if (Number(pmiRank) !== rank || (pmiSize !== undefined && Number(pmiSize) !== size)) {
      reading.fail(`Open MPI's and PMI's variables disagree (expected the same rank and size)`);
    }
  }
  const localName = useOmpi ? 'OMPI_COMM_WORLD_LOCAL_SIZE' : 'MPI_LOCALNRANKS';
  const localText = reading.get(localName);
  const localSize = localText === undefined ? undefined : reading.integer(localName, localText, 1);
  if (localSize !== undefined && localSize > size) reading.fail(`${localName}=${localSize} ranks on this machine but ${sizeName}=${size} in all (expected at most the size)`);
  return { rank, size, rankName, sizeName, ...(localSize === undefined ? {} : { localSize }) };
}

/**
 * The step's hosts, in order (node 0 is on the first). The step's own
 * variables are checked against the size; the job's (a fallback) may name
 * more hosts than this step uses.
 */
function slurmHosts(reading: Reading, size: number, sizeName: string): string[] {
  const listVar = reading.need(['SLURM_STEP_NODELIST', 'SLURM_JOB_NODELIST', 'SLURM_NODELIST'], 'the step\'s hosts; node 0 is the first');
  let hosts: string[];
  try {
    hosts = expandHostlist(listVar.value);
  } catch (error) {
    if (!(error instanceof HostlistError)) throw error;
    reading.fail(`${listVar.name} does not parse: ${error.message} (expected a host list like node[01-04,07])`);
  }
  if (listVar.name !== 'SLURM_STEP_NODELIST') return hosts;
  if (hosts.length > size) reading.fail(`${listVar.name} names ${hosts.length} hosts for ${size} task(s) (expected at least one task per host)`);
  const perNode = reading.get('SLURM_STEP_TASKS_PER_NODE');
  if (perNode !== undefined) {
    let counts: number[];
    try {
      counts = expandTaskCounts(perNode);
    } catch (error) {
      if (!(error instanceof HostlistError)) throw error;
      reading.fail(`SLURM_STEP_TASKS_PER_NODE='${perNode}' does not parse: ${error.message}`);
    }
    const total = counts.reduce((sum, count) => sum + count, 0);
    if (total !== size) reading.fail(`SLURM_STEP_TASKS_PER_NODE='${perNode}' adds up to ${total}, not ${sizeName}=${size}`);
    if (counts.length !== hosts.length) reading.fail(`SLURM_STEP_TASKS_PER_NODE='${perNode}' counts ${counts.length} hosts, SLURM_STEP_NODELIST ${hosts.length}`);
  }
  assert(hosts.length >= 1 && hosts.length <= size, 'a step has a task on each of its hosts');
  return hosts;
}

function slurmPlan(env: Env, request: LauncherRequest, leaderOption: { host?: string; port: number } | undefined): LauncherPlan {
  const reading: Reading = new Reading('slurm', env);
  const rankVar = reading.need(['SLURM_PROCID'], 'this task\'s rank; is dsm started by srun?');
  const rank = reading.integer(rankVar.name, rankVar.value, 0);
  const sizeVar = reading.need(['SLURM_STEP_NUM_TASKS', 'SLURM_NTASKS', 'SLURM_NPROCS'], 'the number of tasks');
  const size = reading.integer(sizeVar.name, sizeVar.value, 1);
  checkRankSize(reading, rankVar.name, rank, sizeVar.name, size, request.expect);
  const stepId = reading.get('SLURM_STEP_ID') ?? reading.get('SLURM_STEPID') ?? '0';
  const jobId = reading.get('SLURM_JOB_ID') ?? reading.get('SLURM_JOBID') ?? '0';
  const hosts = slurmHosts(reading, size, sizeVar.name);
  const firstHost = hosts[0]!;
  // Task 0 runs on the step's first host under Slurm's block and cyclic distributions; say so when it does not.
  const ownNode = reading.get('SLURMD_NODENAME');
  if (rank === 0 && leaderOption?.host === undefined && ownNode !== undefined && ownNode !== firstHost) {
    reading.fail(`task 0 runs on ${ownNode}, not on the step's first host ${firstHost} (expected the default block or cyclic distribution; otherwise pass --leader HOST:PORT)`);
  }
  const port = leaderOption?.port ?? launcherPortDefault + (fnv1a(`${jobId}.${stepId}`) % slurmPortSpan);
  return {
    launcher: 'slurm', rank, size,
    leader: { kind: 'address', host: leaderOption?.host ?? firstHost, port },
    clusterId: `slurm-${token(jobId)}.${token(stepId)}`,
    source: reading.source(),
  };
}

function mpiPlan(env: Env, request: LauncherRequest, leaderOption: { host?: string; port: number } | undefined): LauncherPlan {
  const reading: Reading = new Reading('mpi', env);
  const { rank, size, rankName, sizeName, localSize } = mpiRankSize(reading);
  checkRankSize(reading, rankName, rank, sizeName, size, request.expect);
  const jobKey = reading.get('OMPI_MCA_ess_base_jobid') ?? reading.get('PMIX_NAMESPACE') ?? reading.get('PMI_JOBID');
  const clusterId = `mpi-${token(jobKey ?? 'job')}`;
  if (leaderOption?.host !== undefined) {
    return { launcher: 'mpi', rank, size, leader: { kind: 'address', host: leaderOption.host, port: leaderOption.port }, clusterId, source: reading.source() };
  }
  // Every rank on this machine: node 0 is at 127.0.0.1 and a private directory will do.
  const allLocal = localSize === size;
  const directory = request.rendezvous ?? reading.get('DSM_RENDEZVOUS') ?? (allLocal ? request.tmpDirectory : join(request.homeDirectory, '.dsm', 'rendezvous'));
  return {
    launcher: 'mpi', rank, size,
    leader: { kind: 'rendezvous', file: join(directory, `dsm-${token(jobKey ?? 'job')}.leader`), advertiseHost: allLocal ? '127.0.0.1' : request.hostname, port: leaderOption?.port ?? 0 },
    clusterId, source: reading.source(),
  };
}

function kubernetesPlan(env: Env, request: LauncherRequest, leaderOption: { host?: string; port: number } | undefined): LauncherPlan {
  const reading: Reading = new Reading('kubernetes', env);
  const indexVar = reading.need(['JOB_COMPLETION_INDEX'], 'the pod\'s index in an Indexed Job');
  const rank = reading.integer(indexVar.name, indexVar.value, 0);
  if (request.expect === undefined) reading.fail('the cluster size is not in a pod\'s environment: pass --expect N equal to the Job\'s completions');
  checkRankSize(reading, indexVar.name, rank, '--expect', request.expect, undefined);
  const hostname = reading.get('HOSTNAME') ?? request.hostname;
  const suffix = `-${rank}`;
  if (!hostname.endsWith(suffix) || hostname.length === suffix.length) {
    reading.fail(`the pod's hostname '${hostname}' does not end in -${rank} (expected <job>-<index>, as an Indexed Job names its pods)`);
  }
  const job = hostname.slice(0, -suffix.length);
  let host = leaderOption?.host;
  if (host === undefined) {
    const service = reading.need(['DSM_KUBERNETES_SERVICE'], 'the headless Service named by the pod template\'s subdomain');
    host = `${job}-0.${service.value}`;
  }
  return {
    launcher: 'kubernetes', rank, size: request.expect,
    leader: { kind: 'address', host, port: leaderOption?.port ?? launcherPortDefault },
    clusterId: `kubernetes-${token(job)}`,
    source: reading.source(),
  };
}

const planners: Record<LauncherName, (env: Env, request: LauncherRequest, leader: { host?: string; port: number } | undefined) => LauncherPlan> = {
  slurm: (env, request, leader) => checked(slurmPlan(env, request, leader)),
  mpi: (env, request, leader) => checked(mpiPlan(env, request, leader)),
  kubernetes: (env, request, leader) => checked(kubernetesPlan(env, request, leader)),
};

/** What every plan promises the code that starts the cluster. */
function checked(plan: LauncherPlan): LauncherPlan {
  assert(Number.isInteger(plan.rank) && plan.rank >= 0 && plan.rank < plan.size && plan.size <= nodeCountMax, 'a plan\'s rank is below its size, within the node limit');
  assert(plan.leader.port >= 0 && plan.leader.port <= 65535, 'node 0\'s port is a port');
  assert(plan.leader.kind === 'rendezvous' ? plan.leader.file !== '' && plan.leader.advertiseHost !== '' : plan.leader.host !== '', 'node 0 can be found');
  return plan;
}

/** One "NAME=value" for each engine's marker variables, for the two-engines message. */
function markers(env: Env, launcher: LauncherName): string {
  const names = { slurm: ['SLURM_PROCID', 'SLURM_STEP_ID'], mpi: ['OMPI_COMM_WORLD_RANK', 'PMI_RANK'], kubernetes: ['JOB_COMPLETION_INDEX'] }[launcher];
  return names.filter((name) => env[name] !== undefined).map((name) => `${name}=${env[name]}`).join(', ');
}

/**
 * The plan for this process, or null when no launcher started it (or
 * --launcher none). `srun --mpi=pmi2|pmix` sets PMI variables beside Slurm's;
 * when they agree on rank and size it is one engine, Slurm. When they do not
 * (e.g. mpirun inside a Slurm step), --launcher must say which.
 */
export function detectLauncher(env: Env, request: LauncherRequest): LauncherPlan | null {
  const asked = request.launcher ?? 'auto';
  if (asked === 'none') return null;
  const leaderOption = parseLeader(request.leader);
  if (asked !== 'auto') {
    if (!(launcherNames as readonly string[]).includes(asked)) {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `${request.askedBy ?? '--launcher'} '${asked}' does not exist; use one of: auto, none, ${launcherNames.join(', ')}`);
    }
    return planners[asked as LauncherName](env, request, leaderOption);
  }
  const found = present(env);
  if (found.length === 0) return null;
  if (found.length === 1) return planners[found[0]!](env, request, leaderOption);
  if (found.length === 2 && found.includes('slurm') && found.includes('mpi')) {
    const slurm = slurmPlan(env, request, leaderOption);
    let mpi: { rank: number; size: number } | undefined;
    try { mpi = mpiRankSize(new Reading('mpi', env)); } catch { mpi = undefined; }
    if (mpi !== undefined && mpi.rank === slurm.rank && mpi.size === slurm.size) return slurm;
  }
  throw new DsmError('DSM_ERR_LAUNCHER',
    `the variables of ${found.length} engines are set and disagree: ${found.map((name) => `${name} (${markers(env, name)})`).join('; ')}; `
    + `pass --launcher ${found.join('|')} to say which one started dsm`);
}
