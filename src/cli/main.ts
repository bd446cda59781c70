// The `dsm` command.

import { Command, CommanderError } from 'commander';
import type { LauncherPlan } from '../cluster/launchers/detect.js';
import type { ClusterHandle, MeshContext, MeshLike } from '../cluster/common.js';
import type { PrestartedThread } from '../runtime/program.js';
import { DsmError, exitCodeNodeDied, exitCodeUsage, isDsmError } from '../errors.js';
import { heartbeatTimeoutMs, heartbeatTimeoutMsMax, heartbeatTimeoutMsMin, joinTimeoutMsDefault, loopStallFactor, nodeCountMax } from '../constants.js';
import { parseInteger, parseProtocol, parseRunOptions, placementDefault } from './options.js';
import { placementNames } from '../protocol/engine.js';
import { checkEnvironmentSettings, processEnvironment, publishNodeIdentity, setRaceMode, setTagOutput, takeEnvironmentSecret, warmThreadsEnabled } from '../env.js';

import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { packageRoot, packageVersion as version } from '../package-info.js';
import { entryUrl } from '../util/entry-url.js';
import { ignoreClosedOutput } from '../util/closed-output.js';
import { mappedStack } from '../util/source-frames.js';
import { hop, hopsOn } from '../util/hops.js';
import type { EarlyNodes } from '../cluster/early-nodes.js';

function fail(error: unknown): never {
  if (isDsmError(error)) {
    process.stderr.write(`dsm: ${(error as DsmError).code}: ${(error as DsmError).message}\n`);
    // A node that died before the cluster started is a node failure like any other (70), not a usage error.
    process.exit((error as DsmError).code === 'DSM_ERR_NODE_DIED' ? exitCodeNodeDied : exitCodeUsage);
  }
  // Node prints it, uncaught: with dsm's frames named in src/ (node's source maps are off, src/util/source-frames.ts).
  if (error instanceof Error && typeof error.stack === 'string') error.stack = mappedStack(error.stack);
  throw error;
}

