// A run always ends: a manager that throws while app threads are parked, a
// node whose loop is blocked when SIGTERM comes, a stalled manager loop, a
// stopped (SIGSTOP) node among 8, a node killed among 8 and 16 and stopped among 16, node 0 killed, and a run under `timeout`
// through `npx` — each ends with one line saying what happened, and no dsm
// process is left. Failures are injected with the test-only hooks
// DSM_TEST_HOOK_MANAGER_THROW and DSM_TEST_HOOK_BLOCK_LOOP (docs/CLUSTER.md).
//
// No assertion here is about speed: each waits for an outcome, bounded only
// so that a regression (a hang) fails instead of blocking the suite.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '../..');
const program = 'test/fixtures/programs/busy-pages.mjs';
/** A bound for "it ended" (a hang fails the test instead of the suite's timeout). */
const endedWithinMs = 60_000;

/** Pids of live (not zombie) processes whose environment holds DSM_TEST_RUN_TAG=tag. */
function processesTagged(tag: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`DSM_TEST_RUN_TAG=${tag}`)) continue;
      const state = /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${entry}/stat`, 'latin1'))?.[1];
      if (state !== 'Z' && state !== 'X') found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours.
    }
  }
  return found;
}

async function until(condition: () => boolean, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((done) => setTimeout(done, 50));
  }
  return true;
}

interface Run {
  child: ChildProcess;
  tag: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startRun(args: string[], env: Record<string, string> = {}, command: string[] = [process.execPath, 'bin/dsm.js'], cwd = root): Run {
  const tag = randomBytes(8).toString('hex');
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, DSM_TEST_RUN_TAG: tag },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => { stdout += chunk; });
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
  return { child, tag, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Waits for the run to end (or kills everything it left and fails), then checks nothing of it is left. */
async function ended(run: Run): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => {
    for (const pid of processesTagged(run.tag)) process.kill(pid, 'SIGKILL');
  }, endedWithinMs);
  const result = await run.exited;
  clearTimeout(timer);
  // Children are reaped by their launcher before it exits; allow the kernel a moment to tear them down.
  const gone = await until(() => processesTagged(run.tag).length === 0, 10_000);
  const left = processesTagged(run.tag);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  assert.ok(gone, `no dsm process is left (left: ${left.join(', ')}); stderr:\n${run.stderr()}`);
  return result;
}

async function started(run: Run): Promise<void> {
  assert.ok(await until(() => run.stdout().includes('started') || run.child.exitCode !== null, endedWithinMs), 'the program started');
  assert.match(run.stdout(), /started/, run.stderr());
}

function childNodes(run: Run): Map<number, number> {
  const nodes = new Map<number, number>();
  for (const pid of processesTagged(run.tag)) {
    const nodeId = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').find((entry) => entry.startsWith('DSM_NODE_ID='));
    if (nodeId !== undefined) nodes.set(Number(nodeId.slice('DSM_NODE_ID='.length)), pid);
  }
  return nodes;
}

function dsmLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('dsm:'));
}

for (const failingNode of [1, 0]) {
  test(`an exception on node ${failingNode}'s manager while app threads are parked ends the run with one line naming the node`, async () => {
    const run = startRun(['run', '--nodes', '3', '--region-bytes', '256m', program, '60'], { DSM_TEST_HOOK_MANAGER_THROW: String(failingNode) });
    const { code } = await ended(run);
    assert.equal(code, 70, run.stderr());
    const lines = dsmLines(run.stderr());
    assert.equal(lines.length, 1, `one line: ${run.stderr()}`);
    assert.match(lines[0]!, new RegExp(`^dsm: DSM_ERR_MANAGER_FAILED: node ${failingNode}'s manager failed: test hook DSM_TEST_HOOK_MANAGER_THROW`));
    assert.doesNotMatch(run.stderr(), /^\s+at /m, 'no stack trace');
  });
}

