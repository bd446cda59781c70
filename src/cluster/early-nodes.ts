// The other nodes of a local `dsm run --nodes N`, started before the CLI loads.
//
// A child node's process spends ~250 ms (Node's own start, then its modules) before it can join, and the
// launcher spent as long again before it spawned it (Node's start, the CLI's modules, node 0's listen): on
// a 2-vCPU machine one core sat idle through the launcher's part. bin/dsm.js calls startEarlyNodes first,
// with the command line only; the children start at once, load their modules, and wait on stdin for one
// line, their settings (the environment a late spawn would have given them, and the secret: JSON
// { env, secret }), which the launcher writes when it adopts them (src/cluster/launch.ts spawnChild). A child
// the launcher does not adopt (the run turned out otherwise: a usage error, --help, another node count) reads
// EOF when the launcher ends, or when it discards them, and exits quietly with 0.
//
// The command line is only looked at, never judged: every option this scan does not know, and every run that
// would not start local children (--listen, --race, --tag-output, a launcher's environment), starts none
// early, and the CLI parses and checks it as always.

import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { entryUrl } from '../util/entry-url.js';
import { earlyChildEnvironment, processEnvironment } from '../env.js';

/** Options of `dsm run` that take a value, and that leave a local run's children as they are. */
const valueOptions = new Set(['--nodes', '--protocol', '--placement', '--region-bytes', '--twin-bytes', '--heartbeat-timeout', '--stats-json', '--trace']);
/** Flags of `dsm run` that leave a local run's children as they are. */
const flagOptions = new Set(['--stats']);
/** Environment variables of the launchers dsm recognizes (src/cluster/launchers/detect.ts): such a run starts its nodes otherwise. */
const launcherPrefixes = ['SLURM', 'OMPI_', 'PMI_', 'PMIX_', 'MPI_LOCAL', 'JOB_COMPLETION_INDEX', 'KUBERNETES_SERVICE_HOST', 'DSM_KUBERNETES_SERVICE', 'DSM_RENDEZVOUS', 'DSM_LAUNCHER'];

/**
 * How many nodes `argv` (the arguments after `dsm`) starts on this machine, when this scan is sure it is a
 * plain local run of several nodes (else 0).
 */
export function earlyNodeCount(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = processEnvironment()): number {
  if (argv[0] !== 'run') return 0;
  if (Object.keys(env).some((name) => launcherPrefixes.some((prefix) => name.startsWith(prefix)))) return 0;
  let nodes = 1;
  for (let index = 1; index < argv.length; index += 1) {
    const token = argv[index]!;
    // The program: what follows is its own.
    if (!token.startsWith('-')) break;
    const equals = token.indexOf('=');
    const name = equals === -1 ? token : token.slice(0, equals);
    if (flagOptions.has(name) && equals === -1) continue;
    if (!valueOptions.has(name)) return 0;
    const value = equals === -1 ? argv[++index] : token.slice(equals + 1);
    if (value === undefined) return 0;
    if (name === '--nodes') {
      if (!/^\d{1,3}$/.test(value)) return 0;
      nodes = Number(value);
    }
  }
  // A core for each node started early; past that the boots would only slow node 0's own.
  return nodes >= 2 && nodes - 1 <= availableParallelism() ? nodes : 0;
}

/** Children started early, one per node id from 1, until the launcher takes or discards them. */
export class EarlyNodes {
  private readonly children = new Map<number, ChildProcess>();

  constructor(nodeCount: number) {
    const script = fileURLToPath(entryUrl('nodeMain'));
    for (let nodeId = 1; nodeId < nodeCount; nodeId += 1) {
      const env = earlyChildEnvironment(nodeId);
      const child = spawn(process.execPath, [...process.execArgv, script], { argv0: process.argv0, stdio: ['pipe', 'inherit', 'inherit'], env });
      // A spawn that failed, or a child that died before it was taken: the launcher spawns that node itself.
      child.on('error', () => {});
      child.stdin?.on('error', () => {});
      this.children.set(nodeId, child);
    }
  }

  /** Node `nodeId`'s early child, still running, now the caller's (it writes the settings line); else null. */
  take(nodeId: number): ChildProcess | null {
    const child = this.children.get(nodeId);
    if (child === undefined) return null;
    this.children.delete(nodeId);
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined || child.stdin === null || child.stdin.destroyed) {
      child.kill();
      return null;
    }
    return child;
  }

  /** The children not taken end (their stdin closes: they exit with 0). */
  discard(): void {
    for (const child of this.children.values()) child.stdin?.end();
    this.children.clear();
  }
}

/** Starts the nodes `argv` will need early (bin/dsm.js), or null. */
export function startEarlyNodes(argv: readonly string[]): EarlyNodes | null {
  const nodes = earlyNodeCount(argv);
  return nodes === 0 ? null : new EarlyNodes(nodes);
}