async function runCommand(program: string, args: string[], raw: Record<string, string | undefined>, plan: LauncherPlan | null, nodesGiven = true): Promise<void> {
  if (hopsOn) hop('m:run command');
  checkEnvironmentSettings();
  const options = parseRunOptions(raw);
  const race = raw.race !== undefined || raw.raceJson !== undefined || raw.racePages !== undefined;
  // Output files are checked now, not when the run ends (after the program's work).
  if (raw.statsJson !== undefined || raw.trace !== undefined || raw.raceJson !== undefined) {
    const { checkOutputPath } = await import('../runtime/report.js');
    for (const [path, option] of [[raw.statsJson, '--stats-json'], [raw.trace, '--trace'], [raw.raceJson, '--race-json']] as const) {
      if (path !== undefined) checkOutputPath(path, option);
    }
  }
  const report = {
    ...(raw.stats === undefined ? {} : { stats: true }),
    ...(raw.statsJson === undefined ? {} : { statsJsonPath: raw.statsJson }),
    ...(raw.trace === undefined ? {} : { tracePath: raw.trace }),
  };
  const { entryNamesWorkers, prestartMainThread, resolveProgram } = await import('../runtime/program.js');
  const entry = resolveProgram(program);
  // App threads tag their own lines (src/threads/setup.ts); node processes inherit this.
  if (raw.tagOutput !== undefined) setTagOutput();
  // Started by Slurm, an MPI launcher or Kubernetes on every rank (src/cluster/launchers).
  if (race && plan !== null && plan.size > 1) {
    throw new DsmError('DSM_ERR_USAGE', `--race runs on one machine (each thread on a node of its own, all on this host), but a ${plan.launcher ?? 'launcher'} started ${plan.size} ranks: run dsm run --race once, outside the launcher (or pass --launcher none)`);
  }
  if (race) {
    // Race mode (docs/RACE.md): one node per app thread plus a node that is
    // home of every page and runs none; --nodes counts the app nodes.
    const { raceNodeCountDefault } = await import('../constants.js');
    options.nodes = (nodesGiven ? options.nodes : raceNodeCountDefault) + 1;
    setRaceMode();
  }
  if (plan !== null && plan.size > 1) {
    discardEarlyNodes();
    const { runLaunched } = await import('./launched.js');
    await runLaunched(plan, raw, { ...options, coherence: coherenceOf(options), ...heartbeatOption(raw) }, { file: entry, args, report });
    return;
  }
  // The program's threads and their subprocesses share this environment: no secret in it.
  const envSecret = takeEnvironmentSecret();
  // Node 0's runtime and the program's main thread (an app thread: Node's worker realm and dsm's
  // modules, ~100 ms) load while the other nodes start: spawned first, as soon as node 0 listens,
  // they have the CPU for their own start; the main thread then waits at its gate for the program
  // (race mode starts its threads apart).
  let runtimeModule: Promise<typeof import('../runtime/cluster-node.js')> | null = null;
  const loadRuntime = (): Promise<typeof import('../runtime/cluster-node.js')> => {
    if (runtimeModule === null) {
      runtimeModule = import('../runtime/cluster-node.js');
      runtimeModule.catch(() => {});
    }
    return runtimeModule;
  };
  const local: { mainThread: PrestartedThread | null } = { mainThread: null };
  const startLocalWork = (): void => {
    if (local.mainThread === null && !race && warmThreadsEnabled()) {
      // What the main thread's set-up publishes (it shares this environment), published first: its first local warm
      // thread, made before that set-up, copies the environment, and is taken only if it has not changed since.
      if (raw.listen === undefined) publishNodeIdentity(0, options.nodes);
      local.mainThread = prestartMainThread(options.nodes, options.nodes === 1 && entryNamesWorkers(entry));
    }
    if (hopsOn) hop('m:main thread prestarted');
    void loadRuntime();
  };
  const createMesh = async (context: MeshContext): Promise<MeshLike> => (await loadRuntime()).createMesh(context);
  const runtime = { regionBytes: options.regionBytes, protocol: options.protocol, placement: options.placement, twinBytes: options.twinBytes, ...(race ? { race: true } : {}) };
  let handle: ClusterHandle;
  if (raw.listen !== undefined || options.nodes > 1) {
    const { launchLocalCluster, parseAddress, secretFromEnvironment } = await import('../cluster/index.js');
    const placement = raw.listen !== undefined
      // Across machines: node 0 listens and waits for `dsm node --join`.
      ? {
        nodeCount: parseInteger('--expect', raw.expect ?? '', 1, nodeCountMax),
        spawnLocal: false,
        listen: parseAddress(raw.listen, '--listen'),
        secret: secretFromEnvironment(raw.secret ?? (raw.secretFile === undefined ? envSecret : undefined), raw.secretFile),
        ...tlsOption((await import('../transport/tls.js')).loadTls({ cert: raw.tlsCert, key: raw.tlsKey, ca: raw.tlsCa })),
        ...(raw.joinTimeout === undefined ? {} : { joinTimeoutMs: parseInteger('--join-timeout', raw.joinTimeout, 100, 3_600_000) }),
      }
      // One machine: node 0 spawns the others, which run this module's runtime.
      : {
        nodeCount: options.nodes,
        // A child prepares (starts its first warm thread) before it joins while this machine has a core for
        // each node; with more nodes than cores the boots only slow the others' starts (session 28: 3 nodes on
        // 2 vCPUs reached their program 114 ms later), and the thread starts once the node is made, as before.
        child: {
          nodeRuntime: entryUrl('clusterNode').href, runtimeConfig: runtime,
          ...(options.nodes <= availableParallelism() ? { nodePrepare: entryUrl('nodePrepare').href } : {}),
        },
      };
    // Children bin/dsm.js started early serve only a local run (the launcher takes them); any other run ends them.
    if (raw.listen !== undefined || raw.tagOutput !== undefined) discardEarlyNodes();
    try {
      handle = await launchLocalCluster({
        ...placement,
        ...heartbeatOption(raw),
        config: { coherence: coherenceOf(options), regionBytes: options.regionBytes },
        createMesh,
        tagOutput: raw.tagOutput !== undefined,
        onNodesStarting: startLocalWork,
        ...(raw.listen === undefined && raw.tagOutput === undefined ? { early: earlyNodes } : {}),
      });
    } catch (error) {
      local.mainThread?.discard();
      throw error;
    }
  } else {
    discardEarlyNodes();
    // One node is a cluster of one: nobody to spawn, listen for or dial (src/cluster/solo.ts).
    startLocalWork();
    const { soloCluster } = await import('../cluster/solo.js');
    handle = soloCluster(heartbeatOption(raw));
  }
  if (hopsOn) hop('m:cluster started');
  const { runClusterProgram } = await loadRuntime();
  await runClusterProgram(handle, { ...runtime, file: entry, args, report, mainThread: local.mainThread, ...(raw.raceJson === undefined ? {} : { raceJsonPath: raw.raceJson }), ...(raw.racePages === undefined ? {} : { racePages: true }) });
}

