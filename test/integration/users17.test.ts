// users17 (session 44, a helper's round): programs of kinds no earlier round had, run against plain node on 1, 2
// and 3 nodes under both protocols (docs/EVALUATION.md "Session 44"). The ones here guard what the round found and
// what no earlier test covers; the others are kept for the survey.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  dsm: readonly string[];
}

const runs: readonly Run[] = [
  { file: 'min/online-after-wait.mjs', dsm: ['--nodes', '2'], status: 0, what: 'a worker on another node posts, then is terminated before its parent\'s loop ran: "online" before its message' },
  { file: 'spawn-input.mjs', dsm: ['--nodes', '2'], status: 0, what: 'spawnSync and execFileSync with shared views as input, from the main thread and a worker' },
  { file: 'dgram-views.mjs', dsm: ['--nodes', '2', '--protocol', 'sc'], status: 0, what: 'UDP datagrams sent straight from shared views by workers and the main thread' },
  { file: 'crypto-views.mjs', dsm: ['--nodes', '3'], status: 0, what: 'hashes, ciphers, key derivation and random fills on shared views, in workers and the main thread' },
];

for (const run of runs) {
  test(`${run.dsm.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(run.dsm, run, 'test/fixtures/users17');
  });
}

test('--nodes 2: polling a MessageChannel end inside its own close callback answers undefined (plain Node 20 and 24 die of SIGSEGV there)', () => {
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', 'test/fixtures/users17/min/node-close-receive.mjs'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /polling the port inside its close callback\nundefined\nnot reached on Node 20 or 24\n/);
});
