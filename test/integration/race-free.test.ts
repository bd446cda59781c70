// dsm run --race over real processes (docs/RACE.md): race-free fixtures and
// litmus programs report nothing (the racy ones are in race.test.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { race } from './race-runs.js';

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

for (const { file, nodes } of raceFree) {
  test(`race-free: ${file} reports nothing`, () => {
    const { status, stderr, report } = race(file, nodes);
    assert.equal(status, 0, stderr);
    assert.equal(report.raceCount, 0, stderr);
    assert.ok(report.intervalCount > 0 || file.includes('no-workers'), 'intervals were checked');
    assert.match(stderr, /dsm race: no data races found/);
  });
}