/** --heartbeat-timeout: the floor of the adaptive failure detector, and (times loopStallFactor) the stalled-loop limit. */
function heartbeatOption(raw: Record<string, string | undefined>): { heartbeatTimeoutMs?: number } {
  if (raw.heartbeatTimeout === undefined) return {};
  return { heartbeatTimeoutMs: parseInteger('--heartbeat-timeout', raw.heartbeatTimeout, heartbeatTimeoutMsMin, heartbeatTimeoutMsMax) };
}

/** Options that only make sense together are refused apart, rather than silently ignored. */
function refuseConflicts(raw: Record<string, string | undefined>, given: (name: string) => boolean, launched: boolean): void {
  // Under a launcher --expect checks (or, on Kubernetes, gives) the size and --join-timeout bounds the join.
  if (raw.race !== undefined || raw.raceJson !== undefined || raw.racePages !== undefined) {
    if (raw.listen !== undefined) throw new DsmError('DSM_ERR_USAGE', '--race runs on one machine (each thread on a node of its own, all on this host) and cannot be combined with --listen: run dsm run --race app.js without --listen');
    if (raw.protocol !== undefined && raw.protocol !== 'hlrc') throw new DsmError('DSM_ERR_USAGE', `--race needs the hlrc protocol (its intervals, vector timestamps and diffs are what it checks), not --protocol ${raw.protocol}`);
  }
  if (launched) return;
  if (raw.listen === undefined) {
    for (const [name, option] of [['expect', '--expect'], ['joinTimeout', '--join-timeout']] as const) {
      if (raw[name] !== undefined) throw new DsmError('DSM_ERR_USAGE', `${option} needs --listen HOST:PORT (it says how many nodes, or how long, node 0 waits for); on one machine use --nodes`);
    }
    // A cluster on one machine draws its own secret and stays on 127.0.0.1: a secret or certificate given for it
    // would protect nothing, and a user who gave one believes otherwise.
    for (const [name, option] of [['secret', '--secret'], ['secretFile', '--secret-file'], ['tlsCert', '--tls-cert'], ['tlsKey', '--tls-key'], ['tlsCa', '--tls-ca']] as const) {
      if (raw[name] !== undefined) throw new DsmError('DSM_ERR_USAGE', `${option} secures a cluster across machines and needs --listen HOST:PORT --expect N; a cluster on one machine (--nodes) draws its own secret and its links stay on 127.0.0.1: drop ${option}`);
    }
  } else {
    if (given('nodes')) throw new DsmError('DSM_ERR_USAGE', '--nodes starts nodes on this machine and --listen waits for nodes started elsewhere: use one or the other (with --listen, --expect N counts the nodes)');
    if (raw.expect === undefined) throw new DsmError('DSM_ERR_USAGE', '--listen needs --expect N, the number of nodes in the cluster (this one included)');
  }
}

