// A cluster across three network namespaces (three "machines" with their own
// addresses in 10.213.0.0/24, joined by veth links to a bridge that lives in a
// fourth namespace, so the host's own network is never touched): it forms, and
// a program runs across it (`dsm run --listen` + `dsm node --join`) with the
// answer plain node gives; then again with every link impaired — netem delay
// and loss where the kernel has sch_netem, else a tbf rate limit (a slow link:
// queueing delay, no loss; this kernel offers no other way to drop packets).
// Needs root and iproute2; skips with the reason otherwise.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { processesTagged, runningFile } from '../fixtures/runs.js';
import { secretFor } from '../fixtures/secret.js';

const driver = fileURLToPath(new URL('../fixtures/cluster/driver.mjs', import.meta.url));
const dsmBin = fileURLToPath(new URL('../../bin/dsm.js', import.meta.url));
const sumProgram = fileURLToPath(new URL('../../examples/sum.js', import.meta.url));
const prefix = `dsmt${process.pid % 100000}`;
const bridgeNamespace = `${prefix}-br`;
const hosts = ['a', 'b', 'c'].map((name, index) => ({ namespace: `${prefix}-${name}`, address: `10.213.0.${index + 1}` }));
const waitMsMax = 40000;
const started: ChildProcess[] = [];

