// The evaluation applications (bench/apps) at small sizes: each verifies
// itself against a sequential run, under plain node and under dsm on real
// node processes, and both give the same checksum. Then the benchmark runner
// over one app, and its failure path.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { runAppBench } from '../../bench/apps/run.js';
import { DsmError } from '../../src/errors.js';

const apps = [
  { app: 'matmul', args: ['--size', '64', '--variant', 'row'] },
  { app: 'matmul', args: ['--size', '64', '--variant', 'col'] },
  { app: 'jacobi', args: ['--size', '64', '--iterations', '10'] },
  { app: 'tsp', args: ['--size', '9'] },
  { app: 'quicksort', args: ['--size', String(1 << 17)] },
  { app: 'quicksort', args: ['--size', String(1 << 17), '--variant', 'push-larger'] },
  { app: 'water', args: ['--size', '96', '--iterations', '3'] },
];

interface AppResult { app: string; verified: boolean; checksum: string; seconds: number; threads: number; size: number }

function run(args: string[]): AppResult {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.error, undefined, String(result.error));
  assert.equal(result.status, 0, `${args.join(' ')}\n${result.stderr}`);
  const last = result.stdout.trimEnd().split('\n').at(-1) ?? '';
  assert.match(last, /^DSM_APP_RESULT \{/, `the last stdout line is the result: ${result.stdout}`);
  return JSON.parse(last.slice('DSM_APP_RESULT '.length)) as AppResult;
}

for (const { app, args } of apps) {
  test(`${app} ${args.join(' ')}: verified under plain node and dsm (2 nodes, hlrc), same checksum`, () => {
    const file = `bench/apps/${app}.mjs`;
    const local = run([file, '--threads', '2', ...args]);
    assert.equal(local.app, app);
    assert.equal(local.verified, true);
    assert.equal(local.threads, 2);
    assert.ok(local.seconds > 0);
    const dsm = run(['bin/dsm.js', 'run', '--nodes', '2', '--region-bytes', '256m', file, '--threads', '2', ...args]);
    assert.equal(dsm.verified, true);
    assert.equal(dsm.checksum, local.checksum);
    assert.equal(dsm.size, local.size);
  });
}

test('bench/programs/jacobi-phases.mjs: the same checksum as jacobi.mjs, each worker\'s phases, and on dsm its manager\'s CPU a round', () => {
  const args = ['--threads', '2', '--size', '64', '--iterations', '10'];
  const plain = run(['bench/apps/jacobi.mjs', ...args]);
  const phases = run(['bin/dsm.js', 'run', '--nodes', '2', '--region-bytes', '256m', 'bench/programs/jacobi-phases.mjs', ...args]) as AppResult & {
    workers: Array<{ index: number; iteration0Ms: { sweep: number; wait: number }; steadyMs: { sweep: number; wait: number }; cpu: { managerUsPerRound: number; otherThreadsUsPerRound: number } | null }>;
  };
  assert.equal(phases.verified, true);
  assert.equal(phases.checksum, plain.checksum);
  assert.deepEqual(phases.workers.map((worker) => worker.index).sort(), [0, 1]);
  for (const worker of phases.workers) {
    assert.ok(worker.iteration0Ms.sweep >= 0 && worker.steadyMs.sweep > 0 && worker.steadyMs.wait >= 0);
    // /proc is Linux's: elsewhere the CPU figures are null.
    if (process.platform === 'linux') assert.ok(worker.cpu !== null && worker.cpu.managerUsPerRound > 0 && worker.cpu.otherThreadsUsPerRound > 0, JSON.stringify(worker.cpu));
  }
});

test('matmul on 3 nodes with sc, 3 threads: verified, the same checksum as plain node', () => {
  const args = ['bench/apps/matmul.mjs', '--threads', '3', '--size', '48'];
  const local = run(args);
  const dsm = run(['bin/dsm.js', 'run', '--nodes', '3', '--protocol', 'sc', '--region-bytes', '256m', ...args]);
  assert.equal(local.verified, true);
  assert.equal(dsm.verified, true);
  assert.equal(dsm.checksum, local.checksum);
});

test('runAppBench: matmul on 2 nodes reports both times, dsm statistics and the goal', async () => {
  const result = await runAppBench('matmul', { nodes: 2, size: 48, json: true });
  assert.equal(result.verified, true);
  assert.equal(result.threads, 2);
  assert.equal(result.protocol, 'hlrc');
  assert.equal(result.variant, 'row');
  assert.equal(result.size, 48);
  for (const key of ['seconds', 'localSeconds', 'ratio', 'messages', 'bytes', 'readFaults', 'writeFaults', 'diffs', 'lockWaitMs']) {
    assert.equal(typeof result[key], 'number', key);
  }
  // 48 rows, one lock acquire each, at least some of them remote.
  assert.ok((result.messages as number) > 0);
  assert.equal(result.lockAcquires, 48);
  const goal = result.goal as { goal: string; met: boolean };
  assert.match(goal.goal, /localSeconds/);
  assert.equal(typeof goal.met, 'boolean');
});

test('runAppBench: an unknown app and a failing child are DsmErrors naming the app', async () => {
  await assert.rejects(runAppBench('nosuch', { json: true }), (error: unknown) => error instanceof DsmError && error.code === 'DSM_ERR_INVALID_OPTION');
  await assert.rejects(runAppBench('jacobi', { nodes: 1, size: 2, json: true }), (error: unknown) => {
    assert.ok(error instanceof DsmError);
    assert.equal(error.code, 'DSM_ERR_BENCH');
    assert.match(error.message, /bench jacobi/);
    assert.match(error.message, /--size must be at least 3/); // the child's stderr tail
    return true;
  });
});

test('runAppBench: a run past its time limit is killed and reported as timed out, leaving no process', async () => {
  await assert.rejects(runAppBench('water', { nodes: 2, size: 4096, iterations: 1000, json: true, timeoutMs: 1500 }), (error: unknown) => {
    assert.ok(error instanceof DsmError);
    assert.equal(error.code, 'DSM_ERR_BENCH');
    assert.match(error.message, /timed out after 1.5 s/);
    assert.equal((error as { timedOut?: boolean }).timedOut, true);
    return true;
  });
  // The node processes end when dsm run does (stdin lifeline): none is left running this app.
  let left = '';
  for (let attempt = 0; attempt < 50; attempt += 1) {
    left = spawnSync('pgrep', ['-f', '--', 'water.mjs --threads 2 --size 4096'], { encoding: 'utf8' }).stdout.trim();
    if (left === '') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(left, '', 'no process of the killed run is left');
});

test('regression (found by jacobi): a release with 16 MiB of diffs for one home on 2 nodes', () => {
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', '--region-bytes', '256m', 'test/fixtures/bugs/large-release.mjs'],
    { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'written=4194304 wrong=0 stale=0,0\n');
});