function tlsOption<T>(config: T | undefined): { tls: T } | Record<string, never> {
  return config === undefined ? {} : { tls: config };
}

/** What every node must agree on about coherence (checked by the handshake): protocol and page placement. */
function coherenceOf(options: { protocol: string; placement: string }): string {
  return `${options.protocol}/${options.placement}`;
}

async function nodeCommand(raw: Record<string, string | undefined>): Promise<void> {
  const options = parseRunOptions(raw);
  const { joinCluster, parseAddress, secretFromEnvironment } = await import('../cluster/index.js');
  const { loadTls } = await import('../transport/tls.js');
  // The first warm thread for remote workers boots while this node loads and joins (src/runtime/node-prepare.ts).
  (await import('../runtime/node-prepare.js')).prepareNode();
  const { createMesh, ClusterNode } = await import('../runtime/cluster-node.js');
  if (raw.join === undefined) throw new DsmError('DSM_ERR_INVALID_OPTION', 'dsm node needs --join HOST:PORT (the address node 0 listens on)');
  const handle = await joinCluster({
    join: parseAddress(raw.join, '--join'),
    secret: secretFromEnvironment(raw.secret, raw.secretFile),
    config: { coherence: coherenceOf(options), regionBytes: options.regionBytes },
    ...(raw.bind === undefined ? {} : { meshHost: raw.bind }),
    ...tlsOption(loadTls({ cert: raw.tlsCert, key: raw.tlsKey, ca: raw.tlsCa })),
    ...(raw.joinTimeout === undefined ? {} : { joinTimeoutMs: parseInteger('--join-timeout', raw.joinTimeout, 100, 3_600_000) }),
    createMesh,
    relayProcessOutput: true,
    ...heartbeatOption(raw),
  });
  new ClusterNode(handle, { regionBytes: options.regionBytes, protocol: options.protocol, placement: options.placement, twinBytes: options.twinBytes });
  // The process lives until the cluster ends it.
  setInterval(() => {}, 1 << 30);
}

interface BenchRaw {
  json?: boolean; iterations?: string; threads?: string; nodes?: string; protocol?: string;
  variant?: string; size?: string; quick?: boolean; hops?: boolean;
}

/** Micro-benchmarks: each module exports run<Name>Bench({ iterations }). */
const microBenches: Record<string, string> = { fault: 'runFaultBench', rtt: 'runRttBench', sync: 'runSyncBench', atomics: 'runAtomicsBench', race: 'runRaceBench', codec: 'runCodecBench', startup: 'runStartupBench' };

interface AppBenchModule {
  appNames: string[];
  runAppBench(app: string, options: Record<string, unknown>): Promise<Record<string, unknown>>;
  runSuite(options: { quick: boolean; json: boolean }): Promise<Record<string, unknown>>;
}

