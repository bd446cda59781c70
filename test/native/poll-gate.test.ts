// The manager's poll gate between real threads (test/native/fixtures/poll-gate.mjs): a thread parked in a
// doorbell call counts while it sleeps and not after; a ring counts as activity; bad arguments are refused.
// (The poll itself is measured, not timed in tests: docs/EVALUATION.md, "Session 24".)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('the poll gate counts parked threads and rings; setManagerPoll and setGate refuse what they cannot use', () => {
  const result = spawnSync(process.execPath, ['test/native/fixtures/poll-gate.mjs'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  const r = JSON.parse(result.stdout.trim().split('\n').pop()!) as { refusals: string[]; ringsCounted: number; before: number; parkedSeen: number; after: number };
  assert.deepEqual(r.refusals, ['DSM_ERR_INTERNAL', 'DSM_ERR_INTERNAL', 'DSM_ERR_INTERNAL', 'DSM_ERR_INTERNAL']);
  assert.equal(r.ringsCounted, 1);
  assert.equal(r.before, 0);
  assert.equal(r.parkedSeen, 1, 'the parked worker counted while it slept');
  assert.equal(r.after, 0, 'and not after');
});
