// The placement API (issue 13, optional): homeOf(memory[, byteOffset]) and
// nodeOf(worker) from the package, under plain node, on one node and on
// several (test/fixtures/programs/homes.mjs). A buffer a worker on node 1
// allocates is homed at node 1 on any node count: block placement follows
// the allocator's slices (on 3 nodes the start of each slice was homed at the
// node before).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const program = 'test/fixtures/programs/homes.mjs';
const errors = 'errors TypeError,TypeError,RangeError,RangeError,TypeError';

function run(args: string[]): string {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.error, undefined, String(result.error));
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

const oneMachine = `main's buffer 0 0 0; the worker runs on 0, its buffer 0 0 (it saw 0 0); growable 0; ${errors}\n`;

test('under plain node and on one node every answer is 0, and bad arguments throw as documented', () => {
  assert.equal(run([program]), oneMachine);
  assert.equal(run(['bin/dsm.js', 'run', program]), oneMachine);
});

for (const nodes of [2, 3]) {
  test(`hlrc on ${nodes} nodes: a worker's buffer is homed on its node, the main thread's on node 0`, () => {
    assert.equal(run(['bin/dsm.js', 'run', '--nodes', String(nodes), '--region-bytes', '100m', program]),
      `main's buffer 0 0 0; the worker runs on 1, its buffer 1 1 (it saw 1 0); growable 0; ${errors}\n`);
  });
}

test('sc on 3 nodes: homeOf names the page\'s manager (pages spread round-robin)', () => {
  assert.equal(run(['bin/dsm.js', 'run', '--nodes', '3', '--protocol', 'sc', program]),
    `main's buffer 0 2 0; the worker runs on 1, its buffer 0 0 (it saw 0 0); growable 0; ${errors}\n`);
});
