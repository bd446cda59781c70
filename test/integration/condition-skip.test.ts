// A Condition signal that wakes nobody costs no Atomics op on several nodes
// (src/sync/condition.ts; issue 13, TSP: each job's broadcast under the lock
// was two round trips inside the critical section), and a waiter the skip
// cannot see (a second mutex) still wakes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'dsm-condition-skip-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fixture = 'test/fixtures/programs/condition-skip.mjs';

interface Stats { total: { atomicOps?: number; messagesByType: Record<string, { count: number }> } }

function runDsm(nodes: number, mode: string, statsPath: string) {
  return spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', String(nodes), '--region-bytes', '256m', '--stats-json', statsPath, fixture, mode],
    { encoding: 'utf8', timeout: 120_000 });
}

test('2 nodes: broadcasts under the bound mutex with nobody waiting send no line messages', () => {
  const statsPath = join(dir, 'turns.json');
  const result = runDsm(2, 'turns', statsPath);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'turns=80\n');
  const stats = JSON.parse(readFileSync(statsPath, 'utf8')) as Stats;
  const byType = stats.total.messagesByType;
  const lineMessages = Object.entries(byType).filter(([type]) => type.startsWith('line')).reduce((sum, [, entry]) => sum + entry.count, 0);
  // Only the one wait and its wake-up (and the binding's compareExchange) touch the condition's line: 80 broadcasts do
  // not (each would add at least one). The line's grant, recall and a shipped op or two may repeat on a loaded
  // machine (14 at load ~20 in session 23's merged suite, against 12 at most before): the bound keeps that slack.
  assert.ok(lineMessages <= 20, `${lineMessages} line messages: ${JSON.stringify(byType)}`);
});

for (const nodes of [1, 2]) {
  test(`${nodes} node(s): a waiter under a second mutex wakes though the broadcast under the first was skipped`, () => {
    const plain = spawnSync(process.execPath, [fixture, 'mixed'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(plain.status, 0, plain.stderr);
    const result = runDsm(nodes, 'mixed', join(dir, `mixed-${nodes}.json`));
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, plain.stdout);
    assert.equal(result.stdout, 'flag=1 woken=1\n');
  });
}
