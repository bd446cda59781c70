// The one-node runtime: programs see what they would under plain node, and
// bad input gets a one-line error with a stable code and exit code 2.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const dsm = ['bin/dsm.js'];
const fixtures = 'test/fixtures/runtime';

function run(command: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  const result = spawnSync(process.execPath, command, {
    encoding: 'utf8',
    input: options.input ?? '',
    env: { ...process.env, ...options.env },
    timeout: 60_000,
  });
  assert.equal(result.error, undefined, `child failed to run: ${String(result.error)}`);
  return { stdout: result.stdout, stderr: result.stderr, status: result.status, signal: result.signal };
}

test('SharedArrayBuffer semantics match plain node, except that memory comes from dsm', () => {
  const plain = run([`${fixtures}/sab-semantics.mjs`]);
  const onDsm = run([...dsm, 'run', `${fixtures}/sab-semantics.mjs`]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  assert.match(onDsm.stdout, /isMainThread=true threadId=0 parentPort=null workerData=null/);
});

test('argv, env and the exit code pass through', () => {
  const env = { DSM_TEST_FOO: 'bar' };
  const plain = run([`${fixtures}/argv-env.mjs`, '3', '--flag', 'x y'], { env });
  const onDsm = run([...dsm, 'run', `${fixtures}/argv-env.mjs`, '3', '--flag', 'x y'], { env });
  assert.equal(plain.status, 3);
  assert.equal(onDsm.status, 3, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  assert.deepEqual(JSON.parse(onDsm.stdout), { argv: ['3', '--flag', 'x y'], foo: 'bar', file: true });
});

test('an uncaught exception prints its message and stack and exits 1; require.main is the program', () => {
  const onDsm = run([...dsm, 'run', `${fixtures}/throws.cjs`]);
  assert.equal(onDsm.status, 1);
  assert.equal(onDsm.stdout, 'before\nmain module\n');
  assert.match(onDsm.stderr, /Error: boom from main\n\s+at /);
  assert.doesNotMatch(onDsm.stderr, /dist\/src\//, 'no stack frames from dsm internals');
});

test('growable SharedArrayBuffers are made as under node (test/integration/fidelity.test.ts grows them)', () => {
  const onDsm = run([...dsm, 'run', `${fixtures}/growable.mjs`]);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, 'growable allowed\n');
});

test('the program is found as node finds its main module: a directory runs its index.js, .js may be left out', () => {
  for (const path of [`${fixtures}/dir-program`, `${fixtures}/dir-program/index`]) {
    const onNode = run([path]);
    const onDsm = run([...dsm, 'run', path]);
    assert.equal(onDsm.status, 0, onDsm.stderr);
    assert.equal(onDsm.stdout, onNode.stdout, path);
  }
  const directory = run([...dsm, 'run', fixtures]);
  assert.equal(directory.status, 2);
  assert.match(directory.stderr, /^dsm: DSM_ERR_PROGRAM_NOT_FOUND: program '.*' is a directory with no index\.js/);
});

test('bad input: one line, a stable code, exit code 2', () => {
  // `says`: what the line must name (the setting that was wrong, what to do).
  const cases: Array<{ args: string[]; code: string; env?: Record<string, string>; says?: RegExp }> = [
    { args: ['run', 'no/such/program.js'], code: 'DSM_ERR_PROGRAM_NOT_FOUND', says: /give the program's path from the current directory/ },
    { args: ['run', '--bogus', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_USAGE', says: /unknown option '--bogus' \(run dsm run --help for usage\)/ },
    { args: ['run', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION', env: { DSM_LAUNCHER: 'foo' }, says: /^dsm: DSM_ERR_INVALID_OPTION: DSM_LAUNCHER 'foo' does not exist/ },
    { args: ['run', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION', env: { DSM_PROGRESS: '7' }, says: /DSM_PROGRESS='7' is not 0 or 1/ },
    { args: ['run', '--nodes', '0', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION' },
    { args: ['run', '--nodes', 'many', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION' },
    { args: ['run', '--protocol', 'mesi', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_PROTOCOL' },
    { args: ['run', '--region-bytes', '1k', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION' },
    { args: ['bench', 'nosuch'], code: 'DSM_ERR_INVALID_OPTION' },
    // Settings a run reads later (in a node, at its exit) are checked at its start.
    { args: ['run', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION', env: { DSM_HOPS: 'no/such/directory' } },
    { args: ['run', `${fixtures}/argv-env.mjs`], code: 'DSM_ERR_INVALID_OPTION', env: { DSM_READAHEAD_PAGES: '0' } },
  ];
  for (const { args, code, env, says } of cases) {
    const result = run([...dsm, ...args], env === undefined ? {} : { env });
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stdout, '', args.join(' '));
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')} printed one line: ${result.stderr}`);
    assert.match(lines[0]!, new RegExp(`^dsm: ${code}: `), args.join(' '));
    if (says !== undefined) assert.match(lines[0]!, says);
  }
});

test('--help describes the commands', () => {
  const result = run([...dsm, '--help']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /run .*program/);
  assert.match(result.stdout, /bench/);
});

test('piped stdin reaches the program', () => {
  const input = 'x'.repeat(100_000);
  const result = run([...dsm, 'run', `${fixtures}/stdin.mjs`], { input });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'read 100000\n');
});

test('memory comes back when buffers are collected: 1000 MiB through a 64 MiB region', () => {
  const result = run([...dsm, 'run', '--region-bytes', '64m', `${fixtures}/churn.mjs`, '1000']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'rounds=1000 checksum=1000\n');
});

test('a region that is really full says which option to raise', () => {
  const program = 'const keep = []; for (let i = 0; i < 100; i++) keep.push(new SharedArrayBuffer(1 << 20));';
  const result = run([...dsm, 'run', '--region-bytes', '16m', `${fixtures}/eval.mjs`, program]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /DSM_ERR_REGION_EXHAUSTED|the global region \(16777216 bytes\) is full; run with a larger --region-bytes/);
});

test('one buffer larger than the whole region says the region\'s size and which option to raise', () => {
  const result = run([...dsm, 'run', '--region-bytes', '16m', `${fixtures}/eval.mjs`, 'new SharedArrayBuffer(256 * 1024 * 1024);']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /RangeError \[DSM_ERR_REGION_EXHAUSTED\]: .*268435456 bytes do not fit in the global region of 16777216 bytes \(--region-bytes\): run with --region-bytes of at least 268435456/);
});

test('one node: memory given back and reused reads zero (300 MiB through a 64 MiB region, every buffer filled with 0xff)', () => {
  const result = run([...dsm, 'run', '--region-bytes', '64m', `${fixtures}/reuse-zero.mjs`, '300']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'rounds=300 dirty=0\n');
});
