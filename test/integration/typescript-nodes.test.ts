// TypeScript programs (a .ts or .cts main, a .ts worker of a JavaScript main)
// run on several nodes as on one. They hung on 2+ nodes: tsx's loader hooks
// lock lived in dsm memory (Node's HooksProxy allocates it with the global
// SharedArrayBuffer), where a thread outside dsm waited on it forever; and
// esbuild's worker (tsx compiles CommonJS TypeScript with esbuild's synchronous
// API) was placed on another node, which cannot take its MessagePort.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function dsm(args: string[]) {
  // tsx caches what it compiled: without the cache every run compiles, as a first run does.
  const env = { ...process.env, TSX_DISABLE_CACHE: '1' };
  // The bound is for a hang (the hang these tests are about): 60 s, as elsewhere; a 3-node run without tsx's
  // cache took 23 s of the 30 s it had with the machine's load average above 20.
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', ...args], { encoding: 'utf8', timeout: 60_000, env });
  assert.equal(result.error, undefined, `dsm run ${args.join(' ')}: ${String(result.error)} ${result.stderr ?? ''}`);
  return result;
}

const programs = [
  { file: 'test/fixtures/programs/ts-sum.ts', stdout: 'ts total=500500\n' },
  { file: 'test/fixtures/programs/ts-cts-main.cts', stdout: 'cts slots=10,20,30\n' },
  { file: 'test/fixtures/programs/ts-worker-from-mjs.mjs', stdout: 'mjs+ts total=500500\n' },
  // CommonJS TypeScript goes through esbuild's synchronous API: its own Worker and SharedArrayBuffer.
  { file: 'test/fixtures/programs/ts-commonjs/main.ts', stdout: 'commonjs ts slots=7,14,21\n' },
];

// Two nodes show both hangs (they came with a second node: a thread on node 0 outside dsm, a worker placed on
// node 1), and every program's workers land on both; a third node was one more process loading tsx and
// compiling the program in each run (about 0.7 s of CPU a run, 8 runs).
for (const { file, stdout } of programs) {
  for (const protocol of ['hlrc', 'sc']) {
    test(`${protocol}, 2 nodes: ${file}`, () => {
      const run = dsm(['--nodes', '2', '--protocol', protocol, '--region-bytes', '256m', file]);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout, stdout);
    });
  }
  test(`1 node: ${file}`, () => {
    const run = dsm([file]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, stdout);
  });
}
