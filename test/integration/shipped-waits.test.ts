// Shipped waits on a real cluster (session 15, docs/PROTOCOL.md "Shipped
// waits"): the Atomics-made barrier of bench/programs/atomics-barrier.mjs on 2
// nodes with node 1 kept shipping its ops on the barrier's line
// (DSM_LINE_SHIP_SAMPLE_OPS), so that its Atomics.waits go to the directory as
// lineWaitShip (app shim -> doorbell -> manager -> line layer -> wire -> the
// directory's check -> lineWake). The result is plain node's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const program = ['bench/programs/atomics-barrier.mjs', '2', '300', '64'];

function checksumOf(stdout: string): number {
  const line = stdout.split('\n').find((text) => text.startsWith('{'));
  assert.ok(line !== undefined, `a result line in ${JSON.stringify(stdout)}`);
  return (JSON.parse(line) as { checksum: number }).checksum;
}

test('an Atomics barrier whose waits are shipped to the line directory ends as under plain node', () => {
  const plain = spawnSync(process.execPath, program, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(plain.status, 0, plain.stderr);
  const run = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', '--stats', ...program],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DSM_LINE_SHIP_SAMPLE_OPS: '1000000000' } });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(checksumOf(run.stdout), checksumOf(plain.stdout));
  const shipped = /^ {2}lineWaitShip\s.*\s(\d+) \(\d+ B\)\s*$/m.exec(run.stderr);
  assert.ok(shipped !== null && Number(shipped[1]) > 0, `waits were shipped:\n${run.stderr}`);
});
