// Launcher detection (src/cluster/launchers): Slurm host lists, each engine's
// variables, and the bad environments the issue lists, set by hand.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  HostlistError, detectLauncher, expandHostlist, expandTaskCounts, launcherSecret, readSecretFile, type LauncherRequest,
} from '../../src/cluster/launchers/index.js';
import { launcherPortDefault, slurmPortSpan } from '../../src/constants.js';

const request: LauncherRequest = { hostname: 'here', homeDirectory: '/home/u', tmpDirectory: '/tmp' };

function fails(run: () => unknown, pattern: RegExp, code = 'DSM_ERR_LAUNCHER'): void {
  assert.throws(run, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /\n/, 'one line');
    return true;
  });
}

test('hostlist: ranges, zero padding, lists, several brackets, plain names', () => {
  assert.deepEqual(expandHostlist('node[01-04,07]'), ['node01', 'node02', 'node03', 'node04', 'node07']);
  assert.deepEqual(expandHostlist('n[8-11]'), ['n8', 'n9', 'n10', 'n11']);
  assert.deepEqual(expandHostlist('n[098-101]'), ['n098', 'n099', 'n100', 'n101']);
  assert.deepEqual(expandHostlist('a,b[1-2],c'), ['a', 'b1', 'b2', 'c']);
  assert.deepEqual(expandHostlist('rack[1-2]-n[1-2]'), ['rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2']);
  assert.deepEqual(expandHostlist('gpu[1,3],cpu[001-002]'), ['gpu1', 'gpu3', 'cpu001', 'cpu002']);
  assert.deepEqual(expandHostlist('localhost'), ['localhost']);
  assert.deepEqual(expandHostlist('127.0.0.[1-3]'), ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  assert.deepEqual(expandHostlist('[1-2]x'), ['1x', '2x']);
});

test('hostlist: what does not parse says why', () => {
  for (const [text, why] of [
    ['', /empty/], ['node[01-04', /not closed/], ['node01]', /without/], ['n[[1]]', /nested/], ['n[4-2]', /backwards/],
    ['n[a-b]', /not a number/], ['a,,b', /empty entry/], ['n[]', /not a number/], ['n[1-99999999]', /more than/],
    ['a[1-300]b[1-300]', /more than/],
  ] as const) {
    assert.throws(() => expandHostlist(text), (error: Error) => error instanceof HostlistError && why.test(error.message), text);
  }
});

test('hostlist: a compressed list of numbered hosts expands back to the hosts (property)', () => {
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 4 }), (numbers, width) => {
    const sorted = [...numbers].sort((a, b) => a - b);
    // Compress into runs the way Slurm prints them.
    const runs: string[] = [];
    for (let index = 0; index < sorted.length;) {
      let end = index;
      while (end + 1 < sorted.length && sorted[end + 1] === sorted[end]! + 1) end += 1;
      const pad = (value: number): string => String(value).padStart(width, '0');
      runs.push(end === index ? pad(sorted[index]!) : `${pad(sorted[index]!)}-${pad(sorted[end]!)}`);
      index = end + 1;
    }
    const expected = sorted.map((value) => `node${String(value).padStart(width, '0')}`);
    assert.deepEqual(expandHostlist(`node[${runs.join(',')}]`), expected);
  }), { numRuns: 200 });
});

test('tasks per node', () => {
  assert.deepEqual(expandTaskCounts('2(x3),1'), [2, 2, 2, 1]);
  assert.deepEqual(expandTaskCounts('4'), [4]);
  assert.throws(() => expandTaskCounts('2(x)'), HostlistError);
});

const slurmStep = {
  SLURM_PROCID: '1', SLURM_STEP_ID: '0', SLURM_JOB_ID: '1234', SLURM_STEP_NUM_TASKS: '3', SLURM_NTASKS: '3',
  SLURM_STEP_NODELIST: 'node[01-03]', SLURM_STEP_TASKS_PER_NODE: '1(x3)',
};

