// `dsm run` started on every rank by a launcher, with real processes on
// loopback: the environment srun, mpirun and a Kubernetes Indexed Job give
// each rank is set by hand (and a real `mpirun` when it is installed). The
// output must be plain node's, every rank must end with the program's code,
// and a bad environment must end every rank with a one-line error and code 2.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { secretFor } from '../fixtures/secret.js';

interface Ended { code: number | null; stdout: string; stderr: string }

const processTimeoutMs = 60_000;

function start(command: string, args: string[], env: Record<string, string>): Promise<Ended> {
  // The tests' own environment may hold launcher variables (a CI job under Slurm); the ranks get only ours.
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(SLURM_|OMPI_|PMI_|PMIX_|JOB_COMPLETION_INDEX|DSM_)/.test(name)));
  const child = spawn(command, args, { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const timer = setTimeout(() => child.kill('SIGKILL'), processTimeoutMs);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function dsm(args: string[], env: Record<string, string>): Promise<Ended> {
  return start(process.execPath, ['bin/dsm.js', ...args], env);
}

/** Starts one `dsm run` per rank with the environment the launcher would give it. */
function ranks(size: number, envOf: (rank: number) => Record<string, string>, args: string[]): Promise<Ended[]> {
  return Promise.all(Array.from({ length: size }, (_, rank) => dsm(['run', '--region-bytes', '256m', ...args], envOf(rank))));
}

function plainNode(args: string[]): string {
  return spawnSync(process.execPath, args, { encoding: 'utf8' }).stdout;
}

function jobId(): string {
  return String(100000 + Math.floor(Math.random() * 900000));
}

function slurm(jobIdText: string, size: number, nodeList: string): (rank: number) => Record<string, string> {
  return (rank) => ({
    DSM_SECRET: secretFor('launcher-test'), SLURM_PROCID: String(rank), SLURM_STEP_ID: '0', SLURM_JOB_ID: jobIdText,
    SLURM_STEP_NUM_TASKS: String(size), SLURM_NTASKS: String(size), SLURM_STEP_NODELIST: nodeList,
  });
}

function oneErrorLine(ended: Ended, pattern: RegExp): void {
  assert.equal(ended.code, 2, `exit code 2; stderr: ${ended.stderr}`);
  const lines = ended.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${ended.stderr}`);
  assert.match(lines[0]!, pattern);
}

test('slurm: 3 tasks (node list 127.0.0.[1-3]) run the program once, with plain node\'s output', async () => {
  const job = jobId();
  const [leader, ...others] = await ranks(3, (rank) => ({ ...slurm(job, 3, '127.0.0.[1-3]')(rank), SLURM_STEP_TASKS_PER_NODE: '1(x3)' }), ['examples/sum.js', '1000']);
  assert.equal(leader!.code, 0, leader!.stderr);
  assert.equal(leader!.stdout, plainNode(['examples/sum.js', '1000']));
  for (const other of others) {
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout, '', 'output reaches rank 0 only');
  }
});

test('slurm: every task ends with the program\'s exit code', async () => {
  const job = jobId();
  const ended = await ranks(3, slurm(job, 3, 'localhost'), ['test/fixtures/launchers/exit-with.mjs', '3']);
  assert.equal(ended[0]!.stdout, plainNode(['test/fixtures/launchers/exit-with.mjs', '3']));
  assert.deepEqual(ended.map((rank) => rank.code), [3, 3, 3], ended.map((rank) => rank.stderr).join('\n'));
});

test('mpi (Open MPI\'s variables): node 0 publishes its address in the rendezvous directory, and removes it', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'dsm-rendezvous-'));
  try {
    const job = jobId();
    const [leader, ...others] = await ranks(3, (rank) => ({
      DSM_SECRET: secretFor('launcher-test'), OMPI_COMM_WORLD_RANK: String(rank), OMPI_COMM_WORLD_SIZE: '3',
      OMPI_COMM_WORLD_LOCAL_SIZE: '3', OMPI_MCA_ess_base_jobid: job,
    }), ['--rendezvous', directory, 'examples/sum.js', '500']);
    assert.equal(leader!.code, 0, leader!.stderr);
    assert.equal(leader!.stdout, plainNode(['examples/sum.js', '500']));
    for (const other of others) assert.equal(other.code, 0, other.stderr);
    assert.deepEqual(readdirSync(directory), [], 'the rendezvous file is gone with node 0');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('mpi (PMI variables, as MPICH Hydra and Intel MPI set them) with --leader', async () => {
  const port = 20000 + Math.floor(Math.random() * 10000);
  const ended = await ranks(3, (rank) => ({ DSM_SECRET: secretFor('launcher-test'), PMI_RANK: String(rank), PMI_SIZE: '3' }), ['--leader', `127.0.0.1:${port}`, 'test/fixtures/launchers/exit-with.mjs', '0']);
  assert.deepEqual(ended.map((rank) => rank.code), [0, 0, 0], ended.map((rank) => rank.stderr).join('\n'));
  assert.equal(ended[0]!.stdout, 'sum=60\n');
});

test('kubernetes (an Indexed Job\'s variables, node 0 named by --leader on loopback)', async () => {
  const port = 20000 + Math.floor(Math.random() * 10000);
  const ended = await ranks(3, (rank) => ({
    DSM_SECRET: secretFor('launcher-test'), JOB_COMPLETION_INDEX: String(rank), HOSTNAME: `dsm-sum-${rank}`, DSM_KUBERNETES_SERVICE: 'dsm-sum',
  }), ['--expect', '3', '--leader', `127.0.0.1:${port}`, 'examples/sum.js', '300']);
  assert.deepEqual(ended.map((rank) => rank.code), [0, 0, 0], ended.map((rank) => rank.stderr).join('\n'));
  assert.equal(ended[0]!.stdout, plainNode(['examples/sum.js', '300']));
});

test('bad environments: one line naming the variables, exit code 2, nobody waits forever', async (t) => {
  const job = jobId();
  const cases: Array<[string, Promise<Ended>, RegExp]> = [
    ['rank >= size', dsm(['run', 'examples/sum.js'], slurm(job, 2, 'localhost')(2)),
      /^dsm: DSM_ERR_LAUNCHER: slurm: SLURM_PROCID=2 is not below SLURM_STEP_NUM_TASKS=2 .*read: SLURM_PROCID=2/],
    ['a host list that does not parse', dsm(['run', 'examples/sum.js'], slurm(job, 2, 'node[1-')(1)),
      /^dsm: DSM_ERR_LAUNCHER: slurm: SLURM_STEP_NODELIST does not parse: .*read: .*SLURM_STEP_NODELIST=node\[1-/],
    ['size 1 with several hosts', dsm(['run', 'examples/sum.js'], slurm(job, 1, 'n[1-3]')(0)),
      /^dsm: DSM_ERR_LAUNCHER: slurm: SLURM_STEP_NODELIST names 3 hosts for 1 task/],
    ['two engines', dsm(['run', 'examples/sum.js'], { ...slurm(job, 2, 'localhost')(1), OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '4' }),
      /^dsm: DSM_ERR_LAUNCHER: the variables of 2 engines are set and disagree: .*pass --launcher slurm\|mpi/],
    ['the secret on the command line', dsm(['run', '--secret', 'visible', 'examples/sum.js'], slurm(job, 2, 'localhost')(1)),
      /^dsm: DSM_ERR_INVALID_OPTION: under slurm the secret must not be on the command line/],
    ['no secret', dsm(['run', 'examples/sum.js'], { ...slurm(job, 2, 'localhost')(1), DSM_SECRET: '', HOME: '/nonexistent' }),
      /^dsm: DSM_ERR_INVALID_OPTION: a launched cluster needs a shared secret/],
    ['node 0 unreachable', dsm(['run', '--join-timeout', '1500', 'examples/sum.js'], slurm(job, 2, '127.0.0.1')(1)),
      /^dsm: DSM_ERR_UNREACHABLE: cannot reach node 0 at 127\.0\.0\.1:\d+ .*; slurm: rank 1 of 2 joining node 0 .*read: .*SLURM_STEP_NODELIST=127\.0\.0\.1/],
    ['node 0 not in DNS', dsm(['run', '--expect', '2', '--join-timeout', '1500', 'examples/sum.js'], { DSM_SECRET: secretFor('s'), JOB_COMPLETION_INDEX: '1', HOSTNAME: 'job-1', DSM_KUBERNETES_SERVICE: 'no-such-service.invalid' }),
      /^dsm: DSM_ERR_UNREACHABLE: cannot reach node 0 at job-0\.no-such-service\.invalid:7400 \((ENOTFOUND|EAI_AGAIN)\).*read: JOB_COMPLETION_INDEX=1/],
    ['the others never come', dsm(['run', '--join-timeout', '1500', 'examples/sum.js'], { ...slurm(jobId(), 3, '127.0.0.1')(0), SLURM_STEP_ID: jobId() }),
      /^dsm: DSM_ERR_JOIN_TIMEOUT: 1 of 3 nodes joined within 1500 ms.*; slurm: rank 0 of 3 listening on 0\.0\.0\.0:\d+ waited for ranks 1 to 2 .*; read: SLURM_PROCID=0/],
    ['node 0 never publishes', dsm(['run', '--join-timeout', '1000', '--rendezvous', tmpdir(), 'examples/sum.js'], { DSM_SECRET: secretFor('s'), PMI_RANK: '1', PMI_SIZE: '2', PMI_JOBID: `never-${job}` }),
      /^dsm: DSM_ERR_LAUNCHER: mpi: node 0 did not publish its address in .*dsm-never-\d+\.leader before the join deadline \(it never appeared\)/],
  ];
  for (const [name, ended, pattern] of cases) {
    const result = await ended;
    await t.test(name, () => oneErrorLine(result, pattern));
  }
});

const mpirun = spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' }).stdout.trim();

test('a real mpirun -np 3 forms one cluster', { skip: mpirun === '' ? 'mpirun is not on PATH (apt-get install openmpi-bin to run this test)' : false }, async () => {
  const rootFlags = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
  const mpiArgs = [...rootFlags, '--oversubscribe', '-np', '3', '-x', 'DSM_SECRET', process.execPath, 'bin/dsm.js', 'run', '--region-bytes', '256m'];
  const ran = await start(mpirun, [...mpiArgs, 'examples/sum.js', '1000'], { DSM_SECRET: secretFor('mpirun-test') });
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout, plainNode(['examples/sum.js', '1000']));
  const failed = await start(mpirun, [...mpiArgs, 'test/fixtures/launchers/exit-with.mjs', '3'], { DSM_SECRET: secretFor('mpirun-test') });
  assert.equal(failed.code, 3, failed.stderr);
  assert.match(failed.stdout, /^sum=60$/m);
});

test('slurm: a rank that dies ends every other rank with code 70 and a line naming it', async () => {
  const job = jobId();
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(SLURM_|OMPI_|PMI_|PMIX_|JOB_COMPLETION_INDEX|DSM_)/.test(name)));
  const children = [0, 1, 2].map((rank) => spawn(process.execPath, ['bin/dsm.js', 'run', '--region-bytes', '256m', 'test/fixtures/programs/long.mjs'],
    { env: { ...base, ...slurm(job, 3, '127.0.0.1')(rank) }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const outputs = children.map(() => ({ stdout: '', stderr: '' }));
  const ended = children.map((child, rank) => {
    child.stdout.on('data', (chunk) => { outputs[rank]!.stdout += chunk; });
    child.stderr.on('data', (chunk) => { outputs[rank]!.stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), processTimeoutMs);
    return new Promise<number | null>((resolve) => child.on('exit', (code) => { clearTimeout(timer); resolve(code); }));
  });
  await new Promise<void>((resolve) => {
    const check = (): void => { if (outputs[0]!.stdout.includes('started')) resolve(); };
    children[0]!.stdout.on('data', check);
    check();
  });
  children[2]!.kill('SIGKILL');
  const codes = await Promise.all(ended);
  assert.deepEqual(codes.slice(0, 2), [70, 70], outputs.map((output) => output.stderr).join('\n'));
  assert.match(outputs[0]!.stderr, /dsm: DSM_ERR_NODE_DIED: node 2 \(127\.0\.0\.1, pid \d+\) .*the run was ended/);
});
