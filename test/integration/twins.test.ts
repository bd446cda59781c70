// Issue 17 over real node processes: a tiny --twin-bytes makes the writer of
// other homes' pages flush its oldest dirty pages early all through each
// iteration; the stencil still verifies bitwise against plain node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('2 nodes, --twin-bytes 64k: the stencil (256 pages of another home written per iteration) verifies', () => {
  const result = spawnSync(process.execPath, [
    'bin/dsm.js', 'run', '--nodes', '2', '--region-bytes', '256m', '--twin-bytes', '64k',
    'bench/apps/stencil.mjs', '--size', '512', '--iterations', '4',
  ], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(result.error, undefined, String(result.error));
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /"verified":true/);
});

test('an invalid --twin-bytes is refused before anything starts', () => {
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', '--twin-bytes', '3k', 'examples/sum.js'], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /--twin-bytes must be a size/);
});