test('slurm: rank, size, node 0 = the step\'s first host, a port from the job and step', () => {
  const plan = detectLauncher(slurmStep, request)!;
  assert.equal(plan.launcher, 'slurm');
  assert.equal(plan.rank, 1);
  assert.equal(plan.size, 3);
  assert.equal(plan.leader.kind, 'address');
  assert.equal(plan.leader.kind === 'address' && plan.leader.host, 'node01');
  assert.ok(plan.leader.port >= launcherPortDefault && plan.leader.port < launcherPortDefault + slurmPortSpan);
  assert.equal(plan.clusterId, 'slurm-1234.0');
  assert.match(plan.source, /SLURM_PROCID=1.*SLURM_STEP_NUM_TASKS=3.*SLURM_STEP_NODELIST=node\[01-03\]/);
  // Another step of the same job: another cluster, (almost always) another port.
  const other = detectLauncher({ ...slurmStep, SLURM_STEP_ID: '1' }, request)!;
  assert.notEqual(other.clusterId, plan.clusterId);
  assert.deepEqual(detectLauncher(slurmStep, { ...request, leader: ':9000' })!.leader, { kind: 'address', host: 'node01', port: 9000 });
  assert.deepEqual(detectLauncher(slurmStep, { ...request, leader: 'head:9001' })!.leader, { kind: 'address', host: 'head', port: 9001 });
  // Several tasks per host.
  assert.equal(detectLauncher({ ...slurmStep, SLURM_STEP_NODELIST: 'n[1-2]', SLURM_STEP_TASKS_PER_NODE: '2,1' }, request)!.size, 3);
});

test('slurm: a batch script\'s own environment (no step) is not a launch', () => {
  const batch = { SLURM_PROCID: '0', SLURM_JOB_ID: '1234', SLURM_NTASKS: '4', SLURM_JOB_NODELIST: 'node[01-04]' };
  assert.equal(detectLauncher(batch, request), null);
  assert.equal(detectLauncher({}, request), null);
  assert.equal(detectLauncher(slurmStep, { ...request, launcher: 'none' }), null);
});