function skipReason(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const tool of ['ip', 'tc']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `'${tool}' is not installed (apt-get install -y iproute2)`;
  }
  const probe = spawnSync('ip', ['netns', 'add', `${prefix}-probe`], { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot create a network namespace: ${probe.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', `${prefix}-probe`]);
  return null;
}

function sh(...args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

function setUp(): void {
  sh('ip', 'netns', 'add', bridgeNamespace);
  sh('ip', '-n', bridgeNamespace, 'link', 'add', 'br0', 'type', 'bridge');
  sh('ip', '-n', bridgeNamespace, 'link', 'set', 'br0', 'up');
  hosts.forEach((host, index) => {
    sh('ip', 'netns', 'add', host.namespace);
    sh('ip', '-n', host.namespace, 'link', 'set', 'lo', 'up');
    sh('ip', '-n', host.namespace, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `port${index}`, 'netns', bridgeNamespace);
    sh('ip', '-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
    sh('ip', '-n', host.namespace, 'link', 'set', 'eth0', 'up');
    sh('ip', '-n', bridgeNamespace, 'link', 'set', `port${index}`, 'master', 'br0');
    sh('ip', '-n', bridgeNamespace, 'link', 'set', `port${index}`, 'up');
  });
}

function tearDown(): void {
  for (const namespace of [...hosts.map((host) => host.namespace), bridgeNamespace]) {
    spawnSync('ip', ['netns', 'del', namespace]);
  }
}

interface Run { output: () => string; stdout: () => string; exited: Promise<number | null> }

function runIn(namespace: string, args: string[], env: Record<string, string>, command = [process.execPath, driver]): Run {
  const child = spawn('ip', ['netns', 'exec', namespace, ...command, ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let text = '';
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; stdout += chunk; });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
  return { output: () => text, stdout: () => stdout, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

async function exitCode(run: Run): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no exit; output:\n${run.output()}`)), waitMsMax); });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runCluster(port: number): Promise<void> {
  const env = { DSM_SECRET: secretFor('netns secret'), DSM_JOIN_TIMEOUT_MS: '20000' };
  const [first, ...others] = hosts;
  const launcher = runIn(first!.namespace, ['listen', `${first!.address}:${port}`, '3', 'exit'], env);
  const joiners = others.map((host) => runIn(host.namespace, ['join', `${first!.address}:${port}`], env));
  assert.equal(await exitCode(launcher), 0, launcher.output());
  const tables = new Set<string>();
  for (const joiner of joiners) {
    assert.equal(await exitCode(joiner), 0, joiner.output());
    const match = /node (\d) of 3 up pid \d+ peers (\S+)/.exec(joiner.output());
    assert.ok(match !== null, joiner.output());
    tables.add(match[2]!.replace(/:\d+/g, ''));
  }
  assert.equal(tables.size, 1, 'every joiner holds the same table');
  // Which joiner got id 1 depends on arrival order; each node's address must be its own namespace's.
  const table = [...tables][0]!;
  assert.match(table, /^0@10\.213\.0\.1,1@10\.213\.0\.[23],2@10\.213\.0\.[23]$/);
  for (const entry of table.split(',')) {
    const [, address] = entry.split('@');
    assert.ok(hosts.some((host) => host.address === address), `${entry} names one of the namespaces' addresses`);
  }
  assert.equal(new Set(table.split(',').map((entry) => entry.split('@')[1])).size, 3, 'three distinct hosts');
}

const reason = skipReason();
if (reason !== null) process.stdout.write(`# netns cluster test skipped: ${reason}\n`);

describe('cluster across network namespaces', { skip: reason ?? false }, () => {
  before(() => {
    tearDown();
    setUp();
  });
  after(() => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    tearDown();
  });

  it('three namespaces form a cluster; each node is known by its own address', async () => {
    await runCluster(7411);
  });

  it('runs a program across the namespaces with the answer plain node gives', async () => {
    await runProgram(7413);
  });

  it('still forms and runs the program with every link impaired', async () => {
    const impairment = impairLinks();
    process.stdout.write(`# links impaired: ${impairment}\n`);
    await runCluster(7412);
    await runProgram(7414);
  });

  // Last of the describe's tests that use the links: it cuts one of them.
  it('a partition (node 2 cut off from the others) ends the run on every node with a line naming a peer, no process left', async () => {
    await runPartitioned(7415);
  });
});

/** netem delay 5ms loss 1% on every link, or, without sch_netem, a tbf rate limit; says which. */
function impairLinks(): string {
  const apply = (qdisc: string[]) => hosts.every((host) =>
    spawnSync('ip', ['netns', 'exec', host.namespace, 'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', ...qdisc]).status === 0);
  if (apply(['netem', 'delay', '5ms', 'loss', '1%'])) return 'netem delay 5ms loss 1%';
  // The netem qdisc is a kernel module (sch_netem) that containers often lack; tbf is built in more often.
  if (apply(['tbf', 'rate', '8mbit', 'burst', '16kb', 'latency', '200ms'])) return 'tbf rate 8mbit (sch_netem unavailable: no delay or loss emulation, a slow link instead)';
  assert.fail('neither netem nor tbf qdiscs are available to impair the links');
}

const sumExpected = [
  'workers=4 n=200000 finished=4',
  'worker 0: 4999950000', 'worker 1: 5000000000', 'worker 2: 5000050000', 'worker 3: 5000100000',
  'total=20000100000 expected=20000100000 OK',
].join('\n') + '\n';

/** examples/sum.js on 3 namespaces: node 0 listens, the others join; four workers spread over them. */
async function runProgram(port: number): Promise<void> {
  const env = { DSM_SECRET: secretFor('netns secret') };
  const [first, ...others] = hosts;
  const address = `${first!.address}:${port}`;
  const node = [process.execPath, dsmBin];
  const launcher = runIn(first!.namespace, ['run', '--listen', address, '--expect', '3', '--region-bytes', '256m', '--join-timeout', '20000', sumProgram, '200000'], env, node);
  const joiners = others.map((host) => runIn(host.namespace, ['node', '--join', address, '--region-bytes', '256m', '--join-timeout', '20000'], env, node));
  assert.equal(await exitCode(launcher), 0, launcher.output());
  // stdout is the program's; its workers say on stderr which node they ran on.
  assert.equal(launcher.stdout(), sumExpected, launcher.output());
  assert.match(launcher.output(), /^worker \d ran on node 2 of 3$/m);
  for (const joiner of joiners) assert.equal(await exitCode(joiner), 0, joiner.output());
}

/**
 * A 3-node run (busy-pages: workers faulting on shared pages on every node), then node 2's link is
 * taken off the bridge: its packets to and from the others are dropped, the links stay up (no reset,
 * no error: silence, as a partition is). Every node ends with exit 70 and a DSM_ERR_NODE_DIED line
 * naming a peer; nothing is left running.
 */
async function runPartitioned(port: number): Promise<void> {
  const tag = `partition${process.pid}`;
  const env = { DSM_SECRET: secretFor('netns secret'), DSM_TEST_RUN_TAG: tag };
  const [first, ...others] = hosts;
  const address = `${first!.address}:${port}`;
  const node = [process.execPath, dsmBin];
  const busy = fileURLToPath(new URL('../fixtures/programs/busy-pages.mjs', import.meta.url));
  const common = ['--region-bytes', '256m', '--join-timeout', '20000', '--heartbeat-timeout', '2000'];
  const file = runningFile();
  const launcher = runIn(first!.namespace, ['run', '--listen', address, '--expect', '3', ...common, busy, '60', '3', file], env, node);
  const joiners = others.map((host) => runIn(host.namespace, ['node', '--join', address, ...common], env, node));
  const startedBy = Date.now() + waitMsMax;
  while (!launcher.stdout().includes('started') && Date.now() < startedBy) await new Promise((done) => setTimeout(done, 100));
  assert.match(launcher.stdout(), /started/, launcher.output());
  // The handshake of busy-pages: its workers have faulted through the pages (in place of a 1 s sleep).
  while (!existsSync(file) && Date.now() < startedBy) await new Promise((done) => setTimeout(done, 100));
  const isRunning = existsSync(file);
  rmSync(file, { force: true });
  assert.ok(isRunning, `the program is running: ${launcher.output()}`);
  const cutAt = Date.now();
  sh('ip', '-n', bridgeNamespace, 'link', 'set', 'port2', 'nomaster');
  try {
    const runs = [launcher, ...joiners];
    const codes = await Promise.all(runs.map((run) => exitCode(run)));
    const endedMs = Date.now() - cutAt;
    process.stdout.write(`# partition: every node ended ${endedMs} ms after the cut\n`);
    runs.forEach((run, index) => {
      const what = `the node in ${hosts[index]!.namespace} (exit code ${codes[index]}) said:\n${run.output()}`;
      assert.equal(codes[index], 70, what);
      const lines = run.output().split('\n').filter((line) => line.startsWith('dsm:'));
      assert.ok(lines.length >= 1, what);
      process.stdout.write(`# ${hosts[index]!.namespace}: ${lines[0]}\n`);
      assert.match(lines[0]!, /^dsm: DSM_ERR_NODE_DIED: node \d \(10\.213\.0\.\d[^)]*\) /, run.output());
      assert.doesNotMatch(run.output(), /^\s+at |TypeError|RangeError/m, 'no stack');
    });
    // Node 0 names the node that was cut off.
    assert.match(launcher.output(), /DSM_ERR_NODE_DIED: node \d \(10\.213\.0\.3/);
    assert.deepEqual(processesTagged(tag), [], 'no dsm process is left');
  } finally {
    spawnSync('ip', ['-n', bridgeNamespace, 'link', 'set', 'port2', 'master', 'br0']);
  }
}
