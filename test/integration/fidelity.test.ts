// Fidelity (issue 10): details of SharedArrayBuffer, Atomics, thread ids and
// timed waits that a program can observe are the same under `dsm run` as
// under plain node, on 1 and 3 nodes and under both protocols.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Sequence } from './sequence-runs.js';

const fixtures = 'test/fixtures/fidelity';
const modes = [
  { nodes: 1, protocol: 'hlrc' }, { nodes: 1, protocol: 'sc' },
  { nodes: 3, protocol: 'hlrc' }, { nodes: 3, protocol: 'sc' },
] as const;

function run(command: string[]) {
  const result = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(result.error, undefined, `${command.join(' ')}: ${String(result.error)}`);
  return result;
}

function runDsm(mode: { nodes: number; protocol: string }, file: string) {
  return run(['bin/dsm.js', 'run', '--nodes', String(mode.nodes), '--protocol', mode.protocol, '--region-bytes', '256m', file]);
}

// One `dsm run` per mode runs these in turn (test/integration/sequence-runs.ts; each keeps its own test). The thread
// ids' program runs alone: its ids are counted from the run's first worker.
const sequenced = ['builtins.cjs', 'notify-all.cjs', 'growable.cjs', 'timed-wait.cjs', 'messages.cjs', 'worker-errors.mjs', 'broadcast-channel.mjs', 'worker-ports.mjs', 'environment-data.mjs', 'relayed-ports.mjs', 'worker-handle.mjs', 'large-messages.mjs'].map((name) => `${fixtures}/${name}`);

function samePlainAndDsm(file: string, sequence: Sequence): void {
  const plain = run([file]);
  const onDsm = sequence.resultOf(file);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(onDsm.error, undefined, `${String(onDsm.error)} ${onDsm.stderr}`);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
}

for (const mode of modes) {
  const name = `${mode.nodes} node(s), ${mode.protocol}`;
  // Bounds for hangs, not time budgets.
  const sequence = new Sequence({
    dsmArgs: ['--nodes', String(mode.nodes), '--protocol', mode.protocol, '--region-bytes', '256m'], files: sequenced, timeoutMs: 240_000, programTimeoutMs: 120_000,
  });

  test(`${name}: SharedArrayBuffer and Atomics built-ins behave as under node (lengths, names, errors, conversions)`, () => {
    samePlainAndDsm(`${fixtures}/builtins.cjs`, sequence);
  });

  test(`${name}: Atomics.notify with a count of 2**32, 2**32+1, Infinity or undefined wakes every waiter`, () => {
    samePlainAndDsm(`${fixtures}/notify-all.cjs`, sequence);
  });

  test(`${name}: growable SharedArrayBuffers and WebAssembly shared memory, given to workers placed by the policy, behave as under node`, () => {
    samePlainAndDsm(`${fixtures}/growable.cjs`, sequence);
  });

  test(`${name}: large typed arrays and ArrayBuffers posted to a worker (on node 1) arrive whole, and a transferList detaches, as under node`, () => {
    samePlainAndDsm(`${fixtures}/messages.cjs`, sequence);
  });

  test(`${name}: messages larger than a frame (a 12 MiB workerData, a 36 MiB result by transfer, 12 MiB through a MessagePort and a BroadcastChannel) arrive whole, as under node`, () => {
    samePlainAndDsm(`${fixtures}/large-messages.mjs`, sequence);
  });

  test(`${name}: what a worker throws reaches its parent as under node (built-in error class, fields, errors, cause, values that are no error)`, () => {
    samePlainAndDsm(`${fixtures}/worker-errors.mjs`, sequence);
  });

  test(`${name}: BroadcastChannel reaches every thread on every node as under node (order per sender, dsm buffers with their writes, close, clone errors)`, () => {
    samePlainAndDsm(`${fixtures}/broadcast-channel.mjs`, sequence);
  });

  test(`${name}: a worker given a MessagePort (spread, its port relayed), piped stdio or SHARE_ENV (on its creator's node) runs as under node`, () => {
    samePlainAndDsm(`${fixtures}/worker-ports.mjs`, sequence);
  });

  test(`${name}: a MessagePort posted to a worker on another node, or back to its parent, is relayed and behaves as under node (order, receiveMessageOnPort, nested ports, close from each side, writes before a post)`, () => {
    samePlainAndDsm(`${fixtures}/relayed-ports.mjs`, sequence);
  });

  test(`${name}: worker_threads environment data reaches every worker, local, warm or remote, as under node`, () => {
    samePlainAndDsm(`${fixtures}/environment-data.mjs`, sequence);
  });

  test(`${name}: a Worker handle's resourceLimits are the thread's while it runs and {} after, as under node (a worker on another node too)`, () => {
    samePlainAndDsm(`${fixtures}/worker-handle.mjs`, sequence);
  });

  test(`${name}: timed Atomics.wait and waitAsync never time out early`, () => {
    const onDsm = sequence.resultOf(`${fixtures}/timed-wait.cjs`);
    assert.equal(onDsm.error, undefined, `${String(onDsm.error)} ${onDsm.stderr}`);
    assert.equal(onDsm.status, 0, onDsm.stderr);
    const lines = onDsm.stdout.trim().split('\n');
    assert.equal(lines.length, 3, onDsm.stdout);
    // On one node V8's own waitAsync would answer early by as much as a page
    // fault held the thread after its event loop last read the clock.
    for (const line of lines) assert.equal(line, 'wait early 0, waitAsync early 0, outcomes timed-out');
  });

  test(`${name}: the run of the sequenced programs exits 0`, () => {
    const result = sequence.whole();
    assert.equal(result.error, undefined, String(result.error));
    assert.equal(result.status, 0, result.stderr);
  });

  test(`${name}: thread ids are node's: workers 1, 2, 3 in creation order, unique, known at once`, () => {
    const onDsm = runDsm(mode, `${fixtures}/thread-ids.mjs`);
    assert.equal(onDsm.status, 0, onDsm.stderr);
    const report = JSON.parse(onDsm.stdout) as {
      main: number; atOnce: number[]; online: number[]; inside: number[]; afterExit: number[]; sub: { atOnce: number; inside: number };
    };
    assert.equal(report.main, 0);
    assert.deepEqual(report.atOnce, [1, 2, 3]);
    assert.deepEqual(report.online, [1, 2, 3]);
    assert.deepEqual(report.inside, [1, 2, 3]);
    assert.deepEqual(report.afterExit, [-1, -1, -1]);
    // The first worker's own worker: numbered by the node it was created on, so unique across nodes.
    assert.equal(report.sub.atOnce, report.sub.inside);
    assert.ok(![0, 1, 2, 3].includes(report.sub.inside), `sub-worker id ${report.sub.inside} is unique`);
    if (mode.nodes === 1) assert.equal(report.sub.inside, 4, 'on one node, ids run on as under node');
  });
}

test('a TypeScript main on 1 node: workers are 1, 2, 3 (the compiler thread takes no id)', () => {
  const onDsm = run(['bin/dsm.js', 'run', `${fixtures}/thread-ids.ts`]);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, 'main 0 workers 1,2,3\n');
});
