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

// TypeScript programs (a TypeScript worker included) are checked against their
// known output in test/integration/typescript-nodes.test.ts, on one node and on
// three: plain node 20 cannot start a worker whose entry is TypeScript.

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
