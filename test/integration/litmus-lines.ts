// Shared by test/integration/litmus-lines-*.test.ts. Litmus programs for Atomics by line ownership (issue 12.2) over real
// processes: message passing through an atomic flag, store buffering, IRIW
// on Atomics, wait/notify across nodes, a thread terminated while it waits
// for a line. On 1, 3 and 8 nodes under both protocols, each must print
// exactly what plain node prints.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const files = [
  'test/fixtures/litmus/lines-message-passing.mjs',
  'test/fixtures/litmus/store-buffer.mjs',
  'test/fixtures/litmus/lines-iriw.mjs',
  'test/fixtures/litmus/lines-wait-notify.mjs',
  'test/fixtures/litmus/lines-terminate.mjs',
];

const expected = new Map<string, string>();
function plainNode(file: string): string {
  let output = expected.get(file);
  if (output === undefined) {
    const result = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, `${file} under plain node: ${result.stderr}`);
    output = result.stdout;
    expected.set(file, output);
  }
  return output;
}

/** Registers the litmus tests for one node count (each test file takes one share, within the per-file time limit). */
export function litmusLines(nodes: number, protocols: string[]): void {
  for (const protocol of protocols) {
    for (const file of files) {
      test(`${protocol}, ${nodes} node(s): ${file} prints what plain node prints`, () => {
        const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', String(nodes), '--protocol', protocol, '--region-bytes', '256m', file],
          { encoding: 'utf8', timeout: 240_000 });
        assert.equal(result.error, undefined, String(result.error));
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stdout, plainNode(file));
      });
    }
  }
}
