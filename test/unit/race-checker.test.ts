// The race checker alone (src/race/checker.ts): vector-timestamp
// concurrency, byte-exact overlaps, reads, deduplication and bounded memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pageBytes } from '../../src/constants.js';
import { RaceChecker } from '../../src/race/checker.js';
import { diffRuns, overlapRuns, unionRuns } from '../../src/race/diff.js';
import type { IntervalWrites } from '../../src/race/record.js';
import { formatRaceReport, resolveRaces } from '../../src/race/report.js';

function interval(node: number, index: number, vc: number[], writes: Record<number, number[]>, reads: Record<number, number> = {}, end = 'Atomics.add'): IntervalWrites {
  const pages = Object.keys(writes).map(Number).sort((a, b) => a - b);
  const readPages = Object.keys(reads).map(Number).sort((a, b) => a - b);
  return {
    node, index, vc, threads: [node], begin: { op: 'worker start', site: null }, end: { op: end, site: `app.mjs:${10 + node}:3` },
    pages, runs: pages.map((page) => writes[page]!), reads: readPages, readOffsets: readPages.map((page) => reads[page]!),
  };
}

test('diff runs decode the native encoding; overlaps and unions are byte-exact', () => {
  // [u16 offset][u16 length][bytes]: 3 bytes at 8, 1 byte at 100
  const diff = Uint8Array.from([8, 0, 3, 0, 1, 2, 3, 100, 0, 1, 0, 9]);
  assert.deepEqual(diffRuns(diff), [8, 3, 100, 1]);
  assert.deepEqual(overlapRuns([0, 4, 10, 4], [2, 10]), [2, 2, 10, 2]);
  assert.deepEqual(overlapRuns([0, 4], [4, 4]), []);
  assert.deepEqual(unionRuns([0, 4, 10, 2], [4, 2, 11, 4]), [0, 6, 10, 5]);
});

test('concurrent intervals writing the same bytes race; ordered ones and disjoint bytes do not', () => {
  const checker = new RaceChecker();
  // node 1 interval 1 and node 2 interval 1 are concurrent: both write bytes 0..3 of page 5.
  checker.addInterval(interval(1, 1, [0, 1, 0, 0], { 5: [0, 4] }));
  checker.addInterval(interval(2, 1, [0, 0, 1, 0], { 5: [2, 4, 100, 4] }));
  // node 2 interval 2 has acquired node 1's interval 1: ordered, no race.
  checker.addInterval(interval(2, 2, [0, 1, 2, 0], { 5: [0, 4] }));
  // node 3: concurrent with all, but other bytes of the page (false sharing).
  checker.addInterval(interval(3, 1, [0, 0, 0, 1], { 5: [200, 8] }));
  const summary = checker.summary();
  assert.equal(summary.raceCount, 1);
  assert.equal(summary.races.length, 1);
  const race = summary.races[0]!;
  assert.equal(race.kind, 'write-write');
  assert.equal(race.start, 5 * pageBytes + 2);
  assert.equal(race.end, 5 * pageBytes + 4);
  assert.deepEqual([race.first.node, race.second.node].sort(), [1, 2]);
});

test('a read of the very byte a concurrent interval wrote is a read-write race; other bytes of the page only a page overlap', () => {
  const checker = new RaceChecker();
  checker.addInterval(interval(1, 1, [0, 1, 0], { 3: [16, 4] }));
  checker.addInterval(interval(2, 1, [0, 0, 1], {}, { 3: 16 }));
  checker.addInterval(interval(2, 2, [0, 0, 2], {}, { 3: 64 }));
  let summary = checker.summary();
  assert.equal(summary.races.length, 1);
  assert.equal(summary.races[0]!.kind, 'read-write');
  assert.equal(summary.races[0]!.start, 3 * pageBytes + 16);
  assert.equal(summary.races[0]!.first.node, 2, 'the reader comes first');
  assert.equal(summary.pageOverlapCount, 1);

  const pages = new RaceChecker({ pageReads: true });
  pages.addInterval(interval(2, 1, [0, 0, 1], {}, { 3: 64 }));
  pages.addInterval(interval(1, 1, [0, 1, 0], { 3: [16, 4] }));
  summary = pages.summary();
  assert.equal(summary.races.length, 1);
  assert.equal(summary.races[0]!.kind, 'read-write-page');
});

