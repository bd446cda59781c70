// dsm's own messages: a program's uncaught exception and syntax error print as
// node prints them (source line and caret), a DsmError shows its code, and
// every command-line mistake is one line `dsm: DSM_ERR_USAGE: ...`, exit 2.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const fixtures = 'test/fixtures/messages';

function run(args: string[]) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.error, undefined, String(result.error));
  return result;
}

/** The lines before the stack frames: location, source line, caret, blank, message. */
function head(stderr: string): string {
  return stderr.split('\n').slice(0, 5).join('\n');
}

for (const nodes of ['1', '3']) {
  test(`${nodes} node(s): an uncaught exception prints the source line and caret, as node does`, () => {
    const plain = run([`${fixtures}/uncaught.mjs`]);
    const onDsm = run(['bin/dsm.js', 'run', '--nodes', nodes, '--region-bytes', '256m', `${fixtures}/uncaught.mjs`]);
    assert.equal(onDsm.status, plain.status);
    assert.equal(onDsm.stdout, plain.stdout);
    assert.equal(head(onDsm.stderr), head(plain.stderr));
    assert.match(head(onDsm.stderr), /^file:\/\/.*uncaught\.mjs:3\n {2}throw new Error\('boom from a function'\);\n {8}\^\n\nError: boom from a function$/);
    assert.match(onDsm.stderr, /\n\nNode\.js v\d+/);
  });
}

test('a syntax error prints the source line and caret, as node does, exit 1', () => {
  for (const file of [`${fixtures}/syntax-error.cjs`, 'test/fixtures/runtime/syntax-error.mjs', `${fixtures}/imports-bad-module.mjs`]) {
    const plain = run([file]);
    const onDsm = run(['bin/dsm.js', 'run', file]);
    assert.equal(onDsm.status, 1, onDsm.stderr);
    assert.equal(onDsm.stdout, '');
    // Node names the file as a URL for an ES module (file:///...) and as a path when it checks syntax.
    const withoutScheme = (text: string) => head(text).replace(/^file:\/\//, '');
    assert.equal(withoutScheme(onDsm.stderr), withoutScheme(plain.stderr));
  }
});

test('a thrown value that is not an Error prints as node inspects it', () => {
  const onDsm = run(['bin/dsm.js', 'run', `${fixtures}/uncaught-value.cjs`]);
  assert.equal(onDsm.status, 1);
  assert.match(onDsm.stderr, /\{ some: 'object', count: 2 \}\n\nNode\.js v/);
});

for (const nodes of ['1', '3']) {
  test(`${nodes} node(s): an uncaught region-full error is node's RangeError and shows its DSM_ERR_ code`, () => {
    const onDsm = run(['bin/dsm.js', 'run', '--nodes', nodes, '--region-bytes', '16m', `${fixtures}/region-full.mjs`]);
    assert.equal(onDsm.status, 1);
    assert.equal(onDsm.stdout, 'before\n');
    assert.match(onDsm.stderr, /region-full\.mjs:4\n.*new SharedArrayBuffer.*\n +\^\n\nRangeError \[DSM_ERR_REGION_EXHAUSTED\]: Array buffer allocation failed: /);
    assert.match(onDsm.stderr, /\{\n {2}code: 'DSM_ERR_REGION_EXHAUSTED'\n\}/);
  });
}

test('command-line mistakes: one line dsm: DSM_ERR_USAGE: ..., exit 2', () => {
  const cases = [
    ['frobnicate'],
    ['run'],
    ['run', '--frob', 'examples/sum.js'],
    ['node'],
    ['node', '--secret', 's'],
    ['run', '--expect', '3', 'examples/sum.js'],
    ['run', '--join-timeout', '1000', 'examples/sum.js'],
    ['run', '--listen', '127.0.0.1:0', '--nodes', '2', '--expect', '2', 'examples/sum.js'],
    ['run', '--listen', '127.0.0.1:0', 'examples/sum.js'],
    // Security options for a cluster on one machine, which draws its own secret: refused, never silently ignored.
    ['run', '--secret-file', 'nothere', 'examples/sum.js'],
    ['run', '--nodes', '2', '--secret', 'x'.repeat(40), 'examples/sum.js'],
    ['run', '--tls-cert', 'nothere.pem', 'examples/sum.js'],
  ];
  for (const args of cases) {
    const result = run(['bin/dsm.js', ...args]);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stdout, '', args.join(' '));
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')} printed one line: ${result.stderr}`);
    assert.match(lines[0]!, /^dsm: DSM_ERR_USAGE: \S/, args.join(' '));
  }
});

test('the README demo says which node each worker ran on (stderr); plain node prints nothing there', () => {
  const plain = run(['examples/sum.js', '1000']);
  const onDsm = run(['bin/dsm.js', 'run', '--nodes', '3', '--region-bytes', '256m', 'examples/sum.js', '1000']);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(plain.stderr, '');
  assert.equal(onDsm.stdout, plain.stdout);
  const nodes = [...onDsm.stderr.matchAll(/^worker \d ran on node (\d) of 3$/gm)].map((match) => match[1]).sort();
  assert.deepEqual(nodes, ['0', '1', '1', '2']);
});

for (const nodes of ['1', '3']) {
  test(`${nodes} node(s): an uncaught exception in a TypeScript program points into the .ts source`, () => {
    const onDsm = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', nodes, '--region-bytes', '256m', `${fixtures}/uncaught.ts`],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TSX_DISABLE_CACHE: '1' } });
    assert.equal(onDsm.status, 1, onDsm.stderr);
    assert.match(head(onDsm.stderr), /^(file:\/\/)?\/.*uncaught\.ts:4\n {2}throw new Error\(`boom at size \$\{job\.size\}`\);\n {8}\^\n\nError: boom at size 3$/);
  });
}

test('3 nodes: an uncaught DsmError shows its name and DSM_ERR_ code, with the caret at the call', () => {
  const onDsm = run(['bin/dsm.js', 'run', '--nodes', '3', '--region-bytes', '256m', `${fixtures}/transfer-handle-remote.mjs`]);
  assert.equal(onDsm.status, 1);
  assert.match(head(onDsm.stderr), /transfer-handle-remote\.mjs:6\nworker\.postMessage\(handle, \[handle\]\);\n {7}\^\n\nDsmError \[DSM_ERR_NOT_DSM_MEMORY\]: postMessage to a worker on another node/);
  assert.match(onDsm.stderr, /\{\n {2}code: 'DSM_ERR_NOT_DSM_MEMORY'\n\}/);
});