test('SIGTERM to node 0 whose manager loop is blocked ends it and the cluster, saying a forced exit happened', async () => {
  // The floor is raised so that the stalled-loop check does not end node 0 first.
  const run = startRun(['run', '--nodes', '3', '--heartbeat-timeout', '60000', '--region-bytes', '256m', program, '60'], { DSM_TEST_HOOK_BLOCK_LOOP: '0:120000:SIGUSR2' });
  await started(run);
  // The hook blocks the loop on SIGUSR2; SIGTERM, queued behind it, reaches JavaScript only after the block.
  run.child.kill('SIGUSR2');
  run.child.kill('SIGTERM');
  const { code } = await ended(run);
  assert.equal(code, 143, run.stderr());
  assert.match(run.stderr(), /^dsm: DSM_ERR_FORCED_EXIT: node 0 did not end within \d+ ms of SIGTERM \(.*doing: a test hook blocking the loop\); forced exit/m);
});

test('SIGTERM to node 1 whose manager loop is blocked ends it, and the run ends naming it', async () => {
  const run = startRun(['run', '--nodes', '3', '--heartbeat-timeout', '60000', '--region-bytes', '256m', program, '60'], { DSM_TEST_HOOK_BLOCK_LOOP: '1:120000:SIGUSR2' });
  await started(run);
  const victim = childNodes(run).get(1);
  assert.ok(victim !== undefined, 'node 1 runs');
  process.kill(victim, 'SIGUSR2');
  process.kill(victim, 'SIGTERM');
  const { code } = await ended(run);
  assert.equal(code, 70, run.stderr());
  assert.match(run.stderr(), new RegExp(`DSM_ERR_NODE_DIED: node 1 \\(127\\.0\\.0\\.1, pid ${victim}\\)`));
});

// Heartbeats come from a thread of their own (src/transport/beacon.ts): a manager loop busy for twice the
// heartbeat floor (but less than the stall limit, loopStallFactor times the floor) is alive, not dead.
for (const busyNode of [1, 0]) {
  test(`node ${busyNode}'s manager loop busy for twice the heartbeat floor is not declared dead`, async () => {
    const run = startRun(['run', '--nodes', '3', '--heartbeat-timeout', '1500', '--region-bytes', '256m', program, '6'], { DSM_TEST_HOOK_BLOCK_LOOP: `${busyNode}:3000` });
    const { code } = await ended(run);
    assert.equal(code, 0, run.stderr());
    assert.deepEqual(dsmLines(run.stderr()), [], run.stderr());
  });
}

test('a manager loop that stops turning ends its node with a line saying so, and the run ends', async () => {
  const run = startRun(['run', '--nodes', '3', '--heartbeat-timeout', '1500', '--region-bytes', '256m', program, '60'], { DSM_TEST_HOOK_BLOCK_LOOP: '2:120000' });
  const { code } = await ended(run);
  assert.equal(code, 70, run.stderr());
  assert.match(run.stderr(), /^dsm: DSM_ERR_STALLED: node 2: its manager loop \(the main thread\) has not turned for \d+ ms .*doing: a test hook blocking the loop; node 2 is ending$/m);
});

// Found by SIGSTOP on 8 nodes: once the stopped node was declared dead, node 0
// printed the failure and then never exited (its main thread parked on a
// fault served by the stopped node held process.exit), or the engine's sends
// to the lost node threw into app threads ("node 1 has no connection to node 7").
test('SIGSTOP of one node of 8 ends the run naming it, with nothing else on stderr and no process left', async () => {
  const run = startRun(['run', '--nodes', '8', '--placement', 'roundRobin', '--region-bytes', '256m', program, '60', '8']);
  await started(run);
  await new Promise((done) => setTimeout(done, 1000));
  const victim = childNodes(run).get(7);
  assert.ok(victim !== undefined, 'node 7 runs');
  process.kill(victim, 'SIGSTOP');
  const { code } = await ended(run);
  assert.equal(code, 70, run.stderr());
  const lines = dsmLines(run.stderr());
  assert.equal(lines.length, 1, `one line: ${run.stderr()}`);
  assert.match(lines[0]!, new RegExp(`^dsm: DSM_ERR_NODE_DIED: node 7 \\(127\\.0\\.0\\.1, pid ${victim}\\) stopped answering`));
  assert.doesNotMatch(run.stderr(), /invariant failed|has no connection/);
});

