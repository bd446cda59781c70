// Deferred diffs (docs/PROTOCOL.md, "Deferred diffs") from end to end: a
// release of 1,024 dirty pages on node 1 sends its write notices at once and
// its diffs after; node 0, reading the pages, waits for them. Both runs end:
// with the diffs (every word arrives), and, with the diffs held
// (DSM_TEST_HOOK_HOLD_DEFERRED=1) and node 1 killed while node 0 waits for
// them, with one line naming node 1 (DSM_ERR_NODE_DIED), never a hang.
// Deferral is off by default (DSM_DEFER_DIFFS=1 turns it on).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { childNodes, ended, startRun, until } from '../fixtures/runs.js';

const program = 'test/fixtures/programs/deferred-death.mjs';

test('hlrc, 2 nodes: a release of 1,024 pages whose diffs follow it: the reader on the home node sees every word', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsm-deferred-'));
  try {
    const statsFile = join(dir, 'stats.json');
    const run = startRun(['run', '--nodes', '2', '--region-bytes', '256m', '--stats-json', statsFile, program, '1024', '0'], { DSM_DEFER_DIFFS: '1' });
    const { code } = await ended(run);
    assert.equal(code, 0, run.stderr());
    assert.equal(run.stdout(), 'reading\nwrong=0\n');
    const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as { nodes: Array<{ diffsDeferred: number }> };
    assert.equal(stats.nodes[1]!.diffsDeferred, 1024, 'node 1 deferred every diff of its release');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hlrc, 2 nodes: node 1 killed while node 0 waits for its deferred diffs ends the run with DSM_ERR_NODE_DIED', async () => {
  const run = startRun(['run', '--nodes', '2', '--region-bytes', '256m', program, '1024', '120'], { DSM_DEFER_DIFFS: '1', DSM_TEST_HOOK_HOLD_DEFERRED: '1' });
  assert.ok(await until(() => run.stdout().includes('reading') || run.child.exitCode !== null, 60_000), `node 0 reads: ${run.stderr()}`);
  // Node 0's reader now waits for diffs node 1 holds back: without the kill the run would not end.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(run.stdout(), 'reading\n', 'the reader waits for the held diffs');
  const victim = childNodes(run).get(1);
  assert.ok(victim !== undefined, 'node 1 runs');
  process.kill(victim, 'SIGKILL');
  const { code } = await ended(run);
  assert.equal(code, 70, run.stderr());
  assert.match(run.stderr(), new RegExp(`DSM_ERR_NODE_DIED: node 1 \\(127\\.0\\.0\\.1, pid ${victim}\\)`));
});
