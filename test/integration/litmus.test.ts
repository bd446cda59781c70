// Litmus programs over real processes: 4 nodes, both protocols, the same
// answer a single machine gives.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const litmus = [
  { file: 'test/fixtures/litmus/false-sharing.mjs', expected: 'stale reads=0 lost writes=0\n' },
  { file: 'test/fixtures/litmus/store-buffer.mjs', expected: 'rounds=100 both-zero=0\n' },
  { file: 'test/fixtures/programs/mutex-counter.mjs', expected: 'counter=8000 expected=8000\n' },
];

for (const protocol of ['hlrc', 'sc']) {
  for (const { file, expected } of litmus) {
    test(`${protocol}, 4 nodes: ${file}`, () => {
      const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '4', '--protocol', protocol, '--region-bytes', '256m', file],
        { encoding: 'utf8', timeout: 120_000 });
      assert.equal(result.error, undefined, String(result.error));
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, expected);
    });
  }
}

test('the litmus programs give the same answers under plain node', () => {
  for (const { file, expected } of litmus) {
    const result = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.stdout, expected, file);
  }
});
