// Real node processes on 127.0.0.1, driven through test/fixtures/cluster/driver.mjs (plain JavaScript on dist/: run `npm run build` after changing src/).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exitCodeNodeDied } from '../../src/errors.js';
import { secretFor } from '../fixtures/secret.js';

const driver = fileURLToPath(new URL('../fixtures/cluster/driver.mjs', import.meta.url));
// Bounds a hang only (nothing here is about speed): generous, as a 3-node start under tsx took over 20 s
// with the machine's load average at 46 (a test failed with no output at all).
const waitMsMax = 60_000;
const started: ChildProcess[] = [];
const pidsSeen = new Set<number>();

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [driver, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  pidsSeen.add(child.pid!);
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => text, exited };
}

async function waitFor(runOf: Run, pattern: RegExp): Promise<RegExpExecArray> {
  const deadline = Date.now() + waitMsMax;
  for (let attempt = 0; attempt < waitMsMax / 50; attempt += 1) {
    const match = pattern.exec(runOf.output());
    if (match !== null) return match;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${pattern}; output so far:\n${runOf.output()}`);
}

async function exitOf(runOf: Run): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`process did not exit; output:\n${runOf.output()}`)), waitMsMax); });
  try {
    return await Promise.race([runOf.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes can take a moment to be reaped; poll briefly (bounded) until every pid is gone. */
async function assertAllGone(pids: number[]): Promise<void> {
  for (let attempt = 0; attempt < 100 && pids.some(alive); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(pids.filter(alive), [], 'no cluster process is left behind');
}

function pidsOf(text: string): number[] {
  const match = /launcher up nodes \d+ pids ([\d,]+)/.exec(text);
  assert.ok(match !== null, `launcher printed its pids:\n${text}`);
  const pids = match[1]!.split(',').map(Number);
  for (const pid of pids) pidsSeen.add(pid);
  return pids;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of pidsSeen) if (alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
});

describe('local cluster', () => {
  it('brings up 3 nodes that all receive the same address table, then shuts down with code 0', async () => {
    const launcher = run(['local', '3', 'exit']);
    const { code } = await exitOf(launcher);
    const text = launcher.output();
    assert.equal(code, 0, text);
    const pids = pidsOf(text);
    assert.equal(pids.length, 3);
    const tables = [...text.matchAll(/node (\d) of 3 up pid (\d+) peers (\S+)/g)];
    assert.deepEqual(tables.map((m) => m[1]).sort(), ['1', '2']);
    assert.equal(tables[0]![3], tables[1]![3], 'both joiners hold the same table');
    assert.match(tables[0]![3]!, /^0@127\.0\.0\.1:\d+,1@127\.0\.0\.1:\d+,2@127\.0\.0\.1:\d+$/);
    // One message each way over the transport mesh.
    assert.match(text, /node 0 got greeting from node 1: hello from node 1/);
    assert.match(text, /node 0 got greeting from node 2: hello from node 2/);
    assert.match(text, /node 1 got reply from node 0: welcome node 1/);
    assert.match(text, /node 2 got reply from node 0: welcome node 2/);
    await assertAllGone(pids);
  });

  it('tags relayed output with [node N] when asked', async () => {
    const launcher = run(['local', '2', 'exit'], { DSM_TEST_TAG: '1' });
    const { code } = await exitOf(launcher);
    assert.equal(code, 0, launcher.output());
    assert.match(launcher.output(), /^\[node 1\] node 1 of 2 up/m);
  });

  it('a node killed with SIGKILL ends the run, non-zero, naming the node, with no process left', async () => {
    const launcher = run(['local', '3', 'hold']);
    await waitFor(launcher, /node 2 of 3 up/);
    await waitFor(launcher, /node 1 of 3 up/);
    // The children's lines and node 0's come on different pipes: node 0's may come last.
    await waitFor(launcher, /launcher up nodes 3 pids/);
    const pids = pidsOf(launcher.output());
    process.kill(pids[2]!, 'SIGKILL');
    const { code } = await exitOf(launcher);
    assert.equal(code, exitCodeNodeDied, launcher.output());
    assert.match(launcher.output(), new RegExp(`DSM_ERR_NODE_DIED: node 2 \\(127\\.0\\.0\\.1, pid ${pids[2]}\\) process was killed by SIGKILL; in flight: nothing`));
    await assertAllGone(pids);
  });

  it('a node that stops answering (SIGSTOP) is declared dead by heartbeat timeout', async () => {
    const launcher = run(['local', '3', 'hold']);
    await waitFor(launcher, /node 2 of 3 up/);
    await waitFor(launcher, /node 1 of 3 up/);
    // The children's lines and node 0's come on different pipes: node 0's may come last.
    await waitFor(launcher, /launcher up nodes 3 pids/);
    const pids = pidsOf(launcher.output());
    process.kill(pids[1]!, 'SIGSTOP');
    const { code } = await exitOf(launcher);
    assert.equal(code, exitCodeNodeDied, launcher.output());
    assert.match(launcher.output(), /DSM_ERR_NODE_DIED: node 1 \(127\.0\.0\.1, pid \d+\) .*(stopped answering|nothing heard)/);
    await assertAllGone(pids);
  });

  it('SIGTERM to the launcher ends every node', async () => {
    const launcher = run(['local', '3', 'hold']);
    await waitFor(launcher, /node 2 of 3 up/);
    await waitFor(launcher, /node 1 of 3 up/);
    // The children's lines and node 0's come on different pipes: node 0's may come last.
    await waitFor(launcher, /launcher up nodes 3 pids/);
    const pids = pidsOf(launcher.output());
    launcher.child.kill('SIGTERM');
    const { code } = await exitOf(launcher);
    assert.equal(code, 143);
    await assertAllGone(pids);
  });

  it('SIGKILL to the launcher still ends every child (they watch their lifeline)', async () => {
    const launcher = run(['local', '3', 'hold']);
    await waitFor(launcher, /node 2 of 3 up/);
    await waitFor(launcher, /node 1 of 3 up/);
    // The children's lines and node 0's come on different pipes: node 0's may come last.
    await waitFor(launcher, /launcher up nodes 3 pids/);
    const pids = pidsOf(launcher.output());
    launcher.child.kill('SIGKILL');
    await exitOf(launcher);
    await assertAllGone(pids);
  });
});

describe('cluster across machines (--listen / --join on 127.0.0.1)', () => {
  it('node 0 waits for joiners started separately; output from joiners is relayed', async () => {
    const port = await freePort();
    const env = { DSM_SECRET: secretFor('correct horse'), DSM_TEST_RELAY: '1', DSM_TEST_TAG: '1' };
    // Joiners start first: they retry until node 0 listens.
    // One joiner relays per thread through the handle, the other relays its whole process output (thread 0).
    const joiners = [run(['join', `127.0.0.1:${port}`], env), run(['join', `127.0.0.1:${port}`], { ...env, DSM_TEST_RELAY: '0', DSM_TEST_RELAY_PROCESS: '1' })];
    const launcher = run(['listen', `127.0.0.1:${port}`, '3', 'hold'], env);
    await waitFor(launcher, /of 3 up[\s\S]*of 3 up/);
    const lines = [...launcher.output().matchAll(/\[node (\d) thread (\d)\] node \1 of 3 up pid (\d+)/g)];
    assert.equal(lines.length, 2, launcher.output());
    const threadOf = new Map(lines.map((m) => [Number(m[3]), m[2]]));
    assert.equal(threadOf.get(joiners[0]!.child.pid!), '1', launcher.output());
    assert.equal(threadOf.get(joiners[1]!.child.pid!), '0', launcher.output());
    assert.doesNotMatch(joiners[1]!.output(), /of 3 up/, 'relayed output does not print locally');
    await waitFor(launcher, /launcher up nodes 3 pids/);
    pidsOf(launcher.output());
    launcher.child.kill('SIGTERM');
    assert.equal((await exitOf(launcher)).code, 143);
    for (const joiner of joiners) assert.equal((await exitOf(joiner)).code, 143, joiner.output());
  });

  it('a joiner killed mid-run ends the run on node 0 and on the other joiner', async () => {
    const port = await freePort();
    const env = { DSM_SECRET: secretFor('s3') };
    const launcher = run(['listen', `127.0.0.1:${port}`, '3', 'hold'], env);
    const joiners = [run(['join', `127.0.0.1:${port}`], env), run(['join', `127.0.0.1:${port}`], env)];
    await waitFor(launcher, /launcher up nodes 3/);
    const victim = joiners[0]!;
    const victimId = (await waitFor(victim, /node (\d) of 3 up/))[1];
    victim.child.kill('SIGKILL');
    assert.equal((await exitOf(launcher)).code, exitCodeNodeDied, launcher.output());
    assert.match(launcher.output(), new RegExp(`DSM_ERR_NODE_DIED: node ${victimId} \\(127\\.0\\.0\\.1, pid ${victim.child.pid}\\)`));
    assert.equal((await exitOf(joiners[1]!)).code, exitCodeNodeDied, joiners[1]!.output());
    assert.match(joiners[1]!.output(), new RegExp(`DSM_ERR_NODE_DIED: node ${victimId} `));
  });

  it('a wrong secret is refused with a message on both sides', async () => {
    const port = await freePort();
    // Node 0's join timeout runs from its start: long enough that a joiner slow to start on a loaded machine
    // still connects within it (with 3 s it could time out first, and the joiner then never saw the refusal).
    const launcher = run(['listen', `127.0.0.1:${port}`, '2', 'exit'], { DSM_SECRET: secretFor('right'), DSM_JOIN_TIMEOUT_MS: '10000' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const joiner = run(['join', `127.0.0.1:${port}`], { DSM_SECRET: secretFor('wrong') });
    assert.equal((await exitOf(joiner)).code, 1);
    assert.match(joiner.output(), /DSM_ERR_SECRET/);
    const { code } = await exitOf(launcher);
    assert.equal(code, 1);
    assert.match(launcher.output(), /DSM_ERR_SECRET/);
    assert.match(launcher.output(), /DSM_ERR_JOIN_TIMEOUT: 1 of 2 nodes joined/);
  });

  it('join timeout says how many joined of how many', async () => {
    const port = await freePort();
    const launcher = run(['listen', `127.0.0.1:${port}`, '3', 'exit'], { DSM_SECRET: secretFor('s'), DSM_JOIN_TIMEOUT_MS: '10000' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const joiner = run(['join', `127.0.0.1:${port}`], { DSM_SECRET: secretFor('s') });
    assert.equal((await exitOf(launcher)).code, 1);
    assert.match(launcher.output(), /DSM_ERR_JOIN_TIMEOUT: 2 of 3 nodes joined within 10000 ms/);
    assert.equal((await exitOf(joiner)).code, exitCodeNodeDied);
    assert.match(joiner.output(), /DSM_ERR_JOIN_TIMEOUT: 2 of 3 nodes joined/);
  });

  // 20 s: the one child must join first, and a loaded machine (load 10+) has taken over 4 s to start it.
  it('a join timeout after every node joined names the step that did not finish', async () => {
    const launcher = run(['local', '2', 'exit'], { DSM_TEST_MESH_NEVER: '1', DSM_JOIN_TIMEOUT_MS: '20000' });
    assert.equal((await exitOf(launcher)).code, 1, launcher.output());
    assert.match(launcher.output(), /DSM_ERR_JOIN_TIMEOUT: all 2 nodes joined but node 0 did not finish connecting its mesh to them within 20000 ms; check that every node's mesh port is reachable/);
  });

  it('a port in use and an unreachable node 0 are named errors', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const launcher = run(['listen', `127.0.0.1:${port}`, '2', 'exit'], { DSM_SECRET: secretFor('s') });
      assert.equal((await exitOf(launcher)).code, 1);
      assert.match(launcher.output(), /DSM_ERR_PORT_IN_USE: listen address 127\.0\.0\.1:\d+ is in use/);
    } finally {
      blocker.close();
    }
    const closedPort = await freePort();
    const joiner = run(['join', `127.0.0.1:${closedPort}`], { DSM_SECRET: secretFor('s'), DSM_JOIN_TIMEOUT_MS: '1000' });
    assert.equal((await exitOf(joiner)).code, 1);
    assert.match(joiner.output(), /DSM_ERR_UNREACHABLE: cannot reach node 0 at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});