test('slurm: bad environments name the variables read and what was expected', () => {
  fails(() => detectLauncher({ ...slurmStep, SLURM_PROCID: '3' }, request), /SLURM_PROCID=3 is not below SLURM_STEP_NUM_TASKS=3 \(expected 0 <= rank < size\); read: .*SLURM_PROCID=3/);
  fails(() => detectLauncher({ ...slurmStep, SLURM_STEP_NODELIST: 'node[01-03' }, request), /SLURM_STEP_NODELIST does not parse: a '\[' is not closed \(expected a host list like node\[01-04,07\]\)/);
  fails(() => detectLauncher({ ...slurmStep, SLURM_PROCID: '0', SLURM_STEP_NUM_TASKS: '1', SLURM_NTASKS: '1' }, request), /names 3 hosts for 1 task/);
  fails(() => detectLauncher({ ...slurmStep, SLURM_STEP_TASKS_PER_NODE: '2(x3)' }, request), /SLURM_STEP_TASKS_PER_NODE='2\(x3\)' adds up to 6, not SLURM_STEP_NUM_TASKS=3/);
  fails(() => detectLauncher({ ...slurmStep, SLURM_STEP_TASKS_PER_NODE: '2,1' }, request), /counts 2 hosts, SLURM_STEP_NODELIST 3/);
  // The job's host list (no step list) may name more hosts than this step has tasks.
  const { SLURM_STEP_NODELIST: _step, ...jobListOnly } = slurmStep;
  assert.equal(detectLauncher({ ...jobListOnly, SLURM_STEP_NUM_TASKS: '2', SLURM_PROCID: '1', SLURM_JOB_NODELIST: 'node[01-04]' }, request)!.size, 2);
  fails(() => detectLauncher({ ...slurmStep, SLURM_STEP_NUM_TASKS: 'x' }, request), /SLURM_STEP_NUM_TASKS=x is not an integer/);
  fails(() => detectLauncher(slurmStep, { ...request, expect: 4 }), /--expect 4 differs from SLURM_STEP_NUM_TASKS=3/);
  const { SLURM_STEP_NODELIST: _list, ...noList } = slurmStep;
  fails(() => detectLauncher(noList, request), /SLURM_STEP_NODELIST or SLURM_JOB_NODELIST or SLURM_NODELIST are not set/);
  fails(() => detectLauncher({}, { ...request, launcher: 'slurm' }), /slurm: SLURM_PROCID is not set .*read: nothing/);
  fails(() => detectLauncher({ ...slurmStep, SLURM_PROCID: '0', SLURMD_NODENAME: 'node02' }, request), /task 0 runs on node02, not on the step's first host node01/);
  fails(() => detectLauncher(slurmStep, { ...request, launcher: 'pbs' }), /--launcher 'pbs' does not exist/, 'DSM_ERR_INVALID_OPTION');
});

const openMpi = { OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '3', OMPI_COMM_WORLD_LOCAL_SIZE: '1', OMPI_MCA_ess_base_jobid: '1116209153' };

test('mpi: Open MPI and PMI (MPICH Hydra, Intel MPI) variables; a rendezvous file, or --leader', () => {
  const plan = detectLauncher(openMpi, request)!;
  assert.equal(plan.launcher, 'mpi');
  assert.equal(plan.rank, 2);
  assert.equal(plan.size, 3);
  assert.deepEqual(plan.leader, { kind: 'rendezvous', file: '/home/u/.dsm/rendezvous/dsm-1116209153.leader', advertiseHost: 'here', port: 0 });
  assert.equal(plan.clusterId, 'mpi-1116209153');
  // Every rank on this machine: loopback and the temporary directory.
  const local = detectLauncher({ ...openMpi, OMPI_COMM_WORLD_LOCAL_SIZE: '3' }, request)!;
  assert.deepEqual(local.leader, { kind: 'rendezvous', file: '/tmp/dsm-1116209153.leader', advertiseHost: '127.0.0.1', port: 0 });
  assert.equal((detectLauncher(openMpi, { ...request, rendezvous: '/scratch/x' })!.leader as { file: string }).file, '/scratch/x/dsm-1116209153.leader');
  assert.equal((detectLauncher({ ...openMpi, DSM_RENDEZVOUS: '/scratch/y' }, request)!.leader as { file: string }).file, '/scratch/y/dsm-1116209153.leader');
  assert.deepEqual(detectLauncher(openMpi, { ...request, leader: 'n1:7500' })!.leader, { kind: 'address', host: 'n1', port: 7500 });
  const hydra = detectLauncher({ PMI_RANK: '0', PMI_SIZE: '4', MPI_LOCALNRANKS: '2' }, request)!;
  assert.equal(hydra.rank, 0);
  assert.equal(hydra.size, 4);
  assert.equal(hydra.leader.kind, 'rendezvous');
});

test('mpi: bad environments', () => {
  fails(() => detectLauncher({ OMPI_COMM_WORLD_RANK: '0' }, request), /mpi: OMPI_COMM_WORLD_SIZE is not set/);
  fails(() => detectLauncher({ PMI_RANK: '5', PMI_SIZE: '2' }, request), /PMI_RANK=5 is not below PMI_SIZE=2/);
  fails(() => detectLauncher({ ...openMpi, OMPI_COMM_WORLD_SIZE: '1', OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_LOCAL_SIZE: '3' }, request), /OMPI_COMM_WORLD_LOCAL_SIZE=3 ranks on this machine but OMPI_COMM_WORLD_SIZE=1/);
  fails(() => detectLauncher({ ...openMpi, PMI_RANK: '1', PMI_SIZE: '3' }, request), /Open MPI's and PMI's variables disagree/);
  fails(() => detectLauncher({ ...openMpi, OMPI_COMM_WORLD_SIZE: '100' }, request), /dsm runs at most 64 nodes/);
});

test('two engines: srun with an MPI plugin (same rank and size) is Slurm; disagreeing ones must be named', () => {
  assert.equal(detectLauncher({ ...slurmStep, PMI_RANK: '1', PMI_SIZE: '3' }, request)!.launcher, 'slurm');
  fails(() => detectLauncher({ ...slurmStep, OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '6' }, request),
    /the variables of 2 engines are set and disagree: slurm \(SLURM_PROCID=1, SLURM_STEP_ID=0\); mpi \(OMPI_COMM_WORLD_RANK=0\); pass --launcher slurm\|mpi/);
  fails(() => detectLauncher({ ...slurmStep, JOB_COMPLETION_INDEX: '1' }, request), /slurm .*kubernetes \(JOB_COMPLETION_INDEX=1\)/);
  assert.equal(detectLauncher({ ...slurmStep, OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '6', OMPI_COMM_WORLD_LOCAL_SIZE: '6' }, { ...request, launcher: 'mpi' })!.size, 6);
});

const pod = { JOB_COMPLETION_INDEX: '2', HOSTNAME: 'dsm-sum-2', DSM_KUBERNETES_SERVICE: 'dsm-sum' };

test('kubernetes: an Indexed Job pod; node 0 is index 0 behind the headless Service', () => {
  const plan = detectLauncher(pod, { ...request, expect: 3 })!;
  assert.equal(plan.launcher, 'kubernetes');
  assert.equal(plan.rank, 2);
  assert.equal(plan.size, 3);
  assert.deepEqual(plan.leader, { kind: 'address', host: 'dsm-sum-0.dsm-sum', port: launcherPortDefault });
  assert.equal(plan.clusterId, 'kubernetes-dsm-sum');
  assert.deepEqual(detectLauncher(pod, { ...request, expect: 3, leader: ':7600' })!.leader, { kind: 'address', host: 'dsm-sum-0.dsm-sum', port: 7600 });
});

test('kubernetes: bad environments', () => {
  fails(() => detectLauncher(pod, request), /pass --expect N equal to the Job's completions; read: JOB_COMPLETION_INDEX=2/);
  fails(() => detectLauncher(pod, { ...request, expect: 2 }), /JOB_COMPLETION_INDEX=2 is not below --expect=2/);
  fails(() => detectLauncher({ ...pod, HOSTNAME: 'web-7' }, { ...request, expect: 3 }), /hostname 'web-7' does not end in -2/);
  const { DSM_KUBERNETES_SERVICE: _service, ...noService } = pod;
  fails(() => detectLauncher(noService, { ...request, expect: 3 }), /DSM_KUBERNETES_SERVICE is not set \(the headless Service/);
});

test('the secret: a private file, the environment, ~/.dsm/secret; never a world-readable file', () => {
  const directory = mkdtempSync(join(tmpdir(), 'dsm-secret-'));
  try {
    const file = join(directory, 'secret');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    assert.deepEqual(launcherSecret({ DSM_SECRET_FILE: file, DSM_SECRET: 'env' }, '/nowhere', () => false), { secret: 'from-file', from: `DSM_SECRET_FILE=${file}` });
    assert.equal(launcherSecret({ DSM_SECRET: 'env' }, '/nowhere', () => false).secret, 'env');
    const home = join(directory, 'home');
    const homeSecret = join(home, '.dsm', 'secret');
    mkdirSync(join(home, '.dsm'), { recursive: true, mode: 0o700 });
    writeFileSync(homeSecret, 'home-secret', { mode: 0o600 });
    assert.equal(launcherSecret({}, home, (path) => path === homeSecret).secret, 'home-secret');
    fails(() => launcherSecret({}, '/nowhere', () => false), /needs a shared secret and none was found: create \/nowhere\/.dsm\/secret/, 'DSM_ERR_INVALID_OPTION');
    chmodSync(file, 0o644);
    fails(() => readSecretFile(file, 'DSM_SECRET_FILE'), /can be read by others \(mode 644\); run chmod 600/, 'DSM_ERR_INVALID_OPTION');
    writeFileSync(join(directory, 'two'), 'a\nb\n', { mode: 0o600 });
    fails(() => readSecretFile(join(directory, 'two'), 'DSM_SECRET_FILE'), /one non-empty line/, 'DSM_ERR_INVALID_OPTION');
    fails(() => readSecretFile(join(directory, 'absent'), 'DSM_SECRET_FILE'), /cannot read the secret file .*ENOENT/, 'DSM_ERR_INVALID_OPTION');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('dsm run: --listen and --nodes stay ordinary runs; DSM_LAUNCHER=none; no --secret under a launcher', async () => {
  const { launcherPlanFor } = await import('../../src/cli/launched.js');
  assert.equal(await launcherPlanFor({ listen: '0.0.0.0:7400' }, slurmStep), null);
  assert.equal(await launcherPlanFor({ nodes: '4' }, slurmStep), null);
  assert.equal(await launcherPlanFor({}, { ...slurmStep, DSM_LAUNCHER: 'none' }), null);
  assert.equal((await launcherPlanFor({}, slurmStep))?.launcher, 'slurm');
  assert.equal((await launcherPlanFor({ launcher: 'mpi' }, { ...slurmStep, ...openMpi }))?.launcher, 'mpi');
  await assert.rejects(launcherPlanFor({ launcher: 'slurm', nodes: '3' }, slurmStep), /--launcher slurm starts every node itself; drop --nodes/);
  await assert.rejects(launcherPlanFor({ secret: 'visible' }, slurmStep), /under slurm the secret must not be on the command line/);
  await assert.rejects(launcherPlanFor({ expect: '0' }, slurmStep), /--expect must be an integer from 1/);
});
