// A loop polling a plain read (`while (flags[0] === 0) {}`, a data race with
// no Atomics) ends under dsm's default hlrc on several nodes, as it does under
// plain node (src/protocol/stale.ts): a node with no synchronization for a
// while sends its dirty pages home and drops the copies its homes find out of
// date. Before session 23 each of these runs spun forever. No timing is
// asserted: each run must end with plain node's output.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const program = 'test/fixtures/programs/racy-spin.mjs';

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(result.error, undefined, `${args.join(' ')}: ${String(result.error)}`);
  return result;
}

const cases: Array<{ mode: string; nodes: number; what: string }> = [
  { mode: 'home', nodes: 2, what: 'the writer is the home\'s main thread, the reader a worker on node 1 (and back: the worker\'s ack to the home)' },
  { mode: 'home', nodes: 3, what: 'the writer is the home\'s main thread, the reader a worker on node 1' },
  { mode: 'worker', nodes: 2, what: 'the writer is a worker on node 1, not the page\'s home' },
  { mode: 'worker', nodes: 3, what: 'the writer is a worker on node 1, not the home, the reader a worker on node 2' },
];

for (const { mode, nodes, what } of cases) {
  test(`hlrc on ${nodes} nodes, ${mode}: a loop polling a plain read ends: ${what}`, { timeout: 150_000 }, () => {
    const plain = run([program, mode]);
    assert.equal(plain.status, 0, plain.stderr);
    const onDsm = run(['bin/dsm.js', 'run', '--nodes', String(nodes), '--region-bytes', '64m', program, mode]);
    assert.equal(onDsm.status, 0, `dsm exit ${String(onDsm.status)}: ${onDsm.stderr}`);
    assert.equal(onDsm.stdout, plain.stdout);
  });
}
