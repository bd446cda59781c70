// users18 (session 45, a helper's round): programs of kinds no earlier round had, run against plain node on 1, 2
// and 3 nodes and under sc (docs/EVALUATION.md "Session 45"). The ones here guard what the round found (the
// program's main thread runs as a Node worker under dsm: its 'beforeExit' and its signal listeners behaved as a
// worker's) and a few kinds no earlier test covers; the others are kept for the survey.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  dsm: readonly string[];
}

const runs: readonly Run[] = [
  { file: 'min/beforeexit-log.mjs', dsm: ['--nodes', '1'], status: 0, what: 'a \'beforeExit\' listener that logs runs once (it ran again after each line, for ever)' },
  { file: 'min/beforeexit-loop.mjs', dsm: ['--nodes', '2'], status: 0, what: 'a \'beforeExit\' listener that logs its code runs once' },
  { file: 'exitcode-many.mjs', dsm: ['--nodes', '2'], status: 41, what: 'process.exitCode set by workers and the main thread in many places, a \'beforeExit\' that logs' },
  { file: 'abort-waitasync.mjs', dsm: ['--nodes', '3'], status: 0, what: 'AbortController and AbortSignal.timeout/any around Atomics.waitAsync and events.once' },
  { file: 'sab-zoo.mjs', dsm: ['--nodes', '2'], status: 0, what: '300 buffers of varied sizes in nested Maps, Sets and cycles through a chain of workers, then structuredClone' },
];

for (const run of runs) {
  test(`${run.dsm.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(run.dsm, run, 'test/fixtures/users18');
  });
}

/** Runs `command` (in a process group of its own), sends `signal` once it printed "ready" (to the group if `group`), and gives what it printed and its exit code. */
function signalled(command: readonly string[], signal: NodeJS.Signals, group: boolean): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const bound = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } reject(new Error(`no end within 60 s: ${stdout} ${stderr}`)); }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (!sent && stdout.includes('ready\n')) {
        sent = true;
        process.kill(group ? -child.pid! : child.pid!, signal);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    child.on('close', (status) => { clearTimeout(bound); resolve({ status, stdout, stderr }); });
  });
}

// Session 46 (users20): the other signals a program may take (SIGHUP to reload, SIGUSR2 to dump stats) ended the run.
for (const { nodes, signal, group } of [
  { nodes: 1, signal: 'SIGINT', group: false }, { nodes: 2, signal: 'SIGINT', group: true }, { nodes: 3, signal: 'SIGTERM', group: true },
  { nodes: 1, signal: 'SIGUSR2', group: false }, { nodes: 3, signal: 'SIGHUP', group: true },
] as const) {
  test(`--nodes ${nodes}: the program's own ${signal} listener takes ${signal}${group ? ' sent to the whole process group' : ''}: it wakes its workers, prints their results and exits 3, as under node`, async () => {
    const args = signal === 'SIGINT' || signal === 'SIGTERM' ? ['handler'] : ['handler', signal];
    const plain = await signalled(['test/fixtures/users18/sig-wait.mjs', ...args], signal, group);
    const onDsm = await signalled(['bin/dsm.js', 'run', '--nodes', String(nodes), 'test/fixtures/users18/sig-wait.mjs', ...args], signal, group);
    assert.equal(plain.status, 3, plain.stderr);
    assert.equal(onDsm.status, 3, onDsm.stderr);
    const lines = (text: string): string[] => text.trim().split('\n').sort();
    assert.deepEqual(lines(onDsm.stdout), lines(plain.stdout));
    assert.equal(onDsm.stderr, '');
  });
}

test('--nodes 2: a program with no signal listener is interrupted as before: exit 130 and where its threads were parked', async () => {
  const onDsm = await signalled(['bin/dsm.js', 'run', '--nodes', '2', 'test/fixtures/users18/sig-wait.mjs', 'none'], 'SIGINT', true);
  assert.equal(onDsm.status, 130, onDsm.stderr);
  assert.match(onDsm.stderr, /dsm: interrupted; parked on node \d: app thread \d+: Atomics\.wait/);
});
