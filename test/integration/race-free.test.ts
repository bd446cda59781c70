// dsm run --race over real processes (docs/RACE.md): race-free fixtures and
// litmus programs report nothing (the racy ones are in race.test.ts).
//
// The programs with the same node count share one `dsm run --race`
// (test/integration/sequence-runs.ts runs them in turn; a cluster start is most
// of a short program's time). The run's report covers all of them, so each
// program's test asserts that it reports no race at all, and that at least one
// interval was checked for each program with workers (a program's workers each
// end an interval at least). The programs await their workers, so one program's
// accesses are ordered before the next one's (worker exit, join, worker start):
// a shared run adds no race between them.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RaceReport } from '../../src/race/report.js';
import { Sequence } from './sequence-runs.js';

const raceFree = [
  { file: 'test/fixtures/race/false-sharing.mjs', nodes: 3 },
  { file: 'test/fixtures/race/atomic-counter.mjs', nodes: 4 },
  { file: 'test/fixtures/race/mutex-counter.mjs', nodes: 4 },
  { file: 'test/fixtures/race/barrier-phases.mjs', nodes: 4 },
  { file: 'test/fixtures/race/no-workers.mjs', nodes: 2 },
  { file: 'test/fixtures/litmus/message-passing.mjs', nodes: 4 },
  { file: 'test/fixtures/litmus/producer-consumer.mjs', nodes: 5 },
  { file: 'test/fixtures/litmus/post-message.mjs', nodes: 3 },
  { file: 'test/fixtures/litmus/condition-broadcast.mjs', nodes: 5 },
];
const withoutWorkers = new Set(['test/fixtures/race/no-workers.mjs']);

const dir = mkdtempSync(join(tmpdir(), 'dsm-race-free-'));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const nodes of [...new Set(raceFree.map((program) => program.nodes))]) {
  const files = raceFree.filter((program) => program.nodes === nodes).map((program) => program.file);
  const json = join(dir, `report-${nodes}.json`);
  const sequence = new Sequence({
    dsmArgs: ['--race', '--nodes', String(nodes), '--region-bytes', '256m', '--race-json', json],
    files,
    // Bounds for hangs, not time budgets (a lone race run had 180 s).
    timeoutMs: 480_000,
    programTimeoutMs: 180_000,
  });
  const report = (): RaceReport => {
    const run = sequence.whole();
    try {
      return JSON.parse(readFileSync(json, 'utf8')) as RaceReport;
    } catch {
      return assert.fail(`no race report (exit ${run.status}): ${run.stderr}`);
    }
  };
  for (const file of files) {
    test(`race-free: ${file} reports nothing (${nodes} nodes${files.length > 1 ? `, one run with ${files.length - 1} more` : ''})`, () => {
      const result = sequence.resultOf(file);
      assert.equal(result.error, undefined, `${String(result.error)} ${result.stderr}`);
      assert.equal(result.status, 0, result.stderr);
      const run = sequence.whole();
      assert.equal(run.status, 0, run.stderr);
      const { raceCount, intervalCount } = report();
      assert.equal(raceCount, 0, run.stderr);
      assert.ok(intervalCount >= files.filter((each) => !withoutWorkers.has(each)).length, `intervals were checked (${intervalCount})`);
      assert.match(run.stderr, /dsm race: no data races found/);
    });
  }
}
