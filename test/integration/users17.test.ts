// users17 (session 44, a helper's round): programs of kinds no earlier round had, run against plain node on 1, 2
// and 3 nodes under both protocols (docs/EVALUATION.md "Session 44"). The ones here guard what the round found and
// what no earlier test covers; the others are kept for the survey.
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  dsm: readonly string[];
}

const runs: readonly Run[] = [
  { file: 'min/online-after-wait.mjs', dsm: ['--nodes', '2'], status: 0, what: 'a worker on another node posts, then is terminated before its parent\'s loop ran: "online" before its message' },
];

for (const run of runs) {
  test(`${run.dsm.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(run.dsm, run, 'test/fixtures/users17');
  });
}
