// Programs written for worker_threads + SharedArrayBuffer + Atomics print the
// same under `dsm run` as under plain node, with the same exit code.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const programs: Array<{ file: string; args?: string[]; input?: string }> = [
  { file: 'examples/sum.js', args: ['200000'] },
  { file: 'test/fixtures/programs/mutex-counter.mjs' },
  { file: 'test/fixtures/programs/messages.cjs' },
];

// Plain node 20 cannot start a worker whose entry is TypeScript even with
// `--import tsx` (loader hooks do not reach a worker's entry), so the
// TypeScript program is checked against its known output.
test('a TypeScript program with a TypeScript worker runs directly', () => {
  const onDsm = run(['bin/dsm.js', 'run', 'test/fixtures/programs/ts-sum.ts']);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, 'ts total=500500\n');
});

function run(command: string[], input = '') {
  const result = spawnSync(process.execPath, command, { encoding: 'utf8', input, timeout: 60_000 });
  assert.equal(result.error, undefined, `${command.join(' ')}: ${String(result.error)}`);
  return result;
}

for (const program of programs) {
  test(`${program.file} prints the same under dsm run as under node`, () => {
    const args = program.args ?? [];
    const plain = run([program.file, ...args], program.input);
    const onDsm = run(['bin/dsm.js', 'run', program.file, ...args], program.input);
    assert.equal(plain.status, 0, `plain node failed: ${plain.stderr}`);
    assert.equal(onDsm.status, plain.status, `dsm exit code: ${onDsm.stderr}`);
    assert.equal(onDsm.stdout, plain.stdout);
    assert.notEqual(onDsm.stdout, '', 'the program printed something');
  });
}
