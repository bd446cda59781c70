// dsm under a real Slurm: this test starts its own slurmctld and slurmd (one
// node, this machine, a private configuration on private ports, no munge),
// runs `srun -n 3 dsm run` and the example batch script, compares with plain
// node, and stops the daemons. Skipped, saying why, when Slurm is not
// installed (Debian: apt-get install slurmd slurmctld slurm-client) or the
// test does not run as root (slurmd needs it). CI does not install Slurm.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { secretFor } from '../fixtures/secret.js';

const tools = ['slurmctld', 'slurmd', 'srun', 'sbatch', 'sinfo'];
const missing = tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const host = hostname();
const resolves = await lookup(host).then(() => true, () => false);
const skip = missing.length > 0 ? `Slurm is not installed (missing ${missing.join(', ')}; Debian: apt-get install slurmd slurmctld slurm-client)`
  : process.getuid?.() !== 0 ? 'slurmd needs root'
    : !resolves ? `this machine's name ${host} does not resolve (Slurm's node list names it)`
      : false;

const daemonStartMsMax = 30_000;
const commandTimeoutMs = 120_000;
let directory = '';
const daemons: ChildProcess[] = [];
let env: Record<string, string> = {};

interface Ended { code: number | null; stdout: string; stderr: string }

function run(command: string, args: string[], cwd?: string): Promise<Ended> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd === undefined ? {} : { cwd }) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const timer = setTimeout(() => child.kill('SIGKILL'), commandTimeoutMs);
  return new Promise((resolve) => child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); }));
}

function plainNode(args: string[]): string {
  return spawnSync(process.execPath, args, { encoding: 'utf8' }).stdout;
}

before(async () => {
  if (skip !== false) return;
  directory = mkdtempSync(join(tmpdir(), 'dsm-slurm-'));
  mkdirSync(join(directory, 'state'));
  mkdirSync(join(directory, 'spool'));
  const port = 30000 + Math.floor(Math.random() * 10000);
  const conf = join(directory, 'slurm.conf');
  writeFileSync(conf, [
    'ClusterName=dsmtest', `SlurmctldHost=${host}(127.0.0.1)`, `SlurmctldPort=${port}`, `SlurmdPort=${port + 1}`,
    'AuthType=auth/none', 'CredType=cred/none', 'ProctrackType=proctrack/pgid', 'TaskPlugin=task/none', 'SwitchType=switch/none',
    'MpiDefault=none', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core', 'SlurmUser=root', 'SlurmdUser=root',
    `StateSaveLocation=${directory}/state`, `SlurmdSpoolDir=${directory}/spool`,
    `SlurmctldPidFile=${directory}/slurmctld.pid`, `SlurmdPidFile=${directory}/slurmd.pid`,
    `SlurmctldLogFile=${directory}/slurmctld.log`, `SlurmdLogFile=${directory}/slurmd.log`,
    'SlurmdParameters=config_overrides', 'ReturnToService=2',
    'JobAcctGatherType=jobacct_gather/none', 'AccountingStorageType=accounting_storage/none',
    `NodeName=${host} NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN`,
    `PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES`,
  ].join('\n') + '\n');
  const secret = join(directory, 'secret');
  writeFileSync(secret, `${secretFor('slurm')}\n`, { mode: 0o600 });
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(SLURM_|OMPI_|PMI_|PMIX_|DSM_)/.test(name))) as Record<string, string>;
  env = { ...base, SLURM_CONF: conf, DSM_SECRET_FILE: secret };
  for (const [daemon, args] of [['slurmctld', ['-D', '-f', conf]], ['slurmd', ['-D', '-f', conf, '-N', host]]] as const) {
    daemons.push(spawn(daemon, [...args], { env, cwd: directory, stdio: 'ignore' }));
  }
  const deadline = Date.now() + daemonStartMsMax;
  for (;;) {
    const state = spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim();
    if (state === 'idle') return;
    if (Date.now() > deadline) {
      const log = (name: string): string => { try { return readFileSync(join(directory, name), 'utf8').slice(-2000); } catch { return ''; } };
      throw new Error(`the test's Slurm did not come up within ${daemonStartMsMax} ms (node state '${state}'):\n${log('slurmctld.log')}\n${log('slurmd.log')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
});

after(async () => {
  for (const daemon of daemons) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) continue;
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill('SIGTERM');
    const timer = setTimeout(() => daemon.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  if (directory !== '') rmSync(directory, { recursive: true, force: true });
});

const dsmRun = [process.execPath, 'bin/dsm.js', 'run', '--region-bytes', '256m'];

test('srun -n 3 dsm run: one cluster, plain node\'s output', { skip }, async () => {
  const ran = await run('srun', ['-n', '3', '-O', ...dsmRun, 'examples/sum.js', '1000']);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout, plainNode(['examples/sum.js', '1000']));
});

test('srun ends with the program\'s exit code', { skip }, async () => {
  const ran = await run('srun', ['-n', '3', '-O', ...dsmRun, 'test/fixtures/launchers/exit-with.mjs', '3']);
  assert.equal(ran.code, 3, ran.stderr);
  assert.equal(ran.stdout, 'sum=60\n');
});

test('srun with an inconsistent size: every task prints one line naming the variables and exits 2', { skip }, async () => {
  const ran = await run('srun', ['-n', '2', '-O', ...dsmRun, '--expect', '3', 'examples/sum.js']);
  assert.equal(ran.code, 2, ran.stderr);
  const lines = ran.stderr.split('\n').filter((line) => line.startsWith('dsm: '));
  assert.equal(lines.length, 2, ran.stderr);
  for (const line of lines) assert.match(line, /^dsm: DSM_ERR_LAUNCHER: slurm: --expect 3 differs from SLURM_STEP_NUM_TASKS=2; read: SLURM_PROCID=[01], SLURM_STEP_NUM_TASKS=2/);
});

test('sbatch examples/slurm.sbatch (its 3 nodes as 3 tasks on this machine)', { skip }, async () => {
  const output = join(directory, 'example.out');
  // The job runs in a project that depends on dsm, as a user's would, so the
  // script's `npx dsm` finds node_modules/.bin/dsm. Run in this repository
  // itself, npx would install the repository into its cache as a package and
  // run its install script, rebuilding build/ under the tests still running.
  const project = join(directory, 'project');
  mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(process.cwd(), join(project, 'node_modules', 'dsm'));
  symlinkSync(join(process.cwd(), 'bin', 'dsm.js'), join(project, 'node_modules', '.bin', 'dsm'));
  symlinkSync(join(process.cwd(), 'examples'), join(project, 'examples'));
  // The program's stdout alone (examples/sum.js says on stderr where its workers ran).
  // Submitted from the project: the script changes to SLURM_SUBMIT_DIR.
  const ran = await run('sbatch', ['-W', '--nodes=1', '--ntasks-per-node=3', '--overcommit', `--output=${output}`, `--error=${output}.err`, join(process.cwd(), 'examples/slurm.sbatch')], project);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(readFileSync(output, 'utf8'), plainNode(['examples/sum.js', '1000000']));
});