async function benchCommand(name: string, raw: BenchRaw): Promise<void> {
  const json = raw.json === true;
  const exported = microBenches[name];
  if (name === 'rtt' && raw.hops === true) {
    // Where one remote read fault's time goes, hop by hop (bench/rtt-hops.ts).
    const pages = parseInteger('--iterations', raw.iterations ?? '500', 10, 100_000);
    const module = await import(benchModule('rtt-hops')) as typeof import('../../bench/rtt-hops.js');
    const result = await module.runRttHops({ pages });
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`dsm bench rtt --hops\n${module.formatHops(result)}`);
    return;
  }
  if (exported !== undefined) {
    const iterations = parseInteger('--iterations', raw.iterations ?? '2000', 10, 1_000_000);
    const module = await import(benchModule(name)) as Record<string, (o: { iterations: number }) => Promise<Record<string, unknown>>>;
    printBench(name, await module[exported]!({ iterations }), json);
    return;
  }
  // Applications (bench/apps): DSM64's matmul and TreadMarks' suite.
  const apps = await import(benchModule('apps/run')) as AppBenchModule;
  if (name === 'suite') {
    printBench(name, await apps.runSuite({ quick: raw.quick === true, json }), json);
    return;
  }
  if (!apps.appNames.includes(name)) {
    const known = [...Object.keys(microBenches), ...apps.appNames, 'suite'];
    throw new DsmError('DSM_ERR_INVALID_OPTION', `no benchmark named '${name}'; available: ${known.join(', ')}`);
  }
  const options: Record<string, unknown> = { json };
  if (raw.nodes !== undefined) options.nodes = parseInteger('--nodes', raw.nodes, 1, nodeCountMax);
  if (raw.threads !== undefined) options.threads = parseInteger('--threads', raw.threads, 1, 1024);
  if (raw.size !== undefined) options.size = parseInteger('--size', raw.size, 1, 1 << 30);
  if (raw.iterations !== undefined) options.iterations = parseInteger('--iterations', raw.iterations, 1, 1_000_000);
  if (raw.protocol !== undefined) options.protocol = parseProtocol(raw.protocol);
  if (raw.variant !== undefined) options.variant = raw.variant;
  printBench(name, await apps.runAppBench(name, options), json);
}

/** Benchmarks live in bench/, compiled by tsc beside src/ in dist/ (they are not bundled). */
function benchModule(name: string): string {
  return pathToFileURL(join(packageRoot, 'dist', 'bench', `${name}.js`)).href;
}