// Failure at scale on loopback: a node killed or stopped among 8 and 16 ends the run naming it, with one line on
// stderr and no process left, in bounded time (each run's length is printed: a slow machine lengthens start-up).
for (const [nodeCount, signal] of [[8, 'SIGKILL'], [16, 'SIGKILL'], [16, 'SIGSTOP']] as const) {
  test(`${signal} of one node of ${nodeCount} ends the run naming it, with one line and no process left`, async () => {
    const startedAt = Date.now();
    const run = startRun(['run', '--nodes', String(nodeCount), '--placement', 'roundRobin', '--heartbeat-timeout', '2000', '--region-bytes', '64m', program, '60', String(nodeCount)]);
    await started(run);
    await new Promise((done) => setTimeout(done, 500));
    const victimId = signal === 'SIGKILL' ? nodeCount / 2 : nodeCount - 1;
    const victim = childNodes(run).get(victimId);
    assert.ok(victim !== undefined, `node ${victimId} runs`);
    const signalledAt = Date.now();
    process.kill(victim, signal);
    const { code } = await ended(run);
    process.stdout.write(`# ${nodeCount} nodes, ${signal}: started in ${signalledAt - startedAt} ms, ended ${Date.now() - signalledAt} ms after the signal\n`);
    assert.equal(code, 70, run.stderr());
    const lines = dsmLines(run.stderr());
    assert.equal(lines.length, 1, `one line: ${run.stderr()}`);
    assert.match(lines[0]!, new RegExp(`^dsm: DSM_ERR_NODE_DIED: node ${victimId} \\(127\\.0\\.0\\.1, pid ${victim}\\) ${signal === 'SIGKILL' ? '' : 'stopped answering'}`));
    assert.doesNotMatch(run.stderr(), /invariant failed|has no connection|^\s+at /m);
  });
}

test('node 0 killed: its child nodes end even with app threads parked on faults', async () => {
  const run = startRun(['run', '--nodes', '3', '--placement', 'roundRobin', '--region-bytes', '256m', program, '60']);
  await started(run);
  await new Promise((done) => setTimeout(done, 1000));
  const children = [...childNodes(run).values()];
  assert.equal(children.length, 2);
  run.child.kill('SIGKILL');
  await ended(run);
});

// The reproduction of the report: `timeout` signals npx, npx passes SIGTERM on to
// dsm, whose node 0 cannot act on it (its loop blocked here by the hook; in the
// report, its main thread waited on a worker parked on a fault).
test('a run under timeout through npx, node 0 blocked, leaves no process behind', async () => {
  // A project that depends on dsm, as a user's would: npx finds the dsm bin in its node_modules.
  const project = mkdtempSync(join(tmpdir(), 'dsm-npx-'));
  try {
    mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(root, join(project, 'node_modules', 'dsm'));
    symlinkSync(join(root, 'bin', 'dsm.js'), join(project, 'node_modules', '.bin', 'dsm'));
    const run = startRun(['8', 'npx', '--no-install', 'dsm', 'run', '--nodes', '3', '--heartbeat-timeout', '60000', '--region-bytes', '256m', join(root, program), '60'],
      { DSM_TEST_HOOK_BLOCK_LOOP: '0:120000' }, ['timeout'], project);
    const { code } = await ended(run);
    assert.equal(code, 124, `timeout ended it: ${run.stderr()}`);
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});

test('the watchdog addon is built', () => {
  const built = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(join(root, 'build/Release/dsm_watchdog.node'))}); console.log('ok')`], { encoding: 'utf8' });
  assert.equal(built.trim(), 'ok');
});

// The report itself: under `--protocol sc`, node 0's manager wrote the view to
// stdout, got EFAULT, and never exited. The main thread's stdout now hands the
// manager a private copy (src/threads/kernel-copies.ts), so the run ends with
// plain node's output, and the debug mode that fails on any manager-side use
// of dsm memory stays silent.
for (const debug of [false, true]) {
  test(`the report's program (a shared view written to stdout, sc, 3 nodes${debug ? ', DSM_DEBUG_APP_VIEW=1' : ''}) ends with plain node's output`, async () => {
    const run = startRun(['run', '--nodes', '3', '--protocol', 'sc', '--region-bytes', '256m', 'test/fixtures/programs/stdout-shared-view.mjs'], debug ? { DSM_DEBUG_APP_VIEW: '1' } : {});
    const { code } = await ended(run);
    assert.equal(code, 0, run.stderr());
    assert.equal(run.stdout(), 'AAAABBBBCCCC\n');
    assert.deepEqual(dsmLines(run.stderr()), []);
  });
}
