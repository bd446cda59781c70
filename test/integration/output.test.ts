// Output across nodes: --tag-output marks each line with the node and thread
// that wrote it; a worker whose file is missing on its node is an 'error'
// event that names the file and the node. A reader that leaves early (`| head`)
// ends nothing: the program runs on, its output dropped. Piped stdin reaches
// the program as under node, read or not.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';

function dsm(args: string[], env: Record<string, string> = {}, input?: string) {
  return spawnSync(process.execPath, ['bin/dsm.js', 'run', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env }, ...(input === undefined ? {} : { input }) });
}

const program = 'test/fixtures/programs/tagged-output.mjs';

test('--tag-output on 3 nodes: every line carries its node and thread, once', () => {
  const result = dsm(['--nodes', '3', '--region-bytes', '256m', '--tag-output', program]);
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 6);
  const parsed = lines.map((line) => /^\[node (\d) thread (\d+)\] (.*)$/.exec(line));
  for (const [index, match] of parsed.entries()) {
    assert.ok(match !== null, `tagged: ${lines[index]}`);
    assert.ok(!match[3]!.startsWith('[node'), `tagged once: ${lines[index]}`);
  }
  assert.equal(lines[0], '[node 0 thread 0] main says hi');
  assert.equal(lines[5], '[node 0 thread 0] main done');
  // Four workers, round-robin over the nodes 1, 2, 0, 1; each says its own thread id.
  const workers = parsed.slice(1, 5).map((match) => ({ node: match![1], thread: match![2], text: match![3] }));
  assert.deepEqual(workers.map((w) => w.node).sort(), ['0', '1', '1', '2']);
  for (const worker of workers) assert.equal(worker.text, `worker ${worker.thread} line 1`);
  const errors = result.stderr.trimEnd().split('\n').filter((line) => line.includes('err'));
  assert.equal(errors.length, 4);
  for (const line of errors) assert.match(line, /^\[node \d thread (\d+)\] worker \1 err$/);
});

test('without --tag-output the lines are the program\'s own', () => {
  const result = dsm(['--nodes', '2', '--region-bytes', '256m', program]);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.split('\n').filter((line) => line.startsWith('[node')).length, 0);
  assert.equal(result.stdout.split('\n').filter((line) => line.startsWith('worker')).length, 4);
});

test('a worker file missing on its node: an error event with the code, naming the file and the node', () => {
  const result = dsm(['--nodes', '2', '--region-bytes', '256m', 'test/fixtures/programs/missing-worker.mjs'], { SHOW_MESSAGE: '1', ON_NODE: '1' });
  assert.equal(result.status, 0, result.stderr);
  const [first, message, exit] = result.stdout.trimEnd().split('\n');
  assert.match(first!, /^error: (ERR_)?MODULE_NOT_FOUND names the file$/);
  assert.match(message!, /no-such-worker\.mjs.* on node 1 \(127\.0\.0\.1\): every node needs the program's files at the same path/);
  assert.equal(exit, 'exit 1');
});

test('a worker file missing on its creator\'s node fails there, with node\'s own message', () => {
  const result = dsm(['--nodes', '2', '--region-bytes', '256m', 'test/fixtures/programs/missing-worker.mjs'], { SHOW_MESSAGE: '1' });
  assert.equal(result.status, 0, result.stderr);
  const [first, message, exit] = result.stdout.trimEnd().split('\n');
  assert.match(first!, /^error: MODULE_NOT_FOUND names the file$/);
  assert.match(message!, /^Cannot find module '.*no-such-worker\.mjs'$/);
  assert.equal(exit, 'exit 1');
});

test('a reader that leaves early (dsm run … | head): the program runs to its end and its exit code, its output dropped (on 1 and 3 nodes)', async () => {
  // Before: the first write after the pipe closed failed a manager with EPIPE (DSM_ERR_MANAGER_FAILED, exit 70).
  for (const nodes of ['1', '3']) {
    const child = spawn(process.execPath, ['bin/dsm.js', 'run', '--nodes', nodes, 'test/fixtures/programs/many-lines.mjs', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
    // Read a first chunk, then close the pipe, as head does after its lines.
    await new Promise<void>((resolve) => child.stdout.once('data', () => { child.stdout.destroy(); resolve(); }));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `${nodes} node(s): ${stderr}`);
    assert.match(stderr, /many-lines done/);
    assert.doesNotMatch(stderr, /DSM_ERR|EPIPE/);
  }
});

test('piped stdin: a program that never reads it ends; one that reads fd 0 gets all of it (on 1 and 2 nodes, as node)', () => {
  const input = 'one\ntwo\nthree\n';
  for (const [fixture, expected] of [['stdin-ignored.mjs', 'ran without reading stdin\n'], ['stdin-fd0.mjs', 'read 14 characters, 3 lines\n']] as const) {
    const plain = spawnSync(process.execPath, [`test/fixtures/programs/${fixture}`], { encoding: 'utf8', timeout: 60_000, input });
    assert.equal(plain.stdout, expected, 'plain node');
    for (const nodes of ['1', '2']) {
      // Before: the first hung (the run was killed by the timeout), the second read 0 characters and then hung.
      const result = dsm(['--nodes', nodes, '--region-bytes', '256m', `test/fixtures/programs/${fixture}`], {}, input);
      assert.equal(result.error, undefined, `${fixture} on ${nodes} node(s): ${String(result.error)}`);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, expected, `${fixture} on ${nodes} node(s)`);
    }
  }
});
