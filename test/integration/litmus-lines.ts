// Shared by test/integration/litmus-lines-*.test.ts. Litmus programs for Atomics by line ownership (issue 12.2) over real
// processes: message passing through an atomic flag, store buffering, IRIW
// on Atomics, wait/notify across nodes, a thread terminated while it waits
// for a line, shipped ops on lines used once per task, a ring buffer whose pushes and pops notify, a histogram whose threads cycle over the lines of a page, a stencil whose rounds end at a barrier written with Atomics. On 1, 3 and 8 nodes under both protocols, each must print
// exactly what plain node prints.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Sequence } from './sequence-runs.js';

const files = [
  'test/fixtures/litmus/lines-message-passing.mjs',
  'test/fixtures/litmus/store-buffer.mjs',
  'test/fixtures/litmus/lines-iriw.mjs',
  'test/fixtures/litmus/lines-wait-notify.mjs',
  'test/fixtures/litmus/lines-terminate.mjs',
  'test/fixtures/litmus/lines-shipped.mjs',
  'test/fixtures/litmus/lines-ring.mjs',
  'test/fixtures/litmus/lines-histogram.mjs',
  'test/fixtures/litmus/lines-barrier.mjs',
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

/**
 * One `dsm run` per node count and protocol runs every program in turn (test/integration/sequence-runs.ts): a
 * cluster start is most of a program's time on 8 nodes. Each program's output still has a test of its own, which
 * fails naming it. Workers are placed round-robin from where the previous program left off: each program's threads
 * are spread over the nodes as evenly as in a run of its own, from another first node.
 */
const runs = new Map<string, Sequence>();
function sequenceRun(nodes: number, protocol: string): Sequence {
  const key = `${nodes} ${protocol}`;
  let run = runs.get(key);
  if (run === undefined) {
    // Bounds for hangs, not time budgets: five programs, each once bounded at 240 s.
    run = new Sequence({ dsmArgs: ['--nodes', String(nodes), '--protocol', protocol, '--region-bytes', '256m'], files, timeoutMs: 600_000, programTimeoutMs: 240_000 });
    runs.set(key, run);
  }
  return run;
}

/** Registers the litmus tests for one node count (each test file takes one share, within the per-file time limit). */
export function litmusLines(nodes: number, protocols: string[]): void {
  for (const protocol of protocols) {
    for (const file of files) {
      // A program's test looks at its own output only: a failing (or hung) program fails its test, not the others'.
      test(`${protocol}, ${nodes} node(s): ${file} prints what plain node prints`, () => {
        const result = sequenceRun(nodes, protocol).resultOf(file);
        assert.equal(result.error, undefined, `${String(result.error)} ${result.stderr}`);
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stdout, plainNode(file), result.stderr);
      });
    }
    test(`${protocol}, ${nodes} node(s): the run of the litmus programs exits 0`, () => {
      const result = sequenceRun(nodes, protocol).whole();
      assert.equal(result.error, undefined, String(result.error));
      assert.equal(result.status, 0, result.stderr);
    });
  }
}