test('a race repeated in many intervals is reported once, with its count', () => {
  const checker = new RaceChecker();
  for (let round = 1; round <= 50; round++) {
    // Each node's rounds are ordered among themselves, never with the other node's.
    checker.addInterval(interval(1, round, [0, round, 0], { 0: [0, 4] }));
    checker.addInterval(interval(2, round, [0, 0, round], { 0: [0, 4] }));
  }
  const summary = checker.summary();
  assert.equal(summary.races.length, 1);
  assert.equal(summary.races[0]!.count, summary.raceCount);
  // Each node's newer write of the same bytes supersedes its older one (FastTrack's
  // last-write epoch per node): every round races with the other node's latest.
  assert.equal(summary.raceCount, 99);
  const text = formatRaceReport(resolveRaces({ ...summary, allocations: [{ address: 0, byteLength: 64, site: 'app.mjs:3:7', thread: 0, node: 0 }] }));
  assert.match(text, /write-write race \(byte-precise\) on bytes 0\.\.3 of SharedArrayBuffer\(64\) allocated at app\.mjs:3:7 by the main thread, 99 times/);
});

test('a million races: the report stays bounded and the count keeps going', () => {
  const checker = new RaceChecker({ reportCountMax: 1000 });
  // Two concurrent intervals per page write every other 4-byte word of it: 512 separate races per page.
  const runs: number[] = [];
  for (let offset = 0; offset < pageBytes; offset += 8) runs.push(offset, 4);
  const pageCount = 1954; // 1954 * 512 > 1e6
  for (let page = 0; page < pageCount; page++) {
    checker.addInterval(interval(1, page + 1, [0, page + 1, 0], { [page]: runs }));
    checker.addInterval(interval(2, page + 1, [0, 0, page + 1], { [page]: runs }));
  }
  const summary = checker.summary();
  assert.ok(summary.raceCount >= 1_000_000, `counted ${summary.raceCount}`);
  assert.equal(summary.races.length, 1000);
  assert.ok(summary.distinctCount > 1000 && summary.unlistedCount === summary.distinctCount - 1000);
  assert.equal(summary.distinctCountExact, false, 'too many distinct races to tell apart: the count says "at least"');
  assert.ok(checker.windowSize() <= 1 << 18, 'the comparison window is bounded');
});

test('records no later interval can race with are pruned', () => {
  const checker = new RaceChecker();
  checker.expectNodes([1, 2]);
  for (let round = 1; round <= 600; round++) {
    // Lock-step: each interval has acquired the other node's previous one.
    checker.addInterval(interval(1, round, [0, round, round - 1], { 0: [0, 4] }));
    checker.addInterval(interval(2, round, [0, round, round], { 0: [0, 4] }));
  }
  assert.equal(checker.summary().raceCount, 0);
  assert.ok(checker.windowSize() < 300, `window ${checker.windowSize()}`);
});

test('a page written under a lock keeps one record per node, and a node that ran two threads is named', () => {
  const checker = new RaceChecker();
  checker.expectNodes([0, 1, 2]);
  for (let round = 1; round <= 300; round++) {
    checker.addInterval(interval(1, round, [0, round, round - 1], { 0: [0, 4] }));
    checker.addInterval(interval(2, round, [0, round, round], { 0: [0, 4] }));
  }
  // node 0 never writes again: nothing is pruned, but superseded writes are dropped.
  assert.ok(checker.windowSize() <= 4, `window ${checker.windowSize()}`);
  checker.addInterval({ ...interval(1, 301, [0, 301, 300], { 9: [0, 4] }), threads: [1, 5] });
  const summary = checker.summary();
  assert.deepEqual(summary.sharedNodes, [{ node: 1, threads: [1, 5] }]);
  assert.match(formatRaceReport(resolveRaces(summary)), /warning: threads 1, 5 shared node 1: races between threads of one node are not seen/);
});

test('a report with no race still says how many access records left the comparison window (a helper\'s race sweep, session 37)', () => {
  const checker = new RaceChecker();
  checker.expectNodes([0, 1]);
  checker.addInterval(interval(1, 1, [0, 1], { 0: [0, 4] }));
  const report = { ...resolveRaces(checker.summary()), droppedRecordCount: 17 };
  assert.equal(report.raceCount, 0);
  assert.match(formatRaceReport(report), /^dsm race: no data races found \(\d+ intervals checked\)\n  note: 17 access record\(s\) left the comparison window at its limit: races with them may have gone unseen\n$/);
});