function printBench(name: string, result: Record<string, unknown>, json: boolean): void {
  if (!json) {
    process.stdout.write(`dsm bench ${name}\n`);
    for (const [key, value] of Object.entries(result)) {
      const text = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(2)) : JSON.stringify(value);
      process.stdout.write(`  ${key.padEnd(24)} ${text}\n`);
    }
    return;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** The other nodes of a local run, started by bin/dsm.js before this module loaded (src/cluster/early-nodes.ts). */
let earlyNodes: EarlyNodes | null = null;

/** The early children end (a run that does not use them: they exit with 0 when their stdin closes). */
function discardEarlyNodes(): void {
  earlyNodes?.discard();
  earlyNodes = null;
}

export async function main(argv: string[], early: EarlyNodes | null = null): Promise<void> {
  earlyNodes = early;
  ignoreClosedOutput();
  const cli = new Command('dsm')
    .description('Distributed shared memory for Node.js: run a worker_threads + SharedArrayBuffer program across a cluster')
    .version(version)
    .exitOverride()
    // Every usage error is one line with a stable code (subcommands inherit this).
    .configureOutput({
      outputError: (text, write) => write(`dsm: DSM_ERR_USAGE: ${text.replace(/^error: /, '').trim()} (run dsm --help for usage)\n`),
    })
    .enablePositionalOptions();

  cli.command('run')
    .description('run a program (JavaScript or TypeScript) on dsm')
    .argument('<program>', 'the program\'s main module (.js, .mjs, .cjs, .ts)')
    .argument('[args...]', 'arguments passed to the program as process.argv[2..]')
    .option('--nodes <n>', 'node processes to start on this machine', '1')
    .option('--protocol <name>', 'coherence protocol: hlrc (home-based lazy release consistency) or sc (sequential consistency)', 'hlrc')
    .option('--placement <name>', `home (hlrc) or manager (sc) of each page: ${placementNames.join(', ')}`, placementDefault)
    .option('--region-bytes <size>', 'size of the global region (virtual, lazily backed), e.g. 512m or 4g', '4g')
    .option('--twin-bytes <size>', 'hlrc: most twin memory per node (copies of pages of other homes written since the last release); past it the oldest dirty pages go home early (default: 1/16 of RAM, at most 12m)')
    .option('--tag-output', 'prefix each output line with the node and thread that wrote it: [node N thread T]')
    .option('--listen <host:port>', 'run across machines: node 0 listens here for `dsm node --join`')
    .option('--expect <n>', 'with --listen: the number of nodes in the cluster, this one included')
    .option('--join-timeout <ms>', `with --listen: how long to wait for every node to join (default: ${joinTimeoutMsDefault})`)
    .option('--secret <secret>', 'the cluster\'s shared secret, at least 128 bits (make one with `dsm secret`); never sent over the network, '
      + 'but visible to every user of this machine in `ps`: prefer --secret-file or DSM_SECRET')
    .option('--secret-file <file>', 'read the shared secret from <file> (one line; keep it readable only by you)')
    .option('--tls-cert <file>', 'mutual TLS: this node\'s certificate (PEM), naming the address the others reach it at; with --tls-key and --tls-ca')
    .option('--tls-key <file>', 'mutual TLS: this node\'s private key (PEM)')
    .option('--tls-ca <file>', 'mutual TLS: the CA (PEM) that signed every node\'s certificate')
    .option('--launcher <name>', 'started on every rank by: auto (default: from the environment), slurm, mpi, kubernetes, or none')
    .option('--leader <host:port>', 'under a launcher: where node 0 listens (or :PORT to keep the launcher\'s host)')
    .option('--rendezvous <dir>', 'under an MPI launcher: a directory every rank reads, where node 0 publishes its address')
    .option('--heartbeat-timeout <ms>', `a node silent this long at least is declared dead (more when the machine is slow: the timeout adapts to the delays seen); a manager loop that stands still ${loopStallFactor} times as long ends its node. Default ${heartbeatTimeoutMs}, ${heartbeatTimeoutMsMin} to ${heartbeatTimeoutMsMax}`)
    .option('--stats', 'at exit, print a per-node table on stderr: faults, messages and bytes by type, diffs, lock and barrier waits')
    .option('--stats-json <file>', 'at exit, write the same statistics as JSON to <file>')
    .option('--race', 'find data races: each thread runs on a node of its own (--nodes counts them, default 5) and concurrent writes to the same bytes (or reads of a page written concurrently) are reported; exit code 66 when races were found (docs/RACE.md)')
    .option('--race-json <file>', 'with --race (implies it): also write the race report as JSON to <file>')
    .option('--race-pages', 'with --race (implies it): also list possible read-write races known only at page precision (a thread read a page another wrote concurrently, maybe other bytes of it: false sharing or a race)')
    .option('--trace <file>', 'write a Chrome trace (Perfetto, chrome://tracing) of faults, page fetches and sync waits to <file>; plot it with dsm plot')
    .passThroughOptions()
    .allowUnknownOption(false)
    .action(async (program: string, args: string[], raw: Record<string, string | undefined>, command: Command) => {
      const { launcherPlanFor } = await import('./launched.js');
      const plan = await launcherPlanFor(raw, processEnvironment());
      refuseConflicts(raw, (name) => command.getOptionValueSource(name) === 'cli', plan !== null);
      await runCommand(program, args, raw, plan, command.getOptionValueSource('nodes') === 'cli');
    });

  cli.command('node')
    .description('join a cluster started elsewhere with `dsm run --listen HOST:PORT --expect N`')
    .requiredOption('--join <host:port>', 'the address node 0 listens on')
    .option('--secret <secret>', 'the cluster\'s shared secret (or set DSM_SECRET); visible to every user of this machine in `ps`: prefer --secret-file')
    .option('--secret-file <file>', 'read the shared secret from <file> (one line; keep it readable only by you)')
    .option('--bind <host>', 'the address this node\'s mesh listens on (default: the address it reaches node 0 from)')
    .option('--tls-cert <file>', 'mutual TLS: this node\'s certificate (PEM), naming the address the others reach it at; with --tls-key and --tls-ca')
    .option('--tls-key <file>', 'mutual TLS: this node\'s private key (PEM)')
    .option('--tls-ca <file>', 'mutual TLS: the CA (PEM) that signed every node\'s certificate')
    .option('--protocol <name>', 'must match node 0', 'hlrc')
    .option('--placement <name>', 'must match node 0', placementDefault)
    .option('--region-bytes <size>', 'must match node 0', '4g')
    .option('--twin-bytes <size>', 'hlrc: most twin memory on this node (default: 1/16 of RAM, at most 12m)')
    .option('--join-timeout <ms>', `how long to keep trying to join (default: ${joinTimeoutMsDefault})`)
    .option('--heartbeat-timeout <ms>', 'as for dsm run (each node uses its own)')
    .action(async (raw: Record<string, string | undefined>) => {
      await nodeCommand(raw);
    });

  cli.command('secret')
    .description('print a fresh shared secret (256 random bits) for --secret-file or DSM_SECRET: dsm secret > cluster.secret')
    .action(async () => {
      const { freshSecret } = await import('../cluster/common.js');
      process.stdout.write(`${freshSecret()}\n`);
    });

  cli.command('bench')
    .description('run a benchmark: fault (native page faults), rtt (transport against raw TCP), sync (locks, barriers, atomics), atomics (Atomics and locks against plain node), race (dsm run --race against plain node), codec (the wire encoder and decoder, µs a message, compact against msgpackr), startup (what a run costs before and after the program, on 1, 2 and 3 nodes, against plain node), '
      + 'an application (matmul, jacobi, tsp, quicksort, water, stencil: dsm against plain worker threads), or suite (all of them, to bench/results/)')
    .argument('<name>', 'benchmark name')
    .option('--json', 'print one JSON object as the last line')
    .option('--iterations <n>', 'samples per measurement (micro-benchmarks; default 2000, rtt --hops 500 pages) or iterations (applications; each its own default)')
    .option('--threads <n>', 'application: worker threads (default: one per node)')
    .option('--nodes <n>', 'application: node processes (default: 1)')
    .option('--protocol <name>', 'application: hlrc or sc')
    .option('--variant <name>', 'application: variant, e.g. row or col for matmul')
    .option('--size <n>', 'application: problem size (see bench/apps)')
    .option('--quick', 'suite: small problem sizes')
    .option('--hops', 'rtt: the time of one remote read fault hop by hop (fault, request, home, reply, install, resume), from a traced 2-node run; --iterations pages')
    .action(async (name: string, raw: BenchRaw) => {
      await benchCommand(name, raw);
    });

  cli.command('plot')
    .description('draw the access pattern of a --trace file (time across, page up, a colour per node, reads and writes marked) as SVG or PNG')
    .argument('<trace>', 'a trace written by dsm run --trace')
    .requiredOption('-o, --output <file>', 'the figure to write: .svg or .png')
    .option('--title <text>', 'the figure\'s title')
    .action(async (trace: string, raw: { output: string; title?: string }) => {
      // src/plot is loaded only for this command (it brings the chart libraries).
      const { plotTrace } = await import('../plot/index.js');
      const result = await plotTrace(trace, raw.output, raw.title === undefined ? {} : { title: raw.title });
      process.stderr.write(`dsm plot: ${result.accesses} faults from ${result.nodes} node(s), ${result.points} drawn -> ${raw.output}\n`);
    });

  // A usage error names the help of the command it came from (dsm run --help), not only the top level's.
  for (const command of cli.commands) {
    command.configureOutput({
      outputError: (text, write) => write(`dsm: DSM_ERR_USAGE: ${text.replace(/^error: /, '').trim()} (run dsm ${command.name()} --help for usage)\n`),
    });
  }
  try {
    await cli.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) process.exit(0);
      process.exit(exitCodeUsage);
    }
    fail(error);
  }
}
