// A node killed at a random moment of a run: at start, in a synchronization, in a page's transfer, at the end.
// Whatever it was doing, the run ends, and in one of two ways only: the program had finished (exit 0, its output
// whole) or the run was ended for the node (exit 70, one DSM_ERR_NODE_DIED line naming it); nothing is left.
// The moments, programs and victims come from a seeded generator: a failure prints the seed, and
// DSM_CHAOS_SEED=<seed> runs the same choices again (the moment is then the same offset from the spawn, on a
// machine whose speed differs from run to run).
//
// No assertion here is about speed: each waits for an outcome, bounded only so that a hang fails the test.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { childNodes, dsmLines, ended, startRun, until } from '../fixtures/runs.js';
import { Prng } from '../sim/sim.js';

/** Programs that synchronize all the time (Atomics barriers, a futex mutex, contended adds, faults), 2-5 s on 3 nodes. */
const programs: { file: string; args: string[]; output: RegExp }[] = [
  { file: 'test/fixtures/users15/lcs-barrier.mjs', args: ['3', '1500'], output: /ok, 2999 barriers/ },
  { file: 'test/fixtures/users15/tiny-tasks.mjs', args: ['3', '6000'], output: /done 6000, wrong 0/ },
  { file: 'test/fixtures/users15/barrier-min.mjs', args: ['3', '3000', '256'], output: /\S/ },
  { file: 'test/fixtures/users15/histogram.mjs', args: ['3', '300000'], output: /\S/ },
  { file: 'test/fixtures/programs/busy-pages.mjs', args: ['3'], output: /started/ },
];
const runCount = 5;
const killWithinMs = 4_000;

const seed = process.env.DSM_CHAOS_SEED !== undefined ? Number(process.env.DSM_CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
const random = new Prng(seed);

for (let index = 0; index < runCount; index += 1) {
  const program = programs[random.int(programs.length)]!;
  const nodes = 2 + random.int(2);
  const victim = 1 + random.int(nodes - 1);
  const atMs = 150 + random.int(killWithinMs);
  const what = `seed ${seed} (DSM_CHAOS_SEED=${seed} to repeat), run ${index}: ${program.file} on ${nodes} nodes, node ${victim} killed ${atMs} ms after the spawn`;
  test(`a node killed at a random moment ends the run or finds it finished, never a hang (${what})`, async () => {
    const run = startRun(['run', '--nodes', String(nodes), '--region-bytes', '256m', program.file, ...program.args]);
    const spawnedAt = Date.now();
    // The victim's process exists from the launcher's first moments; wait for it (or for the end), then for the moment.
    await until(() => childNodes(run).has(victim) || run.child.exitCode !== null, 30_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, spawnedAt + atMs - Date.now())));
    const pid = childNodes(run).get(victim);
    let killed = false;
    if (pid !== undefined && run.child.exitCode === null) {
      try { process.kill(pid, 'SIGKILL'); killed = true; } catch { /* it ended meanwhile */ }
    }
    const { code } = await ended(run);
    const lines = dsmLines(run.stderr());
    if (code === 0) {
      assert.equal(lines.length, 0, `${what}: a run that finished says nothing of dsm's: ${run.stderr()}`);
      assert.match(run.stdout(), program.output, `${what}: its output is whole`);
      return;
    }
    assert.ok(killed, `${what}: only a killed node ends a run with a failure: code ${code}, ${run.stderr()}`);
    assert.equal(code, 70, `${what}: ${run.stderr()}`);
    assert.equal(lines.length, 1, `${what}: one line: ${run.stderr()}`);
    assert.match(lines[0]!, new RegExp(`^dsm: DSM_ERR_NODE_DIED: node ${victim} \\(127\\.0\\.0\\.1, pid ${pid}\\) `), `${what}: ${run.stderr()}`);
    assert.doesNotMatch(run.stderr(), /^\s+at /m, `${what}: no stack trace`);
  });
}
